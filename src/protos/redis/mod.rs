//! Redis (RESP2 and RESP3): `parser.rs` reads requests and replies off the wire as
//! streams, `transaction.rs` holds them for pairing and builds the transaction,
//! `fields.rs` writes `redis.*`. This file wires them into the engine's [`Parser`]
//! contract and sorts replies from out-of-band data:
//!
//! - Requests flow `ToServer`, replies `ToClient`; replies pair FIFO with requests, so
//!   pipelines of any depth work, within `queue_max_messages` / `queue_max_bytes`.
//! - RESP3 push frames (`>`: published messages, client-tracking invalidations) are
//!   not replies and are skipped, except the confirmation of a (un)subscribe.
//! - Once a client subscribes, RESP2 arrays `[message, ...]`, `[pmessage, ...]` and
//!   `[smessage, ...]` are published data and are skipped.
//! - A (un)subscribe of N channels gets N confirmations: the first is the reply of
//!   the command (the transaction), the other N-1 are skipped. A confirmation pairs
//!   only with a waiting command of its own kind (`unsubscribe` with UNSUBSCRIBE...),
//!   so the unknown number of confirmations of an UNSUBSCRIBE of every channel never
//!   answers a later command: the first is its reply, the others are skipped.
//! - After MONITOR, the stream of `+<time> [...] "command"` lines is skipped.
//! - MULTI/EXEC need nothing special: MULTI gets `OK`, every queued command `QUEUED`,
//!   EXEC the array of results, each its own transaction.
//!
//! Every byte is consumed when it arrives (no tail is left to the engine), so huge
//! values stream through with bounded memory and no rescanning.

pub mod fields;
pub mod parser;
pub mod transaction;

#[cfg(test)]
mod tests;

use parser::{Event, Reader};
use transaction::{PubSub, RedisExchange, Request, Response};

use super::pairing::{Limits, Pairing};
use super::{Ctx, Dir, Parser, Progress, Protocol};
use crate::config::Config;

/// Redis as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<RedisExchange>> {
    let c = &cfg.protocols.redis;
    Protocol::from_config(
        "redis",
        &c.common,
        // The parser consumes everything it is given; nothing waits in the engine.
        16 * 1024,
        || RedisExchange {
            send_request: c.common.send_request,
            send_response: c.common.send_response,
        },
        |ex, limits, _| Box::new(RedisParser::new(limits, *ex)),
    )
}

/// TLS handshake record type: a client starting TLS on a Redis port.
const TLS_HANDSHAKE: u8 = 0x16;

pub struct RedisParser {
    ex: RedisExchange,
    pairing: Pairing<Request, Response>,
    readers: [Reader; 2],
    /// Confirmations of an earlier (un)subscribe still to skip.
    extra_confirmations: u64,
    /// The client has subscribed: `[message, ...]` arrays are published data.
    subscribed: bool,
    /// The client ran MONITOR: unrequested simple strings are the command feed.
    monitor: bool,
    /// No request byte seen yet (TLS detection).
    fresh: bool,
}

impl RedisParser {
    pub fn new(limits: Limits, ex: RedisExchange) -> RedisParser {
        RedisParser {
            ex,
            pairing: Pairing::new(limits),
            readers: [Reader::new(true), Reader::new(false)],
            extra_confirmations: 0,
            subscribed: false,
            monitor: false,
            fresh: true,
        }
    }

    fn on_message(&mut self, dir: Dir, m: parser::Message, ctx: &mut Ctx<'_>) {
        match dir {
            Dir::ToServer => {
                let Some(req) = Request::from_message(m) else {
                    return;
                };
                if req.subscribes() {
                    self.subscribed = true;
                }
                if req.method == "MONITOR" {
                    self.monitor = true;
                }
                self.pairing.request(&self.ex, req, ctx);
            }
            Dir::ToClient => self.on_reply(Response::from_message(m), ctx),
        }
    }

    fn on_reply(&mut self, resp: Response, ctx: &mut Ctx<'_>) {
        let front = self.pairing.front();
        let front_subscribes = front.is_some_and(|r| r.confirmations.is_some());
        // Outside pub/sub, an array that merely looks like a confirmation (a list
        // holding "subscribe", ...) is an ordinary reply.
        let in_pubsub =
            resp.push || front_subscribes || self.subscribed || self.extra_confirmations > 0;
        match resp.pubsub {
            PubSub::Confirmation { kind, count } if in_pubsub => {
                if kind.unsubscribes() && count <= 0 {
                    self.subscribed = false;
                }
                if self.extra_confirmations > 0 {
                    self.extra_confirmations -= 1;
                    return;
                }
                // The first confirmation of the command waiting for one of its kind is
                // its reply; any other is one more of an earlier command's.
                let Some(channels) =
                    front.and_then(|r| r.confirmations.filter(|_| r.method == kind.command()))
                else {
                    return;
                };
                self.extra_confirmations = channels.saturating_sub(1);
                self.pairing.response(&self.ex, resp, ctx);
            }
            PubSub::Published if resp.push || self.subscribed || self.pairing.is_empty() => {}
            _ if resp.push => {}
            _ => {
                if self.monitor && self.pairing.is_empty() && !resp.error {
                    return;
                }
                self.pairing.response(&self.ex, resp, ctx);
            }
        }
    }
}

impl Parser for RedisParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        if dir == Dir::ToServer
            && std::mem::take(&mut self.fresh)
            && data.first() == Some(&TLS_HANDSHAKE)
        {
            tracing::debug!(target: "redis", "TLS on a Redis port: not followed");
            return Progress::Stop;
        }
        let mut off = 0;
        while off < data.len() {
            let (n, ev) = self.readers[dir.idx()].step(&data[off..], ctx.ts);
            off += n;
            match ev {
                Event::Need => {}
                Event::Done(m) => self.on_message(dir, m, ctx),
                Event::Bad => {
                    tracing::debug!(target: "redis", "{dir:?}: malformed data, resynchronising");
                    ctx.counters.parse_errors += 1;
                }
            }
        }
        Progress::all(data)
    }

    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        if let Some(m) = self.readers[dir.idx()].gap(len) {
            self.on_message(dir, m, ctx);
        }
    }

    fn expire(&mut self, now: crate::time::Ts, ctx: &mut Ctx<'_>) {
        self.pairing.expire(&self.ex, now, ctx);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        for dir in [Dir::ToServer, Dir::ToClient] {
            if let Some(mut m) = self.readers[dir.idx()].take_partial() {
                m.loss = true;
                self.on_message(dir, m, ctx);
            }
        }
        self.pairing.drain(&self.ex, ctx);
    }
}
