//! The nightly sweep: which orders lose their refund window soon? An order is a hit when a
//! refund is still allowed and its deadline falls within `within_days` after `as_of`; hits
//! sort soonest first.

use crate::order::{instant, Order};
use crate::quote::{Intent, Quote};
use crate::registry::{QuoteError, Registry};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One order to sweep: `{"provider": "...", "order": {...}}` (a JSON line of the CLI's input,
/// an item of `POST /v1/sweep`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepItem {
    pub provider: String,
    pub order: Order,
}

/// An order whose refund deadline is near, with its quote.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SweepHit {
    #[serde(with = "instant")]
    pub deadline: DateTime<Utc>,
    pub provider: String,
    pub order_id: String,
    pub quote: Quote,
}

/// The hit for `item`, if its refund deadline falls in `(as_of, as_of + within_days]`.
pub fn check(
    registry: &Registry,
    item: &SweepItem,
    as_of: DateTime<Utc>,
    within_days: u32,
) -> Result<Option<SweepHit>, QuoteError> {
    let quote = registry.quote(&item.provider, &item.order, Intent::Refund, as_of)?;
    let until = as_of + Duration::days(i64::from(within_days));
    Ok(match quote.decision.deadline {
        Some(deadline) if quote.decision.allowed && deadline <= until => Some(SweepHit {
            deadline,
            provider: item.provider.clone(),
            order_id: item.order.id.clone(),
            quote,
        }),
        _ => None,
    })
}

/// Soonest deadline first; ties by provider and order id, so the output is stable.
pub fn sort(hits: &mut [SweepHit]) {
    hits.sort_by(|a, b| {
        (a.deadline, &a.provider, &a.order_id).cmp(&(b.deadline, &b.provider, &b.order_id))
    });
}
