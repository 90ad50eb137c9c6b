//! The `OPS_envelope` (CONTRACTS.md, "OpenSRS Trust API"): a request is an XCP action on an
//! object with attributes, nested `dt_assoc`/`item key=` elements; a reply is read back into
//! dotted keys (`is_success`, `attributes.state`). Built and read with quick-xml: values are
//! escaped, never pasted into strings.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};
use std::collections::BTreeMap;

/// A request: `action` on `object` with `attributes` (in order).
pub fn request(action: &str, object: &str, attributes: &[(&str, &str)]) -> String {
    let mut w = Writer::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = write_request(&mut w, action, object, attributes);
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

fn write_request(
    w: &mut Writer<Vec<u8>>,
    action: &str,
    object: &str,
    attributes: &[(&str, &str)],
) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new(
        "1.0",
        Some("UTF-8"),
        Some("no"),
    )))?;
    w.write_event(Event::DocType(BytesText::from_escaped(
        "OPS_envelope SYSTEM 'ops.dtd'",
    )))?;
    open(w, "OPS_envelope")?;
    open(w, "header")?;
    leaf(w, BytesStart::new("version"), "0.9")?;
    close(w, "header")?;
    open(w, "body")?;
    open(w, "data_block")?;
    open(w, "dt_assoc")?;
    item(w, "protocol", "XCP")?;
    item(w, "action", action)?;
    item(w, "object", object)?;
    w.write_event(Event::Start(key("attributes")))?;
    open(w, "dt_assoc")?;
    for (name, value) in attributes {
        item(w, name, value)?;
    }
    close(w, "dt_assoc")?;
    close(w, "item")?;
    close(w, "dt_assoc")?;
    close(w, "data_block")?;
    close(w, "body")?;
    close(w, "OPS_envelope")
}

fn key(name: &str) -> BytesStart<'_> {
    BytesStart::new("item").with_attributes([("key", name)])
}

fn open(w: &mut Writer<Vec<u8>>, tag: &str) -> std::io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(tag)))
}

fn close(w: &mut Writer<Vec<u8>>, tag: &str) -> std::io::Result<()> {
    w.write_event(Event::End(BytesEnd::new(tag)))
}

fn leaf(w: &mut Writer<Vec<u8>>, start: BytesStart<'_>, value: &str) -> std::io::Result<()> {
    let end = start.to_end().into_owned();
    w.write_event(Event::Start(start))?;
    w.write_event(Event::Text(BytesText::new(value)))?;
    w.write_event(Event::End(end))
}

fn item(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> std::io::Result<()> {
    leaf(w, key(name), value)
}

/// A reply's values by their dotted item keys (`response_code`, `attributes.state`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply(BTreeMap<String, String>);

impl Reply {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `is_success` is 1.
    pub fn is_success(&self) -> bool {
        self.get("is_success") == Some("1")
    }

    pub fn response_code(&self) -> Option<u16> {
        self.get("response_code")?.trim().parse().ok()
    }

    pub fn response_text(&self) -> &str {
        self.get("response_text").unwrap_or_default()
    }
}

/// Reads a reply; `None` when it is not a readable envelope.
pub fn reply(xml: &str) -> Option<Reply> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Option<String>> = Vec::new();
    let mut values = BTreeMap::new();
    let mut enveloped = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                enveloped |= e.name().as_ref() == b"OPS_envelope";
                let name = (e.name().as_ref() == b"item")
                    .then(|| e.try_get_attribute("key").ok().flatten())
                    .flatten()
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let keys: Vec<&str> = path.iter().flatten().map(String::as_str).collect();
                if !keys.is_empty() {
                    let text = t.unescape().ok()?.into_owned();
                    values.insert(keys.join("."), text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    enveloped.then_some(Reply(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_the_documented_envelope() {
        let xml = request("CANCEL_ORDER", "TRUST_SERVICE", &[("order_id", "4411907")]);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>"));
        assert!(xml.contains("<!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'>"));
        assert!(xml.contains("<header><version>0.9</version></header>"));
        assert!(xml.contains(r#"<item key="protocol">XCP</item><item key="action">CANCEL_ORDER</item><item key="object">TRUST_SERVICE</item><item key="attributes"><dt_assoc><item key="order_id">4411907</item></dt_assoc></item>"#), "{xml}");
    }

    #[test]
    fn values_are_escaped_and_read_back() {
        let xml = request(
            "GET_ORDER_INFO",
            "TRUST_SERVICE",
            &[("order_id", "a<b&'c\"")],
        );
        assert!(!xml.contains("a<b"), "{xml}");
        let read = reply(&xml).unwrap();
        assert_eq!(read.get("attributes.order_id"), Some("a<b&'c\""));
        assert_eq!(read.get("action"), Some("GET_ORDER_INFO"));
    }

    #[test]
    fn replies_read_into_dotted_keys() {
        let xml = r#"<?xml version='1.0' encoding='UTF-8' standalone='no' ?>
<!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'>
<OPS_envelope><header><version>0.9</version></header><body><data_block><dt_assoc>
  <item key="protocol">XCP</item><item key="is_success">1</item>
  <item key="response_code">200</item><item key="response_text">Command completed successfully</item>
  <item key="attributes"><dt_assoc><item key="state">cancelled</item>
  <item key="domain">shop.example.com</item></dt_assoc></item>
</dt_assoc></data_block></body></OPS_envelope>"#;
        let r = reply(xml).unwrap();
        assert!(r.is_success());
        assert_eq!(r.response_code(), Some(200));
        assert_eq!(r.get("attributes.state"), Some("cancelled"));
        assert_eq!(r.get("attributes.domain"), Some("shop.example.com"));
        assert_eq!(reply("<html>502 Bad Gateway</html>"), None);
        assert_eq!(reply("not xml <<<"), None);
    }
}
