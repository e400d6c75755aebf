//! A small append-only JSON writer. Events are written straight into a reused byte
//! buffer in a fixed key order, without building an intermediate tree, so encoding is
//! cheap and the output of a replay is byte-for-byte reproducible.

/// Writes one JSON value (usually an object) into `buf`. Commas are placed
/// automatically; the caller opens and closes objects and arrays in order.
pub struct JsonWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// One flag per open container: true once it holds at least one element.
    stack: Vec<bool>,
    /// Set after `key()`, so the following value writes no comma.
    after_key: bool,
}

impl<'a> JsonWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        JsonWriter {
            buf,
            stack: Vec::with_capacity(8),
            after_key: false,
        }
    }

    fn sep(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(has) = self.stack.last_mut() {
            if *has {
                self.buf.push(b',');
            }
            *has = true;
        }
    }

    pub fn begin_object(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'{');
        self.stack.push(false);
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.stack.pop();
        self.buf.push(b'}');
        self
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'[');
        self.stack.push(false);
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.stack.pop();
        self.buf.push(b']');
        self
    }

    /// Writes a fixed object key (a literal of ours: never needs escaping); the next
    /// call must write its value.
    pub fn key(&mut self, k: &'static str) -> &mut Self {
        self.sep();
        debug_assert!(!any_escape(k.as_bytes()));
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.push(b'"');
        self.buf.push(b':');
        self.after_key = true;
        self
    }

    /// Writes an object key taken from traffic (escaped); the next call must write
    /// its value.
    pub fn key_escaped(&mut self, k: &str) -> &mut Self {
        self.sep();
        write_escaped(self.buf, k.as_bytes());
        self.buf.push(b':');
        self.after_key = true;
        self
    }

    /// Opens a nested object under `k`.
    pub fn object(&mut self, k: &'static str) -> &mut Self {
        self.key(k).begin_object()
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.sep();
        write_escaped(self.buf, v.as_bytes());
        self
    }

    /// Writes bytes as a JSON string, replacing invalid UTF-8 with U+FFFD.
    pub fn bytes_lossy(&mut self, v: &[u8]) -> &mut Self {
        self.sep();
        match std::str::from_utf8(v) {
            Ok(s) => write_escaped(self.buf, s.as_bytes()),
            Err(_) => write_escaped(self.buf, String::from_utf8_lossy(v).as_bytes()),
        }
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.sep();
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.sep();
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"null");
        self
    }

    /// Writes already-encoded JSON as a value. The caller guarantees validity.
    pub fn raw(&mut self, json: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(json);
        self
    }

    /// Writes a value with `Display` as a JSON string (IP addresses, timestamps).
    pub fn display(&mut self, v: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        self.sep();
        self.buf.push(b'"');
        let _ = write!(self.buf, "{v}");
        self.buf.push(b'"');
        self
    }

    /// Writes a packet timestamp as an RFC 3339 UTC string with milliseconds.
    pub fn ts(&mut self, ts: crate::time::Ts) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        ts.write_rfc3339_millis(self.buf);
        self.buf.push(b'"');
        self
    }

    pub fn ip(&mut self, ip: std::net::IpAddr) -> &mut Self {
        self.sep();
        write_ip(self.buf, ip);
        self
    }

    pub fn kv_str(&mut self, k: &'static str, v: &str) -> &mut Self {
        self.key(k).str(v)
    }

    pub fn kv_u64(&mut self, k: &'static str, v: u64) -> &mut Self {
        self.key(k).u64(v)
    }

    pub fn kv_opt_str(&mut self, k: &'static str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.key(k).str(v);
        }
        self
    }

    pub fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// True when any byte of `s` must be escaped. Checks 16 bytes at a time without
/// early exit so the compiler can vectorise it; most strings need no escaping.
#[inline]
fn any_escape(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(16);
    for c in &mut chunks {
        if c.iter().fold(false, |acc, &b| acc | needs_escape(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

/// Appends `s` (valid UTF-8) as a quoted JSON string.
pub fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    if !any_escape(s) {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
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
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// `s` as a quoted JSON string, for JSON assembled without a [`JsonWriter`].
pub fn quoted(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_escaped(&mut out, s.as_bytes());
    // Escapes are ASCII put between whole characters: the bytes stay UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends an IP address as a quoted JSON string without going through `fmt`
/// for IPv4 (the common case).
pub fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => {
            out.push(b'"');
            let mut b = itoa::Buffer::new();
            for (i, o) in a.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(b.format(*o).as_bytes());
            }
            out.push(b'"');
        }
        std::net::IpAddr::V6(a) => {
            use std::io::Write;
            out.push(b'"');
            let _ = write!(out, "{a}");
            out.push(b'"');
        }
    }
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
