//! The operation executor: dispatch, CA I/O and pacing. It claims due operations with a lease
//! in the database, asks the lifecycle ([`certgate_core::lifecycle::next_work`]) what to do,
//! performs that call (a read of the order, a step's action, a ticket to open) at the CA
//! account's pace, and feeds what happened back through the operation service. What any
//! answer, timeout or throttle means for the operation is decided in core, not here.

use crate::service::{self, Actor, Held};
use crate::AppState;
use certgate_core::lifecycle::{self, Call, Event, Schedule, Transition, Work};
use certgate_core::operation::Operation;
use certgate_core::registry::ProviderEntry;
use certgate_core::{CaClient, CallFailure, StepCall};
use certgate_store::OperationRow;
use chrono::{DateTime, Duration as Span, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Starts the executor: one dispatcher claims due operations and runs each in its own task,
/// up to `config.workers` at once (an operation waiting on a slow CA holds a task, not a
/// thread). On shutdown it claims nothing more and waits for the running ones to finish their
/// current call.
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
                .claim_operation(&worker.owner, service::ms(worker.now()), lease)
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
        // Let the running operations finish their current call.
        let _ = permits.acquire_many(slots as u32).await;
    })
}

/// The executor of one gateway instance. Its `owner` name holds the leases it takes.
#[derive(Debug, Clone)]
pub struct Worker {
    pub state: AppState,
    pub owner: String,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the lease was lost; another worker has the operation")]
    LeaseLost,
    /// The executor fed an event the lifecycle does not take in this state: a bug, logged.
    #[error("the lifecycle refused the executor's event: {0}")]
    Refused(#[from] lifecycle::Refused),
    #[error(transparent)]
    Store(#[from] certgate_store::StoreError),
}

/// What a call at the CA brought, as the lifecycle's event.
enum Called {
    Event(Event),
    /// The account's pace has no slot soon: the operation comes back at this instant.
    Later(DateTime<Utc>),
}

impl Worker {
    fn now(&self) -> DateTime<Utc> {
        (self.state.clock)()
    }

    /// Runs a claimed operation as far as it can go now.
    pub async fn run_operation(&self, row: OperationRow) {
        let op: Operation = match serde_json::from_str(&row.body) {
            Ok(op) => op,
            Err(e) => {
                tracing::error!(operation = %row.id, error = %e, "stored operation cannot be read; parked as failed");
                if let Err(e) = self.state.store.park_operation(&row.id, &self.owner).await {
                    tracing::warn!(operation = %row.id, error = %e, "cannot park the operation");
                }
                return;
            }
        };
        let mut held = Held {
            op,
            tenant: row.tenant,
            version: row.version,
        };
        loop {
            match self.advance(&mut held).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(operation = %held.op.id, error = %e, "operation run stopped");
                    return;
                }
            }
        }
    }

    /// Does the operation's next piece of work and saves what came of it; true to go on now.
    async fn advance(&self, held: &mut Held) -> Result<bool, RunError> {
        let entry = self.state.registry.get(&held.op.provider).cloned();
        let called = match lifecycle::next_work(&held.op) {
            Work::Idle => {
                self.save(held, Transition::idle(held.op.status, Schedule::Never))
                    .await?;
                return Ok(false);
            }
            Work::OpenTicket { .. } => {
                let username = self
                    .state
                    .tenants
                    .get(&held.tenant)
                    .map_or(held.tenant.clone(), |t| t.reseller_username.clone());
                Called::Event(Event::TicketOpened {
                    id: crate::ids::new("tk"),
                    reseller_username: username,
                })
            }
            Work::Read { step } => match client(entry.as_deref(), &held.op) {
                Err(failure) => Called::Event(Event::CallFailed {
                    call: Call::Read,
                    failure,
                }),
                Ok(client) => self.read(held, step, client).await,
            },
            Work::Send { step } => match client(entry.as_deref(), &held.op) {
                Err(failure) => Called::Event(Event::CallFailed {
                    call: Call::Send,
                    failure,
                }),
                Ok(client) => self.send(held, step, client).await?,
            },
        };
        let event = match called {
            Called::Event(event) => event,
            Called::Later(at) => {
                self.save(held, Transition::idle(held.op.status, Schedule::At(at)))
                    .await?;
                return Ok(false);
            }
        };
        let t = self.apply(held, event)?;
        let go_on = t.schedule == Schedule::Now;
        self.save(held, t).await?;
        Ok(go_on)
    }

    fn apply(&self, held: &mut Held, event: Event) -> Result<Transition, RunError> {
        let ctx = service::context(&self.state, &held.op, self.now());
        Ok(lifecycle::apply(&mut held.op, event, &ctx)?)
    }

    async fn save(&self, held: &mut Held, t: Transition) -> Result<(), RunError> {
        let now = self.now();
        if service::save(
            &self.state,
            held,
            &t,
            Actor::Executor { owner: &self.owner },
            now,
        )
        .await?
        {
            Ok(())
        } else {
            Err(RunError::LeaseLost)
        }
    }

    /// Reads the order at the CA.
    async fn read(&self, held: &Held, step: usize, client: Arc<dyn CaClient>) -> Called {
        let op = &held.op;
        let slot = match self.state.pacing.reserve(&op.id, &op.provider, 1) {
            Ok(slot) => slot,
            Err(wait) => return Called::Later(self.now() + span(wait)),
        };
        let attempt = op.steps[step].attempts;
        let ca = CaCall::new(held, "read", attempt);
        let result = ca
            .run(self, async {
                self.state.pacing.wait(&op.provider, 1, slot).await;
                client.observe(&op.order).await
            })
            .await;
        match result {
            Ok(state) => Called::Event(Event::Observed(state)),
            Err(failure) => self.failed(held, Call::Read, failure, slot),
        }
    }

    /// Sends the step's action: the attempt is saved before the request goes out, so that a
    /// crash leaves it unconfirmed and the next run reads the order before sending again.
    async fn send(
        &self,
        held: &mut Held,
        step: usize,
        client: Arc<dyn CaClient>,
    ) -> Result<Called, RunError> {
        let action = held.op.steps[step].action;
        let n = client.requests(action);
        let slot = match self.state.pacing.reserve(&held.op.id, &held.op.provider, n) {
            Ok(slot) => slot,
            Err(wait) => return Ok(Called::Later(self.now() + span(wait))),
        };
        let t = self.apply(held, Event::Sending)?;
        self.save(held, t).await?;
        let op = &held.op;
        let call = step_call(op, step);
        let ca = CaCall::new(held, action.as_str(), op.steps[step].attempts);
        let result = ca
            .run(self, async {
                self.state.pacing.wait(&op.provider, n, slot).await;
                client.execute(&call).await
            })
            .await;
        Ok(match result {
            Ok(outcome) => Called::Event(Event::Answered(outcome)),
            Err(failure) => self.failed(held, Call::Send, failure, slot),
        })
    }

    /// The event of a failed call; a throttle slows the CA account down.
    fn failed(
        &self,
        held: &Held,
        call: Call,
        failure: CallFailure,
        slot: Option<Instant>,
    ) -> Called {
        Called::Event(match failure {
            CallFailure::Throttled {
                answer,
                retry_after,
            } => {
                let wait = self
                    .state
                    .pacing
                    .throttled(&held.op.provider, slot, retry_after);
                Event::Throttled {
                    call,
                    answer,
                    until: self.now() + span(wait),
                }
            }
            failure => Event::CallFailed { call, failure },
        })
    }

    /// Runs `fut` while renewing the lease every third of its length.
    async fn with_heartbeat<T>(&self, id: &str, fut: impl std::future::Future<Output = T>) -> T {
        let lease = Duration::from_millis(self.state.executor.lease_ms);
        // The first renewal is one period away (an interval's immediate first tick would wait
        // for the timer wheel: up to a millisecond on every call).
        let period = lease / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => {
                    let until = service::ms(self.now()) + lease.as_millis() as i64;
                    match self.state.store.renew_lease(id, &self.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(operation = %id, "lease lost during a step"),
                        Err(e) => tracing::warn!(operation = %id, error = %e, "cannot renew the lease"),
                    }
                }
            }
        }
    }
}

/// One call at a CA: its span (provider, action, operation, tenant, attempt and the HTTP
/// status the HTTP layer records) and its one log line.
struct CaCall {
    span: tracing::Span,
    operation: String,
    provider: String,
}

impl CaCall {
    fn new(held: &Held, action: &str, attempt: u32) -> Self {
        CaCall {
            span: tracing::info_span!("ca_call", provider = %held.op.provider, action,
                operation = %held.op.id, tenant = %held.tenant, attempt,
                http_status = tracing::field::Empty),
            operation: held.op.id.clone(),
            provider: held.op.provider.clone(),
        }
    }

    /// Runs the call in its span with the lease kept alive, and logs how it went.
    async fn run<T>(
        &self,
        worker: &Worker,
        call: impl std::future::Future<Output = Result<T, CallFailure>>,
    ) -> Result<T, CallFailure> {
        let started = Instant::now();
        let result = worker
            .with_heartbeat(&self.operation, call.instrument(self.span.clone()))
            .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        if !matches!(result, Err(CallFailure::Throttled { .. })) {
            worker.state.pacing.answered(&self.provider);
        }
        self.span.in_scope(|| match &result {
            Ok(_) => tracing::info!(outcome = "ok", duration_ms, "CA call"),
            Err(f) => tracing::info!(outcome = f.kind(), ca_code = f.code(), duration_ms, error = %f, "CA call"),
        });
        result
    }
}

/// The client of `op`'s provider, or why nothing can be sent.
fn client(entry: Option<&ProviderEntry>, op: &Operation) -> Result<Arc<dyn CaClient>, CallFailure> {
    let entry = entry.ok_or_else(|| {
        CallFailure::NotSent(format!(
            "provider `{}` is no longer configured",
            op.provider
        ))
    })?;
    let client = entry.client.clone().ok_or_else(|| {
        CallFailure::NotSent(format!(
            "provider `{}` has no API client (mode = \"{}\"): its automated steps cannot be sent",
            op.provider, entry.mode
        ))
    })?;
    client.ready().map_err(CallFailure::NotSent)?;
    Ok(client)
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
