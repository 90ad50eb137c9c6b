//! Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, a
//! stable `code`, and `errors` (`{field, message}`) for validation failures. Internals never
//! reach the caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certgate_core::validation::{FieldError, InvalidInput};
use serde::Serialize;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(InvalidInput),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnknownProvider(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The request is refused as things stand (a refused quote, a step past withdrawal...).
    #[error("{message}")]
    Conflict {
        message: String,
        /// The quote that refused it, when there is one.
        quote: Option<serde_json::Value>,
    },
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyMismatch { operation_id: String },
    /// The CA order, in a CA account shared by several tenants, belongs to another tenant.
    #[error("this CA order belongs to another tenant of the gateway's shared CA account: nothing was done. If it is yours, ask the gateway's operator to assign it to you (certgate orders assign)")]
    OrderOwnedElsewhere,
    #[error("the store is unavailable")]
    Unavailable(String),
    /// Not answered within the request timeout.
    #[error("the request was not answered within {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// Too many of something at once or within a window: come back after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("internal error")]
    Internal(String),
}

/// An error as RFC 9457 problem details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `urn:certgate:problem:<code>`.
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    /// A stable code: `invalid_request`, `malformed_json`, `unknown_provider`, `not_found`,
    /// `refused`, `conflict`, `order_owned_elsewhere`, `idempotency_key_reused`,
    /// `payload_too_large`, `unauthorized`, `too_many_requests`, `timeout`...
    code: &'a str,
    detail: String,
    /// Each field that is wrong (for `invalid_request`).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(value_type = Vec<FieldError>)]
    errors: &'a [FieldError],
    /// The quote that refused an operation (for `refused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<certgate_core::Quote>)]
    quote: Option<&'a serde_json::Value>,
    /// The operation an Idempotency-Key belongs to (for `idempotency_key_reused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<&'a str>,
}

/// A `Retry-After` of whole seconds, rounded up: a client that waits that long is let in.
pub fn retry_after(wait: std::time::Duration) -> HeaderValue {
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    HeaderValue::from_str(&seconds.to_string()).expect("digits")
}

impl ApiError {
    /// The answer's HTTP status.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Invalid(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid request",
            ),
            ApiError::MalformedJson(_) => {
                (StatusCode::BAD_REQUEST, "malformed_json", "Malformed JSON")
            }
            ApiError::UnknownProvider(_) => (
                StatusCode::NOT_FOUND,
                "unknown_provider",
                "Unknown provider",
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::Conflict { quote: Some(_), .. } => {
                (StatusCode::CONFLICT, "refused", "Refused by policy")
            }
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::OrderOwnedElsewhere => (
                StatusCode::CONFLICT,
                "order_owned_elsewhere",
                "Order owned by another tenant",
            ),
            ApiError::IdempotencyMismatch { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key reused",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Timeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Request timeout",
            ),
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        ApiError::Invalid(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let errors = match &self {
            ApiError::Invalid(e) => e.errors.as_slice(),
            _ => &[],
        };
        let problem = Problem {
            kind: format!("urn:certgate:problem:{code}"),
            title,
            status: status.as_u16(),
            code,
            detail: self.to_string(),
            errors,
            quote: match &self {
                ApiError::Conflict { quote, .. } => quote.as_ref(),
                _ => None,
            },
            operation_id: match &self {
                ApiError::IdempotencyMismatch { operation_id } => Some(operation_id),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::TooManyRequests {
            retry_after: wait, ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after(*wait));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<certgate_store::StoreError> for ApiError {
    fn from(e: certgate_store::StoreError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<certgate_engine::EngineError> for ApiError {
    fn from(e: certgate_engine::EngineError) -> Self {
        use certgate_engine::EngineError as E;
        match e {
            E::Invalid(e) => ApiError::Invalid(e),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict(message) => ApiError::Conflict {
                message,
                quote: None,
            },
            E::Store(e) => e.into(),
            E::Corrupt(cause) => ApiError::Internal(cause),
        }
    }
}
