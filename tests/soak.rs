//! Outputs coming back after an outage, on a 100 MiB replay (docs/RELIABILITY.md,
//! "Outputs coming back: nothing lost, nothing twice"). They take about 40 s and a
//! generated 100 MiB capture, so they are `#[ignore]`d in `cargo test` and run by
//! `scripts/soak.sh` (check `outage`); the same behaviours are checked fast in the
//! regular suite (`tests/es_output.rs` `backpressure_blocks_then_recovers_exactly_once`
//! and `drop_newest_counts_while_stalled`, `tests/redis_output.rs`
//! `reconnects_after_the_server_restarts`):
//!
//! ```sh
//! cargo test --release --features test-support --test soak -- --ignored --nocapture --test-threads=1
//! ```
//!
//! The capture is `target/soak/mix-100m.pcap`, made by the benchmark generator
//! (`scripts/gen-traffic-pcap.py --size-mb 100`, its other flags at their
//! defaults) when missing. Each test replays it at top speed while the
//! destination goes away for several seconds, samples wirebeat's VmRSS every
//! 100 ms, and prints the figures.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::fake_es::FakeEs;
use common::redis_server::{self, RedisServer, free_port};
use common::{Run, final_counter, finish, spawn};
use serde_json::Value;

/// Events queued towards the output at most (`pipeline.output_queue_events`):
/// far fewer than the capture gives, so an outage fills the queue and holds the
/// workers and the reader back.
const QUEUE_EVENTS: u64 = 1024;
/// How long the destination stays away.
const OUTAGE: Duration = Duration::from_secs(8);
/// Peak RSS during the outage may exceed the peak before it by this much at most.
const RSS_MARGIN_KB: u64 = 16 * 1024;

fn capture() -> PathBuf {
    let pcap = common::root().join("target/soak/mix-100m.pcap");
    if !pcap.exists() {
        std::fs::create_dir_all(pcap.parent().unwrap()).unwrap();
        let ok = Command::new("python3")
            .current_dir(common::root())
            .args(["scripts/gen-traffic-pcap.py", "--out"])
            .arg(&pcap)
            .args(["--size-mb", "100"])
            .status()
            .expect("python3")
            .success();
        assert!(ok, "gen-traffic-pcap.py failed");
    }
    pcap
}

/// What the capture gives with the console output: every event's text. Some
/// events have the same text as others (the generator repeats template
/// conversations), so what is stored is compared as a multiset.
struct Reference {
    events: Vec<String>,
    frames: u64,
    bytes: u64,
}

fn reference() -> &'static Reference {
    static R: std::sync::OnceLock<Reference> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let pcap = capture();
        let run = common::replay(&pcap, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let events: Vec<String> = run
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8(l.to_vec()).expect("utf-8"))
            .collect();
        Reference {
            frames: run.counter("packets"),
            bytes: std::fs::metadata(&pcap).unwrap().len(),
            events,
        }
    })
}

/// The phase of the run an RSS sample belongs to.
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

/// VmRSS of `pid` every 100 ms, by phase, until `done`.
struct Rss {
    phase: Arc<AtomicU8>,
    done: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(u8, u64)>>>,
    thread: Option<thread::JoinHandle<()>>,
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

impl Rss {
    fn sample(pid: u32) -> Rss {
        let phase = Arc::new(AtomicU8::new(BEFORE));
        let done = Arc::new(AtomicBool::new(false));
        let samples: Arc<Mutex<Vec<(u8, u64)>>> = Arc::default();
        let (p, d, s) = (Arc::clone(&phase), Arc::clone(&done), Arc::clone(&samples));
        let thread = thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                if let Some(kb) = vm_rss_kb(pid) {
                    s.lock().unwrap().push((p.load(Ordering::SeqCst), kb));
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        Rss {
            phase,
            done,
            samples,
            thread: Some(thread),
        }
    }

    fn enter(&self, phase: u8, pid: u32) {
        // One sample at each boundary, so that every phase has one.
        if let Some(kb) = vm_rss_kb(pid) {
            let before = self.phase.load(Ordering::SeqCst);
            self.samples.lock().unwrap().push((before, kb));
            self.samples.lock().unwrap().push((phase, kb));
        }
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Peak KB per phase, and the number of samples.
    fn finish(mut self) -> ([u64; 3], usize) {
        self.done.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        let s = self.samples.lock().unwrap();
        let mut peak = [0u64; 3];
        for &(p, kb) in s.iter() {
            peak[p as usize] = peak[p as usize].max(kb);
        }
        (peak, s.len())
    }
}

/// `GET /stats` of the run's metrics endpoint: the output's counters.
fn output_stats(port: u16, output: &str) -> Option<HashMap<String, u64>> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    c.write_all(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    let body = &text[text.find("\r\n\r\n")? + 4..];
    let v: Value = serde_json::from_str(body).ok()?;
    let m = v["outputs"][output].as_object()?;
    Some(
        m.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .collect(),
    )
}

/// `top_speed`: `-t`; without it the replay follows the capture's timing (about
/// 20 s for this one).
fn args(pcap: &std::path::Path, top_speed: bool, http_port: u16, extra: &[String]) -> Vec<String> {
    let mut a: Vec<String> = [
        "-c",
        "configs/wirebeat.yml",
        "-E",
        "shipper.name=test",
        "-I",
        &pcap.to_string_lossy(),
        "-E",
        "output.console.enabled=false",
        "-E",
        &format!("pipeline.output_queue_events={QUEUE_EVENTS}"),
        "-E",
        "http.enabled=true",
        "-E",
        &format!("http.port={http_port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if top_speed {
        a.push("-t".into());
    }
    a.extend(extra.iter().cloned());
    a
}

/// Kills the run when the test fails before it ends.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// A run with an outage in the middle.
struct Outage {
    run: Run,
    wall: Duration,
    /// From the start to the destination going away.
    down_at: Duration,
    rss: [u64; 3],
    rss_samples: usize,
    /// `events_queued` of the output when it went away and when it came back.
    queued_down: u64,
    queued_up: u64,
}

/// Runs wirebeat with `args`; once `ready` holds, calls `down`, waits [`OUTAGE`],
/// calls `up`, and waits for the end.
fn with_outage(
    args: &[String],
    http_port: u16,
    output: &str,
    ready: impl Fn() -> bool,
    down: impl FnOnce(),
    up: impl FnOnce(),
) -> Outage {
    let t0 = Instant::now();
    let child = spawn(args);
    let pid = child.id();
    let _guard = KillOnPanic(pid);
    let rss = Rss::sample(pid);
    let waiter = thread::spawn(move || finish(child));
    let t_ready = Instant::now();
    while !ready() {
        assert!(
            t_ready.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        assert!(!waiter.is_finished(), "wirebeat ended before the outage");
        thread::sleep(Duration::from_millis(1));
    }
    down();
    let down_at = t0.elapsed();
    rss.enter(DURING, pid);
    let queued = || {
        output_stats(http_port, output)
            .and_then(|m| m.get("events_queued").copied())
            .unwrap_or(0)
    };
    // Let what was in flight settle, then read how far the workers got.
    thread::sleep(Duration::from_millis(500));
    let queued_down = queued();
    thread::sleep(OUTAGE - Duration::from_millis(500));
    let queued_up = queued();
    up();
    rss.enter(AFTER, pid);
    let run = waiter.join().unwrap();
    let wall = t0.elapsed();
    let (peak, n) = rss.finish();
    Outage {
        run,
        wall,
        down_at,
        rss: peak,
        rss_samples: n,
        queued_down,
        queued_up,
    }
}

/// A counter of `output` from the run's final report (0 when absent).
fn out_counter(run: &Run, output: &str, name: &str) -> u64 {
    let head = format!("output {output}:");
    let key = format!("{name}=");
    run.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("wirebeat: "))
        .filter_map(|l| l.strip_prefix(head.as_str()))
        .flat_map(str::split_whitespace)
        .find_map(|kv| kv.strip_prefix(key.as_str())?.parse().ok())
        .unwrap_or(0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn print_common(name: &str, o: &Outage) {
    let r = reference();
    println!(
        "{name}: capture {} frames, {:.1} MiB, {} events; queue {QUEUE_EVENTS} events; outage {:.1} s from {:.2} s",
        r.frames,
        r.bytes as f64 / 1048576.0,
        r.events.len(),
        OUTAGE.as_secs_f64(),
        o.down_at.as_secs_f64()
    );
    println!(
        "{name}: wall {:.2} s, exit {}; RSS peak before {:.1} MiB, during {:.1} MiB, after {:.1} MiB ({} samples)",
        o.wall.as_secs_f64(),
        o.run.code,
        mib(o.rss[0]),
        mib(o.rss[1]),
        mib(o.rss[2]),
        o.rss_samples
    );
    println!(
        "{name}: events_queued {} when it went down, {} when it came back",
        o.queued_down, o.queued_up
    );
    for l in o
        .run
        .stderr
        .lines()
        .filter(|l| l.contains("counters") || l.contains(": output "))
    {
        println!("{name}:   {l}");
    }
}

fn assert_rss_flat(name: &str, o: &Outage) {
    assert!(o.rss[0] > 0 && o.rss[1] > 0, "{name}: no RSS sample");
    assert!(
        o.rss[1] <= o.rss[0] + RSS_MARGIN_KB,
        "{name}: RSS grew during the outage: {} KB before, {} KB during",
        o.rss[0],
        o.rss[1]
    );
}

fn es_args(es: &FakeEs, when_full: &str) -> Vec<String> {
    [
        "output.elasticsearch.enabled=true".to_string(),
        format!("output.elasticsearch.hosts=[\"{}\"]", es.host()),
        "output.elasticsearch.bulk_max_size=256".into(),
        "output.elasticsearch.backoff.init=100ms".into(),
        "output.elasticsearch.backoff.max=1s".into(),
        "output.elasticsearch.max_retries=-1".into(),
        "output.elasticsearch.timeout=5s".into(),
        format!("pipeline.when_full={when_full}"),
        "pipeline.shutdown_timeout=30s".into(),
    ]
    .into_iter()
    .flat_map(|s| ["-E".to_string(), s])
    .collect()
}

/// How many times each text is there, by hash (as the fake stores them with
/// `hash_only`).
type Multiset = HashMap<u64, u64>;

/// The reference events as a [`Multiset`].
fn reference_hashes() -> Multiset {
    use std::hash::{Hash, Hasher};
    let mut m = Multiset::new();
    for e in &reference().events {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        e.as_bytes().hash(&mut h);
        *m.entry(h.finish()).or_default() += 1;
    }
    m
}

/// The stored documents: how many, and their [`Multiset`].
fn stored(es: &FakeEs) -> (u64, Multiset) {
    let docs = es.docs("packetbeat-");
    let mut m = Multiset::new();
    for d in &docs {
        *m.entry(d.as_u64().expect("hash_only")).or_default() += 1;
    }
    (docs.len() as u64, m)
}

/// Copies beyond the reference's (extra), and copies short of it (missing).
fn compare(got: &Multiset, want: &Multiset) -> (u64, u64) {
    let extra = got
        .iter()
        .map(|(h, n)| n.saturating_sub(*want.get(h).unwrap_or(&0)))
        .sum();
    let missing = want
        .iter()
        .map(|(h, n)| n.saturating_sub(*got.get(h).unwrap_or(&0)))
        .sum();
    (extra, missing)
}

/// A replay into the in-test Elasticsearch with `when_full` (at top speed, or at
/// the capture's own pace), which goes down mid-request once 3,000 documents are
/// in and comes back after the outage.
fn es_outage(when_full: &str, top_speed: bool) -> (FakeEs, Outage) {
    let es = FakeEs::start("8.11.1");
    es.state().hash_only = true;
    let http_port = free_port();
    let a = args(&capture(), top_speed, http_port, &es_args(&es, when_full));
    let o = with_outage(
        &a,
        http_port,
        "elasticsearch",
        || es.doc_count() >= 3000,
        || assert!(es.go_down_mid_request(Duration::from_secs(5))),
        || es.come_back(),
    );
    (es, o)
}

/// `when_full: block`: Elasticsearch goes away for 8 s mid-replay. Every event
/// is indexed exactly once, the resends find their documents there (409), the
/// workers wait (the reader is held back, so the run lasts longer than the
/// outage), and memory stays flat.
#[test]
#[ignore]
fn elasticsearch_outage_block() {
    let want = reference().events.len() as u64;
    let (es, o) = es_outage("block", true);
    let (n, hashes) = stored(&es);
    let (extra, missing) = compare(&hashes, &reference_hashes());
    let conflicts = es.state().conflicts;
    let c = |k: &str| out_counter(&o.run, "elasticsearch", k);
    print_common("es-block", &o);
    println!(
        "es-block: {n} docs, {extra} beyond the capture's, {missing} missing; 409 conflicts {conflicts}; events_resent {}, events_retried {}, events_dropped_full {}, events_failed {}",
        c("events_resent"),
        c("events_retried"),
        c("events_dropped_full"),
        c("events_failed"),
    );
    assert_eq!(o.run.code, 0, "{}", o.run.stderr);
    assert_eq!(n, want, "every event indexed once");
    assert_eq!((extra, missing), (0, 0), "the very events of the capture");
    assert_eq!(c("events_resent"), conflicts, "{}", o.run.stderr);
    assert_eq!(c("events_failed"), 0);
    assert!(o.wall >= o.down_at + OUTAGE, "the reader waited");
    assert!(
        o.queued_up <= o.queued_down + 2 * QUEUE_EVENTS,
        "workers kept queueing during the outage: {} then {}",
        o.queued_down,
        o.queued_up
    );
    assert!(o.queued_up < want, "the outage came too late");
    assert_rss_flat("es-block", &o);
}

/// `when_full: drop_newest`: the same outage costs events, each counted: indexed
/// plus dropped is exactly what the capture gives, and nothing is indexed twice.
/// The replay follows the capture's timing (20 s): at top speed the reader,
/// never held back, is through the file in 0.4 s, before an outage could start.
#[test]
#[ignore]
fn elasticsearch_outage_drop_newest() {
    let want = reference().events.len() as u64;
    let (es, o) = es_outage("drop_newest", false);
    let (n, hashes) = stored(&es);
    let (extra, _) = compare(&hashes, &reference_hashes());
    let conflicts = es.state().conflicts;
    let c = |k: &str| out_counter(&o.run, "elasticsearch", k);
    let dropped = c("events_dropped_full");
    assert_eq!(dropped, final_counter(&o.run.stderr, "events_dropped"));
    print_common("es-drop", &o);
    println!(
        "es-drop: {n} docs, {extra} beyond the capture's; {dropped} dropped; docs + dropped = {} of {want}; 409 conflicts {conflicts}; events_resent {}, events_failed {}",
        n + dropped,
        c("events_resent"),
        c("events_failed"),
    );
    // Dropped at a full queue is counted, not a failure to deliver: exit 0
    // (README: exit 2 is for events an output gave up on).
    assert_eq!(o.run.code, 0, "{}", o.run.stderr);
    assert_eq!(extra, 0, "nothing indexed twice");
    assert!(dropped > 0, "the outage cost no event: {}", o.run.stderr);
    assert_eq!(n + dropped, want, "{}", o.run.stderr);
    assert_eq!(c("events_resent"), conflicts);
    assert_eq!(c("events_failed"), 0);
    assert_rss_flat("es-drop", &o);
}

/// A redis-server with `appendonly yes`, `appendfsync always` shut down cleanly
/// mid-replay and started again on the same port after 8 s: every event is in
/// the list, duplicates come only from a batch whose reply was lost, and those
/// are counted (`events_resent`).
#[test]
#[ignore]
fn redis_restart() {
    if !redis_server::available("redis_restart") {
        return;
    }
    let want = reference().events.len();
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let http_port = free_port();
    let mut extra = server.output_args();
    extra.extend(
        [
            "output.redis.reconnect_interval=100ms",
            "output.redis.backoff.max=1s",
            "output.redis.max_retries=-1",
            "output.redis.bulk_max_size=256",
            "pipeline.shutdown_timeout=30s",
        ]
        .into_iter()
        .flat_map(|s| ["-E".to_string(), s.to_string()]),
    );
    let a = args(&capture(), true, http_port, &extra);
    let llen = |s: &RedisServer| -> u64 {
        let Ok(mut c) = wirebeat::output::redis::resp::Conn::open(
            &s.addr(),
            Duration::from_secs(1),
            None,
            0,
            1 << 20,
        ) else {
            return 0;
        };
        match c.call(&[b"LLEN", b"packetbeat"]) {
            Ok(wirebeat::output::redis::resp::Reply::Int(n)) => n as u64,
            _ => 0,
        }
    };
    let server_cell = std::cell::RefCell::new(&mut server);
    let before = std::cell::Cell::new(0u64);
    let o = with_outage(
        &a,
        http_port,
        "redis",
        || llen(&server_cell.borrow()) >= 3000,
        || {
            let mut s = server_cell.borrow_mut();
            before.set(llen(&s));
            s.shutdown();
        },
        || server_cell.borrow_mut().restart(),
    );
    let list = server.list(None, 0, "packetbeat");
    let mut got: HashMap<&[u8], u64> = HashMap::new();
    for e in &list {
        *got.entry(e.as_slice()).or_default() += 1;
    }
    let mut wanted: HashMap<&[u8], u64> = HashMap::new();
    for e in &reference().events {
        *wanted.entry(e.as_bytes()).or_default() += 1;
    }
    // Deduplicated by the event's full text: copies beyond the capture's own.
    let dups: u64 = got
        .iter()
        .map(|(e, n)| n.saturating_sub(*wanted.get(e).unwrap_or(&0)))
        .sum();
    let missing: u64 = wanted
        .iter()
        .map(|(e, n)| n.saturating_sub(*got.get(e).unwrap_or(&0)))
        .sum();
    let c = |k: &str| out_counter(&o.run, "redis", k);
    print_common("redis", &o);
    println!(
        "redis: LLEN {} ({} before the shutdown), {} distinct texts ({} in the capture), {dups} duplicates, {missing} missing; events_resent {}, events_retried {}, events_failed {}",
        list.len(),
        before.get(),
        got.len(),
        wanted.len(),
        c("events_resent"),
        c("events_retried"),
        c("events_failed"),
    );
    assert_eq!(o.run.code, 0, "{}", o.run.stderr);
    assert_eq!(missing, 0, "events lost");
    assert_eq!(list.len() as u64, want as u64 + dups);
    assert!(
        dups <= c("events_resent"),
        "{dups} duplicates, {} counted",
        c("events_resent")
    );
    assert!(c("events_resent") <= 256, "more than the batch in flight");
    assert_eq!(c("events_failed"), 0);
    assert!(o.wall >= o.down_at + OUTAGE, "the reader waited");
    assert_rss_flat("redis", &o);
}
