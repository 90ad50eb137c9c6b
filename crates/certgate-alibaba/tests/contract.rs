//! Alibaba Cloud CAS's wire contract (CONTRACTS.md): signed RPC calls (the signature of every
//! received request is checked again here), the actions, and the Code/Message errors.

use certgate_alibaba::client::{sign, AlibabaClient, SignInput, API_VERSION};
use certgate_core::config::SecretRef;
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::{Action, Confirmation, Intent};
use certgate_core::testing::order;
use certgate_core::{CaClient, CallFailure, StepCall, StepOutcome};
use certgate_http::{Secret, Timeouts};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY_ID: &str = "LTAI-contract";
const SECRET: &str = "contract-secret";

fn client(base: &str) -> AlibabaClient {
    std::env::set_var("ALI_CONTRACT_ID", KEY_ID);
    std::env::set_var("ALI_CONTRACT_SECRET", SECRET);
    AlibabaClient::new(
        reqwest::Url::parse(&format!("{base}/")).unwrap(),
        Secret::new(SecretRef::parse("${ALI_CONTRACT_ID}").unwrap()),
        Secret::new(SecretRef::parse("${ALI_CONTRACT_SECRET}").unwrap()),
        Timeouts {
            connect: Duration::from_millis(500),
            request: Duration::from_millis(500),
        },
    )
}

fn order_with(state: &str) -> Order {
    let issued = if state == "issued" {
        json!("2026-06-02T00:00:00Z")
    } else {
        json!(null)
    };
    order(
        json!({"state": state, "issued_at": issued, "supplier_order_id": "8801", "purchased_at": "2026-06-01T00:00:00Z"}),
    )
}

fn step<'a>(order: &'a Order, action: Action, confirmation: Option<Confirmation>) -> StepCall<'a> {
    StepCall {
        operation_id: "op_1",
        intent: Intent::Revoke,
        action,
        order,
        confirmation,
        reason: None,
        note: None,
    }
}

/// A mock of one action, answering `body` with `status`.
async fn action(mock: &MockServer, name: &str, status: u16, body: serde_json::Value, expect: u64) {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("OrderId", "8801"))
        .and(header("x-acs-action", name))
        .and(header("x-acs-version", API_VERSION))
        .and(header(
            "x-acs-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ))
        .and(header_exists("x-acs-date"))
        .and(header_exists("x-acs-signature-nonce"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(expect)
        .mount(mock)
        .await;
}

/// Recomputes the ACS3 signature of a received request with the secret.
fn assert_signed(r: &Request) {
    let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
    let rest = auth.strip_prefix("ACS3-HMAC-SHA256 ").expect(auth);
    let parts: BTreeMap<&str, &str> = rest.split(',').filter_map(|p| p.split_once('=')).collect();
    assert_eq!(parts["Credential"], KEY_ID);
    let headers: BTreeMap<String, String> = parts["SignedHeaders"]
        .split(';')
        .map(|h| {
            (
                h.to_owned(),
                r.headers
                    .get(h)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let query: BTreeMap<String, String> = r
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (signed, signature) = sign(
        &SignInput {
            method: "POST",
            path: r.url.path(),
            query: &query,
            headers: &headers,
            body_sha256: &headers["x-acs-content-sha256"],
        },
        SECRET,
    );
    assert_eq!(signed, parts["SignedHeaders"]);
    assert_eq!(
        signature, parts["Signature"],
        "the signature does not verify"
    );
}

#[tokio::test]
async fn cancel_order_request_cancels_a_pending_order() {
    let mock = MockServer::start().await;
    action(
        &mock,
        "CancelOrderRequest",
        200,
        json!({"RequestId": "req-1"}),
        1,
    )
    .await;
    let o = order_with("pending");
    let out = client(&mock.uri())
        .execute(&step(&o, Action::Cancel, None))
        .await
        .unwrap();
    assert_eq!(
        out,
        StepOutcome::Completed {
            upstream_ref: Some("req-1".into())
        }
    );
    assert_signed(&mock.received_requests().await.unwrap()[0]);
}

#[tokio::test]
async fn revocation_waits_for_the_ca_or_the_applicants_confirmation() {
    let mock = MockServer::start().await;
    action(
        &mock,
        "CancelCertificateForPackageRequest",
        200,
        json!({"RequestId": "req-2"}),
        2,
    )
    .await;
    let o = order_with("issued");
    let c = client(&mock.uri());
    let dv = c.execute(&step(&o, Action::Revoke, None)).await.unwrap();
    assert_eq!(
        dv,
        StepOutcome::AwaitingCa {
            upstream_ref: Some("req-2".into())
        }
    );
    let ov = c
        .execute(&step(&o, Action::Revoke, Some(Confirmation::Email)))
        .await
        .unwrap();
    assert_eq!(
        ov,
        StepOutcome::AwaitingConfirmation {
            upstream_ref: Some("req-2".into())
        }
    );
    for r in mock.received_requests().await.unwrap() {
        assert_signed(&r);
    }
}

#[tokio::test]
async fn describe_certificate_state_reads_the_order() {
    let mock = MockServer::start().await;
    let c = client(&mock.uri());
    let o = order_with("issued");
    for (kind, state) in [
        ("payed", Some(OrderState::Pending)),
        ("domain_verify", Some(OrderState::Pending)),
        ("process", Some(OrderState::Pending)),
        ("verify_fail", Some(OrderState::Pending)),
        ("certificate", Some(OrderState::Issued)),
        ("unknow", None),
        // Types the documentation does not list: a revoked order, and any other closed one.
        ("revoked", Some(OrderState::Revoked)),
        ("cancelled", Some(OrderState::Canceled)),
    ] {
        mock.reset().await;
        action(
            &mock,
            "DescribeCertificateState",
            200,
            json!({"Type": kind, "RequestId": "r"}),
            1,
        )
        .await;
        assert_eq!(c.observe(&o).await.unwrap().state, state, "{kind}");
    }
}

async fn failing(status: u16, body: serde_json::Value) -> CallFailure {
    let mock = MockServer::start().await;
    action(&mock, "CancelOrderRequest", status, body, 1).await;
    let o = order_with("pending");
    client(&mock.uri())
        .execute(&step(&o, Action::Cancel, None))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn code_and_message_errors_and_throttling() {
    let e = failing(404, json!({"RequestId": "r", "HostId": "cas.aliyuncs.com", "Code": "NotFoundPackage", "Message": "The package does not exist."})).await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
    assert_eq!(e.code(), Some("NotFoundPackage"));
    assert!(
        e.to_string()
            .contains("NotFoundPackage: The package does not exist."),
        "{e}"
    );
    // Throttling is a 4xx with a Throttling code: slow down, never a refusal.
    let e = failing(400, json!({"RequestId": "r", "HostId": "h", "Code": "Throttling.User", "Message": "Request was denied due to user flow control."})).await;
    assert!(matches!(e, CallFailure::Throttled { .. }), "{e:?}");
    assert_eq!(e.code(), Some("Throttling.User"));
    let e = failing(403, json!({"RequestId": "r", "HostId": "h", "Code": "InvalidAccessKeyId.NotFound", "Message": "no such key"})).await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
    // A 5xx may come after the CA acted: its outcome is unknown.
    let e = failing(
        500,
        json!({"RequestId": "r", "HostId": "h", "Code": "InternalError", "Message": "oops"}),
    )
    .await;
    assert!(matches!(e, CallFailure::NoAnswer { .. }), "{e:?}");
}

#[tokio::test]
async fn a_timeout_leaves_the_outcome_unknown_and_a_refused_connection_sent_nothing() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"RequestId": "r"}))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&mock)
        .await;
    let o = order_with("pending");
    assert!(matches!(
        client(&mock.uri())
            .execute(&step(&o, Action::Cancel, None))
            .await
            .unwrap_err(),
        CallFailure::NoAnswer { .. }
    ));
    assert!(matches!(
        client("http://127.0.0.1:9")
            .execute(&step(&o, Action::Cancel, None))
            .await
            .unwrap_err(),
        CallFailure::Unreachable(_)
    ));
}

#[tokio::test]
async fn unset_credentials_send_nothing() {
    let c = AlibabaClient::new(
        reqwest::Url::parse("http://127.0.0.1:9/").unwrap(),
        Secret::new(SecretRef::parse("${ALI_CONTRACT_UNSET_ID}").unwrap()),
        Secret::new(SecretRef::parse("${ALI_CONTRACT_UNSET_SECRET}").unwrap()),
        Timeouts::default(),
    );
    assert!(c.ready().unwrap_err().contains("ALI_CONTRACT_UNSET_ID"));
    let o = order_with("pending");
    assert!(matches!(
        c.execute(&step(&o, Action::Cancel, None))
            .await
            .unwrap_err(),
        CallFailure::NotSent(_)
    ));
}

#[tokio::test]
async fn there_is_no_refund_action() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&mock)
        .await;
    let o = order_with("issued");
    let e = client(&mock.uri())
        .execute(&step(&o, Action::RefundRequest, None))
        .await
        .unwrap_err();
    assert!(matches!(e, CallFailure::NotSent(_)), "{e:?}");
}

#[tokio::test]
async fn every_order_id_is_one_signed_query_value_whatever_it_holds() {
    let mock = MockServer::start().await;
    let c = client(&mock.uri());
    for hostile in certgate_core::testing::HOSTILE_IDS {
        mock.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"RequestId": "r"})))
            .mount(&mock)
            .await;
        let mut o = order_with("pending");
        o.supplier_order_id = Some((*hostile).to_owned());
        c.execute(&step(&o, Action::Cancel, None)).await.unwrap();
        let requests = mock.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(r.url.path(), "/", "{hostile}");
        let query: Vec<(String, String)> = r
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            query,
            [("OrderId".to_owned(), (*hostile).to_owned())],
            "{}",
            r.url
        );
        // What was signed is what was sent.
        assert_signed(r);
    }
    let bad = order(json!({"supplier_order_id": "CAS-99231"}));
    let err = certgate_core::client::check_ids(&c, &bad).unwrap_err();
    assert_eq!(err.errors[0].field, "order.supplier_order_id");
}
