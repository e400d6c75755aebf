//! Behaviour tests of the Thrift parser, driven through the engine's [`Parser`]
//! contract by a harness that buffers unconsumed bytes the way the TCP engine does,
//! with messages built by a small encoder of both protocols.

use super::*;

use crate::config::ThriftConfig;
use crate::event::{
    ConnInfo, NOTE_LOSS_RESPONSE, NOTE_UNMATCHED_REQUEST, NOTE_UNMATCHED_RESPONSE, Status,
    Transaction,
};
use crate::protos::testing::{Harness, test_conn};
use crate::protos::{Ctx, Dir, Parser, Progress, ProtocolFactory};
use crate::time::Ts;
use fields::ThriftFields;
use parser::{CALL, EXCEPTION, ONEWAY, Protocol, REPLY};

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

// ------------------------------------------------------------------ encoder

#[derive(Clone, Copy, PartialEq)]
enum K {
    Bool,
    Byte,
    I16,
    I32,
    I64,
    Dbl,
    Str,
    Struct,
    Map,
    Set,
    List,
}

#[derive(Clone)]
enum V {
    Bool(bool),
    Byte(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Dbl(f64),
    Str(Vec<u8>),
    Struct(Vec<(i16, V)>),
    List(K, Vec<V>),
    Set(K, Vec<V>),
    Map(K, K, Vec<(V, V)>),
}

fn s(x: &str) -> V {
    V::Str(x.as_bytes().to_vec())
}

impl V {
    fn kind(&self) -> K {
        match self {
            V::Bool(_) => K::Bool,
            V::Byte(_) => K::Byte,
            V::I16(_) => K::I16,
            V::I32(_) => K::I32,
            V::I64(_) => K::I64,
            V::Dbl(_) => K::Dbl,
            V::Str(_) => K::Str,
            V::Struct(_) => K::Struct,
            V::List(..) => K::List,
            V::Set(..) => K::Set,
            V::Map(..) => K::Map,
        }
    }
}

fn bin_code(k: K) -> u8 {
    match k {
        K::Bool => 2,
        K::Byte => 3,
        K::Dbl => 4,
        K::I16 => 6,
        K::I32 => 8,
        K::I64 => 10,
        K::Str => 11,
        K::Struct => 12,
        K::Map => 13,
        K::Set => 14,
        K::List => 15,
    }
}

fn cmp_code(k: K) -> u8 {
    match k {
        K::Bool => 1,
        K::Byte => 3,
        K::I16 => 4,
        K::I32 => 5,
        K::I64 => 6,
        K::Dbl => 7,
        K::Str => 8,
        K::List => 9,
        K::Set => 10,
        K::Map => 11,
        K::Struct => 12,
    }
}

fn uvar(mut v: u64, o: &mut Vec<u8>) {
    while v >= 0x80 {
        o.push((v as u8) | 0x80);
        v >>= 7;
    }
    o.push(v as u8);
}

fn zz(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[derive(Clone, Copy, PartialEq)]
enum P {
    Strict,
    Old,
    Compact,
}

fn enc(p: P, v: &V, o: &mut Vec<u8>) {
    let compact = p == P::Compact;
    match v {
        V::Bool(b) => o.push(if compact {
            if *b { 1 } else { 2 }
        } else {
            *b as u8
        }),
        V::Byte(b) => o.push(*b as u8),
        V::I16(x) if compact => uvar(zz(i64::from(*x)), o),
        V::I32(x) if compact => uvar(zz(i64::from(*x)), o),
        V::I64(x) if compact => uvar(zz(*x), o),
        V::I16(x) => o.extend_from_slice(&x.to_be_bytes()),
        V::I32(x) => o.extend_from_slice(&x.to_be_bytes()),
        V::I64(x) => o.extend_from_slice(&x.to_be_bytes()),
        V::Dbl(x) if compact => o.extend_from_slice(&x.to_le_bytes()),
        V::Dbl(x) => o.extend_from_slice(&x.to_be_bytes()),
        V::Str(b) => {
            if compact {
                uvar(b.len() as u64, o);
            } else {
                o.extend_from_slice(&(b.len() as u32).to_be_bytes());
            }
            o.extend_from_slice(b);
        }
        V::Struct(fields) => enc_struct(p, fields, o),
        V::List(k, items) | V::Set(k, items) => {
            if compact {
                if items.len() < 15 {
                    o.push(((items.len() as u8) << 4) | cmp_code(*k));
                } else {
                    o.push(0xf0 | cmp_code(*k));
                    uvar(items.len() as u64, o);
                }
            } else {
                o.push(bin_code(*k));
                o.extend_from_slice(&(items.len() as u32).to_be_bytes());
            }
            for i in items {
                enc(p, i, o);
            }
        }
        V::Map(kk, vk, items) => {
            if compact {
                uvar(items.len() as u64, o);
                if !items.is_empty() {
                    o.push((cmp_code(*kk) << 4) | cmp_code(*vk));
                }
            } else {
                o.push(bin_code(*kk));
                o.push(bin_code(*vk));
                o.extend_from_slice(&(items.len() as u32).to_be_bytes());
            }
            for (a, b) in items {
                enc(p, a, o);
                enc(p, b, o);
            }
        }
    }
}

fn enc_struct(p: P, fields: &[(i16, V)], o: &mut Vec<u8>) {
    let mut last = 0i16;
    for (id, v) in fields {
        if p == P::Compact {
            let t = match v {
                V::Bool(true) => 1,
                V::Bool(false) => 2,
                _ => cmp_code(v.kind()),
            };
            let delta = id.wrapping_sub(last);
            if (1..=15).contains(&delta) {
                o.push(((delta as u8) << 4) | t);
            } else {
                o.push(t);
                uvar(zz(i64::from(*id)), o);
            }
            last = *id;
            if !matches!(v, V::Bool(_)) {
                enc(p, v, o);
            }
        } else {
            o.push(bin_code(v.kind()));
            o.extend_from_slice(&id.to_be_bytes());
            enc(p, v, o);
        }
    }
    o.push(0);
}

/// A whole message: header, body struct, optional frame.
fn msg(p: P, framed: bool, name: &str, mtype: u8, seqid: i32, body: &[(i16, V)]) -> Vec<u8> {
    let mut o = Vec::new();
    match p {
        P::Strict => {
            o.extend_from_slice(&(0x8001_0000u32 | u32::from(mtype)).to_be_bytes());
            o.extend_from_slice(&(name.len() as u32).to_be_bytes());
            o.extend_from_slice(name.as_bytes());
            o.extend_from_slice(&seqid.to_be_bytes());
        }
        P::Old => {
            o.extend_from_slice(&(name.len() as u32).to_be_bytes());
            o.extend_from_slice(name.as_bytes());
            o.push(mtype);
            o.extend_from_slice(&seqid.to_be_bytes());
        }
        P::Compact => {
            o.push(0x82);
            o.push((mtype << 5) | 1);
            uvar(seqid as u32 as u64, &mut o);
            uvar(name.len() as u64, &mut o);
            o.extend_from_slice(name.as_bytes());
        }
    }
    enc_struct(p, body, &mut o);
    if framed {
        let mut f = (o.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&o);
        f
    } else {
        o
    }
}

// ------------------------------------------------------------------ harness

fn conn() -> ConnInfo {
    test_conn(9090)
}

/// The shared engine harness around a Thrift parser; every delivery advances the
/// packet clock by 1 µs.
struct H {
    h: Harness<Box<dyn Parser>>,
    ts: u64,
}

impl std::ops::Deref for H {
    type Target = Harness<Box<dyn Parser>>;
    fn deref(&self) -> &Self::Target {
        &self.h
    }
}

impl std::ops::DerefMut for H {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.h
    }
}

impl H {
    fn new(cfg: ThriftConfig) -> H {
        H {
            h: Harness::for_protocol(
                protocol,
                |c| c.protocols.thrift = cfg,
                conn(),
                |f, conn| f.new_parser(conn),
            ),
            ts: 1_000_000_000,
        }
    }

    fn def() -> H {
        H::new(ThriftConfig::default())
    }

    fn ctx_call<R>(&mut self, f: impl FnOnce(&mut Box<dyn Parser>, &mut Ctx<'_>) -> R) -> R {
        let ts = self.ts;
        self.h.call(ts, f)
    }

    fn feed(&mut self, dir: Dir, data: &[u8]) {
        self.ts += 1000;
        let pr = self.h.feed(dir, data, self.ts);
        assert_ne!(pr, Progress::Stop, "thrift never stops");
    }

    fn bytewise(&mut self, dir: Dir, data: &[u8]) {
        for b in data {
            self.feed(dir, std::slice::from_ref(b));
        }
    }

    fn gap(&mut self, dir: Dir, n: u64) {
        let ts = self.ts;
        self.h.gap(dir, n, ts);
    }

    fn close(&mut self) {
        let ts = self.ts;
        self.h.close_at(ts);
    }
}

fn tf(tx: &Transaction) -> ThriftFields {
    let mut buf = Vec::new();
    let mut w = crate::event::JsonWriter::new(&mut buf);
    w.begin_object();
    if let Some(f) = &tx.fields {
        f.write(&mut w);
    }
    w.end_object();
    let v: serde_json::Value = serde_json::from_slice(&buf).expect("json");
    let g = |k: &str| v["thrift"][k].as_str().map(str::to_string);
    ThriftFields {
        params: g("params"),
        service: g("service"),
        return_value: g("return_value"),
        exceptions: g("exceptions"),
    }
}

fn add_call(p: P, framed: bool) -> Vec<u8> {
    msg(
        p,
        framed,
        "add16",
        CALL,
        1,
        &[(1, V::I16(1)), (2, V::I16(1))],
    )
}

fn add_reply(p: P, framed: bool) -> Vec<u8> {
    msg(p, framed, "add16", REPLY, 1, &[(0, V::I16(2))])
}

/// One call/reply through a parser: the transaction's (query, return value, bytes).
fn roundtrip(cfg: ThriftConfig, p: P, framed: bool) -> (String, String, u64, u64) {
    let mut h = H::new(cfg);
    let (c, r) = (add_call(p, framed), add_reply(p, framed));
    h.feed(C, &c);
    h.feed(S, &r);
    assert_eq!(h.out.len(), 1, "one transaction");
    let tx = &h.out[0];
    assert_eq!(tx.status, Status::Ok);
    assert_eq!(tx.method.as_deref(), Some("add16"));
    (
        tx.query.clone().unwrap_or_default(),
        tf(tx).return_value.unwrap_or_default(),
        tx.request_bytes,
        tx.response_bytes,
    )
}

// ------------------------------------------------------------------ tests

#[test]
fn every_protocol_and_transport_auto_detected() {
    for p in [P::Strict, P::Old, P::Compact] {
        for framed in [false, true] {
            let (q, r, rq, rs) = roundtrip(ThriftConfig::default(), p, framed);
            assert_eq!(q, "add16(1: 1, 2: 1)");
            assert_eq!(r, "2");
            assert_eq!(rq, add_call(p, framed).len() as u64);
            assert_eq!(rs, add_reply(p, framed).len() as u64);
        }
    }
}

#[test]
fn configured_transport_and_protocol() {
    for (p, framed, t, pr) in [
        (P::Strict, false, "socket", "binary"),
        (P::Old, true, "framed", "binary"),
        (P::Compact, true, "framed", "compact"),
        (P::Compact, false, "socket", "compact"),
    ] {
        let cfg = ThriftConfig {
            transport_type: Some(t.into()),
            protocol_type: Some(pr.into()),
            ..Default::default()
        };
        assert_eq!(roundtrip(cfg, p, framed).0, "add16(1: 1, 2: 1)");
    }
    // Compact traffic with binary configured is not parsed.
    let mut h = H::new(ThriftConfig {
        protocol_type: Some("binary".into()),
        ..Default::default()
    });
    h.feed(C, &add_call(P::Compact, false));
    assert!(h.out.is_empty());
    assert_eq!(h.errors, 1);
}

fn render(cfg: ThriftConfig, p: P, args: Vec<(i16, V)>) -> String {
    let mut h = H::new(cfg);
    h.feed(C, &msg(p, false, "f", ONEWAY, 0, &args));
    assert_eq!(h.out.len(), 1);
    tf(&h.out[0]).params.expect("params")
}

fn every_type() -> Vec<(i16, V)> {
    vec![
        (1, V::Bool(true)),
        (2, V::Bool(false)),
        (3, V::Byte(-3)),
        (4, V::I16(-2)),
        (5, V::I32(-70000)),
        (6, V::I64(1 << 40)),
        (7, V::Dbl(0.5)),
        (8, s("a\"b\n")),
        (9, V::Str(vec![0, 1, 0xfe, 0xff])),
        (
            10,
            V::Struct(vec![(1, V::Struct(vec![(3, V::I32(7))])), (2, s(""))]),
        ),
        (11, V::List(K::I32, vec![V::I32(1), V::I32(2)])),
        (12, V::Set(K::Str, vec![s("x")])),
        (13, V::Map(K::Str, K::Bool, vec![(s("k"), V::Bool(true))])),
        (14, V::List(K::I32, vec![])),
        (15, V::Map(K::I32, K::I32, vec![])),
        (300, V::Dbl(1.0)),
    ]
}

#[test]
fn every_type_rendered_in_both_protocols() {
    let want = "(1: true, 2: false, 3: -3, 4: -2, 5: -70000, 6: 1099511627776, 7: 0.5, \
                8: \"a\\\"b\\n\", 9: 0001feff, 10: (1: (3: 7), 2: \"\"), 11: [1, 2], \
                12: {\"x\"}, 13: {\"k\": true}, 14: [], 15: {}, ...)";
    for p in [P::Strict, P::Compact] {
        assert_eq!(render(ThriftConfig::default(), p, every_type()), want);
    }
    let cfg = ThriftConfig {
        collection_max_size: 100,
        ..Default::default()
    };
    assert!(render(cfg, P::Compact, every_type()).ends_with("15: {}, 300: 1)"));
}

#[test]
fn collection_and_string_limits_and_obfuscation() {
    let list = V::List(K::I32, (0..20).map(V::I32).collect());
    let map = V::Map(
        K::I32,
        K::Str,
        (0..4).map(|i| (V::I32(i), s("v"))).collect(),
    );
    let cfg = ThriftConfig {
        collection_max_size: 3,
        string_max_size: 4,
        ..Default::default()
    };
    let args = vec![(1, list), (2, map), (3, s("abcdefgh")), (4, s("abc"))];
    assert_eq!(
        render(cfg, P::Strict, args.clone()),
        "(1: [0, 1, 2, ...], 2: {0: \"v\", 1: \"v\", 2: \"v\", ...}, 3: \"abcd...\", ...)"
    );
    let cfg = ThriftConfig {
        obfuscate_strings: true,
        ..Default::default()
    };
    let args = vec![(1, s("secret")), (2, s("")), (3, V::Str(vec![0xff]))];
    assert_eq!(
        render(cfg, P::Compact, args),
        "(1: \"*\", 2: \"\", 3: \"*\")"
    );
    // A cut never splits a UTF-8 character.
    let cfg = ThriftConfig {
        string_max_size: 2,
        ..Default::default()
    };
    assert_eq!(render(cfg, P::Strict, vec![(1, s("éa"))]), "(1: \"é...\")");
}

#[test]
fn exceptions_oneway_void_and_application_errors() {
    let mut h = H::def();
    h.feed(C, &msg(P::Strict, false, "ping", CALL, 1, &[]));
    h.feed(S, &msg(P::Strict, false, "ping", REPLY, 1, &[]));
    h.feed(C, &msg(P::Strict, false, "zip", ONEWAY, 2, &[]));
    let ex = V::Struct(vec![(1, V::I32(4)), (2, s("Cannot divide by 0"))]);
    h.feed(
        C,
        &msg(P::Strict, false, "calculate", CALL, 3, &[(1, V::I32(1))]),
    );
    h.feed(S, &msg(P::Strict, false, "calculate", REPLY, 3, &[(1, ex)]));
    let app = vec![(1, s("Unknown method nope")), (2, V::I32(1))];
    h.feed(C, &msg(P::Strict, false, "nope", CALL, 4, &[]));
    h.feed(S, &msg(P::Strict, false, "nope", EXCEPTION, 4, &app));
    assert_eq!(h.out.len(), 4);
    let ping = &h.out[0];
    assert_eq!(ping.query.as_deref(), Some("ping()"));
    assert_eq!(tf(ping).return_value.as_deref(), Some(""));
    let zip = &h.out[1];
    assert_eq!(zip.status, Status::Ok);
    assert!(zip.notes.is_empty());
    assert_eq!(zip.response_bytes, 0);
    assert_eq!(zip.end, None);
    assert_eq!(tf(zip).return_value, None);
    let calc = &h.out[2];
    assert_eq!(calc.status, Status::Error);
    assert_eq!(
        tf(calc).exceptions.as_deref(),
        Some("(1: (1: 4, 2: \"Cannot divide by 0\"))")
    );
    assert_eq!(tf(calc).return_value, None);
    let nope = &h.out[3];
    assert_eq!(nope.status, Status::Error);
    assert_eq!(
        tf(nope).exceptions.as_deref(),
        Some("(1: \"Unknown method nope\", 2: 1)")
    );
}

/// (method, status, notes, response bytes, return value) of each transaction.
fn outcome(out: &[Transaction]) -> Vec<(String, Status, usize, u64, Option<String>)> {
    out.iter()
        .map(|t| {
            (
                t.method.clone().unwrap_or_default(),
                t.status,
                t.notes.len(),
                t.response_bytes,
                tf(t).return_value,
            )
        })
        .collect()
}

/// zip() (sent with message type `zip_type`, named `prefix`zip), then ping() and its
/// reply, then the connection closes.
fn zip_then_ping(cfg: ThriftConfig, p: P, framed: bool, zip_type: u8, prefix: &str) -> H {
    let mut h = H::new(cfg);
    h.feed(
        C,
        &msg(p, framed, &format!("{prefix}zip"), zip_type, 1, &[]),
    );
    h.feed(C, &msg(p, framed, &format!("{prefix}ping"), CALL, 2, &[]));
    h.feed(S, &msg(p, framed, "ping", REPLY, 2, &[]));
    h.close();
    h
}

#[test]
fn oneway_calls_never_take_the_next_reply() {
    let dir = std::env::temp_dir().join(format!("wirebeat-thrift-oneway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("calc.thrift");
    std::fs::write(&file, "service Calc { void ping(), oneway void zip() }\n").expect("write");
    let with_idl = ThriftConfig {
        idl_files: vec![file.to_string_lossy().into_owned()],
        ..Default::default()
    };
    let ping_reply = |p: P, framed: bool| msg(p, framed, "ping", REPLY, 2, &[]).len() as u64;
    for (p, framed) in [(P::Strict, false), (P::Old, true), (P::Compact, false)] {
        let ok = |name: &str| {
            vec![
                (name.to_string(), Status::Ok, 0, 0, None),
                (
                    "ping".to_string(),
                    Status::Ok,
                    0,
                    ping_reply(p, framed),
                    Some(String::new()),
                ),
            ]
        };
        // ONEWAY on the wire, with or without the IDL; a CALL the IDL declares oneway
        // (also multiplexed, `Service:function`).
        for (cfg, zip_type, prefix) in [
            (ThriftConfig::default(), ONEWAY, ""),
            (with_idl.clone(), ONEWAY, ""),
            (with_idl.clone(), CALL, ""),
            (with_idl.clone(), CALL, "Calc:"),
        ] {
            let h = zip_then_ping(cfg, p, framed, zip_type, prefix);
            let mut want = ok(&format!("{prefix}zip"));
            want[1].0 = format!("{prefix}ping");
            assert_eq!(outcome(&h.out), want, "{prefix}zip as {zip_type}");
            assert_eq!(h.out[0].end, None);
            assert_eq!(h.counters.unmatched_requests, 0);
            assert_eq!(h.counters.transactions, 2);
        }
        // A CALL nothing says is oneway: the reply names ping, so zip got no reply and
        // is published as unmatched; ping keeps its own reply.
        for prefix in ["", "Calc:"] {
            let h = zip_then_ping(ThriftConfig::default(), p, framed, CALL, prefix);
            let got = outcome(&h.out);
            assert_eq!(
                got[0],
                (format!("{prefix}zip"), Status::Error, 1, 0, None),
                "{prefix}"
            );
            assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
            assert_eq!(got[1].3, ping_reply(p, framed));
            assert_eq!(got[1].1, Status::Ok);
            assert_eq!(h.counters.unmatched_requests, 1);
        }
    }
    // A reply naming no waiting call still pairs with the oldest one.
    let mut h = H::def();
    h.feed(C, &msg(P::Strict, false, "a", CALL, 1, &[]));
    h.feed(S, &msg(P::Strict, false, "b", REPLY, 1, &[]));
    assert_eq!(outcome(&h.out)[0].0, "a");
    assert_eq!(h.out[0].status, Status::Ok);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn send_request_response_and_capture_reply_off() {
    let mut cfg = ThriftConfig::default();
    cfg.common.send_request = true;
    cfg.common.send_response = true;
    let mut h = H::new(cfg.clone());
    let ex = V::Struct(vec![(1, V::I32(4))]);
    h.feed(C, &add_call(P::Strict, false));
    h.feed(S, &msg(P::Strict, false, "add16", REPLY, 1, &[(1, ex)]));
    assert_eq!(h.out[0].request.as_deref(), Some("add16(1: 1, 2: 1)"));
    assert_eq!(
        h.out[0].response.as_deref(),
        Some("Exceptions: (1: (1: 4))")
    );
    cfg.capture_reply = false;
    let mut h = H::new(cfg);
    h.feed(C, &add_call(P::Compact, false));
    h.feed(S, &add_reply(P::Compact, false));
    assert_eq!(h.out.len(), 1);
    assert_eq!(tf(&h.out[0]).return_value, None);
    assert_eq!(
        h.out[0].response_bytes,
        add_reply(P::Compact, false).len() as u64
    );
}

#[test]
fn too_many_struct_fields_drop_the_message() {
    let cfg = ThriftConfig {
        drop_after_n_struct_fields: 5,
        ..Default::default()
    };
    let many: Vec<(i16, V)> = (1..=6).map(|i| (i, V::I32(i32::from(i)))).collect();
    let nested = vec![(1, V::Struct(many.clone()))];
    for p in [P::Strict, P::Compact] {
        for framed in [false, true] {
            for args in [&many, &nested] {
                // The content is dropped; the call still pairs with its reply, and
                // a framed stream goes on at the next frame.
                let mut h = H::new(cfg.clone());
                let mut c = msg(p, framed, "f", CALL, 1, args);
                c.extend(msg(p, framed, "g", ONEWAY, 2, &[]));
                h.feed(C, &c);
                h.feed(S, &msg(p, framed, "f", REPLY, 1, &[(0, V::I32(1))]));
                assert_eq!(h.counters.parse_errors, 1);
                assert_eq!(h.errors, 1);
                let f = h.out.iter().find(|t| t.method.as_deref() == Some("f"));
                let f = f.expect("f published");
                assert_eq!(f.query, None);
                assert_eq!(tf(f).return_value.as_deref(), Some("1"));
                assert_eq!(h.out.len(), if framed { 2 } else { 1 });
            }
        }
    }
    let mut h = H::new(cfg);
    h.feed(C, &msg(P::Strict, false, "f", ONEWAY, 1, &many[..5]));
    assert_eq!(h.out.len(), 1);
}

#[test]
fn deep_nesting_is_bounded() {
    let mut v = V::I32(1);
    for _ in 0..200 {
        v = V::List(v.kind(), vec![v]);
    }
    for p in [P::Strict, P::Compact] {
        for framed in [false, true] {
            let mut h = H::def();
            h.feed(C, &msg(p, framed, "deep", ONEWAY, 1, &[(1, v.clone())]));
            assert_eq!(h.out.len(), 1);
            assert_eq!(tf(&h.out[0]).params, None);
            assert_eq!(h.counters.parse_errors, 1);
        }
    }
}

#[test]
fn idl_names_and_service() {
    let dir = std::env::temp_dir().join(format!("wirebeat-thrift-idl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("base.thrift"),
        "exception Oops { 1: string why }\n# hash comment\nservice Base { void hello() }\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("svc.thrift"),
        r#"
        include "base.thrift"
        namespace py svc // line comment
        /* block
           comment */
        const list<i32> L = [1, 2]
        const map<string, string> M = {"a": "b"}
        typedef i32 MyInt
        enum Op { ADD = 1, SUB = 2 }
        struct W { 1: required i32 a = 0; 2: optional list<map<string, i32>> b }
        service Calc extends base.Base {
          i32 add(1: i32 num1, 2: MyInt num2) throws (1: base.Oops ouch, 2: Oops other),
          oneway void zip();
          map<string, W> get(1: set<string> keys) (deprecated = "yes")
        }
        "#,
    )
    .expect("write");
    let files = vec![dir.join("svc.thrift").to_string_lossy().into_owned()];
    let cfg = ThriftConfig {
        idl_files: files.clone(),
        ..Default::default()
    };
    let idl = idl::Idl::load(&files).expect("idl");
    assert_eq!(
        idl.function("hello").map(|f| f.service.as_str()),
        Some("Base")
    );
    assert!(idl.function("zip").is_some_and(|f| f.oneway));
    assert!(idl.function("get").is_some());
    let mut h = H::new(cfg);
    h.feed(
        C,
        &msg(
            P::Compact,
            true,
            "add",
            CALL,
            1,
            &[(1, V::I32(1)), (2, V::I32(1)), (9, V::I32(0))],
        ),
    );
    let ex = V::Struct(vec![(1, s("no"))]);
    h.feed(S, &msg(P::Compact, true, "add", REPLY, 1, &[(2, ex)]));
    let tx = &h.out[0];
    assert_eq!(tx.query.as_deref(), Some("add(num1: 1, num2: 1, 9: 0)"));
    assert_eq!(tx.path.as_deref(), Some("Calc"));
    let f = tf(tx);
    assert_eq!(f.service.as_deref(), Some("Calc"));
    assert_eq!(f.exceptions.as_deref(), Some("(other: (1: \"no\"))"));
    // A missing file leaves names out but keeps parsing.
    let mut h = H::new(ThriftConfig {
        idl_files: vec!["/nonexistent/x.thrift".into()],
        ..Default::default()
    });
    h.feed(C, &add_call(P::Strict, false));
    h.feed(S, &add_reply(P::Strict, false));
    assert_eq!(h.out[0].query.as_deref(), Some("add16(1: 1, 2: 1)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idl_errors_are_reported() {
    assert!(idl::parse("service S { i32 f(1: i32 a }").is_err());
    assert!(idl::parse("/* open").is_err());
    assert!(idl::parse("struct X {").is_err());
    assert!(idl::parse("bogus").is_err());
    let p = idl::parse("service S { void f(1: i32 a, -1: i32 b) }").expect("parse");
    assert_eq!(
        p.functions[0].1.params.get(&-1).map(String::as_str),
        Some("b")
    );
}

fn conversation(p: P, framed: bool) -> (Vec<u8>, Vec<u8>) {
    let mut c = Vec::new();
    let mut r = Vec::new();
    for i in 0..5 {
        let args = every_type();
        c.extend(msg(p, framed, "f", CALL, i, &args));
        r.extend(msg(p, framed, "f", REPLY, i, &[(0, V::Struct(args))]));
    }
    (c, r)
}

fn summary(out: &[Transaction]) -> Vec<(Option<String>, Option<String>, u64, u64)> {
    out.iter()
        .map(|t| {
            (
                t.query.clone(),
                tf(t).return_value,
                t.request_bytes,
                t.response_bytes,
            )
        })
        .collect()
}

#[test]
fn byte_at_a_time_equals_one_shot() {
    for p in [P::Strict, P::Old, P::Compact] {
        for framed in [false, true] {
            let (c, r) = conversation(p, framed);
            let mut one = H::def();
            one.feed(C, &c);
            one.feed(S, &r);
            let mut bytes = H::def();
            bytes.bytewise(C, &c);
            bytes.bytewise(S, &r);
            assert_eq!(one.out.len(), 5);
            assert_eq!(summary(&one.out), summary(&bytes.out));
            assert_eq!(bytes.errors, 0);
            // The first byte's time is the message's time.
            assert!(bytes.out[1].start < bytes.out[1].end.unwrap_or_default());
        }
    }
}

#[test]
fn gaps_unmatched_and_timeout() {
    // A gap inside a reply whose header was seen: published with the loss note.
    let mut h = H::def();
    h.feed(C, &add_call(P::Strict, false));
    let r = msg(
        P::Strict,
        false,
        "add16",
        REPLY,
        1,
        &[(0, s(&"x".repeat(100)))],
    );
    h.feed(S, &r[..30]);
    h.gap(S, 50);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_LOSS_RESPONSE.to_string()]);
    // The next message is parsed again.
    h.feed(C, &add_call(P::Strict, false));
    h.feed(S, &add_reply(P::Strict, false));
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[1].status, Status::Ok);

    // An unmatched reply, a request left at close.
    let mut h = H::def();
    h.feed(S, &add_reply(P::Compact, true));
    h.feed(C, &add_call(P::Compact, true));
    h.close();
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_RESPONSE.to_string()]);
    assert_eq!(h.out[0].method.as_deref(), Some("add16"));
    assert_eq!(h.out[1].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
    assert_eq!(h.out[1].status, Status::Error);

    // Timeout.
    let mut h = H::def();
    h.feed(C, &add_call(P::Strict, true));
    let later = Ts(h.ts + 11_000_000_000);
    h.ctx_call(|p, ctx| p.expire(later, ctx));
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
}

#[test]
fn oversized_frames_are_skipped_exactly() {
    let mut h = H::def();
    let big = msg(
        P::Strict,
        true,
        "big",
        CALL,
        1,
        &[(1, V::Str(vec![b'a'; 2 << 20]))],
    );
    for chunk in big.chunks(1448) {
        h.feed(C, chunk);
    }
    h.feed(C, &add_call(P::Strict, true));
    h.feed(S, &add_reply(P::Strict, true));
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].query.as_deref(), Some("add16(1: 1, 2: 1)"));
    assert_eq!(h.out[0].status, Status::Ok);
}

#[test]
fn garbage_is_rejected() {
    let mut h = H::def();
    h.feed(C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.feed(S, b"\x80\x02\x00\x09junk");
    assert!(h.out.is_empty());
    assert!(h.errors >= 1);
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_and_truncated_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut samples: Vec<Vec<u8>> = Vec::new();
    for p in [P::Strict, P::Old, P::Compact] {
        for framed in [false, true] {
            let (c, r) = conversation(p, framed);
            samples.push(c);
            samples.push(r);
        }
    }
    for i in 0..12_000 {
        let mut data = match i % 3 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            _ => {
                let base = &samples[rng.below(samples.len())];
                let mut d = base[..rng.below(base.len() + 1)].to_vec();
                // Flip a few bytes.
                for _ in 0..rng.below(4) {
                    if !d.is_empty() {
                        let k = rng.below(d.len());
                        d[k] = rng.next() as u8;
                    }
                }
                d
            }
        };
        if i % 7 == 0 {
            data.insert(0, 0x82);
        }
        let mut h = H::def();
        let split = rng.below(data.len() + 1);
        let dir = if i % 2 == 0 { C } else { S };
        h.feed(dir, &data[..split]);
        h.feed(dir, &data[split..]);
        h.feed(dir.other(), &data);
        h.close();
    }
}

#[test]
fn wire_format_details() {
    // A compact long-form field id and a list of more than 14 elements.
    let args = vec![
        (-5, V::I32(1)),
        (1000, V::List(K::Byte, vec![V::Byte(1); 16])),
    ];
    assert_eq!(
        render(ThriftConfig::default(), P::Compact, args),
        "(-5: 1, 1000: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ...])"
    );
    let mut o = String::new();
    parser::format_double(f64::INFINITY, &mut o);
    parser::format_double(1e21, &mut o);
    assert_eq!(o, "+Inf1000000000000000000000");
    assert_eq!(
        parser::detect(b"\x00\x00\x00\x05\x80\x01", parser::Forced::default()),
        Ok(parser::Format {
            transport: parser::Transport::Framed,
            protocol: Protocol::Binary
        })
    );
}
