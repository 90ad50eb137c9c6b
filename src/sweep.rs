//! `certgate sweep`: streams a JSON-lines file of orders (`{"provider", "order"}` per line)
//! through the policy on every core, keeping only the orders whose refund deadline is near.
//! One thread reads blocks of whole lines; the workers split, parse and quote them. Memory
//! grows with the number of hits, never with the size of the input.

use certgate_core::registry::QuoteError;
use certgate_core::sweep::{self, SweepHit, SweepItem};
use certgate_core::Registry;
use chrono::{DateTime, Utc};
use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

/// Bytes read at once. A block is cut after its last newline (the rest begins the next one),
/// so workers get whole lines and the reader never looks at a line on its own.
const BLOCK: usize = 4 << 20;
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

/// Whole lines, the first of them line `first` of the input.
struct Block {
    first: u64,
    bytes: Vec<u8>,
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
    input: impl Read,
    as_of: DateTime<Utc>,
    within_days: u32,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<Outcome> {
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| scope.spawn(|| work(registry, &rx, as_of, within_days)))
            .collect();
        let read = read_blocks(input, BLOCK, progress, |block| tx.send(block).is_ok());
        drop(tx);
        let mut out = Outcome::default();
        for w in workers {
            let part = w.join().expect("a sweep worker panicked");
            out.hits.extend(part.hits);
            out.invalid += part.invalid;
            out.errors.extend(part.errors);
        }
        out.lines = read?;
        sweep::sort(&mut out.hits);
        out.errors.sort();
        out.errors.truncate(SHOWN_ERRORS);
        Ok(out)
    })
}

/// Reads `input` in blocks of whole lines (`size` bytes read at a time) and hands each to
/// `send` (which says whether to go on); returns how many lines there were.
fn read_blocks(
    mut input: impl Read,
    size: usize,
    progress: &(dyn Fn(u64) + Sync),
    send: impl Fn(Block) -> bool,
) -> std::io::Result<u64> {
    let mut lines = 0u64;
    let mut carry = Vec::new();
    loop {
        let mut buf = std::mem::take(&mut carry);
        buf.reserve(size);
        let n = (&mut input).take(size as u64).read_to_end(&mut buf)?;
        progress(n as u64);
        if n == 0 {
            // The last line, without a newline after it.
            if !buf.is_empty() {
                lines += 1;
                send(Block {
                    first: lines,
                    bytes: buf,
                });
            }
            return Ok(lines);
        }
        let Some(end) = memchr::memrchr(b'\n', &buf) else {
            carry = buf; // a line longer than a block so far
            too_long(&carry, lines)?;
            continue;
        };
        carry = buf[end + 1..].to_vec();
        too_long(
            &carry,
            lines + memchr::memchr_iter(b'\n', &buf[..=end]).count() as u64,
        )?;
        buf.truncate(end + 1);
        let first = lines + 1;
        lines += memchr::memchr_iter(b'\n', &buf).count() as u64;
        if !send(Block { first, bytes: buf }) {
            return Ok(lines);
        }
    }
}

/// The longest line a sweep reads (a block): memory stays bounded whatever the input.
pub const MAX_LINE: usize = BLOCK;

/// An error if `partial`, the start of line `before + 1`, is already longer than [`MAX_LINE`].
fn too_long(partial: &[u8], before: u64) -> std::io::Result<()> {
    if partial.len() > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "line {}: longer than {} KiB (one order per line)",
                before + 1,
                MAX_LINE / 1024
            ),
        ));
    }
    Ok(())
}

fn work(
    registry: &Registry,
    rx: &Mutex<Receiver<Block>>,
    as_of: DateTime<Utc>,
    within_days: u32,
) -> Part {
    let mut part = Part::default();
    loop {
        let block = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(block) => block,
            Err(_) => return part,
        };
        for (n, line) in (block.first..).zip(block.bytes.split(|b| *b == b'\n')) {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let result = serde_json::from_slice::<SweepItem>(line)
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

/// Hits written at once: rendered as JSON lines on every thread, then written in order.
const WRITE_BATCH: usize = 8_192;

/// Writes `hits` as JSON lines, in their order, rendering each batch on `threads` threads.
pub fn write_hits(hits: &[SweepHit], threads: usize, mut out: impl Write) -> std::io::Result<()> {
    for batch in hits.chunks(WRITE_BATCH) {
        let rendered: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let parts: Vec<_> = batch
                .chunks(batch.len().div_ceil(threads.max(1)))
                .map(|part| scope.spawn(move || render(part)))
                .collect();
            parts
                .into_iter()
                .map(|p| p.join().expect("a render thread panicked"))
                .collect()
        });
        for part in rendered {
            out.write_all(&part)?;
        }
    }
    out.flush()
}

fn render(hits: &[SweepHit]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(hits.len() * 1024);
    for hit in hits {
        serde_json::to_writer(&mut buf, hit).expect("a hit serializes to memory");
        buf.push(b'\n');
    }
    buf
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
    fn a_line_longer_than_the_bound_is_an_error_naming_it() {
        let mut input = b"{}\n{}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        for size in [MAX_LINE / 3, MAX_LINE] {
            let e = read_blocks(input.as_slice(), size, &|_| {}, |_| true).unwrap_err();
            assert!(
                e.to_string().starts_with("line 3: longer than"),
                "{size}: {e}"
            );
        }
    }

    #[test]
    fn blocks_hold_whole_lines_numbered_from_one() {
        let input = "a\nbb\n\nlonger than a block\nlast without newline";
        for size in [1, 3, 7, 64] {
            let blocks = std::sync::Mutex::new(Vec::new());
            let lines = read_blocks(input.as_bytes(), size, &|_| {}, |b| {
                blocks.lock().unwrap().push(b);
                true
            })
            .unwrap();
            assert_eq!(lines, 5, "block size {size}");
            let mut seen = Vec::new();
            for b in blocks.into_inner().unwrap() {
                let text = String::from_utf8(b.bytes).unwrap();
                let parts: Vec<_> = text.split('\n').collect();
                for (n, line) in
                    (b.first..).zip(&parts[..parts.len() - usize::from(text.ends_with('\n'))])
                {
                    seen.push((n, line.to_string()));
                }
            }
            let expected: Vec<_> = (1..).zip(input.split('\n').map(String::from)).collect();
            assert_eq!(seen, expected, "block size {size}");
        }
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
