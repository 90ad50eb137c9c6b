//! Test fixtures: a reply as the platform writes it (single quotes in the declaration, the
//! DOCTYPE, `is_success`, `response_code`, `response_text`, and the order's `state`).

/// A reply envelope; `state`, if given, is the order's state in `attributes`.
pub fn reply(success: bool, code: u16, text: &str, state: Option<&str>) -> String {
    let attributes = state.map_or(String::new(), |s| {
        format!(r#"<item key="attributes"><dt_assoc><item key="state">{s}</item><item key="domain">shop.example.com</item></dt_assoc></item>"#)
    });
    format!(
        r#"<?xml version='1.0' encoding='UTF-8' standalone='no' ?><!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'><OPS_envelope><header><version>0.9</version></header><body><data_block><dt_assoc><item key="protocol">XCP</item><item key="is_success">{}</item><item key="response_code">{code}</item><item key="response_text">{text}</item>{attributes}</dt_assoc></data_block></body></OPS_envelope>"#,
        u8::from(success)
    )
}
