//! The lifecycle's cases, each an operation fed events as the executor or the API would.

use super::*;
use crate::operation::{OperationRequest, StepState};
use crate::quote::{Decision, Refund, Step};
use crate::rule::RuleId;
use crate::testing::{at, order};
use serde_json::json;

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
    Operation::new("op_1".into(), req, quote, at(NOW))
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
fn a_step_sent_and_answered_completes_the_operation() {
    let p = stub();
    let mut op = cancel();
    assert_eq!(next_work(&op), Work::Send { step: 0 });
    let t = run(&mut op, Event::Sending, &p);
    assert_eq!((t.schedule, op.status), (Schedule::Now, Status::Running));
    assert_eq!(op.steps[0].attempts, 1);
    assert_eq!(
        op.steps[0].reconcile,
        Some(Reconcile::AnswerLost {
            attempt: 1,
            conclusive_at: Some(at(NOW) + Span::seconds(32))
        }),
        "the attempt is unconfirmed until the answer is saved, and a read settles it only after its call timeout"
    );
    let t = run(
        &mut op,
        Event::Answered(StepOutcome::Completed {
            upstream_ref: Some("DC-1".into()),
        }),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert_eq!(t.schedule, Schedule::Never);
    assert_eq!(t.emit, [Emit::StatusChanged]);
    assert_eq!(t.step_status, Some((Action::Cancel, Status::Completed)));
    assert_eq!(op.steps[0].reconcile, None);
    assert_eq!(op.steps[0].upstream_ref.as_deref(), Some("DC-1"));
    assert_eq!(next_work(&op), Work::Idle);
}

#[test]
fn a_crash_after_sending_reads_the_order_before_anything_is_sent_again() {
    let p = stub();
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    // The process dies here: the saved operation is all a new worker has.
    let stored: Operation = serde_json::from_str(&serde_json::to_string(&op).unwrap()).unwrap();
    assert_eq!(next_work(&stored), Work::Read { step: 0 });
}

#[test]
fn a_lost_answer_is_confirmed_by_reading_the_ca_never_sent_again() {
    let p = stub();
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    let t = run(&mut op, lost("the CA did not answer in time"), &p);
    assert_eq!(op.steps[0].tries, 1);
    assert!(matches!(t.schedule, Schedule::At(_)));
    assert!(t
        .retry
        .as_ref()
        .unwrap()
        .reason
        .contains("reading the order first"));
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    let t = run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Canceled))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert_eq!(op.steps[0].attempts, 1);
    assert_eq!(t.schedule, Schedule::Never);
    assert!(
        history(&op).contains("confirmed by reading the CA: the answer to attempt 1 was lost"),
        "{}",
        history(&op)
    );
}

#[test]
fn a_lost_answer_before_the_ca_acted_is_sent_again() {
    let p = stub();
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    run(&mut op, lost("reset"), &p);
    run_later(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Pending))),
        &p,
    );
    assert_eq!(op.steps[0].reconcile, None);
    assert_eq!(next_work(&op), Work::Send { step: 0 });
    assert!(history(&op)
        .contains("still reports the order Pending after the attempt's timeout: sending again"));
}

#[test]
fn a_lost_answer_on_an_unreadable_order_is_sent_again_and_the_repeat_is_confirmed() {
    let p = stub();
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    run(&mut op, lost("reset"), &p);
    run_later(&mut op, Event::Observed(Observation::state(None)), &p);
    assert_eq!(next_work(&op), Work::Send { step: 0 });
}

#[test]
fn the_order_moved_on_while_the_answer_was_lost_plans_again() {
    let p = stub();
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    run(&mut op, lost("reset"), &p);
    let t = run_later(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Issued))),
        &p,
    );
    assert_eq!(op.status, Status::Rejected);
    assert_eq!(t.schedule, Schedule::Never);
    assert!(history(&op).contains("alternative: revoke; nothing was sent"));
    assert_eq!(op.order.state, OrderState::Issued);
}

#[test]
fn already_done_counts_only_when_a_read_confirms_it() {
    let p = stub();
    let answer = CaMessage::new(Some("invalid_order_status".into()), "already canceled");
    let mut op = cancel();
    let t = send_failing(&mut op, CallFailure::AlreadyDone(answer.clone()), &p);
    assert_eq!(t.schedule, Schedule::Now);
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Canceled))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert!(history(&op).contains("already done (already canceled)"));

    // The CA says done but still shows the order pending: a refusal, with the CA's code.
    let mut op = cancel();
    send_failing(&mut op, CallFailure::AlreadyDone(answer), &p);
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Pending))),
        &p,
    );
    assert_eq!(op.status, Status::Failed);
    let error = op.steps[0].error.clone().unwrap();
    assert_eq!(error.kind, FailureKind::CaRefused);
    assert_eq!(error.code.as_deref(), Some("invalid_order_status"));
}

#[test]
fn already_refunded_is_taken_at_the_cas_word_when_no_read_shows_refunds() {
    let p = stub();
    let mut op = verified(Intent::Refund, vec![Step::automated(Action::RefundRequest)]);
    send_failing(
        &mut op,
        CallFailure::AlreadyDone(CaMessage::new(
            Some("-18".into()),
            "This order has already been refunded",
        )),
        &p,
    );
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Issued))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert!(history(&op).contains("the CA's answer is taken"));
}

#[test]
fn throttling_is_never_a_try_and_is_recorded_once_per_spell() {
    let p = stub();
    let mut op = cancel();
    let until = at("2026-06-15T08:30:07Z");
    for _ in 0..20 {
        run(&mut op, Event::Sending, &p);
        let t = run(
            &mut op,
            Event::Throttled {
                call: Call::Send,
                answer: CaMessage::new(Some("request_limit_exceeded".into()), "slow down"),
                until,
            },
            &p,
        );
        assert_eq!(t.schedule, Schedule::At(until));
        assert_eq!(op.steps[0].reconcile, None, "a throttled call did nothing");
        assert_eq!(next_work(&op), Work::Send { step: 0 });
    }
    assert_eq!(op.steps[0].tries, 0);
    assert_eq!(op.status, Status::Running);
    run(&mut op, Event::Sending, &p);
    let throttle_lines = op
        .history
        .iter()
        .filter(|h| h.detail.contains("throttling"))
        .count();
    assert_eq!(throttle_lines, 1);
    run(
        &mut op,
        Event::Answered(StepOutcome::Completed { upstream_ref: None }),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert_eq!(op.steps[0].attempts, 21);
}

#[test]
fn unreachable_cas_give_up_after_the_tries_and_say_so() {
    let p = stub();
    let mut op = cancel();
    let mut waits = Vec::new();
    for _ in 0..POLICY.max_tries {
        let t = send_failing(
            &mut op,
            CallFailure::Unreachable("connection refused".into()),
            &p,
        );
        assert_eq!(op.steps[0].reconcile, None, "nothing reached the CA");
        waits.push(t.schedule);
    }
    assert_eq!(
        &waits[..2],
        [
            Schedule::At(at("2026-06-15T08:30:01Z")),
            Schedule::At(at("2026-06-15T08:30:02Z"))
        ]
    );
    assert_eq!(waits[2], Schedule::Never);
    assert_eq!(op.status, Status::Failed);
    let error = op.steps[0].error.clone().unwrap();
    assert_eq!(error.kind, FailureKind::CaUnreachable);
    assert!(error.message.contains("gave up after 3 tries"));
}

#[test]
fn giving_up_on_lost_answers_keeps_the_doubt_and_a_retry_reads_first() {
    let p = stub();
    let mut op = cancel();
    for _ in 0..POLICY.max_tries {
        run(&mut op, Event::Sending, &p);
        run(&mut op, lost("the CA did not answer in time"), &p);
        if op.status != Status::Failed {
            run(
                &mut op,
                Event::Observed(Observation::state(Some(OrderState::Pending))),
                &p,
            );
        }
    }
    assert_eq!(op.status, Status::Failed);
    let error = op.steps[0].error.clone().unwrap();
    assert_eq!(error.kind, FailureKind::GaveUp);
    assert!(
        error
            .message
            .contains("whether the CA acted on attempt 3 is unknown"),
        "{}",
        error.message
    );
    assert_eq!(next_work(&op), Work::Idle);
    let t = run(&mut op, Event::Retry, &p);
    assert_eq!((op.status, t.schedule), (Status::Queued, Schedule::Now));
    assert_eq!(op.steps[0].error, None);
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Canceled))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert_eq!(op.steps[0].attempts, 3);
}

#[test]
fn nothing_sendable_fails_as_not_sent_and_a_retry_runs_it_from_the_cas_state() {
    let p = stub();
    let mut op = cancel();
    op.verified = false;
    run(
        &mut op,
        Event::CallFailed {
            call: Call::Read,
            failure: CallFailure::NotSent(
                "the credential ${DIGICERT_API_KEY} is not set in the environment".into(),
            ),
        },
        &p,
    );
    assert_eq!(op.status, Status::Failed);
    let error = op.steps[0].error.clone().unwrap();
    assert_eq!(error.kind, FailureKind::NotSent);
    assert!(error.message.starts_with("not sent: the credential"));
    assert_eq!(op.steps[0].attempts, 0);
    assert_eq!(
        apply(&mut cancel(), Event::Retry, &ctx(NOW, &p)),
        Err(Refused(
            "the operation is queued: only a failed operation can be retried".into()
        ))
    );
    run(&mut op, Event::Retry, &p);
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Pending))),
        &p,
    );
    assert_eq!(next_work(&op), Work::Send { step: 0 });
}

#[test]
fn a_refusal_fails_the_step_with_the_cas_code() {
    let p = stub();
    let mut op = cancel();
    send_failing(
        &mut op,
        CallFailure::Refused(CaMessage::new(
            Some("not_found|order".into()),
            "Order not found",
        )),
        &p,
    );
    let step = &op.steps[0];
    assert_eq!(op.status, Status::Failed);
    assert_eq!(step.reconcile, None);
    assert_eq!(step.last_error.as_deref(), Some("Order not found"));
    assert_eq!(
        step.error,
        Some(StepFailure {
            kind: FailureKind::CaRefused,
            code: Some("not_found|order".into()),
            message: "Order not found".into()
        })
    );
}

#[test]
fn a_step_the_api_cannot_do_becomes_a_manual_ticket() {
    let p = stub();
    let mut op = verified(
        Intent::Refund,
        vec![
            Step::automated(Action::RefundRequest),
            Step::automated(Action::Revoke),
        ],
    );
    send_failing(
        &mut op,
        CallFailure::NeedsPerson(CaMessage::new(
            Some("-4".into()),
            "Multi-domain certificates must be refunded through support",
        )),
        &p,
    );
    assert_eq!(op.steps[0].procedure, Procedure::ManualTicket);
    assert_eq!(op.steps[0].ticket_fields, DEFAULT_TICKET_FIELDS);
    assert_eq!(next_work(&op), Work::OpenTicket { step: 0 });
    let t = run(
        &mut op,
        Event::TicketOpened {
            id: "tk_1".into(),
            reseller_username: "acme".into(),
        },
        &p,
    );
    let Some(TicketChange::Open(ticket)) = t.ticket else {
        panic!("a ticket opens")
    };
    assert_eq!(
        ticket.fields[&crate::quote::TicketField::ResellerUsername].as_deref(),
        Some("acme")
    );
    assert_eq!(op.status, Status::ManualTicketOpen);
    assert_eq!(
        t.emit,
        [
            Emit::StatusChanged,
            Emit::TicketOpened {
                ticket_id: "tk_1".into()
            }
        ]
    );
    // The support desk did it; the revocation runs next.
    let t = run(
        &mut op,
        Event::TicketResolved {
            ticket_id: "tk_1".into(),
            step: 0,
            outcome: TicketOutcome::Done,
            note: Some("refunded by support".into()),
            credited: None,
        },
        &p,
    );
    assert_eq!(t.schedule, Schedule::Now);
    assert_eq!(next_work(&op), Work::Send { step: 1 });
    // A ticket that no longer waits is refused.
    assert!(apply(
        &mut op,
        Event::TicketResolved {
            ticket_id: "tk_1".into(),
            step: 0,
            outcome: TicketOutcome::Done,
            note: None,
            credited: None,
        },
        &ctx(NOW, &p)
    )
    .is_err());
}

#[test]
fn the_first_read_confirms_the_resellers_facts_or_plans_again() {
    let p = stub();
    let fresh = || {
        let mut op = cancel();
        op.verified = false;
        op
    };
    let mut op = fresh();
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Pending))),
        &p,
    );
    assert!(op.verified);
    assert!(history(&op).contains("the CA confirms the order is Pending"));
    assert_eq!(next_work(&op), Work::Send { step: 0 });

    let mut op = fresh();
    run(&mut op, Event::Observed(Observation::state(None)), &p);
    assert_eq!(next_work(&op), Work::Send { step: 0 });

    let mut op = fresh();
    let t = run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Issued))),
        &p,
    );
    assert_eq!(op.status, Status::Rejected);
    assert_eq!(t.audit[0].action, "operation.verify");
    assert!(history(&op).contains("the reseller reported Pending, the CA reports Issued"));

    // A provider that is gone cannot plan: nothing is sent.
    let mut op = fresh();
    let gone = Context {
        planner: None,
        ..ctx(NOW, &p)
    };
    apply(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Issued))),
        &gone,
    )
    .unwrap();
    assert_eq!(
        op.steps[0].error.clone().unwrap().kind,
        FailureKind::NotSent
    );
}

#[test]
fn a_waiting_step_is_checked_until_done_and_failed_checks_are_no_tries() {
    let p = stub();
    let mut op = verified(Intent::Revoke, vec![Step::automated(Action::Revoke)]);
    run(&mut op, Event::Sending, &p);
    run(
        &mut op,
        Event::Answered(StepOutcome::AwaitingCa {
            upstream_ref: Some("req-1".into()),
        }),
        &p,
    );
    assert_eq!(op.status, Status::AwaitingCa);
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    for _ in 0..10 {
        let t = run(
            &mut op,
            Event::CallFailed {
                call: Call::Read,
                failure: CallFailure::NoAnswer {
                    message: "503".into(),
                    retry_after: None,
                },
            },
            &p,
        );
        assert_eq!(t.schedule, Schedule::At(at("2026-06-15T08:31:00Z")));
    }
    assert_eq!((op.status, op.steps[0].tries), (Status::AwaitingCa, 0));
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Issued))),
        &p,
    );
    assert_eq!(op.status, Status::AwaitingCa);
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Revoked))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
}

#[test]
fn an_unconfirmed_revocation_raises_attention_once_when_submit_by_nears() {
    let p = stub();
    let mut op = op_with(
        Intent::Refund,
        json!({}),
        vec![Step::automated(Action::Revoke)],
    );
    // submit_by Monday 2026-06-22 08:30: two business days before is Thursday the 18th.
    op.quote.decision.submit_by = Some(at("2026-06-22T08:30:00Z"));
    op.verified = true;
    run(&mut op, Event::Sending, &p);
    run(
        &mut op,
        Event::Answered(StepOutcome::AwaitingConfirmation { upstream_ref: None }),
        &p,
    );
    let check = |op: &mut Operation, now: &str| {
        apply(
            op,
            Event::Observed(Observation::state(Some(OrderState::Issued))),
            &ctx(now, &p),
        )
        .unwrap()
    };
    assert!(check(&mut op, "2026-06-18T08:29:59Z").emit.is_empty());
    let t = check(&mut op, "2026-06-18T08:30:00Z");
    assert!(
        matches!(&t.emit[..], [Emit::AttentionNeeded { step: 0, reason }] if reason.contains("2026-06-22T08:30:00Z")),
        "{:?}",
        t.emit
    );
    assert!(check(&mut op, "2026-06-19T08:30:00Z").emit.is_empty());
    assert_eq!(op.status, Status::AwaitingConfirmation);
}

#[test]
fn a_refund_under_review_is_withdrawn_with_its_ticket() {
    let p = stub();
    let mut op = op_with(
        Intent::Refund,
        json!({}),
        vec![Step::manual(Action::RefundRequest, &[])],
    );
    assert!(apply(&mut op.clone(), Event::Withdraw, &ctx(NOW, &p)).is_err());
    run(
        &mut op,
        Event::TicketOpened {
            id: "tk_9".into(),
            reseller_username: "r".into(),
        },
        &p,
    );
    let t = run(&mut op, Event::Withdraw, &p);
    assert_eq!(op.status, Status::Withdrawn);
    assert_eq!(
        t.ticket,
        Some(TicketChange::Close {
            id: "tk_9".into(),
            status: TicketStatus::Withdrawn,
            note: None
        })
    );
    assert!(apply(&mut op, Event::Withdraw, &ctx(NOW, &p)).is_err());
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
fn backoff_grows_with_jitter_and_honours_retry_after() {
    for tries in 1..=6u32 {
        let ceiling = (1_000u64 << (tries - 1)).min(8_000);
        let low = backoff(&POLICY, tries, None, 0.0).as_millis() as u64;
        let high = backoff(&POLICY, tries, None, 1.0).as_millis() as u64;
        assert_eq!((low, high), (ceiling / 2, ceiling), "try {tries}");
    }
    assert_eq!(
        backoff(&POLICY, 1, Some(Duration::from_secs(30)), 0.5),
        Duration::from_secs(30)
    );
}

#[test]
fn steps_are_queued_from_the_quote() {
    let op = cancel();
    assert_eq!(op.steps, StepState::queued(&op.quote));
}

#[test]
fn a_throttle_reported_as_a_failure_waits_for_retry_after_and_is_no_try() {
    let p = stub();
    let mut op = cancel();
    let t = send_failing(
        &mut op,
        CallFailure::Throttled {
            answer: CaMessage::text("slow down"),
            retry_after: Some(Duration::from_secs(7)),
        },
        &p,
    );
    assert_eq!(t.schedule, Schedule::At(at("2026-06-15T08:30:07Z")));
    assert_eq!((op.steps[0].tries, op.steps[0].throttled), (0, true));
    assert_eq!(next_work(&op), Work::Send { step: 0 });
}

#[test]
fn two_transitions_saved_as_one_keep_the_first_status_and_every_effect_in_order() {
    let mut first = Transition::idle(Status::Queued, Schedule::Now);
    first.emit.push(Emit::StatusChanged);
    first.audit.push(AuditNote {
        action: "a".into(),
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

fn refund_status(op: &Operation) -> crate::ledger::RefundStatus {
    op.refund.as_ref().expect("a refund record").status
}

fn credit(amount: &str) -> Credit {
    Credit {
        money: crate::money::Money::new(amount.parse().unwrap(), "USD".parse().unwrap()),
        reference: Some("CR-9".into()),
        at: at(NOW),
    }
}

#[test]
fn the_refund_follows_the_operation_and_goes_overdue_once() {
    use crate::ledger::RefundStatus;
    let p = stub();
    let mut op = cancel();
    assert_eq!(refund_status(&op), RefundStatus::Pending);
    run(&mut op, Event::Sending, &p);
    assert_eq!(refund_status(&op), RefundStatus::Requested);
    let t = run(
        &mut op,
        Event::Answered(StepOutcome::Completed { upstream_ref: None }),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert_eq!(
        t.emit,
        [Emit::StatusChanged],
        "a cancel's success is no refund yet"
    );
    let record = op.refund.clone().unwrap();
    // Monday 15 June 08:30 + 10 business days (the quote names no ETA).
    assert_eq!(record.due_by, Some(at("2026-06-29T08:30:00Z")));
    let early = apply(
        &mut op,
        Event::CheckOverdue,
        &ctx("2026-06-29T08:29:59Z", &p),
    );
    assert!(early.is_err());
    let t = apply(
        &mut op,
        Event::CheckOverdue,
        &ctx("2026-06-29T08:30:00Z", &p),
    )
    .unwrap();
    assert_eq!(t.emit, [Emit::Refund(RefundEvent::Overdue)]);
    assert!(apply(
        &mut op,
        Event::CheckOverdue,
        &ctx("2026-07-01T00:00:00Z", &p)
    )
    .is_err());
    // Finance saw the money: credited, no longer overdue; then final.
    let t = run(
        &mut op,
        Event::RefundReported {
            report: Report::Credited(credit("120.00")),
            note: None,
        },
        &p,
    );
    assert_eq!(t.emit, [Emit::Refund(RefundEvent::Credited)]);
    let record = op.refund.clone().unwrap();
    assert!(!record.overdue && !record.mismatch);
    assert_eq!(t.audit[0].action, "refund.report");
    assert!(history(&op).contains("refund credited: 120.00 USD, reference CR-9"));
    let again = apply(
        &mut op,
        Event::RefundReported {
            report: Report::Denied,
            note: None,
        },
        &ctx(NOW, &p),
    );
    assert_eq!(again, Err(Refused("the refund is already credited".into())));
}

#[test]
fn a_refund_ticket_done_approves_or_credits_and_rejected_denies() {
    use crate::ledger::RefundStatus;
    let p = stub();
    let ticketed = || {
        let mut op = verified(
            Intent::Refund,
            vec![Step::manual(Action::RefundRequest, &[])],
        );
        run(
            &mut op,
            Event::TicketOpened {
                id: "tk_1".into(),
                reseller_username: "acme".into(),
            },
            &p,
        );
        op
    };
    let resolve = |outcome, credited| Event::TicketResolved {
        ticket_id: "tk_1".into(),
        step: 0,
        outcome,
        note: None,
        credited,
    };
    let mut op = ticketed();
    assert_eq!(refund_status(&op), RefundStatus::Requested);
    let t = run(&mut op, resolve(TicketOutcome::Done, None), &p);
    assert_eq!(refund_status(&op), RefundStatus::Approved);
    assert!(t.emit.contains(&Emit::Refund(RefundEvent::Approved)));

    let mut op = ticketed();
    let t = run(
        &mut op,
        resolve(TicketOutcome::Done, Some(credit("100.00"))),
        &p,
    );
    assert_eq!(refund_status(&op), RefundStatus::Credited);
    assert!(op.refund.as_ref().unwrap().mismatch, "120.00 was expected");
    assert_eq!(
        t.emit,
        [
            Emit::StatusChanged,
            Emit::Refund(RefundEvent::Credited),
            Emit::Refund(RefundEvent::Mismatch),
            Emit::TicketResolved {
                ticket_id: "tk_1".into()
            }
        ]
    );

    let mut op = ticketed();
    let t = run(&mut op, resolve(TicketOutcome::Rejected, None), &p);
    assert_eq!(refund_status(&op), RefundStatus::Denied);
    assert!(t.emit.contains(&Emit::Refund(RefundEvent::Denied)));

    let mut op = ticketed();
    run(&mut op, Event::Withdraw, &p);
    assert_eq!(refund_status(&op), RefundStatus::Denied);
    assert_eq!(
        op.refund.unwrap().note.as_deref(),
        Some("the refund request was withdrawn")
    );
}

#[test]
fn an_automated_refund_call_that_succeeds_is_approved() {
    let p = stub();
    let mut op = verified(Intent::Refund, vec![Step::automated(Action::RefundRequest)]);
    run(&mut op, Event::Sending, &p);
    let t = run(
        &mut op,
        Event::Answered(StepOutcome::Completed { upstream_ref: None }),
        &p,
    );
    assert_eq!(
        t.emit,
        [Emit::StatusChanged, Emit::Refund(RefundEvent::Approved)]
    );
}

#[test]
fn an_operation_without_money_takes_no_refund_report() {
    let p = stub();
    let mut op = cancel();
    op.quote.decision.refund = Refund::none(op.order.paid.currency);
    op.refund = None;
    let r = apply(
        &mut op,
        Event::RefundReported {
            report: Report::Approved,
            note: None,
        },
        &ctx(NOW, &p),
    );
    assert!(r.unwrap_err().0.contains("promises no money"));
}

/// A cancel of a pending order that the CA has not been read for yet.
fn unverified_cancel(order_patch: serde_json::Value) -> Operation {
    let mut patch = json!({"state": "pending", "issued_at": null, "certificate_id": "77"});
    for (k, v) in order_patch.as_object().unwrap() {
        patch[k] = v.clone();
    }
    op_with(Intent::Cancel, patch, vec![Step::automated(Action::Cancel)])
}

#[test]
fn an_order_the_ca_shows_otherwise_fails_as_a_mismatch_and_nothing_is_sent() {
    let p = stub();
    for shown in [
        Observation::state(Some(OrderState::Pending))
            .showing(OrderField::CommonName, Some("victim.example.org")),
        Observation::state(Some(OrderState::Issued))
            .showing(OrderField::CommonName, Some("shop.example.com"))
            .showing(OrderField::CertificateId, Some("78")),
    ] {
        let mut op = unverified_cancel(json!({}));
        assert_eq!(next_work(&op), Work::Read { step: 0 });
        let t = run(&mut op, Event::Observed(shown.clone()), &p);
        assert_eq!(op.status, Status::Failed, "{}", history(&op));
        let error = op.steps[0].error.as_ref().unwrap();
        assert_eq!(error.kind, FailureKind::CaMismatch);
        assert_eq!(next_work(&op), Work::Idle);
        assert_eq!(t.schedule, Schedule::Never);
        assert!(t.disowned, "the claim on someone else's order is let go of");
        assert_eq!(op.steps[0].attempts, 0);
        // Nothing the CA showed of someone else's order is told to the caller.
        let told = format!("{} {}", history(&op), error.message);
        for secret in ["victim", "78", "Issued", "Pending"] {
            assert!(!told.contains(secret), "{secret} in {told}");
        }
    }
}

#[test]
fn a_common_name_matches_without_regard_to_case_or_a_trailing_dot() {
    let p = stub();
    let mut op = unverified_cancel(json!({}));
    let shown = Observation::state(Some(OrderState::Pending))
        .showing(OrderField::CommonName, Some("SHOP.Example.com."))
        .showing(OrderField::CertificateId, Some("077"))
        .showing(OrderField::SupplierOrderId, None::<String>);
    run(&mut op, Event::Observed(shown), &p);
    assert_eq!(next_work(&op), Work::Send { step: 0 });
    assert!(
        history(&op)
            .contains("the CA's order matches the order sent (common_name, certificate_id)"),
        "{}",
        history(&op)
    );
}

#[test]
fn an_order_sent_without_a_common_name_is_not_compared_and_the_history_says_so() {
    let p = stub();
    let mut op = unverified_cancel(json!({"common_name": null}));
    let shown = Observation::state(Some(OrderState::Pending))
        .showing(OrderField::CommonName, Some("anything.example"));
    run(&mut op, Event::Observed(shown), &p);
    assert_eq!(next_work(&op), Work::Send { step: 0 });
    assert!(
        history(&op).contains("sent without a common name"),
        "{}",
        history(&op)
    );
}

#[test]
fn a_read_while_the_attempt_may_still_be_in_progress_settles_nothing_but_done() {
    let p = stub();
    // After a crash, the order is read at once: the CA still shows it pending, because it is
    // still applying the cancel. Nothing is sent; it is read again after the call's timeout.
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    let soon = apply(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Pending))),
        &ctx("2026-06-15T08:30:01Z", &p),
    )
    .unwrap();
    assert_eq!(soon.schedule, Schedule::At(at("2026-06-15T08:30:32Z")));
    assert!(matches!(
        op.steps[0].reconcile,
        Some(Reconcile::AnswerLost { attempt: 1, .. })
    ));
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    assert!(
        history(&op).contains("may still be in progress"),
        "{}",
        history(&op)
    );
    // The CA finished: the next read shows it done, and nothing was sent twice.
    run_later(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Canceled))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
    assert_eq!(op.steps[0].attempts, 1);
    // A read that shows it done settles it at once, in progress or not.
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    run(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Canceled))),
        &p,
    );
    assert_eq!(op.status, Status::Completed);
}

/// A cancel whose first answer was lost, read as not done after its timeout, sent again and
/// refused with `failure`, then read as `state`.
fn repeat_refused(failure: CallFailure, state: OrderState) -> Operation {
    let p = stub();
    let mut op = cancel();
    run(&mut op, Event::Sending, &p);
    run(&mut op, lost("reset"), &p);
    run_later(
        &mut op,
        Event::Observed(Observation::state(Some(OrderState::Pending))),
        &p,
    );
    assert!(op.steps[0].uncertain);
    run_later(&mut op, Event::Sending, &p);
    let t = run_later(
        &mut op,
        Event::CallFailed {
            call: Call::Send,
            failure,
        },
        &p,
    );
    assert_eq!(t.schedule, Schedule::Now, "read before anything is decided");
    assert_eq!(next_work(&op), Work::Read { step: 0 });
    run_later(
        &mut op,
        Event::Observed(Observation::state(Some(state))),
        &p,
    );
    op
}

#[test]
fn a_refused_repeat_of_any_code_is_settled_by_a_read() {
    // Alibaba answers a second revoke of a revoked order with a code no document calls
    // "already done"; DigiCert may answer 404; the read decides.
    for code in ["OrderStatusError", "not_found|order", "-4"] {
        let refusal = || CallFailure::Refused(CaMessage::new(Some(code.into()), "refused"));
        let done = repeat_refused(refusal(), OrderState::Canceled);
        assert_eq!(done.status, Status::Completed, "{code}: {}", history(&done));
        assert!(history(&done).contains("confirmed by reading the CA: it refused the repeat"));
        assert!(!done.steps[0].uncertain);
        let not_done = repeat_refused(refusal(), OrderState::Pending);
        assert_eq!(not_done.status, Status::Failed, "{code}");
        let error = not_done.steps[0].error.as_ref().unwrap();
        assert_eq!(
            (error.kind, error.code.as_deref()),
            (FailureKind::CaRefused, Some(code))
        );
    }
    // Without an earlier lost answer, a refusal is the step's failure at once.
    let p = stub();
    let mut op = cancel();
    send_failing(&mut op, CallFailure::refused("no"), &p);
    assert_eq!(op.status, Status::Failed);
}

#[test]
fn a_run_that_panics_is_tried_again_then_fails_as_internal() {
    let p = stub();
    let mut op = cancel();
    for n in 1..MAX_PANICS {
        let t = run(
            &mut op,
            Event::Panicked {
                message: "index out of bounds".into(),
            },
            &p,
        );
        assert!(matches!(t.schedule, Schedule::At(_)), "{n}");
        assert_eq!(op.status, Status::Queued);
    }
    let t = run(
        &mut op,
        Event::Panicked {
            message: "index out of bounds".into(),
        },
        &p,
    );
    assert_eq!((op.status, t.schedule), (Status::Failed, Schedule::Never));
    let error = op.steps[0].error.as_ref().unwrap();
    assert_eq!(error.kind, FailureKind::Internal);
    assert!(
        error.message.contains("index out of bounds"),
        "{}",
        error.message
    );
    // A retry starts the count again.
    run(&mut op, Event::Retry, &p);
    assert_eq!(op.panics, 0);
}
