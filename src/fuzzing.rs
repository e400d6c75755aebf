//! Fuzz harnesses: one `pub fn <target>(data: &[u8])` per `cargo fuzz` target in
//! `fuzz/fuzz_targets/`, kept here so that `tests/fuzz_regressions.rs` replays the
//! same code on stable, and [`seeds`], the seed corpora built from the committed
//! fixtures (`examples/fuzz_seeds.rs` writes them for `scripts/fuzz-seeds.sh`).
//!
//! A harness may ignore `Err` results but never catches a panic: any panic, hang or
//! unbounded allocation reached from one of them is a wirebeat bug.
//!
//! The protocol harnesses ([`http`], [`mysql`], [`pgsql`], [`redis`], [`thrift`],
//! and [`dns`] over TCP; over UDP it drives datagrams through the UDP flows) drive
//! one connection through the engine itself (flow table, TCP reassembly, the
//! per-direction [`AppBuffer`](crate::protos::AppBuffer), then the parser, then the
//! event encoder), from a sequence of operations decoded from the input (see
//! [`StreamOps`]), so that chunking, lost bytes, FINs, resets and timeouts are all
//! exercised, not only whole buffers.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use crate::capture::LinkType;
use crate::capture::file::FileSource;
use crate::config::Config;
use crate::decode::{Decoder, DefragLimits, L4, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use crate::event::{AgentInfo, ConnInfo, EventEncoder, Transaction, Transport};
use crate::flow::{EventSink, FlowLimits, FlowRec, FlowTable, NetFlowSettings, TcpPacket};
use crate::protos::{self, Dir};
use crate::stats::Counters;
use crate::time::Ts;

/// A harness: one input, no result.
pub type Harness = fn(&[u8]);

/// Every target: its name (the file name under `fuzz/fuzz_targets/` and the
/// directory under `tests/fuzz/regressions/`) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("decode", decode),
    ("pcap", pcap),
    ("http", http),
    ("mysql", mysql),
    ("pgsql", pgsql),
    ("redis", redis),
    ("thrift", thrift),
    ("dns", dns),
    ("thrift_idl", thrift_idl),
    ("config", config),
    ("resp", resp),
    ("es_bulk", es_bulk),
];

/// Link types the decoder target picks from (by the low 3 bits of a frame's first
/// byte).
const LINKTYPES: [LinkType; 8] = [
    LinkType::ETHERNET,
    LinkType::NULL,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL2,
];

/// Reads a little-endian u16 at the front of `d`, advancing it (missing bytes are 0).
fn take_u16(d: &mut &[u8]) -> u16 {
    let lo = d.first().copied().unwrap_or(0);
    let hi = d.get(1).copied().unwrap_or(0);
    *d = d.get(2..).unwrap_or(&[]);
    u16::from_le_bytes([lo, hi])
}

/// Takes up to `n` bytes from the front of `d`.
fn take<'a>(d: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = d.split_at(n.min(d.len()));
    *d = b;
    a
}

/// The link/IP/TCP decoder with IP reassembly. The input is a sequence of frames,
/// each `[sel] [len: u16 le] [len bytes]`: `sel & 7` picks the link type, bit 3
/// marks the frame cut by the snaplen (its wire length is 100 bytes more), bit 4
/// moves the clock 10 s forward first (expiring fragments), otherwise it moves 1 ms.
pub fn decode(data: &[u8]) {
    let mut d = data;
    let mut dec = Decoder::new(DefragLimits {
        max_datagrams: 8,
        max_bytes: 256 * 1024,
        timeout: Duration::from_secs(5),
    });
    let mut counters = Counters::default();
    let mut ts = 1_000_000_000u64;
    while let Some((&sel, rest)) = d.split_first() {
        d = rest;
        let len = take_u16(&mut d) as usize;
        let frame = take(&mut d, len);
        ts += if sel & 0x10 != 0 {
            10_000_000_000
        } else {
            1_000_000
        };
        let cut = if sel & 0x08 != 0 { 100 } else { 0 };
        let linktype = LINKTYPES[(sel & 7) as usize];
        if let Some(ip) = dec.decode(
            Ts(ts),
            linktype,
            frame,
            frame.len() as u32 + cut,
            &mut counters,
        ) {
            std::hint::black_box((ip.ports(), ip.ip_proto(), ip.payload().len()));
            std::hint::black_box(ip.flow_hash(7));
        }
        std::hint::black_box((dec.pending_datagrams(), dec.pending_bytes()));
    }
    dec.expire(Ts(ts + 60_000_000_000), &mut counters);
}

/// The pcap/pcapng reader, as `-I` runs it: every packet read from the input is
/// decoded and handed, in batches as the reader packs them for a worker, to a flow
/// table tracking every protocol on its default ports, whose events are encoded.
/// Batch sizes vary with the input (1 to 37 segments), so that the worker's
/// prefetching batch loop meets every boundary.
pub fn pcap(data: &[u8]) {
    let Ok(mut src) = FileSource::from_reader("fuzz.pcap", Cursor::new(data.to_vec())) else {
        return;
    };
    let mut dec = Decoder::new(DefragLimits::default());
    let mut counters = Counters::default();
    // Network flows too, with short periods and timeouts so that reports and ends
    // happen inside small inputs, and a small table so that it fills.
    let mut table = FlowTable::new(protos::enabled(&fuzz_config()), FlowLimits::default())
        .with_netflows(Some(NetFlowSettings {
            timeout: std::time::Duration::from_secs(1),
            period: Some(std::time::Duration::from_secs(1)),
            max_flows: 64,
            delta: data.len().is_multiple_of(2),
            macs: !data.len().is_multiple_of(3),
        }));
    let mut sink = FuzzSink::default();
    let mut flow_recs: Vec<FlowRec> = Vec::new();
    let batch = 1 + data.len() % 37;
    // Segments with their payloads copied out (a batch outlives the packet it came
    // from), as the reader's batches do.
    let mut segs: Vec<(TcpPacket<'static>, std::ops::Range<usize>)> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |segs: &mut Vec<(TcpPacket<'static>, std::ops::Range<usize>)>,
                 bytes: &mut Vec<u8>,
                 flow_recs: &mut Vec<FlowRec>,
                 table: &mut FlowTable,
                 sink: &mut FuzzSink,
                 counters: &mut Counters| {
        table.account(flow_recs, sink, counters);
        flow_recs.clear();
        let (s, b) = (&*segs, &*bytes);
        table.process_batch(
            s.len(),
            |i| TcpPacket {
                payload: &b[s[i].1.clone()],
                ..s[i].0
            },
            sink,
            counters,
        );
        segs.clear();
        bytes.clear();
    };
    while let Ok(Some(p)) = src.next_packet() {
        let l2 = crate::decode::l2(p.linktype, p.data);
        let Some(ip) = dec.decode(p.ts, p.linktype, p.data, p.orig_len, &mut counters) else {
            continue;
        };
        flow_recs.push(FlowRec::of(p.ts, &ip, p.orig_len, l2));
        let seg = match &ip.l4 {
            L4::Tcp(t) if table.wants_ports(t.src_port, t.dst_port) => TcpPacket {
                ts: p.ts,
                src: ip.src,
                dst: ip.dst,
                sport: t.src_port,
                dport: t.dst_port,
                seq: t.seq,
                ack: t.ack,
                flags: t.flags,
                payload: &[],
                missing: t.missing,
                transport: Transport::Tcp,
            },
            L4::Udp(u) if table.wants_udp_ports(u.src_port, u.dst_port) => TcpPacket {
                ts: p.ts,
                src: ip.src,
                dst: ip.dst,
                sport: u.src_port,
                dport: u.dst_port,
                seq: 0,
                ack: 0,
                flags: 0,
                payload: &[],
                missing: u.missing,
                transport: Transport::Udp,
            },
            L4::Icmp(m) if table.wants_icmp() => TcpPacket {
                ts: p.ts,
                src: ip.src,
                dst: ip.dst,
                sport: 0,
                dport: 0,
                seq: 0,
                ack: 0,
                flags: 0,
                payload: &[],
                missing: m.missing,
                transport: Transport::icmp(m.v6),
            },
            _ => continue,
        };
        let at = bytes.len();
        bytes.extend_from_slice(ip.payload());
        segs.push((seg, at..bytes.len()));
        if segs.len() >= batch || flow_recs.len() >= batch {
            let (s, b, f, t) = (&mut segs, &mut bytes, &mut flow_recs, &mut table);
            flush(s, b, f, t, &mut sink, &mut counters);
        }
    }
    flush(
        &mut segs,
        &mut bytes,
        &mut flow_recs,
        &mut table,
        &mut sink,
        &mut counters,
    );
    std::hint::black_box(src.packets_read());
    table.flush_all(&mut sink, &mut counters);
    assert!(table.netflow_len() == 0);
    encode_all(&sink.events);
    encode_flows(&sink.flows);
}

/// Transactions and flow reports, kept for encoding.
#[derive(Default)]
struct FuzzSink {
    events: Vec<(ConnInfo, Transaction)>,
    flows: Vec<crate::event::FlowReport>,
}

impl EventSink for FuzzSink {
    fn emit(&mut self, conn: &ConnInfo, tx: Transaction) {
        self.events.push((conn.clone(), tx));
    }

    fn emit_flow(&mut self, report: &crate::event::FlowReport) {
        self.flows.push(report.clone());
    }
}

/// Encodes every flow report; each must be one valid JSON document.
fn encode_flows(reports: &[crate::event::FlowReport]) {
    let enc = EventEncoder::new(AgentInfo::new("fuzz".into(), vec![]));
    let mut out = Vec::new();
    for r in reports {
        out.clear();
        enc.encode_flow(r, &mut out);
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&out) {
            panic!(
                "flow event is not valid JSON ({e}): {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}

/// The default configuration with PostgreSQL on 5432 (it has no default port).
fn fuzz_config() -> Config {
    let mut cfg = Config::default();
    cfg.protocols.pgsql.common.ports = vec![5432];
    cfg
}

/// Encodes every event as the outputs do; each must be one valid JSON document.
fn encode_all(events: &[(ConnInfo, Transaction)]) {
    let enc = EventEncoder::new(AgentInfo::new("fuzz".into(), vec![]));
    let mut out = Vec::new();
    for (conn, tx) in events {
        out.clear();
        enc.encode(conn, tx, &mut out);
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&out) {
            panic!(
                "event is not valid JSON ({e}): {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}

/// The operations a protocol harness decodes from its input. After a header byte
/// (bit 0: the connection starts with a three-way handshake, otherwise it is
/// picked up mid-stream; bit 1: the client's sequence numbers start just below
/// 2^32, so they wrap), each operation is one byte `op` followed by its arguments;
/// `side` is the client for even `op & 7`, the server for odd (and bit 3 for 7):
///
/// - `0`/`1`: data, `[len: u16 le] [len bytes]`; with bit 7 set, another
///   `97 * (op >> 3 & 15)` bytes were cut by the snaplen;
/// - `2`/`3`: `[n: u16 le]`: `n + 1` bytes of the side are never seen (a hole,
///   declared when the peer acknowledges past it, or at the end);
/// - `4`/`5`: FIN;
/// - `6`: `[t: u16 le]`: the clock moves `t * 10 ms` (transaction and
///   connection timeouts);
/// - `7`: a bare ACK of the side (bit 4 clear) or a RST (bit 4 set).
///
/// Every segment acknowledges all the peer has sent (holes included) and the clock
/// moves 1 µs per segment. At the end every connection is flushed.
pub struct StreamOps;

impl StreamOps {
    /// A seed in the operation format: a handshake, then every segment of `conv`
    /// in pieces of at most 1448 bytes, then a FIN from each side.
    pub fn encode(conv: &[(Dir, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![1u8];
        for (dir, seg) in conv {
            for piece in seg.chunks(1448) {
                out.push(match dir {
                    Dir::ToServer => 0,
                    Dir::ToClient => 1,
                });
                out.extend_from_slice(&(piece.len() as u16).to_le_bytes());
                out.extend_from_slice(piece);
            }
        }
        out.extend_from_slice(&[4, 5]);
        out
    }
}

struct Conn {
    table: FlowTable,
    sink: Vec<(ConnInfo, Transaction)>,
    counters: Counters,
    ip: [IpAddr; 2],
    port: [u16; 2],
    next: [u32; 2],
    ts: u64,
}

impl Conn {
    fn send(&mut self, side: usize, flags: u8, payload: &[u8], missing: u32) {
        self.ts += 1_000;
        let p = TcpPacket {
            ts: Ts(self.ts),
            src: self.ip[side],
            dst: self.ip[1 - side],
            sport: self.port[side],
            dport: self.port[1 - side],
            seq: self.next[side],
            ack: self.next[1 - side],
            flags,
            payload,
            missing,
            transport: Transport::Tcp,
        };
        self.table
            .process_tcp(&p, &mut self.sink, &mut self.counters);
        let fin_syn = u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
        self.next[side] = self.next[side]
            .wrapping_add(payload.len() as u32)
            .wrapping_add(missing)
            .wrapping_add(fin_syn);
    }
}

/// One connection of protocol `name` (on its first configured port) driven by the
/// operations of [`StreamOps`].
fn stream(name: &str, data: &[u8]) {
    let cfg = fuzz_config();
    let factory = protos::factory(name, &cfg).expect("protocol enabled by default");
    let server_port = factory.ports()[0];
    let Some((&head, mut d)) = data.split_first() else {
        return;
    };
    let mut c = Conn {
        table: FlowTable::new(vec![factory], FlowLimits::default()),
        sink: Vec::new(),
        counters: Counters::default(),
        ip: [
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        ],
        port: [40000, server_port],
        next: [if head & 2 != 0 { 0xffff_ff00 } else { 1000 }, 0x8000_0000],
        ts: 1_000_000_000,
    };
    if head & 1 != 0 {
        c.send(0, TCP_SYN, &[], 0);
        c.send(1, TCP_SYN | TCP_ACK, &[], 0);
        c.send(0, TCP_ACK, &[], 0);
    }
    while let Some((&op, rest)) = d.split_first() {
        d = rest;
        let side = (op & 1) as usize;
        match op & 7 {
            0 | 1 => {
                let len = take_u16(&mut d) as usize;
                let payload = take(&mut d, len);
                let missing = if op & 0x80 != 0 {
                    97 * u32::from(op >> 3 & 15)
                } else {
                    0
                };
                c.send(side, TCP_ACK, payload, missing);
            }
            2 | 3 => {
                let n = u32::from(take_u16(&mut d)) + 1;
                c.next[side] = c.next[side].wrapping_add(n);
            }
            4 | 5 => c.send(side, TCP_FIN | TCP_ACK, &[], 0),
            6 => {
                c.ts += u64::from(take_u16(&mut d)) * 10_000_000;
                c.table.advance(Ts(c.ts), &mut c.sink, &mut c.counters);
            }
            _ => {
                let side = usize::from(op >> 3 & 1);
                let flags = if op & 0x10 != 0 { TCP_RST } else { TCP_ACK };
                c.send(side, flags, &[], 0);
            }
        }
    }
    c.table.flush_all(&mut c.sink, &mut c.counters);
    encode_all(&c.sink);
}

/// HTTP through the engine ([`StreamOps`]).
pub fn http(data: &[u8]) {
    stream("http", data);
}

/// MySQL through the engine ([`StreamOps`]).
pub fn mysql(data: &[u8]) {
    stream("mysql", data);
}

/// PostgreSQL through the engine ([`StreamOps`]).
pub fn pgsql(data: &[u8]) {
    stream("pgsql", data);
}

/// Redis through the engine ([`StreamOps`]).
pub fn redis(data: &[u8]) {
    stream("redis", data);
}

/// Thrift (protocol and transport recognised from the bytes) through the engine
/// ([`StreamOps`]).
pub fn thrift(data: &[u8]) {
    stream("thrift", data);
}

/// DNS. With the first byte odd, one TCP connection ([`StreamOps`]). Otherwise the
/// rest is parsed as one message, then read as operations on the UDP flows of up to
/// 16 clients (the table holds 8, so flows are evicted too): an operation byte with
/// bit 6 set advances the clock by a `u16` times 10 ms; else bit 0 is the direction
/// (0: to the server), bits 1-4 the client, bit 7 a datagram cut by the snaplen, and
/// a `u16` length and the datagram follow.
pub fn dns(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    if head & 1 == 1 {
        stream("dns", rest);
        return;
    }
    if let Ok(m) = protos::dns::parser::parse(rest) {
        std::hint::black_box(protos::dns::transaction::text(&m));
    }
    let cfg = fuzz_config();
    let factory = protos::factory("dns", &cfg).expect("dns enabled by default");
    let limits = FlowLimits {
        max_flows: 8,
        ..FlowLimits::default()
    };
    let mut table = FlowTable::new(vec![factory], limits);
    let (mut sink, mut counters) = (Vec::new(), Counters::default());
    let (client, server) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let mut ts = 1_000_000_000u64;
    let mut d = rest;
    while let Some((&op, r)) = d.split_first() {
        d = r;
        if op & 0x40 != 0 {
            ts += u64::from(take_u16(&mut d)) * 10_000_000;
            table.advance(Ts(ts), &mut sink, &mut counters);
            continue;
        }
        let len = take_u16(&mut d) as usize;
        let payload = take(&mut d, len);
        let cport = 40000 + u16::from(op >> 1 & 15);
        let (src, sport, dst, dport) = if op & 1 == 0 {
            (client, cport, server, 53)
        } else {
            (server, 53, client, cport)
        };
        let p = TcpPacket {
            ts: Ts(ts),
            src,
            dst,
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: 0,
            payload,
            missing: if op & 0x80 != 0 { 7 } else { 0 },
            transport: Transport::Udp,
        };
        table.process_tcp(&p, &mut sink, &mut counters);
        ts += 1_000;
    }
    table.flush_all(&mut sink, &mut counters);
    encode_all(&sink);
}

/// The Thrift IDL parser (`protocols.thrift.idl_files`), on the input as text.
pub fn thrift_idl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = protos::thrift::idl::parse(&text) {
        std::hint::black_box(parsed);
    }
}

/// The configuration loader as `-c` runs it on a file's text; a configuration that
/// loads is also exported (`wirebeat export config`) and loaded back, and its
/// capture filter and internal networks are built.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = Config::from_yaml_str(text, "fuzz.yml", &[]) else {
        return;
    };
    let cfg = loaded.config;
    std::hint::black_box(cfg.bpf_filter(&["http", "mysql", "pgsql", "redis", "thrift"]));
    std::hint::black_box(cfg.internal_networks().is_ok());
    std::hint::black_box(cfg.to_yaml_with_secrets());
    let exported = cfg.to_yaml();
    std::hint::black_box(Config::from_yaml_str(&exported, "export.yml", &[]).is_ok());
}

/// The RESP reader of the Redis output: replies are read from the input one after
/// another, each within the default `max_reply_bytes`, until one is refused.
pub fn resp(data: &[u8]) {
    use crate::output::redis::resp::read_reply;
    let mut r = data;
    loop {
        let mut budget = 1024 * 1024;
        let Ok(reply) = read_reply(&mut r, &mut budget, 0) else {
            break;
        };
        if let Err(e) = reply.into_result() {
            std::hint::black_box((e.code().len(), e.is_transient(), e.to_string()));
        }
    }
}

/// The Elasticsearch bulk-response reader: the first two bytes (u16 le) are the
/// number of documents sent, the rest is the response body.
pub fn es_bulk(data: &[u8]) {
    let mut d = data;
    let n = take_u16(&mut d) as usize;
    if let Ok(outcomes) = crate::output::elasticsearch::bulk::outcomes(d, n) {
        std::hint::black_box(outcomes.len());
    }
}

/// Seed corpora built from the committed fixtures.
pub mod seeds {
    use super::*;

    /// Default server ports of the fixtures of each protocol set.
    const PROTO_PORTS: &[(&str, &[u16])] = &[
        ("http", &[80, 8080, 8000, 5000, 8002]),
        ("mysql", &[3306, 3307]),
        ("pgsql", &[5432]),
        ("redis", &[6379]),
        ("thrift", &[9090]),
    ];

    /// Sample Redis replies, from the RESP reader's unit tests.
    const RESP: &[&[u8]] = &[
        b"+OK\r\n",
        b"-WRONGTYPE x\r\n-LOADING busy\r\n",
        b":42\r\n$-1\r\n",
        b"$3\r\na\r\n\r\n",
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n",
        b"*-1\r\n*0\r\n",
    ];

    /// Sample bulk responses, from the bulk reader's unit tests (with the number of
    /// documents sent).
    const BULK: &[(u16, &[u8])] = &[
        (
            2,
            br#"{"took":3,"errors":false,"items":[{"create":{"status":201}},{"create":{"status":200}}]}"#,
        ),
        (
            2,
            br#"{"items":[{"create":{"status":400}},{"create":{"status":404,"error":null}}]}"#,
        ),
        (
            1,
            br#"{"took":1,"items":[{"create":{"_index":"i","_type":"t","_id":"1","status":400,"error":"MapperParsingException[failed to parse [x]]"}}]}"#,
        ),
        (
            2,
            br#"{"items":[{"create":{"status":400,"error":{"type":{"a":1},"reason":[1,2]}}},{"create":{"status":400,"error":7}}]}"#,
        ),
        (
            1,
            br#"{"took":2,"errors":true,"items":[{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected \"x\" \u00e9"}}}]}"#,
        ),
        (1, br#"{"took":1,"errors":true}"#),
    ];

    fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p, ext));
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
        out.sort();
        out
    }

    /// The frames of a capture in the [`decode`] format, at most `max` bytes.
    fn frames(path: &Path, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Ok(mut src) = FileSource::open(path) else {
            return out;
        };
        while let Ok(Some(p)) = src.next_packet() {
            let Some(sel) = LINKTYPES.iter().position(|&l| l == p.linktype) else {
                break;
            };
            let data = &p.data[..p.data.len().min(u16::MAX as usize)];
            if out.len() + data.len() + 3 > max {
                break;
            }
            out.push(
                sel as u8
                    | if p.orig_len as usize > data.len() {
                        8
                    } else {
                        0
                    },
            );
            out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// Every target's seeds, built from the repository at `root`: the captures
    /// under `tests/pcaps/` (raw for `pcap`, as frames for `decode`, as the TCP
    /// conversations of each protocol in [`StreamOps`] form), `configs/*.yml`,
    /// `scripts/fixtures/thrift/*.thrift`, and the RESP and bulk samples above.
    pub fn all(root: &Path) -> Vec<(&'static str, Vec<Vec<u8>>)> {
        let pcaps = root.join("tests/pcaps");
        let mut out: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::new();
        let all_pcaps = files(&pcaps, "pcap");
        out.push((
            "pcap",
            all_pcaps
                .iter()
                .filter_map(|p| std::fs::read(p).ok())
                .filter(|b| b.len() <= 256 * 1024)
                .collect(),
        ));
        out.push((
            "decode",
            all_pcaps
                .iter()
                .map(|p| frames(p, 64 * 1024))
                .filter(|f| !f.is_empty())
                .collect(),
        ));
        for &(name, ports) in PROTO_PORTS {
            let mut seeds = Vec::new();
            for p in files(&pcaps.join(name), "pcap") {
                for &port in ports {
                    for conv in crate::protos::testing::conversations(&p, port) {
                        let s = StreamOps::encode(&conv);
                        if s.len() <= 128 * 1024 {
                            seeds.push(s);
                        }
                    }
                }
            }
            let name = TARGETS.iter().find(|t| t.0 == name).map(|t| t.0);
            out.push((name.expect("a target per protocol"), seeds));
        }
        // DNS: the UDP messages of the captures as datagram operations, the TCP
        // connections as StreamOps after an odd first byte.
        let mut seeds = Vec::new();
        for p in files(&pcaps.join("dns"), "pcap") {
            let mut ops = vec![0u8];
            if let Ok(mut src) = FileSource::open(&p) {
                let mut dec = Decoder::new(DefragLimits::default());
                let mut counters = Counters::default();
                while let Ok(Some(f)) = src.next_packet() {
                    let Some(ip) = dec.decode(f.ts, f.linktype, f.data, f.orig_len, &mut counters)
                    else {
                        continue;
                    };
                    let L4::Udp(u) = &ip.l4 else { continue };
                    let to_server = u.dst_port == 53;
                    let client = if to_server { u.src_port } else { u.dst_port };
                    ops.push(u8::from(!to_server) | ((client & 15) as u8) << 1);
                    ops.extend_from_slice(&(u.payload.len() as u16).to_le_bytes());
                    ops.extend_from_slice(u.payload);
                }
            }
            if ops.len() > 1 {
                seeds.push(ops);
            }
            for conv in crate::protos::testing::conversations(&p, 53) {
                seeds.push([&[1u8][..], &StreamOps::encode(&conv)].concat());
            }
        }
        out.push(("dns", seeds));
        out.push((
            "thrift_idl",
            files(&root.join("scripts/fixtures/thrift"), "thrift")
                .iter()
                .filter_map(|p| std::fs::read(p).ok())
                .collect(),
        ));
        out.push((
            "config",
            files(&root.join("configs"), "yml")
                .iter()
                .filter_map(|p| std::fs::read(p).ok())
                .collect(),
        ));
        out.push(("resp", RESP.iter().map(|r| r.to_vec()).collect()));
        out.push((
            "es_bulk",
            BULK.iter()
                .map(|(n, body)| [&n.to_le_bytes()[..], body].concat())
                .collect(),
        ));
        out
    }
}
