//! The executor's I/O at the CA: the lease an operation run holds (renewed as it runs), a
//! CA call timed and counted, the CA account a tenant's call goes through, and a step's call
//! as the client takes it.

use crate::accounts::CaAccount;
use crate::pacing::PaceKey;
use crate::service::Held;
use crate::{Engine, Live};
use certgate_core::operation::Operation;
use certgate_core::{lifecycle, CallFailure, StepCall};
use certgate_store::ms;
use chrono::Duration as Span;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The executor of one gateway instance. Its `owner` name holds the leases it takes.
#[derive(Debug, Clone)]
pub struct Worker {
    pub state: Arc<Engine>,
    pub owner: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    #[error("the lease was lost; another worker has the operation")]
    LeaseLost,
    /// The executor fed an event the lifecycle does not take in this state: a bug, logged.
    #[error("the lifecycle refused the executor's event: {0}")]
    Refused(#[from] lifecycle::Refused),
    #[error(transparent)]
    Store(#[from] certgate_store::StoreError),
}

impl Worker {
    pub(super) fn now(&self) -> DateTime<Utc> {
        (self.state.clock)()
    }
}

/// This worker's lease on the operation it runs, renewed from the claim on, every third of
/// its length, for as long as the run lasts.
#[derive(Debug)]
pub(super) struct Lease {
    id: String,
    length: Duration,
    /// When it was last renewed (the claim is the first).
    renewed: std::sync::Mutex<Instant>,
}

impl Lease {
    pub(super) fn new(id: &str, length: Duration) -> Lease {
        Lease {
            id: id.to_owned(),
            length,
            renewed: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Renews it now: false if another worker has the operation.
    pub(super) async fn renew(&self, worker: &Worker) -> Result<bool, certgate_store::StoreError> {
        let until = ms(worker.now()) + self.length.as_millis() as i64;
        let renewed = worker
            .state
            .store
            .renew_lease(&self.id, &worker.owner, until)
            .await?;
        if renewed {
            *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
        Ok(renewed)
    }

    /// Renews it every third of its length; returns only when it was lost.
    pub(super) async fn keep(&self, worker: &Worker) {
        loop {
            tokio::time::sleep(self.length / 3).await;
            match self.renew(worker).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(operation = %self.id, error = %e, "cannot renew the lease")
                }
            }
        }
    }

    /// Ready for a send: renewed within the last third of its length, or renewed now.
    pub(super) async fn fresh(&self, worker: &Worker) -> Result<(), RunError> {
        let age = self
            .renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if age < self.length / 3 || self.renew(worker).await? {
            Ok(())
        } else {
            Err(RunError::LeaseLost)
        }
    }
}

/// One call at a CA: its span (provider, CA account, action, operation, tenant, attempt and
/// the HTTP status the HTTP layer records) and its one log line.
pub(super) struct CaCall<'a> {
    span: tracing::Span,
    provider: String,
    pace: &'a PaceKey,
    action: String,
}

impl<'a> CaCall<'a> {
    pub(super) fn new(held: &Held, account: &'a CaAccount, action: &str, attempt: u32) -> Self {
        CaCall {
            span: tracing::info_span!("ca_call", provider = %held.op.provider(),
                account = %account.pace.name, action, operation = %held.op.id(),
                tenant = %held.tenant, attempt, http_status = tracing::field::Empty),
            provider: held.op.provider().to_owned(),
            pace: &account.pace,
            action: action.to_owned(),
        }
    }

    /// Runs the call in its span, and logs how it went.
    pub(super) async fn run<T>(
        &self,
        worker: &Worker,
        call: impl std::future::Future<Output = Result<T, CallFailure>>,
    ) -> Result<T, CallFailure> {
        let started = Instant::now();
        let result = call.instrument(self.span.clone()).await;
        let took = started.elapsed();
        let duration_ms = took.as_millis() as u64;
        let outcome = result.as_ref().map_or_else(CallFailure::kind, |_| "ok");
        worker
            .state
            .metrics
            .ca_call(&self.provider, &self.action, outcome, took);
        if !matches!(result, Err(CallFailure::Throttled { .. })) {
            worker.state.pacing.answered(self.pace);
        }
        self.span.in_scope(|| match &result {
            Ok(_) => tracing::info!(outcome = "ok", duration_ms, "CA call"),
            Err(f) => tracing::info!(outcome = f.kind(), ca_code = f.code(), duration_ms, error = %f, "CA call"),
        });
        result
    }
}

/// The CA account `held`'s calls go through (the tenant's own, else the provider's shared
/// one), or why nothing can be sent: no provider, no API, a credential not set, or an id
/// this CA does not give (checked when the operation was made too; here again for every call).
pub(super) fn account(live: &Live, held: &Held) -> Result<Arc<CaAccount>, CallFailure> {
    let op = &held.op;
    let entry = live.registry.get(op.provider()).ok_or_else(|| {
        CallFailure::NotSent(format!(
            "provider `{}` is no longer configured",
            op.provider()
        ))
    })?;
    let account = live
        .accounts
        .get(&held.tenant, op.provider())
        .filter(|_| entry.client.is_some())
        .cloned()
        .ok_or_else(|| {
            CallFailure::NotSent(format!(
                "provider `{}` has no API client (mode = \"{}\"): its automated steps cannot be sent",
                op.provider(), entry.mode
            ))
        })?;
    account.client.ready().map_err(CallFailure::NotSent)?;
    certgate_core::client::check_ids(account.client.as_ref(), op.order())
        .map_err(|e| CallFailure::NotSent(e.to_string()))?;
    Ok(account)
}

/// What the CA client needs to carry out step `i` of `op`.
pub(super) fn step_call(op: &Operation, i: usize) -> StepCall<'_> {
    StepCall {
        operation_id: op.id(),
        intent: op.intent(),
        action: op.steps()[i].action,
        order: op.order(),
        confirmation: op.steps()[i].confirmation,
        reason: op.reason(),
        note: op.note(),
    }
}

pub(super) fn span(d: Duration) -> Span {
    Span::from_std(d).unwrap_or(Span::MAX)
}
