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
///
/// A well-formed body is read once, by serde_json alone; only a body that fails is read again
/// with its path tracked (serde_path_to_error), to name the field: tracking every field of
/// every good body would cost more than the rest of reading it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|first| explain::<T>(bytes, first))
}

/// Why `bytes` is not a `T`: the same error read again with the field's path (`first`, without
/// one, should the second reading disagree).
fn explain<T: DeserializeOwned>(bytes: &[u8], first: serde_json::Error) -> ApiError {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            classify(e.into_inner(), &path, bytes)
        }
        Ok(_) => classify(de.end().err().unwrap_or(first), "", bytes),
    }
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

/// A whole number that JSON may write as `30` or `30.0` (JSON Schema's `integer` allows
/// both), and a query string as `"30"` or `"30.0"`; anything else, or a number out of range,
/// is refused.
pub mod whole_number {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = u32;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::custom(format!("{v} is not a whole number in range")))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
            match v.parse::<u64>() {
                Ok(n) => self.visit_u64(n),
                Err(_) => match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => self.visit_f64(x),
                    _ => Err(E::custom(format!("`{v}` is not a whole number"))),
                },
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        d.deserialize_any(Whole)
    }

    /// The same, optional.
    pub mod option {
        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] u32);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(n)| n))
        }
    }
}
