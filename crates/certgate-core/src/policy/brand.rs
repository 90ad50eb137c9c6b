//! A policy as a table ([`BrandRules`]): a refund window, exclusions, and what certgate does
//! for an unissued and for an issued order. The brand plugins build theirs (seed 003's rules
//! live in `certgate-platform`); a provider of kind `config` names a preset or reads its whole
//! table from providers.toml ([`build_config`]: that is how `symantec` exists).

mod provider;
#[cfg(test)]
mod tests;

pub use provider::{
    build_config, BrandProvider, BrandSettings, Preset, Presets, CONFIG_KIND, PRESET_KEY,
};

use super::{alternative, issued_at, nothing_to_act_on};
use crate::config::{ConfigIssue, ProviderContext};
use crate::order::{Order, OrderState, ProductKind, Validation};
use crate::provider::PolicyInput;
use crate::quote::{Action, Decision, Eta, Intent, Procedure, Refund, Step, TicketField};
use crate::rule::{common, RuleId, RuleInfo, Text};
use crate::validation::InvalidInput;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// One step as declared: its action, how it is done, the fields a ticket carries, and the
/// instructions for the person doing it, where `{supplier_order_id}`, `{platform_order_id}`,
/// `{certificate_id}`, `{common_name}`, `{technical_email}` and `{order_id}` stand for the
/// order's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub action: Action,
    pub procedure: Procedure,
    #[serde(default)]
    pub ticket_fields: Vec<TicketField>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<Text>,
}

impl StepSpec {
    pub fn new(action: Action, procedure: Procedure) -> Self {
        StepSpec {
            action,
            procedure,
            ticket_fields: Vec::new(),
            instructions: Vec::new(),
        }
    }

    /// The step for `order`, its instructions filled in.
    pub fn step(&self, order: &Order) -> Step {
        Step::with_procedure(self.action, self.procedure, &self.ticket_fields).instructed(
            self.instructions
                .iter()
                .map(|line| fill(line, order))
                .collect(),
        )
    }
}

/// `template` with the order's values in place of `{supplier_order_id}` and the like; a value
/// the order does not give reads "(not given)".
pub fn fill(template: &str, order: &Order) -> String {
    let value = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("(not given)")
            .to_owned()
    };
    [
        ("{supplier_order_id}", value(&order.supplier_order_id)),
        ("{platform_order_id}", value(&order.platform_order_id)),
        ("{certificate_id}", value(&order.certificate_id)),
        ("{common_name}", value(&order.common_name)),
        ("{technical_email}", value(&order.technical_email)),
        ("{order_id}", order.id.clone()),
    ]
    .iter()
    .fold(template.to_owned(), |text, (key, value)| {
        text.replace(key, value)
    })
}

/// What certgate does for an order in one state group (unissued or issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatePlan {
    pub rule: RuleId,
    pub summary: Text,
    pub steps: Vec<StepSpec>,
    /// The steps of a refund, where they differ from `steps` (a CA whose API asks for the
    /// money itself: Sectigo's `!AutoRefund`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_steps: Option<Vec<StepSpec>>,
    #[serde(default)]
    pub eta: Option<Eta>,
}

impl StatePlan {
    fn steps(&self, order: &Order) -> Vec<Step> {
        self.steps.iter().map(|s| s.step(order)).collect()
    }

    fn refund_steps(&self, order: &Order) -> Vec<Step> {
        self.refund_steps.as_ref().map_or_else(
            || self.steps(order),
            |s| s.iter().map(|s| s.step(order)).collect(),
        )
    }
}

/// A note said on every answer. A note that states a rule of its own (seed 003's
/// RSL-RESELLER-ONLY) carries that rule as data: the provider lists it among its rules, the note
/// as its summary. In providers.toml a note is a string, or `{ rule = "...", text = "..." }`
/// when it states a rule (a string ending in a rule id in parentheses, the older form, states
/// that rule too). It serializes as its text alone, the words every answer says: the
/// effective settings (and so each `policy_version`) keep their shape, and the rule shows in the
/// provider's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The rule this note states, if any.
    pub rule: Option<RuleId>,
    pub text: Text,
}

impl Note {
    /// A note that states no rule.
    pub const fn new(text: &'static str) -> Self {
        Note {
            rule: None,
            text: Text::Borrowed(text),
        }
    }

    /// A note that states `rule`.
    pub const fn stating(rule: RuleId, text: &'static str) -> Self {
        Note {
            rule: Some(rule),
            text: Text::Borrowed(text),
        }
    }
}

impl Serialize for Note {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Note {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The table form, `{ rule = "...", text = "..." }`.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stated {
            #[serde(default)]
            rule: Option<RuleId>,
            text: Text,
        }

        struct NoteVisitor;

        impl<'de> serde::de::Visitor<'de> for NoteVisitor {
            type Value = Note;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, or a table with text and the rule it states")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Note, E> {
                Ok(Note {
                    rule: legacy_rule(text),
                    text: Text::Owned(text.to_owned()),
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Note, A::Error> {
                let Stated { rule, text } =
                    Stated::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Note { rule, text })
            }
        }

        deserializer.deserialize_any(NoteVisitor)
    }
}

/// The rule a plain-string note names at its end, `... (RSL-RESELLER-ONLY).`: the form
/// providers.toml used before `{ rule, text }`, still read so that a config written that way
/// quotes as it did. Read once, when the config is; nothing else reads a note's words.
fn legacy_rule(note: &str) -> Option<RuleId> {
    let inner = note.trim_end_matches('.').strip_suffix(')')?;
    let id = &inner[inner.rfind('(')? + 1..];
    let shaped = id.contains('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    shaped.then(|| RuleId::from(id.to_owned()))
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
    pub notes: Vec<Note>,
}

impl BrandRules {
    /// Every step done by `procedure` (a brand whose own API can do all of them).
    pub fn with_procedure(mut self, procedure: Procedure) -> Self {
        for plan in [&mut self.unissued, &mut self.issued] {
            let refund = plan.refund_steps.iter_mut().flatten();
            for step in plan.steps.iter_mut().chain(refund) {
                step.procedure = procedure;
            }
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
        rules.extend(
            self.notes
                .iter()
                .filter_map(|n| n.rule.as_ref().map(|id| info(id, &n.text))),
        );
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
        let groups = [
            (
                "unissued",
                &self.unissued,
                &[Action::RejectApproval, Action::Cancel][..],
            ),
            (
                "issued",
                &self.issued,
                &[Action::Revoke, Action::RefundRequest][..],
            ),
        ];
        for (group, plan, wanted) in groups {
            let refund_wanted = [wanted, &[Action::RefundRequest]].concat();
            let lists = std::iter::once(("steps", &plan.steps, wanted)).chain(
                plan.refund_steps
                    .iter()
                    .map(|r| ("refund_steps", r, &refund_wanted[..])),
            );
            for (list, steps, wanted) in lists {
                if steps.is_empty() {
                    issues.push(ctx.issue(
                        &format!("settings.{group}.{list}"),
                        "must list at least one step",
                    ));
                }
                for (i, s) in steps.iter().enumerate() {
                    if !wanted.contains(&s.action) {
                        let names: Vec<_> = wanted.iter().map(|a| a.as_str()).collect();
                        issues.push(ctx.issue(
                            &format!("settings.{group}.{list}[{i}].action"),
                            format!(
                                "an {group} order takes {}, not {}",
                                names.join(" or "),
                                s.action.as_str()
                            ),
                        ));
                    }
                    if s.procedure == Procedure::Automated
                        && ctx.api.is_none()
                        && ctx.mode == crate::config::Mode::Api
                    {
                        issues.push(ctx.issue(
                            &format!("settings.{group}.{list}[{i}].procedure"),
                            "is automated but the provider has no [api] section",
                        ));
                    }
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
            .fold(decision, |d, note| d.note(note.text.clone())))
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
                    self.unissued.steps(order),
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
                // Revoking invalidates the certificate; money back is the refund intent.
                let d = Decision::allow(
                    self.issued.rule.clone(),
                    self.issued.steps(order),
                    Refund::none(currency),
                )
                .eta(self.issued.eta);
                match window {
                    Some((deadline, _)) if in_window && excluded.is_none() => d.note(format!(
                        "A refund is possible until {}: ask for intent refund instead ({}).",
                        crate::order::instant::format(&deadline),
                        self.refund_window.rule
                    )),
                    _ => d,
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
                            "The certificate is already revoked; ask the seller's support about its refund.",
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
                            self.unissued.refund_steps(order),
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
                            self.issued.refund_steps(order),
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
