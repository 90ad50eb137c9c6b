//! The pace of each CA account (`api.rate_limits`, shared by the providers on one account),
//! decided here, fed the clock: every function takes `now` and none reads a clock, sleeps or
//! does I/O. The engine's `pacing` is the driver: it reads its clock, keeps each account's
//! [`Pace`] behind a lock, sleeps, and asks the shared store (Postgres) when told to.
//!
//! - [`window`]: the sliding-window arithmetic over the instants calls were sent (also run by
//!   the store over every gateway's sends).
//! - [`learning`]: what throttling teaches (pauses, probing, a learnt limit).
//! - [`account`]: one account's state: its sends, waiting operations and their places in line,
//!   and its figures for `/metrics`.

pub mod account;
pub mod learning;
pub mod window;

pub use account::{Admission, Pace, PaceStats, Step};
pub use learning::Learning;
pub use window::{admit, padded, prune, Admit, Window};

#[cfg(test)]
mod tests;
