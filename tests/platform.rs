//! A reseller with only the reseller platform's account (seed 003, `client = "opensrs"`):
//! a pending GeoTrust order is cancelled through the platform's API, an issued Thawte order
//! gets the supplier portal's steps, an issued Sectigo order a support ticket; Symantec, from
//! providers.toml alone (the platform's preset), works on the platform's channel too, and its
//! rules written out in full (the long form) answer as the preset does.

mod common;

use certgate_opensrs::testing::reply;
use common::{order, spawn, steps, Setup, KEY};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const USER: &str = "platform-reseller";
const PLATFORM_KEY: &str = "platform-signing-key";

/// Every brand of seed 003 on the platform's channel; Symantec is `kind = "config"`, naming
/// the platform's preset for a DigiCert-issued brand.
fn platform_toml(base: &str) -> String {
    let api = format!(
        "client = \"opensrs\"\nbase_url = \"{base}\"\ncredentials = {{ username = \"${{PLATFORM_USER}}\", key = \"${{PLATFORM_KEY}}\" }}"
    );
    let brand = |name: &str, kind: &str| {
        format!(
            "[providers.{name}]\nkind = \"{kind}\"\nmode = \"api\"\n\n[providers.{name}.api]\n{api}\n\n"
        )
    };
    let mut text = String::new();
    for name in ["geotrust", "thawte", "sectigo", "trustwave"] {
        text += &brand(name, name);
    }
    text += &brand("symantec", "config");
    text += "[providers.symantec.settings]\npreset = \"reseller-portal\"\n";
    text
}

/// Seed 003's rules for a DigiCert-issued brand written out in full (the long form of
/// `kind = "config"`), as the shipped providers.toml had Symantec before it named the preset.
const SYMANTEC_LONG_FORM: &str = r#"
[providers.symantec_long]
kind = "config"
display_name = "Symantec (DigiCert-issued, via the reseller platform)"
mode = "api"
holidays = []

[providers.symantec_long.api]
client = "digicert"
base_url = "https://www.digicert.com/services/v2"
credentials = { api_key = "${DIGICERT_API_KEY}" }
rate_limits = [{ requests = 100, per_ms = 5000 }, { requests = 1000, per_ms = 300000 }]

[providers.symantec_long.settings]
notes = [{ rule = "RSL-RESELLER-ONLY", text = "The reseller platform processes requests from the reseller's own account only, never from the certificate holder (RSL-RESELLER-ONLY)." }]

[providers.symantec_long.settings.refund_window]
rule = "RSL-30D"
summary = "Refund within 30 calendar days of the fulfilment date (issued_at)."
days = 30
anchor = "issued_at"
submit_margin_business_days = 0

[providers.symantec_long.settings.unissued]
rule = "RSL-UNISSUED-CANCEL"
summary = "Not yet issued: the order is cancelled and what was paid comes back."
steps = [{ action = "cancel", procedure = "automated" }]

[providers.symantec_long.settings.issued]
rule = "RSL-PORTAL"
summary = "Issued: the order is cancelled by revoking it through DigiCert's API; the refund follows, reflected within 48 hours."
steps = [{ action = "revoke", procedure = "automated" }]
eta = { typical_business_days = 2, max_business_days = 2 }
"#;

/// The platform: orders by id with their state; checks every request's signature. With
/// `lose_answers`, it applies that many cancels and then answers too late to be heard.
#[derive(Clone, Default)]
struct Platform {
    states: Arc<Mutex<std::collections::HashMap<String, String>>>,
    actions: Arc<Mutex<Vec<String>>>,
    lose_answers: Arc<Mutex<usize>>,
}

impl Respond for Platform {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let xml = String::from_utf8_lossy(&req.body).into_owned();
        let signed = req.headers.get("X-Signature").and_then(|v| v.to_str().ok())
            == Some(certgate_opensrs::client::signature(&xml, PLATFORM_KEY).as_str());
        let user = req.headers.get("X-Username").and_then(|v| v.to_str().ok()) == Some(USER);
        if !(signed && user) {
            return ResponseTemplate::new(200).set_body_string(reply(
                false,
                400,
                "Authentication Error",
                None,
            ));
        }
        let read = certgate_opensrs::envelope::reply(&xml).unwrap();
        let action = read.get("action").unwrap_or_default().to_owned();
        let id = read
            .get("attributes.order_id")
            .unwrap_or_default()
            .to_owned();
        self.actions.lock().unwrap().push(format!("{action} {id}"));
        let mut states = self.states.lock().unwrap();
        let Some(state) = states.get_mut(&id) else {
            return ResponseTemplate::new(200).set_body_string(reply(
                false,
                404,
                "Order not found",
                None,
            ));
        };
        match action.as_str() {
            "CANCEL_ORDER" if state == "pending" => {
                *state = "cancelled".into();
                let answer =
                    ResponseTemplate::new(200).set_body_string(reply(true, 200, "ok", Some(state)));
                let mut lose = self.lose_answers.lock().unwrap();
                if *lose > 0 {
                    *lose -= 1;
                    return answer.set_delay(std::time::Duration::from_secs(3));
                }
                answer
            }
            "CANCEL_ORDER" => ResponseTemplate::new(200).set_body_string(reply(
                false,
                465,
                "Order cannot be cancelled in its current state",
                None,
            )),
            _ => ResponseTemplate::new(200).set_body_string(reply(true, 200, "ok", Some(state))),
        }
    }
}

async fn platform(states: &[(&str, &str)]) -> (MockServer, Platform) {
    std::env::set_var("PLATFORM_USER", USER);
    std::env::set_var("PLATFORM_KEY", PLATFORM_KEY);
    let p = Platform::default();
    for (id, state) in states {
        p.states
            .lock()
            .unwrap()
            .insert((*id).into(), (*state).into());
    }
    let mock = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/"))
        .respond_with(p.clone())
        .mount(&mock)
        .await;
    (mock, p)
}

fn pending(id: &str) -> Value {
    order(json!({"state": "pending", "issued_at": null, "platform_order_id": id}))
}

fn issued(id: &str) -> Value {
    order(
        json!({"issued_at": "2026-06-01T00:00:00Z", "platform_order_id": id, "supplier_order_id": "SUP-7781"}),
    )
}

#[tokio::test]
async fn a_pending_geotrust_order_is_cancelled_through_the_platforms_api() {
    let (mock, platform) = platform(&[("4411907", "pending")]).await;
    let app = spawn(Setup {
        providers_toml: platform_toml(&mock.uri()),
        clock: || common::clock_from("2026-06-02T00:00:00Z"),
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "geotrust", "intent": "cancel", "order": pending("4411907"),
                      "as_of": "2026-06-02T00:00:00Z"});
    let (status, quote) = app.post("/v1/quotes", &body).await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(steps(&quote), ["cancel/automated"]);
    let (status, op) = app.post_operation(KEY, "platform-cancel-1", &body).await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let actions = platform.actions.lock().unwrap().clone();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "CANCEL_ORDER 4411907")
            .count(),
        1,
        "{actions:?}"
    );
    assert_eq!(platform.states.lock().unwrap()["4411907"], "cancelled");

    // Without the platform's order id nothing could find it: a 400 naming the field.
    let mut no_id = body.clone();
    no_id["order"]["platform_order_id"] = Value::Null;
    let (status, problem) = app.post_operation(KEY, "platform-cancel-2", &no_id).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (400, Some("order.platform_order_id")),
        "{problem}"
    );
}

#[tokio::test]
async fn an_issued_thawte_order_gets_the_portal_steps_and_sectigo_a_support_ticket() {
    let (mock, platform) = platform(&[]).await;
    let app = spawn(Setup {
        providers_toml: platform_toml(&mock.uri()),
        clock: || common::clock_from("2026-06-10T00:00:00Z"),
        ..Setup::default()
    })
    .await;
    let as_of = "2026-06-10T00:00:00Z";
    for (provider, key) in [
        ("thawte", "portal-1"),
        ("sectigo", "support-1"),
        ("symantec", "portal-2"),
    ] {
        let body = json!({"provider": provider, "intent": "refund", "order": issued("4411908"), "as_of": as_of});
        let (status, op) = app.post_operation(KEY, key, &body).await;
        assert_eq!(status, 202, "{provider}: {op}");
        assert_eq!(steps(&op["quote"]), ["revoke/manual_ticket"], "{provider}");
        let waiting = app
            .wait_for(op["id"].as_str().unwrap(), &["manual_ticket_open"])
            .await;
        let instructions = waiting["steps"][0]["instructions"].to_string();
        let (_, tickets) = app.get("/v1/tickets?status=open", Some(KEY)).await;
        let ticket = tickets["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["operation_id"] == op["id"])
            .unwrap_or_else(|| panic!("{provider}: no ticket in {tickets}"))
            .clone();
        assert_eq!(ticket["instructions"].to_string(), instructions);
        match provider {
            "sectigo" => {
                assert!(instructions.contains("reseller username"), "{instructions}");
                assert_eq!(ticket["fields"]["reseller_username"], "default-reseller");
                assert_eq!(ticket["fields"]["supplier_order_id"], "SUP-7781");
                assert_eq!(ticket["fields"]["common_name"], "shop.example.com");
            }
            _ => {
                for value in ["SUP-7781", "ops@example.com", "Cancel order", "I approve"] {
                    assert!(instructions.contains(value), "{provider}: {instructions}");
                }
                assert_eq!(ticket["fields"]["technical_email"], "ops@example.com");
            }
        }
        // The person who clicked "I approve" (or heard back from support) resolves it.
        let (status, resolved) = app
            .post(
                &format!("/v1/tickets/{}/resolve", ticket["id"].as_str().unwrap()),
                &json!({"outcome": "done", "note": "approved in the portal"}),
            )
            .await;
        assert_eq!(status, 200, "{resolved}");
        assert_eq!(resolved["operation"]["status"], "completed", "{resolved}");
    }
    // Nothing issued went to the platform's API: it has no command for it.
    assert!(platform
        .actions
        .lock()
        .unwrap()
        .iter()
        .all(|a| !a.starts_with("CANCEL")));
}

#[tokio::test]
async fn the_platform_channel_shows_in_quotes_and_trustwave_takes_it_too() {
    let (mock, _platform) = platform(&[]).await;
    let app = spawn(Setup {
        providers_toml: platform_toml(&mock.uri()),
        ..Setup::default()
    })
    .await;
    for provider in ["trustwave", "symantec", "sectigo"] {
        let body = json!({"provider": provider, "intent": "cancel", "order": pending("1"),
                          "as_of": "2026-06-02T00:00:00Z"});
        let (status, quote) = app.post("/v1/quotes", &body).await;
        assert_eq!(status, 200, "{provider}: {quote}");
        assert_eq!(steps(&quote), ["cancel/automated"], "{provider}");
    }
    let (_, providers) = app.get("/v1/providers", Some(KEY)).await;
    let thawte = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "thawte")
        .unwrap();
    assert_eq!(thawte["automated"], true);
    assert_eq!(thawte["channel"], "opensrs");
}

#[tokio::test]
async fn a_cancel_whose_answer_is_lost_is_settled_by_reading_the_order_not_sent_again() {
    let (mock, platform) = platform(&[("5500001", "pending")]).await;
    *platform.lose_answers.lock().unwrap() = 1;
    let toml = platform_toml(&mock.uri()).replace(
        "[providers.geotrust.api]\n",
        "[providers.geotrust.api]\ntimeout_ms = 300\n",
    );
    let app = spawn(Setup {
        providers_toml: toml,
        clock: || common::clock_from("2026-06-02T00:00:00Z"),
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "geotrust", "intent": "cancel", "order": pending("5500001"),
                      "as_of": "2026-06-02T00:00:00Z"});
    let (status, op) = app.post_operation(KEY, "platform-lost-1", &body).await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let history = done["history"].to_string();
    assert!(
        history.contains("the answer to attempt 1 was lost"),
        "{history}"
    );
    let actions = platform.actions.lock().unwrap().clone();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("CANCEL_ORDER"))
            .count(),
        1,
        "the cancel went out once: {actions:?}"
    );
    assert_eq!(
        actions.last().map(String::as_str),
        Some("GET_ORDER_INFO 5500001"),
        "the outcome was read at the platform: {actions:?}"
    );
}

/// A ticket whose step brings no instructions (Sectigo in its default `mode = "manual"`)
/// still says what to ask, with which values, for how much and by when.
#[tokio::test]
async fn every_ticket_says_what_to_ask_for_how_much_and_by_when() {
    let app = spawn(Setup {
        clock: || common::clock_from("2026-06-10T00:00:00Z"),
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "sectigo", "intent": "refund", "as_of": "2026-06-10T00:00:00Z",
                      "order": order(json!({"issued_at": "2026-06-01T00:00:00Z", "supplier_order_id": "SEC-42"}))});
    let (status, op) = app.post_operation(KEY, "manual-sectigo-1", &body).await;
    assert_eq!(status, 202, "{op}");
    app.wait_for(op["id"].as_str().unwrap(), &["manual_ticket_open"])
        .await;
    let (_, tickets) = app.get("/v1/tickets?status=open", Some(KEY)).await;
    let ticket = &tickets["tickets"][0];
    let text = ticket["instructions"].to_string();
    for part in [
        "Ask sectigo's support to revoke order ord-1001",
        "supplier order ID SEC-42",
        "Ask for 120.00 USD back",
        "by 2026-07-01T00:00:00Z",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
}

/// The long form still works: Symantec's rules written out answer byte for byte as the shipped
/// Symantec that names the preset (the same rules, notes, policy version), and list the same
/// rules, RSL-RESELLER-ONLY among them.
#[test]
fn the_long_form_answers_as_the_preset_does() {
    // The note as a table, and as the string earlier providers.toml files wrote.
    let older = SYMANTEC_LONG_FORM.replace("symantec_long", "symantec_older").replace(
        r#"notes = [{ rule = "RSL-RESELLER-ONLY", text = "The reseller platform processes requests from the reseller's own account only, never from the certificate holder (RSL-RESELLER-ONLY)." }]"#,
        r#"notes = ["The reseller platform processes requests from the reseller's own account only, never from the certificate holder (RSL-RESELLER-ONLY)."]"#,
    );
    assert!(older.contains(r#"notes = ["The"#));
    let text = format!(
        "{}\n{SYMANTEC_LONG_FORM}\n{older}",
        certgate::DEFAULT_PROVIDERS_TOML
    );
    let providers = certgate_server::config::parse_toml(&text)
        .unwrap()
        .providers;
    let registry = certgate::registry_builder().build(&providers).unwrap();
    for name in ["symantec_long", "symantec_older"] {
        long_form_answers_as_the_preset(&registry, name);
    }
}

fn long_form_answers_as_the_preset(registry: &certgate_core::Registry, name: &str) {
    use certgate_core::quote::Intent;
    let (short, long) = (
        registry.get("symantec").unwrap(),
        registry.get(name).unwrap(),
    );
    let as_of = "2026-06-15T08:30:00Z".parse().unwrap();
    let orders = [
        order(json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"})),
        order(json!({"purchased_at": "2026-05-09T00:00:00Z", "issued_at": "2026-05-10T00:00:00Z"})),
        order(json!({"state": "pending", "issued_at": null})),
    ];
    for o in orders {
        let o: certgate_core::Order = serde_json::from_value(o).unwrap();
        for intent in Intent::ALL {
            let mut answer = serde_json::to_value(long.quote(&o, intent, as_of).unwrap()).unwrap();
            answer["provider"] = json!("symantec");
            let preset = serde_json::to_value(short.quote(&o, intent, as_of).unwrap()).unwrap();
            assert_eq!(answer.to_string(), preset.to_string(), "{name} {intent}");
        }
    }
    assert_eq!(long.policy_version, short.policy_version);
    let (long, short) = (long.describe(), short.describe());
    assert_eq!(long.rules, short.rules);
    assert!(short
        .rules
        .iter()
        .any(|r| r.id.as_str() == "RSL-RESELLER-ONLY"));
}
