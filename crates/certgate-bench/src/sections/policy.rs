//! `policy`: quotes per second in-process on one core over the workload's 8-case mix, no
//! HTTP or store in the way (the ceiling every served quote is measured under).

use crate::report::Report;
use certgate_bench::workload;
use std::hint::black_box;
use std::time::{Duration, Instant};

pub fn run(report: &mut Report) {
    let registry = workload::registry();
    let cases = workload::cases();
    let entries: Vec<_> = cases
        .iter()
        .map(|c| registry.get(&c.provider).expect("configured").clone())
        .collect();
    let run = |budget: Duration| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget {
            for _ in 0..1_000 {
                let i = (n % cases.len() as u64) as usize;
                let c = &cases[i];
                let _ = black_box(entries[i].quote(black_box(&c.order), c.intent, c.as_of));
                n += 1;
            }
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    run(Duration::from_millis(300));
    let per_sec = run(Duration::from_secs(3));
    report.add(
        "policy",
        "quotes per second, in-process, one core (8-case mix)",
        format!("{per_sec:.0}/s"),
        ">= 1,000,000/s",
        Some(per_sec >= 1e6),
    );
}
