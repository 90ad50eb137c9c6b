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
