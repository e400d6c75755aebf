//! The reader: takes frames from one input (a capture file pass, or one live source),
//! decodes them, keeps the TCP segments and UDP datagrams of tracked ports and packs them into
//! per-worker batches, chosen by a seeded symmetric flow hash so that both directions
//! of a connection reach the same worker. It also paces a replay to the capture's
//! timing, loops over a file with time moving forward, and writes `--dump`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{Batch, Rec, WorkerMsg};
use crate::capture::dump::PcapWriter;
use crate::capture::file::FileSource;
use crate::capture::{CaptureError, LinkType};
use crate::config::Config;
use crate::decode::{Decoder, DefragLimits, L2, L4, flow_hash};
use crate::event::Transport;
use crate::flow::{FlowRec, PortMap};
use crate::stats::{CounterSlot, Counters};
use crate::time::Ts;

/// Where a reader's batches go.
#[derive(Clone)]
pub(super) struct ToWorkers {
    /// One channel per worker.
    pub senders: Vec<Sender<WorkerMsg>>,
    /// Emptied batches coming back from the workers, reused instead of allocated.
    pub recycled: Receiver<Batch>,
    /// Seed of the flow hash; the same for every reader of a run.
    pub seed: u64,
}

/// How a reader paces its input and what it does when a worker queue is full.
#[derive(Clone, Copy, Debug)]
pub(super) enum Mode {
    /// A capture file: the capture's own timing unless `top_speed` (`-t`); a full
    /// worker queue makes the reader wait.
    Replay { top_speed: bool },
    /// Live capture: as packets come; with `drop_when_full`
    /// (`pipeline.when_full: drop_newest`) a batch for a full worker queue is
    /// dropped and counted instead of waiting.
    Live { drop_when_full: bool },
}

/// Reads packets, decodes them and hands them to workers in batches.
pub(super) struct Reader {
    decoder: Decoder,
    senders: Vec<Sender<WorkerMsg>>,
    recycled: Receiver<Batch>,
    limits: crate::stats::LimitLog,
    /// Where the periodic report reads this reader's counters.
    slot: CounterSlot,
    batches: Vec<Batch>,
    batch_packets: usize,
    /// The tracked ports (the flow tables' map).
    ports: PortMap,
    counters: Counters,
    dump: Option<PcapWriter>,
    dump_path: Option<PathBuf>,
    top_speed: bool,
    /// Live capture with `pipeline.when_full: drop_newest`: a batch for a full
    /// worker queue is dropped and counted instead of waiting.
    drop_when_full: bool,
    seed: u64,
    /// Added to every timestamp so that time keeps moving forward across loops.
    ts_shift: u64,
    /// First and last raw timestamps of the current pass.
    pass_first: Option<Ts>,
    pass_last: Ts,
    /// First (shifted) timestamp of the run, for pacing.
    first_ts: Option<Ts>,
    wall_start: Instant,
    /// Network flows (`flows:`): every IP packet also goes to its worker as a
    /// [`FlowRec`].
    flows: bool,
    /// The flow report period, in nanoseconds; at each multiple of it the readers
    /// hand the workers everything before it and the time (see [`Reader::push`]).
    flow_period: Option<u64>,
    next_boundary: Ts,
    /// Latest (shifted) packet time.
    clock: Ts,
    /// Replay: a tick waits for room in a worker's queue (a file's reports must
    /// not depend on timing); live capture never waits.
    blocking_ticks: bool,
}

impl Reader {
    /// A reader for one input: decoding with the `pipeline` limits of `cfg`, keeping
    /// the packets of the ports in `ports`, batching for `to`, pacing and shedding
    /// load as `mode` says, writing every frame to `dump` if given, and publishing its
    /// counters in `slot`.
    pub(super) fn new(
        cfg: &Config,
        ports: PortMap,
        to: ToWorkers,
        mode: Mode,
        dump: Option<PathBuf>,
        slot: CounterSlot,
    ) -> Reader {
        let p = &cfg.pipeline;
        let ToWorkers {
            senders,
            recycled,
            seed,
        } = to;
        let (top_speed, drop_when_full) = match mode {
            Mode::Replay { top_speed } => (top_speed, false),
            Mode::Live { drop_when_full } => (true, drop_when_full),
        };
        let flows = cfg.flows.enabled;
        let n = senders.len();
        Reader {
            decoder: Decoder::new(DefragLimits {
                max_datagrams: p.defrag_max_datagrams,
                max_bytes: p.defrag_max_bytes,
                timeout: p.defrag_timeout,
            }),
            senders,
            recycled,
            limits: Default::default(),
            slot,
            batches: (0..n).map(|_| Batch::default()).collect(),
            batch_packets: p.batch_packets.clamp(1, 65536),
            ports,
            counters: Counters::default(),
            dump: None,
            dump_path: dump,
            top_speed,
            drop_when_full,
            seed,
            ts_shift: 0,
            pass_first: None,
            pass_last: Ts::ZERO,
            first_ts: None,
            wall_start: Instant::now(),
            flows,
            flow_period: cfg
                .flows
                .period
                .filter(|_| flows)
                .map(|p| (p.as_nanos() as u64).max(1)),
            next_boundary: Ts::ZERO,
            clock: Ts::ZERO,
            blocking_ticks: matches!(mode, Mode::Replay { .. }),
        }
    }

    /// The reader's counters, for what its source counts itself (kernel drops).
    pub(super) fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Logs the limits hit since the last call and publishes the counters when due.
    pub(super) fn report(&mut self) {
        self.limits.check(&self.counters, "reader");
        self.slot.maybe_publish(&self.counters);
    }

    pub(super) fn pass(
        &mut self,
        src: &mut FileSource,
        stop: &AtomicBool,
    ) -> Result<(), CaptureError> {
        let mut n: u64 = 0;
        while let Some(pkt) = src.next_packet()? {
            n += 1;
            if n & 1023 == 0 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                self.report();
            }
            let ts = Ts(pkt.ts.0.saturating_add(self.ts_shift));
            self.dump(&pkt);
            if !self.top_speed {
                self.pace(ts, stop);
            }
            self.pass_first.get_or_insert(pkt.ts);
            self.pass_last = self.pass_last.max(pkt.ts);
            self.push(ts, pkt.linktype, pkt.data, pkt.orig_len);
        }
        Ok(())
    }

    /// One frame from a live source: written to `--dump` if asked, then decoded
    /// and batched.
    pub(super) fn take_frame(&mut self, f: &crate::capture::source::Frame<'_>) {
        if self.dump_path.is_some() {
            self.dump(&crate::capture::Packet {
                ts: f.ts,
                linktype: f.linktype,
                data: f.data,
                orig_len: f.orig_len,
            });
        }
        self.push(f.ts, f.linktype, f.data, f.orig_len)
    }

    /// Decodes one frame, keeps it if it is TCP on a configured port, and queues it
    /// for the worker that owns its flow. With flows on, every IP packet is also
    /// queued as a [`FlowRec`]; and when packet time reaches a flow report instant,
    /// the workers first get every packet before it and the time, so that each
    /// reports its flows at that instant whether or not it has packets after it
    /// (the reports of a file are then the same with any number of workers).
    #[inline]
    fn push(&mut self, ts: Ts, linktype: LinkType, data: &[u8], orig_len: u32) {
        // Two copies of the loop body: without flows, none of their work is there.
        if self.flows {
            self.push_as::<true>(ts, linktype, data, orig_len)
        } else {
            self.push_as::<false>(ts, linktype, data, orig_len)
        }
    }

    #[inline(always)]
    fn push_as<const FLOWS: bool>(
        &mut self,
        ts: Ts,
        linktype: LinkType,
        data: &[u8],
        orig_len: u32,
    ) {
        if FLOWS {
            self.clock = self.clock.max(ts);
            if ts >= self.next_boundary {
                self.cross_boundary(ts);
            }
        }
        {
            let l2 = if FLOWS {
                crate::decode::l2(linktype, data)
            } else {
                L2::default()
            };
            let Some(ip) = self
                .decoder
                .decode(ts, linktype, data, orig_len, &mut self.counters)
            else {
                return;
            };
            let (sport, dport, payload, missing, tcp, transport) = match &ip.l4 {
                L4::Tcp(seg) if self.ports.wants(seg.src_port, seg.dst_port) => (
                    seg.src_port,
                    seg.dst_port,
                    seg.payload,
                    seg.missing,
                    Some(seg),
                    Transport::Tcp,
                ),
                L4::Udp(d) if self.ports.wants_udp(d.src_port, d.dst_port) => (
                    d.src_port,
                    d.dst_port,
                    d.payload,
                    d.missing,
                    None,
                    Transport::Udp,
                ),
                // ICMP has no ports: the two addresses pick the worker.
                L4::Icmp(m) if self.ports.wants_icmp() => {
                    (0, 0, m.data, m.missing, None, Transport::icmp(m.v6))
                }
                _ => {
                    self.counters.ignored_ports += 1;
                    if FLOWS {
                        let rec = FlowRec::of(ts, &ip, orig_len, l2);
                        let (sport, dport) = ip.ports();
                        let w = self.worker_of(&rec, sport, dport);
                        self.batches[w].flows.push(rec);
                        if self.batches[w].flows.len() >= self.batch_packets {
                            self.send(w);
                        }
                    }
                    return;
                }
            };
            let w = if self.senders.len() == 1 {
                0
            } else {
                (flow_hash(ip.src, ip.dst, sport, dport, ip.ip_proto(), self.seed)
                    % self.senders.len() as u64) as usize
            };
            let b = &mut self.batches[w];
            if FLOWS {
                b.flows.push(FlowRec::of(ts, &ip, orig_len, l2));
            }
            b.recs.push(Rec {
                ts,
                src: ip.src,
                dst: ip.dst,
                sport,
                dport,
                seq: tcp.map_or(0, |t| t.seq),
                ack: tcp.map_or(0, |t| t.ack),
                flags: tcp.map_or(0, |t| t.flags),
                transport,
                missing,
                off: b.data.len() as u32,
                len: payload.len() as u32,
            });
            b.data.extend_from_slice(payload);
            if b.recs.len() >= self.batch_packets
                || b.data.len() >= 1 << 20
                || (FLOWS && b.flows.len() >= self.batch_packets)
            {
                self.send(w);
            }
        }
    }

    /// The worker of a packet that no protocol follows (the same flow hash).
    fn worker_of(&self, r: &FlowRec, sport: u16, dport: u16) -> usize {
        if self.senders.len() == 1 {
            return 0;
        }
        let proto = r.transport.ip_proto();
        (flow_hash(r.src, r.dst, sport, dport, proto, self.seed) % self.senders.len() as u64)
            as usize
    }

    /// Packet time reached `ts`, at or past the next flow report instant: every
    /// worker gets what is batched, then the time.
    #[cold]
    fn cross_boundary(&mut self, ts: Ts) {
        let Some(p) = self.flow_period else {
            self.next_boundary = Ts(u64::MAX);
            return;
        };
        let first = self.next_boundary == Ts::ZERO;
        self.next_boundary = Ts((ts.0 / p).saturating_add(1).saturating_mul(p));
        if first {
            return;
        }
        self.flush_partial();
        self.tick_all(ts);
    }

    /// Tells every worker the time: waiting for room in a replay, never live.
    fn tick_all(&mut self, ts: Ts) {
        for s in &self.senders {
            if self.blocking_ticks {
                let _ = s.send(WorkerMsg::Tick(ts));
            } else {
                let _ = s.try_send(WorkerMsg::Tick(ts));
            }
        }
    }

    /// `--dump`: writes the frame to the dump file (opened on the first frame, with
    /// its link type).
    fn dump(&mut self, pkt: &crate::capture::Packet<'_>) {
        let Some(path) = &self.dump_path else {
            return;
        };
        if self.dump.is_none() {
            match PcapWriter::create(path, pkt.linktype, 65535) {
                Ok(w) => self.dump = Some(w),
                Err(e) => {
                    tracing::error!(target: "pipeline", "--dump {}: {e}", path.display());
                    self.dump_path = None;
                    return;
                }
            }
        }
        if let Some(w) = self.dump.as_mut()
            && let Err(e) = w.write(pkt)
        {
            tracing::error!(target: "pipeline", "--dump: {e}");
            self.dump = None;
            self.dump_path = None;
        }
    }

    /// Sleeps until `ts` is due relative to the first packet, in short steps so
    /// that a signal is noticed promptly even across long quiet periods.
    fn pace(&mut self, ts: Ts, stop: &AtomicBool) {
        let first = *self.first_ts.get_or_insert(ts);
        let due = Duration::from_nanos(ts.since(first));
        if due <= self.wall_start.elapsed() {
            return;
        }
        // Hand queued packets to workers before sleeping so output keeps flowing.
        for w in 0..self.batches.len() {
            self.send(w);
        }
        self.slot.maybe_publish(&self.counters);
        loop {
            let elapsed = self.wall_start.elapsed();
            if due <= elapsed || stop.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep((due - elapsed).min(Duration::from_millis(100)));
        }
    }

    fn send(&mut self, w: usize) {
        if self.batches[w].recs.is_empty() && self.batches[w].flows.is_empty() {
            return;
        }
        let flows = self.flows;
        let fresh = self.recycled.try_recv().unwrap_or_else(|_| Batch {
            recs: Vec::with_capacity(self.batch_packets),
            data: Vec::with_capacity(self.batch_packets * 1024),
            flows: Vec::with_capacity(if flows { self.batch_packets } else { 0 }),
        });
        let b = std::mem::replace(&mut self.batches[w], fresh);
        if self.drop_when_full {
            match self.senders[w].try_send(WorkerMsg::Packets(b)) {
                Ok(()) => {}
                Err(crossbeam_channel::TrySendError::Full(WorkerMsg::Packets(mut b))) => {
                    // With flows on, every packet of the batch has a flow record.
                    self.counters.reader_queue_full_drops += b.recs.len().max(b.flows.len()) as u64;
                    b.recs.clear();
                    b.data.clear();
                    b.flows.clear();
                    self.batches[w] = b;
                }
                Err(_) => {}
            }
            return;
        }
        // A worker that died already reported; nothing to do with its packets.
        let _ = self.senders[w].send(WorkerMsg::Packets(b));
    }

    /// Hands every non-empty batch to its worker.
    pub(super) fn flush_partial(&mut self) {
        for w in 0..self.batches.len() {
            self.send(w);
        }
    }

    /// Tells every worker the time (never waits: a busy worker gets the time from
    /// the packets it is processing anyway).
    pub(super) fn tick(&mut self, now: Ts) {
        for s in &self.senders {
            let _ = s.try_send(WorkerMsg::Tick(now));
        }
    }

    pub(super) fn flush_all(&mut self) {
        self.slot.publish(&self.counters);
        for w in 0..self.batches.len() {
            self.send(w);
        }
        if self.flows && self.clock > Ts::ZERO {
            // Every worker ends its flows at the same time: the last packet's.
            let clock = self.clock;
            self.tick_all(clock);
        }
        for w in 0..self.batches.len() {
            let _ = self.senders[w].send(WorkerMsg::FlushAll);
        }
    }

    /// Prepares the next loop over the file: time continues one second after the
    /// last packet of this pass, so clocks never run backwards.
    pub(super) fn next_pass(&mut self) {
        if let Some(first) = self.pass_first.take() {
            let span = self.pass_last.since(first).saturating_add(1_000_000_000);
            self.ts_shift = self.ts_shift.saturating_add(span);
        }
        self.pass_last = Ts::ZERO;
    }

    pub(super) fn finish(mut self) -> Counters {
        for w in 0..self.batches.len() {
            self.send(w);
        }
        if let Some(mut d) = self.dump.take()
            && let Err(e) = d.flush()
        {
            tracing::error!(target: "pipeline", "--dump: {e}");
        }
        self.senders.clear();
        self.slot.publish(&self.counters);
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::event::{ConnInfo, Transport};
    use crate::protos::{Parser, ProtocolFactory};

    /// A UDP protocol on port 53 whose parsers are never made here.
    struct Udp53;
    impl ProtocolFactory for Udp53 {
        fn name(&self) -> &'static str {
            "udp53"
        }
        fn transports(&self) -> &[Transport] {
            &[Transport::Udp]
        }
        fn ports(&self) -> &[u16] {
            &[53]
        }
        fn connection_timeout(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn new_parser(&self, _conn: &ConnInfo) -> Box<dyn Parser> {
            unreachable!("the reader makes no parser")
        }
    }

    /// Ethernet + IPv4 (`10.0.0.1` -> `10.0.0.2`) + UDP or TCP.
    fn frame(udp: bool, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let l4_len = if udp { 8 } else { 20 };
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4_len + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0]);
        f.extend_from_slice(&[64, if udp { 17 } else { 6 }, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        if udp {
            f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        } else {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn datagrams_of_udp_ports_are_batched_with_their_flag() {
        let ports = PortMap::new(vec![Arc::new(Udp53) as Arc<dyn ProtocolFactory>]);
        let (tx, rx) = crossbeam_channel::unbounded();
        let (_recycle_tx, recycled) = crossbeam_channel::unbounded();
        let registry = crate::stats::Registry::new();
        let mut r = Reader::new(
            &Config::default(),
            ports,
            ToWorkers {
                senders: vec![tx],
                recycled,
                seed: 1,
            },
            Mode::Replay { top_speed: true },
            None,
            registry.counter_slot("reader"),
        );
        let eth = LinkType::ETHERNET;
        r.push(Ts(1), eth, &frame(true, 40000, 53, b"query"), 47);
        r.push(Ts(2), eth, &frame(true, 53, 40000, b"answer"), 48);
        // Not a tracked UDP port, and TCP on the UDP protocol's port.
        r.push(Ts(3), eth, &frame(true, 40000, 54, b"x"), 43);
        r.push(Ts(4), eth, &frame(false, 40000, 53, b"x"), 55);
        assert_eq!(r.counters.ignored_ports, 2);
        r.flush_partial();
        let Ok(WorkerMsg::Packets(b)) = rx.try_recv() else {
            panic!("no batch");
        };
        let got: Vec<_> = b
            .recs
            .iter()
            .map(|rec| {
                let data = &b.data[rec.off as usize..(rec.off + rec.len) as usize];
                (
                    rec.transport == Transport::Udp,
                    rec.sport,
                    rec.dport,
                    data.to_vec(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (true, 40000, 53, b"query".to_vec()),
                (true, 53, 40000, b"answer".to_vec())
            ]
        );
    }
}
