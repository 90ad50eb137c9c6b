//! `GET /v1/webhook-deliveries` (each attempt's outcome, oldest first), one delivery, and
//! replay: `POST /v1/webhook-deliveries/{id}/redeliver` and `POST
//! /v1/webhook-deliveries/redeliver` `{"status": "dead"}`.

use super::query::{self, next_cursor, Id, QueryParams};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use certgate_core::event::{DeliveryStatus, DeliveryTarget, EventType};
use certgate_core::order::instant;
use certgate_core::TenantId;
use certgate_engine::webhooks::{delivery_id, parse_delivery_id, DELIVERY_PREFIX};
use certgate_store::ms;
use certgate_store::DeliveryRow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A webhook (or helpdesk) delivery of one event, and how its attempts went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `dlv_` and a number.
    id: String,
    event_id: String,
    event_type: EventType,
    target: DeliveryTarget,
    status: DeliveryStatus,
    attempts: i64,
    /// The HTTP status of the last attempt, if the receiver answered.
    last_status_code: Option<i64>,
    last_error: Option<String>,
    /// When the next attempt is due (pending deliveries).
    #[serde(with = "instant::option")]
    next_attempt_at: Option<DateTime<Utc>>,
    /// When a pending delivery becomes `dead`.
    #[serde(with = "instant::option")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(with = "instant::option")]
    created_at: Option<DateTime<Utc>>,
    #[serde(with = "instant::option")]
    delivered_at: Option<DateTime<Utc>>,
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

impl From<&DeliveryRow> for Delivery {
    fn from(d: &DeliveryRow) -> Self {
        let pending = d.status == DeliveryStatus::Pending;
        Delivery {
            id: delivery_id(d.id),
            event_id: d.event_id.clone(),
            event_type: d.event_type,
            target: d.target,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: pending.then(|| at(d.next_attempt_at)).flatten(),
            expires_at: pending.then(|| at(d.expires_at)).flatten(),
            created_at: at(d.created_at),
            delivered_at: d.delivered_at.and_then(at),
        }
    }
}

/// The parameters of `GET /v1/webhook-deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only deliveries with this status.
    status: Option<DeliveryStatus>,
    #[param(schema_with = dlv_cursor)]
    cursor: Option<String>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

fn dlv_cursor() -> utoipa::openapi::schema::ObjectBuilder {
    query::sequence_schema().pattern(Some(query::sequence_pattern(DELIVERY_PREFIX)))
}

/// A page of deliveries, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<Delivery>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// The tenant's webhook deliveries, oldest first.
#[utoipa::path(get, path = "/v1/webhook-deliveries", tag = "webhooks", params(ListParams),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPage)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = query::limit(params.limit)?;
    let after = query::cursor("cursor", params.cursor.as_deref(), parse_delivery_id)?.unwrap_or(0);
    let rows = state
        .store
        .list_deliveries(&tenant, params.status, after, limit)
        .await?;
    let next_cursor = next_cursor(&rows, limit, |r| delivery_id(r.id));
    Ok(Json(DeliveryPage {
        deliveries: rows.iter().map(Delivery::from).collect(),
        next_cursor,
    }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook delivery `{id}`"))
}

/// One delivery.
#[utoipa::path(get, path = "/v1/webhook-deliveries/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 200, description = "The delivery", body = Delivery)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<Json<Delivery>, ApiError> {
    let n = parse_delivery_id(&id).ok_or_else(|| not_found(&id))?;
    let row = state
        .store
        .get_delivery(&tenant, n)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(Delivery::from(&row)))
}

/// Queues one delivery again (whatever its status), due now, for another `max_age`.
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 202, description = "The delivery, queued", body = Delivery)))]
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let n = parse_delivery_id(&id).ok_or_else(|| not_found(&id))?;
    let now = (state.clock)();
    let expires = state.webhooks.policy().expires(now);
    let row = state
        .store
        .redeliver(&tenant, n, ms(now), ms(expires))
        .await?
        .ok_or_else(|| not_found(&id))?;
    state.deliver.notify_one();
    tracing::info!(delivery = %id, tenant = %tenant, "webhook delivery queued again");
    Ok((StatusCode::ACCEPTED, Json(Delivery::from(&row))))
}

/// Which deliveries to replay together: only `dead` ones.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Replayable {
    Dead,
}

/// The body of `POST /v1/webhook-deliveries/redeliver`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverAll {
    /// Only `dead` deliveries are replayed together; replay others one by one.
    status: Replayable,
}

/// How many deliveries were queued again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Requeued {
    requeued: u64,
}

/// Queues every dead delivery of the tenant again; they go out in their original order.
#[utoipa::path(post, path = "/v1/webhook-deliveries/redeliver", tag = "webhooks",
    request_body = RedeliverAll,
    responses((status = 202, description = "The dead deliveries, queued", body = Requeued)))]
pub async fn redeliver_all(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    JsonBody(body): JsonBody<RedeliverAll>,
) -> Result<(StatusCode, Json<Requeued>), ApiError> {
    let Replayable::Dead = body.status;
    let now = (state.clock)();
    let expires = state.webhooks.policy().expires(now);
    let requeued = state
        .store
        .redeliver_all(&tenant, DeliveryStatus::Dead, ms(now), ms(expires))
        .await?;
    state.deliver.notify_one();
    tracing::info!(tenant = %tenant, requeued, "dead webhook deliveries queued again");
    Ok((StatusCode::ACCEPTED, Json(Requeued { requeued })))
}
