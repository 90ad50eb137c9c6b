//! Tenancy at the CA, tried as a hostile tenant would: tenants with their own DigiCert accounts
//! (each account's CA sees only its own key), two tenants on the shared account racing for one
//! order (one wins, the CA sees one action), an order whose common name at the CA is not the
//! one sent (`ca_mismatch`, nothing sent), ids that would steer a call, a CA that redirects,
//! keys (rotation, duplicates), and `as_of` bounds. The same race on two gateways sharing
//! Postgres.

mod common;

use certgate_core::config::SecretRef;
use common::{order, spawn, tenant, Setup, KEY};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A DigiCert CA that knows every order as pending with `common_name`, echoing its id, and
/// accepts cancels.
async fn digicert(common_name: &str) -> MockServer {
    digicert_showing("pending", json!({"common_name": common_name})).await
}

/// A DigiCert CA that knows every order in `status` with `certificate`, and accepts every
/// action.
async fn digicert_showing(status: &str, certificate: Value) -> MockServer {
    let mock = MockServer::start().await;
    let status = status.to_owned();
    Mock::given(method("GET"))
        .and(path_regex(r"^/services/v2/order/certificate/[0-9]+$"))
        .respond_with(move |r: &Request| {
            let id: u64 = r.url.path().rsplit('/').next().unwrap().parse().unwrap();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "status": status, "certificate": certificate,
                "product": {"name_id": "ssl_basic", "type": "ssl_certificate"}, "requests": []
            }))
        })
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&mock)
        .await;
    mock
}

fn cancel(provider: &str, id: &str) -> Value {
    json!({"provider": provider, "intent": "cancel", "note": "customer asked",
           "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": id}))})
}

/// A tenant with its own DigiCert key.
fn with_digicert_key(
    id: &str,
    key: &str,
    digicert_key: &str,
) -> certgate_server::config::TenantConfig {
    let var = format!(
        "CERTGATE_TEST_{}_DIGICERT",
        id.to_uppercase().replace('-', "_")
    );
    std::env::set_var(&var, digicert_key);
    let mut t = tenant(id, key, None);
    t.credentials.insert(
        "digicert".into(),
        [(
            "api_key".to_owned(),
            SecretRef::parse(&format!("${{{var}}}")).unwrap(),
        )]
        .into(),
    );
    t
}

/// The DigiCert key each request to `mock` carried, by the order in its path.
async fn keys_seen(mock: &MockServer) -> Vec<(String, String, String)> {
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let order = r
                .url
                .path()
                .split('/')
                .nth(5)
                .unwrap_or_default()
                .to_owned();
            let key = r
                .headers
                .get("X-DC-DEVKEY")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            (r.method.to_string(), order, key)
        })
        .collect()
}

#[tokio::test]
async fn tenants_with_their_own_accounts_call_only_with_their_own_keys() {
    let mock = digicert("shop.example.com").await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        tenants: vec![
            with_digicert_key("own-a", "own-a-api-key-0001", "dc-key-of-tenant-a"),
            with_digicert_key("own-b", "own-b-api-key-0002", "dc-key-of-tenant-b"),
        ],
        ..Setup::default()
    })
    .await;
    // Tenant A on DigiCert and on GeoTrust (a brand on DigiCert's API: A's DigiCert key),
    // tenant B on DigiCert, the default tenant on the shared account.
    let runs = [
        (
            "own-a-api-key-0001",
            "digicert",
            "7001",
            "dc-key-of-tenant-a",
        ),
        (
            "own-a-api-key-0001",
            "geotrust",
            "7002",
            "dc-key-of-tenant-a",
        ),
        (
            "own-b-api-key-0002",
            "digicert",
            "7003",
            "dc-key-of-tenant-b",
        ),
        (KEY, "digicert", "7004", common::DIGICERT_KEY),
    ];
    for (key, provider, id, _) in runs {
        let (status, op) = app.post_operation(key, id, &cancel(provider, id)).await;
        assert_eq!(status, 202, "{op}");
        let done = app
            .wait_for_as(key, op["id"].as_str().unwrap(), &["completed", "failed"])
            .await;
        assert_eq!(done["status"], "completed", "{done:#}");
    }
    let seen = keys_seen(&mock).await;
    for (_, _, id, expected) in runs {
        let calls: Vec<_> = seen.iter().filter(|(_, o, _)| o == id).collect();
        assert_eq!(calls.len(), 2, "a read and a cancel of {id}: {seen:?}");
        assert!(
            calls.iter().all(|(_, _, k)| k == expected),
            "{id}: {calls:?}"
        );
    }
    // Each tenant is told whose account it uses, never a credential or the CA's address.
    for (key, digicert, sectigo) in [
        ("own-a-api-key-0001", "own", Value::Null),
        (KEY, "shared", Value::Null),
    ] {
        let (status, listing) = app.get("/v1/providers", Some(key)).await;
        assert_eq!(status, 200);
        let text = listing.to_string();
        for secret in [
            "dc-key-of-tenant",
            common::DIGICERT_KEY,
            &mock.uri(),
            "services/v2",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let p = |name: &str| {
            listing["providers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["account"]
                .clone()
        };
        assert_eq!(p("digicert"), digicert);
        assert_eq!(
            p("geotrust"),
            digicert,
            "the brand uses the tenant's DigiCert entry"
        );
        assert_eq!(p("sectigo"), sectigo, "a manual provider has no account");
    }
    app.stop().await;
}

#[tokio::test]
async fn two_tenants_racing_for_one_shared_order_get_one_winner_and_the_ca_one_action() {
    let mock = digicert("shop.example.com").await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        tenants: vec![
            tenant("race-a", "race-a-api-key-001", None),
            tenant("race-b", "race-b-api-key-002", None),
        ],
        ..Setup::default()
    })
    .await;
    for round in 0..10 {
        let id = format!("88{round:02}");
        let body = cancel("digicert", &id);
        let (a, b) = tokio::join!(
            app.post_operation("race-a-api-key-001", &id, &body),
            app.post_operation("race-b-api-key-002", &id, &body),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
        let (winner_key, op, lost) = if a.0 == 202 {
            ("race-a-api-key-001", a.1, b.1)
        } else {
            ("race-b-api-key-002", b.1, a.1)
        };
        assert_eq!(lost["code"], "order_owned_elsewhere", "{lost}");
        assert!(
            !lost.to_string().contains("race-"),
            "names no tenant: {lost}"
        );
        app.wait_for_as(winner_key, op["id"].as_str().unwrap(), &["completed"])
            .await;
        // The loser's later tries, and a watch of the order, are refused too.
        let loser_key = if winner_key == "race-a-api-key-001" {
            "race-b-api-key-002"
        } else {
            "race-a-api-key-001"
        };
        let (status, _) = app
            .post_operation(loser_key, &format!("{id}-again"), &body)
            .await;
        assert_eq!(status, 409);
        let watch = json!({"provider": "geotrust", "order": body["order"]});
        let (status, problem) = app
            .request(
                reqwest::Method::PUT,
                loser_key,
                "/v1/orders/ord-1001",
                Some(&watch),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (409, Some("order_owned_elsewhere"))
        );
    }
    let puts = keys_seen(&mock)
        .await
        .into_iter()
        .filter(|(m, _, _)| m == "PUT")
        .count();
    assert_eq!(puts, 10, "one cancel per order");
    app.stop().await;
}

#[tokio::test]
async fn an_order_whose_common_name_at_the_ca_differs_fails_as_ca_mismatch_and_nothing_is_sent() {
    let mock = digicert("victim.example.org").await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        tenants: vec![tenant("mm-owner", "mm-owner-api-key-1", None)],
        ..Setup::default()
    })
    .await;
    let (status, op) = app
        .post_operation(KEY, "mm", &cancel("digicert", "9001"))
        .await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["steps"][0]["error"]["kind"], "ca_mismatch", "{done:#}");
    assert!(
        !done.to_string().contains("victim"),
        "the CA's value is not told: {done:#}"
    );
    let seen = keys_seen(&mock).await;
    assert_eq!(seen.len(), 1, "only the read: {seen:?}");
    assert_eq!(seen[0].0, "GET");
    // The failed claim keeps the order from no one: its owner acts on it.
    let mut owners = cancel("digicert", "9001");
    owners["order"]["common_name"] = json!("victim.example.org");
    let (status, op) = app
        .post_operation("mm-owner-api-key-1", "owner", &owners)
        .await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for_as(
            "mm-owner-api-key-1",
            op["id"].as_str().unwrap(),
            &["completed", "failed"],
        )
        .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    // Sent without a common name, the order is not compared, and its history says so.
    let mut body = cancel("digicert", "9002");
    body["order"]["common_name"] = Value::Null;
    let (_, op) = app.post_operation(KEY, "no-cn", &body).await;
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert!(
        done["history"]
            .to_string()
            .contains("without a common name"),
        "{done:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn ids_that_would_steer_a_call_are_refused_before_anything_is_stored_or_sent() {
    let mock = common::untouchable().await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        ..Setup::default()
    })
    .await;
    for hostile in certgate_core::testing::HOSTILE_IDS {
        for (provider, field) in [
            ("digicert", "supplier_order_id"),
            ("alibaba", "supplier_order_id"),
        ] {
            let body = cancel(provider, hostile);
            let (status, problem) = app.post_operation(KEY, "steer", &body).await;
            assert_eq!(status, 400, "{provider} {hostile}: {problem}");
            assert_eq!(
                problem["errors"][0]["field"],
                format!("order.{field}"),
                "{problem}"
            );
        }
        let mut revoke = json!({"provider": "digicert", "intent": "revoke",
            "order": order(json!({"supplier_order_id": "1001", "certificate_id": hostile}))});
        let (status, problem) = app.post_operation(KEY, "steer-cert", &revoke).await;
        assert_eq!(status, 400, "{hostile}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "order.certificate_id");
        // A quote and a manual ticket take any id.
        revoke["provider"] = json!("trustwave");
        let (status, _) = app.post("/v1/quotes", &revoke).await;
        assert_eq!(status, 200);
    }
    let (_, listed) = app.get("/v1/operations", Some(KEY)).await;
    assert_eq!(listed["operations"], json!([]), "nothing was stored");
    app.stop().await;
    mock.verify().await;
}

#[tokio::test]
async fn a_ca_that_redirects_gets_no_second_request_and_no_credential_leaves() {
    let elsewhere = common::untouchable().await;
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&mock)
        .await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        ..Setup::default()
    })
    .await;
    let (_, op) = app
        .post_operation(KEY, "redirect", &cancel("digicert", "9100"))
        .await;
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(
        done["steps"][0]["error"]["kind"], "ca_unreachable",
        "{done:#}"
    );
    assert!(done["steps"][0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("redirect"));
    assert!(
        mock.received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.method.as_str() == "GET"),
        "nothing but reads went"
    );
    app.stop().await;
    elsewhere.verify().await;
}

#[tokio::test]
async fn a_tenant_may_hold_several_keys_and_no_two_tenants_one() {
    let mut rotating = tenant("rotating", "rotating-key-old-0001", None);
    std::env::set_var("CERTGATE_TEST_ROTATING_NEXT", "rotating-key-new-0002");
    rotating.api_keys = vec![SecretRef::parse("${CERTGATE_TEST_ROTATING_NEXT}").unwrap()];
    let app = spawn(Setup {
        tenants: vec![rotating.clone()],
        ..Setup::default()
    })
    .await;
    for key in ["rotating-key-old-0001", "rotating-key-new-0002"] {
        let (status, _) = app.get("/v1/operations", Some(key)).await;
        assert_eq!(status, 200, "{key}");
    }
    app.stop().await;

    let registry = || {
        certgate::registry_builder()
            .build(
                &certgate_server::config::parse_toml(&common::providers_toml())
                    .unwrap()
                    .providers,
            )
            .unwrap()
    };
    // Two tenants with one key (here through the same variable), or a tenant with
    // CERTGATE_API_KEY's: refused, naming both.
    let twin = tenant("twin", "twin-key-0123456789", None);
    let mut copy = twin.clone();
    copy.id = "copycat".into();
    let err = certgate_server::Live::build(registry(), &[twin, copy], &[], None, "r").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("twin") && text.contains("copycat"), "{text}");
    let default_twin = tenant("shadow", KEY, None);
    let err =
        certgate_server::Live::build(registry(), &[default_twin], &[], Some(KEY), "r").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("shadow") && text.contains("default"),
        "{text}"
    );
    // A tenant's own CA account may not be the shared one, nor another tenant's.
    std::env::set_var("DIGICERT_API_KEY", common::DIGICERT_KEY);
    let same = with_digicert_key("borrower", "borrower-key-01234", common::DIGICERT_KEY);
    let err = certgate_server::Live::build(registry(), &[same], &[], None, "r").unwrap_err();
    assert!(
        err.to_string().contains("tenants[0].credentials.digicert"),
        "{err}"
    );
    let a = with_digicert_key("share-a", "share-a-key-012345", "one-dc-key");
    let b = with_digicert_key("share-b", "share-b-key-012345", "one-dc-key");
    let err = certgate_server::Live::build(registry(), &[a, b], &[], None, "r").unwrap_err();
    assert!(err.to_string().contains("share-a"), "{err}");
    // An entry for a provider without an API, or a credential the CA does not take.
    let mut odd = with_digicert_key("odd", "odd-key-0123456789", "dc-odd");
    odd.credentials.insert(
        "trustwave".into(),
        [(
            "api_key".to_owned(),
            SecretRef::parse("${CERTGATE_TEST_ODD_DIGICERT}").unwrap(),
        )]
        .into(),
    );
    odd.credentials.get_mut("digicert").unwrap().insert(
        "password".into(),
        SecretRef::parse("${CERTGATE_TEST_ODD_DIGICERT}").unwrap(),
    );
    let err = certgate_server::Live::build(registry(), &[odd], &[], None, "r").unwrap_err();
    let keys: Vec<&str> = err.issues.iter().map(|i| i.key.as_str()).collect();
    assert!(
        keys.contains(&"tenants[0].credentials.trustwave"),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"tenants[0].credentials.digicert.password"),
        "{keys:?}"
    );
}

#[tokio::test]
async fn an_operation_is_decided_now_and_a_quote_on_any_day() {
    let app = spawn(Setup::default()).await;
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        (now + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (minutes, status) in [
        (-6, 400),
        (-4, 202),
        (4, 202),
        (6, 400),
        (-60 * 24 * 300, 400),
    ] {
        let mut body = json!({"provider": "trustwave", "intent": "cancel",
            "order": order(json!({"state": "pending", "issued_at": null}))});
        body["as_of"] = json!(at(minutes));
        let (got, problem) = app
            .post_operation(KEY, &format!("as-of-{minutes}"), &body)
            .await;
        assert_eq!(got, status, "{minutes} min: {problem}");
        if status == 400 {
            assert_eq!(problem["errors"][0]["field"], "as_of");
        }
        let (got, _) = app.post("/v1/quotes", &body).await;
        assert_eq!(got, 200, "a quote takes any as_of");
    }
    app.stop().await;
}

#[tokio::test]
async fn two_gateways_on_one_postgres_give_a_raced_order_to_one_tenant() {
    let Some(url) =
        common::fresh_postgres("two_gateways_on_one_postgres_give_a_raced_order_to_one_tenant")
            .await
    else {
        return;
    };
    let mock = digicert("shop.example.com").await;
    let setup = || Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        database: url.clone(),
        tenants: vec![
            tenant("pg-a", "pg-a-api-key-00001", None),
            tenant("pg-b", "pg-b-api-key-00002", None),
        ],
        ..Setup::default()
    };
    let (one, two) = (spawn(setup()).await, spawn(setup()).await);
    let n = 30;
    for i in 0..n {
        let id = format!("66{i:03}");
        let body = cancel("digicert", &id);
        let (a, b) = tokio::join!(
            one.post_operation("pg-a-api-key-00001", &id, &body),
            two.post_operation("pg-b-api-key-00002", &id, &body),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let puts = keys_seen(&mock)
            .await
            .into_iter()
            .filter(|(m, _, _)| m == "PUT")
            .count();
        if puts == n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{puts} of {n} cancels"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut per_order = std::collections::HashMap::<String, usize>::new();
    for (m, order, _) in keys_seen(&mock).await {
        if m == "PUT" {
            *per_order.entry(order).or_default() += 1;
        }
    }
    assert!(per_order.values().all(|c| *c == 1), "{per_order:?}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn an_order_the_operator_moved_away_gets_nothing_from_the_operation_made_before() {
    let mock = digicert("shop.example.com").await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        tenants: vec![tenant("mover-b", "mover-b-api-key-01", None)],
        background: false,
        ..Setup::default()
    })
    .await;
    let (status, op) = app
        .post_operation(KEY, "moved", &cancel("digicert", "5150"))
        .await;
    assert_eq!(status, 202, "{op}");
    // Before it runs, the operator gives the order to another tenant.
    let live = app.state.live();
    let account = live.accounts.shared("digicert").unwrap();
    let to = certgate_store::Assignment {
        account: &account.service,
        tenant: &"mover-b".into(),
        provider: "digicert",
        now: 0,
        actor: "operator",
    };
    app.state.store.assign_orders(&["5150"], &to).await.unwrap();
    let background = certgate_engine::Background::start(&app.state.engine);
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["steps"][0]["error"]["kind"], "not_sent", "{done:#}");
    assert!(
        mock.received_requests().await.unwrap().is_empty(),
        "nothing reached the CA"
    );
    // The new owner acts on it.
    let (status, op) = app
        .post_operation("mover-b-api-key-01", "moved-b", &cancel("digicert", "5150"))
        .await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for_as(
            "mover-b-api-key-01",
            op["id"].as_str().unwrap(),
            &["completed", "failed"],
        )
        .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    background.stop().await;
}

#[tokio::test]
async fn a_certificate_the_cas_read_does_not_tie_to_the_order_is_never_revoked() {
    // The tenant's own issued order, whose read shows no certificate id, and someone else's
    // certificate id beside it.
    let mock = digicert_showing(
        "issued",
        json!({"id": null, "common_name": "shop.example.com"}),
    )
    .await;
    let app = spawn(Setup {
        providers_toml: common::providers_toml_at(&mock.uri()),
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "digicert", "intent": "revoke",
        "order": order(json!({"supplier_order_id": "2002", "certificate_id": "7002"}))});
    let (status, op) = app.post_operation(KEY, "cert", &body).await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["steps"][0]["error"]["kind"], "ca_mismatch", "{done:#}");
    assert!(
        keys_seen(&mock).await.iter().all(|(m, _, _)| m == "GET"),
        "nothing was revoked"
    );
    app.stop().await;
}

#[tokio::test]
async fn one_ca_service_however_the_config_spells_it_binds_an_order_once() {
    let mock = digicert("shop.example.com").await;
    // geotrust's address in IPv4 shorthand with a dot segment, thawte's key through another
    // variable: the same CertCentral, so the same orders.
    std::env::set_var("CERTGATE_TEST_THAWTE_DC_KEY", common::DIGICERT_KEY);
    let port = mock.uri().rsplit(':').next().unwrap().to_owned();
    let base = format!("base_url = \"{}/services/v2\"", mock.uri());
    let mut text = common::providers_toml_at(&mock.uri());
    let geotrust = text.find("[providers.geotrust.api]").unwrap();
    let at = geotrust + text[geotrust..].find(&base).unwrap();
    text.replace_range(
        at..at + base.len(),
        &format!("base_url = \"http://127.1:{port}/services/x/../v2/\""),
    );
    let thawte = text.find("[providers.thawte.api]").unwrap();
    let var = "${DIGICERT_API_KEY}";
    let at = thawte + text[thawte..].find(var).unwrap();
    text.replace_range(at..at + var.len(), "${CERTGATE_TEST_THAWTE_DC_KEY}");
    let app = spawn(Setup {
        providers_toml: text,
        tenants: vec![tenant("spell-b", "spell-b-api-key-01", None)],
        ..Setup::default()
    })
    .await;
    let (status, op) = app
        .post_operation(KEY, "first", &cancel("digicert", "4321"))
        .await;
    assert_eq!(status, 202, "{op}");
    for brand in ["geotrust", "thawte", "symantec"] {
        let (status, problem) = app
            .post_operation("spell-b-api-key-01", brand, &cancel(brand, "04321"))
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (409, Some("order_owned_elsewhere")),
            "{brand}: {problem}"
        );
    }
    app.stop().await;
}
