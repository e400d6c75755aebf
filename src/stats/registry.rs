//! The live view of every thread's counters, for the periodic report, the metrics
//! endpoint and the final summary.
//!
//! Each reader and worker thread owns its `Counters` on the hot path and copies them
//! into its own slot now and then ([`CounterSlot::publish`]): the slot's lock is only
//! ever shared with the reporting thread, never between workers. Outputs count with
//! atomics in their [`OutputStats`], written by their own writer thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Counters;
use super::latency::Latencies;
use super::live::LiveAgg;

/// How often a thread copies its counters into its slot at most.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// One thread's published counters.
#[derive(Clone, Debug)]
pub struct CounterSlot {
    who: Arc<str>,
    shared: Arc<Mutex<Counters>>,
    last: Instant,
}

impl CounterSlot {
    /// Whether [`PUBLISH_EVERY`] has passed since the last copy.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= PUBLISH_EVERY
    }

    /// Copies `c` into the slot if it is [`due`](Self::due).
    pub fn maybe_publish(&mut self, c: &Counters) {
        if self.due() {
            self.publish(c);
        }
    }

    /// Copies `c` into the slot now.
    pub fn publish(&mut self, c: &Counters) {
        self.last = Instant::now();
        if let Ok(mut s) = self.shared.lock() {
            s.clone_from(c);
        }
    }

    pub fn who(&self) -> &str {
        &self.who
    }
}

/// One worker's response-time histograms, merged in by the worker.
#[derive(Clone, Debug)]
pub struct LatencySlot {
    shared: Arc<Mutex<Latencies>>,
}

impl LatencySlot {
    /// Adds `local` into the slot and empties it.
    pub fn merge(&self, local: &mut Latencies) {
        if local.is_empty() {
            return;
        }
        if let Ok(mut s) = self.shared.lock() {
            s.add(local);
        }
        local.reset();
    }
}

/// Counters of one output, written by its writer thread (and by workers for drops
/// at a full queue).
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Events handed to the output's queue.
    pub events_queued: AtomicU64,
    /// Events acknowledged by the destination (written, indexed, pushed).
    pub events_published: AtomicU64,
    /// Events dropped because the queue was full (`when_full: drop_newest`).
    pub events_dropped_full: AtomicU64,
    /// Events given up on: non-retryable rejections, or retries exhausted.
    pub events_failed: AtomicU64,
    /// Events sent again after a retryable failure.
    pub events_retried: AtomicU64,
    /// Events sent again although the destination may already have had them
    /// (sent in full, the answer lost). Redis: each may be in the list twice.
    /// Elasticsearch: the resent items answered 409, already indexed under
    /// their `_id` and so stored once.
    pub events_resent: AtomicU64,
    /// Requests or writes sent, and those that failed as a whole.
    pub batches: AtomicU64,
    pub batch_errors: AtomicU64,
    /// Responses that said nothing reliable about the events sent (unreadable,
    /// truncated, too large, or not one result per event): the whole request is
    /// sent again.
    pub bad_responses: AtomicU64,
    /// Bytes written to the destination (before compression).
    pub bytes: AtomicU64,
    /// Events waiting in the queue right now (a gauge).
    pub queue_events: AtomicU64,
}

impl OutputStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `(name, value)` for every counter, in declaration order.
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("events_queued", g(&self.events_queued)),
            ("events_published", g(&self.events_published)),
            ("events_dropped_full", g(&self.events_dropped_full)),
            ("events_failed", g(&self.events_failed)),
            ("events_retried", g(&self.events_retried)),
            ("events_resent", g(&self.events_resent)),
            ("batches", g(&self.batches)),
            ("batch_errors", g(&self.batch_errors)),
            ("bad_responses", g(&self.bad_responses)),
            ("bytes", g(&self.bytes)),
            ("queue_events", g(&self.queue_events)),
        ]
    }
}

type Slots = Vec<(Arc<str>, Arc<Mutex<Counters>>)>;

/// Every slot and output of a run.
#[derive(Debug, Default)]
pub struct Registry {
    slots: Mutex<Slots>,
    latencies: Mutex<Vec<Arc<Mutex<Latencies>>>>,
    outputs: Mutex<Vec<(String, Arc<OutputStats>)>>,
    live: Mutex<Vec<Arc<Mutex<LiveAgg>>>>,
}

/// Where one worker hands over a copy of its [`LiveAgg`] (with its counters).
#[derive(Debug)]
pub struct LiveSlot {
    shared: Arc<Mutex<LiveAgg>>,
}

impl LiveSlot {
    pub fn publish(&self, agg: &LiveAgg) {
        if let Ok(mut s) = self.shared.lock() {
            s.clone_from(agg);
        }
    }
}

/// What every thread has published so far.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The sum over every reader and worker.
    pub counters: Counters,
    /// Per output, in the order they were registered.
    pub outputs: Vec<(String, Vec<(&'static str, u64)>)>,
    /// Response times per protocol, since the start.
    pub latencies: Latencies,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// A new slot for one thread (`who` names it in logs, e.g. `worker-0`).
    pub fn counter_slot(&self, who: &str) -> CounterSlot {
        let who: Arc<str> = Arc::from(who);
        let shared = Arc::new(Mutex::new(Counters::default()));
        if let Ok(mut s) = self.slots.lock() {
            s.push((Arc::clone(&who), Arc::clone(&shared)));
        }
        CounterSlot {
            who,
            shared,
            last: Instant::now(),
        }
    }

    /// A new live-view slot for one worker.
    pub fn live_slot(&self) -> LiveSlot {
        let shared = Arc::new(Mutex::new(LiveAgg::default()));
        if let Ok(mut l) = self.live.lock() {
            l.push(Arc::clone(&shared));
        }
        LiveSlot { shared }
    }

    /// Every worker's live view, merged.
    pub fn live(&self) -> LiveAgg {
        let mut all = LiveAgg::default();
        if let Ok(slots) = self.live.lock() {
            for l in slots.iter() {
                if let Ok(l) = l.lock() {
                    all.add(&l);
                }
            }
        }
        all
    }

    /// A new response-time slot for one worker.
    pub fn latency_slot(&self) -> LatencySlot {
        let shared = Arc::new(Mutex::new(Latencies::default()));
        if let Ok(mut l) = self.latencies.lock() {
            l.push(Arc::clone(&shared));
        }
        LatencySlot { shared }
    }

    /// The statistics of an output named `name` (created on first use).
    pub fn output(&self, name: &str) -> Arc<OutputStats> {
        let mut outs = match self.outputs.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        if let Some((_, s)) = outs.iter().find(|(n, _)| n == name) {
            return Arc::clone(s);
        }
        let s = Arc::new(OutputStats::default());
        outs.push((name.to_string(), Arc::clone(&s)));
        s
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut counters = Counters::default();
        if let Ok(slots) = self.slots.lock() {
            for (_, c) in slots.iter() {
                if let Ok(c) = c.lock() {
                    counters.add(&c);
                }
            }
        }
        let outputs = match self.outputs.lock() {
            Ok(o) => o.iter().map(|(n, s)| (n.clone(), s.entries())).collect(),
            Err(_) => Vec::new(),
        };
        let mut latencies = Latencies::default();
        if let Ok(slots) = self.latencies.lock() {
            for l in slots.iter() {
                if let Ok(l) = l.lock() {
                    latencies.add(&l);
                }
            }
        }
        Snapshot {
            counters,
            outputs,
            latencies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_sum_and_outputs_are_shared_by_name() {
        let r = Registry::new();
        let mut a = r.counter_slot("worker-0");
        let mut b = r.counter_slot("worker-1");
        a.publish(&Counters {
            packets: 2,
            ..Default::default()
        });
        b.publish(&Counters {
            packets: 5,
            ..Default::default()
        });
        assert_eq!(r.snapshot().counters.packets, 7);
        let o1 = r.output("elasticsearch");
        OutputStats::add(&o1.events_published, 3);
        let o2 = r.output("elasticsearch");
        assert_eq!(o2.events_published.load(Ordering::Relaxed), 3);
        assert_eq!(r.snapshot().outputs.len(), 1);
    }
}
