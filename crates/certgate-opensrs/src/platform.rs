//! Seed 003's rules by channel. A brand bought on the reseller platform is reached either
//! through DigiCert's API (`client = "digicert"`, the reseller also holds a DigiCert key), or
//! through the platform itself (`client = "opensrs"`), or by hand (`mode = "manual"`). On the
//! platform: an unissued order of any brand is cancelled through `cancel_order`; an issued
//! GeoTrust, Thawte or Symantec order is cancelled in the supplier's self-service portal, a
//! person following the portal steps below (refund within 48 hours); an issued Sectigo or
//! Trustwave order goes to the platform's support (refund typically within five business
//! days). Every manual step says what to do, with the order's values filled in.

use crate::client::CLIENT;
use certgate_core::config::{Mode, ProviderContext};
use certgate_core::policy::brand::{BrandRules, IssuedPath, StatePlan, StepSpec, RSL_PORTAL};
use certgate_core::quote::{Action, Eta, Procedure, TicketField};
use std::borrow::Cow;

/// The supplier's self-service portal, step by step (seed 003), for an issued GeoTrust,
/// Thawte or Symantec order.
pub const PORTAL_STEPS: [&str; 6] = [
    "Open the supplier's self-service portal.",
    "Enter the supplier order ID {supplier_order_id} (or the common name {common_name}) and the tech e-mail address {technical_email}, then click Continue.",
    "Click Request access: a login link is e-mailed to {technical_email}.",
    "Click the link in that e-mail to log in to the user portal.",
    "Click Cancel order.",
    "Confirm by clicking I approve, then resolve this ticket as done; the refund reaches the reseller account within 48 hours.",
];

/// What to ask the platform's support for an order it cancels by hand (seed 003).
pub const SUPPORT_STEPS: [&str; 3] = [
    "Ask the reseller platform's support to cancel this certificate and refund it.",
    "Give your reseller username, the supplier order ID {supplier_order_id} and the common name {common_name}.",
    "Resolve this ticket when support confirms; the refund typically reaches the reseller account within five business days.",
];

/// The fields a portal step shows the person doing it.
const PORTAL_FIELDS: [TicketField; 3] = [
    TicketField::SupplierOrderId,
    TicketField::CommonName,
    TicketField::TechnicalEmail,
];

/// Whether this provider reaches its orders through the platform's API.
pub fn on_platform(ctx: &ProviderContext<'_>) -> bool {
    ctx.mode == Mode::Api && ctx.api.and_then(|a| a.client.as_deref()) == Some(CLIENT)
}

fn lines(steps: &[&'static str]) -> Vec<Cow<'static, str>> {
    steps.iter().map(|s| Cow::Borrowed(*s)).collect()
}

/// Seed 003's rules for a brand whose issued orders take `path`, on this provider's channel.
pub fn rules(path: IssuedPath, ctx: &ProviderContext<'_>) -> BrandRules {
    let mut rules = BrandRules::reseller(path);
    if on_platform(ctx) {
        rules.unissued.summary = Cow::Borrowed("Not yet issued: the order is cancelled through the reseller platform's API (cancel_order); what was paid comes back.");
        rules.unissued.steps = vec![StepSpec::new(Action::Cancel, Procedure::Automated)];
        rules.unissued.refund_steps = None;
        if path == IssuedPath::Portal {
            rules.issued = StatePlan {
                rule: RSL_PORTAL,
                summary: Cow::Borrowed("Issued: the order is cancelled in the supplier's self-service portal (a person follows its steps and clicks I approve); the refund is reflected within 48 hours."),
                steps: vec![StepSpec {
                    ticket_fields: PORTAL_FIELDS.to_vec(),
                    instructions: lines(&PORTAL_STEPS),
                    ..StepSpec::new(Action::Revoke, Procedure::ManualTicket)
                }],
                refund_steps: None,
                eta: Some(Eta::new(2, 2)),
            };
        }
    }
    instruct_support(rules)
}

/// Every support ticket of `rules` says what to ask the platform's support.
pub fn instruct_support(mut rules: BrandRules) -> BrandRules {
    for plan in [&mut rules.unissued, &mut rules.issued] {
        let refund = plan.refund_steps.iter_mut().flatten();
        for step in plan.steps.iter_mut().chain(refund) {
            if step.procedure == Procedure::ManualTicket && step.instructions.is_empty() {
                step.instructions = lines(&SUPPORT_STEPS);
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::config::ApiConfig;
    use certgate_core::policy::brand::BrandProvider;
    use certgate_core::quote::Intent;
    use certgate_core::testing::{decide, order, steps, EXAMPLES_AS_OF};
    use certgate_core::Provider;
    use serde_json::json;
    use std::sync::Arc;

    fn api(client: &str) -> ApiConfig {
        serde_json::from_value(json!({"client": client, "base_url": "https://platform.test:55443"}))
            .unwrap()
    }

    fn provider(path: IssuedPath, mode: Mode, api: Option<&ApiConfig>) -> Arc<dyn Provider> {
        let ctx = ProviderContext {
            name: "brand",
            mode,
            api,
        };
        BrandProvider::build(&ctx, rules(path, &ctx)).unwrap()
    }

    #[test]
    fn on_the_platform_pending_orders_are_cancelled_through_its_api() {
        let platform = api(CLIENT);
        for path in [IssuedPath::Portal, IssuedPath::SupportTicket] {
            let p = provider(path, Mode::Api, Some(&platform));
            let pending = order(json!({"state": "pending", "issued_at": null}));
            let d = decide(p.as_ref(), &pending, Intent::Cancel, EXAMPLES_AS_OF);
            assert_eq!(steps(&d), ["cancel/automated"], "{path:?}");
        }
    }

    #[test]
    fn issued_portal_brands_get_the_portal_steps_with_the_orders_values() {
        let platform = api(CLIENT);
        let p = provider(IssuedPath::Portal, Mode::Api, Some(&platform));
        let issued =
            order(json!({"issued_at": "2026-06-01T00:00:00Z", "supplier_order_id": "GT-5521"}));
        let d = decide(p.as_ref(), &issued, Intent::Refund, EXAMPLES_AS_OF);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["revoke/manual_ticket"]);
        let text = d.steps[0].instructions.join(" ");
        assert!(
            text.contains("GT-5521")
                && text.contains("shop.example.com")
                && text.contains("ops@example.com"),
            "{text}"
        );
        assert!(text.contains("I approve"), "{text}");
        assert_eq!(d.eta, Some(Eta::new(2, 2)));
    }

    #[test]
    fn support_tickets_say_what_to_ask_on_every_channel() {
        let digicert = api("digicert");
        let platform = api(CLIENT);
        for api in [None, Some(&digicert), Some(&platform)] {
            let mode = if api.is_some() {
                Mode::Api
            } else {
                Mode::Manual
            };
            let p = provider(IssuedPath::SupportTicket, mode, api);
            let d = decide(
                p.as_ref(),
                &order(json!({"issued_at": "2026-06-01T00:00:00Z"})),
                Intent::Refund,
                EXAMPLES_AS_OF,
            );
            assert_eq!(steps(&d), ["revoke/manual_ticket"]);
            assert!(
                d.steps[0]
                    .instructions
                    .join(" ")
                    .contains("reseller username"),
                "{api:?}"
            );
        }
        // Through DigiCert's API the portal brands stay automated.
        let p = provider(IssuedPath::Portal, Mode::Api, Some(&digicert));
        let d = decide(
            p.as_ref(),
            &order(json!({"issued_at": "2026-06-01T00:00:00Z"})),
            Intent::Refund,
            EXAMPLES_AS_OF,
        );
        assert_eq!(steps(&d), ["revoke/automated"]);
    }
}
