//! Exactly once against CAs that behave like the real ones (`common::sim`): an action applied
//! whose answer is lost, a repeat answered "already done", throttling below the declared limit
//! with and without Retry-After, Sectigo's refunds through its API, and a step that could not
//! be sent, then retried. Every operation must end as the CA's state says.

mod common;

use common::sim::{Behaviour, DigiCert, Limit, Sectigo, Sim};
use common::{order, spawn, Setup, KEY};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::MockServer;

/// A gateway whose CA calls time out after 300 ms, against the CAs at `mock`, on a clock that
/// starts on 2026-06-15.
async fn gateway(mock: &MockServer, edit: impl Fn(String) -> String) -> common::TestApp {
    let text = common::with_timeouts(
        &common::sectigo_api(&common::providers_toml_at(&mock.uri()), &mock.uri()),
        300,
    );
    spawn(Setup {
        providers_toml: edit(text),
        // The day the Sectigo refunds below are decided on.
        clock: || common::clock_from("2026-06-15T08:30:00Z"),
        ..Setup::default()
    })
    .await
}

fn digicert_cancel(id: &str) -> Value {
    json!({"provider": "digicert", "intent": "cancel", "note": "customer asked",
           "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": id}))})
}

fn history(op: &Value) -> String {
    op["history"].to_string()
}

async fn run(app: &common::TestApp, key: &str, body: &Value) -> Value {
    let (status, op) = app.post_operation(KEY, key, body).await;
    assert_eq!(status, 202, "{op}");
    app.wait_for(
        op["id"].as_str().unwrap(),
        &["completed", "failed", "rejected", "manual_ticket_open"],
    )
    .await
}

#[tokio::test]
async fn an_answer_lost_after_the_ca_acted_is_confirmed_by_reading_the_ca() {
    let mock = MockServer::start().await;
    let sim = Sim::new(Behaviour {
        action_delay: Duration::from_millis(800),
        ..Behaviour::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let app = gateway(&mock, |t| t).await;
    for i in 0..5 {
        let id = format!("13{i:02}");
        sim.order(&id, "pending");
        let done = run(&app, &id, &digicert_cancel(&id)).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(sim.actions(&id), ["cancel"], "one PUT, never repeated");
        assert_eq!(sim.state(&id), "canceled");
        assert_eq!(done["steps"][0]["attempts"], 1);
        assert!(
            history(&done)
                .contains("confirmed by reading the CA: the answer to attempt 1 was lost"),
            "{done:#}"
        );
        // The money follows the confirmed outcome: asked for, and due from the completion.
        assert_eq!(done["refund"]["status"], "requested", "{done:#}");
        assert!(done["refund"]["due_by"].is_string(), "{done:#}");
    }
    let (_, ledger) = app.get("/v1/refunds?status=requested", Some(KEY)).await;
    assert_eq!(
        ledger["refunds"].as_array().unwrap().len(),
        5,
        "one record each: {ledger}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_repeat_answered_already_done_is_confirmed_by_a_read_and_counts_as_success() {
    let mock = MockServer::start().await;
    // The answer is lost, and the reads after it still show the order pending, even once the
    // attempt's timeout has passed (a CA whose reads lag behind its writes).
    let sim = Sim::new(Behaviour {
        action_delay: Duration::from_millis(800),
        read_lag: 2,
        ..Behaviour::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let app = gateway(&mock, |t| t).await;
    sim.order("1201", "pending");
    let done = run(&app, "repeat", &digicert_cancel("1201")).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sim.actions("1201"), ["cancel", "cancel"]);
    assert_eq!(sim.applied("1201"), ["cancel"], "applied once");
    let h = history(&done);
    assert!(h.contains("already done"), "{h}");
    assert!(h.contains("reports the order Canceled"), "{h}");
    assert_eq!(done["refund"]["status"], "requested", "{done:#}");
    assert!(done["refund"]["due_by"].is_string(), "{done:#}");
    app.stop().await;
}

/// 40 revocations at a DigiCert key whose real limit (10 per second, scaled down from 100 per
/// 5 s) is below what providers.toml declares: every one completes, none fails.
async fn throttled_burst(retry_after: Option<u64>) {
    let mock = MockServer::start().await;
    let sim = Sim::new(Behaviour {
        limit: Some(Limit(10, Duration::from_secs(1))),
        retry_after,
        ..Behaviour::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let text = common::with_timeouts(&common::providers_toml_at(&mock.uri()), 2_000);
    let app = spawn(Setup {
        providers_toml: text,
        executor: certgate_server::config::ExecutorConfig {
            workers: 64,
            ..common::fast_executor()
        },
        ..Setup::default()
    })
    .await;
    let n = 40;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("14{i:02}");
        sim.order(&id, "issued");
        let body = json!({"provider": "digicert", "intent": "revoke", "reason": "keyCompromise",
                          "order": order(json!({"supplier_order_id": id, "certificate_id": null}))});
        let (status, op) = app.post_operation(KEY, &id, &body).await;
        assert_eq!(status, 202, "{op}");
        ids.push((id, op["id"].as_str().unwrap().to_owned()));
    }
    for (order_id, op_id) in &ids {
        let done = app
            .wait_for_long(op_id, &["completed", "failed"], Duration::from_secs(90))
            .await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(sim.applied(order_id), ["revoke"]);
        assert_eq!(sim.state(order_id), "revoked");
    }
    assert!(
        sim.throttled() > 0,
        "the CA never throttled: the test tested nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_repeat_refused_with_a_code_no_document_lists_is_settled_by_a_read() {
    let mock = MockServer::start().await;
    // The first answer is lost; the reads after it lag (the repeat goes); the CA refuses the
    // repeat with a code that is not DigiCert's "already done"; its read then shows it done.
    let sim = Sim::new(Behaviour {
        action_delay: Duration::from_millis(800),
        read_lag: 2,
        repeat_refusal: Some((409, "order_locked")),
        ..Behaviour::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let app = gateway(&mock, |t| t).await;
    for i in 0..3 {
        let id = format!("150{i}");
        sim.order(&id, "pending");
        let done = run(&app, &id, &digicert_cancel(&id)).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(sim.applied(&id), ["cancel"], "applied once");
        let h = history(&done);
        assert!(h.contains("refused the repeat"), "{h}");
        assert!(h.contains("confirmed by reading the CA"), "{h}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_throttled_burst_without_retry_after_completes_every_operation() {
    throttled_burst(None).await;
}

#[tokio::test]
async fn a_throttled_burst_with_retry_after_completes_every_operation() {
    throttled_burst(Some(1)).await;
}

fn sectigo_refund(id: &str) -> Value {
    json!({"provider": "sectigo", "intent": "refund", "as_of": "2026-06-15T08:30:00Z",
           "order": order(json!({"supplier_order_id": id, "purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}))})
}

#[tokio::test]
async fn a_sectigo_refund_in_api_mode_asks_for_the_money_then_revokes() {
    let mock = MockServer::start().await;
    let sectigo = Sectigo::new(Sim::new(Behaviour::default()));
    sectigo.mount(&mock).await;
    let app = gateway(&mock, |t| t).await;
    let mut quote = sectigo_refund("5001");
    quote.as_object_mut().unwrap().remove("note");
    let (status, q) = app.post("/v1/quotes", &quote).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        common::steps(&q),
        ["refund_request/automated", "revoke/automated"]
    );
    sectigo.sim.order("5001", "issued");
    let done = run(&app, "sec-1", &sectigo_refund("5001")).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sectigo.sim.applied("5001"), ["refund", "revoke"]);
    assert_eq!(sectigo.sim.state("5001"), "revoked");
    // Sectigo's !AutoRefund said yes: approved, by the CA's own answer.
    assert_eq!(done["refund"]["status"], "approved", "{done:#}");
    let (_, approved) = app.get("/v1/events?type=refund.approved", Some(KEY)).await;
    assert_eq!(
        approved["events"].as_array().unwrap().len(),
        1,
        "{approved}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_refund_sectigos_api_cannot_do_becomes_a_support_ticket() {
    let mock = MockServer::start().await;
    let sectigo = Sectigo::new(Sim::new(Behaviour::default()));
    sectigo.mount(&mock).await;
    sectigo.multi_domain.lock().unwrap().push("5002".into());
    let app = gateway(&mock, |t| t).await;
    sectigo.sim.order("5002", "issued");
    let waiting = run(&app, "sec-san", &sectigo_refund("5002")).await;
    assert_eq!(waiting["status"], "manual_ticket_open", "{waiting:#}");
    assert_eq!(waiting["steps"][0]["procedure"], "manual_ticket");
    assert!(history(&waiting).contains("a manual ticket takes over"));
    assert!(
        sectigo.sim.applied("5002").is_empty(),
        "nothing revoked before the refund"
    );
    let (_, tickets) = app.get("/v1/tickets?status=open", Some(KEY)).await;
    let ticket = &tickets["tickets"][0];
    assert_eq!(ticket["action"], "refund_request");
    assert_eq!(
        ticket["fields"],
        json!({"reseller_username": "default-reseller", "supplier_order_id": "5002", "common_name": "shop.example.com"})
    );
    let (status, _) = app
        .post(
            &format!("/v1/tickets/{}/resolve", ticket["id"].as_str().unwrap()),
            &json!({"outcome": "done", "note": "refunded by Sectigo support"}),
        )
        .await;
    assert_eq!(status, 200);
    let done = app
        .wait_for(waiting["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sectigo.sim.state("5002"), "revoked");
    app.stop().await;
}

#[tokio::test]
async fn a_step_that_could_not_be_sent_says_so_and_a_retry_runs_it_from_the_cas_state() {
    let var = "CERTGATE_TEST_EXACTLY_ONCE_DIGICERT_KEY";
    std::env::remove_var(var);
    let mock = MockServer::start().await;
    let sim = Sim::new(Behaviour::default());
    DigiCert(sim.clone()).mount(&mock).await;
    let app = gateway(&mock, |t| {
        t.replacen("${DIGICERT_API_KEY}", &format!("${{{var}}}"), 1)
    })
    .await;
    sim.order("1202", "pending");
    let failed = run(&app, "unsent", &digicert_cancel("1202")).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let error = &failed["steps"][0]["error"];
    assert_eq!(error["kind"], "not_sent");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("not sent: the credential ${{{var}}}")),
        "{error}"
    );
    assert_eq!(failed["steps"][0]["attempts"], 0);
    assert!(
        mock.received_requests().await.unwrap().is_empty(),
        "nothing reached the CA"
    );

    let id = failed["id"].as_str().unwrap();
    std::env::set_var(var, "now-set");
    let (status, retried) = app
        .post(&format!("/v1/operations/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, 202, "{retried}");
    assert_eq!(retried["status"], "queued");
    let done = app.wait_for(id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sim.applied("1202"), ["cancel"]);
    assert!(history(&done).contains("retry asked by the reseller"));
    let (status, p) = app
        .post(&format!("/v1/operations/{id}/retry"), &json!({}))
        .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("conflict")), "{p}");
    let (status, _) = app.post("/v1/operations/op_nope/retry", &json!({})).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn an_unconfirmed_revocation_near_submit_by_raises_attention_once() {
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, ResponseTemplate};
    let ca = MockServer::start().await;
    // Alibaba shows the certificate still issued: the applicant has not confirmed.
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeCertificateState"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"Type": "certificate", "RequestId": "r"})),
        )
        .mount(&ca)
        .await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "CancelCertificateForPackageRequest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"RequestId": "req-9"})))
        .expect(1)
        .mount(&ca)
        .await;
    let (receiver, hook) = common::webhook_receiver().await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&ca.uri()),
        tenants: vec![common::tenant(
            "watched",
            "watched-key",
            Some((&hook, "whsec")),
        )],
        ..Setup::default()
    })
    .await;
    // Issued 25 days ago: the 28-day window closes in 3 days, its submit_by has passed.
    let issued = chrono::Utc::now() - chrono::Duration::days(25);
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({"provider": "alibaba", "intent": "refund",
        "order": order(json!({"supplier_order_id": "8003", "purchased_at": at(issued - chrono::Duration::days(1)),
                               "issued_at": at(issued), "expires_at": at(issued + chrono::Duration::days(365))}))});
    let (status, op) = app.post_operation("watched-key", "ov-1", &body).await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let attention = loop {
        let events: Vec<Value> = receiver
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .filter(|e: &Value| e["type"] == "operation.attention_needed")
            .collect();
        if !events.is_empty() {
            break events;
        }
        assert!(std::time::Instant::now() < deadline, "no attention event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attention[0]["data"]["operation"]["id"], id);
    assert_eq!(attention[0]["data"]["step"], 0);
    assert!(attention[0]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("has not confirmed"));
    // Checked again and again, raised once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let raised = receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("operation.attention_needed"))
        .count();
    assert_eq!(raised, 1);
    let (_, now) = app
        .get(&format!("/v1/operations/{id}"), Some("watched-key"))
        .await;
    assert_eq!(now["status"], "awaiting_confirmation");
    app.stop().await;
}
