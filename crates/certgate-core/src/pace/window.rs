//! A CA account's sliding windows, as pure arithmetic over the instants its calls were sent:
//! a call is admitted only if, for every sliding window (`limit` calls per `span`), the window
//! ending now would still hold at most `limit` calls. Nothing is reserved ahead: a call that
//! may not go now learns when it could, given how many calls wait before it, and asks again
//! then. So a caller that comes back late loses nothing, and every gateway sharing the record
//! of sends (in Postgres) shares the pace.
//!
//! Decisions, fed the clock: the engine's `pacing` and the store call it with their `now`.
//! Instants are milliseconds since the epoch.

use crate::config::RateLimit;

/// A sliding window: at most `limit` calls in any `span_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub span_ms: i64,
}

/// Each window is kept as if it were this much longer, so that jitter between the instant a
/// call is admitted and the instant the CA receives it cannot squeeze a window's calls into the
/// CA's: 2% of the span, at least 50 ms.
pub fn padded(limit: &RateLimit) -> Window {
    let span = limit.per_ms as i64;
    Window {
        limit: limit.requests.max(1),
        span_ms: span + (span / 50).max(50),
    }
}

/// What [`admit`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The calls may go now (the caller records them as sent at `now`).
    Now,
    /// Not before this instant.
    At(i64),
}

/// May `n` calls go at `now`, given the calls already sent (`sends`, oldest first) and the
/// `windows`? If not, the instant they could, with `ahead` calls waiting before them.
pub fn admit(sends: &[i64], windows: &[Window], n: u32, ahead: u32, now: i64) -> Admit {
    let fits = windows.iter().all(|w| {
        let n = n.min(w.limit) as usize;
        in_window(sends, w, now) + n <= w.limit as usize
    });
    if fits {
        return Admit::Now;
    }
    let at = windows
        .iter()
        .map(|w| free_at(sends, w, (ahead + n.min(w.limit)) as usize, now))
        .max()
        .unwrap_or(now);
    Admit::At(at.max(now + 1))
}

/// How many of `sends` fall in the window that ends at `now`.
fn in_window(sends: &[i64], w: &Window, now: i64) -> usize {
    sends.len() - first_in_window(sends, w, now)
}

fn first_in_window(sends: &[i64], w: &Window, now: i64) -> usize {
    sends.partition_point(|s| *s <= now - w.span_ms)
}

/// When the `k`-th call from now may go in window `w`: the calls the window has room for go
/// now, each later one when a call before it leaves the window, the calls still to be sent
/// included.
fn free_at(sends: &[i64], w: &Window, k: usize, now: i64) -> i64 {
    let recent = &sends[first_in_window(sends, w, now)..];
    let limit = w.limit as usize;
    let room = limit.saturating_sub(recent.len());
    if k <= room {
        return now;
    }
    // The instants of the calls to come, in order: `room` of them now, then one each time a
    // call (sent, or to come) leaves the window.
    let mut future: Vec<i64> = vec![now; room];
    let mut leaving = recent.iter().copied();
    let mut m = 0usize;
    while future.len() < k {
        let left = match leaving.next() {
            Some(s) => s,
            None => future[m - recent.len()],
        };
        m += 1;
        future.push(left + w.span_ms);
    }
    future[k - 1]
}

/// The calls of `sends` that can still count in a window: older ones can go.
pub fn prune(sends: &mut std::collections::VecDeque<i64>, windows: &[Window], now: i64) {
    let longest = windows.iter().map(|w| w.span_ms).max().unwrap_or(0);
    while sends.front().is_some_and(|s| *s <= now - longest) {
        sends.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGICERT: [Window; 2] = [
        Window {
            limit: 100,
            span_ms: 5_000,
        },
        Window {
            limit: 1_000,
            span_ms: 300_000,
        },
    ];

    #[test]
    fn windows_are_padded() {
        let w = padded(&RateLimit {
            requests: 100,
            per_ms: 5_000,
        });
        assert_eq!((w.limit, w.span_ms), (100, 5_100));
        let w = padded(&RateLimit {
            requests: 5,
            per_ms: 500,
        });
        assert_eq!(w.span_ms, 550);
    }

    #[test]
    fn calls_go_while_every_window_has_room() {
        let mut sends = Vec::new();
        for _ in 0..100 {
            assert_eq!(admit(&sends, &DIGICERT, 1, 0, 0), Admit::Now);
            sends.push(0);
        }
        // The 101st waits until the first leaves the 5 s window.
        assert_eq!(admit(&sends, &DIGICERT, 1, 0, 10), Admit::At(5_000));
        // With 150 waiting before it: the 51st call of the next window.
        assert_eq!(admit(&sends, &DIGICERT, 1, 150, 10), Admit::At(10_000));
        // Two calls at once need room for both.
        sends.truncate(99);
        assert_eq!(admit(&sends, &DIGICERT, 1, 0, 10), Admit::Now);
        assert_eq!(admit(&sends, &DIGICERT, 2, 0, 10), Admit::At(5_000));
    }

    #[test]
    fn the_long_window_binds_after_a_thousand() {
        let sends: Vec<i64> = (0..1_000).map(|i| (i / 100) * 5_000).collect();
        assert_eq!(admit(&sends, &DIGICERT, 1, 0, 50_000), Admit::At(300_000));
    }

    /// A simulated clock: callers arrive at random, come back late at random, sometimes give
    /// up; whatever they do, no window ever holds more than its limit, and a backlog drains at
    /// the binding limit.
    #[test]
    fn no_window_ever_overflows_and_a_backlog_drains_at_the_limit() {
        let windows = [
            Window {
                limit: 7,
                span_ms: 1_000,
            },
            Window {
                limit: 30,
                span_ms: 10_000,
            },
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // 3,000 calls, all waiting at t = 0; each comes back up to 300 ms after told.
        let mut waiting: Vec<(i64, u32)> = (0..3_000).map(|i| (0, i)).collect();
        let mut sends: Vec<i64> = Vec::new();
        let mut gave_up = 0;
        while !waiting.is_empty() {
            waiting.sort();
            let (now, id) = waiting.remove(0);
            if rand(100) == 0 {
                gave_up += 1;
                continue;
            }
            let ahead = waiting.iter().filter(|(_, other)| *other < id).count() as u32;
            match admit(&sends, &windows, 1, ahead, now) {
                Admit::Now => sends.push(now),
                Admit::At(at) => {
                    assert!(at > now);
                    waiting.push((at + rand(300) as i64, id));
                }
            }
        }
        for w in &windows {
            for (i, s) in sends.iter().enumerate() {
                let in_window = sends[i..]
                    .iter()
                    .take_while(|t| **t < s + w.span_ms)
                    .count();
                assert!(in_window <= w.limit as usize, "{w:?} at {s}");
            }
        }
        // The binding limit is 30 per 10 s: the theoretical minimum for the calls sent.
        let sent = sends.len() as i64;
        let minimum = (sent - 1) / 30 * 10_000;
        let took = sends.last().unwrap() - sends[0];
        assert!(
            (took as f64) <= minimum as f64 * 1.1 + 10_000.0,
            "{sent} calls ({gave_up} gave up) took {took} ms, minimum {minimum}"
        );
    }
}
