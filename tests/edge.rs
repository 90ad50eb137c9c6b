//! The HTTP edge under hostile clients, against the real binary: a connection that stalls in
//! its headers is closed, SIGTERM with a stalled client exits within the grace, repeated wrong
//! keys (API and desk, counted apart) are answered 429 with `Retry-After`, `/metrics` behind
//! its key, a tenant's third concurrent sweep refused before its body is read, request ids,
//! and invisible format characters refused.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_certgate");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
const KEY: &str = "edge-test-key-0123456789";
const DESK_KEY: &str = "edge-desk-key-0123456789";
const METRICS_KEY: &str = "edge-metrics-key-0123456789";
const DESK_NEXT_KEY: &str = "edge-desk-key-next-0123456789";

/// Kills the server when the test ends, pass or fail.
struct Running {
    child: std::process::Child,
    base: String,
    addr: String,
    /// Its config file.
    file: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `certgate serve` on a free port with the repository's providers and `extra` config lines.
fn serve(name: &str, extra: &str) -> Running {
    let dir = std::env::temp_dir().join(format!("certgate-edge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let providers = std::fs::read_to_string(format!("{REPO}/providers.toml")).unwrap();
    let file = dir.join("certgate.toml");
    std::fs::write(
        &file,
        format!(
            "{providers}\n[[desk_users]]\nname = \"ann\"\ntenants = [\"default\"]\nkey = \"${{EDGE_DESK_KEY}}\"\n{extra}"
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .current_dir(REPO)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "sqlite::memory:",
            "--config",
        ])
        .arg(&file)
        .env("CERTGATE_API_KEY", KEY)
        .env("EDGE_DESK_KEY", DESK_KEY)
        .env("EDGE_DESK_KEY_NEXT", DESK_NEXT_KEY)
        .env("EDGE_METRICS_KEY", METRICS_KEY)
        .env_remove("CERTGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let addr = base.trim_start_matches("http://").to_owned();
    Running {
        child,
        base,
        addr,
        file,
    }
}

/// Reads what the server sends until it closes the connection or `limit` passes: the bytes,
/// and whether it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Sends an authenticated POST to `path` whose body (1,000 bytes announced) stops at `{`.
fn half_sent(stream: &mut TcpStream, path: &str) {
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    )
    .unwrap();
}

#[test]
fn a_connection_that_stalls_in_its_headers_is_closed() {
    let server = serve("stall", "[server]\nheader_read_timeout_ms = 500\n");
    let started = Instant::now();
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ")
        .unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(&server.addr).unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(closed);
}

#[test]
fn sigterm_with_a_stalled_client_exits_within_the_grace() {
    let mut server = serve(
        "grace",
        "[server]\nheader_read_timeout_ms = 60000\nshutdown_grace_ms = 1000\n",
    );
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    // Authenticated, its body half sent: the handler waits for the rest.
    half_sent(&mut stream, "/v1/quotes");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM and the grace"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(stream);
}

#[tokio::test]
async fn repeated_wrong_keys_are_answered_429_and_the_api_and_desk_count_apart() {
    let server = serve("guess", "[server]\nfailed_auth_per_minute = 3\n");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = |key: &'static str| {
        http.get(format!("{}/v1/providers", server.base))
            .bearer_auth(key)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(api("not-the-key").await.unwrap().status(), 401);
    }
    for key in ["not-the-key", KEY] {
        let res = api(key).await.unwrap();
        assert_eq!(res.status(), 429, "even the right key waits: {key}");
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "too_many_requests");
    }
    // The desk's door has its own count.
    assert_eq!(
        desk_login(&http, &server.base, DESK_KEY).await.status(),
        303
    );
    for _ in 0..3 {
        assert_eq!(desk_login(&http, &server.base, "wrong").await.status(), 401);
    }
    let res = desk_login(&http, &server.base, DESK_KEY).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

/// Logs in to the desk at `base` with `key` as a browser does: the login form first (its
/// token and cookie), then the POST.
async fn desk_login(http: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    let form = http.get(format!("{base}/desk/login")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = form.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = html[at..at + 32].to_owned();
    http.post(format!("{base}/desk/login"))
        .header("cookie", cookie)
        .form(&[("key", key), ("csrf", &token)])
        .send()
        .await
        .unwrap()
}

/// The session cookie (`name=value`) a successful desk login set.
fn session_of(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|l| l.starts_with("certgate_desk="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_desk_session_ends_when_its_users_key_changes() {
    let mut server = serve("rotate", "");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = desk_login(&http, &server.base, DESK_KEY).await;
    assert_eq!(res.status(), 303);
    let session = session_of(&res);
    let queue = || {
        http.get(format!("{}/desk", server.base))
            .header("cookie", &session)
            .send()
    };
    assert_eq!(queue().await.unwrap().status(), 200);
    // The operator rotates ann's key (to another variable the process has) and reloads.
    let file = server.file.clone();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("${EDGE_DESK_KEY}", "${EDGE_DESK_KEY_NEXT}"),
    )
    .unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = queue().await.unwrap();
        if res.status() == 303 {
            assert_eq!(res.headers()["location"], "/desk/login");
            break;
        }
        assert!(Instant::now() < deadline, "the old key's session goes on");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = desk_login(&http, &server.base, DESK_NEXT_KEY).await;
    assert_eq!(res.status(), 303, "the new key logs in");
    server.child.kill().ok();
}

#[tokio::test]
async fn metrics_need_their_key_when_one_is_set() {
    let server = serve(
        "metrics",
        "[server]\nmetrics_key = \"${EDGE_METRICS_KEY}\"\n",
    );
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.base);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let res = http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(res.status(), 401, "a tenant's key is not the metrics key");
    let res = http
        .get(&url)
        .bearer_auth(METRICS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("certgate_http_requests"));
}

#[test]
fn a_metrics_key_whose_variable_is_unset_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("certgate-edge-unset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("certgate.toml");
    std::fs::write(
        &file,
        "[server]\nmetrics_key = \"${EDGE_UNSET_METRICS_KEY}\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .env_remove("EDGE_UNSET_METRICS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.metrics_key") && stderr.contains("EDGE_UNSET_METRICS_KEY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_tenants_sweep_beyond_its_cap_is_refused_before_its_body_is_read() {
    let server = serve("sweeps", "[server]\nsweeps_per_tenant = 1\n");
    // The first sweep holds its slot: its body is still coming.
    let mut first = TcpStream::connect(&server.addr).unwrap();
    half_sent(&mut first, "/v1/sweep");
    std::thread::sleep(Duration::from_millis(300));
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/sweep", server.base))
        .bearer_auth(KEY)
        .json(&json!({"orders": [], "within_days": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // Once the first is gone, the slot is free again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = http
            .post(format!("{}/v1/sweep", server.base))
            .bearer_auth(KEY)
            .json(&json!({"orders": [], "within_days": 7}))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            let out: Value = res.json().await.unwrap();
            assert_eq!(out["swept"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let server = serve("ids", "");
    let http = reqwest::Client::new();
    let get = |id: Option<&str>| {
        let mut req = http
            .get(format!("{}/v1/nothing-here", server.base))
            .bearer_auth(KEY);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let res = get(Some("backend-req-42")).await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-request-id"], "backend-req-42");
    for bad in [None, Some("has space"), Some(&*"x".repeat(129))] {
        let res = get(bad).await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{bad:?} -> {id}"
        );
    }
    let a = get(None).await.unwrap().headers()["x-request-id"].clone();
    let b = get(None).await.unwrap().headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn invisible_format_characters_are_refused_naming_the_field() {
    let server = serve("cf", "");
    let http = reqwest::Client::new();
    let order = |supplier: &str| {
        let mut o = certgate_core::testing::sample();
        o["supplier_order_id"] = json!(supplier);
        json!({"provider": "sectigo", "intent": "refund", "order": o})
    };
    for hidden in ["77\u{200B}01", "\u{FEFF}7701", "77\u{AD}01", "77\u{E0041}"] {
        let res = http
            .post(format!("{}/v1/quotes", server.base))
            .bearer_auth(KEY)
            .json(&order(hidden))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{hidden:?}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "order.supplier_order_id", "{p}");
    }
    let res = http
        .post(format!("{}/v1/quotes", server.base))
        .bearer_auth(KEY)
        .json(&order("7701"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn a_request_not_answered_in_time_is_a_503_problem() {
    let server = serve("timeout", "[server]\nrequest_timeout_ms = 300\n");
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    // Its body never comes whole.
    half_sent(&mut stream, "/v1/quotes");
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = serve(
        "cap",
        "[server]\nmax_connections = 2\nheader_read_timeout_ms = 60000\n",
    );
    // Two idle connections hold the cap.
    let held: Vec<_> = (0..2)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let url = format!("{}/healthz", server.base);
    assert!(
        http.get(&url).send().await.is_err(),
        "served beyond the cap"
    );
    drop(held);
    let http = reqwest::Client::new();
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_holds_its_connection_no_longer() {
    let server = serve(
        "slowreader",
        "[server]\nmax_connections = 1\nrequest_timeout_ms = 1000\n",
    );
    // Many answers asked for, none read: the server's writes stop making progress.
    let mut stalled = TcpStream::connect(&server.addr).unwrap();
    let ask = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    stalled.write_all(ask.as_bytes()).unwrap();
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let res = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "served only after {:?}",
        started.elapsed()
    );
    drop(stalled);
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_at_once_and_desk_errors_carry_the_csp() {
    let server = serve("declared", "");
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "POST /v1/quotes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let res = reqwest::get(format!("{}/desk/nothing-here", server.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("content-security-policy"));
}
