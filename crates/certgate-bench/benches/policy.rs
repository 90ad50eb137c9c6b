//! Criterion micro-benchmarks of the policy engine: one quote per provider family, and the
//! order validation every quote starts with.

use certgate_bench::workload;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn quotes(c: &mut Criterion) {
    let registry = workload::registry();
    let cases = workload::cases();
    let mut group = c.benchmark_group("quote");
    for case in &cases {
        let entry = registry.get(&case.provider).expect("a configured provider");
        group.bench_function(&case.name, |b| {
            b.iter(|| black_box(entry.quote(black_box(&case.order), case.intent, case.as_of)))
        });
    }
    group.finish();
    let order = &cases[0].order;
    c.bench_function("order.validate", |b| b.iter(|| black_box(order).validate()));
}

criterion_group!(benches, quotes);
criterion_main!(benches);
