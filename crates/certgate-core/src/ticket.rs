//! Manual tickets: a step a person carries out (a support request to the CA or platform),
//! with the fields its CA demands. The operation lifecycle opens and closes them; the API lists
//! and resolves them.

use crate::operation::Operation;
use crate::order::instant;
use crate::quote::{Action, RefundKind, TicketField};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Done,
    Rejected,
    Withdrawn,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [
        TicketStatus::Open,
        TicketStatus::Done,
        TicketStatus::Rejected,
        TicketStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Done => "done",
            TicketStatus::Rejected => "rejected",
            TicketStatus::Withdrawn => "withdrawn",
        }
    }
}

impl std::str::FromStr for TicketStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TicketStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown ticket status `{s}`"))
    }
}

impl TryFrom<String> for TicketStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What a ticket whose step brings no instructions of its own says: what to ask the CA's
/// support, with which values, for which amount, and by when.
fn default_instructions(
    op: &Operation,
    action: Action,
    fields: &BTreeMap<TicketField, Option<String>>,
) -> Vec<String> {
    let what = match action {
        Action::RejectApproval => "reject the pending approval of",
        Action::Cancel => "cancel",
        Action::Revoke => "revoke",
        Action::RefundRequest => "refund",
    };
    let mut lines = vec![format!(
        "Ask {}'s support to {what} order {}.",
        op.provider, op.order.id
    )];
    let given: Vec<String> = fields
        .iter()
        .filter(|(f, _)| **f != TicketField::Amount)
        .filter_map(|(f, v)| v.as_ref().map(|v| format!("{} {v}", f.label())))
        .collect();
    if !given.is_empty() {
        lines.push(format!("Give them the {}.", given.join(", the ")));
    }
    let refund = &op.quote.decision.refund;
    if refund.kind != RefundKind::None {
        lines.push(format!(
            "Ask for {} {} back.",
            refund.amount, refund.currency
        ));
    }
    if let Some(by) = op.quote.decision.send_by() {
        lines.push(format!(
            "Send the request by {}: the refund window closes then.",
            instant::format(&by)
        ));
    }
    lines.push("Resolve this ticket with what they answered.".into());
    lines
}

/// A manual ticket as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: String,
    pub status: TicketStatus,
    pub operation_id: String,
    /// The step of the operation this ticket carries out (0-based).
    pub step: usize,
    pub provider: String,
    pub action: Action,
    /// What the CA demands, by field name; null where the order did not say.
    pub fields: BTreeMap<TicketField, Option<String>>,
    /// What to do, in plain sentences with this order's values filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<String>,
    pub order_id: String,
    #[serde(with = "instant")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "instant")]
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub note: Option<String>,
}

impl Ticket {
    /// The ticket for step `step` of `op`, its fields filled from the order, the quote and
    /// the reseller's username at the CA or platform.
    pub fn open(
        id: String,
        op: &Operation,
        step: usize,
        reseller_username: &str,
        now: DateTime<Utc>,
    ) -> Ticket {
        let s = &op.steps[step];
        let order = &op.order;
        let refund = &op.quote.decision.refund;
        let fields = s
            .ticket_fields
            .iter()
            .map(|f| {
                let value = match f {
                    TicketField::ResellerUsername => Some(reseller_username.to_owned()),
                    TicketField::SupplierOrderId => order.supplier_order_id.clone(),
                    TicketField::CertificateId => order.certificate_id.clone(),
                    TicketField::CommonName => order.common_name.clone(),
                    TicketField::TechnicalEmail => order.technical_email.clone(),
                    TicketField::Amount => Some(format!("{} {}", refund.amount, refund.currency)),
                };
                (*f, value)
            })
            .collect();
        Ticket {
            id,
            status: TicketStatus::Open,
            operation_id: op.id.clone(),
            step,
            provider: op.provider.clone(),
            action: s.action,
            instructions: if s.instructions.is_empty() {
                default_instructions(op, s.action, &fields)
            } else {
                s.instructions.clone()
            },
            fields,
            order_id: order.id.clone(),
            created_at: now,
            updated_at: now,
            note: None,
        }
    }
}
