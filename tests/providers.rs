//! End to end: GET /v1/providers, probes, unknown routes.

mod common;

use common::{spawn_app, KEY};
use serde_json::Value;

#[tokio::test]
async fn providers_list_their_plugin_rules_and_windows() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/providers", Some(KEY)).await;
    assert_eq!(status, 200);
    let providers = body["providers"].as_array().unwrap();
    let names: Vec<_> = providers
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alibaba",
            "digicert",
            "geotrust",
            "sectigo",
            "symantec",
            "thawte",
            "trustwave"
        ]
    );
    let by_name = |n: &str| providers.iter().find(|p| p["name"] == n).unwrap().clone();
    let rule_ids = |p: &Value| -> Vec<String> {
        p["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let symantec = by_name("symantec");
    assert_eq!(symantec["plugin"], "config");
    assert_eq!(symantec["settings"]["refund_window"]["days"], 30);
    assert!(rule_ids(&symantec).contains(&"RSL-PORTAL".to_owned()));

    let alibaba = by_name("alibaba");
    assert_eq!(alibaba["plugin"], "alibaba");
    assert_eq!(alibaba["settings"]["refund_window_days"], 28);
    for id in [
        "ALI-FREE",
        "ALI-ISSUED-28D",
        "ALI-VOUCHER",
        "ALI-CANCEL-REFUND",
        "ALI-DELETE",
    ] {
        assert!(rule_ids(&alibaba).contains(&id.to_owned()), "{id}");
    }
    let trustwave = by_name("trustwave");
    assert_eq!(trustwave["mode"], "manual");
    assert_eq!(
        (
            trustwave["automated"].as_bool(),
            trustwave["api_available"].as_bool()
        ),
        (Some(false), Some(false))
    );
    let sectigo = by_name("sectigo");
    assert_eq!(
        (
            sectigo["automated"].as_bool(),
            sectigo["api_available"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(by_name("geotrust")["automated"], true);
    assert!(rule_ids(&trustwave).contains(&"RSL-TW-EV".to_owned()));
    assert!(rule_ids(&by_name("digicert")).contains(&"DC-AUDIT".to_owned()));
    for p in providers {
        assert!(p["policy_version"].as_str().unwrap().starts_with("sha256:"));
        assert!(!p.to_string().contains("DIGICERT_API_KEY="));
    }
}

#[tokio::test]
async fn probes_need_no_key_and_unknown_routes_are_problems() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    let (status, body) = app.get("/v1/nothing-here", Some(KEY)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = app.get("/v1/quotes", Some(KEY)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

/// The README's onboarding example is a working config.
#[test]
fn the_readme_onboarding_example_builds() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    // Every TOML example of the README is a valid config file.
    for block in &blocks {
        certgate_server::config::parse_toml(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    }
    let block = blocks
        .iter()
        .find(|b| b.contains("[providers.acme]"))
        .expect("the onboarding example");
    let file = certgate_server::config::parse_toml(block).unwrap();
    let registry = certgate::registry_builder().build(&file.providers).unwrap();
    let acme = registry.get("acme").unwrap();
    assert_eq!(acme.kind, "config");
    let order: certgate_core::Order = serde_json::from_value(common::order(serde_json::json!({
        "product": {"validation": "ev", "kind": "ssl", "free": false},
        "purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-01T00:00:00Z"
    })))
    .unwrap();
    let q = acme
        .quote(
            &order,
            "refund".parse().unwrap(),
            "2026-06-05T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(q.decision.rules[0].as_str(), "ACME-NO-EV");
}

#[tokio::test]
async fn metrics_count_requests_by_route_without_a_key() {
    let app = spawn_app().await;
    let body = serde_json::json!({"provider": "digicert", "intent": "cancel", "order": common::order(serde_json::json!({}))});
    let (status, _) = app.post("/v1/quotes", &body).await;
    assert_eq!(status, 200);
    let _ = app.get("/v1/operations/op_x", Some(KEY)).await;
    // Made-up methods do not make series: they are all `other`.
    for m in ["FOOBAR1", "FOOBAR2", "PROPFIND"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let res = app
            .client
            .request(method, format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
    }
    let scrape = |accept: Option<&'static str>| {
        let mut req = app.client.get(format!("{}/metrics", app.base));
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        req.send()
    };
    let res = scrape(None).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"certgate_http_requests_total{method="POST",route="/v1/quotes",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE certgate_http_requests_total counter"));
    assert!(
        text.contains(r#"route="/v1/operations/{id}",status="404""#),
        "ids do not make series: {text}"
    );
    assert!(
        text.contains(r#"certgate_quotes_total{provider="digicert",allowed="false"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("FOOBAR") && !text.contains("PROPFIND"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"certgate_http_requests_total{method="other",route="/healthz",status="405"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"certgate_http_request_duration_seconds_count{method="POST",route="/v1/quotes"} 1"#
    ));
    assert!(
        text.contains(r#"certgate_operations{status="queued"} 0"#),
        "{text}"
    );
    assert!(text.contains("certgate_tickets_open 0"), "{text}");
    // OpenMetrics when the scraper asks for it.
    let res = scrape(Some("application/openmetrics-text; version=1.0.0"))
        .await
        .unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(res.text().await.unwrap().ends_with("# EOF\n"));
}

/// The OpenAPI document describes every route the server answers (and no other).
#[tokio::test]
async fn openapi_lists_every_route() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    listed.sort();
    let mut served = vec![
        "GET /healthz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /readyz",
        "GET /v1/audit",
        "GET /v1/events",
        "GET /v1/events/{id}",
        "GET /v1/operations",
        "GET /v1/operations/{id}",
        "GET /v1/orders",
        "GET /v1/orders/{id}",
        "PUT /v1/orders/{id}",
        "DELETE /v1/orders/{id}",
        "GET /v1/providers",
        "GET /v1/refunds",
        "GET /v1/refunds/summary",
        "POST /v1/operations/{id}/refund",
        "GET /v1/tickets",
        "GET /v1/webhook-deliveries",
        "GET /v1/webhook-deliveries/{id}",
        "POST /v1/operations",
        "POST /v1/operations/{id}/retry",
        "POST /v1/operations/{id}/withdraw",
        "POST /v1/quotes",
        "POST /v1/sweep",
        "POST /v1/tickets/{id}/resolve",
        "POST /v1/webhook-deliveries/redeliver",
        "POST /v1/webhook-deliveries/{id}/redeliver",
    ];
    served.sort();
    assert_eq!(listed, served);
    // And each of them is served: none answers 404 or 405.
    for route in &served {
        let (method, path) = route.split_once(' ').unwrap();
        let url = format!("{}{}", app.base, path.replace("{id}", "x"));
        let req = match method {
            "GET" => app.client.get(url),
            "PUT" => app.client.put(url).body("{}"),
            "DELETE" => app.client.delete(url),
            _ => app.client.post(url).body("{}"),
        };
        let status = req.bearer_auth(KEY).send().await.unwrap().status().as_u16();
        let known = status != 405 && (status != 404 || path.contains("{id}"));
        assert!(known, "{route} answered {status}");
    }
}

/// What schemathesis found undocumented is documented now: the bounds, the statuses and the
/// nullability the server enforces (the CI's schemathesis run checks the rest).
#[tokio::test]
async fn openapi_documents_bounds_statuses_and_nulls() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let param = |path: &str, method: &str, name: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} documents no {name}"))
            .clone()
    };
    for path in ["/v1/audit", "/v1/tickets", "/v1/operations", "/v1/events"] {
        let limit = param(path, "get", "limit");
        assert_eq!(
            (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
            (&serde_json::json!(1), &serde_json::json!(200)),
            "{path}"
        );
    }
    let key = param("/v1/operations", "post", "Idempotency-Key");
    assert_eq!(key["required"], true);
    assert_eq!(
        (&key["schema"]["minLength"], &key["schema"]["maxLength"]),
        (&serde_json::json!(1), &serde_json::json!(255))
    );
    let responses = &doc["paths"]["/v1/operations"]["post"]["responses"];
    for status in ["202", "200", "400", "401", "404", "409", "413", "422"] {
        assert!(
            responses.get(status).is_some(),
            "POST /v1/operations {status}"
        );
    }
    assert!(responses["404"]["content"]["application/problem+json"].is_object());
    let as_of = &doc["components"]["schemas"]["SweepRequest"]["properties"]["as_of"];
    assert_eq!(as_of["type"], serde_json::json!(["string", "null"]));
    // Free text carries its limits: no control characters, a maximum length.
    let order = &doc["components"]["schemas"]["Order"]["properties"];
    assert_eq!(order["common_name"]["maxLength"], 253);
    assert!(order["common_name"]["pattern"].is_string());
    assert_eq!(order["id"]["maxLength"], 128);
}
