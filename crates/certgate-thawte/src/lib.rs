//! Thawte (`thawte`), a DigiCert-issued brand sold through a reseller platform, seed 003:
//! a 30-day refund window; issued orders are cancelled through DigiCert's API, or on the
//! platform's channel in the supplier's portal (RSL-PORTAL). The rules live in [`policy`],
//! seed 003's in `certgate-platform`.

pub mod policy;

use certgate_core::policy::brand::BrandSettings;

/// The `kind` of this plugin in providers.toml.
pub const KIND: &str = "thawte";

/// Adds this plugin's kind to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register(KIND, BrandSettings::factory(policy::rules));
}
