//! The reseller platform of seed 003 (OpenSRS): its Trust API client ([`client`], the XML
//! [`envelope`]) and its rules by channel ([`platform`]). Orders bought on the platform are
//! read (`get_order_info`) and, while not issued, cancelled (`cancel_order`) through it;
//! everything else about them is a person's work (the portal steps, the platform's support),
//! written out for that person.

pub mod client;
pub mod envelope;
pub mod platform;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use client::{build, OpensrsClient, CLIENT};

/// Adds the platform's client (`api.client = "opensrs"`) to a registry.
pub fn register(builder: &mut certgate_core::RegistryBuilder) {
    builder.register_client(CLIENT, build);
}
