//! GeoTrust's rules: seed 003's reseller-platform rules for a DigiCert-issued brand
//! (`certgate_platform`). Through DigiCert's API pending orders are cancelled and
//! issued ones revoked; on the platform's channel pending orders are cancelled through its API
//! and issued ones in the supplier's portal (RSL-PORTAL). The refund follows within 48 hours;
//! refunds within 30 days of fulfilment (RSL-30D).

use certgate_core::config::ProviderContext;
use certgate_core::policy::brand::BrandRules;
use certgate_platform::IssuedPath;

/// GeoTrust's built-in rules (window, steps, ETA); providers.toml may tune the window.
/// On the platform's channel, issued orders take the portal steps instead.
pub fn rules(ctx: &ProviderContext<'_>) -> BrandRules {
    certgate_platform::rules(IssuedPath::Portal, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certgate_core::config::{Mode, ProviderContext};
    use certgate_core::policy::brand::BrandSettings;
    use certgate_core::quote::Intent;
    use certgate_core::testing::{at, decide, order, rules as cited, EXAMPLES_AS_OF};
    use serde_json::json;

    #[test]
    fn example_7_the_window_closed_thirty_days_after_fulfilment() {
        let ctx = ProviderContext {
            name: crate::KIND,
            mode: Mode::Manual,
            api: None,
        };
        let p = BrandSettings::build(&ctx, serde_json::Value::Null, rules(&ctx)).unwrap();
        let o = order(
            json!({"purchased_at": "2026-05-09T00:00:00Z", "issued_at": "2026-05-10T00:00:00Z"}),
        );
        let d = decide(p.as_ref(), &o, Intent::Refund, EXAMPLES_AS_OF);
        assert!(!d.allowed);
        assert_eq!(cited(&d), ["RSL-30D"]);
        assert_eq!(d.deadline, Some(at("2026-06-09T00:00:00Z")));
        assert_eq!(d.alternative, Some(Intent::Revoke));
    }
}
