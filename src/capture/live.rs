//! Opening live sources from the configuration: which backend, how many readers per
//! device, ring memory per reader, and the capture filter.

use super::af_packet::{AfPacketOptions, AfPacketSource};
use super::pcap_live::{self, PcapOptions, PcapSource};
use super::source::PacketSource;
use super::{LinkType, LiveError};
use crate::config::{CaptureType, Config};

/// Readers per AF_PACKET device: `pipeline.readers`, or a quarter of the cores
/// (at least one).
pub fn readers_per_device(cfg: &Config, cores: usize) -> usize {
    if cfg.pipeline.readers > 0 {
        cfg.pipeline.readers.min(64)
    } else {
        (cores / 4).max(1)
    }
}

/// The rejection of `pf_ring`, naming the alternatives.
pub fn pf_ring_error() -> LiveError {
    LiveError::Unsupported(
        "interfaces.type: pf_ring needs the PF_RING kernel module, which wirebeat does not support; \
         use af_packet (recommended: TPACKET_V3 rings with fanout) or pcap"
            .into(),
    )
}

/// The ports the capture keeps, by transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    /// ICMP and ICMPv6 messages are followed.
    pub icmp: bool,
}

/// The filter for AF_PACKET sockets as classic BPF: a custom `bpf_filter` compiled
/// by libpcap, else the filter generated from the ports of the `protocols` wirebeat
/// implements (compiled by libpcap when present, by our own builder from `ports`
/// otherwise). `None` captures everything.
pub fn af_packet_filter(
    cfg: &Config,
    linktype: LinkType,
    snaplen: u32,
    ports: &Ports,
    protocols: &[&str],
) -> Result<Option<Vec<libc::sock_filter>>, LiveError> {
    let custom = cfg
        .interfaces
        .first()
        .and_then(|i| i.bpf_filter.as_deref())
        .is_some_and(|f| !f.trim().is_empty());
    let expr = tcpdump_filter(cfg, protocols);
    if expr.trim().is_empty() {
        return Ok(None);
    }
    if custom || pcap_live::available() {
        return pcap_live::compile_filter(&expr, linktype, snaplen).map(Some);
    }
    ports_filter(linktype, &ports.tcp, &ports.udp, ports.icmp).map(Some)
}

/// The tcpdump-syntax filter for this configuration (custom, or generated for the
/// implemented `protocols`).
pub fn tcpdump_filter(cfg: &Config, protocols: &[&str]) -> String {
    cfg.bpf_filter(protocols)
}

/// `tcp port P1 or ... or udp port U1 ...` for IPv4 and IPv6 over Ethernet, built
/// without libpcap. For other link types everything is captured (the readers filter
/// ports anyway).
pub fn ports_filter(
    linktype: LinkType,
    tcp: &[u16],
    udp: &[u16],
    icmp: bool,
) -> Result<Vec<libc::sock_filter>, LiveError> {
    /// One alternative of the filter, for each IP version.
    #[derive(Clone, Copy)]
    enum Term {
        Tcp(u16),
        Udp(u16),
        Icmp,
    }
    let all: Vec<Term> = tcp
        .iter()
        .map(|&p| Term::Tcp(p))
        .chain(udp.iter().map(|&p| Term::Udp(p)))
        .chain(icmp.then_some(Term::Icmp))
        .collect();
    let Some(&first) = all.first() else {
        return Ok(accept_all());
    };
    if linktype != LinkType::ETHERNET {
        return Ok(accept_all());
    }
    let term = |x: netring::BpfFilterBuilder, v6: bool, t: Term| {
        let x = if v6 { x.ipv6() } else { x.ipv4() };
        match t {
            Term::Tcp(p) => x.tcp().port(p),
            Term::Udp(p) => x.udp().port(p),
            Term::Icmp => x.ip_proto(if v6 { 58 } else { 1 }),
        }
    };
    let mut b = term(netring::BpfFilter::builder(), false, first);
    for (i, &t) in all.iter().enumerate() {
        if i > 0 {
            b = b.or(move |x| term(x, false, t));
        }
        b = b.or(move |x| term(x, true, t));
    }
    let f = b
        .build()
        .map_err(|e| LiveError::Filter(format!("generated port filter: {e}")))?;
    Ok(f.instructions()
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// TPACKET_V3 rings cut frames at the length a socket filter returns, not at the
/// ring's frame size: every accepting return is capped at `snaplen` (and a filter
/// is added when there is none and `snaplen` is below the largest frame).
pub fn with_snaplen(
    filter: Option<Vec<libc::sock_filter>>,
    snaplen: u32,
) -> Option<Vec<libc::sock_filter>> {
    const BPF_RET_K: u16 = 0x06;
    match filter {
        None if snaplen < 262_144 => Some(vec![libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: snaplen,
        }]),
        None => None,
        Some(mut prog) => {
            for insn in &mut prog {
                if insn.code == BPF_RET_K && insn.k != 0 {
                    insn.k = insn.k.min(snaplen);
                }
            }
            Some(prog)
        }
    }
}

fn accept_all() -> Vec<libc::sock_filter> {
    vec![libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0x0004_0000,
    }]
}

/// Every device of the configuration, checked before anything is opened.
pub fn check_devices(cfg: &Config) -> Result<(), LiveError> {
    for ifc in &cfg.interfaces {
        if ifc.kind == CaptureType::PfRing {
            return Err(pf_ring_error());
        }
        if ifc.devices().is_empty() {
            return Err(LiveError::NoDevice(ifc.device.clone()));
        }
        for dev in ifc.devices() {
            if dev != "any" && !std::path::Path::new("/sys/class/net").join(dev).exists() {
                return Err(LiveError::NoDevice(dev.to_string()));
            }
        }
    }
    Ok(())
}

/// Opens every source: `readers` AF_PACKET rings per af_packet device (one fanout
/// group per device, `buffer_size_mb` split between them), one libpcap handle per
/// pcap device. `ports` and `protocols` (the names of the protocols wirebeat
/// implements) make the capture filter.
pub fn open_sources(
    cfg: &Config,
    readers: usize,
    ports: &Ports,
    protocols: &[&str],
) -> Result<Vec<Box<dyn PacketSource>>, LiveError> {
    check_devices(cfg)?;
    let mut out: Vec<Box<dyn PacketSource>> = Vec::new();
    let devices = cfg
        .interfaces
        .iter()
        .flat_map(|ifc| ifc.devices().into_iter().map(move |d| (ifc, d.to_string())));
    for (ifc, device) in devices {
        match ifc.kind {
            CaptureType::PfRing => return Err(pf_ring_error()),
            CaptureType::Pcap => {
                let src = PcapSource::open(&PcapOptions {
                    device: device.clone(),
                    snaplen: ifc.snaplen,
                    buffer_bytes: (ifc.buffer_size_mb as usize) << 20,
                    promisc: ifc.auto_promisc_mode,
                    ignore_outgoing: cfg.shipper.ignore_outgoing,
                    filter: tcpdump_filter(cfg, protocols),
                })?;
                tracing::info!(target: "capture", "{device}: libpcap capture started");
                out.push(Box::new(src));
            }
            CaptureType::AfPacket => {
                let linktype = if device == "any" {
                    LinkType::ETHERNET
                } else {
                    super::af_packet::device_linktype(&device)
                };
                let filter = with_snaplen(
                    af_packet_filter(cfg, linktype, ifc.snaplen, ports, protocols)?,
                    ifc.snaplen,
                );
                let total = (ifc.buffer_size_mb as usize) << 20;
                let per = (total / readers.max(1)).max(1 << 20);
                // The first ring gets a group id from the kernel, unique on this
                // host, and the others join it.
                let mut group = None;
                for _ in 0..readers.max(1) {
                    let src = AfPacketSource::open(&AfPacketOptions {
                        device: device.clone(),
                        snaplen: ifc.snaplen,
                        ring_bytes: per,
                        promisc: ifc.auto_promisc_mode,
                        ignore_outgoing: cfg.shipper.ignore_outgoing,
                        fanout_group: group,
                        filter: filter.clone(),
                    })?;
                    group = Some(src.fanout_group());
                    out.push(Box::new(src));
                }
                let group = group.unwrap_or_default();
                tracing::info!(
                    target: "capture",
                    "{}: af_packet capture started: {readers} ring(s) of {} KiB in fanout group {group}, filter: {}",
                    device,
                    per / 1024,
                    match &filter {
                        Some(f) => format!("{} BPF instructions", f.len()),
                        None => "none".into(),
                    }
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v6: bool, sport: u16, dport: u16) -> Vec<u8> {
        proto_frame(v6, 6, sport, dport)
    }

    /// Ethernet + IPv4/IPv6 + a TCP (`proto` 6) or UDP (17) header.
    fn proto_frame(v6: bool, proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if v6 {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&20u16.to_be_bytes());
            ip[6] = proto;
            ip[7] = 64;
            f.extend_from_slice(&ip);
        } else {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&40u16.to_be_bytes());
            ip[8] = 64;
            ip[9] = proto;
            f.extend_from_slice(&ip);
        }
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[12] = 0x50;
        f.extend_from_slice(&tcp);
        f
    }

    fn compiled(prog: &[libc::sock_filter]) -> netring::BpfFilter {
        netring::BpfFilter::new(
            prog.iter()
                .map(|i| netring::BpfInsn {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn own_port_filter_keeps_udp_ports_apart_from_tcp_ones() {
        let f = compiled(&ports_filter(LinkType::ETHERNET, &[80], &[53], false).unwrap());
        for v6 in [false, true] {
            assert!(f.matches(&proto_frame(v6, 17, 40000, 53)), "v6={v6}");
            assert!(f.matches(&proto_frame(v6, 17, 53, 40000)), "v6={v6}");
            assert!(!f.matches(&proto_frame(v6, 6, 40000, 53)), "v6={v6}");
            assert!(!f.matches(&proto_frame(v6, 17, 40000, 80)), "v6={v6}");
            assert!(f.matches(&proto_frame(v6, 6, 40000, 80)), "v6={v6}");
        }
        // UDP ports alone.
        let f = compiled(&ports_filter(LinkType::ETHERNET, &[], &[53], false).unwrap());
        assert!(f.matches(&proto_frame(false, 17, 40000, 53)));
        assert!(!f.matches(&proto_frame(false, 6, 40000, 53)));
    }

    #[test]
    fn own_port_filter_takes_icmp_of_each_family() {
        let f = compiled(&ports_filter(LinkType::ETHERNET, &[80], &[], true).unwrap());
        assert!(f.matches(&proto_frame(false, 1, 0, 0)));
        assert!(f.matches(&proto_frame(true, 58, 0, 0)));
        assert!(!f.matches(&proto_frame(false, 58, 0, 0)), "ICMPv6 in IPv4");
        assert!(!f.matches(&proto_frame(false, 17, 40000, 53)));
        assert!(f.matches(&proto_frame(true, 6, 40000, 80)));
        // ICMP alone.
        let f = compiled(&ports_filter(LinkType::ETHERNET, &[], &[], true).unwrap());
        assert!(f.matches(&proto_frame(false, 1, 0, 0)));
        assert!(!f.matches(&proto_frame(false, 6, 40000, 80)));
    }

    #[test]
    fn own_port_filter_matches_both_families_and_directions() {
        let f = compiled(&ports_filter(LinkType::ETHERNET, &[80, 6379], &[], false).unwrap());
        for v6 in [false, true] {
            assert!(f.matches(&frame(v6, 40000, 80)), "v6={v6}");
            assert!(f.matches(&frame(v6, 80, 40000)), "v6={v6}");
            assert!(f.matches(&frame(v6, 6379, 40000)), "v6={v6}");
            assert!(!f.matches(&frame(v6, 40000, 443)), "v6={v6}");
        }
    }

    #[test]
    fn snaplen_caps_every_accepting_return() {
        let prog = with_snaplen(
            Some(ports_filter(LinkType::ETHERNET, &[80], &[], false).unwrap()),
            96,
        )
        .unwrap();
        let rets: Vec<u32> = prog
            .iter()
            .filter(|i| i.code == 0x06)
            .map(|i| i.k)
            .collect();
        assert!(rets.contains(&96) && rets.contains(&0), "{rets:?}");
        assert!(rets.iter().all(|&k| k == 0 || k == 96), "{rets:?}");
        let only = with_snaplen(None, 200).unwrap();
        assert_eq!((only.len(), only[0].k), (1, 200));
        assert!(with_snaplen(None, 262_144).is_none());
    }

    #[test]
    fn readers_default_from_cores() {
        let mut cfg = Config::default();
        assert_eq!(readers_per_device(&cfg, 2), 1);
        assert_eq!(readers_per_device(&cfg, 16), 4);
        cfg.pipeline.readers = 3;
        assert_eq!(readers_per_device(&cfg, 2), 3);
    }
}
