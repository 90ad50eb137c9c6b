//! Alibaba's rules, case by case: the refund window, pending and issued orders, the exclusions.

use super::*;
use certgate_core::calendar::Calendar;
use certgate_core::quote::RefundKind;
use certgate_core::testing::{
    at, decide, decide_with, order, pending, rules, steps, EXAMPLES_AS_OF,
};
use serde_json::json;

const NOW: &str = EXAMPLES_AS_OF;

fn ali() -> AlibabaPolicy {
    AlibabaPolicy::default()
}

/// EXAMPLES.md #1: OV issued 2026-06-01T08:30Z, paid 200.00, voucher 50.00.
fn example_1() -> Order {
    order(json!({
        "purchased_at": "2026-05-30T08:30:00Z",
        "issued_at": "2026-06-01T08:30:00Z",
        "expires_at": "2027-06-01T08:30:00Z",
        "paid": {"amount": "200.00", "currency": "USD"},
        "voucher": {"amount": "50.00", "currency": "USD"},
    }))
}

#[test]
fn example_1_issued_ov_with_voucher() {
    let d = decide(&ali(), &example_1(), Intent::Refund, NOW);
    assert!(d.allowed);
    assert_eq!(
        steps(&d),
        ["revoke/automated", "refund_request/manual_ticket"]
    );
    assert_eq!(d.steps[0].confirmation, Some(Confirmation::Email));
    assert_eq!(d.steps[1].review, Some(Review::Manual));
    assert_eq!(d.refund.kind, RefundKind::Partial);
    assert_eq!(d.refund.amount.to_string(), "150.00");
    assert_eq!(d.deadline, Some(at("2026-06-29T08:30:00Z")));
    assert_eq!(d.submit_by, Some(at("2026-06-22T08:30:00Z")));
    assert_eq!(d.eta, Some(Eta::new(5, 15)));
    assert!(d.warnings.is_empty());
    assert_eq!(
        rules(&d),
        ["ALI-ISSUED-28D", "ALI-VOUCHER", "ALI-REVOKE-CONFIRM"]
    );
    assert!(d
        .notes
        .iter()
        .any(|n| n.contains("can no longer be viewed or downloaded")));
    assert_eq!(d.alternative, None);
}

#[test]
fn example_2_a_holiday_moves_submit_by() {
    let cal = Calendar::new(["2026-06-25".parse().unwrap()]);
    let d = decide_with(&ali(), &example_1(), Intent::Refund, NOW, &cal);
    assert_eq!(d.submit_by, Some(at("2026-06-19T08:30:00Z")));
    assert_eq!(d.deadline, Some(at("2026-06-29T08:30:00Z")));
}

#[test]
fn issued_window_boundaries() {
    let o = example_1();
    // Exactly at submit_by: safe, no warning.
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-22T08:30:00Z");
    assert!(d.allowed && d.warnings.is_empty());
    // One second later: allowed, but the refund is at risk.
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-22T08:30:01Z");
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    // The instant the window closes is still inside it.
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-29T08:30:00Z");
    assert!(d.allowed);
    // One second after, no refund: revoke is the alternative.
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-29T08:30:01Z");
    assert!(!d.allowed);
    assert_eq!(rules(&d), ["ALI-ISSUED-LATE"]);
    assert_eq!(d.alternative, Some(Intent::Revoke));
    assert_eq!(d.refund.kind, RefundKind::None);
    assert!(d.steps.is_empty());
}

#[test]
fn a_deadline_on_a_weekend_steps_back_from_it() {
    // Issued Saturday 2026-05-30 12:00: the window closes Saturday 2026-06-27 12:00;
    // five business days back: Fri 26, Thu 25, Wed 24, Tue 23, Mon 22.
    let o =
        order(json!({"purchased_at": "2026-05-29T00:00:00Z", "issued_at": "2026-05-30T12:00:00Z"}));
    let d = decide(&ali(), &o, Intent::Refund, NOW);
    assert_eq!(d.deadline, Some(at("2026-06-27T12:00:00Z")));
    assert_eq!(d.submit_by, Some(at("2026-06-22T12:00:00Z")));
    // A holiday on Monday 22 pushes it to the Friday before.
    let cal = Calendar::new(["2026-06-22".parse().unwrap()]);
    let d = decide_with(&ali(), &o, Intent::Refund, NOW, &cal);
    assert_eq!(d.submit_by, Some(at("2026-06-19T12:00:00Z")));
}

#[test]
fn example_3_unissued_within_five_days() {
    let o = unissued(
        "2026-06-12T00:00:00Z",
        json!({"paid": {"amount": "200.00", "currency": "USD"}}),
    );
    let d = decide(&ali(), &o, Intent::Refund, NOW);
    assert!(d.allowed);
    assert_eq!(steps(&d), ["refund_request/manual_ticket"]);
    assert_eq!(d.steps[0].review, Some(Review::None));
    assert_eq!(d.refund.kind, RefundKind::Full);
    assert_eq!(d.refund.amount.to_string(), "200.00");
    assert_eq!(rules(&d), ["ALI-UNISSUED-5D"]);
    assert_eq!(d.eta, Some(Eta::new(0, 0)));
    assert!(d.notes.iter().any(|n| n.contains("can still be used")));
}

fn unissued(purchased_at: &str, patch: serde_json::Value) -> Order {
    let mut v = pending(purchased_at);
    v["voucher"] = json!(null);
    for (k, val) in patch.as_object().unwrap() {
        v[k] = val.clone();
    }
    order(v)
}

#[test]
fn five_days_after_purchase_is_the_last_instant_without_review() {
    let o = unissued("2026-06-10T08:30:00Z", json!({}));
    let d = decide(&ali(), &o, Intent::Refund, NOW);
    assert_eq!(rules(&d), ["ALI-UNISSUED-5D"]);
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-15T08:30:01Z");
    assert_eq!(rules(&d), ["ALI-UNISSUED-REVIEW"]);
    assert_eq!(d.steps[0].review, Some(Review::Manual));
    assert_eq!(d.eta, Some(Eta::new(5, 15)));
    assert!(d.notes.iter().any(|n| n.contains("ALI-CANCEL-REFUND")));
}

#[test]
fn unissued_review_until_fifteen_calendar_days_before_expiry() {
    // Expires Wed 2026-07-01 08:30: the cut-off is Tue 2026-06-16 08:30.
    let o = unissued(
        "2026-01-01T00:00:00Z",
        json!({"expires_at": "2026-07-01T08:30:00Z", "validation_status": "failed"}),
    );
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-16T08:30:00Z");
    assert!(d.allowed);
    assert_eq!(rules(&d), ["ALI-UNISSUED-REVIEW"]);
    assert_eq!(d.deadline, Some(at("2026-06-16T08:30:00Z")));
    // Fewer than 15 business days remain: the note of 001 becomes a warning.
    assert_eq!(d.warnings.len(), 1);
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-16T08:30:01Z");
    assert!(!d.allowed);
    assert_eq!(rules(&d), ["ALI-UNISSUED-LATE"]);
    assert_eq!(d.alternative, Some(Intent::Cancel));
}

#[test]
fn fifteen_business_days_before_expiry_is_the_safe_submit_by() {
    // Expires Wed 2026-07-01 08:30; 15 business days back: 2026-06-10 08:30 (Wed).
    let o = unissued(
        "2026-01-01T00:00:00Z",
        json!({"expires_at": "2026-07-01T08:30:00Z"}),
    );
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-10T08:30:00Z");
    assert_eq!(d.submit_by, Some(at("2026-06-10T08:30:00Z")));
    assert!(d.warnings.is_empty());
    let d = decide(&ali(), &o, Intent::Refund, "2026-06-10T08:30:01Z");
    assert_eq!(d.warnings.len(), 1);
    assert!(d.allowed);
}

#[test]
fn unissued_but_validated_is_refused_and_late_wins() {
    let o = unissued(
        "2026-06-12T00:00:00Z",
        json!({"validation_status": "validated"}),
    );
    let d = decide(&ali(), &o, Intent::Refund, NOW);
    assert!(!d.allowed);
    assert_eq!(rules(&d), ["ALI-UNISSUED-VALIDATED"]);
    assert_eq!(d.alternative, Some(Intent::Cancel));
    let late = unissued(
        "2026-01-01T00:00:00Z",
        json!({"validation_status": "validated", "expires_at": "2026-06-20T00:00:00Z"}),
    );
    let d = decide(&ali(), &late, Intent::Refund, NOW);
    assert_eq!(rules(&d), ["ALI-UNISSUED-LATE"]);
}

#[test]
fn example_4_dv_issued_long_ago() {
    let o = order(
        json!({"product": {"validation": "dv"}, "purchased_at": "2026-04-30T00:00:00Z", "issued_at": "2026-05-01T00:00:00Z"}),
    );
    let d = decide(&ali(), &o, Intent::Refund, NOW);
    assert!(!d.allowed);
    assert_eq!(rules(&d), ["ALI-ISSUED-LATE"]);
    assert_eq!(d.alternative, Some(Intent::Revoke));
    assert_eq!(d.refund.kind, RefundKind::None);
    // Revocation alone is still allowed.
    assert!(decide(&ali(), &o, Intent::Revoke, NOW).allowed);
}

#[test]
fn free_dv_is_never_refundable() {
    let issued = order(
        json!({"product": {"validation": "dv", "free": true}, "voucher": null, "issued_at": "2026-06-10T00:00:00Z", "purchased_at": "2026-06-09T00:00:00Z"}),
    );
    let d = decide(&ali(), &issued, Intent::Refund, NOW);
    assert!(!d.allowed);
    assert_eq!(rules(&d), ["ALI-FREE"]);
    assert_eq!(d.alternative, Some(Intent::Revoke));
    let mut v = pending("2026-06-14T00:00:00Z");
    v["product"] = json!({"validation": "dv", "free": true});
    let d = decide(&ali(), &order(v), Intent::Refund, NOW);
    assert_eq!(rules(&d), ["ALI-FREE"]);
    assert_eq!(d.alternative, Some(Intent::Cancel));
}

#[test]
fn uploaded_certificates_cannot_be_revoked_or_refunded() {
    let o = order(
        json!({"origin": "uploaded", "issued_at": "2026-06-10T00:00:00Z", "purchased_at": "2026-06-09T00:00:00Z"}),
    );
    for intent in Intent::ALL {
        let d = decide(&ali(), &o, intent, NOW);
        assert!(!d.allowed, "{intent}");
        assert_eq!(rules(&d), ["ALI-UPLOAD"]);
        assert_eq!(d.alternative, None);
    }
}

#[test]
fn expired_certificates_are_not_refundable() {
    let issued = order(
        json!({"issued_at": "2025-06-01T00:00:00Z", "purchased_at": "2025-06-01T00:00:00Z", "expires_at": "2026-06-15T08:30:00Z"}),
    );
    let d = decide(&ali(), &issued, Intent::Refund, NOW);
    assert_eq!(rules(&d), ["ALI-EXPIRED"]);
    assert_eq!(d.alternative, None);
    let mut v = pending("2026-06-14T00:00:00Z");
    v["state"] = json!("expired");
    let d = decide(&ali(), &order(v), Intent::Refund, NOW);
    assert_eq!(rules(&d), ["ALI-EXPIRED"]);
    // Expired and free: both reasons are cited.
    let free = order(
        json!({"product": {"validation": "dv", "free": true}, "issued_at": "2025-06-01T00:00:00Z", "purchased_at": "2025-06-01T00:00:00Z", "expires_at": "2026-06-01T00:00:00Z"}),
    );
    assert_eq!(
        rules(&decide(&ali(), &free, Intent::Refund, NOW)),
        ["ALI-FREE", "ALI-EXPIRED"]
    );
}

#[test]
fn vouchers_never_refund_below_zero() {
    let o = order(
        json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z", "voucher": {"amount": "150.00", "currency": "USD"}}),
    );
    let d = decide(&ali(), &o, Intent::Refund, NOW);
    assert_eq!(d.refund.kind, RefundKind::Partial);
    assert_eq!(d.refund.amount.to_string(), "0.00");
    assert!(d.warnings.iter().any(|w| w.contains("voucher")));
    let none = order(
        json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z", "voucher": {"amount": "0.00", "currency": "USD"}}),
    );
    let d = decide(&ali(), &none, Intent::Refund, NOW);
    assert_eq!(d.refund.kind, RefundKind::Full);
    assert!(!rules(&d).contains(&"ALI-VOUCHER"));
}

#[test]
fn only_ov_and_ev_revocations_need_email_confirmation() {
    for (validation, confirm) in [
        ("dv", None),
        ("ov", Some(Confirmation::Email)),
        ("ev", Some(Confirmation::Email)),
    ] {
        let o = order(
            json!({"product": {"validation": validation}, "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
        );
        for intent in [Intent::Refund, Intent::Revoke] {
            let d = decide(&ali(), &o, intent, NOW);
            assert_eq!(d.steps[0].confirmation, confirm, "{validation} {intent}");
            assert_eq!(rules(&d).contains(&"ALI-REVOKE-CONFIRM"), confirm.is_some());
        }
    }
}

#[test]
fn revoke_carries_a_reason_and_says_what_follows() {
    let o =
        order(json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}));
    let d = decide(&ali(), &o, Intent::Revoke, NOW);
    assert!(d.allowed);
    assert_eq!(steps(&d), ["revoke/automated"]);
    assert_eq!(rules(&d), ["ALI-REVOKE-REASON", "ALI-REVOKE-CONFIRM"]);
    assert_eq!(d.refund.kind, RefundKind::None);
    assert!(d.notes.iter().any(|n| n.contains("ALI-DELETE")));
    assert!(d.notes.iter().any(|n| n.contains("intent refund")));
    let pending_order = order(pending("2026-06-14T00:00:00Z"));
    let d = decide(&ali(), &pending_order, Intent::Revoke, NOW);
    assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Cancel)));
    assert_eq!(rules(&d), ["ALI-REVOKE-ISSUED"]);
}

#[test]
fn an_already_revoked_certificate_needs_only_the_refund_request() {
    let base = json!({"state": "revoked", "purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-01T08:30:00Z", "revoked_at": "2026-06-12T00:00:00Z"});
    let d = decide(&ali(), &order(base.clone()), Intent::Refund, NOW);
    assert!(d.allowed);
    assert_eq!(steps(&d), ["refund_request/manual_ticket"]);
    assert_eq!(rules(&d), ["ALI-ISSUED-28D", "ALI-VOUCHER"]);
    assert_eq!(d.deadline, Some(at("2026-06-29T08:30:00Z")));
    // Claimed after the window: refused, even though the revocation was in time.
    let d = decide(
        &ali(),
        &order(base.clone()),
        Intent::Refund,
        "2026-06-29T08:30:01Z",
    );
    assert_eq!((d.allowed, rules(&d)), (false, vec!["ALI-ISSUED-28D"]));
    // Revoked after the window: refused.
    let mut late = base.clone();
    late["revoked_at"] = json!("2026-06-29T08:30:01Z");
    let d = decide(&ali(), &order(late), Intent::Refund, "2026-06-29T09:00:00Z");
    assert!(!d.allowed);
    // Without revoked_at the answer names the field.
    let mut missing = base;
    missing["revoked_at"] = json!(null);
    let err = ali()
        .decide(&PolicyInput {
            order: &order(missing),
            intent: Intent::Refund,
            as_of: at(NOW),
            calendar: &Calendar::default(),
        })
        .unwrap_err();
    assert_eq!(err.errors[0].field, "order.revoked_at");
}

#[test]
fn deletion_only_after_revocation() {
    let issued = order(json!({}));
    assert!(!deletable(&issued, at(NOW)));
    let revoked = order(json!({"state": "revoked", "revoked_at": "2026-02-01T00:00:00Z"}));
    assert!(deletable(&revoked, at(NOW)));
    let uploaded = order(json!({"origin": "uploaded"}));
    assert!(deletable(&uploaded, at(NOW)));
    assert!(!deletable(&order(pending("2026-06-14T00:00:00Z")), at(NOW)));
}

#[test]
fn cancel_only_while_pending() {
    let d = decide(
        &ali(),
        &order(pending("2026-06-14T00:00:00Z")),
        Intent::Cancel,
        NOW,
    );
    assert!(d.allowed);
    assert_eq!(steps(&d), ["cancel/automated"]);
    assert_eq!(rules(&d), ["ALI-CANCEL-PENDING"]);
    assert_eq!(d.refund.kind, RefundKind::None);
    let d = decide(&ali(), &order(json!({})), Intent::Cancel, NOW);
    assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Revoke)));
}

#[test]
fn the_older_thirty_day_window_is_configurable() {
    let older = AlibabaPolicy {
        settings: AlibabaSettings {
            refund_window_days: 30,
            review_eta: Eta::new(3, 5),
            ..Default::default()
        },
    };
    let d = decide(&older, &example_1(), Intent::Refund, NOW);
    assert_eq!(d.deadline, Some(at("2026-07-01T08:30:00Z")));
    assert_eq!(d.eta, Some(Eta::new(3, 5)));
}

#[test]
fn settings_are_checked_with_their_key() {
    use certgate_core::config::Mode;
    let ctx = ProviderContext {
        name: "alibaba",
        mode: Mode::Manual,
        api: None,
    };
    let err = build(&ctx, json!({"refund_window": 28})).unwrap_err();
    assert_eq!(err[0].key, "providers.alibaba.settings.refund_window");
    let err = build(&ctx, json!({"refund_window_days": 0})).unwrap_err();
    assert_eq!(err[0].key, "providers.alibaba.settings.refund_window_days");
    let err = build(&ctx, json!({"refund_window_days": "28"})).unwrap_err();
    assert_eq!(err[0].key, "providers.alibaba.settings.refund_window_days");
    assert!(build(&ctx, serde_json::Value::Null).is_ok());
}
