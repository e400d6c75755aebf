//! Link layers: strip the frame header down to the IP header.

use crate::capture::LinkType;

/// Where the network layer starts, or why it does not.
pub(crate) enum L3<'a> {
    V4(&'a [u8], Option<u16>),
    V6(&'a [u8], Option<u16>),
    /// Not IPv4/IPv6 (ARP, LLDP, other address families...).
    NotIp,
    /// Too short or inconsistent for its link type.
    Bad,
}

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86dd;

#[inline(always)]
fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Follows an EtherType and any stacked 802.1Q / 802.1ad tags starting at `off`.
#[inline(always)]
fn ethertype_chain(d: &[u8], mut off: usize, mut et: u16) -> L3<'_> {
    let mut vlan = None;
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
        let (Some(tci), Some(next)) = (be16(d, off), be16(d, off + 2)) else {
            return L3::Bad;
        };
        if vlan.is_none() {
            vlan = Some(tci & 0x0fff);
        }
        et = next;
        off += 4;
    }
    let rest = d.get(off..).unwrap_or(&[]);
    match et {
        ETH_IPV4 => L3::V4(rest, vlan),
        ETH_IPV6 => L3::V6(rest, vlan),
        _ => L3::NotIp,
    }
}

/// Raw IP: the version nibble tells IPv4 from IPv6.
#[inline(always)]
fn raw(d: &[u8]) -> L3<'_> {
    match d.first().map(|b| b >> 4) {
        Some(4) => L3::V4(d, None),
        Some(6) => L3::V6(d, None),
        Some(_) => L3::NotIp,
        None => L3::Bad,
    }
}

/// BSD address families carried by NULL/LOOP headers.
#[inline(always)]
fn by_af(af: u32, d: &[u8]) -> L3<'_> {
    match af {
        2 => L3::V4(d, None),
        // AF_INET6 on NetBSD/OpenBSD (24), FreeBSD (28), macOS (30).
        24 | 28 | 30 => L3::V6(d, None),
        _ => L3::NotIp,
    }
}

/// Strips the link-layer header of `data` according to `linktype`.
#[inline]
pub(crate) fn strip(linktype: LinkType, d: &[u8]) -> L3<'_> {
    match linktype.0 {
        1 => match be16(d, 12) {
            Some(et) => ethertype_chain(d, 14, et),
            None => L3::Bad,
        },
        113 => {
            // Linux cooked v1: pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
            if d.len() < 16 {
                return L3::Bad;
            }
            match be16(d, 14) {
                Some(et) => ethertype_chain(d, 16, et),
                None => L3::Bad,
            }
        }
        276 => {
            // Linux cooked v2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1)
            // halen(1) addr(8).
            if d.len() < 20 {
                return L3::Bad;
            }
            match be16(d, 0) {
                Some(et) => ethertype_chain(d, 20, et),
                None => L3::Bad,
            }
        }
        // LINKTYPE_RAW, and the historical DLT_RAW values 12 and 14.
        101 | 12 | 14 => raw(d),
        228 => L3::V4(d, None),
        229 => L3::V6(d, None),
        0 => {
            let Some(h) = d.get(..4) else {
                return L3::Bad;
            };
            // Host byte order of the capturing machine: the family is < 256, so
            // whichever end holds the non-zero byte tells the order.
            let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let af = if le <= 0xffff {
                le
            } else {
                u32::from_be_bytes([h[0], h[1], h[2], h[3]])
            };
            by_af(af, &d[4..])
        }
        108 => {
            let Some(h) = d.get(..4) else {
                return L3::Bad;
            };
            by_af(u32::from_be_bytes([h[0], h[1], h[2], h[3]]), &d[4..])
        }
        _ => L3::NotIp,
    }
}

/// What a network flow keeps of a frame's link layer (`flows:`): the Ethernet
/// addresses and up to two 802.1Q / 802.1ad tags, outermost first. Frames of other
/// link types (Linux cooked, raw IP, loopback) have neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct L2 {
    /// Source then destination address, when the frame is Ethernet.
    pub macs: Option<([u8; 6], [u8; 6])>,
    /// VLAN ids, outermost first; `nvlans` of them are set.
    pub vlans: [u16; 2],
    pub nvlans: u8,
}

impl L2 {
    /// The VLAN ids, outermost first.
    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.nvlans.min(2))]
    }

    /// The same frame seen from its other end: the addresses swapped.
    pub fn reversed(&self) -> L2 {
        L2 {
            macs: self.macs.map(|(s, d)| (d, s)),
            ..*self
        }
    }
}

/// The link-layer facts of `data` (see [`L2`]); VLAN tags beyond the second are
/// not kept (the frame still decodes through them).
pub fn l2(linktype: LinkType, data: &[u8]) -> L2 {
    let mut out = L2::default();
    let (mut off, mut et) = match linktype.0 {
        1 => match (data.get(0..6), data.get(6..12), be16(data, 12)) {
            (Some(d), Some(s), Some(et)) => {
                let mac = |b: &[u8]| [b[0], b[1], b[2], b[3], b[4], b[5]];
                out.macs = Some((mac(s), mac(d)));
                (14, et)
            }
            _ => return out,
        },
        113 => match be16(data, 14) {
            Some(et) => (16, et),
            None => return out,
        },
        276 => match be16(data, 0) {
            Some(et) => (20, et),
            None => return out,
        },
        _ => return out,
    };
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
        let (Some(tci), Some(next)) = (be16(data, off), be16(data, off + 2)) else {
            break;
        };
        if usize::from(out.nvlans) < 2 {
            out.vlans[usize::from(out.nvlans)] = tci & 0x0fff;
            out.nvlans += 1;
        }
        et = next;
        off += 4;
    }
    out
}
