//! A small append-only JSON writer. Events are written straight into a reused byte
//! buffer in a fixed key order, without building an intermediate tree, so encoding is
//! cheap and the output of a replay is byte-for-byte reproducible.

/// Writes one JSON value (usually an object) into `buf`. Commas are placed
/// automatically; the caller opens and closes objects and arrays in order.
///
/// Whether a comma goes before the next element depends only on what was written
/// last: none after an opening bracket or a key, one after any value (a closed
/// container included). So one flag replaces a stack of open containers, and a
/// writer costs no allocation.
pub struct JsonWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// The last thing written was a value: the next element needs a comma.
    comma: bool,
}

impl<'a> JsonWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        JsonWriter { buf, comma: false }
    }

    /// Before a value or a key: the comma, when one is due. Every value ends by
    /// setting `comma`.
    #[inline(always)]
    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    #[inline]
    pub fn begin_object(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'{');
        self.comma = false;
        self
    }

    #[inline]
    pub fn end_object(&mut self) -> &mut Self {
        self.buf.push(b'}');
        self.comma = true;
        self
    }

    #[inline]
    pub fn begin_array(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'[');
        self.comma = false;
        self
    }

    #[inline]
    pub fn end_array(&mut self) -> &mut Self {
        self.buf.push(b']');
        self.comma = true;
        self
    }

    /// Writes a fixed object key (a literal of ours: never needs escaping); the next
    /// call must write its value. Inlined so that the literal's length is known
    /// where it is copied (no call to `memcpy` for a few bytes).
    #[inline(always)]
    pub fn key(&mut self, k: &'static str) -> &mut Self {
        debug_assert!(!any_escape(k.as_bytes()));
        if self.comma {
            self.buf.push(b',');
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.comma = false;
        self
    }

    /// Writes an object key taken from traffic (escaped); the next call must write
    /// its value.
    pub fn key_escaped(&mut self, k: &str) -> &mut Self {
        self.sep();
        write_escaped(self.buf, k.as_bytes());
        self.buf.push(b':');
        self.comma = false;
        self
    }

    /// Opens a nested object under `k`.
    #[inline(always)]
    pub fn object(&mut self, k: &'static str) -> &mut Self {
        self.key(k).begin_object()
    }

    #[inline]
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.sep();
        write_escaped(self.buf, v.as_bytes());
        self.comma = true;
        self
    }

    /// Writes bytes as a JSON string, replacing invalid UTF-8 with U+FFFD.
    pub fn bytes_lossy(&mut self, v: &[u8]) -> &mut Self {
        self.sep();
        match std::str::from_utf8(v) {
            Ok(s) => write_escaped(self.buf, s.as_bytes()),
            Err(_) => write_escaped(self.buf, String::from_utf8_lossy(v).as_bytes()),
        }
        self.comma = true;
        self
    }

    #[inline]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.sep();
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
        self.comma = true;
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.sep();
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
        self.comma = true;
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self.comma = true;
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"null");
        self.comma = true;
        self
    }

    /// Writes already-encoded JSON as a value. The caller guarantees validity.
    pub fn raw(&mut self, json: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(json);
        self.comma = true;
        self
    }

    /// Where the next byte goes: with [`JsonWriter::value_copy`], a value written
    /// once can be repeated under another key.
    #[inline]
    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Writes again, as a value, the bytes written from `start` to `end` (both
    /// from [`JsonWriter::pos`], around one whole value).
    #[inline]
    pub fn value_copy(&mut self, start: usize, end: usize) -> &mut Self {
        self.sep();
        self.buf.extend_from_within(start..end);
        self.comma = true;
        self
    }

    /// Writes a value with `Display` as a JSON string (IP addresses, timestamps).
    pub fn display(&mut self, v: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        self.sep();
        self.buf.push(b'"');
        let _ = write!(self.buf, "{v}");
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    /// Writes a packet timestamp as an RFC 3339 UTC string with milliseconds.
    pub fn ts(&mut self, ts: crate::time::Ts) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        ts.write_rfc3339_millis(self.buf);
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    pub fn ip(&mut self, ip: std::net::IpAddr) -> &mut Self {
        self.sep();
        write_ip(self.buf, ip);
        self.comma = true;
        self
    }

    #[inline(always)]
    pub fn kv_str(&mut self, k: &'static str, v: &str) -> &mut Self {
        self.key(k).str(v)
    }

    /// A fixed key with a value of ours that never needs escaping (a protocol or
    /// status name): copied without the escape scan.
    #[inline(always)]
    pub fn kv_lit(&mut self, k: &'static str, v: &'static str) -> &mut Self {
        debug_assert!(!any_escape(v.as_bytes()));
        self.key(k);
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    #[inline(always)]
    pub fn kv_u64(&mut self, k: &'static str, v: u64) -> &mut Self {
        self.key(k).u64(v)
    }

    #[inline(always)]
    pub fn kv_opt_str(&mut self, k: &'static str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.key(k).str(v);
        }
        self
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The bytes of the 8 in `w` (little-endian) that need escaping: the high bit of
/// the first of them is set, and no bit below it. (A byte `< n` sets its high bit
/// in `(w - n*ONES) & !w`; a byte equal to `c` is a zero byte of `w ^ c*ONES`. A
/// borrow only runs from a flagged byte upwards, so bits above the first flagged
/// byte may be wrong, never those below.)
#[inline]
fn escape_mask(w: u64) -> u64 {
    let below = |v: u64, n: u64| v.wrapping_sub(n * ONES) & !v;
    let ctrl = below(w, 0x20);
    let quote = below(w ^ (b'"' as u64 * ONES), 1);
    let backslash = below(w ^ (b'\\' as u64 * ONES), 1);
    let del = below(w ^ (0x7f * ONES), 1);
    (ctrl | quote | backslash | del) & HIGH
}

/// Index of the first byte of `s[from..]` that must be escaped (`s.len()` when
/// none), read 8 bytes at a time: most strings need no escaping.
#[inline]
fn next_escape(s: &[u8], from: usize) -> usize {
    let mut i = from;
    let mut words = s[from..].chunks_exact(8);
    for c in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = escape_mask(u64::from_le_bytes(w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return i;
    }
    // The tail as one word, padded with spaces (which never need escaping).
    let mut w = [b' '; 8];
    w[..rest.len()].copy_from_slice(rest);
    let m = escape_mask(u64::from_le_bytes(w));
    if m != 0 {
        return i + (m.trailing_zeros() / 8) as usize;
    }
    i + rest.len()
}

/// True when any byte of `s` must be escaped.
#[inline]
fn any_escape(s: &[u8]) -> bool {
    next_escape(s, 0) < s.len()
}

/// Appends `s` (valid UTF-8) as a quoted JSON string: `"` and `\` escaped, LF, CR
/// and TAB as `\n`, `\r`, `\t`, the other control characters and DEL as `\u00XX`.
pub fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let i = next_escape(s, start);
        out.extend_from_slice(&s[start..i]);
        let Some(&b) = s.get(i) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.push(b'"');
}

/// `s` as a quoted JSON string, for JSON assembled without a [`JsonWriter`].
pub fn quoted(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_escaped(&mut out, s.as_bytes());
    // Escapes are ASCII put between whole characters: the bytes stay UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// An IP address as a quoted JSON string, formatted once and copied into every
/// field that names it (an event names each end three times). IPv4, the common
/// case, is written without going through `fmt`.
#[derive(Clone, Copy)]
pub struct IpText {
    /// `"` + at most 45 characters (an IPv4-mapped IPv6 address) + `"`.
    buf: [u8; 48],
    len: u8,
}

impl IpText {
    pub fn new(ip: std::net::IpAddr) -> IpText {
        let mut t = IpText {
            buf: [0; 48],
            len: 0,
        };
        let mut at = 1;
        t.buf[0] = b'"';
        match ip {
            std::net::IpAddr::V4(a) => {
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        t.buf[at] = b'.';
                        at += 1;
                    }
                    if o >= 100 {
                        t.buf[at] = b'0' + o / 100;
                        at += 1;
                    }
                    if o >= 10 {
                        t.buf[at] = b'0' + (o / 10) % 10;
                        at += 1;
                    }
                    t.buf[at] = b'0' + o % 10;
                    at += 1;
                }
            }
            std::net::IpAddr::V6(a) => {
                use std::io::Write;
                let mut c = std::io::Cursor::new(&mut t.buf[1..47]);
                let _ = write!(c, "{a}");
                at += c.position() as usize;
            }
        }
        t.buf[at] = b'"';
        t.len = (at + 1) as u8;
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// Appends an IP address as a quoted JSON string.
pub fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    out.extend_from_slice(IpText::new(ip).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_and_escapes() {
        let mut buf = Vec::new();
        let mut w = JsonWriter::new(&mut buf);
        w.begin_object();
        w.kv_str("a", "x\"y\n\u{1}");
        w.object("b")
            .kv_u64("c", 3)
            .key("d")
            .begin_array()
            .u64(1)
            .str("two")
            .end_array()
            .end_object();
        w.key("e").i64(-5);
        w.end_object();
        let s = String::from_utf8(buf).unwrap();
        assert_eq!(
            s,
            r#"{"a":"x\"y\n\u0001","b":{"c":3,"d":[1,"two"]},"e":-5}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["b"]["d"][1], "two");
    }

    #[test]
    fn fast_paths_match_the_slow_ones() {
        let mut long = Vec::new();
        write_escaped(
            &mut long,
            "0123456789abcdef0123\\456789abcdef\u{7f}é".as_bytes(),
        );
        assert_eq!(
            String::from_utf8(long).unwrap(),
            r#""0123456789abcdef0123\\456789abcdef\u007fé""#
        );
        let mut plain = Vec::new();
        write_escaped(
            &mut plain,
            "a plain string of more than sixteen bytes".as_bytes(),
        );
        assert_eq!(plain, b"\"a plain string of more than sixteen bytes\"");
        let mut ips = Vec::new();
        write_ip(&mut ips, "10.0.255.1".parse().unwrap());
        write_ip(&mut ips, "fd00::2".parse().unwrap());
        assert_eq!(ips, b"\"10.0.255.1\"\"fd00::2\"");
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
            "1:0:0:1::ffff:10.0.0.1",
        ] {
            let a: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::new(a).as_bytes(), format!("\"{a}\"").as_bytes());
        }
    }

    /// The escaper written byte by byte, to check the word-at-a-time one against.
    fn escaped_bytewise(s: &[u8]) -> Vec<u8> {
        const SHORT: [(u8, u8); 5] = [
            (b'"', b'"'),
            (b'\\', b'\\'),
            (b'\n', b'n'),
            (b'\r', b'r'),
            (b'\t', b't'),
        ];
        let mut out = vec![b'"'];
        for &b in s {
            if let Some(&(_, e)) = SHORT.iter().find(|(c, _)| *c == b) {
                out.extend([b'\\', e]);
            } else if b < 0x20 || b == 0x7f {
                out.extend(format!("\\u{b:04x}").bytes());
            } else {
                out.push(b);
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn word_at_a_time_scan_matches_the_bytewise_escaper() {
        // Every byte value at every offset of a plain string longer than two words.
        for b in 0..=255u8 {
            for at in 0..19 {
                let mut s = vec![b'a'; 19];
                s[at] = b;
                let mut out = Vec::new();
                write_escaped(&mut out, &s);
                assert_eq!(out, escaped_bytewise(&s), "byte {b:#x} at {at}");
                assert_eq!(next_escape(&s, 0), if needs_escape(b) { at } else { 19 });
            }
        }
        // Every pair of bytes next to the escaped ones, at every two offsets: a
        // flagged byte's borrow must not hide or invent another one.
        let near: &[u8] = &[
            0x00, 0x01, 0x0a, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80,
            0xa2, 0xdc, 0xff,
        ];
        for &x in near {
            for &y in near {
                for i in 0..19 {
                    for j in i + 1..19 {
                        let mut s = vec![b'a'; 19];
                        s[i] = x;
                        s[j] = y;
                        let mut out = vec![b'x'];
                        write_escaped(&mut out, &s);
                        assert_eq!(out[1..], escaped_bytewise(&s), "{s:x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn quoted_strings_for_hand_made_json() {
        assert_eq!(quoted("gw1"), "\"gw1\"");
        assert_eq!(
            quoted("a\"\\\u{8}\u{c}\u{7f}\u{e9}"),
            "\"a\\\"\\\\\\u0008\\u000c\\u007f\u{e9}\""
        );
    }
}
