//! Sectigo's legacy reseller API (CONTRACTS.md): `!AutoRevokeSSL` (cancels a pending order,
//! revokes an issued one), `!AutoRefund`, and `download/CollectSSL` with `queryType=0` to read
//! an order's state. Form-encoded; every answer is HTTP 200 and the body carries the outcome,
//! either as lines (status code, then message) or as `errorCode=-3&errorMessage=...`: both
//! are read. Reads of one account are never concurrent, as Sectigo asks.

use async_trait::async_trait;
use certgate_core::client::RevocationReason;
use certgate_core::config::{ApiConfig, ProviderContext};
use certgate_core::order::{Order, OrderState};
use certgate_core::quote::Action;
use certgate_core::registry::ClientResult;
use certgate_core::{CaClient, CaMessage, CallFailure, Observation, StepCall, StepOutcome};
use certgate_http::{Secret, Timeouts};
use std::sync::Arc;

/// The client's name in providers.toml (`api.client`).
pub const CLIENT: &str = "sectigo";

/// A Sectigo reseller account.
#[derive(Debug)]
pub struct SectigoClient {
    http: reqwest::Client,
    base: String,
    login: Secret,
    password: Secret,
    /// Held during a `CollectSSL` call: Sectigo asks that one account never reads concurrently.
    reading: tokio::sync::Mutex<()>,
}

/// The client factory: `[api]` needs `base_url` (`.../products`) and `credentials.login_name`
/// and `credentials.login_password`.
pub fn build(ctx: &ProviderContext<'_>, api: &ApiConfig) -> ClientResult {
    let [login, password] = ctx.credentials(api, ["login_name", "login_password"])?;
    Ok(Arc::new(SectigoClient::new(
        &api.base_url,
        Secret::new(login),
        Secret::new(password),
        Timeouts::for_api(api),
    )))
}

/// What an answer body says: the status code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: i64,
    pub message: String,
}

impl Answer {
    fn ca_message(&self) -> CaMessage {
        CaMessage::new(
            Some(self.code.to_string()),
            format!("{} {}", self.code, self.message).trim().to_owned(),
        )
    }
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

/// -18: this order has already been refunded.
const ALREADY_REFUNDED: i64 = -18;
/// -20: the order has already been cancelled (or revoked).
const ALREADY_CANCELLED: i64 = -20;
/// -21: revoked (CollectSSL).
const REVOKED: i64 = -21;

/// Which command an answer is to: the same code means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `!AutoRevokeSSL`.
    Revoke,
    /// `!AutoRefund`.
    Refund,
    /// `download/CollectSSL`.
    Collect,
}

impl Command {
    fn path(self) -> &'static str {
        match self {
            Command::Revoke => "!AutoRevokeSSL",
            Command::Refund => "!AutoRefund",
            Command::Collect => "download/CollectSSL",
        }
    }
}

/// What a Sectigo error code (a negative status) means for a step.
pub fn classify(command: Command, answer: &Answer) -> CallFailure {
    let m = answer.ca_message();
    match answer.code {
        -42 => CallFailure::Throttled {
            answer: m,
            retry_after: None,
        },
        // Sectigo's own trouble: the request may or may not have been applied.
        -14 => CallFailure::NoAnswer {
            message: m.message,
            retry_after: None,
        },
        ALREADY_CANCELLED if command == Command::Revoke => CallFailure::AlreadyDone(m),
        ALREADY_REFUNDED if command != Command::Collect => CallFailure::AlreadyDone(m),
        // Bad login (-16), malformed requests (-1, -2, -3, -17), a cancelled order's refund.
        -3..=-1 | -16 | -17 | ALREADY_CANCELLED => CallFailure::Refused(m),
        // Anything else refused by `!AutoRefund` is a product or order its API cannot refund
        // (multi-domain): Sectigo's support can.
        _ if command == Command::Refund => CallFailure::NeedsPerson(m),
        _ => CallFailure::Refused(m),
    }
}

/// certgate's order state for a CollectSSL status; errors as [`classify`] says.
pub fn collected_state(answer: &Answer) -> Result<Option<OrderState>, CallFailure> {
    match answer.code {
        1 | 2 => Ok(Some(OrderState::Issued)),
        0 => Ok(Some(OrderState::Pending)),
        ALREADY_CANCELLED => Ok(Some(OrderState::Canceled)),
        REVOKED => Ok(Some(OrderState::Revoked)),
        3.. => Ok(None),
        _ => Err(classify(Command::Collect, answer)),
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

fn order_number(order: &Order) -> Result<String, CallFailure> {
    order
        .supplier_order_id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CallFailure::NotSent(
                "order.supplier_order_id (the Sectigo order number) is required".into(),
            )
        })
}

impl SectigoClient {
    pub fn new(base_url: &str, login: Secret, password: Secret, timeouts: Timeouts) -> Self {
        SectigoClient {
            http: certgate_http::client(timeouts),
            base: base_url.trim_end_matches('/').to_owned(),
            login,
            password,
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// POSTs a form to `{base}/{command}` and reads the status in the body.
    async fn call(
        &self,
        command: Command,
        fields: &[(&str, String)],
    ) -> Result<Answer, CallFailure> {
        let mut form = vec![
            ("loginName", self.login.expose()?),
            ("loginPassword", self.password.expose()?),
        ];
        form.extend(fields.iter().map(|(k, v)| (*k, v.clone())));
        let res = certgate_http::send(
            self.http
                .post(format!("{}/{}", self.base, command.path()))
                .form(&form),
            |_| None,
        )
        .await?;
        let status = res.status();
        let body = certgate_http::text(res).await?;
        parse_answer(&body).ok_or_else(|| CallFailure::NoAnswer {
            message: format!(
                "unreadable Sectigo answer: {}",
                certgate_http::summary(&body, status)
            ),
            retry_after: None,
        })
    }

    /// A command that succeeds with a status of 0 or more.
    async fn act(&self, command: Command, fields: &[(&str, String)]) -> Result<(), CallFailure> {
        let answer = self.call(command, fields).await?;
        if answer.code < 0 {
            return Err(classify(command, &answer));
        }
        Ok(())
    }
}

#[async_trait]
impl CaClient for SectigoClient {
    fn ready(&self) -> Result<(), String> {
        certgate_http::ready(&[&self.login, &self.password])
    }

    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, CallFailure> {
        let order = order_number(call.order)?;
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
                self.act(
                    Command::Revoke,
                    &[
                        ("orderNumber", order.clone()),
                        ("revocationReason", text),
                        ("codeReason", code_reason(call.reason).to_string()),
                    ],
                )
                .await?;
            }
            Action::RefundRequest => {
                self.act(
                    Command::Refund,
                    &[
                        ("orderNumber", order.clone()),
                        ("refundReasonCode", "11".into()),
                    ],
                )
                .await?;
            }
            Action::RejectApproval => {
                return Err(CallFailure::NotSent(
                    "Sectigo's reseller API has no approval requests to reject".into(),
                ))
            }
        }
        Ok(StepOutcome::Completed {
            upstream_ref: Some(order),
        })
    }

    /// CollectSSL's status only: it shows no common name to compare.
    async fn observe(&self, order: &Order) -> Result<Observation, CallFailure> {
        let number = order_number(order)?;
        let _one_at_a_time = self.reading.lock().await;
        let answer = self
            .call(
                Command::Collect,
                &[
                    ("orderNumber", number),
                    ("queryType", "0".into()),
                    ("responseFormat", "1".into()),
                ],
            )
            .await?;
        collected_state(&answer).map(Observation::state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: i64) -> Answer {
        Answer {
            code,
            message: "m".into(),
        }
    }

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
        assert_eq!(
            parse_answer("errorCode=2&certificateStatus=x")
                .unwrap()
                .code,
            2
        );
        assert_eq!(parse_answer("<html>oops</html>"), None);
        assert_eq!(parse_answer(""), None);
    }

    #[test]
    fn codes_mean_what_they_mean_for_each_command() {
        use Command::*;
        let c = |command, code| classify(command, &answer(code));
        assert!(matches!(c(Revoke, -42), CallFailure::Throttled { .. }));
        assert!(matches!(c(Collect, -42), CallFailure::Throttled { .. }));
        assert!(matches!(c(Revoke, -14), CallFailure::NoAnswer { .. }));
        assert!(matches!(c(Revoke, -20), CallFailure::AlreadyDone(_)));
        assert!(matches!(c(Revoke, -18), CallFailure::AlreadyDone(_)));
        assert!(matches!(c(Refund, -18), CallFailure::AlreadyDone(_)));
        // A cancelled order was not refunded by cancelling it.
        assert!(matches!(c(Refund, -20), CallFailure::Refused(_)));
        for refused in [-1, -2, -3, -16, -17] {
            assert!(
                matches!(c(Refund, refused), CallFailure::Refused(_)),
                "{refused}"
            );
            assert!(
                matches!(c(Revoke, refused), CallFailure::Refused(_)),
                "{refused}"
            );
        }
        // What !AutoRefund cannot do, support can.
        assert!(matches!(c(Refund, -4), CallFailure::NeedsPerson(_)));
        assert!(matches!(c(Refund, -99), CallFailure::NeedsPerson(_)));
        assert!(matches!(c(Revoke, -4), CallFailure::Refused(_)));
        assert_eq!(c(Revoke, -16).code(), Some("-16"));
    }

    #[test]
    fn collect_statuses_are_order_states() {
        let s = |code| collected_state(&answer(code));
        assert_eq!(s(2), Ok(Some(OrderState::Issued)));
        assert_eq!(s(1), Ok(Some(OrderState::Issued)));
        assert_eq!(s(0), Ok(Some(OrderState::Pending)));
        assert_eq!(s(-20), Ok(Some(OrderState::Canceled)));
        assert_eq!(s(-21), Ok(Some(OrderState::Revoked)));
        assert!(matches!(s(-16), Err(CallFailure::Refused(_))));
        assert!(matches!(s(-42), Err(CallFailure::Throttled { .. })));
    }
}
