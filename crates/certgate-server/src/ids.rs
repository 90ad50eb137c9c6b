//! The OpenAPI schema of id cursors; ids themselves are the engine's ([`certgate_engine::ids`]).

pub use certgate_engine::ids::{is_id, pattern, sequence, sequence_pattern};

/// The OpenAPI schema of an optional id cursor made with `prefix`.
pub fn cursor_schema(prefix: &str) -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(pattern(prefix)))
        .description(Some("`next_cursor` of the page before"))
}
