//! The pace of each CA account (`api.rate_limits`, shared by the providers on one account),
//! and what the CA's throttling teaches. A call asks to be admitted right before it is sent
//! ([`certgate_core::pace`]): nothing is reserved ahead, so an operation that comes back late
//! loses nothing. One that must wait is told when to come back, by its place among the
//! account's waiting operations, and holds no worker meanwhile.
//!
//! On SQLite (one gateway) the record of sends is kept here; on Postgres it lives in the
//! database, so every gateway sharing it shares each account's pace.
//!
//! When the CA throttles anyway (the key is shared with another system, or the real limit is
//! lower than declared), the account slows down: its `Retry-After` pauses every call; the
//! spell turns the account to probing, one call at a time and each further apart, until the
//! CA accepts one; and a learnt limit per second (AIMD) joins the declared windows: at the
//! first throttle, half the calls of the last second; halved again at each new spell of
//! throttling, it grows back by about one call per second's worth of accepted answers.

use certgate_core::config::RateLimit;
use certgate_core::pace::{self, Admit, Window};
use certgate_store::Store;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest a worker sleeps for the pace itself; longer waits are rescheduled.
pub const MAX_HOLD: Duration = Duration::from_millis(500);
/// How much earlier than its turn a rescheduled operation comes back, to wait the rest in its
/// worker and go at the exact instant (a late call shifts the account's windows).
pub const PACE_LEAD: Duration = Duration::from_millis(300);

/// The first delay between probes in a throttling spell, its growth, and the largest.
const PROBE_START_MS: i64 = 250;
const PROBE_GROWTH: f64 = 1.5;
const PROBE_MAX_MS: i64 = 30_000;
/// How long after it went a probe may stay unanswered before another goes (its operation may
/// never have sent it: a lost lease, a shutdown).
const PROBE_TIMEOUT_MS: i64 = 5_000;
/// The window an account without declared limits learns from throttling.
const LEARNT_SPAN_MS: i64 = 1_000;
/// An operation's place in line is forgotten this long after its last call.
const PLACE_TIMEOUT_MS: i64 = 600_000;
/// A waiting operation that has not asked again this long after its time is forgotten (another
/// gateway may have taken it over): it no longer counts ahead of the others.
const WAITER_TIMEOUT_MS: i64 = 1_000;

/// Whether a call may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go now: the calls are recorded as sent at this instant (milliseconds).
    Now(i64),
    /// Ask again after this wait.
    Later(Duration),
}

/// An operation waiting for the pace: its place in line and when it was told to come back.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    seq: u64,
    since: i64,
    wake: i64,
}

/// A spell of throttling: probing until the CA accepts a call again.
#[derive(Debug)]
struct Spell {
    delay: i64,
    /// When the last probe went, while it is unanswered.
    probe: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    /// Calls sent, oldest first (on SQLite; Postgres keeps them for every gateway).
    sends: VecDeque<i64>,
    /// Calls per second learnt from throttling, if the CA throttled.
    learnt: Option<f64>,
    paused_until: i64,
    spell: Option<Spell>,
    waiters: BTreeMap<String, Waiter>,
    /// Each operation's place in line, from its first call: its later calls keep it, so an
    /// operation's second call goes before other operations' first ones.
    places: HashMap<String, (u64, i64)>,
    next_seq: u64,
    sent: u64,
    throttled: u64,
}

/// One CA account's pace.
#[derive(Debug)]
struct Account {
    /// A readable name: the providers on the account (`digicert+geotrust`).
    name: String,
    /// Its key in the shared store.
    key: String,
    declared: Vec<Window>,
    state: Mutex<State>,
    /// Held while this gateway asks the shared store: one of its connections at a time waits
    /// on the account's row, the others stay free for the rest of the work.
    asking: tokio::sync::Mutex<()>,
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

impl Account {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The windows in force: the declared ones, and the learnt one.
    fn windows(&self, st: &State) -> Vec<Window> {
        let learnt = st.learnt.map(|limit| Window {
            limit: (limit.floor() as u32).max(1),
            span_ms: LEARNT_SPAN_MS,
        });
        self.declared.iter().copied().chain(learnt).collect()
    }
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
#[derive(Debug, Default)]
pub struct Pacing {
    accounts: Mutex<HashMap<String, Arc<Account>>>,
    /// The store that keeps the sends when gateways share it (Postgres).
    shared: Option<Store>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: i64) -> Duration {
    Duration::from_millis(d.max(0) as u64)
}

impl Pacing {
    /// `shared`: the store whose record of sends every gateway shares (Postgres), if any.
    pub fn new(shared: Option<Store>) -> Self {
        Pacing {
            accounts: Mutex::new(HashMap::new()),
            shared,
        }
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
                    declared: key.limits.iter().map(pace::padded).collect(),
                    state: Mutex::new(State::default()),
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
        let now = now_ms();
        let account = self.account(key);
        let (windows, ahead) = {
            let mut st = account.lock();
            if let Some(earlier) = replacing {
                for _ in 0..n {
                    if let Some(i) = st.sends.iter().rposition(|s| *s == earlier) {
                        st.sends.remove(i);
                        st.sent -= 1;
                    }
                }
            }
            st.waiters.retain(|_, w| w.wake + WAITER_TIMEOUT_MS > now);
            // Back before the time it was told: it waits the rest, without asking the store.
            if let Some(w) = st.waiters.get(op).filter(|w| w.wake > now) {
                return Ok(Admission::Later(ms(w.wake - now)));
            }
            let seq = place(&mut st, op, now);
            let ahead = st
                .waiters
                .values()
                .filter(|w| w.seq < seq && w.wake > now)
                .count() as u32;
            let wait_for = if st.paused_until > now {
                Some(st.paused_until)
            } else {
                match &st.spell {
                    Some(Spell {
                        probe: Some(p),
                        delay,
                    }) if p + PROBE_TIMEOUT_MS > now => Some(now + delay),
                    _ => None,
                }
            };
            if let Some(wake) = wait_for {
                wait(&mut st, op, seq, now, wake);
                return Ok(Admission::Later(ms(wake - now)));
            }
            let windows = account.windows(&st);
            // This gateway's own calls (the last second's too: throttling may learn a window
            // from them). Alone they decide; with a shared store, a "not yet" from them holds
            // whatever the other gateways sent, and only a "now" is asked of the store.
            pace::prune(&mut st.sends, &windows, now - LEARNT_SPAN_MS);
            let decision = pace::admit(st.sends.make_contiguous(), &windows, n, ahead, now);
            // With no limit declared or learnt there is nothing to share. An earlier admission
            // being replaced is always given back to the store, even when this gateway's own
            // sends already say "not yet": left there, it would hold a slot nobody uses.
            let give_back = replacing.is_some();
            if self.shared.is_none() || windows.is_empty() || (decision != Admit::Now && !give_back)
            {
                return Ok(settle(&mut st, op, seq, n, now, decision));
            }
            (windows, ahead)
        };
        let store = self.shared.as_ref().expect("checked above");
        let (db_now, decision) = {
            let _one_at_a_time = account.asking.lock().await;
            store
                .pace_admit(&account.key, &windows, n, ahead, replacing)
                .await?
        };
        let mut st = account.lock();
        let seq = place(&mut st, op, db_now);
        Ok(settle(&mut st, op, seq, n, db_now, decision))
    }

    /// The CA throttled a call on `key`'s account: the account slows down. Returns how long
    /// until the call may be tried again.
    pub fn throttled(&self, key: &PaceKey, retry_after: Option<Duration>) -> Duration {
        let account = self.account(key);
        let now = now_ms();
        let mut st = account.lock();
        st.throttled += 1;
        match &mut st.spell {
            None => {
                // A new spell: halve the learnt limit, or learn it from the last second.
                let recent = st
                    .sends
                    .iter()
                    .filter(|s| **s > now - LEARNT_SPAN_MS)
                    .count() as f64;
                let limit = st.learnt.unwrap_or(recent.max(1.0));
                st.learnt = Some((limit / 2.0).max(1.0));
                st.spell = Some(Spell {
                    delay: PROBE_START_MS,
                    probe: None,
                });
            }
            Some(spell) => {
                // The probe was throttled too: the next one waits longer.
                if spell.probe.take().is_some() {
                    spell.delay = ((spell.delay as f64 * PROBE_GROWTH) as i64).min(PROBE_MAX_MS);
                }
            }
        }
        let delay = st.spell.as_ref().map_or(PROBE_START_MS, |s| s.delay);
        let pause = retry_after.map_or(delay, |r| r.as_millis() as i64);
        st.paused_until = st.paused_until.max(now + pause);
        ms(st.paused_until - now)
    }

    /// The CA answered a call on `key`'s account without throttling: a spell ends, and the
    /// learnt limit grows by one call per limit's worth of accepted answers.
    pub fn answered(&self, key: &PaceKey) {
        let account = self.account(key);
        let mut st = account.lock();
        st.spell = None;
        if let Some(limit) = &mut st.learnt {
            *limit += 1.0 / *limit;
        }
    }

    /// The accounts' figures for `/metrics`.
    pub fn stats(&self) -> Vec<AccountStats> {
        let now = now_ms();
        let mut seen = std::collections::BTreeMap::new();
        let accounts: Vec<Arc<Account>> = self
            .accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for account in &accounts {
            let st = account.lock();
            let oldest = st.waiters.values().map(|w| w.since).min().unwrap_or(now);
            seen.insert(
                account.name.clone(),
                AccountStats {
                    account: account.name.clone(),
                    sent: st.sent,
                    throttled: st.throttled,
                    learnt: st.learnt,
                    waiting: st.waiters.len(),
                    oldest_wait: ms(now - oldest),
                },
            );
        }
        seen.into_values().collect()
    }
}

/// `op`'s place in line: the one it has, or a new one at the back.
fn place(st: &mut State, op: &str, now: i64) -> u64 {
    if st.places.len() > 10_000 {
        st.places
            .retain(|_, (_, seen)| *seen + PLACE_TIMEOUT_MS > now);
    }
    let next = st.next_seq + 1;
    let (seq, seen) = st.places.entry(op.to_owned()).or_insert((next, now));
    *seen = now;
    let seq = *seq;
    st.next_seq = st.next_seq.max(seq);
    seq
}

/// `op` waits until `wake`.
fn wait(st: &mut State, op: &str, seq: u64, now: i64, wake: i64) {
    let since = st.waiters.get(op).map_or(now, |w| w.since);
    st.waiters
        .insert(op.to_owned(), Waiter { seq, since, wake });
}

/// Records the decision for `op`'s `n` calls at `now`.
fn settle(st: &mut State, op: &str, seq: u64, n: u32, now: i64, decision: Admit) -> Admission {
    match decision {
        Admit::Now => {
            st.waiters.remove(op);
            st.sent += u64::from(n);
            for _ in 0..n {
                st.sends.push_back(now);
            }
            if let Some(spell) = &mut st.spell {
                spell.probe = Some(now);
            }
            Admission::Now(now)
        }
        Admit::At(at) => {
            wait(st, op, seq, now, at);
            Admission::Later(ms(at - now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, limits: &[(u32, u64)]) -> PaceKey {
        PaceKey {
            id: id.into(),
            name: "a+b".into(),
            limits: limits
                .iter()
                .map(|(requests, per_ms)| RateLimit {
                    requests: *requests,
                    per_ms: *per_ms,
                })
                .collect(),
        }
    }

    fn pacing(limits: &[(u32, u64)]) -> (Pacing, PaceKey) {
        (Pacing::new(None), key("acct", limits))
    }

    async fn admit(p: &(Pacing, PaceKey), op: &str) -> Admission {
        p.0.admit(op, &p.1, 1, None).await.unwrap()
    }

    fn now(a: Admission) -> bool {
        matches!(a, Admission::Now(_))
    }

    fn later(a: Admission) -> Duration {
        match a {
            Admission::Later(d) => d,
            Admission::Now(_) => panic!("admitted"),
        }
    }

    #[tokio::test]
    async fn calls_go_at_the_limit_and_the_waiting_are_told_their_turn() {
        let p = pacing(&[(2, 60_000)]);
        assert!(now(admit(&p, "op1").await));
        // Every provider on the account shares its pace (the key is the account's).
        let same = PaceKey {
            name: "another name".into(),
            ..p.1.clone()
        };
        assert!(matches!(
            p.0.admit("op2", &same, 1, None).await.unwrap(),
            Admission::Now(_)
        ));
        let first = later(admit(&p, "op3").await);
        let second = later(admit(&p, "op4").await);
        let third = later(admit(&p, "op5").await);
        assert!(first > Duration::from_secs(60), "{first:?}");
        // op4 waits behind op3 in the same window; op5 a window later.
        assert!(
            second.abs_diff(first) < Duration::from_millis(50),
            "{first:?} {second:?}"
        );
        assert!(third > first + Duration::from_secs(59), "{third:?}");
        let stats = &p.0.stats()[0];
        assert_eq!(stats.account, "a+b");
        assert_eq!((stats.sent, stats.waiting), (2, 3));
        // Another account (another tenant's key) has its own pace.
        let other = key("tenant-acct", &[(2, 60_000)]);
        assert!(matches!(
            p.0.admit("x", &other, 1, None).await.unwrap(),
            Admission::Now(_)
        ));
    }

    #[tokio::test]
    async fn throttling_pauses_probes_learns_a_limit_and_recovers() {
        let p = pacing(&[(100, 1_000)]);
        for i in 0..8 {
            assert!(now(admit(&p, &format!("burst{i}")).await));
        }
        // Retry-After pauses every call of the account.
        let wait = p.0.throttled(&p.1, Some(Duration::from_millis(300)));
        assert!(wait > Duration::from_millis(250) && wait <= Duration::from_millis(300));
        assert!(later(admit(&p, "op2").await) > Duration::from_millis(200));
        // Half the last second's calls: 4 a second.
        assert_eq!(p.0.stats()[0].learnt, Some(4.0));
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // One probe goes; the others wait for its answer.
        assert!(now(admit(&p, "op2").await));
        later(admit(&p, "op3").await);
        // The probe is throttled too: the spell goes on, the limit is not halved again.
        p.0.throttled(&p.1, None);
        assert_eq!(p.0.stats()[0].learnt, Some(4.0));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(now(admit(&p, "op3").await));
        p.0.answered(&p.1);
        // The spell is over: calls go again within the learnt limit, which grows back.
        assert!(now(admit(&p, "op4").await));
        for _ in 0..4 {
            p.0.answered(&p.1);
        }
        let grown = p.0.stats()[0].learnt.unwrap();
        assert!(grown > 5.0 && grown < 5.2, "{grown}");
        assert_eq!(p.0.stats()[0].throttled, 2);
    }

    #[tokio::test]
    async fn an_account_without_limits_learns_one_from_throttling() {
        let p = pacing(&[]);
        for i in 0..3 {
            assert!(now(admit(&p, &format!("op{i}")).await));
        }
        assert_eq!(p.0.throttled(&p.1, Some(Duration::ZERO)), Duration::ZERO);
        // Learnt: 3 calls in the last second, halved: the next call waits for the second to
        // pass.
        assert!(later(admit(&p, "next").await) > Duration::from_millis(900));
    }
}
