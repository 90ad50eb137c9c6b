//! `GET /v1/audit`: the tenant's audit log, newest first.

use super::query::{self, next_cursor, QueryParams};
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use certgate_core::order::instant;
use certgate_core::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The parameters of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(schema_with = query::sequence_schema)]
    cursor: Option<String>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

/// One thing someone did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    id: i64,
    #[serde(with = "instant::option")]
    at: Option<DateTime<Utc>>,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    detail: String,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// Who did what, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(ListParams),
    responses((status = 200, description = "A page of the audit log", body = AuditPage)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let before = query::cursor("cursor", params.cursor.as_deref(), query::sequence)?;
    let limit = query::limit(params.limit)?;
    let rows = state.store.list_audit(&tenant, before, limit).await?;
    let next_cursor = next_cursor(&rows, limit, |r| r.id.to_string());
    let entries = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: DateTime::from_timestamp_millis(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            detail: r.detail,
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}
