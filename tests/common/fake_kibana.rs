//! A small Kibana stand-in on 127.0.0.1 for tests of `setup --dashboards`: the
//! saved objects import API as Kibana 8 serves it. `POST
//! [/s/<space>]/api/saved_objects/_import[?overwrite=true]` with a
//! `multipart/form-data` body whose `file` part is an `.ndjson` export; the
//! `kbn-xsrf` header is required (400 without), credentials when set (401
//! otherwise); each object is created, overwritten, or refused with a
//! `conflict` error when it exists and `overwrite` is not set, or with
//! `unsupported_type`; the answer lists `successCount`, `successResults` and
//! `errors` like Kibana's.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

const TYPES: &[&str] = &[
    "index-pattern",
    "search",
    "lens",
    "visualization",
    "dashboard",
];

/// One request as received: method, path with query, headers (names lower-cased).
pub type Request = (String, String, Vec<(String, String)>);

#[derive(Default)]
pub struct State {
    /// Saved objects by (space, type, id).
    pub objects: BTreeMap<(String, String, String), Value>,
    /// Required `Authorization` header, when set.
    pub require_auth: Option<String>,
    /// Every request: method, path with query, headers (names lower-cased).
    pub requests: Vec<Request>,
}

pub struct FakeKibana {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeKibana {
    pub fn start() -> FakeKibana {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake kibana");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                thread::spawn(move || serve(conn, st));
            }
        });
        FakeKibana { addr, state }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The objects of `space` (`default` for the default one) of type `kind`.
    pub fn objects(&self, space: &str, kind: &str) -> Vec<Value> {
        self.state()
            .objects
            .iter()
            .filter(|((s, t, _), _)| s == space && t == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn serve(conn: TcpStream, st: Arc<Mutex<State>>) {
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = handle(&st, &method, &target, &headers, &body);
        st.lock().unwrap_or_else(|p| p.into_inner()).requests.push((
            method,
            target,
            headers.clone(),
        ));
        let text = answer.to_string();
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            415 => "Unsupported Media Type",
            _ => "Error",
        };
        let out = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if w.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

fn error(status: u16, error: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"statusCode": status, "error": error, "message": message}),
    )
}

fn handle(
    st: &Mutex<State>,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Value) {
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (space, api) = match path.strip_prefix("/s/") {
        Some(rest) => match rest.split_once('/') {
            Some((s, a)) => (s.to_string(), format!("/{a}")),
            None => return error(404, "Not Found", "Not Found"),
        },
        None => ("default".to_string(), path.to_string()),
    };
    if method != "POST" || api != "/api/saved_objects/_import" {
        return error(404, "Not Found", "Not Found");
    }
    let required = st
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .require_auth
        .clone();
    if let Some(want) = required
        && header("authorization") != Some(want.as_str())
    {
        return error(
            401,
            "Unauthorized",
            "[security_exception]: unable to authenticate user",
        );
    }
    if header("kbn-xsrf").is_none() {
        return error(
            400,
            "Bad Request",
            "Request must contain a kbn-xsrf header.",
        );
    }
    let overwrite = query.split('&').any(|kv| kv == "overwrite=true");
    let Some(boundary) = header("content-type")
        .and_then(|c| c.strip_prefix("multipart/form-data; boundary="))
        .map(|b| b.trim_matches('"').to_string())
    else {
        return error(415, "Unsupported Media Type", "Unsupported Media Type");
    };
    let Some((filename, file)) = file_part(body, &boundary) else {
        return error(
            400,
            "Bad Request",
            "[request body.file]: expected value of type [Stream]",
        );
    };
    if !filename.ends_with(".ndjson") {
        return error(400, "Bad Request", "Invalid file extension .txt");
    }
    let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&file)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let Ok(o) = serde_json::from_str::<Value>(line) else {
            return error(400, "Bad Request", "Unexpected token in JSON");
        };
        let (kind, id) = (
            o["type"].as_str().unwrap_or("").to_string(),
            o["id"].as_str().unwrap_or("").to_string(),
        );
        let title = o["attributes"]["title"].clone();
        if !TYPES.contains(&kind.as_str()) {
            errors.push(json!({"id": id, "type": kind, "meta": {"title": title}, "error": {"type": "unsupported_type"}}));
            continue;
        }
        let key = (space.clone(), kind.clone(), id.clone());
        if s.objects.contains_key(&key) && !overwrite {
            errors.push(json!({"id": id, "type": kind, "meta": {"title": title}, "error": {"type": "conflict"}}));
            continue;
        }
        let existed = s.objects.insert(key, o).is_some();
        let mut r = json!({"id": id, "type": kind, "meta": {"title": title}});
        if existed {
            r["overwrite"] = json!(true);
        }
        ok.push(r);
    }
    (
        200,
        json!({
            "success": errors.is_empty(),
            "successCount": ok.len(),
            "successResults": ok,
            "errors": errors,
        }),
    )
}

/// The `file` part of a multipart body: its file name and content.
fn file_part(body: &[u8], boundary: &str) -> Option<(String, Vec<u8>)> {
    let text = body;
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(i) = find(&text[at..], delim.as_bytes()) {
        parts.push(at + i);
        at += i + delim.len();
    }
    for w in parts.windows(2) {
        let part = &text[w[0] + delim.len()..w[1]];
        let part = part.strip_prefix(b"\r\n")?;
        let split = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        let content = &part[split + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        if head.contains("name=\"file\"") {
            let name = head
                .split("filename=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string();
            return Some((name, content.to_vec()));
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
