//! `POST /v1/quotes`: what would happen (no side effects).

use crate::body::JsonBody;
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use certgate_core::order::{instant, Order};
use certgate_core::quote::{Intent, Quote};
use certgate_core::registry::unknown_provider;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The body of a quote request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// A provider's name from `GET /v1/providers`.
    pub provider: String,
    pub intent: Intent,
    pub order: Order,
    /// The instant to quote at; now when absent or null.
    #[serde(default, with = "instant::option")]
    pub as_of: Option<DateTime<Utc>>,
}

/// What would happen if the intent were carried out now: allowed or not, the steps, the
/// refund, the deadline, and the rules that decided it. No side effects.
#[utoipa::path(
    post,
    path = "/v1/quotes",
    tag = "quotes",
    request_body = QuoteRequest,
    responses(
        (status = 200, description = "The quote", body = Quote),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<QuoteRequest>,
) -> Result<Json<Quote>, ApiError> {
    let live = state.live();
    let entry = live.registry.get(&req.provider).ok_or_else(|| {
        ApiError::UnknownProvider(unknown_provider(&live.registry, &req.provider))
    })?;
    let as_of = req.as_of.unwrap_or_else(state.clock);
    let quote = entry.quote(&req.order, req.intent, as_of)?;
    state.metrics.quote(&quote.provider, quote.decision.allowed);
    Ok(Json(quote))
}
