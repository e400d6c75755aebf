//! DNS throughput over UDP: the query/answer pairs of the recorded dnsmasq capture
//! (every record kind, EDNS), each message one datagram handed to the parser as the
//! engine's UDP flows hand it, pairs published as transactions.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wirebeat::capture::file::FileSource;
use wirebeat::config::Config;
use wirebeat::decode::{Decoder, DefragLimits, L4};
use wirebeat::event::{ConnInfo, Transport};
use wirebeat::protos::testing::fixture;
use wirebeat::protos::{Ctx, Dir, factory};
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

/// The UDP DNS messages of a capture, with their direction.
fn messages(name: &str) -> Vec<(Dir, Vec<u8>)> {
    let mut src = FileSource::open(&fixture(name)).expect("fixture");
    let mut dec = Decoder::new(DefragLimits::default());
    let mut counters = Counters::default();
    let mut out = Vec::new();
    while let Ok(Some(p)) = src.next_packet() {
        let Some(ip) = dec.decode(p.ts, p.linktype, p.data, p.orig_len, &mut counters) else {
            continue;
        };
        if let L4::Udp(u) = &ip.l4 {
            let dir = if u.dst_port == 53 {
                Dir::ToServer
            } else {
                Dir::ToClient
            };
            out.push((dir, u.payload.to_vec()));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let cfg = Config::default();
    let factory = factory("dns", &cfg).expect("dns enabled");
    let conn = ConnInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        53,
        Transport::Udp,
    );
    let msgs = messages("dns/udp_records.pcap");
    assert!(msgs.len() >= 20);
    let bytes: usize = msgs.iter().map(|(_, m)| m.len()).sum();
    let mut g = c.benchmark_group("dns");
    g.throughput(Throughput::Bytes(bytes as u64 * 100));
    g.bench_function("udp_records_x100", |b| {
        b.iter(|| {
            let mut parser = factory.new_parser(&conn);
            let (mut out, mut counters) = (Vec::new(), Counters::default());
            for round in 0..100u64 {
                for (dir, m) in &msgs {
                    let mut ctx = Ctx::new(Ts(round * 1_000_000), &mut out, &mut counters);
                    parser.parse(*dir, m, &mut ctx);
                }
                out.clear();
            }
            assert_eq!(counters.transactions, msgs.len() as u64 / 2 * 100);
            counters.transactions
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
