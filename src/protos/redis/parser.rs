//! RESP2 / RESP3 on the wire, parsed as a stream.
//!
//! [`Reader`] is a byte-stream state machine for one direction. It consumes every byte
//! it is given (nothing is ever left for the engine to buffer, so partial data is
//! never rescanned) and keeps only bounded state:
//!
//! - bulk payloads are counted as they stream; only a prefix reaches the rendering;
//! - the rendering of a reply and the command line of a request are capped at
//!   [`MAX_TEXT`] bytes (then `...`), captured arguments at [`MAX_ARG`] bytes;
//! - nesting is tracked without recursion: the first [`MAX_DEPTH`] levels keep their
//!   element counts for the rendering, deeper levels are folded into one counter of
//!   pending elements, so a hostile `*1\r\n*1\r\n...` of any depth costs O(1) memory.
//!
//! Requests are what a Redis server accepts: a multibulk (`*N` then N bulk strings) or
//! an inline command (a text line). Replies may be any RESP2/RESP3 type: simple string,
//! error, integer, bulk, null, array, map, set, double, boolean, big number, verbatim
//! string, blob error, attribute (metadata before a reply, left out of the rendering)
//! and push (out-of-band data, flagged on the message).

use crate::text::{Capped, ELLIPSIS};
use crate::time::Ts;

/// Cap of a reply's rendering and of a request's command line.
pub const MAX_TEXT: usize = 1024;
/// Cap of one captured argument (command name, key, ...).
pub const MAX_ARG: usize = 256;
/// Top-level elements whose text is captured separately.
pub const CAPTURED_ARGS: usize = 4;
/// Nesting levels tracked with their own counts.
pub const MAX_DEPTH: usize = 32;
/// Longest inline command Redis accepts (`PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE: u64 = 64 * 1024;
/// Longest simple-string / error / number line accepted in a reply.
pub const MAX_LINE: u64 = 1024 * 1024;
/// Longest type line (`$123\r\n`, `*4\r\n`, `#t\r\n`).
const MAX_HEADER: usize = 32;
/// Largest element count of an aggregate.
const MAX_AGGREGATE: i64 = 1 << 32;
/// One complete request or reply.
#[derive(Debug, Default)]
pub struct Message {
    /// Timestamp of the packet that carried the first byte.
    pub ts: Ts,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Reply rendering, or the request's command line.
    pub text: Capped,
    /// The first [`CAPTURED_ARGS`] top-level elements (request arguments; first
    /// elements of a reply array, for pub/sub recognition).
    pub args: Vec<Capped>,
    /// Number of top-level elements (arguments of a request).
    pub nargs: u64,
    /// Type byte of the reply (`+`, `*`, `>`, ...), after any attribute.
    pub kind: u8,
    /// An error reply (`-` or `!`).
    pub error: bool,
    /// Bytes were lost inside this message (gap).
    pub loss: bool,
}

impl Message {
    /// Argument `i` as bytes (empty when absent).
    pub fn arg(&self, i: usize) -> &[u8] {
        self.args.get(i).map(|a| a.as_bytes()).unwrap_or(&[])
    }

    /// Approximate heap and inline size.
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<Message>()
            + self.text.capacity()
            + self
                .args
                .iter()
                .map(|a| a.capacity() + std::mem::size_of::<Capped>())
                .sum::<usize>()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agg {
    Array,
    Map,
    Set,
    Push,
    Attr,
}

impl Agg {
    fn of(b: u8) -> Option<Agg> {
        Some(match b {
            b'*' => Agg::Array,
            b'%' => Agg::Map,
            b'~' => Agg::Set,
            b'>' => Agg::Push,
            b'|' => Agg::Attr,
            _ => return None,
        })
    }

    fn open(self) -> &'static [u8] {
        match self {
            Agg::Map => b"{",
            Agg::Attr => b"",
            _ => b"[",
        }
    }

    fn close(self) -> &'static [u8] {
        match self {
            Agg::Map => b"}",
            Agg::Attr => b"",
            _ => b"]",
        }
    }

    /// Elements per announced count (maps and attributes hold pairs).
    fn per_entry(self) -> u64 {
        match self {
            Agg::Map | Agg::Attr => 2,
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Level {
    kind: Agg,
    total: u64,
    left: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Expecting the type byte of an element.
    Start,
    /// Reading a short type line (`$n`, `*n`, `#t`, `_`) into `header`.
    Header(u8),
    /// Streaming a text line (`+`, `-`, `:`, `,`, `(`) into the rendering.
    Line,
    /// Bulk payload: bytes left, bytes still to hide (the `txt:` of a verbatim string).
    Bulk { left: u64, hide: u8 },
    /// The CRLF after a bulk payload: bytes left.
    BulkEnd(u8),
    /// An inline command line.
    Inline,
    /// Skipping to the next line after unparseable data or a gap.
    Resync,
}

/// What [`Reader::step`] stopped at.
#[derive(Debug)]
pub enum Event {
    /// All bytes were consumed; the message continues in later data.
    Need,
    /// A message is complete.
    Done(Message),
    /// Unparseable data: the message in progress is dropped and the reader skips to
    /// the next plausible message.
    Bad,
}

/// The stream state of one direction.
#[derive(Debug)]
pub struct Reader {
    requests: bool,
    st: St,
    /// Bytes of the current line (`Line`, `Inline`), to bound it.
    line_len: u64,
    /// A `\r` ended the previous chunk of a streamed line.
    pending_cr: bool,
    header: [u8; MAX_HEADER],
    header_len: usize,
    stack: Vec<Level>,
    /// Pending elements of the levels deeper than [`MAX_DEPTH`].
    deep: u64,
    /// The untracked subtree is an attribute (does not count as an element).
    deep_attr: bool,
    /// Attribute levels on the stack (their content is not rendered).
    attrs: usize,
    /// Captured argument the current scalar writes into.
    cur_arg: Option<usize>,
    /// Inside an inline command: currently within a token.
    in_token: bool,
    /// Looking for a message start after an error or a gap: errors are not
    /// reported again, and implausible data is skipped line by line.
    resyncing: bool,
    msg: Option<Message>,
}

impl Reader {
    /// A reader of requests (`requests`) or of replies.
    pub fn new(requests: bool) -> Reader {
        Reader {
            requests,
            st: St::Start,
            line_len: 0,
            pending_cr: false,
            header: [0; MAX_HEADER],
            header_len: 0,
            stack: Vec::new(),
            deep: 0,
            deep_attr: false,
            attrs: 0,
            cur_arg: None,
            in_token: false,
            resyncing: false,
            msg: None,
        }
    }

    /// A message has started and is not complete yet.
    pub fn in_message(&self) -> bool {
        self.msg.is_some()
    }

    /// After a gap: hands back the message in progress (marked with the loss) and
    /// looks for the next message start, first at the very next byte.
    pub fn gap(&mut self, lost: u64) -> Option<Message> {
        let mut m = self.msg.take();
        if let Some(m) = &mut m {
            m.loss = true;
            m.bytes = m.bytes.saturating_add(lost);
        }
        self.reset();
        self.resyncing = true;
        m
    }

    /// Connection end: the message in progress, as far as it got.
    pub fn take_partial(&mut self) -> Option<Message> {
        let m = self.msg.take();
        self.reset();
        m
    }

    fn reset(&mut self) {
        self.st = St::Start;
        self.line_len = 0;
        self.pending_cr = false;
        self.header_len = 0;
        self.stack.clear();
        self.deep = 0;
        self.deep_attr = false;
        self.attrs = 0;
        self.cur_arg = None;
        self.in_token = false;
        self.msg = None;
    }

    /// Unparseable data: drops the message in progress and skips to the next line.
    /// Returns whether this is a new error (not one found while resynchronising).
    fn fail(&mut self) -> bool {
        let new = !self.resyncing;
        self.reset();
        self.resyncing = true;
        self.st = St::Resync;
        new
    }

    fn muted(&self) -> bool {
        self.attrs > 0 || self.deep > 0
    }

    fn msg(&mut self) -> &mut Message {
        self.msg.get_or_insert_with(Message::default)
    }

    /// Text of the current element: into the rendering and its captured argument.
    fn emit(&mut self, b: &[u8]) {
        if self.muted() {
            return;
        }
        let arg = self.cur_arg;
        let Some(m) = &mut self.msg else {
            return;
        };
        m.text.push(b, MAX_TEXT);
        if let Some(i) = arg
            && let Some(a) = m.args.get_mut(i)
        {
            a.push(b, MAX_ARG);
        }
    }

    /// Structure (brackets, separators): into the rendering only.
    fn emit_struct(&mut self, b: &[u8]) {
        if self.muted() {
            return;
        }
        if let Some(m) = &mut self.msg {
            m.text.push(b, MAX_TEXT);
        }
    }

    /// Separator before an element and, for a top-level scalar element, the slot
    /// its text is captured into.
    fn begin_element(&mut self, scalar: bool) {
        self.cur_arg = None;
        if self.muted() {
            return;
        }
        let Some(top) = self.stack.last().copied() else {
            return;
        };
        let idx = top.total - top.left;
        let top_level = self.stack.len() == 1;
        if idx > 0 {
            let sep: &[u8] = if top_level && self.requests {
                b" "
            } else if top.kind == Agg::Map {
                if idx % 2 == 1 { b": " } else { b", " }
            } else {
                b", "
            };
            self.emit_struct(sep);
        }
        if top_level && let Some(m) = &mut self.msg {
            m.nargs += 1;
            if scalar && (idx as usize) < CAPTURED_ARGS && m.args.len() == idx as usize {
                m.args.push(Capped::default());
                self.cur_arg = Some(idx as usize);
            }
        }
    }

    /// An element is complete. Returns whether the whole message is.
    fn value_done(&mut self) -> bool {
        self.cur_arg = None;
        if self.deep > 0 {
            self.deep -= 1;
            if self.deep > 0 {
                return false;
            }
            if std::mem::take(&mut self.deep_attr) {
                return false;
            }
        }
        loop {
            let Some(top) = self.stack.last_mut() else {
                return true;
            };
            top.left -= 1;
            if top.left > 0 {
                return false;
            }
            let kind = top.kind;
            self.stack.pop();
            if kind == Agg::Attr {
                self.attrs -= 1;
                // The value the attribute describes is still to come.
                return false;
            }
            if !(self.requests && self.stack.is_empty()) {
                self.emit_struct(kind.close());
            }
        }
    }

    /// Opens an aggregate of `n` announced entries. Returns whether the message is
    /// complete (an empty aggregate can be the whole reply).
    fn open(&mut self, kind: Agg, n: u64) -> bool {
        let elems = n.saturating_mul(kind.per_entry());
        if self.deep > 0 {
            if kind == Agg::Attr {
                self.deep = self.deep.saturating_add(elems);
                return false;
            }
            if elems == 0 {
                return self.value_done();
            }
            self.deep = self.deep.saturating_add(elems - 1);
            return false;
        }
        if elems == 0 {
            if kind == Agg::Attr {
                return false;
            }
            self.emit_struct(kind.open());
            self.emit_struct(kind.close());
            return self.value_done();
        }
        if self.stack.len() >= MAX_DEPTH {
            self.emit_struct(ELLIPSIS.as_bytes());
            if let Some(m) = &mut self.msg {
                m.text.mark_cut();
            }
            self.deep = elems;
            self.deep_attr = kind == Agg::Attr;
            return false;
        }
        if !(self.requests && self.stack.is_empty()) {
            self.emit_struct(kind.open());
        }
        if kind == Agg::Attr {
            self.attrs += 1;
        }
        self.stack.push(Level {
            kind,
            total: elems,
            left: elems,
        });
        false
    }

    /// Whether a byte can start an element.
    fn type_byte(&self, b: u8, top: bool) -> bool {
        if self.requests {
            return if top { true } else { b == b'$' };
        }
        matches!(
            b,
            b'+' | b'-'
                | b':'
                | b'$'
                | b'*'
                | b'_'
                | b','
                | b'#'
                | b'('
                | b'='
                | b'!'
                | b'%'
                | b'~'
                | b'>'
                | b'|'
        )
    }

    /// Consumes bytes of `data` until a message completes, the data ends, or the data
    /// is found unparseable. Returns the bytes consumed and what happened; `ts` is the
    /// time of the packet carrying `data`.
    pub fn step(&mut self, data: &[u8], ts: Ts) -> (usize, Event) {
        let mut off = 0;
        while off < data.len() {
            let before = off;
            let r = self.advance(data, &mut off, ts);
            let used = (off - before) as u64;
            if let Some(m) = &mut self.msg {
                m.bytes = m.bytes.saturating_add(used);
            }
            match r {
                Adv::More => {}
                Adv::Done => {
                    self.resyncing = false;
                    let m = self.msg.take().unwrap_or_default();
                    self.reset();
                    return (off, Event::Done(m));
                }
                Adv::Bad => {
                    if self.fail() {
                        return (off, Event::Bad);
                    }
                }
            }
        }
        (off, Event::Need)
    }

    fn start_message(&mut self, ts: Ts) {
        if self.msg.is_none() {
            self.msg = Some(Message {
                ts,
                ..Default::default()
            });
        }
    }

    fn advance(&mut self, data: &[u8], off: &mut usize, ts: Ts) -> Adv {
        match self.st {
            St::Resync => {
                match memchr::memchr(b'\n', &data[*off..]) {
                    Some(i) => {
                        *off += i + 1;
                        self.st = St::Start;
                    }
                    None => *off = data.len(),
                }
                Adv::More
            }
            St::Start => {
                if self.skimming() {
                    self.fold();
                }
                if self.deep > 0 && !self.requests {
                    if let Some(r) = self.skim(data, off) {
                        return r;
                    }
                    if *off == data.len() {
                        return Adv::More;
                    }
                }
                let b = data[*off];
                let top = self.msg.is_none();
                if top && self.requests && b != b'*' {
                    if self.resyncing {
                        // After a gap only a multibulk is a plausible request start.
                        return Adv::Bad;
                    }
                    self.start_message(ts);
                    self.st = St::Inline;
                    self.line_len = 0;
                    self.in_token = false;
                    return Adv::More;
                }
                if !self.type_byte(b, top) {
                    return Adv::Bad;
                }
                *off += 1;
                self.start_message(ts);
                if self.at_top() && b != b'|' {
                    self.msg().kind = b;
                }
                match b {
                    b'+' | b'-' | b':' | b',' | b'(' => {
                        if b == b'-' && self.at_top() {
                            self.msg().error = true;
                        }
                        self.begin_element(true);
                        self.line_len = 0;
                        self.pending_cr = false;
                        self.st = St::Line;
                    }
                    _ => {
                        self.header_len = 0;
                        self.st = St::Header(b);
                    }
                }
                Adv::More
            }
            St::Header(ty) => {
                let rest = &data[*off..];
                let (chunk, done) = match memchr::memchr(b'\n', rest) {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                if done && self.header_len == 0 && chunk.len() <= MAX_HEADER {
                    // The whole type line is here (the usual case): read it in place,
                    // and the bulk payload after it as far as the data goes.
                    *off += chunk.len() + 1;
                    let line = chunk.strip_suffix(b"\r").unwrap_or(chunk);
                    let r = self.on_header(ty, line);
                    if matches!(r, Adv::More) && matches!(self.st, St::Bulk { .. }) {
                        return self.bulk(data, off);
                    }
                    return r;
                }
                if self.header_len + chunk.len() > MAX_HEADER {
                    return Adv::Bad;
                }
                self.header[self.header_len..self.header_len + chunk.len()].copy_from_slice(chunk);
                self.header_len += chunk.len();
                *off += chunk.len() + done as usize;
                if !done {
                    return Adv::More;
                }
                let header = self.header;
                let mut line = &header[..self.header_len];
                if let [head @ .., b'\r'] = line {
                    line = head;
                }
                self.on_header(ty, line)
            }
            St::Line => {
                let rest = &data[*off..];
                let (chunk, done) = match memchr::memchr(b'\n', rest) {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                *off += chunk.len() + done as usize;
                self.line_len += chunk.len() as u64;
                if self.line_len > MAX_LINE {
                    return Adv::Bad;
                }
                self.stream_line(chunk, done);
                if !done {
                    return Adv::More;
                }
                if self.value_done() {
                    Adv::Done
                } else {
                    self.st = St::Start;
                    Adv::More
                }
            }
            St::Bulk { .. } => self.bulk(data, off),
            St::BulkEnd(left) => {
                let want: &[u8] = if left == 2 { b"\r\n" } else { b"\n" };
                let b = data[*off];
                if b != want[0] {
                    return Adv::Bad;
                }
                *off += 1;
                if left > 1 {
                    self.st = St::BulkEnd(left - 1);
                    return Adv::More;
                }
                if self.value_done() {
                    Adv::Done
                } else {
                    self.st = St::Start;
                    Adv::More
                }
            }
            St::Inline => self.inline(data, off),
        }
    }

    /// Inside a nested aggregate of a reply whose rendering is already cut, nothing
    /// more is rendered or captured until the reply ends: only its framing matters.
    fn skimming(&self) -> bool {
        !self.requests
            && self.stack.len() >= 2
            && self.deep == 0
            && self.attrs == 0
            && self.msg.as_ref().is_some_and(|m| m.text.is_cut())
    }

    /// Folds the levels below the reply's top one into `deep`, the flat count of
    /// pending elements used past [`MAX_DEPTH`]: the level-1 aggregate in progress
    /// completes after `Σ left - (levels - 1)` more elements (each nested level's
    /// own completion comes free with its last element). Only while
    /// [`Reader::skimming`]: what the folded levels would still write (separators,
    /// closing brackets) goes to a rendering that is cut, and no argument is
    /// captured below the top level.
    fn fold(&mut self) {
        let below = &self.stack[1..];
        let pending: u64 = below.iter().map(|l| l.left).sum();
        self.deep = pending.saturating_sub(below.len() as u64 - 1).max(1);
        self.deep_attr = false;
        self.stack.truncate(1);
        self.cur_arg = None;
    }

    /// Walks the whole elements of `data` from `*off` while `deep` counts the
    /// pending elements of an untracked subtree, keeping only that count, without
    /// the per-byte state machine. Stops before the first element that is not
    /// complete in `data`, is not a plain string, number, bulk or aggregate, or is
    /// not well formed: the state machine takes it from there, with the same outcome
    /// as if it had read everything. Returns the outcome when the subtree ends.
    fn skim(&mut self, data: &[u8], off: &mut usize) -> Option<Adv> {
        while self.deep > 0 {
            let rest = &data[*off..];
            let &b = rest.first()?;
            // Elements the subtree gains: an aggregate's entries replace it.
            let mut gain = 0u64;
            let used = match b {
                b'$' | b'=' | b'!' => {
                    let (used, head) = type_line(rest)?;
                    let n = usize::try_from(parse_int(head)?).ok()?;
                    let end = used.checked_add(n)?;
                    if rest.get(end..end.checked_add(2)?)? != b"\r\n" {
                        return None;
                    }
                    end + 2
                }
                b'+' | b'-' | b':' | b',' | b'(' => {
                    let nl = find_newline(&rest[1..])?;
                    if nl as u64 > MAX_LINE {
                        return None;
                    }
                    nl + 2
                }
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    let (used, head) = type_line(rest)?;
                    let n = parse_int(head)?;
                    if !(0..=MAX_AGGREGATE).contains(&n) {
                        return None;
                    }
                    let kind = Agg::of(b)?;
                    let elems = (n as u64).saturating_mul(kind.per_entry());
                    if kind == Agg::Attr {
                        // An attribute is not an element: its entries come on top.
                        *off += used;
                        self.deep = self.deep.saturating_add(elems);
                        continue;
                    }
                    gain = elems;
                    used
                }
                _ => return None,
            };
            *off += used;
            if gain > 0 {
                self.deep = self.deep.saturating_add(gain - 1);
                continue;
            }
            if self.deep > 1 {
                self.deep -= 1;
                continue;
            }
            // The subtree's last element: the tracked levels take it from here.
            return Some(if self.value_done() {
                Adv::Done
            } else {
                Adv::More
            });
        }
        None
    }

    /// Streams a bulk payload into the rendering; when the rest of it and its CRLF
    /// are in `data`, the element is finished in the same step.
    fn bulk(&mut self, data: &[u8], off: &mut usize) -> Adv {
        let St::Bulk { left, hide } = self.st else {
            return Adv::More;
        };
        let avail = (data.len() - *off) as u64;
        let n = left.min(avail) as usize;
        let mut chunk = &data[*off..*off + n];
        *off += n;
        let h = (hide as usize).min(chunk.len());
        chunk = &chunk[h..];
        self.emit(chunk);
        let left = left - n as u64;
        if left == 0 && data.get(*off..*off + 2) == Some(b"\r\n") {
            *off += 2;
            return self.finish_value();
        }
        self.st = if left == 0 {
            St::BulkEnd(2)
        } else {
            St::Bulk {
                left,
                hide: hide - h as u8,
            }
        };
        Adv::More
    }

    /// No aggregate is open: a value here is the reply itself.
    fn at_top(&self) -> bool {
        self.deep == 0 && self.stack.is_empty()
    }

    /// Text of a streamed line, holding back a trailing `\r` until the next byte
    /// shows whether it ends the line.
    fn stream_line(&mut self, chunk: &[u8], done: bool) {
        if std::mem::take(&mut self.pending_cr) && !(done && chunk.is_empty()) {
            self.emit(b"\r");
        }
        match chunk {
            [head @ .., b'\r'] => {
                self.emit(head);
                if !done {
                    self.pending_cr = true;
                }
            }
            _ => self.emit(chunk),
        }
    }

    fn on_header(&mut self, ty: u8, line: &[u8]) -> Adv {
        match ty {
            b'#' => {
                let v: &[u8] = match line {
                    b"t" => b"true",
                    b"f" => b"false",
                    _ => return Adv::Bad,
                };
                self.begin_element(true);
                self.emit(v);
                return self.finish_value();
            }
            b'_' => {
                if !line.is_empty() {
                    return Adv::Bad;
                }
                self.begin_element(true);
                self.emit(b"nil");
                return self.finish_value();
            }
            _ => {}
        }
        let Some(n) = parse_int(line) else {
            return Adv::Bad;
        };
        match ty {
            b'$' | b'=' | b'!' => {
                if ty == b'!' && self.at_top() {
                    self.msg().error = true;
                }
                self.begin_element(true);
                if n == -1 && !self.requests {
                    self.emit(b"nil");
                    return self.finish_value();
                }
                if n < 0 {
                    return Adv::Bad;
                }
                let hide = if ty == b'=' { 4 } else { 0 };
                self.st = if n == 0 {
                    St::BulkEnd(2)
                } else {
                    St::Bulk {
                        left: n as u64,
                        hide,
                    }
                };
                Adv::More
            }
            _ => {
                let Some(kind) = Agg::of(ty) else {
                    return Adv::Bad;
                };
                if !(-1..=MAX_AGGREGATE).contains(&n) {
                    return Adv::Bad;
                }
                if self.requests {
                    // `*0` and `*-1` are ignored by the server: no reply, no message.
                    if n <= 0 {
                        self.st = St::Start;
                        return Adv::Done;
                    }
                    return if self.open(kind, n as u64) {
                        Adv::Done
                    } else {
                        self.st = St::Start;
                        Adv::More
                    };
                }
                if n == -1 {
                    self.begin_element(true);
                    self.emit(b"nil");
                    return self.finish_value();
                }
                self.begin_element(false);
                if self.open(kind, n as u64) {
                    Adv::Done
                } else {
                    self.st = St::Start;
                    Adv::More
                }
            }
        }
    }

    fn finish_value(&mut self) -> Adv {
        if self.value_done() {
            Adv::Done
        } else {
            self.st = St::Start;
            Adv::More
        }
    }

    /// An inline command: the line is the command line; arguments are split on
    /// spaces and tabs.
    fn inline(&mut self, data: &[u8], off: &mut usize) -> Adv {
        let rest = &data[*off..];
        let (chunk, done) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        *off += chunk.len() + done as usize;
        self.line_len += chunk.len() as u64;
        if self.line_len > MAX_INLINE {
            return Adv::Bad;
        }
        let mut chunk = chunk;
        if std::mem::take(&mut self.pending_cr) && !(done && chunk.is_empty()) {
            self.inline_text(b"\r");
        }
        if let [head @ .., b'\r'] = chunk {
            chunk = head;
            if !done {
                self.pending_cr = true;
            }
        }
        self.inline_text(chunk);
        if done { Adv::Done } else { Adv::More }
    }

    fn inline_text(&mut self, chunk: &[u8]) {
        let Some(m) = &mut self.msg else {
            return;
        };
        m.text.push(chunk, MAX_TEXT);
        let mut i = 0;
        while i < chunk.len() {
            let space = |b: u8| b == b' ' || b == b'\t' || b == b'\r';
            if self.in_token {
                let end = chunk[i..]
                    .iter()
                    .position(|&b| space(b))
                    .map_or(chunk.len(), |p| i + p);
                if let Some(a) = m.args.last_mut()
                    && (m.nargs as usize) <= CAPTURED_ARGS
                {
                    a.push(&chunk[i..end], MAX_ARG);
                }
                if end < chunk.len() {
                    self.in_token = false;
                }
                i = end;
            } else if space(chunk[i]) {
                i += 1;
            } else {
                self.in_token = true;
                m.nargs += 1;
                if (m.nargs as usize) <= CAPTURED_ARGS {
                    m.args.push(Capped::default());
                }
            }
        }
    }
}

enum Adv {
    More,
    Done,
    Bad,
}

/// A decimal integer as RESP writes it (optional `-`, digits only).
/// The type line at the start of `rest` (a type byte, then at most [`MAX_HEADER`]
/// bytes before its `\n`, the `\r` optional), as the state machine reads it: the
/// bytes it takes, and its text. `None` when it does not end in `rest` within that
/// bound.
fn type_line(rest: &[u8]) -> Option<(usize, &[u8])> {
    let nl = find_newline(&rest[1..rest.len().min(MAX_HEADER + 2)])?;
    let l = &rest[1..1 + nl];
    Some((nl + 2, l.strip_suffix(b"\r").unwrap_or(l)))
}

/// The first `\n` of `b`. The lines of nested replies are mostly a few bytes
/// long: they are searched byte by byte before handing longer ones to `memchr`.
#[inline]
fn find_newline(b: &[u8]) -> Option<usize> {
    let short = &b[..b.len().min(24)];
    match short.iter().position(|&c| c == b'\n') {
        Some(i) => Some(i),
        None if b.len() > short.len() => {
            memchr::memchr(b'\n', &b[short.len()..]).map(|i| i + short.len())
        }
        None => None,
    }
}

pub fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as i64;
    }
    Some(if neg { -v } else { v })
}
