//! `GET /v1/events` (the tenant's feed, oldest first, after a cursor) and
//! `GET /v1/events/{id}`.

use super::query::{self, next_cursor, Id, QueryParams};
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use certgate_core::event::EventType;
use certgate_core::TenantId;
use certgate_engine::events::Event;
use certgate_store::EventRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event as stored: the JSON it was delivered as.
fn body(row: &EventRow) -> Result<Value, ApiError> {
    serde_json::from_str(&row.body)
        .map_err(|e| ApiError::Internal(format!("stored event {} unreadable: {e}", row.id)))
}

/// The parameters of `GET /v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only events after this one (the `next_cursor` of the page before); from the oldest
    /// when absent. An id that is not one of the tenant's events is a 404.
    #[param(schema_with = evt_cursor)]
    after: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<EventType>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

fn evt_cursor() -> utoipa::openapi::schema::ObjectBuilder {
    crate::ids::cursor_schema("evt")
}

/// A page of the feed, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<Event>)]
    events: Vec<Value>,
    /// The `after` of the next page; null on the last.
    next_cursor: Option<String>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no event `{id}`"))
}

/// The tenant's events, oldest first.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(ListParams),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 404, description = "`after` is not one of the tenant's events", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = query::limit(params.limit)?;
    let after = match query::id_cursor("after", params.after.as_deref(), "evt")? {
        None => 0,
        Some(id) => {
            state
                .store
                .get_event(&tenant, id)
                .await?
                .ok_or_else(|| not_found(id))?
                .seq
        }
    };
    let rows = state
        .store
        .list_events(&tenant, after, params.kind, limit)
        .await?;
    let next_cursor = next_cursor(&rows, limit, |r| r.id.clone());
    let events = rows.iter().map(body).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(EventPage {
        events,
        next_cursor,
    }))
}

/// One event.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    responses((status = 200, description = "The event", body = Event)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_event(&tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(body(&row)?))
}
