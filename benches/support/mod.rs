//! Shared by the parser benches (`mod support;`).

use std::hint::black_box;

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use wirebeat::protos::Parser;
use wirebeat::protos::testing::Harness;

/// Benchmarks `run`, one pass of the workload through `h` that returns how many
/// transactions it gave, as `id`, after one pass whose count must pass `check` and
/// that must see no errors.
pub fn bench_replay<P: Parser>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    h: &mut Harness<P>,
    mut run: impl FnMut(&mut Harness<P>) -> usize,
    check: impl FnOnce(usize),
) {
    check(run(h));
    assert_eq!(h.errors, 0);
    g.bench_function(id, |b| b.iter(|| black_box(run(h))));
}
