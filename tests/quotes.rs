//! End to end: POST /v1/quotes on the real server, with EXAMPLES.md's worked answers and every
//! kind of bad input.

mod common;

use common::{order, spawn_app, steps, KEY};
use serde_json::{json, Value};

const AS_OF: &str = "2026-06-15T08:30:00Z";

fn quote(provider: &str, intent: &str, order: Value) -> Value {
    json!({"provider": provider, "intent": intent, "order": order, "as_of": AS_OF})
}

fn rules(q: &Value) -> Vec<&str> {
    q["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

fn ex1_order() -> Value {
    order(json!({
        "purchased_at": "2026-05-30T08:30:00Z",
        "issued_at": "2026-06-01T08:30:00Z",
        "expires_at": "2027-06-01T08:30:00Z",
        "paid": {"amount": "200.00", "currency": "USD"},
        "voucher": {"amount": "50.00", "currency": "USD"}
    }))
}

#[tokio::test]
async fn examples_md_answers() {
    let app = spawn_app().await;

    // 1: alibaba refund of an issued OV with a voucher.
    let (status, q) = app
        .post("/v1/quotes", &quote("alibaba", "refund", ex1_order()))
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["allowed"], true);
    assert_eq!(
        steps(&q),
        ["revoke/automated", "refund_request/manual_ticket"]
    );
    assert_eq!(q["steps"][0]["confirmation"], "email");
    assert_eq!(
        q["refund"],
        json!({"kind": "partial", "amount": "150.00", "currency": "USD"})
    );
    assert_eq!(q["deadline"], "2026-06-29T08:30:00Z");
    assert_eq!(q["submit_by"], "2026-06-22T08:30:00Z");
    assert_eq!(q["warnings"], json!([]));
    assert_eq!(
        rules(&q),
        ["ALI-ISSUED-28D", "ALI-VOUCHER", "ALI-REVOKE-CONFIRM"]
    );
    assert_eq!(q["alternative"], Value::Null);
    assert!(q["policy_version"].as_str().unwrap().starts_with("sha256:"));

    // 3: alibaba refund of a pending order bought three days ago.
    let pending = order(json!({
        "state": "pending", "validation_status": "submitted", "issued_at": null,
        "purchased_at": "2026-06-12T00:00:00Z", "expires_at": "2027-06-12T00:00:00Z",
        "paid": {"amount": "200.00", "currency": "USD"}, "voucher": null
    }));
    let (_, q) = app
        .post("/v1/quotes", &quote("alibaba", "refund", pending))
        .await;
    assert_eq!(q["allowed"], true);
    assert_eq!(steps(&q), ["refund_request/manual_ticket"]);
    assert_eq!(
        q["refund"],
        json!({"kind": "full", "amount": "200.00", "currency": "USD"})
    );
    assert_eq!(rules(&q), ["ALI-UNISSUED-5D"]);

    // 4: alibaba refund of a DV issued six weeks ago.
    let dv = order(
        json!({"product": {"validation": "dv", "kind": "ssl", "free": false}, "purchased_at": "2026-05-01T00:00:00Z", "issued_at": "2026-05-01T00:00:00Z"}),
    );
    let (_, q) = app
        .post("/v1/quotes", &quote("alibaba", "refund", dv))
        .await;
    assert_eq!(
        (q["allowed"].clone(), q["alternative"].clone()),
        (json!(false), json!("revoke"))
    );
    assert_eq!(q["refund"]["kind"], "none");
    assert_eq!(q["steps"], json!([]));
    assert_eq!(rules(&q), ["ALI-ISSUED-LATE"]);

    // 5: trustwave EV.
    let ev = order(
        json!({"product": {"validation": "ev", "kind": "ssl", "free": false}, "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
    );
    let (_, q) = app
        .post("/v1/quotes", &quote("trustwave", "refund", ev))
        .await;
    assert_eq!(
        (q["allowed"].clone(), q["alternative"].clone()),
        (json!(false), json!("revoke"))
    );
    assert_eq!(rules(&q), ["RSL-TW-EV"]);

    // 6: sectigo refund: a manual ticket with the fields support needs.
    let ov =
        order(json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}));
    let (_, q) = app
        .post("/v1/quotes", &quote("sectigo", "refund", ov))
        .await;
    assert_eq!(q["allowed"], true);
    assert_eq!(steps(&q), ["revoke/manual_ticket"]);
    assert_eq!(
        q["steps"][0]["ticket_fields"],
        json!(["reseller_username", "supplier_order_id", "common_name"])
    );
    assert_eq!(q["refund"]["kind"], "full");
    assert_eq!(q["deadline"], "2026-06-19T12:00:00Z");
    assert_eq!(q["eta"]["typical_business_days"], 5);
    assert_eq!(rules(&q), ["RSL-30D", "RSL-MANUAL"]);

    // 7: geotrust refund after the window.
    let old =
        order(json!({"purchased_at": "2026-05-09T00:00:00Z", "issued_at": "2026-05-10T00:00:00Z"}));
    let (_, q) = app
        .post("/v1/quotes", &quote("geotrust", "refund", old))
        .await;
    assert_eq!(
        (q["allowed"].clone(), q["alternative"].clone()),
        (json!(false), json!("revoke"))
    );
    assert_eq!(q["deadline"], "2026-06-09T00:00:00Z");
    assert_eq!(rules(&q), ["RSL-30D"]);

    // 8: digicert cancel of a client certificate awaiting approval.
    let client = order(
        json!({"product": {"validation": "ov", "kind": "client", "free": false}, "state": "awaiting_approval", "approval_required": true, "issued_at": null, "validation_status": "not_submitted"}),
    );
    let (_, q) = app
        .post("/v1/quotes", &quote("digicert", "cancel", client))
        .await;
    assert_eq!(q["allowed"], true);
    assert_eq!(steps(&q), ["reject_approval/automated", "cancel/automated"]);
    assert_eq!(rules(&q), ["DC-APPROVAL"]);

    // 9: digicert cancel of an issued SSL certificate.
    let (_, q) = app
        .post("/v1/quotes", &quote("digicert", "cancel", order(json!({}))))
        .await;
    assert_eq!(
        (q["allowed"].clone(), q["alternative"].clone()),
        (json!(false), json!("revoke"))
    );
    assert_eq!(rules(&q), ["DC-ISSUED-REVOKE"]);

    // 10: digicert refund of a pending order charged to the account balance.
    let balance = order(
        json!({"state": "pending", "issued_at": null, "validation_status": "submitted", "charged_to": "account_balance"}),
    );
    let (_, q) = app
        .post("/v1/quotes", &quote("digicert", "refund", balance))
        .await;
    assert_eq!(
        steps(&q),
        ["cancel/automated", "refund_request/manual_ticket"]
    );
    assert_eq!(rules(&q), ["DC-CANCEL-PENDING", "DC-REFUND-SUPPORT"]);
}

#[tokio::test]
async fn example_2_holidays_come_from_the_config() {
    use certgate_server::config::parse_toml;
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/providers.toml")).unwrap();
    let text = text.replacen("holidays = []", "holidays = [\"2026-06-25\"]", 1);
    let registry = certgate::registry_builder()
        .build(&parse_toml(&text).unwrap().providers)
        .unwrap();
    let order: certgate_core::Order = serde_json::from_value(ex1_order()).unwrap();
    let q = registry
        .quote(
            "alibaba",
            &order,
            "refund".parse().unwrap(),
            AS_OF.parse().unwrap(),
        )
        .unwrap();
    let q = serde_json::to_value(q).unwrap();
    assert_eq!(q["submit_by"], "2026-06-19T08:30:00Z");
    assert_eq!(q["deadline"], "2026-06-29T08:30:00Z");
}

#[tokio::test]
async fn symantec_from_config_alone_answers_like_the_other_digicert_brands() {
    let app = spawn_app().await;
    let cases = [
        order(json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"})),
        order(json!({"purchased_at": "2026-05-09T00:00:00Z", "issued_at": "2026-05-10T00:00:00Z"})),
        order(json!({"state": "pending", "issued_at": null})),
        order(json!({"state": "canceled", "issued_at": null})),
        order(json!({"product": {"validation": "ev", "kind": "ssl", "free": false}})),
        order(
            json!({"expires_at": "2026-06-01T00:00:00Z", "issued_at": "2025-06-01T00:00:00Z", "purchased_at": "2025-06-01T00:00:00Z"}),
        ),
    ];
    for case in cases {
        for intent in ["cancel", "revoke", "refund"] {
            let (_, geotrust) = app
                .post("/v1/quotes", &quote("geotrust", intent, case.clone()))
                .await;
            let (status, symantec) = app
                .post("/v1/quotes", &quote("symantec", intent, case.clone()))
                .await;
            assert_eq!(status, 200, "{symantec}");
            for field in [
                "allowed",
                "steps",
                "refund",
                "deadline",
                "submit_by",
                "eta",
                "rules",
                "warnings",
                "notes",
                "alternative",
            ] {
                assert_eq!(symantec[field], geotrust[field], "{intent} {field} {case}");
            }
        }
    }
    let (_, q) = app
        .post("/v1/quotes", &quote("symantec", "refund", cases_first()))
        .await;
    assert_eq!(rules(&q), ["RSL-30D", "RSL-PORTAL"]);
    assert_eq!(
        q["eta"],
        json!({"typical_business_days": 2, "max_business_days": 2})
    );
}

fn cases_first() -> Value {
    order(json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}))
}

#[tokio::test]
async fn as_of_defaults_to_the_server_clock() {
    let app = spawn_app().await;
    let body = json!({"provider": "digicert", "intent": "cancel", "order": order(json!({}))});
    let before = chrono::Utc::now();
    let (status, q) = app.post("/v1/quotes", &body).await;
    assert_eq!(status, 200, "{q}");
    let as_of: chrono::DateTime<chrono::Utc> = q["as_of"].as_str().unwrap().parse().unwrap();
    assert!(as_of >= before - chrono::Duration::seconds(1) && as_of <= chrono::Utc::now());
}

/// Each bad request: its status, problem code, and the field it names.
#[tokio::test]
async fn bad_input_is_a_clear_4xx_naming_the_field() {
    let app = spawn_app().await;
    let ok = quote("alibaba", "refund", ex1_order());
    // The valid body with the field at `path` set to `value`, or removed when `None`.
    let edit = |path: &[&str], value: Option<Value>| {
        let mut v = ok.clone();
        let (last, parents) = path.split_last().unwrap();
        let parent = parents.iter().fold(&mut v, |cur, p| &mut cur[*p]);
        match value {
            Some(value) => parent[*last] = value,
            None => {
                parent.as_object_mut().unwrap().remove(*last);
            }
        }
        v
    };
    let with = |path: &[&str], value: Value| edit(path, Some(value));
    let remove = |path: &[&str]| edit(path, None);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown top-level field",
            with(&["colour"], json!("blue")),
            "colour",
        ),
        (
            "unknown order field",
            with(&["order", "colour"], json!("blue")),
            "order.colour",
        ),
        (
            "unknown intent",
            with(&["intent"], json!("delete")),
            "intent",
        ),
        (
            "money as a number",
            with(&["order", "paid", "amount"], json!(120.5)),
            "order.paid.amount",
        ),
        (
            "negative money",
            with(&["order", "paid", "amount"], json!("-1.00")),
            "order.paid.amount",
        ),
        (
            "malformed money",
            with(&["order", "voucher", "amount"], json!("12,50")),
            "order.voucher.amount",
        ),
        (
            "bad currency",
            with(&["order", "paid", "currency"], json!("dollars")),
            "order.paid.currency",
        ),
        (
            "mixed currencies",
            with(&["order", "voucher", "currency"], json!("EUR")),
            "order.voucher.currency",
        ),
        (
            "impossible date",
            with(&["order", "issued_at"], json!("2026-02-30T00:00:00Z")),
            "order.issued_at",
        ),
        (
            "not a date",
            with(&["order", "purchased_at"], json!("yesterday")),
            "order.purchased_at",
        ),
        (
            "issued before purchased",
            with(&["order", "issued_at"], json!("2026-05-01T00:00:00Z")),
            "order.issued_at",
        ),
        (
            "expiry before issue",
            with(&["order", "expires_at"], json!("2026-06-01T00:00:00Z")),
            "order.expires_at",
        ),
        (
            "bad as_of",
            with(&["as_of"], json!("2026-13-01T00:00:00Z")),
            "as_of",
        ),
        ("missing order", remove(&["order"]), "order"),
        ("missing paid", remove(&["order", "paid"]), "order.paid"),
        (
            "unknown state",
            with(&["order", "state"], json!("lost")),
            "order.state",
        ),
        (
            "issued without issued_at",
            with(&["order", "issued_at"], Value::Null),
            "order.issued_at",
        ),
    ];
    for (name, body, field) in cases {
        let (status, p) = app.post("/v1/quotes", &body).await;
        assert_eq!(status, 400, "{name}: {p}");
        assert_eq!(p["code"], "invalid_request", "{name}");
        assert_eq!(p["status"], 400);
        assert_eq!(p["errors"][0]["field"], field, "{name}: {p}");
        assert!(!p["errors"][0]["message"].as_str().unwrap().is_empty());
    }

    let (status, p) = app.post_raw("/v1/quotes", "{\"provider\": ").await;
    assert_eq!(
        (status, p["code"].as_str()),
        (400, Some("malformed_json")),
        "{p}"
    );
    let (status, p) = app.post_raw("/v1/quotes", "").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("malformed_json")));
    let (status, p) = app.post_raw("/v1/quotes", "[1, 2]").await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("body")),
        "{p}"
    );

    let (status, p) = app
        .post("/v1/quotes", &with(&["provider"], json!("verisign")))
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (404, Some("unknown_provider"))
    );
    assert!(p["detail"].as_str().unwrap().contains("alibaba"));
}

#[tokio::test]
async fn problems_are_problem_json() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/v1/quotes", app.base))
        .bearer_auth(common::KEY)
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p: Value = res.json().await.unwrap();
    for key in ["type", "title", "status", "detail", "code"] {
        assert!(!p[key].is_null(), "{key} in {p}");
    }
}

#[tokio::test]
async fn the_api_needs_a_valid_key() {
    let app = spawn_app().await;
    let body = quote("alibaba", "refund", ex1_order()).to_string();
    for auth in [
        None,
        Some("Bearer wrong-key"),
        Some("Basic dGVzdA=="),
        Some("Bearer "),
    ] {
        let mut req = app
            .client
            .post(format!("{}/v1/quotes", app.base))
            .body(body.clone());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "unauthorized");
    }
    let (status, _) = app.get("/v1/providers", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn sweep_returns_near_deadlines_soonest_first() {
    let app = spawn_app().await;
    let item = |provider: &str, id: &str, issued: &str| json!({"provider": provider, "order": order(json!({"id": id, "purchased_at": issued, "issued_at": issued}))});
    let body = json!({
        "as_of": AS_OF, "within_days": 7,
        "orders": [
            item("geotrust", "later", "2026-05-20T00:00:00Z"),
            item("alibaba", "sooner", "2026-05-20T00:00:00Z"),
            item("geotrust", "far", "2026-06-14T00:00:00Z"),
            item("geotrust", "closed", "2026-05-01T00:00:00Z"),
        ]
    });
    let (status, out) = app.post("/v1/sweep", &body).await;
    assert_eq!(status, 200, "{out}");
    let ids: Vec<_> = out["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sooner", "later"]);
    assert_eq!(out["orders"][0]["deadline"], "2026-06-17T00:00:00Z");
    assert_eq!(out["orders"][0]["quote"]["rules"][0], "ALI-ISSUED-28D");
    assert_eq!(out["swept"], 4);

    let mut bad = body.clone();
    bad["orders"][2]["order"]["issued_at"] = json!("2020-01-01T00:00:00Z");
    let (status, p) = app.post("/v1/sweep", &bad).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("orders[2].order.issued_at")),
        "{p}"
    );
    let mut unknown = body.clone();
    unknown["orders"][1]["provider"] = json!("verisign");
    let (status, p) = app.post("/v1/sweep", &unknown).await;
    // An unknown provider is a 404 on every route, naming where it was.
    assert_eq!(
        (status, p["code"].as_str()),
        (404, Some("unknown_provider"))
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("orders[1].provider"),
        "{p}"
    );
    let mut number = body;
    number["orders"][0]["order"]["paid"]["amount"] = json!(1);
    let (status, p) = app.post("/v1/sweep", &number).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("orders[0].order.paid.amount"))
    );
}

#[tokio::test]
async fn input_hygiene_refuses_what_would_mislead_a_person_or_a_ledger() {
    let app = spawn_app().await;
    let quote =
        |patch: Value| json!({"provider": "digicert", "intent": "refund", "order": order(patch)});
    for (patch, field) in [
        (
            json!({"common_name": "a".repeat(1024 * 1024)}),
            "order.common_name",
        ),
        (
            json!({"common_name": "shop.example.com\u{202E}moc.live"}),
            "order.common_name",
        ),
        (
            json!({"common_name": "shop example com"}),
            "order.common_name",
        ),
        (
            json!({"technical_email": "not an address"}),
            "order.technical_email",
        ),
        (
            json!({"supplier_order_id": "DC-1\n2"}),
            "order.supplier_order_id",
        ),
        (json!({"id": "x".repeat(129)}), "order.id"),
        (
            json!({"paid": {"amount": "200.001", "currency": "USD"}}),
            "order.paid.amount",
        ),
        (
            json!({"paid": {"amount": "200.000", "currency": "USD"}}),
            "order.paid.amount",
        ),
        (
            json!({"paid": {"amount": "200", "currency": "XYZ"}}),
            "order.paid.currency",
        ),
    ] {
        let (status, p) = app.post("/v1/quotes", &quote(patch.clone())).await;
        assert_eq!(
            (status, p["errors"][0]["field"].as_str()),
            (400, Some(field)),
            "{patch}: {p}"
        );
    }
    // What is fine stays fine: a wildcard, a yen amount without decimals, a note on two lines.
    for patch in [
        json!({"common_name": "*.example.com"}),
        json!({"paid": {"amount": "200.5", "currency": "USD"}, "voucher": null}),
        json!({"paid": {"amount": "12000", "currency": "JPY"}, "voucher": null}),
    ] {
        let (status, p) = app.post("/v1/quotes", &quote(patch.clone())).await;
        assert_eq!(status, 200, "{patch}: {p}");
    }
    let (status, p) = app
        .post_operation(
            KEY,
            "hygiene-1",
            &json!({"provider": "digicert", "intent": "cancel", "note": "asked by\u{2066}admin",
                    "order": order(json!({"state": "pending", "issued_at": null}))}),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (400, Some("note")),
        "{p}"
    );
}
