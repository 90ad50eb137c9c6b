//! `POST /v1/sweep`: of the orders given, those whose refund deadline falls within
//! `within_days`, soonest first, each with its quote.

use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use certgate_core::order::instant;
use certgate_core::registry::QuoteError;
use certgate_core::sweep::{self, SweepItem};
use certgate_core::InvalidInput;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

/// The most days a sweep may look ahead (ten years).
const MAX_DAYS: u32 = 3_650;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    pub orders: Vec<SweepItem>,
    pub within_days: u32,
    #[serde(default, with = "instant::option")]
    pub as_of: Option<DateTime<Utc>>,
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<SweepRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.within_days > MAX_DAYS {
        return Err(InvalidInput::one("within_days", format!("must be at most {MAX_DAYS}")).into());
    }
    let as_of = req.as_of.unwrap_or_else(state.clock);
    let live = state.live();
    let mut hits = Vec::new();
    for (i, item) in req.orders.iter().enumerate() {
        match sweep::check(&live.registry, item, as_of, req.within_days) {
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
    Ok(Json(json!({
        "as_of": instant::format(&as_of),
        "within_days": req.within_days,
        "swept": req.orders.len(),
        "orders": hits,
    })))
}
