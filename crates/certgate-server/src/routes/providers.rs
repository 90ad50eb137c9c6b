//! `GET /v1/providers`: each provider, its plugin or `config`, its rules and windows, and
//! whose CA account the caller's calls go through (never a credential or the CA's address).

use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use certgate_core::registry::ProviderDescription;
use certgate_core::TenantId;
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
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
) -> Json<serde_json::Value> {
    let live = state.live();
    let providers = Providers {
        providers: live
            .registry
            .iter()
            .map(|p| {
                let mut d = p.describe();
                d.account = live
                    .accounts
                    .get(&tenant, &p.name)
                    .filter(|_| p.client.is_some())
                    .map(|a| a.usage());
                d
            })
            .collect(),
    };
    Json(serde_json::to_value(providers).unwrap_or_default())
}
