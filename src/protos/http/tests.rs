//! Behaviour tests of the HTTP parser, driven through the engine's [`Parser`] contract
//! by a small harness that buffers unconsumed bytes the way the TCP engine does.

use crate::protos::testing::XorShift;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::config::HttpConfig;
use crate::event::{
    AgentInfo, ConnInfo, EventEncoder, NOTE_LOSS_REQUEST, NOTE_LOSS_RESPONSE,
    NOTE_UNMATCHED_REQUEST, NOTE_UNMATCHED_RESPONSE, Status, Transaction, Transport,
};
use crate::protos::testing::{Harness, harness_newtype, test_conn};
use crate::protos::{Dir, Parser, Progress, ProtocolFactory};
use crate::time::Ts;

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

fn conn() -> ConnInfo {
    test_conn(80)
}

harness_newtype!(
    /// The shared engine harness around an HTTP parser.
    H,
    HttpParser
);

impl H {
    fn new(cfg: HttpConfig) -> H {
        H::with_conn(cfg, &conn())
    }

    fn with_conn(cfg: HttpConfig, conn: &ConnInfo) -> H {
        H(Harness::for_protocol(
            protocol,
            |c| c.protocols.http = cfg,
            conn.clone(),
            |f, conn| HttpParser::new(f.settings.clone(), conn, f.limits),
        ))
    }

    fn json(&self, i: usize) -> Value {
        encode(&self.out[i])
    }
}

fn encode(tx: &Transaction) -> Value {
    let enc = EventEncoder::new(AgentInfo::new("wb".into(), vec![]));
    let mut out = Vec::new();
    enc.encode(&conn(), tx, &mut out);
    serde_json::from_slice(&out).expect("valid JSON")
}

fn cfg() -> HttpConfig {
    HttpConfig::default()
}

const GET: &[u8] = b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n";
const OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn factory_respects_enabled_and_ports() {
    let mut c = Config::default();
    c.protocols.http.common.ports = vec![8888];
    c.protocols.http.common.transaction_timeout = Duration::from_secs(3);
    let f = protocol(&c).unwrap();
    assert_eq!(f.name(), "http");
    assert_eq!(f.ports(), &[8888]);
    assert_eq!(f.connection_timeout(), Duration::from_secs(3));
    assert!(f.max_buffer() > parser::MAX_HEAD);
    let _p = f.new_parser(&conn());
    c.protocols.http.common.enabled = false;
    assert!(protocol(&c).is_none());
}

#[test]
fn simple_get() {
    let mut h = H::new(cfg());
    assert_eq!(
        h.feed(C, GET, 1_000),
        Progress::Consumed {
            consumed: GET.len(),
            need: 0
        }
    );
    assert!(h.out.is_empty());
    h.feed(S, OK, 5_000);
    assert_eq!(h.out.len(), 1);
    let t = &h.out[0];
    assert_eq!(t.kind, "http");
    assert_eq!(t.start, Ts(1_000));
    assert_eq!(t.end, Some(Ts(5_000)));
    assert_eq!(t.status, Status::Ok);
    assert_eq!(t.method.as_deref(), Some("GET"));
    assert_eq!(t.query.as_deref(), Some("GET /index.html"));
    assert_eq!(t.path.as_deref(), Some("/index.html"));
    assert_eq!(t.params.as_deref(), Some("a=1"));
    assert_eq!(t.destination_domain.as_deref(), Some("example.com"));
    assert_eq!(t.request_bytes, GET.len() as u64);
    assert_eq!(t.response_bytes, OK.len() as u64);
    assert!(t.request.is_none() && t.response.is_none());
    let j = h.json(0);
    assert_eq!(j["http"]["version"], "1.1");
    assert_eq!(j["http"]["request"]["method"], "GET");
    assert_eq!(j["http"]["request"]["bytes"], GET.len());
    assert!(j["http"]["request"].get("body").is_none());
    assert_eq!(j["http"]["response"]["status_code"], 200);
    assert_eq!(j["http"]["response"]["status_phrase"], "ok");
    assert_eq!(j["http"]["response"]["bytes"], OK.len());
    assert_eq!(j["http"]["response"]["body"]["bytes"], 5);
    assert_eq!(j["http"]["response"]["mime_type"], "text/html");
    assert!(j["http"]["response"]["body"].get("content").is_none());
    assert!(j["http"]["request"].get("headers").is_none());
    assert_eq!(j["url"]["full"], "http://example.com/index.html?a=1");
    assert_eq!(j["url"]["scheme"], "http");
    assert_eq!(j["url"]["domain"], "example.com");
    assert_eq!(j["url"]["path"], "/index.html");
    assert_eq!(j["url"]["query"], "a=1");
    assert_eq!(j["url"]["extension"], "html");
    assert!(j["url"].get("port").is_none());
    assert_eq!(j["user_agent"]["original"], "curl/8");
    assert_eq!(h.counters.transactions, 1);
}

#[test]
fn url_without_host_uses_server_ip_and_port() {
    let c = ConnInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        8080,
        Transport::Tcp,
    );
    let mut h = H::with_conn(cfg(), &c);
    h.feed(C, b"GET /x HTTP/1.0\r\n\r\n", 1);
    h.feed(S, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 2);
    let j = h.json(0);
    assert_eq!(j["url"]["domain"], "10.0.0.2");
    assert_eq!(j["url"]["port"], 8080);
    assert_eq!(j["url"]["full"], "http://10.0.0.2:8080/x");
    assert!(j["url"].get("extension").is_none());
    assert_eq!(j["http"]["version"], "1.0");
    assert!(h.out[0].destination_domain.is_none());
}

#[test]
fn keep_alive() {
    let mut h = H::new(cfg());
    for i in 0..3u64 {
        h.feed(C, GET, 10 * i);
        h.feed(S, OK, 10 * i + 5);
    }
    assert_eq!(h.out.len(), 3);
    for (i, t) in h.out.iter().enumerate() {
        assert_eq!(t.start, Ts(10 * i as u64));
        assert_eq!(t.end, Some(Ts(10 * i as u64 + 5)));
        assert_eq!(t.response_bytes, OK.len() as u64);
    }
}

#[test]
fn pipelined_in_one_call() {
    let mut h = H::new(cfg());
    let reqs = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    h.feed(C, reqs, 1);
    let resps = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    assert_eq!(h.feed(S, resps, 2), Progress::all(resps));
    let got: Vec<_> = h
        .out
        .iter()
        .map(|t| {
            (
                t.path.clone().unwrap(),
                encode(t)["http"]["response"]["status_code"].clone(),
                t.status,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/1".into(), Value::from(200), Status::Ok),
            ("/2".into(), Value::from(404), Status::Error),
            ("/3".into(), Value::from(201), Status::Ok),
        ]
    );
    assert_eq!(h.out[2].request_bytes, 42);
    assert_eq!(h.json(1)["http"]["response"]["status_phrase"], "not found");
}

fn exchange_json(h: &H) -> Vec<String> {
    h.out.iter().map(|t| encode(t).to_string()).collect()
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n7 ; x=\"y\"\r\n, world\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n";

#[test]
fn byte_at_a_time_equals_one_shot() {
    let mut c = cfg();
    c.include_body_for = vec!["text/".into()];
    c.common.send_request = true;
    c.common.send_response = true;
    c.send_all_headers = true;
    let post = b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nx=1&y=2";
    let mut one = H::new(c.clone());
    let mut bytes = H::new(c);
    one.feed(C, GET, 1);
    one.feed(C, post, 1);
    one.feed(S, CHUNKED, 2);
    one.feed(S, OK, 2);
    bytes.bytewise(C, GET, 1);
    bytes.bytewise(C, post, 1);
    bytes.bytewise(S, CHUNKED, 2);
    bytes.bytewise(S, OK, 2);
    assert_eq!(one.out.len(), 2);
    assert_eq!(exchange_json(&one), exchange_json(&bytes));
    assert_eq!(bytes.out[1].params.as_deref(), Some("x=1&y=2"));
    assert_eq!(bytes.errors, 0);
}

#[test]
fn long_head_byte_at_a_time_is_linear() {
    // 40 KiB of headers delivered one byte per call must not rescan the head.
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..1000 {
        req.extend_from_slice(format!("X-H{i}: {}\r\n", "v".repeat(30)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let mut h = H::new(cfg());
    let start = std::time::Instant::now();
    h.bytewise(C, &req, 1);
    // Too many headers for one head: an error, reached without quadratic work.
    assert_eq!(h.errors, 1);
    assert!(start.elapsed() < Duration::from_secs(5));
    // A legitimate large head (under the header count limit) passes.
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    req.extend_from_slice(format!("Cookie: {}\r\n\r\n", "c".repeat(40_000)).as_bytes());
    let mut h = H::new(cfg());
    h.bytewise(C, &req, 1);
    h.feed(S, OK, 2);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].request_bytes, req.len() as u64);
}

#[test]
fn oversized_head_is_an_error() {
    let mut h = H::new(cfg());
    let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 60_000));
    for c in req.chunks(1000) {
        h.feed(C, c, 1);
    }
    assert_eq!(h.errors, 1);
    assert!(h.held(C) < 2000);
}

#[test]
fn head_has_no_body() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"HEAD /big HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        1,
    );
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        2,
    );
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[0].method.as_deref(), Some("HEAD"));
    assert!(h.json(0)["http"]["response"].get("body").is_none());
    assert_eq!(h.json(1)["http"]["response"]["body"]["bytes"], 2);
}

#[test]
fn no_body_for_204_and_304() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"DELETE /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
        1,
    );
    h.feed(
        S,
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let codes: Vec<_> = h
        .out
        .iter()
        .map(|t| {
            encode(t)["http"]["response"]["status_code"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(codes, vec![204, 304, 200]);
    assert!(h.out.iter().all(|t| t.status == Status::Ok));
}

#[test]
fn continue_is_skipped() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        1,
    );
    h.feed(S, b"HTTP/1.1 100 Continue\r\n\r\n", 2);
    h.feed(C, b"data", 3);
    h.feed(S, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 4);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.json(0)["http"]["response"]["status_code"], 201);
    assert_eq!(h.out[0].end, Some(Ts(4)));
    assert_eq!(h.out[0].request_bytes, 65);
    assert_eq!(h.counters.unmatched_responses, 0);
}

#[test]
fn early_response_pairs_with_the_request_whose_body_is_streaming() {
    let mut h = H::new(cfg());
    let head = b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n";
    let e413 = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 3\r\n\r\nbig";
    let redirect = b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n";
    h.feed(C, head, 1);
    h.feed(C, &[b'x'; 3000], 2);
    h.feed(S, e413, 3);
    // Published only once the request has ended too.
    assert!(h.out.is_empty());
    h.feed(C, &[b'x'; 7000], 4);
    assert_eq!(h.out.len(), 1);
    // The keep-alive connection goes on unshifted: a request answered as soon as
    // its head is in (a redirect), then a plain exchange.
    h.feed(C, head, 5);
    h.feed(S, redirect, 6);
    h.feed(C, &[b'y'; 10000], 7);
    h.feed(C, GET, 8);
    h.feed(S, OK, 9);
    h.close();
    assert_eq!(h.out.len(), 3);
    let t = &h.out[0];
    assert_eq!((t.start, t.end), (Ts(1), Some(Ts(3))));
    assert_eq!(t.request_bytes, (head.len() + 10000) as u64);
    assert_eq!(t.response_bytes, e413.len() as u64);
    assert_eq!(t.status, Status::Error);
    assert!(t.notes.is_empty());
    assert_eq!(h.json(0)["http"]["request"]["body"]["bytes"], 10000);
    assert_eq!(h.json(0)["http"]["response"]["status_code"], 413);
    let t = &h.out[1];
    assert_eq!((t.start, t.end), (Ts(5), Some(Ts(6))));
    assert_eq!(t.request_bytes, (head.len() + 10000) as u64);
    assert_eq!(t.status, Status::Ok);
    assert_eq!(h.json(1)["http"]["response"]["status_code"], 302);
    let t = &h.out[2];
    assert_eq!((t.start, t.end), (Ts(8), Some(Ts(9))));
    assert_eq!(t.path.as_deref(), Some("/index.html"));
    assert_eq!(
        h.counters.unmatched_responses + h.counters.unmatched_requests,
        0
    );
}

#[test]
fn early_response_then_close_publishes_what_was_seen() {
    let mut h = H::new(cfg());
    let head = b"POST /up HTTP/1.1\r\nContent-Length: 5000\r\n\r\n";
    h.feed(C, head, 1);
    h.feed(C, &[b'z'; 1000], 2);
    h.feed(
        S,
        b"HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        3,
    );
    h.close();
    assert_eq!(h.out.len(), 1);
    let t = &h.out[0];
    assert_eq!(t.end, Some(Ts(3)));
    assert_eq!(t.request_bytes, (head.len() + 1000) as u64);
    assert!(t.notes.is_empty());
    assert_eq!(h.json(0)["http"]["request"]["body"]["bytes"], 1000);
    assert_eq!(h.json(0)["http"]["response"]["status_code"], 413);
}

#[test]
fn early_response_to_expect_continue() {
    // The server refuses without 100 Continue; the client sends the body anyway
    // (it must, to keep the connection), then the next request.
    let mut h = H::new(cfg());
    let head = b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    h.feed(C, head, 1);
    h.feed(
        S,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    h.feed(C, b"data", 3);
    h.feed(C, GET, 4);
    h.feed(S, OK, 5);
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[0].end, Some(Ts(2)));
    assert_eq!(h.out[0].request_bytes, head.len() as u64 + 4);
    assert_eq!(h.json(0)["http"]["response"]["status_code"], 401);
    assert_eq!(h.out[1].end, Some(Ts(5)));
    assert_eq!(h.counters.unmatched_responses, 0);
}

#[test]
fn early_response_waits_at_most_the_transaction_timeout() {
    let mut h = H::new(cfg());
    let s = 1_000_000_000u64;
    h.feed(C, b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\nab", s);
    // Unanswered and still streaming: no timeout.
    h.call(30 * s, |p, ctx| p.expire(Ts(30 * s), ctx));
    assert!(h.out.is_empty());
    h.feed(
        S,
        b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        31 * s,
    );
    h.call(35 * s, |p, ctx| p.expire(Ts(35 * s), ctx));
    assert!(h.out.is_empty());
    h.call(45 * s, |p, ctx| p.expire(Ts(45 * s), ctx));
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].end, Some(Ts(31 * s)));
    assert!(h.out[0].notes.is_empty());
    // The rest of the body streams past without an event.
    h.feed(C, &[b'c'; 98], 46 * s);
    h.close();
    assert_eq!(h.out.len(), 1);
}

#[test]
fn switching_protocols_stops() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        1,
    );
    let r = h.feed(
        S,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
        2,
    );
    assert_eq!(r, Progress::Stop);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.json(0)["http"]["response"]["status_code"], 101);
    assert_eq!(h.out[0].status, Status::Ok);
    // The engine no longer calls the parser (src/flow/tests.rs checks it).
    assert!(h.stopped);
}

#[test]
fn connect_success_stops() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        1,
    );
    let r = h.feed(
        S,
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
        2,
    );
    assert_eq!(r, Progress::Stop);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].path.as_deref(), Some("example.com:443"));
}

#[test]
fn chunked_split_at_every_byte() {
    let mut c = cfg();
    c.include_body_for = vec!["text/plain".into()];
    let mut reference = None;
    for i in 0..=CHUNKED.len() {
        let mut h = H::new(c.clone());
        h.feed(C, GET, 1);
        h.feed(S, &CHUNKED[..i], 2);
        h.feed(S, &CHUNKED[i..], 2);
        assert_eq!(h.out.len(), 1, "split at {i}");
        assert_eq!(h.errors, 0);
        let j = h.json(0);
        assert_eq!(j["http"]["response"]["body"]["bytes"], 12);
        assert_eq!(j["http"]["response"]["body"]["content"], "hello, world");
        assert_eq!(j["http"]["response"]["bytes"], CHUNKED.len());
        match &reference {
            None => reference = Some(j.to_string()),
            Some(r) => assert_eq!(r, &j.to_string()),
        }
    }
}

#[test]
fn chunked_request_and_bad_chunk_size() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        1,
    );
    h.feed(S, OK, 2);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.json(0)["http"]["request"]["body"]["bytes"], 3);
    // A chunk size that overflows u64 is malformed.
    let mut h = H::new(cfg());
    let r = h.feed(
        C,
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        1,
    );
    assert_eq!(r, Progress::Error);
    // The head was complete: the request is published as it is and pairs.
    h.feed(S, OK, 2);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].path.as_deref(), Some("/c"));
}

#[test]
fn close_delimited_by_fin_and_by_close() {
    let resp = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body";
    let mut h = H::new(cfg());
    h.feed(C, b"GET / HTTP/1.0\r\n\r\n", 1);
    h.feed(S, resp, 2);
    h.feed(S, b" more", 3);
    assert!(h.out.is_empty());
    h.fin(S, 4);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].status, Status::Ok);
    assert_eq!(h.json(0)["http"]["response"]["body"]["bytes"], 14);
    assert_eq!(h.out[0].response_bytes, resp.len() as u64 + 5);
    h.close();
    assert_eq!(h.out.len(), 1);

    let mut h = H::new(cfg());
    h.feed(C, b"GET / HTTP/1.0\r\n\r\n", 1);
    h.feed(S, resp, 2);
    h.close();
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].status, Status::Ok);
    assert!(h.out[0].notes.is_empty());
    assert_eq!(h.json(0)["http"]["response"]["body"]["bytes"], 9);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn encoded_response(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn gzip_and_deflate_bodies_are_decoded() {
    let text = br#"{"hello":"world"}"#;
    let mut c = cfg();
    c.include_body_for = vec!["json".into()];
    c.common.send_response = true;
    for (coding, body) in [("gzip", gzip(text)), ("deflate", zlib(text))] {
        let mut h = H::new(c.clone());
        h.feed(C, GET, 1);
        let resp = encoded_response(coding, &body);
        h.feed(S, &resp, 2);
        let j = h.json(0);
        assert_eq!(
            j["http"]["response"]["body"]["content"],
            r#"{"hello":"world"}"#
        );
        assert_eq!(j["http"]["response"]["body"]["bytes"], body.len());
        assert_eq!(j["http"]["response"]["mime_type"], "application/json");
        assert!(
            h.out[0]
                .response
                .as_deref()
                .unwrap()
                .ends_with("\r\n\r\n{\"hello\":\"world\"}")
        );
    }
    // decode_body: false keeps the bytes as sent.
    c.decode_body = false;
    let mut h = H::new(c);
    h.feed(C, GET, 1);
    h.feed(S, &encoded_response("gzip", &gzip(text)), 2);
    assert_ne!(
        h.json(0)["http"]["response"]["body"]["content"],
        r#"{"hello":"world"}"#
    );
}

#[test]
fn zip_bomb_is_capped() {
    let mut c = cfg();
    c.include_body_for = vec!["json".into()];
    c.max_message_size = 16384;
    let bomb = gzip(&vec![b'a'; 8 << 20]);
    assert!(bomb.len() < 16384);
    let mut h = H::new(c);
    h.feed(C, GET, 1);
    h.feed(S, &encoded_response("gzip", &bomb), 2);
    let j = h.json(0);
    assert_eq!(
        j["http"]["response"]["body"]["content"]
            .as_str()
            .unwrap()
            .len(),
        16384
    );
}

#[test]
fn max_message_size_cuts_stored_body_only() {
    let mut c = cfg();
    c.include_body_for = vec!["text/".into()];
    c.max_message_size = 10;
    let mut h = H::new(c);
    h.feed(C, GET, 1);
    let mut resp =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n".to_vec();
    let head_len = resp.len();
    resp.extend(std::iter::repeat_n(b'z', 100));
    for c in resp.chunks(7) {
        h.feed(S, c, 2);
    }
    assert_eq!(h.out.len(), 1);
    let j = h.json(0);
    assert_eq!(j["http"]["response"]["body"]["content"], "zzzzzzzzzz");
    assert_eq!(j["http"]["response"]["body"]["bytes"], 100);
    assert_eq!(h.out[0].response_bytes, head_len as u64 + 100);
    assert_eq!(h.out[0].status, Status::Ok);
}

#[test]
fn hide_keywords_in_query_and_form() {
    let mut c = cfg();
    c.hide_keywords = vec!["Password".into(), "pass".into()];
    c.common.send_request = true;
    c.include_request_body_for = vec!["form".into()];
    let mut h = H::new(c);
    h.feed(
        C,
        b"GET /login?user=bob&PASSWORD=hunter2&x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        1,
    );
    h.feed(S, OK, 2);
    let t = &h.out[0];
    // Packetbeat's params: decoded, hidden, re-encoded with the keys sorted.
    assert_eq!(t.params.as_deref(), Some("PASSWORD=xxxxx&user=bob&x=1"));
    let j = encode(t);
    assert_eq!(j["url"]["query"], "PASSWORD=xxxxx&user=bob&x=1");
    assert_eq!(
        j["url"]["full"],
        "http://h/login?PASSWORD=xxxxx&user=bob&x=1"
    );
    // The raw request keeps the wire order, with the values hidden in place.
    let raw = t.request.as_deref().unwrap();
    assert!(
        raw.starts_with("GET /login?user=bob&PASSWORD=xxxxx&x=1 HTTP/1.1\r\n"),
        "{raw}"
    );
    assert!(!raw.contains("hunter2"));

    h.feed(
        C,
        b"POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 22\r\n\r\nuser=bob&pass=hunter2&",
        3,
    );
    h.feed(S, OK, 4);
    let t = &h.out[1];
    assert_eq!(t.params.as_deref(), Some("pass=xxxxx&user=bob"));
    assert_eq!(encode(t)["url"]["query"], "pass=xxxxx&user=bob");
    assert_eq!(
        encode(t)["url"]["full"],
        "http://h/login?pass=xxxxx&user=bob"
    );
    let raw = t.request.as_deref().unwrap();
    assert!(raw.ends_with("\r\n\r\nuser=bob&pass=xxxxx&"), "{raw}");
    assert_eq!(
        encode(t)["http"]["request"]["body"]["content"],
        "user=bob&pass=xxxxx&"
    );
    assert_eq!(encode(t)["http"]["request"]["body"]["bytes"], 22);
}

const AUTH_REQ: &[u8] = b"GET /private HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dXNlcjpwYXNzd29yZA==\r\nProxy-Authorization: Basic eDp5\r\nX-Api-Key: s3cret\r\n\r\n";

#[test]
fn basic_auth_user_name() {
    let mut h = H::new(cfg());
    h.feed(C, AUTH_REQ, 1);
    h.feed(S, OK, 2);
    assert_eq!(h.out[0].user_name.as_deref(), Some("user"));
    let j = h.json(0);
    assert_eq!(j["user"]["name"], "user");
    assert_eq!(j["related"]["user"][0], "user");
}

#[test]
fn redact_authorization_and_headers() {
    let mut c = cfg();
    c.redact_authorization = true;
    c.redact_headers = vec!["X-API-KEY".into()];
    c.send_all_headers = true;
    c.common.send_request = true;
    let mut h = H::new(c);
    h.feed(C, AUTH_REQ, 1);
    h.feed(S, OK, 2);
    let t = &h.out[0];
    assert!(t.user_name.is_none());
    // As Packetbeat: every byte after the colon, the space included, becomes `*`.
    let raw = t.request.as_deref().unwrap();
    assert_eq!(
        raw,
        "GET /private HTTP/1.1\r\nHost: h\r\nAuthorization:***************************\r\n\
         Proxy-Authorization:***********\r\nX-Api-Key: REDACTED\r\n\r\n"
    );
    assert!(!raw.contains("dXNlcjpw") && !raw.contains("s3cret"));
    let j = encode(t);
    let hd = &j["http"]["request"]["headers"];
    assert_eq!(hd["authorization"], "*");
    assert_eq!(hd["proxy-authorization"], "*");
    assert_eq!(hd["x-api-key"], "REDACTED");
    assert_eq!(hd["host"], "h");
}

#[test]
fn redaction_rules_follow_packetbeat() {
    let mut c = cfg();
    c.redact_authorization = true;
    c.redact_headers = vec!["x-api-key".into(), "set-cookie".into()];
    c.send_all_headers = true;
    c.common.send_request = true;
    c.common.send_response = true;
    let mut h = H::new(c.clone());
    h.feed(
        C,
        b"GET / HTTP/1.1\r\nauthorization: Basic eDp5\r\nAUTHORIZATION: Bearer t\r\n\
          X-Authorization:  tok \r\nProxy-Authorization:\r\nX-Api-Key: a\r\nX-Api-Key: b\r\n\r\n",
        1,
    );
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nAuthorization: kept\r\nSet-Cookie: s=1\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let t = &h.out[0];
    assert!(t.user_name.is_none());
    assert_eq!(
        t.request.as_deref().unwrap(),
        "GET / HTTP/1.1\r\nauthorization:***********\r\nAUTHORIZATION:*********\r\n\
         X-Authorization:******\r\nProxy-Authorization:\r\nX-Api-Key: REDACTED\r\n\
         X-Api-Key: REDACTED\r\n\r\n"
    );
    let j = encode(t);
    let hd = &j["http"]["request"]["headers"];
    // Repeated fields are joined first, then redacted once.
    assert_eq!(hd["authorization"], "*");
    assert_eq!(hd["x-api-key"], "REDACTED");
    // Only the two standard names are starred in the header map; an empty value stays.
    assert_eq!(hd["x-authorization"], "tok");
    assert_eq!(hd["proxy-authorization"], "");
    // Responses are not touched by redact_authorization, only by redact_headers.
    let hd = &j["http"]["response"]["headers"];
    assert_eq!(hd["authorization"], "kept");
    assert_eq!(hd["set-cookie"], "REDACTED");
    assert!(
        t.response
            .as_deref()
            .unwrap()
            .contains("\r\nAuthorization: kept\r\nSet-Cookie: REDACTED\r\n")
    );

    // Without redact_authorization, a listed Authorization is REDACTED and user.name kept.
    c.redact_authorization = false;
    c.redact_headers = vec!["authorization".into()];
    let mut h = H::new(c);
    h.feed(C, AUTH_REQ, 1);
    h.feed(S, OK, 2);
    let t = &h.out[0];
    assert_eq!(t.user_name.as_deref(), Some("user"));
    assert!(
        t.request
            .as_deref()
            .unwrap()
            .contains("\r\nAuthorization: REDACTED\r\nProxy-Authorization: Basic eDp5\r\n")
    );
    assert_eq!(
        encode(t)["http"]["request"]["headers"]["authorization"],
        "REDACTED"
    );
}

#[test]
fn header_maps_keep_whole_values() {
    let mut c = cfg();
    c.send_headers = vec!["content-type".into(), "accept".into()];
    let mut h = H::new(c);
    h.feed(
        C,
        b"POST /f HTTP/1.1\r\nAccept: text/html;q=0.9, */*;q=0.1\r\n\
          Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: 3\r\n\r\nb=1",
        1,
    );
    h.feed(S, OK, 2);
    let j = h.json(0);
    let rq = &j["http"]["request"];
    assert_eq!(rq["headers"]["accept"], "text/html;q=0.9, */*;q=0.1");
    assert_eq!(
        rq["headers"]["content-type"],
        "application/x-www-form-urlencoded; charset=UTF-8"
    );
    assert_eq!(rq["mime_type"], "application/x-www-form-urlencoded");
    assert_eq!(j["url"]["query"], "b=1");
    let rs = &j["http"]["response"];
    assert_eq!(rs["headers"]["content-type"], "text/html; charset=utf-8");
    assert_eq!(rs["mime_type"], "text/html");
}

#[test]
fn send_headers_selection_is_case_insensitive() {
    let mut c = cfg();
    c.send_headers = vec!["user-AGENT".into(), "X-Custom".into(), "server".into()];
    let mut h = H::new(c);
    h.feed(
        C,
        b"POST /p HTTP/1.1\r\nUser-Agent: ua\r\nx-custom: 1\r\nX-CUSTOM: 2\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n",
        1,
    );
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: today\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let j = h.json(0);
    let req = j["http"]["request"]["headers"].as_object().unwrap();
    assert_eq!(req["user-agent"], "ua");
    assert_eq!(req["x-custom"], "1, 2");
    assert_eq!(req["content-length"], "0");
    assert!(!req.contains_key("accept"));
    let resp = j["http"]["response"]["headers"].as_object().unwrap();
    assert_eq!(resp["server"], "nginx");
    assert!(!resp.contains_key("date"));
}

#[test]
fn send_all_headers_and_split_cookie() {
    let mut c = cfg();
    c.send_all_headers = true;
    let mut h = H::new(c.clone());
    h.feed(
        C,
        b"GET / HTTP/1.1\r\nCookie: A=1; b=\"2\"\r\nAccept: x\r\nAccept: y\r\n\r\n",
        1,
    );
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nSet-Cookie: SID=abc; Path=/\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let j = h.json(0);
    assert_eq!(j["http"]["request"]["headers"]["cookie"], "A=1; b=\"2\"");
    assert_eq!(j["http"]["request"]["headers"]["accept"], "x, y");
    assert_eq!(
        j["http"]["response"]["headers"]["set-cookie"],
        "SID=abc; Path=/"
    );
    assert_eq!(j["http"]["response"]["headers"]["content-length"], "0");

    c.split_cookie = true;
    let mut h = H::new(c);
    h.feed(
        C,
        b"GET / HTTP/1.1\r\nCookie: A=1; b=\"2\"\r\nCookie: c=3\r\n\r\n",
        1,
    );
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nSet-Cookie: SID=abc; Path=/\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let j = h.json(0);
    assert_eq!(
        j["http"]["request"]["headers"]["cookie"],
        serde_json::json!({"a": "1", "b": "2", "c": "3"})
    );
    assert_eq!(
        j["http"]["response"]["headers"]["set-cookie"],
        serde_json::json!({"sid": "abc", "path": "/"})
    );
}

#[test]
fn real_ip_header_takes_first_address() {
    let mut c = cfg();
    c.real_ip_header = Some("X-Forwarded-For".into());
    let mut h = H::new(c);
    h.feed(
        C,
        b"GET / HTTP/1.1\r\nx-forwarded-for:  203.0.113.7 , 10.1.1.1, 10.2.2.2\r\n\r\n",
        1,
    );
    h.feed(S, OK, 2);
    assert_eq!(h.out[0].forwarded_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(h.json(0)["network"]["forwarded_ip"], "203.0.113.7");
}

#[test]
fn error_status_from_400() {
    let mut h = H::new(cfg());
    for (code, status) in [
        (399, Status::Ok),
        (400, Status::Error),
        (503, Status::Error),
    ] {
        h.feed(C, GET, 1);
        h.feed(
            S,
            format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
            2,
        );
        assert_eq!(h.out.last().unwrap().status, status);
    }
}

#[test]
fn unmatched_request_and_response() {
    let mut h = H::new(cfg());
    h.feed(S, OK, 1);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].status, Status::Error);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_RESPONSE.to_string()]);
    assert_eq!(h.out[0].start, Ts(1));
    assert!(h.out[0].method.is_none());
    assert_eq!(h.json(0)["http"]["response"]["status_code"], 200);

    h.feed(C, GET, 2);
    h.close();
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[1].status, Status::Error);
    assert_eq!(h.out[1].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
    assert_eq!(h.out[1].end, None);
    assert_eq!(h.counters.unmatched_requests, 1);
    assert_eq!(h.counters.unmatched_responses, 1);
}

#[test]
fn expire_times_out_requests() {
    let mut h = H::new(cfg());
    h.feed(C, GET, 1_000_000_000);
    h.call(5_000_000_000, |p, ctx| p.expire(Ts(5_000_000_000), ctx));
    assert!(h.out.is_empty());
    h.call(12_000_000_000, |p, ctx| p.expire(Ts(12_000_000_000), ctx));
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
}

#[test]
fn close_finalises_partial_messages() {
    let mut h = H::new(cfg());
    h.feed(
        C,
        b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial",
        1,
    );
    h.feed(S, b"GET / HT", 2);
    h.close();
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].path.as_deref(), Some("/a"));
    assert_eq!(h.json(0)["http"]["request"]["body"]["bytes"], 7);
    assert_eq!(h.out[0].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
}

#[test]
fn gap_in_body_is_tolerated() {
    // The gap covers the rest of the Content-Length: the response completes at once.
    let mut h = H::new(cfg());
    h.feed(C, GET, 1);
    h.feed(S, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc", 2);
    h.gap(S, 997, 3);
    assert_eq!(h.out.len(), 1);
    let t = &h.out[0];
    assert_eq!(t.status, Status::Ok);
    assert_eq!(t.notes, vec![NOTE_LOSS_RESPONSE.to_string()]);
    assert_eq!(h.json(0)["http"]["response"]["body"]["bytes"], 1000);
    // The connection carries on normally.
    h.feed(C, GET, 4);
    h.feed(S, OK, 5);
    assert_eq!(h.out.len(), 2);
    assert!(h.out[1].notes.is_empty());

    // A gap inside the body, the rest arriving afterwards.
    let mut h = H::new(cfg());
    h.feed(C, b"POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", 1);
    h.gap(C, 5, 2);
    h.feed(C, b"xyz", 3);
    h.feed(S, OK, 4);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_LOSS_REQUEST.to_string()]);
    assert_eq!(h.out[0].status, Status::Ok);
    assert_eq!(h.out[0].request_bytes, 40 + 10);

    // A gap in chunk data, and in a close-delimited body.
    let mut h = H::new(cfg());
    h.feed(C, GET, 1);
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nab",
        2,
    );
    h.gap(S, 4, 3);
    h.feed(S, b"cdef\r\n0\r\n\r\n", 4);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.json(0)["http"]["response"]["body"]["bytes"], 10);
    assert_eq!(h.out[0].notes, vec![NOTE_LOSS_RESPONSE.to_string()]);
    let mut h = H::new(cfg());
    h.feed(C, GET, 1);
    h.feed(S, b"HTTP/1.0 200 OK\r\n\r\nab", 2);
    h.gap(S, 100, 3);
    h.feed(S, b"cd", 4);
    h.fin(S, 5);
    assert_eq!(h.json(0)["http"]["response"]["body"]["bytes"], 104);
    assert_eq!(h.out[0].notes, vec![NOTE_LOSS_RESPONSE.to_string()]);
}

#[test]
fn gap_in_chunk_framing_publishes_and_resyncs() {
    let mut h = H::new(cfg());
    h.feed(C, GET, 1);
    h.feed(C, GET, 1);
    h.feed(
        S,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        2,
    );
    h.gap(S, 50, 3);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].notes, vec![NOTE_LOSS_RESPONSE.to_string()]);
    h.feed(S, OK, 4);
    assert_eq!(h.out.len(), 2);
    assert!(h.out[1].notes.is_empty());
}

#[test]
fn gap_in_head_resyncs_on_next_request() {
    let mut h = H::new(cfg());
    h.feed(C, b"GET /lost HTTP/1.1\r\nHo", 1);
    h.gap(C, 30, 2);
    // The tail of the lost head, then a new request in the same packet.
    h.feed(C, b"st: x\r\n\r\nGET /found HTTP/1.1\r\nHost: y\r\n\r\n", 3);
    h.feed(S, OK, 4);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].path.as_deref(), Some("/found"));
    assert_eq!(h.out[0].start, Ts(3));
    assert_eq!(h.errors, 0);
}

#[test]
fn garbage_then_valid_request() {
    let mut h = H::new(cfg());
    assert_eq!(
        h.feed(C, b"\x00\x01\x02\xffnot http at all", 1),
        Progress::Error
    );
    // More garbage, then a request at a line start.
    h.feed(
        C,
        b"junk junk\r\nmore\nGET /ok?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        2,
    );
    h.feed(S, b"\x05garbage", 3);
    h.feed(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].path.as_deref(), Some("/ok"));
    assert_eq!(h.out[0].status, Status::Ok);
    assert_eq!(h.errors, 2);
    // A request that starts right after an error (next packet) is found too.
    h.feed(C, b"GET /bad\x01\x02 HTTP/1.1\r\n\r\n", 5);
    h.feed(C, GET, 6);
    h.feed(S, OK, 7);
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[1].path.as_deref(), Some("/index.html"));
}

#[test]
fn tls_stops_following() {
    let mut h = H::new(cfg());
    let r = h.feed(C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1);
    assert_eq!(r, Progress::Stop);
    assert!(h.out.is_empty());
}

#[test]
fn resync_scan_is_bounded_and_linear() {
    let mut h = H::new(cfg());
    h.feed(C, b"\x00", 1);
    // A long plausible-looking line arriving a byte at a time.
    let mut line = b"GET /".to_vec();
    line.extend(std::iter::repeat_n(b'a', 20_000));
    let start = std::time::Instant::now();
    h.bytewise(C, &line, 2);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(h.held(C) <= parser::MAX_LINE + 1);
    h.feed(C, b"\r\n", 3);
    h.feed(C, GET, 4);
    h.feed(S, OK, 5);
    assert_eq!(h.out.last().unwrap().path.as_deref(), Some("/index.html"));
}

#[test]
fn random_buffers_never_panic() {
    let pieces: [&[u8]; 10] = [
        GET,
        OK,
        CHUNKED,
        b"HTTP/1.1 ",
        b"\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nffffffff\r\n",
        b"HEAD / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 101 x\r\n\r\n",
        b"0\r\n\r\n",
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut c = cfg();
    c.send_all_headers = true;
    c.split_cookie = true;
    c.include_body_for = vec!["text".into()];
    c.common.send_request = true;
    c.common.send_response = true;
    c.hide_keywords = vec!["a".into()];
    let mut h = H::new(c.clone());
    for i in 0..10_000u64 {
        if i % 100 == 0 {
            h.close();
            h = H::new(c.clone());
        }
        let len = (rng.next() % 300) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.next().is_multiple_of(2) {
            let p = pieces[(rng.next() % pieces.len() as u64) as usize];
            let at = (rng.next() as usize) % (buf.len() + 1);
            buf.splice(at..at, p.iter().copied());
        }
        let dir = if rng.next().is_multiple_of(2) { C } else { S };
        match rng.next() % 20 {
            0 => h.gap(dir, rng.next() % 5000, i),
            1 => h.fin(dir, i),
            2 => h.call(i, |p, ctx| p.expire(Ts(i * 1_000_000_000), ctx)),
            _ => {
                h.feed(dir, &buf, i);
            }
        }
        assert!(h.held(C) <= h.max_buffer && h.held(S) <= h.max_buffer);
        for t in h.out.drain(..) {
            let _ = encode(&t);
        }
    }
}

#[test]
fn encoded_event_has_ecs_keys() {
    let mut c = cfg();
    c.send_headers = vec!["host".into()];
    c.real_ip_header = Some("x-forwarded-for".into());
    let mut h = H::new(c);
    h.feed(
        C,
        b"GET /img/logo.png?v=2 HTTP/1.1\r\nHost: www.example.org:8080\r\nAuthorization: Basic am9objpzZWNyZXQ=\r\nX-Forwarded-For: 1.2.3.4\r\nUser-Agent: test\r\n\r\n",
        1_700_000_000_000_000_000,
    );
    h.feed(
        S,
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nnope",
        1_700_000_000_250_000_000,
    );
    let tx = &h.out[0];
    let enc = EventEncoder::new(AgentInfo::new("wb".into(), vec![]));
    let mut out = Vec::new();
    enc.encode(&conn(), tx, &mut out);
    let j: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(j["type"], "http");
    assert_eq!(j["status"], "Error");
    assert_eq!(j["method"], "GET");
    assert_eq!(j["query"], "GET /img/logo.png");
    assert_eq!(j["path"], "/img/logo.png");
    assert_eq!(j["params"], "v=2");
    assert_eq!(j["event"]["duration"], 250_000_000);
    assert_eq!(j["destination"]["domain"], "www.example.org");
    assert_eq!(j["network"]["forwarded_ip"], "1.2.3.4");
    assert_eq!(j["user"]["name"], "john");
    assert_eq!(j["source"]["bytes"], tx.request_bytes);
    assert_eq!(j["destination"]["bytes"], 73);
    assert_eq!(j["http"]["request"]["method"], "GET");
    assert_eq!(
        j["http"]["request"]["headers"]["host"],
        "www.example.org:8080"
    );
    assert_eq!(j["http"]["response"]["status_code"], 404);
    assert_eq!(j["http"]["response"]["status_phrase"], "not found");
    assert_eq!(
        j["http"]["response"]["headers"]["content-type"],
        "text/html"
    );
    assert_eq!(j["http"]["response"]["body"]["bytes"], 3);
    assert_eq!(j["http"]["version"], "1.1");
    assert_eq!(j["url"]["domain"], "www.example.org");
    assert_eq!(j["url"]["port"], 8080);
    assert_eq!(j["url"]["extension"], "png");
    assert_eq!(
        j["url"]["full"],
        "http://www.example.org:8080/img/logo.png?v=2"
    );
    assert_eq!(j["user_agent"]["original"], "test");
    // The trailing byte after the 3-byte body is the start of an unparseable message.
    assert_eq!(h.errors, 1);
}

#[test]
fn timestamps_are_of_first_packets() {
    let mut h = H::new(cfg());
    h.feed(C, b"\r\n", 1);
    h.feed(C, &GET[..10], 2);
    h.feed(C, &GET[10..], 3);
    h.feed(S, &OK[..20], 4);
    h.feed(S, &OK[20..], 5);
    assert_eq!(h.out[0].start, Ts(2));
    assert_eq!(h.out[0].end, Some(Ts(4)));
    // After a reset, a candidate line that turns out to be garbage does not lend
    // its time to the next request.
    h.feed(C, b"\x00", 6);
    h.feed(C, b"GET ", 7);
    h.feed(C, b"x\r\n", 8);
    h.feed(C, GET, 9);
    h.feed(S, OK, 10);
    assert_eq!(h.out[1].start, Ts(9));
}

#[test]
fn http2_prior_knowledge_stops() {
    let mut h = H::new(cfg());
    let r = h.feed(C, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04", 1);
    assert_eq!(r, Progress::Stop);
    assert!(h.out.is_empty());
}

#[test]
fn non_ascii_targets_and_values() {
    let mut c = cfg();
    c.send_all_headers = true;
    c.split_cookie = true;
    c.hide_keywords = vec!["ü".into()];
    c.common.send_request = true;
    for target in [
        "/h\u{e9}llo.t\u{e4}r?\u{fc}=1&a=\u{e9}",
        "http\u{e9}//x",
        "htt\u{e9}://x/y",
        "http://\u{e9}\u{e9}/p.\u{e9}",
        "/a?",
        "?",
        "/%zz?%=&=&&",
    ] {
        let mut h = H::new(c.clone());
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: \u{e9}:\u{e9}\r\nCookie: \u{e9}=\u{e9}; =x\r\n\r\n"
        );
        h.feed(C, req.as_bytes(), 1);
        h.feed(S, b"HTTP/1.1 200 \xff\xfe\r\nContent-Length: 0\r\n\r\n", 2);
        h.close();
        for t in &h.out {
            let _ = encode(t);
        }
    }
}
