//! Sectigo's reseller API wire contract (CONTRACTS.md): form-encoded `!AutoRevokeSSL`,
//! `!AutoRefund` and `download/CollectSSL`, and status codes inside HTTP 200 answers, in both
//! formats.

use certgate_core::client::RevocationReason;
use certgate_core::config::{ApiConfig, Mode, ProviderContext, SecretRef};
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::{Action, Intent};
use certgate_core::testing::order;
use certgate_core::{CaClient, CallFailure, StepCall, StepOutcome};
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

/// What `action` at order 5551234 fails with when Sectigo answers `body` to `command`.
async fn answering(command: &str, action: Action, body: &str) -> CallFailure {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/products/{command}")))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .expect(1)
        .mount(&mock)
        .await;
    let o = issued();
    client(&mock.uri())
        .execute(&step(&o, action))
        .await
        .unwrap_err()
}

async fn failing(body: &str) -> CallFailure {
    answering("!AutoRevokeSSL", Action::Revoke, body).await
}

#[tokio::test]
async fn negative_codes_inside_200_answers_are_failures() {
    let e = failing("-16\nInvalid loginName/loginPassword").await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
    assert_eq!(e.code(), Some("-16"));
    assert!(
        e.to_string()
            .contains("-16 Invalid loginName/loginPassword"),
        "{e}"
    );
    // What a repeated revocation gets once the first went through: confirmed by a read.
    let e = failing("-20\ncannot revoke an order in status revoked").await;
    assert!(matches!(e, CallFailure::AlreadyDone(_)), "{e:?}");
    assert_eq!(e.code(), Some("-20"));
    let e = failing("-42\nCall limit reached").await;
    assert!(matches!(e, CallFailure::Throttled { .. }), "{e:?}");
    let e = failing("errorCode=-3&errorMessage=Missing+argument%3A+orderNumber").await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
    assert!(
        e.to_string().contains("Missing argument: orderNumber"),
        "{e}"
    );
    let e = failing("errorCode=-42&errorMessage=Too+many+calls").await;
    assert!(matches!(e, CallFailure::Throttled { .. }), "{e:?}");
    let e = failing("<html>maintenance</html>").await;
    assert!(
        matches!(e, CallFailure::NoAnswer { .. }),
        "an unreadable answer is never a success: {e:?}"
    );
}

async fn refund_answering(body: &str) -> CallFailure {
    answering("!AutoRefund", Action::RefundRequest, body).await
}

#[tokio::test]
async fn refund_answers_already_refunded_or_that_support_must_do_it() {
    let e = refund_answering("-18\nThis order has already been refunded").await;
    assert!(matches!(e, CallFailure::AlreadyDone(_)), "{e:?}");
    let e = refund_answering(
        "errorCode=-4&errorMessage=Multi-domain+certificates+must+be+refunded+by+support+ticket",
    )
    .await;
    assert!(matches!(e, CallFailure::NeedsPerson(_)), "{e:?}");
    assert!(e.to_string().contains("Multi-domain"), "{e}");
    let e = refund_answering("-16\nInvalid loginName/loginPassword").await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
}

#[tokio::test]
async fn collect_ssl_reads_the_orders_state_one_read_at_a_time() {
    let mock = MockServer::start().await;
    let c = client(&mock.uri());
    let o = issued();
    for (body, state) in [
        ("errorCode=2&errorMessage=", Some(OrderState::Issued)),
        ("1\nAvailable", Some(OrderState::Issued)),
        ("errorCode=0", Some(OrderState::Pending)),
        (
            "errorCode=-20&errorMessage=Rejected",
            Some(OrderState::Canceled),
        ),
        (
            "errorCode=-21&errorMessage=Revoked",
            Some(OrderState::Revoked),
        ),
    ] {
        mock.reset().await;
        Mock::given(method("POST"))
            .and(path("/products/download/CollectSSL"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("loginName=reseller1&loginPassword=p%40ss+word%261&orderNumber=5551234&queryType=0&responseFormat=1"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .expect(1)
            .mount(&mock)
            .await;
        assert_eq!(c.observe(&o).await.unwrap().state, state, "{body}");
    }
    // Concurrent reads of one account reach Sectigo one after the other.
    mock.reset().await;
    Mock::given(method("POST"))
        .and(path("/products/download/CollectSSL"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("errorCode=2")
                .set_delay(Duration::from_millis(100)),
        )
        .expect(3)
        .mount(&mock)
        .await;
    let started = std::time::Instant::now();
    let (a, b, c3) = tokio::join!(c.observe(&o), c.observe(&o), c.observe(&o));
    assert!(a.is_ok() && b.is_ok() && c3.is_ok());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    mock.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("errorCode=-42&errorMessage=Call+limit"),
        )
        .mount(&mock)
        .await;
    assert!(matches!(
        c.observe(&o).await.unwrap_err(),
        CallFailure::Throttled { .. }
    ));
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
    assert!(matches!(
        client(&mock.uri())
            .execute(&step(&o, Action::Revoke))
            .await
            .unwrap_err(),
        CallFailure::NoAnswer { .. }
    ));
    mock.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("0\n")
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&mock)
        .await;
    assert!(matches!(
        client(&mock.uri())
            .execute(&step(&o, Action::Revoke))
            .await
            .unwrap_err(),
        CallFailure::NoAnswer { .. }
    ));
    assert!(matches!(
        client("http://127.0.0.1:9")
            .execute(&step(&o, Action::Revoke))
            .await
            .unwrap_err(),
        CallFailure::Unreachable(_)
    ));
}

#[tokio::test]
async fn every_order_number_is_one_form_field_whatever_it_holds() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("0\nOK"))
        .mount(&mock)
        .await;
    let c = client(&mock.uri());
    for hostile in certgate_core::testing::HOSTILE_IDS {
        mock.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("0\nOK"))
            .mount(&mock)
            .await;
        let o = order(json!({"supplier_order_id": hostile}));
        c.execute(&step(&o, Action::Revoke)).await.unwrap();
        let requests = mock.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(r.url.path(), "/products/!AutoRevokeSSL", "{hostile}");
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let numbers: Vec<&str> = form
            .iter()
            .filter(|(k, _)| k == "orderNumber")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(numbers, [*hostile], "{form:?}");
        assert_eq!(form.len(), 5, "no field was added: {form:?}");
    }
    let bad = order(json!({"supplier_order_id": "SEC-1"}));
    let err = certgate_core::client::check_ids(c.as_ref(), &bad).unwrap_err();
    assert_eq!(err.errors[0].field, "order.supplier_order_id");
}
