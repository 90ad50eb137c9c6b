//! Test helpers: the real gateway on a random port (with its executor and webhook delivery),
//! the repository's providers.toml with CA base URLs pointed at mock servers.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod sim;

use certgate_core::config::SecretRef;
use certgate_engine::{Background, Engine};
use certgate_server::config::{ExecutorConfig, TenantConfig, WebhooksConfig};
use certgate_server::AppState;
use certgate_store::Store;
use serde_json::Value;
use std::path::Path;

pub const KEY: &str = "test-key-0123456789";
pub const DIGICERT_KEY: &str = "dc-devkey-test-secret";

/// The repository's providers.toml.
pub fn providers_toml() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("providers.toml")).unwrap()
}

/// providers.toml with every CA API pointed at `mock` (a wiremock server's URI).
pub fn providers_toml_at(mock: &str) -> String {
    providers_toml()
        .replace(
            "https://www.digicert.com/services/v2",
            &format!("{mock}/services/v2"),
        )
        .replace("https://cas.aliyuncs.com/", &format!("{mock}/"))
}

/// `text` with Sectigo switched to its reseller API at `base` (`mode = "api"`).
pub fn sectigo_api(text: &str, base: &str) -> String {
    std::env::set_var("SECTIGO_LOGIN", "reseller1");
    std::env::set_var("SECTIGO_PASSWORD", "sectigo-secret");
    text.replace(
        "[providers.sectigo.settings]",
        &format!(
            "[providers.sectigo.api]\nbase_url = \"{base}/products\"\n\
             credentials = {{ login_name = \"${{SECTIGO_LOGIN}}\", login_password = \"${{SECTIGO_PASSWORD}}\" }}\n\n\
             [providers.sectigo.settings]"
        ),
    )
    .replace(
        "mode = \"manual\"\nholidays = []\n\n[providers.sectigo.api]",
        "mode = \"api\"\nholidays = []\n\n[providers.sectigo.api]",
    )
}

/// `text` with every CA API's call timeout set to `ms`.
pub fn with_timeouts(text: &str, ms: u64) -> String {
    let mut text = text.to_owned();
    for p in [
        "alibaba", "digicert", "geotrust", "thawte", "symantec", "sectigo",
    ] {
        text = text.replace(
            &format!("[providers.{p}.api]\n"),
            &format!("[providers.{p}.api]\ntimeout_ms = {ms}\n"),
        );
    }
    text
}

/// DigiCert's rate limits as providers.toml declares them.
pub const DIGICERT_LIMITS: &str =
    "rate_limits = [{ requests = 100, per_ms = 5000 }, { requests = 1000, per_ms = 300000 }]";

/// A test clock: `start` when this test binary first asked, running at real speed from there
/// (an operation's `as_of` must be within 5 minutes of the gateway's clock, and its retries
/// fall due as time passes). Use as `clock: || common::clock_from("2026-06-15T08:30:00Z")`.
pub fn clock_from(start: &str) -> chrono::DateTime<chrono::Utc> {
    static FIRST: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = FIRST.get_or_init(std::time::Instant::now).elapsed();
    start.parse::<chrono::DateTime<chrono::Utc>>().unwrap()
        + chrono::Duration::from_std(elapsed).unwrap()
}

/// Fast executor timings for tests.
pub fn fast_executor() -> ExecutorConfig {
    ExecutorConfig {
        workers: 4,
        lease_ms: 2_000,
        poll_ms: 10,
        max_attempts: 4,
        backoff_base_ms: 20,
        backoff_max_ms: 200,
        recheck_ms: 50,
        ..ExecutorConfig::default()
    }
}

/// A name unique to this run (rows of other runs may share a Postgres database).
pub fn run_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Digits unique to this run, for CA order ids (which are digits) that other runs sharing a
/// Postgres database must not reuse.
pub fn run_digits() -> String {
    (u128::from_str_radix(&run_id(), 16).unwrap() % 1_000_000_000_000).to_string()
}

/// DigiCert's order `id` in `status`, read `expect` times.
pub async fn digicert_order(mock: &wiremock::MockServer, id: &str, status: &str, expect: u64) {
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(format!(
            "/services/v2/order/certificate/{id}"
        )))
        .and(wiremock::matchers::header("X-DC-DEVKEY", DIGICERT_KEY))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "id": id, "status": status, "certificate": {"common_name": "shop.example.com"},
                "product": {"name_id": "ssl_basic", "type": "ssl_certificate"}, "requests": []
            })),
        )
        .expect(expect)
        .mount(mock)
        .await;
}

/// DigiCert's cancel of order `id` with the note "customer asked", sent `expect` times.
pub async fn digicert_cancel(mock: &wiremock::MockServer, id: &str, expect: u64) {
    wiremock::Mock::given(wiremock::matchers::method("PUT"))
        .and(wiremock::matchers::path(format!("/services/v2/order/certificate/{id}/status")))
        .and(wiremock::matchers::header("X-DC-DEVKEY", DIGICERT_KEY))
        .and(wiremock::matchers::header("content-type", "application/json"))
        .and(wiremock::matchers::body_json(
            serde_json::json!({"status": "canceled", "note": "customer asked", "send_emails": false}),
        ))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .expect(expect)
        .mount(mock)
        .await;
}

/// A server that must receive nothing (`verify` fails if it did): where a redirect points, or
/// a CA no request may reach.
pub async fn untouchable() -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    server
}

/// A Postgres database of this test alone, on the server `CERTGATE_TEST_POSTGRES_URL` names
/// (`None`, saying so, when it is not set): gateways claim any due operation of their
/// database, so a test that shares one with another run (CI beside a developer's run, or rows
/// a killed run left behind) would run the other's operations against its own mock CA. Such
/// databases older than an hour, left by runs that died, are dropped first.
pub async fn fresh_postgres(test: &str) -> Option<String> {
    use sqlx::Connection;
    let Some(url) = std::env::var("CERTGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("SKIPPED: {test} needs CERTGATE_TEST_POSTGRES_URL");
        return None;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let old: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'certgate_test_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let hour_ago = u128::from_str_radix(&run_id(), 16).unwrap() - 3_600 * 1_000_000_000;
    for db in old {
        let born = db
            .strip_prefix("certgate_test_")
            .and_then(|n| u128::from_str_radix(n, 16).ok());
        if born.is_some_and(|b| b < hour_ago) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
                .execute(&mut conn)
                .await;
        }
    }
    let db = format!("certgate_test_{}", run_id());
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut fresh = url::Url::parse(&url).unwrap();
    fresh.set_path(&format!("/{db}"));
    Some(fresh.to_string())
}

/// Fast webhook retries for tests.
pub fn fast_webhooks() -> WebhooksConfig {
    WebhooksConfig {
        backoff_base_ms: 20,
        backoff_max_ms: 200,
        timeout_ms: 2_000,
        ..WebhooksConfig::default()
    }
}

/// How to start a test gateway.
pub struct Setup {
    pub providers_toml: String,
    pub database: String,
    pub tenants: Vec<TenantConfig>,
    pub executor: ExecutorConfig,
    /// Start the executor and webhook delivery.
    pub background: bool,
    pub helpdesk: Option<certgate_engine::Helpdesk>,
    pub webhooks: WebhooksConfig,
    /// The gateway's clock (a test may move it on).
    pub clock: certgate_engine::Clock,
    pub watch: certgate_server::config::WatchConfig,
    pub desk_users: Vec<certgate_server::config::DeskUserConfig>,
    /// The desk's sessions and cookies.
    pub desk: certgate_server::config::DeskConfig,
    /// The plugins and clients the providers are built with.
    pub registry: fn() -> certgate_core::RegistryBuilder,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            providers_toml: providers_toml(),
            database: "sqlite::memory:".into(),
            tenants: Vec::new(),
            executor: fast_executor(),
            background: true,
            helpdesk: None,
            webhooks: fast_webhooks(),
            clock: chrono::Utc::now,
            watch: certgate_server::config::WatchConfig::default(),
            desk_users: Vec::new(),
            desk: certgate_server::config::DeskConfig::default(),
            registry: certgate::registry_builder,
        }
    }
}

/// A tenant whose key and webhook secret are read from variables set here.
pub fn tenant(id: &str, key: &str, webhook: Option<(&str, &str)>) -> TenantConfig {
    let var = |suffix: &str| {
        format!(
            "CERTGATE_TEST_{}_{suffix}",
            id.to_uppercase().replace('-', "_")
        )
    };
    std::env::set_var(var("KEY"), key);
    let (url, secret) = match webhook {
        Some((url, secret)) => {
            std::env::set_var(var("HOOK"), secret);
            (
                Some(url.to_owned()),
                Some(SecretRef::parse(&format!("${{{}}}", var("HOOK"))).unwrap()),
            )
        }
        None => (None, None),
    };
    TenantConfig {
        id: id.into(),
        api_key: Some(SecretRef::parse(&format!("${{{}}}", var("KEY"))).unwrap()),
        api_keys: Vec::new(),
        reseller_username: format!("{id}-reseller"),
        webhook_url: url,
        webhook_secret: secret,
        credentials: Default::default(),
    }
}

/// A running gateway.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    background: Option<Background>,
}

/// Starts the gateway on 127.0.0.1:0 with the repository's providers.toml, in memory.
pub async fn spawn_app() -> TestApp {
    spawn(Setup::default()).await
}

pub async fn spawn(setup: Setup) -> TestApp {
    std::env::set_var("DIGICERT_API_KEY", DIGICERT_KEY);
    std::env::set_var("ALIBABA_ACCESS_KEY_ID", "ali-test-id");
    std::env::set_var("ALIBABA_ACCESS_KEY_SECRET", "ali-test-secret");
    let file = certgate_server::config::parse_toml(&setup.providers_toml).unwrap();
    let registry = (setup.registry)()
        .build(&file.providers)
        .expect("a valid providers.toml");
    let mut live = certgate_server::Live::build(
        registry,
        &setup.tenants,
        &setup.desk_users,
        Some(KEY),
        "default-reseller",
    )
    .unwrap();
    live.engine.helpdesk = setup.helpdesk;
    let store = Store::connect(&setup.database).await.unwrap();
    let mut engine = Engine::new(live.engine, store);
    engine.executor = setup.executor;
    engine.webhooks = setup.webhooks;
    engine.clock = setup.clock;
    engine.watch = setup.watch;
    let mut shared = certgate_server::Shared::with_engine(engine, live.access);
    shared.desk = setup.desk;
    let state = AppState::from(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(certgate_server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let background = setup.background.then(|| Background::start(&state.engine));
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        state,
        background,
    }
}

impl TestApp {
    /// POSTs raw bytes to `path` with the test key; returns status and JSON body.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(KEY)
                .body(body),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// POSTs `body` to `path` as the tenant of `api_key`.
    pub async fn post_as(&self, api_key: &str, path: &str, body: &Value) -> (u16, Value) {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(api_key)
            .body(body.to_string());
        self.send(req).await
    }

    /// POSTs an operation with an Idempotency-Key as `key`'s tenant.
    pub async fn post_operation(
        &self,
        api_key: &str,
        idempotency_key: &str,
        body: &Value,
    ) -> (u16, Value) {
        let req = self
            .client
            .post(format!("{}/v1/operations", self.base))
            .bearer_auth(api_key)
            .header("idempotency-key", idempotency_key)
            .body(body.to_string());
        self.send(req).await
    }

    /// Sends `method` to `path` as the tenant of `api_key`, with `body` if given.
    pub async fn request(
        &self,
        method: reqwest::Method,
        api_key: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(api_key);
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The events of `kind` in the feed of `key`'s tenant (the first 200).
    pub async fn events_of(&self, key: &str, kind: &str) -> Vec<Value> {
        let (status, page) = self
            .get(&format!("/v1/events?type={kind}&limit=200"), Some(key))
            .await;
        assert_eq!(status, 200, "{page}");
        page["events"].as_array().unwrap().clone()
    }

    /// Waits until the feed of `key`'s tenant holds `n` events of `kind` (10 s at most).
    pub async fn wait_events(&self, key: &str, kind: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = self.events_of(key, kind).await;
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} {kind} events",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Polls `GET /v1/operations/{id}` until its status is one of `statuses` (30 s at most).
    pub async fn wait_for(&self, id: &str, statuses: &[&str]) -> Value {
        self.wait_for_as(KEY, id, statuses).await
    }

    /// `wait_for` with a longer patience.
    pub async fn wait_for_long(
        &self,
        id: &str,
        statuses: &[&str],
        patience: std::time::Duration,
    ) -> Value {
        self.wait_for_long_as(KEY, id, statuses, patience).await
    }

    /// `wait_for` as the tenant of `api_key`.
    pub async fn wait_for_as(&self, api_key: &str, id: &str, statuses: &[&str]) -> Value {
        self.wait_for_long_as(api_key, id, statuses, std::time::Duration::from_secs(30))
            .await
    }

    /// `wait_for_long` as the tenant of `api_key`.
    pub async fn wait_for_long_as(
        &self,
        api_key: &str,
        id: &str,
        statuses: &[&str],
        patience: std::time::Duration,
    ) -> Value {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let (_, op) = self
                .get(&format!("/v1/operations/{id}"), Some(api_key))
                .await;
            if statuses.contains(&op["status"].as_str().unwrap_or("")) {
                return op;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "operation {id} stuck: {op:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(bg) = self.background.take() {
            bg.stop().await;
        }
    }
}

/// API.md's example order, with `patch`'s top-level keys replaced (as JSON, unvalidated).
pub fn order(patch: Value) -> Value {
    let mut v = certgate_core::testing::sample();
    for (k, val) in patch.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

/// A quote's steps as `action/procedure`.
pub fn steps(quote: &Value) -> Vec<String> {
    quote["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["action"].as_str().unwrap(),
                s["procedure"].as_str().unwrap()
            )
        })
        .collect()
}

/// What a [`Receiver`] accepted: the event (or ticket) and its headers.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub body: Value,
    pub event_id: Option<String>,
    pub signature: Option<String>,
    pub raw: String,
}

impl Accepted {
    /// True if `certgate-signature` is the HMAC-SHA256 of `t.body` under `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        use hmac::{Hmac, Mac};
        let Some((t, v1)) = self.signature.as_deref().and_then(|s| s.split_once(",v1=")) else {
            return false;
        };
        let Some(t) = t.strip_prefix("t=") else {
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{}", self.raw).as_bytes());
        hex::encode(mac.finalize().into_bytes()) == v1
    }
}

/// A webhook receiver like real ones: it can be down (503), fail its first N deliveries, or
/// answer slowly; it records what it accepted (2xx), in order.
#[derive(Clone, Default)]
pub struct Receiver {
    accepted: std::sync::Arc<std::sync::Mutex<Vec<Accepted>>>,
    failures_left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay: std::time::Duration,
}

impl Receiver {
    /// A receiver that fails its first `n` deliveries, then accepts.
    pub fn failing_first(n: usize) -> Receiver {
        let r = Receiver::default();
        r.failures_left
            .store(n, std::sync::atomic::Ordering::SeqCst);
        r
    }

    /// A receiver that answers after `delay`.
    pub fn slow(delay: std::time::Duration) -> Receiver {
        Receiver {
            delay,
            ..Receiver::default()
        }
    }

    /// Serves it on a new mock server at `/hooks`; its URL.
    pub async fn serve(&self) -> (wiremock::MockServer, String) {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/hooks"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        let url = format!("{}/hooks", server.uri());
        (server, url)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }

    /// Deliveries answered with an error.
    pub fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until it accepted `n` deliveries (`patience` at most).
    pub async fn wait_for(&self, n: usize, patience: std::time::Duration) -> Vec<Accepted> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the receiver accepted {} of {n} deliveries",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl wiremock::Respond for Receiver {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        use std::sync::atomic::Ordering::SeqCst;
        let failing = self
            .failures_left
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing || self.down.load(SeqCst) {
            self.refused.fetch_add(1, SeqCst);
            return wiremock::ResponseTemplate::new(503).set_delay(self.delay);
        }
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let raw = String::from_utf8_lossy(&req.body).into_owned();
        self.accepted.lock().unwrap().push(Accepted {
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            event_id: header("certgate-event-id"),
            signature: header("certgate-signature"),
            raw,
        });
        wiremock::ResponseTemplate::new(204).set_delay(self.delay)
    }
}

/// A webhook receiver that accepts every POST to `/hooks`, and its URL.
pub async fn webhook_receiver() -> (wiremock::MockServer, String) {
    use wiremock::matchers::{method, path};
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let url = format!("{}/hooks", receiver.uri());
    (receiver, url)
}
