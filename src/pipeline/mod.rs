//! Threads and channels. A reader decodes packets, keeps only those on configured
//! ports, and shards them by a symmetric flow hash into batches for worker threads
//! (so each connection lives on exactly one worker). Workers own flow state,
//! reassembly, parsing and event encoding, and pass NDJSON batches to the writer
//! queues of the outputs (one writer thread each, see [`crate::output`]). Channels and
//! queues are bounded: a slow output pushes back on workers, and workers on the
//! reader.

mod live;
mod reader;
mod topology;
pub mod worker;

pub use live::live_workers;
use reader::{Mode, Reader, ToWorkers};

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::bounded;

use crate::capture::file::FileSource;
use crate::capture::source::PacketSource;
use crate::capture::{CaptureError, LiveError};
use crate::config::Config;
use crate::event::{AgentInfo, EventEncoder, Transport};
use crate::flow::PortMap;
use crate::output::Output;
use crate::protos;
use crate::stats::{Counters, Registry};
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

/// One decoded TCP segment, UDP datagram or ICMP message inside a batch; its payload
/// lives in `Batch::data`.
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
    /// TCP, or a UDP datagram or ICMP message (`seq`, `ack` and `flags` are then
    /// zero; ICMP has no ports either, its payload is the whole message).
    pub transport: Transport,
    pub missing: u32,
    pub off: u32,
    pub len: u32,
}

/// Packets for one worker, with their payloads packed in one buffer.
#[derive(Default)]
pub struct Batch {
    pub recs: Vec<Rec>,
    pub data: Vec<u8>,
    /// With flows on (`flows:`): every IP packet of the batch's flows, those of
    /// untracked ports too, in capture order.
    pub flows: Vec<crate::flow::FlowRec>,
}

pub enum WorkerMsg {
    Packets(Batch),
    /// End of one pass over the input: flush every connection.
    FlushAll,
    /// Live capture: the packet clock has reached at least this time even if no
    /// packet says so (idle links still expire connections), and encoded events
    /// should be handed to the writer now.
    Tick(Ts),
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
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error("cannot start thread {0}: {1}")]
    Thread(&'static str, std::io::Error),
    #[error("topology: {0}")]
    Topology(String),
}

/// Where packets come from.
pub enum Input<'a> {
    /// `-I`: a capture file.
    File(&'a ReplayOptions),
    /// Live capture: one reader thread per source; `--dump` needs a single source.
    Live {
        sources: Vec<Box<dyn PacketSource>>,
        dump: Option<PathBuf>,
        /// `-N`: parse but publish nothing.
        no_publish: bool,
    },
}

/// Replays a capture file through the workers into `outputs`.
pub fn run_replay(
    cfg: &Config,
    opts: &ReplayOptions,
    outputs: Vec<Box<dyn Output>>,
    stop: Arc<AtomicBool>,
    registry: &Arc<Registry>,
) -> Result<Summary, PipelineError> {
    run(cfg, Input::File(opts), outputs, stop, registry)
}

/// Runs the pipeline on `input` until it ends (file) or `stop` is set (live, or a
/// signal during a replay), then drains every queue and flushes every output.
pub fn run(
    cfg: &Config,
    input: Input<'_>,
    outputs: Vec<Box<dyn Output>>,
    stop: Arc<AtomicBool>,
    registry: &Arc<Registry>,
) -> Result<Summary, PipelineError> {
    // One port map for the readers and every worker's flow table.
    let ports = PortMap::new(protos::enabled(cfg));
    let first_src = match &input {
        Input::File(opts) => Some(FileSource::open(&opts.file)?),
        Input::Live { .. } => None,
    };
    let cores = core_ids();
    let (nreaders, nworkers) = match &input {
        Input::File(_) => (1, replay_workers(cfg)),
        Input::Live { sources, .. } => (
            sources.len(),
            live::live_workers(cfg, sources.len(), cores.len()),
        ),
    };
    let publish = match &input {
        Input::File(opts) => !opts.no_publish,
        Input::Live { no_publish, .. } => !no_publish,
    };
    let names: Vec<String> = ports
        .protocols()
        .iter()
        .map(|p| format!("{} {:?}", p.name(), p.ports()))
        .collect();
    let what = match &input {
        Input::File(opts) => format!("replaying {}", opts.file.display()),
        Input::Live { sources, .. } => format!("capturing with {} reader(s)", sources.len()),
    };
    tracing::info!(
        target: "pipeline",
        "{what} with {nworkers} worker(s); protocols: {}",
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    );
    let agent = AgentInfo::new(cfg.shipper.name.clone(), cfg.shipper.tags.clone());
    let mut encoder = EventEncoder::new(agent);
    // Topology (`save_topology`): published and read by its own thread, stopped
    // when this function returns.
    let topology = if !publish {
        None
    } else {
        topology::start(cfg).map_err(PipelineError::Topology)?
    };
    if let Some(t) = &topology {
        encoder = encoder.with_topology(t.view(), cfg.shipper.ignore_outgoing);
    }

    let has_outputs = !outputs.is_empty();
    let (publisher, writers) = crate::output::start(
        outputs,
        crate::output::Limits::from_config(&cfg.pipeline),
        registry,
        Arc::clone(&stop),
        cfg.pipeline.shutdown_timeout,
    )
    .map_err(|e| PipelineError::Thread("wirebeat-out", e))?;

    // Emptied batches travel back to the readers, so their buffers are reused
    // instead of allocated (and page-faulted in) for every batch.
    let (recycle_tx, recycle_rx) =
        bounded::<Batch>(nworkers * (cfg.pipeline.worker_queue.max(1) + 2) + nreaders);
    let mut senders = Vec::with_capacity(nworkers);
    let mut handles = Vec::with_capacity(nworkers);
    let pin = cfg.pipeline.pin && !cores.is_empty();
    let live = matches!(input, Input::Live { .. });
    for i in 0..nworkers {
        let (tx, rx) = bounded::<WorkerMsg>(cfg.pipeline.worker_queue.max(1));
        senders.push(tx);
        let w = worker::Worker::new(
            cfg,
            nworkers,
            ports.clone(),
            encoder.clone(),
            publisher.clone(),
            publish,
        )
        .with_recycling(recycle_tx.clone())
        .with_slot(
            registry.counter_slot(&format!("worker-{i}")),
            registry.latency_slot(),
        );
        let w = if cfg.http.enabled {
            w.with_live(
                registry.live_slot(),
                crate::stats::live::LiveLimits::default(),
            )
        } else {
            w
        };
        // Live: readers take the first cores, workers the next ones. Replay: a
        // single worker is left to the scheduler.
        let core = if !pin {
            None
        } else if live {
            cores.get((nreaders + i) % cores.len()).copied()
        } else if nworkers > 1 {
            cores.get(i % cores.len()).copied()
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

    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x77_69_72_65u64)
    };
    let to = ToWorkers {
        senders,
        recycled: recycle_rx,
        seed,
    };
    let (mut counters, input_error) = match input {
        Input::File(opts) => {
            let mut reader = Reader::new(
                cfg,
                ports,
                to,
                Mode::Replay {
                    top_speed: opts.top_speed,
                },
                opts.dump.clone(),
                registry.counter_slot("reader"),
            );
            let src = match first_src {
                Some(s) => s,
                None => FileSource::open(&opts.file)?,
            };
            let err = replay_file(&mut reader, src, opts, &stop)?;
            (reader.finish(), err)
        }
        Input::Live { sources, dump, .. } => live::run_readers(
            cfg,
            &ports,
            sources,
            dump,
            to,
            &stop,
            registry,
            if pin { cores } else { Vec::new() },
        )?,
    };
    // The input is done: from now on the outputs have the shutdown grace to
    // deliver what is queued, even while the workers still hand them events.
    writers.input_ended();
    for h in handles {
        match h.join() {
            Ok(c) => counters.add(&c),
            Err(_) => tracing::error!(target: "pipeline", "a worker thread panicked"),
        }
    }
    let report = writers.finish();
    if has_outputs && publish {
        // What the outputs acknowledged, not what the workers encoded.
        counters.events_dropped += report.dropped;
        counters.events_published = report.published;
    }
    drop(topology);
    let output_error = report.error;
    Ok(Summary {
        counters,
        input_error,
        output_error,
    })
}

/// Every pass over the file; returns the error that ended the input early, if any.
fn replay_file(
    reader: &mut Reader,
    mut src: FileSource,
    opts: &ReplayOptions,
    stop: &AtomicBool,
) -> Result<Option<String>, PipelineError> {
    let mut pass = 0u64;
    loop {
        if let Err(e) = reader.pass(&mut src, stop) {
            return Ok(Some(e.to_string()));
        }
        reader.flush_all();
        pass += 1;
        if stop.load(Ordering::Relaxed) || (opts.loops != 0 && pass >= opts.loops) {
            return Ok(None);
        }
        src = FileSource::open(&opts.file)?;
        reader.next_pass();
    }
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
