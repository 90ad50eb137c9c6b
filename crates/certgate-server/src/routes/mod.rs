//! The routes of API.md and the middleware around them.

mod audit;
mod deliveries;
mod events;
mod health;
mod operations;
mod orders;
mod providers;
mod query;
mod quotes;
mod refunds;
mod sweep;
mod tickets;

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use certgate_core::TenantId;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest body `POST /v1/sweep` takes (other routes: axum's 2 MB).
const SWEEP_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Every route with its OpenAPI description: the router and the document come from here.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let (schemas, paths, sweep) = routes!(sweep::create);
    let v1 = OpenApiRouter::new()
        .routes(routes!(quotes::create))
        .routes(routes!(providers::list))
        .routes(routes!(operations::create, operations::list))
        .routes(routes!(operations::get))
        .routes(routes!(operations::withdraw))
        .routes(routes!(operations::retry))
        .routes(routes!(refunds::report))
        .routes(routes!(refunds::list))
        .routes(routes!(refunds::summary))
        .routes(routes!(orders::list))
        .routes(routes!(orders::put, orders::get, orders::delete))
        .routes(routes!(tickets::list))
        .routes(routes!(tickets::resolve))
        .routes(routes!(audit::list))
        .routes(routes!(events::list))
        .routes(routes!(events::get))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::redeliver_all))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::redeliver))
        .routes((
            schemas,
            paths,
            sweep.layer(DefaultBodyLimit::max(SWEEP_BODY_LIMIT)),
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi))
        .merge(v1)
}

pub fn router(state: AppState) -> Router {
    let (router, document) = api(&state).split_for_parts();
    // The same routes make the same document: a second router keeps the first one's.
    let _ = state.openapi.set(crate::openapi::Document::new(document));
    router
        .merge(crate::desk::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::desk::guard_headers,
        ))
        .layer(middleware::from_fn(declared_size))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// The header that names a request, in its answer and its logs.
const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Gives every request an id: the caller's `x-request-id` if it is 1 to 128 visible ASCII
/// characters, else a new one; the answer carries it, and so does every log line of the
/// request ([`span`]).
async fn request_id(mut req: Request, next: Next) -> Response {
    let valid = |v: &axum::http::HeaderValue| {
        (1..=128).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    };
    let id = match req.headers().get(&REQUEST_ID) {
        Some(v) if valid(v) => v.clone(),
        _ => axum::http::HeaderValue::from_str(&uuid::Uuid::now_v7().simple().to_string())
            .expect("hex digits"),
    };
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The span of a request: its method, path (never its query) and id.
fn span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// A body that says (`Content-Length`) it is larger than its route takes is a 413 at once,
/// before a byte of it is waited for.
async fn declared_size(req: Request, next: Next) -> Response {
    let limit = if req.uri().path() == "/v1/sweep" {
        SWEEP_BODY_LIMIT
    } else {
        DEFAULT_BODY_LIMIT
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return axum::response::IntoResponse::into_response(ApiError::PayloadTooLarge);
    }
    next.run(req).await
}

/// The largest body of any other route (axum's default limit).
const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A request not answered within `[server] request_timeout_ms` (`sweep_timeout_ms` for the
/// sweep) is a 503 problem.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = if req.uri().path() == "/v1/sweep" {
        state.server.sweep_timeout()
    } else {
        state.server.request_timeout()
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_ms = limit.as_millis() as u64, "request timed out");
            axum::response::IntoResponse::into_response(ApiError::Timeout(limit))
        }
    }
}

/// A handler that panicked answers a 500 problem (the panic is logged, never sent), instead
/// of a dropped connection.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = certgate_engine::supervise::panic_message(&*payload);
    axum::response::IntoResponse::into_response(ApiError::Internal(format!(
        "a request handler panicked: {message}"
    )))
}

/// Requires `Authorization: Bearer <key>` and records the caller's tenant on the request. A
/// client address that keeps failing is refused for a while without its key being checked
/// ([`crate::auth::Guesses`]); each failure is logged.
async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let client = crate::server::client_of(&req).map(|a| a.ip());
    let access = state.access();
    let tenant = crate::auth::guarded(
        &state.guesses.api,
        state.server.failed_auth_per_minute,
        client,
        "api",
        || {
            let presented = req
                .headers()
                .get(AUTHORIZATION)
                .ok_or("missing Authorization header: send `Authorization: Bearer <api key>`")?
                .to_str()
                .ok()
                .and_then(crate::auth::bearer)
                .ok_or("the Authorization header must be `Bearer <api key>`")?;
            access
                .keys
                .tenant_for(presented.trim())
                .cloned()
                .ok_or("the API key is not valid")
        },
    )?;
    let tenant: TenantId = tenant;
    req.extensions_mut().insert(tenant);
    Ok(next.run(req).await)
}

/// Counts and times every request by its route (the pattern, not the path: ids do not make
/// new series) and method (a fixed set, see [`certgate_engine::metrics::method_label`]).
async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = certgate_engine::metrics::method_label(req.method().as_str());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched".into(), |p| p.as_str().into());
    let response = next.run(req).await;
    state
        .metrics
        .http(method, route, response.status().as_u16(), started.elapsed());
    response
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("no route for {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(req.method().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_handler_that_panics_answers_a_500_problem() {
        async fn boom() -> &'static str {
            panic!("the handler broke")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
        let response = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 500, "{problem}");
    }
}
