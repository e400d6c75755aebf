//! HTTP messages as they wait for pairing, the settings derived from the
//! configuration, and the pairing [`Exchange`] that turns a request/response pair into
//! a [`Transaction`].

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use super::content::{
    after_colon, basic_user, decode, hide_params, is_form_type, lossy, mime_of, split_host,
    split_target, trim,
};
use super::fields::{HttpFields, ReqFields, RespFields, UrlFields, encode_params};
use super::parser::Head;
use crate::config::HttpConfig;
use crate::event::{Status, Transaction};
use crate::protos::pairing::{Exchange, Message, Wire};
use crate::time::Ts;

/// Value that replaces a hidden query or form parameter.
pub const HIDDEN: &str = "xxxxx";
/// Value that replaces a header listed in `redact_headers`.
pub const REDACTED: &str = "REDACTED";

/// The HTTP options, normalised once per factory (lower-cased lists).
#[derive(Debug)]
pub struct HttpSettings {
    pub send_request: bool,
    pub send_response: bool,
    pub send_headers: Vec<String>,
    pub send_all_headers: bool,
    pub split_cookie: bool,
    pub real_ip_header: Option<String>,
    pub hide_keywords: Vec<String>,
    pub redact_authorization: bool,
    pub redact_headers: Vec<String>,
    pub include_request: Vec<String>,
    pub include_response: Vec<String>,
    pub decode_body: bool,
    pub max_message_size: usize,
}

fn lower_all(v: &[String]) -> Vec<String> {
    v.iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl HttpSettings {
    pub fn from_config(c: &HttpConfig) -> HttpSettings {
        let mut include_request = lower_all(&c.include_body_for);
        include_request.extend(lower_all(&c.include_request_body_for));
        let mut include_response = lower_all(&c.include_body_for);
        include_response.extend(lower_all(&c.include_response_body_for));
        HttpSettings {
            send_request: c.common.send_request,
            send_response: c.common.send_response,
            send_headers: lower_all(&c.send_headers),
            send_all_headers: c.send_all_headers,
            split_cookie: c.split_cookie,
            real_ip_header: c
                .real_ip_header
                .as_deref()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
            hide_keywords: lower_all(&c.hide_keywords),
            redact_authorization: c.redact_authorization,
            redact_headers: lower_all(&c.redact_headers),
            include_request,
            include_response,
            decode_body: c.decode_body,
            max_message_size: c.max_message_size,
        }
    }

    fn exports_headers(&self) -> bool {
        self.send_all_headers || !self.send_headers.is_empty()
    }

    /// Whether `name` (any case) is listed in `redact_headers`.
    fn redacts(&self, name: &str) -> bool {
        self.redact_headers
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
    }

    /// Whether the rest of a request field's line is starred out in the raw request:
    /// with `redact_authorization`, `Authorization`, `Proxy-Authorization` and any
    /// other name ending in `authorization`, as Packetbeat does.
    fn stars_in_raw(&self, name: &str) -> bool {
        self.redact_authorization
            && name.len() >= AUTHORIZATION.len()
            && name.as_bytes()[name.len() - AUTHORIZATION.len()..]
                .eq_ignore_ascii_case(AUTHORIZATION.as_bytes())
    }

    /// Applies `redact_headers` and, on requests, `redact_authorization` to the
    /// exported headers (values already joined): a listed header becomes
    /// [`REDACTED`], a non-empty `authorization` / `proxy-authorization` becomes `*`.
    fn redact_exported(&self, headers: &mut [(String, String)], request: bool) {
        for (name, value) in headers {
            if self.redacts(name) {
                *value = REDACTED.to_string();
            }
            if request
                && self.redact_authorization
                && (name == AUTHORIZATION || name == "proxy-authorization")
                && !value.is_empty()
            {
                *value = "*".to_string();
            }
        }
    }
}

const AUTHORIZATION: &str = "authorization";

/// Whether, and why, a message's body bytes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Capture {
    #[default]
    None,
    /// The content type matches `include_*body_for`.
    Include,
    /// An urlencoded request form, kept for `params`.
    Form,
}

/// How the head said the body is framed.
#[derive(Clone, Copy, Debug, Default)]
pub struct BodyInfo {
    pub chunked: bool,
    /// A Transfer-Encoding other than chunked is last (close-delimited).
    pub other_coding: bool,
    pub content_length: Option<u64>,
    /// Content-Length present but not a number, or conflicting values.
    pub bad_length: bool,
}

/// A request or response, from its head to the end of its body.
#[derive(Debug, Default)]
pub struct Msg {
    pub wire: Wire,
    pub minor: u8,
    pub method: String,
    /// Path part of the target (before `?`), as sent.
    pub path: String,
    /// Query string with hidden keywords applied.
    pub query: Option<String>,
    pub code: u16,
    pub phrase: String,
    /// Exported headers: lower-cased names, repeated values joined with ", ".
    pub headers: Option<Vec<(String, String)>>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    pub user_name: Option<String>,
    pub forwarded_ip: Option<String>,
    pub body_bytes: u64,
    pub capture: Capture,
    pub body: Vec<u8>,
    pub raw_head: Option<String>,
    pub body_info: BodyInfo,
}

/// A request as it waits for its response. Both directions share one shape (a
/// request fills `method`/`path`, a response `code`/`phrase`), so both name [`Msg`].
pub type Request = Msg;
/// A response as it waits to pair with its request.
pub type Response = Msg;

impl Message for Msg {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn mem_size(&self) -> usize {
        std::mem::size_of::<Msg>()
            + self.body.capacity()
            + self.raw_head.as_ref().map_or(0, |s| s.len())
            + self.path.len()
            + self.query.as_ref().map_or(0, |s| s.len())
            + self
                .headers
                .as_ref()
                .map_or(0, |h| h.iter().map(|(k, v)| k.len() + v.len() + 48).sum())
    }
}

impl Msg {
    /// Builds a message from its parsed head. `head_bytes` is the head as on the wire.
    pub fn from_head(
        head: &Head<'_>,
        head_bytes: &[u8],
        request: bool,
        ts: Ts,
        s: &HttpSettings,
    ) -> Msg {
        let mut m = Msg {
            wire: Wire {
                ts,
                bytes: head_bytes.len() as u64,
                loss: false,
            },
            minor: head.minor,
            capture: Capture::None,
            ..Default::default()
        };
        let export = s.exports_headers();
        let mut headers: Vec<(String, String)> = Vec::new();
        // Byte ranges of the raw head to replace: (start, end, replacement).
        let mut edits: Vec<(usize, usize, Cow<'_, str>)> = Vec::new();
        let mut authorization: Option<&[u8]> = None;

        if request {
            m.method = head.method.to_string();
            let (path, query, q_at) = split_target(head.target);
            m.path = path.to_string();
            if let Some(q) = query {
                let hidden = hide_params(q, &s.hide_keywords);
                if let Cow::Owned(h) = &hidden {
                    let at = head.target_at + q_at;
                    edits.push((at, at + q.len(), Cow::Owned(h.clone())));
                }
                m.query = Some(hidden.into_owned());
            }
        } else {
            m.code = head.code;
            m.phrase = head.reason.to_ascii_lowercase();
        }

        let real_ip = if request {
            s.real_ip_header.as_deref()
        } else {
            None
        };
        for f in &head.fields {
            let name = f.name;
            let value = trim(f.value);
            let value_end = f.value_at + f.value.len();
            if request && s.stars_in_raw(name) {
                let (from, to) =
                    after_colon(head_bytes, f.value_at).unwrap_or((f.value_at, value_end));
                edits.push((from, to, Cow::Owned("*".repeat(to - from))));
            } else if !s.redact_headers.is_empty() && s.redacts(name) {
                edits.push((f.value_at, value_end, Cow::Borrowed(REDACTED)));
            }
            let known = Known::of(name);
            match known {
                Known::ContentLength => {
                    let parsed = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok());
                    match (parsed, m.body_info.content_length) {
                        (None, _) => m.body_info.bad_length = true,
                        (Some(n), Some(prev)) if n != prev => m.body_info.bad_length = true,
                        (Some(n), _) => m.body_info.content_length = Some(n),
                    }
                }
                Known::TransferEncoding => {
                    let v = lossy(value).to_ascii_lowercase();
                    let last = v.rsplit(',').next().unwrap_or("").trim();
                    m.body_info.chunked = last == "chunked";
                    m.body_info.other_coding = !m.body_info.chunked && !last.is_empty();
                    for coding in v.split(',').map(str::trim) {
                        if coding == "gzip" || coding == "x-gzip" || coding == "deflate" {
                            m.content_encoding = Some(coding.to_string());
                        }
                    }
                }
                Known::ContentType => m.content_type = Some(lossy(value)),
                Known::ContentEncoding => {
                    m.content_encoding = Some(lossy(value).to_ascii_lowercase());
                }
                Known::Host if request => m.host = Some(lossy(value)),
                Known::UserAgent if request => m.user_agent = Some(lossy(value)),
                Known::Referer if request => m.referrer = Some(lossy(value)),
                Known::Authorization if request => authorization = Some(value),
                _ => {}
            }
            if m.forwarded_ip.is_none()
                && let Some(h) = real_ip
                && name.eq_ignore_ascii_case(h)
            {
                let v = lossy(value);
                let first = v.split(',').next().unwrap_or("").trim();
                if !first.is_empty() {
                    m.forwarded_ip = Some(first.to_string());
                }
            }
            if export
                && (s.send_all_headers
                    || matches!(known, Known::ContentLength | Known::ContentType)
                    || s.send_headers.iter().any(|h| name.eq_ignore_ascii_case(h)))
            {
                let lname = name.to_ascii_lowercase();
                let v = lossy(value);
                match headers.iter_mut().find(|(k, _)| *k == lname) {
                    Some((k, old)) => {
                        // Several Cookie fields form one cookie list (RFC 6265 §5.4).
                        old.push_str(if k == "cookie" { "; " } else { ", " });
                        old.push_str(&v);
                    }
                    None => headers.push((lname, v)),
                }
            }
        }
        if export {
            s.redact_exported(&mut headers, request);
            m.headers = Some(headers);
        }
        if !s.redact_authorization {
            m.user_name = authorization.and_then(basic_user);
        }

        let include = if request {
            &s.include_request
        } else {
            &s.include_response
        };
        if let Some(ct) = m.content_type.as_deref().filter(|c| !c.is_empty()) {
            let included = !include.is_empty() && {
                let ct = ct.to_ascii_lowercase();
                include.iter().any(|i| ct.contains(i.as_str()))
            };
            if included {
                m.capture = Capture::Include;
            } else if request && is_form_type(ct) {
                m.capture = Capture::Form;
            }
        }

        let want_raw = if request {
            s.send_request
        } else {
            s.send_response
        };
        if want_raw {
            edits.sort_by_key(|e| e.0);
            let mut raw = String::with_capacity(head_bytes.len());
            let mut at = 0;
            for (start, end, rep) in &edits {
                if *start < at || *end > head_bytes.len() {
                    continue;
                }
                raw.push_str(&String::from_utf8_lossy(&head_bytes[at..*start]));
                raw.push_str(rep);
                at = *end;
            }
            raw.push_str(&String::from_utf8_lossy(&head_bytes[at..]));
            m.raw_head = Some(raw);
        }
        m
    }

    /// Counts body payload bytes and keeps them (up to `max`) when captured.
    pub fn add_body(&mut self, b: &[u8], max: usize) {
        self.body_bytes += b.len() as u64;
        self.wire.bytes += b.len() as u64;
        if self.capture == Capture::None {
            return;
        }
        let take = max.saturating_sub(self.body.len()).min(b.len());
        if take == 0 {
            return;
        }
        let want = self.body.len() + take;
        if want > self.body.capacity() {
            let target = (self.body.capacity() * 2).max(want).min(max);
            self.body.reserve_exact(target - self.body.len());
        }
        self.body.extend_from_slice(&b[..take]);
    }
}

/// The header fields a message's own fields come from, told apart by length first
/// so that each field name is compared with at most one known name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    ContentLength,
    TransferEncoding,
    ContentType,
    ContentEncoding,
    Host,
    UserAgent,
    Referer,
    Authorization,
    Other,
}

impl Known {
    fn of(name: &str) -> Known {
        // Each arm compares with a constant, which the compiler turns into a few
        // word compares.
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        match name.len() {
            4 if is("host") => Known::Host,
            7 if is("referer") => Known::Referer,
            10 if is("user-agent") => Known::UserAgent,
            12 if is("content-type") => Known::ContentType,
            13 if is(AUTHORIZATION) => Known::Authorization,
            14 if is("content-length") => Known::ContentLength,
            16 if is("content-encoding") => Known::ContentEncoding,
            17 if is("transfer-encoding") => Known::TransferEncoding,
            _ => Known::Other,
        }
    }
}

/// Connection facts the exchange needs for `url.*`.
#[derive(Debug)]
pub struct HttpExchange {
    pub settings: Arc<HttpSettings>,
    pub server_ip: IpAddr,
    pub server_port: u16,
}

impl HttpExchange {
    fn body_content(&self, m: &mut Msg) -> Option<String> {
        if m.capture != Capture::Include {
            return None;
        }
        let body = std::mem::take(&mut m.body);
        let s = &self.settings;
        let bytes = match m.content_encoding.as_deref() {
            Some(c) if s.decode_body => decode(c, &body, s.max_message_size).unwrap_or(body),
            _ => body,
        };
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `url.*` of a request; `host` is its Host header split ([`split_host`]),
    /// `query` the re-encoded parameters.
    fn url(
        &self,
        req: &Request,
        host: Option<(&str, Option<u16>)>,
        query: Option<&str>,
    ) -> UrlFields {
        let (domain, port) = match host {
            Some((h, port)) => (h.to_string(), port),
            None => (self.server_ip.to_string(), None),
        };
        let port = port.unwrap_or(self.server_port);
        let mut full = String::with_capacity(16 + domain.len() + req.path.len());
        full.push_str("http://");
        if domain.contains(':') {
            full.push('[');
            full.push_str(&domain);
            full.push(']');
        } else {
            full.push_str(&domain);
        }
        if port != 80 {
            full.push(':');
            full.push_str(itoa::Buffer::new().format(port));
        }
        full.push_str(&req.path);
        if let Some(q) = query {
            full.push('?');
            full.push_str(q);
        }
        let last = req.path.rsplit('/').next().unwrap_or("");
        let extension = last
            .rfind('.')
            .map(|i| &last[i + 1..])
            .filter(|e| !e.is_empty())
            .map(str::to_string);
        UrlFields {
            scheme: "http",
            domain,
            port: (port != 80).then_some(port),
            path: req.path.clone(),
            query: query.map(str::to_string),
            extension,
            full,
        }
    }
}

impl Exchange for HttpExchange {
    const PROTOCOL: &'static str = "http";
    type Request = Request;
    type Response = Response;

    fn fill(&self, tx: &mut Transaction, req: Option<Request>, resp: Option<Response>) {
        let mut f = HttpFields {
            split_cookie: self.settings.split_cookie,
            ..Default::default()
        };
        let s = &self.settings;
        if let Some(mut req) = req {
            f.version = Some(req.minor);
            let mut query = String::with_capacity(req.method.len() + 1 + req.path.len());
            query.push_str(&req.method);
            query.push(' ');
            query.push_str(&req.path);
            tx.query = Some(query);
            tx.path = Some(req.path.clone());
            let form = req.capture != Capture::None
                && req.content_type.as_deref().is_some_and(is_form_type);
            // Packetbeat's `params`, also published as `url.query`.
            tx.params = encode_params(
                req.query.as_deref(),
                form.then_some(&req.body[..]),
                &s.hide_keywords,
            );
            let host = req
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(split_host);
            tx.destination_domain = host
                .map(|(h, _)| h)
                .filter(|h| !h.is_empty())
                .map(str::to_string);
            tx.forwarded_ip = req.forwarded_ip.take();
            tx.user_name = req.user_name.take();
            f.url = Some(self.url(&req, host, tx.params.as_deref()));
            f.user_agent = req.user_agent.take();
            let mut content = self.body_content(&mut req);
            if let (Some(c), true) = (&mut content, form) {
                // The exported form body carries the hidden keywords too.
                *c = hide_params(c, &s.hide_keywords).into_owned();
            }
            if let Some(mut raw) = req.raw_head.take() {
                if let Some(c) = &content {
                    raw.push_str(c);
                }
                tx.request = Some(raw);
            }
            tx.method = Some(req.method.clone());
            f.request = Some(ReqFields {
                method: req.method,
                bytes: req.wire.bytes,
                body_bytes: req.body_bytes,
                body: content,
                mime_type: req.content_type.as_deref().and_then(mime_of),
                referrer: req.referrer,
                headers: req.headers,
            });
        }
        if let Some(mut resp) = resp {
            if resp.code >= 400 {
                tx.status = Status::Error;
            }
            f.version.get_or_insert(resp.minor);
            let content = self.body_content(&mut resp);
            if let Some(mut raw) = resp.raw_head.take() {
                if let Some(c) = &content {
                    raw.push_str(c);
                }
                tx.response = Some(raw);
            }
            f.response = Some(RespFields {
                status_code: resp.code,
                status_phrase: resp.phrase,
                bytes: resp.wire.bytes,
                body_bytes: resp.body_bytes,
                body: content,
                mime_type: resp.content_type.as_deref().and_then(mime_of),
                headers: resp.headers,
            });
        }
        tx.fields = Some(Box::new(f));
    }
}
