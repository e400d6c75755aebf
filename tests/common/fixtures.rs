//! Replaying the recorded fixtures under tests/pcaps/, with `-E` settings, against
//! their `expected.json`; damaging their payloads.

use std::path::Path;

use serde_json::Value;

use super::{Frame, Run, XorShift, expected, fixture, replay, tcp_info};

/// Replays `pcap` with each of `settings` (`protocols.http.send_request=true`) given
/// by `-E`.
pub fn replay_with(pcap: &Path, settings: &[&str]) -> Run {
    let args: Vec<&str> = settings.iter().flat_map(|s| ["-E", *s]).collect();
    replay(pcap, &args)
}

/// Replays the capture `tests/pcaps/<name>` with `settings` (see [`replay_with`]).
pub fn replay_fixture(name: &str, settings: &[&str]) -> Run {
    replay_with(&fixture(name), settings)
}

/// Replays `<set>/<name>.pcap` with `settings`, where `exp` is the capture's entry in
/// the set's expected.json: wirebeat must exit with 0 and publish one event per
/// recorded transaction. Returns the run, its events and the recorded transactions.
pub fn replay_recorded<'a>(
    set: &str,
    name: &str,
    exp: &'a Value,
    settings: &[&str],
) -> (Run, Vec<Value>, &'a [Value]) {
    let run = replay_fixture(&format!("{set}/{name}.pcap"), settings);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    let events = run.events();
    let want = exp["transactions"].as_array().unwrap();
    assert_eq!(
        events.len(),
        want.len(),
        "{name}: event count\n{}",
        run.stderr
    );
    (run, events, want)
}

/// Rewrites every TCP payload byte of `frames` with xorshift noise from `seed`,
/// keeping the frames (and the TCP/IP headers) intact.
pub fn garble(frames: &mut [Frame], seed: u64) {
    let mut x = XorShift(seed);
    for f in frames.iter_mut() {
        let Some((len, _, _)) = tcp_info(f) else {
            continue;
        };
        // The payload is the frame's tail (Ethernet, no trailer in these captures).
        let start = f.data.len() - len;
        for b in &mut f.data[start..] {
            *b = x.next() as u8;
        }
    }
}

/// The events of replaying `tests/pcaps/<name>` with `settings`: exactly `n` of them.
pub fn fixture_events(name: &str, settings: &[&str], n: usize) -> Vec<Value> {
    let run = replay_fixture(name, settings);
    let events = run.events();
    assert_eq!(events.len(), n, "{name}: {}", run.stderr);
    events
}

/// The entries of `tests/pcaps/<set>/expected.json`, which must list `n` captures.
pub fn expected_captures(set: &str, n: usize) -> serde_json::Map<String, Value> {
    let all = expected(set);
    assert_eq!(all.len(), n, "{set}: captures listed in expected.json");
    all
}

/// Indices of the frames for which `pick` holds.
pub fn frame_indices(frames: &[Frame], pick: impl Fn(&Frame) -> bool) -> Vec<usize> {
    frames
        .iter()
        .enumerate()
        .filter(|(_, f)| pick(f))
        .map(|(i, _)| i)
        .collect()
}

/// A copy of `frames` without frame `i`: a segment lost before the capture.
pub fn without(frames: &[Frame], i: usize) -> Vec<Frame> {
    let mut v = frames.to_vec();
    v.remove(i);
    v
}

/// Each of `names` (under tests/pcaps/) gives the same events, in any order, with
/// two workers as with one.
pub fn assert_two_workers_agree(names: &[String]) {
    for name in names {
        let pcap = fixture(name);
        let lines = |extra: &[&str]| {
            let run = replay(&pcap, extra);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let mut l: Vec<Vec<u8>> = run
                .stdout
                .split(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            l.sort();
            l
        };
        assert_eq!(lines(&[]), lines(&["-E", "pipeline.workers=2"]), "{name}");
    }
}
