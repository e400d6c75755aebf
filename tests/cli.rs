//! The command line of SPEC §1: subcommands, flags and exit codes.

mod common;

use common::*;
use std::process::Command;

fn bin(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn test_config_accepts_the_packetbeat_seed_without_connecting() {
    let r = bin(&["test", "config", "-c", "configs/packetbeat-1x-seed.yml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(String::from_utf8_lossy(&r.stdout).contains("Config OK"));
    let r = bin(&["test", "config", "-c", "configs/wirebeat.yml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn bad_config_exits_1_naming_file_line_and_key() {
    let path = tmp("bad.yml");
    std::fs::write(&path, "protocols:\n  http:\n    ports: eighty\n").unwrap();
    let r = bin(&["test", "config", "-c", path.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.yml:3:"), "{}", r.stderr);
    assert!(r.stderr.contains("protocols.http.ports"), "{}", r.stderr);

    std::fs::write(
        &path,
        "protocols:\n  http:\n    ports: [80]\n  redis:\n    ports: [80]\n",
    )
    .unwrap();
    let r = bin(&["test", "config", "-c", path.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("80"), "{}", r.stderr);

    let r = bin(&["-c", "configs/wirebeat.yml", "--no-such-flag"]);
    assert_eq!(r.code, 1);
}

#[test]
fn unknown_devices_and_pf_ring_are_rejected_by_test_config() {
    let r = bin(&[
        "test",
        "config",
        "-c",
        "configs/wirebeat.yml",
        "-E",
        "interfaces.device=nosuchdev0",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nosuchdev0"), "{}", r.stderr);
    let r = bin(&[
        "test",
        "config",
        "-c",
        "configs/wirebeat.yml",
        "-E",
        "interfaces.type=pf_ring",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("af_packet"), "{}", r.stderr);
}

#[test]
fn export_config_round_trips() {
    let r = bin(&[
        "export",
        "config",
        "-c",
        "configs/wirebeat.yml",
        "-E",
        "protocols.http.ports=[8888]",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let path = tmp("exported.yml");
    std::fs::write(&path, &r.stdout).unwrap();
    let again = bin(&["export", "config", "-c", path.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&r.stdout)
    );
    assert!(String::from_utf8_lossy(&r.stdout).contains("8888"));
}

#[test]
fn missing_input_file_is_a_runtime_error() {
    let r = bin(&[
        "-c",
        "configs/wirebeat.yml",
        "-I",
        "/nonexistent/x.pcap",
        "-t",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent/x.pcap"), "{}", r.stderr);
}

#[test]
fn unsupported_link_types_are_reported() {
    // A classic pcap of link type 147 (user-defined): nothing can be decoded.
    let mut pcap = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0002_0004, 0, 0, 65535, 147] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1u32, 0, 4, 4] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    pcap.extend_from_slice(b"abcd");
    let classic = tmp("lt147.pcap");
    std::fs::write(&classic, &pcap).unwrap();
    let r = bin(&[
        "-c",
        "configs/wirebeat.yml",
        "-I",
        classic.to_str().unwrap(),
        "-t",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("link type 147 is not supported"),
        "{}",
        r.stderr
    );
    // pcapng: interfaces may differ, so an unsupported one is warned about and its
    // packets are counted, the others still decoded.
    let mut ng = Vec::new();
    let block = |ng: &mut Vec<u8>, ty: u32, body: &[u8]| {
        let len = 12 + body.len() as u32;
        ng.extend_from_slice(&ty.to_le_bytes());
        ng.extend_from_slice(&len.to_le_bytes());
        ng.extend_from_slice(body);
        ng.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut ng, 0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&147u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    block(&mut ng, 1, &idb);
    let mut epb = Vec::new();
    for v in [0u32, 0, 0, 4, 4] {
        epb.extend_from_slice(&v.to_le_bytes());
    }
    epb.extend_from_slice(b"abcd");
    block(&mut ng, 6, &epb);
    let pcapng = tmp("lt147.pcapng");
    std::fs::write(&pcapng, &ng).unwrap();
    let r = bin(&[
        "-c",
        "configs/wirebeat.yml",
        "-I",
        pcapng.to_str().unwrap(),
        "-t",
        "-e",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("link type 147 is not supported"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("non_ip_or_l4=1"), "{}", r.stderr);
}

#[test]
fn no_config_file_still_replays_with_defaults() {
    let dir = tmp("empty-cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(&dir)
        .args(["-I", fixture("sample.pcap").to_str().unwrap(), "-t"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(lines, 6);
    assert!(String::from_utf8_lossy(&out.stderr).contains("final counters"));
}

#[test]
fn pretty_console_and_file_output() {
    let r = replay(
        &fixture("http/get_simple.pcap"),
        &["-E", "output.console.pretty=true", "-e", "-d", "http,tcp"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.starts_with("{\n  \""), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(get(&v, "url.path"), "/");

    let dir = tmp("fileout");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let r = replay(
        &fixture("sample.pcap"),
        &[
            "-E",
            &format!("output.file.path={d}"),
            "-E",
            "output.file.filename=ev",
            "-E",
            "output.console.enabled=false",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let text = std::fs::read_to_string(dir.join("ev")).unwrap();
    assert_eq!(text.lines().count(), 6);
}

#[test]
fn no_publish_counts_but_prints_nothing() {
    let r = replay(&fixture("sample.pcap"), &["-N"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(r.counter("transactions"), 6, "{}", r.stderr);
    assert_eq!(r.counter("events_published"), 0);
}

#[test]
fn internal_networks_set_network_direction() {
    let r = replay(
        &fixture("http/get_simple.pcap"),
        &["-E", "interfaces.internal_networks=[10.77.0.2/32]"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(get(&r.events()[0], "network.direction"), "inbound");
    let r = replay(&fixture("http/get_simple.pcap"), &[]);
    assert_eq!(get(&r.events()[0], "network.direction"), "unknown");
    let r = replay(
        &fixture("http/get_simple.pcap"),
        &["-E", "interfaces.internal_networks=[10.0.0.0/99]"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn two_workers_give_the_same_transactions() {
    let one = replay(&fixture("sample.pcap"), &[]);
    let two = replay(&fixture("sample.pcap"), &["-E", "pipeline.workers=2"]);
    assert_eq!(two.code, 0, "{}", two.stderr);
    let mut a: Vec<String> = one
        .stdout
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let mut b: Vec<String> = two
        .stdout
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn sigint_drains_and_exits_0() {
    // The second half of the capture is an hour later: without -t, replay would wait.
    let mut frames = read_frames(&fixture("http/keepalive.pcap"));
    let half = frames.len() / 2;
    for f in &mut frames[half..] {
        f.ts = wirebeat::time::Ts(f.ts.0 + 3_600_000_000_000);
    }
    let path = tmp("slow.pcap");
    write_frames(&path, &frames, 65535);
    let child = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(root())
        .args(["-c", "configs/wirebeat.yml", "-I", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("final counters"), "{stderr}");
    // What was read before the signal was flushed: at least the first exchange.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 1, "{text}\n{stderr}");
}

#[test]
fn sigterm_ends_the_run_within_the_grace_when_the_output_is_dead() {
    // Paced replay, looping for ever, into a Redis that is not there: SIGTERM must
    // end it within pipeline.shutdown_timeout, counting what was not delivered.
    let child = Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .current_dir(root())
        .args([
            "-c",
            "configs/wirebeat.yml",
            "-I",
            "tests/pcaps/redis/basic.pcap",
            "-l",
            "0",
            "-E",
            "pipeline.shutdown_timeout=2s",
        ])
        .args(DEAD_REDIS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < std::time::Duration::from_secs(6),
        "{took:?}\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("events could not be delivered"), "{stderr}");
    assert!(final_counter(&stderr, "events_dropped") > 0, "{stderr}");
}

#[test]
fn periodic_metrics_report_only_changes_and_final_report_has_response_times() {
    // Paced replay: two passes over a 0.2 s capture with a 1 s pause between them.
    let r = wirebeat(&[
        "-I",
        "tests/pcaps/pgsql/notice_notify.pcap",
        "-l",
        "2",
        "-E",
        "logging.metrics.period=150ms",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let periodic: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(" in the last "))
        .collect();
    assert!(periodic.len() >= 3, "{}", r.stderr);
    assert!(
        periodic.iter().any(|l| l.contains("packets=+")),
        "{}",
        r.stderr
    );
    // During the pause between passes nothing moves.
    assert!(
        periodic.iter().any(|l| l.contains("no metrics changed")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("wirebeat: response times: pgsql: n=")),
        "{}",
        r.stderr
    );
    let r = wirebeat(&[
        "-I",
        "tests/pcaps/pgsql/notice_notify.pcap",
        "-t",
        "-E",
        "logging.metrics.enabled=false",
        "-E",
        "logging.metrics.period=1ms",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("metrics in the last"), "{}", r.stderr);
}
