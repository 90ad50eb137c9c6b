//! What a CA's throttling teaches a CA account (decisions, fed the clock: no clock is read
//! here; the engine's `pacing` passes `now`). A throttle's `Retry-After` pauses every call; the
//! spell turns the account to probing, one call at a time and each further apart, until the
//! CA accepts one; and a learnt limit per second (AIMD) joins the declared windows: at the
//! first throttle, half the calls of the last second; halved again at each new spell of
//! throttling, it grows back by about one call per second's worth of accepted answers.
//!
//! Instants are milliseconds since the epoch.

use super::window::Window;
use std::time::Duration;

/// The first delay between probes in a throttling spell, its growth, and the largest.
pub const PROBE_START_MS: i64 = 250;
pub const PROBE_GROWTH: f64 = 1.5;
pub const PROBE_MAX_MS: i64 = 30_000;
/// How long after it went a probe may stay unanswered before another goes (its operation may
/// never have sent it: a lost lease, a shutdown).
pub const PROBE_TIMEOUT_MS: i64 = 5_000;
/// The window of the learnt limit (and the span of calls it is first learnt from).
pub const LEARNT_SPAN_MS: i64 = 1_000;

/// A spell of throttling: probing until the CA accepts a call again.
#[derive(Debug, Clone, PartialEq)]
struct Spell {
    delay: i64,
    /// When the last probe went, while it is unanswered.
    probe: Option<i64>,
}

/// An account's learning from throttling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learning {
    /// Calls per second learnt from throttling, if the CA throttled.
    learnt: Option<f64>,
    paused_until: i64,
    spell: Option<Spell>,
    throttled: u64,
}

/// A non-negative number of milliseconds as a duration.
pub(super) fn ms(d: i64) -> Duration {
    Duration::from_millis(d.max(0) as u64)
}

impl Learning {
    /// The calls per second learnt (none: the declared limits hold).
    pub fn learnt(&self) -> Option<f64> {
        self.learnt
    }

    /// How many throttles the CA answered.
    pub fn throttles(&self) -> u64 {
        self.throttled
    }

    /// The learnt limit as a window, if any.
    pub fn window(&self) -> Option<Window> {
        self.learnt.map(|limit| Window {
            limit: (limit.floor() as u32).max(1),
            span_ms: LEARNT_SPAN_MS,
        })
    }

    /// Whether every call waits at `now`, and until when: the pause after a throttle, or, while
    /// a probe is out and unanswered, the probing delay from now.
    pub fn hold(&self, now: i64) -> Option<i64> {
        if self.paused_until > now {
            return Some(self.paused_until);
        }
        match &self.spell {
            Some(Spell {
                probe: Some(p),
                delay,
            }) if p + PROBE_TIMEOUT_MS > now => Some(now + delay),
            _ => None,
        }
    }

    /// A call went at `now`: during a spell, it is the probe.
    pub fn sent(&mut self, now: i64) {
        if let Some(spell) = &mut self.spell {
            spell.probe = Some(now);
        }
    }

    /// The CA throttled a call at `now`, `recent` calls having gone in the last
    /// [`LEARNT_SPAN_MS`]: how long until the account's calls may be tried again.
    pub fn throttled(
        &mut self,
        recent: usize,
        retry_after: Option<Duration>,
        now: i64,
    ) -> Duration {
        self.throttled += 1;
        match &mut self.spell {
            None => {
                // A new spell: halve the learnt limit, or learn it from the last second.
                let limit = self.learnt.unwrap_or((recent as f64).max(1.0));
                self.learnt = Some((limit / 2.0).max(1.0));
                self.spell = Some(Spell {
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
        let delay = self.spell.as_ref().map_or(PROBE_START_MS, |s| s.delay);
        let pause = retry_after.map_or(delay, |r| r.as_millis() as i64);
        self.paused_until = self.paused_until.max(now + pause);
        ms(self.paused_until - now)
    }

    /// The CA answered a call without throttling: a spell ends, and the learnt limit grows by
    /// one call per limit's worth of accepted answers.
    pub fn answered(&mut self) {
        self.spell = None;
        if let Some(limit) = &mut self.learnt {
            *limit += 1.0 / *limit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn a_first_throttle_learns_half_the_last_second_and_a_new_spell_halves_it() {
        let mut l = Learning::default();
        assert_eq!((l.learnt(), l.window(), l.hold(T)), (None, None, None));
        assert_eq!(l.throttled(8, None, T), ms(PROBE_START_MS));
        assert_eq!(l.learnt(), Some(4.0));
        assert_eq!(
            l.window(),
            Some(Window {
                limit: 4,
                span_ms: 1_000
            })
        );
        // Throttled again in the same spell, no probe out: neither halved nor slower.
        assert_eq!(l.throttled(8, None, T + 10), ms(PROBE_START_MS));
        assert_eq!(l.learnt(), Some(4.0));
        l.answered();
        assert_eq!(l.learnt(), Some(4.25));
        // A new spell halves the learnt limit, whatever the last second's calls.
        l.throttled(100, None, T + 1_000);
        assert_eq!(l.learnt(), Some(2.125));
        assert_eq!(l.window().unwrap().limit, 2);
        assert_eq!(l.throttles(), 3);
    }

    #[test]
    fn the_learnt_limit_is_at_least_one_call_a_second() {
        let mut l = Learning::default();
        l.throttled(0, None, T);
        assert_eq!(l.learnt(), Some(1.0));
        l.answered();
        l.throttled(0, None, T + 1_000);
        assert_eq!(l.learnt(), Some(1.0));
        let mut l = Learning::default();
        l.throttled(3, None, T);
        // 1.5 a second: a window of one call.
        assert_eq!(l.window().unwrap().limit, 1);
    }

    #[test]
    fn it_grows_back_by_about_one_call_per_limits_worth_of_answers() {
        let mut l = Learning::default();
        l.throttled(8, None, T);
        for _ in 0..4 {
            l.answered();
        }
        let grown = l.learnt().unwrap();
        assert!(grown > 4.9 && grown < 5.0, "{grown}");
        // Answers without a learnt limit teach nothing.
        let mut l = Learning::default();
        l.answered();
        assert_eq!(l.learnt(), None);
    }

    #[test]
    fn retry_after_pauses_every_call_and_a_shorter_one_does_not_shorten_it() {
        let mut l = Learning::default();
        assert_eq!(l.throttled(1, Some(Duration::from_millis(300)), T), ms(300));
        assert_eq!(l.hold(T), Some(T + 300));
        assert_eq!(l.hold(T + 299), Some(T + 300));
        // No probe is out yet: once the pause is over, a call may go.
        assert_eq!(l.hold(T + 300), None);
        assert_eq!(
            l.throttled(1, Some(Duration::from_millis(100)), T + 100),
            ms(200)
        );
        assert_eq!(l.throttled(1, Some(Duration::ZERO), T + 400), ms(0));
    }

    #[test]
    fn probes_go_one_at_a_time_each_further_apart_up_to_the_largest() {
        let mut l = Learning::default();
        l.throttled(4, None, T);
        assert_eq!(l.hold(T + 249), Some(T + 250));
        assert_eq!(l.hold(T + 250), None);
        // A probe goes: the others wait the probing delay, from whenever they ask.
        l.sent(T + 250);
        assert_eq!(l.hold(T + 300), Some(T + 550));
        // The probe is throttled: the next waits half as long again.
        assert_eq!(l.throttled(4, None, T + 400), ms(375));
        assert_eq!(l.hold(T + 400), Some(T + 775));
        assert_eq!(l.hold(T + 775), None);
        let mut delay = 375;
        let mut now = T + 775;
        for _ in 0..20 {
            l.sent(now);
            delay = ((delay as f64 * PROBE_GROWTH) as i64).min(PROBE_MAX_MS);
            assert_eq!(l.throttled(4, None, now), ms(delay));
            now += delay;
        }
        assert_eq!(delay, PROBE_MAX_MS);
        // The probe is answered: the spell is over, calls go freely (within the learnt limit).
        l.sent(now);
        l.answered();
        assert_eq!(l.hold(now), None);
    }

    #[test]
    fn an_unanswered_probe_stops_holding_the_others_after_a_while() {
        let mut l = Learning::default();
        l.throttled(4, Some(Duration::ZERO), T);
        l.sent(T);
        assert_eq!(
            l.hold(T + PROBE_TIMEOUT_MS - 1),
            Some(T + PROBE_TIMEOUT_MS - 1 + 250)
        );
        assert_eq!(l.hold(T + PROBE_TIMEOUT_MS), None);
        // A probe out of a spell is no probe: calls sent after the spell hold nothing.
        let mut l = Learning::default();
        l.sent(T);
        assert_eq!(l.hold(T + 1), None);
    }
}
