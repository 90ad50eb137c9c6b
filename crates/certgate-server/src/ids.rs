//! Identifiers: a prefix and a UUIDv7, so ids sort by creation time (cursor pagination).

pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
