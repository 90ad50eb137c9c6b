//! Identifiers: a prefix and a UUIDv7, so ids sort by creation time (cursor pagination).

pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// True if `id` has the shape of an id made by [`new`] with `prefix`.
pub fn is_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// [`is_id`] as the OpenAPI document's pattern.
pub fn pattern(prefix: &str) -> String {
    format!("^{prefix}_[0-9a-fA-F]{{32}}$")
}

/// The OpenAPI schema of an optional id cursor made with `prefix`.
pub fn cursor_schema(prefix: &str) -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(pattern(prefix)))
        .description(Some("`next_cursor` of the page before"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_have_their_shape_and_others_do_not() {
        let id = new("op");
        assert!(is_id("op", &id));
        assert!(!is_id("tk", &id));
        for bad in [
            "op_",
            "op_xyz",
            "garbage",
            "op_0123456789abcdef0123456789abcdeg",
        ] {
            assert!(!is_id("op", bad), "{bad}");
        }
    }
}
