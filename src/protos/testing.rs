//! Test support shared by every protocol: a harness that drives one parser through
//! the engine's own per-direction buffering ([`AppBuffer`]), so parser tests see
//! exactly what the TCP engine would hand them.

use std::net::{IpAddr, Ipv4Addr};

use super::{Ctx, Dir, Parser, Progress};
use crate::event::{ConnInfo, Transaction, Transport};
use crate::flow::AppBuffer;
use crate::flow::reassembly::Chunk;
use crate::stats::Counters;
use crate::time::Ts;

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
            .unwrap_or(Progress::Consumed {
                consumed: 0,
                need: 0,
            })
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

    /// Bytes held unconsumed for `dir`.
    pub fn held(&self, dir: Dir) -> usize {
        self.bufs[dir.idx()].held()
    }
}

/// Declares `struct $name(Harness<$parser>)` dereferencing to the harness, so a
/// protocol's tests can add their own helpers on top of the shared ones.
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
pub(crate) use harness_newtype;
