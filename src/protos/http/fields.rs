//! HTTP event fields: `http.*`, `url.*` and `user_agent.*` (Packetbeat 8 / ECS).

use super::transaction::HIDDEN;
use crate::event::{JsonWriter, ProtoFields};

#[derive(Debug, Default)]
pub struct ReqFields {
    pub method: String,
    pub bytes: u64,
    pub body_bytes: u64,
    pub body: Option<String>,
    pub mime_type: Option<String>,
    pub referrer: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
}

#[derive(Debug, Default)]
pub struct RespFields {
    pub status_code: u16,
    pub status_phrase: String,
    pub bytes: u64,
    pub body_bytes: u64,
    pub body: Option<String>,
    pub mime_type: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
}

#[derive(Debug, Default)]
pub struct UrlFields {
    pub scheme: &'static str,
    pub domain: String,
    /// Present when not 80.
    pub port: Option<u16>,
    pub path: String,
    pub query: Option<String>,
    pub extension: Option<String>,
    pub full: String,
}

/// Protocol fields of one HTTP transaction.
#[derive(Debug, Default)]
pub struct HttpFields {
    /// Minor version of HTTP/1.x.
    pub version: Option<u8>,
    pub request: Option<ReqFields>,
    pub response: Option<RespFields>,
    pub url: Option<UrlFields>,
    pub user_agent: Option<String>,
    /// Write `cookie` / `set-cookie` as objects.
    pub split_cookie: bool,
}

/// `a=1; B="2"` → `[("a","1"), ("b","2")]`; later duplicates replace earlier ones.
pub fn split_cookies(v: &str) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    for part in v.split(';') {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 = value,
            None => out.push((name, value)),
        }
    }
    out
}

pub(super) fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends the form-decoded `s` (`+` is a space, `%XY` a byte) to `out`; `false`, with
/// `out` left as it was, when an escape is malformed.
fn unescape_into(s: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                s.get(i + 1).and_then(|&h| unhex(h)),
                s.get(i + 2).and_then(|&l| unhex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => {
                    out.truncate(start);
                    return false;
                }
            },
            c => out.push(c),
        }
        i += 1;
    }
    true
}

/// Appends `b` form-encoded: letters, digits and `-_.~` as they are, a space as `+`,
/// every other byte as `%XY` (upper-case hex).
fn escape_into(b: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in b {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(c as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(c >> 4) as usize] as char);
                out.push(HEX[(c & 15) as usize] as char);
            }
        }
    }
}

/// One decoded parameter: its key is `buf[start..key_end]`, its value
/// `buf[key_end..end]`.
#[derive(Clone, Copy)]
struct Param {
    start: u32,
    key_end: u32,
    end: u32,
    from_form: bool,
}

/// Decoded parameters of a query string and a form body, in one buffer.
#[derive(Default)]
struct ParamSet {
    buf: Vec<u8>,
    params: Vec<Param>,
}

impl ParamSet {
    fn key(&self, p: &Param) -> &[u8] {
        &self.buf[p.start as usize..p.key_end as usize]
    }

    fn value(&self, p: &Param) -> &[u8] {
        &self.buf[p.key_end as usize..p.end as usize]
    }

    /// Adds the `key=value` pairs of `s` (separated by `&`). Empty pairs are skipped;
    /// a pair holding a `;` or a malformed escape is dropped, the others kept.
    fn parse(&mut self, s: &[u8], from_form: bool) {
        for pair in s.split(|&b| b == b'&') {
            if pair.is_empty() || pair.contains(&b';') {
                continue;
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let start = self.buf.len();
            if !unescape_into(k, &mut self.buf) {
                continue;
            }
            let key_end = self.buf.len();
            if !unescape_into(v, &mut self.buf) {
                self.buf.truncate(start);
                continue;
            }
            let (Ok(start), Ok(key_end), Ok(end)) = (
                u32::try_from(start),
                u32::try_from(key_end),
                u32::try_from(self.buf.len()),
            ) else {
                self.buf.truncate(start);
                return;
            };
            self.params.push(Param {
                start,
                key_end,
                end,
                from_form,
            });
        }
    }
}

/// The request parameters as Packetbeat publishes them (`params` and `url.query`):
/// the query string's and the urlencoded form body's parameters decoded, a form key
/// replacing the same query key, the values of `keywords` (lower-case) replaced by
/// [`HIDDEN`], then encoded again with the keys sorted (byte order), the values of a
/// key in the order sent: `a=1&b=x+y&b=2`. `None` when there is no parameter.
pub fn encode_params(
    query: Option<&str>,
    form: Option<&[u8]>,
    keywords: &[String],
) -> Option<String> {
    let mut set = ParamSet::default();
    if let Some(q) = query {
        set.parse(q.as_bytes(), false);
    }
    if let Some(f) = form {
        set.parse(f, true);
    }
    if set.params.is_empty() {
        return None;
    }
    let mut order = std::mem::take(&mut set.params);
    // Stable: the values of one key keep their order, query values before form ones.
    order.sort_by(|a, b| set.key(a).cmp(set.key(b)));
    let mut out = String::with_capacity(set.buf.len() + order.len() * 2);
    let mut i = 0;
    while i < order.len() {
        let key = set.key(&order[i]);
        let mut j = i + 1;
        while j < order.len() && set.key(&order[j]) == key {
            j += 1;
        }
        let group = &order[i..j];
        let form_has_key = group.iter().any(|p| p.from_form);
        let hidden = !keywords.is_empty() && {
            let lower = String::from_utf8_lossy(key).to_lowercase();
            keywords.contains(&lower)
        };
        for p in group.iter().filter(|p| p.from_form || !form_has_key) {
            if !out.is_empty() {
                out.push('&');
            }
            escape_into(key, &mut out);
            out.push('=');
            let value = if hidden {
                HIDDEN.as_bytes()
            } else {
                set.value(p)
            };
            escape_into(value, &mut out);
        }
        i = j;
    }
    Some(out)
}

fn write_headers(w: &mut JsonWriter<'_>, headers: &[(String, String)], cookie: &str, split: bool) {
    w.object("headers");
    for (name, value) in headers {
        // Header and cookie names come from the traffic: escaped keys.
        if split && name == cookie {
            w.key_escaped(name).begin_object();
            for (k, v) in split_cookies(value) {
                w.key_escaped(&k).str(v);
            }
            w.end_object();
        } else {
            w.key_escaped(name).str(value);
        }
    }
    w.end_object();
}

/// `body.bytes` and `body.content`; nothing for a message without a body.
fn write_body(w: &mut JsonWriter<'_>, bytes: u64, content: Option<&str>) {
    if bytes == 0 && content.is_none() {
        return;
    }
    w.object("body").kv_u64("bytes", bytes);
    w.kv_opt_str("content", content);
    w.end_object();
}

impl ProtoFields for HttpFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("http");
        if let Some(r) = &self.request {
            w.object("request");
            write_body(w, r.body_bytes, r.body.as_deref());
            w.kv_u64("bytes", r.bytes);
            if let Some(h) = &r.headers {
                write_headers(w, h, "cookie", self.split_cookie);
            }
            w.kv_str("method", &r.method);
            w.kv_opt_str("mime_type", r.mime_type.as_deref());
            w.kv_opt_str("referrer", r.referrer.as_deref());
            w.end_object();
        }
        if let Some(r) = &self.response {
            w.object("response");
            write_body(w, r.body_bytes, r.body.as_deref());
            w.kv_u64("bytes", r.bytes);
            if let Some(h) = &r.headers {
                write_headers(w, h, "set-cookie", self.split_cookie);
            }
            w.kv_opt_str("mime_type", r.mime_type.as_deref());
            w.kv_u64("status_code", r.status_code as u64);
            w.kv_str("status_phrase", &r.status_phrase);
            w.end_object();
        }
        if let Some(v) = self.version {
            let mut b = *b"1.0";
            b[2] = b'0' + v.min(9);
            w.kv_str("version", std::str::from_utf8(&b).unwrap_or("1.1"));
        }
        w.end_object();
        if let Some(u) = &self.url {
            w.object("url");
            w.kv_str("domain", &u.domain);
            w.kv_opt_str("extension", u.extension.as_deref());
            w.kv_str("full", &u.full);
            w.kv_str("path", &u.path);
            if let Some(p) = u.port {
                w.kv_u64("port", p as u64);
            }
            w.kv_opt_str("query", u.query.as_deref());
            w.kv_str("scheme", u.scheme);
            w.end_object();
        }
        if let Some(ua) = &self.user_agent {
            w.object("user_agent").kv_str("original", ua).end_object();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(q: Option<&str>, f: Option<&str>, k: &[&str]) -> Option<String> {
        let k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        encode_params(q, f.map(str::as_bytes), &k)
    }

    #[test]
    fn params_are_sorted_by_key_values_in_order() {
        assert_eq!(
            enc(Some("z=last&a=1&m=x%20y&a=2"), None, &[]).as_deref(),
            Some("a=1&a=2&m=x+y&z=last")
        );
        // Byte order: upper case before `_` before lower case.
        assert_eq!(
            enc(Some("b=1&B=2&a=3&_=4"), None, &[]).as_deref(),
            Some("B=2&_=4&a=3&b=1")
        );
        assert_eq!(enc(None, None, &[]), None);
        assert_eq!(enc(Some(""), Some(""), &[]), None);
        assert_eq!(enc(Some("&&"), None, &[]), None);
    }

    #[test]
    fn params_are_re_encoded() {
        assert_eq!(
            enc(Some("k=a%2fb~c*d+e&%C3%A9=%e9"), None, &[]).as_deref(),
            Some("k=a%2Fb~c%2Ad+e&%C3%A9=%E9")
        );
        assert_eq!(
            enc(Some("\u{e9}=\u{fc} x"), None, &[]).as_deref(),
            Some("%C3%A9=%C3%BC+x")
        );
        // A bare key gets an empty value; a pair without a key keeps its empty key.
        assert_eq!(enc(Some("flag&=v"), None, &[]).as_deref(), Some("=v&flag="));
    }

    #[test]
    fn malformed_pairs_are_dropped() {
        assert_eq!(
            enc(Some("a=1;b=2&c=%zz&d=%4&x%=1&e"), None, &[]).as_deref(),
            Some("e=")
        );
        assert_eq!(enc(Some("a=%"), None, &[]), None);
    }

    #[test]
    fn form_keys_replace_query_keys() {
        assert_eq!(
            enc(
                Some("q=1&password=hunter2"),
                Some("user=alice&password=secret&x=1"),
                &[]
            )
            .as_deref(),
            Some("password=secret&q=1&user=alice&x=1")
        );
        assert_eq!(
            enc(Some("a=1&b=2&b=0"), Some("b=3&a=4&b=5"), &[]).as_deref(),
            Some("a=4&b=3&b=5")
        );
        assert_eq!(enc(None, Some("b=2&a=1"), &[]).as_deref(), Some("a=1&b=2"));
    }

    #[test]
    fn keywords_hide_every_value_of_a_key_in_any_case() {
        assert_eq!(
            enc(
                Some("q=1&password=hunter2"),
                Some("user=alice&password=secret&x=1"),
                &["password"]
            )
            .as_deref(),
            Some("password=xxxxx&q=1&user=alice&x=1")
        );
        assert_eq!(
            enc(
                Some("PASS=1&Pass=2&pass=3&pass=4&pa%73s=5&passe=6"),
                None,
                &["pass"]
            )
            .as_deref(),
            Some("PASS=xxxxx&Pass=xxxxx&pass=xxxxx&pass=xxxxx&pass=xxxxx&passe=6")
        );
        assert_eq!(
            enc(Some("%C3%9C=1"), None, &["\u{fc}"]).as_deref(),
            Some("%C3%9C=xxxxx")
        );
    }

    #[test]
    fn many_params_take_linear_space() {
        let form = b"k=v&".repeat(250_000);
        let out = encode_params(None, Some(&form), &["k".to_string()]).unwrap();
        assert_eq!(out.len(), 250_000 * 8 - 1);
        assert!(out.starts_with("k=xxxxx&k=xxxxx"));
        // Distinct keys in reverse order, long shared prefixes.
        let mut q = String::new();
        for i in (0..20_000).rev() {
            q.push_str(&format!("{}{i:05}=1&", "p".repeat(40)));
        }
        let out = encode_params(Some(&q), None, &[]).unwrap();
        assert!(out.starts_with(&format!("{}00000=1&", "p".repeat(40))));
        assert_eq!(out.len(), q.len() - 1);
    }

    #[test]
    fn cookies() {
        let c = split_cookies(r#"SID=31d4; Lang="en-US"; flag; sid=2"#);
        assert_eq!(
            c,
            vec![("sid".to_string(), "2"), ("lang".to_string(), "en-US")]
        );
    }
}
