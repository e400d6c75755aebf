//! Replays every DNS capture recorded from a real dnsmasq queried by dig (see
//! tests/pcaps/dns/README.md) and checks the events against
//! `tests/pcaps/dns/expected.json`, which the recording script derived from the
//! captures with dnspython, independently of wirebeat.

mod common;

use common::*;
use serde_json::{Value, json};

/// The expected transaction of an event: the one of its flow (transport and client
/// port) and message id.
fn matching<'a>(want: &'a [Value], e: &Value) -> &'a Value {
    let (transport, port, id) = (
        get(e, "network.transport"),
        get(e, "source.port"),
        get(e, "dns.id"),
    );
    let found: Vec<&Value> = want
        .iter()
        .filter(|t| &t["transport"] == transport && &t["client_port"] == port && &t["id"] == id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected transactions for {transport} {port} {id}"
    );
    found[0]
}

fn null_if_empty(v: &Value) -> Value {
    match v.as_array() {
        Some(a) if a.is_empty() => Value::Null,
        _ => v.clone(),
    }
}

/// Checks one event against its recorded transaction; `authorities` and
/// `additionals` say whether those sections were asked for.
fn check(name: &str, e: &Value, t: &Value, authorities: bool, additionals: bool) {
    let ctx = format!("{name} {} {}", t["transport"], t["query_text"]);
    let shown = &t["shown"];
    assert_eq!(get(e, "type"), "dns", "{ctx}");
    assert_eq!(get(e, "event.dataset"), "dns", "{ctx}");
    assert_eq!(get(e, "network.protocol"), "dns", "{ctx}");
    assert_eq!(get(e, "network.transport"), &t["transport"], "{ctx}");
    assert_eq!(get(e, "source.ip"), &t["client_ip"], "{ctx}");
    assert_eq!(get(e, "destination.ip"), &t["server_ip"], "{ctx}");
    assert_eq!(get(e, "destination.port"), &t["server_port"], "{ctx}");
    assert_eq!(get(e, "method"), &t["method"], "{ctx}");
    assert_eq!(get(e, "resource"), &t["resource"], "{ctx}");
    assert_eq!(get(e, "query"), &t["query_text"], "{ctx}");
    assert_eq!(get(e, "status"), &t["status"], "{ctx}");
    assert_eq!(get(e, "source.bytes"), &t["request_bytes"], "{ctx}");
    assert_eq!(get(e, "dns.type"), &t["dns_type"], "{ctx}");
    assert_eq!(get(e, "dns.op_code"), &shown["op_code"], "{ctx}");
    assert_eq!(
        get(e, "dns.response_code"),
        &shown["response_code"],
        "{ctx}"
    );
    assert_eq!(get(e, "dns.flags"), &shown["flags"], "{ctx}");
    assert_eq!(
        get(e, "dns.question.name"),
        &shown["question"]["name"],
        "{ctx}"
    );
    assert_eq!(
        get(e, "dns.question.type"),
        &shown["question"]["type"],
        "{ctx}"
    );
    assert_eq!(
        get(e, "dns.question.class"),
        &shown["question"]["class"],
        "{ctx}"
    );
    let flags: Vec<&str> = [
        ("authoritative", "AA"),
        ("truncated_response", "TC"),
        ("recursion_desired", "RD"),
        ("recursion_available", "RA"),
        ("authentic_data", "AD"),
        ("checking_disabled", "CD"),
    ]
    .iter()
    .filter(|(f, _)| shown["flags"][f] == true)
    .map(|(_, h)| *h)
    .chain((shown["opt"]["do"] == true).then_some("DO"))
    .collect();
    assert_eq!(
        get(e, "dns.header_flags"),
        &null_if_empty(&json!(flags)),
        "{ctx}"
    );
    let count = |s: &str| shown[s].as_array().unwrap().len();
    assert_eq!(get(e, "dns.answers_count"), count("answers"), "{ctx}");
    assert_eq!(
        get(e, "dns.authorities_count"),
        count("authorities"),
        "{ctx}"
    );
    assert_eq!(
        get(e, "dns.additionals_count"),
        count("additionals"),
        "{ctx}"
    );
    assert_eq!(
        get(e, "dns.answers"),
        &null_if_empty(&shown["answers"]),
        "{ctx}"
    );
    let section = |s: &str, on: bool| {
        if on {
            null_if_empty(&shown[s])
        } else {
            Value::Null
        }
    };
    assert_eq!(
        get(e, "dns.authorities"),
        &section("authorities", authorities),
        "{ctx}"
    );
    assert_eq!(
        get(e, "dns.additionals"),
        &section("additionals", additionals),
        "{ctx}"
    );
    assert_eq!(
        get(e, "dns.resolved_ip"),
        &null_if_empty(&t["resolved_ip"]),
        "{ctx}"
    );
    match shown.get("opt") {
        Some(opt) => {
            for k in ["do", "udp_size", "version"] {
                assert_eq!(get(e, &format!("dns.opt.{k}")), &opt[k], "{ctx}: opt.{k}");
            }
            assert_eq!(
                get(e, "dns.opt.cookie"),
                opt.get("cookie").unwrap_or(&Value::Null)
            );
            assert_eq!(get(e, "dns.opt.ext_rcode"), "NOERROR", "{ctx}");
        }
        None => assert!(get(e, "dns.opt").is_null(), "{ctx}"),
    }
    // Every resolved address is also a related one.
    let related = get(e, "related.ip").as_array().unwrap();
    for ip in t["resolved_ip"].as_array().unwrap() {
        assert!(related.contains(ip), "{ctx}: related.ip {related:?}");
    }
    let notes = t["notes"].as_array().unwrap();
    let message = match notes.len() {
        0 => Value::Null,
        1 => notes[0].clone(),
        _ => Value::Array(notes.clone()),
    };
    assert_eq!(get(e, "error.message"), &message, "{ctx}");
    if t["dns_type"] == "answer" {
        assert_eq!(get(e, "destination.bytes"), &t["response_bytes"], "{ctx}");
        let dur = get(e, "event.duration").as_u64().unwrap();
        assert_eq!(dur, t["duration_us"].as_u64().unwrap() * 1000, "{ctx}");
    } else {
        assert!(get(e, "event.duration").is_null(), "{ctx}");
    }
}

#[test]
fn every_fixture_gives_exactly_the_recorded_transactions() {
    for sections in [false, true] {
        let settings: Vec<String> = if sections {
            vec![
                "protocols.dns.include_authorities=true".into(),
                "protocols.dns.include_additionals=true".into(),
            ]
        } else {
            vec![]
        };
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        for (name, exp) in expected_captures("dns", 4) {
            let (run, events, want) = replay_recorded("dns", &name, &exp, &settings);
            for e in &events {
                check(&name, e, matching(want, e), sections, sections);
            }
            for c in ["parse_errors", "unmatched_responses", "pairing_evictions"] {
                assert_eq!(run.counter(c), 0, "{name}: {c}\n{}", run.stderr);
            }
            let unanswered = want.iter().filter(|t| t["dns_type"] == "query").count();
            assert_eq!(
                run.counter("unmatched_requests"),
                unanswered as u64,
                "{name}"
            );
            // A UDP flow ends with the answer to its one query.
            let answered_udp = want
                .iter()
                .filter(|t| t["transport"] == "udp" && t["dns_type"] == "answer")
                .count();
            assert_eq!(run.counter("udp_flows_done"), answered_udp as u64, "{name}");
        }
    }
}

#[test]
fn question_names_are_split_by_the_public_suffix_list() {
    let events = fixture_events("dns/udp_records.pcap", &[], 13);
    let e = events
        .iter()
        .find(|e| get(e, "dns.question.name") == "_http._tcp.wirebeat.test")
        .expect("the SRV query");
    assert_eq!(get(e, "dns.question.registered_domain"), "wirebeat.test");
    assert_eq!(get(e, "dns.question.etld_plus_one"), "wirebeat.test");
    assert_eq!(get(e, "dns.question.top_level_domain"), "test");
    assert_eq!(get(e, "dns.question.subdomain"), "_http._tcp");
    let srv = &get(e, "dns.answers")[0];
    assert_eq!(
        (&srv["priority"], &srv["weight"], &srv["port"], &srv["data"]),
        (
            &json!(5),
            &json!(20),
            &json!(80),
            &json!("www.wirebeat.test")
        )
    );
    let apex = events
        .iter()
        .find(|e| get(e, "dns.question.type") == "MX")
        .expect("the MX query");
    assert!(get(apex, "dns.question.subdomain").is_null());
    assert_eq!(get(apex, "dns.answers")[0]["preference"], 10);
}

#[test]
fn send_request_and_send_response_write_the_messages_as_text() {
    let events = fixture_events(
        "dns/tcp.pcap",
        &[
            "protocols.dns.send_request=true",
            "protocols.dns.send_response=true",
        ],
        4,
    );
    let e = events
        .iter()
        .find(|e| get(e, "dns.question.type") == "MX")
        .expect("the MX query");
    let id = get(e, "dns.id");
    assert_eq!(
        get(e, "request"),
        &json!(format!(
            "ID {id}; QR query; OPCODE QUERY; FLAGS rd ad; RCODE NOERROR; QUESTION class IN, type MX, wirebeat.test; ADDITIONAL "
        ))
    );
    let resp = get(e, "response").as_str().unwrap();
    assert!(
        resp.starts_with(&format!(
            "ID {id}; QR response; OPCODE QUERY; FLAGS aa rd; RCODE NOERROR; QUESTION class IN, type MX, wirebeat.test; ANSWER mail.wirebeat.test"
        )),
        "{resp}"
    );
}

#[test]
fn two_workers_give_the_same_events() {
    let names: Vec<String> = ["udp_records", "tcp", "truncated", "unanswered"]
        .iter()
        .map(|n| format!("dns/{n}.pcap"))
        .collect();
    assert_two_workers_agree(&names);
}

#[test]
fn garbage_datagrams_on_port_53_are_read_and_counted() {
    // Every UDP payload byte of the capture replaced with noise: the lengths stay,
    // the messages are no longer DNS (or are nonsense DNS).
    let mut frames = read_frames(&fixture("dns/udp_records.pcap"));
    let mut x = XorShift(7);
    for f in &mut frames {
        // Ethernet (14) + IPv4 (20) + UDP (8) in these captures.
        for b in &mut f.data[42..] {
            *b = x.next() as u8;
        }
    }
    let path = tmp("dns-garbage.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.counter("udp_datagrams"), frames.len() as u64);
    assert!(run.counter("parse_errors") > 0, "{}", run.stderr);
    for e in run.events() {
        assert_eq!(get(&e, "type"), "dns");
    }
}
