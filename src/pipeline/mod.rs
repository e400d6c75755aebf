//! Threads and channels. A reader decodes packets, keeps only those on configured
//! ports, and shards them by a symmetric flow hash into batches for worker threads
//! (so each connection lives on exactly one worker). Workers own flow state,
//! reassembly, parsing and event encoding, and pass NDJSON batches to the writer
//! queues of the outputs (one writer thread each, see [`crate::output`]). Channels and
//! queues are bounded: a slow output pushes back on workers, and workers on the
//! reader.

pub mod worker;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::dump::PcapWriter;
use crate::capture::file::FileSource;
use crate::capture::{CaptureError, LinkType};
use crate::config::Config;
use crate::decode::{Decoder, DefragLimits, L4, flow_hash};
use crate::event::{AgentInfo, EventEncoder};
use crate::output::Output;
use crate::protos::{self, ProtocolFactory};
use crate::stats::{CounterSlot, Counters, Registry};
use crate::time::Ts;

/// How to replay a capture file (`-I`).
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub file: PathBuf,
    /// `-t`: as fast as possible instead of honouring the capture's timing.
    pub top_speed: bool,
    /// `-l`: passes over the file; 0 = forever.
    pub loops: u64,
    /// `-N`: parse but publish nothing.
    pub no_publish: bool,
    /// `--dump`: also write every packet read to this pcap file.
    pub dump: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub counters: Counters,
    /// Set when the input ended on a damaged file (after everything before the
    /// damage was processed and published).
    pub input_error: Option<String>,
    /// Set when an output failed.
    pub output_error: Option<String>,
}

/// One decoded TCP segment inside a batch; its payload lives in `Batch::data`.
#[derive(Clone, Copy, Debug)]
pub struct Rec {
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub missing: u32,
    pub off: u32,
    pub len: u32,
}

/// Packets for one worker, with their payloads packed in one buffer.
#[derive(Default)]
pub struct Batch {
    pub recs: Vec<Rec>,
    pub data: Vec<u8>,
}

pub enum WorkerMsg {
    Packets(Batch),
    /// End of one pass over the input: flush every connection.
    FlushAll,
}

/// Set by SIGINT/SIGTERM; the reader stops and everything drains.
pub fn install_signal_handlers() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            tracing::warn!(target: "pipeline", "cannot install handler for signal {sig}: {e}");
        }
    }
    stop
}

/// Worker count for a replay: `pipeline.workers`, or 1 (a single worker keeps the
/// output order identical from run to run).
fn replay_workers(cfg: &Config) -> usize {
    if cfg.pipeline.workers > 0 {
        cfg.pipeline.workers.min(256)
    } else {
        1
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot start thread {0}: {1}")]
    Thread(&'static str, std::io::Error),
}

/// Replays a capture file through the workers into `outputs`.
pub fn run_replay(
    cfg: &Config,
    opts: &ReplayOptions,
    outputs: Vec<Box<dyn Output>>,
    stop: Arc<AtomicBool>,
    registry: &Arc<Registry>,
) -> Result<Summary, PipelineError> {
    let protos = protos::enabled(cfg);
    let mut src = FileSource::open(&opts.file)?;
    let nworkers = replay_workers(cfg);
    let names: Vec<String> = protos
        .iter()
        .map(|p| format!("{} {:?}", p.name(), p.ports()))
        .collect();
    tracing::info!(
        target: "pipeline",
        "replaying {} with {nworkers} worker(s); protocols: {}",
        opts.file.display(),
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    );
    let agent = AgentInfo::new(cfg.shipper.name.clone(), cfg.shipper.tags.clone());
    let encoder = EventEncoder::new(agent);

    let has_outputs = !outputs.is_empty();
    let (publisher, writers) = crate::output::start(
        outputs,
        crate::output::Limits::from_config(&cfg.pipeline),
        registry,
        Arc::clone(&stop),
    )
    .map_err(|e| PipelineError::Thread("wirebeat-out", e))?;

    // Emptied batches travel back to the reader, so their buffers are reused
    // instead of allocated (and page-faulted in) for every batch.
    let (recycle_tx, recycle_rx) =
        bounded::<Batch>(nworkers * (cfg.pipeline.worker_queue.max(1) + 2));
    let mut senders = Vec::with_capacity(nworkers);
    let mut handles = Vec::with_capacity(nworkers);
    let cores = if cfg.pipeline.pin {
        core_ids()
    } else {
        Vec::new()
    };
    for i in 0..nworkers {
        let (tx, rx) = bounded::<WorkerMsg>(cfg.pipeline.worker_queue.max(1));
        senders.push(tx);
        let w = worker::Worker::new(
            cfg,
            protos.clone(),
            encoder.clone(),
            publisher.clone(),
            !opts.no_publish,
        )
        .with_recycling(recycle_tx.clone())
        .with_slot(registry.counter_slot(&format!("worker-{i}")));
        let core = if nworkers > 1 {
            cores.get(i % cores.len().max(1)).copied()
        } else {
            None
        };
        handles.push(
            thread::Builder::new()
                .name(format!("wirebeat-worker-{i}"))
                .spawn(move || {
                    if let Some(c) = core {
                        pin_to(c);
                    }
                    w.run(rx)
                })
                .map_err(|e| PipelineError::Thread("wirebeat-worker", e))?,
        );
    }
    drop(publisher);
    drop(recycle_tx);

    let mut reader = Reader::new(cfg, &protos, senders, recycle_rx, opts)?;
    reader.slot = Some(registry.counter_slot("reader"));
    let mut input_error = None;
    let mut pass = 0u64;
    loop {
        match reader.pass(&mut src, &stop) {
            Ok(()) => {}
            Err(e) => {
                input_error = Some(e.to_string());
                break;
            }
        }
        reader.flush_all();
        pass += 1;
        if stop.load(Ordering::Relaxed) || (opts.loops != 0 && pass >= opts.loops) {
            break;
        }
        src = FileSource::open(&opts.file)?;
        reader.next_pass();
    }
    let mut counters = reader.finish();
    for h in handles {
        match h.join() {
            Ok(c) => counters.add(&c),
            Err(_) => tracing::error!(target: "pipeline", "a worker thread panicked"),
        }
    }
    let report = writers.finish();
    if has_outputs && !opts.no_publish {
        // What the outputs acknowledged, not what the workers encoded.
        counters.events_dropped += report.dropped;
        counters.events_published = report.published;
    }
    let output_error = report.error;
    Ok(Summary {
        counters,
        input_error,
        output_error,
    })
}

/// Cores this process may run on (read on the calling thread, before any pinning).
fn core_ids() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

fn pin_to(core: core_affinity::CoreId) {
    if !core_affinity::set_for_current(core) {
        tracing::warn!(target: "pipeline", "could not pin a worker to core {}", core.id);
    }
}

/// Reads packets, decodes them and hands them to workers in batches.
struct Reader {
    decoder: Decoder,
    senders: Vec<Sender<WorkerMsg>>,
    recycled: Receiver<Batch>,
    limits: crate::stats::LimitLog,
    /// Where the periodic report reads this reader's counters.
    slot: Option<CounterSlot>,
    batches: Vec<Batch>,
    batch_packets: usize,
    port_wanted: Vec<bool>,
    counters: Counters,
    dump: Option<PcapWriter>,
    dump_path: Option<PathBuf>,
    top_speed: bool,
    seed: u64,
    /// Added to every timestamp so that time keeps moving forward across loops.
    ts_shift: u64,
    /// First and last raw timestamps of the current pass.
    pass_first: Option<Ts>,
    pass_last: Ts,
    /// First (shifted) timestamp of the run, for pacing.
    first_ts: Option<Ts>,
    wall_start: Instant,
}

impl Reader {
    fn new(
        cfg: &Config,
        protos: &[Arc<dyn ProtocolFactory>],
        senders: Vec<Sender<WorkerMsg>>,
        recycled: Receiver<Batch>,
        opts: &ReplayOptions,
    ) -> Result<Reader, CaptureError> {
        let mut port_wanted = vec![false; 65536];
        for p in protos {
            for &port in p.ports() {
                port_wanted[port as usize] = true;
            }
        }
        let p = &cfg.pipeline;
        let n = senders.len();
        Ok(Reader {
            decoder: Decoder::new(DefragLimits {
                max_datagrams: p.defrag_max_datagrams,
                max_bytes: p.defrag_max_bytes,
                timeout: p.defrag_timeout,
            }),
            senders,
            recycled,
            limits: Default::default(),
            slot: None,
            batches: (0..n).map(|_| Batch::default()).collect(),
            batch_packets: p.batch_packets.clamp(1, 65536),
            port_wanted,
            counters: Counters::default(),
            dump: None,
            dump_path: opts.dump.clone(),
            top_speed: opts.top_speed,
            seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x77_69_72_65u64)
            },
            ts_shift: 0,
            pass_first: None,
            pass_last: Ts::ZERO,
            first_ts: None,
            wall_start: Instant::now(),
        })
    }

    fn pass(&mut self, src: &mut FileSource, stop: &AtomicBool) -> Result<(), CaptureError> {
        let mut n: u64 = 0;
        while let Some(pkt) = src.next_packet()? {
            n += 1;
            if n & 1023 == 0 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                self.limits.check(&self.counters, "reader");
                if let Some(slot) = self.slot.as_mut() {
                    slot.maybe_publish(&self.counters);
                }
            }
            let ts = Ts(pkt.ts.0.saturating_add(self.ts_shift));
            if let Some(path) = &self.dump_path {
                if self.dump.is_none() {
                    match PcapWriter::create(path, pkt.linktype, 65535) {
                        Ok(w) => self.dump = Some(w),
                        Err(e) => {
                            tracing::error!(target: "pipeline", "--dump {}: {e}", path.display());
                            self.dump_path = None;
                        }
                    }
                }
                if let Some(w) = self.dump.as_mut()
                    && let Err(e) = w.write(&pkt)
                {
                    tracing::error!(target: "pipeline", "--dump: {e}");
                    self.dump = None;
                    self.dump_path = None;
                }
            }
            if !self.top_speed {
                self.pace(ts, stop);
            }
            self.pass_first.get_or_insert(pkt.ts);
            self.pass_last = self.pass_last.max(pkt.ts);
            let linktype: LinkType = pkt.linktype;
            let Some(ip) =
                self.decoder
                    .decode(ts, linktype, pkt.data, pkt.orig_len, &mut self.counters)
            else {
                continue;
            };
            let L4::Tcp(seg) = &ip.l4 else {
                self.counters.ignored_ports += 1;
                continue;
            };
            if !self.port_wanted[seg.src_port as usize] && !self.port_wanted[seg.dst_port as usize]
            {
                self.counters.ignored_ports += 1;
                continue;
            }
            let w = if self.senders.len() == 1 {
                0
            } else {
                (flow_hash(ip.src, ip.dst, seg.src_port, seg.dst_port, 6, self.seed)
                    % self.senders.len() as u64) as usize
            };
            let b = &mut self.batches[w];
            b.recs.push(Rec {
                ts,
                src: ip.src,
                dst: ip.dst,
                sport: seg.src_port,
                dport: seg.dst_port,
                seq: seg.seq,
                ack: seg.ack,
                flags: seg.flags,
                missing: seg.missing,
                off: b.data.len() as u32,
                len: seg.payload.len() as u32,
            });
            b.data.extend_from_slice(seg.payload);
            if b.recs.len() >= self.batch_packets || b.data.len() >= 1 << 20 {
                self.send(w);
            }
        }
        Ok(())
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
        loop {
            let elapsed = self.wall_start.elapsed();
            if due <= elapsed || stop.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep((due - elapsed).min(Duration::from_millis(100)));
        }
    }

    fn send(&mut self, w: usize) {
        if self.batches[w].recs.is_empty() {
            return;
        }
        let fresh = self.recycled.try_recv().unwrap_or_else(|_| Batch {
            recs: Vec::with_capacity(self.batch_packets),
            data: Vec::with_capacity(self.batch_packets * 1024),
        });
        let b = std::mem::replace(&mut self.batches[w], fresh);
        // A worker that died already reported; nothing to do with its packets.
        let _ = self.senders[w].send(WorkerMsg::Packets(b));
    }

    fn flush_all(&mut self) {
        for w in 0..self.batches.len() {
            self.send(w);
            let _ = self.senders[w].send(WorkerMsg::FlushAll);
        }
    }

    /// Prepares the next loop over the file: time continues one second after the
    /// last packet of this pass, so clocks never run backwards.
    fn next_pass(&mut self) {
        if let Some(first) = self.pass_first.take() {
            let span = self.pass_last.since(first).saturating_add(1_000_000_000);
            self.ts_shift = self.ts_shift.saturating_add(span);
        }
        self.pass_last = Ts::ZERO;
    }

    fn finish(mut self) -> Counters {
        for w in 0..self.batches.len() {
            self.send(w);
        }
        if let Some(mut d) = self.dump.take()
            && let Err(e) = d.flush()
        {
            tracing::error!(target: "pipeline", "--dump: {e}");
        }
        self.senders.clear();
        if let Some(slot) = self.slot.as_mut() {
            slot.publish(&self.counters);
        }
        self.counters
    }
}
