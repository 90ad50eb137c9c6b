//! DigiCert CertCentral's wire contract (CONTRACTS.md), call by call: method, path, the
//! `X-DC-DEVKEY` header, the exact JSON body, the call count, and every error shape.

use certgate_core::client::RevocationReason;
use certgate_core::config::SecretRef;
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::{Action, Intent};
use certgate_core::testing::order;
use certgate_core::{CaClient, CaMessage, CallFailure, StepCall, StepOutcome};
use certgate_digicert::client::DigicertClient;
use certgate_http::{Secret, Timeouts};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "dc-contract-key";

fn client(base: &str) -> DigicertClient {
    std::env::set_var("DC_CONTRACT_KEY", KEY);
    let key = Secret::new(SecretRef::parse("${DC_CONTRACT_KEY}").unwrap());
    DigicertClient::new(
        reqwest::Url::parse(base).unwrap(),
        key,
        Timeouts {
            connect: Duration::from_millis(500),
            request: Duration::from_millis(500),
        },
    )
}

fn pending() -> Order {
    order(
        json!({"state": "pending", "issued_at": null, "supplier_order_id": "1001", "certificate_id": null}),
    )
}

fn issued() -> Order {
    order(json!({"supplier_order_id": "1001", "certificate_id": "77"}))
}

fn call<'a>(order: &'a Order, intent: Intent, action: Action) -> StepCall<'a> {
    StepCall {
        operation_id: "op_1",
        intent,
        action,
        order,
        confirmation: None,
        reason: Some(RevocationReason::KeyCompromise),
        note: Some("customer asked"),
    }
}

fn order_info(status: &str) -> serde_json::Value {
    json!({
        "id": 1001, "status": status, "date_created": "2026-06-01T00:00:00+00:00",
        "certificate": {"id": 77, "common_name": "shop.example.com", "dns_names": ["shop.example.com"]},
        "product": {"name_id": "ssl_basic", "name": "Basic OV", "type": "ssl_certificate", "validation_type": "ov"},
        "requests": [{"id": 55, "date": "2026-06-01T00:00:00+00:00", "type": "new_request", "status": "pending"}]
    })
}

#[tokio::test]
async fn cancel_puts_status_canceled_with_the_note() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/order/certificate/1001/status"))
        .and(header("X-DC-DEVKEY", KEY))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"status": "canceled", "note": "customer asked", "send_emails": false}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&mock)
        .await;
    let o = pending();
    let out = client(&mock.uri())
        .execute(&call(&o, Intent::Cancel, Action::Cancel))
        .await
        .unwrap();
    assert_eq!(
        out,
        StepOutcome::Completed {
            upstream_ref: Some("1001".into())
        }
    );
}

#[tokio::test]
async fn a_refund_revokes_the_whole_order() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/order/certificate/1001/revoke"))
        .and(header("X-DC-DEVKEY", KEY))
        .and(body_json(json!({"comments": "customer asked", "skip_approval": true, "revocation_reason": "key_compromise"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&mock)
        .await;
    let o = issued();
    let out = client(&mock.uri())
        .execute(&call(&o, Intent::Refund, Action::Revoke))
        .await
        .unwrap();
    assert!(matches!(out, StepOutcome::Completed { .. }));
}

#[tokio::test]
async fn a_revoke_revokes_the_one_certificate() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/certificate/77/revoke"))
        .and(header("X-DC-DEVKEY", KEY))
        .and(body_json(json!({"comments": "customer asked", "skip_approval": true, "revocation_reason": "key_compromise"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&mock)
        .await;
    let o = issued();
    let out = client(&mock.uri())
        .execute(&call(&o, Intent::Revoke, Action::Revoke))
        .await
        .unwrap();
    assert!(matches!(out, StepOutcome::Completed { .. }));
}

#[tokio::test]
async fn a_revocation_needing_approval_waits_until_digicert_reports_it_revoked() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/order/certificate/1001/revoke"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 9001, "date": "2026-06-15T08:30:00+00:00", "type": "revoke", "status": "pending",
            "requester": {"id": 1, "first_name": "A", "last_name": "B"}, "comments": "customer asked"
        })))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/order/certificate/1001"))
        .and(header("X-DC-DEVKEY", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_info("issued")))
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/order/certificate/1001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_info("revoked")))
        .expect(1)
        .mount(&mock)
        .await;
    let c = client(&mock.uri());
    let o = issued();
    let step = call(&o, Intent::Refund, Action::Revoke);
    let waiting = c.execute(&step).await.unwrap();
    assert_eq!(
        waiting,
        StepOutcome::AwaitingCa {
            upstream_ref: Some("9001".into())
        }
    );
    // The executor checks the order until DigiCert reports it revoked.
    assert_eq!(c.observe(&o).await.unwrap().state, Some(OrderState::Issued));
    assert_eq!(
        c.observe(&o).await.unwrap().state,
        Some(OrderState::Revoked)
    );
}

#[tokio::test]
async fn rejecting_an_approval_finds_the_pending_request_and_rejects_it() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/order/certificate/1001"))
        .and(header("X-DC-DEVKEY", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_info("needs_approval")))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/request/55/status"))
        .and(header("X-DC-DEVKEY", KEY))
        .and(body_json(
            json!({"status": "rejected", "processor_comment": "customer asked"}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&mock)
        .await;
    let o = order(
        json!({"state": "awaiting_approval", "issued_at": null, "supplier_order_id": "1001"}),
    );
    let out = client(&mock.uri())
        .execute(&call(&o, Intent::Cancel, Action::RejectApproval))
        .await
        .unwrap();
    assert_eq!(
        out,
        StepOutcome::Completed {
            upstream_ref: Some("55".into())
        }
    );
}

#[tokio::test]
async fn order_info_maps_digicert_statuses() {
    let cases = [
        ("needs_approval", OrderState::AwaitingApproval),
        ("pending", OrderState::Pending),
        ("waiting_pickup", OrderState::Pending),
        ("reissue_pending", OrderState::Issued),
        ("issued", OrderState::Issued),
        ("rejected", OrderState::Canceled),
        ("canceled", OrderState::Canceled),
        ("revoked", OrderState::Revoked),
        ("expired", OrderState::Expired),
    ];
    let mock = MockServer::start().await;
    let c = client(&mock.uri());
    let o = pending();
    for (status, state) in cases {
        mock.reset().await;
        Mock::given(method("GET"))
            .and(path("/order/certificate/1001"))
            .and(header("X-DC-DEVKEY", KEY))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_info(status)))
            .expect(1)
            .mount(&mock)
            .await;
        assert_eq!(c.observe(&o).await.unwrap().state, Some(state), "{status}");
    }
}

async fn failing(status: u16, body: serde_json::Value) -> CallFailure {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/order/certificate/1001/status"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(&mock)
        .await;
    let o = pending();
    client(&mock.uri())
        .execute(&call(&o, Intent::Cancel, Action::Cancel))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn errors_arrays_become_clear_failures() {
    let e = failing(
        404,
        json!({"errors": [{"code": "not_found|order", "message": "Order not found"}]}),
    )
    .await;
    assert_eq!(
        e,
        CallFailure::Refused(CaMessage::new(
            Some("not_found|order".into()),
            "the CA does not know it (404): not_found|order: Order not found"
        ))
    );
    let e = failing(403, json!({"errors": [{"code": "access_denied|missing_permission", "message": "No permission"}]})).await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
    assert_eq!(e.code(), Some("access_denied|missing_permission"));
    // Throttling, with a 429 or the code alone: slow down, never a refusal.
    for status in [429, 400] {
        let e = failing(
            status,
            json!({"errors": [{"code": "request_limit_exceeded", "message": "Too many requests"}]}),
        )
        .await;
        assert!(
            matches!(e, CallFailure::Throttled { .. }),
            "{status}: {e:?}"
        );
        assert!(e.to_string().contains("request_limit_exceeded"), "{e}");
    }
    let e = failing(
        400,
        json!({"errors": [{"code": "bad_request_format", "message": "Bad"}]}),
    )
    .await;
    assert!(matches!(e, CallFailure::Refused(_)), "{e:?}");
    let e = failing(503, json!({})).await;
    assert!(matches!(e, CallFailure::NoAnswer { .. }), "{e:?}");
}

#[tokio::test]
async fn a_repeated_action_is_answered_already_done() {
    let e = failing(
        400,
        json!({"errors": [{"code": "invalid_order_status", "message": "The order is already canceled."}]}),
    )
    .await;
    assert!(matches!(e, CallFailure::AlreadyDone(_)), "{e:?}");
    assert_eq!(e.code(), Some("invalid_order_status"));
}

#[tokio::test]
async fn a_timeout_leaves_the_outcome_unknown_and_a_refused_connection_sent_nothing() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&mock)
        .await;
    let o = pending();
    let e = client(&mock.uri())
        .execute(&call(&o, Intent::Cancel, Action::Cancel))
        .await
        .unwrap_err();
    assert!(matches!(e, CallFailure::NoAnswer { .. }), "{e:?}");
    assert!(e.to_string().contains("did not answer in time"), "{e}");
    let e = client("http://127.0.0.1:9")
        .execute(&call(&o, Intent::Cancel, Action::Cancel))
        .await
        .unwrap_err();
    assert!(matches!(e, CallFailure::Unreachable(_)), "{e:?}");
}

#[tokio::test]
async fn no_order_id_no_call() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&mock)
        .await;
    let o = order(json!({"state": "pending", "issued_at": null, "supplier_order_id": null}));
    let e = client(&mock.uri())
        .execute(&call(&o, Intent::Cancel, Action::Cancel))
        .await
        .unwrap_err();
    assert!(matches!(e, CallFailure::NotSent(_)), "{e:?}");
    let e = client(&mock.uri())
        .execute(&call(&pending(), Intent::Refund, Action::RefundRequest))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("DigiCert Support"));
}

/// The path segments of the one request `mock` received, decoded (none if it received none).
async fn segments_received(mock: &MockServer) -> Vec<Vec<String>> {
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.url.query(), None, "{}", r.url);
            r.url
                .path_segments()
                .unwrap()
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .unwrap()
                        .into_owned()
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn every_id_reaches_digicert_as_one_path_segment_or_not_at_all() {
    let mock = MockServer::start().await;
    let c = client(&format!("{}/services/v2", mock.uri()));
    for hostile in certgate_core::testing::HOSTILE_IDS {
        // The order id in a cancel, and the certificate id in a revoke.
        let cancel =
            order(json!({"state": "pending", "issued_at": null, "supplier_order_id": hostile}));
        let revoke = order(json!({"supplier_order_id": "1001", "certificate_id": hostile}));
        for (o, intent, action, expected) in [
            (
                &cancel,
                Intent::Cancel,
                Action::Cancel,
                vec!["services", "v2", "order", "certificate", hostile, "status"],
            ),
            (
                &revoke,
                Intent::Revoke,
                Action::Revoke,
                vec!["services", "v2", "certificate", hostile, "revoke"],
            ),
        ] {
            mock.reset().await;
            Mock::given(method("PUT"))
                .respond_with(ResponseTemplate::new(204))
                .mount(&mock)
                .await;
            let sent = c.execute(&call(o, intent, action)).await;
            let seen = segments_received(&mock).await;
            match sent {
                Ok(_) => assert_eq!(seen, [expected], "{hostile}"),
                Err(e) => {
                    assert!(matches!(e, CallFailure::NotSent(_)), "{hostile}: {e:?}");
                    assert!(seen.is_empty(), "{hostile}: {seen:?}");
                }
            }
        }
        // A request id DigiCert itself answers goes back the same way.
        mock.reset().await;
        let mut info = order_info("needs_approval");
        info["requests"][0]["id"] = json!(hostile);
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(info))
            .mount(&mock)
            .await;
        Mock::given(method("PUT"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&mock)
            .await;
        let o = order(
            json!({"state": "awaiting_approval", "issued_at": null, "supplier_order_id": "1001"}),
        );
        let sent = c
            .execute(&call(&o, Intent::Cancel, Action::RejectApproval))
            .await;
        let seen = segments_received(&mock).await;
        match sent {
            Ok(_) => assert_eq!(
                seen[1],
                ["services", "v2", "request", hostile, "status"],
                "{hostile}"
            ),
            Err(e) => {
                assert!(matches!(e, CallFailure::NotSent(_)), "{hostile}: {e:?}");
                assert_eq!(seen.len(), 1, "only the read went: {seen:?}");
            }
        }
    }
}

#[tokio::test]
async fn digicert_ids_are_digits_and_a_read_shows_what_to_compare() {
    let c = client("http://127.0.0.1:9");
    let bad = order(json!({"supplier_order_id": "../admin", "certificate_id": "cert-77"}));
    let err = certgate_core::client::check_ids(&c, &bad).unwrap_err();
    let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["order.supplier_order_id", "order.certificate_id"]);
    let good = order(json!({"supplier_order_id": "1001", "certificate_id": "77"}));
    assert!(certgate_core::client::check_ids(&c, &good).is_ok());

    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/order/certificate/1001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_info("issued")))
        .mount(&mock)
        .await;
    let seen = client(&mock.uri()).observe(&good).await.unwrap();
    assert!(seen.mismatches(&good).is_empty());
    let other = order(
        json!({"supplier_order_id": "1001", "certificate_id": "78", "common_name": "victim.example"}),
    );
    assert_eq!(
        seen.mismatches(&other),
        [
            certgate_core::OrderField::CertificateId,
            certgate_core::OrderField::CommonName
        ]
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_key_goes_nowhere_else() {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}/x", elsewhere.uri())),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let e = client(&mock.uri())
        .execute(&call(&pending(), Intent::Cancel, Action::Cancel))
        .await
        .unwrap_err();
    assert!(matches!(e, CallFailure::Unreachable(_)), "{e:?}");
    assert!(e.to_string().contains("307"), "{e}");
}
