//! `inflight`: 10,000 operations in flight at once against a CA that answers after 2 s: the
//! time to accept and to finish them all, none lost or run twice, and the gateway's peak RSS.

use crate::gateway::Gateway;
use crate::harness::{config, mb, post_many, run_id, wait_until};
use crate::mockca;
use crate::report::Report;
use std::path::Path;
use std::time::{Duration, Instant};

pub async fn run(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
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
