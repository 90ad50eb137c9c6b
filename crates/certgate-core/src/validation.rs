//! Field-level validation errors: every bad input names the field it is about.

use regex::Regex;
use serde::Serialize;
use std::fmt;
use std::sync::LazyLock;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

/// One problem with one field of the input, e.g. `order.issued_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

    /// Free text: at most `max` characters, no control characters (line breaks excepted
    /// where `multiline`) and no invisible format characters (Unicode category Cf: zero-width
    /// spaces, U+FEFF, soft hyphens, bidirectional controls, tags), which would make what a
    /// person reads or pastes from a ticket differ from what it says. True if it passed.
    pub fn text(&mut self, field: &str, value: &str, max: usize, multiline: bool) -> bool {
        if value.chars().count() > max {
            self.push(field, format!("must be at most {max} characters"));
            return false;
        }
        if let Some(c) = value.chars().find(|c| is_hidden(*c, multiline)) {
            self.push(
                field,
                format!(
                    "must not contain control or invisible format characters (found U+{:04X})",
                    u32::from(c)
                ),
            );
            return false;
        }
        true
    }

    pub fn finish(self) -> Result<(), InvalidInput> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(InvalidInput { errors: self.0 })
        }
    }
}

/// A character that changes or hides what is displayed: a control character (`\n`, `\t` and
/// `\r` allowed in multi-line text) or a format character (Unicode category Cf, the
/// bidirectional controls among them).
fn is_hidden(c: char, multiline: bool) -> bool {
    c.general_category() == GeneralCategory::Format
        || (c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
}

/// The characters [`is_hidden`] refuses, as the inside of a regular-expression class (escapes
/// that Rust's and Python's engines read alike: `\uXXXX`, and `\UXXXXXXXX` past the BMP).
fn hidden_class(multiline: bool) -> String {
    let controls = if multiline {
        r"\x00-\x08\x0b\x0c\x0e-\x1f"
    } else {
        r"\x00-\x1f"
    };
    format!(r"{controls}\x7f-\x9f{}", *FORMAT_CLASS)
}

/// Every format character (Cf) as class ranges, from the Unicode tables.
static FORMAT_CLASS: LazyLock<String> = LazyLock::new(|| {
    let escape = |c: char| match u32::from(c) {
        n if n <= 0xFFFF => format!(r"\u{n:04x}"),
        n => format!(r"\U{n:08x}"),
    };
    let mut class = String::new();
    let mut chars = ('\0'..=char::MAX)
        .filter(|c| c.general_category() == GeneralCategory::Format)
        .peekable();
    while let Some(first) = chars.next() {
        let mut last = first;
        while let Some(&next) = chars.peek() {
            if u32::from(next) != u32::from(last) + 1 {
                break;
            }
            last = next;
            chars.next();
        }
        class.push_str(&escape(first));
        if last != first {
            class.push('-');
            class.push_str(&escape(last));
        }
    }
    class
});

/// Unicode's white space that is not a control character (what `str::trim` also removes).
const BLANK: &str = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// `is_hidden` as a regular expression (the OpenAPI document's `pattern` of free text):
/// any number of characters that are not hidden.
pub fn text_pattern(multiline: bool) -> String {
    format!("^[^{}]*$", hidden_class(multiline))
}

/// A single line of text with at least one character that is not white space (an id).
pub fn id_pattern() -> String {
    let hidden = hidden_class(false);
    format!("^[^{hidden}]*[^{hidden}{BLANK}][^{hidden}]*$")
}

/// The OpenAPI schema of a string field: its pattern and length, and whether it may be null.
pub fn string_schema(pattern: String, max: usize, nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .pattern(Some(pattern))
        .max_length(Some(max))
}

/// An optional single line of free text of at most `max` characters.
pub fn optional_text_schema(max: usize) -> ObjectBuilder {
    string_schema(text_pattern(false), max, true)
}

/// The longest a common name may be (a DNS name's limit).
pub const MAX_COMMON_NAME: usize = 253;
/// The longest an e-mail address may be (RFC 5321).
pub const MAX_EMAIL: usize = 254;
/// The longest a note (an operation's, a ticket resolution's) may be.
pub const MAX_NOTE: usize = 2_000;

/// The schema of a note: null, or at most [`MAX_NOTE`] characters, line breaks allowed.
pub fn note_schema() -> ObjectBuilder {
    string_schema(text_pattern(true), MAX_NOTE, true)
}

/// A note (optional): at most [`MAX_NOTE`] characters of plain text, line breaks allowed.
pub fn note(field: &str, note: Option<&str>) -> Result<(), InvalidInput> {
    let mut errors = Errors::default();
    if let Some(note) = note {
        errors.text(field, note, MAX_NOTE, true);
    }
    errors.finish()
}

/// A DNS label: letters, digits and inner hyphens, 1 to 63 of them.
const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/// The local part of an e-mail address: 1 to 64 visible ASCII characters but `@()<>[]:;\,"`.
const LOCAL_PART: &str = r#"[!#-'*+\--9=?A-Z^-~]{1,64}"#;

/// What a common name may be: a DNS name (ASCII; an internationalized one in its `xn--`
/// form, an IPv4 address reads as one), a wildcard `*.` name, or an e-mail address (client
/// certificates); at most [`MAX_COMMON_NAME`] characters, checked apart.
pub fn common_name_pattern() -> String {
    format!(r"^(?:\*\.|{LOCAL_PART}@)?{LABEL}(?:\.{LABEL})*\.?$")
}

/// What an e-mail address may be: a local part, `@` and a DNS name.
pub fn email_pattern() -> String {
    format!(r"^{LOCAL_PART}@{LABEL}(?:\.{LABEL})*\.?$")
}

static COMMON_NAME: LazyLock<Regex> = LazyLock::new(|| compiled(&common_name_pattern()));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| compiled(&email_pattern()));

fn compiled(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern} does not compile: {e}"))
}

/// Whether `name` may be a certificate's common name ([`common_name_pattern`]).
pub fn common_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_COMMON_NAME {
        return Err(format!("must be at most {MAX_COMMON_NAME} characters"));
    }
    if COMMON_NAME.is_match(name) {
        Ok(())
    } else {
        Err("must be a DNS name such as shop.example.com, a wildcard such as *.example.com, or an e-mail address; internationalized names in their xn-- form".into())
    }
}

/// Whether `address` may be an e-mail address ([`email_pattern`]).
pub fn email(address: &str) -> Result<(), String> {
    if address.len() <= MAX_EMAIL && EMAIL.is_match(address) {
        Ok(())
    } else {
        Err(format!(
            "must be an e-mail address such as ops@example.com, at most {MAX_EMAIL} characters"
        ))
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

    #[test]
    fn common_names_are_dns_names_wildcards_or_emails() {
        for ok in [
            "shop.example.com",
            "*.example.com",
            "localhost",
            "xn--bcher-kva.example",
            "192.0.2.1",
            "ops@example.com",
            "example.com.",
        ] {
            assert_eq!(common_name(ok), Ok(()), "{ok}");
        }
        let long = format!("{}.com", "a".repeat(250));
        for bad in [
            "",
            "shop example.com",
            "shop..example.com",
            "-shop.example.com",
            "*.*.example.com",
            "ex*ample.com",
            "bücher.example",
            "shop.example.com\u{202E}moc",
            "shop.example.com\n",
            "2001:db8::1",
            "@example.com",
            long.as_str(),
        ] {
            assert!(common_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_refuses_hidden_characters_and_overlong_values() {
        let mut e = Errors::default();
        assert!(e.text("note", "a plain note,\nover two lines", 100, true));
        assert!(!e.text("id", "line\nbreak", 100, false));
        assert!(!e.text("note", "evil\u{202E}txt.exe", 100, true));
        assert!(!e.text("note", "\u{2066}isolate", 100, true));
        assert!(!e.text("note", "bell\u{7}", 100, true));
        assert!(!e.text("note", &"x".repeat(101), 100, true));
        // Invisible format characters: a zero-width space, a BOM, a soft hyphen, a tag.
        for hidden in [
            "SEC\u{200B}77",
            "\u{FEFF}77",
            "soft\u{AD}hyphen",
            "tag\u{E0041}",
        ] {
            assert!(!e.text("id", hidden, 100, false), "{hidden:?}");
        }
        let errors = e.finish().unwrap_err().errors;
        assert_eq!(errors.len(), 9);
        assert!(errors[5].message.contains("U+200B"), "{errors:?}");
        assert!(errors[1].message.contains("U+202E"), "{errors:?}");
        assert_eq!(errors[4].message, "must be at most 100 characters");
    }

    #[test]
    fn the_text_pattern_refuses_exactly_the_hidden_characters() {
        for multiline in [false, true] {
            let re = Regex::new(&text_pattern(multiline)).unwrap();
            for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
                assert_eq!(
                    re.is_match(&c.to_string()),
                    !is_hidden(c, multiline),
                    "U+{:04X} multiline={multiline}",
                    u32::from(c)
                );
            }
        }
    }

    #[test]
    fn the_id_pattern_needs_a_character_that_is_not_white_space() {
        let re = Regex::new(&id_pattern()).unwrap();
        for c in (0..=0x3100u32).filter_map(char::from_u32) {
            let id = format!(" {c} ");
            let mut errors = Errors::default();
            let valid = errors.text("id", &id, 10, false) && !id.trim().is_empty();
            assert_eq!(re.is_match(&id), valid, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert_eq!(email("ops@example.com"), Ok(()));
        for bad in [
            "example.com",
            "a b@example.com",
            "ops@",
            "ops@*.example.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
