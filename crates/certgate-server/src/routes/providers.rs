//! `GET /v1/providers`: each provider, its plugin or `config`, its rules and windows.

use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let live = state.live();
    let providers: Vec<_> = live.registry.iter().map(|p| p.describe()).collect();
    Json(json!({ "providers": providers }))
}
