//! Replays every PostgreSQL capture recorded from a real PostgreSQL 15 server (psql,
//! pgbench, psycopg; see tests/pcaps/pgsql/README.md) and checks the events against
//! `tests/pcaps/pgsql/expected.json`, which `scripts/fixtures/pgsql_summary.py`
//! derived from the captures independently of wirebeat. Also damaged variants: a
//! segment lost inside a long result, a connection picked up mid-stream, garbage on
//! the PostgreSQL port.

mod common;

use common::*;
use serde_json::Value;

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixture("pgsql/expected.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// Events grouped per connection (client port), in output order.
fn by_connection(events: Vec<Value>) -> Vec<Vec<Value>> {
    let mut groups: Vec<(u64, Vec<Value>)> = Vec::new();
    for e in events {
        let port = get(&e, "source.port").as_u64().unwrap();
        match groups.iter_mut().find(|g| g.0 == port) {
            Some(g) => g.1.push(e),
            None => groups.push((port, vec![e])),
        }
    }
    groups.into_iter().map(|g| g.1).collect()
}

fn opt_eq(e: &Value, path: &str, want: &Value, ctx: &str) {
    let got = get(e, path);
    assert_eq!(got, want, "{ctx}: {path}");
}

fn check(name: &str, exp: &Value, run: &Run) {
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    let events = run.events();
    let want = exp["transactions"].as_array().unwrap();
    assert_eq!(events.len(), want.len(), "{name}: event count {events:#?}");
    let mut groups = by_connection(events);
    let conns = exp["connections"].as_u64().unwrap();
    for c in 1..=conns {
        let txs: Vec<&Value> = want.iter().filter(|t| t["connection"] == c).collect();
        if txs.is_empty() {
            continue;
        }
        let queries: Vec<&Value> = txs.iter().map(|t| &t["query"]).collect();
        let pos = groups
            .iter()
            .position(|g| g.iter().map(|e| get(e, "query")).collect::<Vec<_>>() == queries)
            .unwrap_or_else(|| panic!("{name}: no connection with queries {queries:?}"));
        let g = groups.remove(pos);
        for (e, t) in g.iter().zip(&txs) {
            let ctx = format!("{name} conn {c} {}", t["query"]);
            assert_eq!(get(e, "type"), "pgsql", "{ctx}");
            assert_eq!(get(e, "event.dataset"), "pgsql", "{ctx}");
            opt_eq(e, "method", &t["method"], &ctx);
            opt_eq(e, "params", &t["params"], &ctx);
            opt_eq(e, "status", &t["status"], &ctx);
            opt_eq(e, "source.bytes", &t["request_bytes"], &ctx);
            opt_eq(e, "client.bytes", &t["request_bytes"], &ctx);
            opt_eq(e, "destination.bytes", &t["response_bytes"], &ctx);
            opt_eq(e, "server.bytes", &t["response_bytes"], &ctx);
            opt_eq(e, "pgsql.num_rows", &t["num_rows"], &ctx);
            opt_eq(e, "pgsql.num_fields", &t["num_fields"], &ctx);
            opt_eq(e, "pgsql.error_code", &t["error_code"], &ctx);
            opt_eq(e, "pgsql.error_severity", &t["error_severity"], &ctx);
            opt_eq(e, "pgsql.error_message", &t["error_message"], &ctx);
            let notes = t["notes"].as_array().unwrap();
            match notes.len() {
                0 => assert!(get(e, "error.message").is_null(), "{ctx}: {e}"),
                _ => assert_eq!(get(e, "error.message"), &notes[0], "{ctx}"),
            }
            let dur = get(e, "event.duration").as_u64().expect("duration");
            assert!(dur > 0 && dur < 5_000_000_000, "{ctx}: duration {dur}");
            assert_eq!(get(e, "event.start"), get(e, "@timestamp"), "{ctx}");
            assert_eq!(get(e, "destination.ip"), "10.77.0.2", "{ctx}");
            assert_eq!(get(e, "destination.port"), 5432, "{ctx}");
            assert_eq!(get(e, "source.ip"), "10.77.0.1", "{ctx}");
            assert_eq!(
                get(e, "network.bytes").as_u64(),
                Some(t["request_bytes"].as_u64().unwrap() + t["response_bytes"].as_u64().unwrap()),
                "{ctx}"
            );
        }
    }
    assert!(groups.is_empty(), "{name}: extra connections {groups:#?}");
    assert_eq!(run.counter("parse_errors"), 0, "{name}: {}", run.stderr);
    assert_eq!(run.counter("tcp_gaps"), 0, "{name}: {}", run.stderr);
}

#[test]
fn every_fixture_gives_exactly_the_recorded_transactions() {
    let exp = expected();
    assert!(exp.len() >= 11, "fixtures missing");
    for (name, e) in &exp {
        let run = replay(&fixture(&format!("pgsql/{name}.pcap")), &[]);
        check(name, e, &run);
    }
}

#[test]
fn client_reports_agree_with_the_recording() {
    // What the clients printed, against the numbers derived from the pcaps.
    let exp = expected();
    let client = |n: &str| -> String {
        exp[n]["client_output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string() + "\n")
            .collect()
    };
    assert!(client("simple").contains("(3 rows)") && client("simple").contains("INSERT 0 2"));
    assert!(client("long_result").contains("(5000 rows)"));
    assert!(client("copy").starts_with("COPY 3"));
    assert!(client("errors").contains("division by zero"));
    let rows = |n: &str, q: &str| -> Vec<u64> {
        exp[n]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["query"].as_str() == Some(q))
            .map(|t| t["num_rows"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        rows(
            "long_result",
            "SELECT g AS id, md5(g::text) AS hash FROM generate_series(1, 5000) AS g"
        ),
        [5000]
    );
    assert_eq!(
        rows(
            "python_extended",
            "SELECT name FROM items WHERE id <= $1 ORDER BY id"
        ),
        [0, 2, 3]
    );
}

#[test]
fn send_request_and_response() {
    let run = replay(
        &fixture("pgsql/simple.pcap"),
        &[
            "-E",
            "protocols.pgsql.send_request=true",
            "-E",
            "protocols.pgsql.send_response=true",
            "-E",
            "protocols.pgsql.max_rows=2",
        ],
    );
    let ev = run.events();
    assert_eq!(ev.len(), 4, "{}", run.stderr);
    assert_eq!(
        get(&ev[0], "request"),
        "SELECT id, name FROM items ORDER BY id"
    );
    assert_eq!(get(&ev[0], "response"), "id,name\n1,a\n2,b");
    assert_eq!(get(&ev[1], "response"), "INSERT 0 2");
}

#[test]
fn replay_is_byte_identical() {
    for name in ["pgsql/pgbench_prepared.pcap", "pgsql/long_result.pcap"] {
        let a = replay(&fixture(name), &[]);
        let b = replay(&fixture(name), &[]);
        assert!(!a.stdout.is_empty(), "{name}");
        assert_eq!(a.stdout, b.stdout, "{name}: two replays differ");
    }
}

#[test]
fn lost_segment_in_long_result() {
    let frames = read_frames(&fixture("pgsql/long_result.pcap"));
    // Server-to-client data segments; drop one in the middle of the rows.
    let data: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(tcp_info(f), Some((n, 5432, _)) if n > 1000))
        .map(|(i, _)| i)
        .collect();
    assert!(data.len() > 100, "{}", data.len());
    let drop = data[data.len() / 2];
    let lost = tcp_info(&frames[drop]).unwrap().0 as u64;
    let kept: Vec<_> = frames
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != drop)
        .map(|(_, f)| f.clone())
        .collect();
    let path = tmp("pgsql_gap.pcap");
    write_frames(&path, &kept, 65535);
    let run = replay(&path, &[]);
    let ev = run.events();
    assert_eq!(ev.len(), 1, "{ev:#?}\n{}", run.stderr);
    let e = &ev[0];
    let want = &expected()["long_result"]["transactions"][0];
    assert_eq!(get(e, "status"), "OK");
    assert_eq!(
        get(e, "error.message"),
        "Packet loss while capturing the response"
    );
    // The row count comes from the CommandComplete tag, which survived.
    assert_eq!(get(e, "pgsql.num_rows"), 5000);
    // Lost bytes count into the response. Only the start of the row cut by the hole,
    // which the engine held unconsumed and discards at a gap, is not seen.
    let got = get(e, "destination.bytes").as_u64().unwrap();
    let recorded = want["response_bytes"].as_u64().unwrap();
    assert!(
        got <= recorded && got + 64 > recorded,
        "{got} vs {recorded}"
    );
    assert!(lost > 1000);
    assert_eq!(run.counter("tcp_gaps"), 1, "{}", run.stderr);
}

#[test]
fn mid_stream_pickup() {
    // Start the capture after the first three client data segments of the psycopg
    // session: no handshake, no startup.
    let frames = read_frames(&fixture("pgsql/python_extended.pcap"));
    let client_data: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(tcp_info(f), Some((n, _, 5432)) if n > 0))
        .map(|(i, _)| i)
        .collect();
    // From the fifth client segment on: the named statement executed first was
    // prepared before the pickup, so its text is unknown (method EXECUTE); the
    // unnamed statements after it carry their own Parse.
    let start = client_data[4];
    let path = tmp("pgsql_midstream.pcap");
    write_frames(&path, &frames[start..], 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    let want = &expected()["python_extended"]["transactions"];
    let want = want.as_array().unwrap();
    assert_eq!(ev.len(), 4, "{ev:#?}");
    let tail = &want[want.len() - ev.len()..];
    assert_eq!(get(&ev[0], "method"), "EXECUTE");
    assert!(get(&ev[0], "query").is_null());
    for (i, (e, t)) in ev.iter().zip(tail).enumerate() {
        if i > 0 {
            assert_eq!(get(e, "query"), &t["query"]);
            assert_eq!(get(e, "method"), &t["method"]);
        }
        assert_eq!(get(e, "params"), &t["params"]);
        assert_eq!(get(e, "status"), &t["status"]);
        assert_eq!(get(e, "pgsql.num_rows"), &t["num_rows"]);
        assert_eq!(get(e, "source.bytes"), &t["request_bytes"]);
        assert_eq!(get(e, "destination.bytes"), &t["response_bytes"]);
    }
}

#[test]
fn garbage_on_the_postgres_port() {
    // An HTTP conversation moved to port 5432: nothing is published, nothing panics.
    let mut frames = read_frames(&fixture("http/get_simple.pcap"));
    for f in &mut frames {
        let ihl = ((f.data[14] & 0x0f) as usize) * 4;
        let tcp = 14 + ihl;
        for at in [tcp, tcp + 2] {
            if f.data[at..at + 2] == 80u16.to_be_bytes() {
                f.data[at..at + 2].copy_from_slice(&5432u16.to_be_bytes());
            }
        }
    }
    let path = tmp("pgsql_garbage.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.events().is_empty(), "{:?}", run.events());
    // Random bytes over a real PostgreSQL conversation's payload.
    let mut frames = read_frames(&fixture("pgsql/simple.pcap"));
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for f in &mut frames {
        if let Some((n, _, _)) = tcp_info(f)
            && n > 0
        {
            let len = f.data.len();
            for b in &mut f.data[len - n..] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
        }
    }
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
