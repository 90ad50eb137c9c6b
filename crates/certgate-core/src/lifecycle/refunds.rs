//! Following the money: a refund reported (credited, denied) and what the record does when
//! its step is done or given up.

use super::interface::{AuditNote, Context, Emit, Refused, Transition};
use crate::audit::AuditAction;
use crate::ledger::Report;
use crate::operation::{Operation, Status};
use crate::quote::Action;

/// Records what someone reports of the refund; refused when the operation promises no money
/// or the record is final.
pub(super) fn report_refund(
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
        action: AuditAction::RefundReport,
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
pub(super) fn follow_refund(op: &mut Operation, ctx: &Context<'_>, t: &mut Transition) {
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
