//! The live packet source contract: what a reader thread needs from a capture
//! backend (AF_PACKET ring, libpcap), and nothing more. Swapping the ring library
//! for another implementation only touches the module behind this trait.

use std::time::Duration;

use super::LinkType;
use crate::time::Ts;

/// Which way a frame went, relative to the capturing host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Addressed to this host (or broadcast/multicast).
    Incoming,
    /// Sent by this host.
    Outgoing,
    /// Addressed to another host (seen in promiscuous mode).
    OtherHost,
    /// The backend does not say.
    Unknown,
}

/// One captured frame, borrowed from the source until the visitor returns.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Ts,
    pub linktype: LinkType,
    pub data: &'a [u8],
    /// Length on the wire (>= `data.len()` when cut by the snaplen).
    pub orig_len: u32,
    pub direction: Direction,
}

/// Kernel counters of a source since the previous [`PacketSource::stats`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Frames the kernel handed to the socket, including the dropped ones.
    pub packets: u64,
    /// Frames the kernel dropped because the ring (or buffer) was full.
    pub drops: u64,
    /// Times the ring froze because userspace fell behind (AF_PACKET only).
    pub freezes: u64,
    /// Frames received but discarded by the source itself: the second copy of
    /// loopback frames, and outgoing frames under `shipper.ignore_outgoing` when the
    /// kernel cannot drop them.
    pub skipped: u64,
}

impl SourceStats {
    pub fn add(&mut self, o: &SourceStats) {
        self.packets = self.packets.saturating_add(o.packets);
        self.drops = self.drops.saturating_add(o.drops);
        self.freezes = self.freezes.saturating_add(o.freezes);
        self.skipped = self.skipped.saturating_add(o.skipped);
    }
}

/// A live capture handle owned by one reader thread.
pub trait PacketSource: Send {
    /// The device name, for logs.
    fn device(&self) -> &str;

    /// Waits at most `timeout` for frames and calls `visit` for each frame that is
    /// ready (at most one ring block or a bounded burst). Returns how many frames were
    /// visited; 0 after a quiet timeout.
    fn poll(
        &mut self,
        timeout: Duration,
        visit: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, super::LiveError>;

    /// Kernel counters since the previous call, widened to 64 bits.
    fn stats(&mut self) -> Result<SourceStats, super::LiveError>;
}
