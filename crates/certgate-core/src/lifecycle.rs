//! The operation lifecycle: a pure state machine, and the only code that changes an
//! operation's or a step's status.
//!
//! The executor asks [`next_work`] what to do (read the order at the CA, send a step, open a
//! ticket, or nothing), performs that I/O, and feeds what happened back as an [`Event`] to
//! [`apply`], which changes the operation and returns the [`Transition`]: when to run next, the
//! ticket to open or close, the events to emit and the audit entries. The API feeds its own
//! events (a ticket resolved, a withdrawal, a retry) through the same [`apply`].
//!
//! Exactly once: before an action is sent its attempt is saved as unconfirmed
//! ([`Reconcile::AnswerLost`]); an answer that never comes (a timeout, a reset, a crash)
//! leaves it so, and nothing is sent again until the order has been read at the CA. If the CA
//! shows the step's target state the step is completed ("confirmed by reading the CA"); only if
//! it still shows the state before the step is the action sent again. A CA's "already done"
//! answer is likewise confirmed by a read. Throttling never counts as a try.

use crate::calendar::Calendar;
use crate::client::{CaMessage, CallFailure, Observation, OrderField, StepOutcome};
use crate::event::{Backoff, EventType};
use crate::ledger::{Credit, RefundEvent, RefundRecord, Report};
use crate::operation::{FailureKind, Operation, Reconcile, Status, StepFailure, StepState};
use crate::order::{Order, OrderState};
use crate::quote::{Action, Intent, Procedure, Quote, DEFAULT_TICKET_FIELDS};
use crate::ticket::{Ticket, TicketStatus};
use crate::validation::InvalidInput;
use chrono::{DateTime, Duration as Span, Utc};
use std::time::Duration;

/// The executor's retry and recheck settings, as the lifecycle uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed tries of a step (unreachable, answer lost) before it gives up.
    pub max_tries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often a step waiting for the CA or a confirmation is checked.
    pub recheck: Duration,
    /// An unconfirmed revocation raises attention this many business days before `submit_by`.
    pub attention_business_days: u32,
}

/// Exponential backoff for the `tries`-th failure (1-based), at least `retry_after`.
/// `jitter` in `[0, 1]` picks the wait within the upper half of the exponential step.
pub fn backoff(
    policy: &RetryPolicy,
    tries: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let backoff = Backoff {
        base: policy.backoff_base,
        max: policy.backoff_max,
    };
    backoff
        .wait(tries, jitter)
        .max(retry_after.unwrap_or_default())
}

/// What a provider offers the lifecycle: its policy, to plan again from the CA's state, and
/// its business-day calendar.
pub trait Planner: Send + Sync {
    fn plan(
        &self,
        order: &Order,
        intent: Intent,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, InvalidInput>;
    fn calendar(&self) -> &Calendar;
    /// How long one call to the CA may take before it counts as timed out.
    fn call_timeout(&self) -> Duration {
        crate::config::DEFAULT_CALL_TIMEOUT
    }
}

/// After an attempt's call timeout, how much longer a CA may still be applying it: a read
/// that does not show it done is conclusive only after both.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// Everything [`apply`] may look at besides the operation and the event. No clock, no
/// randomness of its own: same input, same transition.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub policy: RetryPolicy,
    /// In `[0, 1]`: where in its range a backoff falls.
    pub jitter: f64,
    /// The operation's provider, `None` if it is no longer configured.
    pub planner: Option<&'a dyn Planner>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What the executor should do next for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Read the order at the CA: before the first automated step, to confirm an unconfirmed
    /// attempt, or to check a step the CA is still processing.
    Read { step: usize },
    /// Send step `step`'s action (after [`Event::Sending`] is saved).
    Send { step: usize },
    /// Open the manual ticket of step `step`.
    OpenTicket { step: usize },
    /// Nothing now: the operation is finished, or waits for a person or its next check.
    Idle,
}

/// Which kind of call an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    Send,
}

/// How a person closed a manual ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOutcome {
    Done,
    Rejected,
}

/// What happened, fed to [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The current step's action is about to be sent (saved before the request goes out).
    Sending,
    /// The CA answered the action.
    Answered(StepOutcome),
    /// The CA reports the order so (its state `None`: its API cannot say).
    Observed(Observation),
    /// A read or a send failed (throttling aside).
    CallFailed { call: Call, failure: CallFailure },
    /// The CA throttled the call; the CA account's pace lets it go again at `until`.
    Throttled {
        call: Call,
        answer: CaMessage,
        until: DateTime<Utc>,
    },
    /// The current step's manual ticket was opened with this id.
    TicketOpened {
        id: String,
        reseller_username: String,
    },
    /// A person resolved ticket `ticket_id`, which carries step `step` (a refund ticket done
    /// may say what was credited).
    TicketResolved {
        ticket_id: String,
        step: usize,
        outcome: TicketOutcome,
        note: Option<String>,
        credited: Option<Credit>,
    },
    /// Someone reports what the CA did with the refund (API.md's `POST .../refund`).
    RefundReported {
        report: Report,
        note: Option<String>,
    },
    /// The ledger's clock: is the refund past its `due_by`?
    CheckOverdue,
    /// The reseller withdraws a refund request under review.
    Withdraw,
    /// The reseller asks to run a failed operation again.
    Retry,
    /// The operation's run panicked (a bug), with this message.
    Panicked { message: String },
}

/// When the executor should run the operation next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// At once, by the worker that holds it.
    Now,
    At(DateTime<Utc>),
    /// Not by itself: it is finished or waits for a person.
    Never,
    /// As it was: the event moved no step (a refund report, the overdue check), so the
    /// operation's own schedule, and the lease of a worker running it, stay as they are.
    Keep,
}

/// A ticket to write with the transition.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketChange {
    Open(Box<Ticket>),
    Close {
        id: String,
        status: TicketStatus,
        note: Option<String>,
    },
}

/// Something a reseller's backend is told about (API.md's event types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emit {
    StatusChanged,
    AttentionNeeded { step: usize, reason: String },
    TicketOpened { ticket_id: String },
    TicketResolved { ticket_id: String },
    Refund(RefundEvent),
}

impl Emit {
    /// The event's type.
    pub fn kind(&self) -> EventType {
        match self {
            Emit::StatusChanged => EventType::OperationStatusChanged,
            Emit::AttentionNeeded { .. } => EventType::OperationAttentionNeeded,
            Emit::TicketOpened { .. } => EventType::TicketOpened,
            Emit::TicketResolved { .. } => EventType::TicketResolved,
            Emit::Refund(RefundEvent::Approved) => EventType::RefundApproved,
            Emit::Refund(RefundEvent::Credited) => EventType::RefundCredited,
            Emit::Refund(RefundEvent::Denied) => EventType::RefundDenied,
            Emit::Refund(RefundEvent::Mismatch) => EventType::RefundMismatch,
            Emit::Refund(RefundEvent::Overdue) => EventType::RefundOverdue,
        }
    }
}

/// An audit entry; whoever saves it adds the tenant, the actor and the instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

/// A retry the transition scheduled, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNote {
    pub tries: u32,
    pub wait: Duration,
    pub reason: String,
}

/// What an event changed, besides the operation itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The operation's status before the event.
    pub from: Status,
    pub schedule: Schedule,
    pub ticket: Option<TicketChange>,
    pub emit: Vec<Emit>,
    pub audit: Vec<AuditNote>,
    /// A step reached this status (for metrics).
    pub step_status: Option<(Action, Status)>,
    pub retry: Option<RetryNote>,
    /// The operation's refund record changed (the ledger's copy is written again).
    pub refund_changed: bool,
    /// The CA showed that the order is not the one the tenant described (`ca_mismatch`): a
    /// claim of it in a shared account is let go of, so that it does not keep the order from
    /// the tenant whose it is.
    pub disowned: bool,
}

impl Transition {
    /// No change: the operation runs again per `schedule`.
    pub fn idle(status: Status, schedule: Schedule) -> Self {
        Transition {
            schedule,
            ..Transition::new(status)
        }
    }

    /// This transition and then `later`, saved as one: the later schedule and ticket change,
    /// both transitions' events and audit entries in order.
    pub fn then(self, later: Transition) -> Transition {
        let mut emit = self.emit;
        emit.extend(later.emit);
        let mut audit = self.audit;
        audit.extend(later.audit);
        Transition {
            from: self.from,
            schedule: match later.schedule {
                Schedule::Keep => self.schedule,
                later => later,
            },
            ticket: later.ticket.or(self.ticket),
            emit,
            audit,
            step_status: later.step_status.or(self.step_status),
            retry: later.retry.or(self.retry),
            refund_changed: self.refund_changed || later.refund_changed,
            disowned: self.disowned || later.disowned,
        }
    }

    fn new(from: Status) -> Self {
        Transition {
            from,
            schedule: Schedule::Never,
            ticket: None,
            emit: Vec::new(),
            audit: Vec::new(),
            step_status: None,
            retry: None,
            refund_changed: false,
            disowned: false,
        }
    }
}

/// An event the operation cannot take as it stands (the API answers 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// What a read of the order says about a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The CA shows the step's target state.
    Done,
    /// The CA shows the state before the step: it has not acted.
    NotDone,
    /// The CA shows another state: the order moved on by other means.
    Moved,
    /// A read cannot tell (the API reads no state, or no read shows this step: a refund).
    Unknown,
}

/// What `observed` says about `action`.
pub fn progress(action: Action, observed: Option<OrderState>) -> Progress {
    use OrderState as S;
    let Some(state) = observed else {
        return Progress::Unknown;
    };
    match (action, state) {
        (Action::RefundRequest, _) => Progress::Unknown,
        (Action::Cancel, S::Canceled) => Progress::Done,
        (Action::Cancel, s) if s.is_unissued() => Progress::NotDone,
        (Action::Revoke, S::Revoked | S::Canceled) => Progress::Done,
        (Action::Revoke, S::Issued) => Progress::NotDone,
        (Action::RejectApproval, S::AwaitingApproval) => Progress::NotDone,
        (Action::RejectApproval, S::Canceled) => Progress::Done,
        _ => Progress::Moved,
    }
}

/// What the executor should do next for `op`.
pub fn next_work(op: &Operation) -> Work {
    if op.status.is_terminal() {
        return Work::Idle;
    }
    let Some(i) = op.current_step() else {
        return Work::Idle;
    };
    let step = &op.steps[i];
    match (step.procedure, step.status) {
        (Procedure::ManualTicket, Status::Queued | Status::Running) => Work::OpenTicket { step: i },
        (Procedure::Automated, Status::Queued | Status::Running) => {
            if step.reconcile.is_some() || !op.verified {
                Work::Read { step: i }
            } else {
                Work::Send { step: i }
            }
        }
        (Procedure::Automated, Status::AwaitingConfirmation | Status::AwaitingCa) => {
            Work::Read { step: i }
        }
        _ => Work::Idle,
    }
}

/// The step the executor works on: the first not completed, of an operation not finished.
fn current(op: &Operation) -> Result<usize, Refused> {
    op.current_step()
        .filter(|_| !op.status.is_terminal())
        .ok_or_else(|| Refused(format!("the operation is {}", op.status)))
}

/// Applies `event` to `op`: the one place an operation changes.
pub fn apply(op: &mut Operation, event: Event, ctx: &Context<'_>) -> Result<Transition, Refused> {
    let mut t = Transition::new(op.status);
    let refund_before = op.refund.clone();
    match event {
        Event::Withdraw => withdraw(op, ctx, &mut t)?,
        Event::Retry => retry(op, ctx, &mut t)?,
        Event::Panicked { message } => panicked(op, current(op)?, message, ctx, &mut t),
        Event::TicketResolved {
            ticket_id,
            step,
            outcome,
            note,
            credited,
        } => {
            if let Some(credit) = credited {
                if !op.credited_on(step) {
                    return Err(Refused(
                        "this ticket's step does not bring the money: nothing is credited by it"
                            .into(),
                    ));
                }
                report_refund(op, Report::Credited(credit), note.clone(), ctx, &mut t)?;
            }
            ticket_resolved(op, &ticket_id, step, outcome, note, ctx, &mut t)?
        }
        Event::RefundReported { report, note } => {
            report_refund(op, report, note, ctx, &mut t)?;
            t.schedule = Schedule::Keep;
        }
        Event::CheckOverdue => {
            t.schedule = Schedule::Keep;
            let late = op.refund.as_mut().and_then(|r| r.check_overdue(ctx.now));
            let Some(late) = late else {
                return Err(Refused("the refund is not overdue".into()));
            };
            op.record(
                None,
                "the refund is overdue: its due_by passed and the money is not in",
                ctx.now,
            );
            t.emit.push(Emit::Refund(late));
        }
        Event::Sending => sending(op, current(op)?, ctx, &mut t),
        Event::Answered(outcome) => answered(op, current(op)?, outcome, ctx, &mut t),
        Event::Observed(seen) => observed(op, current(op)?, seen, ctx, &mut t),
        Event::CallFailed { call, failure } => {
            call_failed(op, current(op)?, call, failure, ctx, &mut t)
        }
        Event::Throttled {
            call,
            answer,
            until,
        } => throttled(op, current(op)?, call, answer, until, ctx, &mut t),
        Event::TicketOpened {
            id,
            reseller_username,
        } => ticket_opened(op, current(op)?, id, &reseller_username, ctx, &mut t),
    }
    follow_refund(op, ctx, &mut t);
    t.refund_changed = op.refund != refund_before;
    if op.status != t.from {
        t.emit.insert(0, Emit::StatusChanged);
    }
    Ok(t)
}

/// Records what someone reports of the refund; refused when the operation promises no money
/// or the record is final.
fn report_refund(
    op: &mut Operation,
    report: Report,
    note: Option<String>,
    ctx: &Context<'_>,
    t: &mut Transition,
) -> Result<(), Refused> {
    let promise = op.quote.decision.refund;
    let record = op.refund.as_mut().ok_or_else(|| {
        Refused("the operation promises no money: its quote's refund is none".into())
    })?;
    let events = record
        .report(report, &promise, note.clone())
        .map_err(|e| Refused(e.0))?;
    let status = record.status;
    let detail = match (&record.credited, status) {
        (Some(c), crate::ledger::RefundStatus::Credited) => format!(
            "refund credited: {} {}{}{}",
            c.money.amount_text(),
            c.money.currency,
            c.reference
                .as_ref()
                .map_or(String::new(), |r| format!(", reference {r}")),
            if record.mismatch {
                " (not the amount expected)"
            } else {
                ""
            }
        ),
        _ => format!("refund {status}"),
    };
    op.record(None, detail.clone(), ctx.now);
    t.audit.push(AuditNote {
        action: "refund.report".into(),
        target: op.id.clone(),
        outcome: status.as_str().into(),
        detail: note.unwrap_or(detail),
    });
    t.emit.extend(events.into_iter().map(Emit::Refund));
    Ok(())
}

/// Moves the refund record along with the operation: requested once the money step went out
/// (or to a person), approved when the refund request was done (the CA's refund call
/// succeeded, or a person resolved its ticket), denied when the operation was refused or
/// withdrawn, due once it completed.
fn follow_refund(op: &mut Operation, ctx: &Context<'_>, t: &mut Transition) {
    let Some(i) = op.money_step() else { return };
    let step = &op.steps[i];
    let asked = step.attempts > 0
        || step.ticket_id.is_some()
        || matches!(
            step.status,
            Status::AwaitingConfirmation
                | Status::AwaitingCa
                | Status::ManualTicketOpen
                | Status::Completed
        );
    // The CA's refund call succeeded, or its support's yes was reported on the ticket that
    // asked for the money.
    let approved = step.status == Status::Completed
        && (step.action == Action::RefundRequest || step.ticket_id.is_some());
    let status = op.status;
    let max_days = op.quote.decision.eta.and_then(|e| e.max_business_days);
    let Some(record) = op.refund.as_mut() else {
        return;
    };
    if asked {
        record.requested();
    }
    let mut events = Vec::new();
    if approved {
        events.extend(record.approved_by_ca());
    }
    match status {
        Status::Rejected => events.extend(record.denied("the operation was refused")),
        Status::Withdrawn => events.extend(record.denied("the refund request was withdrawn")),
        Status::Completed => {
            let default = crate::calendar::Calendar::default();
            let cal = ctx.planner.map_or(&default, |p| p.calendar());
            record.due_from(ctx.now, max_days, cal);
        }
        _ => {}
    }
    t.emit.extend(events.into_iter().map(Emit::Refund));
}

fn state_name(state: Option<OrderState>) -> String {
    state.map_or_else(
        || "in a state certgate cannot read".to_owned(),
        |s| format!("{s:?}"),
    )
}

fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    // A wait past the calendar's end is the calendar's end, never a panic.
    Span::from_std(wait)
        .ok()
        .and_then(|w| now.checked_add_signed(w))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Moves step `i` to `status` and notes it for metrics and the audit log.
fn move_step(
    op: &mut Operation,
    i: usize,
    status: Status,
    detail: impl Into<String>,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let detail = detail.into();
    let action = op.steps[i].action;
    op.set_step(i, status, detail.clone(), ctx.now);
    if !matches!(status, Status::Queued | Status::Running) {
        t.step_status = Some((action, status));
        t.audit.push(AuditNote {
            action: format!("step.{}", Action::as_str(action)),
            target: op.id.clone(),
            outcome: status.as_str().into(),
            detail,
        });
    }
}

/// After step `i` completed: the next step now, or nothing more.
fn go_on(op: &Operation, t: &mut Transition) {
    t.schedule = if op.status.is_terminal() || op.current_step().is_none() {
        Schedule::Never
    } else {
        Schedule::Now
    };
}

fn complete(op: &mut Operation, i: usize, detail: String, ctx: &Context<'_>, t: &mut Transition) {
    let step = &mut op.steps[i];
    step.reconcile = None;
    step.uncertain = false;
    step.tries = 0;
    step.throttled = false;
    step.last_error = None;
    move_step(op, i, Status::Completed, detail, ctx, t);
    go_on(op, t);
}

/// Fails step `i` for `kind`, with the CA's code and message if it gave them.
fn fail(
    op: &mut Operation,
    i: usize,
    kind: FailureKind,
    why: CaMessage,
    detail: String,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    op.steps[i].last_error = Some(why.message.clone());
    op.steps[i].error = Some(StepFailure {
        kind,
        code: why.code,
        message: why.message,
    });
    move_step(op, i, Status::Failed, detail, ctx, t);
    t.schedule = Schedule::Never;
}

fn sending(op: &mut Operation, i: usize, ctx: &Context<'_>, t: &mut Transition) {
    let timeout = ctx
        .planner
        .map_or(crate::config::DEFAULT_CALL_TIMEOUT, |p| p.call_timeout());
    let step = &mut op.steps[i];
    step.attempts += 1;
    let attempt = step.attempts;
    step.reconcile = Some(Reconcile::AnswerLost {
        attempt,
        conclusive_at: Some(after(ctx.now, timeout + SETTLE_MARGIN)),
    });
    let action = step.action;
    move_step(
        op,
        i,
        Status::Running,
        format!(
            "attempt {attempt}: {} sent to the CA",
            Action::as_str(action)
        ),
        ctx,
        t,
    );
    t.schedule = Schedule::Now;
}

fn answered(
    op: &mut Operation,
    i: usize,
    outcome: StepOutcome,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let action = Action::as_str(op.steps[i].action);
    let (status, upstream_ref, detail) = match outcome {
        StepOutcome::Completed { upstream_ref } => (
            Status::Completed,
            upstream_ref,
            format!("the CA completed {action}"),
        ),
        StepOutcome::AwaitingConfirmation { upstream_ref } => (
            Status::AwaitingConfirmation,
            upstream_ref,
            "the CA accepted the request; the applicant must confirm it by e-mail".to_owned(),
        ),
        StepOutcome::AwaitingCa { upstream_ref } => (
            Status::AwaitingCa,
            upstream_ref,
            "the CA accepted the request and is processing it".to_owned(),
        ),
    };
    let step = &mut op.steps[i];
    if upstream_ref.is_some() {
        step.upstream_ref = upstream_ref;
    }
    if status == Status::Completed {
        complete(op, i, detail, ctx, t);
        return;
    }
    step.reconcile = None;
    step.tries = 0;
    step.throttled = false;
    step.last_error = None;
    move_step(op, i, status, detail, ctx, t);
    t.schedule = Schedule::At(after(ctx.now, ctx.policy.recheck));
}

fn observed(
    op: &mut Operation,
    i: usize,
    observation: Observation,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let state = observation.state;
    let (action, status) = (op.steps[i].action, op.steps[i].status);
    let seen = progress(action, state);
    let shown = state_name(state);
    // A good read ends a throttling spell, but not a run of failed tries: an action whose
    // answers are always lost must still give up.
    op.steps[i].throttled = false;
    if matches!(status, Status::AwaitingConfirmation | Status::AwaitingCa) {
        if seen == Progress::Done {
            complete(
                op,
                i,
                format!("the CA reports the order {shown}: done"),
                ctx,
                t,
            );
        } else {
            if seen == Progress::NotDone && status == Status::AwaitingConfirmation {
                attention(op, i, ctx, t);
            }
            t.schedule = Schedule::At(after(ctx.now, ctx.policy.recheck));
        }
        return;
    }
    match op.steps[i].reconcile.clone() {
        Some(Reconcile::AnswerLost { attempt, .. }) if seen == Progress::Done => complete(
            op,
            i,
            format!(
                "confirmed by reading the CA: the answer to attempt {attempt} was lost, and the CA reports the order {shown}"
            ),
            ctx,
            t,
        ),
        // The attempt may still be in progress at the CA: what the CA shows now proves
        // nothing yet. Read again once it cannot be.
        Some(Reconcile::AnswerLost {
            attempt,
            conclusive_at: Some(at),
        }) if ctx.now < at => {
            op.record(
                Some(i),
                format!(
                    "the CA reports the order {shown}, but attempt {attempt} may still be in progress at the CA (its call timeout has not passed): reading again at {} before anything is sent",
                    crate::order::instant::format(&at)
                ),
                ctx.now,
            );
            t.schedule = Schedule::At(at);
        }
        Some(Reconcile::AnswerLost { .. }) if seen == Progress::Moved => {
            replan(op, i, state, ctx, t)
        }
        // Conclusive now: the CA did not act on the attempt (or a read cannot tell).
        Some(Reconcile::AnswerLost { attempt, .. }) => {
            op.steps[i].reconcile = None;
            op.steps[i].uncertain = true;
            op.verified = true;
            let why = if seen == Progress::NotDone {
                format!("the answer to attempt {attempt} was lost and the CA still reports the order {shown} after the attempt's timeout: sending again")
            } else {
                format!("the answer to attempt {attempt} was lost and a read cannot show whether the CA acted: sending again (a repeat is answered \"already done\", or refused and settled by a read, if the first arrived)")
            };
            op.record(Some(i), why, ctx.now);
            t.schedule = Schedule::Now;
        }
        Some(Reconcile::RepeatRefused { answer }) => {
            if seen == Progress::Done {
                complete(
                    op,
                    i,
                    format!(
                        "confirmed by reading the CA: it refused the repeat of {} ({}) and reports the order {shown}",
                        Action::as_str(action),
                        answer.message
                    ),
                    ctx,
                    t,
                );
            } else {
                let detail = format!(
                    "the CA refused {}: {} (and reports the order {shown})",
                    Action::as_str(action),
                    answer.message
                );
                fail(op, i, FailureKind::CaRefused, answer, detail, ctx, t);
            }
        }
        Some(Reconcile::CaSaysDone { answer }) => match seen {
            Progress::Done => complete(
                op,
                i,
                format!(
                    "the CA answered that it was already done ({}) and reports the order {shown}",
                    answer.message
                ),
                ctx,
                t,
            ),
            Progress::Unknown => complete(
                op,
                i,
                format!(
                    "the CA answered that it was already done ({}); a read cannot show it, so the CA's answer is taken",
                    answer.message
                ),
                ctx,
                t,
            ),
            Progress::NotDone | Progress::Moved => {
                let detail = format!(
                    "the CA refused {}: {} (yet it reports the order {shown})",
                    Action::as_str(action),
                    answer.message
                );
                fail(op, i, FailureKind::CaRefused, answer, detail, ctx, t);
            }
        },
        None => verify(op, i, &observation, seen, ctx, t),
    }
}

/// The first read before acting: is the CA's order the one the reseller described (its
/// common name, its ids, where the read shows them), and does the CA agree with its state? A
/// mismatch stops here, saying nothing of what the CA shows: the order may be someone else's.
fn verify(
    op: &mut Operation,
    i: usize,
    observation: &Observation,
    seen: Progress,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let differ = observation.mismatches(&op.order);
    if !differ.is_empty() {
        let names: Vec<&str> = differ.iter().map(|f| f.name()).collect();
        let m = format!(
            "the order at the CA is not the order sent: the CA's read does not match its {}; nothing was sent",
            names.join(" and ")
        );
        fail(
            op,
            i,
            FailureKind::CaMismatch,
            CaMessage::text(m.clone()),
            m,
            ctx,
            t,
        );
        t.disowned = true;
        return;
    }
    let compared = observation.compared(&op.order);
    if !compared.is_empty() {
        let names: Vec<&str> = compared.iter().map(|f| f.name()).collect();
        op.record(
            None,
            format!(
                "the CA's order matches the order sent ({})",
                names.join(", ")
            ),
            ctx.now,
        );
    }
    if OrderField::CommonName.of(&op.order).is_none() {
        op.record(
            None,
            "the order was sent without a common name: the CA's order was not compared by it",
            ctx.now,
        );
    }
    let state = observation.state;
    t.schedule = Schedule::Now;
    match state {
        None => op.verified = true,
        Some(s) if s == op.order.state => {
            op.verified = true;
            op.record(None, format!("the CA confirms the order is {s:?}"), ctx.now);
        }
        Some(s) if seen == Progress::Done && op.steps[i].attempts > 0 => complete(
            op,
            i,
            format!("confirmed by reading the CA: the order is {s:?} after an earlier attempt"),
            ctx,
            t,
        ),
        Some(_) => replan(op, i, state, ctx, t),
    }
}

/// The CA reports the order in another state than planned for: plan again from the CA's
/// state and record both, or stop without sending anything.
fn replan(
    op: &mut Operation,
    i: usize,
    state: Option<OrderState>,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let observed = state.unwrap_or(op.order.state);
    let reported = op.order.state;
    let not_sent = |op: &mut Operation, t: &mut Transition, m: String| {
        fail(
            op,
            i,
            FailureKind::NotSent,
            CaMessage::text(m.clone()),
            m,
            ctx,
            t,
        );
    };
    let Some(planner) = ctx.planner else {
        let m = format!("provider `{}` is no longer configured", op.provider);
        not_sent(op, t, m);
        return;
    };
    if op.steps.iter().any(|s| s.status == Status::Completed) {
        let m = format!(
            "the CA reports the order {observed:?}, which {} cannot act on after the steps already done; nothing was sent",
            Action::as_str(op.steps[i].action)
        );
        not_sent(op, t, m);
        return;
    }
    let mut order = op.order.clone();
    order.state = observed;
    let mut detail = format!("the reseller reported {reported:?}, the CA reports {observed:?}: planned again from the CA's state");
    // Facts the new state needs and the reseller could not give: the conservative guess
    // (issued at purchase, revoked now), so no window looks longer than it is.
    if matches!(observed, OrderState::Issued | OrderState::Revoked) && order.issued_at.is_none() {
        order.issued_at = Some(order.purchased_at);
        detail.push_str(" (issue date unknown: taken as the purchase date)");
    }
    if observed == OrderState::Revoked && order.revoked_at.is_none() {
        order.revoked_at = Some(ctx.now);
    }
    match planner.plan(&order, op.intent, ctx.now) {
        Ok(quote) if quote.decision.allowed => {
            let new: Vec<_> = quote
                .decision
                .steps
                .iter()
                .map(|s| (s.action, s.procedure))
                .collect();
            let old: Vec<_> = op.steps.iter().map(|s| (s.action, s.procedure)).collect();
            op.record(None, detail, ctx.now);
            if op
                .refund
                .as_ref()
                .is_none_or(|r| r.status == crate::ledger::RefundStatus::Pending)
            {
                op.refund = RefundRecord::promised(&quote.decision.refund);
            }
            if new != old {
                op.steps = StepState::queued(&quote);
            } else {
                op.steps[i].reconcile = None;
            }
            op.quote = quote;
            op.order = order;
            op.verified = true;
            t.schedule = Schedule::Now;
        }
        Ok(quote) => {
            let alt = quote
                .decision
                .alternative
                .map_or("none".to_owned(), |a| a.to_string());
            let why = quote
                .decision
                .rules
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            op.quote = quote;
            op.order = order;
            let detail = format!(
                "{detail}; the {} is refused ({why}), alternative: {alt}; nothing was sent",
                op.intent
            );
            op.steps[i].reconcile = None;
            op.finish(Status::Rejected, detail.clone(), ctx.now);
            t.audit.push(AuditNote {
                action: "operation.verify".into(),
                target: op.id.clone(),
                outcome: Status::Rejected.as_str().into(),
                detail,
            });
            t.schedule = Schedule::Never;
        }
        Err(e) => not_sent(op, t, format!("{detail}; no plan: {e}")),
    }
}

/// An applicant who has not confirmed a revocation while `submit_by` nears: a person should
/// chase it (once per step).
fn attention(op: &mut Operation, i: usize, ctx: &Context<'_>, t: &mut Transition) {
    let (Some(submit_by), Some(planner)) = (op.quote.decision.submit_by, ctx.planner) else {
        return;
    };
    if op.steps[i].attention {
        return;
    }
    let notice = planner
        .calendar()
        .step_back(submit_by, ctx.policy.attention_business_days);
    if ctx.now < notice {
        return;
    }
    op.steps[i].attention = true;
    let reason = format!(
        "the applicant has not confirmed the {} and submit_by {} is near: someone should chase the confirmation e-mail",
        Action::as_str(op.steps[i].action),
        crate::order::instant::format(&submit_by)
    );
    op.record(Some(i), reason.clone(), ctx.now);
    t.emit.push(Emit::AttentionNeeded { step: i, reason });
}

fn call_failed(
    op: &mut Operation,
    i: usize,
    call: Call,
    failure: CallFailure,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let action = op.steps[i].action;
    let what = match call {
        Call::Send => Action::as_str(action).to_owned(),
        Call::Read => "the read of the order".to_owned(),
    };
    let waiting = matches!(
        op.steps[i].status,
        Status::AwaitingConfirmation | Status::AwaitingCa
    );
    op.steps[i].throttled = false;
    match failure {
        CallFailure::NotSent(message) => {
            op.steps[i].reconcile = None;
            let message = format!("not sent: {message}");
            let detail = format!("{what}: {message}");
            fail(
                op,
                i,
                FailureKind::NotSent,
                CaMessage::text(message),
                detail,
                ctx,
                t,
            );
        }
        // A repeat after a lost answer: the refusal may be the CA's answer to what it already
        // did. Whatever its code, a read settles it.
        CallFailure::Refused(answer) if call == Call::Send && op.steps[i].uncertain => {
            op.record(
                Some(i),
                format!(
                    "the CA refused the repeat of {what} ({}): an earlier attempt's answer was lost, so the order is read to settle it",
                    answer.message
                ),
                ctx.now,
            );
            op.steps[i].reconcile = Some(Reconcile::RepeatRefused { answer });
            t.schedule = Schedule::Now;
        }
        CallFailure::Refused(answer) => {
            if call == Call::Send {
                // The CA answered: it did not act.
                op.steps[i].reconcile = None;
            }
            let detail = format!("the CA refused {what}: {}", answer.message);
            fail(op, i, FailureKind::CaRefused, answer, detail, ctx, t);
        }
        CallFailure::AlreadyDone(answer) => {
            op.record(
                Some(i),
                format!(
                    "the CA answered that {what} was already done ({}): reading the order to confirm",
                    answer.message
                ),
                ctx.now,
            );
            op.steps[i].reconcile = Some(Reconcile::CaSaysDone { answer });
            t.schedule = Schedule::Now;
        }
        CallFailure::NeedsPerson(answer) => {
            let step = &mut op.steps[i];
            step.reconcile = None;
            step.procedure = Procedure::ManualTicket;
            if step.ticket_fields.is_empty() {
                step.ticket_fields = DEFAULT_TICKET_FIELDS.to_vec();
            }
            step.last_error = Some(answer.message.clone());
            move_step(
                op,
                i,
                Status::Queued,
                format!(
                    "the CA's API cannot {what} for this order ({}): a manual ticket takes over",
                    answer.message
                ),
                ctx,
                t,
            );
            t.schedule = Schedule::Now;
        }
        CallFailure::Unreachable(message)
        | CallFailure::NoAnswer {
            message,
            retry_after: _,
        } if waiting => {
            // A step the CA is processing is checked again later; a failed check is no try.
            op.steps[i].last_error = Some(message);
            t.schedule = Schedule::At(after(ctx.now, ctx.policy.recheck));
        }
        CallFailure::Unreachable(message) => try_failed(
            op,
            i,
            call,
            what,
            message,
            None,
            FailureKind::CaUnreachable,
            ctx,
            t,
        ),
        CallFailure::NoAnswer {
            message,
            retry_after,
        } => try_failed(
            op,
            i,
            call,
            what,
            message,
            retry_after,
            FailureKind::GaveUp,
            ctx,
            t,
        ),
        CallFailure::Throttled {
            answer,
            retry_after,
        } => {
            // Throttles normally come as Event::Throttled, with the account's pace; without it
            // the CA's Retry-After (or the first backoff) decides.
            let wait = retry_after.unwrap_or(ctx.policy.backoff_base);
            throttled(op, i, call, answer, after(ctx.now, wait), ctx, t);
        }
    }
}

/// A try that failed without an answer (`kind`: the CA unreachable, or the answer lost): tried
/// again after a backoff, or given up after `max_tries`.
#[allow(clippy::too_many_arguments)]
fn try_failed(
    op: &mut Operation,
    i: usize,
    call: Call,
    what: String,
    message: String,
    retry_after: Option<Duration>,
    kind: FailureKind,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    if call == Call::Send && kind == FailureKind::CaUnreachable {
        // The request never arrived: nothing to reconcile.
        op.steps[i].reconcile = None;
    }
    let step = &mut op.steps[i];
    step.tries += 1;
    let tries = step.tries;
    step.last_error = Some(message.clone());
    if tries >= ctx.policy.max_tries {
        let unknown = match &step.reconcile {
                Some(Reconcile::AnswerLost { attempt, .. }) => format!(
                    "; whether the CA acted on attempt {attempt} is unknown: a retry reads the order first"
                ),
                _ => String::new(),
            };
        let message = format!("gave up after {tries} tries: {message}{unknown}");
        let detail = format!("{what}: {message}");
        fail(op, i, kind, CaMessage::text(message), detail, ctx, t);
        return;
    }
    let wait = backoff(&ctx.policy, tries, retry_after, ctx.jitter);
    let lost =
        matches!(call, Call::Send) && matches!(step.reconcile, Some(Reconcile::AnswerLost { .. }));
    let reason = format!(
        "{what} failed (try {tries} of {}), retrying in {:.1}s{}: {message}",
        ctx.policy.max_tries,
        wait.as_secs_f64(),
        if lost {
            ", reading the order first"
        } else {
            ""
        }
    );
    op.record(Some(i), reason.clone(), ctx.now);
    t.retry = Some(RetryNote {
        tries,
        wait,
        reason,
    });
    t.schedule = Schedule::At(after(ctx.now, wait));
}

#[allow(clippy::too_many_arguments)]
fn throttled(
    op: &mut Operation,
    i: usize,
    call: Call,
    answer: CaMessage,
    until: DateTime<Utc>,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let step = &mut op.steps[i];
    if call == Call::Send && matches!(step.reconcile, Some(Reconcile::AnswerLost { .. })) {
        // A throttled request was not acted on.
        step.reconcile = None;
    }
    step.last_error = Some(answer.message.clone());
    if !step.throttled {
        step.throttled = true;
        op.record(
            Some(i),
            format!(
                "the CA is throttling ({}): the call waits for the account's pace, without counting as a try",
                answer.message
            ),
            ctx.now,
        );
    }
    t.schedule = Schedule::At(until.max(ctx.now));
}

fn ticket_opened(
    op: &mut Operation,
    i: usize,
    id: String,
    reseller_username: &str,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
    let ticket = Ticket::open(id.clone(), op, i, reseller_username, ctx.now);
    op.steps[i].ticket_id = Some(id.clone());
    move_step(
        op,
        i,
        Status::ManualTicketOpen,
        format!("manual ticket {id} opened"),
        ctx,
        t,
    );
    t.audit = vec![AuditNote {
        action: "ticket.open".into(),
        target: id.clone(),
        outcome: "open".into(),
        detail: format!("{} for {}", Action::as_str(ticket.action), op.id),
    }];
    t.ticket = Some(TicketChange::Open(Box::new(ticket)));
    t.emit.push(Emit::TicketOpened { ticket_id: id });
    t.schedule = Schedule::Never;
}

fn ticket_resolved(
    op: &mut Operation,
    ticket_id: &str,
    i: usize,
    outcome: TicketOutcome,
    note: Option<String>,
    ctx: &Context<'_>,
    t: &mut Transition,
) -> Result<(), Refused> {
    let waits = op.steps.get(i).is_some_and(|s| {
        s.status == Status::ManualTicketOpen && s.ticket_id.as_deref() == Some(ticket_id)
    });
    if !waits || op.status.is_terminal() {
        return Err(Refused(format!(
            "the operation is {}: its step no longer waits for this ticket",
            op.status
        )));
    }
    let (step_status, ticket_status) = match outcome {
        TicketOutcome::Done => (Status::Completed, TicketStatus::Done),
        TicketOutcome::Rejected => (Status::Rejected, TicketStatus::Rejected),
    };
    let text = note.clone().unwrap_or_default();
    let detail = format!(
        "ticket {ticket_id} resolved: {}{}",
        ticket_status.as_str(),
        if text.is_empty() {
            String::new()
        } else {
            format!(" ({text})")
        }
    );
    move_step(op, i, step_status, detail, ctx, t);
    t.audit = vec![AuditNote {
        action: "ticket.resolve".into(),
        target: ticket_id.into(),
        outcome: ticket_status.as_str().into(),
        detail: text,
    }];
    t.ticket = Some(TicketChange::Close {
        id: ticket_id.into(),
        status: ticket_status,
        note,
    });
    t.emit.push(Emit::TicketResolved {
        ticket_id: ticket_id.into(),
    });
    go_on(op, t);
    Ok(())
}

fn withdraw(op: &mut Operation, ctx: &Context<'_>, t: &mut Transition) -> Result<(), Refused> {
    if !op.withdrawable() {
        return Err(Refused(format!(
            "the operation is {}: only a refund request still under review can be withdrawn",
            op.status
        )));
    }
    if let Some(id) = op
        .current_step()
        .and_then(|i| op.steps[i].ticket_id.clone())
    {
        t.ticket = Some(TicketChange::Close {
            id,
            status: TicketStatus::Withdrawn,
            note: None,
        });
    }
    op.finish(
        Status::Withdrawn,
        "the refund request was withdrawn by the reseller",
        ctx.now,
    );
    t.audit.push(AuditNote {
        action: "operation.withdraw".into(),
        target: op.id.clone(),
        outcome: Status::Withdrawn.as_str().into(),
        detail: String::new(),
    });
    t.schedule = Schedule::Never;
    Ok(())
}

/// Runs of one operation that may panic before it fails instead of being run again.
pub const MAX_PANICS: u32 = 3;

/// A run of `op` panicked: run again after a backoff (nothing it was doing is trusted: an
/// attempt it saved is read before anything is sent), or, at the [`MAX_PANICS`]th, failed as
/// `internal` with the panic's message.
fn panicked(op: &mut Operation, i: usize, message: String, ctx: &Context<'_>, t: &mut Transition) {
    op.panics += 1;
    let n = op.panics;
    if n >= MAX_PANICS {
        let detail = format!("certgate failed running this operation ({n} times): {message}");
        fail(
            op,
            i,
            FailureKind::Internal,
            CaMessage::text(detail.clone()),
            detail,
            ctx,
            t,
        );
        return;
    }
    let wait = backoff(&ctx.policy, n, None, ctx.jitter);
    op.record(
        Some(i),
        format!(
            "certgate failed running this operation ({n} of {MAX_PANICS}): {message}; run again in {:.1}s",
            wait.as_secs_f64()
        ),
        ctx.now,
    );
    t.schedule = Schedule::At(after(ctx.now, wait));
}

fn retry(op: &mut Operation, ctx: &Context<'_>, t: &mut Transition) -> Result<(), Refused> {
    if op.status != Status::Failed {
        return Err(Refused(format!(
            "the operation is {}: only a failed operation can be retried",
            op.status
        )));
    }
    let Some(i) = op.current_step() else {
        return Err(Refused("the operation has no step to retry".into()));
    };
    let step = &mut op.steps[i];
    step.error = None;
    step.tries = 0;
    step.throttled = false;
    op.verified = false;
    op.panics = 0;
    move_step(
        op,
        i,
        Status::Queued,
        "retry asked by the reseller: the order is read at the CA first",
        ctx,
        t,
    );
    t.audit.push(AuditNote {
        action: "operation.retry".into(),
        target: op.id.clone(),
        outcome: op.status.as_str().into(),
        detail: String::new(),
    });
    t.schedule = Schedule::Now;
    Ok(())
}

#[cfg(test)]
mod tests;
