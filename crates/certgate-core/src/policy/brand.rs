//! A policy as a table ([`BrandRules`]): a refund window, exclusions, and what certgate does
//! for an unissued and for an issued order. The brand plugins build theirs (seed 003's rules
//! live in `certgate-opensrs`); a provider of kind `config` reads its whole table from
//! providers.toml (that is how `symantec` exists).

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
use std::sync::Arc;

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
        rules.extend(self.notes.iter().filter_map(|n| {
            cited(n).map(|id| RuleInfo {
                id,
                summary: n.clone(),
            })
        }));
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

/// The rule a note names at its end, `... (RSL-RESELLER-ONLY).`: the note states that rule.
fn cited(note: &str) -> Option<RuleId> {
    let inner = note.trim_end_matches('.').strip_suffix(')')?;
    let id = &inner[inner.rfind('(')? + 1..];
    let shaped = id.contains('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    shaped.then(|| RuleId::from(id.to_owned()))
}

/// The kind name of providers described entirely in providers.toml.
pub const CONFIG_KIND: &str = "config";

/// The factory of kind `config`: the provider's settings are a whole [`BrandRules`].
pub fn build_config(
    ctx: &ProviderContext<'_>,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let rules: BrandRules = ctx.settings(settings)?;
    BrandProvider::build(ctx, rules)
}

/// A provider whose policy is a [`BrandRules`]: the brand plugins and `config` providers.
#[derive(Debug)]
pub struct BrandProvider {
    rules: BrandRules,
}

impl BrandProvider {
    /// Validates `rules` and builds the provider.
    pub fn build(
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
    /// The factory of a brand plugin whose built-in rules (on the provider's channel) are
    /// `rules(ctx)`.
    pub fn factory(
        rules: fn(&ProviderContext<'_>) -> BrandRules,
    ) -> impl Fn(
        &ProviderContext<'_>,
        serde_json::Value,
    ) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>>
           + Send
           + Sync
           + 'static {
        move |ctx, settings| BrandSettings::build(ctx, settings, rules(ctx))
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
        BrandProvider::build(ctx, rules).map_err(|issues| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::testing::{at, decide, order, pending, rules, EXAMPLES_AS_OF};
    use serde_json::json;

    /// A table like a reseller brand's: 30 days from fulfilment, cancel while unissued,
    /// revoke once issued (automated), one note that cites its rule.
    fn table() -> BrandRules {
        serde_json::from_value(json!({
            "refund_window": {"rule": "T-30D", "summary": "30 days", "days": 30},
            "unissued": {"rule": "T-UNISSUED", "summary": "cancel",
                         "steps": [{"action": "cancel", "procedure": "automated"}]},
            "issued": {"rule": "T-ISSUED", "summary": "revoke",
                       "steps": [{"action": "revoke", "procedure": "manual_ticket",
                                  "ticket_fields": ["supplier_order_id"],
                                  "instructions": ["Revoke {supplier_order_id} ({common_name})."]}]},
            "notes": ["Only the reseller may ask (T-ONLY)."]
        }))
        .unwrap()
    }

    fn provider(rules: BrandRules) -> BrandProvider {
        BrandProvider { rules }
    }

    #[test]
    fn steps_carry_their_instructions_filled_from_the_order() {
        let o = order(json!({"supplier_order_id": "S-1", "issued_at": "2026-06-01T00:00:00Z"}));
        let d = decide(&provider(table()), &o, Intent::Refund, EXAMPLES_AS_OF);
        assert_eq!(d.steps[0].instructions, ["Revoke S-1 (shop.example.com)."]);
        let o = order(json!({"supplier_order_id": null, "issued_at": "2026-06-01T00:00:00Z"}));
        let d = decide(&provider(table()), &o, Intent::Refund, EXAMPLES_AS_OF);
        assert_eq!(
            d.steps[0].instructions,
            ["Revoke (not given) (shop.example.com)."]
        );
    }

    #[test]
    fn a_note_that_names_a_rule_lists_it() {
        let ids: Vec<_> = table()
            .rule_infos()
            .into_iter()
            .map(|r| r.id.as_str().to_owned())
            .collect();
        assert!(ids.contains(&"T-ONLY".to_owned()), "{ids:?}");
        assert_eq!(cited("No rule here (see above)."), None);
    }

    #[test]
    fn a_submit_margin_steps_back_business_days() {
        let mut rules = table();
        rules.refund_window.submit_margin_business_days = 2;
        // Deadline Sat 2026-06-20 00:00: two business days back is Thu 2026-06-18 00:00.
        let d = decide(
            &provider(rules),
            &order(
                json!({"purchased_at": "2026-01-01T00:00:00Z", "issued_at": "2026-05-21T00:00:00Z"}),
            ),
            Intent::Refund,
            "2026-06-18T00:00:01Z",
        );
        assert_eq!(d.submit_by, Some(at("2026-06-18T00:00:00Z")));
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn a_purchase_anchored_window_applies_to_unissued_orders() {
        let mut rules = table();
        rules.refund_window.anchor = Anchor::PurchasedAt;
        rules.refund_window.days = 5;
        let o = order(pending("2026-06-01T00:00:00Z"));
        let d = decide(&provider(rules), &o, Intent::Refund, EXAMPLES_AS_OF);
        assert!(!d.allowed);
        assert_eq!(d.alternative, Some(Intent::Cancel));
        assert_eq!(self::rules(&d), ["T-30D"]);
    }

    #[test]
    fn config_rules_are_validated_with_their_keys() {
        let ctx = ProviderContext {
            name: "acme",
            mode: Mode::Api,
            api: None,
        };
        let mut bad = table();
        bad.refund_window.days = 0;
        bad.issued.steps[0].action = Action::Cancel;
        bad.issued.steps[0].procedure = Procedure::Automated;
        bad.exclusions.push(Exclusion {
            rule: RuleId::new("X"),
            summary: "".into(),
            validation: None,
            kind: None,
            free: None,
        });
        let keys: Vec<_> = BrandProvider::build(&ctx, bad)
            .unwrap_err()
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(
            keys,
            [
                "providers.acme.settings.refund_window.days",
                "providers.acme.settings.exclusions[0]",
                "providers.acme.settings.unissued.steps[0].procedure",
                "providers.acme.settings.issued.steps[0].action",
                "providers.acme.settings.issued.steps[0].procedure",
            ]
        );
    }

    #[test]
    fn a_config_provider_reads_its_whole_policy_from_settings() {
        let ctx = ProviderContext {
            name: "acme",
            mode: Mode::Manual,
            api: None,
        };
        let settings = serde_json::to_value(table()).unwrap();
        let p = build_config(&ctx, settings.clone()).unwrap();
        assert_eq!(p.settings(), settings);
        let mut unknown = settings;
        unknown["issued"]["colour"] = json!("blue");
        let err = build_config(&ctx, unknown).unwrap_err();
        assert_eq!(err[0].key, "providers.acme.settings.issued.colour");
    }

    #[test]
    fn brand_settings_tune_the_window() {
        let ctx = ProviderContext {
            name: "geo",
            mode: Mode::Manual,
            api: None,
        };
        let p = BrandSettings::build(&ctx, json!({"refund_window_days": 45}), table()).unwrap();
        assert_eq!(p.settings()["refund_window"]["days"], 45);
        let err =
            BrandSettings::build(&ctx, json!({"refund_window_days": 0}), table()).unwrap_err();
        assert_eq!(err[0].key, "providers.geo.settings.refund_window_days");
        let err = BrandSettings::build(&ctx, json!({"window": 1}), table()).unwrap_err();
        assert_eq!(err[0].key, "providers.geo.settings.window");
    }
}
