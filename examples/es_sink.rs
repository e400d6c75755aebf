//! A minimal Elasticsearch stand-in for benchmarks (scripts/bench.sh): answers
//! `GET /`, templates and `_bulk` (every item created) on 127.0.0.1, as fast as it
//! can, optionally stalling every bulk request for the first seconds.
//!
//!   cargo run --release --example es_sink -- --port-file /tmp/port [--stall-secs 10] [--exit-after-secs 600]
//!
//! It writes its port to the port file and prints `docs=N bulks=N` to stderr
//! every second while documents arrive. It exits by itself after
//! `--exit-after-secs` (default 600).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

struct Shared {
    docs: AtomicU64,
    bulks: AtomicU64,
    stall_until: Instant,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let stall: u64 = arg("--stall-secs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let exit_after: u64 = arg("--exit-after-secs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    match arg("--port-file") {
        Some(p) => std::fs::write(p, port.to_string()).expect("write port file"),
        None => println!("{port}"),
    }
    let shared = Arc::new(Shared {
        docs: AtomicU64::new(0),
        bulks: AtomicU64::new(0),
        stall_until: Instant::now() + Duration::from_secs(stall),
    });
    let s2 = Arc::clone(&shared);
    thread::spawn(move || {
        let mut last = 0;
        let start = Instant::now();
        loop {
            thread::sleep(Duration::from_secs(1));
            let d = s2.docs.load(Ordering::Relaxed);
            if d != last {
                eprintln!(
                    "es_sink: docs={d} bulks={}",
                    s2.bulks.load(Ordering::Relaxed)
                );
                last = d;
            }
            if start.elapsed() >= Duration::from_secs(exit_after) {
                std::process::exit(0);
            }
        }
    });
    for conn in listener.incoming().flatten() {
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            let _ = serve(conn, &s);
        });
    }
}

fn serve(conn: TcpStream, s: &Shared) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 16, conn);
    let mut body = Vec::new();
    let mut resp = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut it = line.split_whitespace();
        let method = it.next().unwrap_or("").to_string();
        let path = it.next().unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        body.resize(len.min(512 << 20), 0);
        r.read_exact(&mut body)?;
        resp.clear();
        let status = if path.starts_with("/_bulk") {
            let now = Instant::now();
            if now < s.stall_until {
                thread::sleep(s.stall_until - now);
            }
            let n = memchr_count(&body) / 2;
            s.docs.fetch_add(n as u64, Ordering::Relaxed);
            s.bulks.fetch_add(1, Ordering::Relaxed);
            resp.extend_from_slice(b"{\"took\":1,\"errors\":false,\"items\":[");
            for i in 0..n {
                if i > 0 {
                    resp.push(b',');
                }
                resp.extend_from_slice(b"{\"create\":{\"status\":201}}");
            }
            resp.extend_from_slice(b"]}");
            200
        } else if path == "/" {
            resp.extend_from_slice(br#"{"version":{"number":"8.11.0"}}"#);
            200
        } else {
            resp.extend_from_slice(b"{}");
            200
        };
        let shown = if method == "HEAD" { 0 } else { resp.len() };
        write!(
            w,
            "HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {shown}\r\n\r\n"
        )?;
        if method != "HEAD" {
            w.write_all(&resp)?;
        }
        w.flush()?;
    }
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}
