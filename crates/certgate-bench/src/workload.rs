//! The policy workload: EXAMPLES.md's cases and a few more, one per provider family and state.

use certgate_core::order::Order;
use certgate_core::quote::Intent;
use certgate_core::Registry;
use chrono::{DateTime, Utc};
use serde_json::json;

/// One quote to make.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub provider: String,
    pub intent: Intent,
    pub order: Order,
    pub as_of: DateTime<Utc>,
}

/// The repository's default providers.
pub fn registry() -> Registry {
    certgate::default_registry().expect("valid providers.toml")
}

pub fn cases() -> Vec<Case> {
    let as_of: DateTime<Utc> = "2026-06-15T08:30:00Z".parse().expect("an instant");
    let case = |name: &str, provider: &str, intent: Intent, patch: serde_json::Value| Case {
        name: name.into(),
        provider: provider.into(),
        intent,
        order: certgate_core::testing::order(patch),
        as_of,
    };
    vec![
        case(
            "alibaba issued refund",
            "alibaba",
            Intent::Refund,
            json!({"purchased_at": "2026-05-30T08:30:00Z", "issued_at": "2026-06-01T08:30:00Z"}),
        ),
        case(
            "alibaba pending refund",
            "alibaba",
            Intent::Refund,
            json!({"state": "pending", "issued_at": null, "validation_status": "submitted", "purchased_at": "2026-06-12T00:00:00Z"}),
        ),
        case(
            "digicert approval cancel",
            "digicert",
            Intent::Cancel,
            json!({"product": {"validation": "ov", "kind": "client"}, "state": "awaiting_approval", "issued_at": null}),
        ),
        case(
            "digicert issued refund",
            "digicert",
            Intent::Refund,
            json!({"charged_to": "account_balance"}),
        ),
        case(
            "geotrust late refund",
            "geotrust",
            Intent::Refund,
            json!({"purchased_at": "2026-05-09T00:00:00Z", "issued_at": "2026-05-10T00:00:00Z"}),
        ),
        case(
            "sectigo refund ticket",
            "sectigo",
            Intent::Refund,
            json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}),
        ),
        case(
            "trustwave ev refund",
            "trustwave",
            Intent::Refund,
            json!({"product": {"validation": "ev"}, "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
        ),
        case(
            "symantec (config) refund",
            "symantec",
            Intent::Refund,
            json!({"purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-01T00:00:00Z"}),
        ),
    ]
}

/// A JSON line of the sweep's input: order `i` of a book whose issue dates spread over 60 days.
pub fn sweep_line(i: u64, as_of: DateTime<Utc>) -> String {
    const PROVIDERS: [&str; 7] = [
        "alibaba",
        "digicert",
        "geotrust",
        "sectigo",
        "symantec",
        "thawte",
        "trustwave",
    ];
    const VALIDATION: [&str; 3] = ["dv", "ov", "ev"];
    // A cheap deterministic spread (no RNG needed).
    let spread = (i.wrapping_mul(2_654_435_761) % (60 * 86_400)) as i64;
    let issued = as_of - chrono::Duration::seconds(spread);
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    json!({
        "provider": PROVIDERS[(i % 7) as usize],
        "order": {
            "id": format!("ord-{i}"), "supplier_order_id": format!("S-{i}"), "common_name": format!("host{i}.example.com"),
            "product": {"validation": VALIDATION[(i % 3) as usize], "kind": "ssl", "free": false},
            "origin": "purchased", "state": "issued", "validation_status": "validated",
            "purchased_at": fmt(issued - chrono::Duration::days(1)), "issued_at": fmt(issued),
            "expires_at": fmt(issued + chrono::Duration::days(365)),
            "paid": {"amount": "120.00", "currency": "USD"}
        }
    })
    .to_string()
}
