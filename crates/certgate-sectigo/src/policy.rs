//! Sectigo's rules: seed 003's reseller-platform rules, where issued orders go to support
//! (RSL-MANUAL). Every step can also be automated through Sectigo's reseller API, so in
//! `mode = "api"` they are; in the default `mode = "manual"` they are tickets.

use certgate_core::policy::brand::{BrandRules, IssuedPath};
use certgate_core::quote::Procedure;

/// Sectigo's built-in rules (window, steps, ETA).
pub fn rules() -> BrandRules {
    BrandRules::reseller(IssuedPath::SupportTicket).with_procedure(Procedure::Automated)
}
