//! Bearer-key authentication. Keys are kept only as SHA-256 digests and compared in constant
//! time; each key belongs to one tenant.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The tenant a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
}

struct KeyEntry {
    digest: [u8; 32],
    tenant: Tenant,
}

/// The API keys the gateway accepts.
#[derive(Default)]
pub struct ApiKeys {
    keys: Vec<KeyEntry>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field(
                "tenants",
                &self.keys.iter().map(|k| &k.tenant.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// Accepts `key` for `tenant`. The key itself is not kept.
    pub fn add(&mut self, tenant: impl Into<String>, key: &str) {
        self.keys.push(KeyEntry {
            digest: Sha256::digest(key.as_bytes()).into(),
            tenant: Tenant { id: tenant.into() },
        });
    }

    /// The tenant whose key this is. Every stored key is compared, so the time taken does not
    /// depend on which key matched or how much of it did.
    pub fn tenant_for(&self, presented: &str) -> Option<&Tenant> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.keys {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(&entry.tenant);
            }
        }
        found
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
