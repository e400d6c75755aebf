//! What the live view shows (`/api/summary`, `/api/topology`): per-protocol
//! transaction and error counts per second of capture time, the busiest, slowest
//! and most failing endpoints, and who calls whom. Each worker keeps its own
//! [`LiveAgg`] (no lock, no sharing: it is updated as transactions are published)
//! and hands a copy to the registry with its counters; readers of the endpoints
//! merge the copies. Memory is bounded: at most `max_endpoints` endpoints and
//! `max_edges` client/server pairs are tracked per worker, and what does not fit is
//! counted (`endpoints_dropped`, `edges_dropped`), never tracked.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

use crate::event::{ConnInfo, Status, Transaction};

/// Seconds of per-second counts kept.
pub const SECONDS_KEPT: usize = 600;
/// Endpoint texts are cut to this many bytes.
const MAX_ENDPOINT: usize = 120;

/// Bounds of one worker's aggregate.
#[derive(Clone, Copy, Debug)]
pub struct LiveLimits {
    pub max_endpoints: usize,
    pub max_edges: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            max_endpoints: 2000,
            max_edges: 10_000,
        }
    }
}

/// One protocol's totals and its last [`SECONDS_KEPT`] seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtoStat {
    pub transactions: u64,
    pub errors: u64,
    /// `(second of capture time, transactions, errors)`, oldest first.
    pub seconds: VecDeque<(u64, u64, u64)>,
}

impl ProtoStat {
    fn record(&mut self, sec: u64, error: bool) {
        self.transactions += 1;
        self.errors += error as u64;
        match self.seconds.iter_mut().rev().find(|s| s.0 == sec) {
            Some(s) => {
                s.1 += 1;
                s.2 += error as u64;
            }
            None => {
                // Out-of-order seconds are rare (transactions end in time order,
                // they start nearly so): keep the list sorted.
                let at = self.seconds.partition_point(|s| s.0 < sec);
                self.seconds.insert(at, (sec, 1, error as u64));
                while self.seconds.len() > SECONDS_KEPT {
                    self.seconds.pop_front();
                }
            }
        }
    }

    fn add(&mut self, o: &ProtoStat) {
        self.transactions += o.transactions;
        self.errors += o.errors;
        let mut by_sec: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for &(s, n, e) in self.seconds.iter().chain(&o.seconds) {
            let v = by_sec.entry(s).or_default();
            v.0 += n;
            v.1 += e;
        }
        self.seconds = by_sec.into_iter().map(|(s, (n, e))| (s, n, e)).collect();
        while self.seconds.len() > SECONDS_KEPT {
            self.seconds.pop_front();
        }
    }
}

/// One endpoint: an HTTP method and path, an SQL statement's shape, a Redis
/// command, a Thrift method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStat {
    pub transactions: u64,
    pub errors: u64,
    /// Sum and maximum of response times (ns), of transactions with a response.
    pub total_ns: u64,
    pub timed: u64,
    pub max_ns: u64,
}

/// Transactions between a client and a server over one protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeStat {
    pub transactions: u64,
    pub errors: u64,
    pub bytes: u64,
}

/// One worker's view (or, merged, everyone's).
#[derive(Clone, Debug, Default)]
pub struct LiveAgg {
    limits: LiveLimits,
    pub protocols: BTreeMap<&'static str, ProtoStat>,
    pub endpoints: HashMap<(&'static str, String), EndpointStat>,
    pub edges: HashMap<(IpAddr, IpAddr, &'static str), EdgeStat>,
    /// Transactions whose endpoint or edge was not tracked: the bound was reached.
    pub endpoints_dropped: u64,
    pub edges_dropped: u64,
    /// Shipper names of the hosts of tracked edges (`save_topology`).
    pub names: HashMap<IpAddr, String>,
}

/// The shape of an SQL statement: literals replaced by `?`, spaces folded, cut.
pub fn statement_shape(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len().min(MAX_ENDPOINT));
    let mut chars = sql.chars().peekable();
    let mut last_space = true;
    while let Some(c) = chars.next() {
        if out.len() >= MAX_ENDPOINT {
            break;
        }
        match c {
            '\'' | '"' => {
                // A quoted literal (doubled quotes inside it).
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                out.push('?');
                last_space = false;
            }
            '0'..='9' if !out.ends_with(|p: char| p.is_alphanumeric() || p == '_') => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
                out.push('?');
                last_space = false;
            }
            c if c.is_whitespace() => {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
    }
    out.trim_end().to_string()
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_ENDPOINT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The endpoint a transaction belongs to.
fn endpoint(tx: &Transaction) -> String {
    match tx.kind {
        "mysql" | "pgsql" => statement_shape(tx.query.as_deref().unwrap_or("")),
        "http" => cut(tx.query.as_deref().unwrap_or("")),
        _ => cut(tx.method.as_deref().unwrap_or("")),
    }
}

impl LiveAgg {
    pub fn new(limits: LiveLimits) -> LiveAgg {
        LiveAgg {
            limits,
            ..Default::default()
        }
    }

    /// Counts one published transaction. `names` gives the shipper names of the
    /// two ends (the topology map); it is asked when an edge is new, then again
    /// at its 2nd, 4th, 8th, ... transaction, as names can arrive later.
    pub fn record(
        &mut self,
        conn: &ConnInfo,
        tx: &Transaction,
        names: impl FnOnce() -> (Option<String>, Option<String>),
    ) {
        let error = tx.status != Status::Ok;
        let sec = tx.start.0 / 1_000_000_000;
        self.protocols
            .entry(tx.kind)
            .or_default()
            .record(sec, error);
        let took = tx.end.map(|e| e.since(tx.start));
        let key = (tx.kind, endpoint(tx));
        let full = self.endpoints.len() >= self.limits.max_endpoints;
        match self.endpoints.get_mut(&key) {
            Some(e) => bump(e, error, took),
            None if full => self.endpoints_dropped += 1,
            None => bump(self.endpoints.entry(key).or_default(), error, took),
        }
        let key = (conn.client_ip, conn.server_ip, tx.kind);
        let bytes = tx.request_bytes.saturating_add(tx.response_bytes);
        let full = self.edges.len() >= self.limits.max_edges;
        let edge = match self.edges.get_mut(&key) {
            Some(e) => Some(e),
            None if full => {
                self.edges_dropped += 1;
                None
            }
            None => Some(self.edges.entry(key).or_default()),
        };
        if let Some(e) = edge {
            e.transactions += 1;
            e.errors += error as u64;
            e.bytes = e.bytes.saturating_add(bytes);
            if e.transactions.is_power_of_two() {
                let (c, s) = names();
                for (ip, n) in [(conn.client_ip, c), (conn.server_ip, s)] {
                    if let Some(n) = n {
                        self.names.insert(ip, n);
                    }
                }
            }
        }
    }

    /// Adds another worker's view (no bound applies to the merged one).
    pub fn add(&mut self, o: &LiveAgg) {
        for (p, s) in &o.protocols {
            self.protocols.entry(p).or_default().add(s);
        }
        for (k, s) in &o.endpoints {
            let e = self.endpoints.entry(k.clone()).or_default();
            e.transactions += s.transactions;
            e.errors += s.errors;
            e.total_ns = e.total_ns.saturating_add(s.total_ns);
            e.timed += s.timed;
            e.max_ns = e.max_ns.max(s.max_ns);
        }
        for (k, s) in &o.edges {
            let e = self.edges.entry(*k).or_default();
            e.transactions += s.transactions;
            e.errors += s.errors;
            e.bytes = e.bytes.saturating_add(s.bytes);
        }
        self.endpoints_dropped += o.endpoints_dropped;
        self.edges_dropped += o.edges_dropped;
        for (ip, n) in &o.names {
            self.names.insert(*ip, n.clone());
        }
    }
}

fn bump(e: &mut EndpointStat, error: bool, took: Option<u64>) {
    e.transactions += 1;
    e.errors += error as u64;
    if let Some(ns) = took {
        e.total_ns = e.total_ns.saturating_add(ns);
        e.timed += 1;
        e.max_ns = e.max_ns.max(ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Transport;
    use crate::time::Ts;

    fn tx(kind: &'static str, query: &str, start_s: u64, ms: u64, ok: bool) -> Transaction {
        let mut t = Transaction::new(kind, Ts::from_secs_nanos(start_s, 0));
        t.query = Some(query.into());
        t.method = Some(query.split(' ').next().unwrap().into());
        t.end = Some(Ts::from_secs_nanos(start_s, ms * 1_000_000));
        t.request_bytes = 10;
        t.response_bytes = 5;
        if !ok {
            t.status = Status::Error;
        }
        t
    }

    fn conn(c: &str, s: &str) -> ConnInfo {
        ConnInfo::new(
            c.parse().unwrap(),
            40000,
            s.parse().unwrap(),
            80,
            Transport::Tcp,
        )
    }

    impl LiveAgg {
        fn record_plain(&mut self, c: &ConnInfo, t: &Transaction) {
            self.record(c, t, || (None, None));
        }
    }

    #[test]
    fn hosts_are_named_from_the_topology_map() {
        let mut a = LiveAgg::new(LiveLimits::default());
        let c = conn("10.0.0.1", "10.0.0.9");
        let mut asked = 0;
        for _ in 0..5 {
            a.record(&c, &tx("http", "GET /", 1, 1, true), || {
                asked += 1;
                (None, Some("db-1".into()))
            });
        }
        assert_eq!(asked, 3, "at the 1st, 2nd and 4th transaction");
        assert_eq!(a.names.get(&c.server_ip).map(String::as_str), Some("db-1"));
        assert!(!a.names.contains_key(&c.client_ip));
        let mut all = LiveAgg::default();
        all.add(&a);
        assert_eq!(all.names.len(), 1);
        let t: serde_json::Value =
            serde_json::from_str(&crate::stats::http::topology_json(&all)).unwrap();
        let names: Vec<_> = t["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["id"].as_str().unwrap(), n["name"].as_str()))
            .collect();
        assert_eq!(names, [("10.0.0.1", None), ("10.0.0.9", Some("db-1"))]);
    }

    #[test]
    fn statement_shapes_hide_literals() {
        assert_eq!(
            statement_shape("SELECT * FROM t WHERE id = 42 AND name = 'o''k'"),
            "SELECT * FROM t WHERE id = ? AND name = ?"
        );
        assert_eq!(
            statement_shape("select  a1,\n b from t2 limit 10"),
            "select a1, b from t2 limit ?"
        );
        assert!(statement_shape(&"x".repeat(500)).len() <= MAX_ENDPOINT);
    }

    #[test]
    fn counts_merge_and_bounds_are_counted() {
        let limits = LiveLimits {
            max_endpoints: 2,
            max_edges: 1,
        };
        let mut a = LiveAgg::new(limits);
        a.record_plain(
            &conn("10.0.0.1", "10.0.0.9"),
            &tx("http", "GET /a", 100, 5, true),
        );
        a.record_plain(
            &conn("10.0.0.1", "10.0.0.9"),
            &tx("http", "GET /a", 101, 15, false),
        );
        a.record_plain(
            &conn("10.0.0.2", "10.0.0.9"),
            &tx("http", "GET /b", 101, 1, true),
        );
        a.record_plain(
            &conn("10.0.0.2", "10.0.0.9"),
            &tx("http", "GET /c", 99, 1, true),
        );
        let h = &a.protocols["http"];
        assert_eq!((h.transactions, h.errors), (4, 1));
        assert_eq!(
            h.seconds.iter().copied().collect::<Vec<_>>(),
            vec![(99, 1, 0), (100, 1, 0), (101, 2, 1)]
        );
        assert_eq!(a.endpoints.len(), 2);
        assert_eq!(a.endpoints_dropped, 1, "GET /c did not fit");
        let e = &a.endpoints[&("http", "GET /a".to_string())];
        assert_eq!(
            (e.transactions, e.errors, e.timed, e.max_ns),
            (2, 1, 2, 15_000_000)
        );
        assert_eq!(a.edges.len(), 1);
        assert_eq!(a.edges_dropped, 2);
        let mut b = LiveAgg::new(limits);
        b.record_plain(
            &conn("10.0.0.3", "10.0.0.9"),
            &tx("mysql", "SELECT 1", 101, 2, true),
        );
        let mut all = LiveAgg::default();
        all.add(&a);
        all.add(&b);
        assert_eq!(all.protocols["mysql"].transactions, 1);
        assert_eq!(all.protocols["http"].seconds.len(), 3);
        assert_eq!(all.edges.len(), 2);
        assert_eq!((all.endpoints_dropped, all.edges_dropped), (1, 2));
        assert!(
            all.endpoints
                .contains_key(&("mysql", "SELECT ?".to_string()))
        );
    }
}
