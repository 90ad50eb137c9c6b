//! The reseller platform of seed 003 (OpenSRS): its rules by channel, which every brand sold
//! on it shares (the `geotrust`, `thawte`, `sectigo` and `trustwave` plugins build on them, and a
//! `config` brand names them as a preset: `symantec`). A brand bought on the platform is
//! reached either through DigiCert's API (`client = "digicert"`, the reseller also holds a
//! DigiCert key), or through the platform itself (`client = "opensrs"`, the client in
//! `certgate-opensrs`), or by hand (`mode = "manual"`). On the platform: an unissued order of
//! any brand is cancelled through `cancel_order`; an issued GeoTrust, Thawte or Symantec order
//! is cancelled in the supplier's self-service portal, a person following the portal steps
//! below (refund within 48 hours); an issued Sectigo or Trustwave order goes to the platform's
//! support (refund typically within five business days). Every manual step says what to do,
//! with the order's values filled in. Refunds within 30 days of fulfilment, for every brand.

use certgate_core::config::{Mode, ProviderContext};
use certgate_core::policy::brand::{Anchor, BrandRules, Note, RefundWindow, StatePlan, StepSpec};
use certgate_core::quote::{Action, Eta, Procedure, TicketField};
use certgate_core::rule::RuleId;
use certgate_core::RegistryBuilder;
use std::borrow::Cow;

/// The name of the platform's own API client in providers.toml (`api.client = "opensrs"`):
/// the channel on which [`rules`] cancel through the platform. `certgate-opensrs` registers
/// its client under this name.
pub const CLIENT: &str = "opensrs";

/// The preset of a DigiCert-issued brand on the platform (issued orders: [`IssuedPath::Portal`]),
/// as a `config` provider names it: `settings.preset = "reseller-portal"` (Symantec).
pub const PRESET_PORTAL: &str = "reseller-portal";
/// The preset of a brand whose issued orders go to the platform's support
/// ([`IssuedPath::SupportTicket`]): `settings.preset = "reseller-support-ticket"`.
pub const PRESET_SUPPORT_TICKET: &str = "reseller-support-ticket";

/// Adds the platform's presets to a registry: a `config` brand on the platform names one
/// instead of copying the platform's rules, and gets them on its channel as a plugin would.
pub fn register(builder: &mut RegistryBuilder) {
    builder.register_preset(PRESET_PORTAL, portal);
    builder.register_preset(PRESET_SUPPORT_TICKET, support_ticket);
}

/// The rules of preset [`PRESET_PORTAL`].
pub fn portal(ctx: &ProviderContext<'_>) -> BrandRules {
    rules(IssuedPath::Portal, ctx)
}

/// The rules of preset [`PRESET_SUPPORT_TICKET`].
pub fn support_ticket(ctx: &ProviderContext<'_>) -> BrandRules {
    rules(IssuedPath::SupportTicket, ctx)
}

/// RSL-30D: refund within 30 calendar days of the fulfilment date. This is the platform's
/// refund window, for every brand (providers.toml may tune its length).
pub const RSL_30D: RuleId = RuleId::new("RSL-30D");
/// RSL-UNISSUED-CANCEL: not yet issued: cancel; the full price comes back.
pub const RSL_UNISSUED_CANCEL: RuleId = RuleId::new("RSL-UNISSUED-CANCEL");
/// RSL-PORTAL: issued DigiCert-family brands (GeoTrust, Thawte, Symantec): cancelled at the
/// supplier (DigiCert's API, or its self-service portal).
pub const RSL_PORTAL: RuleId = RuleId::new("RSL-PORTAL");
/// RSL-MANUAL: issued Sectigo and Trustwave: one support ticket to cancel and refund.
pub const RSL_MANUAL: RuleId = RuleId::new("RSL-MANUAL");
/// RSL-RESELLER-ONLY: the platform accepts requests from the reseller's own account only.
pub const RSL_RESELLER_ONLY: RuleId = RuleId::new("RSL-RESELLER-ONLY");

/// The fields the reseller platform's support needs (RSL-MANUAL).
pub const RSL_TICKET_FIELDS: &[TicketField] = &[
    TicketField::ResellerUsername,
    TicketField::SupplierOrderId,
    TicketField::CommonName,
];

/// Said on every answer; it states RSL-RESELLER-ONLY, so that rule is listed too.
const RESELLER_ONLY_NOTE: Note = Note::stating(
    RSL_RESELLER_ONLY,
    "The reseller platform processes requests from the reseller's own account only, never from the certificate holder (RSL-RESELLER-ONLY).",
);

/// How an issued order of a platform brand is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuedPath {
    /// DigiCert-issued brands: at the supplier (RSL-PORTAL).
    Portal,
    /// A support ticket to the platform (RSL-MANUAL).
    SupportTicket,
}

/// Seed 003's rules for a brand whose issued orders take `path`, with the DigiCert-issued
/// brands reached through DigiCert's API. Pending orders are cancelled the same way
/// (automated through DigiCert, or by ticket).
pub fn reseller(path: IssuedPath) -> BrandRules {
    let cancel = match path {
        IssuedPath::Portal => Procedure::Automated,
        IssuedPath::SupportTicket => Procedure::ManualTicket,
    };
    let support_ticket = |action| StepSpec {
        ticket_fields: RSL_TICKET_FIELDS.to_vec(),
        ..StepSpec::new(action, Procedure::ManualTicket)
    };
    let issued = match path {
        IssuedPath::Portal => StatePlan {
            rule: RSL_PORTAL,
            summary: Cow::Borrowed("Issued: the order is cancelled by revoking it through DigiCert's API; the refund follows, reflected within 48 hours."),
            steps: vec![StepSpec::new(Action::Revoke, Procedure::Automated)],
            refund_steps: None,
            eta: Some(Eta::new(2, 2)),
        },
        IssuedPath::SupportTicket => StatePlan {
            rule: RSL_MANUAL,
            summary: Cow::Borrowed("Issued: one support ticket asks the platform to cancel and refund (reseller username, supplier order id, common name); refunds typically within 5 business days."),
            steps: vec![support_ticket(Action::Revoke)],
            refund_steps: None,
            eta: Some(Eta {
                typical_business_days: Some(5),
                max_business_days: None,
            }),
        },
    };
    BrandRules {
        refund_window: RefundWindow {
            rule: RSL_30D,
            summary: Cow::Borrowed(
                "Refund within 30 calendar days of the fulfilment date (issued_at).",
            ),
            days: 30,
            anchor: Anchor::IssuedAt,
            submit_margin_business_days: 0,
        },
        exclusions: Vec::new(),
        unissued: StatePlan {
            rule: RSL_UNISSUED_CANCEL,
            summary: Cow::Borrowed(
                "Not yet issued: the order is cancelled and what was paid comes back.",
            ),
            steps: vec![match cancel {
                Procedure::Automated => StepSpec::new(Action::Cancel, cancel),
                Procedure::ManualTicket => support_ticket(Action::Cancel),
            }],
            refund_steps: None,
            eta: None,
        },
        issued,
        notes: vec![RESELLER_ONLY_NOTE],
    }
}

/// The supplier's self-service portal, step by step (seed 003), for an issued GeoTrust,
/// Thawte or Symantec order.
pub const PORTAL_STEPS: [&str; 6] = [
    "Open the supplier's self-service portal.",
    "Enter the supplier order ID {supplier_order_id} (or the common name {common_name}) and the tech e-mail address {technical_email}, then click Continue.",
    "Click Request access: a login link is e-mailed to {technical_email}.",
    "Click the link in that e-mail to log in to the user portal.",
    "Click Cancel order.",
    "Confirm by clicking I approve, then resolve this ticket as done; the refund reaches the reseller account within 48 hours.",
];

/// What to ask the platform's support for an order it cancels by hand (seed 003).
pub const SUPPORT_STEPS: [&str; 3] = [
    "Ask the reseller platform's support to cancel this certificate and refund it.",
    "Give your reseller username, the supplier order ID {supplier_order_id} and the common name {common_name}.",
    "Resolve this ticket when support confirms; the refund typically reaches the reseller account within five business days.",
];

/// The fields a portal step shows the person doing it.
const PORTAL_FIELDS: [TicketField; 3] = [
    TicketField::SupplierOrderId,
    TicketField::CommonName,
    TicketField::TechnicalEmail,
];

/// Whether this provider reaches its orders through the platform's API.
pub fn on_platform(ctx: &ProviderContext<'_>) -> bool {
    ctx.mode == Mode::Api && ctx.api.and_then(|a| a.client.as_deref()) == Some(CLIENT)
}

fn lines(steps: &[&'static str]) -> Vec<Cow<'static, str>> {
    steps.iter().map(|s| Cow::Borrowed(*s)).collect()
}

/// Seed 003's rules for a brand whose issued orders take `path`, on this provider's channel.
pub fn rules(path: IssuedPath, ctx: &ProviderContext<'_>) -> BrandRules {
    let mut rules = reseller(path);
    if on_platform(ctx) {
        rules.unissued.summary = Cow::Borrowed("Not yet issued: the order is cancelled through the reseller platform's API (cancel_order); what was paid comes back.");
        rules.unissued.steps = vec![StepSpec::new(Action::Cancel, Procedure::Automated)];
        rules.unissued.refund_steps = None;
        if path == IssuedPath::Portal {
            rules.issued = StatePlan {
                rule: RSL_PORTAL,
                summary: Cow::Borrowed("Issued: the order is cancelled in the supplier's self-service portal (a person follows its steps and clicks I approve); the refund is reflected within 48 hours."),
                steps: vec![StepSpec {
                    ticket_fields: PORTAL_FIELDS.to_vec(),
                    instructions: lines(&PORTAL_STEPS),
                    ..StepSpec::new(Action::Revoke, Procedure::ManualTicket)
                }],
                refund_steps: None,
                eta: Some(Eta::new(2, 2)),
            };
        }
    }
    instruct_support(rules)
}

/// Every support ticket of `rules` says what to ask the platform's support.
pub fn instruct_support(mut rules: BrandRules) -> BrandRules {
    for plan in [&mut rules.unissued, &mut rules.issued] {
        let refund = plan.refund_steps.iter_mut().flatten();
        for step in plan.steps.iter_mut().chain(refund) {
            if step.procedure == Procedure::ManualTicket && step.instructions.is_empty() {
                step.instructions = lines(&SUPPORT_STEPS);
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests;
