//! PostgreSQL parse throughput on a realistic mix: the TCP payloads of the recorded
//! fixtures (pgbench prepared and extended runs, psycopg extended queries and a
//! pipeline, psql simple queries, errors, COPY and a 5000-row result), delivered
//! segment by segment through a buffer that behaves like the TCP engine's.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wirebeat::capture::file::FileSource;
use wirebeat::config::Config;
use wirebeat::decode::{Decoder, DefragLimits, L4};
use wirebeat::event::{ConnInfo, Transaction, Transport};
use wirebeat::flow::AppBuffer;
use wirebeat::flow::reassembly::Chunk;
use wirebeat::protos::{Ctx, Dir, Parser};
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

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

/// Payload segments of one connection, in capture order.
type Segments = Vec<(Dir, Vec<u8>)>;

/// Payload segments of every connection of a fixture.
fn segments(name: &str) -> Vec<Segments> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pcaps/pgsql")
        .join(format!("{name}.pcap"));
    let mut src = FileSource::open(&path).expect("open fixture");
    let mut dec = Decoder::new(DefragLimits {
        max_datagrams: 16,
        max_bytes: 1 << 20,
        timeout: std::time::Duration::from_secs(30),
    });
    let mut counters = Counters::default();
    let mut conns: Vec<(u16, Segments)> = Vec::new();
    while let Some(p) = src.next_packet().expect("read fixture") {
        let Some(ip) = dec.decode(p.ts, p.linktype, p.data, p.orig_len, &mut counters) else {
            continue;
        };
        let L4::Tcp(t) = &ip.l4 else { continue };
        if t.payload.is_empty() {
            continue;
        }
        let (dir, port) = if t.dst_port == 5432 {
            (Dir::ToServer, t.src_port)
        } else {
            (Dir::ToClient, t.dst_port)
        };
        let seg = (dir, t.payload.to_vec());
        match conns.iter_mut().find(|c| c.0 == port) {
            Some(c) => c.1.push(seg),
            None => conns.push((port, vec![seg])),
        }
    }
    conns.into_iter().map(|c| c.1).collect()
}

/// Hands one segment to the parser through the engine's own buffering.
fn deliver(
    p: &mut dyn Parser,
    dir: Dir,
    buf: &mut AppBuffer,
    seg: &[u8],
    conn: &ConnInfo,
    ctx: &mut Ctx<'_>,
) {
    buf.deliver(p, dir, Chunk::Data(seg), 1 << 20, conn, ctx);
}

fn bench(c: &mut Criterion) {
    let conn = ConnInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
        5432,
        Transport::Tcp,
    );
    let conns: Vec<_> = FIXTURES.iter().flat_map(|n| segments(n)).collect();
    let total: usize = conns.iter().flat_map(|c| c.iter().map(|s| s.1.len())).sum();
    let factory = wirebeat::protos::factory("pgsql", &Config::default()).expect("pgsql enabled");

    let mut g = c.benchmark_group("pgsql_parser");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("fixture_mix", |b| {
        let mut out: Vec<Transaction> = Vec::with_capacity(256);
        let mut counters = Counters::default();
        let mut pending = [AppBuffer::default(), AppBuffer::default()];
        b.iter(|| {
            for segs in &conns {
                let mut p = factory.new_parser(&conn);
                let mut ctx = Ctx::new(Ts(1), &mut out, &mut counters);
                for (dir, seg) in segs {
                    let buf = &mut pending[dir.idx()];
                    deliver(p.as_mut(), *dir, buf, seg, &conn, &mut ctx);
                }
                p.close(&mut ctx);
                pending[0] = AppBuffer::default();
                pending[1] = AppBuffer::default();
            }
            black_box(out.len());
            out.clear();
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
