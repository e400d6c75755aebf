//! ICMP throughput through the whole datagram path of a worker: the messages of the
//! recorded ping captures (IPv4 echo, a fragmented echo, ICMPv6 neighbour discovery,
//! echo and an error) keyed, given their flows, paired and published, as a worker's
//! flow table takes them from the reader's batches.

use wirebeat::capture::file::FileSource;
use wirebeat::config::Config;
use wirebeat::decode::{Decoder, DefragLimits, L4};
use wirebeat::event::{ConnInfo, Transaction, Transport};
use wirebeat::flow::{FlowLimits, FlowTable, TcpPacket};
use wirebeat::protos::enabled;
use wirebeat::protos::testing::fixture;
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `(source, destination, version 6?, message)` of every ICMP message of a capture.
type Msg = (std::net::IpAddr, std::net::IpAddr, bool, Vec<u8>);

fn messages(name: &str) -> Vec<Msg> {
    let mut src = FileSource::open(&fixture(name)).expect("fixture");
    let mut dec = Decoder::new(DefragLimits::default());
    let mut counters = Counters::default();
    let mut out = Vec::new();
    while let Ok(Some(p)) = src.next_packet() {
        let Some(ip) = dec.decode(p.ts, p.linktype, p.data, p.orig_len, &mut counters) else {
            continue;
        };
        if let L4::Icmp(m) = &ip.l4 {
            out.push((ip.src, ip.dst, m.v6, m.data.to_vec()));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let cfg = Config::default();
    let mut msgs = messages("icmp/echo.pcap");
    msgs.extend(messages("icmp/v6.pcap"));
    assert!(msgs.len() >= 15);
    let bytes: usize = msgs.iter().map(|m| m.3.len()).sum();
    const ROUNDS: u64 = 100;
    let mut g = c.benchmark_group("icmp");
    g.throughput(Throughput::Bytes(bytes as u64 * ROUNDS));
    g.bench_function("echo_and_v6_x100", |b| {
        b.iter(|| {
            let mut table = FlowTable::new(enabled(&cfg), FlowLimits::default());
            let mut sink: Vec<(ConnInfo, Transaction)> = Vec::new();
            let mut counters = Counters::default();
            for round in 0..ROUNDS {
                for (i, (src, dst, v6, m)) in msgs.iter().enumerate() {
                    let p = TcpPacket {
                        ts: Ts(round * 1_000_000_000 + i as u64 * 1_000),
                        src: *src,
                        dst: *dst,
                        sport: 0,
                        dport: 0,
                        seq: 0,
                        ack: 0,
                        flags: 0,
                        payload: m,
                        missing: 0,
                        transport: Transport::icmp(*v6),
                    };
                    table.process_tcp(&p, &mut sink, &mut counters);
                }
                sink.clear();
            }
            assert_eq!(counters.icmp_messages, msgs.len() as u64 * ROUNDS);
            counters.transactions
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
