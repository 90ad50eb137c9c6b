//! A plan made again from the CA's state: the order moved on by other means (or the first read
//! showed it otherwise), so the policy is asked again and the steps left are replaced.

use super::interface::{AuditNote, Context, Schedule, Transition};
use super::steps::fail;
use crate::audit::AuditAction;
use crate::client::CaMessage;
use crate::ledger::RefundRecord;
use crate::operation::{FailureKind, Operation, Status, StepState};
use crate::order::OrderState;
use crate::quote::Action;

/// The CA reports the order in another state than planned for: plan again from the CA's
/// state and record both, or stop without sending anything.
pub(super) fn replan(
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
                action: AuditAction::OperationVerify,
                target: op.id.clone(),
                outcome: Status::Rejected.as_str().into(),
                detail,
            });
            t.schedule = Schedule::Never;
        }
        Err(e) => not_sent(op, t, format!("{detail}; no plan: {e}")),
    }
}
