//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>):
//! `1:` + base64(SHA-1(seed ‖ saddr ‖ daddr ‖ proto ‖ 0 ‖ sport ‖ dport)) over the
//! endpoint-ordered tuple, so both directions of a flow get the same ID.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub fn community_id_v1(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    seed: u16,
) -> String {
    hash(src, dst, sport, dport, proto, seed, false)
}

/// ICMP message types and the type of their counterpart (the request of a reply,
/// the reply of a request), after the specification's table: echo, router
/// solicitation/advertisement, timestamp, information, address mask.
const ICMP4_PAIRS: [(u8, u8); 10] = [
    (8, 0),
    (0, 8),
    (10, 9),
    (9, 10),
    (13, 14),
    (14, 13),
    (15, 16),
    (16, 15),
    (17, 18),
    (18, 17),
];
/// ICMPv6: echo, multicast listener query/report, router and neighbour discovery,
/// home agent address discovery.
const ICMP6_PAIRS: [(u8, u8); 10] = [
    (128, 129),
    (129, 128),
    (130, 131),
    (131, 130),
    (133, 134),
    (134, 133),
    (135, 136),
    (136, 135),
    (144, 145),
    (145, 144),
];

/// Community ID of an ICMP (`v6`: ICMPv6) message of type `ty` and code `code` from
/// `src` to `dst`: the type and its counterpart's type stand for the ports, so that
/// a request and its reply share the ID; a type without counterpart uses its code
/// and keeps the direction (a one-way flow).
pub fn community_id_icmp(src: IpAddr, dst: IpAddr, v6: bool, ty: u8, code: u8) -> String {
    let pairs: &[(u8, u8)] = if v6 { &ICMP6_PAIRS } else { &ICMP4_PAIRS };
    let proto = if v6 { 58 } else { 1 };
    match pairs.iter().find(|(t, _)| *t == ty) {
        Some(&(_, other)) => hash(src, dst, ty.into(), other.into(), proto, 0, false),
        None => hash(src, dst, ty.into(), code.into(), proto, 0, true),
    }
}

fn hash(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    seed: u16,
    one_way: bool,
) -> String {
    let (sb, db) = (ip_bytes(&src), ip_bytes(&dst));
    // Order so that the smaller (address, port) comes first.
    let swap = !one_way && (sb.as_slice(), sport) > (db.as_slice(), dport);
    let (a, ap, b, bp) = if swap {
        (db, dport, sb, sport)
    } else {
        (sb, sport, db, dport)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&a);
    h.update(&b);
    h.update([proto, 0]);
    h.update(ap.to_be_bytes());
    h.update(bp.to_be_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from the community-id-spec baseline (tcp, seed 0).
    #[test]
    fn spec_baseline_tcp() {
        let id = community_id_v1(
            "128.232.110.120".parse().unwrap(),
            "66.35.250.204".parse().unwrap(),
            34855,
            80,
            6,
            0,
        );
        assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let rev = community_id_v1(
            "66.35.250.204".parse().unwrap(),
            "128.232.110.120".parse().unwrap(),
            80,
            34855,
            6,
            0,
        );
        assert_eq!(rev, id);
    }

    // The specification's ICMP and ICMPv6 baselines (seed 0).
    #[test]
    fn spec_baseline_icmp() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let (a, b) = (ip("192.168.0.89"), ip("192.168.0.1"));
        let echo = community_id_icmp(a, b, false, 8, 0);
        assert_eq!(echo, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        assert_eq!(community_id_icmp(b, a, false, 0, 0), echo, "the reply");
        assert_eq!(
            community_id_icmp(a, b, false, 20, 1),
            "1:tz/fHIDUHs19NkixVVoOZywde+I="
        );
        assert_eq!(
            community_id_icmp(
                ip("fe80::200:86ff:fe05:80da"),
                ip("fe80::260:97ff:fe07:69ea"),
                true,
                135,
                0
            ),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
        assert_eq!(
            community_id_icmp(
                ip("3ffe:507:0:1:200:86ff:fe05:80da"),
                ip("3ffe:507:0:1:260:97ff:fe07:69ea"),
                true,
                3,
                0
            ),
            "1:/OGBt9BN1ofenrmSPWYicpij2Vc="
        );
    }
}
