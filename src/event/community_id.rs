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
    let (sb, db) = (ip_bytes(&src), ip_bytes(&dst));
    // Order so that the smaller (address, port) comes first.
    let swap = (sb.as_slice(), sport) > (db.as_slice(), dport);
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
}
