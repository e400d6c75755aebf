//! Counters for everything that is seen, parsed, published or lost. Each worker owns
//! its own `Counters` (no shared cache lines on the per-packet path); they are summed
//! for the periodic and final reports through the [`registry`].

pub mod http;
pub mod latency;
pub mod live;
pub mod registry;
pub mod report;

pub use latency::Latencies;
pub use registry::{CounterSlot, LatencySlot, LiveSlot, OutputStats, Registry, Snapshot};

macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $field: u64),* }

        impl $name {
            /// Adds every counter of `other` into `self`.
            pub fn add(&mut self, other: &$name) {
                $(self.$field = self.$field.wrapping_add(other.$field);)*
            }

            /// `(name, value)` for every counter, in declaration order.
            pub fn entries(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field)),*]
            }
        }
    };
}

counters! {
    /// Capture, decoding, flow and reassembly counters.
    pub struct Counters {
        /// Packets read from the source.
        packets,
        /// Bytes of captured frames.
        bytes,
        /// Frames too short or malformed to decode.
        decode_errors,
        /// Frames cut by the snaplen (captured length < wire length).
        truncated_frames,
        /// Packets that are not IPv4/IPv6 TCP/UDP/ICMP.
        non_ip_or_l4,
        /// Packets on no configured port.
        ignored_ports,
        /// IP fragments received and datagrams reassembled from them.
        ip_fragments,
        ip_reassembled,
        /// Fragments dropped at a defragmentation limit or timeout.
        ip_fragments_dropped,
        /// Flows created, expired by idle time, closed by FIN/RST.
        flows_created,
        flows_expired,
        flows_closed,
        /// Connections ended early, when the flow table was full, to make room for
        /// a new one (the least recently active first).
        flows_evicted,
        /// New flows refused because the flow table was full and nothing could be
        /// evicted.
        flow_table_full,
        /// Datagrams of a UDP protocol's port handed to its parser.
        udp_datagrams,
        /// UDP flows (one per 5-tuple) created, ended by idle time, and ended at once
        /// because their parser had nothing in flight (a DNS query answered).
        udp_flows_created,
        udp_flows_expired,
        udp_flows_done,
        /// Datagrams of a new UDP flow dropped because the UDP flow table was full
        /// and its least recently active flow could not be ended.
        udp_flow_table_full,
        /// The same for ICMP: messages handed to the ICMP parser, flows (one per
        /// requester, responder and identifier, or one per message of its own, such
        /// as an error) created, ended by idle time, ended at once when nothing
        /// waits for a reply, and messages of a new flow dropped at the table's bound.
        icmp_messages,
        icmp_flows_created,
        icmp_flows_expired,
        icmp_flows_done,
        icmp_flow_table_full,
        /// Network flows (`flows:`): packets counted into flows, flows created,
        /// ended by their timeout, ended early to make room in a full table
        /// (`flows.max_flows`), and reports (flow events) made.
        netflow_packets,
        netflows_created,
        netflows_expired,
        netflows_evicted,
        netflow_reports,
        /// TCP segments fully retransmitted (dropped) and overlaps trimmed.
        tcp_retransmits,
        /// Segments that arrived after their bytes had been reported lost (a hole
        /// given up at a buffering limit, or proved lost by the peer's ACK): late
        /// originals, not counted as retransmissions.
        tcp_late_segments,
        tcp_overlaps,
        /// Segments buffered out of order, and those dropped at a buffering limit.
        tcp_ooo_buffered,
        tcp_ooo_dropped,
        /// Holes never filled, reported to the parser as gaps, and their bytes.
        tcp_gaps,
        tcp_gap_bytes,
        /// Streams whose unparsed buffer hit `max_stream_buffer`.
        tcp_buffer_overflows,
        /// Late segments of a closed connection (retransmitted or duplicated SYN or
        /// data after its FINs or RST) dropped instead of opening a new flow, and
        /// closed connections forgotten early because `pipeline.tcp_max_closed_flows`
        /// was reached.
        tcp_closed_segments,
        tcp_closed_evictions,
        /// Parser errors (unparseable data on a known port).
        parse_errors,
        /// Connections a parser stopped following (protocol upgrade, TLS...).
        parser_stopped,
        /// Transactions published, and the unmatched ones among them.
        transactions,
        unmatched_requests,
        unmatched_responses,
        /// Pending requests evicted because a connection's queue was full.
        pairing_evictions,
        /// Requests followed only to stay in step, never published (MySQL COM_PING,
        /// COM_INIT_DB, COM_STATISTICS, ...: not transactions, as in Packetbeat).
        untracked_commands,
        /// Prepared statements or portals a connection forgot because its cache was
        /// full (a later Execute of one has no query text).
        statement_evictions,
        /// Events written, and dropped by an output.
        events_published,
        events_dropped,
        /// Transactions dropped by `shipper.ignore_outgoing` (another shipper sees
        /// the server and reports them).
        ignored_outgoing,
        /// Live capture: frames the kernel handed to the capture sockets (including
        /// the dropped ones), frames it dropped because a ring was full, and ring
        /// freezes (PACKET_STATISTICS, summed into 64 bits).
        kernel_packets,
        kernel_drops,
        ring_freezes,
        /// Frames a capture source discarded on purpose: the second copy of loopback
        /// frames, and outgoing frames under `shipper.ignore_outgoing` when the kernel
        /// cannot drop them.
        capture_skipped,
        /// Packets a reader dropped because the worker's queue was full
        /// (`pipeline.when_full: drop_newest`).
        reader_queue_full_drops,
    }
}

/// Counters that mean a configured limit was hit, with the setting that governs it.
const LIMITS: &[(&str, &str)] = &[
    ("flow_table_full", "pipeline.max_flows"),
    (
        "udp_flow_table_full",
        "pipeline.max_flows (UDP flows, a table of their own)",
    ),
    (
        "icmp_flow_table_full",
        "pipeline.max_flows (ICMP flows, a table of their own)",
    ),
    ("netflows_evicted", "flows.max_flows"),
    ("tcp_closed_evictions", "pipeline.tcp_max_closed_flows"),
    (
        "tcp_ooo_dropped",
        "pipeline.tcp_max_ooo_bytes, tcp_max_ooo_segments, tcp_max_ooo_total_bytes",
    ),
    (
        "tcp_buffer_overflows",
        "the protocol's message size limit (e.g. 64 KiB HTTP heads)",
    ),
    ("pairing_evictions", "the protocol's pending-request queue"),
    ("statement_evictions", "protocols.pgsql.max_statements"),
    (
        "ip_fragments_dropped",
        "pipeline.defrag_max_datagrams, defrag_max_bytes, defrag_timeout",
    ),
    (
        "kernel_drops",
        "interfaces.buffer_size_mb, pipeline.readers and pipeline.workers",
    ),
    (
        "reader_queue_full_drops",
        "pipeline.worker_queue and pipeline.workers (pipeline.when_full: drop_newest)",
    ),
];

/// Logs the first time each limit is hit (the counters keep counting; the periodic
/// and final reports carry the totals).
#[derive(Debug, Default)]
pub struct LimitLog {
    warned: u32,
}

impl LimitLog {
    pub fn check(&mut self, c: &Counters, who: &str) {
        let entries = c.entries();
        for (i, (name, setting)) in LIMITS.iter().enumerate() {
            if self.warned & (1 << i) != 0 {
                continue;
            }
            let hit = entries.iter().any(|(n, v)| n == name && *v > 0);
            if hit {
                self.warned |= 1 << i;
                tracing::warn!(
                    target: "pipeline",
                    "{who}: limit hit: {name} (governed by {setting}); counted, see the final counters"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_list() {
        let mut a = Counters {
            packets: 2,
            ..Default::default()
        };
        let b = Counters {
            packets: 3,
            ..Default::default()
        };
        a.add(&b);
        assert_eq!(a.packets, 5);
        assert_eq!(a.entries()[0], ("packets", 5));
    }
}
