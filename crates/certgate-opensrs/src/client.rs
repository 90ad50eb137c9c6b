//! The OpenSRS Trust API (CONTRACTS.md): one HTTPS POST per command, an XML `OPS_envelope`
//! signed with `X-Username` and `X-Signature` = hex `md5(md5(xml + key) + key)`.
//! `get_order_info` reads an order's state (before acting, and to settle an attempt whose
//! answer was lost); `cancel_order` cancels an order not issued yet. A reply with
//! `is_success=0` carries a `response_code` read like an HTTP status: 5xx the platform failed
//! (it may have acted), 429 slow down, 401/403 certgate's credentials, other 4xx a refusal.

use crate::envelope::{self, Reply};
use async_trait::async_trait;
use certgate_core::client::{IdShape, IdSpec};
use certgate_core::config::{ApiConfig, ProviderContext};
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::Action;
use certgate_core::registry::ClientResult;
use certgate_core::{
    CaClient, CaMessage, CallFailure, Observation, OrderField, StepCall, StepOutcome,
};
use certgate_http::{ErrorAnswer, Secret, Timeouts};
use md5::{Digest, Md5};
use reqwest::StatusCode;
use std::sync::Arc;

/// The client's name in providers.toml (`api.client`), the platform's channel: one name,
/// kept with the platform's rules, which tell that channel's steps apart.
pub use certgate_platform::CLIENT;

/// The object every Trust API command acts on.
const OBJECT: &str = "TRUST_SERVICE";

/// A reseller account on the platform.
#[derive(Debug, Clone)]
pub struct OpensrsClient {
    http: reqwest::Client,
    base: String,
    username: Secret,
    key: Secret,
}

/// The client factory: `[api]` needs `base_url` and `credentials.username` and `.key`.
pub fn build(ctx: &ProviderContext<'_>, api: &ApiConfig) -> ClientResult {
    let [username, key] = ctx.credentials(api, ["username", "key"])?;
    Ok(Arc::new(OpensrsClient::new(
        &api.base_url,
        Secret::new(username),
        Secret::new(key),
        Timeouts::for_api(api),
    )))
}

/// `md5(md5(xml + key) + key)` in lower-case hex.
pub fn signature(xml: &str, key: &str) -> String {
    let inner = hex::encode(Md5::digest(format!("{xml}{key}")));
    hex::encode(Md5::digest(format!("{inner}{key}")))
}

/// The platform's order states (`state` of `get_order_info` and `cancel_order`).
fn order_state(state: &str) -> Option<OrderState> {
    match state {
        "pending" | "in-progress" | "approver-confirmed" => Some(OrderState::Pending),
        "awaiting-approval" => Some(OrderState::AwaitingApproval),
        "completed" => Some(OrderState::Issued),
        "cancelled" => Some(OrderState::Canceled),
        // `declined` (the CA refused to issue) is no state certgate acts from.
        _ => None,
    }
}

/// What an `is_success=0` reply means for a step.
fn failure(reply: &Reply) -> CallFailure {
    let code = reply.response_code();
    let answer = CaMessage::new(
        code.map(|c| c.to_string()),
        format!("the platform answered: {}", reply.response_text()),
    );
    match code.and_then(|c| StatusCode::from_u16(c).ok()) {
        Some(status) => ErrorAnswer {
            status,
            answer,
            retry_after: None,
        }
        .classify(),
        None => CallFailure::NoAnswer {
            message: answer.message,
            retry_after: None,
        },
    }
}

/// An HTTP error answer's body, if it is an envelope.
fn read_error(body: &str) -> Option<CaMessage> {
    let reply = envelope::reply(body)?;
    Some(CaMessage::new(
        reply.response_code().map(|c| c.to_string()),
        reply.response_text().to_owned(),
    ))
}

/// The order's id on the platform.
fn platform_order_id(order: &Order) -> Result<&str, CallFailure> {
    order
        .platform_order_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CallFailure::NotSent(
                "order.platform_order_id (the order's id on the reseller platform) is required"
                    .into(),
            )
        })
}

impl OpensrsClient {
    pub fn new(base: &str, username: Secret, key: Secret, timeouts: Timeouts) -> Self {
        OpensrsClient {
            http: certgate_http::client(timeouts),
            base: base.trim_end_matches('/').to_owned(),
            username,
            key,
        }
    }

    /// Sends one command; `Ok` only for `is_success=1`.
    async fn command(&self, action: &str, order_id: &str) -> Result<Reply, CallFailure> {
        let (username, key) = (self.username.expose()?, self.key.expose()?);
        let xml = envelope::request(action, OBJECT, &[("order_id", order_id)]);
        let req = self
            .http
            .post(format!("{}/", self.base))
            .header("Content-Type", "text/xml")
            .header("X-Username", certgate_http::sensitive(&username)?)
            .header("X-Signature", signature(&xml, &key))
            .body(xml);
        let response = certgate_http::send(req, read_error).await?;
        let body = certgate_http::text(response).await?;
        let reply = envelope::reply(&body).ok_or_else(|| CallFailure::NoAnswer {
            message: format!(
                "the platform's answer is not an OPS envelope: {}",
                certgate_http::summary(&body, StatusCode::OK)
            ),
            retry_after: None,
        })?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(failure(&reply))
        }
    }

    /// `get_order_info`: the order's state on the platform, as the platform names it.
    pub async fn order_info(&self, order_id: &str) -> Result<Reply, CallFailure> {
        self.command("GET_ORDER_INFO", order_id).await
    }

    /// `cancel_order`: cancels an order not issued yet; the state it is in afterwards.
    pub async fn cancel(&self, order_id: &str) -> Result<Reply, CallFailure> {
        self.command("CANCEL_ORDER", order_id).await
    }
}

#[async_trait]
impl CaClient for OpensrsClient {
    /// The platform finds an order by its own id.
    fn reference(&self) -> OrderField {
        OrderField::PlatformOrderId
    }

    fn ids(&self) -> &'static [IdSpec] {
        const IDS: &[IdSpec] = &[IdSpec {
            field: OrderField::PlatformOrderId,
            shape: IdShape::Digits,
        }];
        IDS
    }

    fn ready(&self) -> Result<(), String> {
        certgate_http::ready(&[&self.username, &self.key])
    }

    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, CallFailure> {
        let order_id = platform_order_id(call.order)?;
        match call.action {
            Action::Cancel => {
                let reply = self.cancel(order_id).await?;
                let upstream_ref = Some(order_id.to_owned());
                Ok(match reply.get("attributes.state").and_then(order_state) {
                    Some(OrderState::Canceled) => StepOutcome::Completed { upstream_ref },
                    // Accepted but not cancelled yet: reading the order tells when it is.
                    _ => StepOutcome::AwaitingCa { upstream_ref },
                })
            }
            other => Err(CallFailure::NotSent(format!(
                "the platform's API has no {} command: issued orders are cancelled in the supplier's portal or through the platform's support (a manual step)",
                other.as_str()
            ))),
        }
    }

    /// The order's state, and its common name (`domain`), its id at the CA
    /// (`supplier_order_id`) and on the platform (`order_id`) where the reply shows them.
    async fn observe(&self, order: &Order) -> Result<Observation, CallFailure> {
        let reply = self.order_info(platform_order_id(order)?).await?;
        let shown = |key: &str| reply.get(key).map(str::to_owned);
        Ok(
            Observation::state(reply.get("attributes.state").and_then(order_state))
                .showing(OrderField::CommonName, shown("attributes.domain"))
                .showing(
                    OrderField::SupplierOrderId,
                    shown("attributes.supplier_order_id"),
                )
                .showing(OrderField::PlatformOrderId, shown("attributes.order_id")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_md5_of_md5_with_the_key_twice() {
        let inner = hex::encode(Md5::digest("<x/>k"));
        assert_eq!(
            signature("<x/>", "k"),
            hex::encode(Md5::digest(format!("{inner}k")))
        );
        assert_eq!(signature("<x/>", "k").len(), 32);
        assert!(signature("<x/>", "k")
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn platform_states_map_to_order_states() {
        assert_eq!(order_state("cancelled"), Some(OrderState::Canceled));
        assert_eq!(order_state("completed"), Some(OrderState::Issued));
        assert_eq!(
            order_state("awaiting-approval"),
            Some(OrderState::AwaitingApproval)
        );
        assert_eq!(order_state("declined"), None);
    }
}
