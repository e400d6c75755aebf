//! Tombstones of closed connections (a short, TIME_WAIT-like memory).
//!
//! After both FINs (or an RST) a connection leaves the flow table, but its segments
//! keep arriving for a while: retransmissions the capture saw after the close (the
//! copy the receiver lost), duplicates of `any`/loopback or SPAN captures, a
//! retransmitted SYN delayed in the network. Without a memory of the closed
//! connection such a segment would open a new flow (mid-stream pickup), and its
//! data would be published again as an unmatched request or response.
//!
//! A tombstone keeps the 5-tuple and each direction's sequence space for
//! `closed_timeout` of packet time, bounded in number (oldest evicted first,
//! counted). It is consulted only where a segment would otherwise open a flow, so
//! the packets of live connections never look it up. A segment that does not fit
//! the old connection (a SYN with another ISN: the tuple is being reused) removes
//! the tombstone and opens its connection as usual.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::{FlowKey, TCP_ACK, TCP_SYN, TcpPacket};
use crate::stats::Counters;
use crate::time::Ts;

/// How far around the sequence numbers it was seen to use a segment may lie and
/// still belong to a closed connection: data in flight when an RST cut it (up to a
/// receive window), and bytes the capture missed. Only segments that also
/// acknowledge the peer's old sequence space are matched this loosely.
const SEQ_SLACK: i64 = 4 << 20;

/// Signed distance from `b` to `a` in sequence space.
#[inline]
fn diff(a: u32, b: u32) -> i64 {
    a.wrapping_sub(b) as i32 as i64
}

/// The sequence space one endpoint used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    /// Sequence number of its SYN, when seen.
    pub isn: Option<u32>,
    /// Where it started: the SYN, or the first segment seen mid-connection.
    pub first: u32,
    /// First sequence number after everything it sent (its FIN included).
    pub end: u32,
}

impl Span {
    /// A SYN of this connection: its ISN, or before the data when the ISN is unknown.
    fn is_syn(&self, seq: u32) -> bool {
        match self.isn {
            Some(isn) => seq == isn,
            None => (-SEQ_SLACK..0).contains(&diff(seq, self.first)),
        }
    }

    /// `seq` lies in this sequence space (with slack after its end, and before its
    /// start when that was not the SYN).
    fn holds(&self, seq: u32) -> bool {
        let below = if self.isn.is_some() { 0 } else { SEQ_SLACK };
        diff(seq, self.first) >= -below && diff(seq, self.end) <= SEQ_SLACK
    }
}

struct Tombstone {
    generation: u64,
    /// The endpoints' sequence spaces, in `FlowKey` order (`a`, `b`).
    spans: [Option<Span>; 2],
}

/// Closed connections of one worker, by 5-tuple.
pub(super) struct ClosedFlows {
    map: HashMap<FlowKey, Tombstone, foldhash::fast::RandomState>,
    /// Insertion order = close time order (packet time only moves forward).
    order: VecDeque<(Ts, u64, FlowKey)>,
    next_generation: u64,
    max: usize,
    timeout: Duration,
}

impl ClosedFlows {
    pub fn new(max: usize, timeout: Duration) -> ClosedFlows {
        ClosedFlows {
            map: HashMap::default(),
            order: VecDeque::new(),
            next_generation: 0,
            max,
            timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries in the expiry queue, stale ones included.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.order.len()
    }

    /// Remembers a connection closed at `now`; evicts the oldest at the limit.
    pub fn insert(
        &mut self,
        key: FlowKey,
        spans: [Option<Span>; 2],
        now: Ts,
        counters: &mut Counters,
    ) {
        if self.max == 0 || self.timeout.is_zero() {
            return;
        }
        while self.map.len() >= self.max {
            let Some((_, generation, k)) = self.order.pop_front() else {
                break;
            };
            if self.remove_if(&k, generation) {
                counters.tcp_closed_evictions += 1;
            }
        }
        // Entries of tombstones removed early stay queued until they expire; keep
        // the queue within a constant factor of the table.
        if self.order.len() >= self.max.max(1024).saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(_, g, k)| map.get(k).is_some_and(|t| t.generation == *g));
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.map.insert(key, Tombstone { generation, spans });
        self.order
            .push_back((now.saturating_add(self.timeout), generation, key));
    }

    /// Forgets the connections closed longer than `timeout` ago.
    pub fn expire(&mut self, now: Ts) {
        while let Some(&(deadline, generation, key)) = self.order.front() {
            if deadline > now {
                break;
            }
            self.order.pop_front();
            self.remove_if(&key, generation);
        }
    }

    /// Forgets everything (end of input).
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    /// Called for a segment that would open a new flow on `key`. True when it
    /// belongs to the connection closed there (it is counted and must be dropped);
    /// false otherwise, and a tombstone it does not fit is removed (the tuple is
    /// being reused).
    pub fn is_late(&mut self, key: &FlowKey, p: &TcpPacket<'_>, counters: &mut Counters) -> bool {
        let Some(t) = self.map.get(key) else {
            return false;
        };
        let me = usize::from(!key.is_a(p.src, p.sport));
        let (mine, peer) = (t.spans[me], t.spans[1 - me]);
        let syn = p.flags & TCP_SYN != 0;
        let ack = p.flags & TCP_ACK != 0;
        let late = match (syn, ack) {
            // A retransmitted SYN: the old ISN.
            (true, false) => mine.is_some_and(|s| s.is_syn(p.seq)),
            // A retransmitted SYN-ACK, or the answer to a late copy of the old SYN.
            (true, true) => {
                mine.is_some_and(|s| s.isn == Some(p.seq))
                    || peer.is_some_and(|s| s.isn.map(|i| i.wrapping_add(1)) == Some(p.ack))
            }
            // Data inside the old sequence space, acknowledging the peer's.
            _ => {
                mine.is_some_and(|s| s.holds(p.seq))
                    && (!ack || peer.is_none_or(|s| s.holds(p.ack)))
            }
        };
        if late {
            tracing::debug!(
                target: "tcp",
                "{}:{} -> {}:{}: late segment of a closed connection (seq {}, flags {:#04x}) dropped",
                p.src, p.sport, p.dst, p.dport, p.seq, p.flags
            );
            counters.tcp_closed_segments += 1;
        } else {
            self.map.remove(key);
        }
        late
    }

    fn remove_if(&mut self, key: &FlowKey, generation: u64) -> bool {
        if self
            .map
            .get(key)
            .is_some_and(|t| t.generation == generation)
        {
            self.map.remove(key);
            true
        } else {
            false
        }
    }
}
