//! `GET /v1/providers`: each provider, its plugin or `config`, its rules and windows.

use crate::AppState;
use axum::extract::State;
use axum::Json;
use certgate_core::registry::ProviderDescription;
use serde::Serialize;

/// Every configured provider.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Providers<'a> {
    pub providers: Vec<ProviderDescription<'a>>,
}

/// The providers this gateway serves, with their rules, windows and holidays.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", responses(
    (status = 200, description = "Every configured provider", body = Providers),
))]
pub async fn list(State(state): State<AppState>) -> Json<serde_json::Value> {
    let live = state.live();
    let providers = Providers {
        providers: live.registry.iter().map(|p| p.describe()).collect(),
    };
    Json(serde_json::to_value(providers).unwrap_or_default())
}
