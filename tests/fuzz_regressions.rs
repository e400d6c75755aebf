//! Replays the fuzz targets' inputs on stable (src/fuzzing.rs holds the harnesses
//! that fuzz/fuzz_targets/ call): every file under `tests/fuzz/regressions/<target>/`
//! (inputs that once crashed, hung or ran out of memory, kept fixed), and a small
//! deterministic sample of each target's seeds built from the committed fixtures.

use std::path::Path;

use wirebeat::fuzzing::{TARGETS, seeds};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Seeds replayed per target: the first, the last and a few between.
const SAMPLE: usize = 6;

#[test]
fn every_target_has_a_regressions_directory_or_none() {
    let dir = Path::new(ROOT).join("tests/fuzz/regressions");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.path().is_dir() {
            continue;
        }
        assert!(
            TARGETS.iter().any(|t| t.0 == name),
            "tests/fuzz/regressions/{name}: no such fuzz target"
        );
    }
}

#[test]
fn regressions_stay_fixed() {
    let dir = Path::new(ROOT).join("tests/fuzz/regressions");
    let mut replayed = 0;
    for &(name, harness) in TARGETS {
        let Ok(rd) = std::fs::read_dir(dir.join(name)) else {
            continue;
        };
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            eprintln!("{name}: {}", f.display());
            harness(&data);
            replayed += 1;
        }
    }
    eprintln!("{replayed} regression input(s) replayed");
}

#[test]
fn seeds_run_through_every_target() {
    let all = seeds::all(Path::new(ROOT));
    for &(name, harness) in TARGETS {
        let seeds = &all
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no seeds for {name}"))
            .1;
        assert!(!seeds.is_empty(), "{name}: no seeds");
        let step = seeds.len().div_ceil(SAMPLE).max(1);
        let mut picked: Vec<&Vec<u8>> = seeds.iter().step_by(step).collect();
        picked.push(seeds.last().expect("not empty"));
        for s in picked {
            harness(s);
            // Cut short: the same input ending anywhere must be handled too.
            harness(&s[..s.len() / 2]);
        }
        harness(&[]);
    }
}
