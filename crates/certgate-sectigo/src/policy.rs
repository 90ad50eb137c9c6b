//! Sectigo's rules: seed 003's reseller-platform rules, where issued orders go to support
//! (RSL-MANUAL): one ticket asks to cancel and refund. Sectigo's own reseller API can do every
//! step, so in `mode = "api"` they are automated, and a refund of an issued order asks for the
//! money itself (`!AutoRefund`) before revoking the certificate: if the API cannot refund the
//! order (multi-domain), a ticket to support takes that step over and the certificate still
//! works until then. In the default `mode = "manual"` every step is a ticket.

use certgate_core::config::{Mode, ProviderContext};
use certgate_core::policy::brand::{BrandRules, StepSpec};
use certgate_core::quote::{Action, Procedure};
use certgate_platform::{self as platform, IssuedPath};

/// Sectigo's built-in rules (window, steps, ETA) on the provider's channel: the platform's
/// (seed 003: cancel through its API, support tickets once issued), Sectigo's own reseller
/// API in `mode = "api"`, or tickets.
pub fn rules(ctx: &ProviderContext<'_>) -> BrandRules {
    if platform::on_platform(ctx) {
        return platform::rules(IssuedPath::SupportTicket, ctx);
    }
    let mut rules =
        platform::reseller(IssuedPath::SupportTicket).with_procedure(Procedure::Automated);
    if ctx.mode == Mode::Api {
        let automated = |action| StepSpec::new(action, Procedure::Automated);
        rules.issued.summary = "Issued: Sectigo's reseller API refunds the order (!AutoRefund), then revokes it (!AutoRevokeSSL); an order its API cannot refund (multi-domain) goes to support by ticket (reseller username, supplier order id, common name).".into();
        rules.issued.refund_steps = Some(vec![
            automated(Action::RefundRequest),
            automated(Action::Revoke),
        ]);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::config::ProviderContext;
    use certgate_core::policy::brand::BrandProvider;
    use certgate_core::quote::Intent;
    use certgate_core::testing::{decide, order, rules as cited, steps, EXAMPLES_AS_OF};
    use serde_json::json;

    fn provider(mode: Mode) -> std::sync::Arc<dyn certgate_core::Provider> {
        let api: certgate_core::config::ApiConfig = serde_json::from_value(
            json!({"client": "sectigo", "base_url": "https://secure.trust-provider.com"}),
        )
        .unwrap();
        let ctx = ProviderContext {
            name: "sectigo",
            mode,
            api: (mode == Mode::Api).then_some(&api),
        };
        BrandProvider::build(&ctx, rules(&ctx)).unwrap()
    }

    fn issued() -> certgate_core::Order {
        order(json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}))
    }

    #[test]
    fn every_step_is_automatable_and_cites_the_support_rule() {
        let d = decide(
            provider(Mode::Manual).as_ref(),
            &issued(),
            Intent::Refund,
            EXAMPLES_AS_OF,
        );
        // In the provider's manual mode the registry turns these into tickets (see tests/).
        assert_eq!(steps(&d), ["revoke/automated"]);
        assert_eq!(cited(&d), ["RSL-30D", "RSL-MANUAL"]);
    }

    #[test]
    fn in_api_mode_a_refund_asks_for_the_money_then_revokes() {
        let p = provider(Mode::Api);
        let d = decide(p.as_ref(), &issued(), Intent::Refund, EXAMPLES_AS_OF);
        assert_eq!(steps(&d), ["refund_request/automated", "revoke/automated"]);
        assert_eq!(cited(&d), ["RSL-30D", "RSL-MANUAL"]);
        // A revocation alone is still one step.
        let d = decide(p.as_ref(), &issued(), Intent::Revoke, EXAMPLES_AS_OF);
        assert_eq!(steps(&d), ["revoke/automated"]);
    }
}
