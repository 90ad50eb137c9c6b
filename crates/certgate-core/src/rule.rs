//! Rule ids (POLICY.md's `ALI-28D`-style names) and their one-line descriptions.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Text that is usually a `'static` literal but may come from config.
pub type Text = Cow<'static, str>;

/// A policy rule id such as `ALI-ISSUED-28D`. Every answer cites the ids that decided it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, example = "ALI-ISSUED-28D")]
pub struct RuleId(Text);

impl RuleId {
    pub const fn new(id: &'static str) -> Self {
        RuleId(Cow::Borrowed(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for RuleId {
    fn from(s: String) -> Self {
        RuleId(Cow::Owned(s))
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule as `GET /v1/providers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleInfo {
    pub id: RuleId,
    #[schema(value_type = String)]
    pub summary: Text,
}

impl RuleInfo {
    pub const fn new(id: RuleId, summary: &'static str) -> Self {
        RuleInfo {
            id,
            summary: Cow::Borrowed(summary),
        }
    }
}

/// Rules that hold for every provider: there is nothing left to act on.
pub mod common {
    use super::{RuleId, RuleInfo};

    pub const ORDER_EXPIRED: RuleId = RuleId::new("ORDER-EXPIRED");
    pub const ORDER_REVOKED: RuleId = RuleId::new("ORDER-REVOKED");
    pub const ORDER_CANCELED: RuleId = RuleId::new("ORDER-CANCELED");

    pub const RULES: [RuleInfo; 3] = [
        RuleInfo::new(
            ORDER_EXPIRED,
            "An expired order or certificate (expires_at <= as_of) cannot be cancelled or revoked.",
        ),
        RuleInfo::new(
            ORDER_REVOKED,
            "A revoked certificate cannot be cancelled or revoked again.",
        ),
        RuleInfo::new(
            ORDER_CANCELED,
            "A cancelled order no longer exists at the CA: nothing can be cancelled, revoked or refunded.",
        ),
    ];
}
