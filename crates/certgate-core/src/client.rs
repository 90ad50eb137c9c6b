//! The `CaClient` trait: how an automated step reaches a CA. A provider's policy is pure
//! ([`crate::Provider`]); its client does the I/O. Clients are built from the provider's
//! `[api]` section by the factory registered under the client's name (`digicert`, ...).

use crate::operation::RevocationReason;
use crate::order::{Order, OrderState};
use crate::quote::{Action, Confirmation, Intent};
use async_trait::async_trait;
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

/// What the CA said about a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The CA confirmed the step is done.
    Completed { upstream_ref: Option<String> },
    /// The CA accepted the step; someone (the applicant) must confirm by e-mail.
    AwaitingConfirmation { upstream_ref: Option<String> },
    /// The CA accepted the step and is still processing it.
    AwaitingCa { upstream_ref: Option<String> },
}

/// Why a step did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Try again later (timeouts, connection errors, 5xx, rate limits).
    #[error("{message}")]
    Retryable {
        message: String,
        /// The CA's Retry-After, when it gave one.
        retry_after: Option<Duration>,
    },
    /// Will not succeed by retrying: the CA's own message.
    #[error("{message}")]
    Permanent { message: String },
}

impl StepError {
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError::Permanent {
            message: message.into(),
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        StepError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StepError::Retryable { .. })
    }
}

/// A CA's API as certgate uses it.
#[async_trait]
pub trait CaClient: Send + Sync + Debug {
    /// How many HTTP requests `execute` makes for `action` (the executor paces by requests).
    fn requests(&self, _action: Action) -> u32 {
        1
    }

    /// Performs one automated step. `Ok` only when the CA accepted it.
    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, StepError>;

    /// The order's state as the CA reports it, where its API can read it (`None` otherwise).
    async fn observe(&self, _order: &Order) -> Result<Option<OrderState>, StepError> {
        Ok(None)
    }

    /// Checks a step the CA is still processing; by default it stays as it was.
    async fn poll(
        &self,
        _call: &StepCall<'_>,
        waiting: StepOutcome,
    ) -> Result<StepOutcome, StepError> {
        Ok(waiting)
    }
}
