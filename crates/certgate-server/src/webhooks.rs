//! Webhook delivery from the durable outbox: each entry is POSTed, signed
//! `certgate-signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, retried with backoff, in
//! order within its operation. Delivery runs in its own task and never blocks the executor.

use crate::service::ms;
use crate::AppState;
use certgate_core::lifecycle::backoff;
use certgate_store::OutboxRow;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Attempts before a delivery is given up (its stream then moves on).
pub const MAX_ATTEMPTS: i64 = 12;

/// The `certgate-signature` header value for `body` sent at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Starts the delivery task.
pub fn spawn(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let http = certgate_http::client(certgate_http::Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(10),
        });
        let idle = Duration::from_millis(state.executor.poll_ms);
        while !*shutdown.borrow() {
            match state
                .store
                .claim_delivery(ms((state.clock)()), Duration::from_secs(30))
                .await
            {
                Ok(Some(row)) => deliver(&state, &http, row).await,
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(idle) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the webhook outbox");
                    tokio::time::sleep(idle * 5).await;
                }
            }
        }
    })
}

/// The key that signs a delivery: the helpdesk's for tickets pushed there, else the tenant's.
fn secret_for(state: &AppState, row: &OutboxRow) -> Option<String> {
    if row.stream.starts_with("helpdesk:") {
        state.helpdesk.as_ref().and_then(|h| h.secret.clone())
    } else {
        state
            .tenants
            .get(&row.tenant)?
            .webhook
            .as_ref()
            .map(|w| w.secret.clone())
    }
}

async fn deliver(state: &AppState, http: &reqwest::Client, row: OutboxRow) {
    let now = (state.clock)();
    let mut req = http
        .post(&row.url)
        .header("content-type", "application/json")
        .header("certgate-delivery", row.id.to_string());
    if let Some(event) = &row.event_id {
        req = req.header("certgate-event-id", event);
    }
    if let Some(secret) = secret_for(state, &row) {
        req = req.header(
            "certgate-signature",
            signature(&secret, now.timestamp(), &row.payload),
        );
    }
    let result = req.body(row.payload.clone()).send().await;
    let error = match result {
        Ok(res) if res.status().is_success() => None,
        Ok(res) => Some(format!("the receiver answered {}", res.status())),
        Err(e) => Some(e.without_url().to_string()),
    };
    let outcome = match error {
        None => state.store.delivered(row.id, ms(now)).await,
        Some(error) => {
            let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
            let wait = backoff(
                &state.executor.retry_policy(),
                attempts,
                None,
                rand::random(),
            );
            let dead = row.attempts >= MAX_ATTEMPTS;
            if dead {
                tracing::warn!(delivery = row.id, url = %row.url, %error, "webhook given up");
            }
            let next = ms(now) + wait.as_millis() as i64;
            state
                .store
                .delivery_failed(row.id, &error, next, dead)
                .await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(delivery = row.id, error = %e, "cannot record a webhook delivery");
    }
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
}
