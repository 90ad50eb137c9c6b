//! `certgate orders assign`: the operator gives CA orders of a shared CA account to a tenant.
//!
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
use certgate_core::TenantId;
use certgate_store::{Assignment, Store, StoreError, WatchedCheck, WatchedWrite};
use chrono::{DateTime, Utc};
use std::io::{BufRead, Read};

/// Orders written per batch.
const BATCH: usize = 1_000;
/// The longest line an import reads (an order is a few hundred bytes).
pub const MAX_LINE: usize = 1 << 20;
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
    tenant: &TenantId,
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
        tenant: tenant.clone(),
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
    tenant: &TenantId,
    input: impl BufRead,
    now: DateTime<Utc>,
    progress: &dyn Fn(u64),
) -> Result<Imported, ImportError> {
    let mut input = input;
    let mut out = Imported::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut bytes)?;
        if n == 0 {
            break;
        }
        out.lines += 1;
        progress(n as u64);
        let parsed = if bytes.len() > MAX_LINE && bytes.last() != Some(&b'\n') {
            // The rest of the line is skipped, never held.
            progress(skip_line(&mut input)?);
            Err(format!("longer than {} KiB", MAX_LINE / 1024))
        } else {
            match std::str::from_utf8(&bytes) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => line(registry, tenant, text.trim_end_matches(['\n', '\r']), now),
                Err(e) => Err(format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1)),
            }
        };
        match parsed {
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

/// Reads past the end of the current line; how many bytes it skipped.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        input.consume(used);
        skipped += used as u64;
        if done {
            return Ok(skipped);
        }
    }
}

/// Gives `orders` (ids at the CA) of `provider`'s shared CA account to `tenant`, audited;
/// each order's previous owner.
pub async fn assign(
    store: &Store,
    registry: &Registry,
    tenant: &TenantId,
    provider: &str,
    orders: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Option<String>>> {
    let accounts = certgate_engine::accounts::Accounts::build(registry, &[])
        .map_err(|issues| certgate_core::config::ConfigError { issues })?;
    let Some(account) = accounts.shared(provider) else {
        let with_api: Vec<&str> = registry
            .iter()
            .filter(|e| e.client.is_some())
            .map(|e| e.name.as_str())
            .collect();
        anyhow::bail!(
            "--provider: `{provider}` has no shared CA account (it is not configured, or not in mode = \"api\"); providers with one: {}",
            with_api.join(", ")
        );
    };
    let field = account.client.reference();
    let shape = account
        .client
        .ids()
        .iter()
        .find(|spec| spec.field == field)
        .map(|spec| spec.shape);
    let mut refs = Vec::with_capacity(orders.len());
    for id in orders {
        if let Some(shape) = shape.filter(|s| !s.accepts(id)) {
            anyhow::bail!(
                "`{id}` is not a {provider} {}: {}",
                field.name(),
                shape.describe()
            );
        }
        refs.push(account.shared_ref(id));
    }
    let ids: Vec<&str> = refs.iter().map(|r| r.order.as_str()).collect();
    let to = Assignment {
        account: &account.service,
        tenant,
        provider,
        now: now.timestamp_millis(),
        actor: "operator",
    };
    Ok(store.assign_orders(&ids, &to).await?)
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the input: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}
