//! Thrift parse throughput on the recorded fixtures: the calculator conversation
//! (every call, a struct/list/set/map reply, a oneway call and an exception) in
//! unframed binary and framed compact, replayed as MSS-sized segments through a
//! buffer that behaves like the TCP engine's, with and without IDL names.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wirebeat::capture::file::FileSource;
use wirebeat::config::Config;
use wirebeat::decode::{Decoder, DefragLimits, L4};
use wirebeat::event::{ConnInfo, Transaction, Transport};
use wirebeat::protos::{Ctx, Dir, Parser, Progress, ProtocolFactory};
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

const MSS: usize = 1448;
/// Copies of the conversation per connection.
const REPEAT: usize = 50;

/// The two directions' payloads of a one-connection capture.
fn streams(path: &Path) -> [Vec<u8>; 2] {
    let mut src = FileSource::open(path).expect("open fixture");
    let mut d = Decoder::new(DefragLimits {
        max_datagrams: 16,
        max_bytes: 1 << 20,
        timeout: std::time::Duration::from_secs(30),
    });
    let mut c = Counters::default();
    let mut out = [Vec::new(), Vec::new()];
    while let Some(p) = src.next_packet().expect("read fixture") {
        if let Some(ip) = d.decode(p.ts, p.linktype, p.data, p.orig_len, &mut c)
            && let L4::Tcp(t) = &ip.l4
        {
            let dir = if t.dst_port == 9090 { 0 } else { 1 };
            out[dir].extend_from_slice(t.payload);
        }
    }
    out
}

fn feed(p: &mut dyn Parser, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>, buf: &mut Vec<u8>) {
    for seg in data.chunks(MSS) {
        let consumed = if buf.is_empty() {
            match p.parse(dir, seg, ctx) {
                Progress::Consumed { consumed, .. } => {
                    buf.extend_from_slice(&seg[consumed..]);
                    continue;
                }
                _ => 0,
            }
        } else {
            buf.extend_from_slice(seg);
            match p.parse(dir, buf, ctx) {
                Progress::Consumed { consumed, .. } => consumed,
                _ => buf.len(),
            }
        };
        buf.drain(..consumed);
    }
}

fn run(factory: &dyn ProtocolFactory, conn: &ConnInfo, calls: &[u8], replies: &[u8]) -> usize {
    let mut p = factory.new_parser(conn);
    let mut out: Vec<Transaction> = Vec::new();
    let mut counters = Counters::default();
    let mut ctx = Ctx::new(Ts(1), &mut out, &mut counters);
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    // Calls and replies interleaved in MSS-sized halves, as on a busy connection.
    for (c, r) in calls.chunks(4 * MSS).zip(replies.chunks(4 * MSS)) {
        feed(p.as_mut(), Dir::ToServer, c, &mut ctx, &mut b0);
        feed(p.as_mut(), Dir::ToClient, r, &mut ctx, &mut b1);
    }
    p.close(&mut ctx);
    out.len()
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conn = ConnInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
        9090,
        Transport::Tcp,
    );
    let mut g = c.benchmark_group("thrift_parser");
    for (name, idl) in [
        ("binary_socket", false),
        ("compact_framed", false),
        ("binary_socket", true),
    ] {
        let [c1, r1] = streams(&root.join(format!("tests/pcaps/thrift/{name}.pcap")));
        let calls = c1.repeat(REPEAT);
        let replies = r1.repeat(REPEAT);
        let mut cfg = Config::default();
        if idl {
            let f = root.join("scripts/fixtures/thrift/calc.thrift");
            cfg.protocols.thrift.idl_files = vec![f.to_string_lossy().into_owned()];
        }
        let factory = wirebeat::protos::factory("thrift", &cfg).expect("thrift enabled");
        assert_eq!(run(factory.as_ref(), &conn, &calls, &replies), 12 * REPEAT);
        g.throughput(Throughput::Bytes((calls.len() + replies.len()) as u64));
        let id = if idl {
            format!("{name}_idl")
        } else {
            name.to_string()
        };
        g.bench_function(id, |b| {
            b.iter(|| black_box(run(factory.as_ref(), &conn, &calls, &replies)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
