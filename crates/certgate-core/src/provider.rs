//! The `Provider` trait: what a CA plugin implements. Its policy is a pure function of the
//! order facts, `as_of` and the provider's settings (the calendar carries the holidays).

use crate::calendar::Calendar;
use crate::order::Order;
use crate::quote::{Decision, Intent};
use crate::rule::RuleInfo;
use crate::validation::InvalidInput;
use chrono::{DateTime, Utc};
use std::fmt::Debug;

/// Everything a policy may look at. No clock, no I/O: same input, same answer.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    pub order: &'a Order,
    pub intent: Intent,
    pub as_of: DateTime<Utc>,
    pub calendar: &'a Calendar,
}

/// A CA as certgate sees it. Built once from providers.toml by its kind's factory.
pub trait Provider: Send + Sync + Debug {
    /// What `input.intent` on `input.order` means as of `input.as_of`. Errors only for facts
    /// the policy needs and the order lacks (naming the field).
    fn decide(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput>;

    /// Every rule this provider may cite, for `GET /v1/providers`.
    fn rules(&self) -> Vec<RuleInfo>;

    /// The effective policy settings (windows, ETAs, exclusions) after defaults, as JSON: listed
    /// by `GET /v1/providers` and hashed into the policy version.
    fn settings(&self) -> serde_json::Value;
}
