//! DigiCert CertCentral Services API v2 (CONTRACTS.md): cancel a pending order, revoke an
//! order or one certificate, reject a pending approval request, read an order. Auth is the
//! `X-DC-DEVKEY` header; errors are `{"errors": [{"code", "message"}]}`. Every id goes into
//! the URL as one percent-encoded path segment.

use async_trait::async_trait;
use certgate_core::client::RevocationReason;
use certgate_core::client::{IdShape, IdSpec};
use certgate_core::config::{ApiConfig, ProviderContext};
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::{Action, Intent};
use certgate_core::registry::ClientResult;
use certgate_core::{
    CaClient, CaMessage, CallFailure, Observation, OrderField, StepCall, StepOutcome,
};
use certgate_http::{Secret, SendError, Timeouts};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The client's name in providers.toml (`api.client`).
pub const CLIENT: &str = "digicert";

/// A CertCentral account.
#[derive(Debug, Clone)]
pub struct DigicertClient {
    http: reqwest::Client,
    base: Url,
    key: Secret,
}

/// The client factory: `[api]` needs `base_url` and `credentials.api_key`.
pub fn build(ctx: &ProviderContext<'_>, api: &ApiConfig) -> ClientResult {
    let [key] = ctx.credentials(api, ["api_key"])?;
    let base = Url::parse(&api.base_url)
        .map_err(|e| vec![ctx.issue("api.base_url", format!("not a URL: {e}"))])?;
    Ok(Arc::new(DigicertClient::new(
        base,
        Secret::new(key),
        Timeouts::for_api(api),
    )))
}

/// An order as `GET /order/certificate/{id}` returns it (the fields certgate reads).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderInfo {
    pub id: serde_json::Value,
    pub status: String,
    #[serde(default)]
    pub certificate: Option<CertificateInfo>,
    #[serde(default)]
    pub product: Option<ProductInfo>,
    #[serde(default)]
    pub requests: Vec<RequestInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CertificateInfo {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub common_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProductInfo {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestInfo {
    pub id: serde_json::Value,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub status: String,
}

/// What a revocation revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// Every certificate of the order with this id (refunded if eligible).
    Order(&'a str),
    /// The certificate with this id alone.
    Certificate(&'a str),
}

/// What a revocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// 204: revoked.
    Done,
    /// 201: a request an approver must approve (its id).
    Pending(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `{"errors": [{"code", "message"}]}`: the first code, and every error as one line.
fn read_error(body: &str) -> Option<CaMessage> {
    let parsed: ErrorBody = serde_json::from_str(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect();
    let code = parsed
        .errors
        .first()
        .map(|e| e.code.clone())
        .filter(|c| !c.is_empty());
    (!parts.is_empty()).then(|| CaMessage::new(code, parts.join("; ")))
}

/// The code DigiCert answers when an order is not in a status the request applies to: what a
/// repeated cancel or revoke gets once the first one went through.
const INVALID_ORDER_STATUS: &str = "invalid_order_status";
/// DigiCert's rate-limit code (with a 429).
const RATE_LIMITED: &str = "request_limit_exceeded";

/// What a DigiCert error answer means for a step.
fn meaning(e: SendError) -> CallFailure {
    let SendError::Answered(answer) = e else {
        return e.into();
    };
    let code = answer.answer.code.clone();
    let retry_after = answer.retry_after;
    match (code.as_deref(), answer.classify()) {
        (Some(RATE_LIMITED), CallFailure::Refused(m)) => CallFailure::Throttled {
            answer: m,
            retry_after,
        },
        (Some(INVALID_ORDER_STATUS), CallFailure::Refused(m)) => CallFailure::AlreadyDone(m),
        (_, failure) => failure,
    }
}

/// DigiCert's name for an RFC 5280 reason.
fn reason_name(reason: Option<RevocationReason>) -> &'static str {
    match reason {
        Some(RevocationReason::KeyCompromise) => "key_compromise",
        Some(RevocationReason::AffiliationChanged) => "affiliation_changed",
        Some(RevocationReason::Superseded) => "superseded",
        Some(RevocationReason::CessationOfOperation) => "cessation_of_operation",
        _ => "unspecified",
    }
}

fn id_text(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

impl DigicertClient {
    pub fn new(base: Url, key: Secret, timeouts: Timeouts) -> Self {
        DigicertClient {
            http: certgate_http::client(timeouts),
            base,
            key,
        }
    }

    /// One request to the API path of `segments` (each one path segment, encoded).
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, CallFailure> {
        let url = certgate_http::url_with(&self.base, segments)?;
        let key = self.key.expose()?;
        let mut req = self
            .http
            .request(method, url)
            .header("X-DC-DEVKEY", certgate_http::sensitive(&key)?)
            .header("Accept", "application/json");
        if let Some(body) = body {
            req = req.json(&body);
        }
        certgate_http::send(req, read_error).await.map_err(meaning)
    }

    pub async fn order_info(&self, order_id: &str) -> Result<OrderInfo, CallFailure> {
        let res = self
            .call(Method::GET, &["order", "certificate", order_id], None)
            .await?;
        certgate_http::json(res).await
    }

    /// `PUT /order/certificate/{id}/status` to `canceled` (204).
    pub async fn cancel(&self, order_id: &str, note: &str) -> Result<(), CallFailure> {
        let body = json!({"status": "canceled", "note": note, "send_emails": false});
        self.call(
            Method::PUT,
            &["order", "certificate", order_id, "status"],
            Some(body),
        )
        .await?;
        Ok(())
    }

    /// Revokes what `target` names: every certificate of an order
    /// (`/order/certificate/{id}/revoke`), or one certificate (`/certificate/{id}/revoke`).
    pub async fn revoke(
        &self,
        target: Revoke<'_>,
        reason: Option<RevocationReason>,
        comments: &str,
    ) -> Result<Revocation, CallFailure> {
        let body = json!({"comments": comments, "skip_approval": true, "revocation_reason": reason_name(reason)});
        let segments: &[&str] = match target {
            Revoke::Order(id) => &["order", "certificate", id, "revoke"],
            Revoke::Certificate(id) => &["certificate", id, "revoke"],
        };
        let res = self.call(Method::PUT, segments, Some(body)).await?;
        if res.status() == StatusCode::CREATED {
            let req: RequestInfo = certgate_http::json(res).await?;
            if req.status != "approved" {
                return Ok(Revocation::Pending(id_text(&req.id)));
            }
        }
        Ok(Revocation::Done)
    }

    /// `PUT /request/{id}/status` to `rejected` (204).
    pub async fn reject_request(&self, request_id: &str, comment: &str) -> Result<(), CallFailure> {
        let body = json!({"status": "rejected", "processor_comment": comment});
        self.call(Method::PUT, &["request", request_id, "status"], Some(body))
            .await?;
        Ok(())
    }
}

/// certgate's order state for a DigiCert order status.
pub fn order_state(info: &OrderInfo) -> Option<OrderState> {
    let client = info
        .product
        .as_ref()
        .and_then(|p| p.kind.as_deref())
        .is_some_and(|k| k.contains("client"));
    Some(match info.status.as_str() {
        "needs_approval" => OrderState::AwaitingApproval,
        "waiting_pickup" if client => OrderState::EmailedToRecipient,
        "pending" | "waiting_pickup" => OrderState::Pending,
        "issued" | "approved" | "reissue_pending" => OrderState::Issued,
        "rejected" | "canceled" | "cancelled" => OrderState::Canceled,
        "revoked" => OrderState::Revoked,
        "expired" => OrderState::Expired,
        _ => return None,
    })
}

/// What an order read shows: its status, its common name, and its certificate's id.
pub fn observation(info: &OrderInfo) -> Observation {
    let certificate = info.certificate.as_ref();
    Observation::state(order_state(info))
        .showing(
            OrderField::CertificateId,
            certificate.and_then(|c| c.id.as_ref()).map(id_text),
        )
        .showing(
            OrderField::CommonName,
            certificate.and_then(|c| c.common_name.clone()),
        )
}

fn supplier_order_id(order: &Order) -> Result<&str, CallFailure> {
    order
        .supplier_order_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CallFailure::NotSent(
                "order.supplier_order_id (the DigiCert order id) is required".into(),
            )
        })
}

#[async_trait]
impl CaClient for DigicertClient {
    /// Rejecting an approval reads the order first to find the request.
    fn requests(&self, action: Action) -> u32 {
        if action == Action::RejectApproval {
            2
        } else {
            1
        }
    }

    fn ready(&self) -> Result<(), String> {
        certgate_http::ready(&[&self.key])
    }

    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, CallFailure> {
        let order_id = supplier_order_id(call.order)?;
        let note = call.note.map_or_else(
            || format!("certgate operation {}", call.operation_id),
            str::to_owned,
        );
        match call.action {
            Action::Cancel => {
                self.cancel(order_id, &note).await?;
                Ok(StepOutcome::Completed { upstream_ref: Some(order_id.to_owned()) })
            }
            Action::RejectApproval => {
                let info = self.order_info(order_id).await?;
                // No pending request left: the approval was already rejected (a read confirms).
                let pending = info.requests.iter().find(|r| r.status == "pending").ok_or_else(|| {
                    CallFailure::AlreadyDone(CaMessage::text(format!("DigiCert order {order_id} has no pending approval request")))
                })?;
                let request_id = id_text(&pending.id);
                self.reject_request(&request_id, &note).await?;
                Ok(StepOutcome::Completed { upstream_ref: Some(request_id) })
            }
            Action::Revoke => {
                // A refund revokes the whole order (DigiCert refunds it if eligible); a revoke of
                // a known certificate revokes that certificate alone.
                let target = match (call.intent, call.order.certificate_id.as_deref()) {
                    (Intent::Revoke, Some(cert)) if !cert.is_empty() => Revoke::Certificate(cert),
                    _ => Revoke::Order(order_id),
                };
                match self.revoke(target, call.reason, &note).await? {
                    Revocation::Done => Ok(StepOutcome::Completed { upstream_ref: Some(order_id.to_owned()) }),
                    Revocation::Pending(request) => Ok(StepOutcome::AwaitingCa { upstream_ref: Some(request) }),
                }
            }
            Action::RefundRequest => Err(CallFailure::NotSent(
                "DigiCert has no refund endpoint: refunds go through DigiCert Support (a manual ticket)".into(),
            )),
        }
    }

    /// The revoke of one certificate acts on its id: the order's read must show it as the
    /// order's (a read that shows no certificate id cannot vouch for the one sent).
    fn vouched(&self, intent: Intent, order: &Order) -> &'static [OrderField] {
        match (intent, OrderField::CertificateId.of(order)) {
            (Intent::Revoke, Some(_)) => &[OrderField::CertificateId],
            _ => &[],
        }
    }

    /// Order ids and certificate ids both go into URLs.
    fn ids(&self) -> &'static [IdSpec] {
        const IDS: &[IdSpec] = &[
            IdSpec {
                field: OrderField::SupplierOrderId,
                shape: IdShape::Digits,
            },
            IdSpec {
                field: OrderField::CertificateId,
                shape: IdShape::Digits,
            },
        ];
        IDS
    }

    /// The order's status, and its certificate's id and common name to compare with the order
    /// sent.
    async fn observe(&self, order: &Order) -> Result<Observation, CallFailure> {
        let info = self.order_info(supplier_order_id(order)?).await?;
        Ok(observation(&info))
    }
}
