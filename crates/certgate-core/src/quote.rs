//! The answer to "what happens if I cancel, revoke or refund this order?" (API.md's quote).

use crate::money::{Amount, Currency, Money};
use crate::order::instant;
use crate::rule::{RuleId, Text};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the reseller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Stop a pending order.
    Cancel,
    /// Invalidate an issued certificate.
    Revoke,
    /// Get money back: certgate plans whatever steps that takes.
    Refund,
}

impl Intent {
    pub const ALL: [Intent; 3] = [Intent::Cancel, Intent::Revoke, Intent::Refund];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Cancel => "cancel",
            Intent::Revoke => "revoke",
            Intent::Refund => "refund",
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Intent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Intent::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| format!("unknown intent `{s}`: expected cancel, revoke or refund"))
    }
}

/// One thing certgate does at the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RejectApproval,
    Cancel,
    Revoke,
    RefundRequest,
}

impl Action {
    /// The action's name on the wire (`reject_approval`, `cancel`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RejectApproval => "reject_approval",
            Action::Cancel => "cancel",
            Action::Revoke => "revoke",
            Action::RefundRequest => "refund_request",
        }
    }
}

/// How a step is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    /// Through the CA's API.
    Automated,
    /// As a support ticket that a person handles.
    ManualTicket,
}

/// Who must confirm a step before the CA acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// The CA e-mails the applicant, who must confirm.
    Email,
}

/// Whether the CA reviews a refund request by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    None,
    Manual,
}

/// A field that a manual ticket must carry.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TicketField {
    ResellerUsername,
    SupplierOrderId,
    CertificateId,
    CommonName,
    TechnicalEmail,
    Amount,
}

impl TicketField {
    /// The field's name in a sentence.
    pub fn label(self) -> &'static str {
        match self {
            TicketField::ResellerUsername => "reseller username",
            TicketField::SupplierOrderId => "supplier order ID",
            TicketField::CertificateId => "certificate ID",
            TicketField::CommonName => "common name",
            TicketField::TechnicalEmail => "tech e-mail",
            TicketField::Amount => "amount",
        }
    }
}

/// The fields a ticket carries when a provider runs an automated step by hand (mode manual).
pub const DEFAULT_TICKET_FIELDS: &[TicketField] = &[
    TicketField::ResellerUsername,
    TicketField::SupplierOrderId,
    TicketField::CommonName,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub action: Action,
    pub procedure: Procedure,
    /// `"email"` on a revoke the applicant must confirm, else null.
    pub confirmation: Option<Confirmation>,
    /// On a refund request: whether the CA reviews it by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// On a manual ticket: the fields it must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket_fields: Vec<TicketField>,
    /// Plain sentences for the person doing a manual step, with this order's values filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<String>,
}

impl Step {
    pub fn automated(action: Action) -> Self {
        Step {
            action,
            procedure: Procedure::Automated,
            confirmation: None,
            review: None,
            ticket_fields: Vec::new(),
            instructions: Vec::new(),
        }
    }

    /// The step with these instructions for the person who carries it out.
    pub fn instructed(mut self, instructions: Vec<String>) -> Self {
        self.instructions = instructions;
        self
    }

    pub fn manual(action: Action, fields: &[TicketField]) -> Self {
        Step {
            procedure: Procedure::ManualTicket,
            ticket_fields: fields.to_vec(),
            ..Step::automated(action)
        }
    }

    /// A step with the given procedure; a manual one carries `fields`.
    pub fn with_procedure(action: Action, procedure: Procedure, fields: &[TicketField]) -> Self {
        match procedure {
            Procedure::Automated => Step::automated(action),
            Procedure::ManualTicket => Step::manual(action, fields),
        }
    }

    pub fn confirmed_by(mut self, confirmation: Option<Confirmation>) -> Self {
        self.confirmation = confirmation;
        self
    }

    pub fn reviewed(mut self, review: Review) -> Self {
        self.review = Some(review);
        self
    }

    /// Turns an automated step into a manual ticket (a provider configured `mode = "manual"`).
    pub fn into_manual(mut self) -> Self {
        if self.procedure == Procedure::Automated {
            self.procedure = Procedure::ManualTicket;
            if self.ticket_fields.is_empty() {
                self.ticket_fields = DEFAULT_TICKET_FIELDS.to_vec();
            }
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundKind {
    Full,
    Partial,
    None,
    /// The CA decides; `amount` is the most that can come back.
    Discretionary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    pub kind: RefundKind,
    pub amount: Amount,
    pub currency: Currency,
}

impl Refund {
    pub fn none(currency: Currency) -> Self {
        Refund {
            kind: RefundKind::None,
            amount: Amount::ZERO,
            currency,
        }
    }

    pub fn full(paid: Money) -> Self {
        Refund {
            kind: RefundKind::Full,
            amount: paid.amount,
            currency: paid.currency,
        }
    }

    pub fn discretionary(paid: Money) -> Self {
        Refund {
            kind: RefundKind::Discretionary,
            ..Refund::full(paid)
        }
    }

    pub fn partial(amount: Amount, currency: Currency) -> Self {
        Refund {
            kind: RefundKind::Partial,
            amount,
            currency,
        }
    }
}

/// Expected processing time at the CA, in business days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Eta {
    pub typical_business_days: Option<u32>,
    pub max_business_days: Option<u32>,
}

impl Eta {
    pub const fn new(typical: u32, max: u32) -> Self {
        Eta {
            typical_business_days: Some(typical),
            max_business_days: Some(max),
        }
    }
}

/// What a provider's policy decided, before the provider's name and policy version are added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub allowed: bool,
    pub steps: Vec<Step>,
    pub refund: Refund,
    #[serde(with = "instant::option")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(with = "instant::option")]
    pub submit_by: Option<DateTime<Utc>>,
    pub eta: Option<Eta>,
    pub rules: Vec<RuleId>,
    #[schema(value_type = Vec<String>)]
    pub warnings: Vec<Text>,
    #[schema(value_type = Vec<String>)]
    pub notes: Vec<Text>,
    pub alternative: Option<Intent>,
}

impl Decision {
    /// Refused because of `rule`; `alternative` is the intent that can still be asked for.
    pub fn refuse(currency: Currency, rule: RuleId, alternative: Option<Intent>) -> Self {
        Decision {
            allowed: false,
            steps: Vec::new(),
            refund: Refund::none(currency),
            deadline: None,
            submit_by: None,
            eta: None,
            rules: vec![rule],
            warnings: Vec::new(),
            notes: Vec::new(),
            alternative,
        }
    }

    /// Allowed under `rule`, with these steps and this refund.
    pub fn allow(rule: RuleId, steps: Vec<Step>, refund: Refund) -> Self {
        Decision {
            allowed: true,
            steps,
            refund,
            alternative: None,
            ..Decision::refuse(refund.currency, rule, None)
        }
    }

    pub fn rule(mut self, rule: RuleId) -> Self {
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
        self
    }

    pub fn rule_if(self, cond: bool, rule: RuleId) -> Self {
        if cond {
            self.rule(rule)
        } else {
            self
        }
    }

    pub fn note(mut self, note: impl Into<Text>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn warn(mut self, warning: impl Into<Text>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// The last instant the answer holds, and the safe instant to submit by.
    pub fn window(mut self, deadline: DateTime<Utc>, submit_by: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self.submit_by = Some(submit_by);
        self
    }

    pub fn eta(mut self, eta: Option<Eta>) -> Self {
        self.eta = eta;
        self
    }

    /// When a request must go by: `submit_by`, else the deadline.
    pub fn send_by(&self) -> Option<DateTime<Utc>> {
        self.submit_by.or(self.deadline)
    }
}

/// The full answer of `POST /v1/quotes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quote {
    pub provider: String,
    pub intent: Intent,
    #[serde(with = "instant")]
    pub as_of: DateTime<Utc>,
    #[serde(flatten)]
    pub decision: Decision,
    pub policy_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_parse_and_print() {
        for i in Intent::ALL {
            assert_eq!(i.as_str().parse::<Intent>().unwrap(), i);
        }
        assert!("delete"
            .parse::<Intent>()
            .unwrap_err()
            .contains("cancel, revoke or refund"));
    }

    #[test]
    fn manual_mode_turns_automated_steps_into_tickets() {
        let step = Step::automated(Action::Revoke).into_manual();
        assert_eq!(step.procedure, Procedure::ManualTicket);
        assert_eq!(step.ticket_fields, DEFAULT_TICKET_FIELDS);
        let ticket = Step::manual(Action::RefundRequest, &[TicketField::Amount]).into_manual();
        assert_eq!(ticket.ticket_fields, [TicketField::Amount]);
    }

    #[test]
    fn rules_are_cited_once() {
        let usd = "USD".parse().unwrap();
        let d = Decision::refuse(usd, RuleId::new("A"), None)
            .rule(RuleId::new("B"))
            .rule(RuleId::new("A"))
            .rule_if(false, RuleId::new("C"));
        assert_eq!(d.rules, [RuleId::new("A"), RuleId::new("B")]);
    }
}
