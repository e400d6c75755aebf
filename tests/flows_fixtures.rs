//! Replays the flow captures recorded from real servers and clients (see
//! tests/pcaps/flows/README.md) and checks every flow report against
//! `tests/pcaps/flows/expected.json`, which the recording script derived from the
//! captures with its own decoder and flow table, independently of wirebeat, for
//! several settings.

mod common;

use common::*;
use serde_json::{Value, json};

/// A flow event in the shape of a recorded report.
fn seen(e: &Value) -> Value {
    let end = |k: &str| {
        let mut o = serde_json::Map::new();
        for f in ["ip", "mac", "port", "packets", "bytes"] {
            let v = get(e, &format!("{k}.{f}"));
            if !v.is_null() {
                o.insert(f.into(), v.clone());
            }
        }
        Value::Object(o)
    };
    let vlans = match get(e, "flow.vlan") {
        Value::Null => json!([]),
        Value::Array(a) => Value::Array(a.clone()),
        v => json!([v]),
    };
    let fin = get(e, "flow.final").as_bool().unwrap();
    assert_eq!(
        get(e, "event.type"),
        &if fin {
            json!(["connection", "end"])
        } else {
            json!(["connection"])
        }
    );
    json!({
        "at": get(e, "@timestamp"),
        "final": fin,
        "start": get(e, "event.start"),
        "end": get(e, "event.end"),
        "duration": get(e, "event.duration"),
        "source": end("source"),
        "destination": end("destination"),
        "transport": get(e, "network.transport"),
        "network_packets": get(e, "network.packets"),
        "network_bytes": get(e, "network.bytes"),
        "community_id": get(e, "network.community_id"),
        "flow_id": get(e, "flow.id"),
        "vlans": vlans,
    })
}

/// A recorded report in the same shape, its times as the event writes them.
fn recorded(r: &Value) -> Value {
    let ns = |k: &str| r[k].as_u64().unwrap();
    let mut r = r.clone();
    let o = r.as_object_mut().unwrap();
    o.insert("duration".into(), json!(ns("end") - ns("start")));
    for k in ["at", "start", "end"] {
        o.insert(k.into(), json!(chrono_ms(ns(k) / 1_000_000)));
    }
    r
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

fn flow_events(run: &Run) -> Vec<Value> {
    run.events()
        .into_iter()
        .filter(|e| get(e, "type") == "flow")
        .collect()
}

#[test]
fn every_fixture_gives_exactly_the_recorded_reports_for_each_setting() {
    let all = expected_captures("flows", 2);
    for (name, exp) in &all {
        let runs = exp["runs"].as_object().unwrap();
        assert_eq!(runs.len(), 4, "{name}");
        for (label, r) in runs {
            let mut settings: Vec<&str> = r["settings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            settings.push("flows.enabled=true");
            let run = replay_fixture(&format!("flows/{name}.pcap"), &settings);
            assert_eq!(run.code, 0, "{name} {label}: {}", run.stderr);
            let events = flow_events(&run);
            let got = sorted(events.iter().map(seen).collect());
            let want = sorted(
                r["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(recorded)
                    .collect(),
            );
            assert_eq!(got, want, "{name} {label}\n{}", run.stderr);
            for e in &events {
                assert_eq!(get(e, "event.action"), "network_flow");
                assert_eq!(get(e, "event.dataset"), "flow");
                assert_eq!(get(e, "event.kind"), "event");
                assert_eq!(get(e, "event.category"), &json!(["network"]));
                assert_eq!(get(e, "network.type"), "ipv4");
                assert_eq!(get(e, "agent.type"), "wirebeat");
            }
            let finals = want.iter().filter(|r| r["final"] == true).count() as u64;
            assert_eq!(run.counter("netflows_created"), finals, "{name} {label}");
            assert_eq!(run.counter("netflow_reports"), want.len() as u64);
            assert_eq!(
                run.counter("netflow_packets"),
                exp["packets"].as_u64().unwrap()
            );
            assert_eq!(run.counter("netflows_evicted"), 0);
        }
    }
}

#[test]
fn flows_and_transactions_come_from_the_same_packets() {
    // With http.server's port followed, the same flows plus its two transactions.
    let base = ["flows.enabled=true"];
    let plain = replay_fixture("flows/mixed.pcap", &base);
    let with_http = replay_fixture(
        "flows/mixed.pcap",
        &["flows.enabled=true", "protocols.http.ports=[8000]"],
    );
    assert_eq!(sorted(flow_events(&plain)), sorted(flow_events(&with_http)));
    let http: Vec<Value> = with_http
        .events()
        .into_iter()
        .filter(|e| get(e, "type") == "http")
        .collect();
    assert_eq!(http.len(), 2, "{}", with_http.stderr);
    // Without flows: no flow events, the same transactions.
    let off = replay_fixture("flows/mixed.pcap", &["protocols.http.ports=[8000]"]);
    assert!(flow_events(&off).is_empty());
    assert_eq!(off.counter("netflow_packets"), 0);
    assert_eq!(
        off.events().len(),
        with_http.events().len() - flow_events(&with_http).len()
    );
}

#[test]
fn two_workers_give_the_same_reports() {
    for settings in [
        vec!["-E", "flows.enabled=true"],
        vec!["-E", "flows.timeout=2s", "-E", "flows.period=1s"],
    ] {
        for name in ["mixed", "slow"] {
            let pcap = fixture(&format!("flows/{name}.pcap"));
            let lines = |extra: &[&str]| {
                let mut args = settings.clone();
                args.extend_from_slice(extra);
                let run = replay(&pcap, &args);
                assert_eq!(run.code, 0, "{}", run.stderr);
                let mut l: Vec<Vec<u8>> = run
                    .stdout
                    .split(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                l.sort();
                l
            };
            assert_eq!(
                lines(&[]),
                lines(&["-E", "pipeline.workers=2"]),
                "{name} {settings:?}"
            );
        }
    }
}

#[test]
fn a_full_flow_table_ends_the_least_recently_active_flows_early() {
    let run = replay_fixture(
        "flows/mixed.pcap",
        &["flows.enabled=true", "flows.max_flows=2"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = flow_events(&run);
    assert!(run.counter("netflows_evicted") >= 5, "{}", run.stderr);
    assert!(events.iter().all(|e| get(e, "flow.final") == true));
    // Every packet is still counted, in one flow or another.
    let packets: u64 = events
        .iter()
        .map(|e| get(e, "network.packets").as_u64().unwrap())
        .sum();
    assert_eq!(packets, run.counter("netflow_packets"));
    assert!(run.stderr.contains("flows.max_flows"), "{}", run.stderr);
}

#[test]
fn garbage_payloads_and_truncated_frames_are_counted_without_trouble() {
    let mut frames = read_frames(&fixture("flows/mixed.pcap"));
    garble(&mut frames, 5);
    for f in frames.iter_mut().step_by(3) {
        let keep = f.data.len().min(30);
        f.data.truncate(keep);
    }
    let path = tmp("flows-garbage.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &["-E", "flows.enabled=true"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for e in flow_events(&run) {
        assert!(get(&e, "network.packets").as_u64().unwrap() > 0);
    }
}
