//! DigiCert CertCentral (`digicert`), seed 004: cancel pending orders only, revoke once issued,
//! client-certificate approval and reissue rules, refunds of account-balance orders through
//! DigiCert Support. The rules live in [`policy`]; [`client`] speaks CertCentral's API, for
//! `digicert` and for the DigiCert-issued brands (`geotrust`, `thawte`, `symantec`).

pub mod client;
pub mod policy;

/// The `kind` of this plugin in providers.toml.
pub const KIND: &str = "digicert";

/// Adds this plugin's kind to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register(KIND, policy::build);
    builder.register_client(client::CLIENT, client::build);
}
