//! A small Elasticsearch stand-in on 127.0.0.1 for tests: HTTP/1.1 keep-alive,
//! Content-Length and chunked bodies, gzip request bodies, `GET /` with a chosen
//! version, legacy and composable templates, `_bulk` with per-item results
//! (`create` of an existing id answers 409, like the real thing), single documents
//! and `_search` for topology. Behaviours are scripted per bulk request: whole
//! request statuses (429 storms, 503), per-item statuses, slow answers, connections
//! closed before or after indexing, stalls, and broken answers (truncated, not
//! JSON, too few or too many items). [`FakeEs::start_layout`] lays answers out
//! like `?pretty` or a reformatting proxy would ([`Layout`]). [`FakeEs::go_down`]
//! and [`FakeEs::come_back`] are a real outage: connections refused, open ones
//! dropped, then the same port again with the documents kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the next bulk request gets.
#[derive(Clone, Debug)]
pub enum Step {
    /// The whole request answers this status; nothing is indexed.
    Status(u16),
    /// Item `i` gets `statuses[i % len]` (201 = indexed; 429/503 rejected;
    /// 400 = mapper_parsing_exception).
    Items(Vec<u16>),
    /// Wait, then handle normally.
    Slow(Duration),
    /// Close the connection before reading the request body.
    ResetBefore,
    /// Index everything, then close the connection without answering.
    ResetAfter,
    /// Index like `Items`, then answer 200 with only the first half of the JSON
    /// body (a well-framed but truncated response).
    Truncated(Vec<u16>),
    /// Index like `Items`, then answer 200 with an HTML page.
    NotJson(Vec<u16>),
    /// Index like `Items`, then answer with the last `n` items left out.
    MissingItems(Vec<u16>, usize),
    /// Index like `Items`, then answer with `n` more items (copies of the first).
    ExtraItems(Vec<u16>, usize),
    /// Index like `Items`, then answer with a body of this many bytes (valid
    /// JSON: the items, then padding in a member of its own).
    Huge(Vec<u16>, usize),
}

/// How answers are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// One line, no spaces (Elasticsearch's default).
    #[default]
    Compact,
    /// Elasticsearch's `?pretty`: two-space indent, newlines, `"key" : value`.
    Pretty,
    /// Indented with `"key": value`, as proxies and compatible servers that
    /// re-encode answers write them.
    Indented,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::Compact, Layout::Pretty, Layout::Indented];

    pub fn text(self, v: &Value) -> String {
        match self {
            Layout::Compact => v.to_string(),
            Layout::Indented => serde_json::to_string_pretty(v).expect("serialize") + "\n",
            Layout::Pretty => {
                let mut out = Vec::new();
                let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
                let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
                serde::Serialize::serialize(v, &mut ser).expect("serialize");
                // Keys are the only strings followed by `": ` here: the fake's
                // string values never contain that.
                String::from_utf8(out)
                    .expect("utf-8")
                    .replace("\": ", "\" : ")
                    + "\n"
            }
        }
    }
}

impl Step {
    /// Per-item statuses of a step that indexes.
    fn statuses(&self) -> Option<&[u16]> {
        match self {
            Step::Items(s)
            | Step::Truncated(s)
            | Step::NotJson(s)
            | Step::MissingItems(s, _)
            | Step::ExtraItems(s, _)
            | Step::Huge(s, _) => Some(s),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct State {
    pub version: String,
    /// Indexed documents by (index, id).
    pub docs: BTreeMap<(String, String), Value>,
    /// Templates by API path (`/_template/NAME`, `/_index_template/NAME`).
    pub templates: HashMap<String, Value>,
    pub script: VecDeque<Step>,
    /// Every request: method and path.
    pub requests: Vec<(String, String)>,
    pub bulk_requests: u64,
    pub gzip_requests: u64,
    /// Items answered 409 because the id existed.
    pub conflicts: u64,
    /// Items rejected with 400 (by script or `reject_containing`).
    pub rejected: u64,
    /// Items answered 429 or 5xx (by script).
    pub retryable: u64,
    /// How answers are laid out.
    pub layout: Layout,
    /// Documents whose text contains this are always rejected with 400.
    pub reject_containing: Option<String>,
    /// Authorization headers seen.
    pub auth: Vec<String>,
    /// Required Authorization header, when set (401 otherwise).
    pub require_auth: Option<String>,
    /// While set, bulk requests wait.
    pub stalled: bool,
    /// Bulk requests currently being handled.
    pub in_flight: u32,
    /// Bulk bodies (after decompression) larger than this are refused with 413, as
    /// Elasticsearch does past `http.max_content_length`.
    pub max_body: Option<usize>,
    /// Bulk requests refused with 413.
    pub too_large: u64,
    /// Set by [`FakeEs::go_down_mid_request`]: the next bulk request is indexed,
    /// then the server goes down without answering it.
    pub lose_next_answer: bool,
    /// When set, an indexed document is stored as a hash of its text (a JSON
    /// number) instead of its parsed `_source`: big replays stay small in memory
    /// and duplicates by content are still visible.
    pub hash_only: bool,
}

type Conns = Arc<Mutex<HashMap<u64, TcpStream>>>;

pub struct FakeEs {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// While set, the port is closed (see [`FakeEs::go_down`]).
    down: Arc<AtomicBool>,
    /// Whether the accept loop holds a listening socket right now.
    listening: Arc<AtomicBool>,
    /// The open connections by number (clones of their sockets, to drop them).
    conns: Conns,
}

impl FakeEs {
    pub fn start(version: &str) -> FakeEs {
        Self::start_with(version, None)
    }

    /// Every answer laid out as `layout` says, e.g. [`Layout::Pretty`]:
    /// `{\n  "took" : 1,\n  "errors" : true,\n  "items" : [ ... ] }`.
    pub fn start_layout(version: &str, layout: Layout) -> FakeEs {
        let es = Self::start_with(version, None);
        es.state().layout = layout;
        es
    }

    /// Over HTTPS with `tests/tls/server.pem` (signed by `tests/tls/ca.pem`).
    pub fn start_tls(version: &str) -> FakeEs {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = super::root().join("tests/tls");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .expect("server.pem")
                .map(|c| c.expect("certificate"))
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
        Self::start_with(version, Some(Arc::new(cfg)))
    }

    fn start_with(version: &str, tls: Option<Arc<rustls::ServerConfig>>) -> FakeEs {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake es");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            version: version.to_string(),
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let listening = Arc::new(AtomicBool::new(true));
        let conns: Conns = Arc::default();
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        let (dn, ls, cs) = (
            Arc::clone(&down),
            Arc::clone(&listening),
            Arc::clone(&conns),
        );
        thread::spawn(move || {
            let mut listener = Some(listener);
            let mut n = 0u64;
            while !sp.load(Ordering::Relaxed) {
                // Down: the socket is closed, so connections are refused.
                let l = match listener.take() {
                    Some(l) => l,
                    None => {
                        while dn.load(Ordering::Relaxed) && !sp.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_millis(5));
                        }
                        // std sets SO_REUSEADDR on Linux: the same port again.
                        match TcpListener::bind(addr) {
                            Ok(l) => l,
                            Err(_) => {
                                thread::sleep(Duration::from_millis(20));
                                continue;
                            }
                        }
                    }
                };
                ls.store(true, Ordering::SeqCst);
                for conn in l.incoming() {
                    if sp.load(Ordering::Relaxed) || dn.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    n += 1;
                    let id = n;
                    if let Ok(c) = conn.try_clone() {
                        cs.lock().unwrap_or_else(|p| p.into_inner()).insert(id, c);
                    }
                    let (st, sp, dn) = (Arc::clone(&st), Arc::clone(&sp), Arc::clone(&dn));
                    // Its clone goes when the connection ends, so that returning
                    // from `serve` closes it.
                    let cs = Arc::clone(&cs);
                    let forget = move || {
                        cs.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    };
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    match &tls {
                        None => {
                            thread::spawn(move || {
                                serve(conn, st, sp, dn);
                                forget();
                            });
                        }
                        Some(cfg) => {
                            let Ok(sc) = rustls::ServerConnection::new(Arc::clone(cfg)) else {
                                forget();
                                continue;
                            };
                            let stream = rustls::StreamOwned::new(sc, conn);
                            thread::spawn(move || {
                                serve(stream, st, sp, dn);
                                forget();
                            });
                        }
                    }
                }
                drop(l);
                ls.store(false, Ordering::SeqCst);
            }
        });
        FakeEs {
            addr,
            state,
            stop,
            down,
            listening,
            conns,
        }
    }

    /// An outage: closes the listening socket (new connections are refused) and
    /// drops every open connection. A bulk request being handled is indexed but
    /// its answer is lost, as when a node dies before answering. The documents
    /// stay.
    pub fn go_down(&self) {
        self.down.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then closes the socket.
        let _ = TcpStream::connect(self.addr);
        let t0 = Instant::now();
        while self.listening.load(Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(5), "fake es stays up");
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(50));
            thread::sleep(Duration::from_millis(2));
        }
        for (_, c) in self.conns.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Ends an outage: listens again on the same port.
    pub fn come_back(&self) {
        self.down.store(false, Ordering::SeqCst);
        let t0 = Instant::now();
        while !self.listening.load(Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(5), "fake es stays down");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// [`Self::go_down`] in the middle of a bulk request: the next one is indexed
    /// and never answered (waits for it at most `limit`, then goes down anyway);
    /// whether one was caught.
    pub fn go_down_mid_request(&self, limit: Duration) -> bool {
        self.state().lose_next_answer = true;
        let t0 = Instant::now();
        while !self.down.load(Ordering::SeqCst) && t0.elapsed() < limit {
            thread::sleep(Duration::from_millis(1));
        }
        let caught = self.down.load(Ordering::SeqCst);
        self.state().lose_next_answer = false;
        self.go_down();
        caught
    }

    /// Documents indexed (all indices).
    pub fn doc_count(&self) -> usize {
        self.state().docs.len()
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn script(&self, steps: impl IntoIterator<Item = Step>) {
        self.state().script.extend(steps);
    }

    pub fn set_stalled(&self, v: bool) {
        self.state().stalled = v;
    }

    /// The `_source` of every indexed document of indices starting with `prefix`.
    pub fn docs(&self, prefix: &str) -> Vec<Value> {
        self.state()
            .docs
            .iter()
            .filter(|((i, _), _)| i.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn indices(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state().docs.keys().map(|(i, _)| i.clone()).collect();
        v.dedup();
        v
    }

    /// Waits until `f` holds (at most `limit`).
    pub fn wait_for(&self, limit: Duration, f: impl Fn(&State) -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if f(&self.state()) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for FakeEs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.down.store(false, Ordering::SeqCst);
        self.state().stalled = false;
        let _ = TcpStream::connect(self.addr);
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const MAX_BODY: usize = 256 << 20;

fn read_head<S: Read>(r: &mut BufReader<S>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some(Request {
        method,
        path,
        headers,
    })
}

fn read_body<S: Read>(r: &mut BufReader<S>, req: &Request) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if body.len() + n > MAX_BODY {
                return None;
            }
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).ok()?;
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    } else if let Some(n) = req.header("content-length") {
        let n: usize = n.parse().ok()?;
        if n > MAX_BODY {
            return None;
        }
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    if req
        .header("content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
    {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .take(MAX_BODY as u64)
            .read_to_end(&mut out)
            .ok()?;
        body = out;
    }
    Some(body)
}

/// An answer: JSON (laid out as the server is set up), or raw text.
enum Body {
    Json(Value),
    Raw(String),
}

fn respond(
    w: &mut impl Write,
    status: u16,
    body: &Body,
    layout: Layout,
    head_only: bool,
) -> std::io::Result<()> {
    let text = match body {
        _ if head_only => String::new(),
        Body::Json(v) => layout.text(v),
        Body::Raw(s) => s.clone(),
    };
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Status",
    };
    write!(
        w,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
        if head_only { 0 } else { text.len() }
    )?;
    w.flush()
}

fn version_of(s: &str) -> (u32, u32) {
    let mut it = s.split('.');
    let a = it.next().and_then(|x| x.parse().ok()).unwrap_or(8);
    let b = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (a, b)
}

/// Serves one connection; returning drops (closes) it. Once `down` is set, a
/// bulk request being handled is indexed but not answered.
fn serve<S: Read + Write>(
    conn: S,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
) {
    let mut r = BufReader::new(conn);
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    while !stop.load(Ordering::Relaxed) {
        let Some(req) = read_head(&mut r) else { return };
        let is_bulk =
            req.method == "POST" && req.path.split('?').next().unwrap_or("").ends_with("/_bulk");
        let step = if is_bulk {
            lock().script.pop_front()
        } else {
            None
        };
        if let Some(Step::ResetBefore) = step {
            return;
        }
        let Some(body) = read_body(&mut r, &req) else {
            return;
        };
        {
            let mut s = lock();
            s.requests.push((req.method.clone(), req.path.clone()));
            if req.header("content-encoding").is_some() {
                s.gzip_requests += 1;
            }
            if let Some(a) = req.header("authorization") {
                s.auth.push(a.to_string());
            }
            if let Some(want) = s.require_auth.clone()
                && req.header("authorization") != Some(want.as_str())
            {
                let layout = s.layout;
                drop(s);
                let body = Body::Json(json!({"error": "unauthorized"}));
                if respond(r.get_mut(), 401, &body, layout, false).is_err() {
                    return;
                }
                continue;
            }
        }
        let head = req.method == "HEAD";
        let (status, reply) = if is_bulk {
            lock().in_flight += 1;
            while lock().stalled && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(5));
            }
            if let Some(Step::Slow(d)) = &step {
                thread::sleep(*d);
            }
            let out = bulk(&state, &body, step.clone());
            // Under the lock: see `go_down_mid_request`.
            let lost = {
                let mut s = lock();
                s.in_flight -= 1;
                if s.lose_next_answer {
                    s.lose_next_answer = false;
                    down.store(true, Ordering::SeqCst);
                }
                down.load(Ordering::SeqCst)
            };
            if lost {
                return;
            }
            match out {
                Some(x) => x,
                None => return,
            }
        } else {
            let (status, v) = route(&state, &req, &body);
            (status, Body::Json(v))
        };
        let layout = lock().layout;
        if respond(r.get_mut(), status, &reply, layout, head).is_err() {
            return;
        }
    }
}

fn route(state: &Arc<Mutex<State>>, req: &Request, body: &[u8]) -> (u16, Value) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let path = req.path.split('?').next().unwrap_or("").to_string();
    let version = version_of(&s.version);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", [""]) => (
            200,
            json!({"name": "fake", "cluster_name": "fake", "version": {"number": s.version}, "tagline": "You Know, for Search"}),
        ),
        (m, [api @ ("_template" | "_index_template"), name]) => {
            if *api == "_index_template" && version < (7, 8) {
                return (
                    400,
                    json!({"error": "no handler found for uri [/_index_template]"}),
                );
            }
            let key = format!("/{api}/{name}");
            match m {
                "HEAD" | "GET" => match s.templates.get(&key) {
                    Some(t) => (200, json!({ *name: t })),
                    None => (404, json!({})),
                },
                "PUT" => match serde_json::from_slice::<Value>(body) {
                    Ok(v) => {
                        s.templates.insert(key, v);
                        (200, json!({"acknowledged": true}))
                    }
                    Err(e) => (400, json!({"error": e.to_string()})),
                },
                _ => (405, json!({})),
            }
        }
        ("PUT", [index, _kind, id]) => match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                s.docs.insert((index.to_string(), id.to_string()), v);
                (201, json!({"result": "created"}))
            }
            Err(e) => (400, json!({"error": e.to_string()})),
        },
        ("POST" | "GET", [index, "_search"]) => {
            let hits: Vec<Value> = s
                .docs
                .iter()
                .filter(|((i, _), _)| i == index)
                .map(|((i, id), v)| json!({"_index": i, "_id": id, "_source": v}))
                .collect();
            if hits.is_empty() && !s.docs.keys().any(|(i, _)| i == index) {
                return (404, json!({"error": {"type": "index_not_found_exception"}}));
            }
            (200, json!({"hits": {"total": hits.len(), "hits": hits}}))
        }
        _ => (
            404,
            json!({"error": format!("no route {} {}", req.method, path)}),
        ),
    }
}

/// Handles one bulk body; `None` = close the connection without answering.
fn bulk(state: &Arc<Mutex<State>>, body: &[u8], step: Option<Step>) -> Option<(u16, Body)> {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.bulk_requests += 1;
    if s.max_body.is_some_and(|max| body.len() > max) {
        s.too_large += 1;
        return Some((
            413,
            Body::Json(json!({
                "error": {"type": "content_too_long_exception", "reason": "request entity too large"},
                "status": 413
            })),
        ));
    }
    if let Some(Step::Status(code)) = step {
        return Some((
            code,
            Body::Json(json!({"error": {"type": "fake", "reason": "scripted"}, "status": code})),
        ));
    }
    let version = version_of(&s.version);
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if !lines.len().is_multiple_of(2) {
        return Some((400, Body::Json(json!({"error": "odd number of lines"}))));
    }
    let mut items = Vec::new();
    let mut errors = false;
    for (i, pair) in lines.chunks(2).enumerate() {
        let action: Value = serde_json::from_slice(pair[0]).ok()?;
        let (op, meta) = action.as_object()?.iter().next()?;
        let index = meta.get("_index")?.as_str()?.to_string();
        let id = meta
            .get("_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("auto-{}-{i}", s.bulk_requests));
        let has_type = meta.get("_type").is_some();
        let mut status: u16 = match step.as_ref().and_then(Step::statuses) {
            Some(st) if !st.is_empty() => st[i % st.len()],
            _ => 201,
        };
        let text = String::from_utf8_lossy(pair[1]);
        if status == 201
            && let Some(bad) = &s.reject_containing
            && text.contains(bad.as_str())
        {
            status = 400;
        }
        let type_problem = (version.0 >= 8 && has_type) || (version.0 < 7 && !has_type);
        if status == 201 && type_problem {
            status = 400;
        }
        let doc: Option<Value> = serde_json::from_slice(pair[1]).ok();
        if status == 201 && doc.is_none() {
            status = 400;
        }
        let key = (index.clone(), id.clone());
        if status == 201 && op == "create" && s.docs.contains_key(&key) {
            status = 409;
        }
        let mut item = json!({"_index": index, "_id": id, "status": status});
        match status {
            201 => {
                let doc = if s.hash_only {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    pair[1].hash(&mut h);
                    json!(h.finish())
                } else {
                    doc.unwrap_or(Value::Null)
                };
                s.docs.insert(key, doc);
                item["result"] = json!("created");
            }
            409 => {
                s.conflicts += 1;
                item["error"] = json!({"type": "version_conflict_engine_exception", "reason": "document already exists"});
            }
            429 => {
                s.retryable += 1;
                item["error"] = json!({"type": "es_rejected_execution_exception", "reason": "rejected execution"})
            }
            400 => {
                s.rejected += 1;
                item["error"] = json!({"type": if type_problem { "illegal_argument_exception" } else { "mapper_parsing_exception" }, "reason": "failed to parse field [x] of type [long]"});
            }
            _ => {
                s.retryable += 1;
                item["error"] = json!({"type": "unavailable_shards_exception", "reason": "primary shard is not active"})
            }
        }
        if status >= 300 {
            errors = true;
        }
        items.push(json!({ op.clone(): item }));
    }
    let answer = |items: Vec<Value>| json!({"took": 1, "errors": errors, "items": items});
    let text = |v: &Value| s.layout.text(v);
    let body = match step {
        Some(Step::ResetAfter) => return None,
        Some(Step::Truncated(_)) => {
            let t = text(&answer(items));
            Body::Raw(t[..t.len() / 2].to_string())
        }
        Some(Step::NotJson(_)) => {
            Body::Raw("<html><body><h1>200 OK</h1>indexed</body></html>".into())
        }
        Some(Step::MissingItems(_, n)) => {
            let keep = items.len().saturating_sub(n);
            items.truncate(keep);
            Body::Json(answer(items))
        }
        Some(Step::ExtraItems(_, n)) => {
            let first = items.first().cloned().unwrap_or(Value::Null);
            items.extend(std::iter::repeat_n(first, n));
            Body::Json(answer(items))
        }
        Some(Step::Huge(_, size)) => {
            let mut v = answer(items);
            let len = text(&v).len();
            v["padding"] = json!("x".repeat(size.saturating_sub(len + 14)));
            Body::Json(v)
        }
        _ => Body::Json(answer(items)),
    };
    Some((200, body))
}
