//! Replays every MySQL capture recorded from a real MariaDB server (see
//! tests/pcaps/mysql/README.md) and checks the events against
//! `tests/pcaps/mysql/expected.json`, which `scripts/fixtures/mysql_summary.py`
//! derived from the captures independently of wirebeat; then damaged variants: a lost
//! segment inside a long result, a connection picked up mid-stream, garbage on 3306.

mod common;

use common::*;
use serde_json::Value;

/// Replays `mysql/<name>.pcap` with `-E` `settings`; wirebeat exits with 0.
fn mysql(name: &str, settings: &[&str]) -> Run {
    let run = replay_fixture(&format!("mysql/{name}.pcap"), settings);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    run
}

/// Offset of the TCP payload in an Ethernet/IPv4 frame.
fn payload_offset(f: &Frame) -> usize {
    let ihl = (f.data[14] & 0x0F) as usize * 4;
    let tcp = 14 + ihl;
    tcp + (f.data[tcp + 12] >> 4) as usize * 4
}

/// Indices of frames carrying TCP payload towards (`to_server`) or from port 3306.
fn data_frames(frames: &[Frame], to_server: bool) -> Vec<usize> {
    frame_indices(frames, |f| {
        tcp_info(f).is_some_and(|(n, _, dport)| n > 0 && (dport == 3306) == to_server)
    })
}

/// Settings for send_request / send_response, and the `response_cut` limits.
fn text_options(cut: Option<&Value>) -> Vec<String> {
    let mut o = vec![
        "protocols.mysql.send_request=true".to_string(),
        "protocols.mysql.send_response=true".to_string(),
    ];
    if let Some(c) = cut {
        o.push(format!("protocols.mysql.max_rows={}", c["max_rows"]));
        o.push(format!(
            "protocols.mysql.max_row_length={}",
            c["max_row_length"]
        ));
    }
    o
}

#[test]
fn every_fixture_gives_exactly_the_recorded_transactions() {
    for (name, exp) in expected_captures("mysql", 11) {
        let (run, events, want) = replay_recorded("mysql", &name, &exp, &[]);
        // One connection each (long_result: two, in order), answered in order.
        for (i, (e, t)) in events.iter().zip(want).enumerate() {
            let ctx = format!("{name} #{i} {}", t["query"]);
            assert_eq!(get(e, "type"), "mysql", "{ctx}");
            assert_eq!(get(e, "network.protocol"), "mysql", "{ctx}");
            assert_eq!(get(e, "method"), &t["method"], "{ctx}");
            assert_eq!(get(e, "query"), &t["query"], "{ctx}");
            assert_eq!(get(e, "status"), &t["status"], "{ctx}");
            assert_eq!(get(e, "source.bytes"), &t["request_bytes"], "{ctx}");
            assert_eq!(get(e, "destination.bytes"), &t["response_bytes"], "{ctx}");
            let path = t["path"].as_str().unwrap();
            if path.is_empty() {
                assert!(get(e, "path").is_null(), "{ctx}");
            } else {
                assert_eq!(get(e, "path"), path, "{ctx}");
            }
            assert_eq!(get(e, "mysql.num_fields"), &t["num_fields"], "{ctx}");
            assert_eq!(get(e, "mysql.num_rows"), &t["num_rows"], "{ctx}");
            assert_eq!(get(e, "mysql.affected_rows"), &t["affected_rows"], "{ctx}");
            assert_eq!(get(e, "mysql.insert_id"), &t["insert_id"], "{ctx}");
            assert_eq!(get(e, "mysql.error_code"), &t["error_code"], "{ctx}");
            assert_eq!(get(e, "mysql.error_message"), &t["error_message"], "{ctx}");
            if let Some(p) = t.get("params") {
                assert_eq!(get(e, "params"), p, "{ctx}");
            } else {
                assert!(get(e, "params").is_null(), "{ctx}");
            }
            assert!(get(e, "error.message").is_null(), "{ctx}");
            assert!(get(e, "event.duration").as_u64().unwrap() > 0, "{ctx}");
            assert_eq!(get(e, "destination.port"), 3306, "{ctx}");
            assert!(get(e, "request").is_null(), "{ctx}");
            assert!(get(e, "response").is_null(), "{ctx}");
        }
        assert_eq!(run.counter("parse_errors"), 0, "{name}: {}", run.stderr);
        assert_eq!(run.counter("unmatched_requests"), 0, "{name}");
        assert_eq!(run.counter("unmatched_responses"), 0, "{name}");
        // The commands that are no transactions were all seen, and only counted.
        assert_eq!(
            run.counter("untracked_commands"),
            exp["other_commands"].as_u64().unwrap(),
            "{name}: {}",
            run.stderr
        );
    }
}

/// The `request` and `response` texts, with Packetbeat's default max_rows /
/// max_row_length and with the cut ones the summary used.
#[test]
fn send_request_and_response_texts_of_every_fixture() {
    for (name, exp) in expected("mysql") {
        let want = exp["transactions"].as_array().unwrap();
        let cut = want.first().map(|t| &t["response_cut"]);
        for limits in [None, cut] {
            let opts = text_options(limits);
            let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
            let events = mysql(&name, &opts).events();
            assert_eq!(events.len(), want.len(), "{name}");
            for (i, (e, t)) in events.iter().zip(want).enumerate() {
                let ctx = format!("{name} #{i} {} {limits:?}", t["query"]);
                let text = match limits {
                    None => &t["response"],
                    Some(_) => &t["response_cut"]["text"],
                };
                assert_eq!(get(e, "response"), text, "{ctx}");
                match t.get("request") {
                    Some(r) => assert_eq!(get(e, "request"), r, "{ctx}"),
                    // An executed statement: the prepared text.
                    None => assert_eq!(get(e, "request"), &t["query"], "{ctx}"),
                }
            }
        }
    }
}

#[test]
fn compressed_connection_is_stopped_and_counted() {
    let run = mysql("compressed", &[]);
    assert!(
        run.events().is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(run.counter("parser_stopped"), 1, "{}", run.stderr);
    assert_eq!(run.counter("parse_errors"), 0, "{}", run.stderr);
}

#[test]
fn send_response_cuts_of_a_long_result() {
    let run = mysql(
        "long_result",
        &[
            "protocols.mysql.send_response=true",
            "protocols.mysql.max_rows=3",
            "protocols.mysql.max_row_length=7",
        ],
    );
    let ev = run.events();
    // The header is never cut; each row is, to 7 bytes of values.
    assert_eq!(
        get(&ev[0], "response"),
        "id,label\n1,row-1\n2,row-2\n3,row-3\n"
    );
    assert_eq!(get(&ev[0], "mysql.num_rows"), 5000);
    let run = mysql("prepared", &["protocols.mysql.send_response=true"]);
    let ev = run.events();
    assert_eq!(get(&ev[1], "response"), "id,name\n3,carol2\n");
    assert_eq!(get(&ev[1], "params"), "1, 'bob'");
    assert_eq!(get(&ev[2], "params"), "2, 'carol'");
    assert_eq!(get(&ev[4], "response"), "");
    let run = mysql("multi", &["protocols.mysql.send_response=true"]);
    assert_eq!(
        get(&run.events()[0], "response"),
        "one\n1\ntwo,three\n2,3\n"
    );
}

#[test]
fn lost_segment_inside_a_long_result() {
    let orig = read_frames(&fixture("mysql/long_result.pcap"));
    let resp = data_frames(&orig, false);
    // Server segments of the first connection: greeting, auth OK, then the result.
    let victim = resp[resp.len() / 3];
    let frames = without(&orig, victim);
    let path = tmp("mysql_gap.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.counter("tcp_gaps"), 1, "{}", run.stderr);
    let ev = run.events();
    assert_eq!(ev.len(), 2, "{}", run.stderr);
    let big = &ev[0];
    assert_eq!(get(big, "status"), "OK");
    assert_eq!(
        get(big, "error.message"),
        "Packet loss while capturing the response"
    );
    let rows = get(big, "mysql.num_rows").as_u64().unwrap();
    assert!(
        (4800..5000).contains(&rows),
        "rows counted around the hole: {rows}"
    );
    assert_eq!(get(big, "path"), "test.big");
    // The response still spans the lost bytes.
    assert_eq!(get(big, "destination.bytes"), 87898);
    assert_eq!(get(&ev[1], "mysql.num_rows"), 1);
    assert!(get(&ev[1], "error.message").is_null());
}

#[test]
fn lost_request_start_resynchronises_on_the_next_command() {
    let orig = read_frames(&fixture("mysql/queries.pcap"));
    let reqs = data_frames(&orig, true);
    // reqs: handshake response, SELECT, INSERT, ... drop the INSERT.
    let frames = without(&orig, reqs[2]);
    let path = tmp("mysql_reqgap.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    let methods: Vec<_> = ev
        .iter()
        .map(|e| get(e, "method").as_str().unwrap_or("-").to_string())
        .collect();
    // The INSERT's answer arrives with no request: unmatched; the rest pair up.
    assert_eq!(
        methods,
        ["SELECT", "-", "UPDATE", "DELETE", "SET", "SELECT"],
        "{}",
        run.stderr
    );
    assert_eq!(get(&ev[1], "error.message"), "Unmatched response");
    assert_eq!(get(&ev[1], "mysql.affected_rows"), 1);
    assert_eq!(get(&ev[2], "status"), "OK");
}

#[test]
fn a_connection_picked_up_mid_stream() {
    // Start after the handshake and the first query: its result is skipped (no
    // request to pair it with and no way to know where it starts), then the INSERT
    // and everything after pair normally, with EOF-mode learnt from the traffic.
    let orig = read_frames(&fixture("mysql/queries.pcap"));
    let reqs = data_frames(&orig, true);
    let path = tmp("mysql_mid.pcap");
    write_frames(&path, &orig[reqs[1] + 1..], 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    let got: Vec<_> = ev
        .iter()
        .map(|e| {
            (
                get(e, "method").as_str().unwrap_or("-").to_string(),
                get(e, "status").as_str().unwrap().to_string(),
            )
        })
        .collect();
    let last = &ev[ev.len() - 1];
    assert_eq!(get(last, "mysql.num_rows"), 1, "{got:?}");
    assert_eq!(
        got.iter().filter(|(m, s)| m != "-" && s == "OK").count(),
        5,
        "{got:?}"
    );
}

#[test]
fn garbage_on_port_3306_never_crashes() {
    let orig = read_frames(&fixture("mysql/queries.pcap"));
    let mut frames = orig.clone();
    let mut x = XorShift(0x9E37_79B9_7F4A_7C15);
    for &i in &data_frames(&orig, true) {
        let off = payload_offset(&frames[i]);
        for b in &mut frames[i].data[off..] {
            *b = x.next() as u8;
        }
    }
    for &i in data_frames(&orig, false).iter().skip(2).step_by(2) {
        let off = payload_offset(&frames[i]);
        frames[i].data[off + 4..].fill(0xAB);
    }
    let path = tmp("mysql_garbage.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("panic"), "{}", run.stderr);
    // Nothing from the client is a command any more: no request is ever published.
    for e in run.events() {
        assert!(get(&e, "query").is_null(), "{e}");
    }
}
