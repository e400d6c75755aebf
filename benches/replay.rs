//! Offline replay throughput of the library pipeline (`pipeline::run_replay`): reader,
//! decode, flow table, TCP reassembly, HTTP parsing and pairing, event encoding and
//! the file output, on a ~20 MiB synthetic HTTP capture made by
//! `scripts/gen-traffic-pcap.py` from the fixture pcaps (500 connections open at once).
//!
//! Cases (throughput in captured frame bytes):
//! - `decode_only`: no tracked port, so every packet is read, decoded and dropped by
//!   the port filter: the bare read + decode loop, the baseline of the others;
//! - `no_publish`: HTTP tracked, events built but not published (`-N`);
//! - `file_output`: events encoded to a rotating NDJSON file in a temp directory;
//! - `file_output_2_workers`: the same with `pipeline.workers: 2`.
//!
//! `scripts/bench.sh` measures the release binary on a 1 GiB capture next to tcpdump;
//! this bench is for quick before/after comparisons of library changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wirebeat::config::{Config, FileOutput};
use wirebeat::output::Output;
use wirebeat::output::file::RotatingFile;
use wirebeat::pipeline::{ReplayOptions, Summary, run_replay};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZE_MB: &str = "20";
const CONCURRENCY: &str = "500";

struct Capture {
    path: PathBuf,
    frame_bytes: u64,
    frames: u64,
    transactions: u64,
}

/// Generates the capture under target/bench/ (deterministic, a fraction of a second).
fn capture() -> Capture {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    let path = dir.join(format!("replay-{SIZE_MB}m-c{CONCURRENCY}.pcap"));
    let status = Command::new("python3")
        .arg(root.join("scripts").join("gen-traffic-pcap.py"))
        .args(["--out".as_ref(), path.as_os_str()])
        .args(["--size-mb", SIZE_MB, "--concurrency", CONCURRENCY])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run python3 scripts/gen-traffic-pcap.py");
    assert!(status.success(), "gen-traffic-pcap.py failed");
    let meta_path = PathBuf::from(format!("{}.json", path.display()));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).expect("read capture metadata"))
            .expect("capture metadata is JSON");
    let num = |k: &str| {
        meta[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in capture metadata"))
    };
    Capture {
        frame_bytes: num("frame_bytes"),
        frames: num("frames"),
        transactions: num("transactions"),
        path,
    }
}

fn config(overrides: &[&str]) -> Config {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::from_yaml_str("", "<bench>", &o)
        .expect("bench configuration")
        .config
}

fn opts(cap: &Capture, no_publish: bool) -> ReplayOptions {
    ReplayOptions {
        file: cap.path.clone(),
        top_speed: true,
        loops: 1,
        no_publish,
        dump: None,
    }
}

fn file_output(dir: &Path) -> Vec<Box<dyn Output>> {
    // a fresh directory per run keeps rotation work identical between iterations
    let _ = std::fs::remove_dir_all(dir);
    let f = FileOutput {
        path: dir.display().to_string(),
        filename: "wirebeat".into(),
        ..FileOutput::default()
    };
    vec![Box::new(RotatingFile::new(&f).expect("open file output"))]
}

fn run(cfg: &Config, o: &ReplayOptions, outputs: Vec<Box<dyn Output>>) -> Summary {
    let s = run_replay(
        cfg,
        o,
        outputs,
        Arc::new(AtomicBool::new(false)),
        &wirebeat::stats::Registry::new(),
    )
    .expect("replay");
    assert!(s.input_error.is_none() && s.output_error.is_none());
    s
}

/// One untimed run per case: the numbers are only worth something if every frame and
/// every transaction was seen.
fn check(name: &str, cap: &Capture, s: &Summary, want_events: bool) {
    let c = &s.counters;
    let mut bad = Vec::new();
    if c.packets != cap.frames {
        bad.push(format!("packets {} of {}", c.packets, cap.frames));
    }
    if want_events && c.transactions != cap.transactions {
        bad.push(format!(
            "transactions {} of {}",
            c.transactions, cap.transactions
        ));
    }
    if !bad.is_empty() {
        eprintln!("replay/{name}: WARNING: {}", bad.join(", "));
    }
}

fn bench_replay(c: &mut Criterion) {
    let cap = capture();
    let out_dir = std::env::temp_dir().join(format!("wirebeat-bench-{}", std::process::id()));

    let decode = config(&[
        "protocols.http.ports=[1]",
        "protocols.mysql.enabled=false",
        "protocols.pgsql.enabled=false",
        "protocols.redis.enabled=false",
        "protocols.thrift.enabled=false",
        "protocols.dns.enabled=false",
    ]);
    let http = config(&[]);
    let http_w2 = config(&["pipeline.workers=2"]);

    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Bytes(cap.frame_bytes));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));

    check(
        "decode_only",
        &cap,
        &run(&decode, &opts(&cap, true), Vec::new()),
        false,
    );
    g.bench_function("decode_only", |b| {
        b.iter(|| run(&decode, &opts(&cap, true), Vec::new()))
    });

    check(
        "no_publish",
        &cap,
        &run(&http, &opts(&cap, true), Vec::new()),
        true,
    );
    g.bench_function("no_publish", |b| {
        b.iter(|| run(&http, &opts(&cap, true), Vec::new()))
    });

    check(
        "file_output",
        &cap,
        &run(&http, &opts(&cap, false), file_output(&out_dir)),
        true,
    );
    g.bench_function("file_output", |b| {
        b.iter(|| run(&http, &opts(&cap, false), file_output(&out_dir)))
    });

    g.bench_function("file_output_2_workers", |b| {
        b.iter(|| run(&http_w2, &opts(&cap, false), file_output(&out_dir)))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&out_dir);
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
