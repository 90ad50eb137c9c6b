//! The OpenAPI document. The routes' `#[utoipa::path]` annotations and the wire types'
//! schemas make it; this module adds what every route shares: the bearer key, and the
//! problem+json answers a route can give because of what it takes (a body: 400 and 413; a
//! parameter: 400; an `{id}`: 404; a key: 401; the store: 503).

use crate::problem::Problem;
use axum::body::Bytes;
use certgate_core::validation::FieldError;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "certgate",
        description = "One HTTP API to cancel, revoke and refund certificate orders across CAs: quote what would happen, then do it; certgate runs the CA's API calls or opens the support ticket and follows the operation to its end."
    ),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "quotes", description = "What would happen (no side effects)"),
        (name = "operations", description = "Cancel, revoke and refund, carried out"),
        (name = "tickets", description = "Manual steps a person carries out"),
        (name = "events", description = "The feed of changes"),
        (name = "webhooks", description = "Deliveries of the feed to the tenant's webhook"),
        (name = "sweep", description = "Which refund windows close soon"),
        (name = "providers", description = "The configured CAs"),
        (name = "audit", description = "Who did what"),
        (name = "health", description = "Probes, metrics and this document (no key)"),
    )
)]
struct ApiDoc;

/// The document the routes are added to.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// The finished document as JSON, served at `/openapi.json`.
#[derive(Debug, Clone)]
pub struct Document(Bytes);

impl Document {
    /// The document of the routes in `api`, with what they share added.
    pub fn new(mut api: OpenApi) -> Self {
        Conventions.modify(&mut api);
        Document(Bytes::from(api.to_json().unwrap_or_default()))
    }

    pub fn json(&self) -> Bytes {
        self.0.clone()
    }
}

/// The scheme name of the bearer key.
const BEARER: &str = "bearer";

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut OpenApi) {
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER,
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        for (path, item) in api.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                conventions(path, op);
            }
        }
    }
}

/// The answers `op` at `path` can give besides its own.
fn conventions(path: &str, op: &mut Operation) {
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description).into());
    };
    if op.request_body.is_some() {
        add("400", "The body is not valid: `errors` names each field");
        add("413", "The body is too large");
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        add("400", "A parameter is not valid: `errors` names it");
    }
    if path.contains("{id}") {
        add("404", "No such item for this tenant");
    }
    if path == "/metrics" {
        add(
            "401",
            "`[server] metrics_key` is set and the request does not carry it",
        );
        add(
            "429",
            "Too many failed authentications from this address: see `Retry-After`",
        );
    }
    if path.starts_with("/v1/") {
        add("401", "No API key, or not a valid one");
        add(
            "429",
            "Too many failed authentications from this address: see `Retry-After`",
        );
        add(
            "503",
            "The store does not answer, or the request was not answered in time",
        );
        op.security = Some(vec![SecurityRequirement::new::<_, _, String>(BEARER, [])]);
    }
}

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}
