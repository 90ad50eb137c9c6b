//! Query-string parameters of the list endpoints: known names only, each error naming its
//! parameter.

use crate::problem::ApiError;
use certgate_core::InvalidInput;
use std::collections::HashMap;

/// The parameters of one request, checked against the names an endpoint takes.
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn new(raw: HashMap<String, String>, known: &[&str]) -> Result<Params, ApiError> {
        if let Some(unknown) = raw.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(InvalidInput::one(
                unknown.as_str(),
                format!(
                    "unknown query parameter; this endpoint takes {}",
                    known.join(", ")
                ),
            )
            .into());
        }
        Ok(Params(raw))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `limit`: 1 to 200, default 50.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.get("limit") {
            None => Ok(50),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=200).contains(&n) => Ok(n),
                _ => Err(InvalidInput::one("limit", "must be a whole number from 1 to 200").into()),
            },
        }
    }

    /// `cursor`, if given, read by `parse` (`None`: not a cursor this endpoint gave, a 400).
    pub fn cursor<'a, T>(
        &'a self,
        parse: impl FnOnce(&'a str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.get("cursor")
            .map(|c| {
                parse(c).ok_or_else(|| {
                    InvalidInput::one("cursor", "is not a cursor this endpoint gave").into()
                })
            })
            .transpose()
    }

    /// `cursor`, if given: the id (made with `prefix`) of the last item of a page.
    pub fn id_cursor(&self, prefix: &str) -> Result<Option<&str>, ApiError> {
        self.cursor(|c| crate::ids::is_id(prefix, c).then_some(c))
    }

    /// A parameter that must parse as `T`.
    pub fn parsed<T: std::str::FromStr<Err = String>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| InvalidInput::one(name, e).into())
            })
            .transpose()
    }
}

/// The cursor of the page after `rows` (a page of `limit`): the last row's, when the page is
/// full; `None` when it is the last page.
pub fn next_cursor<R>(rows: &[R], limit: i64, cursor: impl Fn(&R) -> String) -> Option<String> {
    (rows.len() as i64 == limit)
        .then(|| rows.last().map(cursor))
        .flatten()
}
