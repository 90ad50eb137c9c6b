//! `pacing`: a burst of cancels on one DigiCert key whose rate limits the mock CA enforces
//! (scaled 20x faster), through one gateway on SQLite and two sharing Postgres: the time taken
//! against the least the limits allow, and the 429s the CA answered.

use crate::gateway::Gateway;
use crate::harness::{
    config, drop_database, fresh_database, post_many, postgres_url, run_id, wait_until,
};
use crate::mockca;
use crate::report::Report;
use std::path::Path;
use std::time::Duration;

/// One gateway on SQLite, then two on Postgres (or a line saying they were skipped).
pub async fn run(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let db = format!("sqlite://{}", dir.join("pacing.db").display());
    burst(report, dir, "one gateway", &db, 1).await?;
    match postgres_url() {
        Some(url) => {
            let fresh = fresh_database(&url).await?;
            burst(report, dir, "two gateways on Postgres", &fresh, 2).await?;
            drop_database(&url, &fresh).await?;
        }
        None => report.add(
            "pacing",
            "two gateways on Postgres",
            "skipped: CERTGATE_TEST_POSTGRES_URL is not set".to_owned(),
            "",
            None,
        ),
    }
    Ok(())
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
