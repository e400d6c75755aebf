//! Datagram flows: the datagrams of one 5-tuple on a UDP protocol's port, or the ICMP
//! messages of one exchange, each handed whole to that protocol's parser (one
//! [`Parser::parse`] call per datagram; a datagram is a message, nothing is
//! reassembled or buffered by the engine). For UDP the side on the protocol's port
//! is the server, as for TCP; for ICMP the requester is the client. A flow ends when
//! it has been idle for the protocol's transaction timeout ([`Parser::close`] then
//! publishes what is still waiting, such as unanswered queries), at once when its
//! parser has nothing in flight after a datagram ([`Parser::idle`]: a DNS answer to
//! the only query), or at the end of the input. The table is bounded by
//! `pipeline.max_flows` (UDP and ICMP each have a table of their own beside the TCP
//! one): a new flow beyond it ends the least recently active one first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::{EventSink, FlowKey, TcpPacket};
use crate::event::direction::Networks;
use crate::event::{ConnInfo, Transaction};
use crate::protos::{Ctx, Dir, Parser, Progress, ProtocolFactory};
use crate::stats::Counters;
use crate::time::Ts;

/// How often (packet time) a busy flow's parser is asked to expire transactions.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

struct UdpFlow {
    id: u64,
    conn: ConnInfo,
    /// `None` once the parser stopped following the flow.
    parser: Option<Box<dyn Parser>>,
    last_seen: Ts,
    timeout: Duration,
    next_expire: Ts,
}

/// The counters one kind of datagram flow counts into.
pub(super) struct Tally {
    datagrams: fn(&mut Counters) -> &mut u64,
    created: fn(&mut Counters) -> &mut u64,
    expired: fn(&mut Counters) -> &mut u64,
    done: fn(&mut Counters) -> &mut u64,
    table_full: fn(&mut Counters) -> &mut u64,
}

pub(super) const UDP: Tally = Tally {
    datagrams: |c| &mut c.udp_datagrams,
    created: |c| &mut c.udp_flows_created,
    expired: |c| &mut c.udp_flows_expired,
    done: |c| &mut c.udp_flows_done,
    table_full: |c| &mut c.udp_flow_table_full,
};

pub(super) const ICMP: Tally = Tally {
    datagrams: |c| &mut c.icmp_messages,
    created: |c| &mut c.icmp_flows_created,
    expired: |c| &mut c.icmp_flows_expired,
    done: |c| &mut c.icmp_flows_done,
    table_full: |c| &mut c.icmp_flow_table_full,
};

/// One worker's UDP (or ICMP) flows.
pub(super) struct UdpFlows {
    /// Keys come from the wire: std's randomly seeded hasher keeps them from being
    /// chosen to collide.
    flows: HashMap<FlowKey, UdpFlow>,
    /// `(due, id, key)` of every flow; an entry whose flow was active since is pushed
    /// again with its new due time when it comes up.
    expiry: BinaryHeap<Reverse<(Ts, u64, FlowKey)>>,
    max_flows: usize,
    next_id: u64,
    scratch: Vec<Transaction>,
    tally: Tally,
}

impl UdpFlows {
    pub(super) fn new(max_flows: usize, tally: Tally) -> UdpFlows {
        UdpFlows {
            flows: HashMap::new(),
            expiry: BinaryHeap::new(),
            max_flows: max_flows.max(1),
            next_id: 0,
            scratch: Vec::new(),
            tally,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.flows.len()
    }

    pub(super) fn expiry_len(&self) -> usize {
        self.expiry.len()
    }

    /// One datagram `p` of flow `key`. When the flow is new, `open` names its protocol
    /// and its ends (the client first), or `None` when no protocol follows it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn datagram<'f>(
        &mut self,
        networks: &Networks,
        key: FlowKey,
        p: &TcpPacket<'_>,
        open: impl FnOnce() -> Option<(&'f Arc<dyn ProtocolFactory>, ConnInfo)>,
        sink: &mut dyn EventSink,
        counters: &mut Counters,
    ) {
        if !self.flows.contains_key(&key) {
            let Some((factory, mut conn)) = open() else {
                return;
            };
            if self.flows.len() >= self.max_flows {
                self.evict_oldest(sink, counters);
                if self.flows.len() >= self.max_flows {
                    *(self.tally.table_full)(counters) += 1;
                    return;
                }
            }
            conn.direction = networks.direction(conn.client_ip, conn.server_ip);
            tracing::debug!(target: "udp", "{conn}: new {} flow", factory.name());
            let parser = factory.new_parser(&conn);
            let timeout = factory.connection_timeout();
            let id = self.next_id;
            self.next_id += 1;
            self.expiry
                .push(Reverse((p.ts.saturating_add(timeout), id, key)));
            self.flows.insert(
                key,
                UdpFlow {
                    id,
                    conn,
                    parser: Some(parser),
                    last_seen: p.ts,
                    timeout,
                    next_expire: p.ts.saturating_add(EXPIRE_EVERY),
                },
            );
            *(self.tally.created)(counters) += 1;
        }
        let Some(f) = self.flows.get_mut(&key) else {
            return;
        };
        f.last_seen = f.last_seen.max(p.ts);
        let Some(parser) = f.parser.as_mut() else {
            return;
        };
        *(self.tally.datagrams)(counters) += 1;
        let dir = if p.src == f.conn.client_ip && p.sport == f.conn.client_port {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let mut ctx = Ctx::new(p.ts, &mut self.scratch, counters);
        if p.ts >= f.next_expire {
            parser.expire(p.ts, &mut ctx);
            f.next_expire = p.ts.saturating_add(EXPIRE_EVERY);
        }
        match parser.parse(dir, p.payload, &mut ctx) {
            Progress::Consumed { .. } => {}
            Progress::Error => ctx.counters.parse_errors += 1,
            Progress::Stop => {
                parser.close(&mut ctx);
                ctx.counters.parser_stopped += 1;
                f.parser = None;
            }
        }
        if p.missing > 0
            && let Some(parser) = f.parser.as_mut()
        {
            // The end of the datagram was cut by the snaplen.
            parser.gap(dir, u64::from(p.missing), &mut ctx);
        }
        for tx in self.scratch.drain(..) {
            sink.emit(&f.conn, tx);
        }
        if f.parser.as_ref().is_some_and(|p| p.idle()) {
            // Nothing waits for a later datagram: the flow's state goes now.
            self.close(&key, p.ts, sink, counters);
            *(self.tally.done)(counters) += 1;
        }
    }

    /// Ends the flows idle for their timeout at packet time `now`. Called for every
    /// packet: the check that nothing is due stays inline.
    #[inline]
    pub(super) fn expire(&mut self, now: Ts, sink: &mut dyn EventSink, counters: &mut Counters) {
        if self
            .expiry
            .peek()
            .is_some_and(|Reverse((due, _, _))| *due <= now)
        {
            self.expire_due(now, sink, counters);
        }
    }

    fn expire_due(&mut self, now: Ts, sink: &mut dyn EventSink, counters: &mut Counters) {
        while let Some(&Reverse((due, id, key))) = self.expiry.peek() {
            if due > now {
                break;
            }
            self.expiry.pop();
            let Some(f) = self.flows.get(&key).filter(|f| f.id == id) else {
                continue;
            };
            let due = f.last_seen.saturating_add(f.timeout);
            if due > now {
                self.expiry.push(Reverse((due, id, key)));
                continue;
            }
            self.close(&key, now, sink, counters);
            *(self.tally.expired)(counters) += 1;
        }
    }

    /// The table is full: ends the least recently active flow.
    fn evict_oldest(&mut self, sink: &mut dyn EventSink, counters: &mut Counters) {
        while let Some(Reverse((_, id, key))) = self.expiry.pop() {
            let Some(f) = self.flows.get(&key).filter(|f| f.id == id) else {
                continue;
            };
            let due = f.last_seen.saturating_add(f.timeout);
            // Active since this entry was pushed: its turn comes later.
            if let Some(&Reverse((next, _, _))) = self.expiry.peek()
                && due > next
            {
                self.expiry.push(Reverse((due, id, key)));
                continue;
            }
            let now = f.last_seen;
            self.close(&key, now, sink, counters);
            counters.flows_evicted += 1;
            return;
        }
    }

    /// End of input: ends every flow, oldest first.
    pub(super) fn flush_all(&mut self, now: Ts, sink: &mut dyn EventSink, counters: &mut Counters) {
        let mut keys: Vec<(u64, FlowKey)> = self.flows.iter().map(|(k, f)| (f.id, *k)).collect();
        keys.sort_unstable();
        for (_, k) in keys {
            self.close(&k, now, sink, counters);
        }
        self.expiry.clear();
    }

    fn close(&mut self, key: &FlowKey, now: Ts, sink: &mut dyn EventSink, counters: &mut Counters) {
        let Some(mut f) = self.flows.remove(key) else {
            return;
        };
        // Entries of ended flows stay in the heap until they come up; rebuilt from
        // the live flows when they outnumber them, so the heap stays within a
        // constant of the table (amortised O(1) per ended flow).
        if self.expiry.len() > 2 * self.flows.len() + 1024 {
            self.expiry = self
                .flows
                .iter()
                .map(|(k, f)| Reverse((f.last_seen.saturating_add(f.timeout), f.id, *k)))
                .collect();
        }
        if let Some(mut parser) = f.parser.take() {
            let mut ctx = Ctx::new(now.max(f.last_seen), &mut self.scratch, counters);
            parser.close(&mut ctx);
        }
        for tx in self.scratch.drain(..) {
            sink.emit(&f.conn, tx);
        }
    }
}
