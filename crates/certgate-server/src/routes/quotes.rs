//! `POST /v1/quotes`: what would happen (no side effects).

use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use certgate_core::order::{instant, Order};
use certgate_core::quote::{Intent, Quote};
use certgate_core::registry::unknown_provider;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The body of a quote request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub provider: String,
    pub intent: Intent,
    pub order: Order,
    #[serde(default, with = "instant::option")]
    pub as_of: Option<DateTime<Utc>>,
}

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
