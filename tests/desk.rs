//! End to end: the support desk over HTTP as a browser speaks it (forms, cookies, redirects):
//! login, the session cookie's attributes, the form token on every POST, tenant isolation, a
//! ticket resolved with a credit, and who did it in the audit log. The same in a real browser:
//! `tests/desk_browser.rs`.

mod common;

use certgate_core::config::SecretRef;
use certgate_server::config::DeskUserConfig;
use common::{order, spawn, tenant, Setup, TestApp, KEY};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};

const OTHER: &str = "desk-other-tenant-key";
const ALICE: &str = "alice-desk-key-0123456789";
const BOB: &str = "bob-desk-key-0123456789";

fn desk_user(name: &str, tenants: &[&str], key: &str) -> DeskUserConfig {
    let var = format!("CERTGATE_TEST_DESK_{}", name.to_uppercase());
    std::env::set_var(&var, key);
    DeskUserConfig {
        name: name.into(),
        tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
        key: SecretRef::parse(&format!("${{{var}}}")).unwrap(),
    }
}

/// A DigiCert refund of an account-balance order, by hand: a Sectigo refund is a manual ticket
/// from the start (its default mode), so no CA is needed.
async fn refund_ticket(app: &TestApp, key: &str, idem: &str, order_id: &str) -> (String, String) {
    let body = json!({"provider": "sectigo", "intent": "refund", "order": order(json!({
        "id": order_id, "supplier_order_id": format!("SEC-{order_id}"),
        "purchased_at": (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339(),
        "issued_at": (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339()}))});
    let (status, op) = app.post_operation(key, idem, &body).await;
    assert_eq!(status, 202, "{op}");
    let id = op["id"].as_str().unwrap().to_owned();
    let waiting = app.wait_for_as(key, &id, &["manual_ticket_open"]).await;
    (
        id,
        waiting["steps"][0]["ticket_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The login page's form token and the cookie that carries it (`name=value`).
async fn login_form(app: &TestApp) -> (String, String) {
    let res = browser()
        .get(format!("{}/desk/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let token = csrf(&res.text().await.unwrap());
    (token, cookie)
}

/// Logs in with `key` from the login form: the session cookie (`name=value`) and the
/// Set-Cookie line.
async fn login(app: &TestApp, key: &str, https: bool) -> (u16, Option<(String, String)>) {
    let (token, form_cookie) = login_form(app).await;
    let mut req = browser()
        .post(format!("{}/desk/login", app.base))
        .header(COOKIE, form_cookie)
        .form(&[("key", key), ("csrf", &token)]);
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|line| {
            line.starts_with("certgate_desk=") || line.starts_with("__Host-certgate_desk=")
        })
        .filter(|_| status == 303)
        .map(|line| (line.split(';').next().unwrap().to_owned(), line));
    (status, cookie)
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let res = browser()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    if res.status() == 200 {
        for (name, value) in [("x-frame-options", "DENY"), ("cache-control", "no-store")] {
            assert_eq!(res.headers()[name], value, "{path}");
        }
    }
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The form token on a page.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[at..at + 32].to_owned()
}

async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let res = browser()
        .post(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.text().await.unwrap(), location)
}

#[tokio::test]
async fn a_desk_user_logs_in_sees_only_their_tenants_and_resolves_with_a_form_token() {
    let app = spawn(Setup {
        tenants: vec![tenant("desk-other", OTHER, None)],
        desk_users: vec![
            desk_user("alice", &["default"], ALICE),
            desk_user("bob", &["desk-other"], BOB),
        ],
        ..Setup::default()
    })
    .await;
    let (mine_op, mine) = refund_ticket(&app, KEY, "desk-1", "ord-mine").await;
    let (_, theirs) = refund_ticket(&app, OTHER, "desk-2", "ord-theirs").await;

    // Not logged in: to the login page. A wrong key is refused.
    let res = browser()
        .get(format!("{}/desk", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/desk/login");
    let (status, cookie) = login(&app, "not-a-key", false).await;
    assert_eq!((status, cookie), (401, None));
    let (status, _) = login(&app, KEY, false).await;
    assert_eq!(status, 401, "an API key is not a desk key");

    // The session cookie: HttpOnly, SameSite=Strict, on /desk; Secure behind TLS.
    let (status, cookie) = login(&app, ALICE, false).await;
    assert_eq!(status, 303);
    let (cookie, line) = cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/desk"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "{line}");
    let (_, secure) = login(&app, ALICE, true).await;
    assert!(secure.unwrap().1.contains("; Secure"));

    // Alice's queue: her tenant's ticket, not the other's.
    let (status, queue) = page(&app, &cookie, "/desk").await;
    assert_eq!(status, 200);
    assert!(queue.contains("ord-mine"), "{queue}");
    assert!(!queue.contains("ord-theirs"));
    assert!(queue.contains("Soonest deadline"));
    let (status, _) = page(&app, &cookie, &format!("/desk/tickets/{theirs}")).await;
    assert_eq!(status, 404);
    let (status, ticket) = page(&app, &cookie, &format!("/desk/tickets/{mine}")).await;
    assert_eq!(status, 200);
    assert!(
        ticket.contains("SEC-ord-mine") && ticket.contains("data-copy"),
        "{ticket}"
    );
    assert!(ticket.contains("<label for=\"note\">"), "labelled fields");
    let token = csrf(&ticket);

    // Every POST carries the session's form token.
    let resolve = format!("/desk/tickets/{mine}/resolve");
    let (status, _, _) = post_form(&app, &cookie, &resolve, &[("outcome", "done")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &resolve,
        &[("outcome", "done"), ("csrf", "0000")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/desk/tickets/{theirs}/resolve"),
        &[("outcome", "done"), ("csrf", &token)],
    )
    .await;
    assert_eq!(status, 404);
    // The ticket brings the money (one ticket: cancel and refund): the page offers the credit
    // field. A credit on a rejection is refused, on the page.
    assert!(ticket.contains("name=\"credited_amount\""), "{ticket}");
    let (status, body, _) = post_form(
        &app,
        &cookie,
        &resolve,
        &[
            ("outcome", "rejected"),
            ("csrf", &token),
            ("credited_amount", "10.00"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("only a ticket resolved"), "{body}");
    let (status, _, location) = post_form(
        &app,
        &cookie,
        &resolve,
        &[
            ("outcome", "done"),
            ("csrf", &token),
            ("note", "done by phone, ref 88"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(&*format!("/desk/tickets/{mine}")))
    );
    let done = app.wait_for(&mine_op, &["completed"]).await;
    assert!(done["history"]
        .to_string()
        .contains("done by phone, ref 88"));
    let (_, audit) = app.get("/v1/audit", Some(KEY)).await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "ticket.resolve")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(entry["actor"], "desk:alice", "{audit}");
    // Alice's logins are in her tenant's audit log, with where they came from.
    let login = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "desk.login" && e["actor"] == "desk:alice")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(login["outcome"], "ok", "{audit}");
    assert_eq!(login["detail"], "from 127.0.0.1", "{audit}");
    // The failed one, with no tenant to name, is in the gateway's own.
    let failed = app
        .state
        .store
        .list_audit(&certgate_core::TenantId::from(""), None, 100)
        .await
        .unwrap();
    assert!(
        failed
            .iter()
            .any(|e| e.action == "desk.login" && e.outcome == "failed"),
        "{failed:?}"
    );

    // A desk key opens no API; logging out ends the session.
    let (status, _) = app.get("/v1/operations", Some(ALICE)).await;
    assert_eq!(status, 401);
    let (status, _, location) = post_form(&app, &cookie, "/desk/logout", &[("csrf", &token)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/desk/login")));
    let (status, _) = page(&app, &cookie, "/desk").await;
    assert_eq!(status, 303);
    app.stop().await;
}

/// The queue is oldest first for real: 230 open tickets, the soonest `submit_by` first, 50 to
/// a page, every one reachable, none twice.
#[tokio::test]
async fn the_queue_pages_every_open_ticket_soonest_due_first() {
    let app = spawn(Setup {
        desk_users: vec![desk_user(
            "carol",
            &["default"],
            "carol-desk-key-0123456789",
        )],
        ..Setup::default()
    })
    .await;
    let now = chrono::Utc::now();
    let mut due = std::collections::HashMap::new();
    let mut ids = Vec::new();
    for i in 0..230u32 {
        // Issued 1 day to 10.6 days ago, each a different hour, created in another order.
        let issued = now - chrono::Duration::hours(24 + i64::from(i * 37 % 230));
        let order_id = format!("q{i:03}");
        let body = json!({"provider": "sectigo", "intent": "refund", "order": order(json!({
            "id": order_id, "supplier_order_id": format!("{}", 5000 + i),
            "purchased_at": (issued - chrono::Duration::hours(1)).to_rfc3339(),
            "issued_at": issued.to_rfc3339()}))});
        let (status, op) = app.post_operation(KEY, &format!("queue-{i}"), &body).await;
        assert_eq!(status, 202, "{op}");
        let by = op["quote"]["submit_by"].as_str().unwrap().to_owned();
        due.insert(order_id, chrono::DateTime::parse_from_rfc3339(&by).unwrap());
        ids.push(op["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        app.wait_for(id, &["manual_ticket_open"]).await;
    }
    let (_, cookie) = login(&app, "carol-desk-key-0123456789", false).await;
    let (cookie, _) = cookie.unwrap();
    let order_ids = |html: &str| -> Vec<String> {
        html.split(" for order ")
            .skip(1)
            .map(|rest| rest.split('<').next().unwrap().trim().to_owned())
            .collect()
    };
    let mut seen = Vec::new();
    let mut path = "/desk".to_owned();
    for n in 0..5 {
        let (status, html) = page(&app, &cookie, &path).await;
        assert_eq!(status, 200);
        let shown = if n < 4 { 50 } else { 30 };
        let (first, last) = (50 * n + 1, 50 * n + shown);
        assert!(
            html.contains(&format!("230 open, showing {first}–{last}")),
            "page {}: {html}",
            n + 1
        );
        let here = order_ids(&html);
        assert_eq!(here.len(), shown, "page {}", n + 1);
        seen.extend(here);
        match html
            .split("rel=\"next\"")
            .next()
            .and_then(|h| h.rsplit("href=\"").next())
        {
            Some(next) if n < 4 => path = next.split('"').next().unwrap().replace("&amp;", "&"),
            _ => assert!(!html.contains("rel=\"next\""), "no page after the last"),
        }
    }
    // A repeated parameter: the first counts (a page, never a bare 400).
    let (status, html) = page(&app, &cookie, "/desk?page=2&page=3&status=open").await;
    assert_eq!(status, 200);
    assert!(html.contains("230 open, showing 51–100"), "{html}");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 230, "every ticket once");
    let dues: Vec<_> = seen.iter().map(|o| due[o]).collect();
    assert!(
        dues.windows(2).all(|w| w[0] <= w[1]),
        "the soonest submit_by first: {seen:?}"
    );
    let soonest = dues.iter().min().unwrap();
    assert_eq!(&dues[0], soonest);
}

/// The desk's pages allow no inline script or style but their own (by hash), the login form
/// carries a token, secure cookies are `__Host-` ones with HSTS, and a session ends after the
/// idle time.
#[tokio::test]
async fn the_desk_resists_forged_logins_inline_code_and_idle_sessions() {
    let app = spawn(Setup {
        desk_users: vec![desk_user("dora", &["default"], "dora-desk-key-0123456789")],
        desk: certgate_server::config::DeskConfig {
            secure_cookies: true,
            idle_minutes: 1,
        },
        clock: moved_clock,
        ..Setup::default()
    })
    .await;
    let res = browser()
        .get(format!("{}/desk/login", app.base))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let html = res.text().await.unwrap();
    // Each inline block is allowed by its hash, and nothing is styled inline.
    for (open, close) in [("<script>", "</script>"), ("<style>", "</style>")] {
        let start = html.find(open).unwrap() + open.len();
        let end = start + html[start..].find(close).unwrap();
        let hash = {
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(&html[start..end]))
        };
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{open} {csp}");
    }
    assert!(!html.contains(" style="), "{html}");

    // A login posted without the form's token (a forged one) is refused.
    let res = browser()
        .post(format!("{}/desk/login", app.base))
        .form(&[("key", "dora-desk-key-0123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let (status, cookie) = login(&app, "dora-desk-key-0123456789", false).await;
    assert_eq!(status, 303);
    let (cookie, line) = cookie.unwrap();
    assert!(cookie.starts_with("__Host-certgate_desk="), "{line}");
    for attribute in ["Path=/;", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Domain"), "{line}");
    let (status, _) = page(&app, &cookie, "/desk").await;
    assert_eq!(status, 200);
    // Seen 50 s ago: still on; then idle for more than a minute: ended.
    ADVANCE.fetch_add(50_000, Ordering::SeqCst);
    let (status, _) = page(&app, &cookie, "/desk").await;
    assert_eq!(status, 200);
    ADVANCE.fetch_add(61_000, Ordering::SeqCst);
    let res = browser()
        .get(format!("{}/desk", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/desk/login");
}

/// This file's clock: real time moved on by `ADVANCE` milliseconds.
static ADVANCE: AtomicI64 = AtomicI64::new(0);
fn moved_clock() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::milliseconds(ADVANCE.load(Ordering::SeqCst))
}
