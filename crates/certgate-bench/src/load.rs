//! Closed-loop HTTP load: `connections` clients each send the next request as soon as the
//! previous answers, for a fixed time; throughput and latency percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Result {
    pub errors: u64,
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// One request to repeat.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub body: Option<String>,
    pub key: Option<&'static str>,
}

pub async fn run(req: Request, connections: usize, duration: Duration) -> Result {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("a client");
    let req = Arc::new(req);
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (http, req) = (http.clone(), req.clone());
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(64 * 1024);
                let mut errors = 0u64;
                while start.elapsed() < duration {
                    let t = Instant::now();
                    let mut b = http.request(req.method.clone(), &req.url);
                    if let Some(k) = req.key {
                        b = b.bearer_auth(k);
                    }
                    if let Some(body) = &req.body {
                        b = b
                            .header("content-type", "application/json")
                            .body(body.clone());
                    }
                    match b.send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("a load task");
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Result {
        errors,
        per_sec: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}
