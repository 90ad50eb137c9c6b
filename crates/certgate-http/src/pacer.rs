//! Pacing for a CA account's rate limits (DigiCert: 100 requests per 5 s and 1000 per 5 min
//! per key). Every request reserves the earliest instant at which each sliding window still has
//! room; a caller that would wait too long gets the wait back instead and can do other work.
//!
//! A CA that throttles anyway (its limit is lower than declared, or another client shares the
//! key) slows the whole account down. Its `Retry-After` pauses every request. A spell of
//! throttling turns the account to probing: one request at a time, each further apart (the
//! CA's window must empty first), until the CA accepts one and the account goes on at its
//! declared pace. Throttled requests are never lost; they wait their turn.

use certgate_core::config::RateLimit;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests are spaced as if each window were this much longer, so that network jitter
/// between certgate and the CA cannot squeeze one window's requests into the CA's.
const SAFETY: f64 = 0.03;
const MIN_SAFETY: Duration = Duration::from_millis(100);

/// The first delay between probes in a throttling spell, its growth, and the largest.
const PROBE_START: Duration = Duration::from_millis(250);
const PROBE_GROWTH: f64 = 1.5;
const PROBE_MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Window {
    limit: usize,
    span: Duration,
    /// Instants granted in this window, oldest first (at most `limit`).
    granted: VecDeque<Instant>,
}

impl Window {
    fn new(limit: usize, span: Duration) -> Self {
        Window {
            limit: limit.max(1),
            span: span + span.mul_f64(SAFETY).max(MIN_SAFETY),
            granted: VecDeque::new(),
        }
    }
}

/// How long after its slot a probe granted in a spell may stay unanswered before another is
/// granted (its operation may never have sent it: a lost lease, a shutdown).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A spell of throttling: probing until the CA accepts a request again.
#[derive(Debug)]
struct Spell {
    /// The delay between probes.
    delay: Duration,
    /// The last instant granted when the delay last grew: a throttled request reserved by
    /// then was paced by the shorter delay, and its throttle is already counted.
    grown_at: Instant,
    /// The slot of the probe granted and not answered yet.
    probe: Option<Instant>,
}

/// What [`Pacer::reserve`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Reserved: send after this wait.
    At(Duration),
    /// The account is probing after throttling and its probe is out: nothing was reserved;
    /// ask again after this wait.
    Probing(Duration),
}

#[derive(Debug)]
struct State {
    /// The declared windows.
    windows: Vec<Window>,
    /// No request before this instant (the CA's Retry-After, a probe's delay).
    paused_until: Option<Instant>,
    /// The last instant granted.
    last: Option<Instant>,
    spell: Option<Spell>,
}

/// The pace of one CA account, shared by every provider that uses it.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(limits: &[RateLimit]) -> Self {
        let windows: Vec<Window> = limits
            .iter()
            .map(|l| Window::new(l.requests as usize, Duration::from_millis(l.per_ms)))
            .collect();
        Pacer {
            state: Mutex::new(State {
                windows,
                paused_until: None,
                last: None,
                spell: None,
            }),
        }
    }

    /// The CA throttled a request reserved for `slot`: pause the account for `retry_after`,
    /// and probe: one request at a time, each `delay` apart, the delay growing with every
    /// probe the CA throttles too. Returns the earliest instant a request may go again.
    pub fn throttled(&self, slot: Instant, now: Instant, retry_after: Option<Duration>) -> Instant {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let granted = st.last.map_or(now, |l| l.max(now));
        let spell = st.spell.get_or_insert(Spell {
            delay: PROBE_START,
            grown_at: granted,
            probe: None,
        });
        if spell.probe.is_some_and(|p| p <= slot) {
            spell.probe = None;
        }
        if slot > spell.grown_at {
            spell.delay = spell.delay.mul_f64(PROBE_GROWTH).min(PROBE_MAX);
            spell.grown_at = granted;
        }
        let pause = retry_after.unwrap_or(spell.delay);
        let delay = spell.delay;
        let until = st.paused_until.map_or(now + pause, |p| p.max(now + pause));
        st.paused_until = Some(until);
        st.last.map_or(until, |l| until.max(l + delay)).max(now)
    }

    /// The CA accepted a request (answered without throttling): a spell of throttling ends.
    pub fn answered(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).spell = None;
    }

    /// The request granted `slot` will not be sent (its operation came back too late for it):
    /// the CA never sees it, so it leaves the windows, and if it was the probe of a throttling
    /// spell the next request may probe instead. No capacity is lost to a late operation.
    pub fn unused(&self, slot: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for w in &mut st.windows {
            if let Some(i) = w.granted.iter().position(|g| *g == slot) {
                w.granted.remove(i);
            }
        }
        if let Some(spell) = &mut st.spell {
            if spell.probe == Some(slot) {
                spell.probe = None;
            }
        }
    }

    /// Reserves `n` requests at the earliest instants the limits allow: how long to wait
    /// before sending. While the account is probing, only one probe is out at a time.
    pub fn reserve(&self, n: u32, now: Instant) -> Grant {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let start = st.paused_until.map_or(now, |p| p.max(now));
        if let Some(spell) = &mut st.spell {
            match spell.probe {
                Some(p) if p + PROBE_TIMEOUT > now => {
                    return Grant::Probing(spell.delay.max(start.saturating_duration_since(now)));
                }
                _ => {}
            }
        }
        let mut slots = Vec::with_capacity(n as usize);
        let mut at = start;
        for _ in 0..n {
            for w in &st.windows {
                if w.granted.len() >= w.limit {
                    at = at.max(w.granted[w.granted.len() - w.limit] + w.span);
                }
            }
            for w in &mut st.windows {
                w.granted.push_back(at);
                while w.granted.len() > w.limit {
                    w.granted.pop_front();
                }
            }
            slots.push(at);
        }
        if let Some(last) = slots.last() {
            st.last = st.last.max(Some(*last));
        }
        if let Some(spell) = &mut st.spell {
            spell.probe = slots.first().copied();
        }
        Grant::At(
            slots
                .last()
                .map_or(Duration::ZERO, |last| last.saturating_duration_since(now)),
        )
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

    fn at(p: &Pacer, n: u32, now: Instant) -> Duration {
        match p.reserve(n, now) {
            Grant::At(wait) => wait,
            probing => panic!("{probing:?}"),
        }
    }

    #[test]
    fn a_burst_is_spread_so_no_window_overflows() {
        let p = Pacer::new(&limits());
        let t0 = Instant::now();
        let sent: Vec<Instant> = (0..1_000).map(|_| t0 + at(&p, 1, t0)).collect();
        // The first hundred go at once, the next hundred one (padded) window later...
        assert!(sent[..100].iter().all(|t| *t == t0));
        assert!(sent[100] >= t0 + Duration::from_millis(5_150));
        // ...and no 5 s window ever holds more than 100.
        for i in 100..sent.len() {
            assert!(
                sent[i] - sent[i - 100] >= Duration::from_secs(5),
                "request {i}"
            );
        }
        // The 1001st must wait for the 5-minute window.
        assert!(at(&p, 1, t0) >= Duration::from_secs(300));
    }

    #[test]
    fn throttling_pauses_the_account_and_probes_until_the_ca_accepts() {
        let p = Pacer::new(&[]);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(at(&p, 1, t0), Duration::ZERO);
        // Retry-After pauses every request of the account.
        assert_eq!(p.throttled(t0, t0, Some(ms(2_000))), t0 + ms(2_000));
        // One probe goes when the pause ends; nothing else is reserved while it is out.
        assert_eq!(at(&p, 1, t0), ms(2_000));
        assert_eq!(p.reserve(1, t0), Grant::Probing(ms(2_000)));
        // The probe is throttled too: the next one waits a longer delay.
        p.throttled(t0 + ms(2_000), t0 + ms(2_000), None);
        assert_eq!(at(&p, 1, t0 + ms(2_000)), ms(375));
        assert_eq!(
            p.reserve(1, t0 + ms(2_000)),
            Grant::Probing(ms(375)),
            "one probe at a time"
        );
        // The CA accepts it: the account goes on at its own pace.
        p.answered();
        let later = t0 + ms(3_000);
        assert_eq!((at(&p, 1, later), at(&p, 1, later)), (ms(0), ms(0)));
    }

    #[test]
    fn a_probe_never_answered_does_not_stall_the_account() {
        let p = Pacer::new(&[]);
        let t0 = Instant::now();
        at(&p, 1, t0);
        p.throttled(t0, t0, None);
        assert_eq!(at(&p, 1, t0), Duration::from_millis(250));
        assert!(matches!(p.reserve(1, t0), Grant::Probing(_)));
        // Its operation came back too late to send it: the next request probes.
        p.unused(t0 + Duration::from_millis(250));
        assert_eq!(at(&p, 1, t0), Duration::from_millis(250));
        // Its operation went away: after the probe timeout another probe goes.
        let much_later = t0 + PROBE_TIMEOUT + Duration::from_secs(1);
        assert_eq!(at(&p, 1, much_later), Duration::ZERO);
    }

    #[test]
    fn a_slot_left_unused_is_given_back() {
        let p = Pacer::new(&[RateLimit {
            requests: 2,
            per_ms: 1_000,
        }]);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!((at(&p, 1, t0), at(&p, 1, t0)), (ms(0), ms(0)));
        assert_eq!(at(&p, 1, t0), ms(1_100));
        // Its operation comes back late: the slot is not lost, and the window is not full.
        p.unused(t0 + ms(1_100));
        assert_eq!(at(&p, 1, t0 + ms(1_200)), ms(0));
    }

    #[test]
    fn several_requests_are_reserved_together() {
        let p = Pacer::new(&[RateLimit {
            requests: 1,
            per_ms: 100,
        }]);
        // The second request waits one padded window: 100 ms + the 100 ms minimum padding.
        assert_eq!(at(&p, 2, Instant::now()), Duration::from_millis(200));
    }
}
