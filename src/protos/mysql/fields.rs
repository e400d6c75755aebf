//! MySQL event fields: `mysql.*` (Packetbeat 8 names).

use super::parser;
use super::parser::MAX_PAYLOAD;
use super::state::{MAX_NAME, RState, RespState, error_packet};
use super::transaction::{self, MAX_PARAMS, MysqlSettings, Statement};
use crate::event::{JsonWriter, ProtoFields};
use crate::protos::csv;
use crate::text::{self, Replace};

/// Protocol fields of one MySQL transaction with a response.
#[derive(Debug, Default)]
pub struct MysqlFields {
    pub affected_rows: u64,
    pub insert_id: u64,
    pub num_fields: u64,
    pub num_rows: u64,
    pub error_code: Option<u16>,
    /// `"<SQLSTATE>: <text>"`.
    pub error_message: Option<String>,
}

impl ProtoFields for MysqlFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("mysql");
        w.kv_u64("affected_rows", self.affected_rows);
        if let Some(c) = self.error_code {
            w.kv_u64("error_code", c as u64);
        }
        w.kv_opt_str("error_message", self.error_message.as_deref());
        w.kv_u64("insert_id", self.insert_id);
        w.kv_u64("num_fields", self.num_fields);
        w.kv_u64("num_rows", self.num_rows);
        w.end_object();
    }
}

// ------------------------------------------- response text and parameters

/// Appends a column name to the header record of the current result set (Go CSV,
/// LF written as `\n`, as Packetbeat's `response` has it; names are not cut).
pub(super) fn add_header(t: &mut String, started: &mut bool, name: &[u8]) {
    if t.len() >= transaction::MAX_RESPONSE_TEXT {
        return;
    }
    if *started {
        t.push(',');
    }
    *started = true;
    let name = text::lossy(&name[..name.len().min(MAX_NAME)], Replace::PerByte);
    csv::push_field(t, &name, false);
}

/// Ends the header record once the column definitions are through.
pub(super) fn end_header(rs: &mut RespState) {
    if let Some(t) = &mut rs.r.text
        && rs.header
    {
        t.push('\n');
        rs.header = false;
    }
}

/// Appends one value to a row record, Packetbeat's way: values are cut so that
/// their bytes (before escaping) add up to at most `max_row_length`, and those past
/// it are left out; LF and CR become `\n` and `\r`, then Go CSV quoting.
pub(super) fn add_value(
    line: &mut String,
    row_len: &mut usize,
    fields: &mut usize,
    v: &[u8],
    max: usize,
) {
    if *row_len >= max {
        return;
    }
    let v = &v[..v.len().min(max - *row_len)];
    *row_len += v.len();
    if *fields > 0 {
        line.push(',');
    }
    *fields += 1;
    let text = text::lossy(v, Replace::PerByte);
    csv::push_field(line, &text, true);
}

/// A row, or the end of the result set. With `send_response` the row becomes a
/// `response` record as Packetbeat writes it: at most `max_rows` of them (but at
/// least one, as Packetbeat checks after adding), none that starts past the first
/// 100 KB of the response, each cut by [`add_value`].
pub(super) fn rows_packet(rs: &mut RespState, p: &[u8], len: usize, s: &MysqlSettings) {
    let first = p.first().copied().unwrap_or(0);
    if first == 0xFE && len < MAX_PAYLOAD {
        let status = if len <= 5 {
            parser::eof_status(p)
        } else {
            parser::parse_ok(p).unwrap_or_default().status
        };
        if status & parser::SERVER_MORE_RESULTS_EXISTS != 0 {
            rs.state = RState::Start;
        } else {
            rs.done = true;
        }
        return;
    }
    if first == 0xFF {
        error_packet(rs, p);
        return;
    }
    rs.r.num_rows += 1;
    let Some(t) = &mut rs.r.text else {
        return;
    };
    // Packetbeat keeps the first row even with `max_rows: 0` (it checks after
    // adding), and no row that starts past the first 100 KB of the response.
    let shown = rs.rows_shown < s.max_rows.max(1) && !rs.text_cut;
    if rs.r.wire.bytes > transaction::MAX_PAYLOAD_TEXT as u64 {
        rs.text_cut = true;
    }
    if !shown || t.len() >= transaction::MAX_RESPONSE_TEXT {
        return;
    }
    rs.rows_shown += 1;
    let max = s.max_row_length;
    let (mut row_len, mut fields) = (0, 0);
    let mut line = String::new();
    if rs.binary {
        let cols = rs.types.len();
        let nb = (cols + 9) / 8;
        let mut i = 1 + nb;
        let mut v = String::new();
        for (k, &(ty, unsigned)) in rs.types.iter().enumerate() {
            if row_len >= max {
                break;
            }
            let bit = k + 2;
            let null = p
                .get(1 + bit / 8)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0);
            v.clear();
            if null {
                v.push_str("NULL");
            } else if parser::binary_value_max(p, &mut i, ty, unsigned, false, max, &mut v)
                .is_none()
            {
                break;
            }
            add_value(&mut line, &mut row_len, &mut fields, v.as_bytes(), max);
        }
    } else {
        let mut i = 0;
        for _ in 0..rs.columns {
            if row_len >= max {
                break;
            }
            match parser::lenenc_str(p, &mut i) {
                Some(Some(v)) => add_value(&mut line, &mut row_len, &mut fields, v, max),
                Some(None) => add_value(&mut line, &mut row_len, &mut fields, b"NULL", max),
                None => break,
            }
        }
    }
    t.push_str(&line);
    t.push('\n');
}

/// The bound values of a COM_STMT_EXECUTE, Packetbeat-style: `1, 'bob', NULL`.
pub(super) fn render_params(p: &[u8], st: &mut Statement) -> Option<String> {
    let n = st.num_params as usize;
    if n == 0 {
        return None;
    }
    let mut i = 10;
    let nb = n.div_ceil(8);
    let bitmap = p.get(i..i + nb)?;
    i += nb;
    let bound = *p.get(i)?;
    i += 1;
    if bound == 1 {
        let types = p.get(i..i + 2 * n)?;
        st.types = types.chunks(2).map(|c| (c[0], c[1] & 0x80 != 0)).collect();
        i += 2 * n;
    }
    if st.types.len() != n {
        return None;
    }
    let mut out = String::new();
    for (k, &(ty, unsigned)) in st.types.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        if bitmap[k / 8] & (1 << (k % 8)) != 0 {
            out.push_str("NULL");
        } else if parser::binary_value(p, &mut i, ty, unsigned, true, &mut out).is_none() {
            out.push_str("...");
            break;
        }
        if text::cap(&mut out, MAX_PARAMS, text::ELLIPSIS) {
            break;
        }
    }
    Some(out)
}
