//! `sweep`: `certgate sweep` over 1,000,000 orders of JSON lines (time, throughput against
//! serde_json's parse of the same file on the same cores, peak RSS), then `GET /healthz`
//! latency while `POST /v1/sweep` runs beside it.

use crate::gateway::{self, Gateway, KEY};
use crate::harness::{config, ms};
use crate::report::Report;
use certgate_bench::workload;
use serde_json::Value;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// The sweep of a file, then the sweep beside traffic.
pub async fn run(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    sweep(report, dir)?;
    sweep_beside_traffic(report, dir).await
}

fn sweep(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let as_of: chrono::DateTime<chrono::Utc> = "2026-06-15T08:30:00Z".parse()?;
    let file = dir.join("orders.jsonl");
    let n = 1_000_000;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?);
        for i in 0..n {
            writeln!(w, "{}", workload::sweep_line(i, as_of))?;
        }
    }
    let size = std::fs::metadata(&file)?.len();
    let out = std::process::Command::new(gateway::binary())
        .args([
            "sweep",
            "--within-days",
            "7",
            "--as-of",
            "2026-06-15T08:30:00Z",
            "--stats",
            "--input",
        ])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .output()?;
    let (ceiling, validate) = (
        parse_ceiling::<Value>(&file)?,
        parse_ceiling::<serde::de::IgnoredAny>(&file)?,
    );
    let _ = std::fs::remove_file(&file);
    anyhow::ensure!(
        out.status.success(),
        "sweep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = String::from_utf8_lossy(&out.stderr);
    let secs: f64 = stats
        .split(" in ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let peak: f64 = stats
        .split("peak RSS ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let hits = stats
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("?")
        .to_owned();
    report.add(
        "sweep",
        format!(
            "sweep of {n} orders ({:.0} MB of JSON lines): time",
            size as f64 / 1e6
        ),
        format!("{secs:.2} s"),
        "< 3 s",
        Some(secs < 3.0),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mb_s = |secs: f64| size as f64 / 1e6 / secs;
    report.add(
        "sweep",
        format!("sweep throughput, {threads} threads"),
        format!("{:.0} MB/s", mb_s(secs)),
        "",
        None,
    );
    report.add(
        "sweep",
        "the ceiling: every line parsed by serde_json into a Value, same cores, file in memory",
        format!("{:.0} MB/s", mb_s(ceiling)),
        "",
        None,
    );
    let ratio = ceiling / secs;
    report.add(
        "sweep",
        "sweep throughput / the ceiling",
        format!("{:.0}%", ratio * 100.0),
        ">= 80%",
        Some(ratio >= 0.8),
    );
    report.add(
        "sweep",
        "for scale: every line only checked as JSON (serde IgnoredAny), same cores",
        format!("{:.0} MB/s", mb_s(validate)),
        "",
        None,
    );
    report.add(
        "sweep",
        "sweep peak RSS",
        format!("{peak:.1} MB"),
        "< 200 MB",
        Some(peak < 200.0),
    );
    report.add(
        "sweep",
        "orders within 7 days (printed with their quotes)",
        hits,
        "",
        None,
    );
    Ok(())
}

/// Seconds to parse every line of `file` as a `T` with serde_json on every core, the file
/// already in memory (reading it is not counted): what any sweep of it must at least do.
fn parse_ceiling<T: serde::de::DeserializeOwned>(file: &Path) -> anyhow::Result<f64> {
    let bytes = std::fs::read(file)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..=threads {
        let mut end = (bytes.len() * i / threads).max(start);
        while end < bytes.len() && bytes[end] != b'\n' {
            end += 1;
        }
        parts.push(&bytes[start..end]);
        start = end;
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    part.split(|b| *b == b'\n')
                        .filter(|line| !line.is_empty())
                        .try_for_each(|line| {
                            serde_json::from_slice::<T>(line).map(|v| drop(black_box(v)))
                        })
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a parse thread"))
    })?;
    Ok(started.elapsed().as_secs_f64())
}

/// `/healthz` while two 100,000-order `POST /v1/sweep` run over and over: the sweeps' work
/// is on the blocking pool, so the request threads stay free.
async fn sweep_beside_traffic(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let cfg = config(dir, "sweep-traffic.toml", None, "", "")?;
    let gw = Gateway::start(&cfg, "sqlite::memory:")?;
    let as_of: chrono::DateTime<chrono::Utc> = "2026-06-15T08:30:00Z".parse()?;
    let n = 100_000u64;
    let mut body =
        String::from(r#"{"within_days": 7, "as_of": "2026-06-15T08:30:00Z", "orders": ["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&workload::sweep_line(i, as_of));
    }
    body.push_str("]}");
    let body = axum::body::Bytes::from(body);
    let http = reqwest::Client::new();
    let healthz = format!("{}/healthz", gw.base);
    let probe = |count: usize| {
        let (http, url) = (http.clone(), healthz.clone());
        async move {
            let mut times = Vec::with_capacity(count);
            for _ in 0..count {
                let t = Instant::now();
                http.get(&url).send().await?.error_for_status()?;
                times.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            times.sort_unstable();
            anyhow::Ok(times)
        }
    };
    let alone = probe(400).await?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let swept = std::sync::Arc::new(AtomicU64::new(0));
    let sweepers: Vec<_> = (0..2)
        .map(|_| {
            let (http, url, body, stop, swept) = (
                http.clone(),
                format!("{}/v1/sweep", gw.base),
                body.clone(),
                stop.clone(),
                swept.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    http.post(&url)
                        .bearer_auth(KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?
                        .error_for_status()?
                        .bytes()
                        .await?;
                    swept.fetch_add(1, Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    // Let both sweeps get under way before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (started, before) = (Instant::now(), swept.load(Relaxed));
    let beside = probe(1_000).await?;
    let (elapsed, answered) = (started.elapsed(), swept.load(Relaxed) - before);
    stop.store(true, Relaxed);
    for s in sweepers {
        s.await??;
    }
    let pct = |t: &[Duration], p: usize| t[(t.len() * p / 100).min(t.len() - 1)];
    report.add(
        "sweep",
        "beside traffic: GET /healthz p50 / p99 alone",
        format!("{} / {}", ms(pct(&alone, 50)), ms(pct(&alone, 99))),
        "",
        None,
    );
    let p99 = pct(&beside, 99);
    report.add(
        "sweep",
        format!("beside traffic: GET /healthz p50 / p99 while two {n}-order POST /v1/sweep run"),
        format!("{} / {}", ms(pct(&beside, 50)), ms(p99)),
        "p99 < 50 ms",
        Some(p99 < Duration::from_millis(50)),
    );
    report.add(
        "sweep",
        "beside traffic: sweeps answered meanwhile (orders/s over both)",
        format!(
            "{answered} ({:.0}/s)",
            (answered * n) as f64 / elapsed.as_secs_f64()
        ),
        "",
        None,
    );
    Ok(())
}
