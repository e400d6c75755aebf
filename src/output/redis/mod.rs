//! Redis output: events into a Redis list (`RPUSH`, read by Logstash's `redis` input
//! with `data_type => "list"` and `codec => json`) or a channel (`PUBLISH`, for
//! `data_type => "channel"`). Each list element or message is exactly one JSON event,
//! without the trailing newline.
//!
//! Delivery: a batch of NDJSON lines becomes one `RPUSH key e1..eN` per at most
//! `bulk_max_size` events / `bulk_max_bytes` bytes, or pipelined `PUBLISH key e` per
//! event. When the connection fails the writer thread blocks here and retries the
//! same events on a new connection, waiting `reconnect_interval`, then twice as long
//! each time up to `backoff.max`; while it blocks, the queue in front of it fills
//! and pushes back on the workers. After `max_retries` failed attempts (negative:
//! never) the events are given up: counted in `events_failed` and logged.
//!
//! At-least-once: an `RPUSH` is atomic in Redis, so a batch is either wholly in the
//! list or not at all. When a command was sent in full but its reply never came
//! (connection reset, timeout), the batch may or may not have been applied; wirebeat
//! sends it again, so the events of that one batch may appear twice, and a warning
//! says so. Nothing is ever partially written, and a command whose sending failed
//! part-way is discarded by the server. For channels, the replies received tell
//! which `PUBLISH`es were applied; only the unacknowledged ones are sent again.

pub mod resp;
pub mod topology;

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::config;
use crate::output::retry::{self, Backoff, Retry};
use crate::output::{Chunk, Delivery, DeliveryProgress, Output};

use resp::{Conn, Reply, ServerError, encode_bulk, encode_header};

pub use topology::RedisTopologyStore;

/// Default Redis port when a host names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Parses every `hosts` entry into a `host:port` address.
pub fn addresses(cfg: &config::RedisOutput) -> Result<Vec<String>, String> {
    if cfg.hosts.is_empty() {
        return Err("output.redis.hosts is empty".into());
    }
    cfg.hosts
        .iter()
        .map(|h| resp::parse_host(h, DEFAULT_PORT).map_err(|e| format!("output.redis.hosts: {e}")))
        .collect()
}

/// Connection settings shared by the output and the topology store.
#[derive(Clone, Debug)]
pub struct Endpoint {
    addrs: Vec<String>,
    next: usize,
    password: Option<String>,
    timeout: Duration,
    max_reply: usize,
}

impl Endpoint {
    pub fn new(cfg: &config::RedisOutput) -> Result<Endpoint, String> {
        Ok(Endpoint {
            addrs: addresses(cfg)?,
            next: 0,
            password: cfg.password.clone(),
            timeout: cfg.timeout,
            max_reply: cfg.max_reply_bytes,
        })
    }

    /// Connects to the next host in turn (failover across `hosts`).
    pub fn connect(&mut self, db: u32) -> io::Result<Conn> {
        let i = self.next % self.addrs.len().max(1);
        let addr = self.addrs.get(i).cloned().unwrap_or_default();
        let r = Conn::open(
            &addr,
            self.timeout,
            self.password.as_deref(),
            db,
            self.max_reply,
        );
        if r.is_err() {
            self.next = self.next.wrapping_add(1);
        }
        r.map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))
    }
}

/// Why sending a chunk failed.
enum SendError {
    /// The server refused the command; the connection is still usable.
    Server(ServerError),
    /// The connection broke; `ambiguous` when the command was sent in full.
    Io { err: io::Error, ambiguous: bool },
}

/// The Redis output.
pub struct RedisOutput {
    endpoint: Endpoint,
    db: u32,
    key: Vec<u8>,
    channel: bool,
    bulk_max_size: usize,
    bulk_max_bytes: usize,
    /// Waits start at `reconnect_interval` and double up to `backoff.max`,
    /// without jitter; `max_retries` negative retries until written, or until a
    /// stop signal.
    retry: Retry,
    /// Failures since the last batch that went through: the next wait.
    failures: u64,
    /// When the next connection attempt may happen.
    next_attempt: Instant,
    conn: Option<Conn>,
    /// Set while the server is unreachable (for the recovery log line).
    down_since: Option<Instant>,
    /// Encoded commands of the chunk being sent.
    buf: Vec<u8>,
}

impl RedisOutput {
    pub fn new(cfg: &config::RedisOutput) -> Result<RedisOutput, String> {
        if cfg.key.is_empty() {
            return Err("output.redis.key is empty".into());
        }
        let channel = cfg.datatype == config::RedisDatatype::Channel;
        let mut out = RedisOutput {
            endpoint: Endpoint::new(cfg)?,
            db: cfg.db,
            key: cfg.key.as_bytes().to_vec(),
            channel,
            bulk_max_size: cfg.bulk_max_size.max(1),
            bulk_max_bytes: cfg.bulk_max_bytes.max(1),
            retry: Retry::new(
                Backoff::new(
                    cfg.reconnect_interval,
                    cfg.backoff_max.max(cfg.reconnect_interval),
                ),
                cfg.max_retries,
            ),
            failures: 0,
            next_attempt: Instant::now(),
            conn: None,
            down_since: None,
            buf: Vec::new(),
        };
        // Connect early so that a wrong address shows at startup; a server that is
        // down is not fatal, the output keeps trying.
        out.try_connect();
        Ok(out)
    }

    /// One connection attempt; on failure the next one waits for the backoff.
    fn try_connect(&mut self) -> bool {
        match self.endpoint.connect(self.db) {
            Ok(c) => {
                if let Some(since) = self.down_since.take() {
                    tracing::info!(target: "output", "redis: connected to {} after {:.1}s", c.peer, since.elapsed().as_secs_f64());
                } else {
                    tracing::debug!(target: "output", "redis: connected to {}", c.peer);
                }
                self.conn = Some(c);
                true
            }
            Err(e) => {
                self.mark_down(&format!("cannot connect: {e}"));
                false
            }
        }
    }

    /// Records a failure: the next attempt waits the backoff, which grows with
    /// each failure until a batch goes through.
    fn mark_down(&mut self, why: &str) {
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
        }
        self.failures = self.failures.saturating_add(1);
        let wait = self.retry.delay(self.failures);
        tracing::warn!(target: "output", "redis: {why}; next attempt in {wait:?}");
        self.next_attempt = retry::deadline(wait);
    }

    /// Waits until `next_attempt` (a stop signal ends an endless retry's wait).
    fn wait_for_next_attempt(&self) {
        self.retry.sleep_until(self.next_attempt);
    }

    /// Delivers `lines` (one event each), retrying as configured; counts what
    /// happened in `d`, which each failed attempt reports to the output's stats
    /// as it happens ([`Retry::report`]), leaving in `d` only the rest.
    fn deliver(&mut self, lines: &[&[u8]], d: &mut Delivery) {
        let mut done = 0usize;
        let mut attempts = 0u64;
        // Each batch gets its own retries, from the first wait on: one that arrives
        // while the server is down does not inherit the previous batch's backoff
        // (which made every batch cost all its retries at the longest wait).
        if self.conn.is_none() && self.failures > 0 {
            self.failures = 0;
            self.next_attempt = Instant::now();
        }
        while done < lines.len() {
            if self.conn.is_none() {
                self.wait_for_next_attempt();
                if !self.try_connect() {
                    attempts += 1;
                    if self.retry.check(attempts).is_err() {
                        break;
                    }
                    d.retried += (lines.len() - done) as u64;
                    self.retry.report(d);
                    continue;
                }
            }
            let (acked, result) = self.send_chunk(&lines[done..], d);
            done += acked;
            d.requests += 1;
            d.published += acked as u64;
            let Err(err) = result else {
                self.failures = 0;
                return;
            };
            d.request_errors += 1;
            let left = lines.len() - done;
            let mut wait = false;
            let mut maybe_twice = false;
            match err {
                SendError::Server(e) if !e.is_transient() => {
                    tracing::error!(target: "output", "redis: {} events refused ({e}); they are dropped", left);
                    break;
                }
                SendError::Server(e) => {
                    self.mark_down(&e.to_string());
                    wait = true;
                }
                SendError::Io { err, ambiguous } => {
                    self.conn = None;
                    if ambiguous && !self.channel {
                        maybe_twice = true;
                        tracing::warn!(target: "output", "redis: connection lost after sending {left} events without a reply; they are sent again and may appear twice");
                    }
                    self.mark_down(&format!("connection lost: {err}"));
                }
            }
            attempts += 1;
            if self.retry.check(attempts).is_err() {
                break;
            }
            d.retried += left as u64;
            if maybe_twice {
                d.resent += left as u64;
            }
            // Counted as it happens, so that the stats show the outage while
            // the events wait for their next attempt.
            self.retry.report(d);
            if wait {
                // The connection is still open: the loop does not wait for it.
                self.wait_for_next_attempt();
            }
        }
        let left = lines.len() - done;
        if left > 0 {
            d.failed += left as u64;
            tracing::error!(target: "output", "redis: gave up on {left} events after {attempts} failed attempts (output.redis.max_retries = {})", self.retry.max_retries);
        }
    }

    /// Sends `lines` on the open connection; returns how many were acknowledged
    /// (the bytes of a command that went through are counted in `d`).
    fn send_chunk(&mut self, lines: &[&[u8]], d: &mut Delivery) -> (usize, Result<(), SendError>) {
        self.buf.clear();
        if self.channel {
            for l in lines {
                encode_header(&mut self.buf, 3);
                encode_bulk(&mut self.buf, b"PUBLISH");
                encode_bulk(&mut self.buf, &self.key);
                encode_bulk(&mut self.buf, l);
            }
        } else {
            encode_header(&mut self.buf, lines.len() + 2);
            encode_bulk(&mut self.buf, b"RPUSH");
            encode_bulk(&mut self.buf, &self.key);
            for l in lines {
                encode_bulk(&mut self.buf, l);
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            let err = io::Error::new(io::ErrorKind::NotConnected, "not connected");
            return (
                0,
                Err(SendError::Io {
                    err,
                    ambiguous: false,
                }),
            );
        };
        if let Err(err) = conn.send(&self.buf) {
            return (
                0,
                Err(SendError::Io {
                    err,
                    ambiguous: false,
                }),
            );
        }
        let replies = if self.channel { lines.len() } else { 1 };
        for i in 0..replies {
            let acked = if self.channel { i } else { 0 };
            match conn.read_reply() {
                Ok(Reply::Int(_)) => {}
                Ok(Reply::Error(e)) => {
                    if i + 1 < replies {
                        // The replies of the PUBLISHes pipelined after this one are
                        // still on the way: read later, they would be taken for the
                        // replies of other commands. Start over on a new connection.
                        self.conn = None;
                    }
                    return (acked, Err(SendError::Server(ServerError(e))));
                }
                Ok(other) => {
                    let err = io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected reply {other:?}"),
                    );
                    return (
                        acked,
                        Err(SendError::Io {
                            err,
                            ambiguous: true,
                        }),
                    );
                }
                Err(err) => {
                    return (
                        acked,
                        Err(SendError::Io {
                            err,
                            ambiguous: true,
                        }),
                    );
                }
            }
        }
        d.bytes += self.buf.len() as u64;
        if self.buf.capacity() > 2 * self.bulk_max_bytes.max(1 << 20) {
            self.buf = Vec::new();
        }
        (lines.len(), Ok(()))
    }
}

impl Output for RedisOutput {
    fn name(&self) -> &'static str {
        "redis"
    }

    /// One `RPUSH` (or one pipeline of `PUBLISH`es) per at most `bulk_max_size`
    /// events and `bulk_max_bytes` bytes of the chunk.
    fn write_batch(&mut self, chunk: &Chunk) -> io::Result<Delivery> {
        let mut d = Delivery::default();
        let mut part: Vec<&[u8]> = Vec::new();
        let mut bytes = 0usize;
        for (line, _) in chunk.events() {
            if !part.is_empty()
                && (part.len() >= self.bulk_max_size || bytes + line.len() > self.bulk_max_bytes)
            {
                self.deliver(&part, &mut d);
                part.clear();
                bytes = 0;
            }
            bytes += line.len();
            part.push(line);
        }
        if !part.is_empty() {
            self.deliver(&part, &mut d);
        }
        Ok(d)
    }

    fn flush(&mut self) -> io::Result<Delivery> {
        Ok(Delivery::default())
    }

    fn set_stop(&mut self, stop: Arc<AtomicBool>) {
        self.retry.set_stop(stop);
    }

    fn set_progress(&mut self, progress: DeliveryProgress) {
        self.retry.set_progress(progress);
    }

    fn tick(&mut self) -> io::Result<Delivery> {
        if self.conn.is_none() && Instant::now() >= self.next_attempt {
            self.try_connect();
        }
        Ok(Delivery::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MaxRetries;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::Ordering;

    /// A scripted server: answers each command (read as RESP) with `reply(cmd)`.
    fn fake_server(
        replies: impl Fn(&[Vec<u8>], usize) -> Option<Vec<u8>> + Send + 'static,
    ) -> (String, std::thread::JoinHandle<Vec<Vec<Vec<u8>>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut n = 0;
            'conns: for s in l.incoming() {
                let Ok(s) = s else { break };
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        continue 'conns;
                    }
                    let argc: usize = line.trim()[1..].parse().unwrap();
                    let mut args = Vec::new();
                    for _ in 0..argc {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        let len: usize = line.trim()[1..].parse().unwrap();
                        let mut v = vec![0; len + 2];
                        std::io::Read::read_exact(&mut r, &mut v).unwrap();
                        v.truncate(len);
                        args.push(v);
                    }
                    let quit = args[0] == b"QUIT";
                    let reply = replies(&args, n);
                    n += 1;
                    seen.push(args);
                    if quit {
                        break 'conns;
                    }
                    match reply {
                        Some(b) => {
                            if w.write_all(&b).is_err() {
                                continue 'conns; // the client hung up
                            }
                        }
                        None => continue 'conns, // drop the connection
                    }
                }
            }
            seen
        });
        (addr, h)
    }

    fn cfg(addr: &str) -> config::RedisOutput {
        config::RedisOutput {
            hosts: vec![addr.to_string()],
            reconnect_interval: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            timeout: Duration::from_secs(2),
            ..Default::default()
        }
    }

    fn write(o: &mut RedisOutput, ndjson: &[u8]) -> Delivery {
        o.write_batch(&Chunk::from_ndjson(ndjson.to_vec(), 0))
            .unwrap()
    }

    fn quit(addr: &str) {
        let mut c = Conn::open(addr, Duration::from_secs(2), None, 0, 1024).unwrap();
        let _ = c.call(&[b"QUIT"]);
    }

    #[test]
    fn one_rpush_per_bounded_chunk() {
        let (addr, h) = fake_server(|args, _| {
            Some(if args[0] == b"RPUSH" {
                format!(":{}\r\n", args.len() - 2).into_bytes()
            } else {
                b"+OK\r\n".to_vec()
            })
        });
        let mut total = Delivery::default();
        let mut c = cfg(&addr);
        c.bulk_max_size = 2;
        c.key = "k".into();
        let mut o = RedisOutput::new(&c).unwrap();
        total += write(&mut o, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n\n");
        drop(o);
        quit(&addr);
        let seen = h.join().unwrap();
        let pushes: Vec<_> = seen.iter().filter(|a| a[0] == b"RPUSH").collect();
        assert_eq!(pushes.len(), 2);
        assert_eq!(
            pushes[0][1..],
            [b"k".to_vec(), b"{\"a\":1}".to_vec(), b"{\"a\":2}".to_vec()]
        );
        assert_eq!(pushes[1][1..], [b"k".to_vec(), b"{\"a\":3}".to_vec()]);
        assert_eq!(total.published, 3);
        assert_eq!(total.requests, 2);
    }

    #[test]
    fn lost_reply_is_retried_on_a_new_connection() {
        // The first RPUSH is read but the connection drops without a reply.
        let (addr, h) = fake_server(|args, n| {
            if args[0] == b"RPUSH" && n == 1 {
                None
            } else if args[0] == b"RPUSH" {
                Some(b":1\r\n".to_vec())
            } else {
                Some(b"+OK\r\n".to_vec())
            }
        });
        let mut total = Delivery::default();
        let mut o = RedisOutput::new(&cfg(&addr)).unwrap();
        total += write(&mut o, b"{}\n");
        drop(o);
        quit(&addr);
        let seen = h.join().unwrap();
        assert_eq!(seen.iter().filter(|a| a[0] == b"RPUSH").count(), 2);
        assert_eq!(total.published, 1);
        assert_eq!(total.retried, 1);
        assert_eq!(
            total.resent, 1,
            "the lost reply may mean the event is there twice"
        );
        assert_eq!(total.failed, 0);
    }

    #[test]
    fn permanent_error_and_exhausted_retries_count_failed() {
        let (addr, h) = fake_server(|args, _| {
            Some(if args[0] == b"RPUSH" {
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n".to_vec()
            } else {
                b"+OK\r\n".to_vec()
            })
        });
        let mut total = Delivery::default();
        let mut o = RedisOutput::new(&cfg(&addr)).unwrap();
        total += write(&mut o, b"{}\n{}\n");
        drop(o);
        quit(&addr);
        h.join().unwrap();
        assert_eq!(total.failed, 2);
        assert_eq!(total.retried, 0);

        // Nobody listens: 1 + max_retries attempts, then failed.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut total = Delivery::default();
        let mut c = cfg(&format!("127.0.0.1:{port}"));
        c.max_retries = MaxRetries::Bounded(2);
        let mut o = RedisOutput::new(&c).unwrap();
        total += write(&mut o, b"{}\n{}\n{}\n");
        assert_eq!(total.failed, 3);
        assert_eq!(total.retried, 6);
        assert_eq!(total.published, 0);
    }

    #[test]
    fn channel_resends_only_unacknowledged() {
        // The second PUBLISH of the first connection gets no reply.
        let (addr, h) = fake_server(|args, n| {
            if args[0] == b"PUBLISH" && n == 2 {
                None
            } else if args[0] == b"PUBLISH" {
                Some(b":0\r\n".to_vec())
            } else {
                Some(b"+OK\r\n".to_vec())
            }
        });
        let mut total = Delivery::default();
        let mut c = cfg(&addr);
        c.datatype = config::RedisDatatype::Channel;
        let mut o = RedisOutput::new(&c).unwrap();
        total += write(&mut o, b"1\n2\n3\n");
        drop(o);
        quit(&addr);
        let seen = h.join().unwrap();
        let pubs: Vec<&[u8]> = seen
            .iter()
            .filter(|a| a[0] == b"PUBLISH")
            .map(|a| a[2].as_slice())
            .collect();
        // 1, 2 (no reply; the server hangs up without reading 3), then 2 and 3 again.
        assert_eq!(pubs, [b"1", b"2", b"2", b"3"].map(|b| b.as_slice()));
        assert_eq!(total.published, 3);
    }

    #[test]
    fn channel_error_mid_pipeline_keeps_replies_in_step() {
        // Refuses every message starting with "bad"; the pipelined replies after a
        // refusal must not be taken for the replies of the next batch.
        let (addr, h) = fake_server(|args, _| {
            Some(if args[0] == b"PUBLISH" && args[2].starts_with(b"bad") {
                b"-ERR refused\r\n".to_vec()
            } else if args[0] == b"PUBLISH" {
                b":1\r\n".to_vec()
            } else {
                b"+OK\r\n".to_vec()
            })
        });
        let mut total = Delivery::default();
        let mut c = cfg(&addr);
        c.datatype = config::RedisDatatype::Channel;
        let mut o = RedisOutput::new(&c).unwrap();
        total += write(&mut o, b"1\nbad1\nbad2\n");
        assert_eq!(total.published, 1);
        assert_eq!(total.failed, 2);
        total += write(&mut o, b"2\n");
        assert_eq!(total.published, 2);
        assert_eq!(total.failed, 2);
        drop(o);
        quit(&addr);
        h.join().unwrap();
    }

    #[test]
    fn every_batch_starts_its_backoff_afresh() {
        // Nothing listens on port 1. Waits 100, 200 ms, then the batch is given up;
        // the next batch must not start from the 400 ms, 800 ms... waits.
        let mut c = cfg("127.0.0.1:1");
        c.reconnect_interval = Duration::from_millis(100);
        c.backoff_max = Duration::from_secs(60);
        c.max_retries = MaxRetries::Bounded(2);
        let mut o = RedisOutput::new(&c).unwrap();
        for batch in 0..3 {
            let t = Instant::now();
            let d = write(&mut o, b"1\n2\n");
            assert_eq!(d.failed, 2);
            let took = t.elapsed();
            assert!(
                took < Duration::from_millis(1500),
                "batch {batch}: {took:?}"
            );
        }
    }

    #[test]
    fn huge_backoff_settings_do_not_overflow() {
        let mut c = cfg("127.0.0.1:1");
        c.reconnect_interval = Duration::from_secs(u64::MAX / 2);
        c.backoff_max = Duration::from_secs(u64::MAX);
        c.max_retries = MaxRetries::Bounded(0);
        let mut o = RedisOutput::new(&c).unwrap();
        for _ in 0..4 {
            o.mark_down("test");
        }
        assert!(o.retry.delay(o.failures) >= c.reconnect_interval);
        assert!(o.next_attempt > Instant::now());
        assert_eq!(o.tick().unwrap(), Delivery::default());
    }

    #[test]
    fn a_stop_signal_ends_endless_retries() {
        // Nothing listens on port 1: every connection attempt fails.
        let mut c = cfg("127.0.0.1:1");
        c.max_retries = MaxRetries::Forever;
        c.reconnect_interval = Duration::from_secs(3600);
        c.backoff_max = Duration::from_secs(3600);
        let mut total = Delivery::default();
        let mut o = RedisOutput::new(&c).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        o.set_stop(Arc::clone(&stop));
        let setter = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stop.store(true, Ordering::Relaxed);
            })
        };
        let t = Instant::now();
        total += write(&mut o, b"{\"a\":1}\n{\"a\":2}\n");
        setter.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(total.failed, 2);
        assert_eq!(total.published, 0);
    }

    #[test]
    fn settings_from_every_layout() {
        let load = |y: &str| {
            let l = config::Config::from_yaml_str(y, "t.yml", &[]).unwrap();
            assert!(l.warnings.is_empty(), "{:?}", l.warnings);
            l.config.output.redis.unwrap()
        };
        // Packetbeat 1.x.
        let r = load(
            "output:\n  redis: {host: 10.0.0.2, port: 6380, index: logs, db: 2, reconnect_interval: 2}\n",
        );
        assert_eq!(addresses(&r).unwrap(), ["10.0.0.2:6380"]);
        assert_eq!((r.key.as_str(), r.db, r.db_topology), ("logs", 2, 1));
        assert_eq!(r.reconnect_interval, Duration::from_secs(2));
        // 5.x names.
        let r = load(
            "output.redis:\n  hosts: [\"a\", \"b:7000\"]\n  key: k\n  datatype: channel\n  \
             backoff: {init: 100ms, max: 5s}\n  max_retries: -1\n  bulk_max_size: 10\n",
        );
        assert_eq!(addresses(&r).unwrap(), ["a:6379", "b:7000"]);
        assert_eq!(r.datatype, config::RedisDatatype::Channel);
        assert_eq!(r.reconnect_interval, Duration::from_millis(100));
        assert_eq!(r.backoff_max, Duration::from_secs(5));
        assert_eq!((r.max_retries, r.bulk_max_size), (MaxRetries::Forever, 10));
        let e = config::Config::from_yaml_str("output.redis.datatype: set\n", "t.yml", &[]);
        assert!(e.is_err());
        let c =
            config::Config::from_yaml_str("output.redis.hosts: [\"rediss://x\"]\n", "t.yml", &[])
                .unwrap()
                .config;
        assert!(crate::output::check_config(&c).is_err());
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = cfg("127.0.0.1:1");
        c.key = String::new();
        assert!(RedisOutput::new(&c).is_err());
        let mut c = cfg("rediss://x");
        c.max_retries = MaxRetries::Bounded(0);
        assert!(RedisOutput::new(&c).is_err());
    }
}
