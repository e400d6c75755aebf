//! Capture files written byte by byte in the tests (pcap µs/ns, both byte orders;
//! pcapng with several interfaces and time resolutions, both byte orders), damaged
//! files, and the PcapWriter → FileSource round trip.

use std::io::Read;
use std::path::PathBuf;

use wirebeat::capture::dump::PcapWriter;
use wirebeat::capture::file::FileSource;
use wirebeat::capture::{CaptureError, LinkType, Packet};
use wirebeat::time::Ts;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wirebeat-decode-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Byte writer in a chosen byte order.
struct W {
    be: bool,
    v: Vec<u8>,
}
impl W {
    fn new(be: bool) -> W {
        W { be, v: Vec::new() }
    }
    fn u16(&mut self, x: u16) -> &mut Self {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn i64(&mut self, x: i64) -> &mut Self {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.v.extend_from_slice(b);
        self
    }
    fn pad4(&mut self) -> &mut Self {
        while !self.v.len().is_multiple_of(4) {
            self.v.push(0);
        }
        self
    }
}

fn frame(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 31 + k) as u8).collect()
}

/// Classic pcap: `(secs, frac, data, orig_len)` records.
fn pcap_bytes(be: bool, nanos: bool, linktype: u32, recs: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
    let mut w = W::new(be);
    w.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 })
        .u16(2)
        .u16(4)
        .u32(0)
        .u32(0)
        .u32(65535)
        .u32(linktype);
    for (s, f, d, o) in recs {
        w.u32(*s).u32(*f).u32(d.len() as u32).u32(*o).bytes(d);
    }
    w.v
}

type Rec = (Ts, LinkType, Vec<u8>, u32);

fn read_all(src: &mut FileSource) -> Result<Vec<Rec>, CaptureError> {
    let mut out = Vec::new();
    while let Some(p) = src.next_packet()? {
        out.push((p.ts, p.linktype, p.data.to_vec(), p.orig_len));
    }
    Ok(out)
}

#[test]
fn classic_pcap_all_variants() {
    for be in [false, true] {
        for nanos in [false, true] {
            let recs = vec![
                (1_700_000_000, 123_456, frame(0, 60), 60),
                (1_700_000_001, 999_999, frame(1, 100), 1500),
                (1_700_000_002, 0, frame(2, 0), 0),
            ];
            let path = tmp(&format!("classic-{be}-{nanos}.pcap"));
            std::fs::write(&path, pcap_bytes(be, nanos, 1, &recs)).unwrap();
            let mut src = FileSource::open(&path).unwrap();
            let got = read_all(&mut src).unwrap();
            assert_eq!(got.len(), 3);
            for (g, r) in got.iter().zip(&recs) {
                let frac = if nanos { r.1 as u64 } else { r.1 as u64 * 1000 };
                assert_eq!(g.0, Ts(r.0 as u64 * 1_000_000_000 + frac));
                assert_eq!(g.1, LinkType::ETHERNET);
                assert_eq!(g.2, r.2);
                assert_eq!(g.3, r.3);
            }
            assert_eq!(src.packets_read(), 3);
            assert!(src.next_packet().unwrap().is_none());
        }
    }
}

/// pcapng block: type, body, padded, with both lengths.
fn block(w: &mut W, btype: u32, body: &[u8]) {
    let len = 12 + body.len().div_ceil(4) * 4;
    w.u32(btype)
        .u32(len as u32)
        .bytes(body)
        .pad4()
        .u32(len as u32);
}

fn shb(be: bool) -> Vec<u8> {
    let mut b = W::new(be);
    b.u32(0x1A2B_3C4D).u16(1).u16(0).i64(-1);
    let mut w = W::new(be);
    block(&mut w, 0x0A0D_0D0A, &b.v);
    w.v
}

fn idb(
    be: bool,
    linktype: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: Option<i64>,
) -> Vec<u8> {
    let mut b = W::new(be);
    b.u16(linktype).u16(0).u32(snaplen);
    // if_name, to check other options are skipped
    b.u16(2).u16(3).bytes(b"eth").pad4();
    if let Some(r) = tsresol {
        b.u16(9).u16(1).bytes(&[r]).pad4();
    }
    if let Some(o) = tsoffset {
        b.u16(14).u16(8).i64(o);
    }
    b.u16(0).u16(0);
    let mut w = W::new(be);
    block(&mut w, 1, &b.v);
    w.v
}

fn epb(be: bool, iface: u32, ts: u64, data: &[u8], orig: u32, with_opt: bool) -> Vec<u8> {
    let mut b = W::new(be);
    b.u32(iface)
        .u32((ts >> 32) as u32)
        .u32(ts as u32)
        .u32(data.len() as u32)
        .u32(orig)
        .bytes(data)
        .pad4();
    if with_opt {
        // epb_flags: inbound
        b.u16(2).u16(4).u32(1).u16(0).u16(0);
    }
    let mut w = W::new(be);
    block(&mut w, 6, &b.v);
    w.v
}

fn spb(be: bool, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut b = W::new(be);
    b.u32(orig).bytes(data).pad4();
    let mut w = W::new(be);
    block(&mut w, 3, &b.v);
    w.v
}

#[test]
fn pcapng_interfaces_resolutions_and_byte_orders() {
    for be in [false, true] {
        let mut f = Vec::new();
        f.extend(shb(be));
        // iface 0: Ethernet, nanoseconds; iface 1: raw IP, microseconds + offset;
        // iface 2: SLL2, default resolution (µs); iface 3: 2^-10 s units.
        f.extend(idb(be, 1, 262144, Some(9), None));
        f.extend(idb(be, 101, 65535, Some(6), Some(100)));
        let mut nrb = W::new(be);
        block(&mut nrb, 4, &[0, 0, 0, 0]); // empty name resolution block: skipped
        f.extend(nrb.v);
        f.extend(idb(be, 276, 0, None, None));
        f.extend(idb(be, 1, 0, Some(0x8a), None));
        f.extend(epb(
            be,
            0,
            1_700_000_000_123_456_789,
            &frame(0, 61),
            61,
            false,
        ));
        f.extend(epb(be, 1, 1_700_000_000_654_321, &frame(1, 40), 1400, true));
        f.extend(epb(be, 2, 1_600_000_000_000_001, &frame(2, 33), 33, false));
        f.extend(epb(be, 3, 3 * 1024 + 512, &frame(3, 8), 8, false));
        f.extend(spb(be, 50, &frame(4, 50)));
        // A second section, other byte order, resets the interfaces.
        f.extend(shb(!be));
        f.extend(idb(!be, 113, 0, Some(9), Some(-1)));
        f.extend(epb(!be, 0, 5_000_000_007, &frame(5, 20), 20, false));
        let path = tmp(&format!("ng-{be}.pcapng"));
        std::fs::write(&path, &f).unwrap();
        let mut src = FileSource::open(&path).unwrap();
        let got = read_all(&mut src).unwrap();
        let want: Vec<Rec> = vec![
            (
                Ts(1_700_000_000_123_456_789),
                LinkType::ETHERNET,
                frame(0, 61),
                61,
            ),
            (
                Ts(1_700_000_100_654_321_000),
                LinkType::RAW,
                frame(1, 40),
                1400,
            ),
            (
                Ts(1_600_000_000_000_001_000),
                LinkType::LINUX_SLL2,
                frame(2, 33),
                33,
            ),
            (Ts(3_500_000_000), LinkType::ETHERNET, frame(3, 8), 8),
            // SPB: interface 0, previous timestamp.
            (Ts(3_500_000_000), LinkType::ETHERNET, frame(4, 50), 50),
            (Ts(4_000_000_007), LinkType::LINUX_SLL, frame(5, 20), 20),
        ];
        assert_eq!(got, want, "big endian: {be}");
        assert_eq!(src.packets_read(), 6);
    }
}

#[test]
fn pcapng_packet_on_undeclared_interface_is_corrupt() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 1, &frame(0, 10), 10, false));
    f.extend(epb(false, 5, 2, &frame(1, 10), 10, false));
    let path = tmp("ng-undeclared.pcapng");
    std::fs::write(&path, &f).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert!(src.next_packet().unwrap().is_some());
    let e = src.next_packet().expect_err("error");
    assert!(matches!(e, CaptureError::Corrupt { packets: 1, .. }), "{e}");
    assert!(e.to_string().contains("undeclared interface 5"), "{e}");
}

fn three_packets() -> Vec<(u32, u32, Vec<u8>, u32)> {
    (0..3)
        .map(|i| (100 + i as u32, 7, frame(i, 200), 200))
        .collect()
}

#[test]
fn truncated_files_yield_packets_then_error() {
    let full = pcap_bytes(false, false, 1, &three_packets());
    // Cut inside the third record's data, then inside its header.
    for cut in [full.len() - 50, full.len() - 200 - 8] {
        let path = tmp(&format!("trunc-{cut}.pcap"));
        std::fs::write(&path, &full[..cut]).unwrap();
        let mut src = FileSource::open(&path).unwrap();
        assert_eq!(src.next_packet().unwrap().unwrap().data, &frame(0, 200)[..]);
        assert_eq!(src.next_packet().unwrap().unwrap().data, &frame(1, 200)[..]);
        let e = src.next_packet().expect_err("truncation error");
        match &e {
            CaptureError::Truncated {
                offset, packets, ..
            } => {
                assert_eq!(*packets, 2);
                assert_eq!(*offset, 24 + 2 * 216);
            }
            other => panic!("unexpected {other}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains("trunc-") && msg.contains("offset 456"),
            "{msg}"
        );
    }
    // pcapng cut in the middle of a block.
    let mut f = shb(true);
    f.extend(idb(true, 1, 0, None, None));
    f.extend(epb(true, 0, 1, &frame(0, 10), 10, false));
    f.extend(epb(true, 0, 2, &frame(1, 100), 100, false));
    let path = tmp("trunc.pcapng");
    std::fs::write(&path, &f[..f.len() - 10]).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert!(src.next_packet().unwrap().is_some());
    assert!(matches!(
        src.next_packet(),
        Err(CaptureError::Truncated { packets: 1, .. })
    ));
    // Only the file header.
    let path = tmp("header-only.pcap");
    std::fs::write(&path, &full[..24]).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert!(src.next_packet().unwrap().is_none());
}

#[test]
fn corrupt_record_length_yields_packets_then_error() {
    let mut full = pcap_bytes(true, true, 1, &three_packets());
    // caplen of the third record
    let at = 24 + 2 * 216 + 8;
    full[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let path = tmp("corrupt.pcap");
    std::fs::write(&path, &full).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert!(src.next_packet().unwrap().is_some());
    assert!(src.next_packet().unwrap().is_some());
    let e = src.next_packet().expect_err("corrupt");
    assert!(
        matches!(
            e,
            CaptureError::Corrupt {
                packets: 2,
                offset: 456,
                ..
            }
        ),
        "{e}"
    );
    // Larger than twice the snaplen (65535) but below the absolute limit.
    full[at..at + 4].copy_from_slice(&140_000u32.to_be_bytes());
    std::fs::write(&path, &full).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert_eq!(
        read_all(&mut src)
            .err()
            .map(|e| e.to_string().contains("limit")),
        Some(true)
    );

    // pcapng: bad block length.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 1, &frame(0, 10), 10, false));
    let mut bad = epb(false, 0, 2, &frame(1, 10), 10, false);
    bad[4..8].copy_from_slice(&13u32.to_le_bytes());
    f.extend(bad);
    let path = tmp("corrupt.pcapng");
    std::fs::write(&path, &f).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert!(src.next_packet().unwrap().is_some());
    assert!(matches!(
        src.next_packet(),
        Err(CaptureError::Corrupt { packets: 1, .. })
    ));
    // pcapng: EPB whose captured length runs past its block.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let mut bad = epb(false, 0, 2, &frame(1, 12), 12, false);
    bad[20..24].copy_from_slice(&200u32.to_le_bytes());
    f.extend(bad);
    f.extend(epb(false, 0, 3, &frame(2, 12), 12, false));
    std::fs::write(&path, &f).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert!(matches!(
        src.next_packet(),
        Err(CaptureError::Corrupt { packets: 0, .. })
    ));
}

#[test]
fn not_a_capture_file() {
    for (name, bytes) in [("empty", &b""[..]), ("text", &b"hello world, not pcap"[..])] {
        let path = tmp(name);
        std::fs::write(&path, bytes).unwrap();
        let e = FileSource::open(&path).expect_err("error");
        assert!(matches!(e, CaptureError::Format { .. }), "{e}");
    }
    let e = FileSource::open(&tmp("does-not-exist.pcap")).err().unwrap();
    assert!(matches!(e, CaptureError::Open { .. }));
    assert!(e.to_string().contains("does-not-exist.pcap"));
}

#[test]
fn writer_round_trip_streams_large_files() {
    let path = tmp("roundtrip.pcap");
    let mut w = PcapWriter::create(&path, LinkType::LINUX_SLL2, 2000).unwrap();
    let n = 4000usize; // ~6 MB: many buffer refills
    for i in 0..n {
        let data = frame(i, 1000 + i % 1000);
        w.write(&Packet {
            ts: Ts(1_700_000_000_000_000_000 + i as u64 * 1_234_567),
            linktype: LinkType::LINUX_SLL2,
            data: &data,
            orig_len: data.len() as u32 + (i % 2) as u32,
        })
        .unwrap();
    }
    // Cut by the writer's snaplen.
    let big = frame(9, 3000);
    w.write(&Packet {
        ts: Ts(7),
        linktype: LinkType::LINUX_SLL2,
        data: &big,
        orig_len: 3000,
    })
    .unwrap();
    w.flush().unwrap();
    drop(w);
    let mut src = FileSource::open(&path).unwrap();
    for i in 0..n {
        let p = src.next_packet().unwrap().unwrap();
        assert_eq!(p.ts, Ts(1_700_000_000_000_000_000 + i as u64 * 1_234_567));
        assert_eq!(p.linktype, LinkType::LINUX_SLL2);
        assert_eq!(p.data, &frame(i, 1000 + i % 1000)[..]);
        assert_eq!(p.orig_len, p.data.len() as u32 + (i % 2) as u32);
    }
    let p = src.next_packet().unwrap().unwrap();
    assert_eq!((p.ts, p.data, p.orig_len), (Ts(7), &big[..2000], 3000));
    assert!(src.next_packet().unwrap().is_none());
    assert_eq!(src.packets_read(), n as u64 + 1);
    assert_eq!(src.linktype(), LinkType::LINUX_SLL2);
}

/// A reader that hands out a few bytes per call.
struct Dribble(Vec<u8>, usize);
impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3).min(self.0.len() - self.1);
        buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
        self.1 += n;
        Ok(n)
    }
}

#[test]
fn short_reads_from_any_reader() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, Some(9), None));
    for i in 0..50 {
        f.extend(epb(false, 0, i, &frame(i as usize, 77), 77, i % 2 == 0));
    }
    let mut src = FileSource::from_reader("dribble.pcapng", Dribble(f, 0)).unwrap();
    let got = read_all(&mut src).unwrap();
    assert_eq!(got.len(), 50);
    assert_eq!(got[49].0, Ts(49));
    assert_eq!(got[49].2, frame(49, 77));
}
