//! `POST /v1/sweep`: of the orders given, those whose refund deadline falls within
//! `within_days`, soonest first, each with its quote.

use crate::body::JsonBody;
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::Json;
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
/// first, each with its quote.
#[utoipa::path(post, path = "/v1/sweep", tag = "sweep", request_body = SweepRequest,
    responses(
        (status = 200, description = "The orders whose window closes soon", body = SweepResult),
        (status = 404, description = "An order names no known provider", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<SweepRequest>,
) -> Result<Json<SweepResult>, ApiError> {
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
    Ok(Json(SweepResult {
        as_of,
        within_days: req.within_days,
        swept: req.orders.len(),
        orders: hits,
    }))
}
