//! Thrift on the wire: transport and protocol detection, message headers, a resumable
//! scanner that finds where an unframed message ends, and the renderer that turns a
//! complete message into Packetbeat's text form (`(1: 1, 2: "x")`).
//!
//! Supported: TBinaryProtocol (strict and the old non-strict header), TCompactProtocol,
//! over TSocket (unframed) and TFramedTransport (4-byte length prefix).
//!
//! Every size read from the wire is checked against the bytes that can possibly
//! follow (`max_message`), nesting is bounded by [`MAX_DEPTH`] and struct fields by
//! `drop_after_n_struct_fields`; the renderer recurses at most [`MAX_DEPTH`] deep and
//! never allocates by a count read from the wire.

use std::fmt::Write as _;

use crate::text;

/// Deepest nesting of structs and collections followed.
pub const MAX_DEPTH: usize = 64;
/// Longest method name accepted.
pub const MAX_NAME: usize = 1024;

/// Message types of the header.
pub const CALL: u8 = 1;
pub const REPLY: u8 = 2;
pub const EXCEPTION: u8 = 3;
pub const ONEWAY: u8 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Socket,
    Framed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Binary,
    Compact,
}

/// What the configuration fixes; `None` = recognise it from the bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forced {
    pub transport: Option<Transport>,
    pub protocol: Option<Protocol>,
}

/// Transport and protocol of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub transport: Transport,
    pub protocol: Protocol,
}

impl Format {
    /// Bytes before the message header (the frame length).
    pub fn prefix(self) -> usize {
        match self.transport {
            Transport::Framed => 4,
            Transport::Socket => 0,
        }
    }
}

/// Why decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// More bytes are needed: the value starting here needs the buffer to be at
    /// least this long (relative to the start of the slice decoded).
    Need(usize),
    /// Not Thrift, or a bound was hit.
    Bad,
}

pub type Res<T> = Result<T, Stop>;

/// Decoding bounds, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_message: usize,
    pub max_struct_fields: usize,
}

/// Rendering options, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub string_max_size: usize,
    pub collection_max_size: usize,
    pub obfuscate_strings: bool,
}

fn be16(b: &[u8], at: usize) -> Res<i16> {
    b.get(at..at + 2)
        .map(|s| i16::from_be_bytes([s[0], s[1]]))
        .ok_or(Stop::Need(at + 2))
}

fn be32(b: &[u8], at: usize) -> Res<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(Stop::Need(at + 4))
}

fn be64(b: &[u8], at: usize) -> Res<u64> {
    let s = b.get(at..at + 8).ok_or(Stop::Need(at + 8))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

fn byte(b: &[u8], at: usize) -> Res<u8> {
    b.get(at).copied().ok_or(Stop::Need(at + 1))
}

/// Unsigned LEB128 varint of at most `max_bytes` bytes: (value, next offset).
fn varint(b: &[u8], at: usize, max_bytes: usize) -> Res<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..max_bytes {
        let c = byte(b, at + i)?;
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok((v, at + i + 1));
        }
    }
    Err(Stop::Bad)
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Value types, common to both protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    /// A compact-protocol bool field, whose value is in its type nibble.
    BoolConst(bool),
    Byte,
    I16,
    I32,
    I64,
    Double,
    Str,
    Struct,
    Map,
    Set,
    List,
    Uuid,
}

impl Ty {
    fn binary(t: u8) -> Res<Ty> {
        Ok(match t {
            2 => Ty::Bool,
            3 => Ty::Byte,
            4 => Ty::Double,
            6 => Ty::I16,
            8 => Ty::I32,
            10 => Ty::I64,
            11 => Ty::Str,
            12 => Ty::Struct,
            13 => Ty::Map,
            14 => Ty::Set,
            15 => Ty::List,
            16 => Ty::Uuid,
            _ => return Err(Stop::Bad),
        })
    }

    /// Compact element type (in collections: 1 and 2 both mean bool).
    fn compact(t: u8) -> Res<Ty> {
        Ok(match t {
            1 | 2 => Ty::Bool,
            3 => Ty::Byte,
            4 => Ty::I16,
            5 => Ty::I32,
            6 => Ty::I64,
            7 => Ty::Double,
            8 => Ty::Str,
            9 => Ty::List,
            10 => Ty::Set,
            11 => Ty::Map,
            12 => Ty::Struct,
            13 => Ty::Uuid,
            _ => return Err(Stop::Bad),
        })
    }

    fn compact_field(t: u8) -> Res<Ty> {
        match t {
            1 => Ok(Ty::BoolConst(true)),
            2 => Ok(Ty::BoolConst(false)),
            _ => Ty::compact(t),
        }
    }
}

/// The message header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub mtype: u8,
    pub seqid: i32,
    /// Offset of the first byte after the header (relative to the header start).
    pub len: usize,
}

/// Recognises the transport and protocol of a message starting at `b[0]`.
pub fn detect(b: &[u8], forced: Forced) -> Res<Format> {
    let transport = match forced.transport {
        Some(t) => t,
        None => {
            let b0 = byte(b, 0)?;
            if b0 == 0x80 || b0 == 0x82 {
                // Negative as a frame length: an unframed strict or compact header.
                Transport::Socket
            } else {
                let b4 = byte(b, 4)?;
                if b4 == 0x80 || b4 == 0x82 {
                    Transport::Framed
                } else {
                    // Old non-strict binary header: a name length then the name,
                    // framed or not. A name starts with an identifier character;
                    // inside a frame, byte 4 starts the name length (0x00).
                    let n = be32(b, 0)? as usize;
                    if (1..=MAX_NAME).contains(&n) && is_ident_byte(b4) {
                        Transport::Socket
                    } else {
                        Transport::Framed
                    }
                }
            }
        }
    };
    let at = match transport {
        Transport::Framed => {
            let len = be32(b, 0)?;
            if len == 0 || len > i32::MAX as u32 {
                return Err(Stop::Bad);
            }
            4
        }
        Transport::Socket => 0,
    };
    let first = byte(b, at)?;
    let protocol = match (forced.protocol, first) {
        (Some(Protocol::Compact), 0x82) | (None, 0x82) => Protocol::Compact,
        (Some(Protocol::Binary), 0x80) | (None, 0x80) | (Some(Protocol::Binary), 0x00) => {
            Protocol::Binary
        }
        (None, 0x00) => Protocol::Binary,
        _ => return Err(Stop::Bad),
    };
    Ok(Format {
        transport,
        protocol,
    })
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b':'
}

/// Reads the message header at `b[0]` (after any frame length).
pub fn header(b: &[u8], proto: Protocol) -> Res<Header> {
    match proto {
        Protocol::Binary => {
            let w = be32(b, 0)?;
            if w & 0x8000_0000 != 0 {
                // Strict: version 1, then the type in the low byte.
                if w & 0xffff_0000 != 0x8001_0000 {
                    return Err(Stop::Bad);
                }
                let mtype = (w & 0xff) as u8;
                let (name, at) = binary_name(b, 4)?;
                let seqid = be32(b, at)? as i32;
                check_type(mtype)?;
                Ok(Header {
                    name,
                    mtype,
                    seqid,
                    len: at + 4,
                })
            } else {
                let (name, at) = binary_name(b, 0)?;
                let mtype = byte(b, at)?;
                let seqid = be32(b, at + 1)? as i32;
                check_type(mtype)?;
                Ok(Header {
                    name,
                    mtype,
                    seqid,
                    len: at + 5,
                })
            }
        }
        Protocol::Compact => {
            if byte(b, 0)? != 0x82 {
                return Err(Stop::Bad);
            }
            let vt = byte(b, 1)?;
            if vt & 0x1f != 1 {
                return Err(Stop::Bad);
            }
            let mtype = vt >> 5;
            check_type(mtype)?;
            let (seq, at) = varint(b, 2, 5)?;
            let (n, at) = varint(b, at, 5)?;
            let n = n as usize;
            if n > MAX_NAME {
                return Err(Stop::Bad);
            }
            let raw = b.get(at..at + n).ok_or(Stop::Need(at + n))?;
            let name = std::str::from_utf8(raw).map_err(|_| Stop::Bad)?;
            Ok(Header {
                name: name.to_string(),
                mtype,
                seqid: seq as u32 as i32,
                len: at + n,
            })
        }
    }
}

fn check_type(t: u8) -> Res<()> {
    if (CALL..=ONEWAY).contains(&t) {
        Ok(())
    } else {
        Err(Stop::Bad)
    }
}

fn binary_name(b: &[u8], at: usize) -> Res<(String, usize)> {
    let n = be32(b, at)? as usize;
    if n > MAX_NAME {
        return Err(Stop::Bad);
    }
    let raw = b.get(at + 4..at + 4 + n).ok_or(Stop::Need(at + 4 + n))?;
    let name = std::str::from_utf8(raw).map_err(|_| Stop::Bad)?;
    Ok((name.to_string(), at + 4 + n))
}

/// Reads a field header at `at` of a struct whose previous field id is `last`:
/// `None` at the stop byte, else the type, id and offset of the value.
fn field_header(b: &[u8], at: usize, proto: Protocol, last: i16) -> Res<Option<(Ty, i16, usize)>> {
    let t = byte(b, at)?;
    if t == 0 {
        return Ok(None);
    }
    match proto {
        Protocol::Binary => {
            let ty = Ty::binary(t)?;
            let id = be16(b, at + 1)?;
            Ok(Some((ty, id, at + 3)))
        }
        Protocol::Compact => {
            let ty = Ty::compact_field(t & 0x0f)?;
            let delta = t >> 4;
            if delta != 0 {
                Ok(Some((ty, last.wrapping_add(i16::from(delta)), at + 1)))
            } else {
                let (v, next) = varint(b, at + 1, 3)?;
                Ok(Some((ty, zigzag(v) as i16, next)))
            }
        }
    }
}

/// Reads a list or set header: (element type, count, offset of the first element).
fn seq_header(b: &[u8], at: usize, proto: Protocol, bounds: &Bounds) -> Res<(Ty, usize, usize)> {
    let (ty, n, next) = match proto {
        Protocol::Binary => {
            let ty = Ty::binary(byte(b, at)?)?;
            let n = be32(b, at + 1)?;
            if n > i32::MAX as u32 {
                return Err(Stop::Bad);
            }
            (ty, n as u64, at + 5)
        }
        Protocol::Compact => {
            let h = byte(b, at)?;
            let ty = Ty::compact(h & 0x0f)?;
            if h >> 4 == 15 {
                let (n, next) = varint(b, at + 1, 5)?;
                (ty, n, next)
            } else {
                (ty, u64::from(h >> 4), at + 1)
            }
        }
    };
    // Every element takes at least one byte.
    if n > bounds.max_message as u64 {
        return Err(Stop::Bad);
    }
    Ok((ty, n as usize, next))
}

/// Reads a map header: (key type, value type, count, offset of the first key).
fn map_header(
    b: &[u8],
    at: usize,
    proto: Protocol,
    bounds: &Bounds,
) -> Res<(Ty, Ty, usize, usize)> {
    let (k, v, n, next) = match proto {
        Protocol::Binary => {
            let k = Ty::binary(byte(b, at)?)?;
            let v = Ty::binary(byte(b, at + 1)?)?;
            let n = be32(b, at + 2)?;
            if n > i32::MAX as u32 {
                return Err(Stop::Bad);
            }
            (k, v, n as u64, at + 6)
        }
        Protocol::Compact => {
            let (n, next) = varint(b, at, 5)?;
            if n == 0 {
                (Ty::Byte, Ty::Byte, 0, next)
            } else {
                let kv = byte(b, next)?;
                (Ty::compact(kv >> 4)?, Ty::compact(kv & 0x0f)?, n, next + 1)
            }
        }
    };
    if n.saturating_mul(2) > bounds.max_message as u64 {
        return Err(Stop::Bad);
    }
    Ok((k, v, n as usize, next))
}

/// A string or binary at `at`: (bytes, offset after it).
fn bytes_at<'a>(
    b: &'a [u8],
    at: usize,
    proto: Protocol,
    bounds: &Bounds,
) -> Res<(&'a [u8], usize)> {
    let (n, start) = match proto {
        Protocol::Binary => {
            let n = be32(b, at)?;
            if n > i32::MAX as u32 {
                return Err(Stop::Bad);
            }
            (n as usize, at + 4)
        }
        Protocol::Compact => {
            let (n, next) = varint(b, at, 5)?;
            (n as usize, next)
        }
    };
    if n > bounds.max_message {
        return Err(Stop::Bad);
    }
    let s = b.get(start..start + n).ok_or(Stop::Need(start + n))?;
    Ok((s, start + n))
}

/// A primitive value at `at` (not struct or collection): the offset after it.
fn skip_primitive(b: &[u8], at: usize, ty: Ty, proto: Protocol, bounds: &Bounds) -> Res<usize> {
    let fixed = |n: usize| {
        if b.len() >= at + n {
            Ok(at + n)
        } else {
            Err(Stop::Need(at + n))
        }
    };
    match (ty, proto) {
        (Ty::BoolConst(_), _) => Ok(at),
        (Ty::Bool | Ty::Byte, _) => fixed(1),
        (Ty::Double, _) => fixed(8),
        (Ty::Uuid, _) => fixed(16),
        (Ty::I16, Protocol::Binary) => fixed(2),
        (Ty::I32, Protocol::Binary) => fixed(4),
        (Ty::I64, Protocol::Binary) => fixed(8),
        (Ty::I16, Protocol::Compact) => varint(b, at, 3).map(|r| r.1),
        (Ty::I32, Protocol::Compact) => varint(b, at, 5).map(|r| r.1),
        (Ty::I64, Protocol::Compact) => varint(b, at, 10).map(|r| r.1),
        (Ty::Str, _) => bytes_at(b, at, proto, bounds).map(|r| r.1),
        (Ty::Struct | Ty::Map | Ty::Set | Ty::List, _) => Err(Stop::Bad),
    }
}

#[derive(Clone, Copy, Debug)]
enum Frame {
    Struct {
        last: i16,
        fields: usize,
    },
    Seq {
        ty: Ty,
        left: usize,
    },
    /// `left` counts keys and values; a key comes next when it is even.
    Map {
        k: Ty,
        v: Ty,
        left: usize,
    },
}

/// Finds where a message body (the top-level struct) ends, across calls: the
/// buffer presented again must start with the same bytes, longer. Each byte is
/// examined once in total, however the message is split.
#[derive(Clone, Debug)]
pub struct Scanner {
    proto: Protocol,
    pos: usize,
    stack: Vec<Frame>,
    pending: Option<Ty>,
    started: bool,
}

impl Scanner {
    /// A scanner for a body starting at offset `start` of the buffers it will see.
    pub fn new(proto: Protocol, start: usize) -> Scanner {
        Scanner {
            proto,
            pos: start,
            stack: Vec::new(),
            pending: None,
            started: false,
        }
    }

    /// Advances over `b`. `Ok(end)`: the body ends at `end`. `Err(Need(n))`: the
    /// buffer must be at least `n` bytes long before the next call helps.
    pub fn scan(&mut self, b: &[u8], bounds: &Bounds) -> Res<usize> {
        if !self.started {
            self.started = true;
            self.stack.push(Frame::Struct { last: 0, fields: 0 });
        }
        loop {
            if self.pos > bounds.max_message {
                return Err(Stop::Bad);
            }
            if let Some(ty) = self.pending {
                match ty {
                    Ty::Struct => {
                        self.push(Frame::Struct { last: 0, fields: 0 })?;
                    }
                    Ty::List | Ty::Set => {
                        let (ty, n, next) = seq_header(b, self.pos, self.proto, bounds)?;
                        self.pos = next;
                        self.push(Frame::Seq { ty, left: n })?;
                    }
                    Ty::Map => {
                        let (k, v, n, next) = map_header(b, self.pos, self.proto, bounds)?;
                        self.pos = next;
                        self.push(Frame::Map { k, v, left: n * 2 })?;
                    }
                    _ => {
                        self.pos = skip_primitive(b, self.pos, ty, self.proto, bounds)?;
                    }
                }
                self.pending = None;
                continue;
            }
            let Some(top) = self.stack.last_mut() else {
                return Ok(self.pos);
            };
            match top {
                Frame::Struct { last, fields } => {
                    match field_header(b, self.pos, self.proto, *last)? {
                        None => {
                            self.pos += 1;
                            self.stack.pop();
                        }
                        Some((ty, id, next)) => {
                            *fields += 1;
                            if *fields > bounds.max_struct_fields {
                                return Err(Stop::Bad);
                            }
                            *last = id;
                            self.pos = next;
                            self.pending = Some(ty);
                        }
                    }
                }
                Frame::Seq { ty, left } => {
                    if *left == 0 {
                        self.stack.pop();
                    } else {
                        *left -= 1;
                        self.pending = Some(*ty);
                    }
                }
                Frame::Map { k, v, left } => {
                    if *left == 0 {
                        self.stack.pop();
                    } else {
                        let ty = if *left % 2 == 0 { *k } else { *v };
                        *left -= 1;
                        self.pending = Some(ty);
                    }
                }
            }
        }
    }

    fn push(&mut self, f: Frame) -> Res<()> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Stop::Bad);
        }
        self.stack.push(f);
        Ok(())
    }
}

/// A rendered top-level field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub id: i16,
    pub value: String,
}

/// The rendered top-level struct of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// The first `collection_max_size` fields.
    pub fields: Vec<Field>,
    /// More fields followed.
    pub more: bool,
}

/// Renders a complete message body (the top-level struct) at `b[at..]`.
/// Running out of bytes is an error here: `b` holds the whole message.
pub fn render_body(
    b: &[u8],
    at: usize,
    proto: Protocol,
    bounds: &Bounds,
    style: &Style,
) -> Res<(Body, usize)> {
    let r = Renderer {
        b,
        proto,
        bounds,
        style,
    };
    let mut body = Body::default();
    let mut pos = at;
    let mut last = 0i16;
    let mut n = 0usize;
    loop {
        let Some((ty, id, next)) = field_header(b, pos, proto, last).map_err(bad)? else {
            return Ok((body, pos + 1));
        };
        n += 1;
        if n > bounds.max_struct_fields {
            return Err(Stop::Bad);
        }
        last = id;
        if body.fields.len() < style.collection_max_size {
            let mut value = String::new();
            pos = r.value(next, ty, 1, Some(&mut value))?;
            body.fields.push(Field { id, value });
        } else {
            body.more = true;
            pos = r.value(next, ty, 1, None)?;
        }
    }
}

fn bad(_: Stop) -> Stop {
    Stop::Bad
}

struct Renderer<'a> {
    b: &'a [u8],
    proto: Protocol,
    bounds: &'a Bounds,
    style: &'a Style,
}

impl Renderer<'_> {
    /// Renders (or only skips, with `out` None) one value; returns the offset after it.
    fn value(&self, at: usize, ty: Ty, depth: usize, out: Option<&mut String>) -> Res<usize> {
        if depth > MAX_DEPTH {
            return Err(Stop::Bad);
        }
        let b = self.b;
        match ty {
            Ty::Struct => self.structure(at, depth, out),
            Ty::List | Ty::Set => {
                let (ety, n, mut pos) = seq_header(b, at, self.proto, self.bounds).map_err(bad)?;
                let (open, close) = if ty == Ty::List {
                    ('[', ']')
                } else {
                    ('{', '}')
                };
                let mut out = out;
                if let Some(o) = out.as_deref_mut() {
                    o.push(open);
                }
                for i in 0..n {
                    let shown = i < self.style.collection_max_size;
                    match out.as_deref_mut() {
                        Some(o) if shown => {
                            if i > 0 {
                                o.push_str(", ");
                            }
                            pos = self.value(pos, ety, depth + 1, Some(o))?;
                        }
                        Some(o) => {
                            if i == self.style.collection_max_size {
                                o.push_str(", ...");
                            }
                            pos = self.value(pos, ety, depth + 1, None)?;
                        }
                        None => pos = self.value(pos, ety, depth + 1, None)?,
                    }
                }
                if let Some(o) = out {
                    o.push(close);
                }
                Ok(pos)
            }
            Ty::Map => {
                let (kt, vt, n, mut pos) =
                    map_header(b, at, self.proto, self.bounds).map_err(bad)?;
                let mut out = out;
                if let Some(o) = out.as_deref_mut() {
                    o.push('{');
                }
                for i in 0..n {
                    let shown = i < self.style.collection_max_size;
                    match out.as_deref_mut() {
                        Some(o) if shown => {
                            if i > 0 {
                                o.push_str(", ");
                            }
                            pos = self.value(pos, kt, depth + 1, Some(o))?;
                            o.push_str(": ");
                            pos = self.value(pos, vt, depth + 1, Some(o))?;
                        }
                        Some(o) => {
                            if i == self.style.collection_max_size {
                                o.push_str(", ...");
                            }
                            pos = self.value(pos, kt, depth + 1, None)?;
                            pos = self.value(pos, vt, depth + 1, None)?;
                        }
                        None => {
                            pos = self.value(pos, kt, depth + 1, None)?;
                            pos = self.value(pos, vt, depth + 1, None)?;
                        }
                    }
                }
                if let Some(o) = out {
                    o.push('}');
                }
                Ok(pos)
            }
            _ => {
                let next = skip_primitive(b, at, ty, self.proto, self.bounds).map_err(bad)?;
                if let Some(o) = out {
                    self.primitive(at, ty, o)?;
                }
                Ok(next)
            }
        }
    }

    fn structure(&self, at: usize, depth: usize, mut out: Option<&mut String>) -> Res<usize> {
        let mut pos = at;
        let mut last = 0i16;
        let mut n = 0usize;
        if let Some(o) = out.as_deref_mut() {
            o.push('(');
        }
        loop {
            let Some((ty, id, next)) = field_header(self.b, pos, self.proto, last).map_err(bad)?
            else {
                if let Some(o) = out {
                    o.push(')');
                }
                return Ok(pos + 1);
            };
            if n >= self.bounds.max_struct_fields {
                return Err(Stop::Bad);
            }
            last = id;
            match out.as_deref_mut() {
                Some(o) if n < self.style.collection_max_size => {
                    if n > 0 {
                        o.push_str(", ");
                    }
                    let _ = write!(o, "{id}: ");
                    pos = self.value(next, ty, depth + 1, Some(o))?;
                }
                Some(o) => {
                    if n == self.style.collection_max_size {
                        o.push_str(", ...");
                    }
                    pos = self.value(next, ty, depth + 1, None)?;
                }
                None => pos = self.value(next, ty, depth + 1, None)?,
            }
            n += 1;
        }
    }

    fn primitive(&self, at: usize, ty: Ty, o: &mut String) -> Res<()> {
        let b = self.b;
        let compact = self.proto == Protocol::Compact;
        match ty {
            Ty::BoolConst(v) => o.push_str(if v { "true" } else { "false" }),
            Ty::Bool => {
                let v = byte(b, at).map_err(bad)?;
                // Compact writes 1 for true in collections (2 or 0 for false).
                let t = if compact { v == 1 } else { v != 0 };
                o.push_str(if t { "true" } else { "false" });
            }
            Ty::Byte => {
                let _ = write!(o, "{}", byte(b, at).map_err(bad)? as i8);
            }
            Ty::I16 | Ty::I32 | Ty::I64 => {
                let v: i64 = if compact {
                    zigzag(varint(b, at, 10).map_err(bad)?.0)
                } else {
                    match ty {
                        Ty::I16 => i64::from(be16(b, at).map_err(bad)?),
                        Ty::I32 => i64::from(be32(b, at).map_err(bad)? as i32),
                        _ => be64(b, at).map_err(bad)? as i64,
                    }
                };
                let v = match ty {
                    Ty::I16 => i64::from(v as i16),
                    Ty::I32 => i64::from(v as i32),
                    _ => v,
                };
                let _ = write!(o, "{v}");
            }
            Ty::Double => {
                let s = b.get(at..at + 8).ok_or(Stop::Bad)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                let f = if compact {
                    f64::from_le_bytes(a)
                } else {
                    f64::from_be_bytes(a)
                };
                format_double(f, o);
            }
            Ty::Uuid => {
                let s = b.get(at..at + 16).ok_or(Stop::Bad)?;
                for (i, c) in s.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        o.push('-');
                    }
                    let _ = write!(o, "{c:02x}");
                }
            }
            Ty::Str => {
                let (s, _) = bytes_at(b, at, self.proto, self.bounds).map_err(bad)?;
                format_string(s, self.style, o);
            }
            Ty::Struct | Ty::Map | Ty::Set | Ty::List => return Err(Stop::Bad),
        }
        Ok(())
    }
}

/// Shortest text that reads back as `f`, never in exponent form (`1`, `0.5`, `1e+20`
/// is written out); infinities and NaN as `+Inf`, `-Inf`, `NaN`.
pub fn format_double(f: f64, o: &mut String) {
    if f.is_nan() {
        o.push_str("NaN");
    } else if f.is_infinite() {
        o.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(o, "{f}");
    }
}

/// A string value: quoted and escaped when it is UTF-8, hex otherwise; cut to
/// `string_max_size` bytes followed by `...`; `"*"` when obfuscated.
pub fn format_string(s: &[u8], style: &Style, o: &mut String) {
    if s.is_empty() {
        o.push_str("\"\"");
        return;
    }
    if style.obfuscate_strings {
        o.push_str("\"*\"");
        return;
    }
    let cut = s.len() > style.string_max_size;
    match std::str::from_utf8(s) {
        Ok(t) => {
            o.push('"');
            quote_into(text::cut(t, style.string_max_size), o);
            if cut {
                o.push_str(text::ELLIPSIS);
            }
            o.push('"');
        }
        Err(_) => {
            let shown = if cut { &s[..style.string_max_size] } else { s };
            for c in shown {
                let _ = write!(o, "{c:02x}");
            }
            if cut {
                o.push_str(text::ELLIPSIS);
            }
        }
    }
}

fn quote_into(s: &str, o: &mut String) {
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{7}' => o.push_str("\\a"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            '\u{b}' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
}
