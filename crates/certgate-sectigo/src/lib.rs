//! Sectigo (`sectigo`) sold through a reseller platform, seed 003: a 30-day refund window;
//! issued orders are cancelled and refunded by a support ticket (RSL-MANUAL) unless the reseller
//! configures Sectigo's own API (`mode = "api"`: `!AutoRefund`, `!AutoRevokeSSL`, and
//! `CollectSSL` to read an order); on the platform's channel (`client = "opensrs"`) unissued
//! orders are cancelled through the platform's API.
//! The rules live in [`policy`].

pub mod client;
pub mod policy;

use certgate_core::policy::brand::BrandSettings;

/// The `kind` of this plugin in providers.toml.
pub const KIND: &str = "sectigo";

/// Adds this plugin's kind to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register(KIND, |ctx, settings| {
        BrandSettings::build(ctx, settings, policy::rules(ctx))
    });
    builder.register_client(client::CLIENT, client::build);
}
