//! Alibaba's refund, revoke and cancel rules (POLICY.md `ALI-*`) as settings plus one pure
//! function, [`AlibabaPolicy::decide`].
//!
//! Where is the refund window? [`AlibabaSettings::refund_window_days`] (28, seed 001/000; the
//! older seed 002 said 30). The CA's revocation time that sets `submit_by` is
//! [`AlibabaSettings::revocation_business_days`].

use certgate_core::calendar::{days_after, days_before};
use certgate_core::config::{ConfigIssue, ProviderContext};
use certgate_core::money::Amount;
use certgate_core::order::{Order, OrderState, Origin, Validation, ValidationStatus};
use certgate_core::policy::{alternative, issued_at, nothing_to_act_on};
use certgate_core::quote::{
    Action, Confirmation, Decision, Eta, Intent, Procedure, Refund, Review, Step, TicketField,
};
use certgate_core::rule::{common, RuleId, RuleInfo};
use certgate_core::{InvalidInput, PolicyInput, Provider};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const ALI_FREE: RuleId = RuleId::new("ALI-FREE");
pub const ALI_UPLOAD: RuleId = RuleId::new("ALI-UPLOAD");
pub const ALI_EXPIRED: RuleId = RuleId::new("ALI-EXPIRED");
pub const ALI_UNISSUED_5D: RuleId = RuleId::new("ALI-UNISSUED-5D");
pub const ALI_UNISSUED_REVIEW: RuleId = RuleId::new("ALI-UNISSUED-REVIEW");
pub const ALI_UNISSUED_LATE: RuleId = RuleId::new("ALI-UNISSUED-LATE");
pub const ALI_UNISSUED_VALIDATED: RuleId = RuleId::new("ALI-UNISSUED-VALIDATED");
pub const ALI_ISSUED_28D: RuleId = RuleId::new("ALI-ISSUED-28D");
pub const ALI_ISSUED_LATE: RuleId = RuleId::new("ALI-ISSUED-LATE");
pub const ALI_VOUCHER: RuleId = RuleId::new("ALI-VOUCHER");
pub const ALI_REVOKE_CONFIRM: RuleId = RuleId::new("ALI-REVOKE-CONFIRM");
pub const ALI_REVOKE_REASON: RuleId = RuleId::new("ALI-REVOKE-REASON");
pub const ALI_DELETE: RuleId = RuleId::new("ALI-DELETE");
pub const ALI_CANCEL_REFUND: RuleId = RuleId::new("ALI-CANCEL-REFUND");
/// Finer id of certgate's: the API's CancelOrderRequest stops orders pending validation only.
pub const ALI_CANCEL_PENDING: RuleId = RuleId::new("ALI-CANCEL-PENDING");
/// Finer id of certgate's: only issued certificates can be revoked (000).
pub const ALI_REVOKE_ISSUED: RuleId = RuleId::new("ALI-REVOKE-ISSUED");

const NOTE_NO_DOWNLOAD: &str =
    "After the revocation request the certificate can no longer be viewed or downloaded.";
const NOTE_DELETE: &str =
    "Once revoked, the certificate may be deleted from the console; an issued, unrevoked one may not (ALI-DELETE).";
const NOTE_PAYMENT: &str = "Refund money returns to the original payment method.";
const NOTE_WITHDRAW: &str =
    "A refund request still under review can be withdrawn (ALI-CANCEL-REFUND).";
const NOTE_KEEP_USING: &str = "If the refund fails, the certificate can still be used.";
const WARN_AT_RISK: &str = "Submitted this late, the CA may not finish processing before the deadline: the refund is at risk.";
const WARN_NOTHING_BACK: &str = "The voucher covered the whole price: no money comes back.";

/// Every rule this plugin cites.
pub const RULES: [RuleInfo; 16] = [
    RuleInfo::new(ALI_FREE, "Free DV certificates are never refundable, in any state."),
    RuleInfo::new(ALI_UPLOAD, "Third-party certificates uploaded to the console cannot be revoked or refunded."),
    RuleInfo::new(ALI_EXPIRED, "Expired certificates, issued or not, are not refundable."),
    RuleInfo::new(ALI_UNISSUED_5D, "Unissued, not validated, within 5 calendar days after purchase: full refund with no review."),
    RuleInfo::new(ALI_UNISSUED_REVIEW, "Unissued, not validated, later but at least 15 calendar days before expiry: full refund after manual review (5 business days on average, up to 15)."),
    RuleInfo::new(ALI_UNISSUED_LATE, "Unissued and fewer than 15 calendar days before expiry: no refund."),
    RuleInfo::new(ALI_UNISSUED_VALIDATED, "Unissued but already validated: no refund (the refund table has no such row)."),
    RuleInfo::new(ALI_ISSUED_28D, "Issued: full refund only if revoked and the revocation completes within 28 calendar days after issuance; submit 5 business days before."),
    RuleInfo::new(ALI_ISSUED_LATE, "Issued more than 28 calendar days ago and not expired: no refund; revocation alone is still allowed."),
    RuleInfo::new(ALI_VOUCHER, "Paid partly with a voucher: the refund is the amount actually paid."),
    RuleInfo::new(ALI_REVOKE_CONFIRM, "Revoking an OV or EV certificate needs the applicant's e-mail confirmation."),
    RuleInfo::new(ALI_REVOKE_REASON, "A revocation carries a reason (RFC 5280 reason names)."),
    RuleInfo::new(ALI_DELETE, "A revoked certificate may be deleted; an issued, unrevoked one may not."),
    RuleInfo::new(ALI_CANCEL_REFUND, "A refund request still under review can be withdrawn."),
    RuleInfo::new(ALI_CANCEL_PENDING, "Only an order pending validation or under review can be cancelled (CancelOrderRequest); cancelling returns no money."),
    RuleInfo::new(ALI_REVOKE_ISSUED, "Only issued certificates can be revoked; a pending order is cancelled instead."),
];

/// Alibaba's configurable numbers. Defaults follow the newest seeds (001, 000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlibabaSettings {
    /// ALI-ISSUED-28D: days after issuance within which the revocation must complete (002: 30).
    pub refund_window_days: u32,
    /// Business days the CA may take to complete a revocation (000: 5); sets `submit_by`.
    pub revocation_business_days: u32,
    /// ALI-UNISSUED-5D: calendar days after purchase with no review.
    pub no_review_days: u32,
    /// ALI-UNISSUED-REVIEW/LATE: calendar days before expiry after which no refund is possible.
    pub unissued_cutoff_days: u32,
    /// 001's note: a refund should be submitted this many business days before expiry.
    pub unissued_warning_business_days: u32,
    /// How long a refund review takes (001: 5 typical, up to 15; 002: 3 to 5).
    pub review_eta: Eta,
    /// Alibaba's API has no refund action, so someone submits it in the console.
    pub refund_procedure: Procedure,
}

impl Default for AlibabaSettings {
    fn default() -> Self {
        AlibabaSettings {
            refund_window_days: 28,
            revocation_business_days: 5,
            no_review_days: 5,
            unissued_cutoff_days: 15,
            unissued_warning_business_days: 15,
            review_eta: Eta::new(5, 15),
            refund_procedure: Procedure::ManualTicket,
        }
    }
}

/// The factory of kind `alibaba`.
pub fn build(
    ctx: &ProviderContext<'_>,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let settings: AlibabaSettings = ctx.settings(settings)?;
    let mut issues = Vec::new();
    if settings.refund_window_days == 0 {
        issues.push(ctx.issue("settings.refund_window_days", "must be at least 1"));
    }
    if settings.review_eta.typical_business_days > settings.review_eta.max_business_days {
        issues.push(ctx.issue(
            "settings.review_eta",
            "typical_business_days is more than max_business_days",
        ));
    }
    if issues.is_empty() {
        Ok(Arc::new(AlibabaPolicy { settings }))
    } else {
        Err(issues)
    }
}

/// A refund request's ticket carries what someone needs to find the order in the console.
const REFUND_TICKET: &[TicketField] = &[
    TicketField::SupplierOrderId,
    TicketField::CommonName,
    TicketField::Amount,
];

#[derive(Debug, Clone, Default)]
pub struct AlibabaPolicy {
    pub settings: AlibabaSettings,
}

impl AlibabaPolicy {
    fn revoke_step(order: &Order) -> Step {
        let confirm = matches!(order.product.validation, Validation::Ov | Validation::Ev);
        Step::automated(Action::Revoke).confirmed_by(confirm.then_some(Confirmation::Email))
    }

    fn refund_step(&self, review: Review) -> Step {
        Step::with_procedure(
            Action::RefundRequest,
            self.settings.refund_procedure,
            REFUND_TICKET,
        )
        .reviewed(review)
    }

    /// The refund of what was actually paid (ALI-VOUCHER): partial when a voucher was used.
    fn refund_of(order: &Order) -> (Refund, bool) {
        let voucher = order.voucher_amount();
        if voucher.is_zero() {
            (Refund::full(order.paid), false)
        } else {
            let paid = order.paid.amount.saturating_sub(voucher);
            (Refund::partial(paid, order.paid.currency), true)
        }
    }

    /// An allowed refund with its voucher rule, payment note and withdrawal note.
    fn refund(&self, order: &Order, rule: RuleId, steps: Vec<Step>) -> Decision {
        let (refund, voucher) = Self::refund_of(order);
        let d = Decision::allow(rule, steps, refund)
            .rule_if(voucher, ALI_VOUCHER)
            .note(NOTE_PAYMENT);
        if refund.amount == Amount::ZERO {
            d.warn(WARN_NOTHING_BACK)
        } else {
            d
        }
    }

    fn issued_deadline(&self, issued: DateTime<Utc>) -> DateTime<Utc> {
        days_after(issued, self.settings.refund_window_days)
    }

    fn cancel(&self, order: &Order, as_of: DateTime<Utc>) -> Decision {
        if let Some(d) = nothing_to_act_on(order, as_of) {
            return d;
        }
        if order.state.is_unissued() {
            Decision::allow(ALI_CANCEL_PENDING, vec![Step::automated(Action::Cancel)], Refund::none(order.paid.currency))
                .note("Cancelling stops the certificate application; no money comes back with it. Ask for a refund to get money back.")
        } else {
            Decision::refuse(
                order.paid.currency,
                ALI_CANCEL_PENDING,
                Some(Intent::Revoke),
            )
        }
    }

    fn revoke(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let PolicyInput { order, as_of, .. } = *input;
        if let Some(d) = nothing_to_act_on(order, as_of) {
            return Ok(d);
        }
        if order.state.is_unissued() {
            return Ok(Decision::refuse(
                order.paid.currency,
                ALI_REVOKE_ISSUED,
                Some(Intent::Cancel),
            ));
        }
        let step = Self::revoke_step(order);
        let confirm = step.confirmation.is_some();
        let deadline = self.issued_deadline(issued_at(order)?);
        let d = Decision::allow(
            ALI_REVOKE_REASON,
            vec![step],
            Refund::none(order.paid.currency),
        )
        .rule_if(confirm, ALI_REVOKE_CONFIRM)
        .note(NOTE_NO_DOWNLOAD)
        .note(NOTE_DELETE);
        Ok(if as_of <= deadline && !order.product.free {
            d.note(format!(
                "A refund is possible if the revocation completes by {}: ask for intent refund instead (ALI-ISSUED-28D).",
                certgate_core::order::instant::format(&deadline)
            ))
        } else {
            d
        })
    }

    fn refund_unissued(&self, input: &PolicyInput<'_>) -> Decision {
        let PolicyInput {
            order,
            as_of,
            calendar,
            ..
        } = *input;
        let s = &self.settings;
        let currency = order.paid.currency;
        let deadline = days_before(order.expires_at, s.unissued_cutoff_days);
        let submit_by = calendar
            .step_back(order.expires_at, s.unissued_warning_business_days)
            .min(deadline);
        if as_of > deadline {
            return Decision::refuse(currency, ALI_UNISSUED_LATE, Some(Intent::Cancel))
                .window(deadline, submit_by);
        }
        if order.validation_status == ValidationStatus::Validated {
            return Decision::refuse(currency, ALI_UNISSUED_VALIDATED, Some(Intent::Cancel));
        }
        let no_review_until = days_after(order.purchased_at, s.no_review_days);
        let d = if as_of <= no_review_until {
            self.refund(order, ALI_UNISSUED_5D, vec![self.refund_step(Review::None)])
                .eta(Some(Eta::new(0, 0)))
        } else {
            self.refund(
                order,
                ALI_UNISSUED_REVIEW,
                vec![self.refund_step(Review::Manual)],
            )
            .eta(Some(s.review_eta))
            .note(NOTE_WITHDRAW)
        };
        let d = d.window(deadline, submit_by).note(NOTE_KEEP_USING);
        if as_of > submit_by {
            d.warn(format!(
                "Fewer than {} business days remain before the order expires: the review may not finish in time and the refund may fail.",
                s.unissued_warning_business_days
            ))
        } else {
            d
        }
    }

    fn refund_issued(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let PolicyInput {
            order,
            as_of,
            calendar,
            ..
        } = *input;
        let currency = order.paid.currency;
        let deadline = self.issued_deadline(issued_at(order)?);
        if order.state == OrderState::Revoked {
            // Already revoked: only the refund request is left, claimed within the window too.
            let revoked_at = order.revoked_at.ok_or_else(|| {
                InvalidInput::one(
                    "order.revoked_at",
                    "is required for a refund of a revoked certificate",
                )
            })?;
            if revoked_at > deadline || as_of > deadline {
                return Ok(
                    Decision::refuse(currency, ALI_ISSUED_28D, None).window(deadline, deadline)
                );
            }
            return Ok(self
                .refund(
                    order,
                    ALI_ISSUED_28D,
                    vec![self.refund_step(Review::Manual)],
                )
                .window(deadline, deadline)
                .eta(Some(self.settings.review_eta))
                .note(NOTE_WITHDRAW));
        }
        if as_of > deadline {
            return Ok(
                Decision::refuse(currency, ALI_ISSUED_LATE, Some(Intent::Revoke))
                    .window(deadline, deadline),
            );
        }
        let submit_by = calendar.step_back(deadline, self.settings.revocation_business_days);
        let revoke = Self::revoke_step(order);
        let confirm = revoke.confirmation.is_some();
        let d = self
            .refund(
                order,
                ALI_ISSUED_28D,
                vec![revoke, self.refund_step(Review::Manual)],
            )
            .rule_if(confirm, ALI_REVOKE_CONFIRM)
            .window(deadline, submit_by)
            .eta(Some(self.settings.review_eta))
            .note(NOTE_NO_DOWNLOAD)
            .note(NOTE_WITHDRAW);
        Ok(if as_of > submit_by {
            d.warn(WARN_AT_RISK)
        } else {
            d
        })
    }

    fn refund_decision(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let PolicyInput { order, as_of, .. } = *input;
        let currency = order.paid.currency;
        let free = order.product.free;
        let expired = order.is_expired(as_of);
        if free || expired {
            let rule = if free { ALI_FREE } else { ALI_EXPIRED };
            return Ok(Decision::refuse(currency, rule, alternative(order, as_of))
                .rule_if(free && expired, ALI_EXPIRED));
        }
        match order.state {
            OrderState::Canceled => Ok(Decision::refuse(currency, common::ORDER_CANCELED, None)),
            s if s.is_unissued() => Ok(self.refund_unissued(input)),
            _ => self.refund_issued(input),
        }
    }
}

/// ALI-DELETE: whether the certificate may be deleted from the console.
pub fn deletable(order: &Order, as_of: DateTime<Utc>) -> bool {
    match order.state {
        OrderState::Revoked | OrderState::Canceled | OrderState::Expired => true,
        _ if order.origin == Origin::Uploaded || order.is_expired(as_of) => true,
        OrderState::Issued => false,
        _ => order.validation_status == ValidationStatus::Failed,
    }
}

impl Provider for AlibabaPolicy {
    fn decide(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let order = input.order;
        if order.origin == Origin::Uploaded {
            return Ok(Decision::refuse(order.paid.currency, ALI_UPLOAD, None)
                .note("Uploaded third-party certificates were not bought here: they cannot be revoked or refunded through Alibaba Cloud."));
        }
        match input.intent {
            Intent::Cancel => Ok(self.cancel(order, input.as_of)),
            Intent::Revoke => self.revoke(input),
            Intent::Refund => self.refund_decision(input),
        }
    }

    fn rules(&self) -> Vec<RuleInfo> {
        RULES.into_iter().chain(common::RULES).collect()
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(&self.settings).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::calendar::Calendar;
    use certgate_core::quote::RefundKind;
    use certgate_core::testing::{
        at, decide, decide_with, order, pending, rules, steps, EXAMPLES_AS_OF,
    };
    use serde_json::json;

    const NOW: &str = EXAMPLES_AS_OF;

    fn ali() -> AlibabaPolicy {
        AlibabaPolicy::default()
    }

    /// EXAMPLES.md #1: OV issued 2026-06-01T08:30Z, paid 200.00, voucher 50.00.
    fn example_1() -> Order {
        order(json!({
            "purchased_at": "2026-05-30T08:30:00Z",
            "issued_at": "2026-06-01T08:30:00Z",
            "expires_at": "2027-06-01T08:30:00Z",
            "paid": {"amount": "200.00", "currency": "USD"},
            "voucher": {"amount": "50.00", "currency": "USD"},
        }))
    }

    #[test]
    fn example_1_issued_ov_with_voucher() {
        let d = decide(&ali(), &example_1(), Intent::Refund, NOW);
        assert!(d.allowed);
        assert_eq!(
            steps(&d),
            ["revoke/automated", "refund_request/manual_ticket"]
        );
        assert_eq!(d.steps[0].confirmation, Some(Confirmation::Email));
        assert_eq!(d.steps[1].review, Some(Review::Manual));
        assert_eq!(d.refund.kind, RefundKind::Partial);
        assert_eq!(d.refund.amount.to_string(), "150.00");
        assert_eq!(d.deadline, Some(at("2026-06-29T08:30:00Z")));
        assert_eq!(d.submit_by, Some(at("2026-06-22T08:30:00Z")));
        assert_eq!(d.eta, Some(Eta::new(5, 15)));
        assert!(d.warnings.is_empty());
        assert_eq!(
            rules(&d),
            ["ALI-ISSUED-28D", "ALI-VOUCHER", "ALI-REVOKE-CONFIRM"]
        );
        assert!(d
            .notes
            .iter()
            .any(|n| n.contains("can no longer be viewed or downloaded")));
        assert_eq!(d.alternative, None);
    }

    #[test]
    fn example_2_a_holiday_moves_submit_by() {
        let cal = Calendar::new(["2026-06-25".parse().unwrap()]);
        let d = decide_with(&ali(), &example_1(), Intent::Refund, NOW, &cal);
        assert_eq!(d.submit_by, Some(at("2026-06-19T08:30:00Z")));
        assert_eq!(d.deadline, Some(at("2026-06-29T08:30:00Z")));
    }

    #[test]
    fn issued_window_boundaries() {
        let o = example_1();
        // Exactly at submit_by: safe, no warning.
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-22T08:30:00Z");
        assert!(d.allowed && d.warnings.is_empty());
        // One second later: allowed, but the refund is at risk.
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-22T08:30:01Z");
        assert!(d.allowed);
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        // The instant the window closes is still inside it.
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-29T08:30:00Z");
        assert!(d.allowed);
        // One second after, no refund: revoke is the alternative.
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-29T08:30:01Z");
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["ALI-ISSUED-LATE"]);
        assert_eq!(d.alternative, Some(Intent::Revoke));
        assert_eq!(d.refund.kind, RefundKind::None);
        assert!(d.steps.is_empty());
    }

    #[test]
    fn a_deadline_on_a_weekend_steps_back_from_it() {
        // Issued Saturday 2026-05-30 12:00: the window closes Saturday 2026-06-27 12:00;
        // five business days back: Fri 26, Thu 25, Wed 24, Tue 23, Mon 22.
        let o = order(
            json!({"purchased_at": "2026-05-29T00:00:00Z", "issued_at": "2026-05-30T12:00:00Z"}),
        );
        let d = decide(&ali(), &o, Intent::Refund, NOW);
        assert_eq!(d.deadline, Some(at("2026-06-27T12:00:00Z")));
        assert_eq!(d.submit_by, Some(at("2026-06-22T12:00:00Z")));
        // A holiday on Monday 22 pushes it to the Friday before.
        let cal = Calendar::new(["2026-06-22".parse().unwrap()]);
        let d = decide_with(&ali(), &o, Intent::Refund, NOW, &cal);
        assert_eq!(d.submit_by, Some(at("2026-06-19T12:00:00Z")));
    }

    #[test]
    fn example_3_unissued_within_five_days() {
        let o = unissued(
            "2026-06-12T00:00:00Z",
            json!({"paid": {"amount": "200.00", "currency": "USD"}}),
        );
        let d = decide(&ali(), &o, Intent::Refund, NOW);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["refund_request/manual_ticket"]);
        assert_eq!(d.steps[0].review, Some(Review::None));
        assert_eq!(d.refund.kind, RefundKind::Full);
        assert_eq!(d.refund.amount.to_string(), "200.00");
        assert_eq!(rules(&d), ["ALI-UNISSUED-5D"]);
        assert_eq!(d.eta, Some(Eta::new(0, 0)));
        assert!(d.notes.iter().any(|n| n.contains("can still be used")));
    }

    fn unissued(purchased_at: &str, patch: serde_json::Value) -> Order {
        let mut v = pending(purchased_at);
        v["voucher"] = json!(null);
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        order(v)
    }

    #[test]
    fn five_days_after_purchase_is_the_last_instant_without_review() {
        let o = unissued("2026-06-10T08:30:00Z", json!({}));
        let d = decide(&ali(), &o, Intent::Refund, NOW);
        assert_eq!(rules(&d), ["ALI-UNISSUED-5D"]);
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-15T08:30:01Z");
        assert_eq!(rules(&d), ["ALI-UNISSUED-REVIEW"]);
        assert_eq!(d.steps[0].review, Some(Review::Manual));
        assert_eq!(d.eta, Some(Eta::new(5, 15)));
        assert!(d.notes.iter().any(|n| n.contains("ALI-CANCEL-REFUND")));
    }

    #[test]
    fn unissued_review_until_fifteen_calendar_days_before_expiry() {
        // Expires Wed 2026-07-01 08:30: the cut-off is Tue 2026-06-16 08:30.
        let o = unissued(
            "2026-01-01T00:00:00Z",
            json!({"expires_at": "2026-07-01T08:30:00Z", "validation_status": "failed"}),
        );
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-16T08:30:00Z");
        assert!(d.allowed);
        assert_eq!(rules(&d), ["ALI-UNISSUED-REVIEW"]);
        assert_eq!(d.deadline, Some(at("2026-06-16T08:30:00Z")));
        // Fewer than 15 business days remain: the note of 001 becomes a warning.
        assert_eq!(d.warnings.len(), 1);
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-16T08:30:01Z");
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["ALI-UNISSUED-LATE"]);
        assert_eq!(d.alternative, Some(Intent::Cancel));
    }

    #[test]
    fn fifteen_business_days_before_expiry_is_the_safe_submit_by() {
        // Expires Wed 2026-07-01 08:30; 15 business days back: 2026-06-10 08:30 (Wed).
        let o = unissued(
            "2026-01-01T00:00:00Z",
            json!({"expires_at": "2026-07-01T08:30:00Z"}),
        );
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-10T08:30:00Z");
        assert_eq!(d.submit_by, Some(at("2026-06-10T08:30:00Z")));
        assert!(d.warnings.is_empty());
        let d = decide(&ali(), &o, Intent::Refund, "2026-06-10T08:30:01Z");
        assert_eq!(d.warnings.len(), 1);
        assert!(d.allowed);
    }

    #[test]
    fn unissued_but_validated_is_refused_and_late_wins() {
        let o = unissued(
            "2026-06-12T00:00:00Z",
            json!({"validation_status": "validated"}),
        );
        let d = decide(&ali(), &o, Intent::Refund, NOW);
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["ALI-UNISSUED-VALIDATED"]);
        assert_eq!(d.alternative, Some(Intent::Cancel));
        let late = unissued(
            "2026-01-01T00:00:00Z",
            json!({"validation_status": "validated", "expires_at": "2026-06-20T00:00:00Z"}),
        );
        let d = decide(&ali(), &late, Intent::Refund, NOW);
        assert_eq!(rules(&d), ["ALI-UNISSUED-LATE"]);
    }

    #[test]
    fn example_4_dv_issued_long_ago() {
        let o = order(
            json!({"product": {"validation": "dv"}, "purchased_at": "2026-04-30T00:00:00Z", "issued_at": "2026-05-01T00:00:00Z"}),
        );
        let d = decide(&ali(), &o, Intent::Refund, NOW);
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["ALI-ISSUED-LATE"]);
        assert_eq!(d.alternative, Some(Intent::Revoke));
        assert_eq!(d.refund.kind, RefundKind::None);
        // Revocation alone is still allowed.
        assert!(decide(&ali(), &o, Intent::Revoke, NOW).allowed);
    }

    #[test]
    fn free_dv_is_never_refundable() {
        let issued = order(
            json!({"product": {"validation": "dv", "free": true}, "voucher": null, "issued_at": "2026-06-10T00:00:00Z", "purchased_at": "2026-06-09T00:00:00Z"}),
        );
        let d = decide(&ali(), &issued, Intent::Refund, NOW);
        assert!(!d.allowed);
        assert_eq!(rules(&d), ["ALI-FREE"]);
        assert_eq!(d.alternative, Some(Intent::Revoke));
        let mut v = pending("2026-06-14T00:00:00Z");
        v["product"] = json!({"validation": "dv", "free": true});
        let d = decide(&ali(), &order(v), Intent::Refund, NOW);
        assert_eq!(rules(&d), ["ALI-FREE"]);
        assert_eq!(d.alternative, Some(Intent::Cancel));
    }

    #[test]
    fn uploaded_certificates_cannot_be_revoked_or_refunded() {
        let o = order(
            json!({"origin": "uploaded", "issued_at": "2026-06-10T00:00:00Z", "purchased_at": "2026-06-09T00:00:00Z"}),
        );
        for intent in Intent::ALL {
            let d = decide(&ali(), &o, intent, NOW);
            assert!(!d.allowed, "{intent}");
            assert_eq!(rules(&d), ["ALI-UPLOAD"]);
            assert_eq!(d.alternative, None);
        }
    }

    #[test]
    fn expired_certificates_are_not_refundable() {
        let issued = order(
            json!({"issued_at": "2025-06-01T00:00:00Z", "purchased_at": "2025-06-01T00:00:00Z", "expires_at": "2026-06-15T08:30:00Z"}),
        );
        let d = decide(&ali(), &issued, Intent::Refund, NOW);
        assert_eq!(rules(&d), ["ALI-EXPIRED"]);
        assert_eq!(d.alternative, None);
        let mut v = pending("2026-06-14T00:00:00Z");
        v["state"] = json!("expired");
        let d = decide(&ali(), &order(v), Intent::Refund, NOW);
        assert_eq!(rules(&d), ["ALI-EXPIRED"]);
        // Expired and free: both reasons are cited.
        let free = order(
            json!({"product": {"validation": "dv", "free": true}, "issued_at": "2025-06-01T00:00:00Z", "purchased_at": "2025-06-01T00:00:00Z", "expires_at": "2026-06-01T00:00:00Z"}),
        );
        assert_eq!(
            rules(&decide(&ali(), &free, Intent::Refund, NOW)),
            ["ALI-FREE", "ALI-EXPIRED"]
        );
    }

    #[test]
    fn vouchers_never_refund_below_zero() {
        let o = order(
            json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z", "voucher": {"amount": "150.00", "currency": "USD"}}),
        );
        let d = decide(&ali(), &o, Intent::Refund, NOW);
        assert_eq!(d.refund.kind, RefundKind::Partial);
        assert_eq!(d.refund.amount.to_string(), "0.00");
        assert!(d.warnings.iter().any(|w| w.contains("voucher")));
        let none = order(
            json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z", "voucher": {"amount": "0.00", "currency": "USD"}}),
        );
        let d = decide(&ali(), &none, Intent::Refund, NOW);
        assert_eq!(d.refund.kind, RefundKind::Full);
        assert!(!rules(&d).contains(&"ALI-VOUCHER"));
    }

    #[test]
    fn only_ov_and_ev_revocations_need_email_confirmation() {
        for (validation, confirm) in [
            ("dv", None),
            ("ov", Some(Confirmation::Email)),
            ("ev", Some(Confirmation::Email)),
        ] {
            let o = order(
                json!({"product": {"validation": validation}, "purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
            );
            for intent in [Intent::Refund, Intent::Revoke] {
                let d = decide(&ali(), &o, intent, NOW);
                assert_eq!(d.steps[0].confirmation, confirm, "{validation} {intent}");
                assert_eq!(rules(&d).contains(&"ALI-REVOKE-CONFIRM"), confirm.is_some());
            }
        }
    }

    #[test]
    fn revoke_carries_a_reason_and_says_what_follows() {
        let o = order(
            json!({"purchased_at": "2026-06-09T00:00:00Z", "issued_at": "2026-06-10T00:00:00Z"}),
        );
        let d = decide(&ali(), &o, Intent::Revoke, NOW);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["revoke/automated"]);
        assert_eq!(rules(&d), ["ALI-REVOKE-REASON", "ALI-REVOKE-CONFIRM"]);
        assert_eq!(d.refund.kind, RefundKind::None);
        assert!(d.notes.iter().any(|n| n.contains("ALI-DELETE")));
        assert!(d.notes.iter().any(|n| n.contains("intent refund")));
        let pending_order = order(pending("2026-06-14T00:00:00Z"));
        let d = decide(&ali(), &pending_order, Intent::Revoke, NOW);
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Cancel)));
        assert_eq!(rules(&d), ["ALI-REVOKE-ISSUED"]);
    }

    #[test]
    fn an_already_revoked_certificate_needs_only_the_refund_request() {
        let base = json!({"state": "revoked", "purchased_at": "2026-06-01T00:00:00Z", "issued_at": "2026-06-01T08:30:00Z", "revoked_at": "2026-06-12T00:00:00Z"});
        let d = decide(&ali(), &order(base.clone()), Intent::Refund, NOW);
        assert!(d.allowed);
        assert_eq!(steps(&d), ["refund_request/manual_ticket"]);
        assert_eq!(rules(&d), ["ALI-ISSUED-28D", "ALI-VOUCHER"]);
        assert_eq!(d.deadline, Some(at("2026-06-29T08:30:00Z")));
        // Claimed after the window: refused, even though the revocation was in time.
        let d = decide(
            &ali(),
            &order(base.clone()),
            Intent::Refund,
            "2026-06-29T08:30:01Z",
        );
        assert_eq!((d.allowed, rules(&d)), (false, vec!["ALI-ISSUED-28D"]));
        // Revoked after the window: refused.
        let mut late = base.clone();
        late["revoked_at"] = json!("2026-06-29T08:30:01Z");
        let d = decide(&ali(), &order(late), Intent::Refund, "2026-06-29T09:00:00Z");
        assert!(!d.allowed);
        // Without revoked_at the answer names the field.
        let mut missing = base;
        missing["revoked_at"] = json!(null);
        let err = ali()
            .decide(&PolicyInput {
                order: &order(missing),
                intent: Intent::Refund,
                as_of: at(NOW),
                calendar: &Calendar::default(),
            })
            .unwrap_err();
        assert_eq!(err.errors[0].field, "order.revoked_at");
    }

    #[test]
    fn deletion_only_after_revocation() {
        let issued = order(json!({}));
        assert!(!deletable(&issued, at(NOW)));
        let revoked = order(json!({"state": "revoked", "revoked_at": "2026-02-01T00:00:00Z"}));
        assert!(deletable(&revoked, at(NOW)));
        let uploaded = order(json!({"origin": "uploaded"}));
        assert!(deletable(&uploaded, at(NOW)));
        assert!(!deletable(&order(pending("2026-06-14T00:00:00Z")), at(NOW)));
    }

    #[test]
    fn cancel_only_while_pending() {
        let d = decide(
            &ali(),
            &order(pending("2026-06-14T00:00:00Z")),
            Intent::Cancel,
            NOW,
        );
        assert!(d.allowed);
        assert_eq!(steps(&d), ["cancel/automated"]);
        assert_eq!(rules(&d), ["ALI-CANCEL-PENDING"]);
        assert_eq!(d.refund.kind, RefundKind::None);
        let d = decide(&ali(), &order(json!({})), Intent::Cancel, NOW);
        assert_eq!((d.allowed, d.alternative), (false, Some(Intent::Revoke)));
    }

    #[test]
    fn the_older_thirty_day_window_is_configurable() {
        let older = AlibabaPolicy {
            settings: AlibabaSettings {
                refund_window_days: 30,
                review_eta: Eta::new(3, 5),
                ..Default::default()
            },
        };
        let d = decide(&older, &example_1(), Intent::Refund, NOW);
        assert_eq!(d.deadline, Some(at("2026-07-01T08:30:00Z")));
        assert_eq!(d.eta, Some(Eta::new(3, 5)));
    }

    #[test]
    fn settings_are_checked_with_their_key() {
        use certgate_core::config::Mode;
        let ctx = ProviderContext {
            name: "alibaba",
            mode: Mode::Manual,
            api: None,
        };
        let err = build(&ctx, json!({"refund_window": 28})).unwrap_err();
        assert_eq!(err[0].key, "providers.alibaba.settings.refund_window");
        let err = build(&ctx, json!({"refund_window_days": 0})).unwrap_err();
        assert_eq!(err[0].key, "providers.alibaba.settings.refund_window_days");
        let err = build(&ctx, json!({"refund_window_days": "28"})).unwrap_err();
        assert_eq!(err[0].key, "providers.alibaba.settings.refund_window_days");
        assert!(build(&ctx, serde_json::Value::Null).is_ok());
    }
}
