//! Bulk requests: index names by event time, action lines, and reading the
//! per-item results of a response.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;

use crate::output::queue::EventHour;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::event::json::write_escaped;
use crate::text;

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
    /// (`YYYY-MM-DDTHH...`). Control characters of the configured name are left
    /// out.
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
        out.retain(|c| c >= ' ');
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
    /// The index of the last event whose hour came with it, and of the last one
    /// whose hour was read from its text: consecutive events mostly share it.
    last_known: Option<(EventHour, u32)>,
    last_read: Option<([u8; 13], u32)>,
}

impl Batch {
    /// Adds an event. Its index comes from `hour` when the publisher knew it,
    /// else from the `@timestamp` at the start of `line` (or `now`).
    pub fn push(
        &mut self,
        line: &[u8],
        hour: Option<EventHour>,
        index: &IndexName,
        now: &[u8; 13],
        id: u64,
    ) {
        let idx = match hour {
            Some(h) => match self.last_known {
                Some((k, i)) if k == h => i,
                _ => {
                    let i = self.index_of(index, &h.text());
                    self.last_known = Some((h, i));
                    i
                }
            },
            None => {
                let text = event_hour(line, now);
                match self.last_read {
                    Some((k, i)) if k == text => i,
                    _ => {
                        let i = self.index_of(index, &text);
                        self.last_read = Some((text, i));
                        i
                    }
                }
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

    /// The position in `indices` of the index for events of hour `text`.
    fn index_of(&mut self, index: &IndexName, text: &[u8; 13]) -> u32 {
        let name = index.for_timestamp(text);
        match self.indices.iter().position(|n| *n == name) {
            Some(i) => i as u32,
            None => {
                self.indices.push(name);
                (self.indices.len() - 1) as u32
            }
        }
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
        self.last_known = None;
        self.last_read = None;
    }

    /// The NDJSON request body for `items` (all of this batch's, or the subset
    /// being retried). `doc_type`: the mapping type clusters before 7.0 require.
    pub fn body(&self, items: &[Item], doc_type: Option<&str>, out: &mut Vec<u8>) {
        out.clear();
        for it in items {
            out.extend_from_slice(b"{\"create\":{\"_index\":");
            let name = self
                .indices
                .get(it.index as usize)
                .map(String::as_str)
                .unwrap_or("wirebeat");
            write_escaped(out, name.as_bytes());
            out.extend_from_slice(b",\"_id\":\"");
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

/// What happened to one item of a bulk request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    Ok,
    /// 409: the id is already indexed (a resend of an item whose response was lost).
    Duplicate,
    /// 429 or 5xx: send again.
    Retry,
    /// Rejected for good (other 4xx: mapping error, bad request ...), with the error
    /// type and reason (each cut to [`MAX_ERROR_TEXT`] bytes).
    Fail(Cow<'a, str>, Cow<'a, str>),
}

/// The most bytes of an item's error type or reason kept for the log.
pub const MAX_ERROR_TEXT: usize = 300;

/// Why a bulk response says nothing reliable about its items: the whole request
/// is sent again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadResponse {
    /// Not JSON, truncated, or not shaped like a bulk response.
    Unreadable(String),
    /// `items` does not have one entry per document sent.
    ItemCount { sent: usize, got: usize },
}

impl std::fmt::Display for BadResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadResponse::Unreadable(e) => write!(f, "unreadable bulk response: {e}"),
            BadResponse::ItemCount { sent, got } => write!(
                f,
                "bulk response lists {got} item(s) for {sent} document(s) sent"
            ),
        }
    }
}

/// The outcome of every item of a bulk response, in the order the `n` documents
/// were sent. The response is parsed as JSON; only `items[*].<action>.status` and
/// the `type`/`reason` of failed items are kept (borrowed from `body` when they
/// hold no escapes), everything else is skipped. Any response that does not give
/// exactly `n` items, each with a valid status, is a [`BadResponse`]. Items past
/// `n` are only counted, so memory stays within `n` outcomes whatever the body
/// holds; skipped members are walked without recursion, and nesting deeper than
/// 128 levels where the response is read is an error, not a stack overflow.
pub fn outcomes(body: &[u8], n: usize) -> Result<Vec<Outcome<'_>>, BadResponse> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = walk(&mut de, n).and_then(|w| de.end().map(|()| w));
    judge(walked.map_err(|e| e.to_string()), n)
}

/// What [`walk`] read: the outcomes of the first `n` items, and how many items
/// there were (`None`: no `items` member).
pub struct Walked<'a> {
    outcomes: Vec<Outcome<'a>>,
    items: Option<usize>,
}

/// Reads a bulk response from any serde deserializer (the JSON parser is
/// chosen by [`outcomes`]; benches/es_bulk_response.rs compares others with it).
pub fn walk<'de, D: Deserializer<'de>>(d: D, n: usize) -> Result<Walked<'de>, D::Error> {
    let mut outcomes = Vec::with_capacity(n.min(1 << 16));
    let items = ResponseSeed {
        n,
        out: &mut outcomes,
    }
    .deserialize(d)?;
    Ok(Walked { outcomes, items })
}

/// The outcomes of a walked response that has exactly `n` items. A parser's
/// message is cut to [`MAX_ERROR_TEXT`] bytes (it may quote the offending value).
pub fn judge(
    walked: Result<Walked<'_>, String>,
    n: usize,
) -> Result<Vec<Outcome<'_>>, BadResponse> {
    let w = walked.map_err(|e| BadResponse::Unreadable(Text::owned(&e).0.into_owned()))?;
    match w.items {
        Some(got) if got == n => Ok(w.outcomes),
        Some(got) => Err(BadResponse::ItemCount { sent: n, got }),
        None => Err(BadResponse::Unreadable("no \"items\" array".into())),
    }
}

/// The top-level object: `items` goes into `out`, every other member is skipped.
/// Yields the number of items, or `None` without an `items` member.
struct ResponseSeed<'o, 'a> {
    n: usize,
    out: &'o mut Vec<Outcome<'a>>,
}

impl<'de> DeserializeSeed<'de> for ResponseSeed<'_, 'de> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed<'_, 'de> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a bulk response object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut got = None;
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::Items if got.is_some() => {
                    return Err(de::Error::custom("\"items\" appears twice"));
                }
                TopKey::Items => {
                    got = Some(map.next_value_seed(ItemsSeed {
                        n: self.n,
                        out: &mut *self.out,
                    })?);
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(got)
    }
}

enum TopKey {
    Items,
    Other,
}

impl<'de> Deserialize<'de> for TopKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TopKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TopKey, E> {
                Ok(if v == "items" {
                    TopKey::Items
                } else {
                    TopKey::Other
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `items`: one outcome per element for the first `n`, the rest only counted.
struct ItemsSeed<'o, 'a> {
    n: usize,
    out: &'o mut Vec<Outcome<'a>>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, 'de> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, 'de> {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of bulk items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let start = self.out.len();
        while self.out.len() - start < self.n {
            match seq.next_element::<ItemResult<'de>>()? {
                Some(item) => self.out.push(item.0),
                None => return Ok(self.out.len() - start),
            }
        }
        // Items past the documents sent are only counted (for the message).
        let mut extra = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            extra += 1;
        }
        Ok(self.n + extra)
    }
}

/// One element of `items`: `{"<action>": {"status": N, "error": ..., ...}}`, any
/// action name (`create`, `index`, ...).
struct ItemResult<'a>(Outcome<'a>);

impl<'de> Deserialize<'de> for ItemResult<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ItemResult<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a bulk item: an object with one action")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                if map.next_key::<IgnoredAny>()?.is_none() {
                    return Err(de::Error::custom("bulk item without an action"));
                }
                let r: ItemBody<'de> = map.next_value()?;
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("bulk item with several actions"));
                }
                r.outcome().map(ItemResult).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct ItemBody<'a> {
    status: Option<u16>,
    #[serde(borrow, default)]
    error: Option<ItemError<'a>>,
}

impl<'a> ItemBody<'a> {
    fn outcome(self) -> Result<Outcome<'a>, String> {
        let Some(s) = self.status else {
            return Err("bulk item without a status".into());
        };
        Ok(match s {
            200..=299 => Outcome::Ok,
            409 => Outcome::Duplicate,
            429 | 500..=599 => Outcome::Retry,
            400..=499 => {
                let e = self.error.unwrap_or_default();
                let kind = e.kind.map(|t| t.0).unwrap_or(Cow::Borrowed("error"));
                let reason = e
                    .reason
                    .map(|t| t.0)
                    .unwrap_or_else(|| Cow::Owned(format!("status {s}")));
                Outcome::Fail(kind, reason)
            }
            s => return Err(format!("bulk item with status {s}")),
        })
    }
}

/// An item's `error`: an object with `type` and `reason` (other members, such as
/// `caused_by`, are skipped), or a plain string (Elasticsearch 1.x), or null.
#[derive(Default)]
struct ItemError<'a> {
    kind: Option<Text<'a>>,
    reason: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ItemError<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ItemError<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an item error")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut e = ItemError::default();
                while let Some(k) = map.next_key::<ErrKey>()? {
                    match k {
                        ErrKey::Type if e.kind.is_none() => e.kind = Some(map.next_value()?),
                        ErrKey::Reason if e.reason.is_none() => e.reason = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(e)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ItemError {
                    kind: None,
                    reason: Some(Text::borrowed(v)),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ItemError {
                    kind: None,
                    reason: Some(Text::owned(v)),
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ItemError::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ItemError::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ItemError::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ItemError::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ItemError::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ItemError::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

enum ErrKey {
    Type,
    Reason,
    Other,
}

impl<'de> Deserialize<'de> for ErrKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ErrKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrKey, E> {
                Ok(match v {
                    "type" => ErrKey::Type,
                    "reason" => ErrKey::Reason,
                    _ => ErrKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string of an error for the log, cut to [`MAX_ERROR_TEXT`] bytes (and `...`
/// added); a value
/// that is not a string (a number, an object) is skipped and reads as empty.
struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    fn borrowed(v: &'a str) -> Text<'a> {
        Text(text::capped(v, MAX_ERROR_TEXT, text::ELLIPSIS))
    }
    fn owned(v: &str) -> Text<'a> {
        Text(Cow::Owned(
            text::capped(v, MAX_ERROR_TEXT, text::ELLIPSIS).into_owned(),
        ))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text::borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text::owned(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
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
            None,
            &idx,
            &now,
            1,
        );
        // An hour that comes with the event is used as is.
        let midnight = crate::time::Ts::from_secs_nanos(1_795_564_800, 0);
        b.push(
            br#"{"@timestamp":"2026-11-25T00:00:00.000Z"}"#,
            Some(EventHour::of(midnight)),
            &idx,
            &now,
            2,
        );
        b.push(br#"{"a":1}"#, Some(EventHour::of(midnight)), &idx, &now, 3);
        assert_eq!(
            b.indices,
            ["packetbeat-2026.11.24", "packetbeat-2026.11.25"]
        );
        assert_eq!(b.items[2].index, 1);
        let mut body = Vec::new();
        b.body(&b.items[1..2], None, &mut body);
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            "{\"create\":{\"_index\":\"packetbeat-2026.11.25\",\"_id\":\"0000000000000002\"}}\n\
             {\"@timestamp\":\"2026-11-25T00:00:00.000Z\"}\n"
        );
        b.body(&b.items[..1], Some("doc"), &mut body);
        assert!(body.starts_with(b"{\"create\":{\"_index\":\"packetbeat-2026.11.24\",\"_id\":\"0000000000000001\",\"_type\":\"doc\"}}\n"));
    }

    #[test]
    fn index_names_are_escaped_in_the_action_line() {
        // Quotes and backslashes escaped, control characters left out, the rest
        // (DEL included) a valid JSON string of the name.
        let idx = IndexName::parse("a\"b\\c\u{1}\u{1f}\t\u{7f}\u{e9}-%{+yyyy\u{2}}").unwrap();
        let mut b = Batch::default();
        b.push(
            br#"{"@timestamp":"2026-11-24T23:26:38.865Z"}"#,
            None,
            &idx,
            &now_hour(),
            1,
        );
        let mut body = Vec::new();
        b.body(&b.items, None, &mut body);
        let action = body.split(|&c| c == b'\n').next().unwrap();
        assert_eq!(
            std::str::from_utf8(action).unwrap(),
            "{\"create\":{\"_index\":\"a\\\"b\\\\c\\u007f\u{e9}-2026\",\"_id\":\"0000000000000001\"}}"
        );
        let v: serde_json::Value = serde_json::from_slice(action).unwrap();
        assert_eq!(v["create"]["_index"], "a\"b\\c\u{7f}\u{e9}-2026");
    }

    fn fail(kind: &str, reason: &str) -> Outcome<'static> {
        Outcome::Fail(Cow::Owned(kind.into()), Cow::Owned(reason.into()))
    }

    const MIXED: &str = r#"{"took":3,"errors":true,"items":[
        {"create":{"_index":"i","_id":"1","status":201,"result":"created","_shards":{"total":2,"successful":1,"failed":0}}},
        {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected"}}},
        {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [x]"}}},
        {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},
        {"create":{"status":503}}]}"#;

    fn mixed_expected() -> Vec<Outcome<'static>> {
        vec![
            Outcome::Ok,
            Outcome::Retry,
            fail("mapper_parsing_exception", "failed to parse field [x]"),
            Outcome::Duplicate,
            Outcome::Retry,
        ]
    }

    #[test]
    fn outcomes_of_every_item() {
        assert_eq!(outcomes(MIXED.as_bytes(), 5).unwrap(), mixed_expected());
        let ok = br#"{"took":3,"errors":false,"items":[{"create":{"status":201}},{"create":{"status":200}}]}"#;
        assert_eq!(outcomes(ok, 2).unwrap(), vec![Outcome::Ok, Outcome::Ok]);
        // Failures without a type or reason still count, under a generic type.
        let bare =
            br#"{"items":[{"create":{"status":400}},{"create":{"status":404,"error":null}}]}"#;
        assert_eq!(
            outcomes(bare, 2).unwrap(),
            vec![fail("error", "status 400"), fail("error", "status 404")]
        );
        // Elasticsearch 1.x: the error is a string.
        let old = br#"{"took":1,"items":[{"create":{"_index":"i","_type":"t","_id":"1","status":400,"error":"MapperParsingException[failed to parse [x]]"}}]}"#;
        assert_eq!(
            outcomes(old, 1).unwrap(),
            vec![fail("error", "MapperParsingException[failed to parse [x]]")]
        );
    }

    #[test]
    fn spaces_and_newlines_change_nothing() {
        // What `?pretty`, proxies and compatible servers send: the item outcomes
        // do not depend on the layout, including `"errors" : true` spellings.
        let v: serde_json::Value = serde_json::from_str(MIXED).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert!(pretty.contains("\"errors\": true"));
        assert_eq!(outcomes(pretty.as_bytes(), 5).unwrap(), mixed_expected());
        let spaced = MIXED
            .replace(':', " :\r\n\t ")
            .replace(',', " ,\n ")
            .replace('{', "{ ")
            .replace('}', " } ");
        assert_eq!(outcomes(spaced.as_bytes(), 5).unwrap(), mixed_expected());
        let padded = format!("\n\n  {MIXED}  \n");
        assert_eq!(outcomes(padded.as_bytes(), 5).unwrap(), mixed_expected());
        // `errors` saying false does not hide a failed item, nor true an
        // all-good response.
        let liar = br#"{"errors" : false, "items" : [ {"create" : {"status" : 503}} ]}"#;
        assert_eq!(outcomes(liar, 1).unwrap(), vec![Outcome::Retry]);
        let liar = br#"{"errors":true,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(outcomes(liar, 1).unwrap(), vec![Outcome::Ok]);
    }

    #[test]
    fn any_action_name_and_unknown_members() {
        let r = br#"{"items":[
            {"index":{"status":201,"_version":1,"get":{"found":true,"_source":{"a":[1,{"b":null}]}}}},
            {"update":{"status":200}},
            {"delete":{"status":404,"result":"not_found"}},
            {"create":{"future_member":{"x":[[[]]]},"status":429,"error":{"reason":"r","type":"t","extra":1.5e3}}}
            ],"took":1,"new_top_level":{"items":"not this one"},"errors":true}"#;
        assert_eq!(
            outcomes(r, 4).unwrap(),
            vec![
                Outcome::Ok,
                Outcome::Ok,
                fail("error", "status 404"),
                Outcome::Retry
            ]
        );
    }

    #[test]
    fn error_texts_unescaped_cut_and_borrowed() {
        let r = r#"{"items":[{"create":{"status":400,"error":{
            "type":"mapper_parsing_exception",
            "reason":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \n tab\t ünïcødé",
            "caused_by":{"type":"x","reason":"y","caused_by":{"type":"z","caused_by":{"reason":"deep","stack":["a","b"]}}},
            "root_cause":[{"type":"r","reason":"s"}]}}}]}"#;
        let o = outcomes(r.as_bytes(), 1).unwrap();
        let Outcome::Fail(kind, reason) = &o[0] else {
            panic!("{o:?}")
        };
        assert_eq!(kind, "mapper_parsing_exception");
        assert!(matches!(kind, Cow::Borrowed(_)), "no escape: no copy");
        assert_eq!(reason, "café 😀 \"q\" \\ / \n tab\t ünïcødé");
        // Long texts are cut on a character boundary.
        let long = "é".repeat(1000);
        for escaped in [false, true] {
            let text = if escaped {
                format!("\\n{long}")
            } else {
                long.clone()
            };
            let r = format!(
                r#"{{"items":[{{"create":{{"status":400,"error":{{"type":"{long}","reason":"{text}"}}}}}}]}}"#
            );
            let o = outcomes(r.as_bytes(), 1).unwrap();
            let Outcome::Fail(kind, reason) = &o[0] else {
                panic!()
            };
            assert!(kind.len() <= MAX_ERROR_TEXT + 3 && kind.ends_with("é..."));
            assert!(reason.len() <= MAX_ERROR_TEXT + 3 && reason.ends_with("..."));
        }
        // A type or reason that is not a string is skipped.
        let r = br#"{"items":[{"create":{"status":400,"error":{"type":{"a":1},"reason":[1,2]}}},{"create":{"status":400,"error":7}}]}"#;
        assert_eq!(
            outcomes(r, 2).unwrap(),
            vec![fail("", ""), fail("error", "status 400")]
        );
    }

    #[test]
    fn wrong_item_counts_are_bad_responses() {
        let two = br#"{"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
        assert_eq!(
            outcomes(two, 3),
            Err(BadResponse::ItemCount { sent: 3, got: 2 })
        );
        assert_eq!(
            outcomes(two, 1),
            Err(BadResponse::ItemCount { sent: 1, got: 2 })
        );
        assert_eq!(
            outcomes(br#"{"items":[]}"#, 1),
            Err(BadResponse::ItemCount { sent: 1, got: 0 })
        );
        let msg = outcomes(two, 3).unwrap_err().to_string();
        assert!(msg.contains("2 item(s) for 3 document(s)"), "{msg}");
    }

    #[test]
    fn malformed_responses_are_bad_responses() {
        let bad: &[&[u8]] = &[
            b"",
            b"<html><body>502 Bad Gateway</body></html>",
            b"null",
            b"[]",
            br#"{"took":1,"errors":true}"#,
            br#"{"error":{"type":"x"},"status":400}"#,
            br#"{"items":{"create":{"status":201}}}"#,
            br#"{"items":[{"create":{"status":201}}]} trailing"#,
            br#"{"items":[{"create":{"status":201}}]}{"items":[]}"#,
            br#"{"items":[{"create":{"status":201}}],"items":[{"create":{"status":201}}]}"#,
            br#"{"items":[{}]}"#,
            br#"{"items":[{"create":{"status":201},"index":{"status":201}}]}"#,
            br#"{"items":[{"create":{"_id":"1"}}]}"#,
            br#"{"items":[{"create":{"status":"201"}}]}"#,
            br#"{"items":[{"create":{"status":201.0}}]}"#,
            br#"{"items":[{"create":{"status":-1}}]}"#,
            br#"{"items":[{"create":{"status":70000}}]}"#,
            br#"{"items":[{"create":{"status":0}}]}"#,
            br#"{"items":[{"create":{"status":302}}]}"#,
            br#"{"items":[{"create":{"status":600}}]}"#,
            br#"{"items":[{"create":{"status":201,"status":400}}]}"#,
            br#"{"items":[{"create":201}]}"#,
            br#"{"items":[null]}"#,
            b"{\"items\":[{\"create\":{\"status\":400,\"error\":\"\xff\"}}]}",
        ];
        for b in bad {
            assert!(
                matches!(outcomes(b, 1), Err(BadResponse::Unreadable(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(b),
                outcomes(b, 1)
            );
        }
        // Every truncation of a good response is refused, never half-used.
        for cut in 0..MIXED.len() - 1 {
            let part = MIXED[..cut].trim_end();
            if part.len() == MIXED.trim_end().len() {
                continue;
            }
            assert!(outcomes(part.as_bytes(), 5).is_err(), "{part}");
        }
    }

    #[test]
    fn hostile_sizes_stay_bounded() {
        // 200 000 items for two documents: counted, not stored.
        let mut r = String::from("{\"items\":[");
        for i in 0..200_000 {
            if i > 0 {
                r.push(',');
            }
            r.push_str("{\"create\":{\"status\":400,\"error\":{\"type\":\"t\"}}}");
        }
        r.push_str("]}");
        assert_eq!(
            outcomes(r.as_bytes(), 2),
            Err(BadResponse::ItemCount {
                sent: 2,
                got: 200_000
            })
        );
        // Deep nesting: skipped members are walked without recursion, and the
        // parts that are read refuse it; never a stack overflow.
        for depth in [200, 100_000] {
            let deep = format!(
                "{{\"items\":[{{\"create\":{{\"status\":400,\"error\":{{\"type\":\"t\",\"caused_by\":{}{}}}}}}}]}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert_eq!(
                outcomes(deep.as_bytes(), 1).unwrap(),
                vec![fail("t", "status 400")]
            );
            let deep = format!(
                "{{\"took\":{}1{},\"items\":[{{\"index\":{{\"status\":201}}}}]}}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            );
            assert_eq!(outcomes(deep.as_bytes(), 1).unwrap(), vec![Outcome::Ok]);
            let deep = format!("{{\"items\":[{}{}]}}", "[".repeat(depth), "]".repeat(depth));
            assert!(outcomes(deep.as_bytes(), 1).is_err());
            let deep = format!("{{\"items\":[{}", "{\"a\":".repeat(depth));
            assert!(outcomes(deep.as_bytes(), 1).is_err());
        }
        // A parser message quoting a huge value is cut too.
        let r = format!(
            r#"{{"items":[{{"create":{{"status":"{}"}}}}]}}"#,
            "9".repeat(1 << 20)
        );
        let e = outcomes(r.as_bytes(), 1).unwrap_err().to_string();
        assert!(e.len() < MAX_ERROR_TEXT + 40, "{} bytes", e.len());
        // A very long reason is cut, whatever its size.
        let r = format!(
            r#"{{"items":[{{"create":{{"status":400,"error":{{"type":"t","reason":"{}"}}}}}}]}}"#,
            "\\u0041".repeat(1 << 20)
        );
        let o = outcomes(r.as_bytes(), 1).unwrap();
        assert_eq!(
            o,
            vec![fail("t", &format!("{}...", "A".repeat(MAX_ERROR_TEXT)))]
        );
    }
}
