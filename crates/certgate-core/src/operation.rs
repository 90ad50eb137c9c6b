//! An operation: a quote being carried out step by step, with every transition in its
//! history. This is the data; how it changes is [`crate::lifecycle`], the only code that
//! moves a step or an operation to another status.

use crate::client::{CaMessage, RevocationReason};
use crate::ledger::RefundRecord;
use crate::order::{instant, Order};
use crate::quote::{Action, Confirmation, Intent, Procedure, Quote, Review, TicketField};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Operation and step statuses, exactly as API.md lists them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    AwaitingConfirmation,
    AwaitingCa,
    ManualTicketOpen,
    Completed,
    Rejected,
    Failed,
    Withdrawn,
}

impl Status {
    /// Every status, in the order of the lifecycle.
    pub const ALL: &'static [Status] = <Status as strum::VariantArray>::VARIANTS;

    /// The status as the API, the events and the store write it (`awaiting_ca`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Nothing more will happen.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Rejected | Status::Failed | Status::Withdrawn
        )
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|_| format!("unknown status `{s}`"))
    }
}

/// The body of `POST /v1/operations`: a quote request plus the revocation reason and a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationRequest {
    pub provider: String,
    pub intent: Intent,
    pub order: Order,
    #[serde(default, with = "instant::option")]
    pub as_of: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: Option<RevocationReason>,
    #[serde(default)]
    #[schema(schema_with = crate::validation::note_schema)]
    pub note: Option<String>,
}

/// One step of an operation and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepState {
    pub action: Action,
    pub procedure: Procedure,
    pub confirmation: Option<Confirmation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket_fields: Vec<TicketField>,
    /// What the person doing a manual step does (from the quote).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<String>,
    pub status: Status,
    pub attempts: u32,
    pub ticket_id: Option<String>,
    pub upstream_ref: Option<String>,
    /// The last problem met on this step (a retried timeout, a throttle, the failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why the step failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepFailure>,
    /// What must be read at the CA before anything is sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    /// Failed tries in a row (the CA unreachable, an answer lost); throttling is not counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tries: u32,
    /// The CA is throttling this step's calls (recorded once per spell).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub throttled: bool,
    /// `operation.attention_needed` was raised for this step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attention: bool,
    /// An earlier attempt's answer was lost: the CA may have acted on it, so a refusal of a
    /// repeat is settled by a read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An attempt whose outcome is not known yet: the CA is read before anything is sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reconcile {
    /// The action went out (or may have) and its answer never came: the CA may have acted. A
    /// read that does not show it done settles nothing before `conclusive_at`, when the attempt
    /// can no longer be in progress at the CA (its start, plus the call's timeout, plus a
    /// margin).
    AnswerLost {
        attempt: u32,
        #[serde(
            default,
            with = "instant::option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schema(value_type = Option<String>, format = DateTime)]
        conclusive_at: Option<DateTime<Utc>>,
    },
    /// The CA answered that the step was already done: true only if a read confirms it.
    CaSaysDone {
        #[serde(flatten)]
        answer: CaMessage,
    },
    /// The CA refused a repeat of an action whose earlier answer was lost: the refusal may be
    /// its answer to an action it already did; a read settles it.
    RepeatRefused {
        #[serde(flatten)]
        answer: CaMessage,
    },
}

/// Why a step failed (API.md's step `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepFailure {
    pub kind: FailureKind,
    /// The CA's own code, if it gave one.
    pub code: Option<String>,
    pub message: String,
}

/// How a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No request reached the CA (a credential not set, no API configured, no plan).
    NotSent,
    /// The CA answered that it will not do it.
    CaRefused,
    /// The CA could not be reached, try after try.
    CaUnreachable,
    /// Every try failed (timeouts, lost answers, CA errors).
    GaveUp,
    /// certgate itself failed: the operation's run panicked again and again (a bug to
    /// report); the message is the panic's.
    Internal,
    /// The CA's read of the order does not match the order sent (its common name, its ids):
    /// it is not the order the reseller described, and nothing was sent.
    CaMismatch,
}

impl StepState {
    /// The steps of `quote`, none of them started.
    pub fn queued(quote: &Quote) -> Vec<StepState> {
        quote
            .decision
            .steps
            .iter()
            .map(|s| StepState {
                action: s.action,
                procedure: s.procedure,
                confirmation: s.confirmation,
                review: s.review,
                ticket_fields: s.ticket_fields.clone(),
                instructions: s.instructions.clone(),
                status: Status::Queued,
                attempts: 0,
                ticket_id: None,
                upstream_ref: None,
                last_error: None,
                error: None,
                reconcile: None,
                tries: 0,
                throttled: false,
                attention: false,
                uncertain: false,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    #[serde(with = "instant")]
    pub at: DateTime<Utc>,
    pub status: Status,
    /// The step this entry is about, if any (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub detail: String,
}

/// An operation, as `GET /v1/operations/{id}` shows it. Its fields are the lifecycle's to
/// change ([`crate::lifecycle`]): anyone else reads them through the accessors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    pub(crate) id: String,
    pub(crate) status: Status,
    pub(crate) provider: String,
    pub(crate) intent: Intent,
    pub(crate) quote: Quote,
    pub(crate) order: Order,
    #[serde(default)]
    pub(crate) reason: Option<RevocationReason>,
    #[serde(default)]
    pub(crate) note: Option<String>,
    pub(crate) steps: Vec<StepState>,
    /// The money the quote promises and how far it got (API.md, "Refund ledger"); absent when
    /// the quote promises none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refund: Option<RefundRecord>,
    /// Whether the order's state was read from the CA before the first automated step.
    #[serde(default)]
    pub(crate) verified: bool,
    /// Runs of this operation that panicked (a bug): at [`crate::lifecycle::MAX_PANICS`] it
    /// fails instead of being run again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) panics: u32,
    #[serde(with = "instant")]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(with = "instant")]
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) history: Vec<HistoryEntry>,
}

impl Operation {
    /// A new operation for an allowed `quote`, every step queued (made by
    /// [`crate::lifecycle::create`]).
    pub(crate) fn new(
        id: String,
        request: OperationRequest,
        quote: Quote,
        now: DateTime<Utc>,
    ) -> Self {
        let steps = StepState::queued(&quote);
        let refund = RefundRecord::promised(&quote.decision.refund);
        Operation {
            id,
            status: Status::Queued,
            provider: request.provider,
            intent: request.intent,
            quote,
            order: request.order,
            reason: request.reason,
            note: request.note,
            steps,
            refund,
            verified: false,
            panics: 0,
            created_at: now,
            updated_at: now,
            history: vec![HistoryEntry {
                at: now,
                status: Status::Queued,
                step: None,
                detail: "accepted".into(),
            }],
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn intent(&self) -> Intent {
        self.intent
    }

    pub fn quote(&self) -> &Quote {
        &self.quote
    }

    pub fn order(&self) -> &Order {
        &self.order
    }

    pub fn reason(&self) -> Option<RevocationReason> {
        self.reason
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    pub fn steps(&self) -> &[StepState] {
        &self.steps
    }

    /// The money the quote promises and how far it got; `None` when it promises none.
    pub fn refund(&self) -> Option<&RefundRecord> {
        self.refund.as_ref()
    }

    /// Whether the order's state was read from the CA before the first automated step.
    pub fn verified(&self) -> bool {
        self.verified
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// The first step that is not completed: the one to work on.
    pub fn current_step(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.status != Status::Completed)
    }

    /// Records a note in the history without changing any status.
    pub(crate) fn record(
        &mut self,
        step: Option<usize>,
        detail: impl Into<String>,
        now: DateTime<Utc>,
    ) {
        self.history.push(HistoryEntry {
            at: now,
            status: self.status,
            step,
            detail: detail.into(),
        });
        self.updated_at = now;
    }

    /// Moves step `i` to `status`, derives the operation's status, and records the transition.
    /// Returns whether the operation's status changed.
    pub(crate) fn set_step(
        &mut self,
        i: usize,
        status: Status,
        detail: impl Into<String>,
        now: DateTime<Utc>,
    ) -> bool {
        self.steps[i].status = status;
        let before = self.status;
        self.status = self.derived_status();
        self.history.push(HistoryEntry {
            at: now,
            status: self.status,
            step: Some(i),
            detail: detail.into(),
        });
        self.updated_at = now;
        before != self.status
    }

    /// Ends the whole operation (withdrawn, or failed before any step could run).
    pub(crate) fn finish(&mut self, status: Status, detail: impl Into<String>, now: DateTime<Utc>) {
        if let Some(i) = self.current_step() {
            self.steps[i].status = status;
        }
        self.status = status;
        self.history.push(HistoryEntry {
            at: now,
            status,
            step: None,
            detail: detail.into(),
        });
        self.updated_at = now;
    }

    fn derived_status(&self) -> Status {
        if let Some(end) = self
            .steps
            .iter()
            .map(|s| s.status)
            .find(|s| s.is_terminal() && *s != Status::Completed)
        {
            return end;
        }
        match self.current_step() {
            None => Status::Completed,
            Some(i) if self.steps[i].status == Status::Queued && i > 0 => Status::Running,
            Some(i) => self.steps[i].status,
        }
    }

    /// The step that brings the money: the refund request if there is one, else the last step
    /// (a cancel or revoke after which the CA refunds by its own rule).
    pub fn money_step(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.action == Action::RefundRequest)
            .or_else(|| self.steps.len().checked_sub(1))
    }

    /// Whether a ticket of step `step` may say what was credited: the operation promises
    /// money and `step` is the one that brings it ([`Operation::money_step`]).
    pub fn credited_on(&self, step: usize) -> bool {
        self.refund.is_some() && self.money_step() == Some(step)
    }

    /// A refund request still under review (its ticket open or the CA reviewing it) can be
    /// withdrawn.
    pub fn withdrawable(&self) -> bool {
        !self.status.is_terminal()
            && self.current_step().is_some_and(|i| {
                self.steps[i].action == Action::RefundRequest
                    && matches!(
                        self.steps[i].status,
                        Status::ManualTicketOpen | Status::AwaitingCa
                    )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::{Decision, Refund, Step};
    use crate::rule::RuleId;
    use crate::testing::{at, order};
    use serde_json::json;

    fn op(steps: Vec<Step>) -> Operation {
        let o = order(json!({}));
        let quote = Quote {
            provider: "p".into(),
            intent: Intent::Refund,
            as_of: at("2026-06-15T08:30:00Z"),
            decision: Decision::allow(RuleId::new("R"), steps, Refund::full(o.paid)),
            policy_version: "v".into(),
        };
        let req = OperationRequest {
            provider: "p".into(),
            intent: Intent::Refund,
            order: o,
            as_of: None,
            reason: None,
            note: None,
        };
        Operation::new("op_1".into(), req, quote, at("2026-06-15T08:30:00Z"))
    }

    #[test]
    fn the_status_follows_the_current_step() {
        let now = at("2026-06-15T09:00:00Z");
        let mut o = op(vec![
            Step::automated(Action::Revoke),
            Step::manual(Action::RefundRequest, &[]),
        ]);
        assert_eq!(o.status, Status::Queued);
        assert!(o.set_step(0, Status::Running, "calling the CA", now));
        assert!(!o.withdrawable());
        o.set_step(
            0,
            Status::AwaitingConfirmation,
            "the applicant must confirm",
            now,
        );
        assert_eq!(o.status, Status::AwaitingConfirmation);
        o.set_step(0, Status::Completed, "revoked", now);
        assert_eq!((o.status, o.current_step()), (Status::Running, Some(1)));
        o.set_step(1, Status::ManualTicketOpen, "ticket tk_1", now);
        assert!(o.withdrawable());
        o.set_step(1, Status::Completed, "refunded", now);
        assert_eq!((o.status, o.current_step()), (Status::Completed, None));
        assert_eq!(o.history.len(), 6);
        assert!(!o.withdrawable());
    }

    #[test]
    fn a_failed_or_rejected_step_ends_the_operation() {
        let now = at("2026-06-15T09:00:00Z");
        let mut o = op(vec![
            Step::automated(Action::Cancel),
            Step::manual(Action::RefundRequest, &[]),
        ]);
        o.set_step(0, Status::Failed, "order not found", now);
        assert_eq!(o.status, Status::Failed);
        let mut o = op(vec![Step::manual(Action::RefundRequest, &[])]);
        o.set_step(0, Status::ManualTicketOpen, "ticket", now);
        o.finish(Status::Withdrawn, "withdrawn by the reseller", now);
        assert_eq!(
            (o.status, o.steps[0].status),
            (Status::Withdrawn, Status::Withdrawn)
        );
    }

    #[test]
    fn the_money_is_credited_on_the_refund_request_else_the_last_step() {
        let two = op(vec![
            Step::manual(Action::Revoke, &[]),
            Step::manual(Action::RefundRequest, &[]),
        ]);
        assert!(two.refund.is_some());
        assert_eq!(two.money_step(), Some(1));
        assert!(!two.credited_on(0) && two.credited_on(1));
        // One platform ticket ("cancel and refund it"): the money comes with it.
        let one = op(vec![Step::manual(Action::Revoke, &[])]);
        assert!(one.credited_on(0) && !one.credited_on(1));
        let mut none = one.clone();
        none.refund = None;
        assert!(!none.credited_on(0), "no money promised, none credited");
    }

    #[test]
    fn statuses_round_trip() {
        for &s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
    }
}
