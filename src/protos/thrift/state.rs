//! The per-connection Thrift state: each direction's framing and message in progress,
//! and the pairing queue, behind the engine's [`Parser`] contract.

use std::sync::Arc;

use super::parser::{self, CALL, Format, Header, ONEWAY, Scanner, Stop, Transport};
use super::transaction::{MAX_MESSAGE, Msg, Request, Response, ThriftExchange, ThriftSettings};
use crate::protos::framing::{Framing, Skip};
use crate::protos::pairing::{self, Limits, Pairing};
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::time::Ts;

/// One direction's message in progress.
#[derive(Debug, Default)]
struct Side {
    format: Option<Format>,
    header: Option<Header>,
    scanner: Option<Scanner>,
    /// Bytes of an oversized frame still to pass over.
    skip: Skip,
}

impl Side {
    fn reset(&mut self) {
        let skip = self.skip;
        *self = Side::default();
        self.skip = skip;
    }
}

/// Frames up to [`MAX_MESSAGE`] bytes are held whole; larger ones are skipped.
const FRAMING: Framing = Framing {
    whole: MAX_MESSAGE,
    prefix: 0,
};

/// What one attempt at the message at the start of the buffer gave.
enum Step {
    Need(usize),
    Bad,
    /// A complete message of `len` bytes.
    Done(Msg, usize),
    /// An oversized frame of `len` bytes, to be skipped.
    Skip(u64),
    /// The message's content broke a bound or was malformed after a valid header:
    /// its header alone is published (so pairing stays in step) and, when framed,
    /// the rest of the frame (`len` bytes from the start) is passed over.
    Dropped(Msg, Option<usize>),
}

pub struct ThriftParser {
    ex: ThriftExchange,
    pairing: Pairing<Request, Response>,
    sides: [Side; 2],
}

impl ThriftParser {
    pub fn new(settings: Arc<ThriftSettings>, limits: Limits) -> ThriftParser {
        ThriftParser {
            pairing: Pairing::new(limits),
            ex: ThriftExchange { settings },
            sides: [Side::default(), Side::default()],
        }
    }

    /// Tries to complete the message at the start of `b`, whose first byte arrived
    /// at `ts`.
    fn step(&mut self, dir: Dir, b: &[u8], ts: Ts) -> Step {
        let s = &*self.ex.settings;
        let side = &mut self.sides[dir.idx()];
        let need = |n: usize| Step::Need(n.saturating_sub(b.len()).max(1));
        let format = match side.format {
            Some(f) => f,
            None => match parser::detect(b, s.forced) {
                Ok(f) => *side.format.insert(f),
                Err(Stop::Need(n)) => return need(n),
                Err(Stop::Bad) => return Step::Bad,
            },
        };
        let prefix = format.prefix();
        let frame_end = match format.transport {
            Transport::Framed => {
                let Some(l) = b.get(..4) else {
                    return need(4);
                };
                let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as u64 + 4;
                let (take, skip) = FRAMING.split(len);
                if skip > 0 {
                    tracing::debug!(target: "thrift", "{dir:?}: {len}-byte frame exceeds {MAX_MESSAGE} bytes; skipped");
                    return Step::Skip(skip);
                }
                Some(take)
            }
            Transport::Socket => None,
        };
        if side.header.is_none() {
            match parser::header(&b[prefix.min(b.len())..], format.protocol) {
                Ok(h) => side.header = Some(h),
                Err(Stop::Need(n)) => return need(prefix + n),
                Err(Stop::Bad) => return Step::Bad,
            }
        }
        let Some(header) = side.header.as_ref() else {
            return Step::Bad;
        };
        let dropped = |why: &str| {
            tracing::debug!(target: "thrift", "{dir:?}: `{}` dropped: {why}", header.name);
            let bytes = frame_end.unwrap_or(b.len()) as u64;
            Step::Dropped(s.message(ts, header, None, bytes, false), frame_end)
        };
        let body_at = prefix + header.len;
        let end = match frame_end {
            Some(end) => {
                if body_at > end {
                    return dropped("header longer than its frame");
                }
                if b.len() < end {
                    return need(end);
                }
                end
            }
            None => {
                let scanner = side
                    .scanner
                    .get_or_insert_with(|| Scanner::new(format.protocol, body_at));
                match scanner.scan(b, &s.bounds) {
                    Ok(end) => end,
                    Err(Stop::Need(n)) if n <= MAX_MESSAGE => return need(n),
                    Err(_) => return dropped("malformed, too large, too deep or too many fields"),
                }
            }
        };
        let is_reply = header.mtype != CALL && header.mtype != ONEWAY;
        let msg = if is_reply && !s.capture_reply {
            s.message(ts, header, None, end as u64, false)
        } else {
            match parser::render_body(&b[..end], body_at, format.protocol, &s.bounds, &s.style) {
                Ok((body, _)) => s.message(ts, header, Some(&body), end as u64, false),
                Err(_) => return dropped("malformed, too deep or too many fields"),
            }
        };
        Step::Done(msg, end)
    }

    fn dispatch(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        if msg.oneway {
            pairing::request_only(&self.ex, msg, ctx);
        } else if msg.mtype == CALL {
            self.pairing.request(&self.ex, msg, ctx);
        } else {
            // A reply names its call: calls queued before that one got no reply (oneway
            // calls sent as CALL, unknown to the IDL) and must not take this one.
            let skipped = self
                .pairing
                .skip_unanswered(&self.ex, |r| r.answered_by(&msg), ctx);
            if skipped > 0 {
                tracing::debug!(target: "thrift", "reply to `{}` follows {skipped} calls with no reply; published as unmatched", msg.name);
            }
            self.pairing.response(&self.ex, msg, ctx);
        }
    }
}

impl Parser for ThriftParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        let mut off = 0;
        loop {
            let rest = &data[off..];
            if rest.is_empty() {
                return Progress::consumed(off);
            }
            let side = &mut self.sides[dir.idx()];
            if side.skip.active() {
                off += side.skip.pass(rest.len());
                continue;
            }
            // A message starts here; when it began in bytes the engine held, the
            // engine knows when they arrived.
            match self.step(dir, rest, ctx.start_ts(off)) {
                Step::Need(need) => {
                    return Progress::Consumed {
                        consumed: off,
                        need,
                    };
                }
                Step::Bad => {
                    tracing::debug!(target: "thrift", "{dir:?}: not a Thrift message; resynchronising on the next segment");
                    self.sides[dir.idx()] = Side::default();
                    return Progress::Error;
                }
                Step::Skip(len) => {
                    ctx.counters.parse_errors += 1;
                    let side = &mut self.sides[dir.idx()];
                    *side = Side::default();
                    side.skip.start(len);
                }
                Step::Dropped(msg, frame_end) => {
                    self.sides[dir.idx()] = Side::default();
                    self.dispatch(msg, ctx);
                    let Some(end) = frame_end else {
                        // Unframed: where the message ends is unknown. (The engine
                        // counts the parse error.)
                        return Progress::Error;
                    };
                    ctx.counters.parse_errors += 1;
                    if rest.len() >= end {
                        off += end;
                    } else {
                        self.sides[dir.idx()].skip.start((end - rest.len()) as u64);
                        off = data.len();
                    }
                }
                Step::Done(msg, len) => {
                    off += len;
                    self.sides[dir.idx()].reset();
                    self.dispatch(msg, ctx);
                }
            }
        }
    }

    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        let mut side = std::mem::take(&mut self.sides[dir.idx()]);
        // The rest of an oversized frame may still be passed over exactly.
        if side.skip.active() && side.skip.lose(len) {
            self.sides[dir.idx()].skip = side.skip;
            return;
        }
        // A message whose header is known was held by the engine, which knows when
        // its first byte arrived.
        let Some(header) = side.header else {
            return;
        };
        let ts = ctx.msg_ts;
        // The message's name is known: publish what is known, with the loss note.
        tracing::debug!(target: "thrift", "{dir:?}: {len} bytes lost inside `{}`", header.name);
        let s = &*self.ex.settings;
        let msg = s.message(ts, &header, None, 0, true);
        self.dispatch(msg, ctx);
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        self.pairing.expire(&self.ex, now, ctx);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.sides = [Side::default(), Side::default()];
        self.pairing.drain(&self.ex, ctx);
    }
}
