//! Sectigo's reseller API wire contract (CONTRACTS.md): form-encoded `!AutoRevokeSSL` and
//! `!AutoRefund`, and status codes inside HTTP 200 answers, in both formats.

use certgate_core::config::{ApiConfig, Mode, ProviderContext, SecretRef};
use certgate_core::operation::RevocationReason;
use certgate_core::order::Order;
use certgate_core::quote::{Action, Intent};
use certgate_core::testing::order;
use certgate_core::{CaClient, StepCall, StepError, StepOutcome};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base: &str) -> Arc<dyn CaClient> {
    std::env::set_var("SECTIGO_CONTRACT_LOGIN", "reseller1");
    std::env::set_var("SECTIGO_CONTRACT_PASSWORD", "p@ss word&1");
    let api = ApiConfig {
        client: None,
        base_url: format!("{base}/products"),
        credentials: [
            (
                "login_name".to_owned(),
                SecretRef::parse("${SECTIGO_CONTRACT_LOGIN}").unwrap(),
            ),
            (
                "login_password".to_owned(),
                SecretRef::parse("${SECTIGO_CONTRACT_PASSWORD}").unwrap(),
            ),
        ]
        .into(),
        timeout_ms: Some(500),
        rate_limits: Vec::new(),
    };
    let ctx = ProviderContext {
        name: "sectigo",
        mode: Mode::Api,
        api: Some(&api),
    };
    certgate_sectigo::client::build(&ctx, &api).unwrap()
}

fn issued() -> Order {
    order(json!({"supplier_order_id": "5551234"}))
}

fn step<'a>(order: &'a Order, action: Action) -> StepCall<'a> {
    StepCall {
        operation_id: "op_1",
        intent: Intent::Refund,
        action,
        order,
        confirmation: None,
        reason: Some(RevocationReason::Superseded),
        note: Some("customer asked"),
    }
}

const REVOKE_FORM: &str = "loginName=reseller1&loginPassword=p%40ss+word%261&orderNumber=5551234&revocationReason=customer+asked&codeReason=4";

async fn revoke_answering(mock: &MockServer, body: &str, expect: u64) {
    Mock::given(method("POST"))
        .and(path("/products/!AutoRevokeSSL"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(REVOKE_FORM))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .expect(expect)
        .mount(mock)
        .await;
}

#[tokio::test]
async fn auto_revoke_ssl_cancels_or_revokes_with_the_exact_form() {
    let mock = MockServer::start().await;
    revoke_answering(&mock, "0\n", 2).await;
    let o = issued();
    let c = client(&mock.uri());
    assert_eq!(
        c.execute(&step(&o, Action::Revoke)).await.unwrap(),
        StepOutcome::Completed {
            upstream_ref: Some("5551234".into())
        }
    );
    assert!(matches!(
        c.execute(&step(&o, Action::Cancel)).await.unwrap(),
        StepOutcome::Completed { .. }
    ));
}

#[tokio::test]
async fn auto_refund_posts_the_order_and_reason_code() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/products/!AutoRefund"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("loginName=reseller1&loginPassword=p%40ss+word%261&orderNumber=5551234&refundReasonCode=11"))
        .respond_with(ResponseTemplate::new(200).set_body_string("0\nRefund processed"))
        .expect(1)
        .mount(&mock)
        .await;
    let o = issued();
    assert!(matches!(
        client(&mock.uri())
            .execute(&step(&o, Action::RefundRequest))
            .await
            .unwrap(),
        StepOutcome::Completed { .. }
    ));
}

async fn failing(body: &str) -> StepError {
    let mock = MockServer::start().await;
    revoke_answering(&mock, body, 1).await;
    let o = issued();
    client(&mock.uri())
        .execute(&step(&o, Action::Revoke))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn negative_codes_inside_200_answers_are_failures() {
    let e = failing("-16\nInvalid loginName/loginPassword").await;
    assert!(!e.is_retryable());
    assert!(
        e.to_string()
            .contains("-16 Invalid loginName/loginPassword"),
        "{e}"
    );
    let e = failing("-20\nThe certificate has already been revoked").await;
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("-20"), "{e}");
    let e = failing("-42\nCall limit reached").await;
    assert!(e.is_retryable(), "{e}");
    let e = failing("errorCode=-3&errorMessage=Missing+argument%3A+orderNumber").await;
    assert!(!e.is_retryable());
    assert!(
        e.to_string().contains("Missing argument: orderNumber"),
        "{e}"
    );
    let e = failing("errorCode=-42&errorMessage=Too+many+calls").await;
    assert!(e.is_retryable());
    let e = failing("<html>maintenance</html>").await;
    assert!(!e.is_retryable(), "an unreadable answer is never a success");
}

#[tokio::test]
async fn http_failures_timeouts_and_refused_connections() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&mock)
        .await;
    let o = issued();
    assert!(client(&mock.uri())
        .execute(&step(&o, Action::Revoke))
        .await
        .unwrap_err()
        .is_retryable());
    mock.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("0\n")
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&mock)
        .await;
    assert!(client(&mock.uri())
        .execute(&step(&o, Action::Revoke))
        .await
        .unwrap_err()
        .is_retryable());
    assert!(client("http://127.0.0.1:9")
        .execute(&step(&o, Action::Revoke))
        .await
        .unwrap_err()
        .is_retryable());
}
