//! The reseller platform of seed 003 (OpenSRS), as a client only: its Trust API client
//! ([`client`], the XML [`envelope`]). Orders bought on the platform are read
//! (`get_order_info`) and, while not issued, cancelled (`cancel_order`) through it; everything
//! else about them is a person's work (the portal steps, the platform's support), written out
//! for that person by the platform's rules in `certgate-platform`.

pub mod client;
pub mod envelope;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use client::{build, OpensrsClient, CLIENT};

/// Adds the platform's client (`api.client = "opensrs"`) to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register_client(CLIENT, build);
}
