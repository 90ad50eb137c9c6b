//! `watch`: 1,000,000 watched orders, imported with `certgate orders import` and re-quoted by
//! the gateway's first pass over them, on Postgres (when `CERTGATE_TEST_POSTGRES_URL` is set)
//! and SQLite: the import's time, the pass's time and the gateway's peak RSS during it.

use crate::gateway::{self, Gateway, KEY};
use crate::harness::{drop_database, fresh_database, mb, postgres_url};
use crate::report::Report;
use certgate_bench::workload;
use std::path::Path;
use std::time::{Duration, Instant};

/// Postgres (or a line saying it was skipped), then SQLite.
pub async fn run(report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    match postgres_url() {
        Some(url) => {
            let fresh = fresh_database(&url).await?;
            watch(report, dir, "Postgres", &fresh).await?;
            drop_database(&url, &fresh).await?;
        }
        None => report.add(
            "watch",
            "Postgres: SKIPPED (set CERTGATE_TEST_POSTGRES_URL)",
            "-",
            "",
            None,
        ),
    }
    let db = dir.join("watch.db");
    watch(report, dir, "SQLite", &format!("sqlite://{}", db.display())).await
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
