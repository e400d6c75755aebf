//! The live view's JSON (`/api/summary`, `/api/topology`) on recorded fixtures,
//! served by `-I FILE --serve` after the input ends.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::redis_server::free_port;
use serde_json::Value;

struct Served {
    child: Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(pcap: &str) -> Served {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(common::root())
        .args(["-c", "configs/wirebeat.yml", "-I", pcap, "-t", "--serve"])
        .args([
            "-E",
            &format!("http.port={port}"),
            "-E",
            "output.console.enabled=false",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wirebeat");
    Served { child, port }
}

fn get(port: u16, path: &str) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).ok()
}

/// The summary once the replay has published `want` transactions of `proto`.
fn summary_when(s: &Served, proto: &str, want: u64) -> Value {
    let t0 = Instant::now();
    loop {
        if let Some(v) = get(s.port, "/api/summary")
            && v["protocols"][proto]["transactions"] == want
        {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no summary with {want} {proto} transactions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn summary_and_topology_of_a_replay_stay_served_after_it_ends() {
    let mut s = serve("tests/pcaps/sample.pcap");
    let v = summary_when(&s, "http", 6);
    let http = &v["protocols"]["http"];
    assert_eq!(http["errors"], 2, "{v}");
    assert_eq!(http["per_second"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(http["per_second"][0][1], 6);
    assert_eq!(http["latency_us"]["count"], 6);
    assert!(
        http["latency_us"]["p99"].as_u64().unwrap() >= http["latency_us"]["p50"].as_u64().unwrap()
    );
    let top = &v["top"]["by_count"];
    assert_eq!(top[0]["endpoint"], "GET /private/", "{v}");
    assert_eq!(top[0]["transactions"], 2);
    let failing: Vec<&str> = v["top"]["by_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["GET /nope.html", "GET /private/"]);
    assert_eq!(v["tracked"]["endpoints_dropped"], 0);
    assert_eq!(v["health"]["packets"], 45);

    let t = get(s.port, "/api/topology").unwrap();
    assert_eq!(t["nodes"].as_array().unwrap().len(), 2, "{t}");
    let e = &t["edges"][0];
    assert_eq!(
        (e["source"].as_str(), e["target"].as_str()),
        (Some("10.77.0.1"), Some("10.77.0.2"))
    );
    assert_eq!(
        (e["protocol"].as_str(), e["transactions"].as_u64()),
        (Some("http"), Some(6))
    );
    assert_eq!(e["errors"], 2);

    // Still there a while after the input ended; SIGTERM ends it, exit 0.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "exited after the input"
    );
    assert!(get(s.port, "/api/summary").is_some());
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = s.child.wait().unwrap();
    assert_eq!(code.code(), Some(0));
}

#[test]
fn sql_endpoints_are_statement_shapes() {
    // Three failing statements: `SELEC 1`, `SELECT * FROM missing_table`, `SELECT 1/0`.
    let s = serve("tests/pcaps/pgsql/errors.pcap");
    let v = summary_when(&s, "pgsql", 3);
    assert_eq!(v["protocols"]["pgsql"]["errors"], 3, "{v}");
    let mut eps: Vec<&str> = v["top"]["by_count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    eps.sort();
    assert_eq!(
        eps,
        ["SELEC ?", "SELECT * FROM missing_table", "SELECT ?/?"],
        "{v}"
    );
}

#[test]
fn serve_needs_a_replay() {
    let out = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(common::root())
        .args(["-c", "configs/wirebeat.yml", "--serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--serve"));
}

/// Debian's Chromium, when installed (scripts/test.sh installs it as root).
fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Headless Chromium on `url`, with a fresh profile and no background traffic;
/// `what` is `--dump-dom` or `--screenshot=FILE`.
fn headless(chrome: &str, url: &str, what: &str) -> std::process::Output {
    let profile = std::env::temp_dir().join(format!(
        "wirebeat-chromium-{}-{}",
        std::process::id(),
        what.len()
    ));
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1100",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(url)
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    out
}

#[test]
fn the_page_draws_the_graph_and_the_charts_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var("WIREBEAT_REQUIRE_ROOT_TESTS").is_err(),
            "chromium is not installed"
        );
        eprintln!(
            "the_page_draws...: Debian's chromium is not installed; skipped (scripts/test.sh installs it as root)"
        );
        return;
    };
    let s = serve("tests/pcaps/sample.pcap");
    summary_when(&s, "http", 6);
    let url = format!("http://127.0.0.1:{}/", s.port);
    let out = headless(chrome, &url, "--dump-dom");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page did not finish a refresh: {dom}"
    );
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(count("class=\"node\""), 2, "{dom}");
    assert_eq!(count("class=\"edge\""), 1, "{dom}");
    assert!(count("class=\"series\"") >= 1, "no chart line: {dom}");
    assert!(dom.contains("GET /private/"), "{dom}");
    assert!(
        dom.contains("<pre id=\"errors\"></pre>"),
        "the page reported an error: {dom}"
    );
    let png = common::root().join("target/live-view-test.png");
    let _ = std::fs::remove_file(&png);
    headless(chrome, &url, &format!("--screenshot={}", png.display()));
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot of {size} bytes");
}

#[test]
fn browsers_get_the_page_and_other_clients_the_beat_info() {
    let s = serve("tests/pcaps/sample.pcap");
    summary_when(&s, "http", 6);
    let ask = |accept: &str| {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        write!(c, "GET / HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n").unwrap();
        let mut t = String::new();
        c.read_to_string(&mut t).unwrap();
        t
    };
    let page = ask("text/html,application/xhtml+xml");
    assert!(
        page.contains("content-type: text/html") || page.contains("Content-Type: text/html"),
        "{page}"
    );
    assert!(page.contains("<svg id=\"graph\""));
    // Everything the page needs is in it: no external script, style or font.
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
    let info = ask("*/*");
    assert!(info.contains("\"beat\":\"wirebeat\""), "{info}");
}
