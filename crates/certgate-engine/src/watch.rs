//! The watch over watched orders (API.md, "Watched orders"): each order is re-quoted for a
//! refund at its `next_check_at` (at least every `watch.recheck_hours`, and at its notice and
//! deadline), in batches that several gateways share; a check writes the order's window and the
//! `order.refund_window_closing` / `order.refund_window_closed` events in one transaction. The
//! same task asks the refund ledger for overdue refunds ([`crate::ledger`]).

use crate::events::{self, New};
use crate::{Engine, Live};
use certgate_core::event::EventType;
use certgate_core::lifecycle::Planner;
use certgate_core::operation::Status;
use certgate_core::order::{instant, Order};
use certgate_core::quote::{Intent, Quote};
use certgate_core::watch::{self, Notice, Window};
use certgate_core::TenantId;
use certgate_store::ms;
use certgate_store::{Effects, StoreError, WatchedCheck, WatchedRow};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// A watched order as stored, read.
#[derive(Debug, Clone)]
pub struct Watched {
    pub provider: String,
    pub order: Order,
    pub window: Window,
    pub operation_id: Option<String>,
    pub operation_status: Option<Status>,
    pub next_check_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn instant_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Watched {
    pub fn read(row: &WatchedRow) -> Result<Watched, StoreError> {
        let corrupt = |what: &str, e: serde_json::Error| {
            StoreError::Corrupt(format!("watched order {}: {what}: {e}", row.id))
        };
        Ok(Watched {
            provider: row.provider.clone(),
            order: serde_json::from_str(&row.body).map_err(|e| corrupt("order", e))?,
            window: serde_json::from_str(&row.window_state).map_err(|e| corrupt("window", e))?,
            operation_id: row.operation_id.clone(),
            operation_status: row.operation_status,
            next_check_at: instant_of(row.next_check_at),
            created_at: instant_of(row.created_at),
            updated_at: instant_of(row.updated_at),
        })
    }
}

/// What certgate keeps watching of an order (`watch` in API.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchState {
    /// The refund window last quoted, and what was told about it (`closing`, `closed`).
    #[serde(flatten)]
    #[schema(inline)]
    pub window: Window,
    /// The last operation asked for this order, and where it stands.
    pub operation_id: Option<String>,
    pub operation_status: Option<Status>,
    #[serde(with = "instant")]
    pub next_check_at: DateTime<Utc>,
    #[serde(with = "instant")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "instant")]
    pub updated_at: DateTime<Utc>,
}

/// A watched order as `GET /v1/orders/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchedOrder {
    pub provider: String,
    pub order: Order,
    /// Its refund quote as of now; null if its provider is no longer configured or the
    /// order no longer validates against it.
    pub quote: Option<Quote>,
    pub watch: WatchState,
}

impl WatchedOrder {
    /// `w` with `quote`, showing `window`.
    pub fn new(w: &Watched, quote: Option<Quote>, window: Window) -> WatchedOrder {
        WatchedOrder {
            provider: w.provider.clone(),
            order: w.order.clone(),
            quote,
            watch: WatchState {
                window,
                operation_id: w.operation_id.clone(),
                operation_status: w.operation_status,
                next_check_at: w.next_check_at,
                created_at: w.created_at,
                updated_at: w.updated_at,
            },
        }
    }

    /// `w` as it stands, quoted for a refund at `now`.
    pub fn at(live: &Live, w: &Watched, now: DateTime<Utc>) -> WatchedOrder {
        let quote = live
            .registry
            .get(&w.provider)
            .and_then(|e| e.quote(&w.order, Intent::Refund, now).ok());
        WatchedOrder::new(w, quote, w.window.clone())
    }
}

/// Checks watched order `w` of `tenant` at `now`: its new window and next check, and into
/// `fx` the notices it raises. An order whose provider is gone, or that no longer validates,
/// keeps its window and is looked at again after the recheck period.
pub fn check(
    state: &Engine,
    live: &Live,
    tenant: &TenantId,
    w: &Watched,
    now: DateTime<Utc>,
    fx: &mut Effects,
) -> WatchedCheck {
    let settings = state.watch.settings();
    let entry = live.registry.get(&w.provider);
    // Kept as it was, checked again after the recheck period.
    let set_aside = |why: String| {
        tracing::warn!(%tenant, order = %w.order.id, provider = %w.provider, %why,
            "a watched order cannot be quoted");
        watch::Checked {
            window: w.window.clone(),
            notices: Vec::new(),
            next_check: now + chrono::Duration::from_std(settings.recheck).unwrap_or_default(),
        }
    };
    let checked = match entry.map(|e| (e, e.quote(&w.order, Intent::Refund, now))) {
        None => set_aside("its provider is no longer configured".to_owned()),
        Some((_, Err(e))) => set_aside(format!("it no longer validates: {e}")),
        Some((entry, Ok(quote))) => {
            let asked = w.operation_status.is_some_and(watch::asks_refund);
            let checked = watch::check(&w.window, &quote, now, &settings, entry.calendar(), asked);
            for (notice, window) in &checked.notices {
                let kind = match notice {
                    Notice::Closing => EventType::OrderRefundWindowClosing,
                    Notice::Closed => EventType::OrderRefundWindowClosed,
                };
                let view = WatchedOrder::new(w, Some(quote.clone()), window.clone());
                events::push(
                    fx,
                    state,
                    New {
                        tenant,
                        kind,
                        stream: &format!("order:{}", w.order.id),
                        data: json!({ "order": view }),
                        helpdesk: None,
                    },
                    now,
                );
            }
            checked
        }
    };
    WatchedCheck {
        window_state: serde_json::to_string(&checked.window).expect("a window serializes"),
        submit_by: checked.window.submit_by.map(ms),
        deadline: checked.window.deadline.map(ms),
        next_check_at: ms(checked.next_check),
    }
}

/// One pass: every watched order due at its start is checked, `watch.workers` batches at a
/// time. How many were checked.
pub async fn pass(state: &Arc<Engine>) -> Result<usize, StoreError> {
    let now = (state.clock)();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..state.watch.workers.max(1) {
        let state = state.clone();
        workers.spawn(async move {
            let live = state.live();
            let batch = i64::from(state.watch.batch.max(1));
            let mut checked = 0;
            loop {
                let n = state
                    .store
                    .watch_batch(ms(now), batch, |row, fx| match Watched::read(row) {
                        Ok(w) => check(&state, &live, &row.tenant, &w, now, fx),
                        Err(e) => {
                            tracing::error!(error = %e, "a watched order is unreadable: set aside for a day");
                            WatchedCheck {
                                window_state: row.window_state.clone(),
                                submit_by: None,
                                deadline: None,
                                next_check_at: ms(now) + 86_400_000,
                            }
                        }
                    })
                    .await?;
                checked += n;
                if (n as i64) < batch {
                    return Ok::<usize, StoreError>(checked);
                }
            }
        });
    }
    let mut total = 0;
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(checked) => total += checked?,
            // A worker's panic is the watch's: its supervisor counts it, restarts the loop and
            // `/readyz` says so meanwhile.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(StoreError::Corrupt(format!("a watch worker died: {e}"))),
        }
    }
    if total > 0 {
        state.metrics.watch_pass(total, started.elapsed());
        tracing::info!(
            checked = total,
            seconds = started.elapsed().as_secs_f64(),
            "watched orders re-quoted"
        );
    }
    Ok(total)
}

/// Starts the task that runs a pass and the ledger's overdue check every `watch.poll_ms`.
pub fn spawn(state: Arc<Engine>, mut shutdown: signal::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !*shutdown.borrow() {
            if let Err(e) = pass(&state).await {
                tracing::warn!(error = %e, "the pass over watched orders failed; trying again");
            }
            if let Err(e) = crate::ledger::flag_overdue(&state).await {
                tracing::warn!(error = %e, "the overdue check failed; trying again");
            }
            tokio::select! {
                () = tokio::time::sleep(state.watch.poll()) => {}
                _ = shutdown.changed() => {}
            }
        }
    })
}
