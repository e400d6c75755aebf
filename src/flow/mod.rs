//! Flow table and TCP stream handling. One `FlowTable` per worker: it owns every
//! connection hashed to that worker, reassembles both directions, feeds the
//! protocol parser through the engine-owned buffer, and expires idle connections by
//! packet time. Nothing here is shared between workers.

mod closed;
pub mod netflow;
mod ports;
pub mod reassembly;
mod table;
mod udp;

pub use netflow::{FlowRec, NetFlowSettings};
pub use ports::PortMap;
pub use table::{Warm, prefetch};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::event::direction::Networks;
use crate::event::{ConnInfo, FlowReport, Transaction, Transport};
use crate::protos::{AppBuffer, Chunk, Ctx, Dir, Parser, Prefetch, Progress, ProtocolFactory};
use crate::stats::Counters;
use crate::time::Ts;
use closed::{ClosedFlows, Span};
use reassembly::{ReasmLimits, Reassembler};
use table::FlowMap;

use crate::decode::{IcmpHeader, IcmpRole};
pub use crate::decode::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};

/// Transaction timeouts are checked at most this often per connection (packet time).
const EXPIRE_CHECK_EVERY: Duration = Duration::from_millis(250);

/// One TCP segment, as the flow layer needs it.
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<'a> {
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
    /// Payload bytes cut by the snaplen.
    pub missing: u32,
    /// TCP; or a UDP datagram of a UDP protocol's port, or an ICMP message (the
    /// whole message, header included, no ports), which go to the table's datagram
    /// flows, not to TCP reassembly (`seq`, `ack`, `flags` unused).
    pub transport: Transport,
}

/// Where completed transactions and network flow reports go.
pub trait EventSink {
    fn emit(&mut self, conn: &ConnInfo, tx: Transaction);
    fn emit_flow(&mut self, report: &FlowReport);
}

/// Transactions only: a table with flows on needs a sink that keeps reports.
impl EventSink for Vec<(ConnInfo, Transaction)> {
    fn emit(&mut self, conn: &ConnInfo, tx: Transaction) {
        self.push((conn.clone(), tx));
    }

    fn emit_flow(&mut self, _report: &FlowReport) {}
}

#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    pub max_flows: usize,
    /// Closed connections remembered per worker (0: none), and for how long
    /// (packet time): their late segments open no new flow.
    pub max_closed: usize,
    pub closed_timeout: Duration,
    pub reasm: ReasmLimits,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_flows: 131_072,
            max_closed: 65_536,
            closed_timeout: Duration::from_secs(15),
            reasm: ReasmLimits::default(),
        }
    }
}

/// Direction-independent connection key: the lower endpoint first. Addresses are
/// kept as integers (with the family beside them), so that comparing and hashing
/// a key, once per segment, works on plain integers rather than on `IpAddr`'s
/// variants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey {
    a: u128,
    b: u128,
    a_port: u16,
    b_port: u16,
    v6: bool,
}

/// The address as one integer, in which its byte order is kept.
#[inline]
fn addr_bytes(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(self.a);
        h.write_u128(self.b);
        h.write_u32((self.a_port as u32) << 16 | self.b_port as u32);
        h.write_u8(self.v6 as u8);
    }
}

impl FlowKey {
    fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> FlowKey {
        // Both ends of a segment have one family, in which the byte order of the
        // addresses is `IpAddr`'s order: the lower endpoint is the same.
        let (s, d) = (addr_bytes(src), addr_bytes(dst));
        let v6 = src.is_ipv6();
        if (s, sport) <= (d, dport) {
            FlowKey {
                a: s,
                b: d,
                a_port: sport,
                b_port: dport,
                v6,
            }
        } else {
            FlowKey {
                a: d,
                b: s,
                a_port: dport,
                b_port: sport,
                v6,
            }
        }
    }

    /// The key of ICMP message `p`, oriented rather than ordered: the requester's
    /// address first, with the identifier as its port, then the responder's, so
    /// that a reply finds its request and each side's requests have flows of their
    /// own. A message of its own (an error, neighbour discovery...) has marker 1 in
    /// the responder's port: it never joins an exchange.
    #[inline(never)]
    fn icmp(p: &TcpPacket<'_>) -> FlowKey {
        let header = IcmpHeader::parse(
            p.transport == Transport::Icmpv6,
            p.payload,
            p.payload.len() + p.missing as usize,
        );
        let (client, server, id, marker) = match header.map(|h| (h.role(), h.id)) {
            Some((IcmpRole::Request, id)) => (p.src, p.dst, id, 0),
            Some((IcmpRole::Reply, id)) => (p.dst, p.src, id, 0),
            _ => (p.src, p.dst, 0, 1),
        };
        FlowKey {
            a: addr_bytes(client),
            b: addr_bytes(server),
            a_port: id,
            b_port: marker,
            v6: client.is_ipv6(),
        }
    }

    /// The key of any packet: ordered for TCP and UDP, oriented for ICMP (out of
    /// line: the TCP path stays small enough to inline).
    #[inline(always)]
    fn of(p: &TcpPacket<'_>) -> FlowKey {
        if p.transport.is_icmp() {
            FlowKey::icmp(p)
        } else {
            FlowKey::new(p.src, p.sport, p.dst, p.dport)
        }
    }

    /// Whether `(ip, port)` is the key's lower endpoint.
    fn is_a(&self, ip: IpAddr, port: u16) -> bool {
        self.a_port == port && self.a == addr_bytes(ip)
    }
}

/// The protocol of a new TCP connection or UDP flow (looked up by port with `get`)
/// and its ends: the side on a protocol port is the server; the destination wins a
/// tie.
fn by_port<'p>(
    get: impl Fn(u16) -> Option<&'p Arc<dyn ProtocolFactory>>,
    p: &TcpPacket<'_>,
    transport: Transport,
) -> Option<(&'p Arc<dyn ProtocolFactory>, ConnInfo)> {
    let (factory, server_is_dst) = match (get(p.dport), get(p.sport)) {
        (Some(f), _) => (f, true),
        (None, Some(f)) => (f, false),
        (None, None) => return None,
    };
    let conn = if server_is_dst {
        ConnInfo::new(p.src, p.sport, p.dst, p.dport, transport)
    } else {
        ConnInfo::new(p.dst, p.dport, p.src, p.sport, transport)
    };
    Some((factory, conn))
}

/// Builds the state of a new connection, if one of its ports belongs to a protocol.
fn new_flow(
    ports: &PortMap,
    networks: &Networks,
    id: u64,
    key: FlowKey,
    p: &TcpPacket<'_>,
) -> Option<Flow> {
    let (factory, mut conn) = by_port(|port| ports.get(port), p, Transport::Tcp)?;
    conn.direction = networks.direction(conn.client_ip, conn.server_ip);
    tracing::debug!(target: "tcp", "{conn}: new {} connection", factory.name());
    Some(Flow {
        id,
        key,
        conn,
        parser: ParserSlot::Lazy(Arc::clone(factory)),
        max_buffer: factory.max_buffer(),
        streams: Default::default(),
        last_seen: p.ts,
        server_active: Ts::default(),
        timeout: factory.connection_timeout(),
        next_expire: p.ts,
    })
}

/// Whether a packet of an unknown connection starts following it: a SYN or data,
/// not a bare ACK or FIN.
fn opens_flow(p: &TcpPacket<'_>) -> bool {
    !p.payload.is_empty() || p.missing != 0 || p.flags & TCP_SYN != 0
}

/// A connection's parser: made when the first payload (or loss) arrives, so that an
/// idle or half-open connection holds no parser state.
enum ParserSlot {
    Lazy(Arc<dyn ProtocolFactory>),
    Live(Box<dyn Parser>),
    /// It stopped (protocol upgrade, encryption): never called again.
    Stopped,
}

impl ParserSlot {
    /// The running parser, if one was made and has not stopped.
    fn live(&mut self) -> Option<&mut Box<dyn Parser>> {
        match self {
            ParserSlot::Live(p) => Some(p),
            _ => None,
        }
    }

    /// The parser for `c`: made now if this is the first chunk that needs one (a
    /// FIN before any payload needs none).
    fn for_chunk(&mut self, conn: &ConnInfo, c: &Chunk<'_>) -> Option<&mut Box<dyn Parser>> {
        if let ParserSlot::Lazy(f) = self {
            if matches!(c, Chunk::Fin) {
                return None;
            }
            *self = ParserSlot::Live(f.new_parser(conn));
        }
        self.live()
    }
}

/// Engine-side state of one direction: reassembly plus the unconsumed tail.
#[derive(Default)]
struct Stream {
    reasm: Reassembler,
    app: AppBuffer,
}

struct Flow {
    /// Creation order, for deterministic flushing.
    id: u64,
    key: FlowKey,
    conn: ConnInfo,
    parser: ParserSlot,
    max_buffer: usize,
    streams: [Stream; 2],
    last_seen: Ts,
    /// Packet time of the server's latest payload.
    server_active: Ts,
    timeout: Duration,
    /// Packet time of the next transaction-timeout check.
    next_expire: Ts,
}

impl table::Entry for Flow {
    fn key(&self) -> &FlowKey {
        &self.key
    }

    #[inline]
    fn warm_lines(&self) {
        prefetch(&self.key);
        prefetch(&self.conn);
        prefetch(&self.conn.client_ip);
        prefetch(&self.parser);
        prefetch(&self.last_seen);
        prefetch(&self.next_expire);
        for st in &self.streams {
            prefetch(&st.reasm);
            prefetch(&st.app);
        }
    }

    /// The parser's state and the buffered tails, where a segment's parser call
    /// starts.
    #[inline]
    fn warm_state(&self) {
        if let ParserSlot::Live(p) = &self.parser {
            p.warm();
            p.prefetch(Prefetch::Fields);
        }
        for st in &self.streams {
            if let Some(b) = st.app.first_byte() {
                prefetch(b);
            }
        }
    }

    #[inline]
    fn warm_deep(&self) {
        if let ParserSlot::Live(p) = &self.parser {
            p.prefetch(Prefetch::Owned);
        }
    }
}

impl Flow {
    fn dir_of(&self, src: IpAddr, sport: u16) -> Dir {
        if (src, sport) == (self.conn.client_ip, self.conn.client_port) {
            Dir::ToServer
        } else {
            Dir::ToClient
        }
    }

    /// Each endpoint's sequence space in `key` order, for the tombstone.
    fn spans(&self, key: &FlowKey) -> [Option<Span>; 2] {
        let span = |d: Dir| {
            self.streams[d.idx()]
                .reasm
                .span()
                .map(|(isn, first, end)| Span { isn, first, end })
        };
        let client_is_a = key.is_a(self.conn.client_ip, self.conn.client_port);
        if client_is_a {
            [span(Dir::ToServer), span(Dir::ToClient)]
        } else {
            [span(Dir::ToClient), span(Dir::ToServer)]
        }
    }
}

/// Why a connection leaves the table: only closed ones leave a tombstone.
#[derive(Clone, Copy)]
enum End {
    /// Both FINs, or an RST (with the RST's sender and sequence number).
    Closed(Option<((IpAddr, u16), u32)>),
    /// Idle expiry, tuple reuse, end of input.
    Dropped,
}

/// Parser-facing state of one direction, borrowed apart from its reassembler.
struct Feed<'a> {
    conn: &'a ConnInfo,
    parser: &'a mut ParserSlot,
    app: &'a mut AppBuffer,
    out: &'a mut Vec<Transaction>,
    dir: Dir,
    ts: Ts,
    max_buffer: usize,
}

impl Feed<'_> {
    /// Hands one reassembled chunk to the parser; forgets a parser that stopped.
    fn chunk(&mut self, c: Chunk<'_>, counters: &mut Counters) {
        let Some(parser) = self.parser.for_chunk(self.conn, &c) else {
            return;
        };
        let mut ctx = Ctx::new(self.ts, self.out, counters);
        let r = self.app.deliver(
            parser.as_mut(),
            self.dir,
            c,
            self.max_buffer,
            self.conn,
            &mut ctx,
        );
        if r == Some(Progress::Stop) {
            *self.parser = ParserSlot::Stopped;
        }
    }
}

pub struct FlowTable {
    ports: PortMap,
    /// Boxed flows behind 16-byte slots: a large or mostly idle table costs little
    /// beyond the flows themselves, and a segment's slot can be prefetched.
    flows: FlowMap<Flow>,
    expiry: BinaryHeap<Reverse<(Ts, u64, FlowKey)>>,
    closed: ClosedFlows,
    limits: FlowLimits,
    next_id: u64,
    total_ooo: usize,
    now: Ts,
    scratch: Vec<Transaction>,
    networks: Networks,
    /// Datagrams of the UDP protocols, by 5-tuple.
    udp: udp::UdpFlows,
    /// ICMP messages, by requester, responder and identifier.
    icmp: udp::UdpFlows,
    /// Network flow accounting (`flows:`), of every packet the reader forwards.
    netflows: Option<netflow::NetFlows>,
}

impl FlowTable {
    /// A table for the protocols of `ports` (a [`PortMap`], or the protocol list it
    /// is built from).
    pub fn new(ports: impl Into<PortMap>, limits: FlowLimits) -> FlowTable {
        FlowTable {
            ports: ports.into(),
            flows: FlowMap::default(),
            expiry: BinaryHeap::new(),
            closed: ClosedFlows::new(limits.max_closed, limits.closed_timeout),
            limits,
            next_id: 0,
            total_ooo: 0,
            now: Ts::ZERO,
            scratch: Vec::new(),
            networks: Networks::default(),
            udp: udp::UdpFlows::new(limits.max_flows, udp::UDP),
            icmp: udp::UdpFlows::new(limits.max_flows, udp::ICMP),
            netflows: None,
        }
    }

    /// Follows network flows (`flows:`) as `settings` say: see [`FlowTable::account`].
    pub fn with_netflows(mut self, settings: Option<NetFlowSettings>) -> FlowTable {
        self.netflows = settings.map(netflow::NetFlows::new);
        self
    }

    /// Network flows followed now (0 when flows are off).
    pub fn netflow_len(&self) -> usize {
        self.netflows.as_ref().map_or(0, |n| n.len())
    }

    /// Counts packets into their network flows (`flows:`), reporting the flows whose
    /// report is due or which ended on the way. Independent of the protocol tables.
    pub fn account(&mut self, recs: &[FlowRec], sink: &mut dyn EventSink, counters: &mut Counters) {
        if let Some(n) = &mut self.netflows {
            for r in recs {
                n.packet(r, &self.networks, sink, counters);
            }
        }
    }

    /// Sets the internal networks that decide `network.direction`.
    pub fn with_internal_networks(mut self, networks: Networks) -> FlowTable {
        self.networks = networks;
        self
    }

    /// True when either port belongs to a configured TCP protocol.
    pub fn wants_ports(&self, sport: u16, dport: u16) -> bool {
        self.ports.wants(sport, dport)
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when either port belongs to a configured UDP protocol.
    pub fn wants_udp_ports(&self, sport: u16, dport: u16) -> bool {
        self.ports.wants_udp(sport, dport)
    }

    /// UDP flows open.
    pub fn udp_len(&self) -> usize {
        self.udp.len()
    }

    /// True when a protocol follows ICMP messages.
    pub fn wants_icmp(&self) -> bool {
        self.ports.wants_icmp()
    }

    /// ICMP flows open.
    pub fn icmp_len(&self) -> usize {
        self.icmp.len()
    }

    /// Entries of the UDP flows' expiry heap (live flows and not yet dropped ones).
    pub fn udp_expiry_len(&self) -> usize {
        self.udp.expiry_len()
    }

    /// Closed connections remembered (tombstones).
    pub fn closed_len(&self) -> usize {
        self.closed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.len() == 0
    }

    /// Bytes held in out-of-order buffers across all streams.
    pub fn ooo_bytes(&self) -> usize {
        self.total_ooo
    }

    /// Processes one TCP segment (or, by [`TcpPacket::transport`], one UDP datagram
    /// or ICMP message).
    pub fn process_tcp(
        &mut self,
        p: &TcpPacket<'_>,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        let key = FlowKey::of(p);
        let hash = self.flows.hash(&key);
        self.process_keyed(p, key, hash, sink, counters);
    }

    /// Processes segments `0..n` (`pkt(i)` is the i-th) in order, each exactly as
    /// [`FlowTable::process_tcp`] would, while the memory of the segments a few places
    /// ahead is asked for in four steps: the table slot (16 ahead), the flow it points
    /// to (8), the flow's parser state and buffered tails (4), what the parser state
    /// points to (2). Each step reads only what the step before brought in, so the
    /// misses of several segments overlap instead of stalling one after another.
    #[inline(always)]
    pub fn process_batch<'a>(
        &mut self,
        n: usize,
        pkt: impl Fn(usize) -> TcpPacket<'a>,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        const AHEAD: usize = 16;
        const FLOW_AHEAD: usize = 8;
        const STATE_AHEAD: usize = 4;
        const DEEP_AHEAD: usize = 2;
        const RING: usize = 32;
        let mut ring = [(FlowKey::default(), 0u64); RING];
        #[inline(always)]
        fn prepare(flows: &FlowMap<Flow>, p: &TcpPacket<'_>) -> (FlowKey, u64) {
            let key = FlowKey::of(p);
            let hash = flows.hash(&key);
            flows.prefetch_slot(hash);
            (key, hash)
        }
        for (j, r) in ring.iter_mut().enumerate().take(n.min(AHEAD)) {
            *r = prepare(&self.flows, &pkt(j));
        }
        for i in 0..n {
            if i + AHEAD < n {
                ring[(i + AHEAD) % RING] = prepare(&self.flows, &pkt(i + AHEAD));
            }
            if i + FLOW_AHEAD < n {
                self.flows.prefetch_flow(ring[(i + FLOW_AHEAD) % RING].1);
            }
            if i + STATE_AHEAD < n {
                self.flows.prefetch_state(ring[(i + STATE_AHEAD) % RING].1);
            }
            if i + DEEP_AHEAD < n {
                self.flows.prefetch_deep(ring[(i + DEEP_AHEAD) % RING].1);
            }
            let (key, hash) = ring[i % RING];
            self.process_keyed(&pkt(i), key, hash, sink, counters);
        }
    }

    fn process_keyed(
        &mut self,
        p: &TcpPacket<'_>,
        key: FlowKey,
        hash: u64,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        self.advance(p.ts, sink, counters);
        match p.transport {
            Transport::Tcp => {}
            Transport::Udp => {
                let ports = &self.ports;
                let open = || by_port(|port| ports.get_udp(port), p, Transport::Udp);
                self.udp
                    .datagram(&self.networks, key, p, open, sink, counters);
                return;
            }
            Transport::Icmp | Transport::Icmpv6 => {
                let ports = &self.ports;
                let open = || {
                    let factory = ports.get_icmp()?;
                    let (ty, code) = match p.payload {
                        [ty, code, ..] => (*ty, *code),
                        _ => (0, 0),
                    };
                    // The key's first address is the requester's.
                    let client_is_src = key.a == addr_bytes(p.src);
                    let conn = if client_is_src {
                        ConnInfo::icmp(p.src, p.dst, ty, code)
                    } else {
                        ConnInfo::icmp(p.dst, p.src, ty, code)
                    };
                    Some((factory, conn))
                };
                self.icmp
                    .datagram(&self.networks, key, p, open, sink, counters);
                return;
            }
        }
        if p.flags & TCP_SYN != 0 && p.flags & TCP_ACK == 0 {
            // A fresh SYN on a tuple we track at another position: a new connection.
            let reused = match self.flows.get_mut(hash, &key) {
                Some(f) => {
                    let d = f.dir_of(p.src, p.sport);
                    !f.streams[d.idx()].reasm.syn(p.seq)
                }
                None => false,
            };
            if reused {
                self.close_flow(&key, End::Dropped, sink, counters);
                counters.flows_closed += 1;
            }
        }
        if p.flags & TCP_RST != 0 {
            if self.flows.contains(hash, &key) {
                let rst = Some(((p.src, p.sport), p.seq));
                self.close_flow(&key, End::Closed(rst), sink, counters);
                counters.flows_closed += 1;
            }
            return;
        }
        let limits = self.limits.reasm;
        let f = match self.flows.get_mut(hash, &key) {
            Some(f) => f,
            None => {
                if !opens_flow(p) {
                    return; // a bare ACK/FIN of a connection we do not follow
                }
                if self.closed.is_late(&key, p, counters) {
                    return; // a late segment of a connection that has closed
                }
                if self.flows.len() >= self.limits.max_flows {
                    // Full: a packet that would open a connection ends the least
                    // recently active one first (if it belongs to a protocol).
                    if !self.wants_ports(p.sport, p.dport) {
                        return;
                    }
                    self.evict_oldest(sink, counters);
                    if self.flows.len() >= self.limits.max_flows {
                        counters.flow_table_full += 1;
                        return;
                    }
                }
                let Some(flow) = new_flow(&self.ports, &self.networks, self.next_id, key, p) else {
                    return;
                };
                self.next_id += 1;
                self.expiry
                    .push(Reverse((p.ts.saturating_add(flow.timeout), flow.id, key)));
                counters.flows_created += 1;
                self.flows.insert(hash, Box::new(flow))
            }
        };
        f.last_seen = p.ts;
        let dir = f.dir_of(p.src, p.sport);
        if dir == Dir::ToClient && !p.payload.is_empty() {
            f.server_active = p.ts;
        }
        if p.flags & TCP_SYN != 0 {
            f.streams[dir.idx()].reasm.syn(p.seq);
        }
        let check_expiry = p.ts >= f.next_expire;
        if check_expiry {
            f.next_expire = p.ts.saturating_add(EXPIRE_CHECK_EVERY);
        }
        let Flow {
            conn,
            parser,
            streams,
            max_buffer,
            server_active,
            ..
        } = f;
        if let Some(pr) = parser.live().filter(|_| check_expiry) {
            let mut ctx = Ctx::new(p.ts, &mut self.scratch, counters);
            ctx.server_active = *server_active;
            pr.expire(p.ts, &mut ctx);
        }
        let [s0, s1] = streams;
        let (this, other) = if dir == Dir::ToServer {
            (s0, s1)
        } else {
            (s1, s0)
        };
        // The other direction first: our ACK may prove one of its holes lost.
        if p.flags & TCP_ACK != 0 {
            let mut feed = Feed {
                conn,
                parser,
                app: &mut other.app,
                out: &mut self.scratch,
                dir: dir.other(),
                ts: p.ts,
                max_buffer: *max_buffer,
            };
            other
                .reasm
                .peer_ack(p.ack, &mut self.total_ooo, counters, &mut |c, cn| {
                    feed.chunk(c, cn)
                });
        }
        let mut feed = Feed {
            conn,
            parser,
            app: &mut this.app,
            out: &mut self.scratch,
            dir,
            ts: p.ts,
            max_buffer: *max_buffer,
        };
        this.reasm.segment(
            p.seq,
            p.payload,
            p.missing,
            p.flags & TCP_FIN != 0,
            &limits,
            &mut self.total_ooo,
            counters,
            &mut |c, cn| feed.chunk(c, cn),
        );
        let done = this.reasm.fin_done() && other.reasm.fin_done();
        for tx in self.scratch.drain(..) {
            sink.emit(conn, tx);
        }
        if done {
            self.close_flow(&key, End::Closed(None), sink, counters);
            counters.flows_closed += 1;
        }
    }

    /// Ends the least recently active connection (counted in `flows_evicted`).
    /// The expiry queue's front is it when its deadline is still the real one; a
    /// few stale entries are refreshed on the way, and if none is found exact the
    /// oldest seen goes.
    fn evict_oldest(&mut self, sink: &mut dyn EventSink, counters: &mut Counters) {
        let mut oldest: Option<(Ts, FlowKey)> = None;
        for _ in 0..8 {
            let Some(Reverse((deadline, id, key))) = self.expiry.pop() else {
                break;
            };
            let hash = self.flows.hash(&key);
            let Some(f) = self.flows.get(hash, &key).filter(|f| f.id == id) else {
                continue;
            };
            let due = f.last_seen.saturating_add(f.timeout);
            if due <= deadline {
                oldest = Some((f.last_seen, key));
                break;
            }
            self.expiry.push(Reverse((due, id, key)));
            if oldest.is_none_or(|(t, _)| f.last_seen < t) {
                oldest = Some((f.last_seen, key));
            }
        }
        if let Some((_, key)) = oldest {
            tracing::debug!(target: "tcp", "flow table full: evicting the least recently active connection");
            self.close_flow(&key, End::Dropped, sink, counters);
            counters.flows_evicted += 1;
        }
    }

    /// Moves the packet clock forward and expires idle connections.
    pub fn advance(&mut self, now: Ts, sink: &mut dyn EventSink, counters: &mut Counters) {
        if let Some(n) = &mut self.netflows {
            n.advance(now, &self.networks, sink, counters);
        }
        if now <= self.now {
            return;
        }
        self.now = now;
        self.closed.expire(now);
        self.udp.expire(now, sink, counters);
        self.icmp.expire(now, sink, counters);
        while let Some(Reverse((deadline, id, key))) = self.expiry.peek().copied() {
            if deadline > now {
                break;
            }
            self.expiry.pop();
            let Some(f) = self.flows.get(self.flows.hash(&key), &key) else {
                continue;
            };
            if f.id != id {
                continue;
            }
            let due = f.last_seen.saturating_add(f.timeout);
            if due > now {
                self.expiry.push(Reverse((due, id, key)));
                continue;
            }
            self.close_flow(&key, End::Dropped, sink, counters);
            counters.flows_expired += 1;
        }
    }

    /// Ends every connection (end of input): flushes holes, then each parser.
    pub fn flush_all(&mut self, sink: &mut dyn EventSink, counters: &mut Counters) {
        let mut keys: Vec<(u64, FlowKey)> = self.flows.iter().map(|f| (f.id, f.key)).collect();
        keys.sort_unstable();
        for (_, k) in keys {
            self.close_flow(&k, End::Dropped, sink, counters);
        }
        self.expiry.clear();
        self.closed.clear();
        self.udp.flush_all(self.now, sink, counters);
        self.icmp.flush_all(self.now, sink, counters);
        if let Some(n) = &mut self.netflows {
            n.flush_all(self.now, &self.networks, sink, counters);
        }
    }

    fn close_flow(
        &mut self,
        key: &FlowKey,
        end: End,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        let Some(mut f) = self.flows.remove(self.flows.hash(key), key) else {
            return;
        };
        let ts = self.now.max(f.last_seen);
        tracing::debug!(target: "tcp", "{}: connection ended", f.conn);
        let Flow {
            conn,
            parser,
            streams,
            max_buffer,
            ..
        } = &mut *f;
        for (i, st) in streams.iter_mut().enumerate() {
            let dir = if i == 0 { Dir::ToServer } else { Dir::ToClient };
            let mut feed = Feed {
                conn,
                parser,
                app: &mut st.app,
                out: &mut self.scratch,
                dir,
                ts,
                max_buffer: *max_buffer,
            };
            st.reasm.flush(&mut self.total_ooo, counters, &mut |c, cn| {
                feed.chunk(c, cn)
            });
            st.reasm.discard(&mut self.total_ooo);
        }
        if let Some(pr) = parser.live() {
            let mut ctx = Ctx::new(ts, &mut self.scratch, counters);
            pr.close(&mut ctx);
        }
        for tx in self.scratch.drain(..) {
            sink.emit(conn, tx);
        }
        if let End::Closed(rst) = end {
            let mut spans = f.spans(key);
            // An RST from an endpoint that sent nothing else still places it.
            if let Some((from, seq)) = rst {
                let i = usize::from(!key.is_a(from.0, from.1));
                spans[i].get_or_insert(Span {
                    isn: None,
                    first: seq,
                    end: seq,
                });
            }
            self.closed.insert(*key, spans, ts, counters);
        }
    }
}

#[cfg(test)]
mod tests;
