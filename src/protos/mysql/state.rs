//! The per-connection MySQL state machine: the connection phase (handshake, TLS and
//! compression detection), each direction's packet framing, where a response is in its
//! structure, the prepared statements and the pairing queue, behind the engine's
//! [`Parser`] contract.

use std::sync::atomic::{AtomicBool, Ordering};

use super::fields::{add_header, end_header, render_params, rows_packet};
use super::parser::{self, Expect, MAX_PAYLOAD};
use super::transaction::{
    MAX_QUERY, MysqlExchange, MysqlSettings, Request, Response, Statement, Statements,
};
use crate::protos::framing::{Framing, Skip};
use crate::protos::pairing::{Limits, Pairing, Wire};
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::text::{self, Replace};
use crate::time::Ts;

/// Packets up to this size are handled whole; of larger ones, this prefix.
pub const SMALL: usize = 64 * 1024;
/// Packets are held whole up to [`SMALL`] bytes, else by their first [`SMALL`].
const FRAMING: Framing = Framing {
    whole: SMALL,
    prefix: SMALL,
};
/// Bytes kept back while looking for packet boundaries after a gap in rows.
pub(super) const RESYNC_KEEP: usize = 8 * 1024;
/// Column types remembered for decoding binary rows (MySQL allows 4096 columns).
const MAX_COLUMNS: usize = 4096;
/// Longest column name kept for the `response` header (aliases have up to 256
/// characters).
pub(super) const MAX_NAME: usize = 1024;

static WARNED_TLS: AtomicBool = AtomicBool::new(false);
static WARNED_COMPRESS: AtomicBool = AtomicBool::new(false);

fn warn_once(flag: &AtomicBool, what: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        tracing::warn!(target: "mysql", "{what}: such connections are not followed (counted in parser_stopped); reported once");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Picked up mid-connection (or nothing seen yet).
    Unknown,
    /// Server greeting seen; the client's handshake response comes next.
    Greeted,
    /// Authentication exchange; commands start after the server's OK.
    Auth,
    Command,
}

/// Where a response is in its structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RState {
    /// First packet of a (next) result.
    Start,
    Columns(u64),
    /// After the column definitions: EOF (classic), first row or terminator.
    AfterColumns,
    Rows,
    /// LOCAL INFILE requested; the client sends the file, then the server's OK/ERR.
    Infile,
    /// COM_STMT_PREPARE answer: parameter definitions left, then columns.
    PrepParams(u64),
    PrepParamsEof,
    PrepColumns(u64),
    PrepColumnsEof,
    FieldList,
}

#[derive(Debug)]
pub(super) struct RespState {
    pub(super) r: Response,
    pub(super) state: RState,
    pub(super) expect: Expect,
    pub(super) binary: bool,
    pub(super) prep_columns: u64,
    pub(super) columns: u64,
    pub(super) types: Vec<(u8, bool)>,
    pub(super) header: bool,
    pub(super) rows_shown: usize,
    /// The rows came past Packetbeat's 100 KB of response: no more in the text.
    pub(super) text_cut: bool,
    pub(super) next_seq: u8,
    pub(super) done: bool,
}

/// One direction's framing state.
#[derive(Debug, Default)]
struct Side {
    /// Payload bytes of a large packet still streaming past.
    skip: Skip,
    /// The last packet had the maximum length: the next one continues its payload.
    cont: bool,
    /// Looking for a message start at segment boundaries.
    resync: bool,
    /// Looking for a chain of row packets after a gap inside a result set.
    row_resync: bool,
    /// Payload length of the packet being passed.
    cur_len: usize,
}

pub struct MysqlParser {
    ex: MysqlExchange,
    pairing: Pairing<Request, Response>,
    phase: Phase,
    server_caps: u32,
    compress: bool,
    /// Whether result sets end their column list with an EOF packet: from the
    /// handshake, or learnt from the first result set seen.
    deprecate_eof: Option<bool>,
    sides: [Side; 2],
    /// The request in progress (spread over continuation packets, or whose packet is
    /// streaming past) is the pairing's open one, so an answer that comes before it
    /// has fully arrived (a packet over `max_allowed_packet`) pairs with it.
    /// `req_done`: its last packet has started.
    req_done: bool,
    resp: Option<RespState>,
    stmts: Statements,
}

enum Handled {
    Ok,
    /// The packet belongs to the next response: finish the current one and handle it
    /// again.
    Again,
    Stop,
    Error,
}

impl MysqlParser {
    pub fn new(settings: MysqlSettings, limits: Limits) -> MysqlParser {
        MysqlParser {
            ex: MysqlExchange { settings },
            pairing: Pairing::new(limits),
            phase: Phase::Unknown,
            server_caps: 0,
            compress: false,
            deprecate_eof: None,
            sides: [
                Side {
                    resync: true,
                    ..Side::default()
                },
                Side {
                    resync: true,
                    ..Side::default()
                },
            ],
            req_done: false,
            resp: None,
            stmts: Statements::default(),
        }
    }

    /// Memory held by the parser's own state (for bounds tests).
    pub fn retained(&self) -> usize {
        let resp = self.resp.as_ref().map_or(0, |r| {
            r.types.capacity() * 2
                + r.r.text.as_ref().map_or(0, |t| t.capacity())
                + r.r.path.capacity()
        });
        resp + self
            .pairing
            .opened()
            .map_or(0, |r| r.query.as_ref().map_or(0, |q| q.capacity()))
            + self.pairing.len() * std::mem::size_of::<Request>()
    }

    pub fn statements(&self) -> usize {
        self.stmts.len()
    }

    // ------------------------------------------------------------ requests

    fn client_packet(
        &mut self,
        p: &[u8],
        len: usize,
        seq: u8,
        ts: Ts,
        ctx: &mut Ctx<'_>,
    ) -> Handled {
        let wire = 4 + len as u64;
        if self.sides[0].cont {
            // Continuation of a long payload.
            if let Some(r) = self.pairing.opened_mut() {
                r.wire.bytes += wire;
                if let Some(q) = &mut r.query
                    && matches!(r.cmd, parser::COM_QUERY | parser::COM_STMT_PREPARE)
                    && q.len() < MAX_QUERY
                {
                    text::push_capped(q, p, MAX_QUERY, Replace::PerByte);
                }
            }
            if len < MAX_PAYLOAD {
                self.req_done = true;
            }
            return Handled::Ok;
        }
        match self.phase {
            Phase::Greeted => {
                if seq == 1 {
                    let caps = parser::client_caps(p).unwrap_or(0);
                    if caps & parser::CLIENT_SSL != 0 {
                        warn_once(&WARNED_TLS, "MySQL connection switching to TLS");
                        return Handled::Stop;
                    }
                    let both = caps & self.server_caps;
                    self.compress = both & parser::CLIENT_COMPRESS != 0;
                    self.deprecate_eof = Some(both & parser::CLIENT_DEPRECATE_EOF != 0);
                    self.phase = Phase::Auth;
                }
                return Handled::Ok;
            }
            Phase::Auth => return Handled::Ok,
            Phase::Unknown | Phase::Command => {}
        }
        if seq != 0 {
            // LOCAL INFILE data, or the middle of something not followed.
            return Handled::Ok;
        }
        let Some(&cmd) = p.first() else {
            return Handled::Error;
        };
        let Some((name, expect)) = parser::command(cmd) else {
            return Handled::Error;
        };
        self.phase = Phase::Command;
        let stmt_id = || {
            p.get(1..5)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        // As in Packetbeat, only statements are transactions: COM_QUERY and the
        // prepared statements' PREPARE and EXECUTE. Every other command is followed
        // only so that its answer is consumed in order.
        let mut silent = false;
        let mut method = String::new();
        let mut query = None;
        let mut params = None;
        match cmd {
            parser::COM_QUERY | parser::COM_STMT_PREPARE => {
                let body = &p[1..];
                let q = text::lossy_capped(body, MAX_QUERY, Replace::PerByte);
                method = if cmd == parser::COM_QUERY {
                    parser::first_word(&q)
                } else {
                    "PREPARE".to_string()
                };
                query = Some(q);
            }
            parser::COM_STMT_EXECUTE => {
                method = "EXECUTE".to_string();
                let ttl = self.ex.settings.statement_timeout;
                if let Some(st) = self.stmts.get_mut(stmt_id(), ctx.ts, ttl) {
                    method = parser::first_word(&st.query);
                    params = render_params(p, st);
                    query = Some(st.query.clone());
                }
            }
            parser::COM_STMT_CLOSE => {
                self.stmts.remove(stmt_id());
                silent = true;
            }
            parser::COM_STMT_FETCH | parser::COM_STMT_RESET => {
                // A use of the statement: it stays cached.
                let ttl = self.ex.settings.statement_timeout;
                let _ = self.stmts.get_mut(stmt_id(), ctx.ts, ttl);
                silent = true;
            }
            _ => silent = true,
        }
        if silent {
            ctx.counters.untracked_commands += 1;
            tracing::trace!(target: "mysql", "COM_{name}: not a transaction");
        }
        match expect {
            Expect::Nothing => {
                // Nothing to publish, also when the payload continues.
                self.push_request(ctx);
                return Handled::Ok;
            }
            Expect::Auth => {
                self.phase = Phase::Auth;
                return Handled::Ok;
            }
            Expect::Stream => {
                tracing::debug!(target: "mysql", "replication stream requested: no longer followed");
                return Handled::Stop;
            }
            _ => {}
        }
        let req = Request {
            wire: Wire {
                ts,
                bytes: wire,
                loss: false,
            },
            cmd,
            expect,
            silent,
            method,
            query,
            params,
        };
        self.pairing.open(&self.ex, req, ctx);
        self.req_done = len < MAX_PAYLOAD;
        Handled::Ok
    }

    /// The request in progress ended (or is published as it is).
    fn push_request(&mut self, ctx: &mut Ctx<'_>) {
        self.req_done = false;
        self.pairing.complete(&self.ex, ctx);
    }

    // ------------------------------------------------------------ responses

    fn new_resp(&self, ts: Ts) -> RespState {
        let (expect, binary, silent) = match self.pairing.front() {
            Some(r) => (
                r.expect,
                matches!(r.cmd, parser::COM_STMT_EXECUTE | parser::COM_STMT_FETCH),
                r.silent,
            ),
            None => (Expect::Generic, false, false),
        };
        let settings = &self.ex.settings;
        RespState {
            r: Response {
                wire: Wire::at(ts),
                text: (settings.send_response && !silent).then(String::new),
                ..Response::default()
            },
            state: RState::Start,
            expect,
            binary,
            prep_columns: 0,
            columns: 0,
            types: Vec::new(),
            header: false,
            rows_shown: 0,
            text_cut: false,
            next_seq: 1,
            done: false,
        }
    }

    fn server_packet(&mut self, p: &[u8], len: usize, seq: u8, ts: Ts) -> Handled {
        let wire = 4 + len as u64;
        if self.sides[1].cont {
            if let Some(rs) = &mut self.resp {
                rs.r.wire.bytes += wire;
                rs.next_seq = seq.wrapping_add(1);
            }
            return Handled::Ok;
        }
        let first = p.first().copied().unwrap_or(0);
        match self.phase {
            Phase::Unknown if seq == 0 && first == 10 && self.resp.is_none() => {
                if let Some(caps) = parser::greeting_caps(p) {
                    self.server_caps = caps;
                    self.phase = Phase::Greeted;
                    self.sides[0].resync = false;
                    self.sides[1].resync = false;
                    return Handled::Ok;
                }
            }
            Phase::Greeted => return Handled::Ok,
            Phase::Auth => {
                if first == 0x00 {
                    if self.compress {
                        warn_once(&WARNED_COMPRESS, "MySQL compressed protocol");
                        return Handled::Stop;
                    }
                    self.phase = Phase::Command;
                }
                return Handled::Ok;
            }
            _ => {}
        }
        if self.resp.is_none() {
            self.resp = Some(self.new_resp(ts));
        }
        let settings = self.ex.settings.clone();
        let deprecate = self.deprecate_eof;
        let Some(rs) = self.resp.as_mut() else {
            return Handled::Ok;
        };
        let is_eof = first == 0xFE && len < 9 && seq == rs.next_seq;
        if rs.state == RState::PrepColumnsEof && !is_eof {
            // No EOF after the definitions: this packet answers the next command.
            return Handled::Again;
        }
        if rs.state == RState::PrepParamsEof && !is_eof {
            rs.state = RState::PrepColumns(rs.prep_columns);
        }
        rs.r.wire.bytes += wire;
        rs.next_seq = seq.wrapping_add(1);
        let terminator = first == 0xFE && len < MAX_PAYLOAD;
        match rs.state {
            RState::Start => match rs.expect {
                Expect::Single => rs.done = true,
                Expect::Prepare => {
                    if first == 0xFF {
                        rs.r.error = Some(parser::parse_err(p));
                        rs.done = true;
                    } else if first == 0x00 && p.len() >= 9 {
                        let id = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
                        let cols = u16::from_le_bytes([p[5], p[6]]);
                        let params = u16::from_le_bytes([p[7], p[8]]);
                        rs.r.prepared = Some((id, params));
                        rs.r.num_fields = cols as u64;
                        rs.prep_columns = cols as u64;
                        rs.state = RState::PrepParams(params as u64);
                        advance_prepare(rs, deprecate);
                    } else {
                        return Handled::Error;
                    }
                }
                Expect::FieldList => {
                    rs.state = RState::FieldList;
                    return self.server_field_list(p, len);
                }
                Expect::Rows => {
                    rs.state = RState::Rows;
                    rows_packet(rs, p, len, &settings);
                }
                _ => {
                    if first == 0x00 && len >= 7 {
                        let ok = parser::parse_ok(p).unwrap_or_default();
                        rs.r.affected_rows = rs.r.affected_rows.saturating_add(ok.affected_rows);
                        if ok.insert_id != 0 {
                            rs.r.insert_id = ok.insert_id;
                        }
                        rs.done = ok.status & parser::SERVER_MORE_RESULTS_EXISTS == 0;
                    } else if first == 0xFF {
                        error_packet(rs, p);
                    } else if terminator {
                        let status = if len <= 5 {
                            parser::eof_status(p)
                        } else {
                            parser::parse_ok(p).unwrap_or_default().status
                        };
                        rs.done = status & parser::SERVER_MORE_RESULTS_EXISTS == 0;
                    } else if first == 0xFB {
                        rs.state = RState::Infile;
                    } else {
                        let mut i = 0;
                        // MariaDB with metadata caching adds a "metadata follows" byte.
                        match parser::lenenc_int(p, &mut i) {
                            Some(n) if n > 0 && (i == len || i + 1 == len) => {
                                if rs.r.num_fields == 0 {
                                    rs.r.num_fields = n;
                                }
                                rs.columns = n;
                                rs.types.clear();
                                rs.header = false;
                                let cached = i + 1 == len && p.get(i) == Some(&0);
                                rs.state = if cached {
                                    RState::AfterColumns
                                } else {
                                    RState::Columns(n)
                                };
                            }
                            _ => return Handled::Error,
                        }
                    }
                }
            },
            RState::Columns(left) => {
                if terminator {
                    end_header(rs);
                    rs.state = RState::Rows;
                } else {
                    if let Some(c) = parser::parse_column(p) {
                        // Packetbeat's `path`: schema and table (the name used in
                        // the statement, an alias included) of every column.
                        rs.r.add_path(c.schema, c.table);
                        if rs.types.len() < MAX_COLUMNS {
                            rs.types.push((c.ty, c.flags & parser::UNSIGNED_FLAG != 0));
                        }
                        if let Some(t) = &mut rs.r.text {
                            add_header(t, &mut rs.header, c.name);
                        }
                    }
                    rs.state = if left <= 1 {
                        end_header(rs);
                        RState::AfterColumns
                    } else {
                        RState::Columns(left - 1)
                    };
                }
            }
            RState::AfterColumns => {
                if first == 0xFE && len <= 5 {
                    self.deprecate_eof.get_or_insert(false);
                    if parser::eof_status(p) & parser::SERVER_STATUS_CURSOR_EXISTS != 0 {
                        rs.done = true;
                    } else {
                        rs.state = RState::Rows;
                    }
                } else {
                    self.deprecate_eof.get_or_insert(true);
                    rs.state = RState::Rows;
                    rows_packet(rs, p, len, &settings);
                }
            }
            RState::Rows => rows_packet(rs, p, len, &settings),
            RState::Infile => {
                if first == 0xFF {
                    error_packet(rs, p);
                } else {
                    let ok = parser::parse_ok(p).unwrap_or_default();
                    rs.r.affected_rows = rs.r.affected_rows.saturating_add(ok.affected_rows);
                    if ok.insert_id != 0 {
                        rs.r.insert_id = ok.insert_id;
                    }
                    if ok.status & parser::SERVER_MORE_RESULTS_EXISTS != 0 {
                        rs.state = RState::Start;
                    } else {
                        rs.done = true;
                    }
                }
            }
            RState::PrepParams(left) => {
                rs.state = RState::PrepParams(left.saturating_sub(1));
                advance_prepare(rs, deprecate);
            }
            RState::PrepColumns(left) => {
                // The result's columns; `path` comes with the executed result.
                rs.state = RState::PrepColumns(left.saturating_sub(1));
                advance_prepare(rs, deprecate);
            }
            RState::PrepParamsEof => {
                rs.state = RState::PrepColumns(rs.prep_columns);
                advance_prepare(rs, deprecate);
            }
            RState::PrepColumnsEof => rs.done = true,
            RState::FieldList => return self.server_field_list(p, len),
        }
        Handled::Ok
    }

    fn server_field_list(&mut self, p: &[u8], len: usize) -> Handled {
        let Some(rs) = self.resp.as_mut() else {
            return Handled::Ok;
        };
        match p.first() {
            Some(0xFF) => {
                error_packet(rs, p);
            }
            Some(0xFE) if len < 9 => rs.done = true,
            _ => {
                rs.r.num_fields += 1;
            }
        }
        Handled::Ok
    }

    fn finish_response(&mut self, ctx: &mut Ctx<'_>) {
        let Some(rs) = self.resp.take() else {
            return;
        };
        let r = rs.r;
        if let Some((id, num_params)) = r.prepared
            && let Some(q) = self.pairing.front().and_then(|q| q.query.as_deref())
        {
            let q = parser::trim_query(q).to_string();
            self.stmts.insert(
                id,
                Statement {
                    query: q,
                    num_params,
                    types: Vec::new(),
                    used: ctx.ts,
                },
            );
        }
        self.pairing.response(&self.ex, r, ctx);
    }

    fn handle(
        &mut self,
        dir: Dir,
        p: &[u8],
        len: usize,
        seq: u8,
        ts: Ts,
        ctx: &mut Ctx<'_>,
    ) -> Handled {
        match dir {
            Dir::ToServer => self.client_packet(p, len, seq, ts, ctx),
            Dir::ToClient => self.server_packet(p, len, seq, ts),
        }
    }

    /// Completes what finished with the packet just passed.
    fn after_packet(&mut self, dir: Dir, len: usize, ctx: &mut Ctx<'_>) {
        self.sides[dir.idx()].cont = len == MAX_PAYLOAD;
        match dir {
            Dir::ToServer => {
                if self.req_done && !self.sides[0].cont {
                    self.push_request(ctx);
                }
            }
            Dir::ToClient => {
                if !self.sides[1].cont && self.resp.as_ref().is_some_and(|r| r.done) {
                    self.finish_response(ctx);
                }
            }
        }
    }

    /// Accounts for `n` bytes outside any parsed packet (lost or skipped while
    /// resynchronising) in the message in progress. Bytes of a packet whose header
    /// was read are counted with the header already.
    fn add_skipped(&mut self, dir: Dir, n: usize, loss: bool) {
        match dir {
            Dir::ToServer => {
                if let Some(r) = self.pairing.opened_mut() {
                    r.wire.bytes += n as u64;
                    r.wire.loss |= loss;
                }
            }
            Dir::ToClient => {
                if let Some(r) = &mut self.resp {
                    r.r.wire.bytes += n as u64;
                    r.r.wire.loss |= loss;
                }
            }
        }
    }

    fn parse_inner(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        let mut off = 0;
        loop {
            let avail = data.len() - off;
            let d = &data[off..];
            let side = &mut self.sides[dir.idx()];
            if side.skip.active() {
                let n = side.skip.pass(avail);
                if n == 0 {
                    return Progress::consumed(off);
                }
                off += n;
                if !side.skip.active() {
                    let len = self.sides[dir.idx()].cur_len;
                    self.after_packet(dir, len, ctx);
                }
                continue;
            }
            if avail == 0 {
                return Progress::consumed(off);
            }
            if side.row_resync {
                match parser::find_row_chain(d) {
                    Some(at) => {
                        side.row_resync = false;
                        off += at;
                        self.add_skipped(dir, at, true);
                        continue;
                    }
                    None => {
                        let drop = avail.saturating_sub(RESYNC_KEEP);
                        self.add_skipped(dir, drop, true);
                        return Progress::consumed(off + drop);
                    }
                }
            }
            if side.resync && !side.cont {
                let greeting = dir == Dir::ToClient
                    && self.phase == Phase::Unknown
                    && d.get(3) == Some(&0)
                    && d.get(4) == Some(&10);
                if avail < 4 + 1 {
                    return Progress::Consumed {
                        consumed: off,
                        need: 5 - avail,
                    };
                }
                if parser::foreign(d) {
                    warn_once(
                        &WARNED_COMPRESS,
                        "MySQL compressed protocol or TLS seen mid-connection",
                    );
                    return Progress::Stop;
                }
                if !greeting && !parser::plausible_start(dir, d) {
                    // Look again at the start of the next segment.
                    return Progress::all(data);
                }
                self.sides[dir.idx()].resync = false;
            }
            let side = &mut self.sides[dir.idx()];
            let Some((len, seq)) = parser::header(d) else {
                return Progress::Consumed {
                    consumed: off,
                    need: 4 - avail,
                };
            };
            let (take, skip) = FRAMING.split(len as u64);
            if avail < 4 + take {
                return Progress::Consumed {
                    consumed: off,
                    need: 4 + take - avail,
                };
            }
            // The engine held the packet until its first `take` bytes arrived: it
            // knows when the first one did.
            let ts = ctx.start_ts(off);
            side.skip.start(skip);
            side.cur_len = len;
            let p = &d[4..4 + take];
            let mut handled = self.handle(dir, p, len, seq, ts, ctx);
            if matches!(handled, Handled::Again) {
                self.finish_response(ctx);
                handled = self.handle(dir, p, len, seq, ts, ctx);
            }
            match handled {
                Handled::Ok | Handled::Again => {}
                Handled::Stop => return Progress::Stop,
                Handled::Error => {
                    tracing::debug!(target: "mysql", "{dir:?}: unexpected packet; resynchronising");
                    self.reset_dir(dir, ctx);
                    return Progress::Error;
                }
            }
            off += 4 + take;
            if take == len {
                self.after_packet(dir, len, ctx);
            }
        }
    }

    /// Forgets the state of `dir` after unparseable data: a response in progress is
    /// published with the loss note, a partial request too.
    fn reset_dir(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        let side = &mut self.sides[dir.idx()];
        side.skip.clear();
        side.cont = false;
        side.row_resync = false;
        side.resync = true;
        match dir {
            Dir::ToServer => {
                if let Some(r) = self.pairing.opened_mut() {
                    r.wire.loss = true;
                    self.push_request(ctx);
                }
            }
            Dir::ToClient => {
                if let Some(r) = &mut self.resp {
                    if r.r.wire.bytes == 0 {
                        self.resp = None;
                    } else {
                        r.r.wire.loss = true;
                        self.finish_response(ctx);
                    }
                }
            }
        }
    }
}

/// Moves a COM_STMT_PREPARE answer past finished definition lists.
fn advance_prepare(rs: &mut RespState, deprecate: Option<bool>) {
    let params = rs.r.prepared.map_or(0, |p| p.1) as u64;
    loop {
        match rs.state {
            RState::PrepParams(0) => {
                if params > 0 && deprecate != Some(true) {
                    rs.state = RState::PrepParamsEof;
                    return;
                }
                rs.state = RState::PrepColumns(rs.prep_columns);
            }
            RState::PrepColumns(0) => {
                if rs.prep_columns > 0 && deprecate != Some(true) {
                    rs.state = RState::PrepColumnsEof;
                } else {
                    rs.done = true;
                }
                return;
            }
            _ => return,
        }
    }
}

/// Applies an ERR packet (MariaDB progress reports, code 0xFFFF, are not errors).
pub(super) fn error_packet(rs: &mut RespState, p: &[u8]) {
    let (code, msg) = parser::parse_err(p);
    if code == 0xFFFF {
        return;
    }
    rs.r.error = Some((code, msg));
    rs.done = true;
}
impl Parser for MysqlParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        self.parse_inner(dir, data, ctx)
    }

    fn gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        let side = &mut self.sides[dir.idx()];
        // `len` already includes the bytes the engine held unconsumed.
        let lost = len;
        if side.skip.active() && side.skip.lose(lost) {
            // The hole is inside a packet whose end is known: still in step.
            let done = !side.skip.active();
            let cur = side.cur_len;
            self.add_skipped(dir, 0, true);
            if done {
                self.after_packet(dir, cur, ctx);
            }
            return;
        }
        // The rest of the packet being passed was counted with its header.
        let lost = usize::try_from(lost)
            .unwrap_or(usize::MAX)
            .saturating_sub(usize::try_from(side.skip.remaining()).unwrap_or(usize::MAX));
        side.skip.clear();
        side.cont = false;
        match dir {
            Dir::ToServer => {
                side.resync = true;
                if self.pairing.opened().is_some() {
                    self.add_skipped(dir, lost, true);
                    self.push_request(ctx);
                }
            }
            Dir::ToClient => {
                let in_rows = self.resp.as_ref().is_some_and(|r| {
                    !r.done
                        && matches!(
                            r.state,
                            RState::Rows | RState::AfterColumns | RState::Columns(_)
                        )
                });
                if in_rows {
                    // Rows were lost: count on from the next row packets found.
                    self.add_skipped(dir, lost, true);
                    if let Some(rs) = &mut self.resp {
                        rs.state = RState::Rows;
                    }
                    self.sides[1].row_resync = true;
                } else if self.resp.is_some() {
                    side.resync = true;
                    self.add_skipped(dir, lost, true);
                    self.finish_response(ctx);
                } else if self.phase == Phase::Command && !self.pairing.is_empty() {
                    // The answer to the oldest request started in the hole.
                    side.resync = true;
                    let mut rs = self.new_resp(ctx.ts);
                    rs.r.wire.loss = true;
                    rs.r.wire.bytes = lost as u64;
                    self.resp = Some(rs);
                    self.finish_response(ctx);
                } else {
                    side.resync = true;
                }
            }
        }
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        self.pairing.expire(&self.ex, now, ctx);
        self.stmts.expire(now, self.ex.settings.statement_timeout);
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        let done = self.req_done;
        if let Some(r) = self.pairing.opened_mut() {
            if !done {
                r.wire.loss = true;
            }
            self.push_request(ctx);
        }
        if let Some(rs) = &mut self.resp {
            if rs.r.wire.bytes == 0 {
                self.resp = None;
            } else {
                if !matches!(rs.state, RState::PrepColumnsEof | RState::PrepParamsEof) && !rs.done {
                    rs.r.wire.loss = true;
                }
                self.finish_response(ctx);
            }
        }
        self.pairing.drain(&self.ex, ctx);
    }
}
