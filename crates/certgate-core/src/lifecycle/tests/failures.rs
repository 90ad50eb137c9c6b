//! Tests of the failure policy: throttling, unreachable CAs, lost answers given up, refusals,
//! backoff, panicking runs.

use super::*;

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
