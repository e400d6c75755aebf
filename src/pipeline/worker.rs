//! A worker thread: owns a flow table, turns packet batches into transactions and
//! encodes them into NDJSON batches for the writer.

use crossbeam_channel::{Receiver, Sender};

use crate::output::Publisher;
use crate::output::queue::{CHUNK_BYTES, ChunkBuf, EventHour};

use super::WorkerMsg;
use crate::config::Config;
use crate::event::{ConnInfo, EventEncoder, FlowReport, Transaction};
use crate::flow::reassembly::ReasmLimits;
use crate::flow::{EventSink, FlowLimits, FlowTable, NetFlowSettings, PortMap, TcpPacket};
use crate::stats::live::{LiveAgg, LiveLimits};
use crate::stats::{CounterSlot, Counters, Latencies, LatencySlot, LiveSlot};

pub struct Worker {
    recycle: Option<Sender<super::Batch>>,
    /// Where the periodic report reads this worker's counters and response times.
    slot: Option<(CounterSlot, LatencySlot)>,
    table: FlowTable,
    sink: EncodingSink,
    counters: Counters,
    live: Option<LiveSlot>,
}

/// Encodes transactions into an NDJSON chunk, with where each event ends and
/// its hour (or only counts them with `-N`).
pub struct EncodingSink {
    encoder: EventEncoder,
    buf: ChunkBuf,
    out: Publisher,
    publish: bool,
    published: u64,
    /// Response times of the transactions emitted since the last merge.
    latencies: Latencies,
    ignored_outgoing: u64,
    /// The live view's counts (`http.enabled`), handed over with the counters.
    live: Option<LiveAgg>,
}

impl EncodingSink {
    pub fn new(encoder: EventEncoder, out: Publisher, publish: bool) -> EncodingSink {
        EncodingSink {
            encoder,
            buf: out.fresh_buf(),
            out,
            publish,
            published: 0,
            latencies: Latencies::default(),
            ignored_outgoing: 0,
            live: None,
        }
    }

    fn ship(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let full = std::mem::replace(&mut self.buf, self.out.fresh_buf());
        // Waits for room when an output's queue is full (`when_full: block`).
        self.out.publish_buf(full);
    }
}

impl EventSink for EncodingSink {
    fn emit(&mut self, conn: &ConnInfo, tx: Transaction) {
        if self.encoder.ignores(conn) {
            self.ignored_outgoing += 1;
            return;
        }
        self.published += 1;
        if let Some(end) = tx.end {
            self.latencies.record(tx.kind, end.since(tx.start) / 1_000);
        }
        if let Some(l) = &mut self.live {
            let enc = &self.encoder;
            l.record(conn, &tx, || enc.names_of(conn));
        }
        if !self.publish {
            return;
        }
        self.encoder.encode(conn, &tx, self.buf.data());
        // The encoder writes `tx.start` as the event's `@timestamp`.
        self.buf.end_event(EventHour::of(tx.start));
        // Encoded events go to the writers in chunks of about CHUNK_BYTES.
        if self.buf.len() >= CHUNK_BYTES {
            self.ship();
        }
    }

    fn emit_flow(&mut self, report: &FlowReport) {
        self.published += 1;
        if !self.publish {
            return;
        }
        self.encoder.encode_flow(report, self.buf.data());
        self.buf.end_event(EventHour::of(report.at));
        if self.buf.len() >= CHUNK_BYTES {
            self.ship();
        }
    }
}

impl Worker {
    /// One of `workers` workers: `pipeline.max_flows` is shared out among them.
    pub fn new(
        cfg: &Config,
        workers: usize,
        ports: PortMap,
        encoder: EventEncoder,
        out: Publisher,
        publish: bool,
    ) -> Worker {
        let p = &cfg.pipeline;
        let limits = FlowLimits {
            max_flows: (p.max_flows / workers.max(1)).max(1),
            max_closed: p.tcp_max_closed_flows,
            closed_timeout: p.tcp_closed_timeout,
            reasm: ReasmLimits {
                max_ooo_bytes: p.tcp_max_ooo_bytes,
                max_ooo_segments: p.tcp_max_ooo_segments.max(1),
                max_ooo_total_bytes: p.tcp_max_ooo_total_bytes,
            },
        };
        let networks = cfg.internal_networks().unwrap_or_default();
        Worker {
            recycle: None,
            slot: None,
            table: FlowTable::new(ports, limits)
                .with_internal_networks(networks)
                .with_netflows(NetFlowSettings::of(&cfg.flows, workers)),
            sink: EncodingSink::new(encoder, out, publish),
            counters: Counters::default(),
            live: None,
        }
    }

    /// Keeps the live view's counts (`http.enabled`) and hands them to `slot`.
    pub fn with_live(mut self, slot: LiveSlot, limits: LiveLimits) -> Worker {
        self.sink.live = Some(LiveAgg::new(limits));
        self.live = Some(slot);
        self
    }

    /// Hands emptied batches back to the reader for reuse.
    pub fn with_recycling(mut self, tx: Sender<super::Batch>) -> Worker {
        self.recycle = Some(tx);
        self
    }

    /// Publishes this worker's counters for the periodic report.
    pub fn with_slot(mut self, slot: CounterSlot, latencies: LatencySlot) -> Worker {
        self.slot = Some((slot, latencies));
        self
    }

    /// Copies the counters (with the events encoded so far) and the response times
    /// into the slots: now, or when the slot is due (every 250 ms at most).
    fn publish_counters(&mut self, now: bool) {
        if let Some((slot, lat)) = self.slot.as_mut() {
            if !now && !slot.due() {
                return;
            }
            lat.merge(&mut self.sink.latencies);
            let mut c = self.counters.clone();
            c.ignored_outgoing += self.sink.ignored_outgoing;
            if self.sink.publish {
                c.events_published += self.sink.published;
            }
            slot.publish(&c);
            if let (Some(agg), Some(live)) = (&self.sink.live, &self.live) {
                live.publish(agg);
            }
        }
    }

    /// Runs until the reader hangs up; returns this worker's counters.
    pub fn run(mut self, rx: Receiver<WorkerMsg>) -> Counters {
        let mut limits = crate::stats::LimitLog::default();
        loop {
            let msg = match rx.recv_timeout(crate::stats::registry::PUBLISH_EVERY) {
                Ok(m) => m,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // Idle: let the periodic report see what the last batch did.
                    self.publish_counters(true);
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                WorkerMsg::Packets(mut b) => {
                    if !b.flows.is_empty() {
                        self.table
                            .account(&b.flows, &mut self.sink, &mut self.counters);
                    }
                    let (recs, data) = (&b.recs, &b.data);
                    let packet = |i: usize| {
                        let r = &recs[i];
                        let start = r.off as usize;
                        TcpPacket {
                            ts: r.ts,
                            src: r.src,
                            dst: r.dst,
                            sport: r.sport,
                            dport: r.dport,
                            seq: r.seq,
                            ack: r.ack,
                            flags: r.flags,
                            payload: data.get(start..start + r.len as usize).unwrap_or(&[]),
                            missing: r.missing,
                            transport: r.transport,
                        }
                    };
                    self.table.process_batch(
                        recs.len(),
                        packet,
                        &mut self.sink,
                        &mut self.counters,
                    );
                    if let Some(tx) = &self.recycle {
                        b.recs.clear();
                        b.data.clear();
                        b.flows.clear();
                        let _ = tx.try_send(b);
                    }
                    limits.check(&self.counters, "worker");
                    self.publish_counters(false);
                }
                WorkerMsg::FlushAll => {
                    self.table.flush_all(&mut self.sink, &mut self.counters);
                    self.sink.ship();
                    self.publish_counters(true);
                }
                WorkerMsg::Tick(now) => {
                    self.table.advance(now, &mut self.sink, &mut self.counters);
                    self.sink.ship();
                    self.publish_counters(false);
                }
            }
        }
        self.table.flush_all(&mut self.sink, &mut self.counters);
        self.sink.ship();
        self.publish_counters(true);
        self.counters.ignored_outgoing += self.sink.ignored_outgoing;
        if self.sink.publish {
            self.counters.events_published += self.sink.published;
        }
        self.counters
    }
}
