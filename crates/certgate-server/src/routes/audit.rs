//! `GET /v1/audit`: the tenant's audit log, newest first.

use super::query::{next_cursor, Params};
use crate::auth::Tenant;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use certgate_core::order::instant;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw, &["cursor", "limit"])?;
    let before = params.cursor(|c| c.parse::<i64>().ok())?;
    let limit = params.limit()?;
    let rows = state.store.list_audit(&tenant.id, before, limit).await?;
    let next = next_cursor(&rows, limit, |r| r.id.to_string());
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            let at = chrono::DateTime::from_timestamp_millis(r.at).map(|t| instant::format(&t));
            json!({"id": r.id, "at": at, "actor": r.actor, "action": r.action, "target": r.target, "outcome": r.outcome, "detail": r.detail})
        })
        .collect();
    Ok(Json(json!({"entries": entries, "next_cursor": next})))
}
