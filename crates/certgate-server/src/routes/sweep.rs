//! `POST /v1/sweep`: of the orders given, those whose refund deadline falls within
//! `within_days`, soonest first, each with its quote.

use crate::body::RawBody;
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use certgate_core::order::instant;
use certgate_core::registry::QuoteError;
use certgate_core::sweep::{self, SweepHit, SweepItem};
use certgate_core::InvalidInput;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most days a sweep may look ahead (ten years).
const MAX_DAYS: u32 = 3_650;

/// The body of `POST /v1/sweep`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    pub orders: Vec<SweepItem>,
    #[schema(schema_with = within_days)]
    #[serde(with = "crate::body::whole_number")]
    pub within_days: u32,
    /// The instant to sweep at; now when absent or null.
    #[serde(default, with = "instant::option")]
    pub as_of: Option<DateTime<Utc>>,
}

fn within_days() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0))
        .maximum(Some(MAX_DAYS))
        .description(Some("How many days ahead to look"))
}

/// The orders whose refund deadline is near, soonest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SweepResult {
    #[serde(with = "instant")]
    as_of: DateTime<Utc>,
    within_days: u32,
    /// How many orders were looked at.
    swept: usize,
    orders: Vec<SweepHit>,
}

/// Of the orders given, those whose refund deadline falls within `within_days`, soonest
/// first, each with its quote. The body is read and quoted on the blocking pool, never on the
/// threads that serve other requests and drive the executor; the answer is streamed. At most
/// `[server] sweeps_per_tenant` run at once per tenant: beyond, a 429 before the body is read.
#[utoipa::path(post, path = "/v1/sweep", tag = "sweep", request_body = SweepRequest,
    responses(
        (status = 200, description = "The orders whose window closes soon", body = SweepResult),
        (status = 404, description = "An order names no known provider", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant already runs `[server] sweeps_per_tenant` sweeps: see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    slot: SweepSlot,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    let live = state.live();
    let now = (state.clock)();
    let (head, hits) = tokio::task::spawn_blocking(move || sweep(&live.registry, &bytes, now))
        .await
        .map_err(|e| ApiError::Internal(format!("the sweep failed: {e}")))??;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    // The answer too must be out by the sweep's timeout: a client that reads it slowly
    // holds the slot, the thread and the hits no longer.
    let deadline = std::time::Instant::now() + state.server.sweep_timeout();
    tokio::task::spawn_blocking(move || {
        // The slot is held until the answer is out.
        let _slot = slot;
        stream(&head, &hits, &tx, deadline);
    });
    let mut response =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Reads the body and quotes every order: the answer's head and its hits, soonest first.
fn sweep(
    registry: &certgate_core::Registry,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<(SweepResult, Vec<SweepHit>), ApiError> {
    let req: SweepRequest = crate::body::parse_object(bytes)?;
    if req.within_days > MAX_DAYS {
        return Err(InvalidInput::one("within_days", format!("must be at most {MAX_DAYS}")).into());
    }
    let as_of = req.as_of.unwrap_or(now);
    let mut hits = Vec::new();
    for (i, item) in req.orders.iter().enumerate() {
        match sweep::check(registry, item, as_of, req.within_days) {
            Ok(hit) => hits.extend(hit),
            Err(QuoteError::UnknownProvider(message)) => {
                return Err(ApiError::UnknownProvider(format!(
                    "orders[{i}].provider: {message}"
                )))
            }
            Err(QuoteError::Invalid(e)) => return Err(e.under(&format!("orders[{i}]")).into()),
        }
    }
    sweep::sort(&mut hits);
    let head = SweepResult {
        as_of,
        within_days: req.within_days,
        swept: req.orders.len(),
        orders: Vec::new(),
    };
    Ok((head, hits))
}

/// Writes `head` with `hits` as its `orders`, in chunks of about [`CHUNK`] bytes, to `tx`
/// (waiting while the client reads; stopping if it went away or `deadline` passed).
fn stream(
    head: &SweepResult,
    hits: &[SweepHit],
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    deadline: std::time::Instant,
) {
    let head = serde_json::to_string(head).expect("a sweep's head serializes");
    // `{..., "orders":[]}` opened at its list.
    let open = head
        .strip_suffix("]}")
        .expect("the head ends with its empty list of orders");
    let mut buf = open.as_bytes().to_vec();
    for (i, hit) in hits.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut buf, hit).expect("a hit serializes");
        if buf.len() >= CHUNK {
            if std::time::Instant::now() > deadline {
                tracing::warn!("a sweep's answer was not read by its timeout: cut short");
                let _ = tx.blocking_send(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the sweep's answer was not read within sweep_timeout_ms",
                )));
                return;
            }
            if tx
                .blocking_send(Ok(std::mem::take(&mut buf).into()))
                .is_err()
            {
                return;
            }
        }
    }
    buf.extend_from_slice(b"]}");
    let _ = tx.blocking_send(Ok(buf.into()));
}

/// The size of one piece of a streamed answer.
const CHUNK: usize = 256 * 1024;

/// A sweep slot of the caller's tenant, taken before the body is read.
pub struct SweepSlot {
    _held: crate::server::Slot,
}

impl axum::extract::FromRequestParts<AppState> for SweepSlot {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let tenant = parts
            .extensions
            .get::<certgate_core::TenantId>()
            .ok_or(ApiError::Unauthorized("the API key is not valid"))?;
        let cap = state.server.sweeps_per_tenant;
        crate::server::TenantSlots::take(state, tenant, cap)
            .map(|held| SweepSlot { _held: held })
            .ok_or_else(|| ApiError::TooManyRequests {
                message: format!(
                    "this tenant already runs {cap} sweeps: try again when one has answered"
                ),
                retry_after: std::time::Duration::from_secs(5),
            })
    }
}
