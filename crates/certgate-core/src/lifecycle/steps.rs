//! A step's moves: sent, completed, failed, and the operation going on to the next step or
//! finishing.

use super::interface::{AuditNote, Context, Schedule, Transition, SETTLE_MARGIN};
use crate::audit::AuditAction;
use crate::client::CaMessage;
use crate::operation::{FailureKind, Operation, Reconcile, Status, StepFailure};
use crate::order::OrderState;
use crate::quote::Action;
use chrono::Duration as Span;
use chrono::{DateTime, Utc};
use std::time::Duration;

pub(super) fn state_name(state: Option<OrderState>) -> String {
    state.map_or_else(
        || "in a state certgate cannot read".to_owned(),
        |s| format!("{s:?}"),
    )
}

pub(super) fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    // A wait past the calendar's end is the calendar's end, never a panic.
    Span::from_std(wait)
        .ok()
        .and_then(|w| now.checked_add_signed(w))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Moves step `i` to `status` and notes it for metrics and the audit log.
pub(super) fn move_step(
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
            action: AuditAction::Step(action),
            target: op.id.clone(),
            outcome: status.as_str().into(),
            detail,
        });
    }
}

/// After step `i` completed: the next step now, or nothing more.
pub(super) fn go_on(op: &Operation, t: &mut Transition) {
    t.schedule = if op.status.is_terminal() || op.current_step().is_none() {
        Schedule::Never
    } else {
        Schedule::Now
    };
}

pub(super) fn complete(
    op: &mut Operation,
    i: usize,
    detail: String,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
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
pub(super) fn fail(
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

pub(super) fn sending(op: &mut Operation, i: usize, ctx: &Context<'_>, t: &mut Transition) {
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
