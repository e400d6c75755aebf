//! Response-time histograms per protocol (hdrhistogram). Each worker records into its
//! own [`Latencies`] and merges them into its registry slot now and then; the
//! reporting thread adds the slots up.

use hdrhistogram::Histogram;

/// Highest recordable response time, in microseconds (one hour); longer ones are
/// recorded as this value.
const MAX_US: u64 = 3_600_000_000;
/// Two significant digits: 1% precision.
const SIGFIG: u8 = 2;

/// Response times in microseconds, one histogram per protocol.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    hists: Vec<(&'static str, Histogram<u64>)>,
}

/// Percentiles of one protocol's response times, in microseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    pub protocol: &'static str,
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

fn new_hist() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).ok()
}

impl Latencies {
    fn hist(&mut self, protocol: &'static str) -> Option<&mut Histogram<u64>> {
        let i = match self.hists.iter().position(|(p, _)| *p == protocol) {
            Some(i) => i,
            None => {
                self.hists.push((protocol, new_hist()?));
                self.hists.len() - 1
            }
        };
        Some(&mut self.hists[i].1)
    }

    /// Records one response time of `protocol`.
    pub fn record(&mut self, protocol: &'static str, micros: u64) {
        if let Some(h) = self.hist(protocol) {
            h.saturating_record(micros.min(MAX_US));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hists.iter().all(|(_, h)| h.is_empty())
    }

    /// Adds every histogram of `other` into `self`.
    pub fn add(&mut self, other: &Latencies) {
        for (p, h) in &other.hists {
            if h.is_empty() {
                continue;
            }
            if let Some(mine) = self.hist(p) {
                // Same bounds on both sides: addition cannot fail.
                let _ = mine.add(h);
            }
        }
    }

    /// Empties every histogram (keeping their allocations).
    pub fn reset(&mut self) {
        for (_, h) in self.hists.iter_mut() {
            h.reset();
        }
    }

    /// What was recorded since `earlier` (a previous copy of the same cumulative
    /// histograms).
    pub fn since(&self, earlier: &Latencies) -> Latencies {
        let mut out = self.clone();
        for (p, h) in &earlier.hists {
            if let Some(mine) = out.hists.iter_mut().find(|(q, _)| q == p)
                && mine.1.subtract(h).is_err()
            {
                mine.1.reset();
            }
        }
        out
    }

    /// Percentiles per protocol with at least one sample, sorted by protocol.
    pub fn summaries(&self) -> Vec<LatencySummary> {
        let mut out: Vec<LatencySummary> = self
            .hists
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(p, h)| LatencySummary {
                protocol: p,
                count: h.len(),
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            })
            .collect();
        out.sort_by_key(|s| s.protocol);
        out
    }
}

/// Microseconds as a short human duration (`850us`, `12.3ms`, `4.20s`).
pub fn human_micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

impl LatencySummary {
    /// `http: n=12 p50=1.2ms p90=3.0ms p99=9.9ms max=10.0ms`
    pub fn line(&self) -> String {
        format!(
            "{}: n={} p50={} p90={} p99={} max={}",
            self.protocol,
            self.count,
            human_micros(self.p50),
            human_micros(self.p90),
            human_micros(self.p99),
            human_micros(self.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_per_protocol() {
        let mut a = Latencies::default();
        for us in 1..=100 {
            a.record("http", us * 1000);
        }
        a.record("redis", 250);
        let s = a.summaries();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].protocol, "http");
        assert_eq!(s[0].count, 100);
        // 1% precision.
        assert!((49_500..=50_500).contains(&s[0].p50), "{:?}", s[0]);
        assert!((98_000..=100_000).contains(&s[0].p99), "{:?}", s[0]);
        assert!((99_000..=101_000).contains(&s[0].max), "{:?}", s[0]);
        assert_eq!(s[1].count, 1);
        assert_eq!(s[1].max, 250);
    }

    #[test]
    fn add_since_and_reset() {
        let mut total = Latencies::default();
        let mut w = Latencies::default();
        w.record("mysql", 10);
        total.add(&w);
        w.reset();
        assert!(w.is_empty());
        let before = total.clone();
        w.record("mysql", 20);
        w.record("pgsql", 30);
        total.add(&w);
        let delta = total.since(&before);
        let s = delta.summaries();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].protocol, s[0].count, s[0].max), ("mysql", 1, 20));
        assert_eq!((s[1].protocol, s[1].count), ("pgsql", 1));
        // Out-of-range values saturate instead of failing.
        total.record("http", u64::MAX);
        assert_eq!(total.summaries()[0].count, 1);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_micros(850), "850us");
        assert_eq!(human_micros(12_345), "12.3ms");
        assert_eq!(human_micros(4_200_000), "4.20s");
    }
}
