//! Trustwave's rules: seed 003's reseller-platform rules with support tickets (Trustwave has
//! no API of its own; the platform's can cancel an unissued order) and EV certificates
//! excluded from refunds (RSL-TW-EV).

use certgate_core::config::{ConfigIssue, Mode, ProviderContext};
use certgate_core::order::Validation;
use certgate_core::policy::brand::{BrandRules, BrandSettings, Exclusion};
use certgate_core::rule::RuleId;
use certgate_core::Provider;
use certgate_platform::IssuedPath;
use std::borrow::Cow;
use std::sync::Arc;

/// RSL-TW-EV: Trustwave EV certificates are never refundable, issued or not.
pub const RSL_TW_EV: RuleId = RuleId::new("RSL-TW-EV");

/// Trustwave's built-in rules on the provider's channel: where Trustwave EV is excluded.
pub fn rules(ctx: &ProviderContext<'_>) -> BrandRules {
    certgate_platform::rules(IssuedPath::SupportTicket, ctx).excluding(Exclusion {
        rule: RSL_TW_EV,
        summary: Cow::Borrowed("Trustwave EV certificates are never refundable, issued or not; a pending one can still be cancelled, with no refund."),
        validation: Some(Validation::Ev),
        kind: None,
        free: None,
    })
}

/// The factory of kind `trustwave`. Trustwave has no API of its own: `mode = "api"` only
/// through the reseller platform (`client = "opensrs"`), which cancels unissued orders.
pub fn build(
    ctx: &ProviderContext<'_>,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let own_api = ctx.mode == Mode::Api || ctx.api.is_some();
    if own_api && !certgate_platform::on_platform(ctx) {
        return Err(vec![ctx.issue(
            "mode",
            "Trustwave has no API for cancel, revoke or refund: every step is a manual ticket, so mode must be \"manual\" without an [api] section, or \"api\" through the reseller platform (client = \"opensrs\")",
        )]);
    }
    BrandSettings::build(ctx, settings, rules(ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::quote::{Intent, RefundKind};
    use certgate_core::testing::{decide, order, pending, rules, steps, EXAMPLES_AS_OF};
    use serde_json::json;

    fn trustwave() -> Arc<dyn Provider> {
        let ctx = ProviderContext {
            name: "trustwave",
            mode: Mode::Manual,
            api: None,
        };
        build(&ctx, serde_json::Value::Null).unwrap()
    }

    #[test]
    fn example_5_trustwave_ev_is_never_refundable() {
        let ev = order(
            json!({"product": {"validation": "ev"}, "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
        );
        let d = decide(trustwave().as_ref(), &ev, Intent::Refund, EXAMPLES_AS_OF);
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["RSL-TW-EV"]);
        assert_eq!(d.alternative, Some(Intent::Revoke));
        assert_eq!(d.refund.kind, RefundKind::None);
    }

    #[test]
    fn a_pending_trustwave_ev_can_be_cancelled_without_refund() {
        let mut v = pending("2026-06-10T00:00:00Z");
        v["product"] = json!({"validation": "ev"});
        let d = decide(
            trustwave().as_ref(),
            &order(v.clone()),
            Intent::Cancel,
            EXAMPLES_AS_OF,
        );
        assert!(d.allowed);
        assert_eq!(steps(&d), ["cancel/manual_ticket"]);
        assert_eq!(d.refund.kind, RefundKind::None);
        assert_eq!(rules(&d), ["RSL-UNISSUED-CANCEL", "RSL-TW-EV"]);
        let d = decide(
            trustwave().as_ref(),
            &order(v),
            Intent::Refund,
            EXAMPLES_AS_OF,
        );
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Cancel)));
    }

    #[test]
    fn other_trustwave_certificates_are_refunded_by_ticket() {
        let ov = order(
            json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
        );
        let d = decide(trustwave().as_ref(), &ov, Intent::Refund, EXAMPLES_AS_OF);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["revoke/manual_ticket"]);
        assert_eq!(rules(&d), ["RSL-30D", "RSL-MANUAL"]);
    }

    #[test]
    fn trustwave_has_no_api_mode() {
        let ctx = ProviderContext {
            name: "trustwave",
            mode: Mode::Api,
            api: None,
        };
        let err = build(&ctx, serde_json::Value::Null).unwrap_err();
        assert_eq!(err[0].key, "providers.trustwave.mode");
    }
}
