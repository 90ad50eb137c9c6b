//! certgate's engine: everything that happens after the API has said yes, and keeps happening
//! without a request — the operation executor (claim → pace → call the CA → save through the
//! lifecycle), pacing shared by gateways, events with webhook and helpdesk delivery, the watch
//! over watched orders and the refund ledger. No web framework: the HTTP API (`certgate-server`)
//! calls into [`service`] and maps [`EngineError`] to HTTP in one place.

pub mod accounts;
pub mod config;
mod error;
pub mod events;
pub mod executor;
pub mod ids;
pub mod ledger;
pub mod metrics;
pub mod pacing;
pub mod service;
pub mod supervise;
pub mod tenants;
pub mod watch;
pub mod webhooks;

pub use error::EngineError;

use arc_swap::ArcSwap;
use certgate_core::Registry;
use certgate_core::TenantId;
use certgate_store::Store;
use chrono::{DateTime, Utc};
use config::{EventsConfig, ExecutorConfig, WatchConfig, WebhooksConfig};
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

/// What a config reload (SIGHUP) replaces for the engine: the providers, the tenants with
/// their webhooks, the CA accounts, the helpdesk. An operation run keeps the one it started
/// with.
#[derive(Debug)]
pub struct Live {
    pub registry: Registry,
    pub tenants: Tenants,
    /// The CA account each tenant's calls to each provider go through.
    pub accounts: accounts::Accounts,
    pub helpdesk: Option<Helpdesk>,
}

impl Live {
    /// The CA order `order` names when `tenant`'s calls to `provider` go through a shared CA
    /// account: bound to the first tenant acting on it. `None` in the tenant's own account, for
    /// a provider without an API, or an order without the id the CA knows it by.
    pub fn shared_order(
        &self,
        tenant: &TenantId,
        provider: &str,
        order: &certgate_core::Order,
    ) -> Option<accounts::SharedOrder> {
        self.registry.get(provider)?.client.as_ref()?;
        self.accounts.get(tenant, provider)?.shared_order(order)
    }
}

/// The engine's state, shared by its loops and by the API that calls into it; its settings
/// are set before it is shared.
#[derive(Debug)]
pub struct Engine {
    live: ArcSwap<Live>,
    pub store: Store,
    pub executor: ExecutorConfig,
    pub webhooks: WebhooksConfig,
    pub events: EventsConfig,
    pub watch: WatchConfig,
    /// The CA accounts' paces, on the clock the engine is made with (the wall clock). A clock
    /// set on `clock` afterwards (a test's) does not reach them: on Postgres the instants they
    /// count are the database's, which a moved clock would not match.
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
    pub clock: Clock,
}

impl Engine {
    pub fn new(live: Live, store: Store) -> Self {
        let clock: Clock = Utc::now;
        let pacing = pacing::Pacing::with_clock(
            (store.backend() == certgate_store::Backend::Postgres).then(|| store.clone()),
            clock,
        );
        for account in live.accounts.iter() {
            pacing.register(&account.pace);
        }
        Engine {
            pacing,
            wake: tokio::sync::Notify::new(),
            deliver: tokio::sync::Notify::new(),
            metrics: metrics::Metrics::default(),
            supervision: supervise::Supervision::default(),
            write_probe: supervise::WriteProbe::default(),
            live: ArcSwap::from_pointee(live),
            store,
            executor: ExecutorConfig::default(),
            webhooks: WebhooksConfig::default(),
            events: EventsConfig::default(),
            watch: WatchConfig::default(),
            clock,
        }
    }

    /// The providers, tenants and helpdesk as configured now.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts a reloaded config in place: new operation runs use it; those under way finish
    /// with the one they started with. (A CA account's pace is kept as it is; a new account
    /// gets one.)
    pub fn reload(&self, live: Live) {
        for account in live.accounts.iter() {
            self.pacing.register(&account.pace);
        }
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
    /// Starts the executor, the webhook delivery, the event pruning and the watch, each
    /// supervised ([`supervise`]).
    pub fn start(engine: &Arc<Engine>) -> Background {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let loops: [(&'static str, supervise::Start); 4] = [
            ("executor", executor::spawn),
            ("deliveries", webhooks::spawn),
            ("pruner", events::spawn_pruner),
            ("watch", watch::spawn),
        ];
        let tasks = loops
            .into_iter()
            .map(|(name, start)| supervise::supervise(name, engine.clone(), rx.clone(), start))
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
