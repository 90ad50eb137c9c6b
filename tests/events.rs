//! Events never lost: the feed (`GET /v1/events`) and webhook deliveries against receivers
//! like real ones — down for longer than a bad deploy, never coming back, slow, redirecting —
//! and two tenants that never see each other's events.

mod common;

use common::sim::{Behaviour, DigiCert, Sim};
use common::{order, spawn, tenant, Accepted, Receiver, Setup, KEY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use wiremock::MockServer;

fn cancel(id: &str) -> Value {
    json!({"provider": "digicert", "intent": "cancel", "note": "customer asked",
           "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": id}))})
}

/// Cancels `n` pending DigiCert orders as the tenant of `key`; the operations' ids.
async fn cancels(
    app: &common::TestApp,
    sim: &Sim,
    key: &str,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let order = format!("{prefix}{i:03}");
        sim.order(&order, "pending");
        let (status, op) = app.post_operation(key, &order, &cancel(&order)).await;
        assert_eq!(status, 202, "{op}");
        ids.push(op["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        app.wait_for_as(key, id, &["completed"]).await;
    }
    ids
}

/// Every event of the tenant of `key`, following `next_cursor` (pages of 2).
async fn feed(app: &common::TestApp, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/v1/events?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path, Some(key)).await;
        assert_eq!(status, 200, "{page}");
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=2&after={cursor}"),
            None => return events,
        }
    }
}

/// The deliveries of the tenant of `key` in `status`.
async fn deliveries(app: &common::TestApp, key: &str, status: &str) -> Vec<Value> {
    let (code, page) = app
        .get(
            &format!("/v1/webhook-deliveries?status={status}&limit=200"),
            Some(key),
        )
        .await;
    assert_eq!(code, 200, "{page}");
    page["deliveries"].as_array().unwrap().clone()
}

/// Each operation's statuses, in the order the receiver accepted its events.
fn statuses_by_operation(accepted: &[Accepted]) -> BTreeMap<String, Vec<String>> {
    let mut by_op: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in accepted {
        let op = &a.body["data"]["operation"];
        by_op
            .entry(op["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(op["status"].as_str().unwrap().to_owned());
    }
    by_op
}

#[tokio::test]
async fn a_receiver_down_past_the_old_give_up_gets_every_event_once_in_order_and_signed() {
    let ca = MockServer::start().await;
    // The old gateway gave a delivery up after 12 attempts: fail 20 (the suite's number), and
    // spread them over six operations' first events.
    let receiver = Receiver::failing_first(20);
    let (_server, url) = receiver.serve().await;
    let sim = Sim::new(Behaviour::default());
    DigiCert(sim.clone()).mount(&ca).await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&ca.uri()),
        tenants: vec![tenant("acme", "acme-key", Some((&url, "whsec-acme")))],
        ..Setup::default()
    })
    .await;
    let ops = cancels(&app, &sim, "acme-key", "11", 6).await;
    let events = feed(&app, "acme-key").await;
    assert_eq!(
        events.len(),
        18,
        "queued, running, completed of six operations"
    );
    let accepted = receiver
        .wait_for(events.len(), Duration::from_secs(30))
        .await;
    assert!(receiver.refused() >= 20);
    // Once each, signed, named by their event id.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted_ids: Vec<_> = receiver
        .accepted()
        .iter()
        .map(|a| a.event_id.clone().unwrap())
        .collect();
    assert_eq!(accepted_ids.len(), events.len(), "no event delivered twice");
    let unique: HashSet<_> = accepted_ids.iter().collect();
    assert_eq!(unique.len(), events.len());
    for a in &accepted {
        assert!(a.signed_with("whsec-acme"), "{}", a.raw);
        assert_eq!(a.body["id"].as_str(), a.event_id.as_deref());
    }
    // In order per operation, and what the feed says.
    let by_op = statuses_by_operation(&accepted);
    assert_eq!(by_op.len(), 6);
    for id in &ops {
        assert_eq!(by_op[id], ["queued", "running", "completed"], "{id}");
    }
    let feed_ids: HashSet<_> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(feed_ids, accepted_ids.into_iter().collect::<HashSet<_>>());
    for (e, a) in events.iter().zip(&accepted) {
        assert_eq!(e["type"], "operation.status_changed");
        assert_eq!(e["tenant"], "acme");
        assert!(e["created_at"].is_string() && a.body["created_at"].is_string());
    }
    // The deliveries API agrees: all delivered, the first ones after several attempts.
    let delivered = deliveries(&app, "acme-key", "delivered").await;
    assert_eq!(delivered.len(), events.len());
    assert!(deliveries(&app, "acme-key", "pending").await.is_empty());
    let retried: Vec<_> = delivered
        .iter()
        .filter(|d| d["attempts"].as_i64().unwrap() > 1)
        .collect();
    assert!(!retried.is_empty());
    assert_eq!(retried[0]["last_status_code"], 204);
    assert!(delivered
        .iter()
        .all(|d| d["next_attempt_at"].is_null() && d["delivered_at"].is_string()));
    app.stop().await;
}

/// The gateway's clock, moved on by the test (this binary's other tests run on the real one).
static SKEW_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn skewed() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        + chrono::Duration::milliseconds(SKEW_MS.load(std::sync::atomic::Ordering::SeqCst))
}

#[tokio::test]
async fn a_receiver_that_never_comes_back_leaves_dead_deliveries_that_replay_in_order() {
    let ca = MockServer::start().await;
    let receiver = Receiver::default();
    receiver.set_down(true);
    let (_server, url) = receiver.serve().await;
    let sim = Sim::new(Behaviour::default());
    DigiCert(sim.clone()).mount(&ca).await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&ca.uri()),
        tenants: vec![tenant("gone", "gone-key", Some((&url, "whsec-gone")))],
        webhooks: certgate_server::config::WebhooksConfig {
            max_age_hours: 1,
            ..common::fast_webhooks()
        },
        clock: skewed,
        ..Setup::default()
    })
    .await;
    let ops = cancels(&app, &sim, "gone-key", "12", 3).await;
    let events = feed(&app, "gone-key").await;
    assert_eq!(events.len(), 9);
    // Failing, but not given up before max_age.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = deliveries(&app, "gone-key", "pending").await;
    assert_eq!(pending.len(), 9, "{pending:#?}");
    assert!(deliveries(&app, "gone-key", "dead").await.is_empty());
    assert_eq!(pending[0]["last_status_code"], 503);
    assert!(pending[0]["last_error"].as_str().unwrap().contains("503"));
    assert!(pending[0]["next_attempt_at"].is_string());
    // An hour and a bit later, every one is dead: the head of each operation's events first,
    // then the rest behind it, each after one attempt past its expiry.
    SKEW_MS.store(3_700_000, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while deliveries(&app, "gone-key", "dead").await.len() < 9 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:#?}",
            deliveries(&app, "gone-key", "pending").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, metrics) = metrics(&app).await;
    assert!(
        metrics.contains(r#"certgate_webhook_dead_deliveries{tenant="gone"} 9"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"certgate_webhook_pending_deliveries{tenant="gone"} 0"#),
        "{metrics}"
    );
    assert!(receiver.accepted().is_empty());
    // The receiver is back; the replay delivers every event, in order per operation.
    receiver.set_down(false);
    let (status, body) = app
        .post_as(
            "gone-key",
            "/v1/webhook-deliveries/redeliver",
            &json!({"status": "dead"}),
        )
        .await;
    assert_eq!((status, &body), (202, &json!({"requeued": 9})));
    let accepted = receiver.wait_for(9, Duration::from_secs(20)).await;
    let by_op = statuses_by_operation(&accepted);
    for id in &ops {
        assert_eq!(by_op[id], ["queued", "running", "completed"], "{id}");
    }
    assert!(accepted.iter().all(|a| a.signed_with("whsec-gone")));
    // One delivery replayed by id: the same event again, for the receiver to de-duplicate.
    let delivered = deliveries(&app, "gone-key", "delivered").await;
    let first = &delivered[0];
    let (status, again) = app
        .post_as(
            "gone-key",
            &format!(
                "/v1/webhook-deliveries/{}/redeliver",
                first["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["status"], "pending");
    let accepted = receiver.wait_for(10, Duration::from_secs(10)).await;
    assert_eq!(accepted[9].event_id.as_deref(), first["event_id"].as_str());
    // Only dead ones replay together.
    let (status, problem) = app
        .post_as(
            "gone-key",
            "/v1/webhook-deliveries/redeliver",
            &json!({"status": "delivered"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(problem["errors"][0]["field"], "status");
    app.stop().await;
}

async fn metrics(app: &common::TestApp) -> (u16, String) {
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn tenants_see_only_their_own_events_and_deliveries() {
    let ca = MockServer::start().await;
    let (a_hook, b_hook) = (Receiver::default(), Receiver::default());
    let (_a, a_url) = a_hook.serve().await;
    let (_b, b_url) = b_hook.serve().await;
    let sim = Sim::new(Behaviour::default());
    DigiCert(sim.clone()).mount(&ca).await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&ca.uri()),
        tenants: vec![
            tenant("iso-a", "iso-a-key", Some((&a_url, "whsec-a"))),
            tenant("iso-b", "iso-b-key", Some((&b_url, "whsec-b"))),
        ],
        ..Setup::default()
    })
    .await;
    cancels(&app, &sim, "iso-a-key", "13", 1).await;
    cancels(&app, &sim, "iso-b-key", "14", 1).await;
    // The default tenant has no webhook: its events are in its feed all the same.
    cancels(&app, &sim, KEY, "15", 1).await;
    let a = feed(&app, "iso-a-key").await;
    let b = feed(&app, "iso-b-key").await;
    assert_eq!((a.len(), b.len(), feed(&app, KEY).await.len()), (3, 3, 3));
    assert!(a.iter().all(|e| e["tenant"] == "iso-a") && b.iter().all(|e| e["tenant"] == "iso-b"));
    let b_event = b[0]["id"].as_str().unwrap();
    let (status, own) = app
        .get(&format!("/v1/events/{b_event}"), Some("iso-b-key"))
        .await;
    assert_eq!((status, &own), (200, &b[0]));
    let (status, _) = app
        .get(&format!("/v1/events/{b_event}"), Some("iso-a-key"))
        .await;
    assert_eq!(status, 404);
    // Another tenant's event is no cursor of this one: as unknown as a missing event.
    let (status, problem) = app
        .get(&format!("/v1/events?after={b_event}"), Some("iso-a-key"))
        .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    let (status, problem) = app.get("/v1/events?after=evt_1", Some("iso-a-key")).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (400, Some("after"))
    );
    a_hook.wait_for(3, Duration::from_secs(10)).await;
    b_hook.wait_for(3, Duration::from_secs(10)).await;
    let b_delivery = deliveries(&app, "iso-b-key", "delivered").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/v1/webhook-deliveries/{b_delivery}"),
        "/v1/webhook-deliveries/dlv_999999".into(),
        "/v1/webhook-deliveries/nope".into(),
    ] {
        let (status, _) = app.get(&path, Some("iso-a-key")).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = app
        .post_as(
            "iso-a-key",
            &format!("/v1/webhook-deliveries/{b_delivery}/redeliver"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(
            &format!("/v1/webhook-deliveries/{b_delivery}"),
            Some("iso-b-key"),
        )
        .await;
    assert_eq!(status, 200);
    // The feed's filters and their errors.
    let (_, changed) = app
        .get(
            "/v1/events?type=operation.status_changed",
            Some("iso-a-key"),
        )
        .await;
    assert_eq!(changed["events"].as_array().unwrap().len(), 3);
    let (_, tickets) = app
        .get("/v1/events?type=ticket.opened", Some("iso-a-key"))
        .await;
    assert!(tickets["events"].as_array().unwrap().is_empty());
    for (path, field) in [
        ("/v1/events?type=operation.created", "type"),
        ("/v1/events?limit=0", "limit"),
        ("/v1/events?since=1", "since"),
        ("/v1/webhook-deliveries?status=lost", "status"),
        ("/v1/webhook-deliveries?cursor=42", "cursor"),
    ] {
        let (status, problem) = app.get(path, Some("iso-a-key")).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (400, Some(field)),
            "{path}: {problem}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_holds_back_only_its_own_tenant_and_redirects_are_not_followed() {
    let ca = MockServer::start().await;
    let slow = Receiver::slow(Duration::from_secs(3));
    let (_slow, slow_url) = slow.serve().await;
    let fast = Receiver::default();
    let (_fast, fast_url) = fast.serve().await;
    // A receiver that redirects: the gateway must not follow it to where it points.
    let moved = MockServer::start().await;
    let target = Receiver::default();
    wiremock::Mock::given(wiremock::matchers::path("/hooks"))
        .respond_with(
            wiremock::ResponseTemplate::new(307)
                .insert_header("location", format!("{}/elsewhere", moved.uri())),
        )
        .mount(&moved)
        .await;
    wiremock::Mock::given(wiremock::matchers::path("/elsewhere"))
        .respond_with(target.clone())
        .mount(&moved)
        .await;
    let sim = Sim::new(Behaviour::default());
    DigiCert(sim.clone()).mount(&ca).await;
    let setup = Setup {
        providers_toml: common::providers_toml_at(&ca.uri()),
        tenants: vec![
            tenant("slow", "slow-key", Some((&slow_url, "whsec-s"))),
            tenant("fast", "fast-key", Some((&fast_url, "whsec-f"))),
            tenant(
                "moved",
                "moved-key",
                Some((&format!("{}/hooks", moved.uri()), "whsec-m")),
            ),
        ],
        webhooks: certgate_server::config::WebhooksConfig {
            timeout_ms: 1_000,
            ..common::fast_webhooks()
        },
        ..Setup::default()
    };
    let app = spawn(setup).await;
    cancels(&app, &sim, "slow-key", "16", 8).await;
    let started = std::time::Instant::now();
    cancels(&app, &sim, "fast-key", "17", 4).await;
    cancels(&app, &sim, "moved-key", "18", 1).await;
    fast.wait_for(12, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The slow receiver's attempts time out and are retried, never lost.
    let pending = deliveries(&app, "slow-key", "pending").await;
    assert_eq!(pending.len(), 24);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tried = deliveries(&app, "slow-key", "pending").await;
        if let Some(d) = tried.iter().find(|d| d["last_error"].is_string()) {
            assert!(
                d["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("no answer within 1000 ms"),
                "{d}"
            );
            assert!(d["last_status_code"].is_null());
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let moved_pending = deliveries(&app, "moved-key", "pending").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut first = moved_pending[0].clone();
    while first["last_status_code"].is_null() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
        first = deliveries(&app, "moved-key", "pending").await[0].clone();
    }
    assert_eq!(first["last_status_code"], 307);
    assert!(target.accepted().is_empty(), "the redirect was followed");
    app.stop().await;
}

#[tokio::test]
async fn the_helpdesk_push_survives_a_helpdesk_that_is_down() {
    let desk = Receiver::failing_first(5);
    let (_desk, desk_url) = desk.serve().await;
    let app = spawn(Setup {
        helpdesk: Some(certgate_engine::Helpdesk {
            url: desk_url,
            secret: Some("desk-secret".into()),
        }),
        ..Setup::default()
    })
    .await;
    // Sectigo's shipped mode is manual: revoking an issued order is a ticket.
    let (status, op) = app
        .post_operation(
            KEY,
            "desk-1",
            &json!({"provider": "sectigo", "intent": "revoke", "order": order(json!({}))}),
        )
        .await;
    assert_eq!(status, 202, "{op}");
    app.wait_for(op["id"].as_str().unwrap(), &["manual_ticket_open"])
        .await;
    let pushed = desk.wait_for(1, Duration::from_secs(20)).await;
    assert!(pushed[0].signed_with("desk-secret"));
    assert!(
        pushed[0].body["id"].as_str().unwrap().starts_with("tk"),
        "{}",
        pushed[0].raw
    );
    let events = feed(&app, KEY).await;
    let opened: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "ticket.opened")
        .collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(pushed[0].event_id.as_deref(), opened[0]["id"].as_str());
    let all = deliveries(&app, KEY, "delivered").await;
    assert_eq!(
        all.len(),
        1,
        "the default tenant has no webhook: only the helpdesk push"
    );
    assert_eq!(all[0]["target"], "helpdesk");
    assert!(all[0]["attempts"].as_i64().unwrap() >= 2);
    app.stop().await;
}
