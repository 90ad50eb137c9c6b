//! The OpenSRS Trust API's wire contract (CONTRACTS.md), call by call: one POST to `/` with
//! `Content-Type: text/xml`, the `OPS_envelope`, `X-Username`, and an `X-Signature` recomputed
//! here for every request; success and `is_success=0` answers, a state that forbids cancel,
//! platform faults, and answers that are not envelopes.

use certgate_core::config::SecretRef;
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::{Action, Intent};
use certgate_core::testing::order;
use certgate_core::{CaClient, CallFailure, StepCall, StepOutcome};
use certgate_http::{Secret, Timeouts};
use certgate_opensrs::client::{signature, OpensrsClient};
use certgate_opensrs::envelope;
use certgate_opensrs::testing::reply;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const USER: &str = "reseller-1";
const KEY: &str = "opensrs-contract-key";

fn client(base: &str) -> OpensrsClient {
    std::env::set_var("OPENSRS_CONTRACT_USER", USER);
    std::env::set_var("OPENSRS_CONTRACT_KEY", KEY);
    OpensrsClient::new(
        base,
        Secret::new(SecretRef::parse("${OPENSRS_CONTRACT_USER}").unwrap()),
        Secret::new(SecretRef::parse("${OPENSRS_CONTRACT_KEY}").unwrap()),
        Timeouts {
            connect: Duration::from_millis(500),
            request: Duration::from_millis(500),
        },
    )
}

fn pending() -> Order {
    order(json!({"state": "pending", "issued_at": null, "platform_order_id": "4411907"}))
}

fn cancel(order: &Order) -> StepCall<'_> {
    StepCall {
        operation_id: "op_1",
        intent: Intent::Cancel,
        action: Action::Cancel,
        order,
        confirmation: None,
        reason: None,
        note: None,
    }
}

/// Answers `body` only to a request whose signature is right; a wrong one gets the
/// platform's authentication failure.
struct Signed(String);

impl Respond for Signed {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let xml = String::from_utf8_lossy(&req.body);
        let sent = req.headers.get("X-Signature").and_then(|v| v.to_str().ok());
        if sent != Some(signature(&xml, KEY).as_str()) {
            return ResponseTemplate::new(200).set_body_string(reply(
                false,
                400,
                "Authentication Error",
                None,
            ));
        }
        ResponseTemplate::new(200).set_body_string(self.0.clone())
    }
}

/// What every request must be: the action on `TRUST_SERVICE` for order 4411907, signed.
async fn assert_requests(mock: &MockServer, actions: &[&str]) {
    let requests = mock.received_requests().await.unwrap();
    let sent: Vec<String> = requests
        .iter()
        .map(|r| {
            let xml = String::from_utf8(r.body.clone()).unwrap();
            assert_eq!(r.headers["X-Username"], USER);
            assert_eq!(r.headers["X-Signature"], signature(&xml, KEY).as_str());
            assert!(r.headers["Content-Type"]
                .to_str()
                .unwrap()
                .starts_with("text/xml"));
            assert!(
                xml.contains("<!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'>"),
                "{xml}"
            );
            let read = envelope::reply(&xml).unwrap();
            assert_eq!(read.get("protocol"), Some("XCP"));
            assert_eq!(read.get("object"), Some("TRUST_SERVICE"));
            assert_eq!(read.get("attributes.order_id"), Some("4411907"));
            read.get("action").unwrap().to_owned()
        })
        .collect();
    assert_eq!(sent, actions);
}

async fn platform(body: String) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("X-Username", USER))
        .respond_with(Signed(body))
        .mount(&mock)
        .await;
    mock
}

#[tokio::test]
async fn cancel_order_cancels_a_pending_order() {
    let mock = platform(reply(
        true,
        200,
        "Command completed successfully",
        Some("cancelled"),
    ))
    .await;
    let order = pending();
    let outcome = client(&mock.uri()).execute(&cancel(&order)).await.unwrap();
    assert_eq!(
        outcome,
        StepOutcome::Completed {
            upstream_ref: Some("4411907".into())
        }
    );
    assert_requests(&mock, &["CANCEL_ORDER"]).await;
}

#[tokio::test]
async fn get_order_info_reads_the_platform_state() {
    for (state, expected) in [
        ("pending", Some(OrderState::Pending)),
        ("awaiting-approval", Some(OrderState::AwaitingApproval)),
        ("completed", Some(OrderState::Issued)),
        ("cancelled", Some(OrderState::Canceled)),
        ("declined", None),
    ] {
        let mock = platform(reply(true, 200, "Query successful", Some(state))).await;
        let seen = client(&mock.uri()).observe(&pending()).await.unwrap();
        assert_eq!(seen.state, expected, "{state}");
        assert_requests(&mock, &["GET_ORDER_INFO"]).await;
    }
}

#[tokio::test]
async fn a_state_that_forbids_cancel_is_a_refusal_with_the_platform_code() {
    let mock = platform(reply(
        false,
        465,
        "Order cannot be cancelled in its current state: completed",
        None,
    ))
    .await;
    let order = pending();
    match client(&mock.uri()).execute(&cancel(&order)).await {
        Err(CallFailure::Refused(m)) => {
            assert_eq!(m.code.as_deref(), Some("465"));
            assert!(m.message.contains("current state"), "{m:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_platform_fault_may_have_acted_and_a_wrong_key_is_refused() {
    let mock = platform(reply(false, 500, "Internal server error", None)).await;
    let order = pending();
    let fault = client(&mock.uri()).execute(&cancel(&order)).await;
    assert!(
        matches!(fault, Err(CallFailure::NoAnswer { .. })),
        "{fault:?}"
    );

    // A signature made with another key: the platform refuses to authenticate.
    let mock = platform(reply(true, 200, "ok", Some("cancelled"))).await;
    client(&mock.uri());
    std::env::set_var("OPENSRS_WRONG_KEY", "not-the-key");
    let wrong = OpensrsClient::new(
        &mock.uri(),
        Secret::new(SecretRef::parse("${OPENSRS_CONTRACT_USER}").unwrap()),
        Secret::new(SecretRef::parse("${OPENSRS_WRONG_KEY}").unwrap()),
        Timeouts {
            connect: Duration::from_millis(500),
            request: Duration::from_millis(500),
        },
    );
    let refused = wrong.execute(&cancel(&order)).await;
    assert!(
        matches!(refused, Err(CallFailure::Refused(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn answers_that_are_not_envelopes_leave_the_outcome_unknown() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&mock)
        .await;
    let order = pending();
    let unknown = client(&mock.uri()).execute(&cancel(&order)).await;
    assert!(
        matches!(unknown, Err(CallFailure::NoAnswer { .. })),
        "{unknown:?}"
    );

    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .mount(&mock)
        .await;
    let busy = client(&mock.uri()).execute(&cancel(&order)).await;
    assert!(
        matches!(busy, Err(CallFailure::NoAnswer { .. })),
        "{busy:?}"
    );
}

#[tokio::test]
async fn issued_orders_and_missing_ids_send_nothing() {
    let mock = platform(reply(true, 200, "ok", Some("cancelled"))).await;
    let no_id = order(json!({"state": "pending", "issued_at": null, "platform_order_id": null}));
    let sent = client(&mock.uri()).execute(&cancel(&no_id)).await;
    assert!(matches!(sent, Err(CallFailure::NotSent(_))), "{sent:?}");
    let issued = order(json!({"platform_order_id": "4411907"}));
    let revoke = StepCall {
        action: Action::Revoke,
        intent: Intent::Revoke,
        ..cancel(&issued)
    };
    let sent = client(&mock.uri()).execute(&revoke).await;
    assert!(matches!(sent, Err(CallFailure::NotSent(_))), "{sent:?}");
    assert_requests(&mock, &[]).await;
}

#[tokio::test]
async fn every_order_id_is_one_xml_value_whatever_it_holds() {
    let mock = platform(reply(true, 200, "ok", Some("cancelled"))).await;
    let c = client(&mock.uri());
    for hostile in certgate_core::testing::HOSTILE_IDS {
        mock.reset().await;
        Mock::given(method("POST"))
            .respond_with(Signed(reply(true, 200, "ok", Some("cancelled"))))
            .mount(&mock)
            .await;
        let o = order(json!({"state": "pending", "issued_at": null, "platform_order_id": hostile}));
        c.execute(&cancel(&o)).await.unwrap();
        let requests = mock.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        let xml = String::from_utf8_lossy(&requests[0].body);
        let sent = envelope::reply(&xml).unwrap();
        assert_eq!(sent.get("attributes.order_id"), Some(*hostile), "{xml}");
        assert_eq!(sent.get("action"), Some("CANCEL_ORDER"), "{xml}");
    }
    let bad = order(json!({"platform_order_id": "4411907/../1"}));
    let err = certgate_core::client::check_ids(&c, &bad).unwrap_err();
    assert_eq!(err.errors[0].field, "order.platform_order_id");
}

#[tokio::test]
async fn a_read_shows_the_platform_s_common_name_and_ids_and_a_redirect_is_not_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", elsewhere.uri()))
        .mount(&mock)
        .await;
    let e = client(&mock.uri()).observe(&pending()).await.unwrap_err();
    assert!(matches!(e, CallFailure::Unreachable(_)), "{e:?}");

    let mock = platform(reply(true, 200, "ok", Some("pending"))).await;
    let seen = client(&mock.uri()).observe(&pending()).await.unwrap();
    assert_eq!(
        seen.shown,
        [(
            certgate_core::OrderField::CommonName,
            "shop.example.com".to_owned()
        )]
    );
    let elsewhere = order(
        json!({"state": "pending", "issued_at": null, "platform_order_id": "4411907", "common_name": "victim.example"}),
    );
    assert_eq!(
        seen.mismatches(&elsewhere),
        [certgate_core::OrderField::CommonName]
    );
    assert!(seen.mismatches(&pending()).is_empty());
}
