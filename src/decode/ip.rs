//! IPv4 / IPv6 (with extension headers and fragments) and TCP / UDP headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::defrag::{Defrag, Frag, FragKey};
use super::{
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IcmpMessage, IpPacket, L4, TcpSegment,
    UdpDatagram,
};
use crate::stats::Counters;
use crate::time::Ts;

/// Extension headers followed before giving up on an IPv6 packet.
const MAX_EXT_HEADERS: usize = 16;

#[inline(always)]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline(always)]
fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// Splits the network-layer bytes `b` (of which `hdr` are the fixed header) by the
/// length field `claimed` (bytes after the start of `b`). Returns the captured part
/// and how many bytes the snaplen cut off, or None when the frame is inconsistent.
#[inline(always)]
fn trim(b: &[u8], claimed: usize, cut: bool) -> Option<(&[u8], usize)> {
    if b.len() >= claimed {
        // Anything beyond is link-layer padding (or an FCS).
        Some((&b[..claimed], 0))
    } else if cut {
        Some((b, claimed - b.len()))
    } else {
        None
    }
}

pub(crate) fn v4<'a>(
    defrag: &'a mut Defrag,
    ts: Ts,
    b: &'a [u8],
    vlan: Option<u16>,
    cut: bool,
    c: &mut Counters,
) -> Option<IpPacket<'a>> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        c.decode_errors += 1;
        return None;
    }
    let ihl = (b[0] & 0x0f) as usize * 4;
    let total = be16(b, 2) as usize;
    // A zero total length is what segmentation offload leaves in locally sent
    // packets: trust the captured length then.
    let total = if total == 0 { b.len() } else { total };
    if ihl < 20 || b.len() < ihl || total < ihl {
        c.decode_errors += 1;
        return None;
    }
    let Some((pkt, missing)) = trim(b, total, cut) else {
        c.decode_errors += 1;
        return None;
    };
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    let proto = b[9];
    let frag = be16(b, 6);
    if frag & 0x3fff != 0 {
        c.ip_fragments += 1;
        if !matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP) {
            c.non_ip_or_l4 += 1;
            return None;
        }
        if missing > 0 {
            // A fragment cut by the snaplen can never complete its datagram.
            c.ip_fragments_dropped += 1;
            return None;
        }
        let f = Frag {
            key: FragKey {
                src,
                dst,
                id: be16(b, 4) as u32,
                proto,
            },
            ts,
            offset: (frag & 0x1fff) as usize * 8,
            more: frag & 0x2000 != 0,
            data: &pkt[ihl..],
            next: proto,
            vlan,
            max_end: 65535 - ihl,
        };
        let done = defrag.insert(f, c)?;
        let buf: &'a [u8] = &defrag.assembled;
        return l4(ts, src, dst, done.vlan, proto, buf, 0, c);
    }
    l4(ts, src, dst, vlan, proto, &pkt[ihl..], missing, c)
}

/// Result of walking IPv6 extension headers.
enum Walk {
    /// Transport header `proto` at `off`.
    L4(u8, usize),
    /// Fragment header at `off`, whose next header is `next`.
    Frag(usize),
    NotL4,
    Bad,
}

#[inline]
fn walk_v6(mut nh: u8, p: &[u8], mut off: usize) -> Walk {
    for _ in 0..MAX_EXT_HEADERS {
        match nh {
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6 => return Walk::L4(nh, off),
            // hop-by-hop, routing, destination options
            0 | 43 | 60 => {
                let Some(h) = p.get(off..off + 2) else {
                    return Walk::Bad;
                };
                nh = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            // authentication header
            51 => {
                let Some(h) = p.get(off..off + 2) else {
                    return Walk::Bad;
                };
                nh = h[0];
                off += (h[1] as usize + 2) * 4;
            }
            44 => {
                let Some(h) = p.get(off..off + 8) else {
                    return Walk::Bad;
                };
                let fo = be16(h, 2);
                if fo & 0xfff9 != 0 {
                    return Walk::Frag(off);
                }
                // Atomic fragment: the whole datagram is here.
                nh = h[0];
                off += 8;
            }
            // ESP (50), no next header (59) and anything else.
            _ => return Walk::NotL4,
        }
    }
    Walk::NotL4
}

pub(crate) fn v6<'a>(
    defrag: &'a mut Defrag,
    ts: Ts,
    b: &'a [u8],
    vlan: Option<u16>,
    cut: bool,
    c: &mut Counters,
) -> Option<IpPacket<'a>> {
    if b.len() < 40 || b[0] >> 4 != 6 {
        c.decode_errors += 1;
        return None;
    }
    let plen = be16(b, 4) as usize;
    // Zero payload length: jumbogram or offloaded segment; use what was captured.
    let claimed = if plen == 0 { b.len() } else { 40 + plen };
    let Some((pkt, missing)) = trim(b, claimed, cut) else {
        c.decode_errors += 1;
        return None;
    };
    let mut s = [0u8; 16];
    s.copy_from_slice(&b[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(s));
    s.copy_from_slice(&b[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(s));
    match walk_v6(b[6], pkt, 40) {
        Walk::L4(proto, off) => match pkt.get(off..) {
            Some(seg) => l4(ts, src, dst, vlan, proto, seg, missing, c),
            None => {
                c.decode_errors += 1;
                None
            }
        },
        Walk::NotL4 => {
            c.non_ip_or_l4 += 1;
            None
        }
        Walk::Bad => {
            c.decode_errors += 1;
            None
        }
        Walk::Frag(off) => {
            c.ip_fragments += 1;
            if missing > 0 {
                c.ip_fragments_dropped += 1;
                return None;
            }
            let h = &pkt[off..off + 8];
            let fo = be16(h, 2);
            let f = Frag {
                key: FragKey {
                    src,
                    dst,
                    id: be32(h, 4),
                    proto: 0,
                },
                ts,
                offset: (fo & 0xfff8) as usize,
                more: fo & 1 != 0,
                data: &pkt[off + 8..],
                next: h[0],
                vlan,
                max_end: 65535,
            };
            let done = defrag.insert(f, c)?;
            let buf: &'a [u8] = &defrag.assembled;
            match walk_v6(done.next, buf, 0) {
                Walk::L4(proto, off) => match buf.get(off..) {
                    Some(seg) => l4(ts, src, dst, done.vlan, proto, seg, 0, c),
                    None => {
                        c.decode_errors += 1;
                        None
                    }
                },
                Walk::NotL4 => {
                    c.non_ip_or_l4 += 1;
                    None
                }
                Walk::Bad | Walk::Frag(_) => {
                    c.decode_errors += 1;
                    None
                }
            }
        }
    }
}

/// Decodes the transport header in `seg` (captured bytes; `missing` more were cut).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn l4<'a>(
    ts: Ts,
    src: IpAddr,
    dst: IpAddr,
    vlan: Option<u16>,
    proto: u8,
    seg: &'a [u8],
    missing: usize,
    c: &mut Counters,
) -> Option<IpPacket<'a>> {
    let l4 = match proto {
        IPPROTO_TCP => {
            if seg.len() < 20 {
                c.decode_errors += 1;
                return None;
            }
            let doff = (seg[12] >> 4) as usize * 4;
            if doff < 20 || doff > seg.len() {
                c.decode_errors += 1;
                return None;
            }
            L4::Tcp(TcpSegment {
                src_port: be16(seg, 0),
                dst_port: be16(seg, 2),
                seq: be32(seg, 4),
                ack: be32(seg, 8),
                flags: seg[13],
                window: be16(seg, 14),
                payload: &seg[doff..],
                missing: missing as u32,
            })
        }
        IPPROTO_UDP => {
            if seg.len() < 8 {
                c.decode_errors += 1;
                return None;
            }
            // The UDP length may be shorter than the IP payload (padding); it is
            // ignored when larger (or zero, as in IPv6 jumbograms).
            let ulen = be16(seg, 4) as usize;
            let whole = seg.len() + missing;
            let whole = if (8..whole).contains(&ulen) {
                ulen
            } else {
                whole
            };
            let have = seg.len().min(whole);
            L4::Udp(UdpDatagram {
                src_port: be16(seg, 0),
                dst_port: be16(seg, 2),
                payload: &seg[8..have],
                missing: (whole - have) as u32,
            })
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let v6 = proto == IPPROTO_ICMPV6;
            // ICMP in IPv6 and ICMPv6 in IPv4 are no messages of either.
            if v6 != src.is_ipv6() || seg.len() < 4 {
                c.decode_errors += 1;
                return None;
            }
            L4::Icmp(IcmpMessage {
                v6,
                data: seg,
                missing: missing as u32,
            })
        }
        _ => {
            c.non_ip_or_l4 += 1;
            return None;
        }
    };
    Some(IpPacket {
        ts,
        src,
        dst,
        vlan,
        l4,
    })
}
