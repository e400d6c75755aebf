//! Every Thrift capture in tests/pcaps/thrift (recorded from the Apache Thrift library
//! by scripts/capture-fixtures.sh) gives exactly the transactions the client made,
//! with the byte counts the library's own decoder measured (expected.json), rendered
//! the same way whatever the protocol and transport; with and without the IDL.
//! Oneway calls (ONEWAY on the wire, or a CALL of a function the IDL declares oneway)
//! are published at once with no reply, and never take the next call's reply.

mod common;

use common::{
    expected, fixture, fixture_events, get, replay, replay_fixture, replay_with, tmp, write_frames,
};
use serde_json::Value;

const IDL: &str = r#"protocols.thrift.idl_files=["scripts/fixtures/thrift/calc.thrift"]"#;

/// (method, query without IDL, query with IDL, return value, exceptions without /
/// with IDL). The same calls are in every fixture.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<(&'static str, &'static str)>,
);

const DESCRIBED: &str = r#"(1: "wirebeat \"calc\"", 2: [-1, 0, 1099511627776], 3: {"y", "x"}, 4: {"a": 0.5}, 5: true, 6: -3, 7: (1: 3, 2: "inner"), 8: 00ff, 9: 1700000000)"#;
const DIV0: &str = r#"(1: 4, 2: "Cannot divide by 0")"#;

fn rows() -> Vec<Row> {
    vec![
        ("ping", "ping()", "ping()", Some(""), None),
        (
            "add",
            "add(1: 1, 2: 1)",
            "add(num1: 1, num2: 1)",
            Some("2"),
            None,
        ),
        (
            "add16",
            "add16(1: 1, 2: 1)",
            "add16(num1: 1, num2: 1)",
            Some("2"),
            None,
        ),
        (
            "echo",
            r#"echo(1: "hello wirebeat")"#,
            r#"echo(s: "hello wirebeat")"#,
            Some(r#""hello wirebeat""#),
            None,
        ),
        (
            "bytes",
            "bytes(1: 0001feff)",
            "bytes(data: 0001feff)",
            Some("fffe0100"),
            None,
        ),
        (
            "range",
            "range(1: 20)",
            "range(n: 20)",
            Some("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, ...]"),
            None,
        ),
        (
            "describe",
            r#"describe(1: [1, 2, 3], 2: {"y", "x"}, 3: {"k": 7})"#,
            r#"describe(ids: [1, 2, 3], tags: {"y", "x"}, counts: {"k": 7})"#,
            Some(DESCRIBED),
            None,
        ),
        ("zip", "zip()", "zip()", None, None),
        ("ping", "ping()", "ping()", Some(""), None),
        (
            "calculate",
            "calculate(1: 1, 2: (1: 1, 2: 0, 3: 4))",
            "calculate(logid: 1, w: (1: 1, 2: 0, 3: 4))",
            None,
            Some(("(1: (1: 4, 2: \"Cannot divide by 0\"))", "")),
        ),
        (
            "calculate",
            "calculate(1: 2, 2: (1: 15, 2: 10, 3: 2))",
            "calculate(logid: 2, w: (1: 15, 2: 10, 3: 2))",
            Some("5"),
            None,
        ),
        ("zip", "zip()", "zip()", None, None),
    ]
}

const FIXTURES: &[&str] = &[
    "binary_socket",
    "binary_framed",
    "binary_nonstrict",
    "compact_socket",
    "compact_framed",
    // zip() sent with message type CALL: only the IDL says it is oneway.
    "binary_oneway_call",
];

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn check(name: &str, with_idl: bool) {
    let exp = expected("thrift");
    let txs = exp[name]["transactions"].as_array().expect("transactions");
    let pcap = fixture(&format!("thrift/{name}.pcap"));
    let settings: &[&str] = if with_idl { &[IDL] } else { &[] };
    let run = replay_with(&pcap, settings);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    let events = run.events();
    let rows = rows();
    assert_eq!(events.len(), rows.len(), "{name}: {}", run.stderr);
    assert_eq!(txs.len(), rows.len());
    let div0_named = format!("(ouch: {DIV0})");
    let mut unmatched_zips = 0;
    for ((e, t), row) in events.iter().zip(txs).zip(&rows) {
        let (method, q, q_idl, ret, exc) = *row;
        let ctx = format!("{name} {method} (idl: {with_idl})");
        assert_eq!(s(get(e, "type")), Some("thrift"), "{ctx}");
        assert_eq!(s(get(e, "network.protocol")), Some("thrift"), "{ctx}");
        assert_eq!(s(get(e, "method")), Some(method), "{ctx}");
        assert_eq!(t["method"], method, "{ctx}");
        let query = if with_idl { q_idl } else { q };
        assert_eq!(s(get(e, "query")), Some(query), "{ctx}");
        let params = &query[method.len()..];
        assert_eq!(s(get(e, "thrift.params")), Some(params), "{ctx}");
        assert_eq!(s(get(e, "thrift.return_value")), ret, "{ctx}");
        let exc = exc.map(
            |(plain, _)| {
                if with_idl { div0_named.as_str() } else { plain }
            },
        );
        assert_eq!(s(get(e, "thrift.exceptions")), exc, "{ctx}");
        // A oneway call sent as CALL is known as oneway only from the IDL; without it,
        // the next reply (naming the next call) shows it got none: unmatched.
        let oneway = t["oneway"] == true;
        let unmatched = oneway && t["type"] == "call" && !with_idl;
        let status = if exc.is_some() || unmatched {
            "Error"
        } else {
            "OK"
        };
        assert_eq!(s(get(e, "status")), Some(status), "{ctx}");
        let note = unmatched.then_some("Unmatched request");
        assert_eq!(s(get(e, "error.message")), note, "{ctx}");
        if !unmatched {
            assert_eq!(get(e, "error"), &Value::Null, "{ctx}");
        }
        let (service, path) = if with_idl {
            (Some("Calculator"), Some("Calculator"))
        } else {
            (None, None)
        };
        assert_eq!(s(get(e, "thrift.service")), service, "{ctx}");
        assert_eq!(s(get(e, "path")), path, "{ctx}");
        assert_eq!(get(e, "source.bytes"), &t["request_bytes"], "{ctx}");
        assert_eq!(get(e, "client.bytes"), &t["request_bytes"], "{ctx}");
        assert_eq!(get(e, "destination.bytes"), &t["response_bytes"], "{ctx}");
        assert_eq!(get(e, "server.bytes"), &t["response_bytes"], "{ctx}");
        assert_eq!(get(e, "server.port").as_u64(), Some(9090), "{ctx}");
        assert!(get(e, "event.start").is_string(), "{ctx}");
        if method == "zip" {
            assert!(oneway, "{ctx}");
            assert_eq!(t["reply"], Value::Null, "{ctx}");
            assert_eq!(get(e, "destination.bytes").as_u64(), Some(0), "{ctx}");
            assert_eq!(get(e, "event.end"), &Value::Null, "{ctx}");
            assert_eq!(get(e, "event.duration"), &Value::Null, "{ctx}");
        } else {
            assert!(!oneway, "{ctx}");
            assert!(get(e, "destination.bytes").as_u64() > Some(0), "{ctx}");
            assert!(get(e, "event.end").is_string(), "{ctx}");
            assert!(get(e, "event.duration").as_u64().is_some(), "{ctx}");
        }
        if unmatched {
            unmatched_zips += 1;
        }
    }
    assert_eq!(run.counter("transactions"), rows.len() as u64);
    assert_eq!(run.counter("parse_errors"), 0);
    assert_eq!(run.counter("unmatched_requests"), unmatched_zips);
    assert_eq!(run.counter("unmatched_responses"), 0);
    // Only zip() sent as CALL, without the IDL, is unmatched (both of them).
    let want = if name == "binary_oneway_call" && !with_idl {
        2
    } else {
        0
    };
    assert_eq!(unmatched_zips, want, "{name} (idl: {with_idl})");
}

#[test]
fn fixtures_without_idl() {
    for name in FIXTURES {
        check(name, false);
    }
}

#[test]
fn fixtures_with_idl() {
    for name in FIXTURES {
        check(name, true);
    }
}

#[test]
fn configured_transport_and_protocol() {
    let pcap = "thrift/compact_framed.pcap";
    let settings = [
        "protocols.thrift.transport_type=framed",
        "protocols.thrift.protocol_type=compact",
    ];
    fixture_events(pcap, &settings, rows().len());
    // The wrong configuration parses nothing, and says so in the counters.
    let run = replay_fixture(pcap, &["protocols.thrift.protocol_type=binary"]);
    assert_eq!(run.code, 0);
    assert!(run.events().is_empty());
    assert!(run.counter("parse_errors") > 0);
}

#[test]
fn options_change_the_rendering() {
    let settings = [
        "protocols.thrift.obfuscate_strings=true",
        "protocols.thrift.collection_max_size=2",
        "protocols.thrift.capture_reply=false",
        "protocols.thrift.send_request=true",
    ];
    let ev = fixture_events("thrift/binary_socket.pcap", &settings, rows().len());
    assert_eq!(s(get(&ev[3], "query")), Some(r#"echo(1: "*")"#));
    assert_eq!(s(get(&ev[3], "request")), Some(r#"echo(1: "*")"#));
    assert_eq!(
        s(get(&ev[6], "thrift.params")),
        // Struct fields are cut at collection_max_size too.
        Some(r#"(1: [1, 2, ...], 2: {"*", "*"}, ...)"#)
    );
    for e in &ev {
        assert_eq!(get(e, "thrift.return_value"), &Value::Null);
        assert_eq!(get(e, "thrift.exceptions"), &Value::Null);
    }
    for pcap in ["binary_socket", "compact_framed"] {
        let pcap = fixture(&format!("thrift/{pcap}.pcap"));
        let run = replay_with(&pcap, &["protocols.thrift.drop_after_n_struct_fields=3"]);
        // describe's reply (a struct of 9 fields) loses its content but still pairs;
        // every other call is unaffected.
        let ev = run.events();
        assert_eq!(ev.len(), rows().len());
        assert_eq!(s(get(&ev[6], "method")), Some("describe"));
        assert_eq!(get(&ev[6], "thrift.return_value"), &Value::Null);
        assert_eq!(get(&ev[6], "error"), &Value::Null);
        assert_eq!(s(get(&ev[10], "query")), Some(rows()[10].1));
        assert_eq!(s(get(&ev[10], "thrift.return_value")), Some("5"));
        assert_eq!(run.counter("parse_errors"), 1);
    }
}

#[test]
fn garbage_and_truncation_on_port_9090() {
    let frames = common::read_frames(&fixture("thrift/binary_framed.pcap"));
    // Every payload byte flipped to garbage: no events, no crash.
    let mut bad = frames.clone();
    for f in &mut bad {
        if let Some((len, _, _)) = common::tcp_info(f)
            && len > 0
        {
            let n = f.data.len();
            for b in &mut f.data[n - len..] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
        }
    }
    let path = tmp("thrift-garbage.pcap");
    write_frames(&path, &bad, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Every event, if any, is a well-formed thrift event.
    for e in run.events() {
        assert_eq!(s(get(&e, "type")), Some("thrift"));
    }
    // Cut at every frame count: never more events than complete calls, no crash.
    for cut in (0..frames.len()).step_by(3) {
        let path = tmp(&format!("thrift-cut-{cut}.pcap"));
        write_frames(&path, &frames[..cut], 65535);
        let run = replay(&path, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.events().len() <= rows().len());
    }
}
