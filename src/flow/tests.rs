//! Engine tests with a line protocol: each `\n`-terminated line from the client is a
//! request, each line from the server a response.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::event::Status;
use crate::protos::pairing::{Exchange, Limits, Message, Pairing, start_ts};

struct Line(Ts, String, u64);
impl Message for Line {
    fn ts(&self) -> Ts {
        self.0
    }
}

struct LineEx;
impl Exchange for LineEx {
    type Request = Line;
    type Response = Line;
    fn transaction(&self, req: Option<Line>, resp: Option<Line>) -> Transaction {
        let mut tx = Transaction::new("line", start_ts(req.as_ref(), resp.as_ref()));
        if let Some(r) = &req {
            tx.query = Some(r.1.clone());
            tx.request_bytes = r.2;
        }
        if let Some(r) = &resp {
            tx.end = Some(r.0);
            tx.response = Some(r.1.clone());
            tx.response_bytes = r.2;
        }
        tx
    }
}

struct LineParser {
    pairing: Pairing<Line>,
    first_ts: [Option<Ts>; 2],
    lossy: [bool; 2],
}

impl Parser for LineParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        let mut consumed = 0;
        while let Some(nl) = data[consumed..].iter().position(|&b| b == b'\n') {
            let line = &data[consumed..consumed + nl];
            if line == b"GARBAGE" {
                return Progress::Error;
            }
            if line == b"UPGRADE" {
                return Progress::Stop;
            }
            let ts = self.first_ts[dir.idx()].take().unwrap_or(ctx.ts);
            let mut text = String::from_utf8_lossy(line).into_owned();
            if std::mem::take(&mut self.lossy[dir.idx()]) {
                text.insert_str(0, "[lossy]");
            }
            let msg = Line(ts, text, nl as u64 + 1);
            match dir {
                Dir::ToServer => self.pairing.request(&LineEx, msg, ctx),
                Dir::ToClient => self.pairing.response(&LineEx, msg, ctx),
            }
            consumed += nl + 1;
        }
        if consumed < data.len() && self.first_ts[dir.idx()].is_none() {
            self.first_ts[dir.idx()] = Some(ctx.ts);
        }
        Progress::Consumed { consumed, need: 0 }
    }

    fn gap(&mut self, dir: Dir, _len: u64, _ctx: &mut Ctx<'_>) {
        self.lossy[dir.idx()] = true;
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        self.pairing.expire(&LineEx, now, ctx);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.pairing.drain(&LineEx, ctx);
    }
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
        Box::new(LineParser {
            pairing: Pairing::new(Limits {
                timeout: Duration::from_secs(10),
                ..Limits::default()
            }),
            first_ts: [None, None],
            lossy: [false, false],
        })
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
            table: FlowTable::new(vec![Arc::new(LineFactory)], FlowLimits::default()),
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
    sim.pkt(5, true, 120, 0, TCP_ACK, b"ignored\n");
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
    let p = TcpPacket {
        ts: Ts(1),
        src: "10.0.0.3".parse().unwrap(),
        dst: S.parse().unwrap(),
        sport: 5,
        dport: 7777,
        seq: 0,
        ack: 0,
        flags: TCP_ACK,
        payload: b"b\n",
        missing: 0,
    };
    sim.table.process_tcp(&p, &mut sim.out, &mut sim.counters);
    assert_eq!(sim.counters.flow_table_full, 1);
    sim.pkt(2, false, 9, 3, TCP_RST, b"");
    assert!(sim.table.is_empty());
    assert_eq!(sim.queries(), vec![(s("a"), None, Status::Error)]);
}

#[test]
fn a_million_flows_stay_bounded() {
    // 50 000 new connections per second of packet time for 20 s, 10 s idle timeout:
    // the table fills, expiry frees room, and nothing grows past the limit.
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
        };
        sim.table.process_tcp(&p, &mut sim.out, &mut sim.counters);
        assert!(sim.table.len() <= max);
        if sim.out.len() > 10_000 {
            sim.out.clear();
        }
    }
    let c = &sim.counters;
    assert!(c.flow_table_full > 0, "{c:?}");
    assert!(c.flows_expired > 100_000, "{c:?}");
    assert_eq!(c.flows_created + c.flow_table_full, n as u64);
    assert_eq!(c.unmatched_requests, c.flows_expired);
    assert!(sim.table.expiry.len() <= max + 1);
}
