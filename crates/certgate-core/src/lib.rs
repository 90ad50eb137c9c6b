//! certgate's domain and policy engine.
//!
//! Everything here is pure: order facts ([`order`]), money ([`money`]), the business-day
//! [`calendar`], the answer a quote gives ([`quote`]), the [`policy`] building blocks every CA
//! shares, the [`provider::Provider`] trait that each CA plugin implements, the provider
//! [`config`] (providers.toml) and the [`registry`] that maps a provider's `kind` to its plugin.
//! No HTTP server, database or HTTP client lives in this crate.

pub mod audit;
pub mod calendar;
pub mod client;
pub mod config;
pub mod event;
pub mod ledger;
pub mod lifecycle;
pub mod money;
pub mod operation;
pub mod order;
pub mod pace;
pub mod policy;
pub mod provider;
pub mod quote;
pub mod registry;
pub mod rule;
pub mod sweep;
pub mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod ticket;
pub mod validation;
pub mod watch;

pub use calendar::Calendar;
pub use client::{
    CaClient, CaMessage, CallFailure, Observation, OrderField, StepCall, StepOutcome,
};
pub use money::{Currency, Money};
pub use order::{Order, OrderState};
pub use provider::{PolicyInput, Provider};
pub use quote::{Intent, Quote};
pub use registry::{Registry, RegistryBuilder};
pub use rule::RuleId;
pub use tenant::TenantId;
pub use validation::{FieldError, InvalidInput};
