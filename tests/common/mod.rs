//! Helpers shared by the integration tests: run the real binary, read and rewrite
//! captures.
#![allow(dead_code)]

pub mod redis_server;

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod fake_es;
pub mod fake_kibana;
pub mod fixtures;
pub mod netns;

use serde_json::Value;
use wirebeat::capture::dump::PcapWriter;
use wirebeat::capture::file::FileSource;
use wirebeat::capture::{LinkType, Packet};
use wirebeat::decode::{Decoder, DefragLimits, L4};
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice(l)
                    .unwrap_or_else(|e| panic!("bad JSON line {e}: {}", String::from_utf8_lossy(l)))
            })
            .collect()
    }

    /// A counter from the final report on stderr (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        final_counter(&self.stderr, name)
    }
}

/// A counter from the final report in `stderr` (0 when absent).
pub fn final_counter(stderr: &str, name: &str) -> u64 {
    let key = format!(" {name}=");
    stderr
        .lines()
        .filter(|l| l.contains("final counters"))
        .find_map(|l| {
            let i = l.find(&key)? + key.len();
            l[i..].split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// Not every test binary uses all of them.
#[allow(unused_imports)]
pub use wirebeat::protos::testing::{XorShift, expected, fixture};

#[allow(unused_imports)]
pub use fixtures::*;

/// Replay settings sending events to a Redis that is not there (nothing listens
/// on port 1 of loopback), console off.
pub const DEAD_REDIS: [&str; 6] = [
    "-E",
    "output.console.enabled=false",
    "-E",
    "output.redis.enabled=true",
    "-E",
    "output.redis.hosts=[\"127.0.0.1:1\"]",
];

/// One output's writer thread as the pipeline starts it: no stop signal, a 30 s
/// shutdown grace.
pub fn start_output(
    out: Box<dyn wirebeat::output::Output>,
    limits: wirebeat::output::Limits,
    registry: &wirebeat::stats::Registry,
) -> (wirebeat::output::Publisher, wirebeat::output::Writers) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    start_output_with(
        out,
        limits,
        registry,
        stop,
        std::time::Duration::from_secs(30),
    )
}

/// [`start_output`] with `stop` as the run's signal flag and `grace` as its
/// shutdown grace.
pub fn start_output_with(
    out: Box<dyn wirebeat::output::Output>,
    limits: wirebeat::output::Limits,
    registry: &wirebeat::stats::Registry,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    grace: std::time::Duration,
) -> (wirebeat::output::Publisher, wirebeat::output::Writers) {
    wirebeat::output::start(vec![out], limits, registry, stop, grace).unwrap()
}

/// Runs `wirebeat` with the reference config, a fixed shipper name and `args`.
pub fn wirebeat(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(root())
        .args(["-c", "configs/wirebeat.yml", "-E", "shipper.name=test"])
        .args(args)
        .output()
        .expect("run wirebeat");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts wirebeat with `args` in the background (stdout and stderr piped).
pub fn spawn(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(root())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wirebeat")
}

/// Waits for a run started by [`spawn`].
pub fn finish(child: std::process::Child) -> Run {
    let out = child.wait_with_output().expect("wait for wirebeat");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn replay(pcap: &Path, extra: &[&str]) -> Run {
    let p = pcap.to_string_lossy().into_owned();
    let mut args = vec!["-I", p.as_str(), "-t"];
    args.extend_from_slice(extra);
    wirebeat(&args)
}

/// Replays each of `names` (under tests/pcaps/) twice: the outputs must be non-empty
/// and identical byte for byte.
pub fn assert_replays_identical(names: &[&str]) {
    for name in names {
        let a = replay(&fixture(name), &[]);
        let b = replay(&fixture(name), &[]);
        assert!(!a.stdout.is_empty(), "{name}");
        assert_eq!(a.stdout, b.stdout, "{name}: two replays differ");
    }
}

#[derive(Clone)]
pub struct Frame {
    pub ts: Ts,
    pub linktype: LinkType,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

pub fn read_frames(path: &Path) -> Vec<Frame> {
    let mut src = FileSource::open(path).expect("open capture");
    let mut v = Vec::new();
    while let Some(p) = src.next_packet().expect("read capture") {
        v.push(Frame {
            ts: p.ts,
            linktype: p.linktype,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
        });
    }
    v
}

pub fn write_frames(path: &Path, frames: &[Frame], snaplen: u32) {
    let lt = frames
        .first()
        .map(|f| f.linktype)
        .unwrap_or(LinkType::ETHERNET);
    let mut w = PcapWriter::create(path, lt, snaplen).expect("create capture");
    for f in frames {
        w.write(&Packet {
            ts: f.ts,
            linktype: f.linktype,
            data: &f.data,
            orig_len: f.orig_len,
        })
        .expect("write");
    }
    w.flush().expect("flush");
}

/// TCP payload length and (src port, dst port) of a frame, if it is TCP.
pub fn tcp_info(f: &Frame) -> Option<(usize, u16, u16)> {
    let mut d = Decoder::new(DefragLimits {
        max_datagrams: 16,
        max_bytes: 1 << 20,
        timeout: std::time::Duration::from_secs(30),
    });
    let mut c = Counters::default();
    let ip = d.decode(f.ts, f.linktype, &f.data, f.orig_len, &mut c)?;
    match &ip.l4 {
        L4::Tcp(t) => Some((t.payload.len(), t.src_port, t.dst_port)),
        L4::Udp(_) | L4::Icmp(_) => None,
    }
}

pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wirebeat-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Looks up a dotted path in a JSON event.
pub fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for k in path.split('.') {
        cur = match cur.get(k) {
            Some(x) => x,
            None => return &Value::Null,
        };
    }
    cur
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn chrono_ms(ms: u64) -> String {
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
