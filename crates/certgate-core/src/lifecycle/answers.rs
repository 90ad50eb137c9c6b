//! What the CA said and what a read of the order shows: an answer taken, a read that
//! confirms, refutes or finds the order moved, a plan made again from the CA's state, and
//! attention raised before a deadline.

use super::interface::{Context, Emit, Schedule, Transition};
use super::replan::replan;
use super::steps::{after, complete, fail, move_step, state_name};
use crate::client::{CaMessage, Observation, OrderField, StepOutcome};
use crate::operation::{FailureKind, Operation, Reconcile, Status};
use crate::order::OrderState;
use crate::quote::Action;

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

pub(super) fn answered(
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

pub(super) fn observed(
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
pub(super) fn verify(
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

/// An applicant who has not confirmed a revocation while `submit_by` nears: a person should
/// chase it (once per step).
pub(super) fn attention(op: &mut Operation, i: usize, ctx: &Context<'_>, t: &mut Transition) {
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
