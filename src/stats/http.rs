//! The local metrics endpoint (Beats' `http.enabled/host/port`): `GET /stats` as
//! JSON, `GET /metrics` as Prometheus text, `GET /` for identification, and the
//! live view's data, `GET /api/summary` and `GET /api/topology` ([`super::live`]). An accept
//! thread hands each connection to a thread of its own, at most [`MAX_CLIENTS`] at
//! once (further clients get 503 at once); one request per connection, bounded
//! request size and read time. Idle or trickling clients cannot hold it up.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Registry, Snapshot};
use crate::event::json::quoted;

/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its whole request head, and for each write of the
/// answer: a client that sends nothing, or one byte now and then, holds its
/// thread for this long at most.
const IO_TIME: Duration = Duration::from_secs(2);
/// Connections served at once; one more is answered 503 and closed.
pub const MAX_CLIENTS: usize = 16;

/// One connection being served: released when its thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts serving on `host:port` (port 0 picks a free one). Returns the bound
/// address; the thread lives as long as the process.
pub fn serve(
    registry: Arc<Registry>,
    host: &str,
    port: u16,
    name: String,
) -> io::Result<std::net::SocketAddr> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {host}")))?;
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let started = Instant::now();
    let busy = Arc::new(AtomicUsize::new(0));
    let name: Arc<str> = Arc::from(name);
    thread::Builder::new()
        .name("wirebeat-http".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(mut s) => {
                        if busy.load(Ordering::Relaxed) >= MAX_CLIENTS {
                            let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
                            let _ = respond(&mut s, 503, "text/plain", "busy, try again\n");
                            continue;
                        }
                        busy.fetch_add(1, Ordering::Relaxed);
                        let slot = Slot(Arc::clone(&busy));
                        let (registry, name) = (Arc::clone(&registry), Arc::clone(&name));
                        let spawned = thread::Builder::new()
                            .name("wirebeat-http-conn".into())
                            .spawn(move || {
                                let _slot = slot;
                                if let Err(e) = handle(s, &registry, &name, started) {
                                    tracing::debug!(target: "metrics", "metrics endpoint: {e}");
                                }
                            });
                        if let Err(e) = spawned {
                            tracing::debug!(target: "metrics", "metrics endpoint: no thread: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(target: "metrics", "metrics endpoint accept: {e}");
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(local)
}

fn handle(mut s: TcpStream, registry: &Registry, name: &str, started: Instant) -> io::Result<()> {
    s.set_write_timeout(Some(IO_TIME))?;
    let deadline = Instant::now() + IO_TIME;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while memchr::memmem::find(&buf, b"\r\n\r\n").is_none()
        && memchr::memmem::find(&buf, b"\n\n").is_none()
    {
        if buf.len() >= MAX_REQUEST {
            return respond(&mut s, 431, "text/plain", "request too large\n");
        }
        // One deadline for the whole head, not one per read: a byte every so
        // often must not keep the endpoint busy.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not received in time",
            ));
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    if method != "GET" && method != "HEAD" {
        return respond(&mut s, 405, "text/plain", "only GET\n");
    }
    // A browser asking for `/` gets the live view; other clients (Beats' API) the
    // identification JSON.
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let wants_html = head
        .lines()
        .any(|l| l.starts_with("accept:") && l.contains("text/html"));
    match path {
        "/live" => respond(&mut s, 200, "text/html; charset=utf-8", LIVE_PAGE),
        "/" if wants_html => respond(&mut s, 200, "text/html; charset=utf-8", LIVE_PAGE),
        "/" => {
            let body = format!(
                "{{\"beat\":\"wirebeat\",\"name\":{},\"version\":\"{}\",\"uptime_ms\":{}}}\n",
                quoted(name),
                env!("CARGO_PKG_VERSION"),
                started.elapsed().as_millis()
            );
            respond(&mut s, 200, "application/json", &body)
        }
        "/stats" => {
            let body = stats_json(&registry.snapshot(), started.elapsed());
            respond(&mut s, 200, "application/json", &body)
        }
        "/metrics" => {
            let body = prometheus(&registry.snapshot());
            respond(&mut s, 200, "text/plain; version=0.0.4", &body)
        }
        "/api/summary" => {
            let body = summary_json(&registry.snapshot(), &registry.live());
            respond(&mut s, 200, "application/json", &body)
        }
        "/api/topology" => {
            let body = topology_json(&registry.live());
            respond(&mut s, 200, "application/json", &body)
        }
        _ => respond(
            &mut s,
            404,
            "text/plain",
            "not found: try /stats, /metrics, /api/summary or /api/topology\n",
        ),
    }
}

/// The live view: one page, no external asset, embedded at build time.
const LIVE_PAGE: &str = include_str!("live.html");

/// Endpoints listed per ranking in `/api/summary`.
const TOP: usize = 10;

/// `/api/summary`: per protocol, transactions and errors in all and per second of
/// capture time (the last [`super::live::SECONDS_KEPT`]), response-time
/// percentiles; the top endpoints by count, by average response time and by
/// errors; capture health; what the bounds left out.
pub fn summary_json(snap: &Snapshot, live: &super::live::LiveAgg) -> String {
    use serde_json::{Value, json};
    let mut protocols = serde_json::Map::new();
    for (p, st) in &live.protocols {
        let seconds: Vec<Value> = st
            .seconds
            .iter()
            .map(|&(s, n, e)| json!([s, n, e]))
            .collect();
        protocols.insert(
            p.to_string(),
            json!({
                "transactions": st.transactions,
                "errors": st.errors,
                "error_rate": if st.transactions == 0 { 0.0 } else { st.errors as f64 / st.transactions as f64 },
                "per_second": seconds,
            }),
        );
    }
    for l in snap.latencies.summaries() {
        let p = protocols
            .entry(l.protocol.to_string())
            .or_insert_with(|| json!({}));
        p["latency_us"] =
            json!({"count": l.count, "p50": l.p50, "p90": l.p90, "p99": l.p99, "max": l.max});
    }
    let row = |((proto, ep), e): (&(&'static str, String), &super::live::EndpointStat)| {
        json!({
            "protocol": proto,
            "endpoint": ep,
            "transactions": e.transactions,
            "errors": e.errors,
            "avg_us": e.total_ns.checked_div(e.timed).unwrap_or(0) / 1000,
            "max_us": e.max_ns / 1000,
        })
    };
    let mut all: Vec<_> = live.endpoints.iter().collect();
    let top = |all: &mut Vec<_>, key: &dyn Fn(&super::live::EndpointStat) -> u64| -> Vec<Value> {
        // Ties by name, so that the answer is stable.
        all.sort_by(
            |a: &(&(&'static str, String), &super::live::EndpointStat),
             b: &(&(&'static str, String), &super::live::EndpointStat)| {
                key(b.1).cmp(&key(a.1)).then_with(|| a.0.cmp(b.0))
            },
        );
        all.iter()
            .filter(|(_, e)| key(e) > 0)
            .take(TOP)
            .map(|&(k, e)| row((k, e)))
            .collect()
    };
    let by_count = top(&mut all, &|e| e.transactions);
    let by_latency = top(&mut all, &|e| e.total_ns.checked_div(e.timed).unwrap_or(0));
    let by_errors = top(&mut all, &|e| e.errors);
    let c = &snap.counters;
    let health: serde_json::Map<String, Value> = c
        .entries()
        .into_iter()
        .filter(|(k, _)| {
            matches!(
                *k,
                "packets"
                    | "kernel_drops"
                    | "reader_queue_full_drops"
                    | "decode_errors"
                    | "parse_errors"
                    | "tcp_gaps"
                    | "flows_evicted"
                    | "unmatched_requests"
                    | "unmatched_responses"
            )
        })
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut out = json!({
        "protocols": protocols,
        "top": {"by_count": by_count, "by_latency": by_latency, "by_errors": by_errors},
        "health": health,
        "tracked": {
            "endpoints": live.endpoints.len(),
            "endpoints_dropped": live.endpoints_dropped,
            "edges": live.edges.len(),
            "edges_dropped": live.edges_dropped,
        },
    })
    .to_string();
    out.push('\n');
    out
}

/// `/api/topology`: hosts (with the transactions and bytes they took part in) and
/// who calls whom over which protocol, with the error rate.
pub fn topology_json(live: &super::live::LiveAgg) -> String {
    use serde_json::json;
    use std::collections::BTreeMap;
    let mut nodes: BTreeMap<std::net::IpAddr, (u64, u64, u64, u64)> = BTreeMap::new();
    let mut edges: Vec<_> = live.edges.iter().collect();
    edges.sort_by(|a, b| a.0.cmp(b.0));
    for ((c, s, _), e) in &edges {
        let n = nodes.entry(*c).or_default();
        n.0 += e.transactions;
        n.1 = n.1.saturating_add(e.bytes);
        n.2 += e.transactions;
        let n = nodes.entry(*s).or_default();
        n.0 += e.transactions;
        n.1 = n.1.saturating_add(e.bytes);
        n.3 += e.transactions;
    }
    let nodes: Vec<_> = nodes
        .iter()
        .map(|(ip, (t, b, out, inc))| {
            let mut n = json!({"id": ip.to_string(), "transactions": t, "bytes": b, "as_client": out, "as_server": inc});
            if let Some(name) = live.names.get(ip) {
                n["name"] = json!(name);
            }
            n
        })
        .collect();
    let edges: Vec<_> = edges
        .iter()
        .map(|((c, s, p), e)| {
            json!({
                "source": c.to_string(),
                "target": s.to_string(),
                "protocol": p,
                "transactions": e.transactions,
                "errors": e.errors,
                "error_rate": if e.transactions == 0 { 0.0 } else { e.errors as f64 / e.transactions as f64 },
                "bytes": e.bytes,
            })
        })
        .collect();
    let mut out = json!({"nodes": nodes, "edges": edges}).to_string();
    out.push('\n');
    out
}

fn respond(s: &mut TcpStream, status: u16, ctype: &str, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    s.flush()
}

/// `{"uptime_ms":..,"counters":{..},"outputs":{name:{..}},"response_times_us":{proto:{count,p50,p90,p99,max}}}`
pub fn stats_json(snap: &Snapshot, uptime: Duration) -> String {
    let mut o = String::with_capacity(2048);
    let _ = write!(o, "{{\"uptime_ms\":{},\"counters\":{{", uptime.as_millis());
    for (i, (k, v)) in snap.counters.entries().iter().enumerate() {
        let _ = write!(o, "{}\"{k}\":{v}", if i > 0 { "," } else { "" });
    }
    o.push_str("},\"outputs\":{");
    for (i, (name, stats)) in snap.outputs.iter().enumerate() {
        let _ = write!(o, "{}{}:{{", if i > 0 { "," } else { "" }, quoted(name));
        for (j, (k, v)) in stats.iter().enumerate() {
            let _ = write!(o, "{}\"{k}\":{v}", if j > 0 { "," } else { "" });
        }
        o.push('}');
    }
    o.push_str("},\"response_times_us\":{");
    for (i, s) in snap.latencies.summaries().iter().enumerate() {
        let _ = write!(
            o,
            "{}\"{}\":{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}}",
            if i > 0 { "," } else { "" },
            s.protocol,
            s.count,
            s.p50,
            s.p90,
            s.p99,
            s.max
        );
    }
    o.push_str("}}\n");
    o
}

/// Prometheus text exposition: every counter as `wirebeat_<name>_total`, output
/// statistics labelled by output, response times as a summary in seconds.
pub fn prometheus(snap: &Snapshot) -> String {
    let mut o = String::with_capacity(4096);
    for (k, v) in snap.counters.entries() {
        let _ = writeln!(
            o,
            "# TYPE wirebeat_{k}_total counter\nwirebeat_{k}_total {v}"
        );
    }
    if let Some((_, first)) = snap.outputs.first() {
        for (i, (k, _)) in first.iter().enumerate() {
            let gauge = super::report::is_gauge(k);
            let metric = if gauge {
                format!("wirebeat_output_{k}")
            } else {
                format!("wirebeat_output_{k}_total")
            };
            let _ = writeln!(
                o,
                "# TYPE {metric} {}",
                if gauge { "gauge" } else { "counter" }
            );
            for (name, stats) in &snap.outputs {
                if let Some((_, v)) = stats.get(i) {
                    let _ = writeln!(o, "{metric}{{output=\"{}\"}} {v}", prom_label(name));
                }
            }
        }
    }
    let lat = snap.latencies.summaries();
    if !lat.is_empty() {
        o.push_str("# TYPE wirebeat_response_time_seconds summary\n");
        for s in &lat {
            for (q, v) in [
                ("0.5", s.p50),
                ("0.9", s.p90),
                ("0.99", s.p99),
                ("1", s.max),
            ] {
                let _ = writeln!(
                    o,
                    "wirebeat_response_time_seconds{{protocol=\"{}\",quantile=\"{q}\"}} {}",
                    s.protocol,
                    v as f64 / 1e6
                );
            }
            let _ = writeln!(
                o,
                "wirebeat_response_time_seconds_count{{protocol=\"{}\"}} {}",
                s.protocol, s.count
            );
        }
    }
    o
}

fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Counters, OutputStats};

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        try_get(addr, path).unwrap()
    }

    /// `/stats` answers 200 within half a second.
    fn stats_answers_at_once(addr: std::net::SocketAddr) {
        let t = Instant::now();
        assert!(get(addr, "/stats").starts_with("HTTP/1.1 200"));
        let took = t.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
    }

    fn try_get(addr: std::net::SocketAddr, path: &str) -> io::Result<String> {
        let mut s = TcpStream::connect(addr)?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn serves_json_and_prometheus() {
        let r = Registry::new();
        let mut slot = r.counter_slot("worker-0");
        slot.publish(&Counters {
            packets: 42,
            ..Default::default()
        });
        OutputStats::add(&r.output("elasticsearch").events_published, 7);
        let mut l = crate::stats::Latencies::default();
        l.record("http", 2000);
        r.latency_slot().merge(&mut l);
        let addr = serve(Arc::clone(&r), "127.0.0.1", 0, "gw1".into()).unwrap();

        let stats = get(addr, "/stats");
        assert!(stats.starts_with("HTTP/1.1 200 OK\r\n"), "{stats}");
        let body = stats.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["counters"]["packets"], 42);
        assert_eq!(v["outputs"]["elasticsearch"]["events_published"], 7);
        assert_eq!(v["response_times_us"]["http"]["count"], 1);

        let prom = get(addr, "/metrics");
        assert!(prom.contains("\nwirebeat_packets_total 42\n"), "{prom}");
        assert!(
            prom.contains("wirebeat_output_events_published_total{output=\"elasticsearch\"} 7")
        );
        assert!(prom.contains("# TYPE wirebeat_output_queue_events gauge"));
        assert!(
            prom.contains(
                "wirebeat_response_time_seconds{protocol=\"http\",quantile=\"0.5\"} 0.002"
            )
        );

        let root = get(addr, "/");
        assert!(root.contains("\"name\":\"gw1\""), "{root}");
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "POST /stats HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 405"));
        // An endless header is cut off, and the server keeps serving.
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(&vec![b'a'; 3 * MAX_REQUEST]);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(get(addr, "/stats").starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn idle_clients_do_not_delay_stats_and_clients_are_bounded() {
        let addr = serve(Registry::new(), "127.0.0.1", 0, "gw1".into()).unwrap();
        // Idle connections, more than the endpoint serves at once.
        let idle: Vec<TcpStream> = (0..MAX_CLIENTS + 8)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let answer = try_get(addr, "/stats");
        let waited = t.elapsed();
        // Either served, or told at once that it is busy (a 503, or the connection
        // closed before the request was read): never left waiting.
        match &answer {
            Ok(a) => assert!(
                a.starts_with("HTTP/1.1 200") || a.starts_with("HTTP/1.1 503"),
                "{a}"
            ),
            // Closed while the request was being written (a broken pipe) or after
            // (a reset): which one depends on timing.
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ),
                "{e}"
            ),
        }
        assert!(waited < Duration::from_millis(500), "{waited:?}");
        drop(idle);
        // Once they are gone (or timed out), the endpoint answers again.
        let t = Instant::now();
        loop {
            if try_get(addr, "/stats").is_ok_and(|a| a.starts_with("HTTP/1.1 200")) {
                break;
            }
            assert!(t.elapsed() < IO_TIME + Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(50));
        }
        // A few idle clients leave room for a real one, served at once.
        let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        stats_answers_at_once(addr);
        drop(idle);
    }

    #[test]
    fn a_huge_request_line_and_garbage_get_an_answer_and_change_nothing() {
        let addr = serve(Registry::new(), "127.0.0.1", 0, "gw1".into()).unwrap();
        // 10 MB without a line end: refused once MAX_REQUEST is read.
        let huge = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let chunk = vec![b'A'; 64 * 1024];
            for _ in 0..160 {
                if s.write_all(&chunk).is_err() {
                    break; // refused and closed: the rest is not read
                }
            }
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            out
        });
        let mut g = TcpStream::connect(addr).unwrap();
        g.write_all(&[0xff, 0x00, 0x13, 0x37, b'\n', b'\n'])
            .unwrap();
        let mut out = String::new();
        let _ = g.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 405"), "{out}");
        stats_answers_at_once(addr);
        let answer = huge.join().unwrap();
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 431"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }

    #[test]
    fn a_trickling_client_holds_the_endpoint_for_the_read_time_at_most() {
        let addr = serve(Registry::new(), "127.0.0.1", 0, "gw1".into()).unwrap();
        // One byte every 300 ms, never a whole request head, for 8 s.
        let slow = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            for _ in 0..27 {
                if s.write_all(b"G").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        assert!(get(addr, "/stats").starts_with("HTTP/1.1 200"));
        let waited = t.elapsed();
        assert!(waited < IO_TIME + Duration::from_secs(2), "{waited:?}");
        slow.join().unwrap();
    }
}
