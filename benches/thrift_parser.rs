//! Thrift parse throughput on the recorded fixtures: the calculator conversation
//! (every call, a struct/list/set/map reply, a oneway call and an exception) in
//! unframed binary and framed compact, replayed as MSS-sized segments through a
//! buffer that behaves like the TCP engine's, with and without IDL names.

mod support;

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::bench_replay;
use wirebeat::config::Config;
use wirebeat::protos::testing::{Conversation, Harness, conversations, fixture, test_conn};
use wirebeat::protos::{Dir, factory};

const MSS: usize = 1448;
/// Copies of the conversation per connection.
const REPEAT: usize = 50;

/// The two directions' payloads of a one-connection capture.
fn streams(name: &str) -> [Vec<u8>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for conv in conversations(&fixture(&format!("thrift/{name}.pcap")), 9090) {
        for (dir, seg) in conv {
            out[dir.idx()].extend_from_slice(&seg);
        }
    }
    out
}

/// One connection: calls and replies interleaved in pieces of four MSS-sized
/// segments, as on a busy connection.
fn connection(calls: &[u8], replies: &[u8]) -> Conversation {
    calls
        .chunks(4 * MSS)
        .zip(replies.chunks(4 * MSS))
        .flat_map(|(c, r)| [(Dir::ToServer, c.to_vec()), (Dir::ToClient, r.to_vec())])
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conn = test_conn(9090);
    let mut g = c.benchmark_group("thrift_parser");
    for (name, idl) in [
        ("binary_socket", false),
        ("compact_framed", false),
        ("binary_socket", true),
    ] {
        let [c1, r1] = streams(name);
        let calls = c1.repeat(REPEAT);
        let replies = r1.repeat(REPEAT);
        let conv = connection(&calls, &replies);
        let mut cfg = Config::default();
        if idl {
            let f = root.join("scripts/fixtures/thrift/calc.thrift");
            cfg.protocols.thrift.idl_files = vec![f.to_string_lossy().into_owned()];
        }
        let factory = factory("thrift", &cfg).expect("thrift enabled");
        let mut h = Harness::from_factory(factory.as_ref(), conn.clone());
        // One connection through a fresh parser in MSS-sized segments.
        let run = |h: &mut Harness<_>| {
            h.restart(factory.new_parser(&conn));
            h.replay(&conv, MSS, 1)
        };
        g.throughput(Throughput::Bytes((calls.len() + replies.len()) as u64));
        let id = if idl {
            format!("{name}_idl")
        } else {
            name.to_string()
        };
        bench_replay(&mut g, &id, &mut h, run, |n| assert_eq!(n, 12 * REPEAT));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
