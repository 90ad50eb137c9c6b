//! End to end: the refund ledger. Every operation whose quote promises money carries a refund
//! record that follows the operation, takes what the CA did (a report, a refund ticket's
//! credit), flags a wrong amount and goes overdue once, on a simulated clock; the ledger's
//! lists and sums, tenant by tenant.

mod common;

use common::sim::{DigiCert, Sim};
use common::{digicert_cancel, digicert_order, order, spawn, tenant, Setup, KEY};
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use wiremock::MockServer;

const OTHER: &str = "other-tenant-key-0123";

fn setup(mock: &MockServer, clock: certgate_engine::Clock) -> Setup {
    Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        tenants: vec![tenant("other", OTHER, None)],
        clock,
        watch: certgate_server::config::WatchConfig {
            poll_ms: 50,
            ..Default::default()
        },
        ..Setup::default()
    }
}

/// This test's clock: real time moved on by `ADVANCE` milliseconds.
static ADVANCE: AtomicI64 = AtomicI64::new(0);
fn moved_clock() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::milliseconds(ADVANCE.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_refund_ticket_resolved_with_a_short_credit_is_credited_and_flagged() {
    let mock = MockServer::start().await;
    digicert_order(&mock, "1002", "pending", 1).await;
    digicert_cancel(&mock, "1002", 1).await;
    let app = spawn(setup(&mock, chrono::Utc::now)).await;
    let body = json!({
        "provider": "digicert", "intent": "refund", "note": "customer asked",
        "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "1002", "charged_to": "account_balance", "voucher": null}))
    });
    let (status, op) = app.post_operation(KEY, "ledger-1", &body).await;
    assert_eq!(status, 202, "{op}");
    assert_eq!(
        op["refund"],
        json!({"expected": {"amount": "120.00", "currency": "USD"}, "status": "pending",
               "credited": null, "due_by": null, "overdue": false, "mismatch": false})
    );
    let id = op["id"].as_str().unwrap().to_owned();
    let waiting = app.wait_for(&id, &["manual_ticket_open"]).await;
    assert_eq!(waiting["refund"]["status"], "requested", "{waiting:#}");
    let ticket = waiting["steps"][1]["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A credit on a ticket needs its amount and currency, and only a `done` carries one.
    let resolve = format!("/v1/tickets/{ticket}/resolve");
    for (credited, field) in [
        (
            json!({"reference": "CR-1", "currency": "USD"}),
            "credited.amount",
        ),
        (json!({"amount": "1.00"}), "credited.currency"),
        (
            json!({"amount": "1.001", "currency": "USD"}),
            "credited.amount",
        ),
        (
            json!({"amount": "1.00", "currency": "USD", "reference": " "}),
            "credited.reference",
        ),
    ] {
        let (status, p) = app
            .post(&resolve, &json!({"outcome": "done", "credited": credited}))
            .await;
        assert_eq!(
            (status, p["errors"][0]["field"].as_str()),
            (400, Some(field)),
            "{p}"
        );
    }
    let (status, p) = app
        .post(
            &resolve,
            &json!({"outcome": "rejected", "credited": {"amount": "1.00", "currency": "USD"}}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("credited"))
    );

    // Support refunded 100.00 of the 120.00 expected.
    let (status, resolved) = app
        .post(
            &resolve,
            &json!({"outcome": "done", "note": "credit note CR-1",
                    "credited": {"amount": "100.00", "currency": "USD", "reference": "CR-1"}}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    let refund = &resolved["operation"]["refund"];
    assert_eq!(resolved["operation"]["status"], "completed");
    assert_eq!(refund["status"], "credited");
    assert_eq!(refund["mismatch"], true);
    assert_eq!(refund["credited"]["amount"], "100.00");
    assert_eq!(refund["credited"]["reference"], "CR-1");
    assert!(refund["due_by"].is_string(), "{refund}");
    assert_eq!(refund["overdue"], false);
    let credited = app.wait_events(KEY, "refund.credited", 1).await;
    assert_eq!(credited[0]["data"]["refund"]["status"], "credited");
    assert_eq!(credited[0]["data"]["operation"]["id"], id.as_str());
    assert_eq!(app.wait_events(KEY, "refund.mismatch", 1).await.len(), 1);

    // The ledger lists it, filters it, and sums it.
    let (_, list) = app.get("/v1/refunds", Some(KEY)).await;
    assert_eq!(list["refunds"].as_array().unwrap().len(), 1, "{list}");
    let entry = &list["refunds"][0];
    assert_eq!(
        (
            &entry["operation_id"],
            &entry["order_id"],
            &entry["provider"]
        ),
        (&json!(id), &json!("ord-1001"), &json!("digicert"))
    );
    for (query, n) in [
        ("mismatch=true", 1),
        ("mismatch=false", 0),
        ("status=credited", 1),
        ("status=pending", 0),
        ("overdue=true", 0),
        ("provider=digicert", 1),
        ("provider=alibaba", 0),
    ] {
        let (status, page) = app.get(&format!("/v1/refunds?{query}"), Some(KEY)).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["refunds"].as_array().unwrap().len(), n, "{query}");
    }
    let (status, p) = app.get("/v1/refunds?status=refunded", Some(KEY)).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("status"))
    );
    let (_, summary) = app.get("/v1/refunds/summary", Some(KEY)).await;
    assert_eq!(
        summary,
        json!({"by_provider": [{"provider": "digicert", "currency": "USD", "expected": "120.00",
            "credited": "100.00", "outstanding": "0.00", "overdue": 0, "mismatched": 1}]})
    );

    // Final: no more reports. Another tenant sees none of it.
    let report = format!("/v1/operations/{id}/refund");
    let (status, p) = app.post(&report, &json!({"status": "denied"})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("conflict")), "{p}");
    let (status, _) = app
        .post_as(OTHER, &report, &json!({"status": "denied"}))
        .await;
    assert_eq!(status, 404);
    let (_, theirs) = app.get("/v1/refunds", Some(OTHER)).await;
    assert_eq!(theirs["refunds"], json!([]));
    let (_, theirs) = app.get("/v1/refunds/summary", Some(OTHER)).await;
    assert_eq!(theirs["by_provider"], json!([]));
    app.stop().await;
    mock.verify().await;
}

#[tokio::test]
async fn a_refund_not_credited_by_its_due_by_goes_overdue_once_then_is_reported() {
    let mock = MockServer::start().await;
    let sim = Sim::new(Default::default());
    DigiCert(sim.clone()).mount(&mock).await;
    sim.order("1007", "issued");
    let app = spawn(setup(&mock, moved_clock)).await;
    let now = moved_clock();
    let issued = (now - chrono::Duration::days(10)).to_rfc3339();
    let body = json!({
        "provider": "geotrust", "intent": "refund",
        "order": order(json!({"supplier_order_id": "1007", "certificate_id": null,
                              "purchased_at": issued, "issued_at": issued}))
    });
    let (status, op) = app.post_operation(KEY, "ledger-2", &body).await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_str().unwrap().to_owned();
    let done = app.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sim.state("1007"), "revoked");
    // GeoTrust's quote: 2 business days at most, from the revocation.
    let refund = &done["refund"];
    assert_eq!(refund["status"], "requested", "{refund}");
    let due_by: chrono::DateTime<chrono::Utc> = refund["due_by"].as_str().unwrap().parse().unwrap();
    assert!(due_by > now + chrono::Duration::days(1), "{due_by}");
    assert!(due_by <= now + chrono::Duration::days(5), "{due_by}");
    assert!(app.events_of(KEY, "refund.overdue").await.is_empty());

    // The clock passes due_by: overdue, told once however many checks follow.
    ADVANCE.store((due_by - now).num_milliseconds() + 60_000, Ordering::SeqCst);
    let overdue = app.wait_events(KEY, "refund.overdue", 1).await;
    assert_eq!(overdue[0]["data"]["refund"]["overdue"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.events_of(KEY, "refund.overdue").await.len(), 1);
    let (_, late) = app.get("/v1/refunds?overdue=true", Some(KEY)).await;
    assert_eq!(late["refunds"][0]["operation_id"], id.as_str());
    let (_, summary) = app.get("/v1/refunds/summary", Some(KEY)).await;
    assert_eq!(summary["by_provider"][0]["overdue"], 1);
    assert_eq!(summary["by_provider"][0]["outstanding"], "120.00");

    // What the CA did, reported: each field where it belongs.
    let report = format!("/v1/operations/{id}/refund");
    for (body, field) in [
        (json!({"status": "credited", "currency": "USD"}), "amount"),
        (json!({"status": "credited", "amount": "1.00"}), "currency"),
        (json!({"status": "approved", "amount": "1.00"}), "amount"),
        (json!({"status": "refunded"}), "status"),
        (
            json!({"status": "credited", "amount": "1.00", "currency": "USD",
                "at": "2999-01-01T00:00:00Z"}),
            "at",
        ),
    ] {
        let (status, p) = app.post(&report, &body).await;
        assert_eq!(
            (status, p["errors"][0]["field"].as_str()),
            (400, Some(field)),
            "{body}: {p}"
        );
    }
    let (status, p) = app
        .post(
            &report,
            &json!({"status": "credited", "amount": "120.001", "currency": "USD"}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("amount"))
    );
    let (status, p) = app
        .post(
            &report,
            &json!({"status": "credited", "amount": 120, "currency": "USD"}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("amount"))
    );
    let (status, op) = app.post(&report, &json!({"status": "approved"})).await;
    assert_eq!(
        (status, &op["refund"]["status"]),
        (200, &json!("approved")),
        "{op}"
    );
    let (status, op) = app
        .post(
            &report,
            &json!({"status": "credited", "amount": "120", "currency": "USD",
                    "reference": "GT-55", "at": "2026-01-01T00:00:00Z", "note": "seen on the statement"}),
        )
        .await;
    assert_eq!(status, 200, "{op}");
    let refund = &op["refund"];
    assert_eq!(
        (&refund["status"], &refund["overdue"], &refund["mismatch"]),
        (&json!("credited"), &json!(false), &json!(false))
    );
    assert_eq!(
        refund["credited"],
        json!({"amount": "120.00", "currency": "USD", "reference": "GT-55", "at": "2026-01-01T00:00:00Z"})
    );
    assert_eq!(app.wait_events(KEY, "refund.approved", 1).await.len(), 1);
    assert_eq!(app.wait_events(KEY, "refund.credited", 1).await.len(), 1);
    let (_, summary) = app.get("/v1/refunds/summary", Some(KEY)).await;
    assert_eq!(summary["by_provider"][0]["outstanding"], "0.00");
    assert_eq!(summary["by_provider"][0]["overdue"], 0);
    let (_, audit) = app.get("/v1/audit", Some(KEY)).await;
    assert!(audit.to_string().contains("refund.report"), "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn an_operation_that_promises_no_money_has_no_refund_record() {
    let mock = MockServer::start().await;
    let sim = Sim::new(Default::default());
    DigiCert(sim.clone()).mount(&mock).await;
    sim.order("1008", "issued");
    let app = spawn(setup(&mock, chrono::Utc::now)).await;
    let body = json!({"provider": "geotrust", "intent": "revoke",
                      "order": order(json!({"supplier_order_id": "1008", "certificate_id": null}))});
    let (status, op) = app.post_operation(KEY, "ledger-3", &body).await;
    assert_eq!(status, 202, "{op}");
    assert!(op.get("refund").is_none(), "{op}");
    let id = op["id"].as_str().unwrap();
    let (status, p) = app
        .post(
            &format!("/v1/operations/{id}/refund"),
            &json!({"status": "approved"}),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("promises no money"),
        "{p}"
    );
    let (_, list) = app.get("/v1/refunds", Some(KEY)).await;
    assert_eq!(list["refunds"], json!([]));
    app.wait_for(id, &["completed"]).await;
    app.stop().await;
}

#[tokio::test]
async fn a_refund_reported_while_the_operation_runs_is_recorded_and_the_operation_runs_on() {
    let mock = MockServer::start().await;
    // The CA takes a while over the revoke: the report comes while the call is out.
    let sim = Sim::new(common::sim::Behaviour {
        action_delay: std::time::Duration::from_millis(1_500),
        ..Default::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let app = spawn(setup(&mock, chrono::Utc::now)).await;
    for (i, early) in [(0, true), (1, false)] {
        let id = format!("160{i}");
        sim.order(&id, "issued");
        let body = json!({"provider": "digicert", "intent": "refund",
                          "order": order(json!({"supplier_order_id": id, "certificate_id": null}))});
        let (status, op) = app.post_operation(KEY, &format!("live-{i}"), &body).await;
        assert_eq!(status, 202, "{op}");
        let op_id = op["id"].as_str().unwrap().to_owned();
        if !early {
            // Mid-call: the revoke is at the CA, its answer on the way.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while sim.actions(&id).is_empty() {
                assert!(std::time::Instant::now() < deadline);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let (status, reported) = app
            .post(
                &format!("/v1/operations/{op_id}/refund"),
                &json!({"status": "approved", "note": "the CA's e-mail said yes"}),
            )
            .await;
        assert_eq!(status, 200, "{reported}");
        let done = app.wait_for(&op_id, &["completed", "failed"]).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(
            done["refund"]["status"], "approved",
            "the report is kept: {done:#}"
        );
        assert_eq!(sim.actions(&id), ["revoke"], "sent once");
        assert!(
            done["history"]
                .to_string()
                .contains("the CA completed revoke"),
            "the CA's answer was kept: {done:#}"
        );
    }
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("certgate_operations_stalled 0"),
        "{metrics}"
    );
    app.stop().await;
}

/// The money is recorded where it arrives: a Trustwave refund is one platform ticket ("cancel
/// this certificate and refund it"), and the person who got the money resolves it with the
/// credit. A ticket of an operation that promises no money takes none.
#[tokio::test]
async fn a_platform_ticket_that_brings_the_money_takes_the_credit() {
    let mock = MockServer::start().await;
    let app = spawn(setup(&mock, chrono::Utc::now)).await;
    let issued = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let ticket_of = |intent: &'static str, idem: &'static str, order_id: &'static str| {
        let app = &app;
        let issued = issued.clone();
        async move {
            let body = json!({"provider": "trustwave", "intent": intent, "order": order(json!({
                "id": order_id, "supplier_order_id": order_id, "state": "issued",
                "purchased_at": issued, "issued_at": issued}))});
            let (status, op) = app.post_operation(KEY, idem, &body).await;
            assert_eq!(status, 202, "{op}");
            let id = op["id"].as_str().unwrap().to_owned();
            let waiting = app.wait_for(&id, &["manual_ticket_open"]).await;
            assert_eq!(waiting["steps"].as_array().unwrap().len(), 1, "{waiting:#}");
            waiting["steps"][0]["ticket_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let credit = json!({"amount": "120.00", "currency": "USD", "reference": "TW-CR-1"});

    let revoke = ticket_of("revoke", "tw-revoke", "7001").await;
    let (status, p) = app
        .post(
            &format!("/v1/tickets/{revoke}/resolve"),
            &json!({"outcome": "done", "credited": credit}),
        )
        .await;
    assert_eq!(status, 400, "{p}");
    assert_eq!(p["errors"][0]["field"], "credited", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("promises no money"),
        "{p}"
    );

    let refund = ticket_of("refund", "tw-refund", "7002").await;
    let (status, resolved) = app
        .post(
            &format!("/v1/tickets/{refund}/resolve"),
            &json!({"outcome": "done", "note": "support refunded it", "credited": credit}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    let op = &resolved["operation"];
    assert_eq!(op["status"], "completed", "{op:#}");
    assert_eq!(op["refund"]["status"], "credited", "{op:#}");
    assert_eq!(op["refund"]["mismatch"], false);
    assert_eq!(op["refund"]["credited"]["reference"], "TW-CR-1");

    // Resolved done without the credit: support said yes, the money is still to come.
    let approved = ticket_of("refund", "tw-refund-2", "7003").await;
    let (status, resolved) = app
        .post(
            &format!("/v1/tickets/{approved}/resolve"),
            &json!({"outcome": "done"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(
        resolved["operation"]["refund"]["status"], "approved",
        "{resolved:#}"
    );
}
