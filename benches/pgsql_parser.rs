//! PostgreSQL parse throughput on a realistic mix: the TCP payloads of the recorded
//! fixtures (pgbench prepared and extended runs, psycopg extended queries and a
//! pipeline, psql simple queries, errors, COPY and a 5000-row result), delivered
//! segment by segment through a buffer that behaves like the TCP engine's.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::bench_replay;
use wirebeat::config::Config;
use wirebeat::protos::factory;
use wirebeat::protos::testing::{Harness, conversations, fixture, test_conn};

const FIXTURES: &[&str] = &[
    "pgbench_prepared",
    "pgbench_extended",
    "python_extended",
    "python_pipeline",
    "simple",
    "errors",
    "copy",
    "multi_statement",
    "long_result",
];

fn bench(c: &mut Criterion) {
    let conn = test_conn(5432);
    let conns: Vec<_> = FIXTURES
        .iter()
        .flat_map(|n| conversations(&fixture(&format!("pgsql/{n}.pcap")), 5432))
        .collect();
    let total: usize = conns.iter().flat_map(|c| c.iter().map(|s| s.1.len())).sum();
    let factory = factory("pgsql", &Config::default()).expect("pgsql enabled");

    let mut g = c.benchmark_group("pgsql_parser");
    g.throughput(Throughput::Bytes(total as u64));
    let mut h = Harness::from_factory(factory.as_ref(), conn.clone());
    let run = |h: &mut Harness<_>| {
        let mut events = 0;
        for segs in &conns {
            h.restart(factory.new_parser(&conn));
            // Each segment whole, as captured.
            events += h.replay(segs, usize::MAX, 1);
        }
        events
    };
    bench_replay(&mut g, "fixture_mix", &mut h, run, |n| assert!(n > 0));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
