//! Tests of the first read of the order: the reseller's facts confirmed, a mismatch failing
//! with nothing sent, common names compared as the CA writes them.

use super::*;

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
    assert_eq!(t.audit[0].action, AuditAction::OperationVerify);
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
