//! `GET /v1/webhook-deliveries` (each attempt's outcome, oldest first), one delivery, and
//! replay: `POST /v1/webhook-deliveries/{id}/redeliver` and `POST
//! /v1/webhook-deliveries/redeliver` `{"status": "dead"}`.

use super::query::{next_cursor, Params};
use crate::auth::Tenant;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::service::ms;
use crate::webhooks::{delivery_id, parse_delivery_id};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use certgate_core::event::DeliveryStatus;
use certgate_core::order::instant;
use certgate_core::InvalidInput;
use certgate_store::DeliveryRow;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

fn at(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| instant::format(&t))
}

/// A delivery as the API shows it.
fn view(d: &DeliveryRow) -> Value {
    json!({
        "id": delivery_id(d.id),
        "event_id": d.event_id,
        "event_type": d.event_type.as_str(),
        "target": d.target.as_str(),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": (d.status == DeliveryStatus::Pending).then(|| at(d.next_attempt_at)).flatten(),
        "expires_at": (d.status == DeliveryStatus::Pending).then(|| at(d.expires_at)).flatten(),
        "created_at": at(d.created_at),
        "delivered_at": d.delivered_at.and_then(at),
    })
}

fn status(value: &str, field: &str) -> Result<DeliveryStatus, ApiError> {
    value.parse().map_err(|_| {
        InvalidInput::one(field, format!("must be one of {}", DeliveryStatus::names())).into()
    })
}

pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw, &["status", "cursor", "limit"])?;
    let filter = params
        .get("status")
        .map(|s| status(s, "status"))
        .transpose()?;
    let limit = params.limit()?;
    let after = params.cursor(parse_delivery_id)?.unwrap_or(0);
    let rows = state
        .store
        .list_deliveries(&tenant.id, filter, after, limit)
        .await?;
    let next = next_cursor(&rows, limit, |r| delivery_id(r.id));
    let deliveries: Vec<Value> = rows.iter().map(view).collect();
    Ok(Json(json!({"deliveries": deliveries, "next_cursor": next})))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook delivery `{id}`"))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = parse_delivery_id(&id).ok_or_else(|| not_found(&id))?;
    let row = state
        .store
        .get_delivery(&tenant.id, n)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&row)))
}

/// Queues one delivery again (whatever its status), due now, for another `max_age`.
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let n = parse_delivery_id(&id).ok_or_else(|| not_found(&id))?;
    let now = (state.clock)();
    let expires = state.webhooks.policy().expires(now);
    let row = state
        .store
        .redeliver(&tenant.id, n, ms(now), ms(expires))
        .await?
        .ok_or_else(|| not_found(&id))?;
    state.deliver.notify_one();
    tracing::info!(delivery = %id, tenant = %tenant.id, "webhook delivery queued again");
    Ok((StatusCode::ACCEPTED, Json(view(&row))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeliverAll {
    status: String,
}

/// Queues every dead delivery of the tenant again; they go out in their original order.
pub async fn redeliver_all(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    JsonBody(body): JsonBody<RedeliverAll>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if status(&body.status, "status")? != DeliveryStatus::Dead {
        return Err(InvalidInput::one(
            "status",
            "only `dead` deliveries are replayed together; replay others one by one",
        )
        .into());
    }
    let now = (state.clock)();
    let expires = state.webhooks.policy().expires(now);
    let n = state
        .store
        .redeliver_all(&tenant.id, DeliveryStatus::Dead, ms(now), ms(expires))
        .await?;
    state.deliver.notify_one();
    tracing::info!(tenant = %tenant.id, requeued = n, "dead webhook deliveries queued again");
    Ok((StatusCode::ACCEPTED, Json(json!({"requeued": n}))))
}
