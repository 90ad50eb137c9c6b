//! The operation service: loads an operation, applies a lifecycle event
//! ([`certgate_core::lifecycle`]), and saves it with its effects (ticket writes, its events and
//! their webhook deliveries, audit entries) in one transaction guarded by the operation's version.
//! Creating, withdrawing, retrying, resolving a ticket and the executor all go through here.

use crate::EngineError;
use crate::{Engine, Live};
use certgate_core::ledger::Credit;
use certgate_core::lifecycle::{
    self, Context, Emit, Event, Planner, Schedule, TicketChange, TicketOutcome, Transition,
};
use certgate_core::operation::{Operation, OperationRequest};
use certgate_core::quote::Quote;
use certgate_core::ticket::{Ticket, TicketStatus};
use certgate_core::InvalidInput;
use certgate_core::TenantId;
use certgate_store::ms;
use certgate_store::{
    AuditEntry, Effects, NewOperation, RefundWrite, SaveOperation, StoreError, TicketWrite,
    WatchLink,
};
use chrono::{DateTime, Utc};

/// Tries of a read-modify-write that lost a race before answering 409.
const WRITE_TRIES: usize = 5;

/// An operation as loaded for a change: the version its save is guarded by.
#[derive(Debug)]
pub struct Held {
    pub op: Operation,
    pub tenant: TenantId,
    pub version: i64,
    /// A transition applied to `op` but not saved yet: the next save writes it with its own
    /// (the executor saves a read of the order together with the send that follows it).
    pub deferred: Option<Transition>,
}

impl Held {
    pub fn new(op: Operation, tenant: TenantId, version: i64) -> Held {
        Held {
            op,
            tenant,
            version,
            deferred: None,
        }
    }
}

/// Who changes an operation: the executor (holding its lease), a caller of the API, or a
/// person at the support desk.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Executor { owner: &'a str },
    Api { tenant: &'a TenantId },
    Desk { tenant: &'a TenantId, user: &'a str },
}

impl Actor<'_> {
    /// The audit log's actor.
    fn name(&self) -> String {
        match self {
            Actor::Executor { .. } => "executor".into(),
            Actor::Api { tenant } => tenant.to_string(),
            Actor::Desk { user, .. } => format!("desk:{user}"),
        }
    }
}

/// The lifecycle's view of the world for `op` at `now`, with the providers of `live`.
pub fn context<'a>(
    state: &Engine,
    live: &'a Live,
    op: &Operation,
    now: DateTime<Utc>,
) -> Context<'a> {
    Context {
        now,
        policy: state.executor.retry_policy(),
        jitter: rand::random(),
        planner: live
            .registry
            .get(op.provider())
            .map(|e| e.as_ref() as &dyn Planner),
    }
}

/// The effects of `t`: its ticket write, its events (with their deliveries), its audit
/// entries. A ticket to close is read first (its body changes).
async fn effects(
    state: &Engine,
    tenant: &TenantId,
    actor: &str,
    op: &Operation,
    t: &Transition,
    now: DateTime<Utc>,
) -> Result<Effects, StoreError> {
    let mut fx = Effects::default();
    let mut ticket_json = None;
    match &t.ticket {
        Some(TicketChange::Open(ticket)) => {
            fx.tickets.push(TicketWrite::Open {
                id: ticket.id.clone(),
                tenant: tenant.clone(),
                operation_id: op.id().to_owned(),
                provider: ticket.provider.clone(),
                due_at: op.quote().decision.send_by().map(ms),
                now: ms(now),
                body: serde_json::to_string(ticket).expect("a ticket serializes"),
            });
            ticket_json = serde_json::to_value(ticket).ok();
        }
        Some(TicketChange::Close { id, status, note }) => {
            if let Some(row) = state.store.get_ticket(tenant, id).await? {
                let mut ticket: Ticket = serde_json::from_str(&row.body)
                    .map_err(|e| StoreError::Corrupt(format!("ticket {id}: {e}")))?;
                ticket.status = *status;
                if note.is_some() {
                    ticket.note.clone_from(note);
                }
                ticket.updated_at = now;
                fx.tickets.push(TicketWrite::Update {
                    id: id.clone(),
                    from: row.status,
                    to: *status,
                    now: ms(now),
                    body: serde_json::to_string(&ticket).expect("a ticket serializes"),
                });
                ticket_json = serde_json::to_value(&ticket).ok();
            }
        }
        None => {}
    }
    crate::events::add(
        &mut fx,
        state,
        tenant,
        op,
        &t.emit,
        ticket_json.as_ref(),
        now,
    );
    fx.audit = t
        .audit
        .iter()
        .map(|a| AuditEntry {
            tenant: tenant.clone(),
            at: ms(now),
            actor: actor.into(),
            action: a.action.to_string(),
            target: a.target.clone(),
            outcome: a.outcome.clone(),
            detail: a.detail.clone(),
        })
        .collect();
    if t.refund_changed {
        fx.refund = refund_write(tenant, op);
    }
    if t.disowned {
        fx.disown = state
            .live()
            .shared_order(tenant, op.provider(), op.order())
            .map(|o| certgate_store::Disown {
                account: o.account,
                order: o.order,
                tenant: tenant.clone(),
            });
    }
    // A watched order follows its operation's outcome (its status while under way is the
    // one it was linked with).
    if op.status() != t.from && op.status().is_terminal() {
        fx.watch = Some(WatchLink::Follow {
            tenant: tenant.clone(),
            operation_id: op.id().to_owned(),
            status: op.status(),
            order: certgate_core::watch::after_operation(op)
                .map(|o| serde_json::to_string(&o).expect("an order serializes")),
            now: ms(now),
        });
    }
    Ok(fx)
}

/// The ledger's copy of `op`'s refund record, if it has one.
fn refund_write(tenant: &TenantId, op: &Operation) -> Option<RefundWrite> {
    let record = op.refund()?;
    Some(RefundWrite {
        operation_id: op.id().to_owned(),
        tenant: tenant.clone(),
        provider: op.provider().to_owned(),
        order_id: op.order().id.clone(),
        currency: record
            .currency(&op.quote().decision.refund)
            .as_str()
            .to_owned(),
        status: record.status,
        due_by: record.due_by.map(ms),
        overdue: record.overdue,
        mismatch: record.mismatch,
        body: serde_json::to_string(record).expect("a refund record serializes"),
    })
}

/// Saves `held.op` after transition `t` (and a deferred one before it) with its effects; false
/// if someone else changed the operation (or took the executor's lease) since it was loaded.
pub async fn save(
    state: &Engine,
    held: &mut Held,
    t: &Transition,
    actor: Actor<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let merged = held.deferred.take().map(|d| d.then(t.clone()));
    let t = merged.as_ref().unwrap_or(t);
    let fx = effects(state, &held.tenant, &actor.name(), &held.op, t, now).await?;
    let next_run_at = match t.schedule {
        Schedule::Now => Some(now),
        Schedule::At(at) => Some(at),
        Schedule::Never | Schedule::Keep => None,
    };
    let owner = match actor {
        Actor::Executor { owner } => Some(owner),
        Actor::Api { .. } | Actor::Desk { .. } => None,
    };
    let save = SaveOperation {
        id: held.op.id(),
        expected_version: held.version,
        owner,
        keep_lease: owner.is_some() && t.schedule == Schedule::Now,
        keep_schedule: t.schedule == Schedule::Keep,
        status: held.op.status(),
        now: ms(held.op.updated_at()),
        next_run_at: next_run_at.map(ms),
        body: serde_json::to_string(&held.op).expect("an operation serializes"),
    };
    if !state.store.save_operation(&save, &fx).await? {
        return Ok(false);
    }
    if !fx.deliveries.is_empty() {
        state.deliver.notify_one();
    }
    held.version += 1;
    log(state, held, t);
    Ok(true)
}

/// One log line per status change, retry and attention raised.
fn log(state: &Engine, held: &Held, t: &Transition) {
    let op = &held.op;
    if let Some((action, status)) = t.step_status {
        state
            .metrics
            .step(op.provider(), action.as_str(), status.as_str());
    }
    if op.status() != t.from {
        tracing::info!(operation = %op.id(), tenant = %held.tenant, provider = %op.provider(),
            from = %t.from, to = %op.status(),
            detail = op.history().last().map_or("", |h| h.detail.as_str()),
            "operation status changed");
    }
    if let Some(retry) = &t.retry {
        tracing::info!(operation = %op.id(), tenant = %held.tenant, provider = %op.provider(),
            tries = retry.tries, wait_ms = retry.wait.as_millis() as u64, reason = %retry.reason,
            "retry scheduled");
    }
    for emit in &t.emit {
        if let Emit::AttentionNeeded { reason, .. } = emit {
            tracing::warn!(operation = %op.id(), tenant = %held.tenant, provider = %op.provider(),
                %reason, "operation needs attention");
        }
    }
}

/// Who asked for a new operation, under which idempotency key, with which request (its
/// canonical hash), when.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub tenant: &'a TenantId,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub now: DateTime<Utc>,
}

/// Creates the operation a tenant asked for (an allowed `quote`) through the lifecycle and
/// stores it under the tenant's idempotency key, with its `queued` event, audit entry, refund
/// record and the link from the watched order it is about (if watched); what the store did
/// (the existing operation if the key was used before). In a shared CA account its CA order
/// (`order`) is claimed for the tenant in the same transaction: nothing is stored if it is
/// another tenant's.
pub async fn create(
    state: &Engine,
    asked: Asked<'_>,
    request: OperationRequest,
    quote: Quote,
    order: Option<&crate::accounts::SharedOrder>,
) -> Result<(Operation, certgate_store::Inserted), StoreError> {
    let Asked {
        tenant,
        idempotency_key,
        request_hash,
        now,
    } = asked;
    let (op, t) = lifecycle::create(crate::ids::new("op"), request, quote, now);
    let mut fx = effects(state, tenant, tenant.as_str(), &op, &t, now).await?;
    fx.refund = refund_write(tenant, &op);
    fx.watch = Some(WatchLink::Link {
        tenant: tenant.clone(),
        order_id: op.order().id.clone(),
        provider: op.provider().to_owned(),
        operation_id: op.id().to_owned(),
        status: op.status(),
        now: ms(now),
    });
    let new = NewOperation {
        id: op.id(),
        tenant,
        idempotency_key,
        request_hash,
        provider: op.provider(),
        status: op.status(),
        now: ms(now),
        next_run_at: Some(ms(now)),
        body: serde_json::to_string(&op).expect("an operation serializes"),
    };
    let claim = order.map(|o| certgate_store::Claim {
        order: o.as_ref(),
        tenant,
        provider: op.provider(),
        sticky: true,
        now: ms(now),
    });
    let inserted = state
        .store
        .insert_operation(&new, &fx, claim.as_ref())
        .await?;
    if matches!(inserted, certgate_store::Inserted::New) && !fx.deliveries.is_empty() {
        state.deliver.notify_one();
    }
    Ok((op, inserted))
}

/// Reads an operation's stored body.
pub fn parse(body: &str) -> Result<Operation, EngineError> {
    serde_json::from_str(body)
        .map_err(|e| EngineError::Corrupt(format!("stored operation unreadable: {e}")))
}

/// A change asked through the API: loads the tenant's operation `id`, applies the event that
/// `event` makes of it, and saves, trying again if the operation changed meanwhile. A refused
/// event is a 409.
pub async fn change(
    state: &Engine,
    tenant: &TenantId,
    id: &str,
    event: impl Fn(&Operation) -> Event,
) -> Result<Operation, EngineError> {
    change_as(state, Actor::Api { tenant }, tenant, id, event).await
}

/// [`change`] by `actor` (the audit log says who).
pub async fn change_as(
    state: &Engine,
    actor: Actor<'_>,
    tenant: &TenantId,
    id: &str,
    event: impl Fn(&Operation) -> Event,
) -> Result<Operation, EngineError> {
    for _ in 0..WRITE_TRIES {
        let row = state
            .store
            .get_operation(tenant, id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no operation `{id}`")))?;
        let mut held = Held::new(parse(&row.body)?, row.tenant, row.version);
        let now = (state.clock)();
        let e = event(&held.op);
        let live = state.live();
        let ctx = context(state, &live, &held.op, now);
        let t = lifecycle::apply(&mut held.op, e, &ctx).map_err(|r| EngineError::Conflict(r.0))?;
        if save(state, &mut held, &t, actor, now).await? {
            if t.schedule == Schedule::Now {
                state.wake.notify_one();
            }
            return Ok(held.op);
        }
    }
    Err(EngineError::Conflict(
        "the operation changed while this request was applied; try again".into(),
    ))
}

/// Resolves the tenant's open ticket `id` (with what was credited, for a refund request done):
/// its step and operation move on. The ticket and the operation after it; 404 for a ticket the
/// tenant does not have, 400 naming `credited` for a credit on any other resolution, 409 for a
/// ticket that is not open.
pub async fn resolve_ticket(
    state: &Engine,
    actor: Actor<'_>,
    tenant: &TenantId,
    id: &str,
    outcome: TicketOutcome,
    note: Option<String>,
    credited: Option<Credit>,
) -> Result<(Ticket, Operation), EngineError> {
    let ticket = load_ticket(state, tenant, id).await?;
    if credited.is_some() {
        let why = if outcome != TicketOutcome::Done {
            Some("only a ticket resolved `done` says what was credited".to_owned())
        } else {
            let row = state
                .store
                .get_operation(tenant, &ticket.operation_id)
                .await?
                .ok_or_else(|| {
                    EngineError::NotFound(format!("no operation `{}`", ticket.operation_id))
                })?;
            let op = parse(&row.body)?;
            money_elsewhere(&op, ticket.step)
        };
        if let Some(why) = why {
            return Err(InvalidInput::one("credited", why).into());
        }
    }
    if ticket.status != TicketStatus::Open {
        return Err(EngineError::Conflict(format!(
            "the ticket is already {}",
            ticket.status.as_str()
        )));
    }
    let op = change_as(state, actor, tenant, &ticket.operation_id, |_| {
        Event::TicketResolved {
            ticket_id: id.to_owned(),
            step: ticket.step,
            outcome,
            note: note.clone(),
            credited: credited.clone(),
        }
    })
    .await?;
    Ok((load_ticket(state, tenant, id).await?, op))
}

/// Why a ticket of `step` cannot say what was credited, if it cannot.
fn money_elsewhere(op: &Operation, step: usize) -> Option<String> {
    if op.credited_on(step) {
        return None;
    }
    Some(match op.money_step() {
        Some(i) if op.refund().is_some() => format!(
            "the money comes with step {} ({}), not with this ticket's {}: nothing is credited by it",
            i + 1,
            op.steps()[i].action.as_str(),
            op.steps().get(step).map_or("?", |s| s.action.as_str())
        ),
        _ => "the operation promises no money: its quote's refund is none".to_owned(),
    })
}

/// The tenant's ticket `id`.
pub async fn load_ticket(
    state: &Engine,
    tenant: &TenantId,
    id: &str,
) -> Result<Ticket, EngineError> {
    let row = state
        .store
        .get_ticket(tenant, id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no ticket `{id}`")))?;
    serde_json::from_str(&row.body)
        .map_err(|e| EngineError::Corrupt(format!("stored ticket unreadable: {e}")))
}
