//! Packet sources. Offline replay of pcap and pcapng files ([`file::FileSource`]),
//! writing classic pcap files ([`dump::PcapWriter`]) for `--dump` and test fixtures,
//! and live capture behind [`source::PacketSource`]: AF_PACKET rings
//! ([`af_packet`]) and libpcap loaded at run time ([`pcap_live`]).

pub mod af_packet;
pub mod dump;
pub mod file;
pub mod live;
pub mod pcap_live;
pub mod source;

use std::path::PathBuf;

/// Link-layer type of a captured frame (pcap LINKTYPE_* values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IPv4 or IPv6, told apart by the version nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (`tcpdump -i any`, older libpcap).
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (`tcpdump -i any`, libpcap ≥ 1.10).
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Whether the decoder reads frames of this type (the others are counted as
    /// not IP): the constants above and the historical raw-IP values 12 and 14.
    pub fn is_decoded(self) -> bool {
        matches!(self.0, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276)
    }
}

/// One captured frame, borrowed from the source.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: crate::time::Ts,
    pub linktype: LinkType,
    pub data: &'a [u8],
    /// length on the wire (>= data.len() when cut by snaplen)
    pub orig_len: u32,
}

/// Errors of a packet source. Every message names the file and where in it the
/// problem was found.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: read error at byte offset {offset}: {source}", path.display())]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a pcap or pcapng file: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error(
        "{}: link type {linktype} is not supported (wirebeat decodes Ethernet, Linux cooked v1 and v2, raw IP and BSD loopback)",
        path.display()
    )]
    LinkType { path: PathBuf, linktype: u32 },
    #[error(
        "{}: corrupt record at byte offset {offset} (after {packets} packets): {reason}",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        packets: u64,
        reason: String,
    },
    #[error(
        "{}: file truncated at byte offset {offset} (after {packets} packets): {reason}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        packets: u64,
        reason: String,
    },
}

/// Errors of live capture. Each one says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "{device}: permission denied: capturing needs {needs} (run as root, or \
         `setcap cap_net_raw,cap_net_admin=eip` on the wirebeat binary)"
    )]
    Permission { device: String, needs: String },
    #[error("no such capture device {0:?} (see `wirebeat devices`)")]
    NoDevice(String),
    #[error(
        "{device}: cannot allocate the capture ring even at its smallest size: {detail} \
         (lower interfaces.buffer_size_mb or pipeline.readers, or raise the memory limits)"
    )]
    RingAlloc { device: String, detail: String },
    #[error("{device}: cannot open capture: {detail}")]
    Open { device: String, detail: String },
    #[error("{device}: capture failed: {detail}")]
    Read { device: String, detail: String },
    #[error("capture filter: {0}")]
    Filter(String),
    #[error("{0}")]
    Unsupported(String),
}
