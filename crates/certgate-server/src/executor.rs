//! The operation executor: background workers that claim due operations with a lease in the
//! database, run their steps in order through the provider's CA client (or open a manual
//! ticket), and record every transition. A crash mid-step leaves the lease to expire and the
//! step to be run again by whichever worker claims it next; a step is `completed` only when
//! the CA (or the ticket's resolver) said so.

use crate::config::ExecutorConfig;
use crate::ops::{audit, effects, ms};
use crate::AppState;
use certgate_core::operation::{Operation, Status, StepState};
use certgate_core::order::OrderState;
use certgate_core::quote::{Intent, Procedure};
use certgate_core::registry::ProviderEntry;
use certgate_core::ticket::Ticket;
use certgate_core::{StepCall, StepError, StepOutcome};
use certgate_store::{Effects, OperationRow, SaveOperation, TicketWrite};
use chrono::{DateTime, Duration as Span, Utc};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts the executor: one dispatcher claims due operations and runs each in its own task,
/// up to `config.workers` at once (an operation waiting on a slow CA holds a task, not a
/// thread). On shutdown it claims nothing more and waits for the running ones to finish their
/// current step.
pub fn spawn(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let worker = Worker {
        owner: crate::ids::new("ex"),
        state,
    };
    tokio::spawn(async move {
        let slots = worker.state.executor.workers.max(1);
        let permits = Arc::new(tokio::sync::Semaphore::new(slots));
        let idle = Duration::from_millis(worker.state.executor.poll_ms);
        let lease = Duration::from_millis(worker.state.executor.lease_ms);
        while !*shutdown.borrow() {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            match worker
                .state
                .store
                .claim_operation(&worker.owner, ms(worker.now()), lease)
                .await
            {
                Ok(Some(row)) => {
                    let w = worker.clone();
                    tokio::spawn(async move {
                        w.run_operation(row).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        () = worker.state.wake.notified() => {}
                        () = tokio::time::sleep(idle) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "executor cannot claim work");
                    tokio::time::sleep(idle * 5).await;
                }
            }
        }
        // Let the running operations finish their current step.
        let _ = permits.acquire_many(slots as u32).await;
    })
}

/// The executor of one gateway instance. Its `owner` name holds the leases it takes.
#[derive(Debug, Clone)]
pub struct Worker {
    pub state: AppState,
    pub owner: String,
}

/// Exponential backoff with jitter for the `attempt`-th try (1-based), at least `retry_after`.
pub fn backoff(config: &ExecutorConfig, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = config
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(config.backoff_max_ms);
    let jittered = rand::rng().random_range(exp / 2..=exp.max(1));
    Duration::from_millis(jittered).max(retry_after.unwrap_or_default())
}

/// How a run of an operation ended for this worker.
enum Next {
    /// Saved; run the next step now.
    Continue,
    /// Saved; the operation waits (a ticket, the CA, a retry) or is finished.
    Stop,
}

impl Worker {
    fn now(&self) -> DateTime<Utc> {
        (self.state.clock)()
    }

    /// Runs a claimed operation as far as it can go now.
    pub async fn run_operation(&self, row: OperationRow) {
        let mut op: Operation = match serde_json::from_str(&row.body) {
            Ok(op) => op,
            Err(e) => {
                tracing::error!(operation = %row.id, error = %e, "stored operation cannot be read; parked as failed");
                if let Err(e) = self.state.store.park_operation(&row.id, &self.owner).await {
                    tracing::warn!(operation = %row.id, error = %e, "cannot park the operation");
                }
                return;
            }
        };
        let mut run = Run {
            worker: self,
            tenant: row.tenant,
            version: row.version,
        };
        loop {
            match run.step(&mut op).await {
                Ok(Next::Continue) => continue,
                Ok(Next::Stop) => return,
                Err(e) => {
                    tracing::warn!(operation = %op.id, error = %e, "operation run stopped");
                    return;
                }
            }
        }
    }
}

/// One worker's hold on one operation.
struct Run<'a> {
    worker: &'a Worker,
    tenant: String,
    version: i64,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the lease was lost; another worker has the operation")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] certgate_store::StoreError),
}

impl Run<'_> {
    fn state(&self) -> &AppState {
        &self.worker.state
    }

    /// Saves `op` (guarded by version and lease) with the effects of the transition.
    async fn save(
        &mut self,
        op: &Operation,
        changed: bool,
        next_run_at: Option<DateTime<Utc>>,
        keep_lease: bool,
        mut extra: Effects,
    ) -> Result<(), RunError> {
        let mut fx = effects(
            self.state(),
            &self.tenant,
            op,
            changed,
            std::mem::take(&mut extra.audit),
        );
        fx.tickets = extra.tickets;
        fx.outbox.append(&mut extra.outbox);
        let save = SaveOperation {
            id: &op.id,
            expected_version: self.version,
            owner: Some(&self.worker.owner),
            keep_lease,
            status: op.status,
            now: ms(op.updated_at),
            next_run_at: next_run_at.map(ms),
            body: serde_json::to_string(op).expect("an operation serializes"),
        };
        if self.state().store.save_operation(&save, &fx).await? {
            self.version += 1;
            Ok(())
        } else {
            Err(RunError::LeaseLost)
        }
    }

    fn entry(&self, op: &Operation) -> Option<Arc<ProviderEntry>> {
        self.state().registry.get(&op.provider).cloned()
    }

    async fn step(&mut self, op: &mut Operation) -> Result<Next, RunError> {
        let now = self.worker.now();
        let Some(i) = op.current_step() else {
            // Every step is done (or there were none).
            self.save(op, false, None, false, Effects::default())
                .await?;
            return Ok(Next::Stop);
        };
        if op.status.is_terminal() {
            self.save(op, false, None, false, Effects::default())
                .await?;
            return Ok(Next::Stop);
        }
        let Some(entry) = self.entry(op) else {
            let changed = op.set_step(
                i,
                Status::Failed,
                format!("provider `{}` is no longer configured", op.provider),
                now,
            );
            self.save(op, changed, None, false, Effects::default())
                .await?;
            return Ok(Next::Stop);
        };
        match op.steps[i].status {
            Status::Queued | Status::Running
                if op.steps[i].procedure == Procedure::ManualTicket =>
            {
                self.open_ticket(op, i, now).await
            }
            Status::Queued | Status::Running => self.execute(op, i, &entry, now).await,
            Status::AwaitingConfirmation | Status::AwaitingCa => {
                self.recheck(op, i, &entry, now).await
            }
            _ => {
                // A ticket is open: the resolver moves the operation on.
                self.save(op, false, None, false, Effects::default())
                    .await?;
                Ok(Next::Stop)
            }
        }
    }

    async fn open_ticket(
        &mut self,
        op: &mut Operation,
        i: usize,
        now: DateTime<Utc>,
    ) -> Result<Next, RunError> {
        let username = self
            .state()
            .tenants
            .get(&self.tenant)
            .map_or(self.tenant.as_str(), |t| t.reseller_username.as_str());
        let ticket = Ticket::open(crate::ids::new("tk"), op, i, username, now);
        op.steps[i].ticket_id = Some(ticket.id.clone());
        let changed = op.set_step(
            i,
            Status::ManualTicketOpen,
            format!("manual ticket {} opened", ticket.id),
            now,
        );
        let body = serde_json::to_string(&ticket).expect("a ticket serializes");
        let mut fx = Effects {
            tickets: vec![TicketWrite::Open {
                id: ticket.id.clone(),
                tenant: self.tenant.clone(),
                operation_id: op.id.clone(),
                now: ms(now),
                body: body.clone(),
            }],
            audit: vec![audit(
                &self.tenant,
                "executor",
                "ticket.open",
                &ticket.id,
                "open",
                format!("{:?} for {}", ticket.action, op.id),
                now,
            )],
            outbox: Vec::new(),
        };
        if let Some(helpdesk) = &self.state().helpdesk {
            fx.outbox.push(certgate_store::OutboxWrite {
                tenant: self.tenant.clone(),
                stream: format!("helpdesk:{}", ticket.id),
                url: helpdesk.url.clone(),
                payload: body,
                now: ms(now),
            });
        }
        self.save(op, changed, None, false, fx).await?;
        Ok(Next::Stop)
    }

    /// Before the first automated step, reads the order from the CA where its API allows; if
    /// the CA's state differs, plans again from it and records both.
    async fn verify(
        &self,
        op: &mut Operation,
        entry: &ProviderEntry,
        now: DateTime<Utc>,
    ) -> Result<Option<Next>, StepError> {
        let Some(client) = &entry.client else {
            return Ok(None);
        };
        let Some(observed) = client.observe(&op.order).await? else {
            return Ok(None);
        };
        if observed == op.order.state {
            op.record(
                None,
                format!("the CA confirms the order is {observed:?}"),
                now,
            );
            return Ok(None);
        }
        let reported = op.order.state;
        let mut order = op.order.clone();
        order.state = observed;
        let mut detail = format!("the reseller reported {reported:?}, the CA reports {observed:?}: planned again from the CA's state");
        // Facts the new state needs and the reseller could not give: the conservative guess
        // (issued at purchase, revoked now), so no window looks longer than it is.
        if matches!(observed, OrderState::Issued | OrderState::Revoked) && order.issued_at.is_none()
        {
            order.issued_at = Some(order.purchased_at);
            detail.push_str(" (issue date unknown: taken as the purchase date)");
        }
        if observed == OrderState::Revoked && order.revoked_at.is_none() {
            order.revoked_at = Some(now);
        }
        match entry.quote(&order, op.intent, now) {
            Ok(quote) if quote.decision.allowed => {
                let changed_steps: Vec<_> = quote
                    .decision
                    .steps
                    .iter()
                    .map(|s| (s.action, s.procedure))
                    .collect();
                let old_steps: Vec<_> = op.steps.iter().map(|s| (s.action, s.procedure)).collect();
                op.record(None, detail, now);
                if changed_steps != old_steps {
                    op.steps = StepState::queued(&quote);
                }
                op.quote = quote;
                op.order = order;
                Ok(None)
            }
            Ok(quote) => {
                let alt = quote
                    .decision
                    .alternative
                    .map_or("none".to_owned(), |a: Intent| a.to_string());
                let why = quote
                    .decision
                    .rules
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                op.quote = quote;
                op.order = order;
                op.finish(
                    Status::Rejected,
                    format!(
                        "{detail}; the {} is refused ({why}), alternative: {alt}; nothing was sent",
                        op.intent
                    ),
                    now,
                );
                Ok(Some(Next::Stop))
            }
            Err(e) => {
                op.finish(Status::Failed, format!("{detail}; no plan: {e}"), now);
                Ok(Some(Next::Stop))
            }
        }
    }

    async fn execute(
        &mut self,
        op: &mut Operation,
        i: usize,
        entry: &ProviderEntry,
        now: DateTime<Utc>,
    ) -> Result<Next, RunError> {
        let Some(client) = entry.client.clone() else {
            let changed = op.set_step(
                i,
                Status::Failed,
                "the provider has no API client (mode = \"manual\"); nothing was sent",
                now,
            );
            self.save(op, changed, None, false, Effects::default())
                .await?;
            return Ok(Next::Stop);
        };
        if !op.verified {
            let slot = match self.state().pacing.reserve(&op.id, &op.provider, 1) {
                Ok(at) => at,
                Err(wait) => return self.later(op, wait, now).await,
            };
            let id = op.id.clone();
            let paced = async {
                self.state().pacing.wait(&op.provider, 1, slot).await;
                self.verify(op, entry, now).await
            };
            match self.with_heartbeat(&id, paced).await {
                Ok(Some(next)) => {
                    self.save(
                        op,
                        true,
                        None,
                        false,
                        audit_fx(&self.tenant, op, "operation.verify", now),
                    )
                    .await?;
                    return Ok(next);
                }
                Ok(None) => op.verified = true,
                Err(e) => {
                    // Reading the order counts as an attempt of the step it guards.
                    op.steps[i].attempts += 1;
                    return self.failed_attempt(op, i, e, now).await;
                }
            }
            if op.current_step() != Some(i) || op.steps[i].procedure == Procedure::ManualTicket {
                self.save(op, false, Some(now), true, Effects::default())
                    .await?;
                return Ok(Next::Continue);
            }
        }
        let action = op.steps[i].action;
        let slot = match self
            .state()
            .pacing
            .reserve(&op.id, &op.provider, client.requests(action))
        {
            Ok(at) => at,
            Err(wait) => return self.later(op, wait, now).await,
        };
        // Record the attempt before calling, so a crash leaves a trace and a retry.
        op.steps[i].attempts += 1;
        let changed = op.set_step(
            i,
            Status::Running,
            format!("attempt {}: {action:?} at the CA", op.steps[i].attempts),
            now,
        );
        self.save(op, changed, Some(now), true, Effects::default())
            .await?;

        let call = step_call(op, i);
        // Sent at the reserved instant, after the attempt was saved (no store latency between
        // the pace and the CA), with the lease kept alive while it waits.
        let paced = async {
            self.state()
                .pacing
                .wait(&op.provider, client.requests(action), slot)
                .await;
            client.execute(&call).await
        };
        let result = self.with_heartbeat(&op.id, paced).await;
        let now = self.worker.now();
        match result {
            Ok(outcome) => self.outcome(op, i, outcome, now).await,
            Err(e) => self.failed_attempt(op, i, e, now).await,
        }
    }

    async fn recheck(
        &mut self,
        op: &mut Operation,
        i: usize,
        entry: &ProviderEntry,
        now: DateTime<Utc>,
    ) -> Result<Next, RunError> {
        let Some(client) = entry.client.clone() else {
            self.save(op, false, None, false, Effects::default())
                .await?;
            return Ok(Next::Stop);
        };
        let slot = match self.state().pacing.reserve(&op.id, &op.provider, 1) {
            Ok(at) => at,
            Err(wait) => return self.later(op, wait, now).await,
        };
        let upstream_ref = op.steps[i].upstream_ref.clone();
        let waiting = match op.steps[i].status {
            Status::AwaitingConfirmation => StepOutcome::AwaitingConfirmation { upstream_ref },
            _ => StepOutcome::AwaitingCa { upstream_ref },
        };
        let call = step_call(op, i);
        match self
            .with_heartbeat(&op.id, async {
                self.state().pacing.wait(&op.provider, 1, slot).await;
                client.poll(&call, waiting.clone()).await
            })
            .await
        {
            Ok(outcome) if outcome == waiting => {
                let next = now + span(Duration::from_millis(self.state().executor.recheck_ms));
                self.save(op, false, Some(next), false, Effects::default())
                    .await?;
                Ok(Next::Stop)
            }
            Ok(outcome) => self.outcome(op, i, outcome, now).await,
            Err(StepError::Retryable {
                message,
                retry_after,
            }) => {
                op.record(
                    Some(i),
                    format!("could not check with the CA: {message}"),
                    now,
                );
                let wait =
                    retry_after.unwrap_or(Duration::from_millis(self.state().executor.recheck_ms));
                self.save(op, false, Some(now + span(wait)), false, Effects::default())
                    .await?;
                Ok(Next::Stop)
            }
            Err(e) => self.failed_attempt(op, i, e, now).await,
        }
    }

    /// Gives the worker back: the operation comes back after `wait` (the CA account's pace).
    async fn later(
        &mut self,
        op: &Operation,
        wait: Duration,
        now: DateTime<Utc>,
    ) -> Result<Next, RunError> {
        self.save(op, false, Some(now + span(wait)), false, Effects::default())
            .await?;
        Ok(Next::Stop)
    }

    async fn outcome(
        &mut self,
        op: &mut Operation,
        i: usize,
        outcome: StepOutcome,
        now: DateTime<Utc>,
    ) -> Result<Next, RunError> {
        let recheck = now + span(Duration::from_millis(self.state().executor.recheck_ms));
        let action = op.steps[i].action;
        let (status, upstream_ref, detail, next) = match outcome {
            StepOutcome::Completed { upstream_ref } => (
                Status::Completed,
                upstream_ref,
                format!("the CA completed {action:?}"),
                Some(now),
            ),
            StepOutcome::AwaitingConfirmation { upstream_ref } => (
                Status::AwaitingConfirmation,
                upstream_ref,
                "the CA accepted the request; the applicant must confirm it by e-mail".to_owned(),
                Some(recheck),
            ),
            StepOutcome::AwaitingCa { upstream_ref } => (
                Status::AwaitingCa,
                upstream_ref,
                "the CA accepted the request and is processing it".to_owned(),
                Some(recheck),
            ),
        };
        if upstream_ref.is_some() {
            op.steps[i].upstream_ref = upstream_ref;
        }
        op.steps[i].last_error = None;
        let changed = op.set_step(i, status, detail, now);
        self.state().metrics.step(
            &op.provider,
            &format!("{action:?}").to_lowercase(),
            status.as_str(),
        );
        let more = status == Status::Completed && op.current_step().is_some();
        let next = if status == Status::Completed && !more {
            None
        } else {
            next
        };
        let fx = Effects {
            audit: vec![audit(
                &self.tenant,
                "executor",
                &format!("step.{action:?}").to_lowercase(),
                &op.id,
                status.as_str(),
                "",
                now,
            )],
            ..Default::default()
        };
        self.save(op, changed, next, more, fx).await?;
        Ok(if more { Next::Continue } else { Next::Stop })
    }

    async fn failed_attempt(
        &mut self,
        op: &mut Operation,
        i: usize,
        error: StepError,
        now: DateTime<Utc>,
    ) -> Result<Next, RunError> {
        let action = op.steps[i].action;
        let attempts = op.steps[i].attempts;
        op.steps[i].last_error = Some(error.to_string());
        let cfg = self.state().executor;
        match error {
            StepError::Retryable {
                message,
                retry_after,
            } if attempts < cfg.max_attempts => {
                let wait = backoff(&cfg, attempts.max(1), retry_after);
                op.record(
                    Some(i),
                    format!(
                        "attempt {attempts} failed, retrying in {:.1}s: {message}",
                        wait.as_secs_f64()
                    ),
                    now,
                );
                self.save(op, false, Some(now + span(wait)), false, Effects::default())
                    .await?;
            }
            e => {
                let detail = if e.is_retryable() {
                    format!("gave up after {attempts} attempts: {e}")
                } else {
                    format!("the CA refused {action:?}: {e}")
                };
                let changed = op.set_step(i, Status::Failed, detail.clone(), now);
                self.state().metrics.step(
                    &op.provider,
                    &format!("{action:?}").to_lowercase(),
                    "failed",
                );
                let fx = Effects {
                    audit: vec![audit(
                        &self.tenant,
                        "executor",
                        &format!("step.{action:?}").to_lowercase(),
                        &op.id,
                        "failed",
                        detail,
                        now,
                    )],
                    ..Default::default()
                };
                self.save(op, changed, None, false, fx).await?;
            }
        }
        Ok(Next::Stop)
    }

    /// Runs `fut` while renewing the lease every third of its length.
    async fn with_heartbeat<T>(&self, id: &str, fut: impl std::future::Future<Output = T>) -> T {
        let lease = Duration::from_millis(self.state().executor.lease_ms);
        // The first renewal is one period away (an interval's immediate first tick would wait
        // for the timer wheel: up to a millisecond on every call).
        let period = lease / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => {
                    let until = ms(self.worker.now()) + lease.as_millis() as i64;
                    match self.state().store.renew_lease(id, &self.worker.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(operation = %id, "lease lost during a step"),
                        Err(e) => tracing::warn!(operation = %id, error = %e, "cannot renew the lease"),
                    }
                }
            }
        }
    }
}

fn audit_fx(tenant: &str, op: &Operation, action: &str, now: DateTime<Utc>) -> Effects {
    Effects {
        audit: vec![audit(
            tenant,
            "executor",
            action,
            &op.id,
            op.status.as_str(),
            op.history.last().map_or("", |h| h.detail.as_str()),
            now,
        )],
        ..Default::default()
    }
}

/// What the CA client needs to carry out step `i` of `op`.
fn step_call(op: &Operation, i: usize) -> StepCall<'_> {
    StepCall {
        operation_id: &op.id,
        intent: op.intent,
        action: op.steps[i].action,
        order: &op.order,
        confirmation: op.steps[i].confirmation,
        reason: op.reason,
        note: op.note.as_deref(),
    }
}

fn span(d: Duration) -> Span {
    Span::from_std(d).unwrap_or(Span::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let cfg = ExecutorConfig {
            backoff_base_ms: 1_000,
            backoff_max_ms: 8_000,
            ..Default::default()
        };
        for attempt in 1..=6u32 {
            let d = backoff(&cfg, attempt, None).as_millis() as u64;
            let ceiling = (1_000u64 << (attempt - 1)).min(8_000);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d}ms");
        }
        assert_eq!(
            backoff(&cfg, 1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
