//! The registry: maps a provider's `kind` to its plugin's factory (and the presets a `config`
//! provider may name to their rules), builds every provider of a config (collecting all
//! problems), and answers quotes by provider name.

use crate::calendar::Calendar;
use crate::client::CaClient;
use crate::config::{
    deserialize_all, ApiConfig, ConfigError, ConfigIssue, Mode, ProviderConfig, ProviderContext,
    ProviderTables,
};
use crate::order::Order;
use crate::policy::brand::{build_config, Preset, Presets, CONFIG_KIND};
use crate::provider::{PolicyInput, Provider};
use crate::quote::{Intent, Quote, Step};
use crate::rule::RuleInfo;
use crate::validation::InvalidInput;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a factory returns: the provider, or every problem with its settings.
pub type BuildResult = Result<Arc<dyn Provider>, Vec<ConfigIssue>>;

/// Builds a provider from its context and its plugin settings (phase two of the config).
pub type Factory =
    Arc<dyn Fn(&ProviderContext<'_>, serde_json::Value) -> BuildResult + Send + Sync>;

/// What a client factory returns: the client, or every problem with the `[api]` section.
pub type ClientResult = Result<Arc<dyn CaClient>, Vec<ConfigIssue>>;

/// Builds a CA client from a provider's `[api]` section.
pub type ClientFactory =
    Arc<dyn Fn(&ProviderContext<'_>, &ApiConfig) -> ClientResult + Send + Sync>;

/// The known kinds, clients and presets. `config` is always there; plugins register theirs.
#[derive(Clone)]
pub struct RegistryBuilder {
    kinds: BTreeMap<&'static str, Factory>,
    clients: BTreeMap<&'static str, ClientFactory>,
    presets: Presets,
}

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("kinds", &self.kinds().collect::<Vec<_>>())
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .field("presets", &self.presets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        let mut builder = RegistryBuilder {
            kinds: BTreeMap::new(),
            clients: BTreeMap::new(),
            presets: Presets::new(),
        };
        builder.register_config();
        builder
    }
}

impl RegistryBuilder {
    pub fn register<F>(&mut self, kind: &'static str, factory: F) -> &mut Self
    where
        F: Fn(&ProviderContext<'_>, serde_json::Value) -> BuildResult + Send + Sync + 'static,
    {
        self.kinds.insert(kind, Arc::new(factory));
        self
    }

    /// Registers the client that speaks a CA's API (`digicert`, `alibaba`, ...). A provider in
    /// `mode = "api"` uses the client named by `api.client`, by default its kind's name.
    pub fn register_client<F>(&mut self, name: &'static str, factory: F) -> &mut Self
    where
        F: Fn(&ProviderContext<'_>, &ApiConfig) -> ClientResult + Send + Sync + 'static,
    {
        self.clients.insert(name, Arc::new(factory));
        self
    }

    /// Registers a rule set that a `config` provider may name (`settings.preset = "..."`)
    /// instead of writing its whole table: the reseller platform's, for a brand on it.
    pub fn register_preset(&mut self, name: &'static str, rules: Preset) -> &mut Self {
        self.presets.insert(name, rules);
        self.register_config()
    }

    /// Kind `config`, with the presets known so far.
    fn register_config(&mut self) -> &mut Self {
        let presets = self.presets.clone();
        self.register(CONFIG_KIND, move |ctx, settings| {
            build_config(ctx, settings, &presets)
        })
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Builds every provider of the config; on failure, every problem of every provider.
    pub fn build(&self, tables: &ProviderTables) -> Result<Registry, ConfigError> {
        let mut issues = Vec::new();
        let mut providers = BTreeMap::new();
        if tables.is_empty() {
            issues.push(ConfigIssue {
                key: "providers".into(),
                message: "no provider is configured".into(),
            });
        }
        for (name, value) in tables {
            match self.build_one(name, value.clone()) {
                Ok(entry) => {
                    providers.insert(name.clone(), Arc::new(entry));
                }
                Err(mut more) => issues.append(&mut more),
            }
        }
        if issues.is_empty() {
            Ok(Registry { providers })
        } else {
            Err(ConfigError { issues })
        }
    }

    fn build_one(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<ProviderEntry, Vec<ConfigIssue>> {
        let ctx = ProviderContext {
            name,
            mode: Mode::Manual,
            api: None,
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_name {
            return Err(vec![ctx.issue(
                "",
                "a provider name is lower-case letters, digits, '-' and '_'",
            )]);
        }
        let mut envelope: ProviderConfig = deserialize_all(value).map_err(|problems| {
            problems
                .into_iter()
                .map(|(path, message)| ctx.issue(&path, message))
                .collect::<Vec<_>>()
        })?;
        let Some(factory) = self.kinds.get(envelope.kind.as_str()) else {
            let known: Vec<_> = self.kinds().collect();
            return Err(vec![ctx.issue(
                "kind",
                format!(
                    "unknown kind `{}`; known kinds: {}",
                    envelope.kind,
                    known.join(", ")
                ),
            )]);
        };
        let ctx = ProviderContext {
            mode: envelope.mode,
            api: envelope.api.as_ref(),
            ..ctx
        };
        let mut issues = validate_api(&ctx);
        let client = match (ctx.mode, ctx.api) {
            (Mode::Api, Some(api)) if issues.is_empty() => {
                match self.client_for(&ctx, &envelope.kind, api) {
                    Ok(built) => Some(built),
                    Err(mut more) => {
                        issues.append(&mut more);
                        None
                    }
                }
            }
            _ => None,
        };
        let settings = std::mem::take(&mut envelope.settings);
        let provider = match factory(&ctx, settings) {
            Ok(p) => Some(p),
            Err(mut more) => {
                issues.append(&mut more);
                None
            }
        };
        match provider {
            Some(provider) if issues.is_empty() => {
                let api_available = self
                    .clients
                    .contains_key(client_name(envelope.api.as_ref(), &envelope.kind));
                let mut entry = ProviderEntry::new(name, envelope, provider, client);
                entry.api_available = api_available;
                Ok(entry)
            }
            _ => Err(issues),
        }
    }

    /// The client of `api` and the factory that built it (for the tenants' own accounts).
    fn client_for(
        &self,
        ctx: &ProviderContext<'_>,
        kind: &str,
        api: &ApiConfig,
    ) -> Result<(Arc<dyn CaClient>, ClientFactory), Vec<ConfigIssue>> {
        let known = || self.clients.keys().copied().collect::<Vec<_>>().join(", ");
        let name = match (&api.client, kind) {
            (Some(name), _) => name.as_str(),
            (None, CONFIG_KIND) => {
                return Err(vec![ctx.issue(
                    "api.client",
                    format!("is required for kind \"config\": the client that speaks this CA's API (known: {})", known()),
                )])
            }
            (None, kind) => kind,
        };
        let factory = self.clients.get(name).ok_or_else(|| {
            vec![ctx.issue(
                "api.client",
                format!(
                    "no client `{name}` is known (known: {}); or set mode = \"manual\"",
                    known()
                ),
            )]
        })?;
        Ok((factory(ctx, api)?, factory.clone()))
    }
}

fn validate_api(ctx: &ProviderContext<'_>) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    match ctx.api {
        None if ctx.mode == Mode::Api => issues.push(ctx.issue(
            "api",
            "is required when mode = \"api\" (base_url and credentials of the CA's API)",
        )),
        None => {}
        Some(api) => {
            for (i, limit) in api.rate_limits.iter().enumerate() {
                if limit.requests == 0 || limit.per_ms == 0 {
                    issues.push(ctx.issue(
                        &format!("api.rate_limits[{i}]"),
                        "requests and per_ms must both be at least 1",
                    ));
                }
            }
            match url::Url::parse(&api.base_url) {
                Ok(u) if !u.username().is_empty() || u.password().is_some() => issues.push(ctx.issue(
                    "api.base_url",
                    "must not carry credentials (user:password@): they belong in api.credentials, as ${ENV} references",
                )),
                Ok(u) if u.scheme() == "https" => {}
                Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
                Ok(u) if u.scheme() == "http" => issues.push(ctx.issue(
                    "api.base_url",
                    "http:// is accepted only for a loopback address (127.0.0.1, [::1], localhost): the CA's credentials travel in the clear otherwise; use https://",
                )),
                Ok(u) => issues.push(ctx.issue(
                    "api.base_url",
                    format!("scheme `{}` is not http or https", u.scheme()),
                )),
                Err(e) => issues.push(ctx.issue("api.base_url", format!("not a URL: {e}"))),
            }
        }
    }
    issues
}

/// Whether `url`'s host is this machine (a test CA, a local simulator).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// One configured provider: its common settings and its plugin.
#[derive(Debug)]
pub struct ProviderEntry {
    pub name: String,
    pub kind: String,
    pub display_name: String,
    pub mode: Mode,
    pub calendar: Calendar,
    pub api: Option<ApiConfig>,
    /// `sha256:` of the effective policy (kind, mode, holidays, settings after defaults).
    pub policy_version: String,
    provider: Arc<dyn Provider>,
    /// The CA's API client (mode = "api"), on the provider's own (shared) account.
    pub client: Option<Arc<dyn CaClient>>,
    /// Builds the same client on other credentials (a tenant's own account).
    factory: Option<FactoryHandle>,
    /// Whether certgate has a client for this CA's API at all (Trustwave: no).
    pub api_available: bool,
}

/// A client factory kept by its provider (a closure prints as its name).
#[derive(Clone)]
struct FactoryHandle(ClientFactory);

impl std::fmt::Debug for FactoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientFactory")
    }
}

/// The client that speaks a provider's API: `api.client`, else the plugin of its own kind.
fn client_name<'a>(api: Option<&'a ApiConfig>, kind: &'a str) -> &'a str {
    api.and_then(|a| a.client.as_deref()).unwrap_or(kind)
}

/// Whose CA account a tenant's calls to a provider go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountUse {
    /// The provider's account, shared by the tenants without their own.
    Shared,
    /// The tenant's own account (`[tenants.credentials.<provider>]`).
    Own,
}

/// A provider as `GET /v1/providers` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderDescription<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    /// The plugin crate that implements it, or `config` for a provider from providers.toml alone.
    pub plugin: &'a str,
    pub mode: Mode,
    pub holidays: &'a [NaiveDate],
    /// The channel its API steps take: the client's name (`digicert`, `opensrs`, ...).
    pub channel: Option<&'a str>,
    /// Whose CA account the caller's automated steps go through: the provider's `shared` one,
    /// or the tenant's `own`; null without an API client.
    pub account: Option<AccountUse>,
    pub rules: Vec<RuleInfo>,
    pub settings: serde_json::Value,
    pub policy_version: &'a str,
    /// Steps the CA's API can do run automatically (`mode = "api"` with a client).
    pub automated: bool,
    /// Whether the CA has an API certgate can drive; false means every step is a ticket.
    pub api_available: bool,
}

impl ProviderEntry {
    fn new(
        name: &str,
        envelope: ProviderConfig,
        provider: Arc<dyn Provider>,
        client: Option<(Arc<dyn CaClient>, ClientFactory)>,
    ) -> Self {
        let (client, factory) = match client {
            Some((c, f)) => (Some(c), Some(FactoryHandle(f))),
            None => (None, None),
        };
        let ProviderConfig {
            kind,
            display_name,
            mode,
            holidays,
            api,
            ..
        } = envelope;
        let calendar = Calendar::new(holidays);
        let effective = serde_json::json!({
            "kind": kind,
            "mode": mode,
            "holidays": calendar.holidays(),
            "settings": provider.settings(),
        });
        let policy_version = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(effective.to_string().as_bytes()))
        );
        ProviderEntry {
            name: name.to_owned(),
            display_name: display_name.unwrap_or_else(|| name.to_owned()),
            kind,
            mode,
            calendar,
            api,
            policy_version,
            provider,
            client,
            factory,
            api_available: false,
        }
    }

    /// The client that speaks this provider's API (`digicert`, `opensrs`...), if it has one.
    pub fn client_name(&self) -> Option<&str> {
        self.client
            .as_ref()
            .map(|_| client_name(self.api.as_ref(), &self.kind))
    }

    /// This provider's API on another account: its `[api]` with `credentials` instead of its
    /// own (a tenant's CA account); `None` if the provider has no client. Problems are keyed
    /// under the provider's `api.credentials`.
    pub fn api_with(
        &self,
        credentials: &BTreeMap<String, crate::config::SecretRef>,
    ) -> Option<(ApiConfig, ClientResult)> {
        let (Some(factory), Some(api)) = (&self.factory, &self.api) else {
            return None;
        };
        let api = ApiConfig {
            credentials: credentials.clone(),
            ..api.clone()
        };
        let ctx = ProviderContext {
            name: &self.name,
            mode: self.mode,
            api: Some(&api),
        };
        let client = (factory.0)(&ctx, &api);
        Some((api, client))
    }

    /// The answer of `POST /v1/quotes`: validates the order, runs the policy, and makes every
    /// step a manual ticket when the provider is in manual mode.
    pub fn quote(
        &self,
        order: &Order,
        intent: Intent,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, InvalidInput> {
        order.validate()?;
        let input = PolicyInput {
            order,
            intent,
            as_of,
            calendar: &self.calendar,
        };
        let mut decision = self.provider.decide(&input)?;
        if self.mode == Mode::Manual {
            decision.steps = decision.steps.into_iter().map(Step::into_manual).collect();
        }
        Ok(Quote {
            provider: self.name.clone(),
            intent,
            as_of,
            decision,
            policy_version: self.policy_version.clone(),
        })
    }

    pub fn describe(&self) -> ProviderDescription<'_> {
        ProviderDescription {
            name: &self.name,
            display_name: &self.display_name,
            plugin: &self.kind,
            mode: self.mode,
            holidays: self.calendar.holidays(),
            account: self.client.as_ref().map(|_| AccountUse::Shared),
            channel: self.client_name(),
            rules: self.provider.rules(),
            settings: self.provider.settings(),
            policy_version: &self.policy_version,
            automated: self.client.is_some(),
            api_available: self.api_available,
        }
    }
}

impl crate::lifecycle::Planner for ProviderEntry {
    fn plan(
        &self,
        order: &Order,
        intent: Intent,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, InvalidInput> {
        self.quote(order, intent, as_of)
    }

    fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    fn call_timeout(&self) -> std::time::Duration {
        self.api
            .as_ref()
            .map_or(crate::config::DEFAULT_CALL_TIMEOUT, ApiConfig::call_timeout)
    }
}

/// Every configured provider, by name.
#[derive(Debug, Clone)]
pub struct Registry {
    providers: BTreeMap<String, Arc<ProviderEntry>>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&Arc<ProviderEntry>> {
        self.providers.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderEntry>> {
        self.providers.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }
}

/// The quote's error when the provider is not configured.
pub fn unknown_provider(registry: &Registry, name: &str) -> String {
    let known: Vec<_> = registry.names().collect();
    format!(
        "unknown provider `{name}`; configured providers: {}",
        known.join(", ")
    )
}

/// Convenience for tests and the CLI: quote through the registry by name.
impl Registry {
    pub fn quote(
        &self,
        provider: &str,
        order: &Order,
        intent: Intent,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, QuoteError> {
        let entry = self
            .get(provider)
            .ok_or_else(|| QuoteError::UnknownProvider(unknown_provider(self, provider)))?;
        entry
            .quote(order, intent, as_of)
            .map_err(QuoteError::Invalid)
    }
}

/// Why a quote has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error("{0}")]
    UnknownProvider(String),
    #[error("{0}")]
    Invalid(InvalidInput),
}

#[cfg(test)]
mod tests;
