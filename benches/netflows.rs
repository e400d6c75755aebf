//! Network flow accounting (`flows:`): packets counted into their flows as a worker
//! takes them from the reader's batches, at a gateway's scale: 4,000 TCP flows open
//! at once with Ethernet addresses, 256k packets over 20 s of packet time in a
//! scattered order, the default 10 s period (every flow reported twice) and 30 s
//! timeout, then the end of input. `count` only counts the reports; `encode` also
//! writes every flow event's JSON, as the worker's sink does.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use wirebeat::decode::L2;
use wirebeat::event::{AgentInfo, ConnInfo, EventEncoder, FlowReport, Transaction, Transport};
use wirebeat::flow::{EventSink, FlowLimits, FlowRec, FlowTable, NetFlowSettings};
use wirebeat::protos::ProtocolFactory;
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FLOWS: u64 = 4_000;
const PACKETS: u64 = 256 * 1024;

fn packets() -> Vec<FlowRec> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..PACKETS)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = x % FLOWS;
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + f as u32));
            let server = IpAddr::V4(Ipv4Addr::new(10, 255, 0, (f % 8) as u8));
            let to_server = x & 1 == 0;
            let (src, dst) = if to_server {
                (client, server)
            } else {
                (server, client)
            };
            let (sport, dport) = if to_server {
                (40_000 + (f % 20_000) as u16, 80)
            } else {
                (80, 40_000 + (f % 20_000) as u16)
            };
            let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            FlowRec {
                ts: Ts(1_700_000_000_000_000_000 + i * (20_000_000_000 / PACKETS)),
                src,
                dst,
                sport,
                dport,
                transport: Transport::Tcp,
                icmp: [0, 0],
                icmp_id: None,
                wire_len: 60 + (x % 1400) as u32,
                l2: L2 {
                    macs: Some(if to_server { (a, b) } else { (b, a) }),
                    ..L2::default()
                },
            }
        })
        .collect()
}

/// Counts reports, or encodes each as the worker's sink does.
struct Sink {
    encoder: Option<EventEncoder>,
    out: Vec<u8>,
    reports: u64,
}

impl EventSink for Sink {
    fn emit(&mut self, _conn: &ConnInfo, _tx: Transaction) {}

    fn emit_flow(&mut self, r: &FlowReport) {
        self.reports += 1;
        if let Some(e) = &self.encoder {
            self.out.clear();
            e.encode_flow(r, &mut self.out);
        }
    }
}

fn bench(c: &mut Criterion) {
    let recs = packets();
    let settings = NetFlowSettings {
        timeout: Duration::from_secs(30),
        period: Some(Duration::from_secs(10)),
        max_flows: 65_536,
        delta: false,
        macs: true,
    };
    let mut g = c.benchmark_group("netflows");
    g.throughput(Throughput::Elements(PACKETS));
    for encode in [false, true] {
        let name = if encode { "encode" } else { "count" };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut table = FlowTable::new(
                    Vec::<Arc<dyn ProtocolFactory>>::new(),
                    FlowLimits::default(),
                )
                .with_netflows(Some(settings));
                let mut sink = Sink {
                    encoder: encode
                        .then(|| EventEncoder::new(AgentInfo::new("bench".into(), vec![]))),
                    out: Vec::with_capacity(4096),
                    reports: 0,
                };
                let mut counters = Counters::default();
                for batch in recs.chunks(512) {
                    table.account(batch, &mut sink, &mut counters);
                }
                table.flush_all(&mut sink, &mut counters);
                assert_eq!(counters.netflow_packets, PACKETS);
                assert!(sink.reports >= 2 * FLOWS, "{}", sink.reports);
                sink.reports
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
