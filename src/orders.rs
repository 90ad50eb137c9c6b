//! `certgate orders import`: loads a JSON-lines file of orders (`{"provider", "order"}` per
//! line, as `PUT /v1/orders/{id}` takes them) into the tenant's watched orders, a thousand per
//! statement. Each line is checked as the API checks it (a quote for a refund); a bad line is
//! reported with its number and skipped. Imported orders are checked by the gateway's next pass
//! (they are due at once), which tells any window already closing.

use certgate_core::quote::Intent;
use certgate_core::registry::QuoteError;
use certgate_core::sweep::SweepItem;
use certgate_core::watch::Window;
use certgate_core::Registry;
use certgate_store::{Store, StoreError, WatchedCheck, WatchedWrite};
use chrono::{DateTime, Utc};
use std::io::BufRead;

/// Orders written per batch.
const BATCH: usize = 1_000;
/// At most this many bad lines are reported one by one.
pub const SHOWN_ERRORS: usize = 20;

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    pub lines: u64,
    pub imported: u64,
    pub invalid: u64,
    /// The first bad lines: (line number, what is wrong).
    pub errors: Vec<(u64, String)>,
}

/// The watched order a line makes, or what is wrong with it.
fn line(
    registry: &Registry,
    tenant: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<WatchedWrite, String> {
    let item: SweepItem = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let quote = registry
        .quote(&item.provider, &item.order, Intent::Refund, now)
        .map_err(|e| match e {
            QuoteError::UnknownProvider(m) => format!("provider: {m}"),
            QuoteError::Invalid(e) => e.to_string(),
        })?;
    let window = Window {
        deadline: quote.decision.deadline.filter(|_| quote.decision.allowed),
        submit_by: quote.decision.submit_by.filter(|_| quote.decision.allowed),
        notified: Vec::new(),
    };
    let now = now.timestamp_millis();
    Ok(WatchedWrite {
        tenant: tenant.into(),
        id: item.order.id.clone(),
        provider: item.provider,
        body: serde_json::to_string(&item.order).expect("an order serializes"),
        check: WatchedCheck {
            window_state: serde_json::to_string(&window).expect("a window serializes"),
            submit_by: window.submit_by.map(|t| t.timestamp_millis()),
            deadline: window.deadline.map(|t| t.timestamp_millis()),
            next_check_at: now,
        },
        now,
    })
}

/// Imports `input` into `tenant`'s watched orders; `progress` is told how many bytes were
/// read.
pub async fn import(
    store: &Store,
    registry: &Registry,
    tenant: &str,
    input: impl BufRead,
    now: DateTime<Utc>,
    progress: &dyn Fn(u64),
) -> Result<Imported, ImportError> {
    let mut out = Imported::default();
    let mut batch = Vec::with_capacity(BATCH);
    for text in input.lines() {
        let text = text?;
        out.lines += 1;
        progress(text.len() as u64 + 1);
        if text.trim().is_empty() {
            continue;
        }
        match line(registry, tenant, &text, now) {
            Ok(w) => batch.push(w),
            Err(message) => {
                out.invalid += 1;
                if out.errors.len() < SHOWN_ERRORS {
                    out.errors.push((out.lines, message));
                }
            }
        }
        if batch.len() == BATCH {
            store.import_watched(&batch).await?;
            out.imported += batch.len() as u64;
            batch.clear();
        }
    }
    store.import_watched(&batch).await?;
    out.imported += batch.len() as u64;
    Ok(out)
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the input: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}
