//! Content of HTTP messages: header values (Basic credentials, Host, the span a
//! redacted field shows as stars), the request target (path, query) and its
//! parameters (decoded names, hidden values), and gzip/deflate body decoding.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine as _;

use super::fields::unhex;
use super::transaction::HIDDEN;
use crate::text::{self, Replace};

/// Byte range `[colon + 1, end of line)` of the field whose value starts at
/// `value_at`: what the raw request shows as stars when its name is redacted.
pub(super) fn after_colon(head: &[u8], value_at: usize) -> Option<(usize, usize)> {
    let before = head.get(..value_at)?;
    let colon = before.iter().rposition(|&b| b != b' ' && b != b'\t')?;
    if before[colon] != b':' {
        return None;
    }
    let rest = &head[value_at..];
    let end = value_at + rest.iter().position(|&b| b == b'\r' || b == b'\n')?;
    Some((colon + 1, end))
}

/// Header text as events show it: one U+FFFD per ill-formed UTF-8 sequence.
pub(super) fn lossy(b: &[u8]) -> String {
    text::lossy(b, Replace::PerSequence)
}

pub(super) fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Whether a Content-Type names a urlencoded form (Packetbeat: contains `urlencoded`).
pub(super) fn is_form_type(ct: &str) -> bool {
    ct.as_bytes()
        .windows(b"urlencoded".len())
        .any(|w| w.eq_ignore_ascii_case(b"urlencoded"))
}

/// Media type without parameters, lower-cased.
pub(super) fn mime_of(ct: &str) -> Option<String> {
    let m = ct.split(';').next().unwrap_or("").trim();
    (!m.is_empty()).then(|| m.to_ascii_lowercase())
}

/// Splits a request target into path, query and the query's offset in the target.
/// Absolute-form targets (`http://host/path`) lose their scheme and authority.
pub(super) fn split_target(target: &str) -> (&str, Option<&str>, usize) {
    let mut base = 0;
    for scheme in ["http://", "https://"] {
        if target.len() > scheme.len()
            && target
                .get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            let rest = &target[scheme.len()..];
            let p = rest.find(['/', '?']).unwrap_or(rest.len());
            base = scheme.len() + p;
        }
    }
    let t = &target[base..];
    let t_no_frag = t.split('#').next().unwrap_or("");
    match t_no_frag.find('?') {
        Some(q) => {
            let path = if q == 0 { "/" } else { &t_no_frag[..q] };
            (path, Some(&t_no_frag[q + 1..]), base + q + 1)
        }
        None => {
            let path = if t_no_frag.is_empty() { "/" } else { t_no_frag };
            (path, None, 0)
        }
    }
}

/// Percent- and plus-decodes a form name, lower-cased.
fn decode_name(n: &str) -> String {
    let b = n.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (unhex(b[i + 1]), unhex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

/// Replaces the values of `key=value` pairs whose (decoded, lower-cased) name is in
/// `keywords` with [`HIDDEN`], keeping the order and encoding of everything else.
pub fn hide_params<'a>(params: &'a str, keywords: &[String]) -> Cow<'a, str> {
    if keywords.is_empty() {
        return Cow::Borrowed(params);
    }
    let mut out: Option<String> = None;
    let mut written = 0;
    let mut pos = 0;
    for part in params.split('&') {
        let name = part.split('=').next().unwrap_or("");
        if !name.is_empty() && keywords.iter().any(|k| *k == decode_name(name)) {
            let o = out.get_or_insert_with(|| String::with_capacity(params.len()));
            o.push_str(&params[written..pos]);
            o.push_str(name);
            o.push('=');
            o.push_str(HIDDEN);
            written = pos + part.len();
        }
        pos += part.len() + 1;
    }
    match out {
        None => Cow::Borrowed(params),
        Some(mut o) => {
            o.push_str(&params[written.min(params.len())..]);
            Cow::Owned(o)
        }
    }
}

/// Base64 as Packetbeat decodes Basic credentials: padded or not, and lenient about
/// the unused bits of the last symbol.
const BASIC_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// User name of a `Basic` Authorization value (`Basic` in any case, then one space):
/// the part of the decoded credentials before the first `:`. `None` when the value
/// is not Basic, does not decode, has no `:` or an empty user.
pub(super) fn basic_user(v: &[u8]) -> Option<String> {
    let v = trim(v);
    if v.len() < 6 || !v[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = BASIC_B64.decode(&v[6..]).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    (colon > 0).then(|| lossy(&decoded[..colon]))
}

/// Decodes a gzip or deflate body, the output capped at `max` bytes. `None` when the
/// coding is not one wirebeat decodes or the data is not valid.
pub(super) fn decode(coding: &str, body: &[u8], max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = max as u64;
    let ok = match coding.trim() {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
            .is_ok(),
        "deflate" => {
            // Usually zlib-wrapped; some servers send a raw deflate stream.
            let zlib = flate2::read::ZlibDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out)
                .is_ok();
            zlib || {
                out.clear();
                flate2::read::DeflateDecoder::new(body)
                    .take(limit)
                    .read_to_end(&mut out)
                    .is_ok()
            }
        }
        _ => false,
    };
    // A truncated capture still yields the prefix it could decode.
    (ok || !out.is_empty()).then_some(out)
}

/// Host header value → (host without port, port).
pub(super) fn split_host(h: &str) -> (&str, Option<u16>) {
    let h = h.trim();
    if let Some(rest) = h.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let port = rest[end + 1..]
            .strip_prefix(':')
            .and_then(|p| p.parse().ok());
        return (&rest[..end], port);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (h, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(split_target("/a/b?x=1"), ("/a/b", Some("x=1"), 5));
        assert_eq!(split_target("/a"), ("/a", None, 0));
        assert_eq!(split_target("http://h:8/p?q"), ("/p", Some("q"), 13));
        assert_eq!(split_target("http://h"), ("/", None, 0));
        assert_eq!(split_target("*"), ("*", None, 0));
    }

    #[test]
    fn hiding() {
        let k = vec!["pass".to_string(), "secret key".to_string()];
        assert_eq!(hide_params("a=1&PASS=x&b", &k), "a=1&PASS=xxxxx&b");
        assert_eq!(
            hide_params("secret+key=1&pass", &k),
            "secret+key=xxxxx&pass=xxxxx"
        );
        assert_eq!(hide_params("Secret%20Key=9", &k), "Secret%20Key=xxxxx");
        assert!(matches!(hide_params("a=1", &k), Cow::Borrowed(_)));
        assert_eq!(hide_params("%zz=1&%", &k), "%zz=1&%");
    }

    #[test]
    fn hosts_and_users() {
        assert_eq!(split_host("example.com:8080"), ("example.com", Some(8080)));
        assert_eq!(split_host("[::1]:81"), ("::1", Some(81)));
        assert_eq!(split_host("::1"), ("::1", None));
        assert!(is_form_type(
            "application/x-www-form-URLencoded; charset=utf-8"
        ));
        assert!(!is_form_type("application/json"));
        assert_eq!(basic_user(b"Basic dXNlcjpwYXNz"), Some("user".into()));
        assert_eq!(basic_user(b"Bearer abc"), None);
        assert_eq!(basic_user(b"basic !!!"), None);
        // Unpadded, lenient last symbol, any case of `Basic`.
        assert_eq!(basic_user(b"BASIC dXNlcjpw"), Some("user".into()));
        assert_eq!(basic_user(b"Basic YWI6Yw"), Some("ab".into()));
        assert_eq!(basic_user(b"Basic YWI6Yx=="), Some("ab".into()));
        // No `:`, an empty user, or more than one space: no user name.
        assert_eq!(basic_user(b"Basic dXNlcg=="), None);
        assert_eq!(basic_user(b"Basic OnBhc3M="), None);
        assert_eq!(basic_user(b"Basic  dXNlcjpw"), None);
    }

    #[test]
    fn decode_is_capped() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(decode("gzip", &gz, 1000).unwrap().len(), 1000);
        assert!(decode("br", &gz, 1000).is_none());
    }
}
