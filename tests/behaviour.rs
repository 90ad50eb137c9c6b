//! One behaviour suite for every automated provider: the same scenarios (success, rate limit,
//! bad credentials, CA failure then recovery, timeouts, refused connections) run through the
//! real server and executor against each CA's own mock, speaking that CA's wire format.

mod common;

use async_trait::async_trait;
use common::{order, spawn, Setup, KEY};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// How one CA's mock answers the cancel of pending order `1001`.
#[async_trait]
trait CaMock: Sync {
    /// The provider to send the operation to.
    fn provider(&self) -> &'static str;
    /// Mounts the read the executor makes before acting, if this CA has one.
    async fn mount_observe(&self, mock: &MockServer);
    /// A mock of the cancel call answering `answer`.
    fn cancel(&self) -> wiremock::MockBuilder;
    fn ok(&self) -> ResponseTemplate;
    fn rate_limited(&self) -> ResponseTemplate;
    fn bad_credentials(&self) -> ResponseTemplate;
}

struct DigiCertFamily(&'static str);
struct Alibaba;
struct Sectigo;

#[async_trait]
impl CaMock for DigiCertFamily {
    fn provider(&self) -> &'static str {
        self.0
    }
    async fn mount_observe(&self, mock: &MockServer) {
        Mock::given(method("GET"))
            .and(path("/services/v2/order/certificate/1001"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "1001", "status": "pending", "requests": []})),
            )
            .mount(mock)
            .await;
    }
    fn cancel(&self) -> wiremock::MockBuilder {
        Mock::given(method("PUT"))
            .and(path("/services/v2/order/certificate/1001/status"))
            .and(header("X-DC-DEVKEY", common::DIGICERT_KEY))
    }
    fn ok(&self) -> ResponseTemplate {
        ResponseTemplate::new(204)
    }
    fn rate_limited(&self) -> ResponseTemplate {
        ResponseTemplate::new(429).set_body_json(
            json!({"errors": [{"code": "request_limit_exceeded", "message": "slow down"}]}),
        )
    }
    fn bad_credentials(&self) -> ResponseTemplate {
        ResponseTemplate::new(401)
            .set_body_json(json!({"errors": [{"code": "invalid_api_key", "message": "bad key"}]}))
    }
}

#[async_trait]
impl CaMock for Alibaba {
    fn provider(&self) -> &'static str {
        "alibaba"
    }
    async fn mount_observe(&self, mock: &MockServer) {
        Mock::given(method("POST"))
            .and(header("x-acs-action", "DescribeCertificateState"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"Type": "domain_verify", "RequestId": "r"})),
            )
            .mount(mock)
            .await;
    }
    fn cancel(&self) -> wiremock::MockBuilder {
        Mock::given(method("POST"))
            .and(path("/"))
            .and(header("x-acs-action", "CancelOrderRequest"))
    }
    fn ok(&self) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({"RequestId": "r-ok"}))
    }
    fn rate_limited(&self) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_json(json!({"RequestId": "r", "HostId": "h", "Code": "Throttling.User", "Message": "flow control"}))
    }
    fn bad_credentials(&self) -> ResponseTemplate {
        ResponseTemplate::new(404).set_body_json(json!({"RequestId": "r", "HostId": "h", "Code": "InvalidAccessKeyId.NotFound", "Message": "no such key"}))
    }
}

#[async_trait]
impl CaMock for Sectigo {
    fn provider(&self) -> &'static str {
        "sectigo"
    }
    async fn mount_observe(&self, mock: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/products/download/CollectSSL"))
            .respond_with(ResponseTemplate::new(200).set_body_string("errorCode=0"))
            .mount(mock)
            .await;
    }
    fn cancel(&self) -> wiremock::MockBuilder {
        Mock::given(method("POST")).and(path("/products/!AutoRevokeSSL"))
    }
    fn ok(&self) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_string("0\n")
    }
    fn rate_limited(&self) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_string("-42\nCall limit reached")
    }
    fn bad_credentials(&self) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_string("-16\nInvalid loginName/loginPassword")
    }
}

fn all() -> Vec<Box<dyn CaMock>> {
    vec![
        Box::new(DigiCertFamily("digicert")),
        Box::new(DigiCertFamily("geotrust")),
        Box::new(DigiCertFamily("thawte")),
        Box::new(DigiCertFamily("symantec")),
        Box::new(Alibaba),
        Box::new(Sectigo),
    ]
}

/// providers.toml with every API at `base`, 300 ms call timeouts, and Sectigo in API mode.
fn config(base: &str) -> String {
    common::with_timeouts(
        &common::sectigo_api(&common::providers_toml_at(base), base),
        300,
    )
}

/// Cancels pending order 1001 at `ca` through the gateway (with the CA at `base`) and returns
/// the finished operation.
async fn cancel_through(ca: &dyn CaMock, base: &str) -> Value {
    let app = spawn(Setup {
        providers_toml: config(base),
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": ca.provider(), "intent": "cancel", "note": "behaviour suite",
                      "order": order(json!({"state": "pending", "issued_at": null, "validation_status": "submitted", "supplier_order_id": "1001"}))});
    let (status, op) = app.post_operation(KEY, "behaviour", &body).await;
    assert_eq!(status, 202, "{}: {op}", ca.provider());
    assert_eq!(
        op["steps"][0]["procedure"],
        "automated",
        "{}",
        ca.provider()
    );
    let done = app
        .wait_for(
            op["id"].as_str().unwrap(),
            &["completed", "failed", "rejected"],
        )
        .await;
    app.stop().await;
    done
}

/// For every CA: its cancel answers `answers(ca)` in order (each answer `n` times), and the
/// operation ends `status` after `attempts` tries, its last error containing `error` if failed.
async fn scenario(
    answers: impl Fn(&dyn CaMock) -> Vec<(ResponseTemplate, u64)>,
    status: &str,
    attempts: u64,
    error: &str,
) {
    for ca in all() {
        let mock = MockServer::start().await;
        ca.mount_observe(&mock).await;
        for (answer, n) in answers(ca.as_ref()) {
            ca.cancel()
                .respond_with(answer)
                .up_to_n_times(n)
                .expect(n)
                .mount(&mock)
                .await;
        }
        let done = cancel_through(ca.as_ref(), &mock.uri()).await;
        assert_eq!(done["status"], status, "{}: {done:#}", ca.provider());
        assert_eq!(done["steps"][0]["attempts"], attempts, "{}", ca.provider());
        if status == "failed" {
            let last = done["steps"][0]["last_error"].as_str().unwrap_or_default();
            assert!(
                !last.is_empty() && last.contains(error),
                "{}: {last}",
                ca.provider()
            );
        }
        mock.verify().await;
    }
}

#[tokio::test]
async fn a_cancel_completes_with_one_call() {
    scenario(|ca| vec![(ca.ok(), 1)], "completed", 1, "").await;
}

#[tokio::test]
async fn a_rate_limit_is_retried_never_taken_for_success() {
    scenario(
        |ca| vec![(ca.rate_limited(), 2), (ca.ok(), 1)],
        "completed",
        3,
        "",
    )
    .await;
}

#[tokio::test]
async fn a_ca_failure_then_recovery_completes() {
    scenario(
        |ca| vec![(ResponseTemplate::new(503), 1), (ca.ok(), 1)],
        "completed",
        2,
        "",
    )
    .await;
}

#[tokio::test]
async fn bad_credentials_fail_at_once_with_the_cas_message() {
    scenario(|ca| vec![(ca.bad_credentials(), 1)], "failed", 1, "").await;
}

#[tokio::test]
async fn a_ca_that_never_answers_in_time_fails_after_the_retries() {
    let slow = |ca: &dyn CaMock| vec![(ca.ok().set_delay(Duration::from_secs(2)), 4)];
    scenario(slow, "failed", 4, "did not answer in time").await;
}

#[tokio::test]
async fn a_ca_that_refuses_connections_fails_after_the_retries() {
    for ca in all() {
        let done = cancel_through(ca.as_ref(), "http://127.0.0.1:9").await;
        assert_eq!(done["status"], "failed", "{}: {done:#}", ca.provider());
        let history = done["history"].to_string();
        assert!(
            history.contains("retrying") || history.contains("gave up"),
            "{}: {history}",
            ca.provider()
        );
    }
}
