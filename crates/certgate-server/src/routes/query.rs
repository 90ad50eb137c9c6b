//! Request parameters. Query strings: each list endpoint reads its parameters into a typed
//! struct (the same struct documents them in the OpenAPI document); an unknown name, a wrong
//! type or a value out of bounds is a 400 naming the parameter. Path ids: any text; one that
//! is not UTF-8 is a 400 naming `id`.

pub use crate::ids::{sequence, sequence_pattern};
use crate::problem::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use certgate_core::validation::field_of;
use certgate_core::InvalidInput;
use serde::de::DeserializeOwned;

/// The most items a page may hold (`limit`), and how many it holds by default.
pub const MAX_LIMIT: u32 = 200;
pub const DEFAULT_LIMIT: u32 = 50;

/// A query string read as a `T` (which should deny unknown fields).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|e| {
                let message = e.inner().to_string();
                InvalidInput::one(field_of(&e.path().to_string(), &message), message).into()
            })
    }
}

/// The `{id}` of a path.
#[derive(Debug)]
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|e| InvalidInput::one("id", e.body_text()).into())
    }
}

/// The OpenAPI schema of `limit`.
pub fn limit_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .description(Some(format!(
            "How many items a page holds, {DEFAULT_LIMIT} by default"
        )))
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(limit: Option<u32>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(i64::from(DEFAULT_LIMIT)),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(i64::from(n)),
        Some(_) => Err(InvalidInput::one(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )
        .into()),
    }
}

/// The cursor parameter `name` read by `parse`; `None` from `parse` is a cursor this endpoint
/// never gave (400).
pub fn cursor<'a, T>(
    name: &str,
    value: Option<&'a str>,
    parse: impl FnOnce(&'a str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|c| {
            parse(c)
                .ok_or_else(|| InvalidInput::one(name, "is not a cursor this endpoint gave").into())
        })
        .transpose()
}

/// A cursor that is the id (made with `prefix`) of the last item of a page.
pub fn id_cursor<'a>(
    name: &str,
    value: Option<&'a str>,
    prefix: &str,
) -> Result<Option<&'a str>, ApiError> {
    cursor(name, value, |c| crate::ids::is_id(prefix, c).then_some(c))
}

/// The OpenAPI schema of an optional sequence cursor.
pub fn sequence_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(sequence_pattern("")))
        .description(Some("`next_cursor` of the page before"))
}

/// The cursor of the page after `rows` (a page of `limit`): the last row's, when the page is
/// full; `None` when it is the last page.
pub fn next_cursor<R>(rows: &[R], limit: i64, cursor: impl Fn(&R) -> String) -> Option<String> {
    (rows.len() as i64 == limit)
        .then(|| rows.last().map(cursor))
        .flatten()
}
