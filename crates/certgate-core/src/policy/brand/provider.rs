//! The providers a [`BrandRules`] table makes: a brand plugin's (its built-in rules tuned by
//! [`BrandSettings`]) and kind `config`'s, whose settings name a [`Preset`] or are a whole
//! table.

use super::BrandRules;
use crate::config::{ConfigIssue, ProviderContext};
use crate::provider::{PolicyInput, Provider};
use crate::quote::Decision;
use crate::rule::RuleInfo;
use crate::validation::InvalidInput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The kind name of providers described entirely in providers.toml.
pub const CONFIG_KIND: &str = "config";

/// The settings key by which a `config` provider names a preset (`preset = "..."`).
pub const PRESET_KEY: &str = "preset";

/// A rule set a `config` provider may name instead of writing its whole table (the reseller
/// platform's, for a brand on it): its rules on the provider's channel.
pub type Preset = fn(&ProviderContext<'_>) -> BrandRules;

/// The presets a registry knows, by name.
pub type Presets = BTreeMap<&'static str, Preset>;

/// The factory of kind `config`. Its settings are either the short form, a preset's name
/// (`preset = "reseller-portal"`) and at most the keys of [`BrandSettings`] that tune it, or
/// the long form, a whole [`BrandRules`].
pub fn build_config(
    ctx: &ProviderContext<'_>,
    mut settings: serde_json::Value,
    presets: &Presets,
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let named = settings
        .as_object_mut()
        .and_then(|table| table.remove(PRESET_KEY));
    let Some(named) = named else {
        let rules: BrandRules = ctx.settings(settings)?;
        return BrandProvider::build(ctx, rules);
    };
    let preset = named.as_str().and_then(|name| presets.get(name));
    let Some(rules) = preset else {
        let known: Vec<_> = presets.keys().copied().collect();
        let known = if known.is_empty() {
            "none is registered".to_owned()
        } else {
            known.join(", ")
        };
        return Err(vec![ctx.issue(
            &format!("settings.{PRESET_KEY}"),
            format!("names no known preset ({named}); known presets: {known}"),
        )]);
    };
    BrandSettings::build(ctx, settings, rules(ctx))
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
