//! Pacing for a CA account's rate limits (DigiCert: 100 requests per 5 s and 1000 per 5 min
//! per key). Every request reserves the earliest instant at which each sliding window still has
//! room; a caller that would wait too long gets the wait back instead and can do other work.
//!
//! A CA that throttles anyway (its limit is lower than declared, or another client shares the
//! key) slows the whole account down: its `Retry-After` pauses every request, and each spell
//! of throttling doubles a minimum gap between requests, which every accepted answer narrows
//! again.

use certgate_core::config::RateLimit;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests are spaced as if each window were this much longer, so that network jitter
/// between certgate and the CA cannot squeeze one window's requests into the CA's.
const SAFETY: f64 = 0.03;
const MIN_SAFETY: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Window {
    limit: usize,
    span: Duration,
    /// Instants granted in this window, oldest first (at most `limit`).
    granted: VecDeque<Instant>,
}

/// The first gap between requests after a throttle, and the largest.
const GAP_START: Duration = Duration::from_millis(100);
const GAP_MAX: Duration = Duration::from_secs(10);
/// A gap this small after narrowing is no gap.
const GAP_MIN: Duration = Duration::from_millis(5);

#[derive(Debug)]
struct State {
    windows: Vec<Window>,
    /// No request before this instant (the CA's Retry-After).
    paused_until: Option<Instant>,
    /// The least time between two requests, learnt from throttling.
    gap: Duration,
    /// The last instant granted.
    last: Option<Instant>,
    /// The last instant granted when the gap last widened: a throttled request reserved by then
    /// was paced by the old gap, and its throttle is already counted.
    widened_at: Option<Instant>,
}

/// The pace of one CA account, shared by every provider that uses it.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(limits: &[RateLimit]) -> Self {
        let windows = limits
            .iter()
            .map(|l| {
                let span = Duration::from_millis(l.per_ms);
                let margin = span.mul_f64(SAFETY).max(MIN_SAFETY);
                Window {
                    limit: l.requests.max(1) as usize,
                    span: span + margin,
                    granted: VecDeque::new(),
                }
            })
            .collect();
        Pacer {
            state: Mutex::new(State {
                windows,
                paused_until: None,
                gap: Duration::ZERO,
                last: None,
                widened_at: None,
            }),
        }
    }

    /// The CA throttled a request reserved for `slot`: pause the account for `retry_after`
    /// and, unless the request was paced before the gap last widened, double the gap between
    /// requests. Returns the earliest instant a request may go again.
    pub fn throttled(&self, slot: Instant, now: Instant, retry_after: Option<Duration>) -> Instant {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.widened_at.is_none_or(|w| slot > w) {
            st.gap = if st.gap.is_zero() {
                GAP_START
            } else {
                (st.gap * 2).min(GAP_MAX)
            };
            st.widened_at = Some(st.last.map_or(now, |l| l.max(now)));
        }
        let pause = retry_after.unwrap_or(st.gap);
        let until = st.paused_until.map_or(now + pause, |p| p.max(now + pause));
        st.paused_until = Some(until);
        let next = st.last.map_or(until, |l| until.max(l + st.gap));
        next.max(now)
    }

    /// The CA answered without throttling: the gap narrows by a tenth.
    pub fn answered(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.gap = st.gap.mul_f64(0.9);
        if st.gap < GAP_MIN {
            st.gap = Duration::ZERO;
        }
    }

    /// Reserves `n` requests at the earliest instants the limits allow, if the last of them is
    /// at most `max_wait` after `now`: returns how long to wait before sending. Otherwise
    /// reserves nothing and returns the wait as the error.
    pub fn try_reserve(
        &self,
        n: u32,
        now: Instant,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut slots = Vec::with_capacity(n as usize);
        // Plan the n slots against copies, commit only if they fit.
        let mut plan: Vec<VecDeque<Instant>> =
            st.windows.iter().map(|w| w.granted.clone()).collect();
        let mut at = st.paused_until.map_or(now, |p| p.max(now));
        let mut last = st.last;
        for _ in 0..n {
            if let Some(l) = last {
                at = at.max(l + st.gap);
            }
            for (w, granted) in st.windows.iter().zip(&plan) {
                if granted.len() >= w.limit {
                    at = at.max(granted[granted.len() - w.limit] + w.span);
                }
            }
            for (w, granted) in st.windows.iter().zip(plan.iter_mut()) {
                granted.push_back(at);
                while granted.len() > w.limit {
                    granted.pop_front();
                }
            }
            slots.push(at);
            last = Some(at);
        }
        let wait = slots
            .last()
            .map_or(Duration::ZERO, |last| last.saturating_duration_since(now));
        if wait > max_wait {
            return Err(wait);
        }
        for (w, granted) in st.windows.iter_mut().zip(plan) {
            w.granted = granted;
        }
        st.last = st.last.max(last);
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Vec<RateLimit> {
        vec![
            RateLimit {
                requests: 100,
                per_ms: 5_000,
            },
            RateLimit {
                requests: 1_000,
                per_ms: 300_000,
            },
        ]
    }

    #[test]
    fn a_burst_is_spread_so_no_window_overflows() {
        let p = Pacer::new(&limits());
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..1_000 {
            let wait = p.try_reserve(1, t0, Duration::MAX).unwrap();
            at.push(t0 + wait);
        }
        // The first hundred go at once, the next hundred one (padded) window later...
        assert!(at[..100].iter().all(|t| *t == t0));
        assert!(at[100] >= t0 + Duration::from_millis(5_150));
        // ...and no 5 s window ever holds more than 100.
        for i in 100..at.len() {
            assert!(at[i] - at[i - 100] >= Duration::from_secs(5), "request {i}");
        }
        // The 1001st must wait for the 5-minute window.
        let wait = p.try_reserve(1, t0, Duration::MAX).unwrap();
        assert!(wait >= Duration::from_secs(300), "{wait:?}");
    }

    #[test]
    fn a_caller_that_would_wait_too_long_reserves_nothing() {
        let p = Pacer::new(&[RateLimit {
            requests: 2,
            per_ms: 1_000,
        }]);
        let t0 = Instant::now();
        assert_eq!(p.try_reserve(2, t0, Duration::ZERO), Ok(Duration::ZERO));
        let wait = p.try_reserve(1, t0, Duration::from_millis(10)).unwrap_err();
        assert!(wait >= Duration::from_secs(1));
        // Nothing was reserved by the refused call: the same wait again.
        assert_eq!(
            p.try_reserve(1, t0, Duration::from_millis(10)).unwrap_err(),
            wait
        );
        assert_eq!(p.try_reserve(1, t0, Duration::MAX), Ok(wait));
    }

    #[test]
    fn throttling_pauses_the_account_and_spaces_its_requests() {
        let p = Pacer::new(&[]);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(p.try_reserve(1, t0, Duration::MAX), Ok(Duration::ZERO));
        assert_eq!(p.try_reserve(1, t0, Duration::MAX), Ok(Duration::ZERO));
        // Retry-After pauses every request of the account; the first throttle opens a gap.
        assert_eq!(p.throttled(t0, t0, Some(ms(2_000))), t0 + ms(2_000));
        // The other request of the same burst was paced before: it widens nothing.
        p.throttled(t0, t0 + ms(1), None);
        assert_eq!(p.try_reserve(1, t0, Duration::MAX), Ok(ms(2_000)));
        assert_eq!(
            p.try_reserve(1, t0, Duration::MAX),
            Ok(ms(2_000) + GAP_START)
        );
        // A request paced by the new gap and still throttled doubles it, once.
        p.throttled(t0 + ms(2_000), t0 + ms(2_000), None);
        p.throttled(t0 + ms(2_100), t0 + ms(2_100), None);
        assert_eq!(
            p.try_reserve(1, t0, Duration::MAX),
            Ok(ms(2_100) + GAP_START * 2)
        );
        // Accepted answers narrow it until it is gone.
        for _ in 0..100 {
            p.answered();
        }
        let far = t0 + Duration::from_secs(60);
        assert_eq!(p.try_reserve(1, far, Duration::MAX), Ok(Duration::ZERO));
        assert_eq!(p.try_reserve(1, far, Duration::MAX), Ok(Duration::ZERO));
    }

    #[test]
    fn several_requests_are_reserved_together() {
        let p = Pacer::new(&[RateLimit {
            requests: 1,
            per_ms: 100,
        }]);
        let t0 = Instant::now();
        // The second request waits one padded window: 100 ms + the 100 ms minimum padding.
        let wait = p.try_reserve(2, t0, Duration::MAX).unwrap();
        assert_eq!(wait, Duration::from_millis(200));
    }
}
