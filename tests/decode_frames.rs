//! Decoding of hand-built frames: every link type, VLAN tags, IP options and
//! extension headers, TCP options, padding, snaplen cuts, fragment reassembly and a
//! fuzz-style robustness run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use wirebeat::capture::LinkType;
use wirebeat::decode::{Decoder, DefragLimits, IpPacket, L4, TCP_ACK, TCP_PSH, TCP_SYN, flow_hash};
use wirebeat::protos::testing::XorShift;
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

const A4: [u8; 4] = [10, 0, 0, 1];
const B4: [u8; 4] = [192, 168, 1, 2];
const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&7u32.to_be_bytes());
    v.push((((20 + opts.len()) / 4) as u8) << 4);
    v.push(flags);
    v.extend_from_slice(&1024u16.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(opts);
    v.extend_from_slice(payload);
    v
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

/// IPv4 header with `opts`, identification `id` and flags/fragment-offset word `frag`.
fn ipv4_frag(proto: u8, opts: &[u8], id: u16, frag: u16, l4: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let ihl = 20 + opts.len();
    let mut v = vec![0x40 | (ihl / 4) as u8, 0];
    v.extend_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.push(64);
    v.push(proto);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&A4);
    v.extend_from_slice(&B4);
    v.extend_from_slice(opts);
    v.extend_from_slice(l4);
    v
}

fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
    ipv4_frag(proto, &[], 1, 0x4000, l4)
}

/// IPv6 header followed by `rest` (extension headers and transport), first header `nh`.
fn ipv6(nh: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    v.push(nh);
    v.push(64);
    v.extend_from_slice(&A6);
    v.extend_from_slice(&B6);
    v.extend_from_slice(rest);
    v
}

fn eth_tagged(ethertype: u16, tags: &[(u16, u16)], l3: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    for &(tpid, vid) in tags {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&vid.to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(l3);
    v
}

fn eth(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    eth_tagged(ethertype, &[], l3)
}

fn dec() -> Decoder {
    Decoder::new(DefragLimits {
        max_datagrams: 16,
        max_bytes: 256 * 1024,
        timeout: Duration::from_secs(5),
    })
}

fn run<'a>(
    d: &'a mut Decoder,
    lt: LinkType,
    f: &'a [u8],
    c: &mut Counters,
) -> Option<IpPacket<'a>> {
    d.decode(Ts(1_000), lt, f, f.len() as u32, c)
}

fn tcp_of<'a>(p: &IpPacket<'a>) -> wirebeat::decode::TcpSegment<'a> {
    match p.l4 {
        L4::Tcp(t) => t,
        _ => panic!("expected TCP"),
    }
}

fn udp_payload<'a>(p: &IpPacket<'a>) -> (&'a [u8], u32) {
    match p.l4 {
        L4::Udp(u) => (u.payload, u.missing),
        _ => panic!("expected UDP"),
    }
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = eth(
        0x0800,
        &ipv4(6, &tcp(40000, 80, 1000, TCP_PSH | TCP_ACK, &[], b"GET /")),
    );
    let mut d = dec();
    let mut c = Counters::default();
    let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).expect("decoded");
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::from(A4)));
    assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::from(B4)));
    assert_eq!(p.vlan, None);
    assert_eq!(p.ports(), (40000, 80));
    assert_eq!(p.ip_proto(), 6);
    let t = tcp_of(&p);
    assert_eq!(
        (t.seq, t.ack, t.flags, t.window),
        (1000, 7, TCP_PSH | TCP_ACK, 1024)
    );
    assert_eq!(t.payload, b"GET /");
    assert_eq!(t.missing, 0);
    assert_eq!(c.packets, 1);
    assert_eq!(c.bytes, f.len() as u64);
    assert_eq!(c.decode_errors + c.non_ip_or_l4 + c.truncated_frames, 0);
}

#[test]
fn every_link_type() {
    let v4 = ipv4(17, &udp(5353, 53, b"q4"));
    let v6 = ipv6(17, &udp(5353, 53, b"q6"));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&v4);
    let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    sll2.extend_from_slice(&v6);
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&v4);
    let mut null_be = 30u32.to_be_bytes().to_vec();
    null_be.extend_from_slice(&v6);
    let mut null_le6 = 28u32.to_le_bytes().to_vec();
    null_le6.extend_from_slice(&v6);
    let mut lo = 24u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&v6);
    let mut lo4 = 2u32.to_be_bytes().to_vec();
    lo4.extend_from_slice(&v4);
    let cases: Vec<(LinkType, Vec<u8>, &[u8])> = vec![
        (LinkType::ETHERNET, eth(0x86dd, &v6), b"q6"),
        (LinkType::LINUX_SLL, sll, b"q4"),
        (LinkType::LINUX_SLL2, sll2, b"q6"),
        (LinkType::RAW, v4.clone(), b"q4"),
        (LinkType::RAW, v6.clone(), b"q6"),
        (LinkType(12), v4.clone(), b"q4"),
        (LinkType(14), v6.clone(), b"q6"),
        (LinkType::IPV4, v4.clone(), b"q4"),
        (LinkType::IPV6, v6.clone(), b"q6"),
        (LinkType::NULL, null_le, b"q4"),
        (LinkType::NULL, null_be, b"q6"),
        (LinkType::NULL, null_le6, b"q6"),
        (LinkType::LOOP, lo, b"q6"),
        (LinkType::LOOP, lo4, b"q4"),
    ];
    for (lt, f, want) in cases {
        let mut d = dec();
        let mut c = Counters::default();
        let p = run(&mut d, lt, &f, &mut c).unwrap_or_else(|| panic!("{lt:?}: {c:?}"));
        assert_eq!(udp_payload(&p), (want, 0), "{lt:?}");
        assert_eq!(p.ports(), (5353, 53));
        assert_eq!(p.ip_proto(), 17);
        if want == b"q6" {
            assert_eq!(p.src, IpAddr::V6(Ipv6Addr::from(A6)));
        }
    }
}

#[test]
fn vlan_and_qinq() {
    let l3 = ipv4(6, &tcp(1, 2, 3, TCP_SYN, &[], b""));
    let mut d = dec();
    let mut c = Counters::default();
    let f = eth_tagged(0x0800, &[(0x8100, 0x2064)], &l3);
    let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).unwrap();
    assert_eq!(p.vlan, Some(100));
    assert_eq!(tcp_of(&p).flags, TCP_SYN);
    for outer in [0x88a8u16, 0x9100, 0x8100] {
        let f = eth_tagged(0x0800, &[(outer, 0x0007), (0x8100, 200)], &l3);
        let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).unwrap();
        assert_eq!(p.vlan, Some(7));
    }
    // Tagged frame inside Linux cooked capture.
    let mut sll = vec![
        0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x81, 0x00, 0, 42, 0x08, 0,
    ];
    sll.extend_from_slice(&l3);
    let p = run(&mut d, LinkType::LINUX_SLL, &sll, &mut c).unwrap();
    assert_eq!(p.vlan, Some(42));
    // A tag cut short is malformed.
    let f = eth_tagged(0x0800, &[(0x8100, 5)], &[]);
    let f = &f[..f.len() - 2];
    assert!(run(&mut d, LinkType::ETHERNET, f, &mut c).is_none());
    assert_eq!(c.decode_errors, 1);
}

#[test]
fn ipv4_options_and_tcp_options() {
    let opts = [1, 1, 1, 0, 0x94, 4, 0, 0]; // NOPs + router alert
    let topts = [2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1]; // MSS, WS, SACK-perm
    let f = eth(
        0x0800,
        &ipv4_frag(
            6,
            &opts,
            9,
            0,
            &tcp(1234, 5678, 42, TCP_ACK, &topts, b"body"),
        ),
    );
    let mut d = dec();
    let mut c = Counters::default();
    let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).unwrap();
    let t = tcp_of(&p);
    assert_eq!(t.payload, b"body");
    assert_eq!((t.src_port, t.dst_port, t.seq), (1234, 5678, 42));
    // Bad IHL (< 5) and bad data offset are decode errors.
    let mut bad = ipv4(6, &tcp(1, 2, 3, 0, &[], b""));
    bad[0] = 0x44;
    assert!(run(&mut d, LinkType::RAW, &bad, &mut c).is_none());
    let mut bad = ipv4(6, &tcp(1, 2, 3, 0, &[], b""));
    bad[20 + 12] = 0xf0; // data offset 60 > segment
    assert!(run(&mut d, LinkType::RAW, &bad, &mut c).is_none());
    assert_eq!(c.decode_errors, 2);
}

#[test]
fn ethernet_padding_is_trimmed() {
    let f = eth(0x0800, &ipv4(17, &udp(1, 2, b"x")));
    let mut padded = f.clone();
    padded.resize(60, 0xee);
    padded.extend_from_slice(&[1, 2, 3, 4]); // FCS
    let mut d = dec();
    let mut c = Counters::default();
    let p = run(&mut d, LinkType::ETHERNET, &padded, &mut c).unwrap();
    assert_eq!(udp_payload(&p), (&b"x"[..], 0));
    let f = eth(0x0800, &ipv4(6, &tcp(1, 2, 3, TCP_ACK, &[], b"")));
    let mut padded = f.clone();
    padded.resize(60, 0);
    let p = run(&mut d, LinkType::ETHERNET, &padded, &mut c).unwrap();
    assert!(tcp_of(&p).payload.is_empty());
    // IPv6 too.
    let mut f = eth(0x86dd, &ipv6(17, &udp(1, 2, b"y")));
    f.resize(f.len() + 10, 0);
    let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).unwrap();
    assert_eq!(udp_payload(&p).0, b"y");
}

#[test]
fn snaplen_cut_frames_report_missing_bytes() {
    let body = vec![b'a'; 1000];
    let f = eth(0x0800, &ipv4(6, &tcp(1, 80, 5, TCP_ACK, &[], &body)));
    let cut = &f[..96];
    let mut d = dec();
    let mut c = Counters::default();
    let p = d
        .decode(Ts(5), LinkType::ETHERNET, cut, f.len() as u32, &mut c)
        .unwrap();
    let t = tcp_of(&p);
    assert_eq!(t.payload.len(), 96 - 14 - 20 - 20);
    assert_eq!(t.missing as usize, 1000 - t.payload.len());
    assert_eq!(c.truncated_frames, 1);

    let f = eth(0x86dd, &ipv6(17, &udp(1, 53, &body)));
    let cut = &f[..100];
    let p = d
        .decode(Ts(5), LinkType::ETHERNET, cut, f.len() as u32, &mut c)
        .unwrap();
    let (pl, missing) = udp_payload(&p);
    assert_eq!(pl.len(), 100 - 14 - 40 - 8);
    assert_eq!(pl.len() + missing as usize, 1000);
    assert_eq!(c.truncated_frames, 2);

    // Cut inside the TCP header: cannot decode.
    let f = eth(0x0800, &ipv4(6, &tcp(1, 80, 5, TCP_ACK, &[], &body)));
    assert!(
        d.decode(Ts(5), LinkType::ETHERNET, &f[..40], f.len() as u32, &mut c)
            .is_none()
    );
    assert_eq!(c.decode_errors, 1);
    // Not cut, but the IP length claims more than the frame holds: malformed.
    let short = &f[..200];
    assert!(run(&mut d, LinkType::ETHERNET, short, &mut c).is_none());
    assert_eq!(c.decode_errors, 2);
    assert_eq!(c.truncated_frames, 3);
}

#[test]
fn non_ip_and_other_protocols_are_counted() {
    let mut d = dec();
    let mut c = Counters::default();
    let arp = eth(0x0806, &[0u8; 28]);
    assert!(run(&mut d, LinkType::ETHERNET, &arp, &mut c).is_none());
    let igmp = eth(0x0800, &ipv4(2, &[0x11, 0, 0, 0, 0, 0, 0, 0]));
    assert!(run(&mut d, LinkType::ETHERNET, &igmp, &mut c).is_none());
    let esp = ipv6(50, &[0u8; 16]);
    assert!(run(&mut d, LinkType::RAW, &esp, &mut c).is_none());
    let nonext = ipv6(59, &[]);
    assert!(run(&mut d, LinkType::RAW, &nonext, &mut c).is_none());
    let sctp6 = ipv6(132, &[0u8; 12]);
    assert!(run(&mut d, LinkType::RAW, &sctp6, &mut c).is_none());
    let mut null = 7u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ipv4(17, &udp(1, 2, b"")));
    assert!(run(&mut d, LinkType::NULL, &null, &mut c).is_none());
    assert!(run(&mut d, LinkType(147), &arp, &mut c).is_none());
    assert_eq!(c.non_ip_or_l4, 7);
    assert_eq!(c.decode_errors, 0);
    // Empty and tiny frames are decode errors.
    for lt in [1u32, 113, 276, 101, 228, 229, 0, 108] {
        assert!(run(&mut d, LinkType(lt), &[], &mut c).is_none());
    }
    assert_eq!(c.decode_errors, 8);
}

#[test]
fn ipv6_extension_headers() {
    let t = tcp(443, 50000, 9, TCP_ACK, &[1, 1, 1, 1], b"tls");
    let mut rest = Vec::new();
    // hop-by-hop (8 bytes) -> routing (16 bytes) -> dest opts (8) -> AH (16) -> TCP
    rest.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]);
    rest.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    rest.extend_from_slice(&[51, 0, 1, 4, 0, 0, 0, 0]);
    rest.extend_from_slice(&[6, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
    rest.extend_from_slice(&t);
    let f = eth(0x86dd, &ipv6(0, &rest));
    let mut d = dec();
    let mut c = Counters::default();
    let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).unwrap();
    assert_eq!(tcp_of(&p).payload, b"tls");
    assert_eq!(p.ports(), (443, 50000));
    // Atomic fragment (offset 0, no more fragments) is decoded in place.
    let mut rest = vec![17, 0, 0, 0, 0, 0, 0, 99];
    rest.extend_from_slice(&udp(7, 8, b"atomic"));
    let f = ipv6(44, &rest);
    let p = run(&mut d, LinkType::IPV6, &f, &mut c).unwrap();
    assert_eq!(udp_payload(&p).0, b"atomic");
    assert_eq!(c.ip_fragments, 0);
    // Extension header running past the packet.
    let f = ipv6(0, &[6, 200, 0, 0, 0, 0, 0, 0]);
    assert!(run(&mut d, LinkType::IPV6, &f, &mut c).is_none());
    assert_eq!(c.decode_errors, 1);
}

/// Splits `l4` into IPv4 fragments: `(offset, len, more)`.
fn v4_frags(proto: u8, id: u16, l4: &[u8], pieces: &[(usize, usize, bool)]) -> Vec<Vec<u8>> {
    pieces
        .iter()
        .map(|&(off, len, more)| {
            assert_eq!(off % 8, 0);
            let word = (off / 8) as u16 | if more { 0x2000 } else { 0 };
            eth(
                0x0800,
                &ipv4_frag(proto, &[], id, word, &l4[off..off + len]),
            )
        })
        .collect()
}

fn v6_frags(id: u32, nh: u8, l4: &[u8], pieces: &[(usize, usize, bool)]) -> Vec<Vec<u8>> {
    pieces
        .iter()
        .map(|&(off, len, more)| {
            let mut rest = vec![nh, 0];
            rest.extend_from_slice(&((off as u16) | more as u16).to_be_bytes());
            rest.extend_from_slice(&id.to_be_bytes());
            rest.extend_from_slice(&l4[off..off + len]);
            eth(0x86dd, &ipv6(44, &rest))
        })
        .collect()
}

fn feed(d: &mut Decoder, frames: &[Vec<u8>], order: &[usize], c: &mut Counters) -> Option<Vec<u8>> {
    let mut out = None;
    for (n, &i) in order.iter().enumerate() {
        let f = &frames[i];
        if let Some(p) = d.decode(
            Ts(1_000 + n as u64),
            LinkType::ETHERNET,
            f,
            f.len() as u32,
            c,
        ) {
            assert!(out.is_none(), "completed twice");
            let pl = match p.l4 {
                L4::Udp(u) => u.payload.to_vec(),
                L4::Tcp(t) => t.payload.to_vec(),
                L4::Icmp(m) => m.data.to_vec(),
            };
            out = Some(pl);
        }
    }
    out
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn ipv4_fragments_in_order_out_of_order_duplicated() {
    let payload = body(3000);
    let dg = udp(1000, 2000, &payload);
    let pieces = [
        (0, 1480, true),
        (1480, 1480, true),
        (2960, dg.len() - 2960, false),
    ];
    let frames = v4_frags(17, 77, &dg, &pieces);
    for order in [
        vec![0, 1, 2],
        vec![2, 1, 0],
        vec![1, 2, 0],
        vec![0, 0, 2, 2, 1],
        vec![1, 1, 1, 0, 2],
    ] {
        let mut d = dec();
        let mut c = Counters::default();
        let got = feed(&mut d, &frames, &order, &mut c).expect("reassembled");
        assert_eq!(got, payload, "order {order:?}");
        assert_eq!(c.ip_fragments, order.len() as u64);
        assert_eq!(c.ip_reassembled, 1);
        assert_eq!(c.ip_fragments_dropped, 0);
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(d.pending_bytes(), 0);
    }
    // TCP over fragments keeps its header fields.
    let seg = tcp(80, 3333, 555, TCP_ACK | TCP_PSH, &[], &payload[..100]);
    let frames = v4_frags(6, 5, &seg, &[(0, 64, true), (64, seg.len() - 64, false)]);
    let mut d = dec();
    let mut c = Counters::default();
    let f0 = &frames[1];
    assert!(
        d.decode(Ts(1), LinkType::ETHERNET, f0, f0.len() as u32, &mut c)
            .is_none()
    );
    let f1 = &frames[0];
    let p = d
        .decode(Ts(2), LinkType::ETHERNET, f1, f1.len() as u32, &mut c)
        .unwrap();
    let t = tcp_of(&p);
    assert_eq!((t.seq, t.src_port, t.payload), (555, 80, &payload[..100]));
}

#[test]
fn ipv4_overlapping_fragments_first_wins() {
    let payload = body(64);
    let dg = udp(1, 2, &payload);
    let mut evil = dg.clone();
    for b in &mut evil[16..40] {
        *b = 0xff;
    }
    // First: [0,24) [32,72). Then an overlapping [16,40) with different bytes.
    let mut frames = v4_frags(17, 9, &dg, &[(0, 24, true), (32, 40, false)]);
    frames.extend(v4_frags(17, 9, &evil, &[(16, 24, true)]));
    let mut d = dec();
    let mut c = Counters::default();
    let got = feed(&mut d, &frames, &[0, 1, 2], &mut c).unwrap();
    let mut want = dg.clone();
    // bytes 24..32 come only from the overlapping fragment
    want[24..32].copy_from_slice(&evil[24..32]);
    assert_eq!(got, want[8..]);
}

#[test]
fn fragments_time_out_and_respect_limits() {
    let dg = udp(1, 2, &body(2000));
    let frames = v4_frags(
        17,
        1,
        &dg,
        &[(0, 1000, true), (1000, dg.len() - 1000, false)],
    );
    let mut d = dec();
    let mut c = Counters::default();
    let f = &frames[0];
    assert!(
        d.decode(Ts(0), LinkType::ETHERNET, f, f.len() as u32, &mut c)
            .is_none()
    );
    assert_eq!(d.pending_datagrams(), 1);
    // 6 s later (timeout 5 s): the half datagram is gone, the second half alone waits.
    let f = &frames[1];
    assert!(
        d.decode(
            Ts(6_000_000_000),
            LinkType::ETHERNET,
            f,
            f.len() as u32,
            &mut c
        )
        .is_none()
    );
    assert_eq!(c.ip_fragments_dropped, 1);
    assert_eq!(d.pending_datagrams(), 1);
    d.expire(Ts(20_000_000_000), &mut c);
    assert_eq!(d.pending_datagrams(), 0);
    assert_eq!(d.pending_bytes(), 0);
    assert_eq!(c.ip_fragments_dropped, 2);
    assert_eq!(c.ip_reassembled, 0);

    // Datagram count limit: the oldest incomplete datagram is evicted.
    let mut d = Decoder::new(DefragLimits {
        max_datagrams: 4,
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(60),
    });
    let mut c = Counters::default();
    for id in 0..10u16 {
        let fr = v4_frags(17, id, &dg, &[(0, 1000, true)]);
        assert!(
            d.decode(
                Ts(id as u64),
                LinkType::ETHERNET,
                &fr[0],
                fr[0].len() as u32,
                &mut c
            )
            .is_none()
        );
        assert!(d.pending_datagrams() <= 4);
    }
    assert_eq!(c.ip_fragments_dropped, 6);
    // The newest ones still complete.
    let fr = v4_frags(17, 9, &dg, &[(1000, dg.len() - 1000, false)]);
    assert!(
        d.decode(
            Ts(20),
            LinkType::ETHERNET,
            &fr[0],
            fr[0].len() as u32,
            &mut c
        )
        .is_some()
    );

    // Byte limit.
    let mut d = Decoder::new(DefragLimits {
        max_datagrams: 100,
        max_bytes: 2500,
        timeout: Duration::from_secs(60),
    });
    let mut c = Counters::default();
    for id in 0..5u16 {
        let fr = v4_frags(17, id, &dg, &[(0, 1000, true)]);
        d.decode(
            Ts(id as u64),
            LinkType::ETHERNET,
            &fr[0],
            fr[0].len() as u32,
            &mut c,
        );
        assert!(d.pending_bytes() <= 2500);
    }
    assert_eq!(d.pending_datagrams(), 2);
    assert_eq!(c.ip_fragments_dropped, 3);
    // A single datagram larger than the byte limit is dropped.
    let big = udp(1, 2, &body(4000));
    let fr = v4_frags(17, 99, &big, &[(3000, 1008, false)]);
    assert!(
        d.decode(
            Ts(9),
            LinkType::ETHERNET,
            &fr[0],
            fr[0].len() as u32,
            &mut c
        )
        .is_none()
    );
    assert!(d.pending_bytes() <= 2500);
}

#[test]
fn fragment_train_beyond_64k_is_dropped() {
    let dg = udp(1, 2, &body(1500));
    let mut d = dec();
    let mut c = Counters::default();
    let first = v4_frags(17, 3, &dg, &[(0, 1000, true)]);
    d.decode(
        Ts(1),
        LinkType::ETHERNET,
        &first[0],
        first[0].len() as u32,
        &mut c,
    );
    // offset 65000 + 1000 bytes > 65535
    let mut f = ipv4_frag(17, &[], 3, 0x2000 | (65000 / 8), &body(1000));
    f = eth(0x0800, &f);
    assert!(
        d.decode(Ts(2), LinkType::ETHERNET, &f, f.len() as u32, &mut c)
            .is_none()
    );
    assert_eq!(d.pending_datagrams(), 0);
    assert_eq!(c.ip_fragments_dropped, 2);
    // A last fragment that ends before data already received is inconsistent.
    let fr = v4_frags(17, 4, &dg, &[(0, 1000, true), (8, 8, false)]);
    assert!(feed(&mut d, &fr, &[0, 1], &mut c).is_none());
    assert_eq!(d.pending_datagrams(), 0);
}

#[test]
fn ipv6_fragments() {
    let payload = body(2500);
    let dg = udp(53, 5353, &payload);
    let pieces = [
        (0, 1232, true),
        (1232, 1232, true),
        (2464, dg.len() - 2464, false),
    ];
    let frames = v6_frags(0xdead_beef, 17, &dg, &pieces);
    for order in [vec![0, 1, 2], vec![2, 0, 1], vec![1, 1, 2, 0]] {
        let mut d = dec();
        let mut c = Counters::default();
        let got = feed(&mut d, &frames, &order, &mut c).expect("reassembled");
        assert_eq!(got, payload);
        assert_eq!(c.ip_reassembled, 1);
        assert_eq!(c.ip_fragments, order.len() as u64);
    }
    // A destination-options header inside the fragmentable part.
    let mut inner = vec![17, 0, 1, 4, 0, 0, 0, 0];
    inner.extend_from_slice(&dg);
    let frames = v6_frags(
        7,
        60,
        &inner,
        &[(0, 1000, true), (1000, inner.len() - 1000, false)],
    );
    let mut d = dec();
    let mut c = Counters::default();
    assert_eq!(feed(&mut d, &frames, &[1, 0], &mut c).unwrap(), payload);
    // Fragments of an ICMPv6 datagram reassemble into the whole message.
    let frames = v6_frags(
        8,
        58,
        &inner,
        &[(0, 1000, true), (1000, inner.len() - 1000, false)],
    );
    assert_eq!(feed(&mut d, &frames, &[0, 1], &mut c).unwrap(), inner);
    // Those of another protocol reassemble but are not decoded.
    let frames = v6_frags(
        9,
        132,
        &inner,
        &[(0, 1000, true), (1000, inner.len() - 1000, false)],
    );
    assert!(feed(&mut d, &frames, &[0, 1], &mut c).is_none());
    assert_eq!(c.non_ip_or_l4, 1);
}

#[test]
fn icmp_messages_decode_with_their_header() {
    let mut d = dec();
    let mut c = Counters::default();
    let echo = eth(
        0x0800,
        &ipv4(1, &[8, 0, 0, 0, 0x12, 0x34, 0, 9, 0xaa, 0xbb]),
    );
    let p = run(&mut d, LinkType::ETHERNET, &echo, &mut c).expect("icmp");
    assert_eq!((p.ip_proto(), p.ports()), (1, (0, 0)));
    let L4::Icmp(m) = p.l4 else {
        panic!("expected ICMP")
    };
    let h = m.header().expect("header");
    assert_eq!((h.ty, h.id, h.seq, h.body_len), (8, 0x1234, 9, 2));
    assert_eq!(p.payload().len(), 10, "the whole message, header included");
    let echo6 = ipv6(58, &[129, 0, 0, 0, 0, 7, 0, 1]);
    let p = run(&mut d, LinkType::RAW, &echo6, &mut c).expect("icmpv6");
    assert_eq!(p.ip_proto(), 58);
    // ICMPv6 in IPv4 and messages shorter than 4 bytes are malformed; IPv6 has no
    // protocol 1.
    for f in [
        eth(0x0800, &ipv4(58, &[128, 0, 0, 0])),
        eth(0x0800, &ipv4(1, &[8, 0, 0])),
        eth(0x86dd, &ipv6(1, &[8, 0, 0, 0, 0, 0, 0, 0])),
    ] {
        assert!(run(&mut d, LinkType::ETHERNET, &f, &mut c).is_none());
    }
    assert_eq!((c.decode_errors, c.non_ip_or_l4), (2, 1));
}

#[test]
fn flow_hash_is_symmetric_and_seeded() {
    let a: IpAddr = "10.1.2.3".parse().unwrap();
    let b: IpAddr = "10.9.8.7".parse().unwrap();
    let h1 = flow_hash(a, b, 1234, 80, 6, 42);
    assert_eq!(h1, flow_hash(b, a, 80, 1234, 6, 42));
    assert_ne!(h1, flow_hash(a, b, 1234, 80, 17, 42));
    assert_ne!(h1, flow_hash(a, b, 1235, 80, 6, 42));
    assert_ne!(h1, flow_hash(a, b, 1234, 80, 6, 43));
    // Same address on both ends: ports decide the order.
    assert_eq!(flow_hash(a, a, 1, 2, 6, 0), flow_hash(a, a, 2, 1, 6, 0));
    let x: IpAddr = "2001:db8::1".parse().unwrap();
    let y: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    assert_eq!(flow_hash(x, y, 5, 6, 17, 1), flow_hash(y, x, 6, 5, 17, 1));
    assert_ne!(flow_hash(a, b, 1, 2, 6, 0), flow_hash(y, b, 1, 2, 6, 0));
    let f = eth(0x0800, &ipv4(6, &tcp(1234, 80, 0, 0, &[], b"")));
    let mut d = dec();
    let mut c = Counters::default();
    let p = run(&mut d, LinkType::ETHERNET, &f, &mut c).unwrap();
    assert_eq!(
        p.flow_hash(3),
        flow_hash(p.dst, p.src, p.ports().1, p.ports().0, 6, 3)
    );
}

#[test]
fn fuzz_no_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let lts = [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276];
    let seeds: Vec<(u32, Vec<u8>)> = {
        let v4t = ipv4(6, &tcp(1, 2, 3, TCP_ACK, &[1, 1, 1, 1], b"hello"));
        let v6u = ipv6(0, &{
            let mut r = vec![44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 5];
            r.extend_from_slice(&udp(1, 2, b"x"));
            r
        });
        let fr = ipv4_frag(17, &[], 5, 0x2000, &udp(1, 2, &body(16)));
        vec![
            (1, eth_tagged(0x0800, &[(0x88a8, 1), (0x8100, 2)], &v4t)),
            (1, eth(0x86dd, &v6u)),
            (1, eth(0x0800, &fr)),
            (101, v4t.clone()),
            (229, v6u.clone()),
            (113, {
                let mut s = vec![0; 14];
                s.extend_from_slice(&[0x08, 0]);
                s.extend_from_slice(&v4t);
                s
            }),
        ]
    };
    let mut d = Decoder::new(DefragLimits {
        max_datagrams: 8,
        max_bytes: 64 * 1024,
        timeout: Duration::from_millis(1),
    });
    let mut c = Counters::default();
    let mut decoded = 0u64;
    for i in 0..100_000u64 {
        let r = rng.next();
        let (lt, buf) = if r.is_multiple_of(3) {
            // Pure noise.
            let n = (rng.next() % 200) as usize;
            let buf: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            (lts[(r >> 8) as usize % lts.len()], buf)
        } else {
            // A valid frame, mutated and cut.
            let (lt, s) = &seeds[(r >> 8) as usize % seeds.len()];
            let mut buf = s.clone();
            for _ in 0..(rng.next() % 4) {
                let at = (rng.next() as usize) % buf.len();
                buf[at] = rng.next() as u8;
            }
            let cut = (rng.next() as usize) % (buf.len() + 1);
            buf.truncate(cut);
            (*lt, buf)
        };
        let orig = buf.len() as u32 + (rng.next() % 3) as u32 * 100;
        if let Some(p) = d.decode(Ts(i * 100_000), LinkType(lt), &buf, orig, &mut c) {
            let _ = p.ports();
            decoded += 1;
        }
    }
    assert_eq!(c.packets, 100_000);
    assert!(decoded > 0);
    assert!(d.pending_datagrams() <= 8);
}
