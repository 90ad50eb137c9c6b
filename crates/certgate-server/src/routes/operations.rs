//! `POST /v1/operations` (idempotent), `GET /v1/operations/{id}`, `GET /v1/operations`,
//! `POST /v1/operations/{id}/withdraw` and `POST /v1/operations/{id}/retry`.

use super::query::{self, next_cursor, Id, QueryParams};
use crate::body::{self, RawBody};
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use certgate_core::lifecycle::Event;
use certgate_core::operation::{Operation, OperationRequest, Status};
use certgate_core::quote::Procedure;
use certgate_core::registry::unknown_provider;
use certgate_core::InvalidInput;
use certgate_core::TenantId;
use certgate_engine::service;
use certgate_store::{Inserted, OperationFilter};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How far `as_of` of an operation may lie from the server's clock, either way.
const AS_OF_SLACK_SECONDS: i64 = 300;

/// The longest an `Idempotency-Key` may be.
const MAX_KEY: usize = 255;
/// Visible ASCII, inner spaces allowed, 1 to [`MAX_KEY`] characters.
const KEY_PATTERN: &str = "^[!-~](?:[ -~]{0,253}[!-~])?$";

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    const FIELD: &str = "Idempotency-Key";
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| InvalidInput::one(FIELD, "missing: send a unique key per operation, and the same key only to retry the same request"))?
        .as_bytes();
    let visible = |b: &u8| b.is_ascii_graphic();
    let valid = (1..=MAX_KEY).contains(&key.len())
        && key.first().is_some_and(visible)
        && key.last().is_some_and(visible)
        && key.iter().all(|b| visible(b) || *b == b' ');
    if !valid {
        return Err(InvalidInput::one(
            FIELD,
            format!("must be 1 to {MAX_KEY} visible ASCII characters (inner spaces allowed)"),
        )
        .into());
    }
    Ok(String::from_utf8_lossy(key).into_owned())
}

/// The `Idempotency-Key` header, read and documented.
#[derive(Debug)]
pub struct IdempotencyKey {
    key: String,
}

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::Required;
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(
                "A unique key per operation; the same key and body again answer the same operation",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(KEY_PATTERN))
                    .min_length(Some(1))
                    .max_length(Some(MAX_KEY)),
            ))
            .build()]
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        idempotency_key(&parts.headers).map(|key| IdempotencyKey { key })
    }
}

/// `value` written with every object's keys sorted, whatever order they came in (and whether
/// or not serde_json keeps insertion order, a feature another crate may turn on).
fn canonical(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The operation as JSON: its stored body as it is, checked to be JSON but not rebuilt.
fn stored(body: String) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(body)
        .map_err(|e| ApiError::Internal(format!("stored operation unreadable: {e}")))
}

/// Starts an operation: its quote must allow it. Idempotent by `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/operations",
    tag = "operations",
    params(IdempotencyKey),
    request_body = OperationRequest,
    responses(
        (status = 202, description = "A new operation, running", body = Operation),
        (status = 200, description = "The operation this key and body started before", body = Operation),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "A field is wrong (named in `errors`): an id of another shape than the CA's, an `as_of` more than 5 minutes from now...", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused by policy (`refused`; the quote says why), or the CA order belongs to another tenant of a shared CA account (`order_owned_elsewhere`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    IdempotencyKey { key }: IdempotencyKey,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    let req: OperationRequest = body::parse_object(&bytes)?;
    certgate_core::validation::note("note", req.note.as_deref())?;
    // The same request is the same JSON, whatever its key order or spacing.
    let parsed: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(canonical(&parsed).as_bytes()));

    let live = state.live();
    let entry = live.registry.get(&req.provider).ok_or_else(|| {
        ApiError::UnknownProvider(unknown_provider(&live.registry, &req.provider))
    })?;
    let now = (state.clock)();
    // An irreversible action is decided on today's rules, not on a date the caller picks.
    if let Some(as_of) = req.as_of {
        if (as_of - now).abs() > chrono::Duration::seconds(AS_OF_SLACK_SECONDS) {
            return Err(InvalidInput::one(
                "as_of",
                format!(
                    "must be within {} minutes of the server's clock ({}): an operation is decided now; quotes take any as_of",
                    AS_OF_SLACK_SECONDS / 60,
                    certgate_core::order::instant::format(&now)
                ),
            )
            .into());
        }
    }
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
    let missing = entry
        .client
        .as_ref()
        .filter(|_| automated)
        .and_then(|c| c.missing_reference(&req.order));
    if let Some(field) = missing {
        return Err(InvalidInput::one(
            format!("order.{field}"),
            "is required: an automated step finds the order at the CA by it",
        )
        .into());
    }
    // The ids an automated step puts in the CA's requests have the CA's shape, or nothing is
    // made of the request.
    let account = live.accounts.get(&tenant, &req.provider);
    if let Some(account) = account.filter(|_| automated && entry.client.is_some()) {
        certgate_core::client::check_ids(account.client.as_ref(), &req.order)?;
    }
    let order = live.shared_order(&tenant, &req.provider, &req.order);

    let asked = service::Asked {
        tenant: &tenant,
        idempotency_key: &key,
        request_hash: &hash,
        now,
    };
    let (op, inserted) = service::create(&state, asked, req, quote, order.as_ref()).await?;
    match inserted {
        Inserted::New => {
            state.metrics.operation_created(op.provider());
            state.wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(op)).into_response())
        }
        Inserted::Existing(row) if row.request_hash == hash => {
            Ok((StatusCode::OK, Json(stored(row.body)?)).into_response())
        }
        Inserted::Existing(row) => Err(ApiError::IdempotencyMismatch {
            operation_id: row.id,
        }),
        Inserted::OwnedElsewhere => Err(ApiError::OrderOwnedElsewhere),
    }
}

/// One operation, as it stands.
#[utoipa::path(get, path = "/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    responses((status = 200, description = "The operation", body = Operation)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<Json<Box<RawValue>>, ApiError> {
    let row = state
        .store
        .get_operation(&tenant, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation `{id}`")))?;
    Ok(Json(stored(row.body)?))
}

/// The parameters of `GET /v1/operations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only operations with this status.
    status: Option<Status>,
    /// Only this provider's operations.
    provider: Option<String>,
    #[param(schema_with = op_cursor)]
    cursor: Option<String>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

fn op_cursor() -> utoipa::openapi::schema::ObjectBuilder {
    crate::ids::cursor_schema("op")
}

/// A page of operations, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperationList {
    #[schema(value_type = Vec<Operation>)]
    operations: Vec<Box<RawValue>>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// The tenant's operations, newest first.
#[utoipa::path(get, path = "/v1/operations", tag = "operations", params(ListParams),
    responses((status = 200, description = "A page of operations", body = OperationList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<OperationList>, ApiError> {
    let limit = query::limit(params.limit)?;
    let filter = OperationFilter {
        status: params.status,
        provider: params.provider.as_deref().filter(|p| !p.is_empty()),
        before: query::id_cursor("cursor", params.cursor.as_deref(), "op")?,
        limit,
    };
    let rows = state.store.list_operations(&tenant, &filter).await?;
    let next_cursor = next_cursor(&rows, limit, |r| r.id.clone());
    let operations = rows
        .into_iter()
        .map(|r| stored(r.body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(OperationList {
        operations,
        next_cursor,
    }))
}

/// Withdraws a refund request still under review (ALI-CANCEL-REFUND); 409 once past that.
#[utoipa::path(post, path = "/v1/operations/{id}/withdraw", tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    responses(
        (status = 200, description = "The operation, withdrawn", body = Operation),
        (status = 409, description = "Past the point of withdrawal", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<Json<Operation>, ApiError> {
    let op = service::change(&state, &tenant, &id, |_| Event::Withdraw).await?;
    Ok(Json(op))
}

/// Runs a failed operation again from the CA's current state (read first); 409 for any other
/// status.
#[utoipa::path(post, path = "/v1/operations/{id}/retry", tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    responses(
        (status = 202, description = "The operation, running again", body = Operation),
        (status = 409, description = "The operation has not failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let op = service::change(&state, &tenant, &id, |_| Event::Retry).await?;
    Ok((StatusCode::ACCEPTED, Json(op)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_json_in_another_key_order_is_the_same_request() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": null}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": null, "y": [1, {"p": 3, "q": 2}]}, "b": 1}"#)
                .unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(
            canonical(&a),
            r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#
        );
        let c: Value =
            serde_json::from_str(r#"{"a": {"y": [{"p": 3, "q": 2}, 1], "x": null}, "b": 1}"#)
                .unwrap();
        assert_ne!(canonical(&a), canonical(&c), "arrays keep their order");
    }

    #[test]
    fn idempotency_keys_agree_with_their_pattern() {
        let pattern = regex::Regex::new(KEY_PATTERN).unwrap();
        let long = "k".repeat(MAX_KEY + 1);
        let longest = "k".repeat(MAX_KEY);
        for key in [
            "a",
            "key 1",
            "op-2026-11-26",
            " a",
            "a ",
            "",
            "a\tb",
            &long,
            &longest,
        ] {
            let mut headers = HeaderMap::new();
            if let Ok(v) = axum::http::HeaderValue::from_str(key) {
                headers.insert("idempotency-key", v);
            }
            let accepted =
                headers.contains_key("idempotency-key") && idempotency_key(&headers).is_ok();
            assert_eq!(accepted, pattern.is_match(key), "{key:?}");
        }
    }
}
