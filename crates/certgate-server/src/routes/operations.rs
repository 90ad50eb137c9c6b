//! `POST /v1/operations` (idempotent), `GET /v1/operations/{id}`, `GET /v1/operations`,
//! `POST /v1/operations/{id}/withdraw` and `POST /v1/operations/{id}/retry`.

use super::query::{next_cursor, Params};
use crate::auth::Tenant;
use crate::body::{self, RawBody};
use crate::problem::ApiError;
use crate::service;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use certgate_core::lifecycle::Event;
use certgate_core::operation::{Operation, OperationRequest, Status};
use certgate_core::quote::Procedure;
use certgate_core::registry::unknown_provider;
use certgate_core::InvalidInput;
use certgate_store::{Inserted, OperationFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| InvalidInput::one("Idempotency-Key", "the header is required: a unique key per operation, reused only to retry the same request"))?
        .to_str()
        .map_err(|_| InvalidInput::one("Idempotency-Key", "must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(InvalidInput::one("Idempotency-Key", "must be 1 to 255 characters").into());
    }
    Ok(key.to_owned())
}

/// The operation as JSON, from its stored body.
fn stored(body: &str) -> Result<Value, ApiError> {
    serde_json::from_str(body)
        .map_err(|e| ApiError::Internal(format!("stored operation unreadable: {e}")))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let req: OperationRequest = body::parse_object(&bytes)?;
    certgate_core::validation::note("note", req.note.as_deref())?;
    // The same request is the same JSON, whatever its key order or spacing.
    let canonical: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));

    let live = state.live();
    let entry = live.registry.get(&req.provider).ok_or_else(|| {
        ApiError::UnknownProvider(unknown_provider(&live.registry, &req.provider))
    })?;
    let now = (state.clock)();
    let quote = entry.quote(&req.order, req.intent, req.as_of.unwrap_or(now))?;
    if !quote.decision.allowed {
        let rules: Vec<_> = quote.decision.rules.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::Conflict {
            message: format!(
                "the {} is refused by policy ({})",
                req.intent,
                rules.join(", ")
            ),
            quote: serde_json::to_value(&quote).ok(),
        });
    }
    let automated = quote
        .decision
        .steps
        .iter()
        .any(|s| s.procedure == Procedure::Automated);
    if automated
        && req
            .order
            .supplier_order_id
            .as_deref()
            .is_none_or(str::is_empty)
    {
        return Err(InvalidInput::one(
            "order.supplier_order_id",
            "is required: an automated step finds the order at the CA by its id",
        )
        .into());
    }

    let op = Operation::new(crate::ids::new("op"), req, quote, now);
    match service::insert(&state, &tenant.id, &op, &key, &hash).await? {
        Inserted::New => {
            state.metrics.operation_created(&op.provider);
            state.wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(op)).into_response())
        }
        Inserted::Existing(row) if row.request_hash == hash => {
            Ok((StatusCode::OK, Json(stored(&row.body)?)).into_response())
        }
        Inserted::Existing(row) => Err(ApiError::IdempotencyMismatch {
            operation_id: row.id,
        }),
    }
}

pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .get_operation(&tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation `{id}`")))?;
    Ok(Json(stored(&row.body)?))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw, &["status", "provider", "cursor", "limit"])?;
    let status = params.parsed::<Status>("status")?;
    let limit = params.limit()?;
    let filter = OperationFilter {
        status,
        provider: params.get("provider"),
        before: params.id_cursor("op")?,
        limit,
    };
    let rows = state.store.list_operations(&tenant.id, &filter).await?;
    let next = next_cursor(&rows, limit, |r| r.id.clone());
    let ops = rows
        .iter()
        .map(|r| stored(&r.body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"operations": ops, "next_cursor": next})))
}

/// Withdraws a refund request still under review (ALI-CANCEL-REFUND); 409 once past that.
pub async fn withdraw(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Operation>, ApiError> {
    let op = service::change(&state, &tenant.id, &id, |_| Event::Withdraw).await?;
    Ok(Json(op))
}

/// Runs a failed operation again from the CA's current state (read first); 409 for any other
/// status.
pub async fn retry(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let op = service::change(&state, &tenant.id, &id, |_| Event::Retry).await?;
    Ok((StatusCode::ACCEPTED, Json(op)).into_response())
}
