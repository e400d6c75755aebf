//! L2–L4 decoding: link layer → IPv4/IPv6 (with fragment reassembly) → TCP/UDP/ICMP.
//!
//! Every length read from a packet is checked before use; nothing here panics on
//! malformed input, and the common path (an unfragmented packet) does not allocate.

mod defrag;
mod icmp;
mod ip;
mod link;

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::time::Duration;

pub use icmp::{IcmpHeader, IcmpRole};
pub use link::{L2, l2};

use crate::capture::LinkType;
use crate::stats::Counters;
use crate::time::Ts;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: &'a [u8],
    /// payload bytes missing because the frame was cut by snaplen (IP length says
    /// more than was captured)
    pub missing: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
    /// payload bytes missing because the frame was cut by snaplen
    pub missing: u32,
}

/// An ICMP (or ICMPv6) message: its bytes from the ICMP header on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMessage<'a> {
    pub v6: bool,
    pub data: &'a [u8],
    /// bytes missing because the frame was cut by snaplen
    pub missing: u32,
}

impl IcmpMessage<'_> {
    /// Its header; `None` when the message is shorter than one.
    pub fn header(&self) -> Option<IcmpHeader> {
        IcmpHeader::parse(self.v6, self.data, self.data.len() + self.missing as usize)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
    Icmp(IcmpMessage<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// outermost 802.1Q VLAN id if any
    pub vlan: Option<u16>,
    pub l4: L4<'a>,
}

impl IpPacket<'_> {
    /// `(source port, destination port)`; `(0, 0)` for ICMP.
    #[inline]
    pub fn ports(&self) -> (u16, u16) {
        match &self.l4 {
            L4::Tcp(t) => (t.src_port, t.dst_port),
            L4::Udp(u) => (u.src_port, u.dst_port),
            L4::Icmp(_) => (0, 0),
        }
    }

    /// IANA protocol number of the transport: 6 (TCP), 17 (UDP), 1 (ICMP) or 58
    /// (ICMPv6).
    #[inline]
    pub fn ip_proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp(_) => IPPROTO_TCP,
            L4::Udp(_) => IPPROTO_UDP,
            L4::Icmp(m) if m.v6 => IPPROTO_ICMPV6,
            L4::Icmp(_) => IPPROTO_ICMP,
        }
    }

    /// Transport payload (for ICMP the whole message, header included).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        match &self.l4 {
            L4::Tcp(t) => t.payload,
            L4::Udp(u) => u.payload,
            L4::Icmp(m) => m.data,
        }
    }

    /// Symmetric flow hash of this packet's 5-tuple.
    #[inline]
    pub fn flow_hash(&self, seed: u64) -> u64 {
        let (sp, dp) = self.ports();
        flow_hash(self.src, self.dst, sp, dp, self.ip_proto(), seed)
    }
}

/// Bounds of IP fragment reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragLimits {
    /// Incomplete datagrams held at once; the oldest is dropped beyond it.
    pub max_datagrams: usize,
    /// Bytes held by incomplete datagrams; the oldest are dropped beyond it.
    pub max_bytes: usize,
    /// An incomplete datagram older than this (packet time) is dropped.
    pub timeout: Duration,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 1024,
            max_bytes: 4 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Frame decoder. Owns the fragment reassembly state, so use one per worker.
pub struct Decoder {
    defrag: defrag::Defrag,
}

impl Decoder {
    pub fn new(limits: DefragLimits) -> Decoder {
        Decoder {
            defrag: defrag::Defrag::new(limits),
        }
    }

    /// Decodes one frame down to TCP/UDP/ICMP. Returns None (after counting why) for non-IP,
    /// other L4 protocols, malformed frames, and fragments that do not yet complete a
    /// datagram. A completed datagram borrows the decoder's reassembly buffer.
    ///
    /// Counts `packets`, `bytes` (captured length) and `truncated_frames` for every
    /// frame, then `non_ip_or_l4`, `decode_errors`, `ip_fragments`, `ip_reassembled`,
    /// `ip_fragments_dropped` where they apply.
    #[inline]
    pub fn decode<'a>(
        &'a mut self,
        ts: Ts,
        linktype: LinkType,
        data: &'a [u8],
        orig_len: u32,
        counters: &mut Counters,
    ) -> Option<IpPacket<'a>> {
        counters.packets += 1;
        counters.bytes += data.len() as u64;
        let cut = orig_len as usize > data.len();
        if cut {
            counters.truncated_frames += 1;
        }
        self.defrag.maybe_expire(ts, counters);
        match link::strip(linktype, data) {
            link::L3::V4(b, vlan) => ip::v4(&mut self.defrag, ts, b, vlan, cut, counters),
            link::L3::V6(b, vlan) => ip::v6(&mut self.defrag, ts, b, vlan, cut, counters),
            link::L3::NotIp => {
                counters.non_ip_or_l4 += 1;
                None
            }
            link::L3::Bad => {
                counters.decode_errors += 1;
                None
            }
        }
    }

    /// Drops incomplete datagrams older than the timeout (packet time). Also called
    /// implicitly from decode.
    pub fn expire(&mut self, now: Ts, counters: &mut Counters) {
        self.defrag.expire(now, counters);
    }

    /// Incomplete datagrams currently held.
    pub fn pending_datagrams(&self) -> usize {
        self.defrag.pending()
    }

    /// Bytes held by incomplete datagrams.
    pub fn pending_bytes(&self) -> usize {
        self.defrag.pending_bytes()
    }
}

#[inline(always)]
fn addr_bits(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v4) => (4, u32::from(v4) as u128),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

/// Symmetric hash of the 5-tuple: equal for both directions of a flow. Seeded
/// (attackers control tuples).
#[inline]
pub fn flow_hash(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8, seed: u64) -> u64 {
    let a = (addr_bits(src), sport);
    let b = (addr_bits(dst), dport);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = foldhash::fast::FixedState::with_seed(seed).build_hasher();
    h.write_u128(lo.0.1);
    h.write_u128(hi.0.1);
    h.write_u64(
        ((lo.0.0 as u64) << 48)
            | ((lo.1 as u64) << 32)
            | ((hi.1 as u64) << 16)
            | ((hi.0.0 as u64) << 8)
            | proto as u64,
    );
    h.finish()
}
