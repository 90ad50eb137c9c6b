//! End to end: operations on the real server with its executor, against wiremock CAs.

mod common;

use common::{digicert_cancel, digicert_order, order, spawn, tenant, Setup, KEY};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn setup_at(mock: &MockServer) -> Setup {
    Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        ..Setup::default()
    }
}

/// A pending GeoTrust order at DigiCert (order id 1001).
fn pending_geotrust() -> Value {
    json!({
        "provider": "geotrust", "intent": "refund",
        "order": order(json!({"state": "pending", "issued_at": null, "validation_status": "submitted", "supplier_order_id": "1001"})),
        "note": "customer asked"
    })
}

fn statuses(op: &Value) -> Vec<String> {
    op["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_pending_geotrust_refund_runs_to_completed_with_the_exact_calls() {
    let mock = MockServer::start().await;
    digicert_order(&mock, "1001", "pending", 1).await;
    digicert_cancel(&mock, "1001", 1).await;
    let app = spawn(setup_at(&mock)).await;

    let (status, op) = app.post_operation(KEY, "k-1", &pending_geotrust()).await;
    assert_eq!(status, 202, "{op}");
    assert_eq!(op["status"], "queued");
    assert_eq!(op["steps"][0]["action"], "cancel");
    let id = op["id"].as_str().unwrap();
    let done = app.wait_for(id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["steps"][0]["status"], "completed");
    assert_eq!(done["steps"][0]["attempts"], 1);
    assert_eq!(done["steps"][0]["upstream_ref"], "1001");
    assert_eq!(statuses(&done).first().map(String::as_str), Some("queued"));
    assert_eq!(
        statuses(&done).last().map(String::as_str),
        Some("completed")
    );
    assert!(
        done["history"]
            .to_string()
            .contains("the CA confirms the order is Pending"),
        "{done:#}"
    );
    app.stop().await;
    mock.verify().await;
}

#[tokio::test]
async fn the_same_operation_sent_100_times_at_once_is_one_operation_and_one_upstream_call() {
    let mock = MockServer::start().await;
    digicert_order(&mock, "1001", "pending", 1).await;
    digicert_cancel(&mock, "1001", 1).await;
    let app = spawn(setup_at(&mock)).await;
    let body = pending_geotrust();
    let sends = (0..100).map(|_| app.post_operation(KEY, "same-key", &body));
    let answers = futures_join_all(sends).await;
    let created = answers.iter().filter(|(s, _)| *s == 202).count();
    let replayed = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        (created, replayed),
        (1, 99),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(_, op)| op["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    let id = ids.into_iter().next().unwrap();
    app.wait_for(&id, &["completed"]).await;
    let (_, list) = app.get("/v1/operations", Some(KEY)).await;
    assert_eq!(list["operations"].as_array().unwrap().len(), 1);
    app.stop().await;
    mock.verify().await;
}

/// Runs futures concurrently (tokio tasks would need 'static borrows).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out = Vec::with_capacity(futs.len());
    let mut pending: Vec<_> = futs.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut left = false;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => left = true,
                }
            }
        }
        if left {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(Option::unwrap));
    out
}

#[tokio::test]
async fn idempotency_keys_and_refusals() {
    let mock = MockServer::start().await;
    let app = spawn(Setup {
        background: false,
        ..setup_at(&mock)
    })
    .await;
    let (status, first) = app.post_operation(KEY, "k-2", &pending_geotrust()).await;
    assert_eq!(status, 202);
    // The same body, keys in another order and other spacing: the same operation.
    let mut reordered: serde_json::Map<String, Value> = serde_json::Map::new();
    for (k, v) in pending_geotrust().as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    let (status, again) = app
        .post_operation(KEY, "k-2", &Value::Object(reordered))
        .await;
    assert_eq!((status, &again["id"]), (200, &first["id"]));
    // The same key with another body.
    let mut other = pending_geotrust();
    other["note"] = json!("something else");
    let (status, p) = app.post_operation(KEY, "k-2", &other).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{p}"
    );
    assert_eq!(p["operation_id"], first["id"]);
    // No key.
    let (status, p) = app.post("/v1/operations", &pending_geotrust()).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    // A refused quote: 409 with the quote inside, nothing created.
    let refused = json!({"provider": "digicert", "intent": "cancel", "order": order(json!({"supplier_order_id": "1009"}))});
    let (status, p) = app.post_operation(KEY, "k-3", &refused).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("refused")), "{p}");
    assert_eq!(p["quote"]["allowed"], false);
    assert_eq!(p["quote"]["alternative"], "revoke");
    assert_eq!(p["quote"]["rules"], json!(["DC-ISSUED-REVOKE"]));
    // An automated step needs the CA's order id.
    let mut no_id = pending_geotrust();
    no_id["order"]["supplier_order_id"] = Value::Null;
    let (status, p) = app.post_operation(KEY, "k-4", &no_id).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("order.supplier_order_id"))
    );
    // A bad reason names the field.
    let mut bad_reason = pending_geotrust();
    bad_reason["reason"] = json!("certificateHold");
    let (status, p) = app.post_operation(KEY, "k-5", &bad_reason).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("reason"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_sectigo_refund_is_a_ticket_with_the_fields_support_needs() {
    let app = spawn(Setup {
        clock: || common::clock_from("2026-06-15T08:30:00Z"),
        ..Setup::default()
    })
    .await;
    let body = json!({
        "provider": "sectigo", "intent": "refund", "as_of": "2026-06-15T08:30:00Z",
        "order": order(json!({"supplier_order_id": "SEC-77", "purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}))
    });
    let (status, op) = app.post_operation(KEY, "t-1", &body).await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_str().unwrap();
    let waiting = app.wait_for(id, &["manual_ticket_open"]).await;
    let ticket_id = waiting["steps"][0]["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, tickets) = app.get("/v1/tickets?status=open", Some(KEY)).await;
    let ticket = &tickets["tickets"][0];
    assert_eq!(ticket["id"], ticket_id.as_str());
    assert_eq!(ticket["action"], "revoke");
    assert_eq!(
        ticket["fields"],
        json!({"reseller_username": "default-reseller", "supplier_order_id": "SEC-77", "common_name": "shop.example.com"})
    );
    // Resolving it completes the step and the operation.
    let (status, resolved) = app
        .post(
            &format!("/v1/tickets/{ticket_id}/resolve"),
            &json!({"outcome": "done", "note": "OpenSRS #4411"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["operation"]["status"], "completed");
    let done = app.wait_for(id, &["completed"]).await;
    assert!(done["history"].to_string().contains("OpenSRS #4411"));
    let (status, p) = app
        .post(
            &format!("/v1/tickets/{ticket_id}/resolve"),
            &json!({"outcome": "done"}),
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("conflict")));
    let (_, open) = app.get("/v1/tickets?status=open", Some(KEY)).await;
    assert_eq!(open["tickets"], json!([]));
    let (status, p) = app
        .post(
            &format!("/v1/tickets/{ticket_id}/resolve"),
            &json!({"outcome": "maybe"}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("outcome"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_ticket_rejects_the_operation() {
    let app = spawn(Setup::default()).await;
    let body = json!({"provider": "trustwave", "intent": "cancel", "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "TW-1"}))});
    let (_, op) = app.post_operation(KEY, "t-2", &body).await;
    let id = op["id"].as_str().unwrap();
    let waiting = app.wait_for(id, &["manual_ticket_open"]).await;
    let ticket = waiting["steps"][0]["ticket_id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/v1/tickets/{ticket}/resolve"),
            &json!({"outcome": "rejected", "note": "too late"}),
        )
        .await;
    assert_eq!(status, 200);
    let done = app.wait_for(id, &["rejected"]).await;
    assert_eq!(done["steps"][0]["status"], "rejected");
    app.stop().await;
}

#[tokio::test]
async fn digicert_refund_of_an_account_balance_order_cancels_then_opens_a_support_ticket() {
    let mock = MockServer::start().await;
    digicert_order(&mock, "1002", "pending", 1).await;
    digicert_cancel(&mock, "1002", 1).await;
    let app = spawn(setup_at(&mock)).await;
    let body = json!({
        "provider": "digicert", "intent": "refund", "note": "customer asked",
        "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "1002", "charged_to": "account_balance", "voucher": null}))
    });
    let (_, op) = app.post_operation(KEY, "dc-1", &body).await;
    let id = op["id"].as_str().unwrap();
    let waiting = app.wait_for(id, &["manual_ticket_open"]).await;
    assert_eq!(waiting["steps"][0]["status"], "completed");
    let (_, tickets) = app.get("/v1/tickets?status=open", Some(KEY)).await;
    assert_eq!(
        tickets["tickets"][0]["fields"],
        json!({"supplier_order_id": "1002", "amount": "120.00 USD"})
    );
    app.stop().await;
    mock.verify().await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_operations_and_tickets() {
    let app = spawn(Setup {
        tenants: vec![tenant("globex", "globex-key", None)],
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "trustwave", "intent": "cancel", "order": order(json!({"state": "pending", "issued_at": null}))});
    let (_, op) = app.post_operation(KEY, "iso-1", &body).await;
    let id = op["id"].as_str().unwrap();
    app.wait_for(id, &["manual_ticket_open"]).await;
    let (status, p) = app
        .get(&format!("/v1/operations/{id}"), Some("globex-key"))
        .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("not_found")));
    let (_, list) = app.get("/v1/operations", Some("globex-key")).await;
    assert_eq!(list["operations"], json!([]));
    let (_, tickets) = app.get("/v1/tickets", Some("globex-key")).await;
    assert_eq!(tickets["tickets"], json!([]));
    let (_, mine) = app.get("/v1/tickets", Some(KEY)).await;
    let ticket = mine["tickets"][0]["id"].as_str().unwrap();
    let res = app
        .client
        .post(format!("{}/v1/tickets/{ticket}/resolve", app.base))
        .bearer_auth("globex-key")
        .body(json!({"outcome": "done"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The same idempotency key in another tenant is another operation.
    let (status, other) = app.post_operation("globex-key", "iso-1", &body).await;
    assert_eq!(status, 202);
    assert_ne!(other["id"], op["id"]);
    app.stop().await;
}

#[tokio::test]
async fn an_alibaba_refund_under_review_can_be_withdrawn_once() {
    let app = spawn(Setup {
        clock: || common::clock_from("2026-06-15T08:30:00Z"),
        ..Setup::default()
    })
    .await;
    let body = json!({
        "provider": "alibaba", "intent": "refund", "as_of": "2026-06-15T08:30:00Z",
        "order": order(json!({"state": "pending", "issued_at": null, "validation_status": "submitted",
                               "purchased_at": "2026-06-12T00:00:00Z", "expires_at": "2027-06-12T00:00:00Z", "supplier_order_id": "8001"}))
    });
    let (_, op) = app.post_operation(KEY, "w-1", &body).await;
    let id = op["id"].as_str().unwrap();
    let waiting = app.wait_for(id, &["manual_ticket_open"]).await;
    let ticket = waiting["steps"][0]["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, withdrawn) = app
        .post(&format!("/v1/operations/{id}/withdraw"), &json!({}))
        .await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    let (_, t) = app.get("/v1/tickets?status=withdrawn", Some(KEY)).await;
    assert_eq!(t["tickets"][0]["id"], ticket.as_str());
    let (status, p) = app
        .post(&format!("/v1/operations/{id}/withdraw"), &json!({}))
        .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("conflict")));
    let (status, _) = app
        .post("/v1/operations/op_nope/withdraw", &json!({}))
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn alibaba_ov_revocations_wait_for_the_applicants_confirmation() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-acs-action", "DescribeCertificateState"))
        .and(header("x-acs-version", "2020-04-07"))
        .and(query_param("OrderId", "8002"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"Type": "certificate", "RequestId": "r-1"})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-acs-action", "CancelCertificateForPackageRequest"))
        .and(query_param("OrderId", "8002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"RequestId": "r-2"})))
        .expect(1)
        .mount(&mock)
        .await;
    let app = spawn(setup_at(&mock)).await;
    let body = json!({
        "provider": "alibaba", "intent": "revoke", "reason": "keyCompromise",
        "order": order(json!({"supplier_order_id": "8002", "purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-02T00:00:00Z"}))
    });
    let (status, op) = app.post_operation(KEY, "ali-1", &body).await;
    assert_eq!(status, 202, "{op}");
    let waiting = app
        .wait_for(op["id"].as_str().unwrap(), &["awaiting_confirmation"])
        .await;
    assert_eq!(waiting["steps"][0]["status"], "awaiting_confirmation");
    assert_eq!(waiting["steps"][0]["upstream_ref"], "r-2");
    let signed = mock.received_requests().await.unwrap();
    let auth = signed[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.starts_with(
            "ACS3-HMAC-SHA256 Credential=ali-test-id,SignedHeaders=host;x-acs-action;"
        ),
        "{auth}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cancel_of_what_the_ca_reports_issued_is_refused_and_never_sent() {
    let mock = MockServer::start().await;
    digicert_order(&mock, "1003", "issued", 1).await;
    digicert_cancel(&mock, "1003", 0).await;
    let app = spawn(setup_at(&mock)).await;
    let body = json!({
        "provider": "digicert", "intent": "cancel", "note": "customer asked",
        "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "1003"}))
    });
    let (_, op) = app.post_operation(KEY, "v-1", &body).await;
    let done = app
        .wait_for(
            op["id"].as_str().unwrap(),
            &["rejected", "completed", "failed"],
        )
        .await;
    assert_eq!(done["status"], "rejected", "{done:#}");
    let history = done["history"].to_string();
    assert!(
        history.contains("the reseller reported Pending, the CA reports Issued"),
        "{history}"
    );
    assert!(history.contains("alternative: revoke"), "{history}");
    app.stop().await;
    mock.verify().await;
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_fail_with_the_cas_message() {
    let mock = MockServer::start().await;
    // Read before acting, after the 503 (the CA may have acted before failing: too soon to
    // tell, so nothing is sent), and once the attempt cannot be in progress any more.
    digicert_order(&mock, "1004", "pending", 3).await;
    Mock::given(method("PUT"))
        .and(path("/services/v2/order/certificate/1004/status"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/services/v2/order/certificate/1004/status"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    digicert_cancel(&mock, "1004", 1).await;
    digicert_order(&mock, "1005", "pending", 1).await;
    Mock::given(method("PUT"))
        .and(path("/services/v2/order/certificate/1005/status"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"errors": [{"code": "not_found|order", "message": "Order not found"}]}),
        ))
        .expect(1)
        .mount(&mock)
        .await;
    // Calls time out after 500 ms: a read after the lost answer is conclusive 2.5 s after the
    // attempt.
    let app = spawn(Setup {
        providers_toml: common::with_timeouts(&common::providers_toml_at(&mock.uri()), 500),
        ..Setup::default()
    })
    .await;
    let mk = |id: &str| {
        json!({"provider": "digicert", "intent": "cancel", "note": "customer asked",
               "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": id}))})
    };
    let (_, a) = app.post_operation(KEY, "r-1", &mk("1004")).await;
    let (_, b) = app.post_operation(KEY, "r-2", &mk("1005")).await;
    let a = app
        .wait_for(a["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(a["status"], "completed", "{a:#}");
    assert_eq!(a["steps"][0]["attempts"], 3);
    assert!(a["history"].to_string().contains("retrying"), "{a:#}");
    assert!(a["history"].to_string().contains("throttling"), "{a:#}");
    let b = app
        .wait_for(b["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(b["status"], "failed");
    assert_eq!(b["steps"][0]["attempts"], 1);
    assert!(
        b["steps"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not_found|order: Order not found"),
        "{b:#}"
    );
    assert_eq!(b["steps"][0]["error"]["kind"], "ca_refused");
    assert_eq!(b["steps"][0]["error"]["code"], "not_found|order");
    app.stop().await;
    mock.verify().await;
}

#[tokio::test]
async fn webhooks_are_signed_and_carry_every_transition_in_order() {
    let ca = MockServer::start().await;
    digicert_order(&ca, "1006", "pending", 1).await;
    digicert_cancel(&ca, "1006", 1).await;
    let receiver = common::Receiver::default();
    let (_server, hook_url) = receiver.serve().await;
    let app = spawn(Setup {
        tenants: vec![tenant(
            "hooked",
            "hooked-key",
            Some((&hook_url, "whsec-test")),
        )],
        ..setup_at(&ca)
    })
    .await;
    let body = json!({"provider": "digicert", "intent": "cancel", "note": "customer asked",
                      "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "1006"}))});
    let (status, op) = app.post_operation("hooked-key", "h-1", &body).await;
    assert_eq!(status, 202);
    let id = op["id"].as_str().unwrap().to_owned();
    app.wait_for_as("hooked-key", &id, &["completed"]).await;
    let seen = receiver
        .wait_for(3, std::time::Duration::from_secs(10))
        .await;
    let mut sequence = Vec::new();
    for a in &seen {
        assert!(a.signed_with("whsec-test"), "signature of {}", a.raw);
        assert!(!a.signed_with("other-secret"));
        let event = &a.body;
        assert_eq!(event["type"], "operation.status_changed", "{event}");
        assert_eq!(event["tenant"], "hooked");
        assert_eq!(a.event_id.as_deref(), event["id"].as_str());
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        let operation = &event["data"]["operation"];
        assert_eq!(operation["id"], id.as_str());
        sequence.push(operation["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(sequence, ["queued", "running", "completed"]);
    app.stop().await;
}

#[tokio::test]
async fn the_audit_log_records_who_did_what() {
    let app = spawn(Setup::default()).await;
    let body = json!({"provider": "trustwave", "intent": "cancel", "order": order(json!({"state": "pending", "issued_at": null}))});
    let (_, op) = app.post_operation(KEY, "a-1", &body).await;
    app.wait_for(op["id"].as_str().unwrap(), &["manual_ticket_open"])
        .await;
    let (status, audit) = app.get("/v1/audit", Some(KEY)).await;
    assert_eq!(status, 200);
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["ticket.open", "operation.create"]);
    assert_eq!(audit["entries"][1]["actor"], "default");
    assert_eq!(audit["entries"][1]["target"], op["id"]);
    let (status, p) = app.get("/v1/audit?limit=0", Some(KEY)).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("limit"))
    );
    app.stop().await;
}

#[tokio::test]
async fn operations_are_listed_newest_first_with_filters_and_a_cursor() {
    let app = spawn(Setup {
        background: false,
        ..Setup::default()
    })
    .await;
    let body = |i: u32| json!({"provider": "trustwave", "intent": "cancel", "note": format!("n{i}"), "order": order(json!({"state": "pending", "issued_at": null}))});
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, op) = app.post_operation(KEY, &format!("l-{i}"), &body(i)).await;
        ids.push(op["id"].as_str().unwrap().to_owned());
    }
    let (_, page) = app.get("/v1/operations?limit=2", Some(KEY)).await;
    let got: Vec<_> = page["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(
            &format!("/v1/operations?limit=10&cursor={cursor}"),
            Some(KEY),
        )
        .await;
    assert_eq!(rest["operations"].as_array().unwrap().len(), 3);
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, filtered) = app.get("/v1/operations?status=completed", Some(KEY)).await;
    assert_eq!(filtered["operations"], json!([]));
    let (_, by_provider) = app
        .get("/v1/operations?provider=trustwave&status=queued", Some(KEY))
        .await;
    assert_eq!(by_provider["operations"].as_array().unwrap().len(), 5);
    for bad in ["status=lost", "colour=blue", "limit=500"] {
        let (status, p) = app.get(&format!("/v1/operations?{bad}"), Some(KEY)).await;
        assert_eq!(status, 400, "{bad}: {p}");
    }
    app.stop().await;
}

#[tokio::test]
async fn new_tickets_are_pushed_to_the_outside_helpdesk() {
    let helpdesk = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/tickets"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&helpdesk)
        .await;
    let app = spawn(Setup {
        helpdesk: Some(certgate_engine::Helpdesk {
            url: format!("{}/tickets", helpdesk.uri()),
            secret: Some("hd-secret".into()),
        }),
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "trustwave", "intent": "cancel", "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "TW-9"}))});
    let (_, op) = app.post_operation(KEY, "hd-1", &body).await;
    let waiting = app
        .wait_for(op["id"].as_str().unwrap(), &["manual_ticket_open"])
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pushed = loop {
        if let Some(r) = helpdesk
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ticket reached the helpdesk"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let ticket: Value = serde_json::from_slice(&pushed.body).unwrap();
    assert_eq!(ticket["id"], waiting["steps"][0]["ticket_id"]);
    assert_eq!(ticket["fields"]["supplier_order_id"], "TW-9");
    assert!(pushed.headers.get("certgate-signature").is_some());
    app.stop().await;
    helpdesk.verify().await;
}

#[tokio::test]
async fn rejections_are_problem_json_naming_the_field_on_every_route() {
    let app = common::spawn_app().await;
    let order = order(json!({}));
    // A wrong type on an enum field is about that field, not malformed JSON.
    for (path, body, field) in [
        (
            "/v1/quotes",
            json!({"provider": "digicert", "intent": 5, "order": order}),
            "intent",
        ),
        (
            "/v1/operations",
            json!({"provider": "digicert", "intent": 5, "order": order}),
            "intent",
        ),
        (
            "/v1/quotes",
            json!({"provider": "digicert", "intent": "cancel", "order": common::order(json!({"state": 42}))}),
            "order.state",
        ),
    ] {
        let req = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(KEY)
            .header("idempotency-key", "k-1")
            .header("content-type", "application/json")
            .body(body.to_string());
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 400, "{path} {field}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "invalid_request", "{p}");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let (status, p) = app.post_raw("/v1/quotes", "{\"provider\": ").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("malformed_json")));
    // Too large: the same problem+json 413 on every route that takes a body.
    let big = format!("{{\"note\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    for path in ["/v1/quotes", "/v1/operations", "/v1/tickets/tk_x/resolve"] {
        let res = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(KEY)
            .header("idempotency-key", "k-2")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    // A cursor this API did not give is a 400 on every list.
    for path in [
        "/v1/operations?cursor=garbage",
        "/v1/tickets?cursor=garbage",
        "/v1/audit?cursor=garbage",
        "/v1/webhook-deliveries?cursor=garbage",
    ] {
        let (status, p) = app.get(path, Some(KEY)).await;
        assert_eq!(
            (status, p["errors"][0]["field"].as_str()),
            (400, Some("cursor")),
            "{path}: {p}"
        );
    }
    let (status, _) = app
        .get(
            "/v1/operations?cursor=op_0123456789abcdef0123456789abcdef",
            Some(KEY),
        )
        .await;
    assert_eq!(status, 200);
}
