//! The table engine's own tests: filled instructions, notes that state a rule, submit margins,
//! anchors, config validation, and the `config` kind in its long and short forms.

use super::*;
use crate::config::Mode;
use crate::provider::Provider;
use crate::testing::{at, decide, order, pending, rules, EXAMPLES_AS_OF};
use serde_json::json;
use std::sync::Arc;

/// A table like a reseller brand's: 30 days from fulfilment, cancel while unissued,
/// revoke once issued (automated), one note that states its rule and one that states none.
fn table() -> BrandRules {
    serde_json::from_value(declared()).unwrap()
}

/// [`table`] as providers.toml declares it.
fn declared() -> serde_json::Value {
    json!({
        "refund_window": {"rule": "T-30D", "summary": "30 days", "days": 30},
        "unissued": {"rule": "T-UNISSUED", "summary": "cancel",
                     "steps": [{"action": "cancel", "procedure": "automated"}]},
        "issued": {"rule": "T-ISSUED", "summary": "revoke",
                   "steps": [{"action": "revoke", "procedure": "manual_ticket",
                              "ticket_fields": ["supplier_order_id"],
                              "instructions": ["Revoke {supplier_order_id} ({common_name})."]}]},
        "notes": [{"rule": "T-ONLY", "text": "Only the reseller may ask (T-ONLY)."},
                  "Say please."]
    })
}

fn provider(rules: BrandRules) -> Arc<dyn Provider> {
    let ctx = ProviderContext {
        name: "acme",
        mode: Mode::Manual,
        api: None,
    };
    BrandProvider::build(&ctx, rules).unwrap()
}

#[test]
fn steps_carry_their_instructions_filled_from_the_order() {
    let o = order(json!({"supplier_order_id": "S-1", "issued_at": "2026-06-01T00:00:00Z"}));
    let d = decide(&*provider(table()), &o, Intent::Refund, EXAMPLES_AS_OF);
    assert_eq!(d.steps[0].instructions, ["Revoke S-1 (shop.example.com)."]);
    let o = order(json!({"supplier_order_id": null, "issued_at": "2026-06-01T00:00:00Z"}));
    let d = decide(&*provider(table()), &o, Intent::Refund, EXAMPLES_AS_OF);
    assert_eq!(
        d.steps[0].instructions,
        ["Revoke (not given) (shop.example.com)."]
    );
}

#[test]
fn a_note_that_states_a_rule_lists_it_and_every_answer_says_it() {
    let infos = table().rule_infos();
    let only: Vec<_> = infos.iter().filter(|r| r.id.as_str() == "T-ONLY").collect();
    assert_eq!(only.len(), 1, "{infos:?}");
    assert_eq!(only[0].summary, "Only the reseller may ask (T-ONLY).");
    // A note that states no rule lists none, whatever its words look like.
    let mut plain = table();
    plain.notes = vec![Note::new("Only the reseller may ask (T-ONLY).")];
    assert!(plain.rule_infos().iter().all(|r| r.id.as_str() != "T-ONLY"));
    let o = order(json!({"issued_at": "2026-06-01T00:00:00Z"}));
    let d = decide(&*provider(table()), &o, Intent::Refund, EXAMPLES_AS_OF);
    assert_eq!(
        d.notes,
        ["Only the reseller may ask (T-ONLY).", "Say please."]
    );
    // A note serializes as the words the answers say.
    let shown = serde_json::to_value(table()).unwrap();
    assert_eq!(
        shown["notes"],
        json!(["Only the reseller may ask (T-ONLY).", "Say please."])
    );
    let err = serde_json::from_value::<Note>(json!({"rule": "X", "txt": "?"})).unwrap_err();
    assert!(err.to_string().contains("txt"), "{err}");
}

#[test]
fn a_submit_margin_steps_back_business_days() {
    let mut rules = table();
    rules.refund_window.submit_margin_business_days = 2;
    // Deadline Sat 2026-06-20 00:00: two business days back is Thu 2026-06-18 00:00.
    let d = decide(
        &*provider(rules),
        &order(
            json!({"purchased_at": "2026-01-01T00:00:00Z", "issued_at": "2026-05-21T00:00:00Z"}),
        ),
        Intent::Refund,
        "2026-06-18T00:00:01Z",
    );
    assert_eq!(d.submit_by, Some(at("2026-06-18T00:00:00Z")));
    assert_eq!(d.warnings.len(), 1);
}

#[test]
fn a_purchase_anchored_window_applies_to_unissued_orders() {
    let mut rules = table();
    rules.refund_window.anchor = Anchor::PurchasedAt;
    rules.refund_window.days = 5;
    let o = order(pending("2026-06-01T00:00:00Z"));
    let d = decide(&*provider(rules), &o, Intent::Refund, EXAMPLES_AS_OF);
    assert!(!d.allowed);
    assert_eq!(d.alternative, Some(Intent::Cancel));
    assert_eq!(self::rules(&d), ["T-30D"]);
}

#[test]
fn config_rules_are_validated_with_their_keys() {
    let ctx = ProviderContext {
        name: "acme",
        mode: Mode::Api,
        api: None,
    };
    let mut bad = table();
    bad.refund_window.days = 0;
    bad.issued.steps[0].action = Action::Cancel;
    bad.issued.steps[0].procedure = Procedure::Automated;
    bad.exclusions.push(Exclusion {
        rule: RuleId::new("X"),
        summary: "".into(),
        validation: None,
        kind: None,
        free: None,
    });
    let keys: Vec<_> = BrandProvider::build(&ctx, bad)
        .unwrap_err()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(
        keys,
        [
            "providers.acme.settings.refund_window.days",
            "providers.acme.settings.exclusions[0]",
            "providers.acme.settings.unissued.steps[0].procedure",
            "providers.acme.settings.issued.steps[0].action",
            "providers.acme.settings.issued.steps[0].procedure",
        ]
    );
}

#[test]
fn a_config_provider_reads_its_whole_policy_from_settings() {
    let ctx = ProviderContext {
        name: "acme",
        mode: Mode::Manual,
        api: None,
    };
    let settings = serde_json::to_value(table()).unwrap();
    let p = build_config(&ctx, settings.clone(), &Presets::new()).unwrap();
    assert_eq!(p.settings(), settings);
    let mut unknown = settings;
    unknown["issued"]["colour"] = json!("blue");
    let err = build_config(&ctx, unknown, &Presets::new()).unwrap_err();
    assert_eq!(err[0].key, "providers.acme.settings.issued.colour");
}

fn table_preset(_: &ProviderContext<'_>) -> BrandRules {
    table()
}

#[test]
fn a_config_provider_may_name_a_preset_instead() {
    let ctx = ProviderContext {
        name: "acme",
        mode: Mode::Manual,
        api: None,
    };
    let presets = Presets::from([("table", table_preset as Preset)]);
    let long = build_config(&ctx, declared(), &presets).unwrap();
    let short = build_config(&ctx, json!({"preset": "table"}), &presets).unwrap();
    assert_eq!(short.settings(), long.settings());
    assert_eq!(short.rules(), long.rules());
    // Tuned like a brand plugin.
    let tuned = build_config(
        &ctx,
        json!({"preset": "table", "refund_window_days": 45}),
        &presets,
    )
    .unwrap();
    assert_eq!(tuned.settings()["refund_window"]["days"], 45);
    let err = build_config(&ctx, json!({"preset": "nope"}), &presets).unwrap_err();
    assert_eq!(err[0].key, "providers.acme.settings.preset");
    assert!(err[0].message.contains("known presets: table"), "{err:?}");
    let err = build_config(&ctx, json!({"preset": 3}), &Presets::new()).unwrap_err();
    assert!(err[0].message.contains("none is registered"), "{err:?}");
    // The short form is not mixed with the long one.
    let mut mixed = serde_json::to_value(table()).unwrap();
    mixed["preset"] = json!("table");
    let err = build_config(&ctx, mixed, &presets).unwrap_err();
    let keys: Vec<_> = err.iter().map(|i| i.key.as_str()).collect();
    assert!(
        keys.contains(&"providers.acme.settings.refund_window"),
        "{keys:?}"
    );
}

#[test]
fn brand_settings_tune_the_window() {
    let ctx = ProviderContext {
        name: "geo",
        mode: Mode::Manual,
        api: None,
    };
    let p = BrandSettings::build(&ctx, json!({"refund_window_days": 45}), table()).unwrap();
    assert_eq!(p.settings()["refund_window"]["days"], 45);
    let err = BrandSettings::build(&ctx, json!({"refund_window_days": 0}), table()).unwrap_err();
    assert_eq!(err[0].key, "providers.geo.settings.refund_window_days");
    let err = BrandSettings::build(&ctx, json!({"window": 1}), table()).unwrap_err();
    assert_eq!(err[0].key, "providers.geo.settings.window");
}

#[test]
fn a_note_states_its_rule_as_data_or_in_the_older_string_form() {
    let read = |v: serde_json::Value| serde_json::from_value::<Note>(v).unwrap();
    let table = read(json!({"rule": "RSL-RESELLER-ONLY", "text": "From the reseller only."}));
    assert_eq!(
        table.rule.as_ref().map(RuleId::as_str),
        Some("RSL-RESELLER-ONLY")
    );
    let older = read(json!(
        "From the reseller's own account only (RSL-RESELLER-ONLY)."
    ));
    assert_eq!(
        older.rule, table.rule,
        "the form providers.toml used before"
    );
    assert_eq!(
        older.text.as_ref(),
        "From the reseller's own account only (RSL-RESELLER-ONLY)."
    );
    for plain in [
        "No rule here.",
        "Lower case (not-a-rule).",
        "Unclosed (RSL-X.",
    ] {
        assert_eq!(read(json!(plain)).rule, None, "{plain}");
    }
    assert_eq!(
        serde_json::to_value(&older).unwrap(),
        json!(older.text.as_ref())
    );
}
