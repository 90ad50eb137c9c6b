//! The registry's tests: manual mode, every problem at once, API URLs, the policy version,
//! unknown providers, provider names, and `config` providers that name a preset.

use super::*;
use crate::config::parse_toml;
use crate::quote::Procedure;
use crate::testing::{at, order, EXAMPLES_AS_OF};
use serde_json::json;

const ACME: &str = r#"
    [providers.acme]
    kind = "config"
    mode = "manual"
    [providers.acme.settings.refund_window]
    rule = "ACME-30D"
    summary = "30 days"
    days = 30
    [providers.acme.settings.unissued]
    rule = "ACME-CANCEL"
    summary = "cancel"
    steps = [{ action = "cancel", procedure = "automated" }]
    [providers.acme.settings.issued]
    rule = "ACME-REVOKE"
    summary = "revoke"
    steps = [{ action = "revoke", procedure = "automated" }]
"#;

#[derive(Debug, serde::Deserialize)]
struct Providers {
    #[serde(default)]
    providers: ProviderTables,
}

fn build(text: &str) -> Result<Registry, ConfigError> {
    RegistryBuilder::default().build(&parse_toml::<Providers>(text)?.providers)
}

#[test]
fn manual_mode_makes_every_step_a_ticket() {
    let registry = build(ACME).unwrap();
    let o =
        order(json!({"purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-01T00:00:00Z"}));
    let q = registry
        .quote("acme", &o, Intent::Refund, at(EXAMPLES_AS_OF))
        .unwrap();
    assert_eq!(q.decision.steps[0].procedure, Procedure::ManualTicket);
    assert_eq!(
        q.decision.steps[0].ticket_fields,
        crate::quote::DEFAULT_TICKET_FIELDS
    );
    assert!(q.policy_version.starts_with("sha256:"));
    assert_eq!(q.provider, "acme");
}

#[test]
fn every_problem_of_every_provider_is_reported_at_once() {
    let text = format!(
        "{ACME}\n[providers.bad1]\nkind = \"nope\"\n[providers.bad2]\nkind = \"config\"\nmode = \"api\"\nsettings = {{}}\n[providers.bad3]\nkind = \"config\"\ncolour = 1\n"
    );
    let err = build(&text).unwrap_err();
    let keys: Vec<_> = err.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "providers.bad1.kind",
            "providers.bad2.api",
            "providers.bad2.settings.refund_window",
            "providers.bad3.colour"
        ],
        "{err}"
    );
    assert!(err.issues[0].message.contains("known kinds: config"));
    assert!(err.to_string().contains("4 problems"));
}

#[test]
fn api_urls_are_checked() {
    let text = ACME.replace(
        "mode = \"manual\"",
        "mode = \"api\"\napi = { base_url = \"ftp://x\" }",
    );
    let err = build(&text).unwrap_err();
    assert_eq!(err.issues[0].key, "providers.acme.api.base_url");
    let at = |url: &str| {
        build(&ACME.replace(
            "mode = \"manual\"",
            &format!("mode = \"manual\"\napi = {{ base_url = \"{url}\" }}"),
        ))
    };
    let err = at("https://u:p@ca.example/v2").unwrap_err();
    assert!(err.issues[0].message.contains("credentials"), "{err}");
    for plain in [
        "http://ca.example/v2",
        "http://10.0.0.1/",
        "http://localhost.evil.example/",
    ] {
        let err = at(plain).unwrap_err();
        assert!(err.issues[0].message.contains("loopback"), "{plain}: {err}");
    }
    for fine in [
        "https://ca.example/v2",
        "http://127.0.0.1:9/",
        "http://[::1]:9/",
        "http://localhost:9/",
    ] {
        assert!(at(fine).is_ok(), "{fine}");
    }
}

#[test]
fn the_policy_version_follows_the_effective_policy() {
    let a = build(ACME)
        .unwrap()
        .get("acme")
        .unwrap()
        .policy_version
        .clone();
    let same = build(ACME)
        .unwrap()
        .get("acme")
        .unwrap()
        .policy_version
        .clone();
    let holiday = ACME.replace(
        "mode = \"manual\"",
        "mode = \"manual\"\nholidays = [\"2026-12-25\"]",
    );
    let b = build(&holiday)
        .unwrap()
        .get("acme")
        .unwrap()
        .policy_version
        .clone();
    assert_eq!(a, same);
    assert_ne!(a, b);
}

#[test]
fn unknown_providers_and_bad_orders_are_errors() {
    let registry = build(ACME).unwrap();
    let o = order(json!({}));
    let err = registry
        .quote("nope", &o, Intent::Refund, at(EXAMPLES_AS_OF))
        .unwrap_err();
    assert!(matches!(err, QuoteError::UnknownProvider(ref m) if m.contains("acme")));
    let mut bad = o;
    bad.issued_at = Some(at("2025-01-01T00:00:00Z"));
    let err = registry
        .quote("acme", &bad, Intent::Refund, at(EXAMPLES_AS_OF))
        .unwrap_err();
    assert!(matches!(err, QuoteError::Invalid(ref e) if e.errors[0].field == "order.issued_at"));
}

#[test]
fn provider_names_are_checked() {
    let err = build(&ACME.replace("providers.acme", "providers.Acme")).unwrap_err();
    assert_eq!(err.issues[0].key, "providers.Acme");
    assert!(build("").unwrap_err().issues[0]
        .message
        .contains("no provider"));
}

/// ACME's whole table, as a preset.
fn acme_rules(_: &ProviderContext<'_>) -> crate::policy::brand::BrandRules {
    let tables = parse_toml::<Providers>(ACME).unwrap().providers;
    serde_json::from_value(tables["acme"]["settings"].clone()).unwrap()
}

#[test]
fn a_config_provider_may_name_a_registered_preset() {
    let mut builder = RegistryBuilder::default();
    builder.register_preset("acme-like", acme_rules);
    let text = format!(
        "{ACME}\n[providers.short]\nkind = \"config\"\nmode = \"manual\"\nsettings = {{ preset = \"acme-like\" }}\n"
    );
    let registry = builder
        .build(&parse_toml::<Providers>(&text).unwrap().providers)
        .unwrap();
    let (long, short) = (
        registry.get("acme").unwrap(),
        registry.get("short").unwrap(),
    );
    assert_eq!(short.describe().settings, long.describe().settings);
    assert_eq!(short.describe().rules, long.describe().rules);
    assert_eq!(short.kind, CONFIG_KIND);
    // Without the preset registered, the name is a problem of its key.
    let err = build(&text).unwrap_err();
    assert_eq!(err.issues[0].key, "providers.short.settings.preset");
    assert!(format!("{builder:?}").contains("acme-like"));
}
