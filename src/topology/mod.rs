//! Topology: which shipper sees which addresses (`save_topology`). Every shipper
//! publishes its name and IP addresses to a shared store (Redis or Elasticsearch)
//! every `shipper.refresh_topology_freq`, with an expiry of `shipper.topology_expire`,
//! and reads everyone's entries back to stamp events with the shipper names of both
//! ends (`topology.client_server`, `topology.server`). With `shipper.ignore_outgoing`,
//! a transaction that this host started towards a server that another shipper also
//! sees is dropped, so that the other shipper reports it alone.
//!
//! The stores themselves belong to their outputs (`output/redis/topology.rs`,
//! `output/elasticsearch/topology.rs`); this module only knows the [`TopologyStore`]
//! trait, so events can be stamped without depending on any output.
//!
//! The map is rebuilt by one thread and read by every worker without a lock on the
//! per-event path: workers hold their own `Arc` of the current map and only take the
//! (uncontended) read lock when the generation counter says a new map is out.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A shared place where shippers publish and read topology entries.
pub trait TopologyStore: Send {
    /// The output that provides the store (`redis`, `elasticsearch`).
    fn name(&self) -> &'static str;
    /// Publishes this shipper's `name` and addresses, valid for `expire`.
    fn publish(&mut self, name: &str, ips: &[IpAddr], expire: Duration) -> io::Result<()>;
    /// Every shipper's entry that has not expired: `(name, addresses)`.
    fn fetch(&mut self) -> io::Result<Vec<(String, Vec<IpAddr>)>>;
}

/// Address → shipper name, as known at one moment.
#[derive(Debug, Default)]
pub struct TopologyMap {
    own_name: Arc<str>,
    own: HashSet<IpAddr>,
    by_ip: HashMap<IpAddr, Arc<str>>,
}

impl TopologyMap {
    /// This shipper (`own_name`, `own_ips`) and everyone's published entries. An
    /// address claimed by several shippers goes to this one if it is ours, else to
    /// the smallest name (so that every shipper resolves it alike).
    pub fn new(own_name: &str, own_ips: &[IpAddr], entries: &[(String, Vec<IpAddr>)]) -> Self {
        let own_name: Arc<str> = Arc::from(own_name);
        let own: HashSet<IpAddr> = own_ips.iter().copied().collect();
        let mut by_ip: HashMap<IpAddr, Arc<str>> = HashMap::new();
        for (name, ips) in entries {
            let name: Arc<str> = if **name == *own_name {
                Arc::clone(&own_name)
            } else {
                Arc::from(name.as_str())
            };
            for ip in ips {
                if own.contains(ip) || ip.is_loopback() {
                    continue;
                }
                match by_ip.get(ip) {
                    Some(prev) if **prev <= *name => {}
                    _ => {
                        by_ip.insert(*ip, Arc::clone(&name));
                    }
                }
            }
        }
        TopologyMap {
            own_name,
            own,
            by_ip,
        }
    }

    /// Whether `ip` is this host (loopback or one of its addresses).
    pub fn is_own(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.own.contains(&ip)
    }

    /// The shipper that has `ip`, if known.
    pub fn name_of(&self, ip: IpAddr) -> Option<&str> {
        if self.is_own(ip) {
            return Some(&self.own_name);
        }
        self.by_ip.get(&ip).map(|n| &**n)
    }

    /// `ignore_outgoing`: this host is the client and another shipper has the server.
    pub fn is_outgoing_to_peer(&self, client: IpAddr, server: IpAddr) -> bool {
        self.is_own(client)
            && !self.is_own(server)
            && self
                .by_ip
                .get(&server)
                .is_some_and(|n| **n != *self.own_name)
    }

    /// Shippers other than this one that have entries.
    pub fn peers(&self) -> usize {
        self.by_ip
            .values()
            .filter(|n| ***n != *self.own_name)
            .map(|n| &**n)
            .collect::<HashSet<&str>>()
            .len()
    }
}

/// The current map, replaced as a whole by the topology thread.
#[derive(Debug, Default)]
pub struct Topology {
    generation: AtomicU64,
    map: RwLock<Arc<TopologyMap>>,
}

impl Topology {
    pub fn new(map: TopologyMap) -> Arc<Topology> {
        Arc::new(Topology {
            generation: AtomicU64::new(0),
            map: RwLock::new(Arc::new(map)),
        })
    }

    /// Publishes a new map to every view.
    pub fn update(&self, map: TopologyMap) {
        let map = Arc::new(map);
        match self.map.write() {
            Ok(mut m) => *m = map,
            Err(p) => *p.into_inner() = map,
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn current(&self) -> Arc<TopologyMap> {
        match self.map.read() {
            Ok(m) => Arc::clone(&m),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }
}

/// One worker's view of the topology: its own copy of the current map, refreshed
/// when the generation changes.
pub struct TopologyView {
    shared: Arc<Topology>,
    cache: RefCell<(u64, Arc<TopologyMap>)>,
}

impl TopologyView {
    pub fn new(shared: Arc<Topology>) -> TopologyView {
        let g = shared.generation.load(Ordering::Acquire);
        let m = shared.current();
        TopologyView {
            shared,
            cache: RefCell::new((g, m)),
        }
    }

    /// Runs `f` on the current map. Per call: one atomic load; the lock is taken
    /// only after an update.
    pub fn with<R>(&self, f: impl FnOnce(&TopologyMap) -> R) -> R {
        let g = self.shared.generation.load(Ordering::Acquire);
        let mut cache = self.cache.borrow_mut();
        if cache.0 != g {
            *cache = (g, self.shared.current());
        }
        f(&cache.1)
    }
}

impl Clone for TopologyView {
    fn clone(&self) -> Self {
        TopologyView::new(Arc::clone(&self.shared))
    }
}

impl std::fmt::Debug for TopologyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyView")
            .field(
                "generation",
                &self.shared.generation.load(Ordering::Relaxed),
            )
            .finish()
    }
}

/// This host's interface addresses (loopback included), sorted.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(ifs) => ifs.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!(target: "topology", "cannot list interface addresses: {e}");
            Vec::new()
        }
    };
    v.sort();
    v.dedup();
    v
}

/// The last entries read from one store, and when.
struct Fetched {
    at: Instant,
    entries: Vec<(String, Vec<IpAddr>)>,
}

/// The topology thread: publishes and reads every `refresh`, updates the map.
pub struct TopologyService {
    shared: Arc<Topology>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

struct Round {
    name: String,
    stores: Vec<Box<dyn TopologyStore>>,
    fetched: Vec<Option<Fetched>>,
    failing: Vec<bool>,
    expire: Duration,
    shared: Arc<Topology>,
}

impl Round {
    fn run(&mut self) {
        let own = local_addresses();
        let published: Vec<IpAddr> = own.iter().copied().filter(|ip| !ip.is_loopback()).collect();
        for (i, s) in self.stores.iter_mut().enumerate() {
            let r = s
                .publish(&self.name, &published, self.expire)
                .and_then(|()| s.fetch());
            match r {
                Ok(entries) => {
                    if self.failing[i] {
                        tracing::info!(target: "topology", "{}: topology store reachable again", s.name());
                    }
                    self.failing[i] = false;
                    self.fetched[i] = Some(Fetched {
                        at: Instant::now(),
                        entries,
                    });
                }
                Err(e) => {
                    if !self.failing[i] {
                        tracing::warn!(target: "topology", "{}: cannot publish or read the topology: {e}", s.name());
                    }
                    self.failing[i] = true;
                }
            }
        }
        // Entries not refreshed within the expiry are stale: ignored.
        let mut all: Vec<(String, Vec<IpAddr>)> = Vec::new();
        for f in self.fetched.iter().flatten() {
            if f.at.elapsed() <= self.expire {
                all.extend(f.entries.iter().cloned());
            }
        }
        let map = TopologyMap::new(&self.name, &own, &all);
        tracing::debug!(target: "topology", "{} address(es) of {} other shipper(s)", map.by_ip.len(), map.peers());
        self.shared.update(map);
    }
}

impl TopologyService {
    /// Runs one round now (so that the first events are stamped), then every
    /// `refresh` on a thread.
    pub fn start(
        name: String,
        stores: Vec<Box<dyn TopologyStore>>,
        refresh: Duration,
        expire: Duration,
    ) -> io::Result<TopologyService> {
        let shared = Topology::new(TopologyMap::new(&name, &local_addresses(), &[]));
        let n = stores.len();
        let mut round = Round {
            name,
            stores,
            fetched: (0..n).map(|_| None).collect(),
            failing: vec![false; n],
            expire,
            shared: Arc::clone(&shared),
        };
        round.run();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = Arc::clone(&stop);
        let refresh = refresh.max(Duration::from_millis(100));
        let handle = std::thread::Builder::new()
            .name("wirebeat-topology".into())
            .spawn(move || {
                let (lock, cv) = &*stop2;
                let mut stopped = match lock.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                loop {
                    // A refresh beyond the clock's range (a configuration of
                    // absurd size) means "never again": wait for the stop only.
                    let deadline = Instant::now().checked_add(refresh);
                    while !*stopped {
                        let left = match deadline {
                            Some(d) => d.saturating_duration_since(Instant::now()),
                            None => Duration::from_secs(3600),
                        };
                        if left.is_zero() {
                            break;
                        }
                        stopped = match cv.wait_timeout(stopped, left) {
                            Ok((g, _)) => g,
                            Err(p) => p.into_inner().0,
                        };
                    }
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    round.run();
                    stopped = match lock.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                }
            })?;
        Ok(TopologyService {
            shared,
            stop,
            handle: Some(handle),
        })
    }

    /// A view for one worker's encoder.
    pub fn view(&self) -> TopologyView {
        TopologyView::new(Arc::clone(&self.shared))
    }
}

impl Drop for TopologyService {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        match lock.lock() {
            Ok(mut g) => *g = true,
            Err(p) => *p.into_inner() = true,
        }
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn entries(v: &[(&str, &[&str])]) -> Vec<(String, Vec<IpAddr>)> {
        v.iter()
            .map(|(n, ips)| (n.to_string(), ips.iter().map(|s| ip(s)).collect()))
            .collect()
    }

    #[test]
    fn map_resolves_own_peers_and_conflicts() {
        let m = TopologyMap::new(
            "me",
            &[ip("10.0.0.1"), ip("172.17.0.1")],
            &entries(&[
                ("zed", &["10.0.0.9", "172.17.0.1", "10.0.0.5"]),
                ("bob", &["10.0.0.5", "127.0.0.1"]),
                ("me", &["10.0.0.1"]),
            ]),
        );
        assert_eq!(m.name_of(ip("10.0.0.1")), Some("me"));
        assert_eq!(m.name_of(ip("127.0.0.1")), Some("me"));
        assert_eq!(m.name_of(ip("::1")), Some("me"));
        // Ours even though zed claims it too.
        assert_eq!(m.name_of(ip("172.17.0.1")), Some("me"));
        assert_eq!(m.name_of(ip("10.0.0.9")), Some("zed"));
        // Claimed by two others: the smallest name, whatever the order.
        assert_eq!(m.name_of(ip("10.0.0.5")), Some("bob"));
        assert_eq!(m.name_of(ip("10.9.9.9")), None);
        assert_eq!(m.peers(), 2);
    }

    #[test]
    fn outgoing_to_a_peer() {
        let m = TopologyMap::new(
            "me",
            &[ip("10.0.0.1")],
            &entries(&[("db", &["10.0.0.2"]), ("me", &["10.0.0.3"])]),
        );
        // We are the client, db sees the server: db reports it.
        assert!(m.is_outgoing_to_peer(ip("10.0.0.1"), ip("10.0.0.2")));
        // Not our client, unknown server, or a server that is us: kept.
        assert!(!m.is_outgoing_to_peer(ip("10.0.0.7"), ip("10.0.0.2")));
        assert!(!m.is_outgoing_to_peer(ip("10.0.0.1"), ip("10.0.0.8")));
        assert!(!m.is_outgoing_to_peer(ip("10.0.0.1"), ip("127.0.0.1")));
        assert!(!m.is_outgoing_to_peer(ip("10.0.0.1"), ip("10.0.0.3")));
    }

    #[test]
    fn views_follow_updates_without_sharing_state() {
        let t = Topology::new(TopologyMap::new("me", &[], &[]));
        let a = TopologyView::new(Arc::clone(&t));
        let b = a.clone();
        assert_eq!(
            a.with(|m| m.name_of(ip("10.1.1.1")).map(String::from)),
            None
        );
        t.update(TopologyMap::new(
            "me",
            &[],
            &entries(&[("peer", &["10.1.1.1"])]),
        ));
        assert_eq!(
            a.with(|m| m.name_of(ip("10.1.1.1")).map(String::from)),
            Some("peer".into())
        );
        assert_eq!(
            b.with(|m| m.name_of(ip("10.1.1.1")).map(String::from)),
            Some("peer".into())
        );
    }

    struct MemStore {
        db: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
        fail: Arc<std::sync::atomic::AtomicBool>,
    }

    impl TopologyStore for MemStore {
        fn name(&self) -> &'static str {
            "mem"
        }
        fn publish(&mut self, name: &str, ips: &[IpAddr], _: Duration) -> io::Result<()> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(io::Error::other("down"));
            }
            self.db.lock().unwrap().insert(name.into(), ips.to_vec());
            Ok(())
        }
        fn fetch(&mut self) -> io::Result<Vec<(String, Vec<IpAddr>)>> {
            Ok(self
                .db
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
    }

    #[test]
    fn huge_refresh_interval_neither_panics_nor_delays_stop() {
        let store = MemStore {
            db: Arc::default(),
            fail: Arc::default(),
        };
        let svc = TopologyService::start(
            "me".into(),
            vec![Box::new(store)],
            Duration::from_secs(u64::MAX),
            Duration::from_secs(u64::MAX),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let h = svc.handle.as_ref().map(|h| h.is_finished());
        assert_eq!(h, Some(false), "the topology thread died");
        drop(svc);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn service_publishes_reads_and_forgets_stale_entries() {
        let db = Arc::new(Mutex::new(HashMap::new()));
        db.lock()
            .unwrap()
            .insert("peer".to_string(), vec![ip("10.200.0.1")]);
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = MemStore {
            db: Arc::clone(&db),
            fail: Arc::clone(&fail),
        };
        let svc = TopologyService::start(
            "me".into(),
            vec![Box::new(store)],
            Duration::from_millis(100),
            Duration::from_millis(300),
        )
        .unwrap();
        // The first round ran before start returned.
        assert!(db.lock().unwrap().contains_key("me"));
        let v = svc.view();
        assert_eq!(
            v.with(|m| m.name_of(ip("10.200.0.1")).map(String::from)),
            Some("peer".into())
        );
        // The store fails: after the expiry the old entries no longer count.
        fail.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        while v.with(|m| m.name_of(ip("10.200.0.1")).is_some()) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "entries never expired"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(svc);
    }
}
