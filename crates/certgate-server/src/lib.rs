//! certgate's HTTP API (API.md) and the support desk: the axum router, bearer-key
//! authentication, problem+json errors (engine errors mapped in `problem.rs`), the OpenAPI
//! document and the metrics endpoint. The work behind the API is `certgate-engine`'s. `app()`
//! builds the router so most tests need no socket; `serve()` runs it.

pub mod auth;
pub mod body;
pub mod config;
pub mod desk;
mod ids;
mod openapi;
pub mod problem;
mod routes;
pub mod server;
pub mod tenants;

use arc_swap::ArcSwap;
use auth::ApiKeys;
use axum::Router;
use certgate_core::Registry;
use certgate_engine::Engine;
use certgate_store::Store;
use config::{DeskConfig, ServerConfig};
use std::sync::Arc;

/// Who may come in: the tenants' API keys and the desk's users. A config reload replaces them
/// with the engine's [`certgate_engine::Live`].
#[derive(Debug)]
pub struct Access {
    pub keys: ApiKeys,
    /// The support desk's users.
    pub desk: desk::DeskUsers,
}

/// What a config reload (SIGHUP) replaces: the engine's providers, tenants, CA accounts and
/// helpdesk, and who may come in. A request or an operation run keeps the one it started with.
#[derive(Debug)]
pub struct Live {
    pub engine: certgate_engine::Live,
    pub access: Access,
}

impl Live {
    /// The tenants (with `CERTGATE_API_KEY`'s `default_key` as tenant `default`, whose
    /// reseller username is `default_username`), their keys and CA accounts, and the desk's
    /// users, from the config file's sections; every problem of all of them at once. No
    /// helpdesk.
    pub fn build(
        registry: Registry,
        tenants: &[certgate_engine::config::TenantConfig],
        desk_users: &[config::DeskUserConfig],
        default_key: Option<&str>,
        default_username: &str,
    ) -> Result<Live, certgate_core::config::ConfigError> {
        let mut issues = Vec::new();
        let built = tenants::from_config(tenants, default_key, default_username)
            .map_err(|e| issues.extend(e.issues))
            .ok();
        let accounts = certgate_engine::accounts::Accounts::build(&registry, tenants)
            .map_err(|e| issues.extend(e))
            .ok();
        let desk = built.as_ref().and_then(|(t, _)| {
            desk::DeskUsers::from_config(desk_users, t)
                .map_err(|e| issues.extend(e.issues))
                .ok()
        });
        match (built, accounts, desk) {
            (Some((tenants, keys)), Some(accounts), Some(desk)) if issues.is_empty() => Ok(Live {
                engine: certgate_engine::Live {
                    registry,
                    tenants,
                    accounts,
                    helpdesk: None,
                },
                access: Access { keys, desk },
            }),
            _ => Err(certgate_core::config::ConfigError { issues }),
        }
    }
}

/// Everything a request handler needs: one [`Shared`] behind one `Arc`, so that the several
/// clones every request takes (middleware, extractors) are one count each.
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

/// What [`AppState`] shares: the engine the API calls into, and the HTTP edge's own state.
/// Its settings are set before it is shared.
#[derive(Debug)]
pub struct Shared {
    /// The engine: store, executor, pacing, events, metrics. `state.store` and the like read
    /// through to it.
    pub engine: Arc<Engine>,
    access: ArcSwap<Access>,
    /// The HTTP edge's limits.
    pub server: ServerConfig,
    /// The desk's sessions and cookies.
    pub desk: DeskConfig,
    /// Failed authentications by client address, the API's and the desk's apart.
    pub guesses: Doors,
    /// The sweeps each tenant runs now.
    pub sweeps: server::TenantSlots,
    /// The OpenAPI document, set by [`app`] from the routes it builds.
    openapi: std::sync::OnceLock<openapi::Document>,
}

impl Shared {
    pub fn new(live: Live, store: Store) -> Self {
        Shared::with_engine(Engine::new(live.engine, store), live.access)
    }

    /// The API over `engine` (whose settings are set), letting in `access`.
    pub fn with_engine(engine: Engine, access: Access) -> Self {
        Shared {
            engine: Arc::new(engine),
            access: ArcSwap::from_pointee(access),
            guesses: Doors::default(),
            sweeps: server::TenantSlots::default(),
            server: ServerConfig::default(),
            desk: DeskConfig::default(),
            openapi: std::sync::OnceLock::new(),
        }
    }

    /// The keys and desk users as configured now.
    pub fn access(&self) -> Arc<Access> {
        self.access.load_full()
    }

    /// Puts a reloaded config in place: new requests and operation runs use it; those under
    /// way finish with the one they started with.
    pub fn reload(&self, live: Live) {
        self.engine.reload(live.engine);
        self.access.store(Arc::new(live.access));
    }
}

impl std::ops::Deref for Shared {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// The doors a key opens, each counting its own failures.
#[derive(Debug, Default)]
pub struct Doors {
    pub api: auth::Guesses,
    pub desk: auth::Guesses,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

pub use server::serve;
