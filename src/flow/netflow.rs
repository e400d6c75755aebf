//! Network flows (`flows:`): packets and bytes of every flow the capture carries,
//! whether or not a protocol follows its ports, reported as Packetbeat's flow events
//! every `period` and once more, final, when the flow ends.
//!
//! A flow is keyed by its Ethernet addresses (unless `allow_mismatched_eth`), VLAN
//! ids, IP addresses, IP protocol and ports (for ICMP the echo, timestamp or
//! information identifier instead), in either direction; its *source* is the sender
//! of its first packet. Counts are of on-wire frames (`orig_len`, link-layer header
//! included), as Packetbeat's.
//!
//! Time is packet time, so that a replay reports what a live capture would have:
//! reports fall at the multiples of `period` (Packetbeat aligns its ticks on the wall
//! clock the same way), a flow ends when more than `timeout` passed since its last
//! packet (its final report is stamped with that moment), and the end of the input
//! ends every flow. When the input is silent across several report instants, one
//! report is made, at the latest (the ones before would show the same counts). The
//! table is bounded by `flows.max_flows`: a new flow beyond it ends the least
//! recently active one first (final report, `netflows_evicted`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{EventSink, addr_bytes};
use crate::config::FlowsConfig;
use crate::decode::{IcmpRole, IpPacket, L2, L4};
use crate::event::direction::Networks;
use crate::event::{FlowEnd, FlowReport, Transport};
use crate::stats::Counters;
use crate::time::Ts;

/// What a flow needs of one packet; the reader makes one for every IP packet when
/// flows are on.
#[derive(Clone, Copy, Debug)]
pub struct FlowRec {
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TCP and UDP ports (0 for ICMP).
    pub sport: u16,
    pub dport: u16,
    pub transport: Transport,
    /// ICMP: type and code, and the identifier of a request or reply.
    pub icmp: [u8; 2],
    pub icmp_id: Option<u16>,
    /// The frame's length on the wire.
    pub wire_len: u32,
    pub l2: L2,
}

impl FlowRec {
    /// The record of packet `ip`, a frame of `wire_len` bytes on the wire with
    /// link-layer facts `l2`.
    pub fn of(ts: Ts, ip: &IpPacket<'_>, wire_len: u32, l2: L2) -> FlowRec {
        let (sport, dport) = ip.ports();
        let (transport, icmp, icmp_id) = match &ip.l4 {
            L4::Tcp(_) => (Transport::Tcp, [0, 0], None),
            L4::Udp(_) => (Transport::Udp, [0, 0], None),
            L4::Icmp(m) => {
                let ty_code = [
                    m.data.first().copied().unwrap_or(0),
                    m.data.get(1).copied().unwrap_or(0),
                ];
                let id = m
                    .header()
                    .filter(|h| h.role() != IcmpRole::Single)
                    .map(|h| h.id);
                (Transport::icmp(m.v6), ty_code, id)
            }
        };
        FlowRec {
            ts,
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
            transport,
            icmp,
            icmp_id,
            wire_len,
            l2,
        }
    }
}

/// How flows are followed (from `flows.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetFlowSettings {
    pub timeout: Duration,
    /// `None`: final reports only.
    pub period: Option<Duration>,
    pub max_flows: usize,
    /// Counts since the previous report (`enable_delta_flow_reports`).
    pub delta: bool,
    /// Ethernet addresses are part of the key and the report (not
    /// `allow_mismatched_eth`).
    pub macs: bool,
}

impl NetFlowSettings {
    /// The settings of one of `workers` workers (`max_flows` is shared out among
    /// them); `None` when flows are off.
    pub fn of(cfg: &FlowsConfig, workers: usize) -> Option<NetFlowSettings> {
        cfg.enabled.then(|| NetFlowSettings {
            timeout: cfg.timeout,
            period: cfg.period.filter(|p| !p.is_zero()),
            max_flows: (cfg.max_flows / workers.max(1)).max(1),
            delta: cfg.enable_delta_flow_reports,
            macs: !cfg.allow_mismatched_eth,
        })
    }
}

/// One end of a flow in its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct End {
    ip: u128,
    port: u16,
    mac: [u8; 6],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// The lower end first.
    lo: End,
    hi: End,
    proto: u8,
    v6: bool,
    macs: bool,
    vlans: [u16; 2],
    nvlans: u8,
    icmp_id: Option<u16>,
}

/// One end's port and Ethernet address in one integer.
fn port_mac(e: &End) -> u64 {
    let m = e.mac;
    u64::from(e.port) << 48 | u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// Hashed once per packet: a few integer writes rather than one per field.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(self.lo.ip);
        h.write_u128(self.hi.ip);
        h.write_u64(port_mac(&self.lo));
        h.write_u64(port_mac(&self.hi));
        let icmp = self.icmp_id.map_or(0, |id| 1 << 16 | u64::from(id));
        h.write_u64(
            u64::from(self.proto)
                | u64::from(self.v6) << 8
                | u64::from(self.macs) << 9
                | u64::from(self.nvlans) << 10
                | u64::from(self.vlans[0]) << 12
                | u64::from(self.vlans[1]) << 24
                | icmp << 36,
        );
    }
}

impl Key {
    /// The key of `r`, and whether its sender is the key's lower end.
    fn of(r: &FlowRec, macs: bool) -> (Key, bool) {
        let (smac, dmac, macs) = match r.l2.macs {
            Some((s, d)) if macs => (s, d, true),
            _ => ([0; 6], [0; 6], false),
        };
        let icmp = r.transport.is_icmp();
        let port = |p: u16| if icmp { 0 } else { p };
        let s = End {
            ip: addr_bytes(r.src),
            port: port(r.sport),
            mac: smac,
        };
        let d = End {
            ip: addr_bytes(r.dst),
            port: port(r.dport),
            mac: dmac,
        };
        let src_is_lo = s <= d;
        let (lo, hi) = if src_is_lo { (s, d) } else { (d, s) };
        let key = Key {
            lo,
            hi,
            proto: r.transport.ip_proto(),
            v6: r.src.is_ipv6(),
            macs,
            vlans: r.l2.vlans,
            nvlans: r.l2.nvlans.min(2),
            icmp_id: if icmp { r.icmp_id } else { None },
        };
        (key, src_is_lo)
    }

    fn transport(&self) -> Transport {
        match self.proto {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            _ => Transport::icmp(self.v6),
        }
    }

    fn ip(&self, e: &End) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(e.ip))
        } else {
            IpAddr::V4(Ipv4Addr::from(e.ip as u32))
        }
    }
}

struct NetFlow {
    /// Creation order: reports go out in it.
    id: u64,
    /// The sender of the first packet is the key's lower end.
    source_is_lo: bool,
    first: Ts,
    last: Ts,
    /// `[source, destination]`.
    packets: [u64; 2],
    bytes: [u64; 2],
    seen: [bool; 2],
    /// ICMP: the source's latest type and code.
    icmp: Option<(u8, u8)>,
}

impl NetFlow {
    /// Counts packet `r`, whose sender is the key's lower end when `src_is_lo`.
    #[inline]
    fn count(&mut self, r: &FlowRec, src_is_lo: bool) {
        let side = usize::from(src_is_lo != self.source_is_lo);
        self.packets[side] += 1;
        self.bytes[side] += u64::from(r.wire_len);
        self.seen[side] = true;
        self.last = self.last.max(r.ts);
        if side == 0 && r.transport.is_icmp() {
            self.icmp = Some((r.icmp[0], r.icmp[1]));
        }
    }
}

/// One worker's network flows.
pub struct NetFlows {
    /// Keys come from the wire: a seeded hasher keeps them from being chosen to
    /// collide.
    flows: HashMap<Key, NetFlow, foldhash::fast::RandomState>,
    /// `(due, id, key)`: the flow ends once packet time passes `due`; an entry whose
    /// flow was active since is pushed again with its new due time when it comes up.
    expiry: BinaryHeap<Reverse<(Ts, u64, Key)>>,
    settings: NetFlowSettings,
    next_id: u64,
    now: Ts,
    /// The next report instant; set by the first packet.
    next_report: Option<Ts>,
    scratch: Vec<(u64, Key)>,
}

impl NetFlows {
    pub fn new(settings: NetFlowSettings) -> NetFlows {
        NetFlows {
            flows: HashMap::default(),
            expiry: BinaryHeap::new(),
            settings,
            next_id: 0,
            now: Ts::ZERO,
            next_report: None,
            scratch: Vec::new(),
        }
    }

    /// Flows followed now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Entries of the expiry queue (live flows and not yet dropped ones).
    pub fn expiry_len(&self) -> usize {
        self.expiry.len()
    }

    /// Counts one packet into its flow (made if new).
    pub fn packet(
        &mut self,
        r: &FlowRec,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        self.advance(r.ts, networks, sink, counters);
        let (key, src_is_lo) = Key::of(r, self.settings.macs);
        if let Some(f) = self.flows.get_mut(&key) {
            f.count(r, src_is_lo);
            counters.netflow_packets += 1;
            return;
        }
        {
            if self.flows.len() >= self.settings.max_flows {
                self.evict_oldest(networks, sink, counters);
            }
            let id = self.next_id;
            self.next_id += 1;
            self.expiry.push(Reverse((
                r.ts.saturating_add(self.settings.timeout),
                id,
                key,
            )));
            self.flows.insert(
                key,
                NetFlow {
                    id,
                    source_is_lo: src_is_lo,
                    first: r.ts,
                    last: r.ts,
                    packets: [0; 2],
                    bytes: [0; 2],
                    seen: [false; 2],
                    icmp: None,
                },
            );
            counters.netflows_created += 1;
        }
        if let Some(f) = self.flows.get_mut(&key) {
            f.count(r, src_is_lo);
            counters.netflow_packets += 1;
        }
    }

    /// Moves packet time to `now`: the report instants passed are reported, the
    /// flows idle for longer than the timeout end.
    pub fn advance(
        &mut self,
        now: Ts,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        if now <= self.now {
            return;
        }
        self.now = now;
        if let Some(period) = self.settings.period {
            let p = (period.as_nanos() as u64).max(1);
            match self.next_report {
                None => {
                    self.next_report = Some(Ts((now.0 / p).saturating_add(1).saturating_mul(p)))
                }
                Some(next) if now >= next => {
                    // The latest report instant passed; the ones before it, when
                    // the input was silent across them, would show the same.
                    let at = Ts(now.0 / p * p);
                    self.expire_before(at, networks, sink, counters);
                    self.report_all(at, networks, sink, counters);
                    self.next_report = Some(Ts(at.0.saturating_add(p)));
                }
                Some(_) => {}
            }
        }
        self.expire_before(now, networks, sink, counters);
    }

    /// Ends every flow (end of input), oldest first, stamped `now` (or the flow's
    /// last packet if later).
    pub fn flush_all(
        &mut self,
        now: Ts,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        let now = now.max(self.now);
        self.order();
        let keys = std::mem::take(&mut self.scratch);
        for (_, key) in &keys {
            if let Some(f) = self.flows.remove(key) {
                let at = now.max(f.last);
                self.emit(key, &f, at, true, networks, sink, counters);
            }
        }
        self.scratch = keys;
        self.expiry.clear();
        self.next_report = None;
    }

    /// `scratch` = every flow's `(id, key)`, oldest first.
    fn order(&mut self) {
        self.scratch.clear();
        self.scratch
            .extend(self.flows.iter().map(|(k, f)| (f.id, *k)));
        self.scratch.sort_unstable();
    }

    /// Reports every flow at `at`, oldest first (with delta reports, their counts
    /// start again from zero).
    fn report_all(
        &mut self,
        at: Ts,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        self.order();
        let keys = std::mem::take(&mut self.scratch);
        for (_, key) in &keys {
            if let Some(f) = self.flows.get(key) {
                self.emit(key, f, at, false, networks, sink, counters);
            }
            if self.settings.delta
                && let Some(f) = self.flows.get_mut(key)
            {
                f.packets = [0; 2];
                f.bytes = [0; 2];
            }
        }
        self.scratch = keys;
    }

    /// Ends the flows whose last packet is more than the timeout before `limit`.
    fn expire_before(
        &mut self,
        limit: Ts,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        while let Some(&Reverse((due, id, key))) = self.expiry.peek() {
            if due >= limit {
                break;
            }
            self.expiry.pop();
            let Some(f) = self.flows.get(&key).filter(|f| f.id == id) else {
                continue;
            };
            let due = f.last.saturating_add(self.settings.timeout);
            if due >= limit {
                self.expiry.push(Reverse((due, id, key)));
                continue;
            }
            if let Some(f) = self.flows.remove(&key) {
                self.emit(&key, &f, due, true, networks, sink, counters);
                counters.netflows_expired += 1;
            }
        }
    }

    /// The table is full: ends the least recently active flow, stamped with the
    /// current packet time.
    fn evict_oldest(
        &mut self,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        // Entries of ended flows stay until they come up: rebuilt from the live
        // flows when they outnumber them, so the queue stays within a constant of
        // the table.
        if self.expiry.len() > 2 * self.flows.len() + 1024 {
            let timeout = self.settings.timeout;
            self.expiry = self
                .flows
                .iter()
                .map(|(k, f)| Reverse((f.last.saturating_add(timeout), f.id, *k)))
                .collect();
        }
        while let Some(Reverse((_, id, key))) = self.expiry.pop() {
            let Some(f) = self.flows.get(&key).filter(|f| f.id == id) else {
                continue;
            };
            let due = f.last.saturating_add(self.settings.timeout);
            // Active since this entry was pushed: its turn comes later.
            if let Some(&Reverse((next, _, _))) = self.expiry.peek()
                && due > next
            {
                self.expiry.push(Reverse((due, id, key)));
                continue;
            }
            if let Some(f) = self.flows.remove(&key) {
                let at = self.now.max(f.last);
                self.emit(&key, &f, at, true, networks, sink, counters);
                counters.netflows_evicted += 1;
            }
            return;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        key: &Key,
        f: &NetFlow,
        at: Ts,
        is_final: bool,
        networks: &Networks,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        let transport = key.transport();
        let (s, d) = if f.source_is_lo {
            (&key.lo, &key.hi)
        } else {
            (&key.hi, &key.lo)
        };
        let end = |e: &End, i: usize| FlowEnd {
            ip: key.ip(e),
            port: (!transport.is_icmp()).then_some(e.port),
            mac: key.macs.then_some(e.mac),
            packets: f.packets[i],
            bytes: f.bytes[i],
            seen: f.seen[i],
        };
        let (source, destination) = (end(s, 0), end(d, 1));
        let r = FlowReport {
            at,
            first: f.first,
            last: f.last,
            is_final,
            transport,
            direction: networks.direction(source.ip, destination.ip),
            source,
            destination,
            vlans: key.vlans[..usize::from(key.nvlans)].to_vec(),
            icmp: f.icmp,
            icmp_id: key.icmp_id,
        };
        counters.netflow_reports += 1;
        sink.emit_flow(&r);
    }
}

#[cfg(test)]
mod tests;
