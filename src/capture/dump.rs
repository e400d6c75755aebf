//! Classic pcap writer (nanosecond magic, host byte order written as little-endian),
//! used by `--dump` and by tests to synthesise captures.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::{LinkType, Packet};

/// Nanosecond-resolution pcap magic, written little-endian.
pub const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Buffered writer of a classic pcap file with nanosecond timestamps.
pub struct PcapWriter<W: Write = BufWriter<File>> {
    out: W,
    snaplen: u32,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (truncates) `path` and writes the file header.
    pub fn create(path: impl AsRef<Path>, linktype: LinkType, snaplen: u32) -> io::Result<Self> {
        let file = File::create(path.as_ref())?;
        PcapWriter::new(BufWriter::with_capacity(1 << 16, file), linktype, snaplen)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Wraps any writer (a `Vec<u8>` in tests) and writes the file header.
    pub fn new(mut out: W, linktype: LinkType, snaplen: u32) -> io::Result<Self> {
        let snaplen = if snaplen == 0 { 262_144 } else { snaplen };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs: 0
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.0.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Appends one record. Data beyond the snaplen is cut (and `orig_len` kept).
    pub fn write(&mut self, pkt: &Packet) -> io::Result<()> {
        let cap = pkt.data.len().min(self.snaplen as usize);
        let orig = pkt.orig_len.max(cap as u32);
        let secs = pkt.ts.0 / 1_000_000_000;
        let nanos = (pkt.ts.0 % 1_000_000_000) as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(secs.min(u32::MAX as u64) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&nanos.to_le_bytes());
        h[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&pkt.data[..cap])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
