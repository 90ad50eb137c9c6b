//! DigiCert's cancel, revoke and refund rules (POLICY.md `DC-*`) as one pure function,
//! [`DigicertPolicy::decide`]. DigiCert has no refund window: what can be done depends on the
//! order's state alone.

use certgate_core::config::{ConfigIssue, ProviderContext};
use certgate_core::order::{ChargedTo, Order, OrderState};
use certgate_core::policy::nothing_to_act_on;
use certgate_core::quote::{Action, Decision, Intent, Refund, Step, TicketField};
use certgate_core::rule::{common, RuleId, RuleInfo};
use certgate_core::{InvalidInput, PolicyInput, Provider};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const DC_CANCEL_PENDING: RuleId = RuleId::new("DC-CANCEL-PENDING");
pub const DC_ISSUED_REVOKE: RuleId = RuleId::new("DC-ISSUED-REVOKE");
pub const DC_APPROVAL: RuleId = RuleId::new("DC-APPROVAL");
pub const DC_REISSUE: RuleId = RuleId::new("DC-REISSUE");
pub const DC_REFUND_SUPPORT: RuleId = RuleId::new("DC-REFUND-SUPPORT");
pub const DC_ISSUED_REFUND: RuleId = RuleId::new("DC-ISSUED-REFUND");
pub const DC_AUDIT: RuleId = RuleId::new("DC-AUDIT");

pub const RULES: [RuleInfo; 7] = [
    RuleInfo::new(DC_CANCEL_PENDING, "Only pending orders can be cancelled (pending; for client certificates also emailed_to_recipient). Cancelling is irreversible."),
    RuleInfo::new(DC_ISSUED_REVOKE, "Once issued, an order cannot be cancelled: revoke it instead."),
    RuleInfo::new(DC_APPROVAL, "An order waiting for an approver is not placed yet: the approver rejects it, then it is cancelled."),
    RuleInfo::new(DC_REISSUE, "A client-certificate reissue can be cancelled only before the recipient generates it; once generated, revoke it."),
    RuleInfo::new(DC_REFUND_SUPPORT, "A cancelled order charged to the account balance is refunded only through DigiCert Support (a ticket); otherwise the refund follows the cancellation."),
    RuleInfo::new(DC_ISSUED_REFUND, "Refund of an issued order: revoke the whole order; DigiCert refunds if eligible (discretionary)."),
    RuleInfo::new(DC_AUDIT, "Every action is recorded in the audit log."),
];

/// What a DigiCert Support refund ticket carries: the order id and the amount.
pub const SUPPORT_TICKET: &[TicketField] = &[TicketField::SupplierOrderId, TicketField::Amount];

const NOTE_IRREVERSIBLE: &str =
    "Cancelling cannot be undone: DigiCert removes the order permanently.";
const NOTE_AUDIT: &str =
    "DigiCert records the action in CertCentral's audit log, and certgate in its own (DC-AUDIT).";
const NOTE_ASK_REFUND: &str = "The order was charged to the account balance: the money comes back only through DigiCert Support. Ask for intent refund to open that ticket (DC-REFUND-SUPPORT).";

/// DigiCert's settings. None yet: its rules have no numbers to tune. Unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigicertSettings {}

/// The factory of kind `digicert`.
pub fn build(
    ctx: &ProviderContext<'_>,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let _: DigicertSettings = ctx.settings(settings)?;
    Ok(Arc::new(DigicertPolicy))
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DigicertPolicy;

impl DigicertPolicy {
    /// The steps that stop an unissued order: the approver's rejection first if one is awaited.
    fn stop_steps(order: &Order) -> (RuleId, Vec<Step>) {
        if order.state == OrderState::AwaitingApproval {
            let steps = vec![
                Step::automated(Action::RejectApproval),
                Step::automated(Action::Cancel),
            ];
            (DC_APPROVAL, steps)
        } else {
            (DC_CANCEL_PENDING, vec![Step::automated(Action::Cancel)])
        }
    }

    /// A reissue is what is pending: the original certificate stays issued.
    fn pending_reissue(order: &Order) -> bool {
        order.reissue && !order.generated
    }

    fn is_issued(order: &Order) -> bool {
        order.state == OrderState::Issued || order.reissue
    }

    fn cancel(order: &Order) -> Decision {
        let currency = order.paid.currency;
        if order.reissue {
            return if order.generated {
                Decision::refuse(currency, DC_REISSUE, Some(Intent::Revoke))
            } else {
                Decision::allow(
                    DC_REISSUE,
                    vec![Step::automated(Action::Cancel)],
                    Refund::none(currency),
                )
                .note("Cancelling the reissue leaves the original certificate issued.")
            };
        }
        if order.state == OrderState::Issued {
            return Decision::refuse(currency, DC_ISSUED_REVOKE, Some(Intent::Revoke));
        }
        let (rule, steps) = Self::stop_steps(order);
        let d = match order.charged_to {
            ChargedTo::AccountBalance => {
                Decision::allow(rule, steps, Refund::none(currency)).note(NOTE_ASK_REFUND)
            }
            ChargedTo::Other => Decision::allow(rule, steps, Refund::full(order.paid)),
        };
        d.note(NOTE_IRREVERSIBLE)
    }

    fn revoke(order: &Order) -> Decision {
        if Self::is_issued(order) {
            let d = Decision::allow(DC_ISSUED_REVOKE, vec![Step::automated(Action::Revoke)], Refund::none(order.paid.currency))
                .rule_if(order.reissue, DC_REISSUE)
                .note("Revoking the certificate does not refund it: ask for intent refund to revoke the whole order (DC-ISSUED-REFUND).");
            return if Self::pending_reissue(order) {
                d.note("A reissue is pending; revoking the issued certificate leaves it to be cancelled separately.")
            } else {
                d
            };
        }
        Decision::refuse(order.paid.currency, DC_CANCEL_PENDING, Some(Intent::Cancel))
    }

    fn refund(order: &Order) -> Decision {
        let currency = order.paid.currency;
        let balance = order.charged_to == ChargedTo::AccountBalance;
        let support = || Step::manual(Action::RefundRequest, SUPPORT_TICKET);
        if order.state == OrderState::Canceled {
            return if balance {
                Decision::allow(DC_REFUND_SUPPORT, vec![support()], Refund::full(order.paid))
            } else {
                Decision::refuse(currency, common::ORDER_CANCELED, None)
                    .note("The refund followed the cancellation (DC-REFUND-SUPPORT).")
            };
        }
        let (rule, mut steps, refund) = if Self::is_issued(order) {
            (
                DC_ISSUED_REFUND,
                vec![Step::automated(Action::Revoke)],
                Refund::discretionary(order.paid),
            )
        } else {
            let (rule, steps) = Self::stop_steps(order);
            (rule, steps, Refund::full(order.paid))
        };
        if balance {
            steps.push(support());
        }
        let d = Decision::allow(rule.clone(), steps, refund)
            .rule_if(balance || rule != DC_ISSUED_REFUND, DC_REFUND_SUPPORT);
        if rule == DC_ISSUED_REFUND {
            d.note("DigiCert refunds a revoked order if it is eligible: the amount is the most that can come back.")
        } else {
            d.note(NOTE_IRREVERSIBLE)
        }
    }
}

impl Provider for DigicertPolicy {
    fn decide(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let order = input.order;
        let settled = match order.state {
            // A cancelled order charged to the account balance can still be refunded.
            OrderState::Canceled if input.intent == Intent::Refund => None,
            _ => nothing_to_act_on(order, input.as_of),
        };
        let d = match (settled, input.intent) {
            (Some(d), _) => return Ok(d),
            (None, Intent::Cancel) => Self::cancel(order),
            (None, Intent::Revoke) => Self::revoke(order),
            (None, Intent::Refund) => Self::refund(order),
        };
        Ok(if d.allowed { d.note(NOTE_AUDIT) } else { d })
    }

    fn rules(&self) -> Vec<RuleInfo> {
        RULES.into_iter().chain(common::RULES).collect()
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(DigicertSettings::default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::quote::RefundKind;
    use certgate_core::testing::{decide, order, pending, rules, steps, EXAMPLES_AS_OF};
    use serde_json::{json, Value};

    const NOW: &str = EXAMPLES_AS_OF;

    fn dc(patch: Value, intent: Intent) -> Decision {
        let mut v = pending("2026-06-10T00:00:00Z");
        v["voucher"] = json!(null);
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        decide(&DigicertPolicy, &order(v), intent, NOW)
    }

    fn client(state: &str) -> Value {
        json!({"product": {"validation": "ov", "kind": "client"}, "state": state, "approval_required": state == "awaiting_approval"})
    }

    #[test]
    fn example_8_client_awaiting_approval_is_rejected_then_cancelled() {
        let d = dc(client("awaiting_approval"), Intent::Cancel);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["reject_approval/automated", "cancel/automated"]);
        assert_eq!(rules(&d), ["DC-APPROVAL"]);
    }

    #[test]
    fn example_9_issued_cannot_be_cancelled() {
        let d = decide(&DigicertPolicy, &order(json!({})), Intent::Cancel, NOW);
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["DC-ISSUED-REVOKE"]);
        assert_eq!(d.alternative, Some(Intent::Revoke));
        assert!(d.steps.is_empty());
        assert_eq!(d.refund.kind, RefundKind::None);
    }

    #[test]
    fn example_10_refund_of_an_account_balance_order_goes_through_support() {
        let d = dc(json!({"charged_to": "account_balance"}), Intent::Refund);
        assert!(d.allowed);
        assert_eq!(
            steps(&d),
            ["cancel/automated", "refund_request/manual_ticket"]
        );
        assert_eq!(d.steps[1].ticket_fields, SUPPORT_TICKET);
        assert_eq!(rules(&d), ["DC-CANCEL-PENDING", "DC-REFUND-SUPPORT"]);
        assert_eq!(d.refund.kind, RefundKind::Full);
    }

    #[test]
    fn otherwise_the_refund_follows_the_cancellation() {
        let d = dc(json!({}), Intent::Refund);
        assert_eq!(steps(&d), ["cancel/automated"]);
        assert_eq!(d.refund.kind, RefundKind::Full);
        assert_eq!(d.refund.amount, order(json!({})).paid.amount);
        let d = dc(json!({}), Intent::Cancel);
        assert_eq!(
            (steps(&d), rules(&d)),
            (
                vec!["cancel/automated".to_owned()],
                vec!["DC-CANCEL-PENDING"]
            )
        );
        assert_eq!(d.refund.kind, RefundKind::Full);
        assert!(d.notes.iter().any(|n| n.contains("cannot be undone")));
        // Cancelling an account-balance order alone brings no money back.
        let d = dc(json!({"charged_to": "account_balance"}), Intent::Cancel);
        assert_eq!(d.refund.kind, RefundKind::None);
        assert!(d.notes.iter().any(|n| n.contains("DigiCert Support")));
    }

    #[test]
    fn client_certificates_e_mailed_to_the_recipient_are_still_pending() {
        let d = dc(client("emailed_to_recipient"), Intent::Cancel);
        assert!(d.allowed);
        assert_eq!(rules(&d), ["DC-CANCEL-PENDING"]);
        let d = dc(client("pending"), Intent::Cancel);
        assert!(d.allowed);
    }

    #[test]
    fn a_reissue_is_cancelled_only_before_it_is_generated() {
        let issued = json!({"product": {"validation": "ov", "kind": "client"}, "reissue": true, "generated": false});
        let d = decide(&DigicertPolicy, &order(issued.clone()), Intent::Cancel, NOW);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["cancel/automated"]);
        assert_eq!(rules(&d), ["DC-REISSUE"]);
        assert_eq!(d.refund.kind, RefundKind::None);
        assert!(d
            .notes
            .iter()
            .any(|n| n.contains("original certificate issued")));
        let mut generated = issued;
        generated["generated"] = json!(true);
        let d = decide(
            &DigicertPolicy,
            &order(generated.clone()),
            Intent::Cancel,
            NOW,
        );
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Revoke)));
        assert_eq!(rules(&d), ["DC-REISSUE"]);
        let d = decide(&DigicertPolicy, &order(generated), Intent::Revoke, NOW);
        assert!(d.allowed);
        assert_eq!(rules(&d), ["DC-ISSUED-REVOKE", "DC-REISSUE"]);
    }

    #[test]
    fn refund_of_an_issued_order_revokes_it_and_digicert_decides() {
        let d = decide(&DigicertPolicy, &order(json!({})), Intent::Refund, NOW);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["revoke/automated"]);
        assert_eq!(d.refund.kind, RefundKind::Discretionary);
        assert_eq!(rules(&d), ["DC-ISSUED-REFUND"]);
        let d = decide(
            &DigicertPolicy,
            &order(json!({"charged_to": "account_balance"})),
            Intent::Refund,
            NOW,
        );
        assert_eq!(
            steps(&d),
            ["revoke/automated", "refund_request/manual_ticket"]
        );
        assert_eq!(rules(&d), ["DC-ISSUED-REFUND", "DC-REFUND-SUPPORT"]);
    }

    #[test]
    fn a_cancelled_account_balance_order_still_gets_its_support_ticket() {
        let d = dc(
            json!({"state": "canceled", "charged_to": "account_balance"}),
            Intent::Refund,
        );
        assert!(d.allowed);
        assert_eq!(steps(&d), ["refund_request/manual_ticket"]);
        assert_eq!(rules(&d), ["DC-REFUND-SUPPORT"]);
        let d = dc(json!({"state": "canceled"}), Intent::Refund);
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["ORDER-CANCELED"]);
        let d = dc(
            json!({"state": "canceled", "charged_to": "account_balance"}),
            Intent::Cancel,
        );
        assert!(!d.allowed);
    }

    #[test]
    fn revoke_needs_an_issued_certificate() {
        let d = decide(&DigicertPolicy, &order(json!({})), Intent::Revoke, NOW);
        assert!(d.allowed);
        assert_eq!(rules(&d), ["DC-ISSUED-REVOKE"]);
        assert_eq!(d.refund.kind, RefundKind::None);
        let d = dc(json!({}), Intent::Revoke);
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Cancel)));
    }

    #[test]
    fn expired_and_revoked_orders_have_nothing_left() {
        let expired = order(
            json!({"expires_at": "2026-06-15T08:30:00Z", "issued_at": "2025-06-15T08:30:00Z", "purchased_at": "2025-06-15T08:30:00Z"}),
        );
        for intent in Intent::ALL {
            let d = decide(&DigicertPolicy, &expired, intent, NOW);
            assert_eq!(
                (d.allowed, rules(&d)),
                (false, vec!["ORDER-EXPIRED"]),
                "{intent}"
            );
        }
        let revoked = order(json!({"state": "revoked", "revoked_at": "2026-03-01T00:00:00Z"}));
        let d = decide(&DigicertPolicy, &revoked, Intent::Refund, NOW);
        assert_eq!(rules(&d), ["ORDER-REVOKED"]);
    }

    #[test]
    fn every_allowed_action_is_audited() {
        for intent in Intent::ALL {
            let d = dc(json!({}), intent);
            assert_eq!(
                d.allowed,
                d.notes.iter().any(|n| n.contains("DC-AUDIT")),
                "{intent}"
            );
        }
    }

    #[test]
    fn unknown_settings_are_refused() {
        use certgate_core::config::Mode;
        let ctx = ProviderContext {
            name: "digicert",
            mode: Mode::Manual,
            api: None,
        };
        let err = build(&ctx, json!({"refund_window_days": 30})).unwrap_err();
        assert_eq!(err[0].key, "providers.digicert.settings.refund_window_days");
    }
}
