//! What needs no key: liveness and readiness probes, the metrics, the OpenAPI document.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

/// How the gateway is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` (live), `ready`, or `unavailable` (not ready).
    pub status: &'static str,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses(
    (status = 200, description = "Alive", body = Health),
))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        detail: None,
    })
}

/// Readiness: ready when the store takes a write and every background loop runs.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = Health),
    (status = 503, description = "The store refuses writes, or a background loop is down", body = Health),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let down = state.supervision.down();
    let problem = if down.is_empty() {
        state
            .write_probe
            .check(&state.store, certgate_store::ms((state.clock)()))
            .await
            .err()
            .map(|e| format!("the store refuses writes: {e}"))
    } else {
        Some(format!(
            "background work is down and restarting: {}",
            down.join(", ")
        ))
    };
    match problem {
        None => (
            StatusCode::OK,
            Json(Health {
                status: "ready",
                detail: None,
            }),
        ),
        Some(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                detail: Some(detail),
            }),
        ),
    }
}

/// The metrics: OpenMetrics text if the scraper's `Accept` asks for it, else the Prometheus
/// text format. Store-backed gauges are read at most every 10 s. With `[server] metrics_key`
/// the endpoint needs that key as a bearer token.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text (or OpenMetrics when `Accept` asks for it)", content(
        (String = "text/plain"),
        (String = "application/openmetrics-text"),
    )),
))]
pub async fn metrics(
    State(state): State<AppState>,
    crate::server::Client(client): crate::server::Client,
    headers: axum::http::HeaderMap,
) -> Result<impl axum::response::IntoResponse, crate::problem::ApiError> {
    if let Some(key) = &state.server.metrics_key {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::auth::bearer);
        crate::auth::guarded(
            &state.guesses.api,
            state.server.failed_auth_per_minute,
            client,
            "metrics",
            || match (presented, key.resolve()) {
                (Some(p), Some(k)) if crate::auth::same_secret(p, &k) => Ok(()),
                (None, _) => Err("/metrics needs `Authorization: Bearer <metrics key>`"),
                _ => Err("the metrics key is not valid"),
            },
        )?;
    }
    state.metrics.pace(&state.pacing.stats());
    // The store's gauges: read at most every 10 s, whatever the scrape rate.
    if state.metrics.store_due() {
        let now = certgate_store::ms((state.clock)());
        match state.store.delivery_backlog().await {
            Ok(backlog) => state
                .metrics
                .webhooks(state.live().tenants.ids(), &backlog, now),
            Err(e) => tracing::warn!(error = %e, "cannot read the webhook backlog for /metrics"),
        }
        match state.store.counts(now).await {
            Ok(counts) => state.metrics.stored(&counts),
            Err(e) => tracing::warn!(error = %e, "cannot count operations for /metrics"),
        }
    }
    let openmetrics = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, content_type)],
        state.metrics.render(openmetrics),
    ))
}

/// This document: the API's OpenAPI 3.1 description, generated from the routes and types.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses(
    (status = 200, description = "The OpenAPI document", body = Object),
))]
pub async fn openapi(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        state
            .openapi
            .get()
            .expect("the router sets the document it serves")
            .json(),
    )
}
