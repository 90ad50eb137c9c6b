//! Seed 003's rules tested on each channel: through DigiCert's API, by hand, and on the
//! platform's own API; and the presets a `config` brand names.

use super::*;
use certgate_core::config::ApiConfig;
use certgate_core::order::{Order, Validation};
use certgate_core::policy::brand::BrandProvider;
use certgate_core::policy::brand::Exclusion;
use certgate_core::quote::Intent;
use certgate_core::quote::RefundKind;
use certgate_core::testing::{at, decide, order, pending, rules as cited, steps, EXAMPLES_AS_OF};
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

#[test]
fn a_config_brand_names_a_preset_and_gets_the_platforms_rules() {
    let mut builder = RegistryBuilder::default();
    register(&mut builder);
    let brand =
        |preset: &str| json!({"kind": "config", "mode": "manual", "settings": {"preset": preset}});
    let tables = [
        ("portal".to_owned(), brand(PRESET_PORTAL)),
        ("ticket".to_owned(), brand(PRESET_SUPPORT_TICKET)),
    ]
    .into();
    let registry = builder.build(&tables).unwrap();
    let ctx = ProviderContext {
        name: "brand",
        mode: Mode::Manual,
        api: None,
    };
    for (name, path) in [
        ("portal", IssuedPath::Portal),
        ("ticket", IssuedPath::SupportTicket),
    ] {
        let described = registry.get(name).unwrap().describe();
        let own = provider(path, Mode::Manual, None);
        assert_eq!(described.plugin, "config");
        assert_eq!(described.settings, own.settings(), "{name}");
        assert_eq!(described.rules, own.rules(), "{name}");
        assert_eq!(described.settings, json!(rules(path, &ctx)), "{name}");
        let ids: Vec<_> = described.rules.iter().map(|r| r.id.as_str()).collect();
        assert!(ids.contains(&"RSL-RESELLER-ONLY"), "{name}: {ids:?}");
    }
}
