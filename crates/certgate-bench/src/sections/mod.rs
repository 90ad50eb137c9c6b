//! The benchmark's sections, one module each, named as on the command line and in the report.
//! Each `run` measures its figures and adds them to the [`Report`](crate::report::Report).

pub mod http;
pub mod inflight;
pub mod ops;
pub mod pacing;
pub mod policy;
pub mod sweep;
pub mod watch;
