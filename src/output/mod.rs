//! Outputs. Workers encode events as NDJSON into byte chunks and publish them to
//! every enabled output's own bounded [`queue`]; each output has a dedicated writer
//! thread that drains its queue, so a slow output never delays another one, and a
//! full queue pushes back on the workers (or drops and counts, per `when_full`).

pub mod console;
pub mod elasticsearch;
pub mod file;
pub mod queue;
pub mod redis;
pub mod retry;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::stats::{OutputStats, Registry};
pub use queue::{Chunk, Limits, Publisher, WhenFull};

/// A destination for encoded events. Every call says what happened to the
/// events it delivered (a [`Delivery`]); the writer thread counts that in the
/// output's [`OutputStats`], the same way for every output.
pub trait Output: Send {
    fn name(&self) -> &'static str;
    /// Writes (or gathers, for an output that sends in batches of its own) the
    /// events of `chunk`. The delivery is of what this call sent, which may
    /// include events gathered by earlier calls. An error stops the output: its
    /// events are counted as failed from then on.
    fn write_batch(&mut self, chunk: &Chunk) -> io::Result<Delivery>;
    /// Sends what is gathered; called when the run ends.
    fn flush(&mut self) -> io::Result<Delivery>;
    /// Called by the writer thread when idle, at least every 100 ms, so that
    /// time-based flushes, retries and reconnects happen without new events.
    fn tick(&mut self) -> io::Result<Delivery> {
        Ok(Delivery::default())
    }
    /// The run's give-up flag: set when a stopping run (a signal, or the input's
    /// end) has used up its shutdown grace (`pipeline.shutdown_timeout`). An
    /// output that retries or waits stops doing so when it is set.
    fn set_stop(&mut self, _stop: Arc<AtomicBool>) {}
    /// Where an output that blocks while it retries reports what it delivered
    /// so far (each failed attempt, as it happens), so that the stats show an
    /// outage while it lasts; what it reported is not in the [`Delivery`] it
    /// then returns.
    fn set_progress(&mut self, _progress: DeliveryProgress) {}
}

/// A narrow handle on an output's [`OutputStats`]: the only thing it can do is
/// count a [`Delivery`] before the call that made it returns. Without stats
/// (the default), nothing is reported early and the delivery stays with the
/// call's result.
#[derive(Clone, Debug, Default)]
pub struct DeliveryProgress(Option<Arc<OutputStats>>);

impl DeliveryProgress {
    pub fn new(stats: Arc<OutputStats>) -> DeliveryProgress {
        DeliveryProgress(Some(stats))
    }

    /// Counts `d` now and empties it, so that it is never counted twice.
    pub fn report(&self, d: &mut Delivery) {
        if let Some(stats) = &self.0 {
            std::mem::take(d).count(stats);
        }
    }
}

/// What happened to the events an [`Output`] call delivered, in the terms of
/// [`OutputStats`].
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Events acknowledged by the destination (written, indexed, pushed).
    pub published: u64,
    /// Events given up on: rejected for good, or out of retries.
    pub failed: u64,
    /// Events sent again after a retryable failure (once per resend).
    pub retried: u64,
    /// Events sent again that the destination may already have had
    /// ([`OutputStats::events_resent`]).
    pub resent: u64,
    /// Requests or writes sent, and those that failed as a whole.
    pub requests: u64,
    pub request_errors: u64,
    /// Responses that said nothing reliable about the events sent.
    pub bad_responses: u64,
    /// Bytes written to the destination (before compression).
    pub bytes: u64,
}

impl Delivery {
    /// A chunk written in full with one write.
    pub fn written(chunk: &Chunk) -> Delivery {
        Delivery {
            published: chunk.events,
            requests: 1,
            bytes: chunk.data.len() as u64,
            ..Delivery::default()
        }
    }

    fn count(&self, stats: &OutputStats) {
        let add = |c: &std::sync::atomic::AtomicU64, n: u64| {
            if n > 0 {
                OutputStats::add(c, n);
            }
        };
        add(&stats.events_published, self.published);
        add(&stats.events_failed, self.failed);
        add(&stats.events_retried, self.retried);
        add(&stats.events_resent, self.resent);
        add(&stats.batches, self.requests);
        add(&stats.batch_errors, self.request_errors);
        add(&stats.bad_responses, self.bad_responses);
        add(&stats.bytes, self.bytes);
    }
}

impl std::ops::AddAssign for Delivery {
    fn add_assign(&mut self, o: Delivery) {
        self.published += o.published;
        self.failed += o.failed;
        self.retried += o.retried;
        self.resent += o.resent;
        self.requests += o.requests;
        self.request_errors += o.request_errors;
        self.bad_responses += o.bad_responses;
        self.bytes += o.bytes;
    }
}

/// Checks the output settings without opening anything (for `test config`).
pub fn check_config(cfg: &Config) -> Result<(), String> {
    let o = &cfg.output;
    if let Some(es) = o.elasticsearch.as_ref().filter(|e| e.enabled) {
        elasticsearch::check_config(es).map_err(|e| format!("output.elasticsearch: {e}"))?;
    }
    if let Some(f) = o.file.as_ref().filter(|f| f.enabled)
        && (f.filename.is_empty() || f.filename.contains('/'))
    {
        return Err(format!(
            "output.file.filename: {:?} must be a plain file name",
            f.filename
        ));
    }
    if let Some(r) = o.redis.as_ref().filter(|r| r.enabled) {
        redis::addresses(r)?;
    }
    Ok(())
}

/// Builds every enabled output. With none configured, events go to stdout.
/// Outputs that this build cannot drive are a configuration error naming them.
pub fn from_config(cfg: &Config) -> Result<Vec<Box<dyn Output>>, String> {
    let mut outs: Vec<Box<dyn Output>> = Vec::new();
    let o = &cfg.output;
    if let Some(es) = o.elasticsearch.as_ref().filter(|e| e.enabled) {
        outs.push(Box::new(
            elasticsearch::Elasticsearch::new(es)
                .map_err(|e| format!("output.elasticsearch: {e}"))?,
        ));
    }
    if let Some(r) = o.redis.as_ref().filter(|r| r.enabled) {
        outs.push(Box::new(redis::RedisOutput::new(r)?));
    }
    if let Some(f) = o.file.as_ref().filter(|f| f.enabled) {
        outs.push(Box::new(
            file::RotatingFile::new(f).map_err(|e| format!("output.file: {e}"))?,
        ));
    }
    if let Some(c) = o.console.as_ref().filter(|c| c.enabled) {
        outs.push(Box::new(console::Console::stdout(c.pretty)));
    }
    if outs.is_empty() {
        outs.push(Box::new(console::Console::stdout(false)));
    }
    Ok(outs)
}

/// The writer threads of a run, one per output.
pub struct Writers {
    queues: Vec<queue::Queue>,
    handles: Vec<(String, JoinHandle<Option<String>>)>,
    stats: Vec<Arc<OutputStats>>,
    shutdown: Shutdown,
}

/// When the outputs stop trying: `grace` after the run's stop signal or after
/// [`Writers::finish`] began, whichever comes first, the give-up flag is set;
/// writers then drop what is left (counted as failed) instead of sending it.
#[derive(Clone)]
struct Shutdown {
    /// SIGINT/SIGTERM.
    signal: Arc<AtomicBool>,
    /// The input ended and the queues are draining.
    draining: Arc<AtomicBool>,
    /// Set once the grace has run out.
    give_up: Arc<AtomicBool>,
    /// The writers are done (the watcher can go).
    done: Arc<AtomicBool>,
    grace: Duration,
}

impl Shutdown {
    /// Runs on its own thread: sets `give_up` once `grace` has passed since the
    /// run began stopping.
    fn watch(self) {
        let poll = Duration::from_millis(20);
        while !self.signal.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed) {
            if self.done.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(poll);
        }
        let until = retry::deadline(self.grace);
        while Instant::now() < until {
            if self.done.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(poll.min(until.saturating_duration_since(Instant::now())));
        }
        if !self.done.load(Ordering::Relaxed) {
            tracing::warn!(target: "output", "shutdown_timeout ({:?}) reached: events not delivered yet are dropped", self.grace);
            self.give_up.store(true, Ordering::Relaxed);
        }
    }
}

/// How long [`Writers::finish`] still waits for a writer after the give-up flag
/// was set (one blocked in a network call may not notice before its own timeout).
const JOIN_AFTER_GIVE_UP: Duration = Duration::from_secs(2);

/// What the outputs did, when they are done.
#[derive(Debug, Default)]
pub struct Report {
    /// Events every output acknowledged (the smallest count over the outputs).
    pub published: u64,
    /// Events lost by some output (the largest count over the outputs): dropped at
    /// a full queue, rejected, or given up on.
    pub dropped: u64,
    /// The first output error.
    pub error: Option<String>,
}

/// How often an idle writer calls [`Output::tick`].
const TICK: Duration = Duration::from_millis(100);

/// Starts one writer thread per output, each with its own queue bounded by
/// `limits`, and returns the handle workers publish through.
/// `stop` is the run's signal flag; `grace` its shutdown grace (see [`Shutdown`]).
pub fn start(
    outputs: Vec<Box<dyn Output>>,
    limits: Limits,
    registry: &Registry,
    stop: Arc<AtomicBool>,
    grace: Duration,
) -> io::Result<(Publisher, Writers)> {
    let shutdown = Shutdown {
        signal: stop,
        draining: Arc::new(AtomicBool::new(false)),
        give_up: Arc::new(AtomicBool::new(false)),
        done: Arc::new(AtomicBool::new(false)),
        grace,
    };
    let mut w = Writers {
        queues: Vec::new(),
        handles: Vec::new(),
        stats: Vec::new(),
        shutdown: shutdown.clone(),
    };
    {
        let s = shutdown.clone();
        thread::Builder::new()
            .name("wirebeat-out-grace".into())
            .spawn(move || s.watch())?;
    }
    for mut out in outputs {
        let name = out.name();
        let stats = registry.output(name);
        let q = queue::Queue::new(limits, Arc::clone(&stats));
        out.set_stop(Arc::clone(&shutdown.give_up));
        out.set_progress(DeliveryProgress::new(Arc::clone(&stats)));
        let (q2, s2, g2) = (q.clone(), Arc::clone(&stats), Arc::clone(&shutdown.give_up));
        let h = thread::Builder::new()
            .name(format!("wirebeat-out-{name}"))
            .spawn(move || writer_loop(q2, out, s2, g2));
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                w.finish();
                return Err(e);
            }
        };
        w.queues.push(q);
        w.handles.push((name.to_string(), h));
        w.stats.push(stats);
    }
    Ok((Publisher::new(w.queues.clone()), w))
}

impl Writers {
    /// The input has ended: the shutdown grace starts.
    pub fn input_ended(&self) {
        self.shutdown.draining.store(true, Ordering::Relaxed);
    }

    /// Closes every queue, lets each writer drain and flush within the shutdown
    /// grace, and joins them.
    pub fn finish(self) -> Report {
        self.input_ended();
        for q in &self.queues {
            q.close();
        }
        let give_up = &self.shutdown.give_up;
        let mut r = Report::default();
        let mut first = true;
        let mut gave_up_at: Option<Instant> = None;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        for ((name, h), stats) in self.handles.into_iter().zip(&self.stats) {
            // Wait for the writer until the grace has run out, then a little more.
            while !h.is_finished() {
                if give_up.load(Ordering::Relaxed) {
                    let t = *gave_up_at.get_or_insert_with(Instant::now);
                    if t.elapsed() >= JOIN_AFTER_GIVE_UP {
                        break;
                    }
                }
                thread::sleep(Duration::from_millis(10));
            }
            let err = if h.is_finished() {
                h.join()
                    .unwrap_or_else(|_| Some(format!("output {name}: writer thread panicked")))
            } else {
                // Blocked in a network call: left behind; the process ends anyway.
                Some(format!(
                    "output {name}: still blocked when shutdown_timeout ran out"
                ))
            };
            if give_up.load(Ordering::Relaxed) {
                // Whatever was queued and neither acknowledged nor counted as lost is
                // lost now (events dropped at a full queue were never queued).
                let settled = g(&stats.events_published) + g(&stats.events_failed);
                let left = g(&stats.events_queued).saturating_sub(settled);
                OutputStats::add(&stats.events_failed, left);
            }
            if r.error.is_none() {
                r.error = err;
            }
            let published = g(&stats.events_published);
            let dropped = g(&stats.events_dropped_full) + g(&stats.events_failed);
            r.published = if first {
                published
            } else {
                r.published.min(published)
            };
            r.dropped = r.dropped.max(dropped);
            first = false;
        }
        // The watcher can go: nothing is left to give up on.
        self.shutdown.done.store(true, Ordering::Relaxed);
        r
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

/// Drains one output's queue and counts what the output delivered. After an
/// output error, chunks are still taken (and counted as failed) so that workers
/// never wait on a dead output.
fn writer_loop(
    q: queue::Queue,
    mut out: Box<dyn Output>,
    stats: Arc<OutputStats>,
    give_up: Arc<AtomicBool>,
) -> Option<String> {
    let name = out.name();
    let mut error: Option<String> = None;
    let fail = |e: io::Error, error: &mut Option<String>| {
        tracing::error!(target: "output", "output {name}: {e}; its events are dropped from now on");
        *error = Some(format!("output {name}: {e}"));
    };
    let mut last_tick = Instant::now();
    loop {
        match q.pop_timeout(TICK) {
            queue::Pop::Chunk(c) => {
                if error.is_some() || give_up.load(Ordering::Relaxed) {
                    OutputStats::add(&stats.events_failed, c.events);
                    continue;
                }
                match out.write_batch(&c) {
                    Ok(d) => d.count(&stats),
                    Err(e) => {
                        OutputStats::add(&stats.batch_errors, 1);
                        OutputStats::add(&stats.events_failed, c.events);
                        fail(e, &mut error);
                    }
                }
            }
            queue::Pop::Timeout => {}
            queue::Pop::Closed => break,
        }
        if error.is_none() && !give_up.load(Ordering::Relaxed) && last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            match out.tick() {
                Ok(d) => d.count(&stats),
                Err(e) => fail(e, &mut error),
            }
        }
    }
    // After the grace, what the output still holds is not sent: Writers::finish
    // counts it as failed.
    if !give_up.load(Ordering::Relaxed) {
        match out.flush() {
            Ok(d) => d.count(&stats),
            Err(e) => {
                error.get_or_insert(format!("output {name}: {e}"));
            }
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(u32);
    impl Output for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn write_batch(&mut self, c: &Chunk) -> io::Result<Delivery> {
            self.0 += 1;
            if self.0 > 1 {
                return Err(io::Error::other("disk full"));
            }
            Ok(Delivery::written(c))
        }
        fn flush(&mut self) -> io::Result<Delivery> {
            Ok(Delivery::default())
        }
    }

    /// Gathers events and sends them when flushed: one event in three is
    /// rejected, and every event is sent twice before it goes through.
    #[derive(Default)]
    struct Gathering(u64);
    impl Output for Gathering {
        fn name(&self) -> &'static str {
            "gathering"
        }
        fn write_batch(&mut self, c: &Chunk) -> io::Result<Delivery> {
            self.0 += c.events().count() as u64;
            Ok(Delivery::default())
        }
        fn flush(&mut self) -> io::Result<Delivery> {
            let n = std::mem::take(&mut self.0);
            Ok(Delivery {
                published: n - n / 3,
                failed: n / 3,
                retried: n,
                resent: n / 10,
                requests: 2,
                request_errors: 1,
                bad_responses: 1,
                bytes: 7 * n,
            })
        }
    }

    /// Publishes `chunk` (of `events` events) ten times through a writer with one
    /// output, and returns the writer's report.
    fn publish_ten(out: Box<dyn Output>, chunk: &[u8], events: u64, registry: &Registry) -> Report {
        let limits = Limits {
            chunks: 4,
            events: 100,
            bytes: 1 << 20,
            when_full: WhenFull::Block,
        };
        let (p, w) = start(
            vec![out],
            limits,
            registry,
            Arc::new(AtomicBool::new(false)),
            Duration::from_secs(30),
        )
        .unwrap();
        for _ in 0..10 {
            p.publish(chunk.to_vec(), events);
        }
        drop(p);
        w.finish()
    }

    #[test]
    fn the_writer_counts_what_each_call_delivered() {
        let registry = Registry::new();
        let r = publish_ten(
            Box::new(Gathering::default()),
            b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n",
            3,
            &registry,
        );
        assert_eq!((r.published, r.dropped, r.error), (20, 10, None));
        let counters: Vec<(&str, u64)> = registry.output("gathering").entries();
        assert_eq!(
            counters,
            [
                ("events_queued", 30),
                ("events_published", 20),
                ("events_dropped_full", 0),
                ("events_failed", 10),
                ("events_retried", 30),
                ("events_resent", 3),
                ("batches", 2),
                ("batch_errors", 1),
                ("bad_responses", 1),
                ("bytes", 210),
                ("queue_events", 0),
            ]
        );
    }

    /// Reports a failed attempt of each chunk while the call runs, then
    /// returns the rest.
    #[derive(Default)]
    struct Reporting(DeliveryProgress);
    impl Output for Reporting {
        fn name(&self) -> &'static str {
            "reporting"
        }
        fn write_batch(&mut self, c: &Chunk) -> io::Result<Delivery> {
            let mut d = Delivery {
                requests: 1,
                request_errors: 1,
                retried: c.events,
                ..Delivery::default()
            };
            self.0.report(&mut d);
            assert_eq!(d, Delivery::default(), "reported deliveries are emptied");
            d += Delivery::written(c);
            Ok(d)
        }
        fn flush(&mut self) -> io::Result<Delivery> {
            Ok(Delivery::default())
        }
        fn set_progress(&mut self, progress: DeliveryProgress) {
            self.0 = progress;
        }
    }

    #[test]
    fn progress_reported_early_is_counted_once() {
        let registry = Registry::new();
        let r = publish_ten(
            Box::new(Reporting::default()),
            b"{\"a\":1}\n{\"a\":2}\n",
            2,
            &registry,
        );
        assert_eq!((r.published, r.dropped, r.error), (20, 0, None));
        let s = registry.output("reporting");
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            (g(&s.batches), g(&s.batch_errors), g(&s.events_retried)),
            (20, 10, 20)
        );
        // Without stats to report to, nothing is taken from the delivery.
        let mut d = Delivery {
            retried: 3,
            ..Delivery::default()
        };
        DeliveryProgress::default().report(&mut d);
        assert_eq!(d.retried, 3);
    }

    #[test]
    fn a_failed_output_keeps_draining_and_counts() {
        let registry = Registry::new();
        let limits = Limits {
            chunks: 2,
            events: 100,
            bytes: 1 << 20,
            when_full: WhenFull::Block,
        };
        let console = console::Console::to_writer(Box::new(io::sink()), false);
        let outs: Vec<Box<dyn Output>> = vec![Box::new(Failing(0)), Box::new(console)];
        let (p, w) = start(
            outs,
            limits,
            &registry,
            Arc::new(AtomicBool::new(false)),
            Duration::from_secs(30),
        )
        .unwrap();
        for _ in 0..50 {
            p.publish(b"{\"a\":1}\n{\"a\":2}\n".to_vec(), 2);
        }
        drop(p);
        let r = w.finish();
        assert_eq!(r.error.as_deref(), Some("output failing: disk full"));
        assert_eq!(r.published, 2, "the smallest count over the outputs");
        assert_eq!(r.dropped, 98);
        let c = registry.output("console");
        assert_eq!(c.events_published.load(Ordering::Relaxed), 100);
        assert_eq!(c.batches.load(Ordering::Relaxed), 50);
        let f = registry.output("failing");
        assert_eq!(f.events_failed.load(Ordering::Relaxed), 98);
        assert_eq!(f.events_queued.load(Ordering::Relaxed), 100);
    }
}
