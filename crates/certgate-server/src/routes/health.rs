//! Liveness and readiness probes (no key needed).

use axum::Json;
use serde_json::{json, Value};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz() -> Json<Value> {
    Json(json!({"status": "ready"}))
}
