//! MySQL wire format: packet headers, length-encoded integers and strings, the
//! generic OK / ERR / EOF packets, column definitions, the handshake fields wirebeat
//! reads, and the binary values of prepared statements. Every function works on one
//! complete packet payload (or its prefix) and never panics on malformed input.
//! Also the guesses that find a message start in the middle of a stream.

use std::fmt::Write as _;

use super::SMALL;
use crate::protos::Dir;
use crate::text::{self, Replace};

/// Payload length that means "the payload continues in the next packet".
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

pub const CLIENT_COMPRESS: u32 = 0x0000_0020;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_SSL: u32 = 0x0000_0800;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;

pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// Column flag of unsigned integers.
pub const UNSIGNED_FLAG: u16 = 0x0020;

/// `(payload length, sequence id)` of the 4-byte packet header at the start of `b`.
pub fn header(b: &[u8]) -> Option<(usize, u8)> {
    if b.len() < 4 {
        return None;
    }
    let len = b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16;
    Some((len, b[3]))
}

/// A length-encoded integer at `b[*i]`; advances `i`. `Some(None)` is the NULL marker.
pub fn lenenc(b: &[u8], i: &mut usize) -> Option<Option<u64>> {
    let c = *b.get(*i)?;
    let size = match c {
        0..=0xFA => {
            *i += 1;
            return Some(Some(c as u64));
        }
        0xFB => {
            *i += 1;
            return Some(None);
        }
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        0xFF => return None,
    };
    let bytes = b.get(*i + 1..*i + 1 + size)?;
    let mut v = 0u64;
    for (k, &x) in bytes.iter().enumerate() {
        v |= (x as u64) << (8 * k);
    }
    *i += 1 + size;
    Some(Some(v))
}

/// A length-encoded integer that must not be NULL.
pub fn lenenc_int(b: &[u8], i: &mut usize) -> Option<u64> {
    lenenc(b, i)?
}

/// A length-encoded string (`None` inside for NULL); the slice may be cut short when
/// `b` is only a prefix of the packet (`complete` tells).
pub fn lenenc_str<'a>(b: &'a [u8], i: &mut usize) -> Option<Option<&'a [u8]>> {
    match lenenc(b, i)? {
        None => Some(None),
        Some(n) => {
            let start = *i;
            let end = start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
            let s = b.get(start..end.min(b.len()))?;
            *i = end;
            Some(Some(s))
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// What an OK packet (header 0x00, or 0xFE as a result-set terminator) says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ok {
    pub affected_rows: u64,
    pub insert_id: u64,
    pub status: u16,
}

pub fn parse_ok(p: &[u8]) -> Option<Ok> {
    let mut i = 1;
    let affected_rows = lenenc_int(p, &mut i)?;
    let insert_id = lenenc_int(p, &mut i)?;
    let status = u16_at(p, i).unwrap_or(0);
    Some(Ok {
        affected_rows,
        insert_id,
        status,
    })
}

/// Status flags of an EOF packet (`FE warnings(2) status(2)`).
pub fn eof_status(p: &[u8]) -> u16 {
    u16_at(p, 3).unwrap_or(0)
}

/// An ERR packet's code and `"<SQLSTATE>: <text>"` message.
pub fn parse_err(p: &[u8]) -> (u16, String) {
    let code = u16_at(p, 1).unwrap_or(0);
    let rest = p.get(3..).unwrap_or(&[]);
    let msg = match rest.split_first() {
        Some((b'#', r)) if r.len() >= 5 => format!(
            "{}: {}",
            String::from_utf8_lossy(&r[..5]),
            String::from_utf8_lossy(&r[5..])
        ),
        _ => String::from_utf8_lossy(rest).into_owned(),
    };
    (code, msg)
}

/// The fields of a column definition (Protocol::ColumnDefinition41) wirebeat uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Column<'a> {
    pub schema: &'a [u8],
    pub table: &'a [u8],
    pub org_table: &'a [u8],
    pub name: &'a [u8],
    pub ty: u8,
    pub flags: u16,
}

pub fn parse_column(p: &[u8]) -> Option<Column<'_>> {
    let mut i = 0;
    let mut s = [&[][..]; 6];
    for slot in &mut s {
        *slot = lenenc_str(p, &mut i)?.unwrap_or(&[]);
    }
    // MariaDB's extended metadata (a length-encoded blob) may come first, then the
    // length of the fixed fields (0x0C), charset(2), column length(4), type, flags.
    if p.get(i) != Some(&0x0C) {
        lenenc_str(p, &mut i)?;
    }
    lenenc_int(p, &mut i)?;
    let ty = *p.get(i + 6).unwrap_or(&0xFD);
    let flags = u16_at(p, i + 7).unwrap_or(0);
    Some(Column {
        schema: s[1],
        table: s[2],
        org_table: s[3],
        name: s[4],
        ty,
        flags,
    })
}

/// Capability flags and server status of a protocol-10 server greeting.
pub fn greeting_caps(p: &[u8]) -> Option<u32> {
    if p.first() != Some(&10) {
        return None;
    }
    let nul = p.iter().skip(1).position(|&b| b == 0)? + 1;
    // NUL, thread id (4), scramble part 1 (8), filler (1).
    let at = nul + 1 + 4 + 8 + 1;
    let low = u16_at(p, at)? as u32;
    let high = u16_at(p, at + 5).unwrap_or(0) as u32;
    Some(low | high << 16)
}

/// Capability flags of a client's handshake response (protocol 4.1 layout).
pub fn client_caps(p: &[u8]) -> Option<u32> {
    u32_at(p, 0)
}

/// Whether `text` is mostly printable, for resynchronisation heuristics.
pub fn looks_textual(text: &[u8]) -> bool {
    let sample = &text[..text.len().min(64)];
    !sample.is_empty()
        && sample
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r') || b >= 0x80)
}

/// The blanks Packetbeat trims from a statement and splits its first word at.
const SQL_BLANKS: [char; 4] = [' ', '\r', '\n', '\t'];

/// The statement as published in `query`: without leading and trailing blanks.
pub fn trim_query(q: &str) -> &str {
    q.trim_matches(SQL_BLANKS)
}

/// `method` of a statement, Packetbeat's way: the text up to the first blank
/// (space, tab, CR, LF) after trimming, upper-cased. Nothing else is skipped, so
/// `/* c */ SELECT 1` gives `/*` and `(SELECT 1) UNION ...` gives `(SELECT`.
pub fn first_word(q: &str) -> String {
    let q = trim_query(q);
    let word = q.split(SQL_BLANKS).next().unwrap_or("");
    // Simple (one-to-one) case mapping, as Go's strings.ToUpper does.
    word.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Largest rendering of one binary value.
const MAX_VALUE: usize = 256;

/// Renders one binary-protocol value of MySQL type `ty` at `b[*i]`, advancing `i`;
/// strings are quoted when `quote`. `None` when the value does not fit in `b`.
pub fn binary_value(
    b: &[u8],
    i: &mut usize,
    ty: u8,
    unsigned: bool,
    quote: bool,
    out: &mut String,
) -> Option<()> {
    binary_value_max(b, i, ty, unsigned, quote, MAX_VALUE, out)
}

/// [`binary_value`] keeping up to `max` bytes of a string value.
pub fn binary_value_max(
    b: &[u8],
    i: &mut usize,
    ty: u8,
    unsigned: bool,
    quote: bool,
    max: usize,
    out: &mut String,
) -> Option<()> {
    let fixed = |i: &mut usize, n: usize| -> Option<&[u8]> {
        let s = b.get(*i..*i + n)?;
        *i += n;
        Some(s)
    };
    match ty {
        0x06 => out.push_str("NULL"),
        0x01 => {
            let v = fixed(i, 1)?[0];
            let _ = if unsigned {
                write!(out, "{v}")
            } else {
                write!(out, "{}", v as i8)
            };
        }
        0x02 | 0x0D => {
            let s = fixed(i, 2)?;
            let v = u16::from_le_bytes([s[0], s[1]]);
            let _ = if unsigned || ty == 0x0D {
                write!(out, "{v}")
            } else {
                write!(out, "{}", v as i16)
            };
        }
        0x03 | 0x09 => {
            let s = fixed(i, 4)?;
            let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            let _ = if unsigned {
                write!(out, "{v}")
            } else {
                write!(out, "{}", v as i32)
            };
        }
        0x08 => {
            let s = fixed(i, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            let v = u64::from_le_bytes(a);
            let _ = if unsigned {
                write!(out, "{v}")
            } else {
                write!(out, "{}", v as i64)
            };
        }
        0x04 => {
            let s = fixed(i, 4)?;
            let _ = write!(out, "{}", f32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        }
        0x05 => {
            let s = fixed(i, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            let _ = write!(out, "{}", f64::from_le_bytes(a));
        }
        0x07 | 0x0A | 0x0C => {
            let n = fixed(i, 1)?[0] as usize;
            let s = fixed(i, n)?;
            let y = if n >= 4 {
                u16::from_le_bytes([s[0], s[1]])
            } else {
                0
            };
            let (mo, d) = if n >= 4 { (s[2], s[3]) } else { (0, 0) };
            let q = if quote { "'" } else { "" };
            let _ = write!(out, "{q}{y:04}-{mo:02}-{d:02}");
            if ty != 0x0A && n >= 7 {
                let _ = write!(out, " {:02}:{:02}:{:02}", s[4], s[5], s[6]);
                if n >= 11 {
                    let us = u32::from_le_bytes([s[7], s[8], s[9], s[10]]);
                    let _ = write!(out, ".{us:06}");
                }
            }
            out.push_str(q);
        }
        0x0B => {
            let q = if quote { "'" } else { "" };
            let n = fixed(i, 1)?[0] as usize;
            let s = fixed(i, n)?;
            if n >= 8 {
                let days = u32::from_le_bytes([s[1], s[2], s[3], s[4]]) as u64;
                let h = days * 24 + s[5] as u64;
                let sign = if s[0] == 1 { "-" } else { "" };
                let _ = write!(out, "{q}{sign}{h:02}:{:02}:{:02}", s[6], s[7]);
                if n >= 12 {
                    let us = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
                    let _ = write!(out, ".{us:06}");
                }
                out.push_str(q);
            } else {
                let _ = write!(out, "{q}00:00:00{q}");
            }
        }
        _ => {
            // DECIMAL, strings, BLOBs, JSON, ENUM, SET, BIT, GEOMETRY: length-encoded.
            let s = lenenc_str(b, i)?.unwrap_or(&[]);
            if *i > b.len() {
                return None;
            }
            let numeric = matches!(ty, 0x00 | 0xF6);
            push_text_max(out, s, quote && !numeric, max);
        }
    }
    Some(())
}

/// Appends text from the traffic (lossy UTF-8, at most `MAX_VALUE` bytes).
pub fn push_text(out: &mut String, s: &[u8], quote: bool) {
    push_text_max(out, s, quote, MAX_VALUE);
}

/// Appends text from the traffic, at most `max` bytes of it.
pub fn push_text_max(out: &mut String, s: &[u8], quote: bool, max: usize) {
    let cut = &s[..s.len().min(max)];
    let text = text::lossy(cut, Replace::PerByte);
    if quote {
        out.push('\'');
        out.push_str(&text.replace('\'', "''"));
        out.push('\'');
    } else {
        out.push_str(&text);
    }
}

/// What a command expects from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// OK, ERR, EOF, a LOCAL INFILE request or result sets.
    Generic,
    /// The COM_STMT_PREPARE answer.
    Prepare,
    /// One plain string packet (COM_STATISTICS).
    Single,
    /// Column definitions up to an EOF (COM_FIELD_LIST).
    FieldList,
    /// Binary rows up to an EOF (COM_STMT_FETCH of a cursor).
    Rows,
    /// No answer at all (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA).
    Nothing,
    /// Re-authentication (COM_CHANGE_USER): not a transaction.
    Auth,
    /// Replication stream (COM_BINLOG_DUMP...): not request/response any more.
    Stream,
}

pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1A;
pub const COM_STMT_FETCH: u8 = 0x1C;

/// Name and expected answer of a command byte; `None` for bytes that are no client
/// command.
pub fn command(cmd: u8) -> Option<(&'static str, Expect)> {
    use Expect::*;
    Some(match cmd {
        0x01 => ("QUIT", Nothing),
        0x02 => ("INIT_DB", Generic),
        0x03 => ("QUERY", Generic),
        0x04 => ("FIELD_LIST", FieldList),
        0x05 => ("CREATE_DB", Generic),
        0x06 => ("DROP_DB", Generic),
        0x07 => ("REFRESH", Generic),
        0x08 => ("SHUTDOWN", Generic),
        0x09 => ("STATISTICS", Single),
        0x0A => ("PROCESS_INFO", Generic),
        0x0C => ("PROCESS_KILL", Generic),
        0x0D => ("DEBUG", Generic),
        0x0E => ("PING", Generic),
        0x0F => ("TIME", Generic),
        0x11 => ("CHANGE_USER", Auth),
        0x12 => ("BINLOG_DUMP", Stream),
        0x13 => ("TABLE_DUMP", Generic),
        0x15 => ("REGISTER_SLAVE", Generic),
        0x16 => ("STMT_PREPARE", Prepare),
        0x17 => ("STMT_EXECUTE", Generic),
        0x18 => ("STMT_SEND_LONG_DATA", Nothing),
        0x19 => ("STMT_CLOSE", Nothing),
        0x1A => ("STMT_RESET", Generic),
        0x1B => ("SET_OPTION", Generic),
        0x1C => ("STMT_FETCH", Rows),
        0x1E => ("BINLOG_DUMP_GTID", Stream),
        0x1F => ("RESET_CONNECTION", Generic),
        0xFA => ("STMT_BULK_EXECUTE", Generic),
        _ => return None,
    })
}

// ------------------------------------------------ resynchronisation guesses

/// Whether `d` starts with something that can only be the compressed protocol
/// (a 7-byte header whose payload is one uncompressed packet) or TLS.
pub fn foreign(d: &[u8]) -> bool {
    if d.len() >= 3 && matches!(d[0], 0x14..=0x17) && d[1] == 3 && d[2] <= 4 {
        return true;
    }
    if d.len() >= 11 {
        let outer = d[0] as usize | (d[1] as usize) << 8 | (d[2] as usize) << 16;
        let inner = d[7] as usize | (d[8] as usize) << 8 | (d[9] as usize) << 16;
        return d[4..7] == [0, 0, 0] && outer >= 4 && inner + 4 == outer;
    }
    false
}

/// Whether a packet at the start of `d` is a plausible start of a message in `dir`.
pub fn plausible_start(dir: Dir, d: &[u8]) -> bool {
    let Some((len, seq)) = header(d) else {
        return false;
    };
    let p = &d[4..d.len().min(4 + len)];
    let Some(&first) = p.first() else {
        return false;
    };
    match dir {
        Dir::ToServer => {
            seq == 0
                && command(first).is_some()
                && match first {
                    COM_QUERY | COM_STMT_PREPARE | COM_INIT_DB => {
                        len >= 2 && looks_textual(&p[1..])
                    }
                    COM_STMT_EXECUTE => len >= 10,
                    _ => len <= 64,
                }
        }
        Dir::ToClient => {
            if seq != 1 {
                return false;
            }
            match first {
                0x00 => (7..SMALL).contains(&len),
                0xFF => len >= 9 && p.get(3) == Some(&b'#'),
                0xFE => len == 5,
                1..=0xFA => len == 1 || len == 2,
                0xFC => len == 3,
                _ => false,
            }
        }
    }
}

/// After a gap inside rows: the offset in `d` where a chain of row packets with
/// consecutive sequence ids starts, if one is seen.
pub fn find_row_chain(d: &[u8]) -> Option<usize> {
    'pos: for start in 0..d.len().saturating_sub(4) {
        let mut at = start;
        let mut prev: Option<u8> = None;
        let mut k = 0;
        while let Some((len, seq)) = header(&d[at..]) {
            if len == 0 || len > SMALL || prev.is_some_and(|p| p.wrapping_add(1) != seq) {
                continue 'pos;
            }
            let end = at + 4 + len;
            if end > d.len() {
                break;
            }
            k += 1;
            let first = d[at + 4];
            if first == 0xFE && len < 9 && end == d.len() {
                return Some(start);
            }
            if k >= 3 {
                return Some(start);
            }
            prev = Some(seq);
            at = end;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_forms() {
        let b = [
            0x05, 0xFC, 0x01, 0x02, 0xFB, 0xFE, 1, 0, 0, 0, 0, 0, 0, 0, 0xFF,
        ];
        let mut i = 0;
        assert_eq!(lenenc(&b, &mut i), Some(Some(5)));
        assert_eq!(lenenc(&b, &mut i), Some(Some(0x0201)));
        assert_eq!(lenenc(&b, &mut i), Some(None));
        assert_eq!(lenenc(&b, &mut i), Some(Some(1)));
        assert_eq!(lenenc(&b, &mut i), None);
        assert_eq!(lenenc(&[0xFD, 1], &mut 0), None);
    }

    #[test]
    fn words_and_errors() {
        assert_eq!(first_word(" \r\n\tselect\t1"), "SELECT");
        assert_eq!(first_word("/* hint */ insert into t"), "/*");
        assert_eq!(first_word("-- c\nupdate(x)"), "--");
        assert_eq!(first_word("(select 1) union (select 2)"), "(SELECT");
        assert_eq!(first_word("select(1);"), "SELECT(1);");
        assert_eq!(first_word("stra\u{df}e\u{a0}x"), "STRA\u{df}E\u{a0}X");
        assert_eq!(first_word(""), "");
        assert_eq!(first_word(" \t "), "");
        assert_eq!(trim_query("\n SELECT 1 ;\r\n\u{b}"), "SELECT 1 ;\r\n\u{b}");
        assert_eq!(trim_query("\t\n SELECT 1 \r\n"), "SELECT 1");
        let mut p = vec![0xFF, 0x7A, 0x04, b'#'];
        p.extend_from_slice(b"42S02Table 'test.nope' doesn't exist");
        assert_eq!(
            parse_err(&p),
            (1146, "42S02: Table 'test.nope' doesn't exist".to_string())
        );
        assert_eq!(parse_err(&[0xFF]), (0, String::new()));
    }

    #[test]
    fn binary_values() {
        let mut out = String::new();
        let b = [
            0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 3, b'a', b'\'', b'c',
        ];
        let mut i = 0;
        binary_value(&b, &mut i, 0x08, false, true, &mut out).unwrap();
        out.push(',');
        binary_value(&b, &mut i, 0xFD, false, true, &mut out).unwrap();
        assert_eq!(out, "-2,'a''c'");
        assert!(binary_value(&b, &mut 10, 0x08, false, true, &mut out).is_none());
        let mut out = String::new();
        let d = [7, 0xE8, 0x07, 1, 2, 3, 4, 5];
        binary_value(&d, &mut 0, 0x0C, false, true, &mut out).unwrap();
        assert_eq!(out, "'2024-01-02 03:04:05'");
    }
}
