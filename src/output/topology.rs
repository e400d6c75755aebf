//! Topology: which shipper sees which addresses (`save_topology`). Every shipper
//! publishes its name and IP addresses to a shared store (Redis or Elasticsearch)
//! every `shipper.refresh_topology_freq`, with an expiry of `shipper.topology_expire`,
//! and reads everyone's entries back to stamp events with the shipper names of both
//! ends.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

/// A shared place where shippers publish and read topology entries.
pub trait TopologyStore: Send {
    /// The output that provides the store (`redis`, `elasticsearch`).
    fn name(&self) -> &'static str;
    /// Publishes this shipper's `name` and addresses, valid for `expire`.
    fn publish(&mut self, name: &str, ips: &[IpAddr], expire: Duration) -> io::Result<()>;
    /// Every shipper's entry that has not expired: `(name, addresses)`.
    fn fetch(&mut self) -> io::Result<Vec<(String, Vec<IpAddr>)>>;
}
