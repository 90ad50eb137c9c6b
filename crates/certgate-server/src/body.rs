//! The JSON body extractor: malformed JSON is a 400 `malformed_json`; a body that is JSON but
//! not the expected shape (unknown field, wrong type, money as a number, impossible date) is a
//! 400 `invalid_request` naming the field.

use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use certgate_core::validation::{field_of, InvalidInput};
use serde::de::DeserializeOwned;

/// A request body read as JSON with field-level errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Reads `bytes` as a `T`, naming the offending field on error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        classify(e.into_inner(), &path, bytes)
    })?;
    de.end().map_err(|e| classify(e, "", bytes))?;
    Ok(value)
}

/// A data error is about one field; so is a "syntax" error in JSON that is well formed (serde
/// reports a number where an enum's name belongs that way); the rest is malformed JSON.
fn classify(e: serde_json::Error, path: &str, bytes: &[u8]) -> ApiError {
    let well_formed = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    if e.is_data() {
        let message = strip_position(&e.to_string());
        ApiError::Invalid(InvalidInput::one(field_of(path, &message), message))
    } else if e.is_syntax() && !path.is_empty() && path != "." && well_formed() {
        ApiError::Invalid(InvalidInput::one(
            path,
            "has the wrong type: expected one of the documented names, as a string",
        ))
    } else {
        ApiError::MalformedJson(e.to_string())
    }
}

/// serde_json appends " at line 1 column 42" to data errors; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Reads `bytes` as a JSON object of type `T` (see [`JsonBody`]).
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ApiError::MalformedJson("the request body is empty".into())),
        Some(b'{') => parse(bytes),
        Some(_) => Err(ApiError::Invalid(InvalidInput::one(
            "body",
            "must be a JSON object",
        ))),
    }
}

/// A request body as bytes, read within the route's size limit (a larger one is the same
/// problem+json 413 on every route).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| match r.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::MalformedJson(format!("the body cannot be read: {}", r.body_text())),
            })
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_object(&bytes).map(JsonBody)
    }
}
