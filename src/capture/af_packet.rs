//! AF_PACKET capture: one TPACKET_V3 block ring per reader, every ring of a device in
//! one PACKET_FANOUT hash group so that both directions of a flow reach the same
//! reader. The ring itself comes from `netring`; binding to `any`, joining the fanout
//! group and attaching the filter are done here so that one code path serves named
//! devices and `any` alike.

use std::os::fd::AsRawFd;
use std::time::Duration;

use netring::{Capture, PacketDirection};

use super::source::{Direction, Frame, PacketSource, SourceStats};
use super::{LinkType, LiveError};
use crate::time::Ts;

/// How to open one ring.
#[derive(Clone, Debug)]
pub struct AfPacketOptions {
    pub device: String,
    pub snaplen: u32,
    /// Ring memory of this socket, in bytes.
    pub ring_bytes: usize,
    pub promisc: bool,
    /// Drop frames sent by this host (`shipper.ignore_outgoing`).
    pub ignore_outgoing: bool,
    /// PACKET_FANOUT group id shared by every reader of the device; `None` asks the
    /// kernel for an id no other socket uses (read it back with
    /// [`AfPacketSource::fanout_group`] for the next readers).
    pub fanout_group: Option<u16>,
    /// Compiled classic BPF program; `None` captures everything.
    pub filter: Option<Vec<libc::sock_filter>>,
}

/// Block timeout: a partly filled block is handed over after this long, which
/// bounds the capture latency on quiet links.
const BLOCK_TIMEOUT_MS: u32 = 10;

/// PACKET_FANOUT mode and flags (linux/if_packet.h).
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;
const PACKET_FANOUT_FLAG_IGNORE_OUTGOING: u32 = 0x4000;

pub struct AfPacketSource {
    cap: Capture,
    device: String,
    linktype: LinkType,
    /// Drop `Outgoing` frames in userspace (the kernel flag is missing, or the
    /// device shows every loopback frame twice).
    drop_outgoing: bool,
    /// On `any`, only the loopback copies (zero source MAC) are duplicates.
    dup_loopback_only: bool,
    skipped: u64,
    group: u16,
    /// The device's interface index when the ring was opened (`None` for `any`),
    /// to tell a device that went away from one that is only down.
    ifindex: Option<u32>,
}

/// The interface index of a named device, from sysfs.
fn device_ifindex(device: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{device}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Reads and clears the socket's pending error (SO_ERROR).
fn take_socket_error(fd: libc::c_int) -> Option<std::io::Error> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes and `len` holds the size of
    // `err`; SO_ERROR reads back as one int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Some(std::io::Error::last_os_error());
    }
    (err != 0).then(|| std::io::Error::from_raw_os_error(err))
}

/// Ring geometry for `bytes` of ring memory and frames of up to `snaplen` bytes:
/// (block size, block count). Blocks are a power of two between 128 KiB (or the
/// frame size, if larger) and 4 MiB, and there are at least 4 of them.
pub fn ring_geometry(bytes: usize, snaplen: u32) -> (usize, usize) {
    let frame = (snaplen as usize + 128).next_power_of_two().max(4096);
    let mut block = (bytes / 8).max(1);
    block = if block.is_power_of_two() {
        block
    } else {
        block.next_power_of_two() / 2
    };
    // Frames larger than 4 MiB (a snaplen beyond any configurable one) get
    // blocks of one frame rather than a panic in `clamp`.
    let lo = frame.max(128 * 1024);
    block = block.clamp(lo, lo.max(4 << 20));
    let count = (bytes / block).max(4);
    (block, count)
}

/// The link type of frames read from a named device (AF_PACKET raw sockets deliver
/// the device's own link-layer header).
pub fn device_linktype(device: &str) -> LinkType {
    if device == "any" {
        return LinkType::ETHERNET;
    }
    let t = std::fs::read_to_string(format!("/sys/class/net/{device}/type"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match t {
        // ARPHRD_NONE (tun, wireguard), ARPHRD_RAWIP, IP-in-IP/SIT tunnels: no L2 header.
        Some(65534) | Some(519) | Some(768) | Some(776) => LinkType::RAW,
        // Ethernet and loopback (a zeroed Ethernet header) and anything else.
        _ => LinkType::ETHERNET,
    }
}

fn io_err(e: &netring::Error) -> Option<&std::io::Error> {
    match e {
        netring::Error::Socket(e)
        | netring::Error::Mmap(e)
        | netring::Error::Bind(e)
        | netring::Error::Io(e) => Some(e),
        netring::Error::SockOpt { source, .. } => Some(source),
        _ => None,
    }
}

fn is_perm(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

fn map_err(device: &str, e: netring::Error, promisc: bool) -> LiveError {
    match &e {
        netring::Error::InterfaceNotFound(_) => return LiveError::NoDevice(device.to_string()),
        netring::Error::PermissionDenied => {
            return LiveError::Permission {
                device: device.to_string(),
                needs: "CAP_NET_RAW".into(),
            };
        }
        netring::Error::SockOpt { option, source } if is_perm(source) => {
            let needs = if promisc && option.contains("MEMBERSHIP") {
                "CAP_NET_ADMIN (promiscuous mode, auto_promisc_mode: true)"
            } else {
                "CAP_NET_RAW"
            };
            return LiveError::Permission {
                device: device.to_string(),
                needs: needs.into(),
            };
        }
        _ => {}
    }
    if let Some(io) = io_err(&e)
        && io.raw_os_error() == Some(libc::ENOMEM)
    {
        return LiveError::RingAlloc {
            device: device.to_string(),
            detail: e.to_string(),
        };
    }
    let detail = match io_err(&e) {
        Some(io) => format!("{e}: {io}"),
        None => e.to_string(),
    };
    LiveError::Open {
        device: device.to_string(),
        detail,
    }
}

fn setsockopt_raw<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> std::io::Result<()> {
    // SAFETY: `val` points to a live, initialised T for the duration of the call and
    // the length passed is exactly its size; the kernel only reads from it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Rebinds the socket to every device (ifindex 0).
fn bind_any(fd: libc::c_int) -> std::io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = 0;
    // SAFETY: `sll` is a valid sockaddr_ll on the stack and the length matches it.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn attach_filter(fd: libc::c_int, prog: &[libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // The kernel copies the program during the call; `prog` outlives it.
    setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Joins the hash fanout group `group`, or a new group with a kernel-chosen unique id
/// when `group` is `None`; returns the group id.
fn join_fanout(fd: libc::c_int, group: Option<u16>, flags: u32) -> std::io::Result<u16> {
    let (id, flags) = match group {
        Some(g) => (g as u32, flags),
        None => (0, flags | PACKET_FANOUT_FLAG_UNIQUEID),
    };
    let val: libc::c_int = (id | ((PACKET_FANOUT_HASH | flags) << 16)) as libc::c_int;
    setsockopt_raw(fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &val)?;
    let mut out: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `out` and `len` are valid for writes and `len` holds the size of `out`;
    // PACKET_FANOUT reads back as one int (group id in the low 16 bits).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&mut out as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((out as u32 & 0xffff) as u16)
}

impl AfPacketSource {
    /// Opens one ring. On ENOMEM the ring is retried at half the size, down to
    /// 1 MiB, and the reduction is logged.
    pub fn open(opts: &AfPacketOptions) -> Result<AfPacketSource, LiveError> {
        if opts.device != "any"
            && !std::path::Path::new("/sys/class/net")
                .join(&opts.device)
                .exists()
        {
            return Err(LiveError::NoDevice(opts.device.clone()));
        }
        if let Some(f) = &opts.filter
            && (f.is_empty() || f.len() > 4096)
        {
            return Err(LiveError::Filter(format!(
                "compiled BPF program has {} instructions (1..=4096 allowed)",
                f.len()
            )));
        }
        let mut bytes = opts.ring_bytes.max(1 << 20);
        loop {
            match Self::open_sized(opts, bytes) {
                Err(LiveError::RingAlloc { device, detail }) => {
                    if bytes <= 1 << 20 {
                        return Err(LiveError::RingAlloc { device, detail });
                    }
                    let smaller = (bytes / 2).max(1 << 20);
                    tracing::warn!(
                        target: "capture",
                        "{device}: cannot allocate a {} KiB ring ({detail}); retrying with {} KiB \
                         (lower interfaces.buffer_size_mb or raise the memory limits)",
                        bytes / 1024,
                        smaller / 1024
                    );
                    bytes = smaller;
                }
                other => return other,
            }
        }
    }

    fn open_sized(opts: &AfPacketOptions, bytes: usize) -> Result<AfPacketSource, LiveError> {
        let dev = opts.device.as_str();
        let any = dev == "any";
        let (block, count) = ring_geometry(bytes, opts.snaplen);
        let promisc = opts.promisc && !any;
        let cap = Capture::builder()
            .interface(if any { "lo" } else { dev })
            .snap_len(opts.snaplen)
            .block_size(block)
            .block_count(count)
            .block_timeout_ms(BLOCK_TIMEOUT_MS)
            .fill_rxhash(false)
            .promiscuous(promisc)
            .build()
            .map_err(|e| map_err(dev, e, promisc))?;
        let fd = cap.as_raw_fd();
        let other = |what: &str, e: std::io::Error| {
            if is_perm(&e) {
                LiveError::Permission {
                    device: dev.to_string(),
                    needs: "CAP_NET_RAW".into(),
                }
            } else {
                LiveError::Open {
                    device: dev.to_string(),
                    detail: format!("{what}: {e}"),
                }
            }
        };
        if any {
            bind_any(fd).map_err(|e| other("bind to all devices", e))?;
        }
        if let Some(prog) = &opts.filter {
            attach_filter(fd, prog).map_err(|e| other("SO_ATTACH_FILTER", e))?;
        }
        let loopback = dev == "lo";
        let mut drop_outgoing = loopback;
        let mut dup_loopback_only = any;
        let group;
        if opts.ignore_outgoing {
            match join_fanout(fd, opts.fanout_group, PACKET_FANOUT_FLAG_IGNORE_OUTGOING) {
                Ok(g) => group = g,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Kernels before the flag existed: drop them here instead.
                    tracing::debug!(
                        target: "capture",
                        "{dev}: PACKET_FANOUT_FLAG_IGNORE_OUTGOING unsupported, dropping outgoing frames in userspace"
                    );
                    group = join_fanout(fd, opts.fanout_group, 0)
                        .map_err(|e| other("PACKET_FANOUT", e))?;
                    drop_outgoing = true;
                    dup_loopback_only = false;
                }
                Err(e) => return Err(other("PACKET_FANOUT", e)),
            }
        } else {
            group = join_fanout(fd, opts.fanout_group, 0).map_err(|e| other("PACKET_FANOUT", e))?;
        }
        // Frames that reached the ring before the filter and the group were set up
        // would skew the counters: start them from here.
        let _ = cap.stats();
        Ok(AfPacketSource {
            cap,
            device: dev.to_string(),
            linktype: device_linktype(dev),
            drop_outgoing,
            dup_loopback_only: dup_loopback_only && !drop_outgoing,
            skipped: 0,
            group,
            ifindex: if any { None } else { device_ifindex(dev) },
        })
    }

    /// The PACKET_FANOUT group this ring joined.
    pub fn fanout_group(&self) -> u16 {
        self.group
    }
}

impl PacketSource for AfPacketSource {
    fn device(&self) -> &str {
        &self.device
    }

    fn poll(
        &mut self,
        timeout: Duration,
        visit: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, LiveError> {
        let linktype = self.linktype;
        let drop_outgoing = self.drop_outgoing;
        let dup_lo = self.dup_loopback_only;
        let mut skipped = 0u64;
        let fd = self.cap.as_raw_fd();
        let batch = match self.cap.next_batch_blocking(timeout) {
            Ok(Some(b)) => b,
            Ok(None) => {
                // When the device goes down or away, the kernel leaves ENETDOWN
                // pending on the socket, and poll() returns at once until it is
                // read: read it here, or the reader would spin on an empty ring.
                let Some(err) = take_socket_error(fd) else {
                    return Ok(0);
                };
                if self.ifindex.is_some() && device_ifindex(&self.device) != self.ifindex {
                    return Err(LiveError::Read {
                        device: self.device.clone(),
                        detail: format!("the device went away ({err})"),
                    });
                }
                tracing::warn!(
                    target: "capture",
                    "{}: {err}; capture resumes when the device is up again",
                    self.device
                );
                return Ok(0);
            }
            Err(e) => {
                return Err(LiveError::Read {
                    device: self.device.clone(),
                    detail: e.to_string(),
                });
            }
        };
        let mut n = 0;
        for pkt in &batch {
            let direction = match pkt.direction() {
                PacketDirection::Host | PacketDirection::Broadcast | PacketDirection::Multicast => {
                    Direction::Incoming
                }
                PacketDirection::Outgoing => Direction::Outgoing,
                PacketDirection::OtherHost => Direction::OtherHost,
                PacketDirection::Unknown(_) => Direction::Unknown,
            };
            let data = pkt.data();
            if direction == Direction::Outgoing
                && (drop_outgoing
                    || (dup_lo && data.len() >= 12 && data[..12].iter().all(|&b| b == 0)))
            {
                skipped += 1;
                continue;
            }
            let ts = pkt.timestamp();
            visit(&Frame {
                ts: Ts::from_secs_nanos(ts.sec as u64, ts.nsec as u64),
                linktype,
                data,
                orig_len: pkt.original_len().min(u32::MAX as usize) as u32,
                direction,
            });
            n += 1;
        }
        drop(batch);
        self.skipped += skipped;
        Ok(n)
    }

    fn stats(&mut self) -> Result<SourceStats, LiveError> {
        // `stats()` reads and resets the kernel's 32-bit counters; summing the
        // deltas into 64 bits never saturates.
        let s = self.cap.stats().map_err(|e| LiveError::Read {
            device: self.device.clone(),
            detail: e.to_string(),
        })?;
        let skipped = std::mem::take(&mut self.skipped);
        Ok(SourceStats {
            packets: s.packets as u64,
            drops: s.drops as u64,
            freezes: s.freeze_count as u64,
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Instant;

    fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `f` on a thread of its own in a new network namespace, with a
    /// `/sys` that shows that namespace's devices (as `ip netns exec` does);
    /// `None` when this process may not create namespaces (not root).
    fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        std::thread::spawn(move || {
            // SAFETY: unshare moves only the calling thread (spawned for this) into
            // new network and mount namespaces; it touches no memory of ours.
            if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
                return None;
            }
            let none = std::ptr::null::<libc::c_char>();
            // SAFETY: every string is NUL-terminated and static, the null pointers
            // are allowed by mount(2) for these flags; the mounts happen in the
            // mount namespace this thread just unshared, invisible to the rest.
            let ok = unsafe {
                libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                    && libc::mount(
                        c"sysfs".as_ptr(),
                        c"/sys".as_ptr(),
                        c"sysfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    ) == 0
            };
            assert!(ok, "mount sysfs: {}", std::io::Error::last_os_error());
            Some(f())
        })
        .join()
        .unwrap()
    }

    /// A 1 MiB ring on `device`, no fanout, no filter.
    fn plain_options(device: &str) -> AfPacketOptions {
        AfPacketOptions {
            device: device.into(),
            snaplen: 1500,
            ring_bytes: 1 << 20,
            promisc: false,
            ignore_outgoing: false,
            fanout_group: None,
            filter: None,
        }
    }

    #[test]
    fn a_device_that_goes_away_ends_the_capture_instead_of_spinning() {
        let r = in_netns(|| {
            assert!(
                ip(&["link", "add", "wbgone0", "type", "veth"]),
                "ip link add"
            );
            assert!(ip(&["link", "set", "wbgone0", "up"]));
            let mut src = AfPacketSource::open(&plain_options("wbgone0")).expect("open");
            assert!(ip(&["link", "del", "wbgone0"]));
            let t = Instant::now();
            let mut polls = 0u32;
            let mut end = None;
            while t.elapsed() < Duration::from_secs(1) {
                polls += 1;
                if let Err(e) = src.poll(Duration::from_millis(100), &mut |_| {}) {
                    end = Some(e.to_string());
                    break;
                }
            }
            (polls, end)
        });
        let Some((polls, end)) = r else {
            assert!(
                std::env::var_os("WIREBEAT_REQUIRE_ROOT_TESTS").is_none(),
                "cannot create a network namespace"
            );
            eprintln!("not root: skipping");
            return;
        };
        let end = end.unwrap_or_else(|| panic!("still polling after {polls} polls"));
        assert!(end.contains("wbgone0"), "{end}");
        assert!(polls < 20, "{polls} polls");
    }

    #[test]
    fn a_device_that_goes_down_does_not_make_the_reader_spin() {
        let r = in_netns(|| {
            assert!(
                ip(&["link", "add", "wbdown0", "type", "veth"]),
                "ip link add"
            );
            assert!(ip(&["link", "set", "wbdown0", "up"]));
            let mut src = AfPacketSource::open(&plain_options("wbdown0")).expect("open");
            assert!(ip(&["link", "set", "wbdown0", "down"]));
            let t = Instant::now();
            let mut polls = 0u32;
            while t.elapsed() < Duration::from_millis(500) {
                polls += 1;
                src.poll(Duration::from_millis(100), &mut |_| {})
                    .expect("a link that is down is not an error");
            }
            polls
        });
        let Some(polls) = r else {
            assert!(
                std::env::var_os("WIREBEAT_REQUIRE_ROOT_TESTS").is_none(),
                "cannot create a network namespace"
            );
            eprintln!("not root: skipping");
            return;
        };
        // 100 ms per quiet poll: about 5 in 500 ms, never thousands.
        assert!(polls < 20, "{polls} polls in 500 ms");
    }

    #[test]
    fn geometry_is_power_of_two_and_bounded() {
        for mb in [1usize, 2, 3, 7, 30, 100, 1024] {
            for snap in [96u32, 1514, 65535] {
                let (b, c) = ring_geometry(mb << 20, snap);
                assert!(b.is_power_of_two(), "{mb} {snap}");
                assert!(b >= snap as usize + 128, "{mb} {snap}");
                assert!(b <= 4 << 20);
                assert!(c >= 4);
                if mb >= 8 {
                    assert!(b * c <= mb << 20 && b * c >= (mb << 20) / 2, "{mb} {snap}");
                }
            }
        }
        // Any snaplen: no panic, and a block still holds a frame.
        for snap in [4 << 20, 64 << 20, u32::MAX] {
            let (b, c) = ring_geometry(1 << 20, snap);
            assert!(b >= snap as usize && c >= 4, "{snap}");
        }
    }
}
