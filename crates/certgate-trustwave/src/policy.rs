//! Trustwave's rules: seed 003's reseller-platform rules with every step a support ticket
//! (Trustwave has no API) and EV certificates excluded from refunds (RSL-TW-EV).

use certgate_core::config::{ConfigIssue, Mode, ProviderContext};
use certgate_core::order::Validation;
use certgate_core::policy::brand::{BrandRules, BrandSettings, Exclusion, IssuedPath};
use certgate_core::rule::RuleId;
use certgate_core::Provider;
use std::borrow::Cow;
use std::sync::Arc;

/// RSL-TW-EV: Trustwave EV certificates are never refundable, issued or not.
pub const RSL_TW_EV: RuleId = RuleId::new("RSL-TW-EV");

/// Trustwave's built-in rules: where Trustwave EV is excluded.
pub fn rules() -> BrandRules {
    BrandRules::reseller(IssuedPath::SupportTicket).excluding(Exclusion {
        rule: RSL_TW_EV,
        summary: Cow::Borrowed("Trustwave EV certificates are never refundable, issued or not; a pending one can still be cancelled, with no refund."),
        validation: Some(Validation::Ev),
        kind: None,
        free: None,
    })
}

/// The factory of kind `trustwave`. Trustwave has no API, so `mode = "api"` is refused.
pub fn build(
    ctx: &ProviderContext<'_>,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    if ctx.mode == Mode::Api || ctx.api.is_some() {
        return Err(vec![ctx.issue(
            "mode",
            "Trustwave has no API for cancel, revoke or refund: every step is a manual ticket, so mode must be \"manual\" and there is no [api] section",
        )]);
    }
    BrandSettings::build(ctx, settings, rules())
}
