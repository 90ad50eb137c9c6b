//! `GET /v1/events` (the tenant's feed, oldest first, after a cursor) and
//! `GET /v1/events/{id}`.

use super::query::{next_cursor, Params};
use crate::auth::Tenant;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use certgate_core::event::EventType;
use certgate_core::InvalidInput;
use certgate_store::EventRow;
use serde_json::{json, Value};
use std::collections::HashMap;

/// An event as stored: the JSON it was delivered as.
fn body(row: &EventRow) -> Result<Value, ApiError> {
    serde_json::from_str(&row.body)
        .map_err(|e| ApiError::Internal(format!("stored event {} unreadable: {e}", row.id)))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw, &["after", "type", "limit"])?;
    let kind = params
        .get("type")
        .map(|t| {
            t.parse::<EventType>().map_err(|_| {
                InvalidInput::one(
                    "type",
                    format!("unknown event type; one of {}", EventType::names()),
                )
            })
        })
        .transpose()?;
    let limit = params.limit()?;
    let after = match params.get("after") {
        None => 0,
        Some(id) => {
            state
                .store
                .get_event(&tenant.id, id)
                .await?
                .ok_or_else(|| {
                    InvalidInput::one("after", "is not the id of one of this tenant's events")
                })?
                .seq
        }
    };
    let rows = state
        .store
        .list_events(&tenant.id, after, kind, limit)
        .await?;
    let next = next_cursor(&rows, limit, |r| r.id.clone());
    let events = rows.iter().map(body).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"events": events, "next_cursor": next})))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_event(&tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event `{id}`")))?;
    Ok(Json(body(&row)?))
}
