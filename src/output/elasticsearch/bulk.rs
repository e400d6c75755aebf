//! Bulk requests: index names by event time, action lines, and reading the
//! per-item results of a response.

use std::ops::Range;

use serde::Deserialize;

/// The index an event goes to, from its `@timestamp` (UTC).
///
/// `index: packetbeat` (Packetbeat 1.x) means daily indices `packetbeat-YYYY.MM.DD`;
/// a name with a date pattern (`wirebeat-%{+yyyy.MM.dd}`, also `%{+yyyy.MM}`,
/// `%{+yyyy}`, with `HH` for hours) is expanded as written.
#[derive(Clone, Debug)]
pub struct IndexName {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Lit(String),
    /// Byte ranges of `YYYY-MM-DDTHH` and their separators, as a format.
    Date(Vec<DateTok>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum DateTok {
    Year4,
    Year2,
    Month,
    Day,
    Hour,
    Ch(char),
}

impl IndexName {
    pub fn parse(index: &str) -> Result<IndexName, String> {
        let index = index.trim();
        if index.is_empty() {
            return Err("index: empty name".into());
        }
        if !index.contains("%{") {
            return Ok(IndexName {
                parts: vec![
                    Part::Lit(format!("{index}-")),
                    Part::Date(vec![
                        DateTok::Year4,
                        DateTok::Ch('.'),
                        DateTok::Month,
                        DateTok::Ch('.'),
                        DateTok::Day,
                    ]),
                ],
            });
        }
        let mut parts = Vec::new();
        let mut rest = index;
        while let Some(i) = rest.find("%{") {
            if i > 0 {
                parts.push(Part::Lit(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("index {index:?}: unclosed %{{"))?;
            let spec = &after[..end];
            let fmt = spec.strip_prefix('+').ok_or_else(|| {
                format!("index {index:?}: only date patterns like %{{+yyyy.MM.dd}} are supported")
            })?;
            parts.push(Part::Date(
                date_format(fmt).map_err(|e| format!("index {index:?}: {e}"))?,
            ));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(IndexName { parts })
    }

    /// The index name for an event whose timestamp starts with `ts`
    /// (`YYYY-MM-DDTHH...`).
    pub fn for_timestamp(&self, ts: &[u8; 13]) -> String {
        let mut out = String::with_capacity(32);
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Date(toks) => {
                    for t in toks {
                        let r = match t {
                            DateTok::Year4 => 0..4,
                            DateTok::Year2 => 2..4,
                            DateTok::Month => 5..7,
                            DateTok::Day => 8..10,
                            DateTok::Hour => 11..13,
                            DateTok::Ch(c) => {
                                out.push(*c);
                                continue;
                            }
                        };
                        out.extend(ts[r].iter().map(|&b| b as char));
                    }
                }
            }
        }
        out
    }
}

fn date_format(fmt: &str) -> Result<Vec<DateTok>, String> {
    let mut toks = Vec::new();
    let mut rest = fmt;
    while !rest.is_empty() {
        let (tok, n) = if rest.starts_with("yyyy") {
            (DateTok::Year4, 4)
        } else if rest.starts_with("yy") {
            (DateTok::Year2, 2)
        } else if rest.starts_with("MM") {
            (DateTok::Month, 2)
        } else if rest.starts_with("dd") {
            (DateTok::Day, 2)
        } else if rest.starts_with("HH") {
            (DateTok::Hour, 2)
        } else {
            let c = rest.chars().next().unwrap_or('.');
            if c.is_ascii_alphabetic() {
                return Err(format!(
                    "unsupported date letter {c:?} (use yyyy, yy, MM, dd, HH)"
                ));
            }
            (DateTok::Ch(c), c.len_utf8())
        };
        toks.push(tok);
        rest = &rest[n..];
    }
    Ok(toks)
}

/// `YYYY-MM-DDTHH` of an encoded event: its `@timestamp`, which the encoder writes
/// first; anything else (a foreign line) gets `now`.
pub fn event_hour(line: &[u8], now: &[u8; 13]) -> [u8; 13] {
    const KEY: &[u8] = b"\"@timestamp\":\"";
    let head = &line[..line.len().min(64)];
    if let Some(i) = memchr::memmem::find(head, KEY) {
        let v = &line[i + KEY.len()..];
        if v.len() >= 13 && v[4] == b'-' && v[7] == b'-' && v[10] == b'T' {
            let ok = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12]
                .iter()
                .all(|&k| v[k].is_ascii_digit());
            if ok {
                let mut out = [0u8; 13];
                out.copy_from_slice(&v[..13]);
                return out;
            }
        }
    }
    *now
}

/// `YYYY-MM-DDTHH` of the wall clock (UTC).
pub fn now_hour() -> [u8; 13] {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut buf = Vec::with_capacity(24);
    crate::time::Ts(secs.saturating_mul(1_000_000_000)).write_rfc3339_millis(&mut buf);
    let mut out = *b"1970-01-01T00";
    if buf.len() >= 13 {
        out.copy_from_slice(&buf[..13]);
    }
    out
}

/// One event of a batch: its document bytes, index and stable id.
#[derive(Clone, Debug)]
pub struct Item {
    pub doc: Range<usize>,
    pub index: u32,
    /// The document `_id`: resending an item after a lost response creates no
    /// duplicate (`create` of an existing id answers 409).
    pub id: u64,
}

/// Events waiting to be sent together.
#[derive(Debug, Default)]
pub struct Batch {
    pub docs: Vec<u8>,
    pub items: Vec<Item>,
    pub indices: Vec<String>,
    last_hour: Option<([u8; 13], u32)>,
}

impl Batch {
    pub fn push(&mut self, line: &[u8], index: &IndexName, now: &[u8; 13], id: u64) {
        let hour = event_hour(line, now);
        let idx = match self.last_hour {
            Some((h, i)) if h == hour => i,
            _ => {
                let name = index.for_timestamp(&hour);
                let i = match self.indices.iter().position(|n| *n == name) {
                    Some(i) => i as u32,
                    None => {
                        self.indices.push(name);
                        (self.indices.len() - 1) as u32
                    }
                };
                self.last_hour = Some((hour, i));
                i
            }
        };
        let start = self.docs.len();
        self.docs.extend_from_slice(line);
        self.items.push(Item {
            doc: start..self.docs.len(),
            index: idx,
            id,
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.docs.clear();
        self.items.clear();
        self.indices.clear();
        self.last_hour = None;
    }

    /// The NDJSON request body for `items` (all of this batch's, or the subset
    /// being retried). `doc_type`: the mapping type clusters before 7.0 require.
    pub fn body(&self, items: &[Item], doc_type: Option<&str>, out: &mut Vec<u8>) {
        out.clear();
        for it in items {
            out.extend_from_slice(b"{\"create\":{\"_index\":\"");
            let name = self
                .indices
                .get(it.index as usize)
                .map(String::as_str)
                .unwrap_or("wirebeat");
            json_escape_into(name, out);
            out.extend_from_slice(b"\",\"_id\":\"");
            push_id(it.id, out);
            out.push(b'"');
            if let Some(t) = doc_type {
                out.extend_from_slice(b",\"_type\":\"");
                out.extend_from_slice(t.as_bytes());
                out.push(b'"');
            }
            out.extend_from_slice(b"}}\n");
            out.extend_from_slice(&self.docs[it.doc.clone()]);
            out.push(b'\n');
        }
    }
}

/// A document id: 16 hex digits.
pub fn push_id(id: u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((id >> (i * 4)) & 0xf) as usize]);
    }
}

fn json_escape_into(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {}
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// What happened to one item of a bulk request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Already indexed (a resend of an item whose response was lost).
    Duplicate,
    /// 429 or 5xx: send again.
    Retry,
    /// Rejected for good (mapping error, bad request ...), with the reason.
    Fail(String, String),
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<std::collections::BTreeMap<String, ItemResult>>,
}

#[derive(Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Whether a bulk response says that some items failed (`"errors":true`), without
/// parsing it.
pub fn has_errors(body: &[u8]) -> bool {
    let head = &body[..body.len().min(256)];
    if memchr::memmem::find(head, b"\"errors\":false").is_some() {
        return false;
    }
    memchr::memmem::find(head, b"\"errors\":true").is_some()
        || memchr::memmem::find(head, b"\"errors\"").is_none()
        || memchr::memmem::find(head, b"\"errors\" : true").is_some()
}

/// Per-item outcomes of a response with errors; `n` items were sent. Items the
/// response does not account for are retried.
pub fn outcomes(body: &[u8], n: usize) -> Result<Vec<Outcome>, String> {
    let r: BulkResponse =
        serde_json::from_slice(body).map_err(|e| format!("unreadable bulk response: {e}"))?;
    let mut out = Vec::with_capacity(n);
    for item in r.items.iter().take(n) {
        let Some(res) = item.values().next() else {
            out.push(Outcome::Retry);
            continue;
        };
        out.push(match res.status {
            200..=299 => Outcome::Ok,
            409 => Outcome::Duplicate,
            429 | 500..=599 => Outcome::Retry,
            s => {
                let (kind, reason) = match &res.error {
                    Some(serde_json::Value::Object(e)) => (
                        e.get("type")
                            .and_then(|v| v.as_str())
                            .unwrap_or("error")
                            .to_string(),
                        e.get("reason")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_string(),
                    ),
                    Some(v) => ("error".to_string(), v.to_string()),
                    None => ("error".to_string(), format!("status {s}")),
                };
                Outcome::Fail(kind, truncate(reason, 300))
            }
        });
    }
    while out.len() < n {
        out.push(Outcome::Retry);
    }
    Ok(out)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_index_by_event_time() {
        let n = IndexName::parse("packetbeat").unwrap();
        assert_eq!(n.for_timestamp(b"2024-03-09T23"), "packetbeat-2024.03.09");
        let n = IndexName::parse("wb-%{+yyyy.MM.dd}-x").unwrap();
        assert_eq!(n.for_timestamp(b"2024-03-09T23"), "wb-2024.03.09-x");
        let n = IndexName::parse("wb-%{+yy-MM}.%{+HH}").unwrap();
        assert_eq!(n.for_timestamp(b"2024-03-09T23"), "wb-24-03.23");
        assert!(IndexName::parse("wb-%{[agent.name]}").is_err());
        assert!(IndexName::parse("wb-%{+yyyy.ww}").is_err());
        assert!(IndexName::parse("").is_err());
    }

    #[test]
    fn hour_of_an_event() {
        let now = *b"2000-01-01T00";
        assert_eq!(
            &event_hour(br#"{"@timestamp":"2026-11-24T23:26:38.865Z","a":1}"#, &now),
            b"2026-11-24T23"
        );
        assert_eq!(&event_hour(br#"{"a":1}"#, &now), &now);
        assert_eq!(&event_hour(br#"{"@timestamp":"20x6-11"}"#, &now), &now);
        assert_eq!(&now_hour()[..2], b"20");
    }

    #[test]
    fn body_and_outcomes() {
        let idx = IndexName::parse("packetbeat").unwrap();
        let now = now_hour();
        let mut b = Batch::default();
        b.push(
            br#"{"@timestamp":"2026-11-24T23:26:38.865Z"}"#,
            &idx,
            &now,
            1,
        );
        b.push(
            br#"{"@timestamp":"2026-11-25T00:00:00.000Z"}"#,
            &idx,
            &now,
            2,
        );
        let mut body = Vec::new();
        b.body(&b.items[1..], None, &mut body);
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            "{\"create\":{\"_index\":\"packetbeat-2026.11.25\",\"_id\":\"0000000000000002\"}}\n\
             {\"@timestamp\":\"2026-11-25T00:00:00.000Z\"}\n"
        );
        b.body(&b.items[..1], Some("doc"), &mut body);
        assert!(body.starts_with(b"{\"create\":{\"_index\":\"packetbeat-2026.11.24\",\"_id\":\"0000000000000001\",\"_type\":\"doc\"}}\n"));

        assert!(!has_errors(br#"{"took":3,"errors":false,"items":[]}"#));
        let resp = br#"{"took":3,"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [x]"}}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},
            {"create":{"status":503}}]}"#;
        assert!(has_errors(resp));
        let o = outcomes(resp, 6).unwrap();
        assert_eq!(o[0], Outcome::Ok);
        assert_eq!(o[1], Outcome::Retry);
        assert_eq!(
            o[2],
            Outcome::Fail(
                "mapper_parsing_exception".into(),
                "failed to parse field [x]".into()
            )
        );
        assert_eq!(o[3], Outcome::Duplicate);
        assert_eq!(o[4], Outcome::Retry);
        assert_eq!(o[5], Outcome::Retry, "missing items are retried");
        assert!(outcomes(b"<html>", 1).is_err());
    }
}
