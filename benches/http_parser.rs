//! HTTP/1.x parse throughput on a realistic keep-alive connection: browser-like GETs
//! with small and larger bodies, a gzip'd chunked response, a POST, a 304 and a 404,
//! delivered in MSS-sized segments through a buffer that behaves like the TCP engine's.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::bench_replay;
use wirebeat::config::Config;
use wirebeat::protos::testing::{Conversation, Harness, XorShift, test_conn};
use wirebeat::protos::{Dir, factory};

const MSS: usize = 1448;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: {UA}\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
         Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n\
         Connection: keep-alive\r\nCookie: session=0123456789abcdef; theme=dark\r\n"
    )
    .into_bytes();
    if !body.is_empty() {
        r.extend_from_slice(
            format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

fn response(code: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {code}\r\nServer: nginx/1.24.0\r\nDate: Tue, 24 Nov 2026 22:27:38 GMT\r\n\
         Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\
         Cache-Control: max-age=3600\r\nETag: \"5f2a-1b3c\"\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn chunked_response(body: &[u8]) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: application/json\r\n\
Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        .to_vec();
    for c in body.chunks(4096) {
        r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        r.extend_from_slice(c);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

fn exchange(req: Vec<u8>, resp: Vec<u8>) -> [(Dir, Vec<u8>); 2] {
    [(Dir::ToServer, req), (Dir::ToClient, resp)]
}

/// One connection: each request followed by its response.
fn conversation() -> Conversation {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut noise =
        |n: usize| -> Vec<u8> { (0..n).map(|_| b'a' + (rng.next() % 26) as u8).collect() };
    let mut v = Vec::new();
    for i in 0..20 {
        v.extend(exchange(
            request("GET", &format!("/static/app{i}.js?v=3"), b""),
            response("200 OK", "application/javascript", &noise(1_500)),
        ));
        v.extend(exchange(
            request("GET", "/img/logo.png", b""),
            response("304 Not Modified", "image/png", b""),
        ));
        v.extend(exchange(
            request("GET", "/api/items?page=2&limit=50", b""),
            chunked_response(&noise(12_000)),
        ));
        v.extend(exchange(
            request("POST", "/login", b"user=alice&password=secret&remember=1"),
            response("200 OK", "text/html; charset=utf-8", &noise(400)),
        ));
        v.extend(exchange(
            request("GET", "/missing", b""),
            response("404 Not Found", "text/html", &noise(150)),
        ));
        v.extend(exchange(
            request("GET", "/video/intro.mp4", b""),
            response("200 OK", "video/mp4", &noise(60_000)),
        ));
    }
    v
}

fn bench(c: &mut Criterion) {
    let conn = test_conn(80);
    let conv = conversation();
    let total: usize = conv.iter().map(|s| s.1.len()).sum();
    let mut cfg = Config::default();
    cfg.protocols.http.send_headers = vec!["user-agent".into(), "host".into()];
    cfg.protocols.http.real_ip_header = Some("x-forwarded-for".into());
    let factory = factory("http", &cfg).expect("http enabled");

    let mut g = c.benchmark_group("http_parser");
    g.throughput(Throughput::Bytes(total as u64));
    let mut h = Harness::from_factory(factory.as_ref(), conn.clone());
    let run = |h: &mut Harness<_>| {
        h.restart(factory.new_parser(&conn));
        h.replay(&conv, MSS, 1)
    };
    let exchanges = conv.len() / 2;
    bench_replay(&mut g, "keep_alive_connection", &mut h, run, |n| {
        assert_eq!(n, exchanges)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
