//! The periodic metrics report (every `logging.metrics_interval`, only what changed)
//! and the final report printed at exit.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};

use super::{Counters, Registry, Snapshot};

/// Output statistics that are gauges (current values), not counters.
const GAUGES: &[&str] = &["queue_events"];

pub(crate) fn is_gauge(name: &str) -> bool {
    GAUGES.contains(&name)
}

/// `name=+delta` for every counter that moved between `prev` and `now`, then per
/// output, then response-time percentiles of the interval. `None` when nothing moved.
pub fn delta_line(prev: &Snapshot, now: &Snapshot) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let before = prev.counters.entries();
    for (i, (name, v)) in now.counters.entries().into_iter().enumerate() {
        let d = v.wrapping_sub(before.get(i).map(|e| e.1).unwrap_or(0));
        if d != 0 {
            parts.push(format!("{name}=+{d}"));
        }
    }
    for (out, stats) in &now.outputs {
        let old = prev.outputs.iter().find(|(n, _)| n == out).map(|(_, s)| s);
        let mut moved: Vec<String> = Vec::new();
        for (i, (name, v)) in stats.iter().enumerate() {
            if GAUGES.contains(name) {
                if *v != 0 {
                    moved.push(format!("{name}={v}"));
                }
                continue;
            }
            let d = v.wrapping_sub(old.and_then(|o| o.get(i)).map(|e| e.1).unwrap_or(0));
            if d != 0 {
                moved.push(format!("{name}=+{d}"));
            }
        }
        if !moved.is_empty() {
            parts.push(format!("output.{out}: {}", moved.join(" ")));
        }
    }
    let lat = now.latencies.since(&prev.latencies).summaries();
    if !lat.is_empty() {
        let l: Vec<String> = lat.iter().map(|s| s.line()).collect();
        parts.push(format!("response times: {}", l.join("; ")));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

/// The final report: the counters line (`final counters (Ns): k=v ...`, every
/// non-zero counter), one line per output, one with response-time percentiles.
pub fn final_lines(counters: &Counters, snap: &Snapshot, elapsed: Duration) -> Vec<String> {
    let parts: Vec<String> = counters
        .entries()
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut lines = vec![format!(
        "final counters ({:.3}s): {}",
        elapsed.as_secs_f64(),
        parts.join(" ")
    )];
    for (out, stats) in &snap.outputs {
        let parts: Vec<String> = stats
            .iter()
            .filter(|(k, v)| *v != 0 && !GAUGES.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.push(format!("output {out}: {}", parts.join(" ")));
    }
    let lat = snap.latencies.summaries();
    if !lat.is_empty() {
        let l: Vec<String> = lat.iter().map(|s| s.line()).collect();
        lines.push(format!("response times: {}", l.join("; ")));
    }
    lines
}

/// The thread that logs [`delta_line`] every interval. Dropping it (or
/// [`PeriodicReport::stop`]) ends the thread.
pub struct PeriodicReport {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl PeriodicReport {
    pub fn spawn(registry: Arc<Registry>, interval: Duration) -> std::io::Result<PeriodicReport> {
        let (tx, rx) = bounded::<()>(0);
        let interval = interval.max(Duration::from_millis(100));
        let handle = thread::Builder::new()
            .name("wirebeat-metrics".into())
            .spawn(move || {
                let mut prev = registry.snapshot();
                let mut last = Instant::now();
                loop {
                    match rx.recv_timeout(interval) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let now = registry.snapshot();
                    let secs = last.elapsed().as_secs_f64();
                    last = Instant::now();
                    let secs = if secs < 10.0 {
                        format!("{secs:.1}")
                    } else {
                        format!("{secs:.0}")
                    };
                    match delta_line(&prev, &now) {
                        Some(line) => tracing::info!(
                            target: "metrics",
                            "non-zero metrics in the last {secs}s: {line}"
                        ),
                        None => tracing::info!(
                            target: "metrics",
                            "no metrics changed in the last {secs}s"
                        ),
                    }
                    prev = now;
                }
            })?;
        Ok(PeriodicReport {
            stop: Some(tx),
            handle: Some(handle),
        })
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for PeriodicReport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::OutputStats;

    #[test]
    fn only_changes_are_reported() {
        let r = Registry::new();
        let mut slot = r.counter_slot("worker-0");
        let lat = r.latency_slot();
        let out = r.output("file");
        let a = r.snapshot();
        assert_eq!(delta_line(&a, &a), None);
        slot.publish(&Counters {
            packets: 10,
            parse_errors: 1,
            ..Default::default()
        });
        OutputStats::add(&out.events_published, 4);
        OutputStats::add(&out.queue_events, 2);
        let mut l = crate::stats::Latencies::default();
        l.record("http", 1500);
        lat.merge(&mut l);
        let b = r.snapshot();
        let line = delta_line(&a, &b).unwrap();
        assert_eq!(
            line,
            "packets=+10 parse_errors=+1 output.file: events_published=+4 queue_events=2 \
             response times: http: n=1 p50=1.5ms p90=1.5ms p99=1.5ms max=1.5ms"
        );
        slot.publish(&Counters {
            packets: 12,
            parse_errors: 1,
            ..Default::default()
        });
        OutputStats::add(&out.queue_events, u64::MAX - 1); // back to 0
        let c = r.snapshot();
        assert_eq!(delta_line(&b, &c).unwrap(), "packets=+2");
        let fin = final_lines(&c.counters, &c, Duration::from_millis(1500));
        assert_eq!(fin[0], "final counters (1.500s): packets=12 parse_errors=1");
        assert_eq!(fin[1], "output file: events_published=4");
        assert!(fin[2].starts_with("response times: http: n=1"));
    }

    #[test]
    fn reporter_thread_stops_promptly() {
        let r = Registry::new();
        let rep = PeriodicReport::spawn(r, Duration::from_secs(3600)).unwrap();
        let t = Instant::now();
        rep.stop();
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
