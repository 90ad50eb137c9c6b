//! What needs no key: liveness and readiness probes, the metrics, the OpenAPI document.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store answers.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "detail": e.to_string()})),
        ),
    }
}

/// The metrics: OpenMetrics text if the scraper's `Accept` asks for it, else the Prometheus
/// text format. Store-backed gauges are read at each scrape.
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> impl axum::response::IntoResponse {
    state.metrics.pace(&state.pacing.stats());
    let now = crate::service::ms((state.clock)());
    match state.store.delivery_backlog().await {
        Ok(backlog) => state
            .metrics
            .webhooks(state.live().tenants.ids(), &backlog, now),
        Err(e) => tracing::warn!(error = %e, "cannot read the webhook backlog for /metrics"),
    }
    match state.store.counts().await {
        Ok(counts) => state
            .metrics
            .stored(&counts.operations, counts.open_tickets),
        Err(e) => tracing::warn!(error = %e, "cannot count operations for /metrics"),
    }
    let openmetrics = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        state.metrics.render(openmetrics),
    )
}

/// The API's OpenAPI 3.1 description (`crates/certgate-server/openapi.json`).
pub async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
}
