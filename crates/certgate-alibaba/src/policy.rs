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
mod tests;
