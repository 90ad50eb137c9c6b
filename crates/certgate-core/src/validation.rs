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

    /// Free text: at most `max` characters, no control characters (line breaks excepted
    /// where `multiline`) and no bidirectional overrides, which would make what a person reads
    /// in a ticket differ from what it says. True if it passed.
    pub fn text(&mut self, field: &str, value: &str, max: usize, multiline: bool) -> bool {
        if value.chars().count() > max {
            self.push(field, format!("must be at most {max} characters"));
            return false;
        }
        if let Some(c) = value.chars().find(|c| is_hidden(*c, multiline)) {
            self.push(
                field,
                format!(
                    "must not contain control or bidirectional-override characters (found U+{:04X})",
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
/// `\r` allowed in multi-line text) or a Unicode bidirectional control.
fn is_hidden(c: char, multiline: bool) -> bool {
    let bidi = matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    bidi || (c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
}

/// The longest a common name may be (a DNS name's limit).
pub const MAX_COMMON_NAME: usize = 253;
/// The longest a note (an operation's, a ticket resolution's) may be.
pub const MAX_NOTE: usize = 2_000;

/// A note (optional): at most [`MAX_NOTE`] characters of plain text, line breaks allowed.
pub fn note(field: &str, note: Option<&str>) -> Result<(), InvalidInput> {
    let mut errors = Errors::default();
    if let Some(note) = note {
        errors.text(field, note, MAX_NOTE, true);
    }
    errors.finish()
}

/// Whether `name` may be a certificate's common name: a DNS name (ASCII; an internationalized
/// one in its `xn--` form), a wildcard `*.` name, an IP address, or an e-mail address (client
/// certificates). At most 253 characters.
pub fn common_name(name: &str) -> Result<(), String> {
    const HELP: &str = "must be a DNS name such as shop.example.com, a wildcard such as *.example.com, an IP address, or an e-mail address; internationalized names in their xn-- form";
    if name.len() > MAX_COMMON_NAME {
        return Err(format!("must be at most {MAX_COMMON_NAME} characters"));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let host = match name.split_once('@') {
        Some((local, domain)) => {
            let local_ok = !local.is_empty()
                && local.len() <= 64
                && local
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"@()<>[]:;\\,\"".contains(&b));
            if !local_ok {
                return Err(HELP.into());
            }
            domain
        }
        None => name.strip_prefix("*.").unwrap_or(name),
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(HELP.into())
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
    fn common_names_are_dns_names_wildcards_ips_or_emails() {
        for ok in [
            "shop.example.com",
            "*.example.com",
            "localhost",
            "xn--bcher-kva.example",
            "192.0.2.1",
            "2001:db8::1",
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
        let errors = e.finish().unwrap_err().errors;
        assert_eq!(errors.len(), 5);
        assert!(errors[1].message.contains("U+202E"), "{errors:?}");
        assert_eq!(errors[4].message, "must be at most 100 characters");
    }
}
