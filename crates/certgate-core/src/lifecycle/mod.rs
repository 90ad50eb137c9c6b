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
//! ([`Reconcile::AnswerLost`](crate::operation::Reconcile::AnswerLost)); an answer that never comes (a timeout, a reset, a crash)
//! leaves it so, and nothing is sent again until the order has been read at the CA. If the CA
//! shows the step's target state the step is completed ("confirmed by reading the CA"); only if
//! it still shows the state before the step is the action sent again. A CA's "already done"
//! answer is likewise confirmed by a read. Throttling never counts as a try.
//!
//! The files name its jobs: `interface.rs` (what goes in and out), this file (dispatch: what to
//! do next, and which job an event goes to), `steps.rs` (a step sent, completed, failed),
//! `answers.rs` (the CA's answers and reads of the order), `replan.rs` (a plan made again from
//! the CA's state), `failures.rs` (the failure policy),
//! `refunds.rs` (following the money), `tickets.rs` (tickets, withdrawal, retry); the cases in
//! `tests/`, a file per job.

use crate::audit::AuditAction;
use crate::ledger::Report;
use crate::operation::{Operation, OperationRequest, Status};
use crate::quote::{Procedure, Quote};
use chrono::{DateTime, Utc};

mod answers;
mod failures;
mod interface;
mod refunds;
mod replan;
mod steps;
mod tickets;

use answers::*;
pub use answers::{progress, Progress};
use failures::*;
pub use failures::{backoff, MAX_PANICS};
pub use interface::*;
use refunds::*;
use steps::*;
use tickets::*;

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

/// A new operation for an allowed `quote`: every step queued, its `queued` status told, its
/// creation audited, work due now. The one way an operation comes to be.
pub fn create(
    id: String,
    request: OperationRequest,
    quote: Quote,
    now: DateTime<Utc>,
) -> (Operation, Transition) {
    let op = Operation::new(id, request, quote, now);
    let mut t = Transition::idle(op.status, Schedule::Now);
    t.emit.push(Emit::StatusChanged);
    t.audit.push(AuditNote {
        action: AuditAction::OperationCreate,
        target: op.id.clone(),
        outcome: op.status.as_str().into(),
        detail: format!("{} {}", op.provider, op.intent),
    });
    (op, t)
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

#[cfg(test)]
mod tests;
