//! Identifiers: a prefix and a UUIDv7, so ids sort by creation time (cursor pagination), and
//! the plain sequence numbers of events, deliveries and audit entries.

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

/// A positive whole number written plainly (`42`; not `+42`, `042` or `-1`), as sequence
/// cursors are.
pub fn sequence(s: &str) -> Option<i64> {
    let plain = !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    (plain && !s.starts_with('0'))
        .then(|| s.parse().ok())
        .flatten()
}

/// The OpenAPI pattern of [`sequence`] after `prefix`.
pub fn sequence_pattern(prefix: &str) -> String {
    format!("^{prefix}[1-9][0-9]{{0,17}}$")
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

    #[test]
    fn sequences_agree_with_their_pattern() {
        let pattern = regex::Regex::new(&sequence_pattern("")).unwrap();
        for s in [
            "1",
            "42",
            "999999999999999999",
            "0",
            "042",
            "+1",
            "-1",
            "",
            "1a",
            "1 ",
        ] {
            assert_eq!(sequence(s).is_some(), pattern.is_match(s), "{s:?}");
        }
    }

    #[test]
    fn id_cursors_agree_with_their_pattern() {
        let pattern = regex::Regex::new(&pattern("op")).unwrap();
        let id = new("op");
        for s in [
            id.as_str(),
            "op_",
            "tk_0123456789abcdef0123456789abcdef",
            "op_0123456789ABCDEF0123456789abcdef",
        ] {
            assert_eq!(is_id("op", s), pattern.is_match(s), "{s}");
        }
    }
}
