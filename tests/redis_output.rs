//! The Redis output and the topology map against a real `redis-server` on loopback:
//! the list and channel hold exactly the events the console prints in the same run
//! (one JSON event per element, as Logstash's redis input with `codec => json`
//! reads them), passwords and databases, a server restarted mid-run, a server that
//! comes up after wirebeat, and topology entries shared between shippers.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::redis_server::{self, RedisServer};
use common::{Frame, Run, finish, fixture, read_frames, spawn, tmp, write_frames};
use serde_json::Value;
use wirebeat::output::redis::resp::Reply;

fn lines(out: &[u8]) -> Vec<Vec<u8>> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

fn args_of(server: &RedisServer, pcap: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-c".into(),
        "configs/wirebeat.yml".into(),
        "-E".into(),
        "shipper.name=test".into(),
        "-I".into(),
        pcap.to_string_lossy().into_owned(),
    ];
    a.extend(server.output_args());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(server: &RedisServer, pcap: &Path, extra: &[&str]) -> Run {
    finish(spawn(&args_of(server, pcap, extra)))
}

fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

/// Every element is one JSON object with no newline, identical to a console line.
fn assert_same_events(redis: &[Vec<u8>], console: &[Vec<u8>]) {
    assert!(!console.is_empty(), "the run produced no event");
    for e in redis {
        assert!(!e.contains(&b'\n'), "newline inside a list element");
        assert!(json(e).is_object());
    }
    assert_eq!(redis.len(), console.len(), "event count");
    for (i, (r, c)) in redis.iter().zip(console).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(r),
            String::from_utf8_lossy(c),
            "event {i} differs"
        );
    }
}

#[test]
fn list_holds_exactly_the_console_events() {
    if !redis_server::available("list_holds_exactly_the_console_events") {
        return;
    }
    let server = RedisServer::start(&[]);
    // Small batches: several RPUSHes, still in order.
    let r = run(
        &server,
        &fixture("redis/pipeline_bench.pcap"),
        &["-t", "-E", "output.redis.bulk_max_size=7"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let console = lines(&r.stdout);
    assert!(console.len() > 7, "{} events", console.len());
    assert_same_events(&server.list(None, 0, "packetbeat"), &console);

    // The 1.x spelling (`host`, `port`, `index`) lands in the same kind of list.
    let r = common::wirebeat(&[
        "-I",
        &fixture("http/keepalive.pcap").to_string_lossy(),
        "-t",
        "-E",
        "output.redis.host=127.0.0.1",
        "-E",
        &format!("output.redis.port={}", server.port),
        "-E",
        "output.redis.index=old",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_same_events(&server.list(None, 0, "old"), &lines(&r.stdout));
}

#[test]
fn channel_subscriber_gets_every_event() {
    if !redis_server::available("channel_subscriber_gets_every_event") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut sub = server.client(None, 0);
    let reply = sub.call(&[b"SUBSCRIBE", b"wb-events"]).expect("subscribe");
    assert!(matches!(reply, Reply::Array(Some(_))), "{reply:?}");
    let r = run(
        &server,
        &fixture("http/sample.pcap"),
        &[
            "-t",
            "-E",
            "output.redis.datatype=channel",
            "-E",
            "output.redis.key=wb-events",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let console = lines(&r.stdout);
    let mut got = Vec::new();
    for _ in 0..console.len() {
        match sub.read_reply().expect("message") {
            Reply::Array(Some(v)) => match v.as_slice() {
                [
                    Reply::Bulk(Some(kind)),
                    Reply::Bulk(Some(ch)),
                    Reply::Bulk(Some(payload)),
                ] => {
                    assert_eq!(kind, b"message");
                    assert_eq!(ch, b"wb-events");
                    got.push(payload.clone());
                }
                other => panic!("unexpected message {other:?}"),
            },
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_same_events(&got, &console);
    // Nothing went to a list.
    assert!(server.list(None, 0, "wb-events").is_empty());
}

#[test]
fn password_and_database() {
    if !redis_server::available("password_and_database") {
        return;
    }
    let server = RedisServer::start(&["--requirepass", "s3cret"]);
    let pcap = fixture("http/keepalive.pcap");
    let r = run(
        &server,
        &pcap,
        &[
            "-t",
            "-E",
            "output.redis.password=s3cret",
            "-E",
            "output.redis.db=3",
            "-E",
            "output.redis.key=events",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_same_events(&server.list(Some("s3cret"), 3, "events"), &lines(&r.stdout));
    assert!(server.list(Some("s3cret"), 0, "events").is_empty());

    // A wrong password: refused at every attempt, then given up, counted and logged.
    let r = run(
        &server,
        &pcap,
        &[
            "-t",
            "-E",
            "output.redis.password=wrong",
            "-E",
            "output.redis.db=3",
            "-E",
            "output.redis.key=events",
            "-E",
            "output.redis.max_retries=1",
            "-E",
            "output.redis.reconnect_interval=50ms",
        ],
    );
    assert!(r.stderr.contains("handshake refused"), "{}", r.stderr);
    assert!(r.stderr.contains("gave up on 3 events"), "{}", r.stderr);
    assert_eq!(server.list(Some("s3cret"), 3, "events").len(), 3);
}

/// Occurrences of each distinct event.
fn counts(events: &[Vec<u8>]) -> HashMap<&[u8], usize> {
    let mut m = HashMap::new();
    for e in events {
        *m.entry(e.as_slice()).or_insert(0) += 1;
    }
    m
}

#[test]
fn reconnects_after_the_server_restarts() {
    if !redis_server::available("reconnects_after_the_server_restarts") {
        return;
    }
    // Every write reaches the disk before its reply, so a killed server keeps
    // every acknowledged event across the restart.
    let mut server = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    // Paced replay: each pass over the file starts one (capture) second after the
    // previous one, so events arrive over about 6 seconds.
    let child = spawn(&args_of(
        &server,
        &fixture("http/keepalive.pcap"),
        &[
            "-e",
            "-l",
            "7",
            "-E",
            "output.redis.reconnect_interval=100ms",
            "-E",
            "output.redis.backoff.max=400ms",
            "-E",
            "output.redis.max_retries=-1",
        ],
    ));
    std::thread::sleep(Duration::from_millis(1700));
    let before = server.list(None, 0, "packetbeat").len();
    server.kill();
    std::thread::sleep(Duration::from_millis(1500));
    server.restart();
    let r = finish(child);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("connection lost") || r.stderr.contains("cannot connect"),
        "the outage was not noticed: {}",
        r.stderr
    );
    assert!(r.stderr.contains("connected to"), "{}", r.stderr);
    let console = lines(&r.stdout);
    let list = server.list(None, 0, "packetbeat");
    assert!(
        before > 0 && before < console.len(),
        "{before} before the kill"
    );
    // At least once: every event is there; a duplicate can only come from the one
    // batch whose reply was lost.
    let got = counts(&list);
    for e in &console {
        assert!(
            got.contains_key(e.as_slice()),
            "missing {}",
            String::from_utf8_lossy(e)
        );
    }
    let dups = list.len() - got.len();
    assert!(dups <= 3, "{dups} duplicates");
    assert_eq!(got.len(), console.len());
    eprintln!("restart: {} events, {dups} duplicate(s)", console.len());
}

#[test]
fn server_down_at_start() {
    if !redis_server::available("server_down_at_start") {
        return;
    }
    let port = redis_server::free_port();
    let pcap = fixture("http/sample.pcap");
    let args: Vec<String> = vec![
        "-c".into(),
        "configs/wirebeat.yml".into(),
        "-E".into(),
        "shipper.name=test".into(),
        "-I".into(),
        pcap.to_string_lossy().into_owned(),
        "-t".into(),
        "-E".into(),
        "output.redis.enabled=true".into(),
        "-E".into(),
        format!("output.redis.hosts=[\"127.0.0.1:{port}\"]"),
        "-E".into(),
        "output.redis.reconnect_interval=100ms".into(),
        "-E".into(),
        "output.redis.backoff.max=200ms".into(),
        "-E".into(),
        "output.redis.max_retries=-1".into(),
    ];
    let child = spawn(&args);
    std::thread::sleep(Duration::from_millis(800));
    let server = RedisServer::start_on(port, &[]);
    let r = finish(child);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
    // Nothing was ever sent before the server came up: exactly once, in order.
    assert_same_events(&server.list(None, 0, "packetbeat"), &lines(&r.stdout));
}

fn topology_args(name: &str) -> Vec<String> {
    [
        "-E",
        &format!("shipper.name={name}"),
        "-E",
        "output.redis.save_topology=true",
        "-E",
        "shipper.refresh_topology_freq=1s",
        "-E",
        "shipper.topology_expire=2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn hget(server: &RedisServer, key: &str) -> Option<String> {
    match server
        .client(None, 1)
        .call(&[b"HGET", key.as_bytes(), b"ipaddrs"])
        .expect("HGET")
    {
        Reply::Bulk(Some(v)) => Some(String::from_utf8(v).expect("utf8")),
        _ => None,
    }
}

/// `keepalive.pcap` with the client 10.77.0.1 moved to 127.0.0.1 (this host).
fn local_client_capture() -> std::path::PathBuf {
    let frames: Vec<Frame> = read_frames(&fixture("http/keepalive.pcap"))
        .into_iter()
        .map(|mut f| {
            let mut i = 0;
            while i + 4 <= f.data.len() {
                if f.data[i..i + 4] == [10, 77, 0, 1] {
                    f.data[i..i + 4].copy_from_slice(&[127, 0, 0, 1]);
                }
                i += 1;
            }
            f
        })
        .collect();
    let p = tmp("redis-topology-local-client.pcap");
    write_frames(&p, &frames, 65535);
    p
}

#[test]
fn topology_is_shared_stamped_and_expires() {
    if !redis_server::available("topology_is_shared_stamped_and_expires") {
        return;
    }
    let server = RedisServer::start(&[]);
    // Two other shippers, in Packetbeat 1.x's layout (db_topology 1).
    let mut c = server.client(None, 1);
    for (name, ips) in [("peer-b", "10.77.0.2"), ("peer-c", "10.77.0.1,10.99.0.1")] {
        assert_eq!(
            c.call(&[b"HSET", name.as_bytes(), b"ipaddrs", ips.as_bytes()])
                .expect("HSET"),
            Reply::Int(1)
        );
        c.call(&[b"PEXPIRE", name.as_bytes(), b"60000"])
            .expect("PEXPIRE");
    }
    let pcap = fixture("http/keepalive.pcap");
    let mut extra = vec!["-t".to_string()];
    extra.extend(topology_args("alpha"));
    let extra_ref: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
    let r = run(&server, &pcap, &extra_ref);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let console = lines(&r.stdout);
    assert_same_events(&server.list(None, 0, "packetbeat"), &console);
    for e in &console {
        let e = json(e);
        assert_eq!(e["topology"]["client_server"], "peer-c", "{e}");
        assert_eq!(e["topology"]["server"], "peer-b", "{e}");
    }

    // alpha published this host's addresses (loopback left out), with the expiry.
    let expected: Vec<String> = wirebeat::topology::local_addresses()
        .into_iter()
        .filter(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
        .collect();
    assert_eq!(hget(&server, "alpha"), Some(expected.join(",")));
    let ttl = match c.call(&[b"PTTL", b"alpha"]).expect("PTTL") {
        Reply::Int(t) => t,
        other => panic!("{other:?}"),
    };
    assert!(ttl > 0 && ttl <= 2000, "pttl {ttl}");

    // A second shipper joins the same store; both entries are there.
    let mut extra = vec!["-t".to_string()];
    extra.extend(topology_args("beta"));
    let extra_ref: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
    let r = run(&server, &pcap, &extra_ref);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(hget(&server, "beta").is_some());
    assert!(hget(&server, "peer-b").is_some());

    // Nobody refreshes alpha any more: it expires.
    let t0 = Instant::now();
    while hget(&server, "alpha").is_some() {
        assert!(t0.elapsed() < Duration::from_secs(5), "alpha never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ignore_outgoing_drops_what_a_peer_reports() {
    if !redis_server::available("ignore_outgoing_drops_what_a_peer_reports") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut c = server.client(None, 1);
    c.call(&[b"HSET", b"peer-b", b"ipaddrs", b"10.77.0.2"])
        .expect("HSET");
    c.call(&[b"PEXPIRE", b"peer-b", b"60000"]).expect("PEXPIRE");
    let pcap = local_client_capture();

    // This host (127.0.0.1) is the client and peer-b has the server.
    let mut extra = vec!["-t".to_string()];
    extra.extend(topology_args("alpha"));
    let extra_ref: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
    let r = run(&server, &pcap, &extra_ref);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let events = lines(&r.stdout);
    assert_eq!(events.len(), 3);
    for e in &events {
        let e = json(e);
        assert_eq!(e["topology"]["client_server"], "alpha", "{e}");
        assert_eq!(e["topology"]["server"], "peer-b", "{e}");
    }

    extra.extend(["-E".to_string(), "shipper.ignore_outgoing=true".to_string()]);
    let extra_ref: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
    let r = run(&server, &pcap, &extra_ref);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        lines(&r.stdout).is_empty(),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert_eq!(r.counter("ignored_outgoing"), 3, "{}", r.stderr);
    assert_eq!(r.counter("transactions"), 3, "{}", r.stderr);
}

/// A Redis writer retrying without end (fast waits) at 127.0.0.1:`port`.
fn endless_writer(
    port: u16,
) -> (
    std::sync::Arc<wirebeat::stats::Registry>,
    wirebeat::output::Publisher,
    wirebeat::output::Writers,
) {
    use wirebeat::output::{Limits, WhenFull};
    let cfg = wirebeat::config::RedisOutput {
        enabled: true,
        hosts: vec![format!("127.0.0.1:{port}")],
        reconnect_interval: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        max_retries: wirebeat::config::MaxRetries::Forever,
        ..Default::default()
    };
    let out = wirebeat::output::redis::RedisOutput::new(&cfg).unwrap();
    let registry = wirebeat::stats::Registry::new();
    let limits = Limits {
        chunks: 100,
        events: 1000,
        bytes: 1 << 20,
        when_full: WhenFull::Block,
    };
    let (p, w) = common::start_output(Box::new(out), limits, &registry);
    (registry, p, w)
}

fn event(i: usize) -> Vec<u8> {
    format!("{{\"n\":{i}}}\n").into_bytes()
}

/// Polls the redis output's counter `name` until `f` holds (at most 60 s).
fn poll(registry: &wirebeat::stats::Registry, name: &str, f: impl Fn(u64) -> bool) -> u64 {
    let t0 = Instant::now();
    let stats = registry.output("redis");
    let value = || {
        stats
            .entries()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no counter {name}"))
    };
    while t0.elapsed() < Duration::from_secs(60) {
        let v = value();
        if f(v) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{name} never got there: {:?}", stats.entries());
}

/// While the server is down and a batch is retried without end, the output's
/// stats show the resent events as it happens, not only once the server is
/// back; the totals after recovery are exact.
#[test]
fn endless_retries_show_in_the_stats_while_the_server_is_down() {
    if !redis_server::available("endless_retries_show_in_the_stats_while_the_server_is_down") {
        return;
    }
    let port = redis_server::free_port();
    let (registry, publisher, writers) = endless_writer(port);
    for i in 0..10 {
        publisher.publish(event(i), 1);
    }
    let live = poll(&registry, "events_retried", |v| v >= 5);
    assert_eq!(poll(&registry, "events_published", |_| true), 0);
    let server = RedisServer::start_on(port, &[]);
    drop(publisher);
    let report = writers.finish();
    assert_eq!((report.published, report.dropped), (10, 0), "{report:?}");
    assert_eq!(server.list(None, 0, "packetbeat").len(), 10);
    let c: HashMap<&str, u64> = registry.output("redis").entries().into_iter().collect();
    // Connection attempts that fail resend the event; no command failed.
    assert!(c["events_retried"] >= live, "{c:?}");
    assert_eq!(
        (c["batches"], c["batch_errors"], c["events_failed"]),
        (10, 0, 0),
        "{c:?}"
    );
}

/// A server that dies under a running writer: the failed command and the
/// resends show in the stats before the server is back, and after recovery
/// the totals are exact (one failed command, counted once).
#[test]
fn a_lost_server_shows_in_the_stats_while_it_is_retried() {
    if !redis_server::available("a_lost_server_shows_in_the_stats_while_it_is_retried") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let (registry, publisher, writers) = endless_writer(server.port);
    publisher.publish(event(0), 1);
    poll(&registry, "events_published", |v| v == 1);
    server.kill();
    publisher.publish(event(1), 1);
    poll(&registry, "batch_errors", |v| v == 1);
    poll(&registry, "events_retried", |v| v >= 3);
    assert_eq!(poll(&registry, "events_published", |_| true), 1);
    server.restart();
    drop(publisher);
    let report = writers.finish();
    assert_eq!((report.published, report.dropped), (2, 0), "{report:?}");
    let c: HashMap<&str, u64> = registry.output("redis").entries().into_iter().collect();
    assert_eq!(
        (c["batches"], c["batch_errors"], c["events_failed"]),
        (3, 1, 0),
        "{c:?}"
    );
}

#[test]
fn events_lost_to_a_dead_redis_give_exit_2() {
    // Nothing listens on port 1 of loopback: every batch fails, retries run out.
    let r = common::replay(
        &fixture("redis/basic.pcap"),
        &[
            &common::DEAD_REDIS[..],
            &["-E", "output.redis.max_retries=1"],
        ]
        .concat(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("output redis: 14 events could not be delivered"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_destination_that_never_returns_costs_only_the_shutdown_grace() {
    // Endless retries to a port nobody listens on: the input's end starts the
    // one-second grace, then what is left is dropped, counted, and the run ends.
    let t0 = Instant::now();
    let r = common::replay(
        &fixture("redis/basic.pcap"),
        &[
            &common::DEAD_REDIS[..],
            &[
                "-E",
                "output.redis.max_retries=-1",
                "-E",
                "pipeline.shutdown_timeout=1s",
            ],
        ]
        .concat(),
    );
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("shutdown_timeout"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("output redis: 14 events could not be delivered"),
        "{}",
        r.stderr
    );
}
