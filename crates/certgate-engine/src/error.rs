//! How the engine's work on a tenant's behalf fails. The HTTP API maps each variant to its
//! problem response in one place (`certgate-server`'s `problem.rs`).

use certgate_core::InvalidInput;
use certgate_store::StoreError;

/// Every way an engine call can fail.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A value the caller gave is wrong (naming the field).
    #[error("{0}")]
    Invalid(InvalidInput),
    /// The tenant has no such operation or ticket.
    #[error("{0}")]
    NotFound(String),
    /// Refused as things stand (a step past withdrawal, a ticket already done...).
    #[error("{0}")]
    Conflict(String),
    /// The store did not answer or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record the engine cannot read.
    #[error("{0}")]
    Corrupt(String),
}

impl From<InvalidInput> for EngineError {
    fn from(e: InvalidInput) -> Self {
        EngineError::Invalid(e)
    }
}
