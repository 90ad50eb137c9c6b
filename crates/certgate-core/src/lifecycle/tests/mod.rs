//! The lifecycle's cases, each an operation fed events as the executor or the API would.

mod answers;
mod failures;
mod reads;
mod refunds;
mod tickets;

use super::*;
use crate::audit::AuditAction;
use crate::calendar::Calendar;
use crate::client::{CaMessage, CallFailure, Observation, OrderField, StepOutcome};
use crate::ledger::{Credit, RefundEvent, Report};
use crate::operation::{
    FailureKind, Operation, OperationRequest, Reconcile, Status, StepFailure, StepState,
};
use crate::order::{Order, OrderState};
use crate::quote::{Action, Intent, Procedure, Quote, DEFAULT_TICKET_FIELDS};
use crate::quote::{Decision, Refund, Step};
use crate::rule::RuleId;
use crate::testing::{at, order};
use crate::ticket::TicketStatus;
use crate::validation::InvalidInput;
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::json;
use std::time::Duration;

const NOW: &str = "2026-06-15T08:30:00Z";

/// After an attempt sent at NOW can still be in progress at the CA (30 s timeout and margin).
const LATER: &str = "2026-06-15T08:31:00Z";

const POLICY: RetryPolicy = RetryPolicy {
    max_tries: 3,
    backoff_base: Duration::from_millis(1_000),
    backoff_max: Duration::from_millis(8_000),
    recheck: Duration::from_secs(60),
    attention_business_days: 2,
};

/// A provider whose policy allows a cancel of an unissued order and a revoke of an issued one,
/// and refuses everything else.
struct Stub {
    calendar: Calendar,
}

impl Planner for Stub {
    fn plan(
        &self,
        order: &Order,
        intent: Intent,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, InvalidInput> {
        let decision = match (intent, order.state) {
            (Intent::Cancel, s) if s.is_unissued() => Decision::allow(
                RuleId::new("CANCEL"),
                vec![Step::automated(Action::Cancel)],
                Refund::full(order.paid),
            ),
            (Intent::Cancel, _) => Decision::refuse(
                order.paid.currency,
                RuleId::new("ISSUED"),
                Some(Intent::Revoke),
            ),
            _ => Decision::refuse(order.paid.currency, RuleId::new("NO"), None),
        };
        Ok(Quote {
            provider: "stub".into(),
            intent,
            as_of,
            decision,
            policy_version: "v".into(),
        })
    }

    fn calendar(&self) -> &Calendar {
        &self.calendar
    }
}

fn stub() -> Stub {
    Stub {
        calendar: Calendar::default(),
    }
}

fn ctx<'a>(now: &str, planner: &'a Stub) -> Context<'a> {
    Context {
        now: at(now),
        policy: POLICY,
        jitter: 1.0,
        planner: Some(planner),
    }
}

/// An operation of `intent` on `order_patch` with these steps.
fn op_with(intent: Intent, order_patch: serde_json::Value, steps: Vec<Step>) -> Operation {
    let o = order(order_patch);
    let quote = Quote {
        provider: "stub".into(),
        intent,
        as_of: at(NOW),
        decision: Decision::allow(RuleId::new("R"), steps, Refund::full(o.paid)),
        policy_version: "v".into(),
    };
    let req = OperationRequest {
        provider: "stub".into(),
        intent,
        order: o,
        as_of: None,
        reason: None,
        note: None,
    };
    create("op_1".into(), req, quote, at(NOW)).0
}

/// An operation of `intent` on the sample (issued) order, already verified at the CA.
fn verified(intent: Intent, steps: Vec<Step>) -> Operation {
    let mut op = op_with(intent, json!({}), steps);
    op.verified = true;
    op
}

/// A cancel of a pending order, already verified at the CA.
fn cancel() -> Operation {
    let mut op = op_with(
        Intent::Cancel,
        json!({"state": "pending", "issued_at": null}),
        vec![Step::automated(Action::Cancel)],
    );
    op.verified = true;
    op
}

fn run(op: &mut Operation, event: Event, p: &Stub) -> Transition {
    apply(op, event, &ctx(NOW, p)).expect("the event applies")
}

/// `run`, once an attempt sent at NOW can no longer be in progress at the CA.
fn run_later(op: &mut Operation, event: Event, p: &Stub) -> Transition {
    apply(op, event, &ctx(LATER, p)).expect("the event applies")
}

/// Sends the current step and feeds back `failure`.
fn send_failing(op: &mut Operation, failure: CallFailure, p: &Stub) -> Transition {
    run(op, Event::Sending, p);
    run(
        op,
        Event::CallFailed {
            call: Call::Send,
            failure,
        },
        p,
    )
}

fn lost(message: &str) -> Event {
    Event::CallFailed {
        call: Call::Send,
        failure: CallFailure::NoAnswer {
            message: message.into(),
            retry_after: None,
        },
    }
}

fn history(op: &Operation) -> String {
    op.history
        .iter()
        .map(|h| h.detail.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn progress_reads_each_action_against_the_cas_state() {
    use OrderState as S;
    let cases = [
        (Action::Cancel, Some(S::Canceled), Progress::Done),
        (Action::Cancel, Some(S::Pending), Progress::NotDone),
        (
            Action::Cancel,
            Some(S::EmailedToRecipient),
            Progress::NotDone,
        ),
        (Action::Cancel, Some(S::Issued), Progress::Moved),
        (Action::Revoke, Some(S::Revoked), Progress::Done),
        (Action::Revoke, Some(S::Canceled), Progress::Done),
        (Action::Revoke, Some(S::Issued), Progress::NotDone),
        (Action::Revoke, Some(S::Expired), Progress::Moved),
        (
            Action::RejectApproval,
            Some(S::AwaitingApproval),
            Progress::NotDone,
        ),
        (Action::RejectApproval, Some(S::Canceled), Progress::Done),
        (Action::RefundRequest, Some(S::Revoked), Progress::Unknown),
        (Action::Cancel, None, Progress::Unknown),
    ];
    for (action, state, want) in cases {
        assert_eq!(progress(action, state), want, "{action:?} {state:?}");
    }
}

#[test]
fn steps_are_queued_from_the_quote() {
    let op = cancel();
    assert_eq!(op.steps, StepState::queued(&op.quote));
}

#[test]
fn two_transitions_saved_as_one_keep_the_first_status_and_every_effect_in_order() {
    let mut first = Transition::idle(Status::Queued, Schedule::Now);
    first.emit.push(Emit::StatusChanged);
    first.audit.push(AuditNote {
        action: AuditAction::OperationRetry,
        target: "t".into(),
        outcome: "o".into(),
        detail: String::new(),
    });
    let mut later = Transition::idle(Status::Running, Schedule::Never);
    later.emit.push(Emit::TicketOpened {
        ticket_id: "tk".into(),
    });
    let both = first.then(later);
    assert_eq!(both.from, Status::Queued);
    assert_eq!(both.schedule, Schedule::Never);
    assert_eq!(
        both.emit,
        [
            Emit::StatusChanged,
            Emit::TicketOpened {
                ticket_id: "tk".into()
            }
        ]
    );
    assert_eq!(both.audit.len(), 1);
}

#[test]
fn a_created_operation_is_queued_told_audited_and_due_now() {
    let op = cancel();
    assert_eq!(op.status, Status::Queued);
    assert!(op.steps.iter().all(|s| s.status == Status::Queued));
    let (again, t) = create(
        "op_2".into(),
        OperationRequest {
            provider: "stub".into(),
            intent: Intent::Cancel,
            order: op.order.clone(),
            as_of: None,
            reason: None,
            note: None,
        },
        op.quote.clone(),
        at(NOW),
    );
    assert_eq!((again.id(), again.status()), ("op_2", Status::Queued));
    assert_eq!(t.schedule, Schedule::Now);
    assert_eq!(t.emit, vec![Emit::StatusChanged]);
    assert_eq!(t.audit.len(), 1);
    assert_eq!(t.audit[0].action, AuditAction::OperationCreate);
    assert_eq!(t.audit[0].detail, "stub cancel");
}
