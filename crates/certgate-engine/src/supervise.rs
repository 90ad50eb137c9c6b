//! Background work under supervision: a loop that dies (a panic) is logged with its message,
//! counted in `certgate_background_restarts_total{loop}` and started again after a backoff;
//! while it is down, `/readyz` says so. A loop that returns (the gateway stops) is not
//! restarted. [`WriteProbe`] is the other half of readiness: does the store take a write?

use crate::Engine;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first wait before a dead loop is started again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Which background loops are down now.
#[derive(Debug, Default)]
pub struct Supervision {
    down: Mutex<BTreeSet<&'static str>>,
}

impl Supervision {
    /// The loops that died and are not running again yet.
    pub fn down(&self) -> Vec<&'static str> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<&'static str>> {
        self.down.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The store's answer to a probe write, kept a second: `/readyz` probed by every load
/// balancer in a loop costs one commit a second, not one per probe.
#[derive(Debug, Default)]
pub struct WriteProbe {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// How long a probe's answer stands.
const PROBE_EVERY: Duration = Duration::from_secs(1);

impl WriteProbe {
    /// Whether the store takes a write, probed at most once per `PROBE_EVERY`.
    pub async fn check(&self, store: &certgate_store::Store, now_ms: i64) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < PROBE_EVERY {
                return answer.clone();
            }
        }
        let answer = store.probe_write(now_ms).await.map_err(|e| e.to_string());
        *last = Some((std::time::Instant::now(), answer.clone()));
        answer
    }
}

/// What a panic said.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A loop that starts with `start`.
pub type Start = fn(Arc<Engine>, watch::Receiver<bool>) -> JoinHandle<()>;

/// Runs the loop `name` (started by `start`) until it returns, starting it again whenever it
/// dies.
pub fn supervise(
    name: &'static str,
    state: Arc<Engine>,
    stop: watch::Receiver<bool>,
    start: Start,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = std::time::Instant::now();
            let died = match start(state.clone(), stop.clone()).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => panic_message(&*e.into_panic()),
                Err(_) => return,
            };
            if started.elapsed() > 2 * MAX_BACKOFF {
                // It ran well for a while: this is a new failure, not the same one again.
                backoff = FIRST_BACKOFF;
            }
            state.supervision.lock().insert(name);
            state.metrics.background_restart(name);
            tracing::error!(r#loop = name, panic = %died, wait_ms = backoff.as_millis() as u64,
                "a background loop died: it is started again");
            let mut stop = stop.clone();
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            state.supervision.lock().remove(name);
        }
    })
}
