//! Field-level validation errors: every bad input names the field it is about.

use serde::Serialize;
use std::fmt;

/// One problem with one field of the input, e.g. `order.issued_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, as the caller spelled it (`order.paid.amount`).
    pub field: String,
    /// What is wrong, in a sentence a reseller's engineer can act on.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The input cannot be answered: one or more fields are wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidInput {
    pub errors: Vec<FieldError>,
}

impl InvalidInput {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            errors: vec![FieldError::new(field, message)],
        }
    }

    /// Prefixes every field path, e.g. `order` + `issued_at` = `order.issued_at`.
    pub fn under(mut self, prefix: &str) -> Self {
        for e in &mut self.errors {
            e.field = if e.field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", e.field)
            };
        }
        self
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// The field a serde error is about: `path` is where the deserializer stood (`order.paid`,
/// or empty at the top), and an unknown or missing field's own name is appended from the
/// message ("unknown field `x`", "missing field `x`").
pub fn field_of(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match named {
        Some(name) if path.is_empty() => name.to_owned(),
        Some(name) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_owned(),
    }
}

/// Collects field errors and turns them into a `Result` at the end.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn finish(self) -> Result<(), InvalidInput> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(InvalidInput { errors: self.0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert_eq!(
            field_of("order", "unknown field `colour`, expected one of"),
            "order.colour"
        );
        assert_eq!(field_of(".", "missing field `order`"), "order");
        assert_eq!(
            field_of("order.paid.amount", "money must be"),
            "order.paid.amount"
        );
    }

    #[test]
    fn paths_are_prefixed() {
        let e = InvalidInput::one("issued_at", "bad").under("order");
        assert_eq!(e.errors[0].field, "order.issued_at");
        assert_eq!(e.to_string(), "order.issued_at: bad");
    }
}
