//! certgate's HTTP API (API.md): the axum router, bearer-key authentication and problem+json
//! errors. `app()` builds the router so most tests need no socket; `serve()` runs it.

pub mod accounts;
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
pub mod server;
pub mod service;
pub mod supervise;
pub mod tenants;
pub mod watch;
pub mod webhooks;

use arc_swap::ArcSwap;
use auth::ApiKeys;
use axum::Router;
use certgate_core::Registry;
use certgate_store::Store;
use chrono::{DateTime, Utc};
use config::{DeskConfig, EventsConfig, ExecutorConfig, ServerConfig, WatchConfig, WebhooksConfig};
use std::sync::Arc;
use tenants::Tenants;
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

/// What a config reload (SIGHUP) replaces: the providers, the tenants with their keys,
/// webhooks and CA accounts, the helpdesk, the desk's users. A request or an operation run
/// keeps the one it started with.
#[derive(Debug)]
pub struct Live {
    pub registry: Registry,
    pub tenants: Tenants,
    pub keys: ApiKeys,
    /// The CA account each tenant's calls to each provider go through.
    pub accounts: accounts::Accounts,
    pub helpdesk: Option<Helpdesk>,
    /// The support desk's users.
    pub desk: desk::DeskUsers,
}

impl Live {
    /// The tenants (with `CERTGATE_API_KEY`'s `default_key` as tenant `default`, whose
    /// reseller username is `default_username`), their keys and CA accounts, and the desk's
    /// users, from the config file's sections; every problem of all of them at once. No
    /// helpdesk.
    pub fn build(
        registry: Registry,
        tenants: &[config::TenantConfig],
        desk_users: &[config::DeskUserConfig],
        default_key: Option<&str>,
        default_username: &str,
    ) -> Result<Live, certgate_core::config::ConfigError> {
        let mut issues = Vec::new();
        let built = Tenants::from_config(tenants, default_key, default_username)
            .map_err(|e| issues.extend(e.issues))
            .ok();
        let accounts = accounts::Accounts::build(&registry, tenants)
            .map_err(|e| issues.extend(e))
            .ok();
        let desk = built.as_ref().and_then(|(t, _)| {
            desk::DeskUsers::from_config(desk_users, t)
                .map_err(|e| issues.extend(e.issues))
                .ok()
        });
        match (built, accounts, desk) {
            (Some((tenants, keys)), Some(accounts), Some(desk)) if issues.is_empty() => Ok(Live {
                registry,
                tenants,
                keys,
                accounts,
                helpdesk: None,
                desk,
            }),
            _ => Err(certgate_core::config::ConfigError { issues }),
        }
    }

    /// The CA order `order` names when `tenant`'s calls to `provider` go through a shared CA
    /// account: bound to the first tenant acting on it. `None` in the tenant's own account, for
    /// a provider without an API, or an order without the id the CA knows it by.
    pub fn shared_order(
        &self,
        tenant: &str,
        provider: &str,
        order: &certgate_core::Order,
    ) -> Option<accounts::SharedOrder> {
        self.registry.get(provider)?.client.as_ref()?;
        self.accounts.get(tenant, provider)?.shared_order(order)
    }
}

/// Everything a request handler and a worker need: one [`Shared`] behind one `Arc`, so that
/// the several clones every request takes (middleware, extractors) are one count each.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(live: Live, store: Store) -> Self {
        Shared::new(live, store).into()
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares; its settings are set before it is shared.
#[derive(Debug)]
pub struct Shared {
    live: ArcSwap<Live>,
    pub store: Store,
    pub executor: ExecutorConfig,
    pub webhooks: WebhooksConfig,
    pub events: EventsConfig,
    pub watch: WatchConfig,
    /// The HTTP edge's limits.
    pub server: ServerConfig,
    /// The desk's sessions and cookies.
    pub desk: DeskConfig,
    pub pacing: pacing::Pacing,
    /// Tells the executor that work is due now (a new operation, a resolved ticket).
    pub wake: tokio::sync::Notify,
    /// Tells webhook delivery that deliveries were queued.
    pub deliver: tokio::sync::Notify,
    pub metrics: metrics::Metrics,
    /// Which background loops are down.
    pub supervision: supervise::Supervision,
    /// Whether the store takes writes (for `/readyz`).
    pub write_probe: supervise::WriteProbe,
    /// Failed authentications by client address, the API's and the desk's apart.
    pub guesses: Doors,
    /// The sweeps each tenant runs now.
    pub sweeps: server::TenantSlots,
    pub clock: Clock,
    /// The OpenAPI document, set by [`app`] from the routes it builds.
    openapi: std::sync::OnceLock<openapi::Document>,
}

impl Shared {
    pub fn new(live: Live, store: Store) -> Self {
        let pacing = pacing::Pacing::new(
            (store.backend() == certgate_store::Backend::Postgres).then(|| store.clone()),
        );
        for account in live.accounts.iter() {
            pacing.register(&account.pace);
        }
        Shared {
            pacing,
            wake: tokio::sync::Notify::new(),
            deliver: tokio::sync::Notify::new(),
            metrics: metrics::Metrics::default(),
            supervision: supervise::Supervision::default(),
            write_probe: supervise::WriteProbe::default(),
            guesses: Doors::default(),
            sweeps: server::TenantSlots::default(),
            live: ArcSwap::from_pointee(live),
            store,
            executor: ExecutorConfig::default(),
            webhooks: WebhooksConfig::default(),
            events: EventsConfig::default(),
            watch: WatchConfig::default(),
            server: ServerConfig::default(),
            desk: DeskConfig::default(),
            clock: Utc::now,
            openapi: std::sync::OnceLock::new(),
        }
    }

    /// The providers, tenants and helpdesk as configured now.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts a reloaded config in place: new requests and operation runs use it; those under
    /// way finish with the one they started with. (A CA account's pace is kept as it is; a new
    /// account gets one.)
    pub fn reload(&self, live: Live) {
        for account in live.accounts.iter() {
            self.pacing.register(&account.pace);
        }
        self.live.store(Arc::new(live));
    }
}

/// The doors a key opens, each counting its own failures.
#[derive(Debug, Default)]
pub struct Doors {
    pub api: auth::Guesses,
    pub desk: auth::Guesses,
}

/// The background work of a gateway: executor workers, webhook delivery, event pruning, the
/// watch over watched orders and overdue refunds.
#[derive(Debug)]
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the executor, the webhook delivery, the event pruning and the watch, each
    /// supervised ([`supervise`]).
    pub fn start(state: &AppState) -> Background {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let loops: [(&'static str, supervise::Start); 4] = [
            ("executor", executor::spawn),
            ("deliveries", webhooks::spawn),
            ("pruner", events::spawn_pruner),
            ("watch", watch::spawn),
        ];
        let tasks = loops
            .into_iter()
            .map(|(name, start)| supervise::supervise(name, state.clone(), rx.clone(), start))
            .collect();
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

pub use server::serve;
