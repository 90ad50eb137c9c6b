//! `certgate sweep`: streams a JSON-lines file of orders (`{"provider", "order"}` per line)
//! through the policy on every core, keeping only the orders whose refund deadline is near.
//! Memory grows with the number of hits, never with the size of the input.

use certgate_core::registry::QuoteError;
use certgate_core::sweep::{self, SweepHit, SweepItem};
use certgate_core::Registry;
use chrono::{DateTime, Utc};
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

/// Lines handed to a worker at once.
const BATCH: usize = 4_096;
/// At most this many bad lines are reported one by one.
pub const SHOWN_ERRORS: usize = 20;

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Soonest first.
    pub hits: Vec<SweepHit>,
    pub lines: u64,
    pub invalid: u64,
    /// The first bad lines: (line number, what is wrong).
    pub errors: Vec<(u64, String)>,
}

/// One worker's share.
#[derive(Default)]
struct Part {
    hits: Vec<SweepHit>,
    invalid: u64,
    errors: Vec<(u64, String)>,
}

/// Sweeps `input` on `threads` workers; `progress` is told how many bytes were read.
pub fn run(
    registry: &Registry,
    input: impl BufRead,
    as_of: DateTime<Utc>,
    within_days: u32,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<Outcome> {
    let (tx, rx) = sync_channel::<Vec<(u64, String)>>(threads * 2);
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| scope.spawn(|| work(registry, &rx, as_of, within_days)))
            .collect();
        let mut lines = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        let mut read_error = None;
        for line in input.lines() {
            match line {
                Ok(line) => {
                    lines += 1;
                    progress(line.len() as u64 + 1);
                    if !line.trim().is_empty() {
                        batch.push((lines, line));
                    }
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.send(full).is_err() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let mut out = Outcome {
            lines,
            ..Outcome::default()
        };
        for w in workers {
            let part = w.join().expect("a sweep worker panicked");
            out.hits.extend(part.hits);
            out.invalid += part.invalid;
            out.errors.extend(part.errors);
        }
        if let Some(e) = read_error {
            return Err(e);
        }
        sweep::sort(&mut out.hits);
        out.errors.sort();
        out.errors.truncate(SHOWN_ERRORS);
        Ok(out)
    })
}

fn work(
    registry: &Registry,
    rx: &Mutex<Receiver<Vec<(u64, String)>>>,
    as_of: DateTime<Utc>,
    within_days: u32,
) -> Part {
    let mut part = Part::default();
    loop {
        let batch = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(batch) => batch,
            Err(_) => return part,
        };
        for (n, line) in batch {
            let result = serde_json::from_str::<SweepItem>(&line)
                .map_err(|e| e.to_string())
                .and_then(|item| {
                    sweep::check(registry, &item, as_of, within_days).map_err(|e| match e {
                        QuoteError::UnknownProvider(m) => m,
                        QuoteError::Invalid(e) => e.to_string(),
                    })
                });
            match result {
                Ok(hit) => part.hits.extend(hit),
                Err(message) => {
                    part.invalid += 1;
                    if part.errors.len() < SHOWN_ERRORS {
                        part.errors.push((n, message));
                    }
                }
            }
        }
    }
}

/// This process's peak resident memory in bytes (Linux), for `--stats`.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        crate::default_registry().unwrap()
    }

    fn line(provider: &str, id: &str, issued: &str) -> String {
        let mut order = certgate_core::testing::sample();
        order["id"] = json!(id);
        order["purchased_at"] = json!(issued);
        order["issued_at"] = json!(issued);
        json!({"provider": provider, "order": order}).to_string()
    }

    #[test]
    fn near_deadlines_come_out_soonest_first_and_bad_lines_are_counted() {
        let as_of: DateTime<Utc> = "2026-06-15T08:30:00Z".parse().unwrap();
        let input = [
            line("geotrust", "later", "2026-05-20T00:00:00Z"), // deadline 06-19
            line("alibaba", "sooner", "2026-05-20T00:00:00Z"), // deadline 06-17
            line("geotrust", "far", "2026-06-14T00:00:00Z"),   // deadline 07-14
            line("geotrust", "closed", "2026-05-01T00:00:00Z"), // refused: window closed
            "{not json".to_owned(),
            line("verisign", "unknown", "2026-06-01T00:00:00Z"),
            String::new(),
        ]
        .join("\n");
        let read = std::sync::atomic::AtomicU64::new(0);
        let out = run(&registry(), input.as_bytes(), as_of, 7, 2, &|n| {
            read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        let ids: Vec<_> = out.hits.iter().map(|h| h.order_id.as_str()).collect();
        assert_eq!(ids, ["sooner", "later"]);
        assert_eq!((out.lines, out.invalid), (6, 2));
        assert_eq!(out.errors.iter().map(|e| e.0).collect::<Vec<_>>(), [5, 6]);
        assert!(out.errors[1].1.contains("verisign"));
        assert_eq!(read.into_inner(), input.len() as u64);
    }
}
