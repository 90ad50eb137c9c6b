//! `ops`: operations end to end through the gateway against a mock CA, on SQLite and (when
//! `CERTGATE_TEST_POSTGRES_URL` is set) Postgres: throughput, and the overhead the gateway
//! adds to one automated step over the same CA calls made directly; and what durability costs
//! a SQLite commit.

use crate::gateway::{Gateway, KEY};
use crate::harness::{
    cancel_body, config, drop_database, fresh_database, ms, post_many, postgres_url, run_id,
    wait_until,
};
use crate::mockca;
use crate::report::Report;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// SQLite, its commits, then Postgres (or a line saying it was skipped).
pub async fn run(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    ops(
        report,
        dir,
        "SQLite",
        &format!("sqlite://{}", dir.join("ops.db").display()),
    )
    .await?;
    sqlite_commits(report, dir).await?;
    match postgres_url() {
        Some(url) => {
            let fresh = fresh_database(&url).await?;
            ops(report, dir, "Postgres", &fresh).await?;
            drop_database(&url, &fresh).await?;
        }
        None => report.add(
            "ops",
            "Postgres: SKIPPED (set CERTGATE_TEST_POSTGRES_URL)",
            "-",
            "",
            None,
        ),
    }
    Ok(())
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
