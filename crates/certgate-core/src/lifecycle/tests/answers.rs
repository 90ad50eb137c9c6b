//! Tests of sending and answers: a step sent and answered, lost answers confirmed by a read,
//! "already done" and refused repeats settled by a read, the first read of the order.

use super::*;

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

/// A cancel of a pending order that the CA has not been read for yet.
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
