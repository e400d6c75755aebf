//! Offline capture files: classic pcap (microsecond and nanosecond magic, either byte
//! order, and the old "modified" format) and pcapng (any number of sections and
//! interfaces, per-interface `if_tsresol` / `if_tsoffset`, EPB and SPB, either byte
//! order), detected by the magic number.
//!
//! The file is streamed through a bounded buffer. Before a record is handed to the
//! parser its length is checked against fixed limits, so a corrupt length field is
//! reported as corruption instead of driving an allocation or a long read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::{CaptureError, LinkType, Packet};
use crate::time::Ts;

/// Largest captured length accepted for one packet.
pub const MAX_CAPLEN: u32 = 256 * 1024;
/// Largest pcapng block accepted (a packet of `MAX_CAPLEN` plus generous options).
const MAX_BLOCK: usize = MAX_CAPLEN as usize + 64 * 1024;
/// Read buffer: holds at least one record of the largest accepted size.
const BUF_CAP: usize = 1 << 20;
/// Interfaces per pcapng section (each costs memory, a file must not grow it freely).
const MAX_INTERFACES: usize = 4096;

const SHB_MAGIC: u32 = 0x0A0D_0D0A;
const BOM_LE: u32 = 0x1A2B_3C4D;
const BOM_BE: u32 = 0x4D3C_2B1A;

/// A `Read` adapter that fills the caller's buffer completely unless the end of the
/// input is reached (the pcap parsers read their headers with a single call), and
/// keeps the last I/O error so it can be reported with its cause.
struct FullRead {
    inner: Box<dyn Read + Send>,
    err: Arc<Mutex<Option<io::Error>>>,
}

impl Read for FullRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    if let Ok(mut slot) = self.err.lock() {
                        *slot = Some(e);
                    }
                    return Err(copy);
                }
            }
        }
        Ok(n)
    }
}

enum Inner {
    Pcap(LegacyPcapReader<FullRead>),
    Ng(PcapNGReader<FullRead>),
}

macro_rules! with_reader {
    ($inner:expr, $r:ident => $e:expr) => {
        match $inner {
            Inner::Pcap($r) => $e,
            Inner::Ng($r) => $e,
        }
    };
}

/// Per-interface state of a pcapng section.
#[derive(Clone, Copy, Debug)]
struct Iface {
    linktype: LinkType,
    snaplen: u32,
    max_caplen: u32,
    /// Timestamp units per second.
    per_sec: u64,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

impl Iface {
    #[inline]
    fn ts(&self, high: u32, low: u32) -> Ts {
        let units = ((high as u64) << 32) | low as u64;
        let ns: u128 = match self.per_sec {
            1_000_000 => units as u128 * 1_000,
            1_000_000_000 => units as u128,
            p => units as u128 * 1_000_000_000 / p as u128,
        };
        let ns = ns as i128 + self.offset_ns;
        Ts(ns.clamp(0, u64::MAX as i128) as u64)
    }
}

/// State of the file format being read.
struct Format {
    // classic pcap
    linktype: LinkType,
    nanos: bool,
    big_endian: bool,
    rec_hdr: usize,
    max_caplen: u32,
    // pcapng
    ng_big_endian: bool,
    ifaces: Vec<Iface>,
    /// Interfaces of an unsupported link type warned about (a few, not thousands).
    unsupported_warned: u32,
    last_ts: Ts,
}

/// What one parsed record turned out to be.
enum Step {
    Packet {
        consume: usize,
        start: usize,
        len: usize,
        ts: Ts,
        linktype: LinkType,
        orig_len: u32,
    },
    Skip(usize),
    Corrupt(String),
}

/// Streaming reader of a pcap or pcapng file.
pub struct FileSource {
    path: PathBuf,
    reader: Inner,
    fmt: Format,
    io_err: Arc<Mutex<Option<io::Error>>>,
    /// Bytes of the packet last returned, consumed on the next call.
    pending: usize,
    packets: u64,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("path", &self.path)
            .field(
                "format",
                &match self.reader {
                    Inner::Pcap(_) => "pcap",
                    Inner::Ng(_) => "pcapng",
                },
            )
            .field("packets", &self.packets)
            .finish()
    }
}

fn max_caplen_for(snaplen: u32) -> u32 {
    if snaplen == 0 {
        MAX_CAPLEN
    } else {
        MAX_CAPLEN.min(snaplen.saturating_mul(2))
    }
}

fn ts_per_sec(tsresol: u8) -> Option<u64> {
    let e = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(e)
    } else if e < 64 {
        Some(1u64 << e)
    } else {
        None
    }
    .filter(|&p| p > 0)
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) => format!("malformed block ({kind:?})"),
        PcapError::OwnedNomError(_, kind) => format!("malformed block ({kind:?})"),
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
            "inner lengths disagree with the record length".to_string()
        }
        PcapError::Eof => "unexpected end of data".to_string(),
        PcapError::BufferTooSmall => "record larger than the read buffer".to_string(),
        PcapError::ReadError => "read error".to_string(),
        PcapError::HeaderNotRecognized => "header not recognized".to_string(),
    }
}

#[inline]
fn rd_u32(d: &[u8], at: usize, be: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

impl FileSource {
    /// Opens a pcap or pcapng file, detected by its magic number.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let f = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        FileSource::from_reader(path, f)
    }

    /// Reads a capture from any byte stream; `name` is used in error messages.
    pub fn from_reader<R: Read + Send + 'static>(
        name: impl Into<PathBuf>,
        mut input: R,
    ) -> Result<FileSource, CaptureError> {
        let path = name.into();
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match input.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Read {
                        path,
                        offset: got as u64,
                        source,
                    });
                }
            }
        }
        if got < 4 {
            return Err(CaptureError::Format {
                path,
                reason: format!("file too short ({got} bytes)"),
            });
        }
        let io_err = Arc::new(Mutex::new(None));
        let src = FullRead {
            inner: Box::new(io::Cursor::new(magic).chain(input)),
            err: io_err.clone(),
        };
        let mut fmt = Format {
            linktype: LinkType::ETHERNET,
            nanos: false,
            big_endian: false,
            rec_hdr: 16,
            max_caplen: MAX_CAPLEN,
            ng_big_endian: false,
            ifaces: Vec::new(),
            unsupported_warned: 0,
            last_ts: Ts::ZERO,
        };
        let bad = |path: PathBuf, e: PcapError<&[u8]>| match e {
            PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                CaptureError::Truncated {
                    path,
                    offset: 0,
                    packets: 0,
                    reason: "incomplete file header".into(),
                }
            }
            e => CaptureError::Format {
                path,
                reason: describe(&e),
            },
        };
        let reader = match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34 | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                let mut r = match LegacyPcapReader::new(BUF_CAP, src) {
                    Ok(r) => r,
                    Err(e) => return Err(bad(path, e)),
                };
                let hdr = match r.next() {
                    Ok((_, PcapBlockOwned::LegacyHeader(h))) => h,
                    _ => {
                        return Err(CaptureError::Format {
                            path,
                            reason: "bad pcap file header".into(),
                        });
                    }
                };
                fmt.linktype = LinkType((hdr.network.0 as u32) & 0xffff);
                if !fmt.linktype.is_decoded() {
                    return Err(CaptureError::LinkType {
                        path,
                        linktype: fmt.linktype.0,
                    });
                }
                fmt.nanos = hdr.is_nanosecond_precision();
                fmt.big_endian = hdr.is_bigendian();
                fmt.rec_hdr = if hdr.is_modified_format() { 24 } else { 16 };
                fmt.max_caplen = max_caplen_for(hdr.snaplen);
                r.consume(hdr.size());
                Inner::Pcap(r)
            }
            SHB_MAGIC => match PcapNGReader::new(BUF_CAP, src) {
                Ok(r) => Inner::Ng(r),
                Err(e) => return Err(bad(path, e)),
            },
            m => {
                return Err(CaptureError::Format {
                    path,
                    reason: format!("unknown magic number 0x{m:08x}"),
                });
            }
        };
        Ok(FileSource {
            path,
            reader,
            fmt,
            io_err,
            pending: 0,
            packets: 0,
        })
    }

    /// Packets returned so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// Link type of a classic pcap file, or of the first interface of a pcapng file
    /// once it has been read.
    pub fn linktype(&self) -> LinkType {
        match self.reader {
            Inner::Pcap(_) => self.fmt.linktype,
            Inner::Ng(_) => self
                .fmt
                .ifaces
                .first()
                .map_or(LinkType::ETHERNET, |i| i.linktype),
        }
    }

    /// The file name given at open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn offset(&self) -> u64 {
        with_reader!(&self.reader, r => r.consumed() as u64)
    }

    fn corrupt(&self, reason: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.offset(),
            packets: self.packets,
            reason,
        }
    }

    /// Length of the record at the start of `d`, once its header is buffered.
    fn record_len(&self, d: &[u8]) -> Result<Option<usize>, String> {
        match self.reader {
            Inner::Pcap(_) => {
                let Some(caplen) = rd_u32(d, 8, self.fmt.big_endian) else {
                    return Ok(None);
                };
                if d.len() < self.fmt.rec_hdr {
                    return Ok(None);
                }
                if caplen > self.fmt.max_caplen {
                    return Err(format!(
                        "record length {caplen} exceeds the limit of {} bytes",
                        self.fmt.max_caplen
                    ));
                }
                Ok(Some(self.fmt.rec_hdr + caplen as usize))
            }
            Inner::Ng(_) => {
                if d.len() < 12 {
                    return Ok(None);
                }
                let btype = rd_u32(d, 0, false).unwrap_or(0);
                let be = if btype == SHB_MAGIC {
                    match rd_u32(d, 8, false) {
                        Some(BOM_LE) => false,
                        Some(BOM_BE) => true,
                        _ => return Err("section header with a bad byte-order magic".into()),
                    }
                } else {
                    self.fmt.ng_big_endian
                };
                let blen = rd_u32(d, 4, be).unwrap_or(0) as usize;
                if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_BLOCK {
                    return Err(format!("bad block length {blen}"));
                }
                Ok(Some(blen))
            }
        }
    }

    /// Makes sure one complete record is buffered. `Ok(false)` at a clean end of file.
    fn fill_record(&mut self) -> Result<bool, CaptureError> {
        loop {
            let (avail, need) = {
                let d = with_reader!(&self.reader, r => r.data());
                let need = self.record_len(d).map_err(|m| self.corrupt(m))?;
                (d.len(), need)
            };
            if let Some(n) = need
                && avail >= n
            {
                return Ok(true);
            }
            if with_reader!(&self.reader, r => r.reader_exhausted()) {
                if avail == 0 {
                    return Ok(false);
                }
                let reason = match need {
                    Some(n) => format!("record of {n} bytes, only {avail} left"),
                    None => format!("incomplete record header ({avail} bytes left)"),
                };
                return Err(CaptureError::Truncated {
                    path: self.path.clone(),
                    offset: self.offset(),
                    packets: self.packets,
                    reason,
                });
            }
            let res = with_reader!(&mut self.reader, r => r.refill().is_ok());
            if !res {
                let offset = self.offset();
                let source = self
                    .io_err
                    .lock()
                    .ok()
                    .and_then(|mut e| e.take())
                    .unwrap_or_else(|| io::Error::other("read failed"));
                return Err(CaptureError::Read {
                    path: self.path.clone(),
                    offset,
                    source,
                });
            }
        }
    }

    /// Next frame; `Ok(None)` at a clean end of file. A truncated or corrupt file
    /// yields `Err` after every complete packet before the damage has been returned.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        // Consumed records are not shifted out one by one: the buffer is compacted
        // only when it is refilled, which moves just the partial record at its end.
        if self.pending != 0 {
            with_reader!(&mut self.reader, r => r.consume_noshift(self.pending));
            self.pending = 0;
        }
        loop {
            if !self.fill_record()? {
                return Ok(None);
            }
            let step = match &mut self.reader {
                Inner::Pcap(r) => step_pcap(r, &self.fmt),
                Inner::Ng(r) => step_ng(r, &mut self.fmt),
            };
            match step {
                Step::Skip(n) => with_reader!(&mut self.reader, r => r.consume_noshift(n)),
                Step::Corrupt(reason) => return Err(self.corrupt(reason)),
                Step::Packet {
                    consume,
                    start,
                    len,
                    ts,
                    linktype,
                    orig_len,
                } => {
                    let data = with_reader!(&self.reader, r => r.data());
                    let Some(data) = data.get(start..start + len) else {
                        return Err(self.corrupt("packet data outside its record".into()));
                    };
                    self.pending = consume;
                    self.packets += 1;
                    self.fmt.last_ts = ts;
                    return Ok(Some(Packet {
                        ts,
                        linktype,
                        data,
                        orig_len,
                    }));
                }
            }
        }
    }
}

fn step_pcap(r: &mut LegacyPcapReader<FullRead>, fmt: &Format) -> Step {
    let base = r.data().as_ptr() as usize;
    match r.next() {
        Ok((n, PcapBlockOwned::Legacy(b))) => {
            let frac = b.ts_usec as u64;
            let frac_ns = if fmt.nanos { frac } else { frac * 1_000 };
            let ts = Ts::from_secs_nanos(b.ts_sec as u64, frac_ns);
            let len = b.data.len();
            Step::Packet {
                consume: n,
                start: (b.data.as_ptr() as usize).wrapping_sub(base),
                len,
                ts,
                linktype: fmt.linktype,
                orig_len: b.origlen.max(len as u32),
            }
        }
        Ok((n, _)) => Step::Skip(n),
        Err(e) => Step::Corrupt(describe(&e)),
    }
}

fn opt_bytes<'a>(v: &'a Cow<'a, [u8]>, len: u16) -> &'a [u8] {
    let v: &[u8] = v;
    v.get(..len as usize).unwrap_or(v)
}

fn step_ng(r: &mut PcapNGReader<FullRead>, fmt: &mut Format) -> Step {
    let base = r.data().as_ptr() as usize;
    let (n, block) = match r.next() {
        Ok((n, PcapBlockOwned::NG(b))) => (n, b),
        Ok((n, _)) => return Step::Skip(n),
        Err(e) => return Step::Corrupt(describe(&e)),
    };
    match block {
        Block::EnhancedPacket(epb) => {
            let Some(iface) = fmt.ifaces.get(epb.if_id as usize) else {
                return Step::Corrupt(format!(
                    "packet on undeclared interface {} ({} declared)",
                    epb.if_id,
                    fmt.ifaces.len()
                ));
            };
            if epb.caplen > iface.max_caplen {
                return Step::Corrupt(format!(
                    "captured length {} exceeds the limit of {} bytes",
                    epb.caplen, iface.max_caplen
                ));
            }
            let len = epb.caplen as usize;
            if len > epb.data.len() {
                return Step::Corrupt("captured length beyond the block".into());
            }
            Step::Packet {
                consume: n,
                start: (epb.data.as_ptr() as usize).wrapping_sub(base),
                len,
                ts: iface.ts(epb.ts_high, epb.ts_low),
                linktype: iface.linktype,
                orig_len: epb.origlen.max(epb.caplen),
            }
        }
        Block::SimplePacket(spb) => {
            let Some(iface) = fmt.ifaces.first() else {
                return Step::Corrupt("simple packet block before any interface".into());
            };
            let mut len = (spb.origlen as usize).min(spb.data.len());
            if iface.snaplen != 0 {
                len = len.min(iface.snaplen as usize);
            }
            if len > iface.max_caplen as usize {
                return Step::Corrupt(format!("simple packet of {len} bytes exceeds the limit"));
            }
            Step::Packet {
                consume: n,
                start: (spb.data.as_ptr() as usize).wrapping_sub(base),
                len,
                // SPBs carry no timestamp: reuse the last one seen.
                ts: fmt.last_ts,
                linktype: iface.linktype,
                orig_len: spb.origlen.max(len as u32),
            }
        }
        Block::SectionHeader(shb) => {
            fmt.ng_big_endian = shb.big_endian();
            fmt.ifaces.clear();
            Step::Skip(n)
        }
        Block::InterfaceDescription(idb) => {
            if fmt.ifaces.len() >= MAX_INTERFACES {
                return Step::Corrupt(format!("more than {MAX_INTERFACES} interfaces"));
            }
            let be = fmt.ng_big_endian;
            let mut tsresol = 6u8;
            let mut offset_s = 0i64;
            for opt in &idb.options {
                let v = opt_bytes(&opt.value, opt.len);
                match opt.code.0 {
                    9 if !v.is_empty() => tsresol = v[0],
                    14 if v.len() >= 8 => {
                        let b: [u8; 8] = v[..8].try_into().unwrap_or([0; 8]);
                        offset_s = if be {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        };
                    }
                    _ => {}
                }
            }
            let Some(per_sec) = ts_per_sec(tsresol) else {
                return Step::Corrupt(format!("unsupported if_tsresol 0x{tsresol:02x}"));
            };
            let snaplen = idb.snaplen;
            let linktype = LinkType(idb.linktype.0 as u32 & 0xffff);
            if !linktype.is_decoded() && fmt.unsupported_warned < 8 {
                fmt.unsupported_warned += 1;
                tracing::warn!(
                    "pcapng interface {}: link type {} is not supported; its packets are counted in non_ip_or_l4",
                    fmt.ifaces.len(),
                    linktype.0
                );
            }
            fmt.ifaces.push(Iface {
                linktype,
                snaplen,
                max_caplen: max_caplen_for(snaplen),
                per_sec,
                offset_ns: offset_s as i128 * 1_000_000_000,
            });
            Step::Skip(n)
        }
        _ => Step::Skip(n),
    }
}
