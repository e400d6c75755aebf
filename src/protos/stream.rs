//! The engine side of the parser contract ("consumed, needed"): in-order bytes of one
//! direction go to the parser; what it does not consume is kept, bounded, and handed
//! back with the next bytes once at least as many as it asked for have arrived.
//! Public so that protocol tests drive their parsers exactly as the engine does.

use super::{Ctx, Dir, Parser, Progress};
use crate::event::ConnInfo;
use crate::time::Ts;

/// What TCP reassembly hands to the parser side of one direction, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes were lost.
    Gap(u64),
    /// The sender closed its side; no data follows.
    Fin,
}

/// The unconsumed tail of one direction.
#[derive(Debug, Default)]
pub struct AppBuffer {
    buf: Vec<u8>,
    /// Do not call the parser again before `buf` holds this many bytes.
    wait_for: usize,
    /// When the first byte of `buf` became the first unconsumed byte: the packet
    /// that carried it, or the call that consumed what came before it. Handed to
    /// the parser as [`Ctx::msg_ts`], so a message's start time survives calls.
    since: Ts,
}

impl AppBuffer {
    /// The first buffered byte, if any (for a prefetch).
    #[inline]
    pub fn first_byte(&self) -> Option<&u8> {
        self.buf.first()
    }

    /// Bytes held for the parser.
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// Hands one chunk to `parser`. Returns the parser's answer when it was called
    /// with data (`None` when the data was only buffered, and for gaps and FINs).
    /// After `Some(Progress::Stop)` the parser has been closed: do not call it again.
    ///
    /// - data: parsed straight from the chunk when nothing is held, else appended
    ///   to the held tail, which is parsed once it reaches what the parser needs;
    /// - a gap: the held tail is lost with the hole, so `gap` gets both lengths
    ///   (and the tail's start time as `ctx.msg_ts`);
    /// - a FIN: a held tail can never complete, so it is reported as a gap first;
    /// - a tail over `max_buffer` is dropped, counted and reported as a gap;
    /// - `Progress::Error` drops the tail and is counted.
    pub fn deliver(
        &mut self,
        parser: &mut dyn Parser,
        dir: Dir,
        chunk: Chunk<'_>,
        max_buffer: usize,
        conn: &ConnInfo,
        ctx: &mut Ctx<'_>,
    ) -> Option<Progress> {
        let progress = match chunk {
            Chunk::Gap(n) => {
                tracing::debug!(target: "tcp", "{conn}: {dir:?}: {n} bytes lost in capture");
                ctx.msg_ts = self.start(ctx.ts);
                let held = self.take_all();
                parser.gap(dir, n + held, ctx);
                ctx.msg_ts = ctx.ts;
                return None;
            }
            Chunk::Fin => {
                if !self.buf.is_empty() {
                    ctx.msg_ts = self.since;
                    let held = self.take_all();
                    parser.gap(dir, held, ctx);
                    ctx.msg_ts = ctx.ts;
                }
                parser.fin(dir, ctx);
                return None;
            }
            Chunk::Data(d) if self.buf.is_empty() => {
                ctx.msg_ts = ctx.ts;
                let pr = parser.parse(dir, d, ctx);
                if let Progress::Consumed { consumed, need } = pr {
                    let rest = &d[consumed.min(d.len())..];
                    if !rest.is_empty() {
                        self.buf.extend_from_slice(rest);
                        self.wait_for = rest.len().saturating_add(need);
                        self.since = ctx.ts;
                    }
                }
                pr
            }
            Chunk::Data(d) => {
                self.buf.extend_from_slice(d);
                if self.buf.len() < self.wait_for && self.buf.len() <= max_buffer {
                    return None;
                }
                ctx.msg_ts = self.since;
                let pr = parser.parse(dir, &self.buf, ctx);
                ctx.msg_ts = ctx.ts;
                if let Progress::Consumed { consumed, need } = pr {
                    self.buf.drain(..consumed.min(self.buf.len()));
                    self.wait_for = self.buf.len().saturating_add(need);
                    if consumed > 0 {
                        self.since = ctx.ts;
                    }
                }
                pr
            }
        };
        match progress {
            Progress::Consumed { .. } => {
                if self.buf.len() > max_buffer {
                    ctx.counters.tcp_buffer_overflows += 1;
                    ctx.msg_ts = self.since;
                    let n = self.take_all();
                    parser.gap(dir, n, ctx);
                    ctx.msg_ts = ctx.ts;
                }
            }
            Progress::Error => {
                tracing::debug!(target: "tcp", "{conn}: {dir:?}: unparseable data, resynchronising");
                ctx.counters.parse_errors += 1;
                self.take_all();
            }
            Progress::Stop => {
                tracing::debug!(target: "tcp", "{conn}: no longer followed (protocol upgrade or encryption)");
                ctx.counters.parser_stopped += 1;
                parser.close(ctx);
                self.take_all();
            }
        }
        if self.buf.capacity() > 4 * max_buffer.max(4096) && self.buf.len() < max_buffer {
            self.buf.shrink_to(max_buffer);
        }
        Some(progress)
    }

    /// Start time of the held tail, `now` when nothing is held.
    fn start(&self, now: Ts) -> Ts {
        if self.buf.is_empty() { now } else { self.since }
    }

    /// Drops the held tail; returns its length.
    fn take_all(&mut self) -> u64 {
        let n = self.buf.len() as u64;
        self.buf.clear();
        self.wait_for = 0;
        n
    }
}
