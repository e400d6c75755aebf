//! Replays every Redis capture recorded from a real redis-server (see
//! tests/pcaps/redis/README.md) and checks the events against
//! `tests/pcaps/redis/expected.json`, which the recording script derived from the
//! captures independently of wirebeat.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// Events or expected transactions grouped by client port, in order.
fn by_port(items: &[Value], port: impl Fn(&Value) -> u64) -> BTreeMap<u64, Vec<&Value>> {
    let mut m: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for i in items {
        m.entry(port(i)).or_default().push(i);
    }
    m
}

#[test]
fn every_fixture_gives_exactly_the_recorded_transactions() {
    for (name, exp) in expected_captures("redis", 9) {
        let (run, events, want) = replay_recorded("redis", &name, &exp, &[]);
        let got = by_port(&events, |e| get(e, "source.port").as_u64().unwrap());
        let want = by_port(want, |t| t["client_port"].as_u64().unwrap());
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name}: connections"
        );
        for (port, ts) in &want {
            let evs = &got[port];
            assert_eq!(evs.len(), ts.len(), "{name}: events of port {port}");
            for (i, (e, t)) in evs.iter().zip(ts).enumerate() {
                let ctx = format!("{name} port {port} #{i} {}", t["query"]);
                assert_eq!(get(e, "type"), "redis", "{ctx}");
                assert_eq!(get(e, "event.dataset"), "redis", "{ctx}");
                assert_eq!(get(e, "network.protocol"), "redis", "{ctx}");
                assert_eq!(get(e, "method"), &t["method"], "{ctx}");
                assert_eq!(get(e, "resource"), &t["resource"], "{ctx}");
                assert_eq!(get(e, "query"), &t["query"], "{ctx}");
                assert_eq!(get(e, "status"), &t["status"], "{ctx}");
                assert_eq!(
                    get(e, "redis.return_value"),
                    t.get("return_value").unwrap_or(&Value::Null),
                    "{ctx}"
                );
                assert_eq!(
                    get(e, "redis.error"),
                    t.get("error").unwrap_or(&Value::Null),
                    "{ctx}"
                );
                assert_eq!(get(e, "source.bytes"), &t["request_bytes"], "{ctx}");
                assert_eq!(get(e, "client.bytes"), &t["request_bytes"], "{ctx}");
                assert_eq!(get(e, "destination.bytes"), &t["response_bytes"], "{ctx}");
                assert_eq!(get(e, "server.bytes"), &t["response_bytes"], "{ctx}");
                assert_eq!(
                    get(e, "network.bytes").as_u64().unwrap(),
                    t["request_bytes"].as_u64().unwrap() + t["response_bytes"].as_u64().unwrap(),
                    "{ctx}"
                );
                assert!(get(e, "error.message").is_null(), "{ctx}: {e}");
                let dur = get(e, "event.duration").as_u64().expect("duration");
                assert!(dur < 5_000_000_000, "{ctx}: duration {dur}");
                assert_eq!(get(e, "event.start"), get(e, "@timestamp"), "{ctx}");
                assert_eq!(get(e, "destination.ip"), "10.77.0.2", "{ctx}");
                assert_eq!(get(e, "destination.port"), 6379, "{ctx}");
                assert_eq!(get(e, "source.ip"), "10.77.0.1", "{ctx}");
            }
        }
        for c in [
            "parse_errors",
            "tcp_gaps",
            "unmatched_requests",
            "unmatched_responses",
            "pairing_evictions",
        ] {
            assert_eq!(run.counter(c), 0, "{name}: {c}\n{}", run.stderr);
        }
    }
}

#[test]
fn replay_is_byte_identical() {
    assert_replays_identical(&[
        "redis/pubsub.pcap",
        "redis/pipeline_bench.pcap",
        "redis/resp3.pcap",
    ]);
}

#[test]
fn small_queue_evicts_and_counts() {
    // redis-cli --pipe writes 300 commands before reading: with room for 10 pending
    // commands, the oldest are published unmatched and the replies pair with the
    // commands still queued.
    let run = replay_fixture(
        "redis/pipeline_cli.pcap",
        &["protocols.redis.queue_max_messages=10"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let evictions = run.counter("pairing_evictions");
    assert!(evictions > 0, "{}", run.stderr);
    assert_eq!(run.counter("unmatched_requests"), evictions);
    let events = run.events();
    let unmatched = events
        .iter()
        .filter(|e| get(e, "error.message") == "Unmatched request")
        .count() as u64;
    assert_eq!(unmatched, evictions);
}

#[test]
fn send_request_and_response() {
    let run = replay_fixture(
        "redis/basic.pcap",
        &[
            "protocols.redis.send_request=true",
            "protocols.redis.send_response=true",
        ],
    );
    let events = run.events();
    let e = events
        .iter()
        .find(|e| get(e, "query") == "LRANGE list 0 -1")
        .expect("LRANGE");
    assert_eq!(get(e, "request"), "LRANGE list 0 -1");
    assert_eq!(get(e, "response"), "[c, b, a]");
}

#[test]
fn garbage_on_port_6379_is_survived() {
    for (i, name) in ["basic", "pipeline_cli", "resp3"].iter().enumerate() {
        let mut frames = read_frames(&fixture(&format!("redis/{name}.pcap")));
        garble(&mut frames, 0x1234_5678 + i as u64);
        let out = tmp(&format!("redis-garbage-{name}.pcap"));
        write_frames(&out, &frames, 65535);
        let run = replay(&out, &[]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert!(run.counter("parse_errors") > 0, "{name}: {}", run.stderr);
        // Whatever is published is well-formed JSON of the right type.
        for e in run.events() {
            assert_eq!(get(&e, "type"), "redis");
        }
    }
}

#[test]
fn truncated_capture_publishes_what_is_in_flight() {
    // The first half of the large-value capture: the SET's value is cut.
    let frames = read_frames(&fixture("redis/large.pcap"));
    let half = &frames[..frames.len() / 4];
    let out = tmp("redis-large-cut.pcap");
    write_frames(&out, half, 65535);
    let run = replay(&out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    assert_eq!(events.len(), 1, "{}", run.stderr);
    let e = &events[0];
    assert_eq!(get(e, "method"), "SET");
    assert_eq!(get(e, "resource"), "big");
    assert_eq!(get(e, "status"), "Error");
    let notes = get(e, "error.message").to_string();
    assert!(notes.contains("Unmatched request"), "{notes}");
}

#[test]
fn method_and_resource_as_packetbeat_names_them() {
    // (capture, query, method, resource): the method is the command upper-cased, two
    // words for a container command; the resource is the first argument after it.
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        // redis-benchmark asks for its configuration first.
        (
            "pipeline_bench",
            "CONFIG GET save",
            "CONFIG GET",
            Some("save"),
        ),
        (
            "pipeline_bench",
            "CONFIG GET appendonly",
            "CONFIG GET",
            Some("appendonly"),
        ),
        // redis-cli asks for the command docs on connecting.
        ("basic", "COMMAND DOCS", "COMMAND DOCS", None),
        ("resp3", "CLIENT TRACKING ON", "CLIENT TRACKING", Some("ON")),
        ("resp3", "DEBUG PROTOCOL map", "DEBUG PROTOCOL", Some("map")),
        ("resp3", "HELLO 3", "HELLO", Some("3")),
        ("basic", "SET key1 hello", "SET", Some("key1")),
        (
            "basic",
            "EXISTS key1 counter missing",
            "EXISTS",
            Some("key1"),
        ),
        ("basic", "PING", "PING", None),
    ];
    for (name, query, method, resource) in cases {
        let run = replay_fixture(&format!("redis/{name}.pcap"), &[]);
        let events = run.events();
        let e = events
            .iter()
            .find(|e| get(e, "query") == *query)
            .unwrap_or_else(|| panic!("{name}: no `{query}`"));
        assert_eq!(get(e, "method"), *method, "{name} {query}");
        assert_eq!(get(e, "resource").as_str(), *resource, "{name} {query}");
        assert_eq!(get(e, "status"), "OK", "{name} {query}");
    }
}
