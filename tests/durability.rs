//! Durability: a gateway killed mid-call finishes its operations exactly once after a restart
//! (the CA had acted; its answers were lost with the process); two gateways on one Postgres
//! never run the same step twice.

mod common;

use common::sim::{Behaviour, DigiCert, Sectigo, Sim};
use common::{order, spawn, tenant, Setup, KEY};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A `certgate serve` process, killed when dropped.
struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    /// Starts `certgate serve`; its (JSON) log goes to `log` if given.
    fn start(config: &std::path::Path, database: &str, log: Option<&std::path::Path>) -> Gateway {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
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
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
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

/// Operation `id` once it is completed or failed, within `limit`.
async fn finished(http: &reqwest::Client, base: &str, id: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let op = get_op(http, base, id).await;
        if op["status"] == "completed" || op["status"] == "failed" {
            return op;
        }
        assert!(Instant::now() < deadline, "not finished: {op:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills a gateway (SIGKILL) while `n` operations are mid-call at a CA that applies an action
/// 1 s after receiving it and answers after 1.5 s, restarts it on the same database at once
/// (`database`: a SQLite file if `None`), and checks that every operation completes with the
/// action received once: the reads right after the restart show the old state, and prove
/// nothing until the attempts' timeout has passed.
async fn killed_mid_call(
    provider: &str,
    database: Option<String>,
    mount: impl AsyncFnOnce(&MockServer) -> Sim,
) {
    let n = 20;
    let mock = MockServer::start().await;
    let sim = mount(&mock).await;
    let run = common::run_digits();
    let dir = std::env::temp_dir().join(format!("certgate-crash-{provider}-{run}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("providers.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[executor]\nlease_ms = 1000\npoll_ms = 20\nbackoff_base_ms = 50\n",
            common::with_timeouts(
                &common::sectigo_api(&common::providers_toml_at(&mock.uri()), &mock.uri()),
                2_000
            )
        ),
    )
    .unwrap();
    let database = database.unwrap_or_else(|| {
        let _ = std::fs::remove_file(dir.join("certgate.db"));
        format!("sqlite://{}", dir.join("certgate.db").display())
    });

    let http = reqwest::Client::new();
    let first = Gateway::start(&config, &database, None);
    let mut ids = Vec::new();
    for i in 0..n {
        let order_id = format!("{}{}{i:04}", provider.len(), run);
        sim.order(&order_id, "issued");
        let body = json!({"provider": provider, "intent": "revoke", "note": "crash test",
                          "order": order(json!({"supplier_order_id": order_id, "certificate_id": null}))});
        let res = http
            .post(format!("{}/v1/operations", first.base))
            .bearer_auth(KEY)
            .header("idempotency-key", format!("crash-{i}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        ids.push((order_id, id));
    }
    // Kill the gateway once every action is at the CA, not applied yet, its answer still on
    // the way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids.iter().any(|(o, _)| sim.actions(o).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the actions never reached the CA"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();

    let logs = dir.join("second.log");
    let second = Gateway::start(&config, &database, Some(&logs));
    for (order_id, id) in &ids {
        let done = finished(&http, &second.base, id, Duration::from_secs(30)).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(sim.actions(order_id), ["revoke"], "sent once: {done:#}");
        assert_eq!(sim.applied(order_id), ["revoke"], "applied once: {done:#}");
        assert_eq!(sim.state(order_id), "revoked");
        assert!(
            done["history"]
                .to_string()
                .contains("confirmed by reading the CA"),
            "{done:#}"
        );
        assert_eq!(done["steps"][0]["attempts"], 1, "{done:#}");
    }
    drop(second);
    // One structured line per CA call, with what an operator needs and no secret.
    let text = std::fs::read_to_string(&logs).unwrap();
    let calls: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "CA call")
        .collect();
    assert!(calls.len() >= n, "{text}");
    for call in &calls {
        let span = &call["span"];
        assert_eq!(span["provider"], provider, "{call}");
        assert_eq!(
            span["action"], "read",
            "the restarted gateway only reads: {call}"
        );
        assert!(
            span["operation"].as_str().unwrap().starts_with("op_"),
            "{call}"
        );
        assert_eq!(span["tenant"], "default");
        assert_eq!(span["http_status"], 200, "{call}");
        assert_eq!(call["outcome"], "ok");
        assert!(call["duration_ms"].is_u64());
    }
    for secret in [common::DIGICERT_KEY, "sectigo-secret"] {
        assert!(!text.contains(secret), "a secret in the logs");
    }
    assert!(text.contains("operation status changed"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sectigo_revocations_killed_mid_call_complete_exactly_once_after_restart() {
    killed_mid_call("sectigo", None, async |mock| {
        let sectigo = Sectigo::new(Sim::new(slow()));
        sectigo.mount(mock).await;
        sectigo.sim
    })
    .await;
}

#[tokio::test]
async fn digicert_revocations_killed_mid_call_complete_exactly_once_after_restart() {
    killed_mid_call("digicert", None, async |mock| {
        let sim = Sim::new(slow());
        DigiCert(sim.clone()).mount(mock).await;
        sim
    })
    .await;
}

/// A CA that applies an action 1 s after receiving it and answers 1.5 s after.
fn slow() -> Behaviour {
    Behaviour {
        apply_after: Duration::from_millis(1_000),
        action_delay: Duration::from_millis(1_500),
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn digicert_revocations_killed_mid_call_on_postgres_complete_exactly_once() {
    let Some(url) = common::fresh_postgres(
        "digicert_revocations_killed_mid_call_on_postgres_complete_exactly_once",
    )
    .await
    else {
        return;
    };
    killed_mid_call("digicert", Some(url), async |mock| {
        let sim = Sim::new(slow());
        DigiCert(sim.clone()).mount(mock).await;
        sim
    })
    .await;
}

#[tokio::test]
async fn two_gateways_on_one_postgres_never_run_a_step_twice() {
    let Some(url) =
        common::fresh_postgres("two_gateways_on_one_postgres_never_run_a_step_twice").await
    else {
        return;
    };
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/services/v2/order/certificate/[^/]+$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 1, "status": "pending", "requests": []})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/services/v2/order/certificate/[^/]+/status$"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&mock)
        .await;
    let run = common::run_digits();
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
                          "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": format!("{run}{i:04}")}))});
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

#[tokio::test]
async fn commands_beside_a_running_gateway_touch_no_lease_and_a_second_serve_is_refused() {
    let mock = MockServer::start().await;
    // Actions answered 2 s after they are applied: every operation is mid-call for a while.
    let sim = Sim::new(Behaviour {
        action_delay: Duration::from_millis(2_000),
        ..Behaviour::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let run = common::run_digits();
    let dir = std::env::temp_dir().join(format!("certgate-beside-{run}"));
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
    let db_file = dir.join("certgate.db");
    let database = format!("sqlite://{}", db_file.display());
    let log = dir.join("gateway.log");
    let gateway = Gateway::start(&config, &database, Some(&log));
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let order_id = format!("9{run}{i}");
        sim.order(&order_id, "issued");
        let body = json!({"provider": "digicert", "intent": "revoke",
                          "order": order(json!({"supplier_order_id": order_id, "certificate_id": null}))});
        let res = http
            .post(format!("{}/v1/operations", gateway.base))
            .bearer_auth(KEY)
            .header("idempotency-key", format!("beside-{i}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let op: Value = res.json().await.unwrap();
        ids.push((order_id, op["id"].as_str().unwrap().to_owned()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids.iter().any(|(o, _)| sim.actions(o).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the actions never reached the CA"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every call is in flight: the operator's commands run beside the gateway.
    let certgate = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certgate"));
        cmd.env("CERTGATE_API_KEY", KEY)
            .env("DIGICERT_API_KEY", common::DIGICERT_KEY)
            .arg("--log-format")
            .arg("text");
        cmd
    };
    let lines = dir.join("orders.jsonl");
    std::fs::write(
        &lines,
        json!({"provider": "geotrust", "order": order(json!({"id": "watched-1"}))}).to_string(),
    )
    .unwrap();
    for args in [
        vec!["refunds", "report", "--database", &database],
        vec![
            "orders",
            "import",
            lines.to_str().unwrap(),
            "--database",
            &database,
        ],
        vec![
            "orders",
            "assign",
            "--tenant",
            "default",
            "--provider",
            "digicert",
            "123",
            "--database",
            &database,
        ],
    ] {
        let mut cmd = certgate();
        cmd.args(&args);
        if args[0] == "orders" {
            cmd.arg("--config").arg(&config);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A second gateway on the file is refused at once, naming the one that holds it.
    let out = certgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &database,
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another certgate serve")
            && stderr.contains(&gateway.child.id().to_string()),
        "{stderr}"
    );
    for (order_id, id) in &ids {
        let done = finished(&http, &gateway.base, id, Duration::from_secs(20)).await;
        assert_eq!(done["status"], "completed", "{done:#}");
        assert_eq!(sim.actions(order_id), ["revoke"], "sent once: {done:#}");
        // Its own worker finished it: nobody took the operation over mid-call.
        assert!(
            done["history"]
                .to_string()
                .contains("the CA completed revoke"),
            "{done:#}"
        );
    }
    drop(gateway);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("lease lost"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
