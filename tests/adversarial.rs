//! Hostile and damaged input: captures rewritten from the real fixtures (reordered,
//! duplicated, cut, holed, truncated) and garbage on a known port. Each must give the
//! documented result and never a panic.

mod common;

use common::*;
use serde_json::Value;

fn summary(run: &Run) -> Vec<(String, u64, String)> {
    run.events()
        .iter()
        .map(|e| {
            (
                get(e, "url.path").as_str().unwrap_or("").to_string(),
                get(e, "http.response.status_code").as_u64().unwrap_or(0),
                get(e, "status").as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Indices of frames carrying TCP payload.
fn data_frames(frames: &[Frame]) -> Vec<usize> {
    frame_indices(frames, |f| tcp_info(f).is_some_and(|t| t.0 > 0))
}

#[test]
fn out_of_order_and_duplicated_segments_give_the_same_events() {
    let orig = read_frames(&fixture("http/gzip_large.pcap"));
    let base = replay(&fixture("http/gzip_large.pcap"), &[]);
    let data = data_frames(&orig);
    assert!(data.len() > 10);
    let mut frames = orig.clone();
    // Swap pairs of data segments in the large response and duplicate a few.
    for k in (4..data.len().saturating_sub(4)).step_by(5) {
        frames.swap(data[k], data[k + 1]);
    }
    let mut with_dups = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        with_dups.push(f.clone());
        if i % 7 == 3 {
            with_dups.push(f.clone());
        }
    }
    let path = tmp("ooo.pcap");
    write_frames(&path, &with_dups, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run), summary(&base));
    assert!(run.counter("tcp_ooo_buffered") > 0, "{}", run.stderr);
    assert!(run.counter("tcp_retransmits") > 0, "{}", run.stderr);
    assert_eq!(run.counter("tcp_gaps"), 0, "{}", run.stderr);
    let (a, b) = (base.events(), run.events());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(get(x, "destination.bytes"), get(y, "destination.bytes"));
        assert_eq!(
            get(x, "http.response.body.bytes"),
            get(y, "http.response.body.bytes")
        );
    }
}

#[test]
fn a_lost_body_segment_is_a_gap_with_the_packet_loss_note() {
    let orig = read_frames(&fixture("http/gzip_large.pcap"));
    let data = data_frames(&orig);
    // Drop one segment in the middle of the large gzip'd response.
    let victim = data[data.len() / 2];
    let frames = without(&orig, victim);
    let path = tmp("gap.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    assert_eq!(ev.len(), 2, "{}\n{ev:#?}", run.stderr);
    let big = ev
        .iter()
        .find(|e| get(e, "url.path") == "/big.txt")
        .unwrap();
    assert_eq!(get(big, "status"), "OK");
    assert_eq!(
        get(big, "error.message"),
        "Packet loss while capturing the response"
    );
    // The lost bytes still count: the response size is what crossed the wire.
    assert_eq!(get(big, "destination.bytes"), 49204);
    assert_eq!(run.counter("tcp_gaps"), 1, "{}", run.stderr);
    // The request after the hole on the same connection is intact.
    let small = ev
        .iter()
        .find(|e| get(e, "url.path") == "/file2k.txt")
        .unwrap();
    assert!(get(small, "error.message").is_null());
}

#[test]
fn snaplen_cut_packets_are_gaps_not_garbage() {
    let frames = read_frames(&fixture("http/gzip_large.pcap"));
    let path = tmp("snap.pcap");
    write_frames(&path, &frames, 400);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.counter("truncated_frames") > 0, "{}", run.stderr);
    let ev = run.events();
    let big = ev
        .iter()
        .find(|e| get(e, "url.path") == "/big.txt")
        .expect("big.txt event");
    assert_eq!(get(big, "http.response.status_code"), 200);
    assert_eq!(
        get(big, "error.message"),
        "Packet loss while capturing the response"
    );
}

#[test]
fn truncated_file_publishes_everything_before_the_damage() {
    let bytes = std::fs::read(fixture("http/keepalive.pcap")).unwrap();
    let path = tmp("cut.pcap");
    // Cut in the middle of the last few records.
    std::fs::write(&path, &bytes[..bytes.len() - 150]).unwrap();
    let run = replay(&path, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cut.pcap"), "{}", run.stderr);
    let paths: Vec<_> = summary(&run).into_iter().map(|s| s.0).collect();
    assert_eq!(
        paths,
        ["/", "/file2k.txt", "/missing.html"],
        "{}",
        run.stderr
    );
}

#[test]
fn garbage_on_port_80_never_panics() {
    let orig = read_frames(&fixture("http/get_simple.pcap"));
    let data = data_frames(&orig);
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut frames = orig.clone();
    for (round, &i) in data.iter().enumerate() {
        let f = &mut frames[i];
        let hdr = f.data.len() - tcp_info(f).unwrap().0;
        for b in &mut f.data[hdr..] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if round == 0 {
            f.data[hdr] = 0x16; // looks like TLS
        }
    }
    let path = tmp("garbage.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.events().len() <= 1,
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert!(run.counter("parse_errors") > 0, "{}", run.stderr);
}

#[test]
fn random_frames_never_panic() {
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let template = read_frames(&fixture("http/keepalive.pcap"));
    let mut frames = Vec::new();
    for i in 0..3000 {
        let mut f = template[i % template.len()].clone();
        match rnd() % 4 {
            0 => {
                let n = (rnd() as usize) % f.data.len();
                f.data.truncate(n);
            }
            1 => {
                for _ in 0..4 {
                    let n = (rnd() as usize) % f.data.len().max(1);
                    if let Some(b) = f.data.get_mut(n) {
                        *b = rnd() as u8;
                    }
                }
            }
            2 => f.data = (0..(rnd() % 1600)).map(|_| rnd() as u8).collect(),
            _ => {}
        }
        f.orig_len = f.data.len() as u32;
        frames.push(f);
    }
    let path = tmp("random.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for e in run.events() {
        assert_eq!(get(&e, "type"), "http");
        assert!(matches!(get(&e, "status"), Value::String(_)));
    }
}

#[test]
fn looping_replays_keep_time_moving_forward() {
    let run = replay(&fixture("http/get_simple.pcap"), &["-l", "3"]);
    let ev = run.events();
    assert_eq!(ev.len(), 3, "{}", run.stderr);
    let ts: Vec<_> = ev
        .iter()
        .map(|e| get(e, "@timestamp").as_str().unwrap().to_string())
        .collect();
    assert!(ts[0] < ts[1] && ts[1] < ts[2], "{ts:?}");
}

#[test]
fn dump_writes_every_packet() {
    let out = tmp("dump.pcap");
    let run = replay(
        &fixture("sample.pcap"),
        &["-N", "--dump", out.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(
        read_frames(&out).len(),
        read_frames(&fixture("sample.pcap")).len()
    );
    assert!(run.counter("transactions") > 0);
}

#[test]
fn a_connection_picked_up_mid_stream() {
    // Start the capture after the handshake and the first request: the first
    // response is unmatched, the rest of the keep-alive connection pairs normally.
    let orig = read_frames(&fixture("http/keepalive.pcap"));
    let data = data_frames(&orig);
    let first_response = data[1];
    let path = tmp("midstream.pcap");
    write_frames(&path, &orig[first_response..], 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    assert_eq!(ev.len(), 3, "{}", run.stderr);
    assert_eq!(get(&ev[0], "status"), "Error");
    assert_eq!(get(&ev[0], "error.message"), "Unmatched response");
    assert_eq!(get(&ev[0], "http.response.status_code"), 200);
    assert!(get(&ev[0], "http.request.method").is_null());
    let rest: Vec<_> = summary(&run).into_iter().skip(1).collect();
    assert_eq!(
        rest,
        [
            ("/file2k.txt".to_string(), 200, "OK".to_string()),
            ("/missing.html".to_string(), 404, "Error".to_string())
        ]
    );
    assert_eq!(run.counter("unmatched_responses"), 1);
}

#[test]
fn requests_without_responses_are_unmatched_at_end_of_input() {
    let orig = read_frames(&fixture("http/keepalive.pcap"));
    // Keep only client-to-server frames.
    let frames: Vec<Frame> = orig
        .into_iter()
        .filter(|f| tcp_info(f).is_some_and(|t| t.2 == 80))
        .collect();
    let path = tmp("noresp.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    let ev = run.events();
    assert_eq!(ev.len(), 3, "{}", run.stderr);
    for e in &ev {
        assert_eq!(get(e, "status"), "Error");
        assert_eq!(get(e, "error.message"), "Unmatched request");
        assert!(get(e, "event.duration").is_null());
        assert_eq!(get(e, "destination.bytes"), 0);
    }
    assert_eq!(run.counter("unmatched_requests"), 3);
}

#[test]
fn pickup_in_the_middle_of_a_body_resyncs_on_the_next_message() {
    let orig = read_frames(&fixture("http/gzip_large.pcap"));
    let data = data_frames(&orig);
    // Start inside the large gzip'd response.
    let start = data[data.len() / 3];
    let path = tmp("midbody.pcap");
    write_frames(&path, &orig[start..], 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ok: Vec<_> = summary(&run).into_iter().filter(|s| s.2 == "OK").collect();
    assert_eq!(
        ok,
        [("/file2k.txt".to_string(), 200, "OK".to_string())],
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(run.counter("parser_stopped"), 0, "{}", run.stderr);
}
