//! certgate's HTTP API (API.md): the axum router, bearer-key authentication and problem+json
//! errors. `app()` builds the router so most tests need no socket; `serve()` runs it.

pub mod auth;
pub mod body;
pub mod config;
pub mod desk;
pub mod events;
pub mod executor;
mod ids;
pub mod ledger;
pub mod metrics;
mod openapi;
pub mod pacing;
pub mod problem;
mod routes;
pub mod service;
pub mod tenants;
pub mod watch;
pub mod webhooks;

use arc_swap::ArcSwap;
use auth::ApiKeys;
use axum::Router;
use certgate_core::Registry;
use certgate_store::Store;
use chrono::{DateTime, Utc};
use config::{EventsConfig, ExecutorConfig, WatchConfig, WebhooksConfig};
use std::sync::Arc;
use tenants::Tenants;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Where "now" comes from when a request gives no `as_of` (tests pin it).
pub type Clock = fn() -> DateTime<Utc>;

/// An outside helpdesk that receives every new manual ticket.
#[derive(Clone)]
pub struct Helpdesk {
    pub url: String,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Helpdesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helpdesk")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What a config reload (SIGHUP) replaces: the providers, the tenants with their keys and
/// webhooks, the helpdesk, the desk's users. A request or an operation run keeps the one it started with.
#[derive(Debug)]
pub struct Live {
    pub registry: Registry,
    pub tenants: Tenants,
    pub keys: ApiKeys,
    pub helpdesk: Option<Helpdesk>,
    /// The support desk's users.
    pub desk: desk::DeskUsers,
}

/// Everything a request handler and a worker need.
#[derive(Debug, Clone)]
pub struct AppState {
    live: Arc<ArcSwap<Live>>,
    pub store: Store,
    pub executor: ExecutorConfig,
    pub webhooks: WebhooksConfig,
    pub events: EventsConfig,
    pub watch: WatchConfig,
    pub pacing: Arc<pacing::Pacing>,
    /// Tells the executor that work is due now (a new operation, a resolved ticket).
    pub wake: Arc<tokio::sync::Notify>,
    /// Tells webhook delivery that deliveries were queued.
    pub deliver: Arc<tokio::sync::Notify>,
    pub metrics: Arc<metrics::Metrics>,
    pub clock: Clock,
}

impl AppState {
    pub fn new(live: Live, store: Store) -> Self {
        AppState {
            pacing: Arc::new(pacing::Pacing::new(
                &live.registry,
                (store.backend() == certgate_store::Backend::Postgres).then(|| store.clone()),
            )),
            wake: Arc::new(tokio::sync::Notify::new()),
            deliver: Arc::new(tokio::sync::Notify::new()),
            metrics: Arc::default(),
            live: Arc::new(ArcSwap::from_pointee(live)),
            store,
            executor: ExecutorConfig::default(),
            webhooks: WebhooksConfig::default(),
            events: EventsConfig::default(),
            watch: WatchConfig::default(),
            clock: Utc::now,
        }
    }

    /// The providers, tenants and helpdesk as configured now.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts a reloaded config in place: new requests and operation runs use it; those under
    /// way finish with the one they started with. (A CA account's pace is kept as it is.)
    pub fn reload(&self, live: Live) {
        self.live.store(Arc::new(live));
    }
}

/// The background work of a gateway: executor workers, webhook delivery, event pruning, the
/// watch over watched orders and overdue refunds.
#[derive(Debug)]
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the executor, the webhook delivery, the event pruning and the watch.
    pub fn start(state: &AppState) -> Background {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let tasks = vec![
            executor::spawn(state.clone(), rx.clone()),
            webhooks::spawn(state.clone(), rx.clone()),
            events::spawn_pruner(state.clone(), rx.clone()),
            watch::spawn(state.clone(), rx),
        ];
        Background { stop, tasks }
    }

    /// Lets every worker finish its current step, then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
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
