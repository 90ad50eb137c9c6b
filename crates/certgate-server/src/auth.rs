//! Bearer-key authentication. Keys are kept only as SHA-256 digests and compared in constant
//! time ([`KeyRing`], which the desk's users share); each API key belongs to one tenant.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The tenant a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
}

/// Secret keys, each naming a `T` (a tenant, a desk user): kept only as SHA-256 digests, and
/// found by comparing every stored digest in constant time.
pub struct KeyRing<T> {
    keys: Vec<([u8; 32], T)>,
}

impl<T> fmt::Debug for KeyRing<T> {
    /// How many keys, never a digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl<T> Default for KeyRing<T> {
    fn default() -> Self {
        KeyRing { keys: Vec::new() }
    }
}

impl<T> KeyRing<T> {
    /// Accepts `key` for `value`. The key itself is not kept.
    pub fn add(&mut self, value: T, key: &str) {
        self.keys
            .push((Sha256::digest(key.as_bytes()).into(), value));
    }

    /// What this key names. Every stored key is compared, so the time taken does not depend on
    /// which key matched or how much of it did.
    pub fn find(&self, presented: &str) -> Option<&T> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (stored, value) in &self.keys {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(value);
            }
        }
        found
    }

    /// Every value, in the order added.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.keys.iter().map(|(_, v)| v)
    }
}

/// The API keys the gateway accepts, each a tenant's.
#[derive(Default)]
pub struct ApiKeys(KeyRing<Tenant>);

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field(
                "tenants",
                &self.0.values().map(|t| &t.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// Accepts `key` for `tenant`. The key itself is not kept.
    pub fn add(&mut self, tenant: impl Into<String>, key: &str) {
        self.0.add(Tenant { id: tenant.into() }, key);
    }

    /// The tenant whose key this is (compared in constant time).
    pub fn tenant_for(&self, presented: &str) -> Option<&Tenant> {
        self.0.find(presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_tenant_and_never_print() {
        let mut keys = ApiKeys::default();
        keys.add("acme", "s3cret-key");
        keys.add("globex", "other-key");
        assert_eq!(keys.tenant_for("s3cret-key").unwrap().id, "acme");
        assert_eq!(keys.tenant_for("other-key").unwrap().id, "globex");
        assert!(keys.tenant_for("s3cret-ke").is_none());
        assert!(keys.tenant_for("").is_none());
        assert!(!format!("{keys:?}").contains("s3cret"));
    }
}
