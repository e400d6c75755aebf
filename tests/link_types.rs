//! The same real HTTP exchange re-encapsulated in every supported link type gives the
//! same events.

mod common;

use common::*;
use wirebeat::capture::LinkType;

fn rewrap(frames: &[Frame], lt: LinkType, f: impl Fn(&[u8], &[u8]) -> Vec<u8>) -> Vec<Frame> {
    frames
        .iter()
        .map(|fr| {
            let (eth, ip) = fr.data.split_at(14);
            let data = f(eth, ip);
            Frame {
                ts: fr.ts,
                linktype: lt,
                orig_len: data.len() as u32,
                data,
            }
        })
        .collect()
}

fn events_of(frames: &[Frame], name: &str) -> Vec<(String, String, u64, u64)> {
    let path = tmp(name);
    write_frames(&path, frames, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    run.events()
        .iter()
        .map(|e| {
            (
                get(e, "url.path").as_str().unwrap().to_string(),
                get(e, "@timestamp").as_str().unwrap().to_string(),
                get(e, "destination.bytes").as_u64().unwrap(),
                get(e, "event.duration").as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_link_type_gives_the_same_events() {
    let frames = read_frames(&fixture("http/keepalive.pcap"));
    assert_eq!(frames[0].linktype, LinkType::ETHERNET);
    let want = events_of(&frames, "eth.pcap");
    assert_eq!(want.len(), 3);

    // 802.1Q inside 802.1ad (QinQ).
    let qinq = rewrap(&frames, LinkType::ETHERNET, |eth, ip| {
        let mut v = eth[..12].to_vec();
        v.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        v.extend_from_slice(ip);
        v
    });
    assert_eq!(events_of(&qinq, "qinq.pcap"), want);

    // Linux cooked capture v1 and v2 (what `tcpdump -i any` writes).
    let sll = rewrap(&frames, LinkType::LINUX_SLL, |eth, ip| {
        let mut v = vec![0, 0, 0, 1, 0, 6];
        v.extend_from_slice(&eth[6..12]);
        v.extend_from_slice(&[0, 0, 0x08, 0x00]);
        v.extend_from_slice(ip);
        v
    });
    assert_eq!(events_of(&sll, "sll.pcap"), want);
    let sll2 = rewrap(&frames, LinkType::LINUX_SLL2, |eth, ip| {
        let mut v = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
        v.extend_from_slice(&eth[6..12]);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(ip);
        v
    });
    assert_eq!(events_of(&sll2, "sll2.pcap"), want);

    // Raw IP and BSD loopback.
    let raw = rewrap(&frames, LinkType::RAW, |_, ip| ip.to_vec());
    assert_eq!(events_of(&raw, "raw.pcap"), want);
    let null = rewrap(&frames, LinkType::NULL, |_, ip| {
        let mut v = 2u32.to_ne_bytes().to_vec();
        v.extend_from_slice(ip);
        v
    });
    assert_eq!(events_of(&null, "null.pcap"), want);
}

#[test]
fn ipv6_gives_the_same_transactions() {
    let frames = read_frames(&fixture("http/keepalive.pcap"));
    let want = events_of(&frames, "v4.pcap");
    let v6 = rewrap(&frames, LinkType::ETHERNET, |eth, ip| {
        let ihl = ((ip[0] & 0x0f) as usize) * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let l4 = &ip[ihl..total];
        let mut v = eth[..12].to_vec();
        v.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        v.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        v.extend_from_slice(&[6, 64]);
        for last in [ip[15], ip[19]] {
            v.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]);
        }
        v.extend_from_slice(l4);
        v
    });
    let path = tmp("v6.pcap");
    write_frames(&path, &v6, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ev = run.events();
    assert_eq!(ev.len(), want.len());
    assert_eq!(get(&ev[0], "network.type"), "ipv6");
    assert_eq!(get(&ev[0], "destination.ip"), "fd00::2");
    assert_eq!(events_of(&v6, "v6b.pcap"), want);
}

#[test]
fn ip_fragments_are_reassembled_end_to_end() {
    let frames = read_frames(&fixture("http/keepalive.pcap"));
    let want = events_of(&frames, "unfrag.pcap");
    let mut out = Vec::new();
    for f in &frames {
        let ip = &f.data[14..];
        let ihl = ((ip[0] & 0x0f) as usize) * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let payload = &ip[ihl..total];
        if payload.len() <= 64 {
            out.push(f.clone());
            continue;
        }
        // Two fragments, sent last-first.
        let cut = (payload.len() / 2) & !7;
        let frag = |part: &[u8], off: usize, more: bool| {
            let mut h = ip[..ihl].to_vec();
            h[2..4].copy_from_slice(&((ihl + part.len()) as u16).to_be_bytes());
            let fo = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&fo.to_be_bytes());
            let mut d = f.data[..14].to_vec();
            d.extend_from_slice(&h);
            d.extend_from_slice(part);
            Frame {
                ts: f.ts,
                linktype: f.linktype,
                orig_len: d.len() as u32,
                data: d,
            }
        };
        out.push(frag(&payload[cut..], cut, false));
        out.push(frag(&payload[..cut], 0, true));
    }
    let path = tmp("frag.pcap");
    write_frames(&path, &out, 65535);
    let run = replay(&path, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.counter("ip_reassembled") >= 5, "{}", run.stderr);
    assert_eq!(events_of(&out, "frag2.pcap"), want);
}
