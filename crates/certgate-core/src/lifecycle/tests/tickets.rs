//! Tests of the person's side: manual tickets, withdrawal.

use super::*;

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
