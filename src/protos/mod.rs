//! Application protocols. Each protocol is one folder with the same files:
//! `parser.rs` (wire format, incremental), `transaction.rs` (the `Request` and
//! `Response` waiting in the shared [`pairing::Pairing`] helper, and the
//! [`pairing::Exchange`] that fills in the protocol's part of a transaction, after
//! [`pairing::transaction`] has set what all share: times, bytes, loss notes), `state.rs` (the
//! per-connection state machine: the [`Parser`] impl), `fields.rs` (event fields),
//! and `mod.rs` as glue only (module declarations, docs, re-exports and the
//! `protocol(cfg)` function that builds its [`Protocol`] factory from the settings
//! every protocol shares, ports, transaction timeout, pairing queue bounds, plus its
//! own). A protocol plugs in with that folder and one line in [`REGISTRY`].
//!
//! Streaming contract (after Suricata's "consumed, needed"): the TCP engine owns the
//! buffering. It hands a parser in-order bytes of one direction; the parser returns how
//! many it consumed and how many more it needs before it can make progress. The
//! engine keeps the unconsumed tail (bounded) and calls again once enough has arrived.

pub mod csv;
pub mod dns;
pub mod framing;
pub mod http;
pub mod icmp;
pub mod mysql;
pub mod pairing;
pub mod pgsql;
pub mod redis;
pub mod stream;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub mod thrift;

use std::sync::Arc;

use crate::config::{Config, ProtoCommon};
use crate::event::{ConnInfo, Transaction, Transport};
use crate::stats::Counters;
use crate::time::Ts;
use pairing::Limits;
pub use stream::{AppBuffer, Chunk};

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
        Progress::consumed(data.len())
    }

    /// `n` bytes were used; call again on any new data.
    pub fn consumed(n: usize) -> Progress {
        Progress::Consumed {
            consumed: n,
            need: 0,
        }
    }
}

/// Everything a parser call may touch besides its own state.
pub struct Ctx<'a> {
    /// Timestamp of the packet that carried the data (or of the event: gap, expiry).
    pub ts: Ts,
    /// Start time of the data passed in, kept by the engine with the bytes it holds:
    /// in `parse`, when the first byte of `data` became the first unconsumed byte of
    /// its direction (the packet that carried it, or the call that left it
    /// unconsumed after consuming what came before it); in `gap`, the same for the
    /// first of the held bytes that were lost. Equal to `ts` when nothing was held.
    /// A parser takes a message's start time from here ([`Ctx::start_ts`]) instead
    /// of remembering it across calls.
    pub msg_ts: Ts,
    /// Packet time of the server's latest payload on this connection, when the engine
    /// knows it (in `expire`; zero otherwise). A request does not time out while the
    /// server is still sending: the answers before it, or its own, are on their way.
    pub server_active: Ts,
    /// Completed transactions go here.
    pub out: &'a mut Vec<Transaction>,
    pub counters: &'a mut Counters,
}

impl<'a> Ctx<'a> {
    /// A context at packet time `ts` with nothing held.
    pub fn new(ts: Ts, out: &'a mut Vec<Transaction>, counters: &'a mut Counters) -> Ctx<'a> {
        Ctx {
            ts,
            msg_ts: ts,
            server_active: Ts::default(),
            out,
            counters,
        }
    }

    /// Start time of a message that begins `off` bytes into the data passed to
    /// `parse`: the held start time at offset 0, the packet's time further on.
    pub fn start_ts(&self, off: usize) -> Ts {
        if off == 0 { self.msg_ts } else { self.ts }
    }

    pub fn emit(&mut self, tx: Transaction) {
        self.out.push(tx);
    }
}

/// The two steps of [`Parser::prefetch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// The parser's own fields.
    Fields,
    /// What the fields point to.
    Owned,
}

/// Per-connection protocol state machine for one protocol.
pub trait Parser: Send + crate::flow::Warm {
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

    /// Nothing is in flight: every message seen has been published. A UDP flow whose
    /// parser is idle after a datagram ends at once instead of waiting out its idle
    /// timeout (a DNS client's port usually carries one query). TCP ignores it.
    fn idle(&self) -> bool {
        false
    }

    /// A hint, called a few segments before this parser's next call, in two steps:
    /// with [`Prefetch::Fields`] it asks for the cache lines of its own state that
    /// the call reads first ([`crate::flow::prefetch`] on fields, never reading
    /// them: they are not in cache yet); with [`Prefetch::Owned`], two segments
    /// later, for what those fields point to (reading them is cheap by then). The
    /// engine already asks for the first line of the state. Parsers that leave it
    /// out get only that line.
    fn prefetch(&self, _step: Prefetch) {}
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
    fn idle(&self) -> bool {
        (**self).idle()
    }
    fn prefetch(&self, step: Prefetch) {
        (**self).prefetch(step)
    }
}

/// Builds parsers for one configured protocol.
pub trait ProtocolFactory: Send + Sync {
    fn name(&self) -> &'static str;
    /// The transports it runs on (its ports are claimed on each).
    fn transports(&self) -> &[Transport] {
        &[Transport::Tcp]
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

/// Builds a protocol's parser for one connection from the protocol's settings and
/// its pairing limits.
pub type NewParser<S> = fn(&S, Limits, &ConnInfo) -> Box<dyn Parser>;

/// The factory of every TCP protocol: the settings all protocols share (ports,
/// transaction timeout, pairing queue bounds, the engine's buffer bound), the
/// protocol's own settings and its parser constructor.
pub struct Protocol<S> {
    pub name: &'static str,
    pub ports: Vec<u16>,
    /// Pairing queue bounds; `timeout` (the transaction timeout) is also the idle
    /// time after which a connection is expired.
    pub limits: Limits,
    /// See [`ProtocolFactory::max_buffer`].
    pub max_buffer: usize,
    pub settings: S,
    pub new_parser: NewParser<S>,
    /// See [`ProtocolFactory::transports`]; TCP unless the protocol says otherwise.
    pub transports: &'static [Transport],
}

impl<S: Send + Sync + 'static> Protocol<S> {
    /// The factory of protocol `name` configured by `c`; `None` when it is disabled
    /// (`settings` is then never built).
    pub fn from_config(
        name: &'static str,
        c: &ProtoCommon,
        max_buffer: usize,
        settings: impl FnOnce() -> S,
        new_parser: NewParser<S>,
    ) -> Option<Protocol<S>> {
        c.enabled.then(|| Protocol {
            name,
            ports: c.ports.clone(),
            limits: Limits {
                max_messages: c.queue_max_messages,
                max_bytes: c.queue_max_bytes,
                timeout: c.transaction_timeout,
            },
            max_buffer,
            settings: settings(),
            new_parser,
            transports: &[Transport::Tcp],
        })
    }

    /// The same protocol on other transports (DNS: UDP and TCP).
    pub fn on(mut self, transports: &'static [Transport]) -> Protocol<S> {
        self.transports = transports;
        self
    }

    pub fn shared(self) -> Arc<dyn ProtocolFactory> {
        Arc::new(self)
    }
}

impl<S: Send + Sync> ProtocolFactory for Protocol<S> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn ports(&self) -> &[u16] {
        &self.ports
    }

    fn connection_timeout(&self) -> std::time::Duration {
        self.limits.timeout
    }

    fn max_buffer(&self) -> usize {
        self.max_buffer
    }

    fn transports(&self) -> &[Transport] {
        self.transports
    }

    fn new_parser(&self, conn: &ConnInfo) -> Box<dyn Parser> {
        (self.new_parser)(&self.settings, self.limits, conn)
    }
}

/// Constructor of a protocol's factory from the configuration; `None` when the
/// protocol is disabled.
pub type FactoryCtor = fn(&Config) -> Option<Arc<dyn ProtocolFactory>>;

/// Every protocol wirebeat knows. Adding a protocol is adding a line here.
pub const REGISTRY: &[(&str, FactoryCtor)] = &[
    // One protocol per line.
    ("http", |c| http::protocol(c).map(Protocol::shared)),
    ("mysql", |c| mysql::protocol(c).map(Protocol::shared)),
    ("pgsql", |c| pgsql::protocol(c).map(Protocol::shared)),
    ("redis", |c| redis::protocol(c).map(Protocol::shared)),
    ("thrift", |c| thrift::protocol(c).map(Protocol::shared)),
    ("dns", |c| dns::protocol(c).map(Protocol::shared)),
    ("icmp", |c| icmp::protocol(c).map(Protocol::shared)),
];

/// Factories of every enabled protocol.
pub fn enabled(cfg: &Config) -> Vec<Arc<dyn ProtocolFactory>> {
    REGISTRY.iter().filter_map(|(_, ctor)| ctor(cfg)).collect()
}

/// The factory of protocol `name` when it is known and enabled.
pub fn factory(name: &str, cfg: &Config) -> Option<Arc<dyn ProtocolFactory>> {
    let (_, ctor) = REGISTRY.iter().find(|(n, _)| *n == name)?;
    ctor(cfg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn commons(cfg: &mut Config) -> [&mut ProtoCommon; 7] {
        let p = &mut cfg.protocols;
        [
            &mut p.http.common,
            &mut p.mysql.common,
            &mut p.pgsql.common,
            &mut p.redis.common,
            &mut p.thrift.common,
            &mut p.dns.common,
            &mut p.icmp.common,
        ]
    }

    fn limits(cfg: &Config) -> [Limits; 7] {
        [
            http::protocol(cfg).expect("http").limits,
            mysql::protocol(cfg).expect("mysql").limits,
            pgsql::protocol(cfg).expect("pgsql").limits,
            redis::protocol(cfg).expect("redis").limits,
            thrift::protocol(cfg).expect("thrift").limits,
            dns::protocol(cfg).expect("dns").limits,
            icmp::protocol(cfg).expect("icmp").limits,
        ]
    }

    #[test]
    fn pairing_limits_come_from_configuration() {
        let mut cfg = Config::default();
        for (i, c) in commons(&mut cfg).into_iter().enumerate() {
            c.queue_max_messages = 7 + i;
            c.queue_max_bytes = (64 << 20) + i;
            c.transaction_timeout = Duration::from_secs(3 + i as u64);
        }
        for (i, l) in limits(&cfg).into_iter().enumerate() {
            assert_eq!(l.max_messages, 7 + i);
            assert_eq!(l.max_bytes, (64 << 20) + i);
            assert_eq!(l.timeout, Duration::from_secs(3 + i as u64));
        }
        for (name, _) in REGISTRY {
            let f = factory(name, &cfg).expect("enabled");
            assert_eq!(f.name(), *name);
            let i = REGISTRY.iter().position(|(n, _)| n == name).unwrap_or(0);
            assert_eq!(f.connection_timeout(), Duration::from_secs(3 + i as u64));
        }
        assert!(factory("gopher", &cfg).is_none());
    }

    #[test]
    fn default_pairing_limits() {
        let cfg = Config::default();
        let got: Vec<_> = limits(&cfg)
            .iter()
            .map(|l| (l.max_messages, l.max_bytes))
            .collect();
        // HTTP: twice the default max_message_size (10 MiB).
        let expected = vec![
            (1024, 20 << 20),
            (1024, 16 << 20),
            (1024, 16 << 20),
            (20000, 1 << 20),
            (1024, 4 << 20),
            (1024, 4 << 20),
            (1024, 4 << 20),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn http_queue_holds_twice_the_largest_message() {
        let mut cfg = Config::default();
        cfg.protocols.http.max_message_size = 1 << 20;
        let l = http::protocol(&cfg).expect("http").limits;
        assert_eq!(l.max_bytes, 4 << 20, "the configured floor");
        cfg.protocols.http.common.queue_max_bytes = 1;
        let l = http::protocol(&cfg).expect("http").limits;
        assert_eq!(l.max_bytes, 2 << 20);
    }

    #[test]
    fn a_disabled_protocol_has_no_factory() {
        let mut cfg = Config::default();
        for c in commons(&mut cfg) {
            c.enabled = false;
        }
        assert!(enabled(&cfg).is_empty());
    }
}
