//! Trustwave (`trustwave`) sold through a reseller platform, seed 003. Trustwave has no API:
//! every step is a manual ticket to the platform's support (`mode` must stay `manual`). EV
//! certificates are never refundable (RSL-TW-EV).
//! The rules live in [`policy`].

pub mod policy;

/// The `kind` of this plugin in providers.toml.
pub const KIND: &str = "trustwave";

/// Adds this plugin's kind to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register(KIND, policy::build);
}
