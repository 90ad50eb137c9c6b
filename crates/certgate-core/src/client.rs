//! The `CaClient` trait: how an automated step reaches a CA. A provider's policy is pure
//! ([`crate::Provider`]); its client does the I/O. Clients are built from the provider's
//! `[api]` section by the factory registered under the client's name (`digicert`, ...).
//!
//! A client says what happened in the CA's own terms ([`StepOutcome`], [`CallFailure`]);
//! what that means for the operation is decided in [`crate::lifecycle`].

use crate::operation::RevocationReason;
use crate::order::{Order, OrderState};
use crate::quote::{Action, Confirmation, Intent};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::time::Duration;

/// One automated step to perform at the CA.
#[derive(Debug, Clone, Copy)]
pub struct StepCall<'a> {
    pub operation_id: &'a str,
    /// What the reseller asked for: a refund revokes the whole order, a revoke the certificate.
    pub intent: Intent,
    pub action: Action,
    pub order: &'a Order,
    pub confirmation: Option<Confirmation>,
    /// For revocations.
    pub reason: Option<RevocationReason>,
    /// Free text the CA records (DigiCert requires a note to cancel).
    pub note: Option<&'a str>,
}

/// What the CA said about a step it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The CA confirmed the step is done.
    Completed { upstream_ref: Option<String> },
    /// The CA accepted the step; someone (the applicant) must confirm by e-mail.
    AwaitingConfirmation { upstream_ref: Option<String> },
    /// The CA accepted the step and is still processing it.
    AwaitingCa { upstream_ref: Option<String> },
}

/// The CA's own code and message, as it gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaMessage {
    /// The CA's code (`invalid_order_status`, `-20`, `Throttling.User`), when it gave one.
    #[serde(default)]
    pub code: Option<String>,
    pub message: String,
}

impl CaMessage {
    pub fn new(code: Option<String>, message: impl Into<String>) -> Self {
        CaMessage {
            code,
            message: message.into(),
        }
    }

    /// A message without a CA code.
    pub fn text(message: impl Into<String>) -> Self {
        CaMessage::new(None, message)
    }
}

impl std::fmt::Display for CaMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a call to the CA did not bring an answer that moves the step on, by what it means for
/// the step: whether the request went out, and whether the CA may have acted on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// Nothing was sent: the client cannot make the request (a credential is not set).
    #[error("not sent: {0}")]
    NotSent(String),
    /// The CA could not be reached; the request never arrived (connection refused, DNS).
    #[error("{0}")]
    Unreachable(String),
    /// The request may have reached the CA, but no usable answer came back (a timeout, a
    /// connection reset, a 5xx, an unreadable body): the CA may have acted on it.
    #[error("{message}")]
    NoAnswer {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The CA asks to slow down (DigiCert 429, Sectigo -42, Alibaba `Throttling*`). Nothing was
    /// done; the request must be made again later.
    #[error("{answer}")]
    Throttled {
        answer: CaMessage,
        retry_after: Option<Duration>,
    },
    /// The CA answered that it will not do it.
    #[error("{0}")]
    Refused(CaMessage),
    /// The CA answered that what was asked is already done (DigiCert `invalid_order_status` on
    /// a cancelled order, Sectigo -20, -18): true only if a read of the order confirms it.
    #[error("{0}")]
    AlreadyDone(CaMessage),
    /// The CA's API cannot do this for this order; its support can (Sectigo's `!AutoRefund`
    /// of a multi-domain certificate).
    #[error("{0}")]
    NeedsPerson(CaMessage),
}

impl CallFailure {
    pub fn refused(message: impl Into<String>) -> Self {
        CallFailure::Refused(CaMessage::text(message))
    }

    /// The CA's own code, if the failure carries one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallFailure::Throttled { answer, .. }
            | CallFailure::Refused(answer)
            | CallFailure::AlreadyDone(answer)
            | CallFailure::NeedsPerson(answer) => answer.code.as_deref(),
            _ => None,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::NotSent(_) => "not_sent",
            CallFailure::Unreachable(_) => "unreachable",
            CallFailure::NoAnswer { .. } => "no_answer",
            CallFailure::Throttled { .. } => "throttled",
            CallFailure::Refused(_) => "refused",
            CallFailure::AlreadyDone(_) => "already_done",
            CallFailure::NeedsPerson(_) => "needs_person",
        }
    }
}

/// A CA's API as certgate uses it.
#[async_trait]
pub trait CaClient: Send + Sync + Debug {
    /// How many HTTP requests `execute` makes for `action` (the executor paces by requests).
    fn requests(&self, _action: Action) -> u32 {
        1
    }

    /// The order field this API finds the order by (`supplier_order_id`, the CA's own id), if
    /// `order` does not give it.
    fn missing_reference(&self, order: &Order) -> Option<&'static str> {
        order
            .supplier_order_id
            .as_deref()
            .is_none_or(str::is_empty)
            .then_some("supplier_order_id")
    }

    /// Whether a request can be made at all (its credentials are set): the reason if not.
    /// Checked before every call, so that nothing is counted as sent that could not be.
    fn ready(&self) -> Result<(), String>;

    /// Performs one automated step. `Ok` only when the CA accepted it.
    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, CallFailure>;

    /// The order's state as the CA reports it; `None` where the API cannot read it or the
    /// CA's answer names no state certgate knows.
    async fn observe(&self, _order: &Order) -> Result<Option<OrderState>, CallFailure> {
        Ok(None)
    }
}
