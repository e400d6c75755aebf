//! Behaviour tests of the PostgreSQL parser, driven through the engine's [`Parser`]
//! contract by a harness that buffers unconsumed bytes the way the TCP engine does.

use crate::protos::testing::XorShift;
use serde_json::Value;

use super::*;
use crate::config::SqlConfig;
use crate::event::ConnInfo;
use crate::event::{
    AgentInfo, EventEncoder, NOTE_LOSS_REQUEST, NOTE_LOSS_RESPONSE, NOTE_UNMATCHED_RESPONSE,
    Status, Transaction,
};
use crate::protos::testing::{Harness, harness_newtype, test_conn};
use crate::protos::{Dir, Parser, Progress, ProtocolFactory};
use crate::time::Ts;
use transaction::NOTE_SKIPPED;

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

fn conn() -> ConnInfo {
    test_conn(5432)
}

harness_newtype!(
    /// The shared engine harness around a PostgreSQL parser.
    H,
    Box<dyn Parser>
);

impl H {
    fn new(cfg: SqlConfig) -> H {
        H(Harness::for_protocol(
            protocol,
            |c| c.protocols.pgsql = cfg,
            conn(),
            |f, conn| f.new_parser(conn),
        ))
    }

    fn def() -> H {
        H::new(SqlConfig::default_pgsql())
    }

    fn json(&self, i: usize) -> Value {
        encode(&self.out[i])
    }

    fn jsons(&self) -> Vec<Value> {
        (0..self.out.len()).map(|i| self.json(i)).collect()
    }
}

impl SqlConfig {
    fn default_pgsql() -> SqlConfig {
        Config::default().protocols.pgsql
    }
}

fn encode(tx: &Transaction) -> Value {
    let enc = EventEncoder::new(AgentInfo::new("wb".into(), vec![]));
    let mut out = Vec::new();
    enc.encode(&conn(), tx, &mut out);
    serde_json::from_slice(&out).expect("valid JSON")
}

// ------------------------------------------------------------------ message builders

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cs(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn startup() -> Vec<u8> {
    let mut body = PROTO.to_be_bytes().to_vec();
    body.extend(cs("user"));
    body.extend(cs("postgres"));
    body.push(0);
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend(body);
    v
}

const PROTO: u32 = parser::PROTO_V3;

fn ssl_request() -> Vec<u8> {
    let mut v = 8u32.to_be_bytes().to_vec();
    v.extend_from_slice(&parser::SSL_REQUEST.to_be_bytes());
    v
}

/// Authentication (MD5 request, then OK), parameters, key data, ReadyForQuery.
fn login_reply() -> Vec<u8> {
    let mut v = msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]);
    v.extend(msg(b'R', &[0, 0, 0, 0]));
    v.extend(msg(b'S', &[cs("server_version"), cs("15.18")].concat()));
    v.extend(msg(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    v.extend(ready());
    v
}

fn password() -> Vec<u8> {
    msg(b'p', &cs("md5abcdef"))
}

fn query(q: &str) -> Vec<u8> {
    msg(b'Q', &cs(q))
}

fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

fn row_desc(names: &[&str]) -> Vec<u8> {
    let mut b = (names.len() as i16).to_be_bytes().to_vec();
    for n in names {
        b.extend(cs(n));
        b.extend_from_slice(&[0; 18]);
    }
    msg(b'T', &b)
}

fn data_row(vals: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = (vals.len() as i16).to_be_bytes().to_vec();
    for v in vals {
        match v {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &b)
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cs(tag))
}

fn error(sev: &str, code: &str, m: &str) -> Vec<u8> {
    let b = [
        b"S".to_vec(),
        cs(sev),
        b"V".to_vec(),
        cs(sev),
        b"C".to_vec(),
        cs(code),
        b"M".to_vec(),
        cs(m),
        vec![0],
    ]
    .concat();
    msg(b'E', &b)
}

fn notice(m: &str) -> Vec<u8> {
    let b = [b"SNOTICE\0VNOTICE\0C00000\0M".to_vec(), cs(m), vec![0]].concat();
    msg(b'N', &b)
}

fn notify(ch: &str, payload: &str) -> Vec<u8> {
    msg(b'A', &[vec![0, 0, 0, 9], cs(ch), cs(payload)].concat())
}

fn parse(name: &str, q: &str) -> Vec<u8> {
    msg(b'P', &[cs(name), cs(q), vec![0, 0]].concat())
}

fn bind(portal: &str, stmt: &str, params: &[Option<&[u8]>], binary: bool) -> Vec<u8> {
    let mut b = [cs(portal), cs(stmt)].concat();
    if binary {
        b.extend_from_slice(&[0, 1, 0, 1]);
    } else {
        b.extend_from_slice(&[0, 0]);
    }
    b.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&[0, 0]);
    msg(b'B', &b)
}

fn describe_portal() -> Vec<u8> {
    msg(b'D', &[b"P".to_vec(), cs("")].concat())
}

fn execute() -> Vec<u8> {
    msg(b'E', &[cs(""), vec![0, 0, 0, 0]].concat())
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

fn short(ty: u8) -> Vec<u8> {
    msg(ty, b"")
}

/// Login through trust/MD5 so the parser is in the query phase.
fn logged_in() -> H {
    let mut h = H::def();
    h.feed(C, &startup(), 1);
    h.feed(S, &msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]), 2);
    h.feed(C, &password(), 3);
    h.feed(S, &login_reply()[13..], 4);
    assert!(h.out.is_empty());
    h
}

fn select3() -> (Vec<u8>, Vec<u8>) {
    let q = query("SELECT id, name FROM t");
    let r = [
        row_desc(&["id", "name"]),
        data_row(&[Some(b"1"), Some(b"a")]),
        data_row(&[Some(b"2"), None]),
        data_row(&[Some(b"3"), Some(b"c")]),
        complete("SELECT 3"),
        ready(),
    ]
    .concat();
    (q, r)
}

// ------------------------------------------------------------------ tests

#[test]
fn factory_respects_enabled_and_ports() {
    let mut c = Config::default();
    assert!(c.protocols.pgsql.common.ports.contains(&5432));
    c.protocols.pgsql.common.ports = vec![6543];
    let f = protocol(&c).unwrap();
    assert_eq!(f.name(), "pgsql");
    assert_eq!(f.ports(), &[6543]);
    assert!(f.max_buffer() > parser::WHOLE_LIMIT + parser::PREFIX);
    c.protocols.pgsql.common.enabled = false;
    assert!(protocol(&c).is_none());
    assert!(crate::protos::REGISTRY.iter().any(|(n, _)| *n == "pgsql"));
}

#[test]
fn simple_select() {
    let mut h = logged_in();
    let (q, r) = select3();
    h.feed(C, &q, 1_000);
    h.feed(S, &r, 5_000);
    assert_eq!(h.out.len(), 1);
    let t = &h.out[0];
    assert_eq!(t.kind, "pgsql");
    assert_eq!((t.start, t.end), (Ts(1_000), Some(Ts(5_000))));
    assert_eq!(t.status, Status::Ok);
    assert_eq!(t.method.as_deref(), Some("SELECT"));
    assert_eq!(t.query.as_deref(), Some("SELECT id, name FROM t"));
    assert_eq!(t.request_bytes, q.len() as u64);
    // ReadyForQuery counts in no transaction.
    assert_eq!(t.response_bytes, r.len() as u64 - 6);
    assert!(t.request.is_none() && t.response.is_none() && t.notes.is_empty());
    let j = h.json(0);
    assert_eq!(j["pgsql"]["num_fields"], 2);
    assert_eq!(j["pgsql"]["num_rows"], 3);
    assert!(j["pgsql"].get("error_code").is_none());
    assert_eq!(j["type"], "pgsql");
    assert_eq!(j["event"]["duration"], 4_000);
}

#[test]
fn send_request_and_response_text() {
    let mut cfg = SqlConfig::default_pgsql();
    cfg.common.send_request = true;
    cfg.common.send_response = true;
    cfg.max_rows = 2;
    cfg.max_row_length = 3;
    let mut h = H::new(cfg);
    let (q, r) = select3();
    h.feed(C, &q, 1);
    h.feed(S, &r, 2);
    let t = &h.out[0];
    assert_eq!(t.request.as_deref(), Some("SELECT id, name FROM t"));
    // Packetbeat's text: every line ends with a newline, the column names are not
    // cut, row values count against max_row_length (separators do not), NULL is
    // empty.
    assert_eq!(t.response.as_deref(), Some("id,name\n1,a\n2,\n"));
    let j = h.json(0);
    assert_eq!(j["pgsql"]["num_rows"], 3);
}

#[test]
fn dml_errors_and_empty_query() {
    let mut h = logged_in();
    h.feed(C, &query("insert into t values (1), (2)"), 10);
    h.feed(S, &[complete("INSERT 0 2"), ready()].concat(), 11);
    h.feed(C, &query("SELECT * FROM nope"), 12);
    let err = error("ERROR", "42P01", "relation \"nope\" does not exist");
    h.feed(S, &[err.clone(), ready()].concat(), 13);
    h.feed(C, &query("  "), 14);
    h.feed(S, &[short(b'I'), ready()].concat(), 15);
    assert_eq!(h.out.len(), 3);
    let j = h.jsons();
    assert_eq!(j[0]["method"], "INSERT");
    assert_eq!(j[0]["pgsql"]["num_rows"], 2);
    assert_eq!(j[0]["status"], "OK");
    assert_eq!(j[1]["status"], "Error");
    assert_eq!(j[1]["pgsql"]["error_code"], "42P01");
    assert_eq!(j[1]["pgsql"]["error_severity"], "ERROR");
    assert_eq!(
        j[1]["pgsql"]["error_message"],
        "relation \"nope\" does not exist"
    );
    assert_eq!(j[1]["destination"]["bytes"], err.len());
    assert!(j[1].get("error").is_none());
    assert_eq!(j[2]["status"], "OK");
    assert!(j[2].get("method").is_none());
    assert_eq!(j[2]["query"], "  ");
}

#[test]
fn multi_statement_query() {
    let mut h = logged_in();
    let q = query("SELECT 1; SELECT 2;SELECT 3 ;");
    h.feed(C, &q, 10);
    let one = |v: &'static [u8]| {
        [
            row_desc(&["?column?"]),
            data_row(&[Some(v)]),
            complete("SELECT 1"),
        ]
        .concat()
    };
    let (r1, r2, r3) = (one(b"1"), one(b"2"), one(b"3"));
    h.feed(
        S,
        &[r1.clone(), r2.clone(), r3.clone(), ready()].concat(),
        20,
    );
    let j = h.jsons();
    assert_eq!(j.len(), 3);
    let queries: Vec<_> = j.iter().map(|e| e["query"].as_str().unwrap()).collect();
    assert_eq!(queries, ["SELECT 1", "SELECT 2", "SELECT 3"]);
    // The Query message counts once, in the first statement.
    assert_eq!(j[0]["source"]["bytes"], q.len());
    assert_eq!(j[1]["source"]["bytes"], 0);
    assert_eq!(j[0]["destination"]["bytes"], r1.len());
    assert_eq!(j[1]["destination"]["bytes"], r2.len());
    assert_eq!(j[2]["destination"]["bytes"], r3.len());
    assert!(
        j.iter()
            .all(|e| e["status"] == "OK" && e["pgsql"]["num_rows"] == 1)
    );
}

#[test]
fn error_in_multi_statement_skips_the_rest() {
    let mut h = logged_in();
    h.feed(C, &query("SELECT 1; SELEC 2; SELECT 3"), 10);
    let r1 = [
        row_desc(&["a"]),
        data_row(&[Some(b"1")]),
        complete("SELECT 1"),
    ]
    .concat();
    let err = error("ERROR", "42601", "syntax error at or near \"SELEC\"");
    h.feed(S, &[r1, err, ready()].concat(), 20);
    let j = h.jsons();
    assert_eq!(j.len(), 3);
    assert_eq!(j[0]["status"], "OK");
    assert_eq!(j[1]["status"], "Error");
    assert_eq!(j[1]["pgsql"]["error_code"], "42601");
    assert_eq!(j[2]["status"], "Error");
    assert_eq!(j[2]["query"], "SELECT 3");
    assert_eq!(j[2]["error"]["message"], NOTE_SKIPPED);
    assert_eq!(j[2]["destination"]["bytes"], 0);
}

fn extended(q: &str, params: &[Option<&[u8]>], binary: bool) -> Vec<u8> {
    [
        parse("", q),
        bind("", "", params, binary),
        describe_portal(),
        execute(),
        sync(),
    ]
    .concat()
}

#[test]
fn extended_unnamed_statement() {
    let mut h = logged_in();
    let req = extended(
        "SELECT * FROM t WHERE id = $1 AND b = $2 AND c = $3",
        &[Some(b"42"), None, Some(b"x y")],
        false,
    );
    h.feed(C, &req, 10);
    let resp = [
        short(b'1'),
        short(b'2'),
        row_desc(&["id"]),
        data_row(&[Some(b"42")]),
        complete("SELECT 1"),
        ready(),
    ]
    .concat();
    h.feed(S, &resp, 20);
    assert_eq!(h.out.len(), 1);
    let j = h.json(0);
    assert_eq!(j["method"], "SELECT");
    assert_eq!(
        j["query"],
        "SELECT * FROM t WHERE id = $1 AND b = $2 AND c = $3"
    );
    assert_eq!(j["params"], "42, NULL, x y");
    assert_eq!(j["source"]["bytes"], req.len());
    assert_eq!(j["destination"]["bytes"], resp.len() - 6);
    assert_eq!(j["pgsql"]["num_rows"], 1);
    assert_eq!(j["pgsql"]["num_fields"], 1);
}

#[test]
fn named_statement_prepared_then_executed() {
    let mut h = logged_in();
    // PQprepare: Parse + Sync, answered ParseComplete + ReadyForQuery.
    let prep = [parse("s1", "UPDATE t SET v = $1 WHERE id = $2"), sync()].concat();
    h.feed(C, &prep, 10);
    h.feed(S, &[short(b'1'), ready()].concat(), 11);
    for i in 0..2u8 {
        let id = [b'1' + i];
        let req = [
            bind("", "s1", &[Some(&[0xde, 0xad]), Some(&id)], true),
            describe_portal(),
            execute(),
            sync(),
        ]
        .concat();
        h.feed(C, &req, 20 + i as u64 * 10);
        h.feed(
            S,
            &[short(b'2'), short(b'n'), complete("UPDATE 1"), ready()].concat(),
            25 + i as u64 * 10,
        );
    }
    let j = h.jsons();
    assert_eq!(j.len(), 3);
    assert_eq!(j[0]["method"], "PREPARE");
    assert_eq!(j[0]["query"], "UPDATE t SET v = $1 WHERE id = $2");
    assert_eq!(j[0]["source"]["bytes"], prep.len());
    // ParseComplete; the ReadyForQuery that ends the answer counts in nothing.
    assert_eq!(j[0]["destination"]["bytes"], 5);
    assert_eq!(j[1]["method"], "UPDATE");
    assert_eq!(j[1]["query"], "UPDATE t SET v = $1 WHERE id = $2");
    assert_eq!(j[1]["params"], "\\xdead, \\x31");
    assert_eq!(j[2]["params"], "\\xdead, \\x32");
    assert_eq!(j[2]["pgsql"]["num_rows"], 1);
    // Closing the statement forgets it.
    h.feed(
        C,
        &[msg(b'C', &[b"S".to_vec(), cs("s1")].concat()), sync()].concat(),
        50,
    );
    h.feed(S, &[short(b'3'), ready()].concat(), 51);
    h.feed(
        C,
        &[bind("", "s1", &[], false), execute(), sync()].concat(),
        60,
    );
    h.feed(
        S,
        &[short(b'2'), complete("UPDATE 0"), ready()].concat(),
        61,
    );
    let j = h.jsons();
    assert_eq!(j[3]["method"], "CLOSE");
    assert_eq!(j[4]["method"], "EXECUTE");
    assert!(j[4].get("query").is_none());
}

#[test]
fn pipeline_with_error_skips_to_sync() {
    let mut h = logged_in();
    let req = [
        parse("", "SELECT 1"),
        bind("", "", &[], false),
        execute(),
        parse("", "SELECT 1/0"),
        bind("", "", &[], false),
        execute(),
        parse("", "SELECT 3"),
        bind("", "", &[], false),
        execute(),
        sync(),
        extended("SELECT 4", &[], false),
    ]
    .concat();
    h.feed(C, &req, 10);
    let resp = [
        short(b'1'),
        short(b'2'),
        data_row(&[Some(b"1")]),
        complete("SELECT 1"),
        short(b'1'),
        short(b'2'),
        error("ERROR", "22012", "division by zero"),
        ready(),
        short(b'1'),
        short(b'2'),
        row_desc(&["x"]),
        data_row(&[Some(b"4")]),
        complete("SELECT 1"),
        ready(),
    ]
    .concat();
    h.feed(S, &resp, 20);
    let j = h.jsons();
    assert_eq!(j.len(), 4, "{j:#?}");
    assert_eq!(
        (j[0]["status"].as_str(), j[0]["query"].as_str()),
        (Some("OK"), Some("SELECT 1"))
    );
    assert_eq!(j[1]["pgsql"]["error_code"], "22012");
    assert_eq!(j[2]["query"], "SELECT 3");
    assert_eq!(j[2]["error"]["message"], NOTE_SKIPPED);
    assert_eq!(j[3]["query"], "SELECT 4");
    assert_eq!(j[3]["status"], "OK");
    let sent: u64 = j
        .iter()
        .map(|e| e["source"]["bytes"].as_u64().unwrap())
        .sum();
    let got: u64 = j
        .iter()
        .map(|e| e["destination"]["bytes"].as_u64().unwrap())
        .sum();
    // Everything but the two ReadyForQuery.
    assert_eq!((sent, got), (req.len() as u64, resp.len() as u64 - 12));
}

#[test]
fn copy_in_and_out() {
    let mut h = logged_in();
    let q = query("COPY t FROM STDIN");
    h.feed(C, &q, 10);
    let g = msg(b'G', &[0, 0, 1, 0, 0]);
    h.feed(S, &g, 11);
    let data = [msg(b'd', b"1\ta\n2\tb\n"), short(b'c')].concat();
    h.feed(C, &data, 12);
    h.feed(S, &[complete("COPY 2"), ready()].concat(), 13);
    let mut cfg = SqlConfig::default_pgsql();
    cfg.common.send_response = true;
    let j = h.json(0);
    assert_eq!(j["method"], "COPY");
    assert_eq!(j["source"]["bytes"], q.len() + data.len());
    assert_eq!(
        j["destination"]["bytes"],
        g.len() + complete("COPY 2").len()
    );
    assert_eq!(j["pgsql"]["num_rows"], 2);

    let mut h = H::new(cfg);
    h.feed(C, &query("COPY t TO STDOUT"), 10);
    let out = [
        msg(b'H', &[0, 0, 1, 0, 0]),
        msg(b'd', b"1\ta\n"),
        msg(b'd', b"2\tb\n"),
        short(b'c'),
        complete("COPY 2"),
        ready(),
    ]
    .concat();
    h.feed(S, &out, 11);
    let j = h.json(0);
    assert_eq!(j["destination"]["bytes"], out.len() - 6);
    assert_eq!(j["pgsql"]["num_rows"], 2);
    assert_eq!(j["response"], "1\ta\n2\tb\n");
}

#[test]
fn notices_and_notifications_never_pair() {
    let mut h = logged_in();
    // A notice inside a response belongs to it.
    h.feed(C, &query("DROP TABLE IF EXISTS nope"), 10);
    let r = [
        notice("table \"nope\" does not exist, skipping"),
        complete("DROP TABLE"),
        ready(),
    ]
    .concat();
    h.feed(S, &r, 11);
    // Notifications and notices while idle belong to nothing.
    h.feed(S, &notify("ch", "hello"), 12);
    h.feed(S, &notice("idle notice"), 13);
    h.feed(S, &msg(b'S', &[cs("TimeZone"), cs("UTC")].concat()), 14);
    // A notification delivered after a command, before ReadyForQuery.
    h.feed(C, &query("NOTIFY ch, 'x'"), 20);
    let r2 = [complete("NOTIFY"), notify("ch", "x"), ready()].concat();
    h.feed(S, &r2, 21);
    h.close();
    let j = h.jsons();
    assert_eq!(j.len(), 2, "{j:#?}");
    assert_eq!(j[0]["method"], "DROP");
    assert_eq!(j[0]["destination"]["bytes"], r.len() - 6);
    assert_eq!(j[1]["method"], "NOTIFY");
    assert_eq!(j[1]["destination"]["bytes"], r2.len() - 6);
    assert!(j.iter().all(|e| e["status"] == "OK"));
    assert_eq!(h.counters.unmatched_responses, 0);
}

#[test]
fn ssl_refused_then_accepted() {
    let mut h = H::def();
    h.feed(C, &ssl_request(), 1);
    h.feed(S, b"N", 2);
    h.feed(C, &startup(), 3);
    h.feed(S, &login_reply(), 4);
    let (q, r) = select3();
    h.feed(C, &q, 5);
    h.feed(S, &r, 6);
    assert_eq!(h.out.len(), 1);
    assert!(!h.stopped);

    let mut h = H::def();
    h.feed(C, &ssl_request(), 1);
    assert_eq!(h.feed(S, b"S", 2), Progress::Stop);
    assert!(h.stopped);
    assert!(h.out.is_empty());
}

type Steps = Vec<(Dir, Vec<u8>)>;

fn session() -> (Vec<u8>, Vec<u8>, Steps) {
    let (q, r) = select3();
    let steps = vec![
        (C, startup()),
        (S, login_reply()),
        (C, q),
        (S, r),
        (C, extended("SELECT $1", &[Some(b"7")], false)),
        (
            S,
            [
                short(b'1'),
                short(b'2'),
                row_desc(&["x"]),
                data_row(&[Some(b"7")]),
                complete("SELECT 1"),
                ready(),
            ]
            .concat(),
        ),
        (C, query("SELECT 1; BAD; SELECT 2")),
        (
            S,
            [
                complete("SELECT 1"),
                error("ERROR", "42601", "syntax"),
                ready(),
            ]
            .concat(),
        ),
        (C, [parse("p", "SELECT 2"), sync()].concat()),
        (S, [short(b'1'), ready()].concat()),
    ];
    let c: Vec<u8> = steps
        .iter()
        .filter(|s| s.0 == C)
        .flat_map(|s| s.1.clone())
        .collect();
    let s: Vec<u8> = steps
        .iter()
        .filter(|s| s.0 == S)
        .flat_map(|s| s.1.clone())
        .collect();
    (c, s, steps)
}

#[test]
fn byte_at_a_time_equals_one_shot() {
    let (_, _, steps) = session();
    let mut whole = H::def();
    for (i, (d, b)) in steps.iter().enumerate() {
        whole.feed(*d, b, i as u64 + 1);
    }
    whole.close();
    for n in [1, 2, 3, 7] {
        let mut bytewise = H::def();
        for (i, (d, b)) in steps.iter().enumerate() {
            bytewise.chunked(*d, b, n, i as u64 + 1);
        }
        bytewise.close();
        assert_eq!(whole.jsons(), bytewise.jsons(), "chunks of {n}");
    }
    assert_eq!(whole.out.len(), 6);
}

#[test]
fn long_result_streams_with_bounded_memory() {
    let mut cfg = SqlConfig::default_pgsql();
    cfg.common.send_response = true;
    let mut h = H::new(cfg);
    h.feed(C, &query("SELECT * FROM big"), 1);
    h.feed(S, &row_desc(&["id", "pad"]), 2);
    let rows = 100_000;
    let mut buf = Vec::new();
    for i in 0..rows {
        buf.extend(data_row(&[
            Some(i.to_string().as_bytes()),
            Some(&[b'x'; 40]),
        ]));
        if buf.len() > 1400 {
            h.chunked(S, &buf, 700, 3);
            buf.clear();
        }
    }
    buf.extend(complete(&format!("SELECT {rows}")));
    buf.extend(ready());
    h.chunked(S, &buf, 700, 4);
    assert_eq!(h.out.len(), 1);
    let j = h.json(0);
    assert_eq!(j["pgsql"]["num_rows"], rows);
    assert_eq!(j["response"].as_str().unwrap().lines().count(), 11);
    assert!(h.max_held < 1024, "engine buffer held {} bytes", h.max_held);
    assert_eq!(h.errors, 0);
}

#[test]
fn huge_single_data_row_is_skipped_not_buffered() {
    let mut cfg = SqlConfig::default_pgsql();
    cfg.common.send_response = true;
    cfg.max_row_length = 8;
    let mut h = H::new(cfg);
    h.feed(C, &query("SELECT blob FROM b"), 1);
    h.feed(S, &row_desc(&["blob"]), 2);
    let big = vec![b'z'; 10 << 20];
    let row = data_row(&[Some(&big)]);
    h.chunked(S, &row, 1448, 3);
    h.feed(S, &[complete("SELECT 1"), ready()].concat(), 4);
    assert_eq!(h.out.len(), 1);
    assert!(h.max_held <= parser::WHOLE_LIMIT + 1448, "{}", h.max_held);
    let j = h.json(0);
    assert_eq!(j["pgsql"]["num_rows"], 1);
    assert_eq!(j["response"], "blob\nzzzzzzzz\n");
    assert_eq!(
        j["destination"]["bytes"].as_u64().unwrap(),
        (row.len() + row_desc(&["blob"]).len() + 14) as u64
    );
    assert!(j.get("error").is_none());
    assert_eq!(h.errors, 0);
}

#[test]
fn gap_in_rows_keeps_the_transaction() {
    let mut h = logged_in();
    h.feed(C, &query("SELECT * FROM big"), 1);
    h.feed(S, &row_desc(&["id"]), 2);
    let rows: Vec<u8> = (0..100)
        .flat_map(|i: i32| data_row(&[Some(i.to_string().as_bytes())]))
        .collect();
    h.feed(S, &rows[..300], 3);
    // 500 bytes lost: the stream resumes in the middle of a row.
    h.gap(S, 500, 4);
    h.feed(S, &rows[800..], 5);
    h.feed(S, &[complete("SELECT 100"), ready()].concat(), 6);
    assert_eq!(h.out.len(), 1);
    let j = h.json(0);
    assert_eq!(j["status"], "OK");
    assert_eq!(j["error"]["message"], NOTE_LOSS_RESPONSE);
    assert_eq!(j["pgsql"]["num_rows"], 100);
    // Then the connection goes on normally.
    let (q, r) = select3();
    h.feed(C, &q, 7);
    h.feed(S, &r, 8);
    assert_eq!(h.out.len(), 2);
    assert!(h.out[1].notes.is_empty());
}

#[test]
fn gap_at_request_start_resyncs() {
    let mut h = logged_in();
    let (q, r) = select3();
    // The first query is lost entirely, the second is cut at its start.
    h.gap(C, q.len() as u64, 1);
    h.feed(S, &r, 2);
    let q2 = query("SELECT 2");
    h.gap(C, 3, 3);
    h.feed(C, &q2[3..], 3);
    h.feed(C, &query("SELECT 3"), 4);
    h.feed(S, &[complete("SELECT 1"), ready()].concat(), 5);
    let j = h.jsons();
    assert_eq!(j.len(), 2, "{j:#?}");
    // The lost request is stood for by a placeholder: no query, loss noted.
    assert_eq!(j[0]["error"]["message"], NOTE_LOSS_REQUEST);
    assert_eq!(j[0]["pgsql"]["num_rows"], 3);
    assert_eq!(j[0]["status"], "OK");
    assert!(j[0].get("query").is_none());
    // The cut request is gone; its answer pairs with the placeholder of that gap, and
    // the next whole query is found again.
    assert_eq!(h.out.len(), 2);
    h.close();
    let j = h.jsons();
    assert_eq!(j.last().unwrap()["query"], "SELECT 3");
}

#[test]
fn unmatched_and_timeout() {
    let mut h = logged_in();
    h.feed(S, &[complete("SELECT 1"), ready()].concat(), 10);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_RESPONSE.to_string()]);
    h.feed(C, &query("SELECT pg_sleep(60)"), 1_000_000_000);
    h.expire(5_000_000_000);
    assert_eq!(h.out.len(), 1);
    h.expire(11_000_000_000);
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[1].status, Status::Error);
    assert_eq!(
        h.out[1].notes,
        vec![crate::event::NOTE_UNMATCHED_REQUEST.to_string()]
    );
    assert_eq!(h.counters.unmatched_requests, 1);
}

#[test]
fn mid_stream_pickup() {
    let mut h = H::def();
    // The capture starts inside a result: rows, then its end, then a whole query.
    let rows: Vec<u8> = (0..5)
        .flat_map(|i: i32| data_row(&[Some(i.to_string().as_bytes())]))
        .collect();
    h.feed(S, &rows[3..], 1);
    h.feed(S, &[complete("SELECT 5"), ready()].concat(), 2);
    let (q, r) = select3();
    h.feed(C, &q, 3);
    h.feed(S, &r, 4);
    let j = h.jsons();
    assert_eq!(j.len(), 2, "{j:#?}");
    assert_eq!(j[0]["error"]["message"], NOTE_UNMATCHED_RESPONSE);
    assert_eq!(j[1]["query"], "SELECT id, name FROM t");
    assert_eq!(j[1]["status"], "OK");
}

#[test]
fn garbage_is_rejected_without_events() {
    let mut h = H::def();
    h.feed(C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    h.feed(S, b"HTTP/1.1 200 OK\r\n\r\n", 2);
    h.close();
    assert!(h.out.is_empty());
}

#[test]
fn random_and_truncated_input_never_panics() {
    let (c, s, _) = session();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..12_000 {
        let mut h = H::def();
        let mode = round % 4;
        for _ in 0..6 {
            let dir = if rng.next().is_multiple_of(2) { C } else { S };
            let src = if dir == C { &c } else { &s };
            let data: Vec<u8> = match mode {
                // Pure noise, biased towards type bytes and small lengths.
                0 => (0..rng.next() % 64)
                    .map(|_| match rng.next() % 4 {
                        0 => b"QPBEDSZCTdIn12"[(rng.next() % 14) as usize],
                        1 => 0,
                        _ => rng.next() as u8,
                    })
                    .collect(),
                // Truncated real traffic.
                1 => {
                    let a = (rng.next() as usize) % src.len();
                    let b = a + (rng.next() as usize) % (src.len() - a + 1);
                    src[a..b].to_vec()
                }
                // Real traffic with flipped bytes.
                2 => {
                    let mut v = src.clone();
                    for _ in 0..1 + rng.next() % 4 {
                        let i = (rng.next() as usize) % v.len();
                        v[i] = rng.next() as u8;
                    }
                    v
                }
                _ => {
                    let n = rng.next() % 3;
                    if n == 0 {
                        h.gap(dir, rng.next() % 5000, 5);
                    }
                    src[..(rng.next() as usize) % src.len()].to_vec()
                }
            };
            h.chunked(dir, &data, 1 + (rng.next() % 40) as usize, round as u64);
            if rng.next().is_multiple_of(8) {
                h.expire(rng.next() % 100_000_000_000);
            }
        }
        h.close();
        for t in &h.out {
            encode(t);
        }
    }
}

fn logged_in_with(cfg: SqlConfig) -> H {
    let mut h = H::new(cfg);
    h.feed(C, &startup(), 1);
    h.feed(S, &msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]), 2);
    h.feed(C, &password(), 3);
    h.feed(S, &login_reply()[13..], 4);
    assert!(h.out.is_empty());
    h
}

fn execute_portal(portal: &str, max_rows: i32) -> Vec<u8> {
    msg(
        b'E',
        &[cs(portal), max_rows.to_be_bytes().to_vec()].concat(),
    )
}

#[test]
fn statement_cache_is_bounded_and_counted() {
    let mut cfg = SqlConfig::default_pgsql();
    cfg.max_statements = 2;
    let mut h = logged_in_with(cfg);
    // Three named statements prepared, each Parse + Sync: the first is forgotten.
    for (i, name) in ["s1", "s2", "s3"].iter().enumerate() {
        let t = 10 + i as u64 * 10;
        h.feed(
            C,
            &[parse(name, &format!("SELECT {i}")), sync()].concat(),
            t,
        );
        h.feed(S, &[short(b'1'), ready()].concat(), t + 1);
    }
    assert_eq!(h.counters.statement_evictions, 1);
    let run = |h: &mut H, stmt: &str, t: u64| {
        h.feed(
            C,
            &[bind("", stmt, &[], false), execute(), sync()].concat(),
            t,
        );
        h.feed(
            S,
            &[
                short(b'2'),
                data_row(&[Some(b"7")]),
                complete("SELECT 1"),
                ready(),
            ]
            .concat(),
            t + 1,
        );
    };
    run(&mut h, "s2", 50);
    run(&mut h, "s1", 60);
    let j = h.jsons();
    assert_eq!(j.len(), 5);
    assert_eq!(
        (j[3]["method"].as_str(), j[3]["query"].as_str()),
        (Some("SELECT"), Some("SELECT 1"))
    );
    // Its text is gone: the Execute is reported without a query.
    assert_eq!(j[4]["method"], "EXECUTE");
    assert!(j[4].get("query").is_none());
    assert_eq!(j[4]["pgsql"]["num_rows"], 1);
    assert_eq!(j[4]["pgsql"]["num_fields"], 1);

    // None remembered at all: every Parse counts.
    let mut cfg = SqlConfig::default_pgsql();
    cfg.max_statements = 0;
    let mut h = logged_in_with(cfg);
    h.feed(
        C,
        &[
            parse("", "SELECT 1"),
            bind("", "", &[], false),
            execute(),
            sync(),
        ]
        .concat(),
        10,
    );
    h.feed(
        S,
        &[short(b'1'), short(b'2'), complete("SELECT 0"), ready()].concat(),
        11,
    );
    // The Execute's own Parse still names it.
    assert_eq!(h.json(0)["query"], "SELECT 1");
    assert_eq!(h.counters.statement_evictions, 2);
}

#[test]
fn suspended_portal_is_one_transaction_per_execute() {
    let mut cfg = SqlConfig::default_pgsql();
    cfg.common.send_response = true;
    let mut h = logged_in_with(cfg);
    let q = "SELECT g FROM generate_series(1, 5) AS g";
    let first = [
        parse("", q),
        bind("c1", "", &[], false),
        describe_portal(),
        execute_portal("c1", 2),
        sync(),
    ]
    .concat();
    h.feed(C, &first, 10);
    let rows = |a: u8, b: u8| [data_row(&[Some(&[a])]), data_row(&[Some(&[b])])].concat();
    let r1 = [
        short(b'1'),
        short(b'2'),
        row_desc(&["g"]),
        rows(b'1', b'2'),
        short(b's'),
    ]
    .concat();
    h.feed(S, &[r1.clone(), ready()].concat(), 11);
    // The same portal again, twice in one Sync: its query and Bind come along.
    h.feed(
        C,
        &[execute_portal("c1", 2), execute_portal("c1", 2), sync()].concat(),
        20,
    );
    let r2 = [rows(b'3', b'4'), short(b's')].concat();
    let r3 = [data_row(&[Some(b"5")]), complete("SELECT 1")].concat();
    h.feed(S, &[r2.clone(), r3.clone(), ready()].concat(), 21);
    let j = h.jsons();
    assert_eq!(j.len(), 3, "{j:#?}");
    for e in &j {
        assert_eq!(e["query"], q);
        assert_eq!(e["status"], "OK");
    }
    let n: Vec<_> = j
        .iter()
        .map(|e| e["pgsql"]["num_rows"].as_u64().unwrap())
        .collect();
    assert_eq!(n, [2, 2, 1]);
    let b: Vec<_> = j
        .iter()
        .map(|e| e["destination"]["bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(b, [r1.len() as u64, r2.len() as u64, r3.len() as u64]);
    assert_eq!(j[0]["response"], "g\n1\n2\n");
    // No RowDescription for the later Executes: rows only, fields from the rows.
    assert_eq!(j[1]["response"], "3\n4\n");
    assert_eq!(j[2]["pgsql"]["num_fields"], 1);
    assert_eq!(j[1]["source"]["bytes"], execute_portal("c1", 2).len());
    assert_eq!(
        j[2]["source"]["bytes"],
        execute_portal("c1", 2).len() + sync().len()
    );
}

#[test]
fn binary_result_columns_are_empty_in_the_text() {
    let mut cfg = SqlConfig::default_pgsql();
    cfg.common.send_response = true;
    let mut h = logged_in_with(cfg);
    // Bind asks for the first result column in binary, the second in text.
    let mut b = bind("", "", &[Some(b"1")], false);
    b.truncate(b.len() - 2);
    b.extend_from_slice(&[0, 2, 0, 1, 0, 0]);
    let len = b.len() as u32 - 1;
    b[1..5].copy_from_slice(&len.to_be_bytes());
    let req = [
        parse("", "SELECT $1::int AS a, 'x' AS b"),
        b,
        execute(),
        sync(),
    ]
    .concat();
    h.feed(C, &req, 10);
    let resp = [
        short(b'1'),
        short(b'2'),
        data_row(&[Some(&[0, 0, 0, 1]), Some(b"x")]),
        complete("SELECT 1"),
        ready(),
    ]
    .concat();
    h.feed(S, &resp, 11);
    let j = h.json(0);
    assert_eq!(j["response"], ",x\n");
    assert_eq!(j["pgsql"]["num_fields"], 2);
}
