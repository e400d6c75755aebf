//! Replays every PostgreSQL capture recorded from a real PostgreSQL 15 server (psql,
//! pgbench, psycopg, asyncpg; see tests/pcaps/pgsql/README.md) and checks the events against
//! `tests/pcaps/pgsql/expected.json`, which `scripts/fixtures/pgsql_summary.py`
//! derived from the captures independently of wirebeat. Also damaged variants: a
//! segment lost inside a long result, a connection picked up mid-stream, garbage on
//! the PostgreSQL port. Every fixture is also replayed with `send_response` under two
//! sets of limits, and the `response` text must be exactly the one the script derived.

mod common;

use common::*;
use serde_json::Value;

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

/// `response` is compared with the expected transaction's `resp_key` when given.
fn check(name: &str, exp: &Value, run: &Run, resp_key: Option<&str>) {
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
            match resp_key {
                Some(k) => opt_eq(e, "response", &t[k], &format!("{ctx} ({k})")),
                None => assert!(get(e, "response").is_null(), "{ctx}"),
            }
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
    let exp = expected("pgsql");
    assert!(exp.len() >= 15, "fixtures missing");
    for (name, e) in &exp {
        let run = replay_fixture(&format!("pgsql/{name}.pcap"), &[]);
        check(name, e, &run, None);
    }
}

#[test]
fn every_fixture_gives_exactly_the_recorded_response_texts() {
    // The limits of `response` and `response_cut` in scripts/fixtures/pgsql_summary.py.
    let exp = expected("pgsql");
    for (key, rows, len) in [("response", "10", "1024"), ("response_cut", "11", "11")] {
        let rows = format!("protocols.pgsql.max_rows={rows}");
        let len = format!("protocols.pgsql.max_row_length={len}");
        for (name, e) in &exp {
            let run = replay_fixture(
                &format!("pgsql/{name}.pcap"),
                &["protocols.pgsql.send_response=true", &rows, &len],
            );
            check(name, e, &run, Some(key));
        }
    }
}

/// `(query, method, num_rows, status, response bytes)` of events, in order.
type Brief = (String, String, Option<u64>, String, u64);

fn brief(events: &[Value]) -> Vec<Brief> {
    events
        .iter()
        .map(|e| {
            (
                get(e, "query").as_str().unwrap_or("").to_string(),
                get(e, "method").as_str().unwrap_or("").to_string(),
                get(e, "pgsql.num_rows").as_u64(),
                get(e, "status").as_str().unwrap().to_string(),
                get(e, "destination.bytes").as_u64().unwrap(),
            )
        })
        .collect()
}

fn owned(want: &[(&str, &str, Option<u64>, &str, u64)]) -> Vec<Brief> {
    want.iter()
        .map(|&(q, m, n, s, b)| (q.to_string(), m.to_string(), n, s.to_string(), b))
        .collect()
}

#[test]
fn pipelined_executes_each_get_their_own_result() {
    // psycopg pipeline: two Sync batches, the second failing in its second Execute.
    let run = replay_fixture("pgsql/python_pipeline_rows.pcap", &[]);
    let ev = run.events();
    let tellers = "SELECT tid FROM pgbench_tellers WHERE tid <= $1 ORDER BY tid";
    let update = "UPDATE pgbench_tellers SET tbalance = tbalance WHERE tid <= $1";
    let want = owned(&[
        // ParseComplete, BindComplete, RowDescription, 3 DataRows, CommandComplete.
        (
            "SELECT g FROM generate_series(1, $1) AS g",
            "SELECT",
            Some(3),
            "OK",
            87,
        ),
        (tellers, "SELECT", Some(2), "OK", 77),
        ("SELECT 1 AS one WHERE false", "SELECT", Some(0), "OK", 53),
        (update, "UPDATE", Some(4), "OK", 29),
        // The same named statement, executed by Bind alone: its text comes from the
        // Parse of the first execution. The ReadyForQuery after it counts nowhere.
        (tellers, "SELECT", Some(5), "OK", 108),
        (
            "SELECT g, md5(g::text) AS h FROM generate_series(1, $1) AS g",
            "SELECT",
            Some(5),
            "OK",
            311,
        ),
        // One row, then the division by zero.
        (
            "SELECT 10 / (2 - g) AS q FROM generate_series(1, 4) AS g",
            "SELECT",
            Some(1),
            "Error",
            116,
        ),
        // Skipped by the server up to the Sync: no result of their own.
        ("SELECT $1::int AS skipped", "SELECT", None, "Error", 0),
        (
            "UPDATE pgbench_tellers SET tbalance = tbalance WHERE tid = $1",
            "UPDATE",
            None,
            "Error",
            0,
        ),
    ]);
    assert_eq!(brief(&ev), want);
    assert_eq!(get(&ev[6], "pgsql.error_code"), "22012");
    for e in &ev[7..] {
        assert_eq!(
            get(e, "error.message"),
            "Not executed: an earlier statement of the same batch failed"
        );
        assert!(get(e, "pgsql").is_null(), "{e}");
    }
    // What psycopg reported agrees.
    let exp = expected("pgsql");
    let client: Vec<Value> = exp["python_pipeline_rows"]["client_output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(client[0]["pipeline_error"], "22012");
    let statuses: Vec<&str> = client[1..7]
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "SELECT 3", "SELECT 2", "SELECT 0", "UPDATE 4", "SELECT 5", "SELECT 5"
        ]
    );
}

#[test]
fn libpq_pipeline_of_prepared_statements() {
    // pgbench -M prepared with \startpipeline: every statement prepared first (Parse
    // + Sync each), then per transaction four Bind/Describe/Execute groups and one
    // Sync, none with a Parse of its own.
    let run = replay_fixture("pgsql/pgbench_pipeline.pcap", &[]);
    let got = brief(&run.events());
    let q = [
        "SELECT g FROM generate_series(1, 3) AS g;",
        "SELECT tid, bid FROM pgbench_tellers WHERE tid <= 2 ORDER BY tid;",
        "UPDATE pgbench_tellers SET tbalance = tbalance WHERE tid <= 4;",
        "SELECT 1 AS one WHERE false;",
    ];
    let mut want = owned(&[
        (q[0], "PREPARE", Some(0), "OK", 5),
        (q[1], "PREPARE", Some(0), "OK", 5),
        (q[2], "PREPARE", Some(0), "OK", 5),
        (q[3], "PREPARE", Some(0), "OK", 5),
    ]);
    for _ in 0..3 {
        want.extend(owned(&[
            (q[0], "SELECT", Some(3), "OK", 82),
            (q[1], "SELECT", Some(2), "OK", 104),
            (q[2], "UPDATE", Some(4), "OK", 24),
            (q[3], "SELECT", Some(0), "OK", 48),
        ]));
    }
    assert_eq!(got, want);
}

#[test]
fn suspended_portal_executes() {
    // asyncpg: a cursor fetched 3 rows at a time (Execute with a row limit), then a
    // cached named statement executed twice.
    let run = replay_fixture("pgsql/portal.pcap", &[]);
    let cursor = "SELECT g, repeat('x', g) AS r FROM generate_series(1, $1::int) AS g";
    let named = "SELECT g FROM generate_series(1, $1::int) AS g";
    let want = owned(&[
        ("BEGIN", "BEGIN", Some(0), "OK", 11),
        // Parse, Describe, Flush, Bind, Sync: ParseComplete, ParameterDescription,
        // RowDescription, BindComplete.
        (cursor, "PREPARE", Some(0), "OK", 68),
        // 3 DataRows + PortalSuspended, twice; then 1 DataRow + `SELECT 1`.
        (cursor, "SELECT", Some(3), "OK", 68),
        (cursor, "SELECT", Some(3), "OK", 77),
        (cursor, "SELECT", Some(1), "OK", 40),
        ("COMMIT", "COMMIT", Some(0), "OK", 12),
        (named, "SELECT", Some(2), "OK", 92),
        (named, "SELECT", Some(4), "OK", 79),
    ]);
    assert_eq!(brief(&run.events()), want);
    // asyncpg asks for binary results: the Executes of the cached statement have no
    // RowDescription; num_fields is the rows' column count, and the values are empty
    // in the text, as Packetbeat leaves binary values.
    let run = replay_fixture("pgsql/portal.pcap", &["protocols.pgsql.send_response=true"]);
    let ev = run.events();
    assert_eq!(get(&ev[7], "pgsql.num_fields"), 1);
    assert_eq!(get(&ev[7], "response"), "\n\n\n\n");
}

#[test]
fn response_text_as_packetbeat_writes_it() {
    let ev = fixture_events(
        "pgsql/response_text.pcap",
        &[
            "protocols.pgsql.send_response=true",
            "protocols.pgsql.max_rows=11",
            "protocols.pgsql.max_row_length=11",
        ],
        1,
    );
    // Column names never cut; each row's values cut at 11 bytes in all (the value
    // that passes the limit is cut, the ones after it dropped); quoting and escaping
    // come after the cut.
    let want = concat!(
        "id,\"note, \"\"quoted\"\"\",pad\n",
        "1,plain,aa\n",
        "2,\"comma, ins\"\n",
        "3,\"say \"\"hi\"\"\",cc\n",
        "4,two\\nlines,d\n",
        "5,\" leading s\"\n",
        "6,,ffffffffff\n",
        "7,,gggggggggg\n",
        "8,cr\\rhere,hhh\n",
        "9,ünïcöd\u{fffd}\n",
        "10,yyyyyyyyy\n",
        "11,yyyyyyyyy\n",
    );
    assert_eq!(get(&ev[0], "response"), want);
    assert_eq!(get(&ev[0], "pgsql.num_rows"), 12);
    assert_eq!(get(&ev[0], "pgsql.num_fields"), 3);
}

#[test]
fn client_reports_agree_with_the_recording() {
    // What the clients printed, against the numbers derived from the pcaps.
    let exp = expected("pgsql");
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
    let ev = fixture_events(
        "pgsql/simple.pcap",
        &[
            "protocols.pgsql.send_request=true",
            "protocols.pgsql.send_response=true",
            "protocols.pgsql.max_rows=2",
        ],
        4,
    );
    assert_eq!(
        get(&ev[0], "request"),
        "SELECT id, name FROM items ORDER BY id"
    );
    assert_eq!(get(&ev[0], "response"), "id,name\n1,a\n2,b\n");
    assert_eq!(get(&ev[1], "response"), "INSERT 0 2");
}

#[test]
fn replay_is_byte_identical() {
    assert_replays_identical(&["pgsql/pgbench_prepared.pcap", "pgsql/long_result.pcap"]);
}

#[test]
fn lost_segment_in_long_result() {
    let frames = read_frames(&fixture("pgsql/long_result.pcap"));
    // Server-to-client data segments; drop one in the middle of the rows.
    let data = frame_indices(
        &frames,
        |f| matches!(tcp_info(f), Some((n, 5432, _)) if n > 1000),
    );
    assert!(data.len() > 100, "{}", data.len());
    let drop = data[data.len() / 2];
    let lost = tcp_info(&frames[drop]).unwrap().0 as u64;
    let kept = without(&frames, drop);
    let path = tmp("pgsql_gap.pcap");
    write_frames(&path, &kept, 65535);
    let run = replay(&path, &[]);
    let ev = run.events();
    assert_eq!(ev.len(), 1, "{ev:#?}\n{}", run.stderr);
    let e = &ev[0];
    let want = &expected("pgsql")["long_result"]["transactions"][0];
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
    let client_data = frame_indices(
        &frames,
        |f| matches!(tcp_info(f), Some((n, _, 5432)) if n > 0),
    );
    // From the fifth client segment on: the named statement executed first was
    // prepared before the pickup, so its text is unknown (method EXECUTE); the
    // unnamed statements after it carry their own Parse.
    let start = client_data[4];
    let path = tmp("pgsql_midstream.pcap");
    write_frames(&path, &frames[start..], 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    let want = &expected("pgsql")["python_extended"]["transactions"];
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
    garble(&mut frames, 0x2545_f491_4f6c_dd1d);
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The frames with every TCP payload longer than `size` split into segments of
/// `size` bytes (Ethernet + IPv4 captures; checksums are not verified by wirebeat).
fn split_segments(frames: &[Frame], size: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    for f in frames {
        let n = match tcp_info(f) {
            Some((n, _, _)) if n > size => n,
            _ => {
                out.push(f.clone());
                continue;
            }
        };
        let ihl = ((f.data[14] & 0x0f) as usize) * 4;
        let tcp = 14 + ihl;
        let thl = ((f.data[tcp + 12] >> 4) as usize) * 4;
        let hdr = tcp + thl;
        let seq = u32::from_be_bytes(f.data[tcp + 4..tcp + 8].try_into().unwrap());
        for (i, chunk) in f.data[hdr..hdr + n].chunks(size).enumerate() {
            let mut g = f.clone();
            g.data = [&f.data[..hdr], chunk].concat();
            let ip_len = (ihl + thl + chunk.len()) as u16;
            g.data[16..18].copy_from_slice(&ip_len.to_be_bytes());
            let s = seq.wrapping_add((i * size) as u32);
            g.data[tcp + 4..tcp + 8].copy_from_slice(&s.to_be_bytes());
            g.orig_len = g.data.len() as u32;
            out.push(g);
        }
    }
    out
}

#[test]
fn pipelines_split_into_tiny_segments_give_the_same_events() {
    // Derived from the recordings: every message cut across several segments.
    for name in ["python_pipeline_rows", "pgbench_pipeline", "portal"] {
        let pcap = fixture(&format!("pgsql/{name}.pcap"));
        let opts = ["protocols.pgsql.send_response=true"];
        let base = replay_with(&pcap, &opts);
        let frames = read_frames(&pcap);
        let split = split_segments(&frames, 3);
        assert!(split.len() > frames.len() * 2, "{name}");
        let path = tmp(&format!("pgsql_split_{name}.pcap"));
        write_frames(&path, &split, 65535);
        let run = replay_with(&path, &opts);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert!(!base.events().is_empty());
        assert_eq!(run.events(), base.events(), "{name}");
        assert_eq!(run.counter("parse_errors"), 0, "{name}: {}", run.stderr);
    }
}

#[test]
fn statement_cache_limit_is_configurable_and_counted() {
    // One statement remembered: the unnamed statements parsed after psycopg's named
    // one push it out, so its second execution (Bind alone) has no query text.
    let pcap = fixture("pgsql/python_pipeline_rows.pcap");
    let run = replay_with(&pcap, &["protocols.pgsql.max_statements=1"]);
    let ev = run.events();
    assert_eq!(ev.len(), 9, "{}", run.stderr);
    assert_eq!(get(&ev[4], "method"), "EXECUTE");
    assert!(get(&ev[4], "query").is_null());
    // Its result is still its own.
    assert_eq!(get(&ev[4], "pgsql.num_rows"), 5);
    assert!(run.counter("statement_evictions") > 0, "{}", run.stderr);
    // With the default every statement is kept.
    let run = replay(&pcap, &[]);
    assert_eq!(run.counter("statement_evictions"), 0, "{}", run.stderr);
    assert_eq!(
        get(&run.events()[4], "query"),
        "SELECT tid FROM pgbench_tellers WHERE tid <= $1 ORDER BY tid"
    );
}
