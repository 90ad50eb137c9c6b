//! certgate's HTTP API (API.md): the axum router, bearer-key authentication and problem+json
//! errors. `app()` builds the router so most tests need no socket; `serve()` runs it.

pub mod auth;
pub mod body;
pub mod problem;
mod routes;

use auth::ApiKeys;
use axum::Router;
use certgate_core::Registry;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where "now" comes from when a request gives no `as_of` (tests pin it).
pub type Clock = fn() -> DateTime<Utc>;

/// Everything a request handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub keys: Arc<ApiKeys>,
    pub clock: Clock,
}

impl AppState {
    pub fn new(registry: Registry, keys: ApiKeys) -> Self {
        AppState {
            registry: Arc::new(registry),
            keys: Arc::new(keys),
            clock: Utc::now,
        }
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
