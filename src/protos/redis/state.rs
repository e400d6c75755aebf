//! The per-connection Redis state: readers of both directions, the pairing queue and
//! the pub/sub and MONITOR modes that sort replies from out-of-band data, behind the
//! engine's [`Parser`] contract.

use super::parser::{self, Event, Reader};
use super::transaction::{PubSub, RedisExchange, Request, Response};
use crate::protos::pairing::{Limits, Pairing};
use crate::protos::{Ctx, Dir, Parser, Progress};

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
