//! Engine tests with a line protocol: each `\n`-terminated line from the client is a
//! request, each line from the server a response.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::event::Status;
use crate::protos::ProtocolFactory;
use crate::protos::pairing::{Exchange, Limits, Message, Pairing, Wire};

struct Line(Wire, String);
impl Message for Line {
    fn wire(&self) -> &Wire {
        &self.0
    }
}

struct LineEx;
impl Exchange for LineEx {
    const PROTOCOL: &'static str = "line";
    type Request = Line;
    type Response = Line;
    fn fill(&self, tx: &mut Transaction, req: Option<Line>, resp: Option<Line>) {
        tx.query = req.map(|r| r.1);
        tx.response = resp.map(|r| r.1);
    }
}

struct LineParser {
    pairing: Pairing<Line>,
    /// Says it is idle when nothing waits (the UDP flows then end at once).
    report_idle: bool,
    lossy: [bool; 2],
    /// Returned `Progress::Stop`: the engine must never call again.
    stopped: bool,
}

impl LineParser {
    fn check_running(&self) {
        assert!(!self.stopped, "parser called after it stopped");
    }
}

impl Parser for LineParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        self.check_running();
        let mut consumed = 0;
        while let Some(nl) = data[consumed..].iter().position(|&b| b == b'\n') {
            let line = &data[consumed..consumed + nl];
            if line == b"GARBAGE" {
                return Progress::Error;
            }
            if line == b"UPGRADE" {
                self.stopped = true;
                return Progress::Stop;
            }
            let ts = ctx.start_ts(consumed);
            let mut text = String::from_utf8_lossy(line).into_owned();
            if std::mem::take(&mut self.lossy[dir.idx()]) {
                text.insert_str(0, "[lossy]");
            }
            let wire = Wire {
                ts,
                bytes: nl as u64 + 1,
                loss: false,
            };
            let msg = Line(wire, text);
            match dir {
                Dir::ToServer => self.pairing.request(&LineEx, msg, ctx),
                Dir::ToClient => self.pairing.response(&LineEx, msg, ctx),
            }
            consumed += nl + 1;
        }
        Progress::Consumed { consumed, need: 0 }
    }

    fn gap(&mut self, dir: Dir, _len: u64, _ctx: &mut Ctx<'_>) {
        self.check_running();
        self.lossy[dir.idx()] = true;
    }

    fn fin(&mut self, _dir: Dir, _ctx: &mut Ctx<'_>) {
        self.check_running();
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        self.check_running();
        self.pairing.expire(&LineEx, now, ctx);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.pairing.drain(&LineEx, ctx);
    }

    fn idle(&self) -> bool {
        self.report_idle && self.pairing.is_empty()
    }
}

/// A line parser with a 10 s transaction timeout.
fn line_parser(report_idle: bool) -> Box<dyn Parser> {
    Box::new(LineParser {
        pairing: Pairing::new(Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        }),
        lossy: [false, false],
        stopped: false,
        report_idle,
    })
}

struct LineFactory;
impl ProtocolFactory for LineFactory {
    fn name(&self) -> &'static str {
        "line"
    }
    fn ports(&self) -> &[u16] {
        &[7777]
    }
    fn connection_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn max_buffer(&self) -> usize {
        64
    }
    fn new_parser(&self, _conn: &ConnInfo) -> Box<dyn Parser> {
        line_parser(false)
    }
}

const C: &str = "10.0.0.1";
const S: &str = "10.0.0.2";

struct Sim {
    table: FlowTable,
    out: Vec<(ConnInfo, Transaction)>,
    counters: Counters,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            table: FlowTable::new(
                vec![Arc::new(LineFactory) as Arc<dyn ProtocolFactory>],
                FlowLimits::default(),
            ),
            out: vec![],
            counters: Counters::default(),
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn pkt(&mut self, ms: u64, to_server: bool, seq: u32, ack: u32, flags: u8, data: &[u8]) {
        let (src, dst, sport, dport) = if to_server {
            (C, S, 40000, 7777)
        } else {
            (S, C, 7777, 40000)
        };
        let p = TcpPacket {
            ts: Ts(ms * 1_000_000),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport,
            dport,
            seq,
            ack,
            flags,
            payload: data,
            missing: 0,
            transport: Transport::Tcp,
        };
        self.table
            .process_tcp(&p, &mut self.out, &mut self.counters);
    }
    fn queries(&self) -> Vec<(Option<String>, Option<String>, Status)> {
        self.out
            .iter()
            .map(|(_, t)| (t.query.clone(), t.response.clone(), t.status))
            .collect()
    }
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn handshake_pipelining_and_close() {
    let mut sim = Sim::new();
    sim.pkt(0, true, 100, 0, TCP_SYN, b"");
    sim.pkt(1, false, 500, 101, TCP_SYN | TCP_ACK, b"");
    sim.pkt(2, true, 101, 501, TCP_ACK, b"a\nb\n");
    sim.pkt(3, false, 501, 105, TCP_ACK, b"A\n");
    sim.pkt(4, false, 503, 105, TCP_ACK, b"B");
    sim.pkt(5, false, 504, 105, TCP_ACK, b"\n");
    sim.pkt(6, true, 105, 506, TCP_ACK | TCP_FIN, b"");
    sim.pkt(7, false, 505, 106, TCP_ACK | TCP_FIN, b"");
    assert_eq!(
        sim.queries(),
        vec![(s("a"), s("A"), Status::Ok), (s("b"), s("B"), Status::Ok)]
    );
    let (conn, tx) = &sim.out[1];
    assert_eq!(conn.client_port, 40000);
    assert_eq!(tx.start, Ts(2_000_000));
    assert_eq!(tx.end, Some(Ts(4_000_000)));
    assert!(sim.table.is_empty(), "flow closed after FIN both ways");
    assert_eq!(sim.counters.flows_closed, 1);
}

#[test]
fn out_of_order_and_duplicates_are_reassembled() {
    let mut sim = Sim::new();
    sim.pkt(0, true, 100, 0, TCP_SYN, b"");
    sim.pkt(1, true, 105, 0, TCP_ACK, b"o\n"); // ahead
    sim.pkt(2, true, 101, 0, TCP_ACK, b"hel"); // fills up to 104
    sim.pkt(3, true, 101, 0, TCP_ACK, b"hel"); // duplicate
    sim.pkt(4, true, 104, 0, TCP_ACK, b"l"); // fills the hole
    sim.pkt(5, false, 900, 108, TCP_ACK, b"ok\n");
    assert_eq!(sim.queries(), vec![(s("hello"), s("ok"), Status::Ok)]);
    assert_eq!(sim.counters.tcp_retransmits, 1);
}

#[test]
fn hole_acked_by_peer_is_a_gap() {
    let mut sim = Sim::new();
    sim.pkt(0, true, 1, 0, TCP_ACK, b"one\n");
    sim.pkt(1, true, 9, 0, TCP_ACK, b"three\n"); // "two\n" (5..9) lost
    sim.pkt(2, false, 70, 15, TCP_ACK, b"1\n"); // server acks everything
    sim.pkt(3, false, 72, 15, TCP_ACK, b"3\n");
    assert_eq!(sim.counters.tcp_gaps, 1);
    assert_eq!(sim.counters.tcp_gap_bytes, 4);
    assert_eq!(
        sim.queries(),
        vec![
            (s("one"), s("1"), Status::Ok),
            (s("[lossy]three"), s("3"), Status::Ok)
        ]
    );
}

#[test]
fn mid_stream_pickup_unmatched_and_timeout() {
    let mut sim = Sim::new();
    // No handshake: the server's answer to a request we never saw.
    sim.pkt(0, false, 5000, 77, TCP_ACK, b"orphan\n");
    sim.pkt(1, true, 77, 5007, TCP_ACK, b"q\n");
    // Nothing for 11 s: the idle connection expires and the request is unmatched.
    sim.pkt(12_000, true, 1, 0, TCP_ACK, b""); // unrelated bare ACK just moves the clock
    let other = TcpPacket {
        ts: Ts(13_000_000_000),
        src: "10.9.9.9".parse().unwrap(),
        dst: S.parse().unwrap(),
        sport: 1,
        dport: 7777,
        seq: 0,
        ack: 0,
        flags: TCP_ACK,
        payload: b"x",
        missing: 0,
        transport: Transport::Tcp,
    };
    sim.table
        .process_tcp(&other, &mut sim.out, &mut sim.counters);
    let q = sim.queries();
    assert_eq!(q[0], (None, s("orphan"), Status::Error));
    assert_eq!(q[1], (s("q"), None, Status::Error));
    assert_eq!(sim.out[1].1.notes, vec!["Unmatched request".to_string()]);
    assert_eq!(sim.counters.flows_expired, 1);
}

#[test]
fn requests_wait_while_the_server_is_sending() {
    let mut sim = Sim::new();
    sim.pkt(0, true, 1, 0, TCP_ACK, b"a\nb\n");
    // The answer to `a` trickles in for 24 s, longer than the 10 s transaction
    // timeout: neither `a` nor `b` behind it is given up while the server sends.
    let mut seq = 1;
    for i in 1..=12 {
        sim.pkt(i * 2_000, false, seq, 5, TCP_ACK, b"AAAA");
        sim.pkt(i * 2_000 + 1, true, 5, seq + 4, TCP_ACK, b"");
        seq += 4;
    }
    sim.pkt(25_000, false, seq, 5, TCP_ACK, b"\nB\n");
    seq += 3;
    assert_eq!(
        sim.queries(),
        vec![
            (s("a"), s(&"A".repeat(48)), Status::Ok),
            (s("b"), s("B"), Status::Ok)
        ]
    );
    assert_eq!(sim.counters.unmatched_requests, 0);
    // Once the server falls silent the timeout counts again.
    sim.pkt(26_000, true, 5, seq, TCP_ACK, b"c\n");
    sim.pkt(37_000, true, 7, seq, TCP_ACK, b"");
    assert_eq!(sim.queries()[2], (s("c"), None, Status::Error));
    assert_eq!(sim.counters.unmatched_requests, 1);
}

#[test]
fn parse_error_stop_and_buffer_bound() {
    let mut sim = Sim::new();
    sim.pkt(0, true, 1, 0, TCP_ACK, b"GARBAGE\n");
    sim.pkt(1, true, 9, 0, TCP_ACK, b"ok\n");
    assert_eq!(sim.counters.parse_errors, 1);
    // A line longer than max_buffer (64) is never buffered whole.
    sim.pkt(2, true, 12, 0, TCP_ACK, &[b'x'; 50]);
    sim.pkt(3, true, 62, 0, TCP_ACK, &[b'x'; 50]);
    assert_eq!(sim.counters.tcp_buffer_overflows, 1);
    sim.pkt(4, true, 112, 0, TCP_ACK, b"UPGRADE\n");
    // After Stop the parser is never called again: not for data, a hole, a FIN nor
    // expiry (LineParser panics if it is).
    sim.pkt(5, true, 120, 0, TCP_ACK, b"ignored\n");
    sim.pkt(6, false, 1, 128, TCP_ACK, b"late answer\n");
    sim.pkt(7, true, 200, 0, TCP_ACK, b"after a hole\n");
    sim.pkt(1_000, false, 13, 228, TCP_ACK, b"x\n");
    sim.pkt(1_001, true, 228, 0, TCP_ACK | TCP_FIN, b"");
    assert_eq!(sim.counters.parser_stopped, 1);
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    let q: Vec<_> = sim.queries().into_iter().map(|x| x.0).collect();
    assert_eq!(q, vec![s("ok")]);
}

#[test]
fn rst_and_flow_limit() {
    let mut sim = Sim::new();
    sim.table.limits.max_flows = 1;
    sim.pkt(0, true, 1, 0, TCP_ACK, b"a\n");
    sim.pkt(1, false, 9, 3, TCP_RST, b"");
    assert!(sim.table.is_empty());
    assert_eq!(sim.queries(), vec![(s("a"), None, Status::Error)]);
}

fn client_pkt(client: &str, ms: u64, seq: u32, data: &'static [u8]) -> TcpPacket<'static> {
    TcpPacket {
        ts: Ts(ms * 1_000_000),
        src: client.parse().unwrap(),
        dst: S.parse().unwrap(),
        sport: 5,
        dport: 7777,
        seq,
        ack: 0,
        flags: TCP_ACK,
        payload: data,
        missing: 0,
        transport: Transport::Tcp,
    }
}

#[test]
fn a_full_table_evicts_the_least_recently_active_connection() {
    let mut sim = Sim::new();
    sim.table.limits.max_flows = 2;
    let send = |sim: &mut Sim, p: TcpPacket<'static>| {
        sim.table.process_tcp(&p, &mut sim.out, &mut sim.counters)
    };
    send(&mut sim, client_pkt("10.0.0.3", 0, 1, b"a\n"));
    send(&mut sim, client_pkt("10.0.0.4", 1, 1, b"b\n"));
    send(&mut sim, client_pkt("10.0.0.3", 2, 3, b"a2\n")); // the first is active again
    send(&mut sim, client_pkt("10.0.0.5", 3, 1, b"c\n")); // full: the second goes
    assert_eq!(sim.counters.flows_evicted, 1);
    assert_eq!(sim.counters.flow_table_full, 0);
    assert_eq!(sim.table.len(), 2);
    // The evicted connection's pending request is published as unmatched.
    assert_eq!(sim.queries(), vec![(s("b"), None, Status::Error)]);
    // A bare ACK of an unknown connection evicts nothing.
    let mut ack = client_pkt("10.0.0.6", 4, 1, b"");
    ack.flags = TCP_ACK;
    send(&mut sim, ack);
    assert_eq!(sim.counters.flows_evicted, 1);
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    let mut q: Vec<_> = sim.queries().into_iter().map(|x| x.0).collect();
    q.sort();
    assert_eq!(q, vec![s("a"), s("a2"), s("b"), s("c")]);
}

#[test]
fn a_million_flows_stay_bounded() {
    // 50 000 new connections per second of packet time for 20 s, 10 s idle timeout:
    // the table fills, each new connection then ends the least recently active
    // one, and nothing grows past the limit.
    let mut sim = Sim::new();
    let max = FlowLimits::default().max_flows;
    let n = 1_000_000u32;
    for i in 0..n {
        let p = TcpPacket {
            ts: Ts(i as u64 * 20_000),
            src: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
            dst: S.parse().unwrap(),
            sport: (i % 60000) as u16 + 1024,
            dport: 7777,
            seq: i,
            ack: 0,
            flags: TCP_ACK,
            payload: b"q\n",
            missing: 0,
            transport: Transport::Tcp,
        };
        sim.table.process_tcp(&p, &mut sim.out, &mut sim.counters);
        assert!(sim.table.len() <= max);
        if sim.out.len() > 10_000 {
            sim.out.clear();
        }
    }
    let c = &sim.counters;
    assert_eq!(c.flow_table_full, 0, "{c:?}");
    assert_eq!(c.flows_evicted, n as u64 - max as u64, "{c:?}");
    assert_eq!(c.flows_created, n as u64);
    assert_eq!(c.unmatched_requests, c.flows_evicted + c.flows_expired);
    assert!(sim.table.expiry.len() <= max + 1);
}

/// One request and its response, then both FINs: the flow closes at packet 7 ms.
fn closed_exchange(sim: &mut Sim) {
    sim.pkt(0, true, 100, 0, TCP_SYN, b"");
    sim.pkt(1, false, 500, 101, TCP_SYN | TCP_ACK, b"");
    sim.pkt(2, true, 101, 501, TCP_ACK, b"a\n");
    sim.pkt(3, false, 501, 103, TCP_ACK, b"A\n");
    sim.pkt(4, true, 103, 503, TCP_ACK | TCP_FIN, b"");
    sim.pkt(5, false, 503, 104, TCP_ACK | TCP_FIN, b"");
    assert!(sim.table.is_empty());
    assert_eq!(sim.table.closed_len(), 1);
}

#[test]
fn late_segments_of_a_closed_connection_open_nothing() {
    let mut sim = Sim::new();
    closed_exchange(&mut sim);
    sim.pkt(6, true, 104, 504, TCP_ACK, b""); // the last ACK, as always after close
    sim.pkt(300, true, 100, 0, TCP_SYN, b""); // the SYN again, old ISN
    sim.pkt(301, false, 500, 101, TCP_SYN | TCP_ACK, b""); // its SYN-ACK again
    sim.pkt(302, true, 101, 501, TCP_ACK, b"a\n"); // the request again
    sim.pkt(
        303,
        false,
        501,
        103,
        TCP_ACK | crate::decode::TCP_PSH,
        b"A\n",
    ); // the response again
    sim.pkt(304, false, 503, 104, TCP_ACK | TCP_FIN, b""); // the FIN again
    sim.pkt(305, true, 104, 504, TCP_RST, b"");
    assert!(sim.table.is_empty());
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    assert_eq!(sim.queries(), vec![(s("a"), s("A"), Status::Ok)]);
    let c = &sim.counters;
    assert_eq!(c.flows_created, 1, "{c:?}");
    assert_eq!(c.tcp_closed_segments, 4, "{c:?}");
    assert_eq!((c.unmatched_requests, c.unmatched_responses), (0, 0));
}

#[test]
fn a_syn_with_a_new_isn_reuses_the_tuple() {
    let mut sim = Sim::new();
    closed_exchange(&mut sim);
    // A new connection from the same port, with an ISN past the old one (Linux's
    // clock-driven ISNs grow a few hundred thousand per reuse).
    sim.pkt(50, true, 800_100, 0, TCP_SYN, b"");
    sim.pkt(51, false, 90_000, 800_101, TCP_SYN | TCP_ACK, b"");
    sim.pkt(52, true, 800_101, 90_001, TCP_ACK, b"b\n");
    sim.pkt(53, false, 90_001, 800_103, TCP_ACK, b"B\n");
    assert_eq!(sim.table.len(), 1);
    assert_eq!(
        sim.table.closed_len(),
        0,
        "the reused tuple's tombstone is gone"
    );
    // A late segment of the first connection now meets the live one: old data.
    sim.pkt(54, true, 101, 501, TCP_ACK, b"a\n");
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    assert_eq!(
        sim.queries(),
        vec![(s("a"), s("A"), Status::Ok), (s("b"), s("B"), Status::Ok)]
    );
    assert_eq!(sim.counters.flows_created, 2);
    assert_eq!(sim.counters.tcp_closed_segments, 0);
}

#[test]
fn rst_closed_connection_keeps_its_sequence_space() {
    let mut sim = Sim::new();
    // Picked up mid-stream (no SYN), then reset by the server.
    sim.pkt(0, true, 1000, 7000, TCP_ACK, b"q\n");
    sim.pkt(1, false, 7000, 1002, TCP_ACK, b"r\n");
    sim.pkt(2, false, 7002, 1002, TCP_RST | TCP_ACK, b"");
    assert_eq!(sim.table.closed_len(), 1);
    // Data the client had in flight, and a retransmission of the answer.
    sim.pkt(3, true, 1002, 7002, TCP_ACK, b"more\n");
    sim.pkt(4, false, 7000, 1002, TCP_ACK, b"r\n");
    assert!(sim.table.is_empty());
    assert_eq!(sim.counters.tcp_closed_segments, 2);
    // Far outside both sequence spaces: another connection, picked up mid-stream.
    sim.pkt(5, true, 2_000_000_000, 3_000_000_000, TCP_ACK, b"x\n");
    assert_eq!(sim.table.len(), 1);
    assert_eq!(sim.table.closed_len(), 0);
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    assert_eq!(
        sim.queries(),
        vec![(s("q"), s("r"), Status::Ok), (s("x"), None, Status::Error)]
    );
    assert_eq!(sim.counters.flows_created, 2);
}

#[test]
fn tombstones_expire_by_packet_time() {
    let mut sim = Sim::new();
    sim.table.closed = ClosedFlows::new(16, Duration::from_secs(2));
    closed_exchange(&mut sim);
    sim.pkt(1_000, true, 101, 501, TCP_ACK, b"a\n");
    assert_eq!(sim.counters.tcp_closed_segments, 1);
    // 2 s after the close the connection is forgotten: the same segment is
    // picked up mid-stream as it would be without a tombstone.
    sim.pkt(2_010, true, 101, 501, TCP_ACK, b"a\n");
    assert_eq!(sim.table.closed_len(), 0);
    assert_eq!(sim.table.len(), 1);
    assert_eq!(sim.counters.tcp_closed_segments, 1);
    assert_eq!(sim.counters.flows_created, 2);
}

#[test]
fn idle_expiry_leaves_no_tombstone() {
    let mut sim = Sim::new();
    sim.pkt(0, true, 1, 0, TCP_ACK, b"q\n");
    sim.pkt(1, false, 50, 3, TCP_ACK, b"r\n");
    sim.pkt(11_000, false, 9, 9, TCP_ACK, b""); // moves the clock: idle 10 s
    assert_eq!(sim.counters.flows_expired, 1);
    assert_eq!(sim.table.closed_len(), 0);
    // The connection resumes: it is the same one, followed again.
    sim.pkt(11_001, true, 3, 52, TCP_ACK, b"q2\n");
    assert_eq!(sim.table.len(), 1);
    assert_eq!(sim.counters.tcp_closed_segments, 0);
}

#[test]
fn closed_connections_are_bounded_and_evictions_counted() {
    let mut sim = Sim::new();
    sim.table.closed = ClosedFlows::new(2, Duration::from_secs(15));
    let seg = |sim: &mut Sim, ms: u64, port: u16, to_server: bool, seq: u32, flags: u8| {
        let (src, dst, sport, dport) = if to_server {
            (C, S, port, 7777)
        } else {
            (S, C, 7777, port)
        };
        let p = TcpPacket {
            ts: Ts(ms * 1_000_000),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport,
            dport,
            seq,
            ack: if to_server { 501 } else { 103 },
            flags,
            payload: if flags & TCP_SYN != 0 { b"" } else { b"z\n" },
            missing: 0,
            transport: Transport::Tcp,
        };
        sim.table.process_tcp(&p, &mut sim.out, &mut sim.counters);
    };
    for (i, port) in [1000u16, 1001, 1002].into_iter().enumerate() {
        let t = i as u64 * 10;
        seg(&mut sim, t, port, true, 100, TCP_SYN);
        seg(&mut sim, t + 1, port, false, 500, TCP_SYN | TCP_ACK);
        seg(&mut sim, t + 2, port, true, 101, TCP_ACK | TCP_FIN);
        seg(&mut sim, t + 3, port, false, 501, TCP_ACK | TCP_FIN);
    }
    assert_eq!(sim.table.closed_len(), 2);
    assert_eq!(sim.counters.tcp_closed_evictions, 1);
    // The oldest was forgotten: its late SYN opens a flow; the others' do not.
    seg(&mut sim, 100, 1002, true, 100, TCP_SYN);
    seg(&mut sim, 101, 1001, true, 100, TCP_SYN);
    assert_eq!(sim.table.len(), 0);
    seg(&mut sim, 102, 1000, true, 100, TCP_SYN);
    assert_eq!(sim.table.len(), 1);
    assert_eq!(sim.counters.tcp_closed_segments, 2);
}

#[test]
fn every_packet_twice_gives_the_events_once() {
    // An `any` capture of loopback traffic: each segment is seen twice in a row,
    // including the server's last data segment carrying its FIN.
    let mut sim = Sim::new();
    let pkts: [(bool, u32, u32, u8, &[u8]); 6] = [
        (true, 100, 0, TCP_SYN, b""),
        (false, 500, 101, TCP_SYN | TCP_ACK, b""),
        (true, 101, 501, TCP_ACK, b"a\n"),
        (true, 103, 501, TCP_ACK | TCP_FIN, b""),
        (false, 501, 104, TCP_ACK | TCP_FIN, b"A\n"),
        (true, 104, 504, TCP_ACK, b""),
    ];
    for (i, &(to_server, seq, ack, flags, data)) in pkts.iter().enumerate() {
        sim.pkt(i as u64 * 2, to_server, seq, ack, flags, data);
        sim.pkt(i as u64 * 2 + 1, to_server, seq, ack, flags, data);
    }
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    assert_eq!(sim.queries(), vec![(s("a"), s("A"), Status::Ok)]);
    assert_eq!(sim.counters.flows_created, 1);
    assert_eq!(
        sim.counters.tcp_closed_segments, 1,
        "the repeated last response"
    );
}

#[test]
fn no_tombstones_when_disabled() {
    let mut sim = Sim::new();
    sim.table.closed = ClosedFlows::new(0, Duration::from_secs(15));
    sim.pkt(0, true, 100, 0, TCP_SYN, b"");
    sim.pkt(1, false, 500, 101, TCP_SYN | TCP_ACK, b"");
    sim.pkt(2, true, 101, 501, TCP_ACK | TCP_FIN, b"");
    sim.pkt(3, false, 501, 102, TCP_ACK | TCP_FIN, b"");
    assert_eq!(sim.table.closed_len(), 0);
    sim.pkt(4, true, 100, 0, TCP_SYN, b"");
    assert_eq!(sim.table.len(), 1);
}

#[test]
fn tuple_reuse_churn_keeps_the_expiry_queue_bounded() {
    // One tuple closed and reopened 20 000 times within the tombstone lifetime:
    // each reuse removes the tombstone early, its queue entry is compacted away
    // (the queue stays within twice the limit, at least 1024).
    let mut sim = Sim::new();
    sim.table.closed = ClosedFlows::new(100, Duration::from_secs(15));
    for i in 0..20_000u32 {
        let isn = i.wrapping_mul(1_000_003);
        let t = i as u64;
        sim.pkt(t, true, isn, 0, TCP_SYN, b"");
        sim.pkt(t, false, 7, isn.wrapping_add(1), TCP_SYN | TCP_ACK, b"");
        sim.pkt(t, true, isn.wrapping_add(1), 8, TCP_ACK | TCP_FIN, b"");
        sim.pkt(t, false, 8, isn.wrapping_add(2), TCP_ACK | TCP_FIN, b"");
    }
    assert_eq!(sim.counters.flows_created, 20_000);
    assert_eq!(sim.counters.tcp_closed_segments, 0);
    assert_eq!(sim.table.closed_len(), 1);
    assert!(
        sim.table.closed.queued() <= 2048,
        "{}",
        sim.table.closed.queued()
    );
}

#[test]
fn a_message_held_over_several_packets_starts_at_its_first_byte() {
    let mut sim = Sim::new();
    // "one" arrives over three packets; "two" starts in the third, after "one" ended.
    sim.pkt(10, true, 1, 0, TCP_ACK, b"o");
    sim.pkt(20, true, 2, 0, TCP_ACK, b"n");
    sim.pkt(30, true, 3, 0, TCP_ACK, b"e\ntw");
    sim.pkt(40, true, 7, 0, TCP_ACK, b"o\n");
    // A line held when a hole swallows it: the line after the hole starts when the
    // hole is given up (the server's ACK at 80 ms), as that is when it is delivered.
    sim.pkt(50, true, 9, 0, TCP_ACK, b"thr");
    sim.pkt(70, true, 20, 0, TCP_ACK, b"four\n");
    sim.pkt(80, false, 1, 25, TCP_ACK, b"1\n2\n3\n");
    sim.table.flush_all(&mut sim.out, &mut sim.counters);
    let got: Vec<_> = sim
        .out
        .iter()
        .map(|(_, t)| (t.query.clone(), t.start.0 / 1_000_000))
        .collect();
    assert_eq!(
        got,
        vec![(s("one"), 10), (s("two"), 30), (s("[lossy]four"), 80)]
    );
}

#[test]
fn flow_keys_order_endpoints_like_ip_addr_and_keep_families_apart() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let pairs = [
        ("10.0.0.1", 80, "10.0.0.2", 40000),
        ("10.0.0.2", 80, "10.0.0.1", 40000),
        ("10.0.0.1", 9, "10.0.0.1", 10),
        ("255.0.0.1", 1, "1.0.0.255", 2),
        ("fd00::2", 443, "fd00::1", 5000),
        ("::ffff:10.0.0.1", 80, "::ffff:10.0.0.2", 40000),
    ];
    for (s, sp, d, dp) in pairs {
        let (s, d) = (ip(s), ip(d));
        let k = FlowKey::new(s, sp, d, dp);
        assert_eq!(k, FlowKey::new(d, dp, s, sp), "either direction, one key");
        // The lower endpoint in IpAddr's order comes first.
        let (lo, hi) = if (s, sp) <= (d, dp) {
            ((s, sp), (d, dp))
        } else {
            ((d, dp), (s, sp))
        };
        assert!(k.is_a(lo.0, lo.1) && !(lo != hi && k.is_a(hi.0, hi.1)));
    }
    // An IPv4 connection and the IPv6 one of its mapped addresses are two flows.
    let v4 = FlowKey::new(ip("10.0.0.1"), 80, ip("10.0.0.2"), 40000);
    let mapped = FlowKey::new(ip("::ffff:10.0.0.1"), 80, ip("::ffff:10.0.0.2"), 40000);
    let compat = FlowKey::new(ip("::10.0.0.1"), 80, ip("::10.0.0.2"), 40000);
    assert_ne!(v4, mapped);
    assert_ne!(v4, compat);
}

/// The batch path (with its prefetch steps) gives exactly what segment-by-segment
/// processing gives: the same transactions in the same order and the same
/// counters, over interleaved connections that open, pipeline, reset, reuse their
/// tuple and overflow a small table.
#[test]
fn batches_match_segment_by_segment() {
    let conns = 300u32;
    let mut pkts: Vec<P> = Vec::new();
    let mut t = 0u64;
    for round in 0..3u32 {
        for step in 0..6u32 {
            for c in 0..conns {
                t += 1;
                let (cs, ss) = (1000 * (c + 1) + round * 100, 5000 * (c + 1));
                let q = format!("q{c}.{round}\n").into_bytes();
                let r = format!("r{c}.{round}\n").into_bytes();
                let ql = q.len() as u32;
                let rl = r.len() as u32;
                let p = match step {
                    0 => (t, c, true, cs, 0, TCP_SYN, vec![]),
                    1 => (t, c, false, ss, cs + 1, TCP_SYN | TCP_ACK, vec![]),
                    2 => (t, c, true, cs + 1, ss + 1, TCP_ACK, q),
                    3 if c % 7 == 3 => (t, c, false, ss + 1, cs + 1, TCP_RST, vec![]),
                    3 => (t, c, false, ss + 1, cs + 1 + ql, TCP_ACK, r),
                    4 => (
                        t,
                        c,
                        true,
                        cs + 1 + ql,
                        ss + 1 + rl,
                        TCP_ACK | TCP_FIN,
                        vec![],
                    ),
                    _ if c % 5 == 0 => continue, // left open: evicted or flushed
                    _ => (
                        t,
                        c,
                        false,
                        ss + 1 + rl,
                        cs + 2 + ql,
                        TCP_ACK | TCP_FIN,
                        vec![],
                    ),
                };
                pkts.push(p);
            }
        }
    }
    type P = (u64, u32, bool, u32, u32, u8, Vec<u8>);
    fn packet(p: &P) -> TcpPacket<'_> {
        let client = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + p.1));
        let server: std::net::IpAddr = S.parse().unwrap();
        let (src, dst, sport, dport) = if p.2 {
            (client, server, 40000, 7777)
        } else {
            (server, client, 7777, 40000)
        };
        TcpPacket {
            ts: Ts(p.0 * 1_000_000),
            src,
            dst,
            sport,
            dport,
            seq: p.3,
            ack: p.4,
            flags: p.5,
            payload: &p.6,
            missing: 0,
            transport: Transport::Tcp,
        }
    }
    let summary = |sim: &Sim| {
        sim.out
            .iter()
            .map(|(c, t)| (c.client_ip, t.query.clone(), t.response.clone(), t.status))
            .collect::<Vec<_>>()
    };
    for max_flows in [100_000, 64] {
        let mut one = Sim::new();
        let mut batched = Sim::new();
        one.table.limits.max_flows = max_flows;
        batched.table.limits.max_flows = max_flows;
        for p in &pkts {
            one.table
                .process_tcp(&packet(p), &mut one.out, &mut one.counters);
        }
        let mut at = 0;
        let mut size = 1;
        while at < pkts.len() {
            let n = size.min(pkts.len() - at);
            let chunk = &pkts[at..at + n];
            batched.table.process_batch(
                n,
                |i| packet(&chunk[i]),
                &mut batched.out,
                &mut batched.counters,
            );
            at += n;
            size = size % 37 + 1;
        }
        one.table.flush_all(&mut one.out, &mut one.counters);
        batched
            .table
            .flush_all(&mut batched.out, &mut batched.counters);
        assert!(one.out.len() > conns as usize, "{}", one.out.len());
        assert_eq!(summary(&one), summary(&batched), "max_flows {max_flows}");
        assert_eq!(one.counters, batched.counters, "max_flows {max_flows}");
        if max_flows == 64 {
            assert!(one.counters.flows_evicted > 0, "{:?}", one.counters);
        }
    }
}

/// The line protocol over UDP on port 5353: each datagram holds whole lines. With
/// `true`, its parser says when it is idle.
struct UdpLineFactory(bool);
impl ProtocolFactory for UdpLineFactory {
    fn name(&self) -> &'static str {
        "udpline"
    }
    fn transports(&self) -> &[Transport] {
        &[Transport::Udp]
    }
    fn ports(&self) -> &[u16] {
        &[5353]
    }
    fn connection_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn new_parser(&self, _conn: &ConnInfo) -> Box<dyn Parser> {
        line_parser(self.0)
    }
}

fn datagram<'a>(ms: u64, src: (&str, u16), dst: (&str, u16), data: &'a [u8]) -> TcpPacket<'a> {
    TcpPacket {
        ts: Ts(ms * 1_000_000),
        src: src.0.parse().unwrap(),
        dst: dst.0.parse().unwrap(),
        sport: src.1,
        dport: dst.1,
        seq: 0,
        ack: 0,
        flags: 0,
        payload: data,
        missing: 0,
        transport: Transport::Udp,
    }
}

fn udp_table(max_flows: usize) -> FlowTable {
    udp_table_idle(max_flows, false)
}

fn udp_table_idle(max_flows: usize, idle: bool) -> FlowTable {
    FlowTable::new(
        vec![
            Arc::new(LineFactory) as Arc<dyn ProtocolFactory>,
            Arc::new(UdpLineFactory(idle)),
        ],
        FlowLimits {
            max_flows,
            ..FlowLimits::default()
        },
    )
}

#[test]
fn udp_datagrams_pair_within_their_flow() {
    let mut t = udp_table(16);
    let (mut out, mut c) = (Vec::<(ConnInfo, Transaction)>::new(), Counters::default());
    let (cl, sv) = ((C, 40000), (S, 5353));
    t.process_tcp(&datagram(1, cl, sv, b"Q1\n"), &mut out, &mut c);
    // A second client port is a flow of its own.
    t.process_tcp(&datagram(2, (C, 40001), sv, b"Q2\n"), &mut out, &mut c);
    t.process_tcp(&datagram(3, sv, (C, 40001), b"A2\n"), &mut out, &mut c);
    t.process_tcp(&datagram(4, sv, cl, b"A1\n"), &mut out, &mut c);
    assert_eq!((t.udp_len(), t.len()), (2, 0), "no TCP flow");
    assert_eq!((c.udp_flows_created, c.udp_datagrams), (2, 4));
    let got: Vec<_> = out
        .iter()
        .map(|(conn, tx)| {
            (
                conn.client_port,
                conn.server_port,
                conn.transport,
                tx.query.clone(),
                tx.response.clone(),
                tx.end.map(|e| e.since(tx.start)),
            )
        })
        .collect();
    let udp = Transport::Udp;
    assert_eq!(
        got,
        vec![
            (
                40001,
                5353,
                udp,
                Some("Q2".into()),
                Some("A2".into()),
                Some(1_000_000)
            ),
            (
                40000,
                5353,
                udp,
                Some("Q1".into()),
                Some("A1".into()),
                Some(3_000_000)
            ),
        ]
    );
    assert_eq!(out[0].0.client_ip, C.parse::<IpAddr>().unwrap());

    // A datagram on a port no UDP protocol claims opens nothing, nor does TCP's
    // port over UDP.
    t.process_tcp(&datagram(5, cl, (S, 7777), b"Q3\n"), &mut out, &mut c);
    t.process_tcp(&datagram(5, cl, (S, 9), b"Q3\n"), &mut out, &mut c);
    assert_eq!((t.udp_len(), c.udp_flows_created), (2, 2));
}

#[test]
fn udp_flows_end_when_idle_and_at_the_end_of_input() {
    let mut t = udp_table(16);
    let (mut out, mut c) = (Vec::<(ConnInfo, Transaction)>::new(), Counters::default());
    // The server speaks first: it is still the side on the protocol's port.
    t.process_tcp(
        &datagram(0, (S, 5353), (C, 40000), b"A0\n"),
        &mut out,
        &mut c,
    );
    t.process_tcp(
        &datagram(1, (C, 40000), (S, 5353), b"Q1\n"),
        &mut out,
        &mut c,
    );
    t.process_tcp(
        &datagram(2, (C, 40002), (S, 5353), b"Q2\n"),
        &mut out,
        &mut c,
    );
    assert_eq!(t.udp_len(), 2);
    assert_eq!(out.len(), 1, "the response without a request");
    assert_eq!(out[0].0.server_port, 5353);
    // 9 s later the second flow is still active; 10 s after its last datagram the
    // first one ends and its unanswered query is published. The second flow's own
    // transaction timeout (10 s) expires Q2 while the flow stays busy.
    t.process_tcp(
        &datagram(9_000, (C, 40002), (S, 5353), b"Q3\n"),
        &mut out,
        &mut c,
    );
    assert_eq!(out.len(), 1);
    t.process_tcp(
        &datagram(10_500, (C, 40002), (S, 5353), b"Q4\n"),
        &mut out,
        &mut c,
    );
    assert_eq!((t.udp_len(), c.udp_flows_expired), (1, 1));
    let late: Vec<_> = out[1..]
        .iter()
        .map(|(conn, tx)| (conn.client_port, tx.query.clone(), tx.response.is_none()))
        .collect();
    assert_eq!(
        late,
        vec![
            (40000, Some("Q1".into()), true),
            (40002, Some("Q2".into()), true)
        ]
    );
    t.process_tcp(
        &datagram(12_100, (C, 40002), (S, 5353), b"Q5\n"),
        &mut out,
        &mut c,
    );
    assert_eq!(out.len(), 3);
    let before = out.len();
    t.flush_all(&mut out, &mut c);
    assert_eq!(t.udp_len(), 0);
    let rest: Vec<_> = out[before..]
        .iter()
        .map(|(_, tx)| tx.query.clone())
        .collect();
    assert_eq!(
        rest,
        vec![Some("Q3".into()), Some("Q4".into()), Some("Q5".into())]
    );
}

#[test]
fn the_udp_flow_table_is_bounded() {
    let mut t = udp_table(2);
    let (mut out, mut c) = (Vec::<(ConnInfo, Transaction)>::new(), Counters::default());
    for i in 0..50u16 {
        t.process_tcp(
            &datagram(u64::from(i), (C, 40000 + i), (S, 5353), b"Q\n"),
            &mut out,
            &mut c,
        );
        assert!(t.udp_len() <= 2);
    }
    assert_eq!((c.udp_flows_created, c.flows_evicted), (50, 48));
    // Each evicted flow published its query; the oldest went first.
    assert_eq!(out.len(), 48);
    let ports: Vec<u16> = out.iter().map(|(conn, _)| conn.client_port).collect();
    assert_eq!(ports, (40000..40048).collect::<Vec<_>>());
    // Activity keeps a flow: the least recently active one is ended instead.
    t.process_tcp(
        &datagram(60, (C, 40048), (S, 5353), b"Q\n"),
        &mut out,
        &mut c,
    );
    t.process_tcp(
        &datagram(61, (C, 41000), (S, 5353), b"Q\n"),
        &mut out,
        &mut c,
    );
    assert_eq!(out.last().unwrap().0.client_port, 40049);
    assert_eq!(c.udp_flow_table_full, 0);
}

#[test]
fn udp_and_tcp_flows_of_one_tuple_are_apart() {
    let mut t = udp_table(16);
    let (mut out, mut c) = (Vec::<(ConnInfo, Transaction)>::new(), Counters::default());
    // TCP line protocol on 7777, and UDP on 5353: same addresses and client port.
    let mut syn = datagram(0, (C, 40000), (S, 7777), b"");
    syn.transport = Transport::Tcp;
    syn.flags = crate::decode::TCP_SYN;
    t.process_tcp(&syn, &mut out, &mut c);
    t.process_tcp(
        &datagram(1, (C, 40000), (S, 5353), b"Q\n"),
        &mut out,
        &mut c,
    );
    assert_eq!((t.len(), t.udp_len()), (1, 1));
}

#[test]
fn a_udp_flow_with_nothing_in_flight_ends_at_once() {
    let mut t = udp_table_idle(16, true);
    let (mut out, mut c) = (Vec::<(ConnInfo, Transaction)>::new(), Counters::default());
    t.process_tcp(
        &datagram(1, (C, 40000), (S, 5353), b"Q1\n"),
        &mut out,
        &mut c,
    );
    assert_eq!(t.udp_len(), 1, "the query waits");
    t.process_tcp(
        &datagram(2, (S, 5353), (C, 40000), b"A1\n"),
        &mut out,
        &mut c,
    );
    assert_eq!((t.udp_len(), c.udp_flows_done, out.len()), (0, 1, 1));
    // A late copy of the answer opens the flow again: an answer without a query.
    t.process_tcp(
        &datagram(3, (S, 5353), (C, 40000), b"A1\n"),
        &mut out,
        &mut c,
    );
    assert_eq!((t.udp_len(), c.udp_flows_created, out.len()), (0, 2, 2));
    assert!(out[1].1.query.is_none());
    // Many short flows: the expiry heap stays within a constant of the live flows.
    for i in 0..20_000u64 {
        let port = 20_000 + (i % 30_000) as u16;
        t.process_tcp(
            &datagram(10 + i, (C, port), (S, 5353), b"Q\n"),
            &mut out,
            &mut c,
        );
        t.process_tcp(
            &datagram(10 + i, (S, 5353), (C, port), b"A\n"),
            &mut out,
            &mut c,
        );
    }
    assert_eq!(t.udp_len(), 0);
    assert!(t.udp_expiry_len() <= 1024 + 2, "{}", t.udp_expiry_len());
}
