//! Shared pieces of certgate's benchmarks.

pub mod workload;
