//! Segments of a closed connection: real recordings where late segments arrive
//! after both FINs (tests/pcaps/http/late_retransmit.pcap, dup_syn.pcap), and
//! captures rewritten from the fixtures (copies of the SYN and of data appended
//! after the close, every frame seen twice, the tuple reused by a new connection).

mod common;

use common::*;
use wirebeat::time::Ts;

/// (status, url.path, error.message) of every event.
fn summary(run: &Run) -> Vec<(String, String, String)> {
    run.events()
        .iter()
        .map(|e| {
            let s = |p: &str| get(e, p).as_str().unwrap_or("").to_string();
            (s("status"), s("url.path"), s("error.message"))
        })
        .collect()
}

fn ok(path: &str) -> (String, String, String) {
    ("OK".into(), path.into(), String::new())
}

/// Offsets of an Ethernet/IPv4 TCP frame: (IP header, TCP header, payload).
fn offsets(f: &Frame) -> (usize, usize, usize) {
    let ip = 14;
    assert_eq!(&f.data[12..14], &[0x08, 0x00], "IPv4 over Ethernet");
    let tcp = ip + (f.data[ip] & 0x0f) as usize * 4;
    assert_eq!(f.data[ip + 9], 6, "TCP");
    let payload = tcp + (f.data[tcp + 12] >> 4) as usize * 4;
    (ip, tcp, payload)
}

fn tcp_flags(f: &Frame) -> u8 {
    let (_, tcp, _) = offsets(f);
    f.data[tcp + 13]
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Moves the frame's sequence number by `own` and its acknowledgement by `peer`
/// (a connection with other ISNs), and recomputes the TCP checksum.
fn shift_seq(f: &mut Frame, own: u32, peer: u32) {
    let (ip, tcp, _) = offsets(f);
    let seq = be32(&f.data[tcp + 4..]).wrapping_add(own);
    f.data[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
    if f.data[tcp + 13] & 0x10 != 0 {
        let ack = be32(&f.data[tcp + 8..]).wrapping_add(peer);
        f.data[tcp + 8..tcp + 12].copy_from_slice(&ack.to_be_bytes());
    }
    let total = u16::from_be_bytes([f.data[ip + 2], f.data[ip + 3]]) as usize;
    let end = ip + total;
    f.data[tcp + 16] = 0;
    f.data[tcp + 17] = 0;
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
        }
    };
    add(&f.data[ip + 12..ip + 20]);
    add(&[0, 6]);
    add(&((end - tcp) as u16).to_be_bytes());
    add(&f.data[tcp..end]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    f.data[tcp + 16..tcp + 18].copy_from_slice(&ck.to_be_bytes());
}

fn at(f: &Frame, ts: Ts) -> Frame {
    let mut f = f.clone();
    f.ts = ts;
    f
}

fn later(t: Ts, ms: u64) -> Ts {
    Ts(t.0 + ms * 1_000_000)
}

#[test]
fn late_retransmission_after_both_fins_is_published_once() {
    let pcap = fixture("http/late_retransmit.pcap");
    // The recording: the response's first segment appears twice, the second time
    // after nginx's FIN and the client's (on its request) were captured.
    let frames = read_frames(&pcap);
    let data: Vec<usize> = (0..frames.len())
        .filter(|&i| tcp_info(&frames[i]).is_some_and(|t| t.0 > 0))
        .collect();
    let fins: Vec<usize> = (0..frames.len())
        .filter(|&i| tcp_flags(&frames[i]) & 0x01 != 0)
        .collect();
    assert_eq!(fins.len(), 2);
    let last = *data.last().unwrap();
    assert!(last > fins[1], "a data segment after both FINs");
    // Same sequence number and payload (IP id and timestamp option differ).
    let seq_and_payload = |f: &Frame| {
        let (_, tcp, payload) = offsets(f);
        (be32(&f.data[tcp + 4..]), f.data[payload..].to_vec())
    };
    assert_eq!(
        seq_and_payload(&frames[last]),
        seq_and_payload(&frames[data[1]]),
        "a retransmission"
    );

    let run = replay(&pcap, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run), [ok("/")], "{}", run.stderr);
    assert_eq!(run.counter("flows_created"), 1, "{}", run.stderr);
    assert_eq!(run.counter("flows_closed"), 1, "{}", run.stderr);
    assert_eq!(run.counter("tcp_closed_segments"), 1, "{}", run.stderr);
    assert_eq!(run.counter("unmatched_responses"), 0, "{}", run.stderr);

    // What the tombstone prevents: without it the retransmission opens a
    // mid-stream flow and the response is published a second time, unmatched.
    let run = replay(&pcap, &["-E", "pipeline.tcp_max_closed_flows=0"]);
    assert_eq!(
        summary(&run),
        [
            ok("/"),
            ("Error".into(), "".into(), "Unmatched response".into())
        ],
        "{}",
        run.stderr
    );
    assert_eq!(run.counter("flows_created"), 2);
    assert_eq!(run.counter("tcp_closed_segments"), 0);
}

#[test]
fn late_duplicate_syn_and_request_open_no_connection() {
    let pcap = fixture("http/dup_syn.pcap");
    let frames = read_frames(&pcap);
    let syns: Vec<&Frame> = frames.iter().filter(|f| tcp_flags(f) == 0x02).collect();
    assert_eq!(syns.len(), 2, "the SYN and its late copy");
    assert_eq!(syns[0].data, syns[1].data);

    let run = replay(&pcap, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run), [ok("/close")], "{}", run.stderr);
    assert_eq!(run.counter("flows_created"), 1, "{}", run.stderr);
    // The SYN copy and the request copy; the server's ACK and both RSTs are bare.
    assert_eq!(run.counter("tcp_closed_segments"), 2, "{}", run.stderr);
    assert_eq!(run.counter("unmatched_requests"), 0, "{}", run.stderr);

    let run = replay(&pcap, &["-E", "pipeline.tcp_max_closed_flows=0"]);
    assert_eq!(
        summary(&run),
        [
            ok("/close"),
            ("Error".into(), "/close".into(), "Unmatched request".into())
        ],
        "{}",
        run.stderr
    );
    assert_eq!(run.counter("flows_created"), 3);
}

#[test]
fn copies_of_syn_and_data_after_the_close_are_dropped() {
    let orig = read_frames(&fixture("http/keepalive.pcap"));
    let base = replay(&fixture("http/keepalive.pcap"), &[]);
    let data: Vec<usize> = (0..orig.len())
        .filter(|&i| tcp_info(&orig[i]).is_some_and(|t| t.0 > 0))
        .collect();
    let end = orig.last().unwrap().ts;
    let mut frames = orig.clone();
    frames.push(at(&orig[0], later(end, 200))); // SYN
    frames.push(at(&orig[1], later(end, 201))); // SYN-ACK
    frames.push(at(&orig[data[0]], later(end, 202))); // first request
    frames.push(at(&orig[data[1]], later(end, 203))); // its response
    frames.push(at(&orig[orig.len() - 2], later(end, 204))); // a FIN (bare)
    let path = tmp("late_copies.pcap");
    write_frames(&path, &frames, 65535);

    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run), summary(&base), "{}", run.stderr);
    assert_eq!(summary(&run).len(), 3);
    assert_eq!(run.counter("flows_created"), 1, "{}", run.stderr);
    assert_eq!(run.counter("tcp_closed_segments"), 4, "{}", run.stderr);
    assert_eq!(run.counter("unmatched_requests"), 0, "{}", run.stderr);
    assert_eq!(run.counter("unmatched_responses"), 0, "{}", run.stderr);

    // Remembered for 100 ms only, the copies 200 ms later meet no tombstone: the
    // SYN opens a connection again and the request copy is published unmatched.
    let run = replay(&path, &["-E", "pipeline.tcp_closed_timeout=100ms"]);
    assert_eq!(run.counter("tcp_closed_segments"), 0, "{}", run.stderr);
    assert_eq!(run.counter("flows_created"), 2, "{}", run.stderr);
    assert_eq!(run.events().len(), 4, "{}", run.stderr);
}

#[test]
fn every_frame_seen_twice_gives_the_events_once() {
    // A capture on `any` of traffic that crosses two interfaces sees each frame
    // twice in a row. keepalive.pcap closes with bare FINs: nothing is late.
    // late_retransmit.pcap closes with nginx's last data on its FIN: its copy,
    // and both copies of the retransmission, arrive after the close.
    for (name, late) in [("keepalive", 0), ("late_retransmit", 3)] {
        let pcap = fixture(&format!("http/{name}.pcap"));
        let base = replay(&pcap, &[]);
        let frames: Vec<Frame> = read_frames(&pcap)
            .into_iter()
            .flat_map(|f| [f.clone(), f])
            .collect();
        let path = tmp(&format!("twice_{name}.pcap"));
        write_frames(&path, &frames, 65535);
        let run = replay(&path, &[]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(summary(&run), summary(&base), "{name}: {}", run.stderr);
        assert_eq!(run.counter("flows_created"), 1, "{name}: {}", run.stderr);
        assert_eq!(
            run.counter("tcp_closed_segments"),
            late,
            "{name}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_new_connection_on_the_same_tuple_opens_normally() {
    // get_simple.pcap, then the same conversation again from the same port one
    // second later with fresh ISNs (port reuse on a busy gateway).
    let orig = read_frames(&fixture("http/get_simple.pcap"));
    let client_port = tcp_info(&orig[0]).unwrap().1;
    let shift = orig.last().unwrap().ts.0 - orig[0].ts.0 + 1_000_000_000;
    let mut frames = orig.clone();
    for f in &orig {
        let mut g = at(f, Ts(f.ts.0 + shift));
        let from_client = tcp_info(f).unwrap().1 == client_port;
        let (c, s) = (1_000_000u32, 3_000_000_000u32);
        if from_client {
            shift_seq(&mut g, c, s);
        } else {
            shift_seq(&mut g, s, c);
        }
        frames.push(g);
    }
    let path = tmp("reuse.pcap");
    write_frames(&path, &frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run), [ok("/"), ok("/")], "{}", run.stderr);
    let ev = run.events();
    assert_eq!(get(&ev[0], "source.port"), get(&ev[1], "source.port"));
    assert_eq!(
        get(&ev[0], "destination.bytes"),
        get(&ev[1], "destination.bytes")
    );
    assert_eq!(run.counter("flows_created"), 2, "{}", run.stderr);
    assert_eq!(run.counter("flows_closed"), 2, "{}", run.stderr);
    assert_eq!(run.counter("tcp_closed_segments"), 0, "{}", run.stderr);
}

#[test]
fn port_reuse_recorded_opens_the_second_connection() {
    // Two real connections from client port 45123, the second accepted by the
    // server's TIME_WAIT socket of the first: the tombstone of the first must not
    // swallow the second's SYN (another ISN) nor anything after it.
    let pcap = fixture("http/late_port_reuse.pcap");
    let frames = read_frames(&pcap);
    let syns: Vec<&Frame> = frames.iter().filter(|f| tcp_flags(f) == 0x02).collect();
    assert_eq!(syns.len(), 2);
    assert_eq!(tcp_info(syns[0]).unwrap().1, tcp_info(syns[1]).unwrap().1);
    let run = replay(&pcap, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        summary(&run),
        [ok("/close"), ok("/close")],
        "{}",
        run.stderr
    );
    assert_eq!(run.counter("flows_created"), 2, "{}", run.stderr);
    assert_eq!(run.counter("flows_closed"), 2, "{}", run.stderr);
    assert_eq!(run.counter("tcp_closed_segments"), 0, "{}", run.stderr);
}
