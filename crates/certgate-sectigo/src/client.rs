//! Sectigo's legacy reseller API (CONTRACTS.md): `!AutoRevokeSSL` (cancels a pending order,
//! revokes an issued one) and `!AutoRefund`, form-encoded. Every answer is HTTP 200; the body
//! carries the outcome, either as lines (status code, then message) or as
//! `errorCode=-3&errorMessage=...`: both are read.

use async_trait::async_trait;
use certgate_core::config::{ApiConfig, ProviderContext};
use certgate_core::operation::RevocationReason;
use certgate_core::quote::Action;
use certgate_core::registry::ClientResult;
use certgate_core::{CaClient, StepCall, StepError, StepOutcome};
use certgate_http::{CallError, Secret, Timeouts};
use std::sync::Arc;

/// The client's name in providers.toml (`api.client`).
pub const CLIENT: &str = "sectigo";

/// A Sectigo reseller account.
#[derive(Debug, Clone)]
pub struct SectigoClient {
    http: reqwest::Client,
    base: String,
    login: Secret,
    password: Secret,
}

/// The client factory: `[api]` needs `base_url` (`.../products`) and `credentials.login_name`
/// and `credentials.login_password`.
pub fn build(ctx: &ProviderContext<'_>, api: &ApiConfig) -> ClientResult {
    let [login, password] = ctx.credentials(api, ["login_name", "login_password"])?;
    Ok(Arc::new(SectigoClient {
        http: certgate_http::client(Timeouts::for_api(api)),
        base: api.base_url.trim_end_matches('/').to_owned(),
        login: Secret::new(login),
        password: Secret::new(password),
    }))
}

/// What an answer body says: the status code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: i64,
    pub message: String,
}

/// Reads either answer format: `0\nmessage` lines, or `errorCode=-3&errorMessage=...`.
pub fn parse_answer(body: &str) -> Option<Answer> {
    let body = body.trim();
    if body.contains("errorCode=") {
        let mut code = None;
        let mut message = String::new();
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            match k.as_ref() {
                "errorCode" => code = v.trim().parse().ok(),
                "errorMessage" => message = v.into_owned(),
                _ => {}
            }
        }
        return code.map(|code| Answer { code, message });
    }
    let mut lines = body.lines();
    let code = lines.next()?.trim().parse().ok()?;
    let message = lines.collect::<Vec<_>>().join(" ").trim().to_owned();
    Some(Answer { code, message })
}

/// What a Sectigo status code means for a retry.
pub fn classify(answer: Answer) -> Result<(), CallError> {
    let message = format!("{} {}", answer.code, answer.message)
        .trim()
        .to_owned();
    match answer.code {
        0.. => Ok(()),
        -42 => Err(CallError::RateLimited {
            message,
            retry_after: None,
        }),
        -16 => Err(CallError::Unauthorized {
            status: 200,
            message,
        }),
        -14 => Err(CallError::Server {
            status: 200,
            message,
            retry_after: None,
        }),
        _ => Err(CallError::Rejected {
            status: 200,
            message,
        }),
    }
}

/// Sectigo's `codeReason` for an RFC 5280 reason.
fn code_reason(reason: Option<RevocationReason>) -> u8 {
    match reason {
        Some(
            r @ (RevocationReason::KeyCompromise
            | RevocationReason::AffiliationChanged
            | RevocationReason::Superseded
            | RevocationReason::CessationOfOperation),
        ) => r.code(),
        _ => 0,
    }
}

impl SectigoClient {
    /// POSTs a form to `{base}/{command}` and reads the status in the body.
    async fn call(&self, command: &str, fields: &[(&str, String)]) -> Result<Answer, CallError> {
        let mut form = vec![
            ("loginName", self.login.expose()?),
            ("loginPassword", self.password.expose()?),
        ];
        form.extend(fields.iter().map(|(k, v)| (*k, v.clone())));
        let res = certgate_http::send(
            self.http
                .post(format!("{}/{command}", self.base))
                .form(&form),
            |_| None,
        )
        .await?;
        let status = res.status();
        let body = res.text().await.map_err(CallError::from)?;
        let answer = parse_answer(&body).ok_or_else(|| {
            CallError::Decode(format!(
                "unreadable Sectigo answer: {}",
                certgate_http::summary(&body, status)
            ))
        })?;
        classify(answer.clone())?;
        Ok(answer)
    }
}

#[async_trait]
impl CaClient for SectigoClient {
    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, StepError> {
        let order = call
            .order
            .supplier_order_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                StepError::permanent(
                    "order.supplier_order_id (the Sectigo order number) is required",
                )
            })?;
        match call.action {
            // An unissued order is marked rejected (cancelled); an issued one is revoked.
            Action::Cancel | Action::Revoke => {
                let text = call
                    .note
                    .map(str::to_owned)
                    .or_else(|| call.reason.map(|r| r.name().to_owned()))
                    .unwrap_or_else(|| {
                        format!(
                            "Requested by the reseller (certgate operation {})",
                            call.operation_id
                        )
                    });
                self.call(
                    "!AutoRevokeSSL",
                    &[
                        ("orderNumber", order.clone()),
                        ("revocationReason", text),
                        ("codeReason", code_reason(call.reason).to_string()),
                    ],
                )
                .await?;
            }
            Action::RefundRequest => {
                self.call(
                    "!AutoRefund",
                    &[
                        ("orderNumber", order.clone()),
                        ("refundReasonCode", "11".into()),
                    ],
                )
                .await?;
            }
            Action::RejectApproval => {
                return Err(StepError::permanent(
                    "Sectigo's reseller API has no approval requests to reject",
                ))
            }
        }
        Ok(StepOutcome::Completed {
            upstream_ref: Some(order),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answer_formats_are_read() {
        assert_eq!(
            parse_answer("0\nOK"),
            Some(Answer {
                code: 0,
                message: "OK".into()
            })
        );
        assert_eq!(
            parse_answer("-16\nInvalid login\n"),
            Some(Answer {
                code: -16,
                message: "Invalid login".into()
            })
        );
        assert_eq!(
            parse_answer("errorCode=-3&errorMessage=Missing+argument%3A+orderNumber"),
            Some(Answer {
                code: -3,
                message: "Missing argument: orderNumber".into()
            })
        );
        assert_eq!(parse_answer("<html>oops</html>"), None);
        assert_eq!(parse_answer(""), None);
    }

    #[test]
    fn codes_are_classified() {
        let c = |code| {
            classify(Answer {
                code,
                message: "m".into(),
            })
        };
        assert!(c(0).is_ok());
        assert!(c(-42).unwrap_err().is_retryable());
        for permanent in [-3, -4, -16, -18, -20] {
            assert!(!c(permanent).unwrap_err().is_retryable(), "{permanent}");
        }
        assert!(matches!(
            c(-16).unwrap_err(),
            CallError::Unauthorized { .. }
        ));
        assert!(
            c(-14).unwrap_err().is_retryable(),
            "unknown errors are the CA's: retry"
        );
    }
}
