//! The per-connection PostgreSQL state: startup and TLS detection, each direction's
//! framing, the statements and portals of the extended protocol, and the pairing queue,
//! behind the engine's [`Parser`] contract.

use std::sync::Arc;
use std::time::Duration;

use super::cache::Lru;
use super::parser::{self, Formats, Probe};
use super::transaction::{Kind, NOTE_SKIPPED, PgsqlExchange, PgsqlSettings, Request, Response};
use crate::event::NOTE_UNMATCHED_REQUEST;
use crate::protos::framing::Skip;
use crate::protos::pairing::{Limits, Pairing, Wire};
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::text::{self, Replace, lossy};
use crate::time::Ts;

/// Total size of the statement texts (and of the portals' parameters) remembered
/// per connection; the number of entries is `max_statements`.
const MAX_STATEMENT_BYTES: usize = 4 << 20;
/// Result-format codes kept per Bind (one per result column).
const MAX_FORMATS: usize = 1024;
/// Statements of one simple Query tracked separately.
const MAX_SPLIT: usize = 256;
/// Longest rendered `params`.
const MAX_PARAMS: usize = 16 * 1024;
/// Bytes of unparseable data scanned for a message start per call.
const RESYNC_SCAN: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Nothing seen yet in this direction.
    Start,
    /// At a message boundary.
    Synced,
    /// Looking for a message boundary.
    Resync,
}

#[derive(Debug)]
struct Side {
    mode: Mode,
    /// Bytes of a large message still to skip.
    skip: Skip,
}

impl Side {
    fn new() -> Side {
        Side {
            mode: Mode::Start,
            skip: Skip::default(),
        }
    }
}

/// What a Bind put into a portal, for the Executes of that portal.
#[derive(Clone, Debug)]
struct Portal {
    query: Option<Arc<str>>,
    params: Arc<str>,
    formats: Arc<Formats>,
}

/// Extended-protocol messages of a request not yet ended by Execute or Sync.
#[derive(Debug)]
struct Building {
    ts: Ts,
    bytes: u64,
    first: u8,
    parse_query: Option<Arc<str>>,
    loss: bool,
}

pub struct PgsqlParser {
    ex: PgsqlExchange,
    pairing: Pairing<Request, Response>,
    timeout: Duration,
    sides: [Side; 2],
    /// Frontend: the next message may be an untyped startup-phase message.
    expect_startup: bool,
    /// The client sent a StartupMessage: the backend is in the startup phase until
    /// its first ReadyForQuery.
    startup: bool,
    /// SSLRequest (`S`) or GSSENCRequest (`G`) awaiting its one-byte answer.
    enc_pending: Option<u8>,
    statements: Lru<Arc<str>>,
    portals: Lru<Portal>,
    building: Option<Building>,
    /// Complete request that may still take a Sync or Flush.
    staged_req: Option<Request>,
    /// Response being received.
    cur: Option<Response>,
    /// Complete response that may still take notices and ReadyForQuery.
    staged_resp: Option<Response>,
    batch: u64,
    last_paired_batch: Option<u64>,
    aborted_batch: Option<u64>,
    copy_in: u64,
}

impl PgsqlParser {
    pub fn new(settings: Arc<PgsqlSettings>, limits: Limits) -> PgsqlParser {
        let max = settings.max_statements;
        PgsqlParser {
            ex: PgsqlExchange { settings },
            pairing: Pairing::new(limits),
            timeout: limits.timeout,
            sides: [Side::new(), Side::new()],
            expect_startup: true,
            startup: false,
            enc_pending: None,
            statements: Lru::new(max, MAX_STATEMENT_BYTES),
            portals: Lru::new(max, MAX_STATEMENT_BYTES),
            building: None,
            staged_req: None,
            cur: None,
            staged_resp: None,
            batch: 0,
            last_paired_batch: None,
            aborted_batch: None,
            copy_in: 0,
        }
    }

    // ---------------------------------------------------------------- requests

    fn flush_staged_req(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(r) = self.staged_req.take() {
            self.pairing.request(&self.ex, r, ctx);
        }
    }

    fn stage_req(&mut self, r: Request, ctx: &mut Ctx<'_>) {
        self.flush_staged_req(ctx);
        self.staged_req = Some(r);
    }

    fn building(&mut self, ts: Ts, ty: u8) -> &mut Building {
        self.building.get_or_insert(Building {
            ts,
            bytes: 0,
            first: ty,
            parse_query: None,
            loss: false,
        })
    }

    fn count_evictions(&self, n: u64, what: &str, ctx: &mut Ctx<'_>) {
        if n > 0 {
            ctx.counters.statement_evictions += n;
            tracing::debug!(target: "pgsql", "{what} cache full (max_statements {}): {n} forgotten", self.ex.settings.max_statements);
        }
    }

    fn frontend(&mut self, ty: u8, body: &[u8], total: usize, ts: Ts, ctx: &mut Ctx<'_>) {
        let total = total as u64;
        let s = self.ex.settings.clone();
        match ty {
            b'Q' => {
                self.flush_staged_req(ctx);
                let text = lossy(parser::Rd::new(body).cstr_or_rest(), Replace::PerSequence);
                let (pre_bytes, pre_loss) = self
                    .building
                    .take()
                    .map_or((0, false), |b| (b.bytes, b.loss));
                let batch = self.next_batch();
                let ranges = parser::split_statements(&text, MAX_SPLIT);
                let push = |me: &mut Self, q: &str, first: bool, ctx: &mut Ctx<'_>| {
                    let req = Request {
                        wire: Wire {
                            ts,
                            bytes: if first { total + pre_bytes } else { 0 },
                            loss: pre_loss,
                        },
                        kind: Kind::Simple,
                        batch,
                        method: parser::first_word(q),
                        query: Some(Arc::from(q)),
                        params: None,
                        formats: Arc::default(),
                    };
                    me.pairing.request(&me.ex, req, ctx);
                };
                if ranges.is_empty() {
                    push(self, &text, true, ctx);
                }
                for (i, (a, b)) in ranges.into_iter().enumerate() {
                    push(self, &text[a..b], i == 0, ctx);
                }
            }
            b'P' => {
                let (name, query) = parser::parse_msg(body);
                let query: Arc<str> = Arc::from(lossy(&query, Replace::PerSequence));
                let n = self.statements.insert(name, query.clone(), query.len());
                self.count_evictions(n, "statement", ctx);
                let b = self.building(ts, ty);
                b.bytes += total;
                b.parse_query = Some(query);
            }
            b'B' => {
                let (portal, stmt, params) =
                    parser::bind_msg(body, s.max_row_length.max(1), MAX_PARAMS);
                let formats = if s.send_response {
                    parser::bind_result_formats(body, MAX_FORMATS)
                } else {
                    Formats::default()
                };
                let size = params.len() + formats.0.len() * 2;
                let p = Portal {
                    query: self.statements.get(&stmt),
                    params: Arc::from(params),
                    formats: Arc::new(formats),
                };
                let n = self.portals.insert(portal, p, size);
                self.count_evictions(n, "portal", ctx);
                self.building(ts, ty).bytes += total;
            }
            b'D' => self.building(ts, ty).bytes += total,
            b'C' => {
                let (kind, name) = parser::target_msg(body);
                if kind == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                self.building(ts, ty).bytes += total;
            }
            b'E' => {
                let portal = parser::execute_msg(body);
                let (query, params, formats) = match self.portals.get(&portal) {
                    Some(p) => (p.query, Some(p.params), p.formats),
                    None => (None, None, Arc::default()),
                };
                let b = self.building(ts, ty);
                b.bytes += total;
                let query = query.or_else(|| b.parse_query.clone());
                let (bts, bytes, loss) = (b.ts, b.bytes, b.loss);
                self.building = None;
                let method = query
                    .as_deref()
                    .and_then(parser::first_word)
                    .or_else(|| Some("EXECUTE".to_string()));
                let req = Request {
                    wire: Wire {
                        ts: bts,
                        bytes,
                        loss,
                    },
                    kind: Kind::Execute,
                    batch: self.batch,
                    method,
                    query,
                    params: params.filter(|p| !p.is_empty()).map(|p| p.to_string()),
                    formats,
                };
                self.stage_req(req, ctx);
            }
            b'S' => {
                if let Some(b) = self.building.take() {
                    let method = match b.first {
                        b'P' => "PREPARE",
                        b'B' => "BIND",
                        b'D' => "DESCRIBE",
                        _ => "CLOSE",
                    };
                    let req = Request {
                        wire: Wire {
                            ts: b.ts,
                            bytes: b.bytes + total,
                            loss: b.loss,
                        },
                        kind: Kind::Prepare,
                        batch: self.batch,
                        method: Some(method.to_string()),
                        query: b.parse_query,
                        params: None,
                        formats: Arc::default(),
                    };
                    self.stage_req(req, ctx);
                } else if let Some(r) = &mut self.staged_req {
                    r.wire.bytes += total;
                }
                self.next_batch();
            }
            b'H' => {
                if let Some(b) = &mut self.building {
                    b.bytes += total;
                } else if let Some(r) = &mut self.staged_req {
                    r.wire.bytes += total;
                }
            }
            b'd' | b'c' | b'f' => self.copy_in += total,
            b'F' => {
                self.flush_staged_req(ctx);
                let req = Request {
                    wire: Wire {
                        ts,
                        bytes: total,
                        loss: false,
                    },
                    kind: Kind::Function,
                    batch: self.next_batch(),
                    method: Some("FUNCTION".to_string()),
                    query: None,
                    params: None,
                    formats: Arc::default(),
                };
                self.pairing.request(&self.ex, req, ctx);
            }
            // PasswordMessage / SASL responses, Terminate.
            _ => {}
        }
    }

    fn next_batch(&mut self) -> u64 {
        let b = self.batch;
        self.batch += 1;
        b
    }

    /// A startup-phase message (no type byte). `body` follows the length field.
    fn startup_message(&mut self, body: &[u8]) {
        let code = parser::Rd::new(body).i32().unwrap_or(0) as u32;
        match code {
            parser::SSL_REQUEST => {
                self.enc_pending = Some(b'S');
            }
            parser::GSSENC_REQUEST => {
                self.enc_pending = Some(b'G');
            }
            parser::CANCEL_REQUEST => {}
            _ => {
                // StartupMessage (3.0, or a version the server will refuse).
                self.expect_startup = false;
                self.startup = true;
            }
        }
    }

    // ---------------------------------------------------------------- responses

    fn front_kind(&self) -> Option<Kind> {
        self.pairing.front().map(|r| r.kind)
    }

    fn flush_staged_resp(&mut self, ctx: &mut Ctx<'_>) {
        let Some(mut r) = self.staged_resp.take() else {
            return;
        };
        r.copy_in = std::mem::take(&mut self.copy_in);
        let batch = self.pairing.front().map(|q| q.batch);
        if r.error.is_some() && batch.is_some() {
            self.aborted_batch = batch;
        }
        self.last_paired_batch = batch;
        self.pairing.response(&self.ex, r, ctx);
    }

    /// ReadyForQuery: requests of the batch that just ended that got no response
    /// were skipped by the server.
    fn end_batch(&mut self, ts: Ts, ctx: &mut Ctx<'_>) {
        let Some(b) = self.last_paired_batch.take() else {
            return;
        };
        let note = if self.aborted_batch.take() == Some(b) {
            NOTE_SKIPPED
        } else {
            NOTE_UNMATCHED_REQUEST
        };
        while self.pairing.front().is_some_and(|r| r.batch == b) {
            let resp = Response {
                skipped: Some(note),
                ..Response::new(ts)
            };
            self.pairing.response(&self.ex, resp, ctx);
        }
    }

    fn cur(&mut self, ts: Ts) -> &mut Response {
        self.cur.get_or_insert_with(|| Response::new(ts))
    }

    fn backend(&mut self, ty: u8, body: &[u8], total: usize, ts: Ts, ctx: &mut Ctx<'_>) {
        let total = total as u64;
        if self.startup {
            if ty == b'Z' {
                self.startup = false;
            }
            return;
        }
        if matches!(ty, b'R' | b'K' | b'v') {
            return;
        }
        let asynchronous = matches!(ty, b'N' | b'A' | b'S');
        if let Some(st) = &mut self.staged_resp {
            if asynchronous || ty == b'Z' {
                if asynchronous {
                    st.wire.bytes += total;
                }
                if ty == b'Z' {
                    self.flush_staged_resp(ctx);
                    self.end_batch(ts, ctx);
                }
                return;
            }
            self.flush_staged_resp(ctx);
        }
        if ty == b'Z' {
            if self.cur.is_some() || self.front_kind() == Some(Kind::Prepare) {
                // The answer of a Prepare-only pipeline, or a response whose end was
                // lost: ReadyForQuery ends it.
                let r = self.cur.take().unwrap_or_else(|| Response::new(ts));
                self.staged_resp = Some(r);
                self.flush_staged_resp(ctx);
            }
            self.end_batch(ts, ctx);
            return;
        }
        if asynchronous {
            if self.cur.is_some() || !self.pairing.is_empty() {
                self.cur(ts).wire.bytes += total;
            }
            return;
        }
        let s = self.ex.settings.clone();
        let front = self.pairing.front();
        let front_kind = front.map(|q| q.kind);
        let r = self.cur.get_or_insert_with(|| Response::new(ts));
        r.wire.bytes += total;
        let terminal = match ty {
            b'T' => {
                let (n, names) = parser::row_description(body);
                r.num_fields = Some(n);
                if s.send_response {
                    let mut h = String::new();
                    crate::protos::csv::push_record(
                        &mut h,
                        names.iter().map(|n| n.as_str()),
                        false,
                    );
                    r.header = Some(h);
                    r.formats = Arc::new(parser::row_formats(body, MAX_FORMATS));
                }
                false
            }
            b'D' => {
                r.rows += 1;
                if s.send_response && r.lines.len() < s.max_rows {
                    // An Execute's rows have its Bind's formats (a RowDescription
                    // answering a Describe of the statement always says text).
                    let formats = match front {
                        Some(q) if q.kind == Kind::Execute => &q.formats,
                        _ => &r.formats,
                    };
                    let (line, n) = parser::render_row(body, formats, s.max_row_length);
                    r.num_fields.get_or_insert(n);
                    r.lines.push(line);
                } else if r.num_fields.is_none() {
                    // No RowDescription (a statement described at its Parse): the
                    // row's own column count.
                    let n = parser::Rd::new(body).i16().unwrap_or(0).max(0) as u64;
                    r.num_fields = Some(n);
                }
                false
            }
            b'd' => {
                r.rows += 1;
                if s.send_response && r.lines.len() < s.max_rows {
                    let line = body.strip_suffix(b"\n").unwrap_or(body);
                    let mut l = String::new();
                    text::push_capped(&mut l, line, s.max_row_length, Replace::PerSequence);
                    l.push('\n');
                    r.lines.push(l);
                }
                false
            }
            b'C' => {
                let tag = parser::Rd::new(body).cstr_or_rest();
                r.tag_rows = parser::tag_rows(tag);
                r.tag = Some(lossy(tag, Replace::PerSequence));
                true
            }
            b'E' => {
                r.error = Some(parser::error_fields(body));
                true
            }
            b'I' | b's' => true,
            b'V' => front_kind == Some(Kind::Function) || front_kind.is_none(),
            _ => false,
        };
        if terminal {
            self.staged_resp = self.cur.take();
        }
    }

    // ---------------------------------------------------------------- framing

    /// Marks what `dir` was receiving as damaged and starts looking for a boundary.
    fn lose_sync(&mut self, dir: Dir) {
        let side = &mut self.sides[dir.idx()];
        side.mode = Mode::Resync;
        side.skip.clear();
        match dir {
            Dir::ToServer => {
                if let Some(b) = &mut self.building {
                    b.loss = true;
                }
            }
            Dir::ToClient => {
                if let Some(r) = &mut self.cur {
                    r.wire.loss = true;
                }
            }
        }
    }

    fn count_skipped(&mut self, dir: Dir, n: u64) {
        match dir {
            Dir::ToServer => {
                if let Some(b) = &mut self.building {
                    b.bytes += n;
                }
            }
            Dir::ToClient => {
                if let Some(r) = &mut self.cur {
                    r.wire.bytes += n;
                }
            }
        }
    }

    /// Finds the first valid message start in `data`: `Ok(offset)`, or
    /// `Err(progress)` to return.
    fn resync(&mut self, dir: Dir, data: &[u8], off: usize) -> Result<usize, Progress> {
        let frontend = dir == Dir::ToServer;
        let end = data.len().min(off.saturating_add(RESYNC_SCAN));
        for p in off..end {
            match parser::probe(frontend, &data[p..]) {
                Probe::Valid => return Ok(p),
                Probe::Need(n) => {
                    return Err(Progress::Consumed {
                        consumed: p,
                        need: n,
                    });
                }
                Probe::Invalid => {}
            }
        }
        Err(Progress::consumed(end))
    }

    fn parse_dir(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        let mut off = 0;
        loop {
            let side = &mut self.sides[dir.idx()];
            if side.skip.active() {
                off += side.skip.pass(data.len() - off);
                if side.skip.active() {
                    return Progress::consumed(off);
                }
            }
            let rest = &data[off..];
            if rest.is_empty() {
                return Progress::consumed(off);
            }
            match side.mode {
                Mode::Start => {
                    side.mode = match dir {
                        Dir::ToServer if rest[0] == 0 => Mode::Synced,
                        Dir::ToClient if self.startup || self.enc_pending.is_some() => Mode::Synced,
                        _ => {
                            self.expect_startup = false;
                            Mode::Resync
                        }
                    };
                    continue;
                }
                Mode::Resync => {
                    let found = self.resync(dir, data, off);
                    let to = match found {
                        Ok(p) => p,
                        Err(Progress::Consumed { consumed, .. }) => consumed,
                        Err(_) => off,
                    };
                    // Bytes passed over belong to the damaged message, if any.
                    self.count_skipped(dir, (to - off) as u64);
                    match found {
                        Ok(p) => {
                            off = p;
                            self.sides[dir.idx()].mode = Mode::Synced;
                            continue;
                        }
                        Err(pr) => return pr,
                    }
                }
                Mode::Synced => {}
            }
            if dir == Dir::ToClient
                && let Some(want) = self.enc_pending
            {
                self.enc_pending = None;
                if rest[0] == want {
                    tracing::debug!(target: "pgsql", "encryption accepted by the server: no longer parsed");
                    return Progress::Stop;
                }
                if rest[0] == b'N' {
                    off += 1;
                    continue;
                }
            }
            if dir == Dir::ToServer && self.expect_startup && rest[0] == 0 {
                if rest.len() < 8 {
                    return Progress::Consumed {
                        consumed: off,
                        need: 8 - rest.len(),
                    };
                }
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if !(8..=parser::MAX_STARTUP).contains(&len) {
                    self.lose_sync(dir);
                    return Progress::Error;
                }
                if rest.len() < len {
                    return Progress::Consumed {
                        consumed: off,
                        need: len - rest.len(),
                    };
                }
                self.startup_message(&rest[4..len]);
                off += len;
                continue;
            }
            let Some((ty, total)) = parser::header(rest) else {
                return Progress::Consumed {
                    consumed: off,
                    need: 5 - rest.len(),
                };
            };
            if !parser::plausible(dir == Dir::ToServer, ty, total) {
                tracing::debug!(target: "pgsql", "{dir:?}: not a v3 message (type {ty:#04x}, {total} bytes); resynchronising");
                self.lose_sync(dir);
                return Progress::Error;
            }
            if dir == Dir::ToServer {
                self.expect_startup = false;
            }
            let (take, skip) = parser::FRAMING.split(total as u64);
            if rest.len() < take {
                return Progress::Consumed {
                    consumed: off,
                    need: take - rest.len(),
                };
            }
            // The engine held the message until it was complete: it knows when its
            // first byte arrived.
            let ts = ctx.start_ts(off);
            off += take;
            self.sides[dir.idx()].skip.start(skip);
            match dir {
                Dir::ToServer => self.frontend(ty, &rest[5..take], total, ts, ctx),
                Dir::ToClient => self.backend(ty, &rest[5..take], total, ts, ctx),
            }
        }
    }
}

impl Parser for PgsqlParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        if dir == Dir::ToClient {
            // Backend activity: the request before it is complete.
            self.flush_staged_req(ctx);
        }
        self.parse_dir(dir, data, ctx)
    }

    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        let side = &mut self.sides[dir.idx()];
        if side.mode == Mode::Synced && side.skip.lose(len) {
            // Inside a large message being skipped: still at a known position.
            match dir {
                Dir::ToServer => {
                    if let Some(r) = &mut self.staged_req {
                        r.wire.loss = true;
                    } else if let Some(b) = &mut self.building {
                        b.loss = true;
                    }
                }
                Dir::ToClient => {
                    if let Some(r) = self.cur.as_mut().or(self.staged_resp.as_mut()) {
                        r.wire.loss = true;
                    }
                }
            }
            return;
        }
        let was_start = side.mode == Mode::Start;
        self.lose_sync(dir);
        match dir {
            Dir::ToServer => {
                if self.building.is_none() && !was_start {
                    self.flush_staged_req(ctx);
                    // Request bytes were lost: whatever answers them pairs with this.
                    let req = Request {
                        wire: Wire {
                            ts: ctx.ts,
                            bytes: len,
                            loss: true,
                        },
                        kind: Kind::Lost,
                        batch: self.next_batch(),
                        method: None,
                        query: None,
                        params: None,
                        formats: Arc::default(),
                    };
                    self.pairing.request(&self.ex, req, ctx);
                } else if let Some(b) = &mut self.building {
                    b.bytes += len;
                }
            }
            Dir::ToClient => {
                self.flush_staged_resp(ctx);
                if self.cur.is_some() || !self.pairing.is_empty() {
                    let r = self.cur(ctx.ts);
                    r.wire.loss = true;
                    r.wire.bytes += len;
                }
            }
        }
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        if self
            .staged_req
            .as_ref()
            .is_some_and(|r| r.wire.ts.saturating_add(self.timeout) <= now)
        {
            self.flush_staged_req(ctx);
        }
        let due = |ts: Ts| ts.saturating_add(self.timeout) <= now;
        if self.staged_resp.as_ref().is_some_and(|r| due(r.wire.ts))
            || (self.staged_resp.is_some() && self.pairing.front().is_some_and(|r| due(r.wire.ts)))
        {
            self.flush_staged_resp(ctx);
        }
        self.pairing.expire(&self.ex, now, ctx);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.flush_staged_req(ctx);
        if let Some(b) = self.building.take() {
            // Extended-protocol messages never ended by Execute or Sync.
            let req = Request {
                wire: Wire {
                    ts: b.ts,
                    bytes: b.bytes,
                    loss: b.loss,
                },
                kind: Kind::Prepare,
                batch: self.batch,
                method: None,
                query: b.parse_query,
                params: None,
                formats: Arc::default(),
            };
            self.pairing.request(&self.ex, req, ctx);
        }
        self.flush_staged_resp(ctx);
        if let Some(mut r) = self.cur.take() {
            // The connection ended in the middle of a response.
            r.wire.loss = true;
            self.staged_resp = Some(r);
            self.flush_staged_resp(ctx);
        }
        self.pairing.drain(&self.ex, ctx);
    }
}
