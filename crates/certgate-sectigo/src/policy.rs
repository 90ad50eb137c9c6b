//! Sectigo's rules: seed 003's reseller-platform rules, where issued orders go to support
//! (RSL-MANUAL). Every step can also be automated through Sectigo's reseller API, so in
//! `mode = "api"` they are; in the default `mode = "manual"` they are tickets.

use certgate_core::policy::brand::{BrandRules, IssuedPath};
use certgate_core::quote::Procedure;

/// Sectigo's built-in rules (window, steps, ETA).
pub fn rules() -> BrandRules {
    BrandRules::reseller(IssuedPath::SupportTicket).with_procedure(Procedure::Automated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::quote::Intent;
    use certgate_core::testing::{decide, order, EXAMPLES_AS_OF};
    use serde_json::json;

    #[test]
    fn every_step_is_automatable_and_cites_the_support_rule() {
        let rules = rules();
        let o = order(
            json!({"purchased_at": "2026-05-19T00:00:00Z", "issued_at": "2026-05-20T12:00:00Z"}),
        );
        let p = certgate_core::policy::brand::BrandProvider::build(
            &certgate_core::config::ProviderContext {
                name: "sectigo",
                mode: certgate_core::config::Mode::Manual,
                api: None,
            },
            rules,
        )
        .unwrap();
        let d = decide(p.as_ref(), &o, Intent::Refund, EXAMPLES_AS_OF);
        // In the provider's manual mode the registry turns these into tickets (see tests/).
        assert!(d.steps.iter().all(|s| s.procedure == Procedure::Automated));
        assert_eq!(
            d.rules.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            ["RSL-30D", "RSL-MANUAL"]
        );
    }
}
