//! End to end: watched orders. certgate keeps a reseller's orders, lists them soonest
//! `submit_by` first, tells the backend once when a window is about to close and once when it
//! closed unused (on a simulated clock), and links a refund operation to its order, whose facts
//! follow the operation's outcome.

mod common;

use chrono::{DateTime, Duration as Span, Utc};
use common::sim::{DigiCert, Sim};
use common::{order, spawn, tenant, Receiver, Setup, KEY};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use wiremock::MockServer;

const OTHER: &str = "watch-other-key-0123";

fn fast_watch() -> certgate_server::config::WatchConfig {
    certgate_server::config::WatchConfig {
        poll_ms: 50,
        ..Default::default()
    }
}

/// The DigiCert order id (digits) of the reseller's order `id`.
fn digicert_id(id: &str) -> String {
    let h = id
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    (h % 1_000_000_000).to_string()
}

/// A GeoTrust order issued `days_ago` days before `now`: its refund window closes 30 days
/// after issue.
fn geotrust(id: &str, now: DateTime<Utc>, days_ago: i64) -> Value {
    let issued = (now - Span::days(days_ago)).to_rfc3339();
    json!({"provider": "geotrust", "order": order(json!({
        "id": id, "supplier_order_id": digicert_id(id), "certificate_id": null,
        "purchased_at": issued, "issued_at": issued}))})
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn watched_orders_are_kept_listed_soonest_first_and_isolated() {
    let app = spawn(Setup {
        tenants: vec![tenant("watch-other", OTHER, None)],
        watch: fast_watch(),
        ..Setup::default()
    })
    .await;
    let now = Utc::now();
    let put = |id: &str, body: Value| {
        let path = format!("/v1/orders/{id}");
        let app = &app;
        async move { app.request(Method::PUT, KEY, &path, Some(&body)).await }
    };
    let (status, a) = put("ord-a", geotrust("ord-a", now, 20)).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["provider"], "geotrust");
    assert_eq!(a["quote"]["allowed"], true);
    let deadline: DateTime<Utc> = a["watch"]["deadline"].as_str().unwrap().parse().unwrap();
    assert!(
        (deadline - (now + Span::days(10))).num_seconds().abs() <= 1,
        "{a:#}"
    );
    assert_eq!(a["watch"]["submit_by"], a["quote"]["submit_by"]);
    assert_eq!(a["watch"]["notified"], json!([]));
    let (status, again) = put("ord-a", geotrust("ord-a", now, 20)).await;
    assert_eq!(status, 200, "{again}");

    // Bad input names its field; an unknown provider is a 404.
    let (status, p) = put("ord-x", geotrust("ord-a", now, 20)).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("order.id"))
    );
    let mut unknown = geotrust("ord-x", now, 20);
    unknown["provider"] = json!("nobody");
    assert_eq!(put("ord-x", unknown).await.0, 404);
    let mut bad = geotrust("ord-x", now, 20);
    bad["order"]["paid"]["amount"] = json!(120);
    let (status, p) = put("ord-x", bad).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("order.paid.amount")),
        "{p}"
    );
    let (status, p) = put("ord-x", json!({"provider": "geotrust"})).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("order"))
    );

    // More orders: b closes later, c sooner, d (pending) has no window.
    put("ord-b", geotrust("ord-b", now, 10)).await;
    put("ord-c", geotrust("ord-c", now, 25)).await;
    let mut pending = geotrust("ord-d", now, 1);
    pending["order"]["state"] = json!("pending");
    pending["order"]["issued_at"] = Value::Null;
    let (status, d) = put("ord-d", pending).await;
    assert_eq!(status, 201, "{d}");
    let (_, all) = app.get("/v1/orders", Some(KEY)).await;
    assert_eq!(ids(&all), ["ord-c", "ord-a", "ord-b", "ord-d"], "{all:#}");
    assert!(all["orders"][0]["quote"].is_object());
    let (_, first) = app.get("/v1/orders?limit=3", Some(KEY)).await;
    assert_eq!(ids(&first), ["ord-c", "ord-a", "ord-b"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/v1/orders?limit=3&cursor={cursor}"), Some(KEY))
        .await;
    assert_eq!(ids(&rest), ["ord-d"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, soon) = app.get("/v1/orders?closing_within_days=7", Some(KEY)).await;
    assert_eq!(ids(&soon), ["ord-c"]);
    let (_, fortnight) = app
        .get("/v1/orders?closing_within_days=15", Some(KEY))
        .await;
    assert_eq!(ids(&fortnight), ["ord-c", "ord-a"]);
    let (_, none) = app.get("/v1/orders?provider=digicert", Some(KEY)).await;
    assert_eq!(ids(&none), Vec::<String>::new());
    for bad in [
        "cursor=zz",
        "closing_within_days=-1",
        "closing_within_days=4000",
        "limit=0",
    ] {
        let (status, p) = app.get(&format!("/v1/orders?{bad}"), Some(KEY)).await;
        assert_eq!(status, 400, "{bad}: {p}");
    }

    // Another tenant has its own orders: it sees none of these.
    let (status, _) = app.get("/v1/orders/ord-a", Some(OTHER)).await;
    assert_eq!(status, 404);
    let (_, theirs) = app.get("/v1/orders", Some(OTHER)).await;
    assert_eq!(theirs["orders"], json!([]));
    let (status, _) = app
        .request(Method::DELETE, OTHER, "/v1/orders/ord-a", None)
        .await;
    assert_eq!(status, 404);
    // The same CA order, in the shared DigiCert account, is the first watcher's.
    let theirs = geotrust("ord-a", now, 3);
    let other_put = || app.request(Method::PUT, OTHER, "/v1/orders/ord-a", Some(&theirs));
    let (status, problem) = other_put().await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("order_owned_elsewhere")),
        "{problem}"
    );
    assert!(!problem.to_string().contains("default"), "{problem}");

    let (status, got) = app.get("/v1/orders/ord-a", Some(KEY)).await;
    assert_eq!((status, &got["order"]["id"]), (200, &json!("ord-a")));
    let (status, _) = app
        .request(Method::DELETE, KEY, "/v1/orders/ord-a", None)
        .await;
    assert_eq!(status, 204);
    // Watched only, never operated on: the delete let go of it.
    let (status, _) = other_put().await;
    assert_eq!(status, 201);
    assert_eq!(app.get("/v1/orders/ord-a", Some(KEY)).await.0, 404);
    let (status, _) = app
        .request(Method::DELETE, KEY, "/v1/orders/ord-a", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.get("/v1/orders/ord-a", Some(OTHER)).await.0, 200);
    app.stop().await;
}

static ADVANCE: AtomicI64 = AtomicI64::new(0);
fn moved_clock() -> DateTime<Utc> {
    Utc::now() + Span::milliseconds(ADVANCE.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_window_is_told_closing_once_and_closed_once_as_the_clock_crosses_it() {
    const HOOKED: &str = "watch-hooked-key-0123";
    let receiver = Receiver::default();
    let (_server, url) = receiver.serve().await;
    let app = spawn(Setup {
        tenants: vec![tenant("watch-hooked", HOOKED, Some((&url, "whsec-watch")))],
        watch: fast_watch(),
        clock: moved_clock,
        ..Setup::default()
    })
    .await;
    let now = moved_clock();
    let (status, w) = app
        .request(
            Method::PUT,
            HOOKED,
            "/v1/orders/ord-w",
            Some(&geotrust("ord-w", now, 20)),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    let submit_by: DateTime<Utc> = w["watch"]["submit_by"].as_str().unwrap().parse().unwrap();
    let deadline: DateTime<Utc> = w["watch"]["deadline"].as_str().unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app
        .events_of(HOOKED, "order.refund_window_closing")
        .await
        .is_empty());

    // A day before submit_by: inside the three business days' notice.
    ADVANCE.store(
        (submit_by - now - Span::days(1)).num_milliseconds(),
        Ordering::SeqCst,
    );
    let closing = app
        .wait_events(HOOKED, "order.refund_window_closing", 1)
        .await;
    let told = &closing[0]["data"]["order"];
    assert_eq!(told["order"]["id"], "ord-w");
    assert_eq!(told["watch"]["notified"], json!(["closing"]));
    assert_eq!(told["watch"]["submit_by"], w["watch"]["submit_by"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.events_of(HOOKED, "order.refund_window_closing")
            .await
            .len(),
        1
    );
    assert!(app
        .events_of(HOOKED, "order.refund_window_closed")
        .await
        .is_empty());

    // An hour past the deadline, with no refund asked: closed, once.
    ADVANCE.store(
        (deadline - now + Span::hours(1)).num_milliseconds(),
        Ordering::SeqCst,
    );
    let closed = app
        .wait_events(HOOKED, "order.refund_window_closed", 1)
        .await;
    assert_eq!(
        closed[0]["data"]["order"]["watch"]["deadline"],
        w["watch"]["deadline"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.events_of(HOOKED, "order.refund_window_closed")
            .await
            .len(),
        1
    );
    let (_, got) = app.get("/v1/orders/ord-w", Some(HOOKED)).await;
    assert_eq!(got["watch"]["notified"], json!(["closing", "closed"]));
    assert_eq!(got["quote"]["allowed"], false, "past its window: {got:#}");
    // The webhook got both, signed.
    let hooks = receiver.wait_for(2, Duration::from_secs(10)).await;
    let kinds: Vec<&str> = hooks
        .iter()
        .map(|h| h.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["order.refund_window_closing", "order.refund_window_closed"]
    );
    assert!(hooks.iter().all(|h| h.signed_with("whsec-watch")));
    app.stop().await;
}

static ADVANCE_LINKED: AtomicI64 = AtomicI64::new(0);
fn linked_clock() -> DateTime<Utc> {
    Utc::now() + Span::milliseconds(ADVANCE_LINKED.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_refund_operation_links_to_its_watched_order_whose_facts_follow() {
    let mock = MockServer::start().await;
    let sim = Sim::new(Default::default());
    DigiCert(sim.clone()).mount(&mock).await;
    sim.order(&digicert_id("ord-l"), "issued");
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        watch: fast_watch(),
        clock: linked_clock,
        ..Setup::default()
    })
    .await;
    let now = linked_clock();
    let watched = geotrust("ord-l", now, 20);
    let (status, _) = app
        .request(Method::PUT, KEY, "/v1/orders/ord-l", Some(&watched))
        .await;
    assert_eq!(status, 201);
    let body = json!({"provider": "geotrust", "intent": "refund", "order": watched["order"]});
    let (status, op) = app.post_operation(KEY, "watch-l", &body).await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_str().unwrap();
    let done = app.wait_for(id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let (_, got) = app.get("/v1/orders/ord-l", Some(KEY)).await;
    assert_eq!(got["watch"]["operation_id"], id);
    assert_eq!(got["watch"]["operation_status"], "completed");
    assert_eq!(got["order"]["state"], "revoked", "{got:#}");
    assert!(got["order"]["revoked_at"].is_string());

    // Past its deadline: a refund was asked, so nothing is told.
    let deadline: DateTime<Utc> = got["watch"]["deadline"].as_str().unwrap().parse().unwrap();
    ADVANCE_LINKED.store(
        (deadline - now + Span::hours(1)).num_milliseconds(),
        Ordering::SeqCst,
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    for kind in ["order.refund_window_closing", "order.refund_window_closed"] {
        assert!(app.events_of(KEY, kind).await.is_empty(), "{kind}");
    }
    app.stop().await;
}
