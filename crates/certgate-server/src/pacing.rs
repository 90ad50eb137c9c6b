//! The executor's pacing of calls to each CA account (`api.rate_limits`, and what the CA's
//! throttling teaches): an operation whose next request must wait long for the account's pace
//! gives its worker back and comes back at its reserved instant, so other providers'
//! operations are never held up behind it.

use certgate_core::Registry;
use certgate_http::pacer::{Grant, Pacer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a worker sleeps for the pace itself; longer waits are rescheduled.
pub const MAX_HOLD: Duration = Duration::from_millis(200);

/// How late after its reserved instant a request may still go out on that reservation.
const LATE: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
pub struct Pacing {
    by_provider: HashMap<String, Arc<Pacer>>,
    /// Instants reserved for operations that were sent away to wait for them.
    reserved: Mutex<HashMap<String, Instant>>,
}

impl Pacing {
    /// One pacer per CA account, shared by the providers using it: its declared rate limits,
    /// if any, and the pauses its throttling asks for.
    pub fn new(registry: &Registry) -> Self {
        let mut accounts: HashMap<String, Arc<Pacer>> = HashMap::new();
        let mut by_provider = HashMap::new();
        for entry in registry.iter().filter(|e| e.client.is_some()) {
            let Some(api) = entry.api.as_ref() else {
                continue;
            };
            let pacer = accounts
                .entry(api.account(&entry.kind))
                .or_insert_with(|| Arc::new(Pacer::new(&api.rate_limits)))
                .clone();
            by_provider.insert(entry.name.clone(), pacer);
        }
        Pacing {
            by_provider,
            reserved: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the pace of `provider`'s account for `n` requests of operation `op`:
    /// `Ok(at)` to send at `at` (through [`Pacing::wait`], right before sending), or
    /// `Err(wait)` when that is too far to hold a worker; the slot then stays reserved for
    /// `op`, which should come back after `wait`.
    pub fn reserve(&self, op: &str, provider: &str, n: u32) -> Result<Option<Instant>, Duration> {
        let Some(pacer) = self.by_provider.get(provider) else {
            return Ok(None);
        };
        let now = Instant::now();
        let held = self
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(op);
        let at = match held {
            // A slot the operation came back too late for is given back and a fresh one taken:
            // a late send could crowd the next window.
            Some(at) if at + LATE >= now => at,
            held => {
                if let Some(late) = held {
                    pacer.unused(late);
                }
                match pacer.reserve(n, now) {
                    Grant::At(wait) => now + wait,
                    // The account is probing a throttling CA: come back later, nothing held.
                    Grant::Probing(wait) => return Err(wait),
                }
            }
        };
        let wait = at.saturating_duration_since(now);
        if wait > MAX_HOLD {
            self.reserved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(op.to_owned(), at);
            return Err(wait);
        }
        Ok(Some(at))
    }

    /// The CA throttled a request of `provider` paced for `slot` (now, if unpaced): the
    /// account slows down. Returns how long until this request may go again.
    pub fn throttled(
        &self,
        provider: &str,
        slot: Option<Instant>,
        retry_after: Option<Duration>,
    ) -> Duration {
        let now = Instant::now();
        match self.by_provider.get(provider) {
            Some(pacer) => pacer
                .throttled(slot.unwrap_or(now), now, retry_after)
                .saturating_duration_since(now),
            None => retry_after.unwrap_or(Duration::from_secs(1)),
        }
    }

    /// The CA answered a request of `provider` without throttling.
    pub fn answered(&self, provider: &str) {
        if let Some(pacer) = self.by_provider.get(provider) {
            pacer.answered();
        }
    }

    /// Sleeps until the reserved instant; if it has already passed by more than a few
    /// milliseconds (the store was slow), takes a fresh slot instead of sending late.
    pub async fn wait(&self, provider: &str, n: u32, at: Option<Instant>) {
        let (Some(mut at), Some(pacer)) = (at, self.by_provider.get(provider)) else {
            return;
        };
        let now = Instant::now();
        if now > at + LATE {
            at = now
                + match pacer.reserve(n, now) {
                    Grant::At(wait) | Grant::Probing(wait) => wait,
                };
        }
        tokio::time::sleep_until(at.into()).await;
    }
}
