//! Byte-exact events for every recorded capture. The expected files were produced by
//! wirebeat, reviewed, and are checked field by field against the independently
//! derived `expected.json` by `http_fixtures.rs`; this test pins every other field
//! (timestamps, durations, Community IDs, headers, order) against regressions.
//!
//! After an intended change of the event layout, regenerate with
//! `WIREBEAT_BLESS=1 cargo test --test golden` and review the diff.

mod common;

use common::*;

#[test]
fn events_match_the_golden_files() {
    let dir = fixture("http");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    let bless = std::env::var_os("WIREBEAT_BLESS").is_some();
    let mut failures = Vec::new();
    for name in names {
        let run = replay(
            &dir.join(&name),
            &["-E", "protocols.http.send_headers=[content-type, host]"],
        );
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let golden = dir.join(name.replace(".pcap", ".events.ndjson"));
        if bless {
            std::fs::write(&golden, &run.stdout).unwrap();
            continue;
        }
        let want = std::fs::read(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        if want != run.stdout {
            failures.push(format!(
                "{name}:\n--- expected\n{}\n--- got\n{}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&run.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
