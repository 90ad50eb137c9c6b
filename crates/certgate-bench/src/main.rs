//! `cargo run --release -p certgate-bench`: certgate's load benchmarks. Runs the real gateway
//! binary against mock CAs, prints every figure beside its target, and writes BENCHMARKS.md.
//! Sections can be picked by name: `-- policy http ops inflight sweep pacing watch`; a subset
//! writes `target/benchmarks-partial.md` instead. The `http` section needs `wrk`.

mod gateway;
mod mockca;
mod wrk;

use certgate_bench::workload;
use gateway::{Gateway, KEY};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One measured figure.
struct Figure {
    section: &'static str,
    what: String,
    value: String,
    target: String,
    /// None: no target.
    pass: Option<bool>,
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
}

impl Report {
    fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        pass: Option<bool>,
    ) {
        let f = Figure {
            section,
            what: what.into(),
            value: value.into(),
            target: target.into(),
            pass,
        };
        let verdict = match f.pass {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<9} {:<58} {:>22}  {:<18} {verdict}",
            f.section, f.what, f.value, f.target
        );
        self.figures.push(f);
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

/// The repository's providers.toml with DigiCert at `mock` (or the real URL), its rate limits
/// replaced by `limits`, and the executor settings given.
fn config(
    dir: &Path,
    name: &str,
    mock: Option<&str>,
    limits: &str,
    executor: &str,
) -> anyhow::Result<PathBuf> {
    let mut text = certgate::DEFAULT_PROVIDERS_TOML.replace(
        "rate_limits = [{ requests = 100, per_ms = 5000 }, { requests = 1000, per_ms = 300000 }]",
        limits,
    );
    if let Some(mock) = mock {
        text = text.replace("https://www.digicert.com/services/v2", mock);
    }
    text.push_str(&format!("\n[executor]\n{executor}\n"));
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

fn policy(report: &mut Report) {
    let registry = workload::registry();
    let cases = workload::cases();
    let entries: Vec<_> = cases
        .iter()
        .map(|c| registry.get(&c.provider).expect("configured").clone())
        .collect();
    let run = |budget: Duration| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget {
            for _ in 0..1_000 {
                let i = (n % cases.len() as u64) as usize;
                let c = &cases[i];
                let _ = black_box(entries[i].quote(black_box(&c.order), c.intent, c.as_of));
                n += 1;
            }
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    run(Duration::from_millis(300));
    let per_sec = run(Duration::from_secs(3));
    report.add(
        "policy",
        "quotes per second, in-process, one core (8-case mix)",
        format!("{per_sec:.0}/s"),
        ">= 1,000,000/s",
        Some(per_sec >= 1e6),
    );
}

/// Connections each HTTP target is loaded with.
const CONNECTIONS: usize = 64;
/// Rounds of the HTTP targets, alternated; medians are reported.
const ROUNDS: usize = 3;

async fn http(report: &mut Report, dir: &Path, wrk: &wrk::Wrk) -> anyhow::Result<()> {
    let (mock, _counters) = mockca::start(Duration::ZERO, &[]).await?;
    let cfg = config(dir, "http.toml", Some(&mock), "", "")?;
    let database = format!("sqlite://{}", dir.join("http.db").display());
    let gw = Gateway::start(&cfg, &database)?;
    // One operation run to its end against the mock CA, for the store read.
    let operation = {
        let id = format!("2{}", run_id());
        let http = reqwest::Client::new();
        let op: Value = http
            .post(format!("{}/v1/operations", gw.base))
            .bearer_auth(KEY)
            .header("idempotency-key", &id)
            .body(cancel_body(&id))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let url = format!(
            "{}/v1/operations/{}",
            gw.base,
            op["id"].as_str().unwrap_or_default()
        );
        let started = Instant::now();
        loop {
            let now: Value = http.get(&url).bearer_auth(KEY).send().await?.json().await?;
            if now["status"] == "completed" {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "the operation for the store read did not complete: {now}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        op["id"].as_str().unwrap_or_default().to_owned()
    };
    let quote = json!({
        "provider": "geotrust", "intent": "refund", "as_of": "2026-06-15T08:30:00Z",
        "order": certgate_core::testing::order(json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}))
    })
    .to_string();
    let targets = [
        wrk::Target {
            method: "GET",
            url: format!("{}/healthz", gw.base),
            body: None,
            bearer: None,
        },
        wrk::Target {
            method: "POST",
            url: format!("{}/v1/quotes", gw.base),
            body: Some(quote),
            bearer: Some(KEY),
        },
        wrk::Target {
            method: "GET",
            url: format!("{}/v1/operations/{operation}", gw.base),
            body: None,
            bearer: Some(KEY),
        },
    ];
    let mut runs: [Vec<wrk::Run>; 3] = Default::default();
    for target in &targets {
        wrk.run(dir, target, CONNECTIONS, Duration::from_secs(1))?; // warm up
    }
    for _ in 0..ROUNDS {
        for (target, runs) in targets.iter().zip(runs.iter_mut()) {
            runs.push(wrk.run(dir, target, CONNECTIONS, Duration::from_secs(5))?);
        }
    }
    let [healthz, quotes, read] = &runs;
    let rate = |r: &[wrk::Run]| wrk::median(r, wrk::Run::per_sec);
    let p50 = |r: &[wrk::Run]| Duration::from_secs_f64(wrk::median(r, |r| r.p50().as_secs_f64()));
    let p99 = |r: &[wrk::Run]| Duration::from_secs_f64(wrk::median(r, |r| r.p99().as_secs_f64()));
    let rates = |r: &[wrk::Run]| {
        r.iter()
            .map(|r| format!("{:.0}", r.per_sec()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.add(
        "http",
        format!("load generator: {} (one thread, {CONNECTIONS} connections), {ROUNDS} alternating rounds of 5 s, medians", wrk.version),
        "-",
        "",
        None,
    );
    report.add(
        "http",
        "GET /healthz: requests/s (the ceiling; each round)",
        format!("{:.0}/s ({})", rate(healthz), rates(healthz)),
        "",
        None,
    );
    report.add(
        "http",
        "GET /healthz p50 / p99",
        format!("{} / {}", ms(p50(healthz)), ms(p99(healthz))),
        "",
        None,
    );
    for (name, runs, target) in [
        ("POST /v1/quotes", quotes, 0.8),
        ("GET /v1/operations/{id} (a store read, SQLite)", read, 0.5),
    ] {
        let ratio = rate(runs) / rate(healthz);
        report.add(
            "http",
            format!("{name}: requests/s (each round)"),
            format!("{:.0}/s ({})", rate(runs), rates(runs)),
            "",
            None,
        );
        report.add(
            "http",
            format!("{name} throughput / GET /healthz throughput"),
            format!("{:.0}%", ratio * 100.0),
            format!(">= {:.0}%", target * 100.0),
            Some(ratio >= target),
        );
        let p99_ratio = p99(runs).as_secs_f64() / p99(healthz).as_secs_f64();
        report.add(
            "http",
            format!("{name} p50 / p99"),
            format!("{} / {}", ms(p50(runs)), ms(p99(runs))),
            "",
            None,
        );
        report.add(
            "http",
            format!("{name} p99 / GET /healthz p99"),
            format!("{p99_ratio:.2}"),
            if target >= 0.8 { "<= 1.5" } else { "" },
            (target >= 0.8).then_some(p99_ratio <= 1.5),
        );
    }
    let errors: u64 = runs.iter().flatten().map(wrk::Run::errors).sum();
    report.add(
        "http",
        "errors (failed or non-2xx answers, every run)",
        format!("{errors}"),
        "0",
        Some(errors == 0),
    );
    Ok(())
}

fn cancel_body(order_id: &str) -> String {
    json!({"provider": "digicert", "intent": "cancel",
           "order": certgate_core::testing::order(json!({"state": "pending", "issued_at": null, "supplier_order_id": order_id}))})
    .to_string()
}

/// POSTs `n` cancels (order ids `{run}{i}`, digits) with `concurrency` clients.
async fn post_many(base: &str, run: &str, n: u64, concurrency: u64) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, next, base, run) =
                (http.clone(), next.clone(), base.to_owned(), run.to_owned());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let id = format!("{run}{i:05}");
                    let res = http
                        .post(format!("{base}/v1/operations"))
                        .bearer_auth(KEY)
                        .header("idempotency-key", &id)
                        .body(cancel_body(&id))
                        .send()
                        .await?;
                    anyhow::ensure!(res.status() == 202, "POST answered {}", res.status());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn wait_until(deadline: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// A database of its own on the Postgres server `url` names (dropped by [`drop_database`]):
/// figures must not depend on what other runs left there (a test server may run without
/// autovacuum, where every earlier run's dead rows slow the next one down).
async fn fresh_database(url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let db = format!("certgate_bench_{}", run_id());
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await?;
    let mut fresh = url::Url::parse(url)?;
    fresh.set_path(&format!("/{db}"));
    Ok(fresh.to_string())
}

/// What durability costs a SQLite commit: one small transaction at a time (an attempt's save)
/// on a WAL file with `synchronous = FULL` (the store's setting: the commit is on disk before
/// the request it precedes goes) and with `NORMAL` (a power loss may drop the last commits).
async fn sqlite_commits(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::ConnectOptions;
    let mut p50 = Vec::new();
    for (name, sync) in [
        ("FULL", SqliteSynchronous::Full),
        ("NORMAL", SqliteSynchronous::Normal),
    ] {
        let path = dir.join(format!("commits-{name}.db"));
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .connect()
            .await?;
        sqlx::query("CREATE TABLE saves (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .execute(&mut conn)
            .await?;
        let body = "x".repeat(2_000);
        let mut times = Vec::new();
        for _ in 0..1_000 {
            let t = Instant::now();
            sqlx::query("INSERT INTO saves (body) VALUES ($1)")
                .bind(&body)
                .execute(&mut conn)
                .await?;
            times.push(t.elapsed());
        }
        times.sort_unstable();
        let median = times[times.len() / 2];
        report.add(
            "ops",
            format!("one save committed, synchronous = {name} (SQLite WAL), p50 / p99"),
            format!("{} / {}", ms(median), ms(times[times.len() * 99 / 100])),
            "",
            None,
        );
        p50.push(median);
        drop(conn);
        std::fs::remove_file(&path).ok();
    }
    report.add(
        "ops",
        "durability's cost per commit (FULL p50 - NORMAL p50)",
        ms(p50[0].saturating_sub(p50[1])),
        "",
        None,
    );
    Ok(())
}

/// Drops a database [`fresh_database`] made.
async fn drop_database(url: &str, fresh: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let db = url::Url::parse(fresh)?
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Digits unique to this run (milliseconds since the epoch): CA order ids are digits.
fn run_id() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

async fn ops(
    report: &mut Report,
    dir: &Path,
    label: &'static str,
    database: &str,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let (mock, counters) = mockca::start(Duration::ZERO, &[]).await?;
    let cfg = config(
        dir,
        &format!("ops-{label}.toml"),
        Some(&mock),
        "",
        "poll_ms = 5",
    )?;
    let gw = Gateway::start(&cfg, database)?;
    let run = run_id();
    // Throughput.
    let n = 2_000;
    let start = Instant::now();
    post_many(&gw.base, &format!("2{run}"), n, 32).await?;
    let all = wait_until(Duration::from_secs(120), || {
        counters.cancels.load(Relaxed) >= n
    })
    .await;
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    report.add(
        "ops",
        format!("operations end to end per second ({label}, {n} ops, mock CA without delay)"),
        format!("{per_sec:.0}/s"),
        "",
        None,
    );
    anyhow::ensure!(all, "not every operation reached the CA");

    // Added latency: one operation at a time, from acceptance to completion (the gateway's own
    // timestamps), against the same two calls made directly.
    let http = reqwest::Client::new();
    let mut through = Vec::new();
    for i in 0..200 {
        let id = format!("1{run}{i:04}");
        let res = http
            .post(format!("{}/v1/operations", gw.base))
            .bearer_auth(KEY)
            .header("idempotency-key", &id)
            .body(cancel_body(&id))
            .send()
            .await?;
        let op: Value = res.json().await?;
        let op_id = op["id"].as_str().unwrap_or_default().to_owned();
        let done = loop {
            let op: Value = http
                .get(format!("{}/v1/operations/{op_id}", gw.base))
                .bearer_auth(KEY)
                .send()
                .await?
                .json()
                .await?;
            if op["status"] == "completed" {
                break op;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let at = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let (created, finished) = (at(&done["created_at"])?, at(&done["updated_at"])?);
        through.push((finished - created).to_std().unwrap_or_default());
    }
    // Measured like the operations: one at a time, idle in between (as the sequential
    // operations leave the mock idle while the bench polls).
    let mut direct = Vec::new();
    for i in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let t = Instant::now();
        http.get(format!("{mock}/order/certificate/d-{i}"))
            .send()
            .await?
            .bytes()
            .await?;
        http.put(format!("{mock}/order/certificate/d-{i}/status"))
            .body("{}")
            .send()
            .await?
            .bytes()
            .await?;
        direct.push(t.elapsed());
    }
    through.sort_unstable();
    direct.sort_unstable();
    let (t50, d50) = (through[through.len() / 2], direct[direct.len() / 2]);
    let overhead = t50.saturating_sub(d50);
    report.add(
        "ops",
        format!("one operation, accepted to completed, p50 ({label})"),
        ms(t50),
        "",
        None,
    );
    report.add(
        "ops",
        format!("the same CA calls made directly (read + cancel), p50 ({label})"),
        ms(d50),
        "",
        None,
    );
    let target = label == "SQLite";
    report.add(
        "ops",
        format!("gateway overhead on an automated step, p50 ({label})"),
        ms(overhead),
        if target { "< 1 ms" } else { "" },
        target.then_some(overhead < Duration::from_millis(1)),
    );
    Ok(())
}

async fn inflight(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let (mock, counters) = mockca::start(Duration::from_secs(2), &[]).await?;
    let n = 10_000u64;
    let cfg = config(
        dir,
        "inflight.toml",
        Some(&mock),
        "",
        &format!("workers = {n}\npoll_ms = 5\nlease_ms = 60000"),
    )?;
    let db = format!("sqlite://{}", dir.join("inflight.db").display());
    let gw = Gateway::start(&cfg, &db)?;
    let start = Instant::now();
    post_many(&gw.base, &format!("3{}", run_id()), n, 64).await?;
    let posted = start.elapsed();
    let all = wait_until(Duration::from_secs(300), || {
        counters.cancels.load(Relaxed) >= n
    })
    .await;
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = gw.peak_rss();
    let per_order = counters.per_order.lock().unwrap_or_else(|e| e.into_inner());
    let twice = per_order.values().filter(|c| **c > 1).count();
    let lost = n as usize - per_order.len();
    report.add(
        "inflight",
        format!("{n} operations against a CA answering after 2 s: all done in"),
        format!("{:.1} s", took.as_secs_f64()),
        "",
        None,
    );
    report.add(
        "inflight",
        "time to accept all (POST)",
        format!("{:.1} s", posted.as_secs_f64()),
        "",
        None,
    );
    report.add(
        "inflight",
        "lost / run twice",
        format!("{lost} / {twice}"),
        "0 / 0",
        Some(all && lost == 0 && twice == 0),
    );
    report.add(
        "inflight",
        "gateway peak RSS",
        mb(peak),
        "< 300 MB",
        Some(peak.is_some_and(|p| p < 300_000_000)),
    );
    Ok(())
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

/// The least time `calls` calls can take under `limits` (`(requests, per_ms)`), first to last.
fn minimum(calls: usize, limits: &[(usize, u64)]) -> Duration {
    use certgate_core::pace::{admit, Admit, Window};
    let windows: Vec<Window> = limits
        .iter()
        .map(|(n, ms)| Window {
            limit: *n as u32,
            span_ms: *ms as i64,
        })
        .collect();
    let mut sends = Vec::with_capacity(calls);
    let mut t = 0;
    for _ in 0..calls {
        if let Admit::At(at) = admit(&sends, &windows, 1, 0, t) {
            t = at;
        }
        sends.push(t);
    }
    Duration::from_millis(t as u64)
}

/// A burst of 2,000 cancels (a read and a cancel each) on one DigiCert key whose limits the
/// mock enforces, through `gateways` gateways on `database`.
async fn burst(
    report: &mut Report,
    dir: &Path,
    label: &str,
    database: &str,
    gateways: usize,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    // DigiCert's limits (100 per 5 s, 1000 per 5 min) scaled 20x faster, on both sides.
    let limits = [(100usize, 250u64), (1_000, 15_000)];
    let (mock, counters) = mockca::start(Duration::ZERO, &limits).await?;
    let cfg = config(
        dir,
        &format!("pacing-{label}.toml"),
        Some(&mock),
        "rate_limits = [{ requests = 100, per_ms = 250 }, { requests = 1000, per_ms = 15000 }]",
        "",
    )?;
    let gws = (0..gateways)
        .map(|_| Gateway::start(&cfg, database))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let n = 2_000u64;
    let run = run_id();
    let per = n / gateways as u64;
    let posts: Vec<_> = gws
        .iter()
        .enumerate()
        .map(|(g, gw)| {
            let (base, run) = (gw.base.clone(), format!("{g}{run}"));
            tokio::spawn(async move { post_many(&base, &run, per, 16).await })
        })
        .collect();
    for p in posts {
        p.await??;
    }
    let all = wait_until(Duration::from_secs(300), || {
        counters.cancels.load(Relaxed) >= n
    })
    .await;
    let took = counters.took();
    let least = minimum(2 * n as usize, &limits);
    let efficiency = least.as_secs_f64() / took.as_secs_f64().max(1e-9);
    let rejected = counters.rejected_429.load(Relaxed);
    let what = format!(
        "{n} operations ({} calls) on one DigiCert key, {label} (limits scaled 20x)",
        2 * n
    );
    report.add(
        "pacing",
        format!("{what}: done in"),
        format!(
            "{:.1} s (minimum {:.1} s)",
            took.as_secs_f64(),
            least.as_secs_f64()
        ),
        "",
        None,
    );
    report.add(
        "pacing",
        format!("{what}: efficiency (minimum / measured)"),
        format!("{efficiency:.2}"),
        ">= 0.9",
        Some(all && efficiency >= 0.9),
    );
    report.add(
        "pacing",
        format!("{what}: answers of 429"),
        format!("{rejected}"),
        "0",
        Some(all && rejected == 0),
    );
    drop(gws);
    Ok(())
}

async fn pacing(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let db = format!("sqlite://{}", dir.join("pacing.db").display());
    burst(report, dir, "one gateway", &db, 1).await?;
    match std::env::var("CERTGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let fresh = fresh_database(&url).await?;
            burst(report, dir, "two gateways on Postgres", &fresh, 2).await?;
            drop_database(&url, &fresh).await?;
        }
        _ => report.add(
            "pacing",
            "two gateways on Postgres",
            "skipped: CERTGATE_TEST_POSTGRES_URL is not set".to_owned(),
            "",
            None,
        ),
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map_or("?".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1_048_576.0)
        });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{cores} cores ({cpu}), {mem} RAM, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// A counter or gauge of the gateway's `/metrics` (summed over its series).
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// 1,000,000 watched orders: imported with `certgate orders import`, then re-quoted by the
/// gateway's first pass over them (all due), on `database` (`label`).
async fn watch(report: &mut Report, dir: &Path, label: &str, database: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let n: u64 = 1_000_000;
    let now = chrono::Utc::now();
    let file = dir.join("watched.jsonl");
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?);
        for i in 0..n {
            writeln!(w, "{}", workload::sweep_line(i, now))?;
        }
    }
    let config = dir.join("watch.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[watch]\npoll_ms = 200\nbatch = 1000\nworkers = 2\n",
            certgate::DEFAULT_PROVIDERS_TOML
        ),
    )?;
    let started = Instant::now();
    let out = std::process::Command::new(gateway::binary())
        .args(["orders", "import", "--database", database, "--config"])
        .arg(&config)
        .arg(&file)
        .output()?;
    let import = started.elapsed();
    let _ = std::fs::remove_file(&file);
    anyhow::ensure!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    report.add(
        "watch",
        format!("{label}: import of {n} orders (`certgate orders import`)"),
        format!("{:.1} s", import.as_secs_f64()),
        "",
        None,
    );
    let gw = Gateway::start(&config, database)?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let checked = loop {
        let checked = metric(&client, &gw.base, "certgate_watch_checked_orders").await?;
        if checked >= n as f64 || started.elapsed() > Duration::from_secs(600) {
            break checked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pass = metric(&client, &gw.base, "certgate_watch_last_pass_seconds").await?;
    let events = client
        .get(format!(
            "{}/v1/events?type=order.refund_window_closing&limit=1",
            gw.base
        ))
        .bearer_auth(KEY)
        .send()
        .await?
        .status();
    anyhow::ensure!(events.is_success(), "the feed answered {events}");
    report.add(
        "watch",
        format!("{label}: full re-quote pass of {checked:.0} watched orders"),
        format!("{pass:.1} s"),
        "< 60 s",
        Some(checked >= n as f64 && pass < 60.0),
    );
    let peak = gw.peak_rss();
    report.add(
        "watch",
        format!("{label}: gateway peak RSS during the pass"),
        mb(peak),
        "< 300 MB",
        Some(peak.is_some_and(|p| p < 300_000_000)),
    );
    Ok(())
}

fn write_markdown(
    report: &Report,
    sections: &[String],
    started: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<PathBuf> {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut md = String::new();
    writeln!(md, "# certgate benchmarks\n")?;
    writeln!(
        md,
        "Written by `cargo run --release -p certgate-bench` ({}) on {} at commit `{rev}`.",
        sections.join(" "),
        started.format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(
        md,
        "Machine: {}. The gateway under test is the release `certgate` binary in its own process;",
        machine()
    )?;
    writeln!(md, "the load generator and the mock CAs share the same cores, so every HTTP figure is measured")?;
    writeln!(md, "beside its ceiling in the same run. Criterion micro-benchmarks of the policy: `cargo bench -p certgate-bench`.\n")?;
    writeln!(
        md,
        "| section | figure | value | target | verdict |\n|---|---|---|---|---|"
    )?;
    for f in &report.figures {
        let verdict = match f.pass {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        writeln!(
            md,
            "| {} | {} | {} | {} | {verdict} |",
            f.section, f.what, f.value, f.target
        )?;
    }
    md.push_str(NOTES);
    // A subset must not replace the whole file's figures with its own few.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = if sections.len() == SECTIONS.len() {
        root.join("BENCHMARKS.md")
    } else {
        root.join("target/benchmarks-partial.md")
    };
    std::fs::write(&path, md)?;
    Ok(path)
}

/// What bounds each figure, kept with the numbers.
const NOTES: &str = include_str!("notes.md");

/// Every section, in the order a full run takes them.
const SECTIONS: [&str; 7] = [
    "policy", "http", "ops", "inflight", "sweep", "pacing", "watch",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let all = SECTIONS;
    let mut sections: Vec<String> = std::env::args().skip(1).collect();
    if sections.is_empty() {
        sections = all.iter().map(|s| (*s).to_owned()).collect();
    }
    if let Some(bad) = sections.iter().find(|s| !all.contains(&s.as_str())) {
        anyhow::bail!("unknown section `{bad}`; sections: {}", all.join(" "));
    }
    // Refuse before anything runs, not ten minutes in.
    let wrk = if sections.iter().any(|s| s == "http") {
        Some(wrk::Wrk::find()?)
    } else {
        None
    };
    let started = chrono::Utc::now();
    gateway::ensure_built()?;
    let dir = std::env::temp_dir().join(format!("certgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut report = Report::default();
    for s in &sections {
        match s.as_str() {
            "policy" => policy(&mut report),
            "http" => http(&mut report, &dir, wrk.as_ref().expect("found above")).await?,
            "ops" => {
                ops(
                    &mut report,
                    &dir,
                    "SQLite",
                    &format!("sqlite://{}", dir.join("ops.db").display()),
                )
                .await?;
                sqlite_commits(&mut report, &dir).await?;
                match std::env::var("CERTGATE_TEST_POSTGRES_URL") {
                    Ok(url) if !url.is_empty() => {
                        let fresh = fresh_database(&url).await?;
                        ops(&mut report, &dir, "Postgres", &fresh).await?;
                        drop_database(&url, &fresh).await?;
                    }
                    _ => report.add(
                        "ops",
                        "Postgres: SKIPPED (set CERTGATE_TEST_POSTGRES_URL)",
                        "-",
                        "",
                        None,
                    ),
                }
            }
            "inflight" => inflight(&mut report, &dir).await?,
            "sweep" => {
                sweep(&mut report, &dir)?;
                sweep_beside_traffic(&mut report, &dir).await?;
            }
            "pacing" => pacing(&mut report, &dir).await?,
            "watch" => {
                match std::env::var("CERTGATE_TEST_POSTGRES_URL") {
                    Ok(url) if !url.is_empty() => {
                        let fresh = fresh_database(&url).await?;
                        watch(&mut report, &dir, "Postgres", &fresh).await?;
                        drop_database(&url, &fresh).await?;
                    }
                    _ => report.add(
                        "watch",
                        "Postgres: SKIPPED (set CERTGATE_TEST_POSTGRES_URL)",
                        "-",
                        "",
                        None,
                    ),
                }
                let db = dir.join("watch.db");
                watch(
                    &mut report,
                    &dir,
                    "SQLite",
                    &format!("sqlite://{}", db.display()),
                )
                .await?;
            }
            _ => unreachable!("checked above"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let path = write_markdown(&report, &sections, started)?;
    println!("\nwrote {}", path.display());
    Ok(())
}
