//! Tests of the refund the operation follows: approved, credited, denied, overdue.

use super::*;

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
    assert_eq!(t.audit[0].action, AuditAction::RefundReport);
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
