//! The queue in front of one output's writer thread, bounded in chunks, events and
//! bytes. Workers publish NDJSON chunks (shared between outputs as `Arc<Vec<u8>>`,
//! never copied); when a queue is full a worker either waits (`block`: backpressure reaches the
//! workers, then the reader, then the capture ring) or the chunk is dropped for that
//! output and counted (`drop_newest`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::stats::OutputStats;

/// What to do with a chunk that does not fit (`pipeline.when_full`).
pub use crate::config::WhenFull;

/// Bounds of one queue. A single chunk larger than a bound is still accepted
/// when the queue is empty, so that progress is always possible.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub chunks: usize,
    pub events: u64,
    pub bytes: u64,
    pub when_full: WhenFull,
}

impl Limits {
    pub fn from_config(p: &crate::config::PipelineConfig) -> Limits {
        Limits {
            chunks: p.output_queue.max(1),
            events: p.output_queue_events.max(1) as u64,
            bytes: p.output_queue_bytes.max(1) as u64,
            when_full: p.when_full,
        }
    }
}

/// Encoded events: whole NDJSON lines and how many there are.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub data: Arc<Vec<u8>>,
    pub events: u64,
}

#[derive(Default)]
struct State {
    items: VecDeque<Chunk>,
    events: u64,
    bytes: u64,
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    limits: Limits,
    stats: Arc<OutputStats>,
}

/// One output's queue; clones share it.
#[derive(Clone)]
pub struct Queue(Arc<Inner>);

/// What [`Queue::pop_timeout`] found.
pub enum Pop {
    Chunk(Chunk),
    /// Nothing arrived in time.
    Timeout,
    /// Closed and empty: the writer can finish.
    Closed,
}

impl Queue {
    pub fn new(limits: Limits, stats: Arc<OutputStats>) -> Queue {
        Queue(Arc::new(Inner {
            state: Mutex::new(State::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            limits,
            stats,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.0.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn fits(&self, s: &State, c: &Chunk) -> bool {
        let l = &self.0.limits;
        s.items.is_empty()
            || (s.items.len() < l.chunks
                && s.events + c.events <= l.events
                && s.bytes + c.data.len() as u64 <= l.bytes)
    }

    /// Queues a chunk, waiting for room (`block`) or dropping it (`drop_newest`).
    /// Returns false when the chunk was dropped (full, or the queue is closed).
    pub fn push(&self, c: Chunk) -> bool {
        let stats = &self.0.stats;
        let mut s = self.lock();
        loop {
            if s.closed {
                OutputStats::add(&stats.events_dropped_full, c.events);
                return false;
            }
            if self.fits(&s, &c) {
                break;
            }
            if self.0.limits.when_full == WhenFull::DropNewest {
                drop(s);
                OutputStats::add(&stats.events_dropped_full, c.events);
                return false;
            }
            s = match self.0.not_full.wait(s) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        s.events += c.events;
        s.bytes += c.data.len() as u64;
        OutputStats::add(&stats.events_queued, c.events);
        stats.queue_events.store(s.events, Ordering::Relaxed);
        s.items.push_back(c);
        drop(s);
        self.0.not_empty.notify_one();
        true
    }

    /// Takes the oldest chunk, waiting at most `wait`.
    pub fn pop_timeout(&self, wait: Duration) -> Pop {
        let mut s = self.lock();
        if s.items.is_empty() && !s.closed {
            s = match self.0.not_empty.wait_timeout(s, wait) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        match s.items.pop_front() {
            Some(c) => {
                s.events -= c.events;
                s.bytes -= c.data.len() as u64;
                self.0.stats.queue_events.store(s.events, Ordering::Relaxed);
                drop(s);
                self.0.not_full.notify_all();
                Pop::Chunk(c)
            }
            None if s.closed => Pop::Closed,
            None => Pop::Timeout,
        }
    }

    /// No more chunks will come; waiting publishers give up and the writer drains.
    pub fn close(&self) {
        self.lock().closed = true;
        self.0.not_empty.notify_all();
        self.0.not_full.notify_all();
    }

    /// Events and bytes queued right now.
    pub fn len(&self) -> (u64, u64) {
        let s = self.lock();
        (s.events, s.bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }
}

/// The handle workers publish through: one queue per enabled output. Cloning is
/// cheap; a chunk is shared, not copied, between outputs.
#[derive(Clone, Default)]
pub struct Publisher {
    queues: Arc<Vec<Queue>>,
}

impl Publisher {
    pub fn new(queues: Vec<Queue>) -> Publisher {
        Publisher {
            queues: Arc::new(queues),
        }
    }

    /// Hands `events` NDJSON lines to every output.
    pub fn publish(&self, data: Vec<u8>, events: u64) {
        if data.is_empty() || self.queues.is_empty() {
            return;
        }
        let chunk = Chunk {
            data: Arc::new(data),
            events,
        };
        for q in self.queues.iter() {
            q.push(chunk.clone());
        }
    }

    /// Outputs fed by this publisher.
    pub fn outputs(&self) -> usize {
        self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Instant;

    fn chunk(events: u64, bytes: usize) -> Chunk {
        Chunk {
            data: Arc::new(vec![b'x'; bytes]),
            events,
        }
    }

    fn limits(events: u64, bytes: u64, when_full: WhenFull) -> Limits {
        Limits {
            chunks: 1000,
            events,
            bytes,
            when_full,
        }
    }

    #[test]
    fn drop_newest_counts_and_keeps_bounds() {
        let stats = Arc::new(OutputStats::default());
        let q = Queue::new(limits(10, 1000, WhenFull::DropNewest), Arc::clone(&stats));
        assert!(q.push(chunk(6, 100)));
        assert!(!q.push(chunk(6, 100)), "events bound");
        assert!(q.push(chunk(4, 100)));
        assert!(!q.push(chunk(1, 1)), "full");
        assert_eq!(q.len(), (10, 200));
        assert_eq!(stats.events_dropped_full.load(Ordering::Relaxed), 7);
        assert_eq!(stats.events_queued.load(Ordering::Relaxed), 10);
        let q2 = Queue::new(
            limits(100, 150, WhenFull::DropNewest),
            Arc::new(OutputStats::default()),
        );
        assert!(q2.push(chunk(1, 100)));
        assert!(!q2.push(chunk(1, 100)), "bytes bound");
        // An oversized chunk still goes into an empty queue.
        let q3 = Queue::new(
            limits(1, 1, WhenFull::DropNewest),
            Arc::new(OutputStats::default()),
        );
        assert!(q3.push(chunk(5, 50)));
    }

    #[test]
    fn block_waits_for_the_writer() {
        let stats = Arc::new(OutputStats::default());
        let q = Queue::new(limits(2, 1 << 20, WhenFull::Block), stats);
        q.push(chunk(2, 10));
        let q2 = q.clone();
        let t0 = Instant::now();
        let h = thread::spawn(move || {
            q2.push(chunk(2, 10));
            t0.elapsed()
        });
        thread::sleep(Duration::from_millis(100));
        assert_eq!(q.len().0, 2, "second push must wait");
        assert!(matches!(
            q.pop_timeout(Duration::from_millis(10)),
            Pop::Chunk(_)
        ));
        let waited = h.join().unwrap();
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
        assert!(matches!(
            q.pop_timeout(Duration::from_millis(10)),
            Pop::Chunk(_)
        ));
        assert!(matches!(
            q.pop_timeout(Duration::from_millis(10)),
            Pop::Timeout
        ));
        q.close();
        assert!(matches!(
            q.pop_timeout(Duration::from_millis(10)),
            Pop::Closed
        ));
    }

    #[test]
    fn close_releases_blocked_publishers() {
        let stats = Arc::new(OutputStats::default());
        let q = Queue::new(limits(1, 1 << 20, WhenFull::Block), Arc::clone(&stats));
        q.push(chunk(1, 1));
        let q2 = q.clone();
        let h = thread::spawn(move || q2.push(chunk(1, 1)));
        thread::sleep(Duration::from_millis(50));
        q.close();
        assert!(!h.join().unwrap());
        assert_eq!(stats.events_dropped_full.load(Ordering::Relaxed), 1);
        // What was queued before closing is still drained.
        assert!(matches!(q.pop_timeout(Duration::ZERO), Pop::Chunk(_)));
        assert!(matches!(q.pop_timeout(Duration::ZERO), Pop::Closed));
    }
}
