//! Alibaba Cloud SSL Certificates Service (`alibaba`): seeds 001 (refund table, newest), 000
//! (revocation) and 002 (older refund page). The rules live in [`policy`]; the refund window
//! (`refund_window_days`) and review ETA keep 002's older values configurable. [`client`] speaks
//! the CAS API (ACS3-HMAC-SHA256 signed RPC calls); it has no refund action, so refund requests
//! stay manual tickets.

pub mod client;
pub mod policy;

/// The `kind` of this plugin in providers.toml.
pub const KIND: &str = "alibaba";

/// Adds this plugin's kind to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register(KIND, policy::build);
    builder.register_client(client::CLIENT, client::build);
}
