//! The per-connection HTTP state: each direction's framing and message in progress,
//! and the pairing queue (a request is handed to pairing as soon as its head is
//! parsed), behind the engine's [`Parser`] contract.

use std::sync::Arc;

use super::parser::{self, Framing, GapEffect, Step, Wire};
use super::transaction::{HttpExchange, HttpSettings, Msg, Request, Response};
use crate::event::ConnInfo;
use crate::protos::pairing::{Limits, Pairing};
use crate::protos::{Ctx, Dir, Parser, Prefetch, Progress};
use crate::time::Ts;

/// One direction's state: framing plus the message in progress.
#[derive(Debug)]
struct Side {
    wire: Wire,
    /// The response in progress. The request in progress is the pairing's open one.
    msg: Option<Response>,
    /// Bytes of interim (1xx) responses, counted into the final response.
    interim_bytes: u64,
}

impl Side {
    fn new(requests: bool) -> Side {
        Side {
            wire: Wire::new(requests),
            msg: None,
            interim_bytes: 0,
        }
    }
}

/// Why a head could not start a message.
enum HeadError {
    Malformed,
    /// Protocol switch (101, CONNECT): the connection is no longer HTTP.
    Stop,
}

pub struct HttpParser {
    ex: HttpExchange,
    pairing: Pairing<Request, Response>,
    sides: [Side; 2],
}

impl HttpParser {
    pub fn new(settings: Arc<HttpSettings>, conn: &ConnInfo, limits: Limits) -> HttpParser {
        HttpParser {
            pairing: Pairing::new(limits),
            ex: HttpExchange {
                settings,
                server_ip: conn.server_ip,
                server_port: conn.server_port,
            },
            sides: [Side::new(true), Side::new(false)],
        }
    }

    /// The message in progress in `dir`.
    fn msg_mut(&mut self, dir: Dir) -> Option<&mut Msg> {
        match dir {
            Dir::ToServer => self.pairing.opened_mut(),
            Dir::ToClient => self.sides[dir.idx()].msg.as_mut(),
        }
    }

    /// The message of `dir` ended: the open request is completed, a response is
    /// handed to pairing.
    fn finish(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        match dir {
            Dir::ToServer => self.pairing.complete(&self.ex, ctx),
            Dir::ToClient => {
                if let Some(msg) = self.sides[dir.idx()].msg.take() {
                    self.pairing.response(&self.ex, msg, ctx);
                }
            }
        }
    }

    /// Starts the message whose head is `head`.
    fn on_head(
        &mut self,
        dir: Dir,
        head: &[u8],
        ts: Ts,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), HeadError> {
        let request = dir == Dir::ToServer;
        if request && head.starts_with(b"PRI * HTTP/2") {
            // HTTP/2 with prior knowledge.
            return Err(HeadError::Stop);
        }
        let parsed = parser::parse_head(head, request).ok_or(HeadError::Malformed)?;
        let msg = Msg::from_head(&parsed, head, request, ts, &self.ex.settings);
        let info = msg.body_info;
        if info.bad_length && !info.chunked {
            return Err(HeadError::Malformed);
        }
        let framing = if request {
            if info.chunked {
                Framing::Chunked
            } else {
                Framing::Length(info.content_length.unwrap_or(0))
            }
        } else {
            let code = msg.code;
            let method = self.pairing.front().map(|r| r.method.as_str());
            let switching =
                code == 101 || (method == Some("CONNECT") && (200..300).contains(&code));
            if switching {
                self.sides[dir.idx()].msg = Some(msg);
                self.finish(dir, ctx);
                return Err(HeadError::Stop);
            }
            if (100..200).contains(&code) {
                // Interim response (100 Continue, 103 Early Hints): not paired; its
                // bytes belong to the final response of the same request.
                let side = &mut self.sides[dir.idx()];
                side.interim_bytes += head.len() as u64;
                side.wire.set_framing(Framing::None);
                return Ok(());
            }
            if method == Some("HEAD") || code == 204 || code == 304 {
                Framing::None
            } else if info.chunked {
                Framing::Chunked
            } else if info.other_coding {
                Framing::Close
            } else if let Some(n) = info.content_length {
                Framing::Length(n)
            } else {
                Framing::Close
            }
        };
        let side = &mut self.sides[dir.idx()];
        let mut msg = msg;
        msg.wire.bytes += std::mem::take(&mut side.interim_bytes);
        side.wire.set_framing(framing);
        let done = side.wire.framing_done();
        if request {
            // Queued at once: a response may come before the body ends.
            if done {
                self.pairing.request(&self.ex, msg, ctx);
            } else {
                self.pairing.open(&self.ex, msg, ctx);
            }
        } else {
            side.msg = Some(msg);
            if done {
                self.finish(dir, ctx);
            }
        }
        Ok(())
    }

    /// Resets `dir` after unparseable data; a message whose head is known is
    /// published as it is.
    fn fail(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        tracing::debug!(target: "http", "{dir:?}: malformed message; publishing what is known and resynchronising");
        self.sides[dir.idx()].wire.reset();
        self.finish(dir, ctx);
    }
}

impl Parser for HttpParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        let max = self.ex.settings.max_message_size;
        let mut off = 0;
        loop {
            let side = &mut self.sides[dir.idx()];
            match side.wire.step(&data[off..]) {
                Step::Need(need) => {
                    return Progress::Consumed {
                        consumed: off,
                        need,
                    };
                }
                Step::Skip(n) => {
                    off += n;
                }
                Step::Head(h) => {
                    // The engine holds a head until it is complete: it knows when
                    // its first byte arrived.
                    let ts = ctx.start_ts(off);
                    off += h.len();
                    match self.on_head(dir, h, ts, ctx) {
                        Ok(()) => {}
                        Err(HeadError::Malformed) => {
                            self.fail(dir, ctx);
                            return Progress::Error;
                        }
                        Err(HeadError::Stop) => {
                            tracing::debug!(target: "http", "protocol switch or tunnel: no longer parsed as HTTP");
                            return Progress::Stop;
                        }
                    }
                }
                Step::Body(b) => {
                    off += b.len();
                    let ended = !side.wire.in_message();
                    if let Some(m) = self.msg_mut(dir) {
                        m.add_body(b, max);
                    }
                    if ended {
                        self.finish(dir, ctx);
                    }
                }
                Step::Framing(n) => {
                    off += n;
                    if let Some(m) = self.msg_mut(dir) {
                        m.wire.bytes += n as u64;
                    }
                }
                Step::End(n) => {
                    off += n;
                    if let Some(m) = self.msg_mut(dir) {
                        m.wire.bytes += n as u64;
                    }
                    self.finish(dir, ctx);
                }
                Step::Error => {
                    self.fail(dir, ctx);
                    return Progress::Error;
                }
                Step::NotHttp => {
                    return Progress::Stop;
                }
            }
        }
    }

    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        let side = &mut self.sides[dir.idx()];
        match side.wire.gap(len) {
            GapEffect::Body { lost, complete } => {
                if let Some(m) = self.msg_mut(dir) {
                    m.body_bytes += lost;
                    m.wire.bytes += lost;
                    m.wire.loss = true;
                }
                if complete {
                    self.finish(dir, ctx);
                }
            }
            GapEffect::LostMessage => {
                if let Some(m) = self.msg_mut(dir) {
                    m.wire.loss = true;
                }
                self.finish(dir, ctx);
            }
            // No head was in progress, so no request is open.
            GapEffect::Reset => side.msg = None,
        }
    }

    fn fin(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        let side = &mut self.sides[dir.idx()];
        if dir == Dir::ToClient && side.wire.is_close_delimited() {
            side.wire.finish();
            self.finish(dir, ctx);
        }
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        self.pairing.expire(&self.ex, now, ctx);
    }

    fn prefetch(&self, step: Prefetch) {
        use crate::flow::prefetch;
        match step {
            Prefetch::Fields => {
                prefetch(&self.ex);
                for side in &self.sides {
                    prefetch(&side.wire);
                    prefetch(&side.msg);
                }
            }
            Prefetch::Owned => {}
        }
        self.pairing.prefetch(step);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        for dir in [Dir::ToServer, Dir::ToClient] {
            let side = &mut self.sides[dir.idx()];
            if side.wire.in_message() {
                side.wire.finish();
                self.finish(dir, ctx);
            }
            self.sides[dir.idx()].msg = None;
        }
        self.pairing.drain(&self.ex, ctx);
    }
}
