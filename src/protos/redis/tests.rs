//! Behaviour tests of the Redis parser, driven through the engine's [`Parser`] contract
//! by a small harness that buffers unconsumed bytes the way the TCP engine does.

use crate::protos::testing::XorShift;
use serde_json::Value;

use super::*;
use crate::config::RedisConfig;
use crate::event::ConnInfo;
use crate::event::{
    AgentInfo, EventEncoder, NOTE_LOSS_REQUEST, NOTE_LOSS_RESPONSE, NOTE_UNMATCHED_REQUEST,
    NOTE_UNMATCHED_RESPONSE, Status, Transaction,
};
use crate::protos::testing::{Harness, harness_newtype, test_conn};
use crate::protos::{Dir, Parser, Progress, ProtocolFactory};
use crate::time::Ts;

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

fn conn() -> ConnInfo {
    test_conn(6379)
}

harness_newtype!(
    /// The shared engine harness around a Redis parser, with fixed packet times.
    H,
    Box<dyn Parser>
);

impl H {
    fn new() -> H {
        H::with(RedisConfig::default())
    }

    fn with(cfg: RedisConfig) -> H {
        H(Harness::for_protocol(
            protocol,
            |c| c.protocols.redis = cfg,
            conn(),
            |f, conn| f.new_parser(conn),
        ))
    }

    fn feed_at(&mut self, dir: Dir, data: &[u8], ts: u64) -> Progress {
        self.0.feed(dir, data, ts)
    }

    fn feed(&mut self, dir: Dir, data: &[u8]) -> Progress {
        self.0.feed(dir, data, 1_000)
    }

    fn bytewise(&mut self, dir: Dir, data: &[u8]) {
        self.0.bytewise(dir, data, 1_000)
    }

    fn gap(&mut self, dir: Dir, len: u64) {
        self.0.gap(dir, len, 2_000)
    }

    fn close(&mut self) {
        self.0.close_at(3_000)
    }

    /// One exchange: request then reply.
    fn rr(&mut self, req: &[u8], resp: &[u8]) {
        self.feed(C, req);
        self.feed(S, resp);
    }

    fn json(&self, i: usize) -> Value {
        encode(&self.out[i])
    }

    fn jsons(&self) -> Vec<Value> {
        self.out.iter().map(encode).collect()
    }
}

fn encode(tx: &Transaction) -> Value {
    let enc = EventEncoder::new(AgentInfo::new("t".into(), vec![]));
    let mut buf = Vec::new();
    enc.encode(&conn(), tx, &mut buf);
    serde_json::from_slice(&buf).expect("valid JSON")
}

/// A command as RESP (what redis-cli sends).
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn rv(v: &Value) -> &Value {
    &v["redis"]["return_value"]
}

/// Summary of every transaction: (method, query, return value or error, status).
fn summary(h: &H) -> Vec<(String, String, String, &'static str)> {
    h.jsons()
        .iter()
        .map(|e| {
            let r = e["redis"]["return_value"]
                .as_str()
                .or(e["redis"]["error"].as_str())
                .unwrap_or("-")
                .to_string();
            (
                e["method"].as_str().unwrap_or("-").to_string(),
                e["query"].as_str().unwrap_or("-").to_string(),
                r,
                if e["status"] == "OK" { "OK" } else { "Error" },
            )
        })
        .collect()
}

#[test]
fn factory_respects_enabled_ports_and_limits() {
    let mut c = Config::default();
    let f = protocol(&c).expect("enabled by default");
    assert_eq!(f.name(), "redis");
    assert_eq!(f.ports(), &[6379]);
    c.protocols.redis.common.enabled = false;
    assert!(protocol(&c).is_none());
    assert!(crate::protos::REGISTRY.iter().any(|(n, _)| *n == "redis"));
}

#[test]
fn set_and_get() {
    let mut h = H::new();
    h.feed_at(C, &cmd(&["set", "key3", "me"]), 10);
    h.feed_at(S, b"+OK\r\n", 25);
    h.rr(&cmd(&["GET", "key3"]), b"$2\r\nme\r\n");
    assert_eq!(h.out.len(), 2);
    let e = h.json(0);
    assert_eq!(e["type"], "redis");
    assert_eq!(e["event"]["dataset"], "redis");
    assert_eq!(e["method"], "SET");
    assert_eq!(e["resource"], "key3");
    assert_eq!(e["query"], "set key3 me");
    assert_eq!(rv(&e), "OK");
    assert_eq!(e["status"], "OK");
    assert_eq!(e["source"]["bytes"], 31);
    assert_eq!(e["destination"]["bytes"], 5);
    assert_eq!(e["event"]["duration"], 15);
    assert!(e["redis"].get("error").is_none());
    assert!(e.get("request").is_none() && e.get("response").is_none());
    assert_eq!(rv(&h.json(1)), "me");
}

#[test]
fn send_request_and_response() {
    let mut cfg = RedisConfig::default();
    cfg.common.send_request = true;
    cfg.common.send_response = true;
    let mut h = H::with(cfg);
    h.rr(
        &cmd(&["LRANGE", "l", "0", "-1"]),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
    );
    let e = h.json(0);
    assert_eq!(e["request"], "LRANGE l 0 -1");
    assert_eq!(e["response"], "[a, b]");
}

#[test]
fn every_reply_type() {
    let cases: &[(&[u8], &str, bool)] = &[
        (b"+OK\r\n", "OK", false),
        (
            b"-ERR unknown command 'FOO'\r\n",
            "ERR unknown command 'FOO'",
            true,
        ),
        (b":1000\r\n", "1000", false),
        (b":-3\r\n", "-3", false),
        (b"$5\r\nhello\r\n", "hello", false),
        (b"$0\r\n\r\n", "", false),
        (b"$-1\r\n", "nil", false),
        (b"*-1\r\n", "nil", false),
        (b"*0\r\n", "[]", false),
        (b"*3\r\n:1\r\n$1\r\na\r\n$-1\r\n", "[1, a, nil]", false),
        (
            b"*2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*1\r\n$1\r\nc\r\n",
            "[a, [b, [c]]]",
            false,
        ),
        (b"*2\r\n+OK\r\n-WRONGTYPE x\r\n", "[OK, WRONGTYPE x]", false),
        // RESP3
        (b"_\r\n", "nil", false),
        (
            b"%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n",
            "{a: 1, b: [2]}",
            false,
        ),
        (b"%0\r\n", "{}", false),
        (b"~2\r\n+x\r\n+y\r\n", "[x, y]", false),
        (b",3.14\r\n", "3.14", false),
        (b",inf\r\n", "inf", false),
        (b"#t\r\n", "true", false),
        (b"#f\r\n", "false", false),
        (
            b"(3492890328409238509324850943850943825024385\r\n",
            "3492890328409238509324850943850943825024385",
            false,
        ),
        (b"=15\r\ntxt:Some string\r\n", "Some string", false),
        (
            b"!21\r\nSYNTAX invalid syntax\r\n",
            "SYNTAX invalid syntax",
            true,
        ),
        (
            b"|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n:90\r\n+real\r\n",
            "real",
            false,
        ),
        (
            b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n",
            "[1, 2]",
            false,
        ),
        (
            b"|1\r\n+a\r\n+b\r\n-ERR after attribute\r\n",
            "ERR after attribute",
            true,
        ),
        (b"*1\r\n>2\r\n+x\r\n+y\r\n", "[[x, y]]", false),
    ];
    for (reply, want, error) in cases {
        for bytewise in [false, true] {
            let mut h = H::new();
            h.feed(C, &cmd(&["GET", "k"]));
            if bytewise {
                h.bytewise(S, reply);
            } else {
                h.feed(S, reply);
            }
            let ctx = String::from_utf8_lossy(reply);
            assert_eq!(h.out.len(), 1, "{ctx}");
            let e = h.json(0);
            if *error {
                assert_eq!(e["redis"]["error"], *want, "{ctx}");
                assert_eq!(e["status"], "Error", "{ctx}");
                assert!(e["redis"].get("return_value").is_none(), "{ctx}");
            } else {
                assert_eq!(rv(&e), *want, "{ctx}");
                assert_eq!(e["status"], "OK", "{ctx}");
            }
            assert_eq!(e["destination"]["bytes"], reply.len(), "{ctx}");
            assert_eq!(h.counters.parse_errors, 0, "{ctx}");
        }
    }
}

#[test]
fn push_frames_are_not_replies() {
    let mut h = H::new();
    h.feed(C, &cmd(&["HELLO", "3"]));
    h.feed(S, b"%1\r\n+proto\r\n:3\r\n");
    h.feed(C, &cmd(&["GET", "tk"]));
    // An invalidation push before the reply, and one alone afterwards.
    h.feed(
        S,
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\ntk\r\n$1\r\nv\r\n",
    );
    h.feed(S, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\ntk\r\n");
    h.feed(C, &cmd(&["PING"]));
    h.feed(S, b"+PONG\r\n");
    let s = summary(&h);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].2, "{proto: 3}");
    assert_eq!(s[1].2, "v");
    assert_eq!(s[2].2, "PONG");
    assert_eq!(h.counters.unmatched_responses, 0);
}

#[test]
fn inline_commands() {
    let mut h = H::new();
    h.rr(b"PING\r\n", b"+PONG\r\n");
    h.rr(b"  set   inl  42 \r\n", b"+OK\r\n");
    // Empty lines are ignored by the server: no transaction.
    h.rr(b"\r\n\r\nGET inl\n", b"$2\r\n42\r\n");
    let e: Vec<_> = h.jsons();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0]["method"], "PING");
    assert!(e[0].get("resource").is_none());
    assert_eq!(e[0]["query"], "PING");
    assert_eq!(e[0]["source"]["bytes"], 6);
    assert_eq!(e[1]["method"], "SET");
    assert_eq!(e[1]["resource"], "inl");
    assert_eq!(e[1]["query"], "set   inl  42");
    assert_eq!(e[2]["query"], "GET inl");
    assert_eq!(e[2]["resource"], "inl");
    assert_eq!(rv(&e[2]), "42");
}

#[test]
fn methods_and_resources() {
    // As Packetbeat: the method upper-cased (two words for a container command), the
    // resource the first argument after it, as sent.
    let cases: &[(&[&str], &str, Option<&str>)] = &[
        (&["get", "k"], "GET", Some("k")),
        (&["SET", "key3", "me"], "SET", Some("key3")),
        (&["PING"], "PING", None),
        (&["PING", "hello"], "PING", Some("hello")),
        (&["SELECT", "1"], "SELECT", Some("1")),
        (
            &["config", "get", "maxmemory"],
            "CONFIG GET",
            Some("maxmemory"),
        ),
        (
            &["CONFIG", "SET", "save", "900 1"],
            "CONFIG SET",
            Some("save"),
        ),
        (&["CONFIG", "RESETSTAT"], "CONFIG RESETSTAT", None),
        (&["CONFIG"], "CONFIG", None),
        (&["CONFIG", "not a word"], "CONFIG", Some("not a word")),
        (&["CLIENT", "LIST"], "CLIENT LIST", None),
        (
            &["client", "setname", "Conn1"],
            "CLIENT SETNAME",
            Some("Conn1"),
        ),
        (
            &["SCRIPT", "LOAD", "return 1"],
            "SCRIPT LOAD",
            Some("return 1"),
        ),
        (&["DEBUG", "OBJECT", "k"], "DEBUG OBJECT", Some("k")),
        (&["DEBUG", "PROTOCOL", "map"], "DEBUG PROTOCOL", Some("map")),
        (&["COMMAND", "DOCS"], "COMMAND DOCS", None),
        (&["MEMORY", "USAGE", "k"], "MEMORY USAGE", Some("k")),
        // One-word commands in Packetbeat.
        (&["OBJECT", "ENCODING", "k"], "OBJECT", Some("ENCODING")),
        (&["slowlog", "get", "10"], "SLOWLOG", Some("get")),
        (&["PUBSUB", "CHANNELS"], "PUBSUB", Some("CHANNELS")),
        (
            &["EVAL", "return 1", "1", "k1", "a"],
            "EVAL",
            Some("return 1"),
        ),
        (&["PUBLISH", "news", "hi"], "PUBLISH", Some("news")),
        (&["MSET", "a", "1", "b", "2"], "MSET", Some("a")),
        (&["GET", ""], "GET", Some("")),
        (&["COMMAND"], "COMMAND", None),
    ];
    for (args, method, resource) in cases {
        let mut h = H::new();
        h.rr(&cmd(args), b"+OK\r\n");
        let e = h.json(0);
        assert_eq!(e["method"], *method, "{args:?}");
        assert_eq!(e["resource"].as_str(), *resource, "{args:?}");
        // The command line, without surrounding blanks.
        assert_eq!(e["query"], args.join(" ").trim(), "{args:?}");
    }
}

fn conversation() -> (Vec<u8>, Vec<u8>) {
    let mut req = Vec::new();
    let mut resp = Vec::new();
    for (c, r) in [
        (cmd(&["SET", "a", "1"]), &b"+OK\r\n"[..]),
        (b"PING\r\n".to_vec(), b"+PONG\r\n"),
        (
            cmd(&["HGETALL", "h"]),
            b"*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$0\r\n\r\n",
        ),
        (cmd(&["NOPE"]), b"-ERR unknown command\r\n"),
        (cmd(&["GET", "x"]), b"$-1\r\n"),
        (
            cmd(&["HELLO", "3"]),
            b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n",
        ),
        (
            cmd(&["DEBUG", "PROTOCOL", "attrib"]),
            b"|1\r\n+k\r\n*2\r\n$1\r\na\r\n:90\r\n$4\r\nreal\r\n",
        ),
        (
            cmd(&["DEBUG", "PROTOCOL", "push"]),
            b">2\r\n$1\r\np\r\n:42\r\n$4\r\nreal\r\n",
        ),
        (cmd(&["ZSCORE", "z", "m"]), b",1.5\r\n"),
        (cmd(&["X"]), b"=8\r\ntxt:a\r\nb\r\n"),
    ] {
        req.extend_from_slice(&c);
        resp.extend_from_slice(r);
    }
    (req, resp)
}

fn exchange_json(h: &H) -> Vec<String> {
    h.out.iter().map(|t| encode(t).to_string()).collect()
}

#[test]
fn byte_at_a_time_equals_one_shot() {
    let (req, resp) = conversation();
    let mut a = H::new();
    a.feed(C, &req);
    a.feed(S, &resp);
    let mut b = H::new();
    b.bytewise(C, &req);
    b.bytewise(S, &resp);
    assert_eq!(a.out.len(), 10);
    assert_eq!(exchange_json(&a), exchange_json(&b));
    assert_eq!(rv(&a.json(9)), "a\r\nb");
    assert_eq!(rv(&a.json(6)), "real");
    assert_eq!(a.counters.parse_errors + b.counters.parse_errors, 0);
    // Every split point of the reply stream gives the same events too.
    for cut in 0..resp.len() {
        let mut c = H::new();
        c.feed(C, &req);
        c.feed(S, &resp[..cut]);
        c.feed(S, &resp[cut..]);
        assert_eq!(exchange_json(&a), exchange_json(&c), "cut at {cut}");
    }
}

#[test]
fn timestamps_are_of_first_bytes() {
    let mut h = H::new();
    let req = cmd(&["SET", "k", "v"]);
    h.feed_at(C, &req[..5], 100);
    h.feed_at(C, &req[5..], 200);
    h.feed_at(S, b"+O", 300);
    h.feed_at(S, b"K\r\n", 400);
    let t = &h.out[0];
    assert_eq!(t.start, Ts(100));
    assert_eq!(t.end, Some(Ts(300)));
}

#[test]
fn hostile_deep_nesting_is_bounded() {
    let depth = 100_000;
    let mut reply = Vec::with_capacity(depth * 4 + 8);
    for _ in 0..depth {
        reply.extend_from_slice(b"*1\r\n");
    }
    reply.extend_from_slice(b":7\r\n");
    let mut h = H::new();
    h.rr(&cmd(&["GET", "a"]), &reply);
    h.rr(&cmd(&["GET", "b"]), b"$1\r\nb\r\n");
    assert_eq!(h.out.len(), 2);
    let v = h.json(0);
    let text = rv(&v).as_str().unwrap();
    assert!(text.starts_with("[[[[") && text.ends_with("..."), "{text}");
    assert!(text.len() <= parser::MAX_TEXT + 3);
    assert_eq!(h.json(0)["destination"]["bytes"], reply.len());
    assert_eq!(rv(&h.json(1)), "b");
    // Deep maps, sets, attributes and pushes mixed, then a wide array inside.
    let mut r2 = Vec::new();
    for i in 0..50_000 {
        r2.extend_from_slice(match i % 4 {
            0 => b"%1\r\n+k\r\n",
            1 => b"~1\r\n",
            2 => b"|1\r\n+a\r\n+b\r\n*1\r\n",
            _ => b">1\r\n",
        });
    }
    r2.extend_from_slice(b"*3\r\n:1\r\n:2\r\n:3\r\n");
    h.rr(&cmd(&["GET", "c"]), &r2);
    h.rr(&cmd(&["GET", "d"]), b"+OK\r\n");
    assert_eq!(h.out.len(), 4);
    assert_eq!(rv(&h.json(3)), "OK");
    assert_eq!(h.counters.parse_errors, 0);
}

#[test]
fn huge_bulk_streams_with_bounded_memory() {
    let size = 50 * 1024 * 1024;
    let chunk = vec![b'x'; 64 * 1024];
    let mut h = H::new();
    // A 50 MB SET then a 50 MB GET reply, in packet-sized pieces.
    h.feed(
        C,
        format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${size}\r\n").as_bytes(),
    );
    for _ in 0..size / chunk.len() {
        h.feed(C, &chunk);
        assert!(h.held(C) == 0);
    }
    h.feed(C, b"\r\n");
    h.feed(S, b"+OK\r\n");
    h.feed(C, &cmd(&["GET", "big"]));
    h.feed(S, format!("${size}\r\n").as_bytes());
    for _ in 0..size / chunk.len() {
        h.feed(S, &chunk);
        assert!(h.held(S) == 0);
    }
    h.feed(S, b"\r\n");
    assert_eq!(h.out.len(), 2);
    let set = h.json(0);
    let q = set["query"].as_str().unwrap();
    assert!(q.starts_with("SET big xxxx") && q.ends_with("..."));
    assert_eq!(q.len(), parser::MAX_TEXT + 3);
    assert_eq!(set["resource"], "big");
    let hdr = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${size}\r\n").len();
    assert_eq!(set["source"]["bytes"], hdr + size + 2);
    let get = h.json(1);
    let v = rv(&get).as_str().unwrap();
    assert_eq!(v.len(), parser::MAX_TEXT + 3);
    assert_eq!(
        get["destination"]["bytes"],
        format!("${size}\r\n").len() + size + 2
    );
}

#[test]
fn pipelining_a_thousand_commands() {
    let mut h = H::new();
    let mut req = Vec::new();
    let mut resp = Vec::new();
    for i in 0..1000 {
        req.extend_from_slice(&cmd(&["INCR", &format!("c{i}")]));
        resp.extend_from_slice(format!(":{i}\r\n").as_bytes());
    }
    h.feed(C, &req);
    // Replies split at odd boundaries.
    for piece in resp.chunks(777) {
        h.feed(S, piece);
    }
    assert_eq!(h.out.len(), 1000);
    for (i, e) in h.jsons().iter().enumerate() {
        assert_eq!(e["resource"], format!("c{i}"));
        assert_eq!(rv(e), i.to_string().as_str());
    }
    assert_eq!(
        h.counters.unmatched_requests + h.counters.unmatched_responses,
        0
    );
}

#[test]
fn queue_bounds_evict_and_count() {
    let mut cfg = RedisConfig::default();
    cfg.common.queue_max_messages = 10;
    let mut h = H::with(cfg);
    for i in 0..15 {
        h.feed(C, &cmd(&["GET", &format!("k{i}")]));
    }
    assert_eq!(h.counters.pairing_evictions, 5);
    assert_eq!(h.out.len(), 5);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
    assert_eq!(h.out[0].resource.as_deref(), Some("k0"));
    // The oldest surviving request gets the next reply.
    h.feed(S, b"+r5\r\n");
    assert_eq!(h.out[5].resource.as_deref(), Some("k5"));
    assert_eq!(h.out[5].status, Status::Ok);

    // A byte bound: each queued request is a few hundred bytes of memory.
    let mut cfg = RedisConfig::default();
    cfg.common.queue_max_bytes = 2048;
    let mut h = H::with(cfg);
    for i in 0..100 {
        h.feed(C, &cmd(&["GET", &format!("k{i}")]));
    }
    assert!(h.counters.pairing_evictions > 80, "{:?}", h.counters);
    assert_eq!(h.counters.unmatched_requests, h.counters.pairing_evictions);
}

#[test]
fn pubsub_resp2() {
    let mut h = H::new();
    h.feed(C, &cmd(&["SUBSCRIBE", "news", "weather"]));
    h.feed(
        S,
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$7\r\nweather\r\n:2\r\n",
    );
    h.feed(C, &cmd(&["PSUBSCRIBE", "w*"]));
    h.feed(S, b"*3\r\n$10\r\npsubscribe\r\n$2\r\nw*\r\n:3\r\n");
    // Published messages: never replies.
    h.feed(S, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    h.feed(
        S,
        b"*4\r\n$8\r\npmessage\r\n$2\r\nw*\r\n$7\r\nweather\r\n$5\r\nsunny\r\n",
    );
    h.feed(C, &cmd(&["PING"]));
    // A message pushed between the PING and its reply does not take its place.
    h.feed(S, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$3\r\nnow\r\n");
    h.feed(S, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    h.feed(C, &cmd(&["UNSUBSCRIBE"]));
    h.feed(
        S,
        b"*3\r\n$11\r\nunsubscribe\r\n$7\r\nweather\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    h.feed(C, &cmd(&["PUNSUBSCRIBE", "w*"]));
    h.feed(S, b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nw*\r\n:0\r\n");
    h.rr(
        &cmd(&["LRANGE", "l", "0", "-1"]),
        b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n",
    );
    let s = summary(&h);
    let got: Vec<_> = s.iter().map(|t| (t.0.as_str(), t.2.as_str())).collect();
    assert_eq!(
        got,
        [
            ("SUBSCRIBE", "[subscribe, news, 1]"),
            ("PSUBSCRIBE", "[psubscribe, w*, 3]"),
            ("PING", "[pong, ]"),
            ("UNSUBSCRIBE", "[unsubscribe, weather, 2]"),
            ("PUNSUBSCRIBE", "[punsubscribe, w*, 0]"),
            // Out of subscribe mode, a list that looks like a message is a reply.
            ("LRANGE", "[message, a, b]"),
        ]
    );
    assert_eq!(
        h.counters.unmatched_responses + h.counters.unmatched_requests,
        0
    );
}

#[test]
fn pubsub_pipelined_subscribes_pair_with_their_own_confirmations() {
    let mut h = H::new();
    h.feed(C, &cmd(&["SUBSCRIBE", "a", "b"]));
    h.feed(C, &cmd(&["SUBSCRIBE", "c"]));
    h.feed(
        S,
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:3\r\n",
    );
    let s = summary(&h);
    assert_eq!(s[0].2, "[subscribe, a, 1]");
    assert_eq!(s[1].2, "[subscribe, c, 3]");
    assert_eq!(s.len(), 2);
}

#[test]
fn pubsub_resp3_pushes() {
    let mut h = H::new();
    h.rr(&cmd(&["HELLO", "3"]), b"%1\r\n+proto\r\n:3\r\n");
    h.feed(C, &cmd(&["SUBSCRIBE", "ch"]));
    h.feed(S, b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    h.feed(S, b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    h.rr(
        &cmd(&["GET", "k"]),
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nyo\r\n$1\r\nv\r\n",
    );
    h.feed(C, &cmd(&["UNSUBSCRIBE", "ch"]));
    h.feed(S, b">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n");
    let s = summary(&h);
    let got: Vec<_> = s.iter().map(|t| (t.0.as_str(), t.2.as_str())).collect();
    assert_eq!(
        got,
        [
            ("HELLO", "{proto: 3}"),
            ("SUBSCRIBE", "[subscribe, ch, 1]"),
            ("GET", "v"),
            ("UNSUBSCRIBE", "[unsubscribe, ch, 0]"),
        ]
    );
}

#[test]
fn multi_exec() {
    let mut h = H::new();
    h.rr(&cmd(&["MULTI"]), b"+OK\r\n");
    h.rr(&cmd(&["SET", "mk", "1"]), b"+QUEUED\r\n");
    h.rr(&cmd(&["INCR", "mk"]), b"+QUEUED\r\n");
    h.rr(&cmd(&["LPUSH", "mk", "x"]), b"+QUEUED\r\n");
    h.rr(
        &cmd(&["EXEC"]),
        b"*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    h.rr(&cmd(&["MULTI"]), b"+OK\r\n");
    h.rr(&cmd(&["NOSUCH"]), b"-ERR unknown command 'NOSUCH'\r\n");
    h.rr(
        &cmd(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    let s = summary(&h);
    assert_eq!(s.len(), 8);
    assert_eq!(
        s[1],
        ("SET".into(), "SET mk 1".into(), "QUEUED".into(), "OK")
    );
    assert_eq!(
        s[4].2,
        "[OK, 2, WRONGTYPE Operation against a key holding the wrong kind of value]"
    );
    assert_eq!(s[4].3, "OK");
    assert_eq!(s[6].3, "Error");
    assert_eq!(s[7].0, "EXEC");
    assert_eq!(s[7].3, "Error");
}

#[test]
fn monitor_feed_is_not_replies() {
    let mut h = H::new();
    h.rr(&cmd(&["MONITOR"]), b"+OK\r\n");
    h.feed(S, b"+1700000000.123456 [0 10.0.0.3:5000] \"GET\" \"k\"\r\n");
    h.feed(
        S,
        b"+1700000000.223456 [0 10.0.0.3:5000] \"SET\" \"k\" \"v\"\r\n",
    );
    h.close();
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.counters.unmatched_responses, 0);
}

#[test]
fn unmatched_request_and_response() {
    let mut h = H::new();
    h.feed(S, b"+OK\r\n");
    h.feed(C, &cmd(&["GET", "k"]));
    h.close();
    assert_eq!(h.out.len(), 2);
    let resp = h.json(0);
    assert_eq!(resp["status"], "Error");
    assert_eq!(resp["error"]["message"], NOTE_UNMATCHED_RESPONSE);
    assert_eq!(rv(&resp), "OK");
    assert!(resp.get("method").is_none());
    let req = h.json(1);
    assert_eq!(req["status"], "Error");
    assert_eq!(req["error"]["message"], NOTE_UNMATCHED_REQUEST);
    assert_eq!(req["method"], "GET");
    assert!(req.get("redis").is_none());
    assert_eq!(h.counters.unmatched_requests, 1);
    assert_eq!(h.counters.unmatched_responses, 1);
}

#[test]
fn expire_times_out_requests() {
    let mut h = H::new();
    h.feed_at(C, &cmd(&["BLPOP", "q", "0"]), 1_000);
    h.call(5_000_000_000, |p, ctx| p.expire(Ts(5_000_000_000), ctx));
    assert!(h.out.is_empty());
    h.call(11_000_000_000, |p, ctx| p.expire(Ts(11_000_000_000), ctx));
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
}

#[test]
fn gap_in_reply_publishes_it_and_resyncs() {
    let mut h = H::new();
    h.feed(C, &cmd(&["GET", "big"]));
    h.feed(C, &cmd(&["GET", "small"]));
    h.feed(S, b"$10000\r\nxxxx");
    h.gap(S, 5000);
    // The rest of the lost value arrives, then the next reply.
    h.feed(S, &[b'x'; 4996]);
    h.feed(S, b"\r\n$3\r\nabc\r\n");
    assert_eq!(h.out.len(), 2, "{:?}", summary(&h));
    let first = h.json(0);
    assert_eq!(first["error"]["message"], NOTE_LOSS_RESPONSE);
    assert_eq!(first["resource"], "big");
    assert_eq!(rv(&first), "xxxx");
    let second = h.json(1);
    assert_eq!(second["resource"], "small");
    assert_eq!(rv(&second), "abc");
    // Resynchronising is not an error to report.
    assert_eq!(h.counters.parse_errors, 0);
}

#[test]
fn gap_in_request_publishes_it_and_resyncs() {
    let mut h = H::new();
    h.feed(C, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nab");
    h.gap(C, 98);
    h.feed(C, b"\r\n");
    h.feed(C, &cmd(&["GET", "k"]));
    h.feed(S, b"+OK\r\n$3\r\nabc\r\n");
    let e = h.jsons();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["method"], "SET");
    assert_eq!(e[0]["error"]["message"], NOTE_LOSS_REQUEST);
    assert_eq!(rv(&e[0]), "OK");
    assert_eq!(e[1]["method"], "GET");
    assert_eq!(rv(&e[1]), "abc");
}

#[test]
fn gap_between_messages_resyncs_at_once() {
    let mut h = H::new();
    h.feed(C, &cmd(&["GET", "a"]));
    h.gap(C, 40);
    h.feed(C, &cmd(&["GET", "b"]));
    h.feed(S, b"$1\r\nA\r\n");
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].resource.as_deref(), Some("a"));
}

#[test]
fn garbage_then_valid_reply() {
    let mut h = H::new();
    h.feed(C, &cmd(&["GET", "a"]));
    h.feed(C, &cmd(&["GET", "b"]));
    h.feed(S, b"\x00\x01garbage\r\n$1\r\nB\r\n");
    assert_eq!(h.counters.parse_errors, 1);
    assert_eq!(h.out.len(), 1);
    assert_eq!(rv(&h.json(0)), "B");
    // A bulk without its CRLF, then a valid reply.
    h.feed(C, &cmd(&["GET", "c"]));
    h.feed(S, b"$1\r\nXYZ\r\n:5\r\n");
    assert_eq!(h.counters.parse_errors, 2);
    assert_eq!(rv(&h.json(1)), "5");
    // Requests: a non-bulk element in a multibulk.
    h.feed(C, b"*2\r\n:1\r\n:2\r\n");
    assert_eq!(h.counters.parse_errors, 3);
}

#[test]
fn tls_stops_following() {
    let mut h = H::new();
    assert_eq!(h.feed(C, &[0x16, 0x03, 0x01, 0x00, 0x05]), Progress::Stop);
}

#[test]
fn long_values_are_cut_with_an_ellipsis() {
    let mut h = H::new();
    let long = "é".repeat(1000);
    let mut reply = Vec::new();
    reply.extend_from_slice(format!("*2\r\n${}\r\n", long.len()).as_bytes());
    reply.extend_from_slice(long.as_bytes());
    reply.extend_from_slice(b"\r\n:1\r\n");
    h.rr(&cmd(&["LRANGE", "l", "0", "-1"]), &reply);
    let v = h.json(0);
    let text = rv(&v).as_str().unwrap();
    assert!(text.starts_with("[éé"));
    assert!(
        text.ends_with("é..."),
        "cut on a character boundary: {text}"
    );
    assert!(text.len() <= parser::MAX_TEXT + 3);
}

#[test]
fn invalid_utf8_is_replaced() {
    let mut h = H::new();
    h.rr(&cmd(&["GET", "bin"]), b"$3\r\n\xff\x00a\r\n");
    assert_eq!(rv(&h.json(0)), "\u{fffd}\u{0}a");
}

#[test]
fn close_publishes_messages_in_flight() {
    let mut h = H::new();
    h.feed(C, &cmd(&["GET", "a"]));
    h.feed(S, b"$10\r\nabc");
    h.close();
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_LOSS_RESPONSE.to_string()]);
    assert_eq!(h.out[0].status, Status::Ok);
}

#[test]
fn random_and_truncated_buffers_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (req, resp) = conversation();
    let alphabet = b"*$:+-_,#(=!%~>|\r\n0123456789-ab ";
    for round in 0..12_000 {
        let mut h = H::new();
        let n = (rng.next() % 200) as usize;
        let mut data: Vec<u8> = (0..n)
            .map(|_| {
                let r = rng.next();
                if r.is_multiple_of(3) {
                    r as u8
                } else {
                    alphabet[(r >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        if round % 4 == 0 {
            // A valid prefix, truncated, then noise.
            let src = if round % 8 == 0 { &req } else { &resp };
            let cut = (rng.next() as usize) % src.len();
            let mut v = src[..cut].to_vec();
            v.extend_from_slice(&data);
            data = v;
        }
        let dir = if rng.next().is_multiple_of(2) { C } else { S };
        let step = 1 + (rng.next() % 17) as usize;
        for piece in data.chunks(step) {
            h.feed(dir, piece);
            if rng.next().is_multiple_of(50) {
                h.gap(dir, rng.next() % 100);
            }
            if rng.next().is_multiple_of(50) {
                h.feed(dir.other(), &data[..data.len().min(7)]);
            }
        }
        h.call(u64::MAX / 2, |p, ctx| p.expire(Ts(u64::MAX / 2), ctx));
        h.close();
        for t in &h.out {
            let _ = encode(t);
        }
    }
}

#[test]
fn bulk_payloads_read_in_one_piece_or_streamed_agree() {
    // Whole, bytewise: the same events, for a good payload, one whose CRLF is
    // missing (unparseable, then the next reply resynchronises) and one whose length
    // runs past the data (waits for more; never allocates it).
    let reply: &[u8] = b"*2\r\n$5\r\nhello\r\n$3\r\nabcXY\r\n+OK\r\n";
    let mut got = Vec::new();
    for bytewise in [false, true] {
        let mut h = H::new();
        h.feed(C, &cmd(&["MGET", "a", "b"]));
        h.feed(C, &cmd(&["PING"]));
        if bytewise {
            h.bytewise(S, reply);
        } else {
            h.feed(S, reply);
        }
        h.feed(C, &cmd(&["GET", "big"]));
        h.feed(S, b"$9223372036854775807\r\nabc");
        h.close();
        got.push(summary(&h));
    }
    assert_eq!(got[0], got[1]);
    let s = |x: &str| x.to_string();
    assert_eq!(
        got[0],
        vec![
            // the broken array is dropped; the next reply found answers the oldest
            (s("MGET"), s("MGET a b"), s("OK"), "OK"),
            (s("PING"), s("PING"), s("-"), "Error"),
            (s("GET"), s("GET big"), s("-"), "Error"),
        ]
    );
}

/// A reply shaped like `COMMAND DOCS`: a map of many entries, each a map of strings,
/// numbers, nested arrays (empty ones too, and some nested past `MAX_DEPTH`), a nil,
/// a verbatim string, an error string and attributes, far over the rendering cap.
fn docs_reply(entries: usize) -> Vec<u8> {
    let bulk = |s: &str| format!("${}\r\n{s}\r\n", s.len());
    let mut r = format!("%{entries}\r\n");
    for i in 0..entries {
        r += &bulk(&format!("cmd{i}"));
        r += "%5\r\n";
        r += &bulk("summary");
        r += &bulk(&"word ".repeat(i % 7 + 1));
        r += &bulk("since");
        if i % 10 == 3 {
            // Nested past MAX_DEPTH.
            r += &"*1\r\n".repeat(40);
        }
        r += ":7\r\n";
        r += &bulk("arguments");
        r += "*3\r\n*0\r\n~2\r\n+a\r\n,1.5\r\n*2\r\n$-1\r\n=8\r\ntxt:abcd\r\n";
        r += &bulk("group");
        r += "-ERR not a real error\r\n";
        r += &bulk("flags");
        if i % 10 == 5 {
            // An attribute before the value (it is not an element itself).
            r += "|1\r\n+ttl\r\n:3\r\n";
        }
        r += ">1\r\n(12345678901234567890\r\n";
    }
    r.into_bytes()
}

#[test]
fn a_reply_cut_deep_inside_ends_where_its_framing_says() {
    // The rendering is cut inside the third level; the levels under the top one
    // are then walked as one count of pending elements.
    let mut reply = format!("*2\r\n*2\r\n*3\r\n$2000\r\n{}\r\n", "x".repeat(2000));
    reply += ":1\r\n*0\r\n|1\r\n+ttl\r\n:9\r\n:3\r\n%1\r\n+k\r\n*1\r\n:4\r\n";
    let req = [cmd(&["GET", "deep"]), cmd(&["PING"])].concat();
    let resp = [reply.as_bytes(), b"+PONG\r\n"].concat();
    for split in [resp.len(), 1, 2025, 2040, 2055] {
        let mut h = H::new();
        h.feed(C, &req);
        if split == 1 {
            h.bytewise(S, &resp);
        } else {
            h.feed(S, &resp[..split]);
            h.feed(S, &resp[split..]);
        }
        let s = summary(&h);
        assert_eq!(s.len(), 2, "split {split}: {s:?}");
        assert_eq!((s[1].0.as_str(), s[1].2.as_str()), ("PING", "PONG"));
        assert_eq!(h.jsons()[0]["destination"]["bytes"], reply.len() as u64);
    }
}

#[test]
fn large_nested_replies_read_alike_in_any_pieces() {
    let mut cfg = RedisConfig::default();
    cfg.common.send_response = true;
    let req = [cmd(&["COMMAND", "DOCS"]), cmd(&["PING"])].concat();
    let good = [docs_reply(60), b"+PONG\r\n".to_vec()].concat();
    // A broken element deep inside, after the rendering was cut.
    let mut broken = good.clone();
    let at = broken.len() - 200;
    let i = at + broken[at..].iter().position(|&b| b == b'$').unwrap();
    broken[i] = b'?';
    let docs_len = good.len() - b"+PONG\r\n".len();
    for (n, resp) in [good, broken].into_iter().enumerate() {
        let mut whole = H::with(cfg.clone());
        whole.feed(C, &req);
        whole.feed(S, &resp);
        let want = exchange_json(&whole);
        if n == 0 {
            // The reply ends exactly where it should: the next one answers PING.
            let s = summary(&whole);
            assert_eq!(s.len(), 2, "{s:?}");
            assert_eq!((s[0].0.as_str(), s[0].3), ("COMMAND DOCS", "OK"));
            assert_eq!((s[1].0.as_str(), s[1].2.as_str()), ("PING", "PONG"));
            assert_eq!(whole.jsons()[0]["destination"]["bytes"], docs_len as u64);
        }
        let mut bytes = H::with(cfg.clone());
        bytes.feed(C, &req);
        bytes.bytewise(S, &resp);
        assert_eq!(want, exchange_json(&bytes));
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20 {
            let mut h = H::with(cfg.clone());
            h.feed(C, &req);
            let mut at = 0;
            while at < resp.len() {
                let n = (1 + rng.next() as usize % 3000).min(resp.len() - at);
                h.feed(S, &resp[at..at + n]);
                at += n;
            }
            assert_eq!(want, exchange_json(&h));
        }
    }
}
