use super::*;
use crate::event::{ConnInfo, Transaction};

/// Keeps the flow reports.
#[derive(Default)]
struct Reports(Vec<FlowReport>);

impl EventSink for Reports {
    fn emit(&mut self, _conn: &ConnInfo, _tx: Transaction) {
        panic!("flows make no transactions");
    }

    fn emit_flow(&mut self, report: &FlowReport) {
        self.0.push(report.clone());
    }
}

const S: u64 = 1_000_000_000;

fn settings() -> NetFlowSettings {
    NetFlowSettings {
        timeout: Duration::from_secs(30),
        period: Some(Duration::from_secs(10)),
        max_flows: 1000,
        delta: false,
        macs: true,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

/// A TCP packet at `ms` milliseconds from `a:pa` to `b:pb`, `len` bytes on the wire.
fn tcp(ms: u64, a: &str, pa: u16, b: &str, pb: u16, len: u32) -> FlowRec {
    let forward = a < b;
    FlowRec {
        ts: Ts(ms * 1_000_000),
        src: ip(a),
        dst: ip(b),
        sport: pa,
        dport: pb,
        transport: Transport::Tcp,
        icmp: [0, 0],
        icmp_id: None,
        wire_len: len,
        l2: L2 {
            macs: Some(if forward {
                (MAC_A, MAC_B)
            } else {
                (MAC_B, MAC_A)
            }),
            ..L2::default()
        },
    }
}

struct Run {
    flows: NetFlows,
    sink: Reports,
    counters: Counters,
    networks: Networks,
}

impl Run {
    fn new(s: NetFlowSettings) -> Run {
        Run {
            flows: NetFlows::new(s),
            sink: Reports::default(),
            counters: Counters::default(),
            networks: Networks::default(),
        }
    }

    fn packet(&mut self, r: FlowRec) {
        self.flows
            .packet(&r, &self.networks, &mut self.sink, &mut self.counters);
    }

    fn advance(&mut self, ns: u64) {
        self.flows
            .advance(Ts(ns), &self.networks, &mut self.sink, &mut self.counters);
    }

    fn flush(&mut self, ns: u64) {
        self.flows
            .flush_all(Ts(ns), &self.networks, &mut self.sink, &mut self.counters);
    }

    fn take(&mut self) -> Vec<FlowReport> {
        std::mem::take(&mut self.sink.0)
    }
}

#[test]
fn both_directions_count_into_one_flow_whose_source_sent_first() {
    let mut r = Run::new(settings());
    r.packet(tcp(1000, "10.0.0.2", 8080, "10.0.0.1", 40000, 74));
    r.packet(tcp(1001, "10.0.0.1", 40000, "10.0.0.2", 8080, 66));
    r.packet(tcp(1002, "10.0.0.2", 8080, "10.0.0.1", 40000, 100));
    assert_eq!(r.flows.len(), 1);
    r.flush(2 * S);
    let reports = r.take();
    assert_eq!(reports.len(), 1);
    let f = &reports[0];
    assert!(f.is_final);
    assert_eq!(f.at, Ts(2 * S));
    assert_eq!((f.first, f.last), (Ts(S), Ts(S + 2_000_000)));
    assert_eq!(f.source.ip, ip("10.0.0.2"));
    assert_eq!(f.source.port, Some(8080));
    assert_eq!(f.source.mac, Some(MAC_B));
    assert_eq!((f.source.packets, f.source.bytes), (2, 174));
    assert_eq!(f.destination.ip, ip("10.0.0.1"));
    assert_eq!(f.destination.mac, Some(MAC_A));
    assert_eq!((f.destination.packets, f.destination.bytes), (1, 66));
    assert!(f.destination.seen);
    assert_eq!(f.transport, Transport::Tcp);
    assert_eq!(r.counters.netflows_created, 1);
    assert_eq!(r.counters.netflow_packets, 3);
    assert_eq!(r.counters.netflow_reports, 1);
    assert!(r.flows.is_empty());
}

#[test]
fn every_flow_is_reported_at_each_multiple_of_the_period() {
    let mut r = Run::new(settings());
    r.packet(tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    r.packet(tcp(5_000, "10.0.0.1", 40001, "10.0.0.2", 80, 60));
    assert!(r.take().is_empty());
    // Crossing 10 s reports both flows there, oldest first, before counting this packet.
    r.packet(tcp(12_000, "10.0.0.1", 40000, "10.0.0.2", 80, 70));
    let at10 = r.take();
    assert_eq!(at10.len(), 2);
    assert!(at10.iter().all(|f| f.at == Ts(10 * S) && !f.is_final));
    assert_eq!(at10[0].source.port, Some(40000));
    assert_eq!(at10[0].source.packets, 1);
    assert_eq!(at10[1].source.port, Some(40001));
    assert!(!at10[0].destination.seen);
    // An idle flow is reported too.
    r.advance(20 * S);
    let at20 = r.take();
    assert_eq!(at20.len(), 2);
    assert_eq!(at20[0].source.packets, 2);
    assert_eq!(at20[0].last, Ts(12 * S));
    assert_eq!(at20[1].source.packets, 1);
    r.flush(25 * S);
    let last = r.take();
    assert_eq!(last.len(), 2);
    assert!(last.iter().all(|f| f.is_final && f.at == Ts(25 * S)));
}

#[test]
fn a_flow_ends_once_more_than_the_timeout_passed_since_its_last_packet() {
    let mut r = Run::new(NetFlowSettings {
        period: None,
        ..settings()
    });
    r.packet(tcp(3_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    // Exactly the timeout: still live.
    r.advance(33 * S);
    assert!(r.take().is_empty());
    r.advance(33 * S + 1);
    let ended = r.take();
    assert_eq!(ended.len(), 1);
    assert!(ended[0].is_final);
    assert_eq!(ended[0].at, Ts(33 * S));
    assert_eq!(r.counters.netflows_expired, 1);
    // The same five-tuple later is a new flow.
    r.packet(tcp(40_000, "10.0.0.2", 80, "10.0.0.1", 40000, 60));
    r.flush(41 * S);
    let again = r.take();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].source.ip, ip("10.0.0.2"));
    assert_eq!(r.counters.netflows_created, 2);
}

#[test]
fn flows_ended_before_a_report_instant_are_not_reported_there() {
    let mut r = Run::new(NetFlowSettings {
        timeout: Duration::from_secs(5),
        ..settings()
    });
    r.packet(tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    r.packet(tcp(9_000, "10.0.0.1", 40001, "10.0.0.2", 80, 60));
    r.advance(11 * S);
    let got = r.take();
    // The first ended at 6 s (final), the second is reported at 10 s.
    assert_eq!(got.len(), 2);
    assert!(got[0].is_final && got[0].at == Ts(6 * S));
    assert!(!got[1].is_final && got[1].at == Ts(10 * S));
}

#[test]
fn a_silent_input_across_report_instants_makes_one_report_at_the_latest() {
    let mut r = Run::new(NetFlowSettings {
        timeout: Duration::from_secs(3600),
        ..settings()
    });
    r.packet(tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    // A day later (or a hostile timestamp far in the future): one report.
    r.advance(86_400 * S + 5 * S);
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert!(got[0].is_final, "idle far beyond the timeout");
    r.packet(tcp(90_000_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    r.advance(u64::MAX);
    assert_eq!(r.take().len(), 1);
}

#[test]
fn without_a_period_only_final_reports_are_made() {
    let mut r = Run::new(NetFlowSettings {
        period: None,
        ..settings()
    });
    r.packet(tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    r.packet(tcp(25_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    r.advance(50 * S);
    assert!(r.take().is_empty());
    r.flush(50 * S);
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source.packets, 2);
}

#[test]
fn delta_reports_count_since_the_previous_report() {
    let mut r = Run::new(NetFlowSettings {
        delta: true,
        ..settings()
    });
    r.packet(tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60));
    r.packet(tcp(2_000, "10.0.0.2", 80, "10.0.0.1", 40000, 70));
    r.packet(tcp(11_000, "10.0.0.1", 40000, "10.0.0.2", 80, 80));
    let at10 = r.take();
    assert_eq!((at10[0].source.packets, at10[0].source.bytes), (1, 60));
    assert_eq!(at10[0].destination.bytes, 70);
    r.advance(20 * S);
    let at20 = r.take();
    assert_eq!((at20[0].source.packets, at20[0].source.bytes), (1, 80));
    // The destination sent nothing since, but it was seen: counts of zero.
    assert!(at20[0].destination.seen);
    assert_eq!(at20[0].destination.packets, 0);
}

#[test]
fn ethernet_addresses_and_vlans_tell_flows_apart_unless_told_not_to() {
    let mut a = tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60);
    let mut b = a;
    b.l2.macs = Some(([2, 0, 0, 0, 0, 0xc], MAC_B));
    let mut tagged = a;
    tagged.l2.vlans = [100, 0];
    tagged.l2.nvlans = 1;
    let mut r = Run::new(settings());
    for p in [a, b, tagged] {
        r.packet(p);
    }
    assert_eq!(r.flows.len(), 3);
    r.flush(2 * S);
    let got = r.take();
    assert_eq!(got[2].vlans, vec![100]);

    let mut r = Run::new(NetFlowSettings {
        macs: false,
        ..settings()
    });
    a.ts = Ts(S);
    for p in [a, b] {
        r.packet(p);
    }
    assert_eq!(r.flows.len(), 1);
    r.flush(2 * S);
    let got = r.take();
    assert_eq!(got[0].source.mac, None);
    assert_eq!(got[0].source.packets, 2);
    // Frames without Ethernet addresses (Linux cooked, raw IP): none reported.
    let mut r = Run::new(settings());
    let mut cooked = tcp(1_000, "10.0.0.1", 40000, "10.0.0.2", 80, 60);
    cooked.l2 = L2::default();
    r.packet(cooked);
    r.flush(2 * S);
    assert_eq!(r.take()[0].destination.mac, None);
}

fn icmp(ms: u64, a: &str, b: &str, ty: u8, id: Option<u16>) -> FlowRec {
    FlowRec {
        transport: Transport::Icmp,
        sport: 0,
        dport: 0,
        icmp: [ty, 0],
        icmp_id: id,
        ..tcp(ms, a, 0, b, 0, 98)
    }
}

#[test]
fn icmp_flows_are_keyed_by_their_identifier() {
    let mut r = Run::new(settings());
    r.packet(icmp(1_000, "10.0.0.1", "10.0.0.2", 8, Some(7)));
    r.packet(icmp(1_001, "10.0.0.2", "10.0.0.1", 0, Some(7)));
    r.packet(icmp(1_002, "10.0.0.1", "10.0.0.2", 8, Some(8)));
    // A port unreachable from the server: a flow of its own.
    r.packet(icmp(1_003, "10.0.0.2", "10.0.0.1", 3, None));
    assert_eq!(r.flows.len(), 3);
    r.flush(2 * S);
    let got = r.take();
    assert_eq!(got[0].icmp_id, Some(7));
    assert_eq!(got[0].icmp, Some((8, 0)), "the source's type and code");
    assert_eq!(got[0].source.port, None);
    assert_eq!((got[0].source.packets, got[0].destination.packets), (1, 1));
    assert_eq!(got[2].icmp, Some((3, 0)));
    assert_eq!(got[2].icmp_id, None);
    assert_eq!(got[2].source.ip, ip("10.0.0.2"));
}

#[test]
fn a_full_table_ends_the_least_recently_active_flow() {
    let mut r = Run::new(NetFlowSettings {
        max_flows: 2,
        ..settings()
    });
    r.packet(tcp(1_000, "10.0.0.1", 1, "10.0.0.2", 80, 60));
    r.packet(tcp(1_100, "10.0.0.1", 2, "10.0.0.2", 80, 60));
    r.packet(tcp(1_200, "10.0.0.1", 1, "10.0.0.2", 80, 60));
    r.packet(tcp(1_300, "10.0.0.1", 3, "10.0.0.2", 80, 60));
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source.port, Some(2));
    assert!(got[0].is_final);
    assert_eq!(r.counters.netflows_evicted, 1);
    assert_eq!(r.flows.len(), 2);
}

#[test]
fn a_flood_of_flows_stays_within_the_bound() {
    let mut r = Run::new(NetFlowSettings {
        max_flows: 500,
        ..settings()
    });
    for i in 0..200_000u64 {
        let a = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        // Time also runs backwards now and then: counted, never a panic.
        let ms = 1_000 + (i / 10) * if i % 7 == 0 { 0 } else { 1 };
        r.packet(tcp(ms, &a, (i % 60000) as u16, "10.255.0.1", 80, 60));
        assert!(r.flows.len() <= 500);
        assert!(r.flows.expiry_len() <= 2 * 500 + 1024 + 1);
    }
    assert_eq!(r.counters.netflow_packets, 200_000);
    r.sink.0.clear();
    r.flush(u64::MAX);
    assert_eq!(r.take().len(), 500);
}
