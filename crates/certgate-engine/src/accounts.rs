//! CA accounts: which account a call for a tenant and a provider goes through. A provider's
//! `[api]` credentials are its shared account; a tenant's `[tenants.credentials.<provider>]`
//! (or the entry of the provider whose API a brand calls through, `digicert` for geotrust,
//! thawte and symantec) is the tenant's own, used for every call of that tenant and provider:
//! reads, actions, rechecks. Each account has its own pace ([`crate::pacing`]): a CA's limits
//! are per key. Two accounts of different owners with the same credentials are refused: one
//! tenant would act through another's account.

use crate::config::TenantConfig;
use crate::pacing::PaceKey;
use certgate_core::config::{ApiConfig, ConfigIssue, SecretRef};
use certgate_core::registry::AccountUse;
use certgate_core::registry::ProviderEntry;
use certgate_core::TenantId;
use certgate_core::{CaClient, Order, Registry};
use certgate_store::OrderRef;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One CA account and the client that calls through it.
#[derive(Debug)]
pub struct CaAccount {
    /// Its pace (and its identity: the client, the base URL and the credentials' variables).
    pub pace: PaceKey,
    /// The CA service it calls (the client and its base URL, normalized): the ids of orders
    /// are unique within it, so a shared account's orders are bound to tenants by it, whatever
    /// credential variable or spelling of the address reaches them.
    pub service: String,
    /// The tenant whose own account it is; `None` for a provider's shared account.
    pub tenant: Option<TenantId>,
    pub client: Arc<dyn CaClient>,
}

impl CaAccount {
    /// Whose account it is, as `GET /v1/providers` says.
    pub fn usage(&self) -> AccountUse {
        match self.tenant {
            Some(_) => AccountUse::Own,
            None => AccountUse::Shared,
        }
    }

    /// A shared account: orders in it are bound to the first tenant that acts on them.
    pub fn is_shared(&self) -> bool {
        self.tenant.is_none()
    }
}

/// A CA order in a shared account, as the binding of orders to tenants keys it: the CA service
/// and the id the CA knows the order by (an id of digits without leading zeros, which name the
/// same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedOrder {
    pub account: String,
    pub order: String,
}

impl SharedOrder {
    pub fn as_ref(&self) -> OrderRef<'_> {
        OrderRef {
            account: &self.account,
            order: &self.order,
        }
    }
}

impl CaAccount {
    /// The CA order `order` names, when this account is shared (its orders are bound to the
    /// first tenant acting on them); `None` in a tenant's own account or without an id.
    pub fn shared_order(&self, order: &Order) -> Option<SharedOrder> {
        if !self.is_shared() {
            return None;
        }
        let id = self.client.reference().of(order)?;
        Some(self.shared_ref(id))
    }

    /// The CA order with id `id` in this account.
    pub fn shared_ref(&self, id: &str) -> SharedOrder {
        let digits = id.bytes().all(|b| b.is_ascii_digit());
        let id = match id.trim_start_matches('0') {
            "" if digits => "0",
            trimmed if digits => trimmed,
            _ => id,
        };
        SharedOrder {
            account: self.service.clone(),
            order: id.to_owned(),
        }
    }
}

/// Every account, by provider (shared) and by tenant and provider (own).
#[derive(Debug, Default)]
pub struct Accounts {
    shared: HashMap<String, Arc<CaAccount>>,
    own: HashMap<(TenantId, String), Arc<CaAccount>>,
}

/// One account while the accounts are built: what identifies it, who owns it, its providers.
struct Draft {
    id: String,
    service: String,
    tenant: Option<TenantId>,
    provider: String,
    limits: Vec<certgate_core::config::RateLimit>,
    client: Arc<dyn CaClient>,
    /// SHA-256 of the service and the credentials' values (when all are set).
    fingerprint: Option<[u8; 32]>,
    /// Where it was configured, for a problem.
    at: String,
}

impl Draft {
    fn new(
        entry: &ProviderEntry,
        api: &ApiConfig,
        client: Arc<dyn CaClient>,
        tenant: Option<&TenantId>,
        at: String,
    ) -> Draft {
        let service = api.service(&entry.kind);
        Draft {
            id: api.account(&entry.kind),
            fingerprint: fingerprint(&service, &api.credentials),
            service,
            tenant: tenant.cloned(),
            provider: entry.name.clone(),
            limits: api.rate_limits.clone(),
            client,
            at,
        }
    }
}

/// The credentials' values, hashed with the service they are used at; `None` if one is not
/// set.
fn fingerprint(service: &str, credentials: &BTreeMap<String, SecretRef>) -> Option<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(service.as_bytes());
    for (name, secret) in credentials {
        h.update([0]);
        h.update(name.as_bytes());
        h.update([0]);
        h.update(secret.resolve()?.as_bytes());
    }
    Some(h.finalize().into())
}

impl Accounts {
    /// The shared account of every provider with an API client, and each tenant's own
    /// accounts. Every problem at once: an entry that names no provider with an API, a
    /// credential the client does not take or that is not set, two owners on one account.
    pub fn build(
        registry: &Registry,
        tenants: &[TenantConfig],
    ) -> Result<Accounts, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut drafts: Vec<Draft> = Vec::new();
        for entry in registry.iter() {
            let (Some(client), Some(api)) = (&entry.client, &entry.api) else {
                continue;
            };
            let at = format!("providers.{}.api.credentials", entry.name);
            drafts.push(Draft::new(entry, api, client.clone(), None, at));
        }
        for (i, t) in tenants.iter().enumerate() {
            for (name, credentials) in &t.credentials {
                let at = format!("tenants[{i}].credentials.{name}");
                let users: Vec<_> = registry
                    .iter()
                    .filter(|e| e.client.is_some())
                    .filter(|e| {
                        e.name == *name
                            || (e.client_name() == Some(name.as_str())
                                && !t.credentials.contains_key(&e.name))
                    })
                    .collect();
                if users.is_empty() {
                    let known: Vec<&str> = registry
                        .iter()
                        .filter(|e| e.client.is_some())
                        .map(|e| e.name.as_str())
                        .collect();
                    issues.push(ConfigIssue {
                        key: at,
                        message: format!(
                            "no provider in mode = \"api\" is `{name}` or calls through it; providers with an API: {}",
                            known.join(", ")
                        ),
                    });
                    continue;
                }
                for (var, secret) in credentials {
                    if secret.resolve().is_none() {
                        issues.push(ConfigIssue {
                            key: format!("{at}.{var}"),
                            message: format!("${{{}}} is not set in the environment", secret.var),
                        });
                    }
                }
                let mut reported = false;
                for entry in users {
                    let Some((api, built)) = entry.api_with(credentials) else {
                        continue;
                    };
                    match built {
                        Ok(client) => drafts.push(Draft::new(
                            entry,
                            &api,
                            client,
                            Some(&t.id.as_str().into()),
                            at.clone(),
                        )),
                        // The same credentials are wrong for every provider on this entry:
                        // said once, under the tenant's key.
                        Err(problems) if !reported => {
                            reported = true;
                            let prefix = format!("providers.{}.api.credentials", entry.name);
                            issues.extend(problems.into_iter().map(|p| ConfigIssue {
                                key: p.key.replacen(&prefix, &at, 1),
                                message: p.message,
                            }));
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        for (i, a) in drafts.iter().enumerate() {
            let Some(fp) = a.fingerprint else { continue };
            let clash = drafts[..i]
                .iter()
                .find(|b| b.fingerprint == Some(fp) && b.tenant != a.tenant);
            if let Some(b) = clash {
                let owner = |d: &Draft| {
                    d.tenant
                        .as_ref()
                        .map_or("the providers' shared account".to_owned(), |t| {
                            format!("tenant `{t}`'s own account")
                        })
                };
                issues.push(ConfigIssue {
                    key: a.at.clone(),
                    message: format!(
                        "holds the same CA credentials as {} ({}): {} and {} would act through one account; a tenant's own account must be its own",
                        owner(b),
                        b.at,
                        owner(a),
                        owner(b)
                    ),
                });
            }
        }
        if !issues.is_empty() {
            issues.dedup();
            return Err(issues);
        }
        // The providers on each account, for its name in metrics and logs.
        let mut providers: BTreeMap<(&Option<TenantId>, &str), Vec<&str>> = BTreeMap::new();
        for d in &drafts {
            providers
                .entry((&d.tenant, &d.id))
                .or_default()
                .push(&d.provider);
        }
        let mut accounts = Accounts::default();
        for d in &drafts {
            let mut names = providers[&(&d.tenant, d.id.as_str())].clone();
            names.sort_unstable();
            let joined = names.join("+");
            let account = Arc::new(CaAccount {
                pace: PaceKey {
                    id: d.id.clone(),
                    name: match &d.tenant {
                        Some(t) => format!("{t}:{joined}"),
                        None => joined,
                    },
                    limits: d.limits.clone(),
                },
                service: d.service.clone(),
                tenant: d.tenant.clone(),
                client: d.client.clone(),
            });
            match &d.tenant {
                Some(t) => {
                    accounts
                        .own
                        .insert((t.clone(), d.provider.clone()), account);
                }
                None => {
                    accounts.shared.insert(d.provider.clone(), account);
                }
            }
        }
        Ok(accounts)
    }

    /// Every account, shared and own.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CaAccount>> {
        self.shared.values().chain(self.own.values())
    }

    /// The shared account of `provider`, if it has an API client.
    pub fn shared(&self, provider: &str) -> Option<&Arc<CaAccount>> {
        self.shared.get(provider)
    }

    /// The account `tenant`'s calls to `provider` go through: its own, else the shared one;
    /// `None` if the provider has no API client.
    pub fn get(&self, tenant: &TenantId, provider: &str) -> Option<&Arc<CaAccount>> {
        self.own
            .get(&(tenant.clone(), provider.to_owned()))
            .or_else(|| self.shared.get(provider))
    }
}
