//! Test fixtures for policy tests across the plugin crates (feature `testing`): API.md's
//! example order with patches, instants from strings, and a one-call decision.

use crate::calendar::Calendar;
use crate::order::Order;
use crate::provider::{PolicyInput, Provider};
use crate::quote::{Decision, Intent};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// EXAMPLES.md's `as_of`: Monday 2026-06-15T08:30:00Z.
pub const EXAMPLES_AS_OF: &str = "2026-06-15T08:30:00Z";

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

/// Ids a hostile tenant may send: path separators, a query, a fragment, percent signs (also
/// encoded dots), dot segments, spaces, non-ASCII, markup. A CA client must carry each as one
/// value (one path segment, one form field, one XML value) or refuse before sending.
pub const HOSTILE_IDS: &[&str] = &[
    "../../../../admin/users/export?all=1#",
    "a/b",
    "1001?status=revoked",
    "1001#x",
    "50%off",
    "%2e%2e",
    "..",
    ".",
    "10 01",
    "ünïcødé-１２",
    "<x>&amp;\"'",
    "a+b=c&d",
];

/// API.md's example order: an issued OV SSL certificate, paid 120.00 USD with a 20.00 voucher;
/// its CA ids are digits, as the CAs give them (API.md writes `DC-99231` and `cert-77`).
pub fn sample() -> Value {
    json!({
        "id": "ord-1001",
        "supplier_order_id": "99231",
        "certificate_id": "77",
        "common_name": "shop.example.com",
        "technical_email": "ops@example.com",
        "product": {"validation": "ov", "kind": "ssl", "free": false},
        "origin": "purchased",
        "state": "issued",
        "validation_status": "validated",
        "purchased_at": "2026-01-02T10:00:00Z",
        "issued_at": "2026-01-05T09:00:00Z",
        "expires_at": "2027-01-05T09:00:00Z",
        "revoked_at": null,
        "paid": {"amount": "120.00", "currency": "USD"},
        "voucher": {"amount": "20.00", "currency": "USD"},
        "approval_required": false, "reissue": false, "generated": false,
        "charged_to": "other"
    })
}

/// The sample order with `patch`'s top-level keys replaced; it must validate.
pub fn order(patch: Value) -> Order {
    let mut v = sample();
    for (k, val) in patch.as_object().expect("a JSON object") {
        v[k] = val.clone();
    }
    let order: Order = serde_json::from_value(v).expect("a well-formed order");
    order.validate().expect("consistent order facts");
    order
}

/// An unissued order (pending, not validated) bought at `purchased_at`, expiring a year later.
pub fn pending(purchased_at: &str) -> Value {
    let p = at(purchased_at);
    json!({
        "state": "pending",
        "validation_status": "submitted",
        "purchased_at": purchased_at,
        "issued_at": null,
        "expires_at": crate::order::instant::format(&crate::calendar::days_after(p, 365)),
    })
}

/// `provider`'s decision with the given holidays.
pub fn decide_with(
    provider: &dyn Provider,
    order: &Order,
    intent: Intent,
    as_of: &str,
    calendar: &Calendar,
) -> Decision {
    provider
        .decide(&PolicyInput {
            order,
            intent,
            as_of: at(as_of),
            calendar,
        })
        .expect("a decision")
}

/// `provider`'s decision with no holidays.
pub fn decide(provider: &dyn Provider, order: &Order, intent: Intent, as_of: &str) -> Decision {
    decide_with(provider, order, intent, as_of, &Calendar::default())
}

/// The cited rule ids, as strings.
pub fn rules(d: &Decision) -> Vec<&str> {
    d.rules.iter().map(|r| r.as_str()).collect()
}

/// Each step as `action/procedure`, e.g. `revoke/automated`.
pub fn steps(d: &Decision) -> Vec<String> {
    d.steps
        .iter()
        .map(|s| {
            let v = serde_json::to_value(s).expect("serializable");
            format!(
                "{}/{}",
                v["action"].as_str().unwrap_or("?"),
                v["procedure"].as_str().unwrap_or("?")
            )
        })
        .collect()
}
