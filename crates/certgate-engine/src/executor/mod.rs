//! The operation executor: dispatch, CA I/O and pacing. It claims due operations with a lease
//! in the database, asks the lifecycle ([`certgate_core::lifecycle::next_work`]) what to do,
//! performs that call (a read of the order, a step's action, a ticket to open) at the CA
//! account's pace, and feeds what happened back through the operation service. What any
//! answer, timeout or throttle means for the operation is decided in core, not here.

use crate::accounts::CaAccount;
use crate::pacing::{Admission, PaceKey, MAX_HOLD, PACE_LEAD};
use crate::service::{self, Actor, Held};
use crate::{Engine, Live};
use certgate_core::lifecycle::{self, Call, Event, Schedule, Transition, Work};
use certgate_core::operation::Operation;
use certgate_core::CallFailure;
use certgate_core::TenantId;
use certgate_store::ms;
use certgate_store::OperationRow;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod call;
pub use call::Worker;
use call::{account, span, step_call, CaCall, Lease, RunError};

/// Starts the executor: one dispatcher claims due operations and runs each in its own task,
/// up to `config.workers` at once (an operation waiting on a slow CA holds a task, not a
/// thread). On shutdown it claims nothing more and waits for the running ones to finish their
/// current call.
pub fn spawn(state: Arc<Engine>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let worker = Worker {
        owner: crate::ids::new("ex"),
        state,
    };
    tokio::spawn(async move {
        let slots = worker.state.executor.workers.max(1);
        let permits = Arc::new(tokio::sync::Semaphore::new(slots));
        let idle = Duration::from_millis(worker.state.executor.poll_ms);
        let lease = Duration::from_millis(worker.state.executor.lease_ms);
        let mut repair_at = Instant::now() + REPAIR_EVERY;
        while !*shutdown.borrow() {
            if Instant::now() >= repair_at {
                repair_at = Instant::now() + REPAIR_EVERY;
                worker.repair().await;
            }
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
                    let mut slot = Slot {
                        permit: Some(permit),
                        permits: permits.clone(),
                    };
                    let (id, tenant) = (row.id.clone(), row.tenant.clone());
                    let run = tokio::spawn(async move {
                        w.run_operation(row, &mut slot).await;
                    });
                    // A run that panics is caught here: the operation is told, not lost.
                    let w = worker.clone();
                    tokio::spawn(async move {
                        if let Err(e) = run.await {
                            if e.is_panic() {
                                let message = crate::supervise::panic_message(&*e.into_panic());
                                w.panicked(&tenant, &id, message).await;
                            }
                        }
                    });
                }
                Ok(None) => {
                    drop(permit);
                    // Sleep until the next operation falls due (at most `poll_ms`), so that
                    // one waiting for its turn at the CA's pace comes back on time.
                    let now = ms(worker.now());
                    let nap = match worker.state.store.next_due(now).await {
                        Ok(Some(due)) => Duration::from_millis((due - now).max(1) as u64).min(idle),
                        _ => idle,
                    };
                    tokio::select! {
                        () = worker.state.wake.notified() => {}
                        () = tokio::time::sleep(nap) => {}
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

/// A running operation's place among the `workers`: given back while it only waits for the
/// CA account's pace.
#[derive(Debug)]
struct Slot {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Slot {
    /// Sleeps `wait` without holding a worker.
    async fn sleep(&mut self, wait: Duration) {
        self.permit = None;
        tokio::time::sleep(wait).await;
        self.permit = self.permits.clone().acquire_owned().await.ok();
    }
}

/// How often a gateway looks for operations nothing would run.
const REPAIR_EVERY: Duration = Duration::from_secs(60);

/// How often a call's outcome is applied again to an operation changed meanwhile.
const MERGE_TRIES: usize = 3;

/// How late after its admission a step's call may go on it; later, it is admitted again.
const RESEND_SLACK_MS: i64 = 20;

/// What the pace said.
enum Paced {
    Now(i64),
    Later(DateTime<Utc>),
}

/// What a call at the CA brought, as the lifecycle's event.
enum Called {
    Event(Event),
    /// The account's pace has no slot soon: the operation comes back at this instant.
    Later(DateTime<Utc>),
}

impl Worker {
    /// A run of operation `id` panicked: the lifecycle decides (run again later, or failed as
    /// `internal` after [`lifecycle::MAX_PANICS`]), saved under this worker's lease, which the
    /// dead run still holds.
    async fn panicked(&self, tenant: &TenantId, id: &str, message: String) {
        tracing::error!(operation = %id, %tenant, panic = %message, "an operation's run panicked");
        for _ in 0..MERGE_TRIES {
            let row = match self.state.store.get_operation(tenant, id).await {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(operation = %id, error = %e, "cannot read the operation that panicked");
                    return;
                }
            };
            let Ok(op) = serde_json::from_str::<Operation>(&row.body) else {
                return;
            };
            let mut held = Held::new(op, row.tenant, row.version);
            let event = Event::Panicked {
                message: message.clone(),
            };
            let t = match self.apply(&mut held, event) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(operation = %id, error = %e, "the panic is not recorded");
                    return;
                }
            };
            match self.save(&mut held, t).await {
                Ok(()) => return,
                Err(RunError::LeaseLost) => continue,
                Err(e) => {
                    tracing::warn!(operation = %id, error = %e, "the panic is not recorded");
                    return;
                }
            }
        }
    }

    /// Schedules the operations nothing would run (`certgate_operations_stalled`), loudly:
    /// each one is a bug to find.
    async fn repair(&self) {
        match self.state.store.repair_stalled(ms(self.now())).await {
            Ok(ids) => {
                for id in ids {
                    tracing::error!(operation = %id, "operation was stalled (not finished, nothing scheduled, no lease): scheduled again");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for stalled operations"),
        }
    }

    /// Runs a claimed operation as far as it can go now.
    async fn run_operation(&self, row: OperationRow, slot: &mut Slot) {
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
        let mut held = Held::new(op, row.tenant, row.version);
        // The lease lives from the claim to the last save: renewed all along (pacing and
        // permit waits too); a renewal that finds it lost stops the run.
        let lease = Lease::new(&row.id, Duration::from_millis(self.state.executor.lease_ms));
        tokio::select! {
            () = self.drive(&mut held, slot, &lease) => {}
            () = lease.keep(self) => {
                tracing::warn!(operation = %row.id, "the lease was lost: the run stops (another worker has the operation)");
            }
        }
    }

    /// Advances `held` for as long as there is work now.
    async fn drive(&self, held: &mut Held, slot: &mut Slot, lease: &Lease) {
        loop {
            match self.advance(held, slot, lease).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(operation = %held.op.id(), error = %e, "operation run stopped");
                    return;
                }
            }
        }
    }

    /// Does the operation's next piece of work and saves what came of it; true to go on now.
    async fn advance(
        &self,
        held: &mut Held,
        slot: &mut Slot,
        lease: &Lease,
    ) -> Result<bool, RunError> {
        let live = self.state.live();
        let called = match lifecycle::next_work(&held.op) {
            Work::Idle => {
                self.save(held, Transition::idle(held.op.status(), Schedule::Never))
                    .await?;
                return Ok(false);
            }
            Work::OpenTicket { .. } => {
                let username = live
                    .tenants
                    .get(&held.tenant)
                    .map_or(held.tenant.to_string(), |t| t.reseller_username.clone());
                Called::Event(Event::TicketOpened {
                    id: crate::ids::new("tk"),
                    reseller_username: username,
                })
            }
            Work::Read { step } => match self.account(&live, held).await? {
                Err(failure) => Called::Event(Event::CallFailed {
                    call: Call::Read,
                    failure,
                }),
                Ok(account) => self.read(held, step, &account, slot).await?,
            },
            Work::Send { step } => match self.account(&live, held).await? {
                Err(failure) => Called::Event(Event::CallFailed {
                    call: Call::Send,
                    failure,
                }),
                Ok(account) => self.send(held, step, &account, slot, lease).await?,
            },
        };
        let event = match called {
            Called::Event(event) => event,
            Called::Later(at) => {
                self.save(held, Transition::idle(held.op.status(), Schedule::At(at)))
                    .await?;
                return Ok(false);
            }
        };
        let read = matches!(event, Event::Observed(_));
        let t = self.apply(held, event.clone())?;
        let go_on = t.schedule == Schedule::Now;
        // A read that leads straight to a send is saved with the send's attempt, which is
        // saved before the request goes: one write fewer, and a crash in between only
        // means reading again.
        if read
            && go_on
            && t.ticket.is_none()
            && matches!(lifecycle::next_work(&held.op), Work::Send { .. })
        {
            held.deferred = Some(t);
            return Ok(true);
        }
        let t = self.save_or_merge(held, t, event).await?;
        Ok(t.schedule == Schedule::Now)
    }

    /// Saves what a call brought. If someone changed the operation meanwhile (a refund
    /// reported through the API while the call was out) and the lease is still this worker's,
    /// the CA's answer is applied again to the operation as it now is, never thrown away.
    async fn save_or_merge(
        &self,
        held: &mut Held,
        mut t: Transition,
        event: Event,
    ) -> Result<Transition, RunError> {
        for _ in 0..MERGE_TRIES {
            match self.save(held, t.clone()).await {
                Err(RunError::LeaseLost) => {}
                other => return other.map(|()| t),
            }
            let Some(row) = self
                .state
                .store
                .get_operation(&held.tenant, held.op.id())
                .await?
            else {
                break;
            };
            if row.lease_owner.as_deref() != Some(self.owner.as_str()) {
                break;
            }
            let Ok(op) = serde_json::from_str(&row.body) else {
                break;
            };
            *held = Held::new(op, row.tenant, row.version);
            t = self.apply(held, event.clone())?;
        }
        Err(RunError::LeaseLost)
    }

    /// The CA account of `held`'s calls ([`account`]), and in a shared account the order
    /// still the tenant's: an operation made before its order was bound is claimed now, and
    /// one whose order the operator has since given to another tenant sends nothing.
    async fn account(
        &self,
        live: &Live,
        held: &Held,
    ) -> Result<Result<Arc<CaAccount>, CallFailure>, RunError> {
        let account = match account(live, held) {
            Ok(a) => a,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(order) = account.shared_order(held.op.order()) else {
            return Ok(Ok(account));
        };
        let claim = certgate_store::Claim {
            order: order.as_ref(),
            tenant: &held.tenant,
            provider: held.op.provider(),
            sticky: true,
            now: ms(self.now()),
        };
        Ok(match self.state.store.claim_order(&claim).await? {
            certgate_store::Claimed::Ours => Ok(account),
            certgate_store::Claimed::Elsewhere => Err(CallFailure::NotSent(
                "the CA order belongs to another tenant of the shared CA account (it claimed it first, or the operator assigned it): nothing is sent for this operation"
                    .into(),
            )),
        })
    }

    fn apply(&self, held: &mut Held, event: Event) -> Result<Transition, RunError> {
        let live = self.state.live();
        let ctx = service::context(&self.state, &live, &held.op, self.now());
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

    /// Waits for the CA account's pace to admit `n` calls of `op`: a short wait holds the
    /// worker, a longer one gives it back (the operation comes back at its turn).
    /// `Ok(Paced::Now(at))`: admitted, recorded as sent at `at` (ms); `replacing` gives back
    /// an earlier admission that was not used in time.
    async fn paced(
        &self,
        op: &Operation,
        pace: &PaceKey,
        n: u32,
        slot: &mut Slot,
        replacing: Option<i64>,
    ) -> Result<Paced, RunError> {
        loop {
            match self.state.pacing.admit(op.id(), pace, n, replacing).await? {
                Admission::Now(at) => return Ok(Paced::Now(at)),
                Admission::Later(wait) if wait <= MAX_HOLD => slot.sleep(wait).await,
                // Back a little early, to wait the rest here and go at the exact instant.
                Admission::Later(wait) => {
                    return Ok(Paced::Later(
                        self.now() + span(wait.saturating_sub(PACE_LEAD)),
                    ))
                }
            }
        }
    }

    /// Reads the order at the CA.
    async fn read(
        &self,
        held: &Held,
        step: usize,
        account: &CaAccount,
        slot: &mut Slot,
    ) -> Result<Called, RunError> {
        let op = &held.op;
        if let Paced::Later(at) = self.paced(op, &account.pace, 1, slot, None).await? {
            return Ok(Called::Later(at));
        }
        let ca = CaCall::new(held, account, "read", op.steps()[step].attempts);
        let result = ca.run(self, account.client.observe(op.order())).await;
        Ok(match result {
            Ok(mut seen) => {
                seen.vouches = account.client.vouched(op.intent(), op.order()).to_vec();
                Called::Event(Event::Observed(seen))
            }
            Err(failure) => self.failed(&account.pace, Call::Read, failure),
        })
    }

    /// Sends the step's action: the attempt is saved before the request goes out, so that a
    /// crash leaves it unconfirmed and the next run reads the order before sending again.
    async fn send(
        &self,
        held: &mut Held,
        step: usize,
        account: &CaAccount,
        slot: &mut Slot,
        lease: &Lease,
    ) -> Result<Called, RunError> {
        let action = held.op.steps()[step].action;
        let n = account.client.requests(action);
        // A send goes only on a lease renewed within the last third of its length: renewed
        // here if need be, before the pace admits the call (a renewal after would make the
        // call later than the instant the account's windows count it at).
        lease.fresh(self).await?;
        let admitted = match self.paced(&held.op, &account.pace, n, slot, None).await? {
            Paced::Now(at) => at,
            Paced::Later(at) => return Ok(Called::Later(at)),
        };
        let t = self.apply(held, Event::Sending)?;
        self.save(held, t).await?;
        // The attempt is saved; if saving took long, the calls are recorded anew at the instant
        // they really go (the account's windows count what the CA will see). Committed now,
        // they wait here for their turn if they lost it.
        if ms(self.now()) - admitted > RESEND_SLACK_MS {
            let mut replacing = Some(admitted);
            while let Paced::Later(at) = self
                .paced(&held.op, &account.pace, n, slot, replacing)
                .await?
            {
                replacing = None;
                let wait = (at - self.now()).to_std().unwrap_or_default() + PACE_LEAD;
                slot.sleep(wait).await;
            }
        }
        // Still so after the pace and the save (the renewals go on meanwhile).
        lease.fresh(self).await?;
        let op = &held.op;
        let call = step_call(op, step);
        let ca = CaCall::new(held, account, action.as_str(), op.steps()[step].attempts);
        let result = ca.run(self, account.client.execute(&call)).await;
        Ok(match result {
            Ok(outcome) => Called::Event(Event::Answered(outcome)),
            Err(failure) => self.failed(&account.pace, Call::Send, failure),
        })
    }

    /// The event of a failed call; a throttle slows the CA account down.
    fn failed(&self, pace: &PaceKey, call: Call, failure: CallFailure) -> Called {
        Called::Event(match failure {
            CallFailure::Throttled {
                answer,
                retry_after,
            } => {
                let wait = self.state.pacing.throttled(pace, retry_after);
                Event::Throttled {
                    call,
                    answer,
                    until: self.now() + span(wait),
                }
            }
            failure => Event::CallFailed { call, failure },
        })
    }
}
