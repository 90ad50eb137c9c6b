//! The driver of each CA account's pace (`api.rate_limits`, shared by the providers on one
//! account): the decisions are in [`certgate_core::pace`], fed the clock; this side reads the
//! clock (one, given at construction: the engine's), keeps each account's [`Pace`] behind a
//! lock, and asks the shared store. A call asks to be admitted right before it is sent:
//! nothing is reserved ahead, so an operation that comes back late loses nothing. One that
//! must wait is told when to come back, by its place among the account's waiting operations,
//! and holds no worker meanwhile (the executor sleeps a short wait, reschedules a long one).
//!
//! On SQLite (one gateway) the record of sends is kept in memory; on Postgres it lives in the
//! database, so every gateway sharing it shares each account's pace (and the database's clock
//! dates the calls it admits). When the CA throttles anyway, the account slows down
//! ([`certgate_core::pace::learning`]).

use crate::Clock;
use certgate_core::config::RateLimit;
use certgate_core::pace::{Pace, Step};
use certgate_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use certgate_core::pace::Admission;

/// The longest a worker sleeps for the pace itself; longer waits are rescheduled.
pub const MAX_HOLD: Duration = Duration::from_millis(500);
/// How much earlier than its turn a rescheduled operation comes back, to wait the rest in its
/// worker and go at the exact instant (a late call shifts the account's windows).
pub const PACE_LEAD: Duration = Duration::from_millis(300);

/// One CA account's pace.
#[derive(Debug)]
struct Account {
    /// A readable name: the providers on the account (`digicert+geotrust`).
    name: String,
    /// Its key in the shared store.
    key: String,
    pace: Mutex<Pace>,
    /// Held while this gateway asks the shared store: one of its connections at a time waits
    /// on the account's row, the others stay free for the rest of the work.
    asking: tokio::sync::Mutex<()>,
}

impl Account {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `/metrics` shows of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountStats {
    pub account: String,
    pub sent: u64,
    pub throttled: u64,
    /// The calls per second learnt from throttling (none: the declared limits hold).
    pub learnt: Option<f64>,
    pub waiting: usize,
    pub oldest_wait: Duration,
}

/// A CA account as its pace knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceKey {
    /// What identifies the account (its client, base URL and credentials' variables), here
    /// and in the shared store.
    pub id: String,
    /// A readable name for metrics: the providers on it (`digicert+geotrust`), after the
    /// tenant for a tenant's own account (`acme:digicert`).
    pub name: String,
    /// The CA's limits for this account, as declared (`api.rate_limits`).
    pub limits: Vec<RateLimit>,
}

/// Every account's pace, by account; one is made at its first call. A reloaded config keeps
/// the paces of the accounts it still has.
#[derive(Debug)]
pub struct Pacing {
    accounts: Mutex<HashMap<String, Arc<Account>>>,
    /// The store that keeps the sends when gateways share it (Postgres).
    shared: Option<Store>,
    /// The only clock the paces are read from.
    clock: Clock,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::new(None)
    }
}

impl Pacing {
    /// `shared`: the store whose record of sends every gateway shares (Postgres), if any. On
    /// the wall clock.
    pub fn new(shared: Option<Store>) -> Self {
        Pacing::with_clock(shared, chrono::Utc::now)
    }

    /// [`Pacing::new`] on `clock`.
    pub fn with_clock(shared: Option<Store>, clock: Clock) -> Self {
        Pacing {
            accounts: Mutex::new(HashMap::new()),
            shared,
            clock,
        }
    }

    fn now_ms(&self) -> i64 {
        (self.clock)().timestamp_millis()
    }

    /// Makes the pace of `key`'s account if it has none yet (so that `/metrics` shows every
    /// configured account from the start).
    pub fn register(&self, key: &PaceKey) {
        self.account(key);
    }

    /// The pace of `key`'s account.
    fn account(&self, key: &PaceKey) -> Arc<Account> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .entry(key.id.clone())
            .or_insert_with(|| {
                Arc::new(Account {
                    name: key.name.clone(),
                    key: key.id.clone(),
                    pace: Mutex::new(Pace::new(&key.limits)),
                    asking: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// May `op` send `n` calls to the CA account of `key` now? `replacing`: the instant of an
    /// earlier admission of these calls that was not used in time (they are recorded anew).
    pub async fn admit(
        &self,
        op: &str,
        key: &PaceKey,
        n: u32,
        replacing: Option<i64>,
    ) -> Result<Admission, certgate_store::StoreError> {
        let now = self.now_ms();
        let account = self.account(key);
        let step = account
            .lock()
            .admit(op, n, replacing, self.shared.is_some(), now);
        let (windows, ahead) = match step {
            Step::Decided(admission) => return Ok(admission),
            Step::Ask { windows, ahead } => (windows, ahead),
        };
        let store = self
            .shared
            .as_ref()
            .expect("asked only with a shared store");
        let (db_now, decision) = {
            let _one_at_a_time = account.asking.lock().await;
            store
                .pace_admit(&account.key, &windows, n, ahead, replacing)
                .await?
        };
        let mut pace = account.lock();
        Ok(pace.asked(op, n, db_now, decision))
    }

    /// The CA throttled a call on `key`'s account: the account slows down. Returns how long
    /// until the call may be tried again.
    pub fn throttled(&self, key: &PaceKey, retry_after: Option<Duration>) -> Duration {
        let account = self.account(key);
        let now = self.now_ms();
        let mut pace = account.lock();
        pace.throttled(retry_after, now)
    }

    /// The CA answered a call on `key`'s account without throttling: a spell ends, and the
    /// learnt limit grows back.
    pub fn answered(&self, key: &PaceKey) {
        self.account(key).lock().answered();
    }

    /// The accounts' figures for `/metrics`.
    pub fn stats(&self) -> Vec<AccountStats> {
        let now = self.now_ms();
        let mut seen = std::collections::BTreeMap::new();
        let accounts: Vec<Arc<Account>> = self
            .accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for account in &accounts {
            let stats = account.lock().stats(now);
            seen.insert(
                account.name.clone(),
                AccountStats {
                    account: account.name.clone(),
                    sent: stats.sent,
                    throttled: stats.throttled,
                    learnt: stats.learnt,
                    waiting: stats.waiting,
                    oldest_wait: stats.oldest_wait,
                },
            );
        }
        seen.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    //! The driver's wiring only: its clock, its accounts, the shared store (the decisions are
    //! tested in `certgate_core::pace`).

    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// This file's clock, moved by hand.
    static NOW: AtomicI64 = AtomicI64::new(1_700_000_000_000);

    fn clock() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(NOW.load(Ordering::SeqCst)).unwrap()
    }

    fn key(id: &str, name: &str, limits: &[(u32, u64)]) -> PaceKey {
        PaceKey {
            id: id.into(),
            name: name.into(),
            limits: limits
                .iter()
                .map(|(requests, per_ms)| RateLimit {
                    requests: *requests,
                    per_ms: *per_ms,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn each_account_is_paced_on_the_clock_given() {
        let p = Pacing::with_clock(None, clock);
        let t = NOW.load(Ordering::SeqCst);
        let acct = key("acct", "a+b", &[(1, 1_000)]);
        assert_eq!(
            p.admit("a", &acct, 1, None).await.unwrap(),
            Admission::Now(t)
        );
        // Every provider on the account shares its pace (the key is the account's)...
        let same = PaceKey {
            name: "another name".into(),
            ..acct.clone()
        };
        let wait = Duration::from_millis(1_050);
        assert_eq!(
            p.admit("b", &same, 1, None).await.unwrap(),
            Admission::Later(wait)
        );
        // ...another account (another tenant's key) has its own.
        let other = key("tenant-acct", "acme:a", &[(1, 1_000)]);
        assert_eq!(
            p.admit("c", &other, 1, None).await.unwrap(),
            Admission::Now(t)
        );
        NOW.fetch_add(500, Ordering::SeqCst);
        let stats = p.stats();
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].account.as_str(), stats[0].sent), ("a+b", 1));
        assert_eq!(stats[0].oldest_wait, Duration::from_millis(500));
        NOW.fetch_add(550, Ordering::SeqCst);
        assert_eq!(
            p.admit("b", &acct, 1, None).await.unwrap(),
            Admission::Now(t + 1_050)
        );
        assert_eq!(p.throttled(&acct, None), Duration::from_millis(250));
        p.answered(&acct);
        let stats = &p.stats()[0];
        assert_eq!((stats.throttled, stats.learnt), (1, Some(2.0)));
    }

    #[tokio::test]
    async fn gateways_sharing_a_store_share_the_pace() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let one = Pacing::new(Some(store.clone()));
        let two = Pacing::new(Some(store));
        let acct = key("acct", "a+b", &[(1, 60_000)]);
        assert!(matches!(
            one.admit("a", &acct, 1, None).await.unwrap(),
            Admission::Now(_)
        ));
        // The other gateway's own sends would let the call go; the store holds it.
        match two.admit("b", &acct, 1, None).await.unwrap() {
            Admission::Later(wait) => assert!(wait > Duration::from_secs(60), "{wait:?}"),
            Admission::Now(_) => panic!("admitted"),
        }
        assert_eq!(two.stats()[0].waiting, 1);
    }
}
