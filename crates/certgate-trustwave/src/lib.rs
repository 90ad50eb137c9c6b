//! Trustwave (`trustwave`) sold through a reseller platform, seed 003. Trustwave has no API
//! of its own: every step is a manual ticket to the platform's support, except that on the
//! platform's channel (`client = "opensrs"`) an unissued order is cancelled through the
//! platform's API. EV certificates are never refundable (RSL-TW-EV).
//! The rules live in [`policy`].

pub mod policy;

/// The `kind` of this plugin in providers.toml.
pub const KIND: &str = "trustwave";

/// Adds this plugin's kind to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register(KIND, policy::build);
}
