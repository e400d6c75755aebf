//! HTTP event fields: `http.*`, `url.*` and `user_agent.*` (Packetbeat 8 / ECS).

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

    #[test]
    fn cookies() {
        let c = split_cookies(r#"SID=31d4; Lang="en-US"; flag; sid=2"#);
        assert_eq!(
            c,
            vec![("sid".to_string(), "2"), ("lang".to_string(), "en-US")]
        );
    }
}
