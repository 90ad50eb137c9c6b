//! Tenants as the engine knows them: each reseller's id, reseller username (carried by manual
//! tickets) and optional webhook. Built from `[[tenants]]` by the server, with their keys.

use certgate_core::TenantId;
use std::collections::HashMap;
use std::fmt;

/// Where a tenant's operation events go, and the key that signs them.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"**REDACTED**")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub reseller_username: String,
    pub webhook: Option<Webhook>,
}

/// Every tenant, by id.
#[derive(Debug, Default)]
pub struct Tenants {
    by_id: HashMap<TenantId, Tenant>,
}

impl Tenants {
    /// The tenant `id` names (a [`TenantId`] or a `&str`).
    pub fn get<Q>(&self, id: &Q) -> Option<&Tenant>
    where
        TenantId: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.by_id.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(TenantId::as_str)
    }

    pub fn insert(&mut self, tenant: Tenant) {
        self.by_id.insert(tenant.id.clone(), tenant);
    }
}
