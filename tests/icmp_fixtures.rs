//! Replays every ICMP capture recorded from real kernels answering `ping` (see
//! tests/pcaps/icmp/README.md) and checks the events against
//! `tests/pcaps/icmp/expected.json`, which the recording script derived from the
//! captures with its own decoder, independently of wirebeat.

mod common;

use common::*;
use serde_json::{Value, json};

/// What an event says, in the shape of a recorded transaction.
fn seen(e: &Value) -> Value {
    let side = |k: &str| match get(e, &format!("icmp.{k}")) {
        Value::Null => Value::Null,
        s => json!({"type": s["type"], "code": s["code"], "message": s["message"]}),
    };
    let notes = match get(e, "error.message") {
        Value::Null => json!([]),
        Value::String(s) => json!([s]),
        v => v.clone(),
    };
    // @timestamp to the millisecond: "2026-...T..:..:..sssZ".
    let ts = get(e, "@timestamp").as_str().unwrap_or_default();
    json!({
        "client_ip": get(e, "source.ip"),
        "server_ip": get(e, "destination.ip"),
        "version": get(e, "icmp.version"),
        "transport": get(e, "network.transport"),
        "request": side("request"),
        "response": side("response"),
        "request_bytes": get(e, "source.bytes"),
        "response_bytes": get(e, "destination.bytes"),
        "start": ts,
        "duration_ns": get(e, "event.duration"),
        "status": get(e, "status"),
        "notes": notes,
        "community_id": get(e, "network.community_id"),
    })
}

/// A recorded transaction in the same shape, its start as the event writes it.
fn recorded(t: &Value) -> Value {
    let ms = t["start_ms"].as_u64().unwrap();
    let start = chrono_ms(ms);
    let mut t = t.clone();
    let o = t.as_object_mut().unwrap();
    o.remove("start_ms");
    o.insert("start".into(), json!(start));
    t
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

#[test]
fn every_fixture_gives_exactly_the_recorded_transactions() {
    for (name, exp) in expected_captures("icmp", 4) {
        let (run, events, want) = replay_recorded("icmp", &name, &exp, &[]);
        let got = sorted(events.iter().map(seen).collect());
        let want_all = sorted(want.iter().map(recorded).collect());
        assert_eq!(got, want_all, "{name}\n{}", run.stderr);
        for e in &events {
            assert_eq!(get(e, "type"), "icmp", "{name}");
            assert_eq!(get(e, "event.dataset"), "icmp", "{name}");
            assert_eq!(get(e, "path"), get(e, "destination.ip"), "{name}");
            assert_eq!(get(e, "client.ip"), get(e, "source.ip"), "{name}");
            assert!(get(e, "source.port").is_null(), "{name}: no ports");
            assert_eq!(get(e, "event.type"), &json!(["connection"]), "{name}");
        }
        let unanswered = want
            .iter()
            .filter(|t| {
                t["response"].is_null() && t["status"] == "Error" && t["notes"] != json!([])
            })
            .count();
        assert_eq!(
            run.counter("unmatched_requests"),
            unanswered as u64,
            "{name}"
        );
        assert_eq!(run.counter("parse_errors"), 0, "{name}");
        assert_eq!(run.counter("icmp_flow_table_full"), 0, "{name}");
    }
}

#[test]
fn a_transaction_timeout_publishes_the_unanswered_requests_before_the_end() {
    // The second unanswered ping is 0.2 s after the first: with a 100 ms timeout
    // the first is published when the second arrives, the second at the end.
    let run = replay_fixture(
        "icmp/unanswered.pcap",
        &["protocols.icmp.transaction_timeout=100ms"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    assert_eq!(events.len(), 3);
    let notes: Vec<&Value> = events.iter().map(|e| get(e, "error.message")).collect();
    let none = json!("Request was received without an associated response.");
    assert_eq!(
        notes.iter().filter(|n| **n == &none).count(),
        2,
        "{notes:?}"
    );
    assert_eq!(
        run.counter("icmp_flows_expired") + run.counter("icmp_flows_done"),
        3
    );
}

#[test]
fn disabled_icmp_follows_nothing() {
    let run = replay_fixture("icmp/echo.pcap", &["protocols.icmp.enabled=false"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.events().is_empty());
    assert_eq!(run.counter("icmp_messages"), 0);
    assert!(run.counter("ignored_ports") > 0);
}

#[test]
fn two_workers_give_the_same_events() {
    let names: Vec<String> = ["echo", "unanswered", "unreachable", "v6"]
        .iter()
        .map(|n| format!("icmp/{n}.pcap"))
        .collect();
    assert_two_workers_agree(&names);
}

#[test]
fn garbage_icmp_messages_are_read_and_counted() {
    let mut frames = read_frames(&fixture("icmp/echo.pcap"));
    let mut x = XorShift(11);
    for f in &mut frames {
        // Ethernet (14) + IPv4 (20): the ICMP message, type and code included.
        for b in &mut f.data[34..] {
            *b = x.next() as u8;
        }
    }
    let path = tmp("icmp-garbage.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for e in run.events() {
        assert_eq!(get(&e, "type"), "icmp");
    }
}
