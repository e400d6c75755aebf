//! Behaviour tests of the MySQL parser, driven through the engine's [`Parser`]
//! contract by a small harness that buffers unconsumed bytes the way the TCP engine
//! does.

use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::config::SqlConfig;
use crate::event::{
    AgentInfo, ConnInfo, EventEncoder, NOTE_LOSS_RESPONSE, NOTE_UNMATCHED_REQUEST,
    NOTE_UNMATCHED_RESPONSE, Status,
};
use crate::protos::testing::{Harness, harness_newtype, test_conn};
use crate::protos::{Dir, Parser, Progress, ProtocolFactory};
use crate::time::Ts;
use parser::MAX_PAYLOAD;

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

fn conn() -> ConnInfo {
    test_conn(3306)
}

fn cfg() -> SqlConfig {
    let mut c = Config::default().protocols.mysql;
    c.common.send_response = true;
    c.common.send_request = true;
    c
}

harness_newtype!(
    /// The shared engine harness around a MySQL parser.
    H,
    MysqlParser
);

impl H {
    fn new(c: SqlConfig) -> H {
        H(Harness::for_protocol(
            protocol,
            |cfg| cfg.protocols.mysql = c,
            conn(),
            |f, _| MysqlParser::new(f.settings.clone(), f.limits),
        ))
    }

    fn json(&self, i: usize) -> Value {
        let enc = EventEncoder::new(AgentInfo::new("wb".into(), vec![]));
        let mut out = Vec::new();
        enc.encode(&conn(), &self.out[i], &mut out);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    /// Greeting, handshake response and auth OK with the given capabilities.
    fn handshake(&mut self, caps: u32) {
        self.feed(S, &greeting(caps), 1);
        self.feed(C, &handshake_response(caps), 2);
        self.feed(S, &pkt(2, &ok(0, 0, 2)), 3);
    }
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |c, k| c.get(k).unwrap_or(&Value::Null))
}

fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

fn lenenc_str(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

const BASE_CAPS: u32 = 0x0000_A20F | parser::CLIENT_PROTOCOL_41;

fn greeting(caps: u32) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"10.11.6-MariaDB\0");
    p.extend_from_slice(&[1, 0, 0, 0]);
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(33);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    pkt(0, &p)
}

fn handshake_response(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&[0, 0, 0, 1, 33]);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(b"wb\0");
    p.push(20);
    p.extend_from_slice(&[7; 20]);
    pkt(1, &p)
}

fn ok(affected: u8, insert: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0, affected, insert];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

fn eof(status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

fn ok_terminator(status: u16) -> Vec<u8> {
    let mut p = ok(0, 0, status);
    p[0] = 0xFE;
    p
}

fn err(code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    p
}

fn column(schema: &str, table: &str, name: &str, ty: u8) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", schema, table, table, name, name] {
        p.extend(lenenc_str(s.as_bytes()));
    }
    p.push(0x0C);
    p.extend_from_slice(&[33, 0, 40, 0, 0, 0, ty, 0, 0, 0, 0, 0]);
    p
}

fn query(q: &str) -> Vec<u8> {
    let mut p = vec![parser::COM_QUERY];
    p.extend_from_slice(q.as_bytes());
    pkt(0, &p)
}

/// A text result set of `rows` rows of (id, name), classic EOFs or not.
fn result_set(rows: usize, deprecate: bool, last_status: u16) -> Vec<u8> {
    let mut v = pkt(1, &[2]);
    let mut seq = 2u8;
    for (name, ty) in [("id", 3u8), ("name", 0xFD)] {
        v.extend(pkt(seq, &column("test", "users", name, ty)));
        seq = seq.wrapping_add(1);
    }
    if !deprecate {
        v.extend(pkt(seq, &eof(2)));
        seq = seq.wrapping_add(1);
    }
    for i in 0..rows {
        let mut r = lenenc_str(i.to_string().as_bytes());
        r.extend(lenenc_str(format!("user{i}").as_bytes()));
        v.extend(pkt(seq, &r));
        seq = seq.wrapping_add(1);
    }
    let end = if deprecate {
        ok_terminator(last_status)
    } else {
        eof(last_status)
    };
    v.extend(pkt(seq, &end));
    v
}

#[test]
fn factory_and_settings() {
    let mut c = Config::default();
    let f = protocol(&c).unwrap();
    assert_eq!(f.name(), "mysql");
    assert_eq!(f.ports(), &[3306, 3307]);
    assert!(f.max_buffer() >= SMALL + 4);
    c.protocols.mysql.common.enabled = false;
    assert!(protocol(&c).is_none());
}

#[test]
fn select_with_and_without_deprecate_eof() {
    for deprecate in [false, true] {
        let mut h = H::new(cfg());
        let caps = BASE_CAPS
            | if deprecate {
                parser::CLIENT_DEPRECATE_EOF
            } else {
                0
            };
        h.handshake(caps);
        assert!(h.out.is_empty());
        let q = query("select id, name from users");
        let rs = result_set(3, deprecate, 2);
        h.feed(C, &q, 1_000);
        h.feed(S, &rs, 5_000);
        assert_eq!(h.out.len(), 1, "deprecate {deprecate}");
        let e = h.json(0);
        assert_eq!(get(&e, "method"), "SELECT");
        assert_eq!(get(&e, "query"), "select id, name from users");
        assert_eq!(get(&e, "request"), "select id, name from users");
        assert_eq!(get(&e, "path"), "test.users");
        assert_eq!(get(&e, "mysql.num_fields"), 2);
        assert_eq!(get(&e, "mysql.num_rows"), 3);
        assert_eq!(get(&e, "status"), "OK");
        assert_eq!(get(&e, "event.duration"), 4_000);
        assert_eq!(get(&e, "source.bytes"), q.len() as u64);
        assert_eq!(get(&e, "destination.bytes"), rs.len() as u64);
        assert_eq!(get(&e, "response"), "id,name\n0,user0\n1,user1\n2,user2\n");
    }
}

#[test]
fn deprecate_eof_is_inferred_without_a_handshake() {
    for deprecate in [false, true] {
        let mut h = H::new(cfg());
        h.feed(C, &query("SELECT 1"), 1);
        h.feed(S, &result_set(0, deprecate, 2), 2);
        h.feed(C, &query("SELECT 2"), 3);
        h.feed(S, &result_set(2, deprecate, 2), 4);
        assert_eq!(h.out.len(), 2);
        assert_eq!(get(&h.json(0), "mysql.num_rows"), 0);
        assert_eq!(get(&h.json(1), "mysql.num_rows"), 2);
        assert_eq!(h.errors, 0);
    }
}

#[test]
fn ok_err_and_simple_commands() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    h.feed(C, &query("INSERT INTO t VALUES (1)"), 1);
    h.feed(S, &pkt(1, &ok(1, 42, 2)), 2);
    h.feed(C, &query("SELECT * FROM nope"), 3);
    h.feed(
        S,
        &pkt(1, &err(1146, "42S02", "Table 'test.nope' doesn't exist")),
        4,
    );
    h.feed(C, &pkt(0, &[0x0E]), 5); // PING
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 6);
    h.feed(C, &pkt(0, b"\x02shop"), 7); // INIT_DB
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 8);
    h.feed(C, &pkt(0, &[0x09]), 9); // STATISTICS
    h.feed(S, &pkt(1, b"Uptime: 5  Threads: 1"), 10);
    h.feed(C, &pkt(0, &[0x19, 1, 0, 0, 0]), 11); // STMT_CLOSE: no answer
    h.feed(C, &pkt(0, &[0x01]), 12); // QUIT: no answer
    h.close();
    let got: Vec<_> = (0..h.out.len())
        .map(|i| {
            let e = h.json(i);
            (
                get(&e, "method").as_str().unwrap().to_string(),
                get(&e, "query").as_str().unwrap().to_string(),
                get(&e, "status").as_str().unwrap().to_string(),
            )
        })
        .collect();
    // PING, INIT_DB, STATISTICS, STMT_CLOSE and QUIT are no transactions.
    let want = [
        ("INSERT", "INSERT INTO t VALUES (1)", "OK"),
        ("SELECT", "SELECT * FROM nope", "Error"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str()), w);
    }
    let e = h.json(0);
    assert_eq!(get(&e, "mysql.affected_rows"), 1);
    assert_eq!(get(&e, "mysql.insert_id"), 42);
    assert_eq!(get(&e, "response"), "");
    let e = h.json(1);
    assert_eq!(get(&e, "mysql.error_code"), 1146);
    assert_eq!(
        get(&e, "mysql.error_message"),
        "42S02: Table 'test.nope' doesn't exist"
    );
    assert_eq!(get(&e, "response"), "");
    assert_eq!(h.counters.unmatched_requests, 0);
    assert_eq!(h.counters.unmatched_responses, 0);
    assert_eq!(h.counters.untracked_commands, 5);
}

#[test]
fn multi_results_are_one_transaction() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    h.feed(C, &query("SELECT 1; UPDATE t SET a = 1; SELECT 2"), 1);
    let mut r = result_set(1, false, 2 | parser::SERVER_MORE_RESULTS_EXISTS);
    let n = r.len();
    r.extend(pkt(7, &ok(3, 0, 2 | parser::SERVER_MORE_RESULTS_EXISTS)));
    r.extend(result_set(2, false, 2));
    h.feed(S, &r[..n], 2);
    assert!(h.out.is_empty(), "more results follow");
    h.feed(S, &r[n..], 3);
    assert_eq!(h.out.len(), 1);
    let e = h.json(0);
    assert_eq!(get(&e, "mysql.num_rows"), 3);
    assert_eq!(get(&e, "mysql.affected_rows"), 3);
    assert_eq!(get(&e, "mysql.num_fields"), 2);
    assert_eq!(
        get(&e, "response"),
        "id,name\n0,user0\nid,name\n0,user0\n1,user1\n"
    );
    // An error ends a multi-statement response.
    h.feed(C, &query("SELECT 1; SELEC 2"), 4);
    let mut r = result_set(1, false, 2 | parser::SERVER_MORE_RESULTS_EXISTS);
    r.extend(pkt(7, &err(1064, "42000", "syntax")));
    h.feed(S, &r, 5);
    assert_eq!(h.out.len(), 2);
    assert_eq!(get(&h.json(1), "status"), "Error");
    assert_eq!(get(&h.json(1), "mysql.num_rows"), 1);
}

fn prepare_ok(id: u32, cols: u16, params: u16, deprecate: bool) -> Vec<u8> {
    let mut p = vec![0];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&cols.to_le_bytes());
    p.extend_from_slice(&params.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    let mut v = pkt(1, &p);
    let mut seq = 2;
    for (n, name) in [(params, "?"), (cols, "c")] {
        for _ in 0..n {
            v.extend(pkt(seq, &column("", "", name, 0xFD)));
            seq += 1;
        }
        if n > 0 && !deprecate {
            v.extend(pkt(seq, &eof(2)));
            seq += 1;
        }
    }
    v
}

fn execute(id: u32, params: &[(u8, &[u8])], bind: bool) -> Vec<u8> {
    let mut p = vec![parser::COM_STMT_EXECUTE];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0]);
    let mut bitmap = vec![0u8; params.len().div_ceil(8)];
    for (k, (ty, _)) in params.iter().enumerate() {
        if *ty == 0x06 {
            bitmap[k / 8] |= 1 << (k % 8);
        }
    }
    p.extend(bitmap);
    p.push(bind as u8);
    if bind {
        for (ty, _) in params {
            p.extend_from_slice(&[*ty, 0]);
        }
    }
    for (_, v) in params {
        p.extend_from_slice(v);
    }
    pkt(0, &p)
}

/// A binary result set of one BIGINT column.
fn binary_rows(values: &[i64]) -> Vec<u8> {
    let mut v = pkt(1, &[1]);
    v.extend(pkt(2, &column("test", "t", "n", 0x08)));
    v.extend(pkt(3, &eof(2)));
    let mut seq = 4;
    for x in values {
        let mut r = vec![0, 0];
        r.extend_from_slice(&x.to_le_bytes());
        v.extend(pkt(seq, &r));
        seq += 1;
    }
    v.extend(pkt(seq, &eof(2)));
    v
}

#[test]
fn prepared_statements_and_their_cache() {
    let mut c = cfg();
    c.statement_timeout = Duration::from_secs(60);
    let mut h = H::new(c);
    h.handshake(BASE_CAPS);
    let mut prep = vec![parser::COM_STMT_PREPARE];
    prep.extend_from_slice(b"SELECT n FROM t WHERE a = ? AND b = ? AND c = ?");
    h.feed(C, &pkt(0, &prep), 1);
    h.feed(S, &prepare_ok(7, 1, 3, false), 2);
    assert_eq!(h.p.statements(), 1);
    let params: &[(u8, &[u8])] = &[(0x08, &5i64.to_le_bytes()), (0xFD, b"\x03bob"), (0x06, b"")];
    h.feed(C, &execute(7, params, true), 3);
    h.feed(S, &binary_rows(&[10, -20]), 4);
    // A second execute without types reuses the bound ones.
    h.feed(
        C,
        &execute(
            7,
            &[(0x08, &6i64.to_le_bytes()), (0xFD, b"\x01x"), (0x06, b"")],
            false,
        ),
        5,
    );
    h.feed(S, &binary_rows(&[]), 6);
    assert_eq!(h.out.len(), 3);
    let e = h.json(0);
    assert_eq!(get(&e, "method"), "PREPARE");
    assert_eq!(
        get(&e, "query"),
        "SELECT n FROM t WHERE a = ? AND b = ? AND c = ?"
    );
    let e = h.json(1);
    assert_eq!(get(&e, "method"), "SELECT");
    assert_eq!(
        get(&e, "query"),
        "SELECT n FROM t WHERE a = ? AND b = ? AND c = ?"
    );
    assert_eq!(get(&e, "params"), "5, 'bob', NULL");
    assert_eq!(get(&e, "mysql.num_rows"), 2);
    assert_eq!(get(&e, "path"), "test.t");
    assert_eq!(get(&e, "response"), "n\n10\n-20\n");
    assert_eq!(get(&h.json(2), "params"), "6, 'x', NULL");
    // Expiry: after statement_timeout of disuse the statement is forgotten.
    h.call(0, |p, ctx| p.expire(Ts(6 + 61_000_000_000), ctx));
    assert_eq!(h.p.statements(), 0);
    h.feed(C, &execute(7, &[], false), 62_000_000_000);
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 62_000_000_001);
    let e = h.json(3);
    assert_eq!(get(&e, "method"), "EXECUTE");
    assert!(get(&e, "query").is_null());
    // Close forgets it too.
    h.feed(C, &pkt(0, &prep), 62_000_000_002);
    h.feed(S, &prepare_ok(8, 0, 3, false), 62_000_000_003);
    assert_eq!(h.p.statements(), 1);
    h.feed(
        C,
        &pkt(0, &[parser::COM_STMT_CLOSE, 8, 0, 0, 0]),
        62_000_000_004,
    );
    assert_eq!(h.p.statements(), 0);
    assert_eq!(h.out.len(), 5);
}

#[test]
fn prepare_without_eof_packets() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS | parser::CLIENT_DEPRECATE_EOF);
    let mut prep = vec![parser::COM_STMT_PREPARE];
    prep.extend_from_slice(b"SELECT ?");
    h.feed(C, &pkt(0, &prep), 1);
    h.feed(S, &prepare_ok(1, 1, 1, true), 2);
    assert_eq!(h.out.len(), 1);
    // Unknown mode (mid-stream): the prepare ends when the next answer starts.
    let mut h = H::new(cfg());
    h.feed(C, &pkt(0, &prep), 1);
    h.feed(S, &prepare_ok(1, 1, 1, true), 2);
    h.feed(C, &query("SELECT 3"), 3);
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 4);
    assert_eq!(h.out.len(), 2, "{:?}", h.errors);
    assert_eq!(get(&h.json(0), "method"), "PREPARE");
    assert_eq!(get(&h.json(1), "method"), "SELECT");
}

/// Client and server bytes of a short session, and where the server's
/// authentication OK ends.
fn conversation() -> (Vec<u8>, Vec<u8>, usize) {
    let mut c = Vec::new();
    let mut s = greeting(BASE_CAPS);
    s.extend(pkt(2, &ok(0, 0, 2)));
    let auth = s.len();
    c.extend(query("SELECT id, name FROM users"));
    s.extend(result_set(20, false, 2));
    c.extend(query("UPDATE users SET x = 1"));
    s.extend(pkt(1, &ok(4, 0, 2)));
    c.extend(query("SELECT nope"));
    s.extend(pkt(1, &err(1054, "42S22", "Unknown column")));
    (c, s, auth)
}

#[test]
fn byte_at_a_time_equals_one_shot() {
    let (c, s, auth) = conversation();
    let greet = greeting(BASE_CAPS).len();
    let hs = handshake_response(BASE_CAPS);
    let mut one = H::new(cfg());
    one.feed(S, &s[..greet], 1);
    one.feed(C, &hs, 1);
    one.feed(S, &s[greet..auth], 1);
    // Requests are pipelined: all sent before any answer.
    one.feed(C, &c, 2);
    one.feed(S, &s[auth..], 3);
    let mut bytes = H::new(cfg());
    bytes.chunked(S, &s[..greet], 1, 1);
    bytes.chunked(C, &hs, 1, 1);
    bytes.chunked(S, &s[greet..auth], 1, 1);
    bytes.chunked(C, &c, 1, 2);
    bytes.chunked(S, &s[auth..], 1, 3);
    assert_eq!(one.out.len(), 3);
    assert_eq!(bytes.out.len(), 3);
    for i in 0..3 {
        assert_eq!(one.json(i), bytes.json(i));
    }
    assert_eq!(get(&one.json(0), "mysql.num_rows"), 20);
    assert_eq!(get(&one.json(1), "mysql.affected_rows"), 4);
    assert_eq!(get(&one.json(2), "status"), "Error");
}

#[test]
fn hundred_thousand_rows_stream_in_bounded_memory() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    h.feed(C, &query("SELECT * FROM big"), 1);
    let rs = result_set(100_000, false, 2);
    assert!(rs.len() > 1_500_000);
    let mut max_state = 0;
    for c in rs.chunks(1448) {
        h.feed(S, c, 2);
        max_state = max_state.max(h.p.retained());
    }
    assert_eq!(h.out.len(), 1);
    assert_eq!(get(&h.json(0), "mysql.num_rows"), 100_000);
    assert_eq!(get(&h.json(0), "destination.bytes"), rs.len() as u64);
    assert!(max_state < 4096, "parser state grew to {max_state}");
    assert!(h.max_held < 2048, "engine tail grew to {}", h.max_held);
}

#[test]
fn error_before_a_large_query_has_arrived_pairs_with_it() {
    // A packet over max_allowed_packet: the server reads its header, answers ERR
    // 1153 and closes while the rest of the query is still on its way.
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    let mut q = String::from("INSERT INTO t VALUES ('");
    q.push_str(&"x".repeat(200_000));
    q.push_str("')");
    let packet = query(&q);
    h.feed(C, &packet[..SMALL + 1000], 1);
    let e1153 = pkt(
        1,
        &err(
            1153,
            "08S01",
            "Got a packet bigger than 'max_allowed_packet' bytes",
        ),
    );
    h.feed(S, &e1153, 2);
    assert!(h.out.is_empty(), "published before the request ended");
    h.feed(C, &packet[SMALL + 1000..], 3);
    assert_eq!(h.out.len(), 1);
    // The connection goes on (a server that does not close): no shift.
    h.feed(C, &query("SELECT 1"), 4);
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 5);
    // Answered early again, and the server closes before the rest arrives.
    h.feed(C, &packet[..SMALL + 1000], 6);
    h.feed(S, &e1153, 7);
    h.close();
    assert_eq!(h.out.len(), 3);
    for (i, (method, end)) in [("INSERT", 2), ("SELECT", 5), ("INSERT", 7)]
        .into_iter()
        .enumerate()
    {
        let e = h.json(i);
        assert_eq!(get(&e, "method"), method, "{i}");
        assert_eq!(h.out[i].end, Some(Ts(end)), "{i}");
        assert!(get(&e, "error.message").is_null(), "{i}: {e}");
    }
    let e = h.json(0);
    assert_eq!(get(&e, "mysql.error_code"), 1153);
    assert_eq!(get(&e, "status"), "Error");
    assert_eq!(get(&e, "source.bytes"), packet.len() as u64);
    assert_eq!(get(&h.json(2), "mysql.error_code"), 1153);
    assert_eq!(
        h.counters.unmatched_requests + h.counters.unmatched_responses,
        0
    );
}

#[test]
fn huge_single_row_streams_past() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    h.feed(C, &query("SELECT blob FROM b"), 1);
    let mut rs = pkt(1, &[1]);
    rs.extend(pkt(2, &column("test", "b", "blob", 0xFC)));
    rs.extend(pkt(3, &eof(2)));
    // One 16 MiB - 1 packet (continued) and a 4 MiB tail: a 20 MiB value.
    let total = MAX_PAYLOAD + 4 * 1024 * 1024;
    let mut row = vec![0xFD];
    row.extend_from_slice(&((total - 4) as u32).to_le_bytes()[..3]);
    row.resize(total, b'x');
    rs.extend(pkt(4, &row[..MAX_PAYLOAD]));
    rs.extend(pkt(5, &row[MAX_PAYLOAD..]));
    rs.extend(pkt(6, &eof(2)));
    h.chunked(S, &rs, 65_536, 2);
    assert_eq!(h.out.len(), 1);
    let e = h.json(0);
    assert_eq!(get(&e, "mysql.num_rows"), 1);
    assert_eq!(get(&e, "destination.bytes"), rs.len() as u64);
    assert_eq!(get(&e, "response").as_str().unwrap().len(), 5 + 1024 + 1);
    assert!(h.max_held <= SMALL + 4);
}

#[test]
fn gap_in_rows_keeps_counting_with_the_loss_note() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    h.feed(C, &query("SELECT * FROM users"), 1);
    let rs = result_set(1000, false, 2);
    let (a, rest) = rs.split_at(5000);
    let (_lost, b) = rest.split_at(3001);
    h.feed(S, a, 2);
    h.gap(S, 3001, 3);
    h.chunked(S, b, 1448, 4);
    assert_eq!(h.out.len(), 1);
    let e = h.json(0);
    assert_eq!(get(&e, "status"), "OK");
    assert_eq!(get(&e, "error.message"), NOTE_LOSS_RESPONSE);
    let rows = get(&e, "mysql.num_rows").as_u64().unwrap();
    assert!((800..1000).contains(&rows), "{rows}");
    assert_eq!(get(&e, "destination.bytes"), rs.len() as u64);
    // The connection goes on normally.
    h.feed(C, &query("SELECT 1"), 5);
    h.feed(S, &result_set(1, false, 2), 6);
    assert_eq!(h.out.len(), 2);
    assert!(get(&h.json(1), "error.message").is_null());
}

#[test]
fn gap_at_request_start_resynchronises() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    let q = query("SELECT a_long_statement_cut_by_the_hole FROM t");
    h.feed(C, &q[..10], 1);
    h.gap(C, (q.len() - 10) as u64, 2);
    // The tail of something unknown, then a real command at a segment start.
    h.feed(C, b"\x07garbage", 3);
    h.feed(C, &query("SELECT 2"), 4);
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 5);
    let methods: Vec<_> = (0..h.out.len())
        .map(|i| get(&h.json(i), "query").clone())
        .collect();
    assert!(methods.contains(&Value::from("SELECT 2")), "{methods:?}");
}

#[test]
fn gap_where_a_response_starts_publishes_its_request() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    h.feed(C, &query("SELECT 1"), 1);
    h.gap(S, 100, 2);
    assert_eq!(h.out.len(), 1);
    assert_eq!(get(&h.json(0), "error.message"), NOTE_LOSS_RESPONSE);
    // The tail of the lost answer is skipped; the next one pairs.
    h.feed(S, &pkt(9, b"\x03abc"), 3);
    h.feed(C, &query("SELECT 2"), 4);
    h.feed(S, &pkt(1, &ok(0, 0, 2)), 5);
    assert_eq!(h.out.len(), 2);
    assert_eq!(get(&h.json(1), "query"), "SELECT 2");
    assert_eq!(get(&h.json(1), "status"), "OK");
}

#[test]
fn unmatched_and_timeout() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    // An answer with nothing asked (picked up mid-connection).
    h.feed(S, &pkt(1, &ok(2, 0, 2)), 1);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_RESPONSE.to_string()]);
    assert_eq!(h.out[0].status, Status::Error);
    h.feed(C, &query("SELECT SLEEP(100)"), 1_000_000_000);
    h.call(0, |p, ctx| p.expire(Ts(5_000_000_000), ctx));
    assert_eq!(h.out.len(), 1);
    h.call(0, |p, ctx| p.expire(Ts(11_000_000_000), ctx));
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[1].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
    h.feed(C, &query("SELECT 1"), 12_000_000_000);
    h.close();
    assert_eq!(h.out.len(), 3);
    assert_eq!(h.counters.unmatched_requests, 2);
}

#[test]
fn tls_and_compression_stop_the_connection() {
    let mut h = H::new(cfg());
    h.feed(S, &greeting(BASE_CAPS | parser::CLIENT_SSL), 1);
    let mut ssl = (BASE_CAPS | parser::CLIENT_SSL).to_le_bytes().to_vec();
    ssl.extend_from_slice(&[0; 28]);
    assert_eq!(h.feed(C, &pkt(1, &ssl), 2), Progress::Stop);
    assert!(h.out.is_empty());

    let mut h = H::new(cfg());
    let caps = BASE_CAPS | parser::CLIENT_COMPRESS;
    h.feed(S, &greeting(caps), 1);
    h.feed(C, &handshake_response(caps), 2);
    assert_eq!(h.feed(S, &pkt(2, &ok(0, 0, 2)), 3), Progress::Stop);
    assert!(h.out.is_empty());

    // Compressed framing seen mid-connection: one uncompressed packet inside.
    let mut h = H::new(cfg());
    let inner = query("SELECT 1");
    let mut frame = vec![inner.len() as u8, 0, 0, 0, 0, 0, 0];
    frame.extend(inner);
    assert_eq!(h.feed(C, &frame, 1), Progress::Stop);
}

#[test]
fn random_and_truncated_input_never_panics() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (c, s, auth) = conversation();
    for round in 0..12_000 {
        let mut h = H::new(cfg());
        let r = next();
        match round % 3 {
            0 => {
                // Random bytes with plausible headers now and then.
                for _ in 0..4 {
                    let n = (next() % 64) as usize;
                    let mut d: Vec<u8> = (0..n).map(|_| next() as u8).collect();
                    if next() % 2 == 0 && d.len() > 4 {
                        d[0] = (n - 4) as u8;
                        d[1] = 0;
                        d[2] = 0;
                        d[3] = (next() % 3) as u8;
                    }
                    let dir = if next() % 2 == 0 { C } else { S };
                    h.feed(dir, &d, next() % 1000);
                }
            }
            1 => {
                // A real conversation cut short and split at random points.
                let cut_c = (r as usize) % (c.len() + 1);
                let cut_s = (next() as usize) % (s.len() + 1);
                let size = 1 + (next() % 97) as usize;
                h.chunked(S, &s[..cut_s.min(auth)], size, 1);
                h.chunked(C, &c[..cut_c], size, 2);
                h.chunked(S, &s[cut_s.min(auth)..cut_s], size, 3);
            }
            _ => {
                // A real conversation with random bytes flipped and a gap.
                let mut s2 = s.clone();
                let mut c2 = c.clone();
                for _ in 0..3 {
                    let i = (next() as usize) % s2.len();
                    s2[i] = next() as u8;
                    let i = (next() as usize) % c2.len();
                    c2[i] = next() as u8;
                }
                h.feed(S, &s2[..auth], 1);
                h.feed(C, &c2, 2);
                let g = auth + (next() as usize) % (s2.len() - auth);
                h.feed(S, &s2[auth..g], 3);
                h.gap(S, next() % 50, 4);
                h.feed(S, &s2[g..], 5);
            }
        }
        h.call(u64::MAX / 2, |p, ctx| p.expire(Ts(u64::MAX / 2), ctx));
        h.close();
        assert!(h.p.retained() < 1 << 20);
    }
}

/// A classic-EOF text result set with the given (schema, table, name) columns.
fn custom_result(cols: &[(&str, &str, &str)], rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
    let mut v = pkt(1, &[cols.len() as u8]);
    let mut seq = 2u8;
    let mut next = |v: &mut Vec<u8>, p: &[u8]| {
        v.extend(pkt(seq, p));
        seq = seq.wrapping_add(1);
    };
    for (schema, table, name) in cols {
        next(&mut v, &column(schema, table, name, 0xFD));
    }
    next(&mut v, &eof(2));
    for r in rows {
        let mut p = Vec::new();
        for f in r {
            match f {
                Some(b) => p.extend(lenenc_str(b)),
                None => p.push(0xFB),
            }
        }
        next(&mut v, &p);
    }
    next(&mut v, &eof(2));
    v
}

fn command(cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![cmd];
    p.extend_from_slice(body);
    pkt(0, &p)
}

#[test]
fn commands_that_are_no_transactions_are_consumed_in_step() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    // Pipelined: every answer is consumed in order, only the statement is published.
    let mut c = command(0x0E, b""); // PING
    c.extend(command(0x04, b"users\0")); // FIELD_LIST
    c.extend(command(0x09, b"")); // STATISTICS
    c.extend(command(0x1B, &[1, 0])); // SET_OPTION
    c.extend(command(0x02, b"shop")); // INIT_DB
    c.extend(query("SELECT id FROM users"));
    c.extend(command(0x18, &[7, 0, 0, 0, 0, 0, b'a'])); // STMT_SEND_LONG_DATA: no answer
    c.extend(command(0x1A, &7u32.to_le_bytes())); // STMT_RESET
    c.extend(command(0x1C, &[7, 0, 0, 0, 2, 0, 0, 0])); // STMT_FETCH
    c.extend(command(0x1F, b"")); // RESET_CONNECTION
    h.feed(C, &c, 1);
    let mut s = pkt(1, &ok(0, 0, 2));
    s.extend(pkt(1, &column("test", "users", "id", 3)));
    s.extend(pkt(2, &column("test", "users", "name", 0xFD)));
    s.extend(pkt(3, &eof(2)));
    s.extend(pkt(1, b"Uptime: 5  Threads: 1  Questions: 9"));
    s.extend(pkt(1, &eof(2)));
    s.extend(pkt(1, &ok(0, 0, 2)));
    s.extend(custom_result(
        &[("test", "users", "id")],
        &[vec![Some(b"1")], vec![Some(b"2")]],
    ));
    s.extend(pkt(1, &ok(0, 0, 2)));
    // Two binary rows of a cursor (header 0x00, NULL bitmap, INT), then its end.
    s.extend(pkt(1, &[0, 0, 5, 0, 0, 0]));
    s.extend(pkt(2, &[0, 0, 6, 0, 0, 0]));
    s.extend(pkt(3, &eof(2 | 0x80)));
    s.extend(pkt(1, &ok(0, 0, 2)));
    h.feed(S, &s, 2);
    // COM_CHANGE_USER: an authentication exchange, then commands again.
    h.feed(C, &command(0x11, b"wb\0\0test\0"), 3);
    let mut switch = vec![0xFE];
    switch.extend_from_slice(b"mysql_native_password\0abcdefghijklmnopqrst\0");
    h.feed(S, &pkt(1, &switch), 4);
    h.feed(C, &pkt(2, &[9; 20]), 5);
    h.feed(S, &pkt(3, &ok(0, 0, 2)), 6);
    h.feed(C, &query("SELECT 2"), 7);
    h.feed(S, &custom_result(&[("", "", "2")], &[vec![Some(b"2")]]), 8);
    h.feed(C, &command(0x01, b""), 9); // QUIT
    h.close();
    assert_eq!(h.out.len(), 2);
    let e = h.json(0);
    assert_eq!(get(&e, "query"), "SELECT id FROM users");
    assert_eq!(get(&e, "mysql.num_rows"), 2);
    assert_eq!(get(&e, "response"), "id\n1\n2\n");
    assert_eq!(get(&e, "event.duration"), 1);
    let e = h.json(1);
    assert_eq!(get(&e, "query"), "SELECT 2");
    assert_eq!(get(&e, "path"), ".");
    assert_eq!(get(&e, "response"), "2\n2\n");
    assert_eq!(h.counters.unmatched_requests, 0);
    assert_eq!(h.counters.unmatched_responses, 0);
    assert_eq!(h.counters.untracked_commands, 11);
    assert_eq!(h.errors, 0);
}

#[test]
fn method_query_and_request_follow_packetbeat() {
    let mut h = H::new(cfg());
    h.handshake(BASE_CAPS);
    for q in [
        " \r\n\tselect\tid FROM users ;\n",
        "/* hint */ SELECT 1",
        "(SELECT 1) UNION (SELECT 2)",
        "\t\r\n",
    ] {
        h.feed(C, &query(q), 1);
        h.feed(S, &pkt(1, &ok(0, 0, 2)), 2);
    }
    let got: Vec<_> = (0..h.out.len())
        .map(|i| {
            let e = h.json(i);
            (
                get(&e, "method").as_str().unwrap().to_string(),
                get(&e, "query").as_str().unwrap().to_string(),
                get(&e, "request").as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (
            "SELECT",
            "select\tid FROM users ;",
            " \r\n\tselect\tid FROM users ;\n",
        ),
        ("/*", "/* hint */ SELECT 1", "/* hint */ SELECT 1"),
        (
            "(SELECT",
            "(SELECT 1) UNION (SELECT 2)",
            "(SELECT 1) UNION (SELECT 2)",
        ),
        ("", "", "\t\r\n"),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str()), w);
    }
}

#[test]
fn path_is_schema_and_table_of_every_column_as_packetbeat_joins_them() {
    type Columns<'a> = &'a [(&'a str, &'a str, &'a str)];
    let cases: [(Columns, Option<&str>); 5] = [
        (
            &[("test", "u", "id"), ("test", "e", "kind")],
            Some("test.u, test.e"),
        ),
        (
            &[("test", "users", "id"), ("", "", "1")],
            Some("test.users"),
        ),
        (
            &[("", "", "1"), ("test", "users", "id")],
            Some("., test.users"),
        ),
        (
            &[("test", "users", "id"), ("test", "user", "x")],
            Some("test.users"),
        ),
        (&[("", "", "DATABASE()")], Some(".")),
    ];
    for (cols, want) in cases {
        let mut h = H::new(cfg());
        h.handshake(BASE_CAPS);
        h.feed(C, &query("SELECT"), 1);
        h.feed(S, &custom_result(cols, &[]), 2);
        assert_eq!(h.out.len(), 1);
        assert_eq!(get(&h.json(0), "path").as_str(), want, "{cols:?}");
    }
}

#[test]
fn response_text_is_packetbeats_csv_with_its_cuts() {
    let cols = [
        ("test", "u", "id"),
        ("test", "u", "na\nme"),
        ("", "", "x,y"),
    ];
    let rows = vec![
        vec![Some(&b"1"[..]), Some(b"a,b"), None],
        vec![Some(b"2"), Some(b"say \"hi\""), Some(b" lead")],
        vec![Some(b"3"), Some(b"l1\nl2\r"), Some(b"")],
        vec![Some(b"4"), Some("h\u{e9}llo".as_bytes()), Some(b"\\.")],
    ];
    let run = |max_rows: usize, max_row_length: usize| {
        let mut c = cfg();
        c.max_rows = max_rows;
        c.max_row_length = max_row_length;
        let mut h = H::new(c);
        h.handshake(BASE_CAPS);
        h.feed(C, &query("SELECT id, name, 'x,y' FROM users u"), 1);
        h.feed(S, &custom_result(&cols, &rows), 2);
        assert_eq!(h.out.len(), 1);
        let e = h.json(0);
        assert_eq!(get(&e, "mysql.num_rows"), 4);
        assert_eq!(get(&e, "path"), "test.u");
        get(&e, "response").as_str().unwrap().to_string()
    };
    assert_eq!(
        run(10, 1024),
        "id,na\\nme,\"x,y\"\n1,\"a,b\",NULL\n2,\"say \"\"hi\"\"\",\" lead\"\n3,l1\\nl2\\r,\n4,h\u{e9}llo,\"\\.\"\n"
    );
    // Values cut so their bytes add up to max_row_length; later ones left out.
    assert_eq!(run(2, 5), "id,na\\nme,\"x,y\"\n1,\"a,b\",N\n2,say \n");
    // A cut inside a character leaves U+FFFD for each of its bytes kept.
    assert_eq!(
        run(10, 3),
        "id,na\\nme,\"x,y\"\n1,\"a,\"\n2,sa\n3,l1\n4,h\u{FFFD}\n"
    );
    // Packetbeat keeps one row even with max_rows 0; max_row_length 0 empties rows.
    assert_eq!(run(0, 1024), "id,na\\nme,\"x,y\"\n1,\"a,b\",NULL\n");
    assert_eq!(run(2, 0), "id,na\\nme,\"x,y\"\n\n\n");
}

#[test]
fn response_text_leaves_out_rows_past_the_first_100_kb() {
    let mut c = cfg();
    c.max_rows = 1_000_000;
    let mut h = H::new(c);
    h.handshake(BASE_CAPS);
    h.feed(C, &query("SELECT v FROM t"), 1);
    let value = [b'x'; 99];
    let rows: Vec<Vec<Option<&[u8]>>> = (0..2000).map(|_| vec![Some(&value[..])]).collect();
    let rs = custom_result(&[("test", "t", "v")], &rows);
    // Each row packet is 4 + 1 + 99 bytes; a row is kept while the one before it
    // ended within the first 100 KB of the response.
    let head = rs.len() - 2000 * 104 - 9;
    let mut kept = 0;
    let mut end = head;
    while kept < 2000 && (kept == 0 || end <= 100 * 1024) {
        kept += 1;
        end += 104;
    }
    h.chunked(S, &rs, 1448, 2);
    assert_eq!(h.out.len(), 1);
    let e = h.json(0);
    assert_eq!(get(&e, "mysql.num_rows"), 2000);
    let text = get(&e, "response").as_str().unwrap().to_string();
    assert_eq!(text.lines().count(), 1 + kept, "{kept} rows of 2000");
    assert!(kept > 900 && kept < 1000, "{kept}");
}
