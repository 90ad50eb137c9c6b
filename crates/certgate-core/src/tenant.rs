//! A tenant's id: the reseller a key, an operation, a ticket, an event or a watched order
//! belongs to. One type wherever a tenant is named, so a tenant's id is never mistaken for
//! another string (an order id, a provider name).

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;

/// A tenant's id, as `[[tenants]] id` configures it (`default` for `CERTGATE_API_KEY`'s).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> Self {
        TenantId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for TenantId {
    fn from(id: String) -> Self {
        TenantId(id)
    }
}

impl From<&str> for TenantId {
    fn from(id: &str) -> Self {
        TenantId(id.to_owned())
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by tenant are looked up by a `&str` too.
impl Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for TenantId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TenantId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
