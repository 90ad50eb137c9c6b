//! The `certgate` binary as a user runs it: `serve` (with and without an API key),
//! `check-config` (tenants' keys included), `quote`, `sweep`, `orders import`, `orders assign`,
//! `refunds report` and `deliveries prune-dead`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn certgate() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(REPO)
        .env_remove("CERTGATE_API_KEY")
        .env_remove("CERTGATE_DATABASE_URL");
    cmd
}

/// Kills the server when the test ends, pass or fail.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `certgate serve` on a free port with `database` and the API key `key`: the running server
/// and the base URL it printed.
fn serve(database: &str, key: &str) -> (Running, String) {
    let child = certgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .env("CERTGATE_API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Running(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (server, base)
}

#[tokio::test]
async fn serve_answers_quotes_on_the_port_it_prints() {
    let (_server, base) = serve("sqlite::memory:", "cli-test-key");

    let body = json!({
        "provider": "geotrust", "intent": "refund", "as_of": "2026-06-15T08:30:00Z",
        "order": {"id": "o-1", "product": {"validation": "dv"}, "origin": "purchased", "state": "issued",
                  "purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-01T00:00:00Z",
                  "expires_at": "2027-06-01T00:00:00Z", "paid": {"amount": "49.00", "currency": "USD"}}
    });
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/quotes"))
        .bearer_auth("cli-test-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["allowed"], true);
    assert_eq!(q["rules"], json!(["RSL-30D", "RSL-PORTAL"]));
    assert_eq!(q["deadline"], "2026-07-01T00:00:00Z");
}

#[test]
fn serve_refuses_to_start_without_an_api_key() {
    let out = certgate()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CERTGATE_API_KEY is not set"), "{stderr}");
    assert!(stderr.contains("export CERTGATE_API_KEY="), "{stderr}");
}

#[test]
fn serve_refuses_a_bad_database_url() {
    let out = certgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "mysql://x",
        ])
        .env("CERTGATE_API_KEY", "k")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database"));
}

#[test]
fn serve_reports_an_unreachable_store_with_its_cause_and_exits() {
    // `serve` on `database`: its stderr (it must fail) and how long it took.
    let serve = |database: &str, extra: &[&str]| {
        let started = std::time::Instant::now();
        let out = certgate()
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(extra)
            .env("CERTGATE_API_KEY", "k")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("cannot be reached"), "{err}");
        (err, started.elapsed())
    };
    // Nothing listens on port 1: the connection is refused at once, and the cause is said.
    let (err, took) = serve("postgres://certgate@127.0.0.1:1/certgate", &[]);
    assert!(err.to_lowercase().contains("refused"), "the cause: {err}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    // A host that does not answer: given up after the configured time.
    let (err, took) = serve(
        "postgres://certgate@10.255.255.1:5432/certgate",
        &["--database-timeout-seconds", "1"],
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}: {err}");
}

#[test]
fn check_config_reports_every_problem_with_provider_and_key() {
    let dir = std::env::temp_dir().join(format!("certgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "[providers.alibaba]\nkind = \"alibaba\"\n[providers.alibaba.settings]\nrefund_window_days = -1\nspeed = 3\n\
         [providers.acme]\nkind = \"verisign\"\n\
         [providers.geotrust]\nkind = \"geotrust\"\nmode = \"api\"\ncolour = \"blue\"\nholidays = [\"2026-12-25\", \"2026-02-30\"]\n",
    )
    .unwrap();
    let out = certgate()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every problem of every provider, several in one provider included, in plain words.
    for key in [
        "providers.alibaba.settings.refund_window_days",
        "providers.alibaba.settings.speed",
        "providers.acme.kind",
        "providers.geotrust.colour",
        "providers.geotrust.holidays[1]",
    ] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
    assert!(stderr.contains("must not be negative"), "{stderr}");
    assert!(stderr.contains("a date like 2026-12-25"), "{stderr}");
    assert!(stderr.contains("5 problems"), "{stderr}");

    let out = certgate().args(["check-config"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("symantec"));
}

#[test]
fn quote_prints_the_answer() {
    let dir = std::env::temp_dir().join(format!("certgate-cli-q-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("order.json");
    std::fs::write(
        &file,
        json!({"id": "o-2", "product": {"validation": "ev"}, "origin": "purchased", "state": "issued",
               "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z",
               "expires_at": "2027-06-10T00:00:00Z", "paid": {"amount": "300.00", "currency": "USD"}})
        .to_string(),
    )
    .unwrap();
    let out = certgate()
        .args([
            "quote",
            "--provider",
            "trustwave",
            "--intent",
            "refund",
            "--as-of",
            "2026-06-15T08:30:00Z",
            "--order",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["allowed"], false);
    assert_eq!(q["rules"], json!(["RSL-TW-EV"]));
    assert_eq!(q["alternative"], "revoke");

    let out = certgate()
        .args([
            "quote",
            "--provider",
            "nope",
            "--intent",
            "refund",
            "--order",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown provider"));
}

#[test]
fn sweep_streams_a_json_lines_file() {
    let dir = std::env::temp_dir().join(format!("certgate-cli-s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("orders.jsonl");
    let line = |provider: &str, id: &str, issued: &str| {
        json!({"provider": provider, "order": {"id": id, "product": {"validation": "dv"}, "origin": "purchased", "state": "issued",
               "purchased_at": issued, "issued_at": issued, "expires_at": "2027-06-01T00:00:00Z",
               "paid": {"amount": "10.00", "currency": "USD"}}})
        .to_string()
    };
    let lines = [
        line("thawte", "b", "2026-05-21T00:00:00Z"),
        line("thawte", "a", "2026-05-17T00:00:00Z"),
        "oops".to_owned(),
        line("thawte", "c", "2026-06-10T00:00:00Z"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = certgate()
        .args([
            "sweep",
            "--within-days",
            "7",
            "--as-of",
            "2026-06-15T08:30:00Z",
            "--stats",
            "--input",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<_> = hits
        .iter()
        .map(|h| h["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(hits[0]["quote"]["rules"], json!(["RSL-30D", "RSL-PORTAL"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3:"), "{stderr}");
    assert!(stderr.contains("swept 4 lines (1 invalid)"), "{stderr}");
}

#[tokio::test]
async fn sighup_reloads_a_valid_config_and_keeps_the_running_one_when_invalid() {
    let dir = std::env::temp_dir().join(format!("certgate-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("certgate.toml");
    let providers = std::fs::read_to_string(format!("{REPO}/providers.toml")).unwrap();
    let tenant = |id: &str| {
        format!("\n[[tenants]]\nid = \"{id}\"\napi_key = \"${{HUP_{}_KEY}}\"\nreseller_username = \"{id}-r\"\n", id.to_uppercase())
    };
    std::fs::write(&file, format!("{providers}{}", tenant("first"))).unwrap();
    let child = certgate()
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "sqlite::memory:",
            "--config",
        ])
        .arg(&file)
        .env("HUP_FIRST_KEY", "first-key")
        .env("HUP_SECOND_KEY", "second-key")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut server = Running(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    let stderr = server.0.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let http = reqwest::Client::new();
    let status = |key: &'static str| {
        let req = http
            .get(format!("{base}/v1/operations"))
            .bearer_auth(key)
            .send();
        async move { req.await.unwrap().status().as_u16() }
    };
    let hangup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    let wait_log = |needle: &'static str| {
        let log = log.clone();
        async move {
            for _ in 0..100 {
                if log.lock().unwrap().contains(needle) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("no `{needle}` in the log: {}", log.lock().unwrap());
        }
    };
    assert_eq!(
        (status("first-key").await, status("second-key").await),
        (200, 401)
    );

    // A valid file: the new tenant's key works at once, the process lives on.
    std::fs::write(
        &file,
        format!("{providers}{}{}", tenant("first"), tenant("second")),
    )
    .unwrap();
    hangup();
    wait_log("config reloaded").await;
    assert_eq!(
        (status("first-key").await, status("second-key").await),
        (200, 200)
    );

    // An invalid one: every problem logged, the running config stays.
    std::fs::write(
        &file,
        format!(
            "{providers}{}\n[providers.acme]\nkind = \"verisign\"\n[executor]\nthreads = 3\n",
            tenant("first")
        ),
    )
    .unwrap();
    hangup();
    wait_log("config not reloaded").await;
    let text = log.lock().unwrap().clone();
    assert!(text.contains("threads"), "{text}");
    assert_eq!(
        (status("first-key").await, status("second-key").await),
        (200, 200)
    );
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the gateway"
    );
}

/// A directory of this test's own under the system's temporary one.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "certgate-{name}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn watched_line(id: &str, issued: &str, paid: &str) -> String {
    json!({"provider": "geotrust", "order": {
        "id": id, "product": {"validation": "dv"}, "origin": "purchased", "state": "issued",
        "purchased_at": issued, "issued_at": issued, "expires_at": "2099-01-01T00:00:00Z",
        "paid": {"amount": paid, "currency": "USD"}}})
    .to_string()
}

#[tokio::test]
async fn orders_import_loads_the_good_lines_and_names_the_bad_ones() {
    let dir = scratch("import");
    let db = format!("sqlite://{}", dir.join("certgate.db").display());
    let issued = (chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339();
    let lines = [
        watched_line("o-1", &issued, "10.00"),
        watched_line("o-2", &issued, "20.00"),
        String::new(),
        json!({"provider": "geotrust", "order": {"id": "o-bad"}}).to_string(),
        watched_line("o-3", &issued, "30.00"),
        watched_line("o-1", &issued, "11.00"),
        json!({"provider": "nobody", "order": {}}).to_string(),
    ];
    let file = dir.join("orders.jsonl");
    // Then a line that is not UTF-8 and one of 2 MB: each named and skipped, the rest read.
    let mut bytes = lines.join("\n").into_bytes();
    bytes.extend_from_slice(b"\n{\"provider\": \"geo\xff\"}\n");
    bytes.extend(std::iter::repeat_n(b'x', 2 << 20));
    bytes.push(b'\n');
    bytes.extend_from_slice(watched_line("o-4", &issued, "40.00").as_bytes());
    std::fs::write(&file, bytes).unwrap();
    let out = certgate()
        .args(["orders", "import"])
        .arg(&file)
        .args(["--database", &db])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("imported 5 lines"), "{stdout}");
    assert!(stderr.contains("line 4: missing field"), "{stderr}");
    assert!(stderr.contains("line 7: missing field"), "{stderr}");
    assert!(stderr.contains("line 8: not valid UTF-8"), "{stderr}");
    assert!(stderr.contains("line 9: longer than 1024 KiB"), "{stderr}");
    let store = certgate_store::Store::connect(&db).await.unwrap();
    let filter = certgate_store::WatchedFilter {
        limit: 10,
        ..Default::default()
    };
    let rows = store
        .list_watched(&certgate_core::TenantId::from("default"), &filter)
        .await
        .unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["o-1", "o-2", "o-3", "o-4"]);
    assert!(
        rows[0].body.contains("11.00"),
        "the last line wins: {}",
        rows[0].body
    );
    assert!(rows
        .iter()
        .all(|r| r.submit_key != certgate_store::NO_WINDOW));
    store.close().await;

    let out = certgate()
        .args([
            "orders",
            "import",
            "-",
            "--tenant",
            "nobody",
            "--database",
            &db,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tenant: no tenant `nobody`"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn refunds_report_sums_what_the_gateway_recorded() {
    let dir = scratch("report");
    let db = format!("sqlite://{}", dir.join("certgate.db").display());
    let report = |format: &str| {
        let out = certgate()
            .args(["refunds", "report", "--database", &db, "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(report("table").contains("no refunds yet"));

    // A Sectigo refund (a manual ticket by default), run by the real gateway on that file.
    let (server, base) = serve(&db, "cli-report-key");
    let client = reqwest::Client::new();
    let issued = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let line: Value = serde_json::from_str(&watched_line("o-9", &issued, "49.00")).unwrap();
    let mut order = line["order"].clone();
    order["supplier_order_id"] = json!("SEC-9");
    let body = json!({"provider": "sectigo", "intent": "refund", "order": order});
    let op: Value = client
        .post(format!("{base}/v1/operations"))
        .bearer_auth("cli-report-key")
        .header("idempotency-key", "report-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = op["id"].as_str().unwrap().to_owned();
    let ticket = loop {
        let op: Value = client
            .get(format!("{base}/v1/operations/{id}"))
            .bearer_auth("cli-report-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(t) = op["steps"][0]["ticket_id"].as_str() {
            break t.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let resolved = client
        .post(format!("{base}/v1/tickets/{ticket}/resolve"))
        .bearer_auth("cli-report-key")
        .json(&json!({"outcome": "done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    drop(server);

    assert_eq!(
        report("csv"),
        "provider,currency,expected,credited,outstanding,overdue,mismatched\n\
         sectigo,USD,49.00,0.00,49.00,0,0\n"
    );
    let json: Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!(json["by_provider"][0]["outstanding"], "49.00");
    assert!(report("table").contains("sectigo"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A config file of the repository's providers and two tenants, each key from `vars`.
fn two_tenants(dir: &std::path::Path, vars: [&str; 2]) -> std::path::PathBuf {
    let providers =
        std::fs::read_to_string(std::path::Path::new(REPO).join("providers.toml")).unwrap();
    let file = dir.join("tenants.toml");
    std::fs::write(
        &file,
        format!(
            "{providers}\n[[tenants]]\nid = \"acme\"\napi_key = \"${{{}}}\"\nreseller_username = \"acme-r\"\n\
             [[tenants]]\nid = \"globex\"\napi_keys = [\"${{{}}}\"]\nreseller_username = \"globex-r\"\n",
            vars[0], vars[1]
        ),
    )
    .unwrap();
    file
}

#[test]
fn check_config_and_serve_refuse_a_key_two_tenants_share_naming_both() {
    let dir = scratch("dupkeys");
    let file = two_tenants(&dir, ["ACME_KEY", "GLOBEX_KEY"]);
    for args in [
        vec!["check-config", "--config"],
        vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "sqlite::memory:",
            "--config",
        ],
    ] {
        let out = certgate()
            .args(&args)
            .arg(&file)
            .env("ACME_KEY", "the-same-key-0123456789")
            .env("GLOBEX_KEY", "the-same-key-0123456789")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("tenants[1].api_keys[0]"), "{stderr}");
        assert!(
            stderr.contains("acme") && stderr.contains("globex"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("the-same-key"),
            "a key is never printed: {stderr}"
        );
    }
    // Whitespace around a key is not another key (a bearer key is read without it).
    let out = certgate()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("ACME_KEY", "the-same-key-0123456789")
        .env("GLOBEX_KEY", " the-same-key-0123456789\t")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // A provider's problem and the tenants' are reported together.
    let broken = dir.join("broken.toml");
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "base_url = \"https://www.digicert.com/services/v2\"",
        "base_url = \"http://www.digicert.com/services/v2\"",
        1,
    );
    std::fs::write(&broken, text).unwrap();
    let out = certgate()
        .args(["check-config", "--config"])
        .arg(&broken)
        .env("ACME_KEY", "the-same-key-0123456789")
        .env("GLOBEX_KEY", "the-same-key-0123456789")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("providers.digicert.api.base_url"),
        "{stderr}"
    );
    assert!(stderr.contains("tenants[1].api_keys[0]"), "{stderr}");
    let out = certgate()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("ACME_KEY", "acme-key-0123456789")
        .env("GLOBEX_KEY", "globex-key-0123456789")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn orders_assign_moves_a_shared_order_to_a_tenant_and_audits_it() {
    let dir = scratch("assign");
    let file = two_tenants(&dir, ["ACME_KEY", "GLOBEX_KEY"]);
    let db = format!("sqlite://{}", dir.join("certgate.db").display());
    let assign = |tenant: &str, ids: &[&str]| {
        certgate()
            .args([
                "orders",
                "assign",
                "--tenant",
                tenant,
                "--provider",
                "geotrust",
                "--database",
                &db,
                "--config",
            ])
            .arg(&file)
            .args(ids)
            .output()
            .unwrap()
    };
    let out = assign("acme", &["1001", "1002"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("geotrust 1001: now tenant acme's"),
        "{stdout}"
    );
    let out = assign("globex", &["1001"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("moved from tenant acme to tenant globex"),
        "{stdout}"
    );
    // Not a DigiCert order id, an unknown tenant, a provider without an API: refused.
    for (tenant, ids, expected) in [
        ("acme", vec!["../1"], "not a geotrust supplier_order_id"),
        ("nobody", vec!["1003"], "no tenant `nobody`"),
    ] {
        let out = assign(tenant, &ids);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
    let out = certgate()
        .args([
            "orders",
            "assign",
            "--tenant",
            "acme",
            "--provider",
            "trustwave",
            "--database",
            &db,
            "--config",
        ])
        .arg(&file)
        .arg("1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no shared CA account"));

    // The store shows the owners; DigiCert and its brands share one account, so the brand's
    // order is the DigiCert provider's too. Both tenants' audit logs tell the move.
    let store = certgate_store::Store::connect(&db).await.unwrap();
    let account = "digicert|https://www.digicert.com/services/v2";
    let owner = |order: &'static str| {
        let store = store.clone();
        async move {
            store
                .order_owner(certgate_store::OrderRef { account, order })
                .await
                .unwrap()
                .map(|o| o.tenant)
        }
    };
    assert_eq!(
        owner("1001")
            .await
            .as_ref()
            .map(certgate_core::TenantId::as_str),
        Some("globex")
    );
    assert_eq!(
        owner("1002")
            .await
            .as_ref()
            .map(certgate_core::TenantId::as_str),
        Some("acme")
    );
    for (tenant, outcome) in [("acme", "moved_away"), ("globex", "assigned")] {
        let log = store
            .list_audit(&certgate_core::TenantId::from(tenant), None, 10)
            .await
            .unwrap();
        assert!(
            log.iter().any(|e| e.action == "order.assign"
                && e.outcome == outcome
                && e.actor == "operator"),
            "{tenant}: {log:?}"
        );
    }
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Dead deliveries stay until an operator prunes them: `deliveries prune-dead` deletes those
/// of the tenant named, old enough, and nothing else.
#[tokio::test]
async fn deliveries_prune_dead_deletes_only_the_dead_ones_asked_for() {
    use certgate_core::event::{DeliveryStatus, DeliveryTarget, EventType};
    use certgate_store::{Attempt, DeliveryWrite, Effects, NewOperation, Store};

    let dir = scratch("prune-dead");
    let db = format!("sqlite://{}", dir.join("certgate.db").display());
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000;
    let store = Store::connect(&db).await.unwrap();
    // Per tenant: a dead delivery 10 days old, a dead one 1 day old, a pending one.
    for tenant in ["acme", "other"] {
        let id = format!("op_{tenant}");
        let deliveries = [10 * day, day, 0].map(|age| DeliveryWrite {
            tenant: tenant.into(),
            event_id: format!("evt_{tenant}_{age}"),
            event_type: EventType::OperationStatusChanged,
            target: DeliveryTarget::Webhook,
            // One stream each, so that each is claimed in turn.
            stream: format!("{id}_{age}"),
            url: "http://127.0.0.1:9/hook".into(),
            payload: "{}".into(),
            now: now - age,
            expires_at: now + day,
        });
        let op = NewOperation {
            id: &id,
            tenant: &certgate_core::TenantId::from(tenant),
            idempotency_key: "k",
            request_hash: "h",
            provider: "digicert",
            status: certgate_core::operation::Status::Queued,
            now,
            next_run_at: None,
            body: "{}".into(),
        };
        let fx = Effects {
            deliveries: deliveries.into(),
            ..Effects::default()
        };
        store.insert_operation(&op, &fx, None).await.unwrap();
        for _ in 0..2 {
            let d = store
                .claim_delivery(
                    &certgate_core::TenantId::from(tenant),
                    DeliveryTarget::Webhook,
                    now,
                    std::time::Duration::from_secs(1),
                )
                .await
                .unwrap()
                .unwrap();
            let dead = Attempt {
                status_code: Some(503),
                error: Some("the receiver answered 503".into()),
                next_attempt_at: None,
                now,
            };
            store.record_attempt(d.id, &dead).await.unwrap();
        }
    }
    let statuses = |store: Store, tenant: &'static str| async move {
        let mut s: Vec<_> = store
            .list_deliveries(&certgate_core::TenantId::from(tenant), None, 0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.status)
            .collect();
        s.sort_by_key(|s| s.as_str());
        s
    };
    let prune = |args: &[&str]| {
        let out = certgate()
            .args(["deliveries", "prune-dead", "--database", &db])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };

    let out = prune(&["--older-than-days", "5", "--tenant", "acme"]);
    assert!(out.starts_with("pruned 1 dead deliveries"), "{out}");
    use DeliveryStatus::{Dead, Pending};
    assert_eq!(statuses(store.clone(), "acme").await, [Dead, Pending]);
    assert_eq!(
        statuses(store.clone(), "other").await,
        [Dead, Dead, Pending]
    );

    let out = prune(&["--older-than-days", "0"]);
    assert!(out.starts_with("pruned 3 dead deliveries"), "{out}");
    assert_eq!(statuses(store.clone(), "acme").await, [Pending]);
    assert_eq!(statuses(store.clone(), "other").await, [Pending]);
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
