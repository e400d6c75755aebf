//! PostgreSQL protocol v3 wire format: message headers and their plausibility, the
//! strict checks used to find a message boundary in the middle of a stream, decoding of
//! the message bodies wirebeat reads, and splitting a simple query into statements.
//!
//! Every decoder takes a possibly truncated body (the prefix of a message too large to
//! buffer) and never panics on malformed input.

use memchr::memchr;

use crate::protos::framing::Framing;
use crate::text::{Replace, lossy, push_capped};

/// Largest message length field accepted (PostgreSQL's own limit is 1 GiB).
pub const MAX_LEN: usize = 1 << 30;
/// Messages up to this size (type byte and length included) are parsed whole; larger
/// ones are parsed from their first [`PREFIX`] body bytes and the rest is skipped as it
/// streams.
pub const WHOLE_LIMIT: usize = 64 * 1024;
/// Body bytes of a large message that are parsed.
pub const PREFIX: usize = 32 * 1024;
/// Messages are held whole up to [`WHOLE_LIMIT`], else by their header and first
/// [`PREFIX`] body bytes.
pub const FRAMING: Framing = Framing {
    whole: WHOLE_LIMIT,
    prefix: 5 + PREFIX,
};
/// Largest message accepted as a resynchronisation point.
pub const RESYNC_MAX: usize = 16 * 1024;
/// Startup-phase messages (no type byte): StartupMessage and its kin are short.
pub const MAX_STARTUP: usize = 10_000;

pub const PROTO_V3: u32 = 196_608;
pub const SSL_REQUEST: u32 = 80_877_103;
pub const CANCEL_REQUEST: u32 = 80_877_102;
pub const GSSENC_REQUEST: u32 = 80_877_104;

/// Type byte and total size (type byte + length field + body) of a message header, if
/// `b` holds at least five bytes.
pub fn header(b: &[u8]) -> Option<(u8, usize)> {
    if b.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
    Some((b[0], len.saturating_add(1)))
}

/// Length rule of a message type: `Some(exact)` or a minimum, per direction.
/// `None` for a type byte that direction never sends.
fn len_rule(frontend: bool, ty: u8) -> Option<(usize, bool)> {
    // (length field value, exact?)
    let r = if frontend {
        match ty {
            b'S' | b'H' | b'X' | b'c' => (4, true),
            b'Q' => (5, false),
            b'P' => (8, false),
            b'B' => (12, false),
            b'D' | b'C' => (6, false),
            b'E' => (9, false),
            b'F' => (14, false),
            b'f' => (5, false),
            b'd' | b'p' => (4, false),
            _ => return None,
        }
    } else {
        match ty {
            b'Z' => (5, true),
            b'K' => (12, true),
            b'I' | b'1' | b'2' | b'3' | b'n' | b's' | b'c' => (4, true),
            b'R' => (8, false),
            b'S' | b'T' | b'D' | b't' => (6, false),
            b'C' | b'E' | b'N' => (5, false),
            b'A' => (10, false),
            b'G' | b'H' | b'W' => (7, false),
            b'V' => (8, false),
            b'v' => (12, false),
            b'd' => (4, false),
            _ => return None,
        }
    };
    Some(r)
}

/// Whether a header is possible for the direction (known type, sane length).
pub fn plausible(frontend: bool, ty: u8, total: usize) -> bool {
    let len = total - 1;
    match len_rule(frontend, ty) {
        Some((n, true)) => len == n,
        Some((n, false)) => len >= n && len <= MAX_LEN,
        None => false,
    }
}

/// Outcome of checking a candidate message start while resynchronising.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    Valid,
    Invalid,
    /// The candidate may be valid; this many more bytes are needed to tell.
    Need(usize),
}

/// Reads NUL-terminated strings and big-endian integers from a body.
pub struct Rd<'a> {
    b: &'a [u8],
    pub at: usize,
}

impl<'a> Rd<'a> {
    pub fn new(b: &'a [u8]) -> Rd<'a> {
        Rd { b, at: 0 }
    }

    pub fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..)?;
        let n = memchr(0, rest)?;
        self.at += n + 1;
        Some(&rest[..n])
    }

    /// A string up to its NUL, or to the end of a truncated body.
    pub fn cstr_or_rest(&mut self) -> &'a [u8] {
        let rest = self.b.get(self.at..).unwrap_or(&[]);
        match memchr(0, rest) {
            Some(n) => {
                self.at += n + 1;
                &rest[..n]
            }
            None => {
                self.at = self.b.len();
                rest
            }
        }
    }

    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    pub fn i16(&mut self) -> Option<i16> {
        let s = self.b.get(self.at..self.at.checked_add(2)?)?;
        self.at += 2;
        Some(i16::from_be_bytes([s[0], s[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        let s = self.b.get(self.at..self.at.checked_add(4)?)?;
        self.at += 4;
        Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// `n` bytes, or fewer at the end of a truncated body (`Err` carries them).
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'a [u8]> {
        let rest = self.b.get(self.at..).unwrap_or(&[]);
        if rest.len() >= n {
            self.at += n;
            Ok(&rest[..n])
        } else {
            self.at = self.b.len();
            Err(rest)
        }
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.at.checked_add(n)?;
        if end > self.b.len() {
            return None;
        }
        self.at = end;
        Some(())
    }
}

/// Walks a DataRow body; `Some(())` when it is exactly well formed.
fn walk_data_row(body: &[u8]) -> Option<()> {
    let mut r = Rd::new(body);
    let n = r.i16()?;
    if n < 0 {
        return None;
    }
    for _ in 0..n {
        let len = r.i32()?;
        if len > 0 {
            r.skip(len as usize)?;
        } else if len < -1 {
            return None;
        }
    }
    r.done().then_some(())
}

fn walk_row_description(body: &[u8]) -> Option<()> {
    let mut r = Rd::new(body);
    let n = r.i16()?;
    if n < 0 {
        return None;
    }
    for _ in 0..n {
        r.cstr()?;
        r.skip(18)?;
    }
    r.done().then_some(())
}

/// ErrorResponse / NoticeResponse: `(code, string)*` then a zero byte, codes letters.
fn walk_fields(body: &[u8]) -> Option<()> {
    let mut r = Rd::new(body);
    loop {
        let code = r.u8()?;
        if code == 0 {
            return r.done().then_some(());
        }
        if !code.is_ascii_alphabetic() {
            return None;
        }
        r.cstr()?;
    }
}

fn is_tag(body: &[u8]) -> bool {
    let Some((&0, tag)) = body.split_last() else {
        return false;
    };
    !tag.is_empty()
        && tag.len() <= 64
        && tag[0].is_ascii_uppercase()
        && tag
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c == b' ' || c.is_ascii_digit())
}

fn walk_bind(body: &[u8]) -> Option<()> {
    let mut r = Rd::new(body);
    r.cstr()?;
    r.cstr()?;
    let nf = r.i16()?;
    r.skip(usize::try_from(nf).ok()? * 2)?;
    let np = r.i16()?;
    if np < 0 {
        return None;
    }
    for _ in 0..np {
        let len = r.i32()?;
        if len > 0 {
            r.skip(len as usize)?;
        } else if len < -1 {
            return None;
        }
    }
    let nr = r.i16()?;
    r.skip(usize::try_from(nr).ok()? * 2)?;
    r.done().then_some(())
}

fn walk_parse(body: &[u8]) -> Option<()> {
    let mut r = Rd::new(body);
    r.cstr()?;
    r.cstr()?;
    let n = r.i16()?;
    r.skip(usize::try_from(n).ok()? * 4)?;
    r.done().then_some(())
}

/// Strict check of a candidate message start at `b[0]` (used after a gap, after
/// garbage and when a connection is picked up mid-stream).
pub fn probe(frontend: bool, b: &[u8]) -> Probe {
    let Some((ty, total)) = header(b) else {
        // Check what is there of the header.
        if b.is_empty() || len_rule(frontend, b[0]).is_none() {
            return Probe::Invalid;
        }
        return Probe::Need(5 - b.len());
    };
    if !plausible(frontend, ty, total) || total > RESYNC_MAX {
        return Probe::Invalid;
    }
    if b.len() < total {
        return Probe::Need(total - b.len());
    }
    let body = &b[5..total];
    let ok = match (frontend, ty) {
        (false, b'D') => walk_data_row(body).is_some(),
        (false, b'T') => walk_row_description(body).is_some(),
        (false, b'E' | b'N') => walk_fields(body).is_some(),
        (false, b'C') => is_tag(body),
        (false, b'Z') => matches!(body[0], b'I' | b'T' | b'E'),
        (false, b'S') => {
            let mut r = Rd::new(body);
            r.cstr().is_some() && r.cstr().is_some() && r.done()
        }
        (true, b'Q') => body.last() == Some(&0) && body[0] != 0,
        (true, b'P') => walk_parse(body).is_some(),
        (true, b'B') => walk_bind(body).is_some(),
        (true, b'E') => {
            let mut r = Rd::new(body);
            r.cstr().is_some() && r.i32().is_some() && r.done()
        }
        (true, b'D' | b'C') => matches!(body[0], b'S' | b'P') && body.last() == Some(&0),
        // Short fixed-size messages and opaque bodies: the header is all there is; the
        // following header must then be plausible too.
        _ => {
            return match header(&b[total..]) {
                Some((t2, n2)) if plausible(frontend, t2, n2) => Probe::Valid,
                Some(_) => Probe::Invalid,
                None if b.len() == total => Probe::Valid,
                None => Probe::Need(total + 5 - b.len()),
            };
        }
    };
    if ok { Probe::Valid } else { Probe::Invalid }
}

/// Fields of an ErrorResponse or NoticeResponse that wirebeat reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
}

pub fn error_fields(body: &[u8]) -> ErrorFields {
    let mut r = Rd::new(body);
    let mut e = ErrorFields::default();
    let mut localized = String::new();
    while let Some(code) = r.u8() {
        if code == 0 {
            break;
        }
        let v = lossy(r.cstr_or_rest(), Replace::PerSequence);
        match code {
            b'V' => e.severity = v,
            b'S' => localized = v,
            b'C' => e.code = v,
            b'M' => e.message = v,
            _ => {}
        }
    }
    if e.severity.is_empty() {
        e.severity = localized;
    }
    e
}

/// Row count of a CommandComplete tag (`SELECT 5`, `INSERT 0 3`, `COPY 10`, ...).
pub fn tag_rows(tag: &[u8]) -> Option<u64> {
    let tag = std::str::from_utf8(tag).ok()?;
    let mut words = tag.split(' ');
    let cmd = words.next()?;
    if !matches!(
        cmd,
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY"
    ) {
        return None;
    }
    words.next_back()?.parse().ok()
}

/// Number of fields and their names of a RowDescription.
pub fn row_description(body: &[u8]) -> (u64, Vec<String>) {
    let mut r = Rd::new(body);
    let n = r.i16().unwrap_or(0).max(0) as u64;
    let mut names = Vec::new();
    for _ in 0..n {
        let Some(name) = r.cstr() else { break };
        names.push(lossy(name, Replace::PerSequence));
        if r.skip(18).is_none() {
            break;
        }
    }
    (n, names)
}

/// Format code (0 text, 1 binary) of each result column: from a RowDescription, or
/// from the result-format codes of a Bind (none: all text; one: all columns).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Formats(pub Vec<i16>);

impl Formats {
    /// Bind's rule: no code means text, a single code applies to every column.
    pub fn of(&self, col: usize) -> i16 {
        match self.0.as_slice() {
            [] => 0,
            [one] => *one,
            all => all.get(col).copied().unwrap_or(0),
        }
    }
}

/// A DataRow as one `send_response` line (see [`crate::protos::csv`]), cut the way
/// Packetbeat cuts it: the row's text values count against `max` bytes; a value that
/// passes the limit is cut there (a character cut in two becomes U+FFFD) and the
/// values after it are left out. NULL and binary values are empty. Returns the
/// line and the row's column count. Works on a truncated body.
pub fn render_row(body: &[u8], formats: &Formats, max: usize) -> (String, u64) {
    let mut r = Rd::new(body);
    let n = r.i16().unwrap_or(0).max(0) as usize;
    let mut values: Vec<std::borrow::Cow<'_, str>> = Vec::new();
    let mut used = 0usize;
    for i in 0..n {
        let Some(len) = r.i32() else { break };
        let (v, whole) = if len < 0 {
            (&[][..], true)
        } else {
            match r.bytes(len as usize) {
                Ok(v) => (v, true),
                Err(v) => (v, false),
            }
        };
        let v = if formats.of(i) == 0 { v } else { &[][..] };
        if used < max {
            let v = &v[..v.len().min(max - used)];
            used += v.len();
            values.push(String::from_utf8_lossy(v));
        }
        if !whole {
            break;
        }
    }
    let mut line = String::new();
    super::super::csv::push_record(&mut line, values.iter().map(|v| v.as_ref()), true);
    (line, n as u64)
}

/// Result-format codes of a Bind body (after portal, statement and parameters), at
/// most `max` of them.
pub fn bind_result_formats(body: &[u8], max: usize) -> Formats {
    let mut r = Rd::new(body);
    let parse = |r: &mut Rd<'_>| -> Option<Formats> {
        r.cstr()?;
        r.cstr()?;
        let nf = usize::try_from(r.i16()?).ok()?;
        r.skip(nf * 2)?;
        let np = r.i16()?.max(0);
        for _ in 0..np {
            let len = r.i32()?;
            if len > 0 {
                r.skip(len as usize)?;
            }
        }
        let nr = usize::try_from(r.i16()?).ok()?;
        let mut f = Vec::with_capacity(nr.min(max));
        for _ in 0..nr.min(max) {
            f.push(r.i16()?);
        }
        Some(Formats(f))
    };
    parse(&mut r).unwrap_or_default()
}

/// Format codes of a RowDescription's columns, at most `max` of them.
pub fn row_formats(body: &[u8], max: usize) -> Formats {
    let mut r = Rd::new(body);
    let n = r.i16().unwrap_or(0).max(0) as usize;
    let mut f = Vec::with_capacity(n.min(max));
    for _ in 0..n.min(max) {
        if r.cstr().is_none() || r.skip(16).is_none() {
            break;
        }
        match r.i16() {
            Some(code) => f.push(code),
            None => break,
        }
    }
    Formats(f)
}

/// Parse: statement name and query text.
pub fn parse_msg(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut r = Rd::new(body);
    let name = r.cstr_or_rest().to_vec();
    let query = r.cstr_or_rest().to_vec();
    (name, query)
}

/// Bind: portal name, statement name and the parameters rendered readably
/// (text values as they are, binary values as `\x` hex, NULL as `NULL`, joined by
/// `, `; each value cut at `max_value` bytes, the whole at `max_total`).
pub fn bind_msg(body: &[u8], max_value: usize, max_total: usize) -> (Vec<u8>, Vec<u8>, String) {
    let mut r = Rd::new(body);
    let portal = r.cstr_or_rest().to_vec();
    let stmt = r.cstr_or_rest().to_vec();
    let mut params = String::new();
    let nf = r.i16().unwrap_or(0).max(0) as usize;
    let fmt_at = r.at;
    if r.skip(nf * 2).is_none() {
        return (portal, stmt, params);
    }
    let format = |i: usize| -> i16 {
        let k = match nf {
            0 => return 0,
            1 => 0,
            _ if i < nf => i,
            _ => return 0,
        };
        let at = fmt_at + k * 2;
        body.get(at..at + 2)
            .map_or(0, |s| i16::from_be_bytes([s[0], s[1]]))
    };
    let np = r.i16().unwrap_or(0).max(0) as usize;
    for i in 0..np {
        if i > 0 && !push_capped(&mut params, b", ", max_total, Replace::PerSequence) {
            break;
        }
        let Some(len) = r.i32() else { break };
        if len < 0 {
            push_capped(&mut params, b"NULL", max_total, Replace::PerSequence);
            continue;
        }
        let (v, whole) = match r.bytes(len as usize) {
            Ok(v) => (v, true),
            Err(v) => (v, false),
        };
        let v = &v[..v.len().min(max_value)];
        if format(i) == 1 {
            let mut hex = String::with_capacity(2 + v.len() * 2);
            hex.push_str("\\x");
            for b in v {
                hex.push(char::from(HEX[(b >> 4) as usize]));
                hex.push(char::from(HEX[(b & 15) as usize]));
            }
            push_capped(&mut params, hex.as_bytes(), max_total, Replace::PerSequence);
        } else {
            push_capped(&mut params, v, max_total, Replace::PerSequence);
        }
        if !whole {
            break;
        }
    }
    (portal, stmt, params)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Execute: portal name.
pub fn execute_msg(body: &[u8]) -> Vec<u8> {
    Rd::new(body).cstr_or_rest().to_vec()
}

/// Close / Describe: `S` or `P` and the name.
pub fn target_msg(body: &[u8]) -> (u8, Vec<u8>) {
    let mut r = Rd::new(body);
    let kind = r.u8().unwrap_or(0);
    (kind, r.cstr_or_rest().to_vec())
}

/// First keyword of a statement, upper-cased, after whitespace, comments and opening
/// parentheses.
pub fn first_word(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'(') {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            i = memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n + 1);
        } else if b[i..].starts_with(b"/*") {
            i = skip_block_comment(b, i);
        } else {
            break;
        }
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
        i += 1;
    }
    (i > start).then(|| sql[start..i].to_ascii_uppercase())
}

/// Index after the (nested) block comment starting at `i`.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Splits a simple-query string into its statements (byte ranges, trimmed), the way
/// the server's parser sees them: `;` outside quotes, dollar quotes, comments and
/// parentheses ends a statement; statements holding only whitespace and comments are
/// dropped. At most `max` statements: the rest stays in the last one.
pub fn split_statements(sql: &str, max: usize) -> Vec<(usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut token = false;
    let mut depth = 0usize;
    let mut i = 0;
    let finish = |start: usize, end: usize, token: bool, out: &mut Vec<(usize, usize)>| {
        if token {
            let s = &sql[start..end];
            let lead = s.len() - s.trim_start().len();
            let trail = s.len() - s.trim_end().len();
            out.push((start + lead, end - trail));
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n + 1);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i);
                continue;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]));
                i = skip_quoted(b, i, b'\'', escapes);
                token = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(b, i, b'"', false);
                token = true;
                continue;
            }
            b'$' if i == 0 || !is_ident(b[i - 1]) => {
                if let Some(end) = skip_dollar(b, i) {
                    i = end;
                    token = true;
                    continue;
                }
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b';' if depth == 0 => {
                if out.len() + 1 < max {
                    finish(start, i, token, &mut out);
                    start = i + 1;
                    token = false;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        if !c.is_ascii_whitespace() {
            token = true;
        }
        i += 1;
    }
    finish(start, b.len(), token, &mut out);
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn skip_quoted(b: &[u8], i: usize, q: u8, backslash: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// End of a dollar-quoted string starting at `i`, if `b[i..]` opens one.
fn skip_dollar(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    if j >= b.len() || b[j] != b'$' || b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let tag = &b[i..=j];
    let body = j + 1;
    Some(memchr::memmem::find(&b[body..], tag).map_or(b.len(), |n| body + n + tag.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&str> {
        split_statements(s, 100)
            .into_iter()
            .map(|(a, b)| &s[a..b])
            .collect()
    }

    #[test]
    fn statements() {
        assert_eq!(
            split("SELECT 1; SELECT 2; SELECT 3"),
            ["SELECT 1", "SELECT 2", "SELECT 3"]
        );
        assert_eq!(split("SELECT 1;"), ["SELECT 1"]);
        assert_eq!(split(" ; ;"), Vec::<&str>::new());
        assert_eq!(
            split("SELECT ';'; SELECT \"a;b\""),
            ["SELECT ';'", "SELECT \"a;b\""]
        );
        assert_eq!(split("SELECT 'it''s;'; x"), ["SELECT 'it''s;'", "x"]);
        assert_eq!(split("SELECT E'\\';'; y"), ["SELECT E'\\';'", "y"]);
        assert_eq!(
            split("SELECT $a$ ; $a$, $$;$$; z"),
            ["SELECT $a$ ; $a$, $$;$$", "z"]
        );
        assert_eq!(split("SELECT $1; w"), ["SELECT $1", "w"]);
        assert_eq!(
            split("SELECT 1 -- c;\n; /* ; /* ; */ */ SELECT 2; -- end"),
            ["SELECT 1 -- c;", "/* ; /* ; */ */ SELECT 2"]
        );
        assert_eq!(
            split("CREATE RULE r AS ON INSERT TO t DO (a; b); c"),
            ["CREATE RULE r AS ON INSERT TO t DO (a; b)", "c"]
        );
        assert_eq!(split_statements("a;b;c;d", 2).len(), 2);
        assert_eq!(split("'unterminated; x"), ["'unterminated; x"]);
    }

    #[test]
    fn words() {
        assert_eq!(first_word("select 1").as_deref(), Some("SELECT"));
        assert_eq!(
            first_word("  -- hi\n/* x */ (Insert into").as_deref(),
            Some("INSERT")
        );
        assert_eq!(first_word("").as_deref(), None);
        assert_eq!(first_word("-- only").as_deref(), None);
        assert_eq!(first_word("/* open").as_deref(), None);
    }

    #[test]
    fn tags_and_errors() {
        assert_eq!(tag_rows(b"SELECT 5"), Some(5));
        assert_eq!(tag_rows(b"INSERT 0 3"), Some(3));
        assert_eq!(tag_rows(b"CREATE TABLE"), None);
        assert_eq!(tag_rows(b"COPY 10"), Some(10));
        let body = b"SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0\0";
        let e = error_fields(body);
        assert_eq!(e.code, "42P01");
        assert_eq!(e.severity, "ERROR");
        assert_eq!(e.message, "relation \"x\" does not exist");
        assert_eq!(error_fields(b"SFATAL\0Cxx").severity, "FATAL");
    }

    #[test]
    fn rows_and_binds() {
        let mut row = vec![0, 3];
        row.extend_from_slice(&2i32.to_be_bytes());
        row.extend_from_slice(b"ab");
        row.extend_from_slice(&(-1i32).to_be_bytes());
        row.extend_from_slice(&3i32.to_be_bytes());
        row.extend_from_slice("é€".as_bytes()[..3].as_ref());
        let text = Formats::default();
        assert_eq!(render_row(&row, &text, 100), ("ab,,é\u{fffd}\n".into(), 3));
        // Packetbeat's cut: values count, separators do not; later values are dropped.
        assert_eq!(render_row(&row, &text, 2), ("ab\n".into(), 3));
        assert_eq!(render_row(&row, &text, 3), ("ab,,\u{fffd}\n".into(), 3));
        assert_eq!(render_row(&row, &text, 4), ("ab,,é\n".into(), 3));
        assert_eq!(render_row(&row, &text, 5), ("ab,,é\u{fffd}\n".into(), 3));
        assert_eq!(render_row(&row, &text, 0), ("\n".into(), 3));
        assert_eq!(render_row(&row[..8], &text, 100), ("ab\n".into(), 3));
        // Binary columns are empty.
        assert_eq!(
            render_row(&row, &Formats(vec![1, 0, 0]), 100).0,
            ",,é\u{fffd}\n"
        );
        assert_eq!(render_row(&row, &Formats(vec![1]), 100).0, ",,\n");
        let mut bind = b"\0s1\0".to_vec();
        bind.extend_from_slice(&[0, 2, 0, 0, 0, 1, 0, 3]);
        bind.extend_from_slice(&1i32.to_be_bytes());
        bind.push(b'7');
        bind.extend_from_slice(&2i32.to_be_bytes());
        bind.extend_from_slice(&[0, 255]);
        bind.extend_from_slice(&(-1i32).to_be_bytes());
        bind.extend_from_slice(&[0, 0]);
        let (p, s, params) = bind_msg(&bind, 100, 1000);
        assert_eq!((p.as_slice(), s.as_slice()), (&b""[..], &b"s1"[..]));
        // Two format codes for three parameters: the third one has none (text).
        assert_eq!(params, "7, \\x00ff, NULL");
        assert_eq!(
            probe(true, &[b'B', 0, 0, 0, 4 + bind.len() as u8]),
            Probe::Need(bind.len())
        );
    }
}
