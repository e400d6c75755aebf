//! Live capture end to end: real servers (nginx, redis-server) and clients (curl,
//! redis-cli) in two network namespaces joined by a veth pair, wirebeat capturing in
//! the server namespace with af_packet and with libpcap.
//!
//! Needs root and the tools scripts/test.sh installs; skipped with a message
//! otherwise, and failed instead when WIREBEAT_REQUIRE_ROOT_TESTS=1.

mod common;

use common::netns;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use netns::{CLIENT_IP, Capture, Pair, SERVER_IP};
use serde_json::Value;

const TOOLS: &[&str] = &["nginx", "curl", "redis-server", "redis-cli"];

fn config(kind: &str, device: &str, extra: &str) -> String {
    format!(
        "interfaces:\n  device: {device}\n  type: {kind}\n{extra}\
         protocols:\n  http:\n    ports: [80]\n  redis:\n    ports: [6379]\n\
         shipper:\n  name: live-test\noutput:\n  console: {{}}\n"
    )
}

fn events(stdout: &[u8]) -> Vec<Value> {
    stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("event is JSON"))
        .collect()
}

fn get<'a>(e: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(e, |v, k| &v[k])
}

fn counter(stderr: &str, name: &str) -> u64 {
    common::final_counter(stderr, name)
}

/// HTTP 200 and 404 through nginx, SET/GET/DEL through redis-server: exactly these
/// five transactions, with their client and server addresses.
fn http_and_redis(kind: &str) {
    let mut pair = Pair::new();
    let body: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    pair.start_nginx(&[("index.html", body.clone())]);
    pair.start_redis();
    let server = pair.server.clone();
    let client = pair.client.clone();
    // af_packet also covers a list of devices (one more reader on the idle loopback).
    let device = if kind == "af_packet" {
        format!("[{}, lo]", pair.server_if)
    } else {
        pair.server_if.clone()
    };
    let cap = Capture::start(&pair, &server, &config(kind, &device, ""), &[]);

    let url = |p: &str| format!("http://{SERVER_IP}{p}");
    let o = pair.exec(&client, &["curl", "-s", &url("/index.html")]);
    assert_eq!(o.stdout, body);
    let o = pair.exec(&client, &["curl", "-s", "-o", "/dev/null", &url("/nope")]);
    assert!(o.status.success());
    for cmd in [
        &["SET", "live", "beat"][..],
        &["GET", "live"],
        &["DEL", "live"],
    ] {
        let mut args = vec!["redis-cli", "-h", SERVER_IP];
        args.extend_from_slice(cmd);
        assert!(pair.exec(&client, &args).status.success());
    }
    // The ring hands a partly filled block over after 10 ms and readers flush every
    // 50 ms; leave time for both.
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    let evs = events(&stdout);
    let mut seen: Vec<String> = evs
        .iter()
        .map(|e| {
            assert_eq!(get(e, "client.ip"), CLIENT_IP, "{e}");
            assert_eq!(get(e, "server.ip"), SERVER_IP, "{e}");
            match get(e, "type").as_str() {
                Some("http") => format!(
                    "http {} {} {} {} {}",
                    get(e, "status").as_str().unwrap_or(""),
                    get(e, "method").as_str().unwrap_or(""),
                    get(e, "url.path").as_str().unwrap_or(""),
                    get(e, "http.response.status_code"),
                    get(e, "http.response.body.bytes"),
                ),
                Some("redis") => format!(
                    "redis {} {} {}",
                    get(e, "status").as_str().unwrap_or(""),
                    get(e, "method").as_str().unwrap_or(""),
                    get(e, "redis.return_value"),
                ),
                other => panic!("unexpected event type {other:?}: {e}"),
            }
        })
        .collect();
    seen.sort();
    let not_found = evs
        .iter()
        .find(|e| get(e, "url.path") == "/nope")
        .map(|e| get(e, "http.response.body.bytes").to_string())
        .unwrap_or_default();
    let mut want = vec![
        "http OK GET /index.html 200 3000".to_string(),
        format!("http Error GET /nope 404 {not_found}"),
        "redis OK DEL \"1\"".to_string(),
        "redis OK GET \"beat\"".to_string(),
        "redis OK SET \"OK\"".to_string(),
    ];
    want.sort();
    assert_eq!(seen, want, "{stderr}");
    assert_eq!(counter(&stderr, "kernel_drops"), 0, "{stderr}");
    if kind == "af_packet" {
        assert!(stderr.contains("capturing with 2 reader(s)"), "{stderr}");
        // Every frame the kernel handed over was processed (nothing was skipped on a
        // veth: both directions are distinct frames).
        assert_eq!(
            counter(&stderr, "kernel_packets"),
            counter(&stderr, "packets"),
            "{stderr}"
        );
    }
    assert!(counter(&stderr, "kernel_packets") > 0, "{stderr}");
}

#[test]
fn af_packet_http_and_redis_transactions() {
    if !netns::prerequisites("af_packet_http_and_redis_transactions", TOOLS) {
        return;
    }
    http_and_redis("af_packet");
}

/// dig against dnsmasq over UDP and TCP, captured live: exactly these queries.
fn dns_queries(kind: &str) {
    let mut pair = Pair::new();
    pair.start_dnsmasq();
    let server = pair.server.clone();
    let client = pair.client.clone();
    let cfg = format!(
        "interfaces:\n  device: {}\n  type: {kind}\nprotocols:\n  dns:\n    ports: [53]\n\
         shipper:\n  name: live-test\noutput:\n  console: {{}}\n",
        pair.server_if
    );
    let cap = Capture::start(&pair, &server, &cfg, &[]);
    let at = format!("@{SERVER_IP}");
    for extra in ["+notcp", "+tcp"] {
        let o = pair.exec(
            &client,
            &[
                "dig",
                &at,
                extra,
                "+tries=1",
                "+time=2",
                "+short",
                "www.wirebeat.test",
            ],
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "10.77.0.50");
    }
    let o = pair.exec(
        &client,
        &["dig", &at, "+tries=1", "+time=2", "nope.wirebeat.test"],
    );
    assert!(o.status.success());
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    let mut seen: Vec<String> = events(&stdout)
        .iter()
        .filter(|e| get(e, "dns.question.name") != "ns1.wirebeat.test")
        .map(|e| {
            assert_eq!(get(e, "type"), "dns", "{e}");
            assert_eq!(get(e, "client.ip"), CLIENT_IP, "{e}");
            assert_eq!(get(e, "server.ip"), SERVER_IP, "{e}");
            format!(
                "{} {} {} {}",
                get(e, "network.transport").as_str().unwrap_or(""),
                get(e, "dns.question.name").as_str().unwrap_or(""),
                get(e, "dns.response_code").as_str().unwrap_or(""),
                get(e, "dns.resolved_ip"),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "tcp www.wirebeat.test NOERROR [\"10.77.0.50\"]",
            "udp nope.wirebeat.test NXDOMAIN null",
            "udp www.wirebeat.test NOERROR [\"10.77.0.50\"]",
        ],
        "{stderr}"
    );
    assert_eq!(counter(&stderr, "kernel_drops"), 0, "{stderr}");
}

const DNS_TOOLS: &[&str] = &["dnsmasq", "dig"];

#[test]
fn af_packet_dns_over_udp_and_tcp() {
    if !netns::prerequisites("af_packet_dns_over_udp_and_tcp", DNS_TOOLS) {
        return;
    }
    dns_queries("af_packet");
}

#[test]
fn pcap_dns_over_udp_and_tcp() {
    if !netns::prerequisites("pcap_dns_over_udp_and_tcp", DNS_TOOLS) {
        return;
    }
    if !wirebeat::capture::pcap_live::available() {
        let msg = "pcap_dns_over_udp_and_tcp: needs libpcap (libpcap0.8)";
        assert!(!netns::required(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return;
    }
    dns_queries("pcap");
}

/// ping and a UDP datagram to a closed port, captured live beside an HTTP port:
/// two echo pairs and the port unreachable error, nothing else.
fn icmp_messages(kind: &str) {
    let pair = Pair::new();
    let server = pair.server.clone();
    let client = pair.client.clone();
    let cfg = format!(
        "interfaces:\n  device: {}\n  type: {kind}\nprotocols:\n  http:\n    ports: [80]\n\
         \x20 icmp:\n    enabled: true\nshipper:\n  name: live-test\noutput:\n  console: {{}}\n",
        pair.server_if
    );
    let cap = Capture::start(&pair, &server, &cfg, &[]);
    let o = pair.exec(
        &client,
        &["ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", SERVER_IP],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let probe = format!(
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('{SERVER_IP}', 9))"
    );
    let o = pair.exec(&client, &["python3", "-c", &probe]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    let mut seen: Vec<String> = events(&stdout)
        .iter()
        .map(|e| {
            assert_eq!(get(e, "type"), "icmp", "{e}");
            format!(
                "{} -> {} {} / {} {}",
                get(e, "source.ip").as_str().unwrap_or(""),
                get(e, "destination.ip").as_str().unwrap_or(""),
                get(e, "icmp.request.message").as_str().unwrap_or("-"),
                get(e, "icmp.response.message").as_str().unwrap_or("-"),
                get(e, "status").as_str().unwrap_or(""),
            )
        })
        .collect();
    seen.sort();
    let echo = format!("{CLIENT_IP} -> {SERVER_IP} EchoRequest / EchoReply OK");
    assert_eq!(
        seen,
        vec![
            format!("{SERVER_IP} -> {CLIENT_IP} DestinationUnreachable(Port) / - Error"),
            echo.clone(),
            echo,
        ],
        "{stderr}"
    );
    assert_eq!(counter(&stderr, "kernel_drops"), 0, "{stderr}");
}

const ICMP_TOOLS: &[&str] = &["ping", "python3"];

/// Flows on (`flows:`): ping, a datagram to a closed UDP port and a connection
/// refused on a TCP port no protocol follows are all counted, reported every second
/// while the capture runs and once more, final, when it stops.
fn network_flows(kind: &str) {
    let pair = Pair::new();
    let server = pair.server.clone();
    let client = pair.client.clone();
    let cfg = format!(
        "interfaces:\n  device: {}\n  type: {kind}\nprotocols:\n  http:\n    ports: [80]\n\
         flows:\n  period: 1s\n  timeout: 30s\nshipper:\n  name: live-test\noutput:\n  console: {{}}\n",
        pair.server_if
    );
    let cap = Capture::start(&pair, &server, &cfg, &[]);
    let o = pair.exec(
        &client,
        &["ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", SERVER_IP],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let probe = format!(
        "import socket\n\
         socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('{SERVER_IP}', 9))\n\
         try:\n    socket.create_connection(('{SERVER_IP}', 81), timeout=2)\n\
         except ConnectionRefusedError:\n    pass\n"
    );
    let o = pair.exec(&client, &["python3", "-c", &probe]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Past at least one report instant.
    std::thread::sleep(Duration::from_millis(2300));
    let (code, stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    let all = events(&stdout);
    let ours = |e: &&Value| {
        get(e, "type") == "flow"
            && [CLIENT_IP, SERVER_IP].contains(&get(e, "source.ip").as_str().unwrap_or(""))
            && [CLIENT_IP, SERVER_IP].contains(&get(e, "destination.ip").as_str().unwrap_or(""))
    };
    let describe = |e: &Value| {
        format!(
            "{} {}:{} -> {}:{} {}/{}",
            get(e, "network.transport").as_str().unwrap_or(""),
            get(e, "source.ip").as_str().unwrap_or(""),
            get(e, "source.port"),
            get(e, "destination.ip").as_str().unwrap_or(""),
            get(e, "destination.port"),
            get(e, "source.packets"),
            get(e, "destination.packets"),
        )
    };
    let mut finals: Vec<String> = all
        .iter()
        .filter(ours)
        .filter(|e| get(e, "flow.final") == true)
        .map(describe)
        .collect();
    finals.sort();
    // The TCP client's port is the kernel's choice: compare without it.
    let tcp_at = finals
        .iter()
        .position(|f| f.starts_with("tcp "))
        .unwrap_or_else(|| panic!("no TCP flow in {finals:?}\n{stderr}"));
    let tcp = finals.remove(tcp_at);
    assert!(
        tcp.starts_with(&format!("tcp {CLIENT_IP}:"))
            && tcp.ends_with(&format!(" -> {SERVER_IP}:81 1/1")),
        "{tcp}"
    );
    let udp_at = finals
        .iter()
        .position(|f| f.starts_with("udp "))
        .unwrap_or_else(|| panic!("no UDP flow in {finals:?}\n{stderr}"));
    let udp = finals.remove(udp_at);
    assert!(udp.ends_with(&format!(" -> {SERVER_IP}:9 1/null")), "{udp}");
    let mut want = vec![
        format!("icmp {CLIENT_IP}:null -> {SERVER_IP}:null 2/2"),
        format!("icmp {SERVER_IP}:null -> {CLIENT_IP}:null 1/null"),
    ];
    want.sort();
    assert_eq!(finals, want, "{stderr}");
    let periodic = all
        .iter()
        .filter(ours)
        .filter(|e| get(e, "flow.final") == false)
        .count();
    assert!(periodic >= 4, "{periodic} periodic reports\n{stderr}");
    assert!(counter(&stderr, "netflow_packets") >= 8, "{stderr}");
    assert_eq!(counter(&stderr, "kernel_drops"), 0, "{stderr}");
}

#[test]
fn af_packet_network_flows() {
    if !netns::prerequisites("af_packet_network_flows", ICMP_TOOLS) {
        return;
    }
    network_flows("af_packet");
}

#[test]
fn pcap_network_flows() {
    if !netns::prerequisites("pcap_network_flows", ICMP_TOOLS) {
        return;
    }
    if !wirebeat::capture::pcap_live::available() {
        let msg = "pcap_network_flows: needs libpcap (libpcap0.8)";
        assert!(!netns::required(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return;
    }
    network_flows("pcap");
}

#[test]
fn af_packet_icmp_echo_and_errors() {
    if !netns::prerequisites("af_packet_icmp_echo_and_errors", ICMP_TOOLS) {
        return;
    }
    icmp_messages("af_packet");
}

#[test]
fn pcap_icmp_echo_and_errors() {
    if !netns::prerequisites("pcap_icmp_echo_and_errors", ICMP_TOOLS) {
        return;
    }
    if !wirebeat::capture::pcap_live::available() {
        let msg = "pcap_icmp_echo_and_errors: needs libpcap (libpcap0.8)";
        assert!(!netns::required(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return;
    }
    icmp_messages("pcap");
}

#[test]
fn pcap_http_and_redis_transactions() {
    if !netns::prerequisites("pcap_http_and_redis_transactions", TOOLS) {
        return;
    }
    if !wirebeat::capture::pcap_live::available() {
        let msg = "pcap_http_and_redis_transactions: needs libpcap (libpcap0.8)";
        assert!(!netns::required(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return;
    }
    http_and_redis("pcap");
}

/// A 1 MiB ring flooded by bulk HTTP transfers: whatever the kernel could not put in
/// the ring is counted, and everything else was processed.
#[test]
fn tiny_ring_accounts_for_every_packet() {
    if !netns::prerequisites("tiny_ring_accounts_for_every_packet", TOOLS) {
        return;
    }
    flood("block");
}

/// The same flood with `when_full: drop_newest`: packets dropped at a full worker
/// queue are counted too, and the sum still holds.
#[test]
fn tiny_ring_accounts_for_queue_drops() {
    if !netns::prerequisites("tiny_ring_accounts_for_queue_drops", TOOLS) {
        return;
    }
    flood("drop_newest");
}

fn flood(when_full: &str) {
    let mut pair = Pair::new();
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    pair.start_nginx(&[("big.bin", big)]);
    let server = pair.server.clone();
    let client = pair.client.clone();
    let cfg = config(
        "af_packet",
        &pair.server_if,
        "  buffer_size_mb: 1\n\
         pipeline:\n  readers: 1\n  workers: 1\n  worker_queue: 1\n  batch_packets: 64\n",
    )
    .replace(
        "pipeline:\n",
        &format!("pipeline:\n  when_full: {when_full}\n"),
    );
    let cap = Capture::start(&pair, &server, &cfg, &[]);
    let url = format!("http://{SERVER_IP}/big.bin");
    let mut args = vec!["curl", "-s", "-o", "/dev/null", "-Z", "--parallel-max", "4"];
    for _ in 0..8 {
        args.push(&url);
    }
    assert!(pair.exec(&client, &args).status.success());
    std::thread::sleep(Duration::from_millis(300));
    let (code, _stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    let kernel = counter(&stderr, "kernel_packets");
    let processed = counter(&stderr, "packets");
    let drops = counter(&stderr, "kernel_drops");
    let skipped = counter(&stderr, "capture_skipped");
    let queue = counter(&stderr, "reader_queue_full_drops");
    if when_full == "block" {
        assert_eq!(queue, 0, "{stderr}");
    }
    // 8 x 8 MiB in 1448-byte segments is over 46 000 data frames.
    assert!(kernel > 40_000, "{stderr}");
    assert_eq!(kernel, processed + drops + skipped, "{stderr}");
    // Queue drops happen after decoding: they are part of `packets`.
    assert!(queue <= processed, "{stderr}");
    eprintln!(
        "tiny ring ({when_full}): kernel_packets={kernel} processed={processed} \
         kernel_drops={drops} reader_queue_full_drops={queue}"
    );
}

/// Runs inside the server namespace (re-executed by `fanout_keeps_each_flow_on_one_reader`):
/// two rings in one fanout group, and for each ring the flows it saw.
#[test]
#[ignore = "helper process of fanout_keeps_each_flow_on_one_reader"]
fn fanout_helper() {
    use wirebeat::capture::af_packet::{AfPacketOptions, AfPacketSource};
    use wirebeat::capture::source::PacketSource;
    use wirebeat::decode::{Decoder, DefragLimits, L4};
    let Ok(dev) = std::env::var("WB_FANOUT_DEVICE") else {
        return;
    };
    let opts = AfPacketOptions {
        device: dev,
        snaplen: 65535,
        ring_bytes: 4 << 20,
        promisc: false,
        ignore_outgoing: false,
        fanout_group: None,
        filter: Some(
            wirebeat::capture::live::ports_filter(
                wirebeat::capture::LinkType::ETHERNET,
                &[80],
                &[],
                false,
            )
            .unwrap(),
        ),
    };
    let first = AfPacketSource::open(&opts).unwrap();
    let opts = AfPacketOptions {
        fanout_group: Some(first.fanout_group()),
        ..opts
    };
    let mut srcs = [first, AfPacketSource::open(&opts).unwrap()];
    println!("READY");
    let mut flows: Vec<BTreeMap<String, (u32, u32)>> = vec![BTreeMap::new(), BTreeMap::new()];
    let mut dec = Decoder::new(DefragLimits {
        max_datagrams: 16,
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(1),
    });
    let mut counters = wirebeat::stats::Counters::default();
    let until = std::time::Instant::now()
        + Duration::from_millis(
            std::env::var("WB_FANOUT_MS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(3000),
        );
    while std::time::Instant::now() < until {
        for (i, s) in srcs.iter_mut().enumerate() {
            s.poll(Duration::from_millis(5), &mut |f| {
                let Some(ip) = dec.decode(f.ts, f.linktype, f.data, f.orig_len, &mut counters)
                else {
                    return;
                };
                let L4::Tcp(seg) = &ip.l4 else { return };
                let client_port = if seg.src_port == 80 {
                    seg.dst_port
                } else {
                    seg.src_port
                };
                let e = flows[i].entry(client_port.to_string()).or_default();
                if seg.src_port == 80 {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            })
            .unwrap();
        }
    }
    println!("{}", serde_json::to_string(&flows).unwrap());
}

/// Two rings in one PACKET_FANOUT hash group: each connection (both directions)
/// is seen by exactly one ring, and the connections are spread over both.
#[test]
fn fanout_keeps_each_flow_on_one_reader() {
    if !netns::prerequisites("fanout_keeps_each_flow_on_one_reader", TOOLS) {
        return;
    }
    let mut pair = Pair::new();
    pair.start_nginx(&[("index.html", b"hello\n".to_vec())]);
    let server = pair.server.clone();
    let client = pair.client.clone();
    let exe = std::env::current_exe().unwrap();
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &server])
        .arg(&exe)
        .args([
            "--exact",
            "fanout_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WB_FANOUT_DEVICE", &pair.server_if)
        .env("WB_FANOUT_MS", "2500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The helper prints READY once both rings are in the group; give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    let url = format!("http://{SERVER_IP}/index.html");
    for _ in 0..24 {
        assert!(
            pair.exec(&client, &["curl", "-s", "-o", "/dev/null", &url])
                .status
                .success()
        );
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("READY"), "helper did not start: {text}");
    let line = text
        .lines()
        .find(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no result from helper: {text}"));
    let flows: Vec<BTreeMap<String, (u32, u32)>> = serde_json::from_str(line).unwrap();
    let a: BTreeSet<&String> = flows[0].keys().collect();
    let b: BTreeSet<&String> = flows[1].keys().collect();
    assert!(a.is_disjoint(&b), "a flow reached both rings: {flows:?}");
    assert_eq!(a.len() + b.len(), 24, "{flows:?}");
    for f in &flows {
        for (port, (to_server, to_client)) in f {
            assert!(
                *to_server > 0 && *to_client > 0,
                "flow {port} lost a direction: {flows:?}"
            );
        }
    }
    // 24 connections all hashed to one ring would happen with probability 2^-23.
    assert!(!a.is_empty() && !b.is_empty(), "{flows:?}");
}

/// Errors a user can act on: no such device, pf_ring.
#[test]
fn live_errors_are_clear() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wirebeat"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["-E", "interfaces.device=nosuchdev0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no such capture device \"nosuchdev0\""),
        "{err}"
    );
    let o = run(&[
        "-E",
        "interfaces.type=pf_ring",
        "-E",
        "interfaces.device=lo",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pf_ring") && err.contains("af_packet") && err.contains("pcap"),
        "{err}"
    );
}

/// With no traffic at all after a request, the idle connection expires on the wall
/// clock (workers are told the time, not only by packets) while the client still
/// holds it open.
#[test]
fn idle_connections_expire_and_events_ship_without_traffic() {
    if !netns::prerequisites(
        "idle_connections_expire_and_events_ship_without_traffic",
        &["redis-server", "redis-cli", "python3"],
    ) {
        return;
    }
    let mut pair = Pair::new();
    pair.start_redis();
    let server = pair.server.clone();
    let client = pair.client.clone();
    let cfg = config("af_packet", &pair.server_if, "").replace(
        "    ports: [6379]\n",
        "    ports: [6379]\n    transaction_timeout: 1s\n",
    );
    let cap = Capture::start(&pair, &server, &cfg, &[]);
    // One SET, then the connection stays open and silent for 4 s.
    let script = format!(
        "import socket, time\n\
         s = socket.create_connection(('{SERVER_IP}', 6379))\n\
         s.sendall(b'*3\\r\\n$3\\r\\nSET\\r\\n$4\\r\\nidle\\r\\n$1\\r\\n1\\r\\n')\n\
         assert s.recv(16) == b'+OK\\r\\n'\n\
         time.sleep(4)\n"
    );
    let holder = pair.spawn(&client, &["python3", "-c", &script], "holder.log");
    // 1 s timeout + the clock lag of the ticks: the flow is gone well before 3.5 s,
    // while the client still holds the connection open and silent.
    std::thread::sleep(Duration::from_millis(3500));
    // The event is on stdout while wirebeat still runs (the idle writer flushes).
    let live_out = std::fs::read(&cap.stdout).unwrap_or_default();
    assert_eq!(
        events(&live_out).len(),
        1,
        "{}",
        String::from_utf8_lossy(&live_out)
    );
    let (code, stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(counter(&stderr, "flows_expired"), 1, "{stderr}");
    assert_eq!(events(&stdout).len(), 1, "{stderr}");
    let _ = holder;
}

/// `snaplen` cuts frames in the ring (the socket filter's return value): every
/// captured frame is at most that long and the cut ones are counted.
#[test]
fn snaplen_cuts_frames() {
    if !netns::prerequisites("snaplen_cuts_frames", &["nginx", "curl"]) {
        return;
    }
    let mut pair = Pair::new();
    pair.start_nginx(&[("page.html", vec![b'x'; 20_000])]);
    let server = pair.server.clone();
    let client = pair.client.clone();
    let cfg = config("af_packet", &pair.server_if, "  snaplen: 200\n");
    let cap = Capture::start(&pair, &server, &cfg, &[]);
    let url = format!("http://{SERVER_IP}/page.html");
    assert!(
        pair.exec(&client, &["curl", "-s", "-o", "/dev/null", &url])
            .status
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, _stdout, stderr) = cap.stop();
    assert_eq!(code, 0, "{stderr}");
    let packets = counter(&stderr, "packets");
    // 20 000 bytes of body need at least 14 full-size segments, all cut.
    assert!(counter(&stderr, "truncated_frames") >= 14, "{stderr}");
    assert!(counter(&stderr, "bytes") <= packets * 200, "{stderr}");
}

/// Without CAP_NET_RAW the error names the capability, for both backends.
#[test]
fn missing_capability_is_named() {
    if !netns::prerequisites("missing_capability_is_named", &["setpriv"]) {
        return;
    }
    // A copy that an unprivileged user can execute wherever the build tree lives.
    let dir = std::env::temp_dir().join(format!("wirebeat-nopriv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("wirebeat");
    std::fs::copy(env!("CARGO_BIN_EXE_wirebeat"), &exe).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    for kind in ["af_packet", "pcap"] {
        if kind == "pcap" && !wirebeat::capture::pcap_live::available() {
            continue;
        }
        let o = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&exe)
            .args(["-E", "interfaces.device=lo", "-E"])
            .arg(format!("interfaces.type={kind}"))
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{kind}: {err}");
        assert!(
            err.contains("permission denied") && err.contains("CAP_NET_RAW"),
            "{kind}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Loopback frames reach AF_PACKET twice (outgoing and incoming): on `lo` and on
/// `any` each is processed once and the second copy is counted as skipped.
#[test]
fn loopback_and_any_see_each_frame_once() {
    if !netns::prerequisites("loopback_and_any_see_each_frame_once", &["nginx", "curl"]) {
        return;
    }
    let mut pair = Pair::new();
    pair.start_nginx(&[("index.html", b"loop\n".to_vec())]);
    let server = pair.server.clone();
    for device in ["lo", "any"] {
        let cap = Capture::start(&pair, &server, &config("af_packet", device, ""), &[]);
        // The server talking to its own address goes over lo.
        let url = format!("http://{SERVER_IP}/index.html");
        for _ in 0..3 {
            assert!(
                pair.exec(&server, &["curl", "-s", "-o", "/dev/null", &url])
                    .status
                    .success()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        let (code, stdout, stderr) = cap.stop();
        assert_eq!(code, 0, "{device}: {stderr}");
        let evs = events(&stdout);
        assert_eq!(evs.len(), 3, "{device}: {stderr}");
        for e in &evs {
            assert_eq!(get(e, "http.response.status_code"), 200, "{device}: {e}");
        }
        let packets = counter(&stderr, "packets");
        assert_eq!(
            counter(&stderr, "capture_skipped"),
            packets,
            "{device}: {stderr}"
        );
        assert_eq!(
            counter(&stderr, "kernel_packets"),
            2 * packets,
            "{device}: {stderr}"
        );
        assert_eq!(counter(&stderr, "tcp_retransmits"), 0, "{device}: {stderr}");
    }
}
