//! Test support shared by every protocol: a harness that drives one parser through
//! the engine's own per-direction buffering ([`AppBuffer`]), so parser tests see
//! exactly what the TCP engine would hand them; the recorded fixtures and the TCP
//! conversations inside them; a deterministic random generator.
//!
//! Built for the crate's own unit tests and, with the `test-support` feature (which
//! the benches and integration tests enable through the crate's dev-dependency on
//! itself), for `benches/` and `tests/`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::{AppBuffer, Chunk, Ctx, Dir, Parser, Progress, Protocol, ProtocolFactory};
use crate::capture::file::FileSource;
use crate::config::Config;
use crate::decode::{Decoder, DefragLimits, L4};
use crate::event::{ConnInfo, Transaction, Transport};
use crate::stats::Counters;
use crate::time::Ts;

/// A recorded capture under `tests/pcaps/` (`"http/pipelined.pcap"`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pcaps")
        .join(name)
}

/// The events a fixture set must produce: `tests/pcaps/<set>/expected.json`, derived
/// from the captures independently of wirebeat (scripts/fixtures/*_summary.py), keyed
/// by capture name.
pub fn expected(set: &str) -> serde_json::Map<String, serde_json::Value> {
    let path = fixture(&format!("{set}/expected.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => panic!("{}: not a JSON object", path.display()),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Payload segments of one TCP connection, in capture order.
pub type Conversation = Vec<(Dir, Vec<u8>)>;

/// The TCP payload segments of every connection of a capture whose server listens on
/// `server_port`, one [`Conversation`] per client port, in order of appearance.
pub fn conversations(path: &Path, server_port: u16) -> Vec<Conversation> {
    let mut src = FileSource::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = Decoder::new(DefragLimits {
        max_datagrams: 16,
        max_bytes: 1 << 20,
        timeout: std::time::Duration::from_secs(30),
    });
    let mut counters = Counters::default();
    let mut conns: Vec<(u16, Conversation)> = Vec::new();
    while let Some(p) = src
        .next_packet()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    {
        let Some(ip) = dec.decode(p.ts, p.linktype, p.data, p.orig_len, &mut counters) else {
            continue;
        };
        let L4::Tcp(t) = &ip.l4 else { continue };
        if t.payload.is_empty() {
            continue;
        }
        let (dir, client) = if t.dst_port == server_port {
            (Dir::ToServer, t.src_port)
        } else {
            (Dir::ToClient, t.dst_port)
        };
        let seg = (dir, t.payload.to_vec());
        match conns.iter_mut().find(|c| c.0 == client) {
            Some(c) => c.1.push(seg),
            None => conns.push((client, vec![seg])),
        }
    }
    conns.into_iter().map(|c| c.1).collect()
}

/// Deterministic xorshift64 generator for randomised tests (never seed it with 0).
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// 10.0.0.1:40000 → 10.0.0.2:`port` over TCP.
pub fn test_conn(port: u16) -> ConnInfo {
    ConnInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        port,
        Transport::Tcp,
    )
}

pub struct Harness<P: Parser> {
    pub p: P,
    bufs: [AppBuffer; 2],
    pub out: Vec<Transaction>,
    pub counters: Counters,
    /// The parser returned `Progress::Stop`; nothing more is delivered.
    pub stopped: bool,
    /// Parse errors plus buffer overflows, as the engine counts them.
    pub errors: usize,
    /// The most bytes the engine ever held for one direction.
    pub max_held: usize,
    /// The factory's `max_buffer`: the most the engine holds per direction.
    pub max_buffer: usize,
    conn: ConnInfo,
}

impl<P: Parser> Harness<P> {
    pub fn new(p: P, max_buffer: usize, conn: ConnInfo) -> Harness<P> {
        Harness {
            p,
            bufs: Default::default(),
            out: Vec::new(),
            counters: Counters::default(),
            stopped: false,
            errors: 0,
            max_held: 0,
            max_buffer,
            conn,
        }
    }

    /// A parser of one protocol for `conn`, behind the buffering the engine gives that
    /// protocol: `protocol` (the protocol module's `protocol`) builds the factory from
    /// the default configuration as changed by `configure`, and `parser` makes the
    /// parser from it (`|f, conn| f.new_parser(conn)` for the engine's boxed parser).
    pub fn for_protocol<S>(
        protocol: fn(&Config) -> Option<Protocol<S>>,
        configure: impl FnOnce(&mut Config),
        conn: ConnInfo,
        parser: impl FnOnce(&Protocol<S>, &ConnInfo) -> P,
    ) -> Harness<P> {
        let mut cfg = Config::default();
        configure(&mut cfg);
        let f = protocol(&cfg).expect("enabled");
        Harness::new(parser(&f, &conn), f.max_buffer, conn)
    }

    /// Starts over with a new parser (a new connection), keeping the allocations of
    /// the buffers and of `out`, which is emptied.
    pub fn restart(&mut self, p: P) {
        self.p = p;
        self.bufs = Default::default();
        self.out.clear();
        self.stopped = false;
    }

    /// Calls the parser directly with a context at packet time `ts` (ns).
    pub fn call<R>(&mut self, ts: u64, f: impl FnOnce(&mut P, &mut Ctx<'_>) -> R) -> R {
        let mut ctx = Ctx::new(Ts(ts), &mut self.out, &mut self.counters);
        f(&mut self.p, &mut ctx)
    }

    fn deliver(&mut self, dir: Dir, chunk: Chunk<'_>, ts: u64) -> Option<Progress> {
        if self.stopped {
            return Some(Progress::Stop);
        }
        let before = self.counters.parse_errors + self.counters.tcp_buffer_overflows;
        let mut ctx = Ctx::new(Ts(ts), &mut self.out, &mut self.counters);
        let r = self.bufs[dir.idx()].deliver(
            &mut self.p,
            dir,
            chunk,
            self.max_buffer,
            &self.conn,
            &mut ctx,
        );
        self.errors +=
            (self.counters.parse_errors + self.counters.tcp_buffer_overflows - before) as usize;
        if r == Some(Progress::Stop) {
            self.stopped = true;
        }
        self.max_held = self.max_held.max(self.bufs[dir.idx()].held());
        r
    }

    /// Delivers in-order bytes. Returns the parser's answer, or "nothing consumed"
    /// when the bytes were only buffered because the parser asked for more.
    pub fn feed(&mut self, dir: Dir, data: &[u8], ts: u64) -> Progress {
        self.deliver(dir, Chunk::Data(data), ts)
            .unwrap_or(Progress::consumed(0))
    }

    /// Delivers `data` one byte per call.
    pub fn bytewise(&mut self, dir: Dir, data: &[u8], ts: u64) {
        for b in data {
            self.feed(dir, std::slice::from_ref(b), ts);
        }
    }

    /// Delivers `data` in pieces of `n` bytes.
    pub fn chunked(&mut self, dir: Dir, data: &[u8], n: usize, ts: u64) {
        for c in data.chunks(n.max(1)) {
            self.feed(dir, c, ts);
        }
    }

    /// `len` bytes of `dir` were lost.
    pub fn gap(&mut self, dir: Dir, len: u64, ts: u64) {
        self.deliver(dir, Chunk::Gap(len), ts);
    }

    /// The sender of `dir` closed its side.
    pub fn fin(&mut self, dir: Dir, ts: u64) {
        self.deliver(dir, Chunk::Fin, ts);
    }

    /// Periodic expiry; like the engine, never after the parser stopped.
    pub fn expire(&mut self, ts: u64) {
        if !self.stopped {
            self.call(ts, |p, ctx| p.expire(Ts(ts), ctx));
        }
    }

    /// Connection end.
    pub fn close(&mut self) {
        self.close_at(0);
    }

    /// Connection end at packet time `ts`.
    pub fn close_at(&mut self, ts: u64) {
        if !self.stopped {
            self.call(ts, |p, ctx| p.close(ctx));
        }
    }

    /// Delivers every segment of `conv` in pieces of at most `mss` bytes at packet
    /// time 1, then ends the connection at packet time `close_ts`. Returns how many
    /// transactions `out` then holds.
    pub fn replay(&mut self, conv: &[(Dir, Vec<u8>)], mss: usize, close_ts: u64) -> usize {
        for (dir, seg) in conv {
            self.chunked(*dir, seg, mss, 1);
        }
        self.close_at(close_ts);
        self.out.len()
    }

    /// Bytes held unconsumed for `dir`.
    pub fn held(&self, dir: Dir) -> usize {
        self.bufs[dir.idx()].held()
    }
}

impl Harness<Box<dyn Parser>> {
    /// A parser of `factory` for `conn`, behind the buffering the engine gives that
    /// protocol (the factory's `max_buffer`).
    pub fn from_factory(factory: &dyn ProtocolFactory, conn: ConnInfo) -> Self {
        Harness::new(factory.new_parser(&conn), factory.max_buffer(), conn)
    }
}

/// Declares `struct $name(Harness<$parser>)` dereferencing to the harness, so a
/// protocol's tests can add their own helpers on top of the shared ones.
#[cfg(test)]
macro_rules! harness_newtype {
    ($(#[$m:meta])* $name:ident, $parser:ty) => {
        $(#[$m])*
        struct $name($crate::protos::testing::Harness<$parser>);

        impl std::ops::Deref for $name {
            type Target = $crate::protos::testing::Harness<$parser>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
#[cfg(test)]
pub(crate) use harness_newtype;
