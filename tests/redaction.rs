//! No credential appears in the logs, at any level: every log line of a gateway that talks to
//! each CA (successes and failures) is captured at TRACE and searched for the secrets.

mod common;

use common::{order, spawn, tenant, Setup, DIGICERT_KEY, KEY};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{any, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Collects everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sectigo_password = "sectigo-pa55-SECRET";
    let webhook_secret = "whsec-SECRET-value";
    std::env::set_var("SECTIGO_LOGIN", "reseller-login-SECRET");
    std::env::set_var("SECTIGO_PASSWORD", sectigo_password);
    let mock = MockServer::start().await;
    // DigiCert answers 401, Alibaba an error, Sectigo a bad login; the webhook receiver 500s.
    Mock::given(method("GET"))
        .and(header("X-DC-DEVKEY", DIGICERT_KEY))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"errors": [{"code": "invalid_api_key", "message": "bad key"}]}),
            ),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeCertificateState"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"Code": "SignatureDoesNotMatch", "Message": "no"})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path("/products/!AutoRevokeSSL"))
        .respond_with(ResponseTemplate::new(200).set_body_string("-16\nInvalid login"))
        .mount(&mock)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&mock)
        .await;

    let providers = common::providers_toml_at(&mock.uri())
        .replace("mode = \"manual\"\nholidays = []\n\n[providers.sectigo.settings]", &format!(
            "mode = \"api\"\nholidays = []\n\n[providers.sectigo.api]\nbase_url = \"{}/products\"\n\
             credentials = {{ login_name = \"${{SECTIGO_LOGIN}}\", login_password = \"${{SECTIGO_PASSWORD}}\" }}\n\n[providers.sectigo.settings]",
            mock.uri()
        ));
    let hook = format!("{}/hook", mock.uri());
    let app = spawn(Setup {
        providers_toml: providers,
        tenants: vec![tenant(
            "redact",
            "redact-tenant-KEY",
            Some((&hook, webhook_secret)),
        )],
        ..Setup::default()
    })
    .await;
    let pending = order(
        json!({"state": "pending", "issued_at": null, "validation_status": "submitted", "supplier_order_id": "1001"}),
    );
    for (i, provider) in ["digicert", "alibaba", "sectigo", "geotrust"]
        .iter()
        .enumerate()
    {
        let body = json!({"provider": provider, "intent": "cancel", "order": pending});
        let (status, op) = app
            .post_operation("redact-tenant-KEY", &format!("r-{i}"), &body)
            .await;
        assert_eq!(status, 202, "{op}");
        app.wait_for_as("redact-tenant-KEY", op["id"].as_str().unwrap(), &["failed"])
            .await;
    }
    let _ = app.get("/v1/providers", Some(KEY)).await;
    let _ = app.get("/v1/quotes", Some("wrong-key-SECRET")).await;
    tracing::debug!(state = ?app.state, "the whole state, as Debug");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // webhook attempts
    app.stop().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.len() > 1_000,
        "the capture works: {} bytes",
        text.len()
    );
    assert!(text.contains("ApiKeys"), "the state was logged");
    for secret in [
        DIGICERT_KEY,
        "ali-test-secret",
        sectigo_password,
        "reseller-login-SECRET",
        webhook_secret,
        "redact-tenant-KEY",
        KEY,
    ] {
        assert!(!text.contains(secret), "`{secret}` appears in the logs");
    }
}
