//! One CA account's pace as a state fed the clock (decisions: no clock is read here, nothing
//! waits; the engine's `pacing` passes `now`, sleeps and asks the shared store). It keeps the
//! calls sent (on SQLite; on Postgres the store keeps every gateway's), the operations waiting
//! and their places in line, what throttling taught ([`Learning`]) and the figures for
//! `/metrics`.
//!
//! Instants are milliseconds since the epoch.

use super::learning::{ms, Learning, LEARNT_SPAN_MS};
use super::window::{self, Admit, Window};
use crate::config::RateLimit;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// An operation's place in line is forgotten this long after its last call.
const PLACE_TIMEOUT_MS: i64 = 600_000;
/// A waiting operation that has not asked again this long after its time is forgotten (another
/// gateway may have taken it over): it no longer counts ahead of the others.
const WAITER_TIMEOUT_MS: i64 = 1_000;
/// Places are pruned once there are more than this many.
const PLACES_KEPT: usize = 10_000;

/// Whether a call may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go now: the calls are recorded as sent at this instant (milliseconds).
    Now(i64),
    /// Ask again after this wait.
    Later(Duration),
}

/// What [`Pace::admit`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Decided here.
    Decided(Admission),
    /// Ask the shared store whether the calls may go in these windows, with `ahead` calls
    /// waiting before them; then tell [`Pace::asked`] its answer.
    Ask { windows: Vec<Window>, ahead: u32 },
}

/// An operation waiting for the pace: its place in line and when it was told to come back.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    seq: u64,
    since: i64,
    wake: i64,
}

/// What `/metrics` shows of an account's pace.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceStats {
    pub sent: u64,
    pub throttled: u64,
    /// The calls per second learnt from throttling (none: the declared limits hold).
    pub learnt: Option<f64>,
    pub waiting: usize,
    pub oldest_wait: Duration,
}

/// One CA account's pace.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    /// The declared limits, padded ([`window::padded`]).
    declared: Vec<Window>,
    /// Calls sent, oldest first (on SQLite; Postgres keeps them for every gateway).
    sends: VecDeque<i64>,
    learning: Learning,
    waiters: BTreeMap<String, Waiter>,
    /// Each operation's place in line, from its first call: its later calls keep it, so an
    /// operation's second call goes before other operations' first ones.
    places: HashMap<String, (u64, i64)>,
    next_seq: u64,
    sent: u64,
}

impl Pace {
    /// The pace of an account with these declared limits (`api.rate_limits`).
    pub fn new(limits: &[RateLimit]) -> Self {
        Pace {
            declared: limits.iter().map(window::padded).collect(),
            ..Pace::default()
        }
    }

    /// The windows in force: the declared ones, and the learnt one.
    pub fn windows(&self) -> Vec<Window> {
        self.declared
            .iter()
            .copied()
            .chain(self.learning.window())
            .collect()
    }

    /// What throttling taught.
    pub fn learning(&self) -> &Learning {
        &self.learning
    }

    /// May `op` send `n` calls at `now`? `replacing`: the instant of an earlier admission of
    /// these calls that was not used in time (they are recorded anew). `shared`: a store
    /// shared by gateways keeps the sends; it is asked only when these calls could go by this
    /// gateway's own sends, or when an earlier admission is to be given back to it.
    pub fn admit(
        &mut self,
        op: &str,
        n: u32,
        replacing: Option<i64>,
        shared: bool,
        now: i64,
    ) -> Step {
        if let Some(earlier) = replacing {
            for _ in 0..n {
                if let Some(i) = self.sends.iter().rposition(|s| *s == earlier) {
                    self.sends.remove(i);
                    self.sent -= 1;
                }
            }
        }
        self.waiters.retain(|_, w| w.wake + WAITER_TIMEOUT_MS > now);
        // Back before the time it was told: it waits the rest, without asking the store.
        if let Some(w) = self.waiters.get(op).filter(|w| w.wake > now) {
            return Step::Decided(Admission::Later(ms(w.wake - now)));
        }
        let seq = self.place(op, now);
        let ahead = self
            .waiters
            .values()
            .filter(|w| w.seq < seq && w.wake > now)
            .count() as u32;
        if let Some(wake) = self.learning.hold(now) {
            self.wait(op, seq, now, wake);
            return Step::Decided(Admission::Later(ms(wake - now)));
        }
        let windows = self.windows();
        // This gateway's own calls (the last second's too: throttling may learn a window from
        // them). Alone they decide; with a shared store, a "not yet" from them holds whatever
        // the other gateways sent, and only a "now" is asked of the store.
        window::prune(&mut self.sends, &windows, now - LEARNT_SPAN_MS);
        let decision = window::admit(self.sends.make_contiguous(), &windows, n, ahead, now);
        // With no limit declared or learnt there is nothing to share. An earlier admission
        // being replaced is always given back to the store, even when this gateway's own sends
        // already say "not yet": left there, it would hold a slot nobody uses.
        let give_back = replacing.is_some();
        if !shared || windows.is_empty() || (decision != Admit::Now && !give_back) {
            return Step::Decided(self.settle(op, seq, n, now, decision));
        }
        Step::Ask { windows, ahead }
    }

    /// The shared store's `decision` for `op`'s `n` calls, by its clock (`now`).
    pub fn asked(&mut self, op: &str, n: u32, now: i64, decision: Admit) -> Admission {
        let seq = self.place(op, now);
        self.settle(op, seq, n, now, decision)
    }

    /// The CA throttled a call at `now`: the account slows down. Returns how long until the
    /// call may be tried again.
    pub fn throttled(&mut self, retry_after: Option<Duration>, now: i64) -> Duration {
        let recent = self
            .sends
            .iter()
            .filter(|s| **s > now - LEARNT_SPAN_MS)
            .count();
        self.learning.throttled(recent, retry_after, now)
    }

    /// The CA answered a call without throttling ([`Learning::answered`]).
    pub fn answered(&mut self) {
        self.learning.answered();
    }

    /// The figures for `/metrics` at `now`.
    pub fn stats(&self, now: i64) -> PaceStats {
        let oldest = self.waiters.values().map(|w| w.since).min().unwrap_or(now);
        PaceStats {
            sent: self.sent,
            throttled: self.learning.throttles(),
            learnt: self.learning.learnt(),
            waiting: self.waiters.len(),
            oldest_wait: ms(now - oldest),
        }
    }

    /// `op`'s place in line: the one it has, or a new one at the back.
    fn place(&mut self, op: &str, now: i64) -> u64 {
        if self.places.len() > PLACES_KEPT {
            self.places
                .retain(|_, (_, seen)| *seen + PLACE_TIMEOUT_MS > now);
        }
        let next = self.next_seq + 1;
        let (seq, seen) = self.places.entry(op.to_owned()).or_insert((next, now));
        *seen = now;
        let seq = *seq;
        self.next_seq = self.next_seq.max(seq);
        seq
    }

    /// `op` waits until `wake`.
    fn wait(&mut self, op: &str, seq: u64, now: i64, wake: i64) {
        let since = self.waiters.get(op).map_or(now, |w| w.since);
        self.waiters
            .insert(op.to_owned(), Waiter { seq, since, wake });
    }

    /// Records the decision for `op`'s `n` calls at `now`.
    fn settle(&mut self, op: &str, seq: u64, n: u32, now: i64, decision: Admit) -> Admission {
        match decision {
            Admit::Now => {
                self.waiters.remove(op);
                self.sent += u64::from(n);
                for _ in 0..n {
                    self.sends.push_back(now);
                }
                self.learning.sent(now);
                Admission::Now(now)
            }
            Admit::At(at) => {
                self.wait(op, seq, now, at);
                Admission::Later(ms(at - now))
            }
        }
    }
}
