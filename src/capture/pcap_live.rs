//! libpcap, loaded at run time: live capture for `interfaces.type: pcap`, and the
//! tcpdump-syntax filter compiler (`pcap_compile` on a dead handle) for AF_PACKET
//! sockets. Loading the shared library with `dlopen` means building wirebeat never
//! needs libpcap's headers; a machine without the library gets a clear error only
//! when something actually needs it.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;
use std::time::Duration;

use libloading::Library;

use super::source::{Direction, Frame, PacketSource, SourceStats};
use super::{LinkType, LiveError};
use crate::time::Ts;

type Pcap = c_void;

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut libc::sock_filter,
}

#[repr(C)]
struct PktHdr {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

#[repr(C)]
#[derive(Default)]
struct PcapStat {
    ps_recv: c_uint,
    ps_drop: c_uint,
    ps_ifdrop: c_uint,
}

const PCAP_ERRBUF_SIZE: usize = 256;
const PCAP_D_IN: c_int = 1;
const DLT_RAW: c_int = 12;
const DLT_RAW_ALT: c_int = 14;
const PCAP_ERROR_NO_SUCH_DEVICE: c_int = -5;
const PCAP_ERROR_PERM_DENIED: c_int = -8;
const PCAP_ERROR_PROMISC_PERM_DENIED: c_int = -11;

/// The libpcap functions wirebeat uses, resolved once.
struct Api {
    _lib: Library,
    create: unsafe extern "C" fn(*const c_char, *mut c_char) -> *mut Pcap,
    set_snaplen: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    set_promisc: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    set_timeout: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    set_buffer_size: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    activate: unsafe extern "C" fn(*mut Pcap) -> c_int,
    datalink: unsafe extern "C" fn(*mut Pcap) -> c_int,
    compile: unsafe extern "C" fn(*mut Pcap, *mut BpfProgram, *const c_char, c_int, u32) -> c_int,
    setfilter: unsafe extern "C" fn(*mut Pcap, *mut BpfProgram) -> c_int,
    freecode: unsafe extern "C" fn(*mut BpfProgram),
    next_ex: unsafe extern "C" fn(*mut Pcap, *mut *mut PktHdr, *mut *const u8) -> c_int,
    stats: unsafe extern "C" fn(*mut Pcap, *mut PcapStat) -> c_int,
    geterr: unsafe extern "C" fn(*mut Pcap) -> *mut c_char,
    close: unsafe extern "C" fn(*mut Pcap),
    open_dead: unsafe extern "C" fn(c_int, c_int) -> *mut Pcap,
    setnonblock: unsafe extern "C" fn(*mut Pcap, c_int, *mut c_char) -> c_int,
    get_selectable_fd: unsafe extern "C" fn(*mut Pcap) -> c_int,
    setdirection: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
}

/// Names tried in order: Debian's runtime package, other distributions, the
/// development symlink.
const LIB_NAMES: &[&str] = &["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

fn load() -> Result<Api, String> {
    let mut errors = Vec::new();
    for name in LIB_NAMES {
        // SAFETY: loading libpcap runs its (trivial) initialisers; it is a plain C
        // library with no global constructors that could conflict with ours.
        match unsafe { Library::new(name) } {
            Ok(lib) => return resolve(lib).map_err(|e| format!("{name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(format!(
        "libpcap is not installed ({}); install it (Debian/Ubuntu: apt-get install libpcap0.8)",
        errors.join("; ")
    ))
}

fn resolve(lib: Library) -> Result<Api, libloading::Error> {
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol is looked up by its documented libpcap name and
            // given the C signature from pcap/pcap.h; the pointer stays valid for as
            // long as `lib` is loaded, and `lib` lives inside the same `Api`, which is
            // kept in a static and never dropped.
            *unsafe { lib.get($name)? }
        };
    }
    Ok(Api {
        create: sym!(b"pcap_create\0"),
        set_snaplen: sym!(b"pcap_set_snaplen\0"),
        set_promisc: sym!(b"pcap_set_promisc\0"),
        set_timeout: sym!(b"pcap_set_timeout\0"),
        set_buffer_size: sym!(b"pcap_set_buffer_size\0"),
        activate: sym!(b"pcap_activate\0"),
        datalink: sym!(b"pcap_datalink\0"),
        compile: sym!(b"pcap_compile\0"),
        setfilter: sym!(b"pcap_setfilter\0"),
        freecode: sym!(b"pcap_freecode\0"),
        next_ex: sym!(b"pcap_next_ex\0"),
        stats: sym!(b"pcap_stats\0"),
        geterr: sym!(b"pcap_geterr\0"),
        close: sym!(b"pcap_close\0"),
        open_dead: sym!(b"pcap_open_dead\0"),
        setnonblock: sym!(b"pcap_setnonblock\0"),
        get_selectable_fd: sym!(b"pcap_get_selectable_fd\0"),
        setdirection: sym!(b"pcap_setdirection\0"),
        _lib: lib,
    })
}

fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(|e| e.clone())
}

/// Whether libpcap can be loaded on this machine.
pub fn available() -> bool {
    api().is_ok()
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libpcap returns NUL-terminated strings that live at least until the
    // next call on the same handle; we copy it out at once.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn errbuf_str(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Compiles a tcpdump-syntax filter into classic BPF for frames of `linktype`,
/// using libpcap's compiler on a dead handle.
pub fn compile_filter(
    expr: &str,
    linktype: LinkType,
    snaplen: u32,
) -> Result<Vec<libc::sock_filter>, LiveError> {
    let api = api().map_err(|e| {
        LiveError::Filter(format!(
            "a custom bpf_filter needs libpcap to compile it: {e}"
        ))
    })?;
    let dlt = match linktype {
        LinkType::RAW => DLT_RAW,
        LinkType(n) => n as c_int,
    };
    let cexpr = CString::new(expr)
        .map_err(|_| LiveError::Filter("bpf_filter contains a NUL byte".into()))?;
    // SAFETY: open_dead takes plain integers and returns an owned handle or NULL.
    let h = unsafe { (api.open_dead)(dlt, snaplen.min(i32::MAX as u32) as c_int) };
    if h.is_null() {
        return Err(LiveError::Filter("pcap_open_dead failed".into()));
    }
    let mut prog = BpfProgram {
        bf_len: 0,
        bf_insns: std::ptr::null_mut(),
    };
    // SAFETY: `h` is a live handle, `prog` a valid out-parameter and `cexpr` a
    // NUL-terminated string that outlives the call. 0xffffffff = PCAP_NETMASK_UNKNOWN.
    let rc = unsafe { (api.compile)(h, &mut prog, cexpr.as_ptr(), 1, 0xffff_ffff) };
    let result = if rc != 0 {
        // SAFETY: `h` is live; the message is copied before the handle is closed.
        let msg = cstr(unsafe { (api.geterr)(h) });
        Err(LiveError::Filter(format!("bpf_filter {expr:?}: {msg}")))
    } else {
        let insns = if prog.bf_insns.is_null() {
            Vec::new()
        } else {
            // SAFETY: on success libpcap filled `bf_len` instructions at `bf_insns`;
            // they are copied out before pcap_freecode releases them.
            unsafe { std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize) }.to_vec()
        };
        // SAFETY: `prog` was filled by a successful pcap_compile.
        unsafe { (api.freecode)(&mut prog) };
        Ok(insns)
    };
    // SAFETY: `h` came from open_dead and is closed exactly once.
    unsafe { (api.close)(h) };
    result
}

/// How to open a libpcap live capture.
#[derive(Clone, Debug)]
pub struct PcapOptions {
    pub device: String,
    pub snaplen: u32,
    pub buffer_bytes: usize,
    pub promisc: bool,
    pub ignore_outgoing: bool,
    /// tcpdump-syntax filter; empty captures everything.
    pub filter: String,
}

pub struct PcapSource {
    api: &'static Api,
    handle: *mut Pcap,
    fd: c_int,
    device: String,
    linktype: LinkType,
    last: (u32, u32),
}

// SAFETY: a pcap handle is not tied to the thread that created it; it is only
// ever used by the one thread that owns this value (the trait takes `&mut self`).
unsafe impl Send for PcapSource {}

impl Drop for PcapSource {
    fn drop(&mut self) {
        // SAFETY: `handle` came from pcap_create and is closed exactly once, here.
        unsafe { (self.api.close)(self.handle) };
    }
}

impl PcapSource {
    pub fn open(opts: &PcapOptions) -> Result<PcapSource, LiveError> {
        let api = api().map_err(|e| LiveError::Open {
            device: opts.device.clone(),
            detail: format!("interfaces.type: pcap needs libpcap: {e}"),
        })?;
        let dev = CString::new(opts.device.as_str())
            .map_err(|_| LiveError::NoDevice(opts.device.clone()))?;
        let mut errbuf: [c_char; PCAP_ERRBUF_SIZE] = [0; PCAP_ERRBUF_SIZE];
        // SAFETY: `dev` is NUL-terminated and `errbuf` has PCAP_ERRBUF_SIZE bytes.
        let handle = unsafe { (api.create)(dev.as_ptr(), errbuf.as_mut_ptr()) };
        if handle.is_null() {
            return Err(LiveError::Open {
                device: opts.device.clone(),
                detail: errbuf_str(&errbuf),
            });
        }
        let mut src = PcapSource {
            api,
            handle,
            fd: -1,
            device: opts.device.clone(),
            linktype: LinkType::ETHERNET,
            last: (0, 0),
        };
        let h = src.handle;
        // SAFETY: `h` is a created, not yet activated handle: these setters are
        // valid on it and take plain integers.
        unsafe {
            (api.set_snaplen)(h, opts.snaplen.min(i32::MAX as u32) as c_int);
            (api.set_promisc)(h, opts.promisc as c_int);
            (api.set_timeout)(h, 10);
            (api.set_buffer_size)(h, opts.buffer_bytes.min(i32::MAX as usize) as c_int);
        }
        // SAFETY: `h` is a configured handle.
        let rc = unsafe { (api.activate)(h) };
        if rc < 0 {
            let msg = src.err();
            return Err(match rc {
                PCAP_ERROR_NO_SUCH_DEVICE => LiveError::NoDevice(opts.device.clone()),
                PCAP_ERROR_PERM_DENIED => LiveError::Permission {
                    device: opts.device.clone(),
                    needs: "CAP_NET_RAW".into(),
                },
                PCAP_ERROR_PROMISC_PERM_DENIED => LiveError::Permission {
                    device: opts.device.clone(),
                    needs: "CAP_NET_ADMIN (promiscuous mode, auto_promisc_mode: true)".into(),
                },
                _ => LiveError::Open {
                    device: opts.device.clone(),
                    detail: msg,
                },
            });
        }
        if rc > 0 {
            tracing::warn!(target: "capture", "{}: libpcap warning: {}", opts.device, src.err());
        }
        // SAFETY: `h` is activated.
        let dlt = unsafe { (api.datalink)(h) };
        src.linktype = match dlt {
            DLT_RAW | DLT_RAW_ALT => LinkType::RAW,
            n => LinkType(n.max(0) as u32),
        };
        if opts.ignore_outgoing {
            // SAFETY: `h` is activated.
            if unsafe { (api.setdirection)(h, PCAP_D_IN) } != 0 {
                tracing::warn!(
                    target: "capture",
                    "{}: cannot ignore outgoing packets: {}",
                    opts.device,
                    src.err()
                );
            }
        }
        if !opts.filter.trim().is_empty() {
            let cexpr = CString::new(opts.filter.as_str())
                .map_err(|_| LiveError::Filter("bpf_filter contains a NUL byte".into()))?;
            let mut prog = BpfProgram {
                bf_len: 0,
                bf_insns: std::ptr::null_mut(),
            };
            // SAFETY: `h` is activated, `prog` is a valid out-parameter and `cexpr`
            // outlives the call.
            if unsafe { (api.compile)(h, &mut prog, cexpr.as_ptr(), 1, 0xffff_ffff) } != 0 {
                return Err(LiveError::Filter(format!(
                    "bpf_filter {:?}: {}",
                    opts.filter,
                    src.err()
                )));
            }
            // SAFETY: `prog` was filled by pcap_compile; the kernel copies it during
            // setfilter, then it is freed exactly once.
            let rc = unsafe {
                let rc = (api.setfilter)(h, &mut prog);
                (api.freecode)(&mut prog);
                rc
            };
            if rc != 0 {
                return Err(LiveError::Filter(format!(
                    "cannot attach bpf_filter {:?}: {}",
                    opts.filter,
                    src.err()
                )));
            }
        }
        // SAFETY: `h` is activated; errbuf has PCAP_ERRBUF_SIZE bytes.
        unsafe {
            if (api.setnonblock)(h, 1, errbuf.as_mut_ptr()) != 0 {
                return Err(LiveError::Open {
                    device: opts.device.clone(),
                    detail: errbuf_str(&errbuf),
                });
            }
            src.fd = (api.get_selectable_fd)(h);
        }
        let _ = src.stats();
        Ok(src)
    }

    fn err(&self) -> String {
        // SAFETY: `handle` is live for as long as `self`.
        cstr(unsafe { (self.api.geterr)(self.handle) })
    }
}

/// Frames handed over per `poll` at most, so a reader checks its stop flag and
/// counters regularly even under a flood.
const BURST: usize = 4096;

impl PacketSource for PcapSource {
    fn device(&self) -> &str {
        &self.device
    }

    fn poll(
        &mut self,
        timeout: Duration,
        visit: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, LiveError> {
        let mut n = 0;
        let mut waited = false;
        // Also bounds the calls that hand over no frame, so a library that keeps
        // answering 1 without a packet cannot hold the reader here.
        let mut calls = 0;
        while n < BURST && calls < 2 * BURST {
            calls += 1;
            let mut hdr: *mut PktHdr = std::ptr::null_mut();
            let mut data: *const u8 = std::ptr::null();
            // SAFETY: `handle` is live and in non-blocking mode; both out-pointers are
            // valid locals.
            let rc = unsafe { (self.api.next_ex)(self.handle, &mut hdr, &mut data) };
            match rc {
                1 if !hdr.is_null() && !data.is_null() => {
                    // SAFETY: on success libpcap points `hdr` and `data` at the current
                    // packet, valid until the next call on this handle; `caplen`
                    // bytes are readable at `data`.
                    let (h, bytes) = unsafe {
                        let h = &*hdr;
                        (h, std::slice::from_raw_parts(data, h.caplen as usize))
                    };
                    visit(&Frame {
                        ts: Ts::from_secs_nanos(
                            h.ts.tv_sec.max(0) as u64,
                            (h.ts.tv_usec.max(0) as u64).saturating_mul(1000),
                        ),
                        linktype: self.linktype,
                        data: bytes,
                        orig_len: h.len,
                        direction: Direction::Unknown,
                    });
                    n += 1;
                }
                1 => {}
                0 => {
                    if n > 0 || waited {
                        break;
                    }
                    waited = true;
                    let mut pfd = libc::pollfd {
                        fd: self.fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    let ms = timeout.as_millis().min(i32::MAX as u128) as c_int;
                    // SAFETY: one valid pollfd; a negative fd is ignored by poll.
                    let prc = unsafe { libc::poll(&mut pfd, 1, ms) };
                    if prc < 0 {
                        let e = std::io::Error::last_os_error();
                        if e.kind() != std::io::ErrorKind::Interrupted {
                            return Err(LiveError::Read {
                                device: self.device.clone(),
                                detail: e.to_string(),
                            });
                        }
                        break;
                    }
                }
                _ => {
                    return Err(LiveError::Read {
                        device: self.device.clone(),
                        detail: self.err(),
                    });
                }
            }
        }
        Ok(n)
    }

    fn stats(&mut self) -> Result<SourceStats, LiveError> {
        let mut s = PcapStat::default();
        // SAFETY: `handle` is live and `s` is a valid out-parameter.
        if unsafe { (self.api.stats)(self.handle, &mut s) } != 0 {
            return Err(LiveError::Read {
                device: self.device.clone(),
                detail: self.err(),
            });
        }
        // libpcap keeps 32-bit running totals: take wrapping deltas.
        let (recv, drop) = (s.ps_recv, s.ps_drop);
        let d = SourceStats {
            packets: recv.wrapping_sub(self.last.0) as u64,
            drops: drop.wrapping_sub(self.last.1) as u64,
            freezes: 0,
            skipped: 0,
        };
        self.last = (recv, drop);
        let _ = s.ps_ifdrop;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_a_port_filter_when_libpcap_is_present() {
        if !available() {
            eprintln!("libpcap not installed: skipping");
            return;
        }
        let p = compile_filter("tcp port 80", LinkType::ETHERNET, 65535).unwrap();
        assert!(p.len() > 4);
        // Ends in a return instruction.
        assert_eq!(p.last().unwrap().code & 0x07, 0x06);
        let e = compile_filter("tcp port", LinkType::ETHERNET, 65535).unwrap_err();
        assert!(e.to_string().contains("bpf_filter"), "{e}");
    }
}
