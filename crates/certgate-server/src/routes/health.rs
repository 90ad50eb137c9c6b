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

/// The counters, in the OpenMetrics text format Prometheus scrapes.
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    state.metrics.pace(&state.pacing.stats());
    match state.store.delivery_backlog().await {
        Ok(backlog) => {
            let now = crate::service::ms((state.clock)());
            state.metrics.webhooks(state.tenants.ids(), &backlog, now);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the webhook backlog for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The API's OpenAPI 3.1 description (`crates/certgate-server/openapi.json`).
pub async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
}
