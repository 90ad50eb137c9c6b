//! A mock DigiCert for the load benchmarks: instant order reads, cancels that answer after a
//! configurable delay, per-order call counts, and optional sliding-window rate limits that
//! answer 429 like DigiCert.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Counters {
    pub reads: AtomicU64,
    pub cancels: AtomicU64,
    pub rejected_429: AtomicU64,
    /// Cancels per order id.
    pub per_order: Mutex<HashMap<String, u32>>,
    /// When the first and the last call the limits let through came.
    pub span: Mutex<Option<(Instant, Instant)>>,
}

impl Counters {
    /// First to last call let through.
    pub fn took(&self) -> Duration {
        self.span
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(Duration::ZERO, |(a, b)| b.duration_since(a))
    }
}

#[derive(Debug)]
struct Limits {
    windows: Vec<(usize, Duration, VecDeque<Instant>)>,
}

#[derive(Clone)]
struct Mock {
    delay: Duration,
    counters: Arc<Counters>,
    limits: Option<Arc<Mutex<Limits>>>,
}

impl Mock {
    /// True if this request overflows a window (it is then refused, uncounted).
    fn over_limit(&self) -> bool {
        let Some(limits) = &self.limits else {
            return false;
        };
        let now = Instant::now();
        let mut l = limits.lock().unwrap_or_else(|e| e.into_inner());
        let over = l.windows.iter_mut().any(|(n, span, seen)| {
            while seen
                .front()
                .is_some_and(|t| now.duration_since(*t) >= *span)
            {
                seen.pop_front();
            }
            seen.len() >= *n
        });
        if !over {
            for (_, _, seen) in l.windows.iter_mut() {
                seen.push_back(now);
            }
            let mut span = self.counters.span.lock().unwrap_or_else(|e| e.into_inner());
            *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
        }
        over
    }
}

fn too_many() -> axum::response::Response {
    (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({"errors": [{"code": "request_limit_exceeded", "message": "slow down"}]}))).into_response()
}

async fn read(State(m): State<Mock>, Path(id): Path<String>) -> axum::response::Response {
    if m.over_limit() {
        m.counters.rejected_429.fetch_add(1, Ordering::Relaxed);
        return too_many();
    }
    m.counters.reads.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({"id": id, "status": "pending", "requests": []})).into_response()
}

async fn cancel(State(m): State<Mock>, Path(id): Path<String>) -> axum::response::Response {
    if m.over_limit() {
        m.counters.rejected_429.fetch_add(1, Ordering::Relaxed);
        return too_many();
    }
    if !m.delay.is_zero() {
        tokio::time::sleep(m.delay).await;
    }
    *m.counters
        .per_order
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(id)
        .or_default() += 1;
    m.counters.cancels.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT.into_response()
}

/// Starts the mock on a random port; returns its base URL (`.../services/v2`) and counters.
pub async fn start(
    delay: Duration,
    limits: &[(usize, u64)],
) -> anyhow::Result<(String, Arc<Counters>)> {
    let counters = Arc::new(Counters::default());
    let limits = (!limits.is_empty()).then(|| {
        Arc::new(Mutex::new(Limits {
            windows: limits
                .iter()
                .map(|(n, ms)| (*n, Duration::from_millis(*ms), VecDeque::new()))
                .collect(),
        }))
    });
    let mock = Mock {
        delay,
        counters: counters.clone(),
        limits,
    };
    let app = Router::new()
        .route("/services/v2/order/certificate/{id}", get(read))
        .route("/services/v2/order/certificate/{id}/status", put(cancel))
        .with_state(mock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/services/v2"), counters))
}
