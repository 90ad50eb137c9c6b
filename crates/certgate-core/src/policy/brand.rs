//! Brands sold through a reseller platform (seed 003: Sectigo, GeoTrust, Thawte, Symantec,
//! Trustwave), as data: a refund window, exclusions, and what certgate does for an unissued and
//! for an issued order. The brand plugins hold their own [`BrandRules`]; a provider of kind
//! `config` reads its whole [`BrandRules`] from providers.toml (that is how `symantec` exists).

use super::{alternative, issued_at, nothing_to_act_on};
use crate::config::{ConfigIssue, ProviderContext};
use crate::order::{Order, OrderState, ProductKind, Validation};
use crate::provider::PolicyInput;
use crate::provider::Provider;
use crate::quote::{Action, Decision, Eta, Intent, Procedure, Refund, Step, TicketField};
use crate::rule::{common, RuleId, RuleInfo, Text};
use crate::validation::InvalidInput;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// RSL-30D: refund within 30 calendar days of the fulfilment date.
pub const RSL_30D: RuleId = RuleId::new("RSL-30D");
/// RSL-UNISSUED-CANCEL: not yet issued: cancel; the full price comes back.
pub const RSL_UNISSUED_CANCEL: RuleId = RuleId::new("RSL-UNISSUED-CANCEL");
/// RSL-PORTAL: issued DigiCert-family brands: revoke the whole order through DigiCert's API.
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

const RESELLER_ONLY_NOTE: &str = "The reseller platform processes requests from the reseller's own account only, never from the certificate holder (RSL-RESELLER-ONLY).";

/// Which instant a refund window counts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The fulfilment date.
    #[default]
    IssuedAt,
    PurchasedAt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundWindow {
    pub rule: RuleId,
    pub summary: Text,
    /// Calendar days after the anchor (`as_of <= anchor + days*24h`).
    pub days: u32,
    #[serde(default)]
    pub anchor: Anchor,
    /// Business days the CA needs before the deadline; `submit_by` steps back this many.
    #[serde(default)]
    pub submit_margin_business_days: u32,
}

/// Products that are never refundable (Trustwave EV). Every criterion given must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub rule: RuleId,
    pub summary: Text,
    #[serde(default)]
    pub validation: Option<Validation>,
    #[serde(default)]
    pub kind: Option<ProductKind>,
    #[serde(default)]
    pub free: Option<bool>,
}

impl Exclusion {
    pub fn matches(&self, order: &Order) -> bool {
        let p = &order.product;
        self.validation.is_none_or(|v| v == p.validation)
            && self.kind.is_none_or(|k| k == p.kind)
            && self.free.is_none_or(|f| f == p.free)
    }
}

/// One step as declared: its action, how it is done, and the fields a ticket carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub action: Action,
    pub procedure: Procedure,
    #[serde(default)]
    pub ticket_fields: Vec<TicketField>,
}

impl StepSpec {
    pub fn step(&self) -> Step {
        Step::with_procedure(self.action, self.procedure, &self.ticket_fields)
    }
}

/// What certgate does for an order in one state group (unissued or issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatePlan {
    pub rule: RuleId,
    pub summary: Text,
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub eta: Option<Eta>,
}

impl StatePlan {
    fn steps(&self) -> Vec<Step> {
        self.steps.iter().map(StepSpec::step).collect()
    }
}

/// A reseller brand's whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandRules {
    pub refund_window: RefundWindow,
    #[serde(default)]
    pub exclusions: Vec<Exclusion>,
    /// Pending, awaiting approval, e-mailed to the recipient: stop the order.
    pub unissued: StatePlan,
    /// Issued: revoke (the refund follows within the window).
    pub issued: StatePlan,
    /// Notes added to every answer.
    #[serde(default)]
    pub notes: Vec<Text>,
}

/// How an issued order of a platform brand is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuedPath {
    /// DigiCert-issued brands: revoke the whole order through DigiCert's API (RSL-PORTAL).
    Portal,
    /// A support ticket to the platform (RSL-MANUAL).
    SupportTicket,
}

impl BrandRules {
    /// Seed 003's rules for a brand whose issued orders take `path`. Pending orders are
    /// cancelled the same way (automated through DigiCert, or by ticket).
    pub fn reseller(path: IssuedPath) -> Self {
        let cancel = match path {
            IssuedPath::Portal => Procedure::Automated,
            IssuedPath::SupportTicket => Procedure::ManualTicket,
        };
        let issued = match path {
            IssuedPath::Portal => StatePlan {
                rule: RSL_PORTAL,
                summary: Cow::Borrowed("Issued: the order is cancelled by revoking it through DigiCert's API; the refund follows, reflected within 48 hours."),
                steps: vec![StepSpec {
                    action: Action::Revoke,
                    procedure: Procedure::Automated,
                    ticket_fields: Vec::new(),
                }],
                eta: Some(Eta::new(2, 2)),
            },
            IssuedPath::SupportTicket => StatePlan {
                rule: RSL_MANUAL,
                summary: Cow::Borrowed("Issued: one support ticket asks the platform to cancel and refund (reseller username, supplier order id, common name); refunds typically within 5 business days."),
                steps: vec![StepSpec {
                    action: Action::Revoke,
                    procedure: Procedure::ManualTicket,
                    ticket_fields: RSL_TICKET_FIELDS.to_vec(),
                }],
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
                steps: vec![StepSpec {
                    action: Action::Cancel,
                    procedure: cancel,
                    ticket_fields: if cancel == Procedure::ManualTicket {
                        RSL_TICKET_FIELDS.to_vec()
                    } else {
                        Vec::new()
                    },
                }],
                eta: None,
            },
            issued,
            notes: vec![Cow::Borrowed(RESELLER_ONLY_NOTE)],
        }
    }

    /// Every step done by `procedure` (a brand whose own API can do all of them).
    pub fn with_procedure(mut self, procedure: Procedure) -> Self {
        for step in self
            .unissued
            .steps
            .iter_mut()
            .chain(self.issued.steps.iter_mut())
        {
            step.procedure = procedure;
        }
        self
    }

    pub fn excluding(mut self, exclusion: Exclusion) -> Self {
        self.exclusions.push(exclusion);
        self
    }

    /// Every rule these rules may cite.
    pub fn rule_infos(&self) -> Vec<RuleInfo> {
        let info = |id: &RuleId, summary: &Text| RuleInfo {
            id: id.clone(),
            summary: summary.clone(),
        };
        let mut rules = vec![
            info(&self.refund_window.rule, &self.refund_window.summary),
            info(&self.unissued.rule, &self.unissued.summary),
            info(&self.issued.rule, &self.issued.summary),
        ];
        rules.extend(self.exclusions.iter().map(|e| info(&e.rule, &e.summary)));
        if self.notes.iter().any(|n| n == RESELLER_ONLY_NOTE) {
            rules.push(RuleInfo::new(RSL_RESELLER_ONLY, RESELLER_ONLY_NOTE));
        }
        rules.extend(common::RULES);
        rules
    }

    /// Problems a config-written rule set can have, keyed under `settings.`.
    pub fn validate(&self, ctx: &ProviderContext<'_>) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.refund_window.days == 0 {
            issues.push(ctx.issue("settings.refund_window.days", "must be at least 1"));
        }
        let rules = std::iter::once(("settings.refund_window.rule", &self.refund_window.rule))
            .chain([
                ("settings.unissued.rule", &self.unissued.rule),
                ("settings.issued.rule", &self.issued.rule),
            ]);
        for (key, rule) in rules {
            if rule.as_str().trim().is_empty() {
                issues.push(ctx.issue(key, "must name a rule id"));
            }
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            if e.validation.is_none() && e.kind.is_none() && e.free.is_none() {
                issues.push(ctx.issue(
                    &format!("settings.exclusions[{i}]"),
                    "needs at least one of validation, kind, free (else it excludes every order)",
                ));
            }
        }
        for (group, plan, wanted) in [
            (
                "unissued",
                &self.unissued,
                [Action::RejectApproval, Action::Cancel],
            ),
            (
                "issued",
                &self.issued,
                [Action::Revoke, Action::RefundRequest],
            ),
        ] {
            if plan.steps.is_empty() {
                issues.push(ctx.issue(
                    &format!("settings.{group}.steps"),
                    "must list at least one step",
                ));
            }
            for (i, s) in plan.steps.iter().enumerate() {
                if !wanted.contains(&s.action) {
                    issues.push(ctx.issue(
                        &format!("settings.{group}.steps[{i}].action"),
                        format!(
                            "an {group} order takes {:?} or {:?}, not {:?}",
                            wanted[0], wanted[1], s.action
                        ),
                    ));
                }
                if s.procedure == Procedure::Automated
                    && ctx.api.is_none()
                    && ctx.mode == crate::config::Mode::Api
                {
                    issues.push(ctx.issue(
                        &format!("settings.{group}.steps[{i}].procedure"),
                        "is automated but the provider has no [api] section",
                    ));
                }
            }
        }
        issues
    }

    /// The refund window's deadline for this order, when its anchor is known.
    fn deadline(&self, order: &Order) -> Option<DateTime<Utc>> {
        let anchor = match self.refund_window.anchor {
            Anchor::IssuedAt => order.issued_at?,
            Anchor::PurchasedAt => order.purchased_at,
        };
        Some(crate::calendar::days_after(anchor, self.refund_window.days))
    }

    /// The pure policy.
    pub fn decide(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let decision = self.decide_inner(input)?;
        Ok(self
            .notes
            .iter()
            .fold(decision, |d, note| d.note(note.clone())))
    }

    fn decide_inner(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        let PolicyInput {
            order,
            intent,
            as_of,
            calendar,
        } = *input;
        let currency = order.paid.currency;
        let excluded = self.exclusions.iter().find(|e| e.matches(order));
        let unissued = order.state.is_unissued();

        if intent != Intent::Refund {
            if let Some(d) = nothing_to_act_on(order, as_of) {
                return Ok(d);
            }
        }
        let window = self.deadline(order).map(|deadline| {
            let submit_by =
                calendar.step_back(deadline, self.refund_window.submit_margin_business_days);
            (deadline, submit_by)
        });
        let in_window = window.is_none_or(|(deadline, _)| as_of <= deadline);
        let refund = |eligible: bool| {
            if eligible {
                Refund::full(order.paid)
            } else {
                Refund::none(currency)
            }
        };
        let windowed = |d: Decision| match window {
            Some((deadline, submit_by)) => d
                .window(deadline, submit_by)
                .rule(self.refund_window.rule.clone()),
            None => d,
        };

        Ok(match intent {
            Intent::Cancel if unissued => {
                let d = Decision::allow(
                    self.unissued.rule.clone(),
                    self.unissued.steps(),
                    refund(excluded.is_none() && in_window),
                )
                .eta(self.unissued.eta);
                match excluded {
                    Some(e) => d.rule(e.rule.clone()),
                    None => d,
                }
            }
            Intent::Cancel => {
                Decision::refuse(currency, self.unissued.rule.clone(), Some(Intent::Revoke))
                    .rule(self.issued.rule.clone())
            }
            Intent::Revoke if unissued => {
                Decision::refuse(currency, self.unissued.rule.clone(), Some(Intent::Cancel))
            }
            Intent::Revoke => {
                // At the platform an issued order is revoked by cancelling it, and the refund
                // follows by itself while the window is open.
                let eligible = excluded.is_none() && in_window;
                let d = Decision::allow(
                    self.issued.rule.clone(),
                    self.issued.steps(),
                    refund(eligible),
                )
                .eta(self.issued.eta);
                match excluded {
                    Some(e) => d.rule(e.rule.clone()),
                    None if eligible => windowed(d),
                    None => d,
                }
            }
            Intent::Refund => {
                if let Some(e) = excluded {
                    return Ok(Decision::refuse(
                        currency,
                        e.rule.clone(),
                        alternative(order, as_of),
                    ));
                }
                match order.state {
                    OrderState::Canceled => {
                        Decision::refuse(currency, common::ORDER_CANCELED, None)
                            .note("A cancelled order's refund followed its cancellation.")
                    }
                    OrderState::Revoked => {
                        issued_at(order)?;
                        Decision::refuse(currency, common::ORDER_REVOKED, None).note(
                            "The certificate is already revoked; ask the platform's support about its refund.",
                        )
                    }
                    _ if unissued && order.is_expired(as_of) => {
                        Decision::refuse(currency, common::ORDER_EXPIRED, None)
                    }
                    _ if !in_window => windowed(Decision::refuse(
                        currency,
                        self.refund_window.rule.clone(),
                        alternative(order, as_of),
                    )),
                    _ if unissued => windowed(
                        Decision::allow(
                            self.unissued.rule.clone(),
                            self.unissued.steps(),
                            Refund::full(order.paid),
                        )
                        .eta(self.unissued.eta),
                    ),
                    _ => {
                        let (deadline, submit_by) = window.ok_or_else(|| {
                            InvalidInput::one(
                                "order.issued_at",
                                "is required when order.state is issued or revoked",
                            )
                        })?;
                        let d = Decision::allow(
                            self.refund_window.rule.clone(),
                            self.issued.steps(),
                            Refund::full(order.paid),
                        )
                        .rule(self.issued.rule.clone())
                        .window(deadline, submit_by)
                        .eta(self.issued.eta);
                        if as_of > submit_by {
                            d.warn("Less time is left before the deadline than the CA needs to process the request: the refund is at risk.")
                        } else {
                            d
                        }
                    }
                }
            }
        })
    }
}

/// The kind name of providers described entirely in providers.toml.
pub const CONFIG_KIND: &str = "config";

/// The factory of kind `config`: the provider's settings are a whole [`BrandRules`].
pub fn build_config(
    ctx: &ProviderContext<'_>,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let rules: BrandRules = ctx.settings(settings)?;
    BrandProvider::new(ctx, rules)
}

/// A provider whose policy is a [`BrandRules`]: the brand plugins and `config` providers.
#[derive(Debug)]
pub struct BrandProvider {
    rules: BrandRules,
}

impl BrandProvider {
    pub fn new(
        ctx: &ProviderContext<'_>,
        rules: BrandRules,
    ) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
        let issues = rules.validate(ctx);
        if issues.is_empty() {
            Ok(Arc::new(BrandProvider { rules }))
        } else {
            Err(issues)
        }
    }
}

impl Provider for BrandProvider {
    fn decide(&self, input: &PolicyInput<'_>) -> Result<Decision, InvalidInput> {
        self.rules.decide(input)
    }

    fn rules(&self) -> Vec<RuleInfo> {
        self.rules.rule_infos()
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(&self.rules).unwrap_or_default()
    }
}

/// The settings a brand plugin accepts on top of its built-in rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandSettings {
    /// Overrides the refund window's length in calendar days.
    #[serde(default)]
    pub refund_window_days: Option<u32>,
    /// Business days to leave the platform before the window closes (`submit_by`).
    #[serde(default)]
    pub submit_margin_business_days: Option<u32>,
}

impl BrandSettings {
    /// The factory of a brand plugin whose built-in rules are `rules()`.
    pub fn factory(
        rules: fn() -> BrandRules,
    ) -> impl Fn(
        &ProviderContext<'_>,
        serde_json::Value,
    ) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>>
           + Send
           + Sync
           + 'static {
        move |ctx, settings| BrandSettings::build(ctx, settings, rules())
    }

    /// Builds a brand plugin's provider from its built-in `rules` and these settings.
    pub fn build(
        ctx: &ProviderContext<'_>,
        settings: serde_json::Value,
        mut rules: BrandRules,
    ) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
        let s: BrandSettings = ctx.settings(settings)?;
        if let Some(days) = s.refund_window_days {
            rules.refund_window.days = days;
        }
        if let Some(margin) = s.submit_margin_business_days {
            rules.refund_window.submit_margin_business_days = margin;
        }
        BrandProvider::new(ctx, rules).map_err(|issues| {
            issues
                .into_iter()
                .map(|mut i| {
                    if i.key.ends_with("refund_window.days") {
                        i.key = ctx.key("settings.refund_window_days");
                    }
                    i
                })
                .collect()
        })
    }
}
