//! Manual tickets: a step a person carries out (a support request to the CA or platform),
//! with the fields its CA demands. Visible in `GET /v1/tickets`, resolved by
//! `POST /v1/tickets/{id}/resolve`, and pushed to an outside helpdesk when one is configured.

use crate::tenants::Tenant;
use certgate_core::operation::Operation;
use certgate_core::order::instant;
use certgate_core::quote::{Action, TicketField};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Done,
    Rejected,
    Withdrawn,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Done => "done",
            TicketStatus::Rejected => "rejected",
            TicketStatus::Withdrawn => "withdrawn",
        }
    }
}

/// A manual ticket as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// the tenant.
    pub fn open(
        id: String,
        op: &Operation,
        step: usize,
        tenant: &Tenant,
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
                    TicketField::ResellerUsername => Some(tenant.reseller_username.clone()),
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
            fields,
            order_id: order.id.clone(),
            created_at: now,
            updated_at: now,
            note: None,
        }
    }
}
