//! What the sections share: the gateway's configuration, the load helpers that POST cancels
//! and wait for the mock CA to see them, Postgres databases of a run's own, run ids, and the
//! units figures are printed in.

use crate::gateway::KEY;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

pub fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

/// The repository's providers.toml with DigiCert at `mock` (or the real URL), its rate limits
/// replaced by `limits`, and the executor settings given.
pub fn config(
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

pub fn cancel_body(order_id: &str) -> String {
    json!({"provider": "digicert", "intent": "cancel",
           "order": certgate_core::testing::order(json!({"state": "pending", "issued_at": null, "supplier_order_id": order_id}))})
    .to_string()
}

/// POSTs `n` cancels (order ids `{run}{i}`, digits) with `concurrency` clients.
pub async fn post_many(base: &str, run: &str, n: u64, concurrency: u64) -> anyhow::Result<()> {
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

pub async fn wait_until(deadline: Duration, done: impl Fn() -> bool) -> bool {
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
pub async fn fresh_database(url: &str) -> anyhow::Result<String> {
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

/// Drops a database [`fresh_database`] made.
pub async fn drop_database(url: &str, fresh: &str) -> anyhow::Result<()> {
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
pub fn run_id() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

/// The Postgres server `CERTGATE_TEST_POSTGRES_URL` names, when it is set and not empty.
pub fn postgres_url() -> Option<String> {
    std::env::var("CERTGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}
