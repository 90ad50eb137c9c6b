//! Test helpers: the real gateway on a random port, with the repository's providers.toml.

#![allow(dead_code)] // each test binary uses a different part of this module

use certgate_server::auth::ApiKeys;
use certgate_server::AppState;
use serde_json::Value;
use std::path::Path;

pub const KEY: &str = "test-key-0123456789";

/// A running gateway.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
}

/// Starts the gateway on 127.0.0.1:0 with the repository's providers.toml.
pub async fn spawn_app() -> TestApp {
    let registry = certgate::load(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("providers.toml")))
        .expect("the repository's providers.toml is valid")
        .registry;
    let mut keys = ApiKeys::default();
    keys.add("default", KEY);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(certgate_server::serve(
        listener,
        AppState::new(registry, keys),
        std::future::pending(),
    ));
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// POSTs raw bytes to `path` with the test key; returns status and JSON body.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
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
