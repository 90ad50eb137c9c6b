//! Supervised background work: a loop that dies is started again and `/readyz` says so
//! meanwhile; an operation whose run panics is run again, then failed as `internal` after
//! three panics, never claimed forever.

mod common;

use async_trait::async_trait;
use certgate_core::{CaClient, CallFailure, Observation, Order, StepCall, StepOutcome};
use common::{order, spawn, Setup, KEY};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static STARTS: AtomicUsize = AtomicUsize::new(0);

/// A loop that dies the first two times it starts, then runs until the gateway stops.
fn flaky(
    _state: std::sync::Arc<certgate_engine::Engine>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if STARTS.fetch_add(1, Ordering::SeqCst) < 2 {
            panic!("the flaky loop broke");
        }
        let _ = stop.wait_for(|s| *s).await;
    })
}

#[tokio::test]
async fn a_loop_that_dies_is_started_again_and_readiness_says_so_meanwhile() {
    let app = spawn(Setup {
        background: false,
        ..Setup::default()
    })
    .await;
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let supervised =
        certgate_engine::supervise::supervise("flaky", app.state.engine.clone(), rx, flaky);
    let mut seen_down = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, health) = app.get("/readyz", None).await;
        if status == 503 {
            assert!(
                health["detail"].as_str().unwrap().contains("flaky"),
                "{health}"
            );
            seen_down = true;
        } else if seen_down && STARTS.load(Ordering::SeqCst) >= 3 {
            assert_eq!(status, 200, "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "never restarted: {health}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("certgate_background_restarts_total{loop=\"flaky\"} 2"),
        "{metrics}"
    );
    supervised.abort();
}

/// A CA client that panics whenever it is asked to read.
#[derive(Debug)]
struct Panicky;

#[async_trait]
impl CaClient for Panicky {
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    async fn execute(&self, _call: &StepCall<'_>) -> Result<StepOutcome, CallFailure> {
        unreachable!("never sent: the read before it panics")
    }

    async fn observe(&self, _order: &Order) -> Result<Observation, CallFailure> {
        panic!("the client broke")
    }
}

fn with_panicky() -> certgate_core::RegistryBuilder {
    let mut builder = certgate::registry_builder();
    builder.register_client("panicky", |_, _| Ok(Arc::new(Panicky)));
    builder
}

#[tokio::test]
async fn an_operation_whose_run_panics_is_failed_as_internal_after_three() {
    // DigiCert's provider, spoken to through the panicking client.
    let providers = common::providers_toml().replace(
        "[providers.digicert.api]\n",
        "[providers.digicert.api]\nclient = \"panicky\"\n",
    );
    let app = spawn(Setup {
        providers_toml: providers,
        registry: with_panicky,
        executor: certgate_server::config::ExecutorConfig {
            lease_ms: 300,
            ..common::fast_executor()
        },
        ..Setup::default()
    })
    .await;
    let body = json!({"provider": "digicert", "intent": "cancel",
        "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": "1001"}))});
    let (status, op) = app.post_operation(KEY, "panics", &body).await;
    assert_eq!(status, 202, "{op}");
    let done = app
        .wait_for(op["id"].as_str().unwrap(), &["failed", "completed"])
        .await;
    assert_eq!(done["steps"][0]["error"]["kind"], "internal", "{done:#}");
    assert!(
        done["steps"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the client broke"),
        "{done:#}"
    );
    let history = done["history"].to_string();
    assert!(
        history.contains("(1 of 3)") && history.contains("(2 of 3)"),
        "{history}"
    );
    // Failed for good: nothing claims it again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again) = app
        .get(
            &format!("/v1/operations/{}", op["id"].as_str().unwrap()),
            Some(KEY),
        )
        .await;
    assert_eq!(again["updated_at"], done["updated_at"]);
    app.stop().await;
}

/// A SQLite file deleted under a running gateway: its writes would be lost on restart, so the
/// gateway is not ready.
#[tokio::test]
async fn a_store_file_deleted_under_the_gateway_makes_it_unready() {
    let dir = std::env::temp_dir().join(format!("certgate-deleted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("certgate.db");
    let app = spawn(Setup {
        database: format!("sqlite://{}", file.display()),
        background: false,
        ..Setup::default()
    })
    .await;
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, health) = app.get("/readyz", None).await;
        if status == 503 {
            assert!(
                health["detail"]
                    .as_str()
                    .unwrap()
                    .contains("no longer the file"),
                "{health}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still ready: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_dir_all(&dir).ok();
}
