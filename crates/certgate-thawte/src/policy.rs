//! Thawte's rules: seed 003's reseller-platform rules for a DigiCert-issued brand
//! (`certgate_platform`). Through DigiCert's API pending orders are cancelled and
//! issued ones revoked; on the platform's channel pending orders are cancelled through its API
//! and issued ones in the supplier's portal (RSL-PORTAL). The refund follows within 48 hours;
//! refunds within 30 days of fulfilment (RSL-30D).

use certgate_core::config::ProviderContext;
use certgate_core::policy::brand::BrandRules;
use certgate_platform::IssuedPath;

/// Thawte's built-in rules (window, steps, ETA); providers.toml may tune the window.
/// On the platform's channel, issued orders take the portal steps instead.
pub fn rules(ctx: &ProviderContext<'_>) -> BrandRules {
    certgate_platform::rules(IssuedPath::Portal, ctx)
}
