//! Application protocols. Each protocol is one folder with the same split:
//! `parser.rs` (wire format, incremental), `pairing` through the shared
//! [`pairing::Pairing`] helper, and `fields.rs` (event fields). A protocol plugs in by
//! implementing [`Parser`] and [`ProtocolFactory`] and adding one line to [`REGISTRY`].
//!
//! Streaming contract (after Suricata's "consumed, needed"): the TCP engine owns the
//! buffering. It hands a parser in-order bytes of one direction; the parser returns how
//! many it consumed and how many more it needs before it can make progress. The
//! engine keeps the unconsumed tail (bounded) and calls again once enough has arrived.

pub mod csv;
pub mod http;
pub mod mysql;
pub mod pairing;
pub mod pgsql;
pub mod redis;
#[cfg(test)]
pub mod testing;
pub mod text;
pub mod thrift;

use std::sync::Arc;

use crate::config::Config;
use crate::event::{ConnInfo, Transaction, Transport};
use crate::stats::Counters;
use crate::time::Ts;

/// Direction of a byte stream within a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    ToServer = 0,
    ToClient = 1,
}

impl Dir {
    pub fn idx(self) -> usize {
        self as usize
    }

    pub fn other(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// What a parser call did with the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `consumed` bytes were used. The rest (if any) is kept by the engine, which calls
    /// again once at least `need` more bytes have arrived (0 = on any new data).
    Consumed { consumed: usize, need: usize },
    /// The data cannot be parsed. The engine discards this direction's buffered bytes
    /// and counts a parse error; the parser has already reset that direction and will
    /// look for the next message start.
    Error,
    /// The parser no longer follows this connection (protocol upgrade, TLS, ...).
    /// The engine calls [`Parser::close`] and ignores the rest of the connection.
    Stop,
}

impl Progress {
    pub fn all(data: &[u8]) -> Progress {
        Progress::Consumed {
            consumed: data.len(),
            need: 0,
        }
    }
}

/// Everything a parser call may touch besides its own state.
pub struct Ctx<'a> {
    /// Timestamp of the packet that carried the data (or of the event: gap, expiry).
    pub ts: Ts,
    /// Completed transactions go here.
    pub out: &'a mut Vec<Transaction>,
    pub counters: &'a mut Counters,
}

impl Ctx<'_> {
    pub fn emit(&mut self, tx: Transaction) {
        self.out.push(tx);
    }
}

/// Per-connection protocol state machine for one protocol.
pub trait Parser: Send {
    /// Feeds in-order bytes of direction `dir`.
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress;

    /// `len` bytes of `dir` were lost (a hole in the capture that was never filled).
    /// `len` includes the bytes the engine held unconsumed for `dir` before the hole
    /// (re-presented to the parser but not consumed); they are discarded, so the
    /// parser must forget any partial message state built from them.
    /// The parser either continues (counting the lost bytes as body, with the
    /// packet-loss note) or resets `dir` and resynchronises on the next message.
    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>);

    /// The sender of `dir` closed its side (FIN reached in sequence).
    fn fin(&mut self, _dir: Dir, _ctx: &mut Ctx<'_>) {}

    /// Periodic call with packet time, for transaction timeouts.
    fn expire(&mut self, _now: Ts, _ctx: &mut Ctx<'_>) {}

    /// The connection ended (RST, FIN both ways, idle expiry, end of input): publish
    /// every message in flight.
    fn close(&mut self, ctx: &mut Ctx<'_>);
}

impl<P: Parser + ?Sized> Parser for Box<P> {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        (**self).parse(dir, data, ctx)
    }
    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        (**self).gap(dir, len, ctx)
    }
    fn fin(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        (**self).fin(dir, ctx)
    }
    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        (**self).expire(now, ctx)
    }
    fn close(&mut self, ctx: &mut Ctx<'_>) {
        (**self).close(ctx)
    }
}

/// Builds parsers for one configured protocol.
pub trait ProtocolFactory: Send + Sync {
    fn name(&self) -> &'static str;
    fn transport(&self) -> Transport {
        Transport::Tcp
    }
    fn ports(&self) -> &[u16];
    /// Idle time after which a connection of this protocol is expired.
    fn connection_timeout(&self) -> std::time::Duration;
    /// Largest unconsumed tail the engine keeps for one direction before it treats the
    /// stream as unparseable.
    fn max_buffer(&self) -> usize {
        64 * 1024
    }
    fn new_parser(&self, conn: &ConnInfo) -> Box<dyn Parser>;
}

/// Constructor of a protocol's factory from the configuration; `None` when the
/// protocol is disabled.
pub type FactoryCtor = fn(&Config) -> Option<Arc<dyn ProtocolFactory>>;

/// Every protocol wirebeat knows. Adding a protocol is adding a line here.
pub const REGISTRY: &[(&str, FactoryCtor)] = &[
    // One protocol per line.
    ("http", http::factory),
    ("mysql", mysql::factory),
    ("pgsql", pgsql::factory),
    ("redis", redis::factory),
    ("thrift", thrift::factory),
];

/// Factories of every enabled protocol.
pub fn enabled(cfg: &Config) -> Vec<Arc<dyn ProtocolFactory>> {
    REGISTRY.iter().filter_map(|(_, ctor)| ctor(cfg)).collect()
}
