//! The refund ledger's views and clock (API.md, "Refund ledger"): the sums by provider and
//! currency that a finance team reconciles against the CA's statements (the API's summary and
//! `certgate refunds report` both come from [`summary`]), and the check that flags refunds
//! past their `due_by` ([`flag_overdue`]), each through the operation lifecycle.

use crate::service;
use crate::Engine;
use crate::EngineError;
use certgate_core::ledger::{RefundRecord, Totals};
use certgate_core::lifecycle::Event;
use certgate_core::money::Money;
use certgate_core::Currency;
use certgate_core::TenantId;
use certgate_store::ms;
use certgate_store::{RefundRow, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// Records read at a time for the sums.
const PAGE: i64 = 5_000;
/// Overdue refunds flagged per check.
const LATE_BATCH: i64 = 500;

/// One provider's refunds in one currency, summed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderTotals {
    pub provider: String,
    pub currency: Currency,
    /// Every amount promised (a discretionary refund promises none).
    pub expected: String,
    /// What arrived.
    pub credited: String,
    /// Promised by the refunds neither credited nor denied.
    pub outstanding: String,
    /// Refunds past their `due_by`, not credited.
    pub overdue: u64,
    /// Refunds credited with another amount than expected.
    pub mismatched: u64,
}

impl From<Totals> for ProviderTotals {
    fn from(t: Totals) -> Self {
        let text = |amount| Money::new(amount, t.currency).amount_text();
        ProviderTotals {
            expected: text(t.expected),
            credited: text(t.credited),
            outstanding: text(t.outstanding),
            provider: t.provider,
            currency: t.currency,
            overdue: t.overdue,
            mismatched: t.mismatched,
        }
    }
}

/// A stored record, read.
pub fn record(row: &RefundRow) -> Result<RefundRecord, StoreError> {
    serde_json::from_str(&row.body)
        .map_err(|e| StoreError::Corrupt(format!("refund of {}: {e}", row.operation_id)))
}

/// The tenant's ledger summed by provider and currency, in that order.
pub async fn summary(store: &Store, tenant: &TenantId) -> Result<Vec<Totals>, StoreError> {
    let mut sums: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let rows = store.refunds_after(tenant, &after, PAGE).await?;
        for row in &rows {
            let currency: Currency = row.currency.parse().map_err(|e: String| {
                StoreError::Corrupt(format!("refund of {}: {e}", row.operation_id))
            })?;
            sums.entry((row.provider.clone(), row.currency.clone()))
                .or_insert_with(|| Totals::new(row.provider.clone(), currency))
                .add(&record(row)?);
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => after.clone_from(&last.operation_id),
            _ => break,
        }
    }
    Ok(sums.into_values().collect())
}

/// Flags the refunds whose `due_by` passed uncredited (each raises `refund.overdue` once).
pub async fn flag_overdue(state: &Engine) -> Result<usize, EngineError> {
    let now = ms((state.clock)());
    let mut flagged = 0;
    loop {
        let late = state.store.late_refunds(now, LATE_BATCH).await?;
        let mut moved = 0;
        for (tenant, id) in &late {
            match service::change(state, tenant, id, |_| Event::CheckOverdue).await {
                Ok(_) => moved += 1,
                // Credited or denied meanwhile, or flagged by another gateway.
                Err(EngineError::Conflict(_) | EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        flagged += moved;
        if (late.len() as i64) < LATE_BATCH || moved == 0 {
            return Ok(flagged);
        }
    }
}
