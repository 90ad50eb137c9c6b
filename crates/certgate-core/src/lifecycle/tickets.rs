//! The person's side: a manual ticket opened and resolved, a withdrawal, a retry of a failed
//! operation.

use super::interface::{
    AuditNote, Context, Emit, Refused, Schedule, TicketChange, TicketOutcome, Transition,
};
use super::steps::{go_on, move_step};
use crate::audit::AuditAction;
use crate::operation::{Operation, Status};
use crate::quote::Action;
use crate::ticket::{Ticket, TicketStatus};

pub(super) fn ticket_opened(
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
        action: AuditAction::TicketOpen,
        target: id.clone(),
        outcome: "open".into(),
        detail: format!("{} for {}", Action::as_str(ticket.action), op.id),
    }];
    t.ticket = Some(TicketChange::Open(Box::new(ticket)));
    t.emit.push(Emit::TicketOpened { ticket_id: id });
    t.schedule = Schedule::Never;
}

pub(super) fn ticket_resolved(
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
        action: AuditAction::TicketResolve,
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

pub(super) fn withdraw(
    op: &mut Operation,
    ctx: &Context<'_>,
    t: &mut Transition,
) -> Result<(), Refused> {
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
        action: AuditAction::OperationWithdraw,
        target: op.id.clone(),
        outcome: Status::Withdrawn.as_str().into(),
        detail: String::new(),
    });
    t.schedule = Schedule::Never;
    Ok(())
}

pub(super) fn retry(
    op: &mut Operation,
    ctx: &Context<'_>,
    t: &mut Transition,
) -> Result<(), Refused> {
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
        action: AuditAction::OperationRetry,
        target: op.id.clone(),
        outcome: op.status.as_str().into(),
        detail: String::new(),
    });
    t.schedule = Schedule::Now;
    Ok(())
}
