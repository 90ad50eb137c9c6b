//! The routes of API.md and the middleware around them.

mod audit;
mod deliveries;
mod events;
mod health;
mod operations;
mod providers;
mod query;
mod quotes;
mod sweep;
mod tickets;

use crate::auth::Tenant;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/quotes", post(quotes::create))
        .route("/providers", get(providers::list))
        .route(
            "/operations",
            post(operations::create).get(operations::list),
        )
        .route("/operations/{id}", get(operations::get))
        .route("/operations/{id}/withdraw", post(operations::withdraw))
        .route("/operations/{id}/retry", post(operations::retry))
        .route("/tickets", get(tickets::list))
        .route("/tickets/{id}/resolve", post(tickets::resolve))
        .route("/audit", get(audit::list))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::get))
        .route("/webhook-deliveries", get(deliveries::list))
        .route(
            "/webhook-deliveries/redeliver",
            post(deliveries::redeliver_all),
        )
        .route("/webhook-deliveries/{id}", get(deliveries::get))
        .route(
            "/webhook-deliveries/{id}/redeliver",
            post(deliveries::redeliver),
        )
        .route(
            "/sweep",
            post(sweep::create).layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .nest("/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Requires `Authorization: Bearer <key>` and records the caller's tenant on the request.
async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing Authorization header: send `Authorization: Bearer <api key>`",
        ))?
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <api key>`",
        ))?;
    let tenant: Tenant = state
        .live()
        .keys
        .tenant_for(presented.trim())
        .cloned()
        .ok_or(ApiError::Unauthorized("the API key is not valid"))?;
    req.extensions_mut().insert(tenant);
    Ok(next.run(req).await)
}

/// Counts and times every request by its route (the pattern, not the path: ids do not make
/// new series) and method (a fixed set, see [`crate::metrics::method_label`]).
async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = crate::metrics::method_label(req.method().as_str());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.http(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("no route for {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(req.method().to_string())
}
