//! Live reader threads. Each reader owns one capture source (one AF_PACKET ring of a
//! fanout group, or one libpcap handle) and its own decoder, and shards packets by
//! the same seeded symmetric flow hash as a replay, so a flow lands on the same
//! worker whichever reader saw it. Crossbeam channels are multi-producer: every
//! reader sends to every worker.
//!
//! A reader never blocks for long on its source: it polls with a short timeout to
//! notice the stop flag, hands partial batches over when the link is quiet (or every
//! [`FLUSH_EVERY`]), reads the kernel counters every [`STATS_EVERY`], and sends each
//! worker a [`WorkerMsg::Tick`] with the wall clock so idle connections expire and
//! events are shipped even when no packet arrives.
//!
//! A full worker queue makes the reader wait (`pipeline.when_full: block`, the
//! default): the pressure then shows as kernel ring drops (`kernel_drops`), which
//! the kernel counts exactly. With `when_full: drop_newest` the reader drops the
//! batch instead and counts its packets in `reader_queue_full_drops`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::reader::{Mode, Reader, ToWorkers};
use super::{PipelineError, pin_to};
use crate::capture::source::{PacketSource, SourceStats};
use crate::config::Config;
use crate::flow::PortMap;
use crate::stats::{Counters, Registry};
use crate::time::Ts;

/// How long a reader waits on a quiet source before checking the stop flag.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Partial batches are handed to workers at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Kernel counters are read (and reset) this often.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// Workers are told the time this often.
const TICK_EVERY: Duration = Duration::from_millis(100);
/// Ticks lag the wall clock by this much, so that packets still waiting in another
/// reader's partial batch are never older than the clock a worker was given.
const TICK_LAG: Duration = Duration::from_millis(500);
/// Draining the rings at shutdown stops after this long even if traffic goes on.
const DRAIN_FOR: Duration = Duration::from_millis(500);

/// Worker count for live capture: `pipeline.workers`, or the cores left over by
/// the readers (at least one).
pub fn live_workers(cfg: &Config, readers: usize, cores: usize) -> usize {
    if cfg.pipeline.workers > 0 {
        cfg.pipeline.workers.min(256)
    } else {
        cores.saturating_sub(readers).max(1)
    }
}

fn wall_clock() -> Ts {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(TICK_LAG);
    Ts::from_secs_nanos(d.as_secs(), d.subsec_nanos() as u64)
}

fn add_stats(c: &mut Counters, s: &SourceStats) {
    c.kernel_packets += s.packets;
    c.kernel_drops += s.drops;
    c.ring_freezes += s.freezes;
    c.capture_skipped += s.skipped;
}

/// Starts one reader thread per source, waits for all of them to stop (on `stop`
/// or a capture error), and returns their summed counters and the first error.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_readers(
    cfg: &Config,
    ports: &PortMap,
    sources: Vec<Box<dyn PacketSource>>,
    dump: Option<PathBuf>,
    to: ToWorkers,
    stop: &Arc<AtomicBool>,
    registry: &Arc<Registry>,
    cores: Vec<core_affinity::CoreId>,
) -> Result<(Counters, Option<String>), PipelineError> {
    let drop_when_full = cfg.pipeline.when_full == crate::config::WhenFull::DropNewest;
    let mut handles = Vec::with_capacity(sources.len());
    for (i, src) in sources.into_iter().enumerate() {
        let reader = Reader::new(
            cfg,
            ports.clone(),
            to.clone(),
            Mode::Live { drop_when_full },
            if i == 0 { dump.clone() } else { None },
            registry.counter_slot(&format!("reader-{i}")),
        );
        let core = if cores.is_empty() {
            None
        } else {
            cores.get(i % cores.len()).copied()
        };
        let stop2 = Arc::clone(stop);
        let spawned = thread::Builder::new()
            .name(format!("wirebeat-reader-{i}"))
            .spawn(move || {
                if let Some(c) = core {
                    pin_to(c);
                }
                read_loop(reader, src, &stop2)
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // The readers already running would capture on forever: stop and
                // join them before reporting the failure.
                stop.store(true, Ordering::Relaxed);
                drop(to);
                for h in handles {
                    let _ = h.join();
                }
                return Err(PipelineError::Thread("wirebeat-reader", e));
            }
        }
    }
    drop(to);
    let mut total = Counters::default();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok((c, err)) => {
                total.add(&c);
                if first_err.is_none() {
                    first_err = err;
                }
            }
            Err(_) => {
                tracing::error!(target: "pipeline", "a reader thread panicked");
                stop.store(true, Ordering::Relaxed);
                first_err.get_or_insert_with(|| "a reader thread panicked".into());
            }
        }
    }
    Ok((total, first_err))
}

/// One reader: poll, decode, shard, batch; until `stop`, then drain the ring and
/// read the final kernel counters.
fn read_loop(
    mut reader: Reader,
    mut src: Box<dyn PacketSource>,
    stop: &AtomicBool,
) -> (Counters, Option<String>) {
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    let mut last_tick = Instant::now();
    let mut error = None;
    while !stop.load(Ordering::Relaxed) {
        let r = src.poll(POLL_TIMEOUT, &mut |f| reader.take_frame(f));
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(target: "capture", "{e}");
                error = Some(e.to_string());
                // One broken source ends the run: everything else drains and exits.
                stop.store(true, Ordering::Relaxed);
                break;
            }
        };
        if n == 0 || last_flush.elapsed() >= FLUSH_EVERY {
            reader.flush_partial();
            last_flush = Instant::now();
        }
        if last_tick.elapsed() >= TICK_EVERY {
            reader.tick(wall_clock());
            last_tick = Instant::now();
        }
        if last_stats.elapsed() >= STATS_EVERY {
            match src.stats() {
                Ok(s) => add_stats(reader.counters_mut(), &s),
                Err(e) => tracing::warn!(target: "capture", "{e}"),
            }
            last_stats = Instant::now();
            reader.report();
        }
    }
    if error.is_none() {
        // Frames already in the ring were counted by the kernel: read them so that
        // received = processed + dropped holds at exit.
        let until = Instant::now() + DRAIN_FOR;
        while Instant::now() < until {
            match src.poll(Duration::from_millis(20), &mut |f| reader.take_frame(f)) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    match src.stats() {
        Ok(s) => add_stats(reader.counters_mut(), &s),
        Err(e) => tracing::warn!(target: "capture", "{e}"),
    }
    tracing::debug!(target: "capture", "{}: reader stopped", src.device());
    drop(src);
    (reader.finish(), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_fill_the_cores_left_by_readers() {
        let mut cfg = Config::default();
        assert_eq!(live_workers(&cfg, 1, 2), 1);
        assert_eq!(live_workers(&cfg, 1, 1), 1);
        assert_eq!(live_workers(&cfg, 2, 16), 14);
        cfg.pipeline.workers = 2;
        assert_eq!(live_workers(&cfg, 1, 2), 2);
    }
}
