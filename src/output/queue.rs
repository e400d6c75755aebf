//! The queue in front of one output's writer thread, bounded in chunks, events and
//! bytes. Workers publish NDJSON chunks (shared between outputs as `Arc<Vec<u8>>`,
//! never copied) that say where each event ends and the hour of its `@timestamp`,
//! so outputs neither split the bytes again nor read the time back from the text;
//! when a queue is full a worker either waits (`block`: backpressure reaches the
//! workers, then the reader, then the capture ring) or the chunk is dropped for that
//! output and counted (`drop_newest`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::stats::OutputStats;
use crate::time::Ts;

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

/// The hour of an event's `@timestamp` (UTC), in hours since the Unix epoch:
/// what the Elasticsearch output names its indices after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHour(pub u32);

const NANOS_PER_HOUR: u64 = 3_600_000_000_000;

impl EventHour {
    /// The hour of `ts`, the instant the encoder writes as `@timestamp`.
    pub fn of(ts: Ts) -> EventHour {
        // u64 nanoseconds span fewer than 2^23 hours.
        EventHour((ts.0 / NANOS_PER_HOUR) as u32)
    }

    /// `YYYY-MM-DDTHH`: how the event's `@timestamp` starts.
    pub fn text(self) -> [u8; 13] {
        let mut buf = Vec::with_capacity(24);
        Ts(u64::from(self.0).saturating_mul(NANOS_PER_HOUR)).write_rfc3339_millis(&mut buf);
        let mut out = *b"1970-01-01T00";
        if let Some(head) = buf.get(..13) {
            out.copy_from_slice(head);
        }
        out
    }
}

/// Where one event of a chunk ends (one past its `\n`), and its hour when the
/// publisher knows it (`None`: outputs read it from the line if they need it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub end: usize,
    pub hour: Option<EventHour>,
}

/// Encoded events: whole NDJSON lines, how many there are, and where each ends.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub data: Arc<Vec<u8>>,
    pub events: u64,
    pub lines: Arc<Vec<Line>>,
    /// Where the buffers go back when the last output is done with them.
    pool: Option<Pool>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let Some(pool) = &self.pool else { return };
        // Only the last holder gets both buffers; when two outputs drop their clones
        // at the same instant neither may, and the buffers are simply freed.
        if let (Some(data), Some(lines)) =
            (Arc::get_mut(&mut self.data), Arc::get_mut(&mut self.lines))
        {
            pool.give(ChunkBuf {
                data: std::mem::take(data),
                lines: std::mem::take(lines),
            });
        }
    }
}

/// About how many bytes of events a worker encodes into one chunk.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Room a fresh [`ChunkBuf`] starts with: a chunk plus the event that overflows it.
const CHUNK_ROOM: usize = CHUNK_BYTES + 4096;
/// Spent buffers kept for reuse, per publisher (each about [`CHUNK_ROOM`]).
const POOL_BUFS: usize = 16;

/// Spent chunk buffers on their way back from the writers to the workers, so that
/// encoding writes into memory already mapped and warm instead of a fresh
/// allocation per chunk (a 260 KiB buffer freed on another thread goes back to the
/// OS and costs a page fault and zeroing when it is allocated again). Bounded:
/// buffers beyond [`POOL_BUFS`], or grown past twice [`CHUNK_ROOM`] by a huge
/// event, are freed.
#[derive(Clone, Debug)]
struct Pool {
    give: crossbeam_channel::Sender<ChunkBuf>,
    take: crossbeam_channel::Receiver<ChunkBuf>,
}

impl Pool {
    fn new(bufs: usize) -> Pool {
        let (give, take) = crossbeam_channel::bounded(bufs);
        Pool { give, take }
    }

    fn give(&self, mut b: ChunkBuf) {
        if b.data.capacity() > 2 * CHUNK_ROOM || b.lines.capacity() > 2 * CHUNK_ROOM / 256 {
            return;
        }
        b.data.clear();
        b.lines.clear();
        // Full: the buffer is freed.
        let _ = self.give.try_send(b);
    }

    fn take(&self) -> ChunkBuf {
        self.take
            .try_recv()
            .unwrap_or_else(|_| ChunkBuf::with_capacity(CHUNK_ROOM))
    }
}

impl Chunk {
    /// A chunk of `events` from NDJSON bytes whose hours are not known: the
    /// lines are found by their `\n`.
    pub fn from_ndjson(data: Vec<u8>, events: u64) -> Chunk {
        let mut lines = Vec::new();
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', &data) {
            lines.push(Line {
                end: i + 1,
                hour: None,
            });
            start = i + 1;
        }
        if start < data.len() {
            lines.push(Line {
                end: data.len(),
                hour: None,
            });
        }
        Chunk {
            data: Arc::new(data),
            events,
            lines: Arc::new(lines),
            pool: None,
        }
    }

    /// Every line as written, with its `\n` (the last one may lack it).
    pub fn raw_lines(&self) -> impl Iterator<Item = &[u8]> {
        let data = self.data.as_slice();
        let mut start = 0;
        self.lines.iter().map(move |l| {
            let end = l.end.min(data.len());
            let line = &data[start.min(end)..end];
            start = end;
            line
        })
    }

    /// Every event: its JSON without the `\n`, and its hour when known. Empty
    /// lines are skipped.
    pub fn events(&self) -> impl Iterator<Item = (&[u8], Option<EventHour>)> {
        self.raw_lines()
            .zip(self.lines.iter())
            .filter_map(|(line, l)| {
                let json = line.strip_suffix(b"\n").unwrap_or(line);
                (!json.is_empty()).then_some((json, l.hour))
            })
    }
}

/// Where a worker encodes events: the NDJSON bytes and where each event ends.
#[derive(Debug, Default)]
pub struct ChunkBuf {
    data: Vec<u8>,
    lines: Vec<Line>,
}

impl ChunkBuf {
    /// Room for about `bytes` of events.
    pub fn with_capacity(bytes: usize) -> ChunkBuf {
        ChunkBuf {
            data: Vec::with_capacity(bytes),
            lines: Vec::with_capacity(bytes / 256),
        }
    }

    /// The bytes to append the next event's JSON to.
    pub fn data(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the event just appended (writes its `\n`).
    pub fn end_event(&mut self, hour: EventHour) {
        self.data.push(b'\n');
        self.lines.push(Line {
            end: self.data.len(),
            hour: Some(hour),
        });
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn into_chunk(self, pool: Option<Pool>) -> Chunk {
        Chunk {
            events: self.lines.len() as u64,
            data: Arc::new(self.data),
            lines: Arc::new(self.lines),
            pool,
        }
    }
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
    pool: Option<Pool>,
}

impl Publisher {
    pub fn new(queues: Vec<Queue>) -> Publisher {
        Publisher {
            queues: Arc::new(queues),
            pool: Some(Pool::new(POOL_BUFS)),
        }
    }

    /// An empty buffer to encode the next chunk into: a spent one when the writers
    /// have handed one back, else a new one with room for [`CHUNK_BYTES`].
    pub fn fresh_buf(&self) -> ChunkBuf {
        match &self.pool {
            Some(p) => p.take(),
            None => ChunkBuf::with_capacity(CHUNK_ROOM),
        }
    }

    /// Hands `events` NDJSON lines to every output.
    pub fn publish(&self, data: Vec<u8>, events: u64) {
        if data.is_empty() || self.queues.is_empty() {
            return;
        }
        self.push(Chunk::from_ndjson(data, events));
    }

    /// Hands the events encoded in `buf` to every output.
    pub fn publish_buf(&self, buf: ChunkBuf) {
        if buf.is_empty() || self.queues.is_empty() {
            return;
        }
        self.push(buf.into_chunk(self.pool.clone()));
    }

    fn push(&self, chunk: Chunk) {
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
        Chunk::from_ndjson(vec![b'x'; bytes], events)
    }

    #[test]
    fn chunks_know_their_lines() {
        let c = Chunk::from_ndjson(b"{\"a\":1}\n\n{\"b\":2}\nlast".to_vec(), 3);
        let raw: Vec<&[u8]> = c.raw_lines().collect();
        assert_eq!(raw, [&b"{\"a\":1}\n"[..], b"\n", b"{\"b\":2}\n", b"last"]);
        let ev: Vec<&[u8]> = c
            .events()
            .map(|(l, h)| {
                assert_eq!(h, None);
                l
            })
            .collect();
        assert_eq!(ev, [&b"{\"a\":1}"[..], b"{\"b\":2}", b"last"]);
        assert_eq!(Chunk::from_ndjson(Vec::new(), 0).events().count(), 0);

        let ts = Ts::from_secs_nanos(1_764_633_599, 999_999_999); // 2025-12-01T23:59:59.999
        let mut b = ChunkBuf::with_capacity(64);
        b.data().extend_from_slice(b"{\"x\":1}");
        b.end_event(EventHour::of(ts));
        b.data().extend_from_slice(b"{\"x\":2}");
        b.end_event(EventHour::of(Ts(ts.0 + 1)));
        let c = b.into_chunk(None);
        assert_eq!(c.events, 2);
        assert_eq!(&c.data[..], b"{\"x\":1}\n{\"x\":2}\n");
        let hours: Vec<[u8; 13]> = c.events().map(|(_, h)| h.unwrap().text()).collect();
        assert_eq!(hours, [*b"2025-12-01T23", *b"2025-12-02T00"]);
    }

    #[test]
    fn event_hours_match_the_encoded_timestamp() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let ts = Ts(seed);
            let mut text = Vec::new();
            ts.write_rfc3339_millis(&mut text);
            assert_eq!(&EventHour::of(ts).text()[..], &text[..13], "{ts:?}");
        }
        assert_eq!(&EventHour::of(Ts(u64::MAX)).text()[..4], b"2554");
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

    fn pop(q: &Queue) -> Chunk {
        match q.pop_timeout(Duration::ZERO) {
            Pop::Chunk(c) => c,
            _ => panic!("no chunk"),
        }
    }

    #[test]
    fn spent_buffers_come_back_to_the_publisher() {
        let stats = Arc::new(OutputStats::default());
        let limits = limits(1000, 1 << 30, WhenFull::Block);
        let (q1, q2) = (
            Queue::new(limits, Arc::clone(&stats)),
            Queue::new(limits, Arc::clone(&stats)),
        );
        let p = Publisher::new(vec![q1.clone(), q2.clone()]);
        let mut b = p.fresh_buf();
        b.data().extend_from_slice(b"{\"a\":1}");
        b.end_event(EventHour(1));
        let ptr = b.data().as_ptr();
        p.publish_buf(b);
        let (c1, c2) = (pop(&q1), pop(&q2));
        assert_eq!(&c2.data[..], b"{\"a\":1}\n");
        drop(c1);
        // The second output still reads it: nothing went back yet.
        assert_eq!(&c2.data[..], b"{\"a\":1}\n");
        assert!(p.pool.as_ref().unwrap().take.is_empty());
        drop(c2);
        let mut again = p.fresh_buf();
        assert!(again.is_empty() && again.lines.is_empty());
        assert_eq!(again.data().as_ptr(), ptr, "the same buffer, reused");
        assert!(again.data().capacity() >= CHUNK_BYTES);

        // A buffer a huge event grew is freed, not kept.
        again.data().resize(3 * CHUNK_ROOM, b'x');
        again.end_event(EventHour(1));
        p.publish_buf(again);
        drop((pop(&q1), pop(&q2)));
        assert!(p.pool.as_ref().unwrap().take.is_empty());

        // The pool is bounded: more spent buffers than it holds are freed.
        let mut held = Vec::new();
        for _ in 0..POOL_BUFS + 5 {
            let mut b = p.fresh_buf();
            b.data().push(b'x');
            b.end_event(EventHour(1));
            p.publish_buf(b);
            held.push((pop(&q1), pop(&q2)));
        }
        drop(held);
        assert_eq!(p.pool.as_ref().unwrap().take.len(), POOL_BUFS);
        // Chunks made from plain bytes have no pool to go back to.
        drop(Chunk::from_ndjson(b"x\n".to_vec(), 1));
        assert_eq!(p.pool.as_ref().unwrap().take.len(), POOL_BUFS);
    }
}
