//! Webhook delivery: each event is POSTed to its tenant's webhook (a new ticket also to the
//! helpdesk), signed `certgate-signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` and named
//! by `certgate-event-id`; a failed attempt is retried with capped exponential backoff and
//! jitter until `webhooks.max_age`, then the delivery is `dead` (listed, replayable), never
//! dropped. Per operation, events go out in order.
//!
//! Receivers are untrusted: each (tenant, target) lane has at most [`PER_LANE`] attempts in
//! flight, so a slow or failing receiver holds back only its own tenant; answers are never
//! read, redirects are not followed, and every attempt is bounded by `webhooks.timeout_ms`.
//! Delivery runs in its own task and never blocks the executor.

use crate::Engine;
use certgate_core::event::{AfterFailure, DeliveryTarget};
use certgate_core::TenantId;
use certgate_store::ms;
use certgate_store::{Attempt, DeliveryRow};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Attempts in flight per lane (one tenant's webhook, or the helpdesk for one tenant).
pub const PER_LANE: usize = 4;
/// Attempts in flight in all.
const IN_ALL: usize = 64;
/// The longest delivery sleeps without looking at the store.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// How long a stopping gateway lets attempts in flight finish; the rest are tried again.
const DRAIN: Duration = Duration::from_secs(2);

type Lane = (TenantId, DeliveryTarget);

/// The `certgate-signature` header value for `body` sent at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery's id on the wire (`dlv_42`).
pub fn delivery_id(n: i64) -> String {
    format!("{DELIVERY_PREFIX}{n}")
}

/// What a delivery's id starts with.
pub const DELIVERY_PREFIX: &str = "dlv_";

/// The stored id of a delivery id from the wire.
pub fn parse_delivery_id(id: &str) -> Option<i64> {
    id.strip_prefix(DELIVERY_PREFIX)
        .and_then(crate::ids::sequence)
}

/// Starts the delivery task.
pub fn spawn(state: Arc<Engine>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let timeout = state.webhooks.timeout();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("certgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        let lease = timeout + Duration::from_secs(30);
        let poll = Duration::from_millis(state.executor.poll_ms);
        let mut inflight: JoinSet<Lane> = JoinSet::new();
        let mut busy: HashMap<Lane, usize> = HashMap::new();
        while !*shutdown.borrow() {
            let claimed = claim(&state, &http, lease, &mut inflight, &mut busy).await;
            if claimed == 0 {
                let idle = idle(&state, poll).await;
                tokio::select! {
                    () = tokio::time::sleep(idle) => {}
                    () = state.deliver.notified() => {}
                    Some(done) = inflight.join_next() => finished(&mut busy, done),
                    _ = shutdown.changed() => {}
                }
            }
            while let Some(done) = inflight.try_join_next() {
                finished(&mut busy, done);
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while inflight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            inflight.abort_all();
        }
    })
}

/// How long delivery may sleep when nothing could be claimed: until the next pending
/// delivery falls due, at least `poll` and at most [`MAX_IDLE`] (deliveries queued by this
/// gateway wake it at once; other gateways' are seen within that).
async fn idle(state: &Engine, poll: Duration) -> Duration {
    let now = ms((state.clock)());
    match state.store.next_delivery_due(now).await {
        Ok(Some(due)) => Duration::from_millis(u64::try_from(due - now).unwrap_or(0)),
        Ok(None) => MAX_IDLE,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the webhook deliveries");
            MAX_IDLE
        }
    }
    .clamp(poll, MAX_IDLE.max(poll))
}

/// Claims what is due in every lane with room, and starts each attempt; how many.
async fn claim(
    state: &Arc<Engine>,
    http: &reqwest::Client,
    lease: Duration,
    inflight: &mut JoinSet<Lane>,
    busy: &mut HashMap<Lane, usize>,
) -> usize {
    let now = ms((state.clock)());
    let lanes = match state.store.due_lanes(now).await {
        Ok(lanes) => lanes,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the webhook deliveries");
            return 0;
        }
    };
    let mut claimed = 0;
    for lane in lanes {
        while inflight.len() < IN_ALL && busy.get(&lane).copied().unwrap_or(0) < PER_LANE {
            match state
                .store
                .claim_delivery(&lane.0, lane.1, now, lease)
                .await
            {
                Ok(Some(row)) => {
                    *busy.entry(lane.clone()).or_default() += 1;
                    let (state, http, lane) = (state.clone(), http.clone(), lane.clone());
                    inflight.spawn(async move {
                        deliver(&state, &http, row).await;
                        lane
                    });
                    claimed += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a webhook delivery");
                    break;
                }
            }
        }
    }
    claimed
}

fn finished(busy: &mut HashMap<Lane, usize>, done: Result<Lane, tokio::task::JoinError>) {
    if let Ok(lane) = done {
        if let Some(n) = busy.get_mut(&lane) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&lane);
            }
        }
    }
}

/// Where a delivery goes and the key that signs it, as configured now (a tenant that moved its
/// receiver gets its pending deliveries at the new URL); `None` if nothing is configured.
fn destination(state: &Engine, row: &DeliveryRow) -> Option<(String, Option<String>)> {
    let live = state.live();
    match row.target {
        DeliveryTarget::Helpdesk => live
            .helpdesk
            .as_ref()
            .map(|h| (h.url.clone(), h.secret.clone())),
        DeliveryTarget::Webhook => live
            .tenants
            .get(&row.tenant)?
            .webhook
            .as_ref()
            .map(|w| (w.url.clone(), Some(w.secret.clone()))),
    }
}

/// Sends one delivery: the receiver's status, or why there is none, and the error if it failed.
async fn send(
    state: &Engine,
    http: &reqwest::Client,
    row: &DeliveryRow,
) -> (Option<u16>, Option<String>) {
    let Some((url, secret)) = destination(state, row) else {
        return (
            None,
            Some(format!(
                "not sent: no {} is configured for tenant {}",
                row.target, row.tenant
            )),
        );
    };
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("certgate-delivery", delivery_id(row.id))
        .header("certgate-event-id", &row.event_id);
    if let Some(secret) = secret {
        let t = (state.clock)().timestamp();
        req = req.header("certgate-signature", signature(&secret, t, &row.payload));
    }
    // The answer's body is never read: a huge one costs nothing.
    match req.body(row.payload.clone()).send().await {
        Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), None),
        Ok(res) => (
            Some(res.status().as_u16()),
            Some(format!("the receiver answered {}", res.status())),
        ),
        Err(e) if e.is_timeout() => (
            None,
            Some(format!(
                "no answer within {} ms",
                state.webhooks.timeout().as_millis()
            )),
        ),
        Err(e) => (None, Some(describe(e))),
    }
}

/// One attempt, and what it leaves: delivered, due again, or dead.
async fn deliver(state: &Engine, http: &reqwest::Client, row: DeliveryRow) {
    let (status_code, error) = send(state, http, &row).await;
    let done = (state.clock)();
    let next_attempt_at = error.as_ref().and_then(|_| {
        let expires = DateTime::<Utc>::from_timestamp_millis(row.expires_at).unwrap_or(done);
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        match state
            .webhooks
            .policy()
            .after_failure(attempts, done, expires, rand::random())
        {
            AfterFailure::RetryAt(t) => Some(ms(t)),
            AfterFailure::Dead => None,
        }
    });
    if let (Some(error), None) = (&error, next_attempt_at) {
        tracing::warn!(delivery = %delivery_id(row.id), event = %row.event_id, tenant = %row.tenant,
            target = %row.target, attempts = row.attempts, %error,
            "webhook delivery dead: replay it with POST /v1/webhook-deliveries/{{id}}/redeliver");
    }
    let attempt = Attempt {
        status_code,
        error,
        next_attempt_at,
        now: ms(done),
    };
    if let Err(e) = state.store.record_attempt(row.id, &attempt).await {
        tracing::warn!(delivery = %delivery_id(row.id), error = %e, "cannot record a webhook attempt");
    }
}

/// A failed request in one line: the error and its causes, without the URL's query.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_of_time_dot_body() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed independently.
        let sig = signature("secret", 1_700_000_000, "{}");
        assert_eq!(
            sig,
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(sig, signature("other", 1_700_000_000, "{}"));
        assert_ne!(sig, signature("secret", 1_700_000_001, "{}"));
    }

    #[test]
    fn delivery_ids_round_trip_and_others_are_refused() {
        assert_eq!(parse_delivery_id(&delivery_id(42)), Some(42));
        for bad in [
            "42", "dlv_", "dlv_x", "dlv_-1", "dlv_0", "dlv_+1", "dlv_01", "evt_1",
        ] {
            assert_eq!(parse_delivery_id(bad), None, "{bad}");
        }
    }
}
