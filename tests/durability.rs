//! Durability: a gateway killed mid-step finishes the operation exactly once after a restart;
//! two gateways on one Postgres never run the same step twice.

mod common;

use common::{order, spawn, tenant, Setup, KEY};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A `certgate serve` process, killed when dropped.
struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    fn start(config: &std::path::Path, database: &str) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certgate"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                database,
                "--config",
            ])
            .arg(config)
            .env("CERTGATE_API_KEY", KEY)
            .env("DIGICERT_API_KEY", common::DIGICERT_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(base.starts_with("http://"), "{line}");
        Gateway { child, base }
    }

    /// SIGKILL: no shutdown, no cleanup.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_op(http: &reqwest::Client, base: &str, id: &str) -> Value {
    http.get(format!("{base}/v1/operations/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gateway_killed_mid_step_completes_the_operation_exactly_once_after_restart() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/v2/order/certificate/DC-K"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "DC-K", "status": "pending", "requests": []})),
        )
        .mount(&mock)
        .await;
    // A slow CA: the first gateway dies while this call is in flight.
    Mock::given(method("PUT"))
        .and(path("/services/v2/order/certificate/DC-K/status"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(3)))
        .mount(&mock)
        .await;
    let dir = std::env::temp_dir().join(format!("certgate-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("providers.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[executor]\nlease_ms = 1000\npoll_ms = 20\nbackoff_base_ms = 50\n",
            common::providers_toml_at(&mock.uri())
        ),
    )
    .unwrap();
    let database = format!("sqlite://{}", dir.join("certgate.db").display());
    let _ = std::fs::remove_file(dir.join("certgate.db"));

    let http = reqwest::Client::new();
    let first = Gateway::start(&config, &database);
    let body = json!({"provider": "digicert", "intent": "cancel", "note": "crash test",
                      "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "DC-K"}))});
    let res = http
        .post(format!("{}/v1/operations", first.base))
        .bearer_auth(KEY)
        .header("idempotency-key", "crash-1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Kill the gateway while the CA call is in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.method.as_str() == "PUT")
    {
        assert!(Instant::now() < deadline, "the step never reached the CA");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();

    let second = Gateway::start(&config, &database);
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let op = get_op(&http, &second.base, &id).await;
        if op["status"] == "completed" || op["status"] == "failed" {
            break op;
        }
        assert!(Instant::now() < deadline, "not resumed: {op:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["status"], "completed", "{done:#}");
    let completions = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "completed")
        .count();
    assert_eq!(completions, 1, "{done:#}");
    // The attempt in flight at the kill was recorded before the call; the resumed one is the second.
    assert_eq!(done["steps"][0]["attempts"], 2, "{done:#}");
    // It stays completed: nothing runs it again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let puts = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PUT")
        .count();
    assert_eq!(
        puts, 2,
        "one call lost with the killed gateway, one that completed"
    );
    assert_eq!(
        get_op(&http, &second.base, &id).await["history"],
        done["history"]
    );
}

#[tokio::test]
async fn two_gateways_on_one_postgres_never_run_a_step_twice() {
    let Some(url) = std::env::var("CERTGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("SKIPPED: two_gateways_on_one_postgres_never_run_a_step_twice needs CERTGATE_TEST_POSTGRES_URL");
        return;
    };
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/services/v2/order/certificate/[^/]+$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "x", "status": "pending", "requests": []})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/services/v2/order/certificate/[^/]+/status$"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&mock)
        .await;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let tenant_id = format!("pg-{run}");
    let key = format!("key-{run}");
    // Unpaced: this is about exclusivity, not about DigiCert's rate limits.
    let setup = || Setup {
        providers_toml: common::providers_toml_at(&mock.uri()).replace(common::DIGICERT_LIMITS, ""),
        database: url.clone(),
        tenants: vec![tenant(&tenant_id, &key, None)],
        ..Setup::default()
    };
    let a = spawn(setup()).await;
    let b = spawn(setup()).await;
    let n = 500;
    for i in 0..n {
        let app = if i % 2 == 0 { &a } else { &b };
        let body = json!({"provider": "digicert", "intent": "cancel",
                          "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": format!("{run}-{i}")}))});
        let (status, _) = app.post_operation(&key, &format!("op-{i}"), &body).await;
        assert_eq!(status, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut completed = 0;
        let mut cursor = String::new();
        loop {
            let (_, page) = a
                .get(
                    &format!("/v1/operations?status=completed&limit=200{cursor}"),
                    Some(&key),
                )
                .await;
            completed += page["operations"].as_array().unwrap().len();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        if completed == n {
            break;
        }
        assert!(Instant::now() < deadline, "{completed} of {n} completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut puts = std::collections::HashMap::<String, usize>::new();
    for r in mock.received_requests().await.unwrap() {
        if r.method.as_str() == "PUT" && r.url.path().contains(&run) {
            *puts.entry(r.url.path().to_owned()).or_default() += 1;
        }
    }
    assert_eq!(puts.len(), n, "every operation's step ran");
    let twice: Vec<_> = puts.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "steps run more than once: {twice:?}");
    a.stop().await;
    b.stop().await;
}
