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
use certgate_core::policy::brand::{Anchor, BrandRules, RefundWindow, StatePlan, StepSpec};
use certgate_core::quote::{Action, Eta, Procedure, TicketField};
use certgate_core::rule::RuleId;
use std::borrow::Cow;

/// RSL-30D: refund within 30 calendar days of the fulfilment date. This is the platform's
/// refund window, for every brand (providers.toml may tune its length).
pub const RSL_30D: RuleId = RuleId::new("RSL-30D");
/// RSL-UNISSUED-CANCEL: not yet issued: cancel; the full price comes back.
pub const RSL_UNISSUED_CANCEL: RuleId = RuleId::new("RSL-UNISSUED-CANCEL");
/// RSL-PORTAL: issued DigiCert-family brands (GeoTrust, Thawte, Symantec): cancelled at the
/// supplier (DigiCert's API, or its self-service portal).
pub const RSL_PORTAL: RuleId = RuleId::new("RSL-PORTAL");
/// RSL-MANUAL: issued Sectigo and Trustwave: one support ticket to cancel and refund.
pub const RSL_MANUAL: RuleId = RuleId::new("RSL-MANUAL");
/// RSL-RESELLER-ONLY: the platform accepts requests from the reseller's own account only.
pub const RSL_RESELLER_ONLY: RuleId = RuleId::new("RSL-RESELLER-ONLY");

/// The fields the reseller platform's support needs (RSL-MANUAL).
pub const RSL_TICKET_FIELDS: &[TicketField] = &[
    TicketField::ResellerUsername,
    TicketField::SupplierOrderId,
    TicketField::CommonName,
];

/// Said on every answer; it names its rule, so the rule is listed too.
const RESELLER_ONLY_NOTE: &str = "The reseller platform processes requests from the reseller's own account only, never from the certificate holder (RSL-RESELLER-ONLY).";

/// How an issued order of a platform brand is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuedPath {
    /// DigiCert-issued brands: at the supplier (RSL-PORTAL).
    Portal,
    /// A support ticket to the platform (RSL-MANUAL).
    SupportTicket,
}

/// Seed 003's rules for a brand whose issued orders take `path`, with the DigiCert-issued
/// brands reached through DigiCert's API. Pending orders are cancelled the same way
/// (automated through DigiCert, or by ticket).
pub fn reseller(path: IssuedPath) -> BrandRules {
    let cancel = match path {
        IssuedPath::Portal => Procedure::Automated,
        IssuedPath::SupportTicket => Procedure::ManualTicket,
    };
    let support_ticket = |action| StepSpec {
        ticket_fields: RSL_TICKET_FIELDS.to_vec(),
        ..StepSpec::new(action, Procedure::ManualTicket)
    };
    let issued = match path {
        IssuedPath::Portal => StatePlan {
            rule: RSL_PORTAL,
            summary: Cow::Borrowed("Issued: the order is cancelled by revoking it through DigiCert's API; the refund follows, reflected within 48 hours."),
            steps: vec![StepSpec::new(Action::Revoke, Procedure::Automated)],
            refund_steps: None,
            eta: Some(Eta::new(2, 2)),
        },
        IssuedPath::SupportTicket => StatePlan {
            rule: RSL_MANUAL,
            summary: Cow::Borrowed("Issued: one support ticket asks the platform to cancel and refund (reseller username, supplier order id, common name); refunds typically within 5 business days."),
            steps: vec![support_ticket(Action::Revoke)],
            refund_steps: None,
            eta: Some(Eta {
                typical_business_days: Some(5),
                max_business_days: None,
            }),
        },
    };
    BrandRules {
        refund_window: RefundWindow {
            rule: RSL_30D,
            summary: Cow::Borrowed(
                "Refund within 30 calendar days of the fulfilment date (issued_at).",
            ),
            days: 30,
            anchor: Anchor::IssuedAt,
            submit_margin_business_days: 0,
        },
        exclusions: Vec::new(),
        unissued: StatePlan {
            rule: RSL_UNISSUED_CANCEL,
            summary: Cow::Borrowed(
                "Not yet issued: the order is cancelled and what was paid comes back.",
            ),
            steps: vec![match cancel {
                Procedure::Automated => StepSpec::new(Action::Cancel, cancel),
                Procedure::ManualTicket => support_ticket(Action::Cancel),
            }],
            refund_steps: None,
            eta: None,
        },
        issued,
        notes: vec![Cow::Borrowed(RESELLER_ONLY_NOTE)],
    }
}

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
    let mut rules = reseller(path);
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
    use certgate_core::order::{Order, Validation};
    use certgate_core::policy::brand::BrandProvider;
    use certgate_core::policy::brand::Exclusion;
    use certgate_core::quote::Intent;
    use certgate_core::quote::RefundKind;
    use certgate_core::testing::{
        at, decide, order, pending, rules as cited, steps, EXAMPLES_AS_OF,
    };
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

    // Seed 003's rules through DigiCert's API or by hand (moved here from core with them).
    const NOW: &str = EXAMPLES_AS_OF;

    fn portal() -> BrandRules {
        reseller(IssuedPath::Portal)
    }

    fn ticket() -> BrandRules {
        reseller(IssuedPath::SupportTicket)
    }

    fn by_hand(rules: BrandRules) -> Arc<dyn Provider> {
        let ctx = ProviderContext {
            name: "brand",
            mode: Mode::Manual,
            api: None,
        };
        BrandProvider::build(&ctx, rules).unwrap()
    }

    fn issued(at: &str) -> Order {
        order(json!({"purchased_at": "2026-01-01T00:00:00Z", "issued_at": at}))
    }

    fn ev_excluded() -> BrandRules {
        ticket().excluding(Exclusion {
            rule: RuleId::new("X-EV"),
            summary: "EV is excluded".into(),
            validation: Some(Validation::Ev),
            kind: None,
            free: None,
        })
    }

    #[test]
    fn refund_within_thirty_days_of_fulfilment() {
        // EXAMPLES.md #6's shape: issued 2026-05-20T12:00Z, window closes 2026-06-19T12:00Z.
        let o = issued("2026-05-20T12:00:00Z");
        let d = decide(&*by_hand(ticket()), &o, Intent::Refund, NOW);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["revoke/manual_ticket"]);
        assert_eq!(d.steps[0].ticket_fields, RSL_TICKET_FIELDS);
        assert_eq!(d.refund.kind, RefundKind::Full);
        assert_eq!(d.deadline, Some(at("2026-06-19T12:00:00Z")));
        assert_eq!(d.eta.unwrap().typical_business_days, Some(5));
        assert_eq!(cited(&d), ["RSL-30D", "RSL-MANUAL"]);
        assert!(d.notes.iter().any(|n| n.contains("RSL-RESELLER-ONLY")));
    }

    #[test]
    fn the_window_closes_at_the_instant() {
        let o = issued("2026-05-16T08:30:00Z");
        let d = decide(&*by_hand(portal()), &o, Intent::Refund, NOW);
        assert!(d.allowed, "exactly 30*24h after fulfilment is inside");
        assert_eq!(cited(&d), ["RSL-30D", "RSL-PORTAL"]);
        assert_eq!(steps(&d), ["revoke/automated"]);
        assert_eq!(d.eta, Some(Eta::new(2, 2)));
        let d = decide(
            &*by_hand(portal()),
            &o,
            Intent::Refund,
            "2026-06-15T08:30:01Z",
        );
        assert!(!d.allowed);
        assert_eq!(cited(&d), ["RSL-30D"]);
        assert_eq!(d.alternative, Some(Intent::Revoke));
        assert_eq!(d.deadline, Some(at("2026-06-15T08:30:00Z")));
    }

    #[test]
    fn unissued_orders_are_cancelled_for_a_full_refund() {
        let o = order(pending("2026-06-10T00:00:00Z"));
        for intent in [Intent::Cancel, Intent::Refund] {
            let d = decide(&*by_hand(portal()), &o, intent, NOW);
            assert!(d.allowed, "{intent}");
            assert_eq!(steps(&d), ["cancel/automated"]);
            assert_eq!(cited(&d), ["RSL-UNISSUED-CANCEL"]);
            assert_eq!(d.refund.kind, RefundKind::Full);
            assert_eq!(d.deadline, None);
        }
        let d = decide(&*by_hand(ticket()), &o, Intent::Cancel, NOW);
        assert_eq!(steps(&d), ["cancel/manual_ticket"]);
        let d = decide(&*by_hand(portal()), &o, Intent::Revoke, NOW);
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Cancel)));
    }

    #[test]
    fn issued_orders_are_revoked_not_cancelled() {
        let o = issued("2026-06-01T00:00:00Z");
        let d = decide(&*by_hand(portal()), &o, Intent::Cancel, NOW);
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Revoke)));
        assert_eq!(cited(&d), ["RSL-UNISSUED-CANCEL", "RSL-PORTAL"]);
        // Revoking invalidates the certificate; within the window the answer points at refund.
        let d = decide(&*by_hand(portal()), &o, Intent::Revoke, NOW);
        assert!(d.allowed);
        assert_eq!(d.refund.kind, RefundKind::None);
        assert_eq!(cited(&d), ["RSL-PORTAL"]);
        assert!(d.notes.iter().any(|n| n.contains("intent refund")));
        let late = issued("2026-04-01T00:00:00Z");
        let d = decide(&*by_hand(portal()), &late, Intent::Revoke, NOW);
        assert!(d.allowed);
        assert!(!d.notes.iter().any(|n| n.contains("intent refund")));
        assert_eq!(cited(&d), ["RSL-PORTAL"]);
    }

    #[test]
    fn excluded_products_are_never_refunded() {
        let ev = order(
            json!({"product": {"validation": "ev"}, "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
        );
        let d = decide(&*by_hand(ev_excluded()), &ev, Intent::Refund, NOW);
        assert_eq!(
            (d.allowed, cited(&d), d.alternative),
            (false, vec!["X-EV"], Some(Intent::Revoke))
        );
        let mut v = pending("2026-06-10T00:00:00Z");
        v["product"] = json!({"validation": "ev"});
        let pending_ev = order(v);
        let d = decide(&*by_hand(ev_excluded()), &pending_ev, Intent::Refund, NOW);
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Cancel)));
        let d = decide(&*by_hand(ev_excluded()), &pending_ev, Intent::Cancel, NOW);
        assert!(d.allowed);
        assert_eq!(d.refund.kind, RefundKind::None);
        assert_eq!(cited(&d), ["RSL-UNISSUED-CANCEL", "X-EV"]);
        let ov = issued("2026-06-10T00:00:00Z");
        assert!(decide(&*by_hand(ev_excluded()), &ov, Intent::Refund, NOW).allowed);
    }

    #[test]
    fn settled_orders() {
        let p = by_hand(portal());
        let canceled = order(json!({"state": "canceled", "issued_at": null}));
        for intent in Intent::ALL {
            assert_eq!(
                cited(&decide(&*p, &canceled, intent, NOW)),
                ["ORDER-CANCELED"]
            );
        }
        let revoked = order(
            json!({"state": "revoked", "revoked_at": "2026-06-01T00:00:00Z", "issued_at": "2026-05-30T00:00:00Z"}),
        );
        assert_eq!(
            cited(&decide(&*p, &revoked, Intent::Revoke, NOW)),
            ["ORDER-REVOKED"]
        );
        assert_eq!(
            cited(&decide(&*p, &revoked, Intent::Refund, NOW)),
            ["ORDER-REVOKED"]
        );
        let mut v = pending("2025-01-01T00:00:00Z");
        v["expires_at"] = json!("2026-01-01T00:00:00Z");
        let lapsed = order(v);
        assert_eq!(
            cited(&decide(&*p, &lapsed, Intent::Refund, NOW)),
            ["ORDER-EXPIRED"]
        );
        assert_eq!(
            cited(&decide(&*p, &lapsed, Intent::Cancel, NOW)),
            ["ORDER-EXPIRED"]
        );
    }
}
