//! The Elasticsearch output against an in-test Elasticsearch (tests/common/fake_es.rs):
//! template installation, index names, every retry path, backpressure, and
//! exactly-once delivery when the server recovers. `WIREBEAT_ES_URL` adds a run
//! against a real cluster.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::fake_es::{FakeEs, Layout, Step};
use common::{Run, fixture, replay, wirebeat};
use serde_json::Value;
use wirebeat::config::ElasticsearchOutput;
use wirebeat::output::elasticsearch::template::{self, Kind};
use wirebeat::output::elasticsearch::{Elasticsearch, topology_store};
use wirebeat::output::{Limits, WhenFull};
use wirebeat::stats::Registry;

const BIG: &str = "redis/pipeline_bench.pcap";

/// Replays `pcap` into the fake server (console output too); fast retries.
fn replay_es(es: &FakeEs, pcap: &str, extra: &[&str]) -> Run {
    let hosts = format!("output.elasticsearch.hosts=[\"{}\"]", es.host());
    let mut args = vec![
        "-E",
        "output.elasticsearch.enabled=true",
        "-E",
        &hosts,
        "-E",
        "output.elasticsearch.backoff.init=5ms",
        "-E",
        "output.elasticsearch.backoff.max=40ms",
        "-E",
        "output.elasticsearch.timeout=5s",
    ];
    args.extend_from_slice(extra);
    replay(&fixture(pcap), &args)
}

/// Every event of the run is in the fake server exactly once (by content).
fn assert_exactly_once(es: &FakeEs, run: &Run) {
    let sent: Vec<String> = run.events().iter().map(|e| e.to_string()).collect();
    let stored: Vec<String> = es
        .docs("packetbeat-")
        .iter()
        .map(|e| e.to_string())
        .collect();
    let mut want: HashMap<&str, i64> = HashMap::new();
    for s in &sent {
        *want.entry(s.as_str()).or_default() += 1;
    }
    for s in &stored {
        *want.entry(s.as_str()).or_default() -= 1;
    }
    let off: Vec<_> = want.iter().filter(|(_, n)| **n != 0).take(3).collect();
    assert!(
        off.is_empty(),
        "{} events sent, {} stored; differences (+missing/-extra): {off:?}\n{}",
        sent.len(),
        stored.len(),
        run.stderr
    );
    assert_eq!(
        run.counter("events_published"),
        sent.len() as u64,
        "{}",
        run.stderr
    );
    assert_eq!(run.counter("events_dropped"), 0, "{}", run.stderr);
}

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| leaves(prefix, x, out)),
        _ => out.push((prefix.to_string(), v.clone())),
    }
}

#[test]
fn template_covers_every_emitted_field() {
    let mut pcaps = Vec::new();
    for dir in ["http", "mysql", "pgsql", "redis", "thrift", "dns"] {
        for e in std::fs::read_dir(fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                pcaps.push(p);
            }
        }
    }
    pcaps.push(fixture("sample.pcap"));
    assert!(pcaps.len() > 20);
    let mut seen = 0;
    let mut missing = Vec::new();
    for p in &pcaps {
        let run = replay(
            p,
            &[
                "-E",
                "protocols.http.send_all_headers=true",
                "-E",
                "protocols.http.split_cookie=true",
                "-E",
                "protocols.http.include_body_for=[\"*\"]",
                "-E",
                "protocols.http.send_request=true",
                "-E",
                "protocols.http.send_response=true",
                "-E",
                "protocols.dns.include_authorities=true",
                "-E",
                "protocols.dns.include_additionals=true",
                "-E",
                "shipper.tags=[t]",
                "-E",
                "flows.enabled=true",
            ],
        );
        for ev in run.events() {
            let mut l = Vec::new();
            leaves("", &ev, &mut l);
            for (path, v) in l {
                seen += 1;
                let Some(kind) = template::lookup(&path) else {
                    missing.push(format!("{path} (in {})", p.display()));
                    continue;
                };
                let ok = match (&v, kind) {
                    (_, Kind::Flattened) => v.is_string() || v.is_number(),
                    (Value::String(s), Kind::Ip) => s.parse::<std::net::IpAddr>().is_ok(),
                    (Value::String(s), Kind::Date) => s.len() >= 20 && s.as_bytes()[10] == b'T',
                    (Value::String(_), Kind::Keyword | Kind::Text) => true,
                    (Value::Number(n), Kind::Long) => n.is_u64() || n.is_i64(),
                    // Packetbeat writes DNS TTLs as text; the cluster reads them as numbers.
                    (Value::String(s), Kind::Long) => s.parse::<i64>().is_ok(),
                    (Value::Bool(_), Kind::Boolean) => true,
                    (Value::Bool(_), _) | (Value::Null, _) => false,
                    _ => false,
                };
                assert!(
                    ok,
                    "{path}: value {v} does not fit type {kind:?} ({})",
                    p.display()
                );
                if path.ends_with(".ip") {
                    assert_eq!(kind, Kind::Ip, "{path}");
                }
                if path == "@timestamp" || path == "event.start" || path == "event.end" {
                    assert_eq!(kind, Kind::Date, "{path}");
                }
            }
        }
    }
    missing.sort();
    missing.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
    assert!(
        missing.is_empty(),
        "fields without a template mapping: {missing:#?}"
    );
    assert!(seen > 1000, "only {seen} fields seen");
}

#[test]
fn export_template_by_version() {
    let run = wirebeat(&["export", "template"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(t["index_patterns"][0], "packetbeat-*");
    let props = &t["template"]["mappings"]["properties"];
    assert_eq!(props["source"]["properties"]["ip"]["type"], "ip");
    assert_eq!(props["event"]["properties"]["duration"]["type"], "long");
    assert_eq!(
        props["http"]["properties"]["response"]["properties"]["headers"]["type"],
        "flattened"
    );

    let run = wirebeat(&[
        "export",
        "template",
        "--es-version",
        "7.7",
        "-E",
        "setup.template.pattern=wb-*",
        "-E",
        "output.elasticsearch.enabled=false",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(t["index_patterns"][0], "wb-*");
    assert_eq!(t["mappings"]["properties"]["@timestamp"]["type"], "date");
    assert!(t.get("template").is_none(), "legacy form");

    let run = wirebeat(&["export", "template", "--es-version", "6.8"]);
    let t: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        t["mappings"]["doc"]["properties"]["client"]["properties"]["port"]["type"],
        "long"
    );
    let run = wirebeat(&["export", "template", "--es-version", "x"]);
    assert_eq!(run.code, 1);
}

#[test]
fn replay_installs_template_and_indexes_daily_by_event_time() {
    let es = FakeEs::start("8.11.1");
    let run = replay_es(&es, "redis/pipeline_cli.pcap", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_exactly_once(&es, &run);
    let s = es.state();
    let t = s
        .templates
        .get("/_index_template/packetbeat")
        .expect("composable template installed");
    assert_eq!(t["index_patterns"][0], "packetbeat-*");
    drop(s);
    // Daily index named after the event's own date.
    let ev = &run.events()[0];
    let day = ev["@timestamp"].as_str().unwrap()[..10].replace('-', ".");
    assert!(
        es.indices().contains(&format!("packetbeat-{day}")),
        "{:?}",
        es.indices()
    );
}

#[test]
fn old_clusters_get_legacy_template_and_typed_bulk() {
    for (version, typed) in [("7.7.1", false), ("6.8.23", true)] {
        let es = FakeEs::start(version);
        let run = replay_es(
            &es,
            "redis/pipeline_cli.pcap",
            &[
                "-E",
                "output.elasticsearch.index=wb-%{+yyyy.MM}",
                "-E",
                "setup.template.name=wb",
                "-E",
                "setup.template.pattern=wb-*",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let s = es.state();
        assert!(
            s.templates.contains_key("/_template/wb"),
            "{version}: {:?}",
            s.templates.keys()
        );
        assert!(!s.templates.contains_key("/_index_template/wb"));
        assert_eq!(
            s.templates["/_template/wb"]["mappings"]
                .get("doc")
                .is_some(),
            typed
        );
        assert_eq!(s.rejected, 0, "{version}: bulk items must fit the version");
        let n = s
            .docs
            .keys()
            .filter(|(i, _)| i.starts_with("wb-") && i.len() == "wb-2026.11".len())
            .count();
        assert_eq!(n, run.events().len(), "{version}");
    }
}

#[test]
fn existing_template_kept_unless_overwrite() {
    let es = FakeEs::start("8.5.0");
    es.state().templates.insert(
        "/_index_template/packetbeat".into(),
        serde_json::json!({"mine": true}),
    );
    let run = replay_es(&es, "redis/resp3.pcap", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        es.state().templates["/_index_template/packetbeat"]["mine"],
        true
    );
    let run = replay_es(
        &es,
        "redis/resp3.pcap",
        &["-E", "setup.template.overwrite=true"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        es.state().templates["/_index_template/packetbeat"]
            .get("index_patterns")
            .is_some()
    );
    let run = replay_es(
        &es,
        "redis/resp3.pcap",
        &[
            "-E",
            "setup.template.enabled=false",
            "-E",
            "setup.template.name=other",
        ],
    );
    assert_eq!(run.code, 0);
    assert!(!es.state().templates.contains_key("/_index_template/other"));
}

#[test]
fn setup_loads_template_and_exits() {
    let es = FakeEs::start("7.17.0");
    let hosts = format!("output.elasticsearch.hosts=[\"{}\"]", es.host());
    let run = wirebeat(&["setup", "-E", &hosts, "-E", "setup.template.name=wbt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(String::from_utf8_lossy(&run.stdout).contains("wbt loaded"));
    assert!(es.state().templates.contains_key("/_index_template/wbt"));
    let run = wirebeat(&["setup", "-E", &hosts, "-E", "setup.template.name=wbt"]);
    assert!(String::from_utf8_lossy(&run.stdout).contains("already present"));
    drop(es);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let run = wirebeat(&[
        "setup",
        "-E",
        &format!("output.elasticsearch.hosts=[\"127.0.0.1:{port}\"]"),
        "-E",
        "output.elasticsearch.timeout=2s",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn storms_and_partial_failures_lose_and_duplicate_nothing() {
    storms_and_partial_failures(FakeEs::start("8.11.1"));
}

/// The same with every answer laid out like `?pretty` (`"errors" : true`) or by a
/// reformatting proxy (`"errors": true`), with newlines.
#[test]
fn storms_and_partial_failures_with_pretty_answers() {
    storms_and_partial_failures(FakeEs::start_layout("8.11.1", Layout::Pretty));
    storms_and_partial_failures(FakeEs::start_layout("8.11.1", Layout::Indented));
}

fn storms_and_partial_failures(es: FakeEs) {
    es.script([
        Step::Status(429),
        Step::Status(429),
        Step::Status(429),
        Step::Status(503),
        Step::Items(vec![201, 429, 503, 201]),
        Step::Slow(Duration::from_millis(300)),
        Step::Items(vec![429]),
        Step::ResetBefore,
        Step::ResetAfter,
        Step::Items(vec![201, 201, 429]),
        Step::Status(502),
        Step::ResetAfter,
    ]);
    let run = replay_es(
        &es,
        BIG,
        &[
            "-l",
            "3",
            "-E",
            "output.elasticsearch.bulk_max_size=100",
            "-E",
            "output.elasticsearch.max_retries=-1",
            "-E",
            "output.elasticsearch.compression_level=3",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_exactly_once(&es, &run);
    let s = es.state();
    assert!(s.script.is_empty(), "every scripted step was used");
    assert!(
        s.conflicts > 0,
        "items resent after a lost response answered 409"
    );
    assert!(s.gzip_requests > 0);
}

#[test]
fn mapping_errors_are_counted_once_and_not_retried() {
    for layout in Layout::ALL {
        mapping_errors(FakeEs::start_layout("8.11.1", layout));
    }
}

fn mapping_errors(es: FakeEs) {
    es.state().reject_containing = Some("\"method\":\"SET\"".into());
    let run = replay_es(&es, "redis/pipeline_cli.pcap", &[]);
    // events were lost: the run says so in its exit code
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("events could not be delivered"),
        "{}",
        run.stderr
    );
    let events = run.events();
    let bad = events.iter().filter(|e| e["method"] == "SET").count() as u64;
    assert!(bad > 0 && bad < events.len() as u64);
    assert_eq!(
        es.state().rejected,
        bad,
        "rejected items are never sent again"
    );
    assert_eq!(
        es.docs("packetbeat-").len() as u64,
        events.len() as u64 - bad
    );
    assert_eq!(run.counter("events_dropped"), bad, "{}", run.stderr);
    assert_eq!(run.counter("events_published"), events.len() as u64 - bad);
    assert_eq!(
        run.stderr.matches("mapper_parsing_exception").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn retries_are_bounded_by_max_retries() {
    let es = FakeEs::start("8.11.1");
    es.script(std::iter::repeat_n(Step::Status(503), 100));
    let t0 = Instant::now();
    let run = replay_es(
        &es,
        "redis/resp3.pcap",
        &["-E", "output.elasticsearch.max_retries=2"],
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(run.code, 2, "{}", run.stderr);
    let n = run.events().len() as u64;
    assert_eq!(es.state().bulk_requests, 3, "one batch, sent 1 + 2 times");
    assert_eq!(run.counter("events_dropped"), n, "{}", run.stderr);
    assert!(run.stderr.contains("giving up"), "{}", run.stderr);
}

#[test]
fn round_robin_with_failover_and_auth() {
    let a = FakeEs::start("8.11.1");
    let b = FakeEs::start("8.11.1");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let hosts = format!(
        "output.elasticsearch.hosts=[\"127.0.0.1:{dead_port}\", \"{}\", \"http://{}\"]",
        a.host(),
        b.host()
    );
    let run = replay(
        &fixture(BIG),
        &[
            "-E",
            "output.elasticsearch.enabled=true",
            "-E",
            &hosts,
            "-E",
            "output.elasticsearch.bulk_max_size=50",
            "-E",
            "output.elasticsearch.username=elastic",
            "-E",
            "output.elasticsearch.password=changeme",
            "-E",
            "output.elasticsearch.backoff.init=5ms",
            "-E",
            "output.elasticsearch.backoff.max=20ms",
            "-E",
            "output.elasticsearch.max_retries=-1",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (na, nb) = (a.docs("packetbeat-").len(), b.docs("packetbeat-").len());
    assert_eq!(na + nb, run.events().len(), "{}", run.stderr);
    assert!(
        a.state().bulk_requests > 2 && b.state().bulk_requests > 2,
        "both healthy hosts used"
    );
    assert!(
        a.state()
            .auth
            .iter()
            .all(|h| h == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==")
    );
    assert!(!a.state().auth.is_empty());
}

fn es_cfg(es: &FakeEs) -> ElasticsearchOutput {
    ElasticsearchOutput {
        hosts: vec![es.host()],
        bulk_max_size: 10,
        flush_interval: Duration::from_millis(20),
        backoff_init: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        max_retries: wirebeat::config::MaxRetries::Forever,
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Publishes events 0..n straight into an Elasticsearch writer (batches of 10,
/// no timed flush, so every run cuts the same batches) and returns the final
/// report with the output's counters.
fn deliver(
    es: &FakeEs,
    n: usize,
    tweak: impl FnOnce(&mut ElasticsearchOutput),
) -> (wirebeat::output::Report, Vec<(&'static str, u64)>) {
    let registry = Registry::new();
    let mut cfg = es_cfg(es);
    cfg.flush_interval = Duration::from_secs(3600);
    tweak(&mut cfg);
    let out = Elasticsearch::new(&cfg).unwrap();
    let limits = Limits {
        chunks: 1000,
        events: 10_000,
        bytes: 16 << 20,
        when_full: WhenFull::Block,
    };
    let (publisher, writers) = common::start_output(Box::new(out), limits, &registry);
    for i in 0..n {
        publisher.publish(line(i), 1);
    }
    drop(publisher);
    let report = writers.finish();
    let counters = registry
        .output("elasticsearch")
        .entries()
        .into_iter()
        .filter(|(k, _)| *k != "queue_events")
        .collect();
    (report, counters)
}

fn counter(counters: &[(&'static str, u64)], name: &str) -> u64 {
    counters
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// The `n` of every stored document, sorted.
fn stored_ns(es: &FakeEs) -> Vec<u64> {
    let mut ns: Vec<u64> = es
        .docs("packetbeat-2026.01.02")
        .iter()
        .map(|d| d["n"].as_u64().unwrap())
        .collect();
    ns.sort();
    ns
}

/// Partial failures read from pretty-printed answers (`"errors" : true` or
/// `"errors": true` with newlines, as `?pretty`, proxies and compatible servers
/// send them) are retried
/// and counted exactly as from compact ones: nothing counted published that was
/// not indexed, nothing counted twice.
#[test]
fn pretty_answers_count_exactly_like_compact_ones() {
    let v = serde_json::json!({"took": 1, "errors": true});
    assert_eq!(
        Layout::Pretty.text(&v),
        "{\n  \"errors\" : true,\n  \"took\" : 1\n}\n"
    );
    assert_eq!(
        Layout::Indented.text(&v),
        "{\n  \"errors\": true,\n  \"took\": 1\n}\n"
    );
    let mut runs = Vec::new();
    for layout in Layout::ALL {
        let es = FakeEs::start_layout("8.11.1", layout);
        es.script([
            // Batch 0..10: 4 indexed, 2 rejected (3, 8), 4 to retry (1, 4, 6, 9).
            Step::Items(vec![201, 429, 201, 400, 503]),
            // Its 4 retried: 2 indexed, 2 to retry.
            Step::Items(vec![201, 429]),
            // Those 2 are indexed but the answer is lost; sent again, they answer 409.
            Step::ResetAfter,
            Step::Items(vec![]),
            // Batch 10..20: every item rejected.
            Step::Items(vec![400]),
            // Batch 20..30: the whole request refused once.
            Step::Status(429),
        ]);
        let (report, counters) = deliver(&es, 100, |_| {});
        assert!(es.state().script.is_empty());
        let rejected: Vec<u64> = vec![3, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        let want: Vec<u64> = (0..100).filter(|i| !rejected.contains(i)).collect();
        assert_eq!(stored_ns(&es), want, "{layout:?}");
        assert_eq!(report.published, 88, "{layout:?}: {report:?}");
        assert_eq!(report.dropped, 12, "{layout:?}: {report:?}");
        assert_eq!(counter(&counters, "events_published"), 88);
        assert_eq!(counter(&counters, "events_failed"), 12);
        assert_eq!(counter(&counters, "events_retried"), 4 + 2 + 2 + 10);
        assert_eq!(counter(&counters, "bad_responses"), 0);
        let s = es.state();
        assert_eq!((s.rejected, s.conflicts), (12, 2), "{layout:?}");
        drop(s);
        runs.push(counters);
    }
    assert!(
        runs.iter().all(|r| *r == runs[0]),
        "every layout, the same counters: {runs:?}"
    );
}

/// An answer that cannot be read item by item (truncated, not JSON, too few or
/// too many items, over `max_response_bytes`) proves nothing: the whole request is
/// sent again (counted in `bad_responses`), and what was indexed meanwhile answers
/// 409 and is counted once.
#[test]
fn unreadable_bulk_answers_resend_the_whole_request() {
    let mut runs = Vec::new();
    for layout in Layout::ALL {
        let es = FakeEs::start_layout("8.11.1", layout);
        es.script([
            Step::Truncated(vec![201, 429]),
            Step::NotJson(vec![201, 201, 503]),
            Step::MissingItems(vec![201], 1),
            Step::ExtraItems(vec![201], 2),
            Step::Huge(vec![201], 200_000),
        ]);
        let (report, counters) = deliver(&es, 30, |c| c.max_response_bytes = 64 * 1024);
        assert!(es.state().script.is_empty());
        assert_eq!(stored_ns(&es), (0..30).collect::<Vec<_>>(), "{layout:?}");
        assert_eq!((report.published, report.dropped), (30, 0), "{report:?}");
        assert_eq!(counter(&counters, "events_published"), 30);
        assert_eq!(counter(&counters, "events_failed"), 0);
        assert_eq!(counter(&counters, "bad_responses"), 5);
        assert_eq!(counter(&counters, "batch_errors"), 5);
        assert_eq!(
            counter(&counters, "events_retried"),
            50,
            "the first batch of 10, sent again 5 times whole"
        );
        // The last attempt finds every item of the batch already there.
        assert!(es.state().conflicts >= 10, "{layout:?}");
        // Counted from the answers that could be read: the last one, whose 10
        // items were all there (the 409s inside unreadable answers are not seen).
        assert_eq!(counter(&counters, "events_resent"), 10);
        runs.push(counters);
    }
    assert!(runs.iter().all(|r| *r == runs[0]), "{runs:?}");
}

fn line(i: usize) -> Vec<u8> {
    format!(
        "{{\"@timestamp\":\"2026-01-02T03:04:05.000Z\",\"n\":{i},\"pad\":\"{}\"}}\n",
        "x".repeat(100)
    )
    .into_bytes()
}

/// A stalled fake cluster behind an Elasticsearch writer whose queue holds `events`.
fn stalled_cluster(
    events: u64,
    when_full: WhenFull,
) -> (
    FakeEs,
    Arc<Registry>,
    wirebeat::output::Publisher,
    wirebeat::output::Writers,
) {
    let es = FakeEs::start("8.11.1");
    es.set_stalled(true);
    let registry = Registry::new();
    let out = Elasticsearch::new(&es_cfg(&es)).unwrap();
    let limits = Limits {
        chunks: 1000,
        events,
        bytes: 1 << 20,
        when_full,
    };
    let (publisher, writers) = common::start_output(Box::new(out), limits, &registry);
    (es, registry, publisher, writers)
}

/// A stalled cluster: with `block` the publisher waits and the queue stays within
/// its bounds; when the cluster recovers everything arrives exactly once.
#[test]
fn backpressure_blocks_then_recovers_exactly_once() {
    let (es, registry, publisher, writers) = stalled_cluster(50, WhenFull::Block);
    let done = Arc::new(AtomicBool::new(false));
    let (p2, d2) = (publisher.clone(), Arc::clone(&done));
    let producer = thread::spawn(move || {
        for i in 0..100 {
            p2.publish(line(i), 1);
        }
        d2.store(true, Ordering::SeqCst);
    });
    assert!(es.wait_for(Duration::from_secs(5), |s| s.in_flight > 0));
    thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "the publisher must wait while the cluster stalls"
    );
    let stats = registry.output("elasticsearch");
    assert!(stats.queue_events.load(Ordering::Relaxed) <= 50);
    es.set_stalled(false);
    producer.join().unwrap();
    drop(publisher);
    let report = writers.finish();
    assert_eq!(report.published, 100, "{report:?}");
    assert_eq!(report.dropped, 0);
    let mut ns: Vec<u64> = es
        .docs("packetbeat-2026.01.02")
        .iter()
        .map(|d| d["n"].as_u64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, (0..100).collect::<Vec<_>>());
}

/// `drop_newest`: a stalled cluster costs events (counted), never memory, and the
/// publisher never waits.
#[test]
fn drop_newest_counts_while_stalled() {
    let (es, registry, publisher, writers) = stalled_cluster(20, WhenFull::DropNewest);
    assert!(es.wait_for(Duration::from_secs(1), |_| true));
    let t0 = Instant::now();
    for i in 0..500 {
        publisher.publish(line(i), 1);
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "drop_newest never waits"
    );
    let stats = registry.output("elasticsearch");
    let dropped = stats.events_dropped_full.load(Ordering::Relaxed);
    assert!(dropped >= 500 - 20 - 10 - 10, "dropped {dropped}");
    es.set_stalled(false);
    drop(publisher);
    let report = writers.finish();
    assert_eq!(report.published + dropped, 500, "{report:?}");
    assert_eq!(es.docs("packetbeat-").len() as u64, report.published);
}

#[test]
fn topology_store_publishes_and_expires() {
    let es = FakeEs::start("8.11.1");
    let mut store = topology_store(&es_cfg(&es)).unwrap();
    assert_eq!(store.fetch().unwrap(), vec![], "nothing published yet");
    let ips: Vec<std::net::IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    store
        .publish("web 1", &ips, Duration::from_secs(60))
        .unwrap();
    store
        .publish("db", &ips[..1], Duration::from_millis(1))
        .unwrap();
    thread::sleep(Duration::from_millis(20));
    let got = store.fetch().unwrap();
    assert_eq!(got, vec![("web 1".to_string(), ips.clone())]);
    store
        .publish("web 1", &ips[1..], Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        store.fetch().unwrap(),
        vec![("web 1".to_string(), ips[1..].to_vec())]
    );
    assert!(
        es.state()
            .docs
            .keys()
            .any(|(i, id)| i == ".wirebeat-topology" && id == "web%201")
    );
}

/// `save_topology` on the Elasticsearch output: this shipper publishes itself into
/// the topology index and stamps events with the names other shippers published.
#[test]
fn topology_through_elasticsearch_stamps_events() {
    let es = FakeEs::start("8.11.1");
    let mut store = topology_store(&es_cfg(&es)).unwrap();
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    store
        .publish("peer-b", &[ip("10.77.0.2")], Duration::from_secs(60))
        .unwrap();
    store
        .publish("peer-c", &[ip("10.77.0.1")], Duration::from_secs(60))
        .unwrap();
    let r = replay_es(
        &es,
        "http/keepalive.pcap",
        &["-E", "output.elasticsearch.save_topology=true"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let events = r.events();
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e["topology"]["client_server"], "peer-c", "{e}");
        assert_eq!(e["topology"]["server"], "peer-b", "{e}");
    }
    assert_exactly_once(&es, &r);
    let names: Vec<String> = store.fetch().unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"test".to_string()), "{names:?}");
}

/// Opt-in: `WIREBEAT_ES_URL=http://127.0.0.1:9200 cargo test --test es_output real_cluster`.
#[test]
fn real_cluster() {
    let Ok(url) = std::env::var("WIREBEAT_ES_URL") else {
        eprintln!(
            "real_cluster: skipped (set WIREBEAT_ES_URL=http://127.0.0.1:9200 to run against a real cluster)"
        );
        return;
    };
    let index = format!("wirebeat-test-{}", std::process::id());
    let run = replay(
        &fixture("redis/pipeline_cli.pcap"),
        &[
            "-E",
            "output.elasticsearch.enabled=true",
            "-E",
            &format!("output.elasticsearch.hosts=[\"{url}\"]"),
            "-E",
            &format!("output.elasticsearch.index={index}-%{{+yyyy.MM.dd}}"),
            "-E",
            &format!("setup.template.name={index}"),
            "-E",
            &format!("setup.template.pattern={index}-*"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.counter("events_dropped"), 0, "{}", run.stderr);
    assert_eq!(run.counter("events_published"), run.events().len() as u64);
}

#[test]
fn queue_and_elasticsearch_settings() {
    use wirebeat::config::{Config, MaxRetries};
    let text = "queue:\n  mem:\n    events: 1000\n    bytes: 1048576\n  when_full: drop_newest\n\
                output:\n  elasticsearch:\n    host: es1\n    port: 9201\n    max_retries: -1\n    bulk_max_bytes: 65536\n    backoff: {init: 10ms, max: 2s}\n";
    let l = Config::from_yaml_str(text, "t.yml", &[]).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(c.pipeline.output_queue_events, 1000);
    assert_eq!(c.pipeline.output_queue_bytes, 1 << 20);
    assert_eq!(c.pipeline.when_full, WhenFull::DropNewest);
    let es = c.output.elasticsearch.as_ref().unwrap();
    assert_eq!(es.hosts, vec!["es1:9201"]);
    assert_eq!(es.max_retries, MaxRetries::Forever);
    assert_eq!(es.bulk_max_bytes, 65536);
    assert_eq!(es.backoff_init, Duration::from_millis(10));
    assert_eq!(es.backoff_max, Duration::from_secs(2));
    // The exported configuration loads back to the same settings.
    let again = Config::from_yaml_str(&c.to_yaml_with_secrets(), "export", &[]).unwrap();
    assert_eq!(again.config, c);
    assert!(Config::from_yaml_str("queue: {when_full: maybe}\n", "t.yml", &[]).is_err());
    assert!(Config::from_yaml_str("output.elasticsearch.max_retries: -2\n", "t.yml", &[]).is_err());
}

#[test]
fn several_outputs_each_have_their_own_queue_and_counters() {
    let es = FakeEs::start("8.11.1");
    let dir = std::env::temp_dir().join(format!("wirebeat-es-multi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = format!("output.file.path={}", dir.display());
    let run = replay_es(
        &es,
        BIG,
        &[
            "-E",
            "output.file.enabled=true",
            "-E",
            &path,
            "-E",
            "output.file.filename=ev",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let n = run.events().len();
    assert_exactly_once(&es, &run);
    let file = std::fs::read_to_string(dir.join("ev")).unwrap();
    assert_eq!(file.lines().count(), n);
    for name in ["elasticsearch", "file", "console"] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("wirebeat: output {name}:")))
            .unwrap_or_else(|| panic!("no counters for {name}: {}", run.stderr));
        assert!(line.contains(&format!("events_published={n}")), "{line}");
        assert!(line.contains(&format!("events_queued={n}")), "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_config_checks_elasticsearch_settings() {
    let run = wirebeat(&[
        "-I",
        "x.pcap",
        "test",
        "config",
        "-E",
        "output.elasticsearch.enabled=true",
        "-E",
        "output.elasticsearch.hosts=[\"ftp://x\"]",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("unsupported scheme"), "{}", run.stderr);
    let run = wirebeat(&[
        "-I",
        "x.pcap",
        "test",
        "config",
        "-E",
        "output.elasticsearch.enabled=true",
        "-E",
        "output.elasticsearch.index=x-%{+yyyy.ww}",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = wirebeat(&[
        "-I",
        "x.pcap",
        "test",
        "config",
        "-E",
        "output.elasticsearch.enabled=true",
        "-E",
        "output.elasticsearch.hosts=[\"127.0.0.1:9\"]",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn https_with_a_ca_file_and_the_verification_switch() {
    let es = FakeEs::start_tls("8.11.1");
    let ca = common::root().join("tests/tls/ca.pem");
    let url = format!("output.elasticsearch.hosts=[\"https://{}\"]", es.host());
    let ca_arg = format!(
        "output.elasticsearch.ssl.certificate_authorities=[\"{}\"]",
        ca.display()
    );
    // Verified against the test CA.
    let run = replay_es(&es, "redis/resp3.pcap", &["-E", &url, "-E", &ca_arg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_exactly_once(&es, &run);
    // Without the CA the server is not trusted: nothing is delivered.
    let before = es.docs("packetbeat-").len();
    let run = replay_es(
        &es,
        "redis/resp3.pcap",
        &["-E", &url, "-E", "output.elasticsearch.max_retries=1"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(es.docs("packetbeat-").len(), before);
    assert_eq!(
        run.counter("events_dropped"),
        run.events().len() as u64,
        "{}",
        run.stderr
    );
    // verification_mode: none accepts it.
    let run = replay_es(
        &es,
        "redis/resp3.pcap",
        &[
            "-E",
            &url,
            "-E",
            "output.elasticsearch.ssl.verification_mode=none",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.counter("events_dropped"), 0, "{}", run.stderr);
    // A CA file without certificates is a configuration error.
    let not_ca = common::root().join("tests/tls/README.md");
    let run = replay_es(
        &es,
        "redis/resp3.pcap",
        &[
            "-E",
            &url,
            "-E",
            &format!(
                "output.elasticsearch.ssl.certificate_authorities=[\"{}\"]",
                not_ca.display()
            ),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
}

/// Polls `f` every 10 ms for at most `limit`.
fn eventually(limit: Duration, f: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A cluster that answers 503 while a batch is retried without end: the
/// output's stats show the failed requests and the resent events while it
/// happens, not only when the batch finally goes through; after recovery the
/// totals are exact (every failed request and resend counted once).
#[test]
fn endless_retries_show_in_the_stats_while_they_happen() {
    let es = FakeEs::start("8.11.1");
    es.script(std::iter::repeat_n(Step::Status(503), 100_000));
    let registry = Registry::new();
    let out = Elasticsearch::new(&es_cfg(&es)).unwrap();
    let limits = Limits {
        chunks: 100,
        events: 1000,
        bytes: 1 << 20,
        when_full: WhenFull::Block,
    };
    let (publisher, writers) = common::start_output(Box::new(out), limits, &registry);
    for i in 0..10 {
        publisher.publish(line(i), 1);
    }
    let stats = registry.output("elasticsearch");
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(60), || g(&stats.batch_errors) >= 5
            && g(&stats.events_retried) >= 40),
        "retries not counted live: {:?}",
        stats.entries()
    );
    assert_eq!(
        g(&stats.events_published),
        0,
        "the cluster accepted nothing"
    );
    assert!(g(&stats.batches) >= 5, "{:?}", stats.entries());
    assert!(g(&stats.bytes) > 0, "{:?}", stats.entries());
    // The cluster recovers.
    es.state().script.clear();
    drop(publisher);
    let report = writers.finish();
    assert_eq!((report.published, report.dropped), (10, 0), "{report:?}");
    assert_eq!(stored_ns(&es), (0..10).collect::<Vec<_>>());
    let requests = es.state().bulk_requests;
    assert_eq!(g(&stats.batches), requests);
    assert_eq!(
        g(&stats.batch_errors),
        requests - 1,
        "one request went through"
    );
    assert_eq!(g(&stats.events_retried), 10 * (requests - 1));
    assert_eq!(g(&stats.events_published), 10);
    assert_eq!(g(&stats.events_failed), 0);
}

/// A stop signal during endless retries gives the batch up: what was counted
/// live stays, and the events are counted failed exactly once.
#[test]
fn a_stop_during_endless_retries_keeps_the_live_counts() {
    let es = FakeEs::start("8.11.1");
    es.script(std::iter::repeat_n(Step::Status(503), 100_000));
    let registry = Registry::new();
    let out = Elasticsearch::new(&es_cfg(&es)).unwrap();
    let limits = Limits {
        chunks: 100,
        events: 1000,
        bytes: 1 << 20,
        when_full: WhenFull::Block,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (publisher, writers) = common::start_output_with(
        Box::new(out),
        limits,
        &registry,
        Arc::clone(&stop),
        Duration::ZERO,
    );
    for i in 0..10 {
        publisher.publish(line(i), 1);
    }
    let stats = registry.output("elasticsearch");
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(60), || g(&stats.batch_errors) >= 3),
        "retries not counted live: {:?}",
        stats.entries()
    );
    let live = g(&stats.batch_errors);
    stop.store(true, Ordering::Relaxed);
    drop(publisher);
    let report = writers.finish();
    assert_eq!((report.published, report.dropped), (0, 10), "{report:?}");
    let requests = es.state().bulk_requests;
    assert!(g(&stats.batch_errors) >= live);
    assert_eq!(g(&stats.batches), requests);
    assert_eq!(g(&stats.batch_errors), requests, "every request failed");
    assert_eq!(g(&stats.events_retried), 10 * (requests - 1));
    assert_eq!(g(&stats.events_failed), 10);
}

#[test]
fn a_request_refused_as_too_large_is_split_and_resent() {
    let es = FakeEs::start("8.11.1");
    // About a quarter of the one bulk request this capture makes.
    es.state().max_body = Some(70_000);
    let run = replay_es(&es, "redis/pipeline_cli.pcap", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(es.state().too_large > 0);
    assert_exactly_once(&es, &run);
    assert_eq!(run.counter("events_dropped"), 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("refused as too large").count(),
        1,
        "{}",
        run.stderr
    );
}
