//! Alibaba Cloud SSL Certificates Service (CAS, API version 2020-04-07): RPC calls signed with
//! ACS3-HMAC-SHA256 ([`sign`]). `CancelOrderRequest` cancels a pending order,
//! `CancelCertificateForPackageRequest` revokes an issued one, `DescribeCertificateState`
//! reads an order. There is no refund action: refund requests stay manual tickets.

use async_trait::async_trait;
use certgate_core::config::{ApiConfig, ProviderContext};
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::{Action, Confirmation};
use certgate_core::registry::ClientResult;
use certgate_core::{CaClient, CaMessage, CallFailure, Observation, StepCall, StepOutcome};
use certgate_http::{Secret, SendError, Timeouts};
use chrono::Utc;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The client's name in providers.toml (`api.client`).
pub const CLIENT: &str = "alibaba";
pub const API_VERSION: &str = "2020-04-07";
/// SHA-256 of an empty body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but `A-Za-z0-9-_.~` is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A request to sign: method, path, query and headers (names lower-case).
#[derive(Debug, Clone)]
pub struct SignInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a BTreeMap<String, String>,
    pub headers: &'a BTreeMap<String, String>,
    pub body_sha256: &'a str,
}

/// The canonical query: keys sorted, each key and value percent-encoded keeping only
/// `A-Za-z0-9-_.~`, joined by `&`. The request's query string is this same text, so what is
/// signed is exactly what is sent.
pub fn canonical_query(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// ACS3-HMAC-SHA256: returns (signed header names, hex signature).
pub fn sign(input: &SignInput<'_>, secret: &str) -> (String, String) {
    let query = canonical_query(input.query);
    let signed: Vec<(&String, &String)> = input
        .headers
        .iter()
        .filter(|(k, _)| {
            k.as_str() == "host" || k.as_str() == "content-type" || k.starts_with("x-acs-")
        })
        .collect();
    let canonical_headers: String = signed
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed_names}\n{}",
        input.method, input.path, input.body_sha256
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    (signed_names, hex::encode(mac.finalize().into_bytes()))
}

/// A CAS account.
#[derive(Debug, Clone)]
pub struct AlibabaClient {
    http: reqwest::Client,
    base: reqwest::Url,
    key_id: Secret,
    key_secret: Secret,
}

impl AlibabaClient {
    pub fn new(base: reqwest::Url, key_id: Secret, key_secret: Secret, timeouts: Timeouts) -> Self {
        AlibabaClient {
            http: certgate_http::client(timeouts),
            base,
            key_id,
            key_secret,
        }
    }
}

/// The client factory: `[api]` needs `base_url` and `credentials.access_key_id` and
/// `credentials.access_key_secret`.
pub fn build(ctx: &ProviderContext<'_>, api: &ApiConfig) -> ClientResult {
    let [id, secret] = ctx.credentials(api, ["access_key_id", "access_key_secret"])?;
    let base = reqwest::Url::parse(&api.base_url)
        .map_err(|e| vec![ctx.issue("api.base_url", format!("not a URL: {e}"))])?;
    Ok(Arc::new(AlibabaClient::new(
        base,
        Secret::new(id),
        Secret::new(secret),
        Timeouts::for_api(api),
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn read_error(body: &str) -> Option<CaMessage> {
    let e: ErrorBody = serde_json::from_str(body).ok()?;
    (!e.code.is_empty())
        .then(|| CaMessage::new(Some(e.code.clone()), format!("{}: {}", e.code, e.message)))
}

/// What an Alibaba error answer means: throttling comes as a 4xx (or 5xx) whose code starts
/// with `Throttling`; it means "slow down", never a refusal.
fn meaning(e: SendError) -> CallFailure {
    match e {
        SendError::Answered(a)
            if a.answer
                .code
                .as_deref()
                .is_some_and(|c| c.starts_with("Throttling")) =>
        {
            CallFailure::Throttled {
                answer: a.answer,
                retry_after: a.retry_after,
            }
        }
        e => e.into(),
    }
}

/// `DescribeCertificateState`'s answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateState {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Accepted {
    #[serde(default)]
    request_id: Option<String>,
}

impl AlibabaClient {
    /// One signed RPC call: `action` in `x-acs-action`, `params` in the query string.
    async fn rpc(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Response, CallFailure> {
        let secret = self.key_secret.expose()?;
        let key_id = self.key_id.expose()?;
        let query: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let host = match self.base.port() {
            Some(p) => format!("{}:{p}", self.base.host_str().unwrap_or_default()),
            None => self.base.host_str().unwrap_or_default().to_owned(),
        };
        let nonce: String = hex::encode(rand::random::<[u8; 16]>());
        let headers: BTreeMap<String, String> = [
            ("host", host),
            ("x-acs-action", action.to_owned()),
            ("x-acs-content-sha256", EMPTY_SHA256.to_owned()),
            (
                "x-acs-date",
                Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-version", API_VERSION.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let path = self.base.path().to_owned();
        let (signed, signature) = sign(
            &SignInput {
                method: "POST",
                path: &path,
                query: &query,
                headers: &headers,
                body_sha256: EMPTY_SHA256,
            },
            &secret,
        );
        let mut url = self.base.clone();
        url.set_query(Some(&canonical_query(&query)));
        let authorization = certgate_http::sensitive(&format!(
            "ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={signed},Signature={signature}"
        ))?;
        let mut req = self.http.post(url).header("Authorization", authorization);
        for (k, v) in headers.iter().filter(|(k, _)| k.as_str() != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        certgate_http::send(req, read_error).await.map_err(meaning)
    }

    async fn accepted(&self, action: &str, order_id: &str) -> Result<Option<String>, CallFailure> {
        let res = self.rpc(action, &[("OrderId", order_id)]).await?;
        let body: Accepted = certgate_http::json(res).await?;
        Ok(body.request_id)
    }

    pub async fn describe(&self, order_id: &str) -> Result<CertificateState, CallFailure> {
        let res = self
            .rpc("DescribeCertificateState", &[("OrderId", order_id)])
            .await?;
        certgate_http::json(res).await
    }
}

/// certgate's order state for a CAS certificate state. The documented types name pending
/// and issued orders only, and `unknow`; a revoked or cancelled order has no documented type,
/// so `revoked` reads as revoked and any other type as an order no longer open at the CA
/// (cancelled: neither pending nor issued). `unknow` says nothing.
pub fn order_state(state: &CertificateState) -> Option<OrderState> {
    match state.kind.as_str() {
        "payed" | "domain_verify" | "process" | "verify_fail" => Some(OrderState::Pending),
        "certificate" => Some(OrderState::Issued),
        "unknow" | "" => None,
        "revoked" => Some(OrderState::Revoked),
        _ => Some(OrderState::Canceled),
    }
}

fn order_id(order: &Order) -> Result<&str, CallFailure> {
    order
        .supplier_order_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CallFailure::NotSent("order.supplier_order_id (the CAS OrderId) is required".into())
        })
}

#[async_trait]
impl CaClient for AlibabaClient {
    fn ready(&self) -> Result<(), String> {
        certgate_http::ready(&[&self.key_id, &self.key_secret])
    }

    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, CallFailure> {
        let id = order_id(call.order)?;
        match call.action {
            Action::Cancel => {
                let request = self.accepted("CancelOrderRequest", id).await?;
                Ok(StepOutcome::Completed {
                    upstream_ref: request,
                })
            }
            Action::Revoke => {
                let request = self
                    .accepted("CancelCertificateForPackageRequest", id)
                    .await?;
                // OV/EV: the CA e-mails the applicant, who must confirm (ALI-REVOKE-CONFIRM).
                Ok(if call.confirmation == Some(Confirmation::Email) {
                    StepOutcome::AwaitingConfirmation {
                        upstream_ref: request,
                    }
                } else {
                    StepOutcome::AwaitingCa {
                        upstream_ref: request,
                    }
                })
            }
            Action::RejectApproval | Action::RefundRequest => Err(CallFailure::NotSent(format!(
                "the Alibaba Cloud CAS API has no {:?} action: it is a manual ticket",
                call.action
            ))),
        }
    }

    /// DescribeCertificateState's `Type` only: it shows no common name to compare.
    async fn observe(&self, order: &Order) -> Result<Observation, CallFailure> {
        let state = self.describe(order_id(order)?).await?;
        Ok(Observation::state(order_state(&state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alibaba's published worked example of the V3 signature (CONTRACTS.md).
    #[test]
    fn signature_matches_alibabas_worked_example() {
        let query: BTreeMap<String, String> = [
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let headers: BTreeMap<String, String> = [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-content-sha256", EMPTY_SHA256),
            ("x-acs-date", "2023-10-26T09:01:01Z"),
            ("x-acs-signature-nonce", "d410180a5abf7fe235dd9b74aca91fc0"),
            ("x-acs-version", "2014-05-26"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (signed, signature) = sign(
            &SignInput {
                method: "POST",
                path: "/",
                query: &query,
                headers: &headers,
                body_sha256: EMPTY_SHA256,
            },
            "YourAccessKeySecret",
        );
        assert_eq!(
            signed,
            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            signature,
            "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        );
    }

    #[test]
    fn only_unreserved_characters_stay_unencoded() {
        assert_eq!(encode("a-b_c.d~e f/g+h*"), "a-b_c.d~e%20f%2Fg%2Bh%2A");
    }
}
