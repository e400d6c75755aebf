//! Replays every HTTP capture recorded from real servers (see tests/pcaps/README.md)
//! and checks the events against `tests/pcaps/http/expected.json`, which the
//! recording script derived from the captures independently of wirebeat.

mod common;

use common::*;
use serde_json::Value;

/// Response bytes as wirebeat counts them: interim (1xx) responses belong to the
/// transaction they precede.
fn response_bytes(t: &Value) -> u64 {
    let interim: u64 = t["interim_responses"]
        .as_array()
        .map(|a| a.iter().map(|i| i["bytes"].as_u64().unwrap()).sum())
        .unwrap_or(0);
    t["response_bytes"].as_u64().unwrap() + interim
}

#[test]
fn every_fixture_gives_exactly_the_recorded_transactions() {
    for (name, exp) in expected("http") {
        let (run, mut events, want) = replay_recorded("http", &name, &exp, &[]);
        for t in want {
            let method = t["method"].as_str().unwrap();
            let path = t["path"].as_str().unwrap();
            let status = t["status"].as_u64().unwrap();
            let pos = events
                .iter()
                .position(|e| {
                    get(e, "http.request.method") == method
                        && get(e, "url.path") == path
                        && get(e, "http.response.status_code") == status
                        && get(e, "source.bytes") == t["request_bytes"].as_u64().unwrap()
                })
                .unwrap_or_else(|| {
                    panic!("{name}: no event for {method} {path} {status}: {events:#?}")
                });
            let e = events.remove(pos);
            let ctx = format!("{name} {method} {path}");
            assert_eq!(get(&e, "type"), "http", "{ctx}");
            assert_eq!(get(&e, "method"), method, "{ctx}");
            assert_eq!(
                get(&e, "query"),
                &Value::from(format!("{method} {path}")),
                "{ctx}"
            );
            assert_eq!(get(&e, "path"), path, "{ctx}");
            assert_eq!(get(&e, "destination.bytes"), response_bytes(t), "{ctx}");
            assert_eq!(get(&e, "http.request.bytes"), &t["request_bytes"], "{ctx}");
            assert_eq!(
                get(&e, "network.bytes"),
                t["request_bytes"].as_u64().unwrap() + response_bytes(t),
                "{ctx}"
            );
            assert_eq!(
                get(&e, "http.request.body.bytes").as_u64().unwrap_or(0),
                t["request_body_bytes"].as_u64().unwrap(),
                "{ctx}"
            );
            // Body bytes exclude the chunked transfer framing (chunk data only).
            let body = get(&e, "http.response.body.bytes").as_u64().unwrap_or(0);
            let wire_body = t["response_body_bytes"].as_u64().unwrap();
            if t["response_framing"] == "chunked" {
                let chunks = t["response_chunks"].as_u64().unwrap();
                assert!(
                    body < wire_body && body + 16 * (chunks + 1) >= wire_body,
                    "{ctx}: {body} vs {wire_body}"
                );
                if t["content_encoding"].is_null() {
                    assert_eq!(
                        body,
                        t["response_decoded_body_bytes"].as_u64().unwrap(),
                        "{ctx}"
                    );
                }
            } else {
                assert_eq!(body, wire_body, "{ctx}");
            }
            let version = t["http_version"]
                .as_str()
                .unwrap()
                .trim_start_matches("HTTP/");
            assert_eq!(get(&e, "http.version"), version, "{ctx}");
            assert_eq!(
                get(&e, "http.response.status_phrase"),
                &Value::from(t["phrase"].as_str().unwrap().to_lowercase()),
                "{ctx}"
            );
            // Packetbeat's params (query and urlencoded form, re-encoded, keys sorted)
            // are also its url.query.
            match t["params"].as_str() {
                Some(p) => {
                    assert_eq!(get(&e, "url.query"), p, "{ctx}");
                    assert_eq!(get(&e, "params"), p, "{ctx}");
                    assert!(
                        get(&e, "url.full")
                            .as_str()
                            .unwrap()
                            .ends_with(&format!("?{p}"))
                    );
                }
                None => {
                    assert!(get(&e, "url.query").is_null(), "{ctx}");
                    assert!(get(&e, "params").is_null(), "{ctx}");
                }
            }
            let want_status = if status >= 400 { "Error" } else { "OK" };
            assert_eq!(get(&e, "status"), want_status, "{ctx}");
            assert!(get(&e, "error.message").is_null(), "{ctx}: {e}");
            let dur = get(&e, "event.duration").as_u64().expect("duration");
            assert!(dur > 0 && dur < 5_000_000_000, "{ctx}: duration {dur}");
            // From the request's first packet to the final response's first packet,
            // also for a response sent before the request's body ended.
            assert_eq!(
                dur,
                t["duration_us"].as_u64().unwrap() * 1000,
                "{ctx}: duration"
            );
            assert_eq!(get(&e, "event.start"), get(&e, "@timestamp"), "{ctx}");
            assert!(get(&e, "event.end").is_string(), "{ctx}");
            assert_eq!(get(&e, "network.transport"), "tcp");
            assert_eq!(get(&e, "network.type"), "ipv4");
            assert!(
                get(&e, "network.community_id")
                    .as_str()
                    .unwrap()
                    .starts_with("1:")
            );
            assert_eq!(get(&e, "destination.ip"), "10.77.0.2", "{ctx}");
            assert_eq!(get(&e, "source.ip"), "10.77.0.1", "{ctx}");
            assert_eq!(get(&e, "client.ip"), "10.77.0.1", "{ctx}");
            assert_eq!(get(&e, "server.port"), get(&e, "destination.port"));
            assert_eq!(get(&e, "agent.name"), "test");
            assert_eq!(get(&e, "agent.type"), "wirebeat");
            assert_eq!(get(&e, "event.kind"), "event");
            assert_eq!(get(&e, "event.dataset"), "http");
        }
        assert_eq!(run.counter("parse_errors"), 0, "{name}: {}", run.stderr);
        assert_eq!(run.counter("tcp_gaps"), 0, "{name}: {}", run.stderr);
    }
}

#[test]
fn replay_is_byte_identical() {
    assert_replays_identical(&["sample.pcap", "http/pipelined.pcap", "http/gzip_large.pcap"]);
}

#[test]
fn pipelined_requests_pair_in_order() {
    let run = replay_fixture("http/pipelined.pcap", &[]);
    let paths: Vec<_> = run
        .events()
        .iter()
        .map(|e| get(e, "url.path").as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["/", "/file2k.txt", "/missing.html"]);
    // All three requests arrived in one segment, so they share a start time.
    let starts: Vec<_> = run
        .events()
        .iter()
        .map(|e| get(e, "event.start").clone())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn post_form_options() {
    let ev = fixture_events(
        "http/post_form.pcap",
        &[
            "protocols.http.hide_keywords=[password]",
            "protocols.http.real_ip_header=X-Forwarded-For",
            "protocols.http.send_headers=[User-Agent, cookie]",
            "protocols.http.split_cookie=true",
            "protocols.http.send_request=true",
        ],
        1,
    );
    let e = &ev[0];
    assert_eq!(get(e, "http.request.method"), "POST");
    // The form's password replaces the query's; keys sorted, as Packetbeat does.
    assert_eq!(get(e, "url.query"), "password=xxxxx&q=1&user=alice&x=1");
    assert_eq!(
        get(e, "url.full"),
        "http://10.77.0.2/login?password=xxxxx&q=1&user=alice&x=1"
    );
    assert_eq!(get(e, "params"), "password=xxxxx&q=1&user=alice&x=1");
    assert_eq!(get(e, "network.forwarded_ip"), "203.0.113.7");
    assert_eq!(get(e, "user.name"), "alice");
    assert_eq!(get(e, "http.request.headers.cookie.a"), "1");
    assert_eq!(get(e, "http.request.headers.cookie.b"), "two");
    assert!(get(e, "http.request.headers.user-agent").is_string());
    assert!(get(e, "http.request.headers.x-forwarded-for").is_null());
    assert!(
        get(e, "request")
            .as_str()
            .unwrap()
            .starts_with("POST /login?")
    );
    assert!(!get(e, "request").as_str().unwrap().contains("hunter2"));
}

/// The post_form request head as captured, with the query's password hidden in place
/// and the Basic credentials starred out byte for byte.
const POST_FORM_REDACTED_HEAD: &str = "POST /login?q=1&password=xxxxx HTTP/1.1\r\n\
    Host: 10.77.0.2\r\n\
    Authorization:*******************************\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0\r\n\
    Accept: */*\r\n\
    X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n\
    Cookie: a=1; b=\"two\"\r\n\
    Content-Length: 30\r\n\
    Content-Type: application/x-www-form-urlencoded\r\n\r\n";

#[test]
fn post_form_redact_authorization() {
    let ev = fixture_events(
        "http/post_form.pcap",
        &[
            "protocols.http.hide_keywords=[password]",
            "protocols.http.send_request=true",
            "protocols.http.redact_authorization=true",
            "protocols.http.send_headers=[authorization, cookie]",
        ],
        1,
    );
    let e = &ev[0];
    assert_eq!(get(e, "request"), POST_FORM_REDACTED_HEAD);
    assert_eq!(
        get(e, "http.request.headers"),
        &serde_json::json!({
            "authorization": "*",
            "cookie": "a=1; b=\"two\"",
            "content-length": "30",
            "content-type": "application/x-www-form-urlencoded",
        })
    );
    // No user name is taken from redacted credentials.
    assert!(get(e, "user").is_null(), "{e}");
    assert!(get(e, "related.user").is_null(), "{e}");
    assert_eq!(get(e, "url.query"), "password=xxxxx&q=1&user=alice&x=1");
    assert_eq!(get(e, "params"), "password=xxxxx&q=1&user=alice&x=1");
    let text = e.to_string();
    for secret in ["hunter2", "secret", "YWxpY2U6d29uZGVybGFuZA"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Without the options the same capture shows the credentials' user and the values.
    let run = replay_fixture(
        "http/post_form.pcap",
        &["protocols.http.send_headers=[authorization]"],
    );
    let e = &run.events()[0];
    assert_eq!(get(e, "user.name"), "alice");
    assert_eq!(
        get(e, "http.request.headers.authorization"),
        "Basic YWxpY2U6d29uZGVybGFuZA=="
    );
    assert_eq!(get(e, "url.query"), "password=secret&q=1&user=alice&x=1");
}

#[test]
fn query_charset_whole_header_values_and_sorted_params() {
    let exp = expected("http");
    let t = &exp["query_charset"]["transactions"][0];
    let ev = fixture_events(
        "http/query_charset.pcap",
        &[
            "protocols.http.send_headers=[accept, server]",
            "protocols.http.hide_keywords=[pass]",
        ],
        1,
    );
    let e = &ev[0];
    // Header maps keep the whole value, parameters included; mime_type has none.
    assert_eq!(
        get(e, "http.request.headers"),
        &serde_json::json!({
            "accept": "text/html;q=0.9, */*;q=0.1",
            "content-type": "application/x-www-form-urlencoded; charset=utf-8",
            "content-length": "16",
        })
    );
    assert_eq!(
        get(e, "http.request.mime_type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        get(e, "http.response.headers.content-type"),
        &t["content_type"]
    );
    assert_eq!(
        get(e, "http.response.headers.content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(get(e, "http.response.headers.server"), "nginx");
    assert_eq!(get(e, "http.response.mime_type"), "text/html");
    // Query and form merged, `z` from the form, keys sorted, `Pass` hidden.
    let hidden = "Pass=xxxxx&a=1&a=2&b=2&c=~&flag=&m=x+y&z=form";
    assert_eq!(
        t["params"],
        "Pass=s3cret&a=1&a=2&b=2&c=~&flag=&m=x+y&z=form"
    );
    assert_eq!(get(e, "url.query"), hidden);
    assert_eq!(get(e, "params"), hidden);
    assert_eq!(
        get(e, "url.full"),
        &serde_json::Value::from(format!("http://10.77.0.2/search?{hidden}"))
    );
    assert_eq!(get(e, "url.path"), "/search");
    assert_eq!(get(e, "query"), "POST /search");
}

#[test]
fn gzip_body_is_decoded_when_included() {
    let ev = fixture_events(
        "http/gzip_large.pcap",
        &[
            "protocols.http.include_body_for=[text/plain]",
            "protocols.http.send_response=true",
        ],
        2,
    );
    let big = ev
        .iter()
        .find(|e| get(e, "url.path") == "/big.txt")
        .unwrap();
    assert_eq!(
        get(big, "http.response.body.content")
            .as_str()
            .unwrap()
            .len(),
        102400
    );
    // Body bytes count the gzip'd chunk data that crossed the wire.
    let body = get(big, "http.response.body.bytes").as_u64().unwrap();
    assert!(body > 48_000 && body < 48936, "{body}");
    let small = ev
        .iter()
        .find(|e| get(e, "url.path") == "/file2k.txt")
        .unwrap();
    assert_eq!(
        get(small, "http.response.body.content")
            .as_str()
            .unwrap()
            .len(),
        2048
    );
}

#[test]
fn max_message_size_cuts_the_stored_body_only() {
    let ev = fixture_events(
        "http/gzip_large.pcap",
        &[
            "protocols.http.include_body_for=[text/plain]",
            "protocols.http.max_message_size=1000",
        ],
        2,
    );
    for e in &ev {
        let content = get(e, "http.response.body.content").as_str().unwrap_or("");
        assert!(content.len() <= 1000, "{}", content.len());
        assert_eq!(get(e, "status"), "OK");
    }
    let big = ev
        .iter()
        .find(|e| get(e, "url.path") == "/big.txt")
        .unwrap();
    assert_eq!(get(big, "destination.bytes"), 49204);
}

#[test]
fn close_delimited_and_head() {
    let ev = fixture_events("http/close_delimited.pcap", &[], 1);
    assert_eq!(get(&ev[0], "http.response.body.bytes"), 1040);
    assert_eq!(get(&ev[0], "http.version"), "1.1");

    let run = replay_fixture("http/head_304.pcap", &[]);
    let codes: Vec<_> = run
        .events()
        .iter()
        .map(|e| get(e, "http.response.status_code").clone())
        .collect();
    assert_eq!(codes, [Value::from(200), Value::from(304)]);
}

#[test]
fn early_responses_pair_with_their_requests() {
    // nginx answered each POST before reading its body (a redirect, auth_basic, a
    // body over client_max_body_size); the body followed the response on the same
    // connection (or, after the 413, the client stopped and closed). Each response
    // belongs to its POST, the request counts its whole body, and the requests after
    // it on the keep-alive connection are not shifted.
    // (method, path, status, request bytes, request body bytes, response bytes,
    // duration in ns) as read from the pcaps with tcpdump.
    type Want<'a> = (&'a str, &'a str, u64, u64, u64, u64, u64);
    let cases: [(&str, &[Want<'static>]); 3] = [
        (
            "early_302",
            &[
                ("POST", "/moved", 302, 32919, 32768, 333, 3_129_000),
                ("GET", "/file2k.txt", 200, 92, 0, 2304, 193_000),
                ("GET", "/", 200, 101, 0, 368, 111_000),
            ],
        ),
        (
            "early_401",
            &[
                ("POST", "/private/upload", 401, 32928, 32768, 374, 115_000),
                ("GET", "/private/", 200, 137, 0, 268, 201_000),
                ("GET", "/missing.html", 404, 113, 0, 312, 3_578_000),
            ],
        ),
        (
            "early_413",
            &[("POST", "/upload", 413, 4248, 4096, 334, 314_000)],
        ),
    ];
    let exp = expected("http");
    for (name, want) in cases {
        // The recording really holds an early answer (derived from the capture
        // timestamps by the fixture summary), and only for the POST.
        let early: Vec<bool> = exp[name]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["early_response"].as_bool().unwrap())
            .collect();
        assert!(early[0], "{name}");
        assert!(early[1..].iter().all(|e| !e), "{name}");
        let run = replay_fixture(&format!("http/{name}.pcap"), &[]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let events = run.events();
        let got: Vec<Want> = events
            .iter()
            .map(|e| {
                (
                    get(e, "method").as_str().unwrap(),
                    get(e, "path").as_str().unwrap(),
                    get(e, "http.response.status_code").as_u64().unwrap(),
                    get(e, "source.bytes").as_u64().unwrap(),
                    get(e, "http.request.body.bytes").as_u64().unwrap_or(0),
                    get(e, "destination.bytes").as_u64().unwrap(),
                    get(e, "event.duration").as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
        for e in &events {
            assert!(get(e, "error.message").is_null(), "{name}: {e}");
        }
        assert_eq!(run.counter("unmatched_requests"), 0, "{name}");
        assert_eq!(run.counter("unmatched_responses"), 0, "{name}");
    }
}
