//! `http`: the served gateway under `wrk`: `POST /v1/quotes` and a store read
//! (`GET /v1/operations/{id}`, SQLite) each against `GET /healthz`, the ceiling, in alternating
//! rounds: requests per second, p50 / p99, and errors.

use crate::gateway::{Gateway, KEY};
use crate::harness::{cancel_body, config, ms, run_id};
use crate::report::Report;
use crate::{mockca, wrk};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Connections each HTTP target is loaded with.
const CONNECTIONS: usize = 64;
/// Rounds of the HTTP targets, alternated; medians are reported.
const ROUNDS: usize = 3;

pub async fn run(report: &mut Report, dir: &Path, wrk: &wrk::Wrk) -> anyhow::Result<()> {
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
