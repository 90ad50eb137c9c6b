//! The failure policy: a call that failed (unreachable, answer lost, refused), a try that
//! counts, throttling that never counts, a run that panicked, and the backoff between tries.

use super::interface::{Call, Context, RetryNote, RetryPolicy, Schedule, Transition};
use super::steps::{after, fail, move_step};
use crate::client::{CaMessage, CallFailure};
use crate::event::Backoff;
use crate::operation::{FailureKind, Operation, Reconcile, Status};
use crate::quote::{Action, Procedure, DEFAULT_TICKET_FIELDS};
use chrono::{DateTime, Utc};
use std::time::Duration;

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

pub(super) fn call_failed(
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
pub(super) fn try_failed(
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
pub(super) fn throttled(
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
/// Runs of one operation that may panic before it fails instead of being run again.
pub const MAX_PANICS: u32 = 3;

/// A run of `op` panicked: run again after a backoff (nothing it was doing is trusted: an
/// attempt it saved is read before anything is sent), or, at the [`MAX_PANICS`]th, failed as
/// `internal` with the panic's message.
pub(super) fn panicked(
    op: &mut Operation,
    i: usize,
    message: String,
    ctx: &Context<'_>,
    t: &mut Transition,
) {
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
