//! Topology (`save_topology`) from the configuration: the stores of the outputs that
//! have it, and the service that publishes this shipper and reads everyone's entries
//! (see [`crate::topology`]).

use crate::config::Config;
use crate::topology::{TopologyService, TopologyStore};

/// The topology service of the configuration (`save_topology` on an output), started;
/// `None` when no output has `save_topology`.
pub(super) fn start(cfg: &Config) -> Result<Option<TopologyService>, String> {
    let stores = stores(cfg)?;
    let s = &cfg.shipper;
    if stores.is_empty() {
        if s.ignore_outgoing {
            tracing::warn!(target: "topology", "shipper.ignore_outgoing needs an output with save_topology: nothing is ignored");
        }
        return Ok(None);
    }
    if s.topology_expire <= s.refresh_topology_freq {
        tracing::warn!(target: "topology", "shipper.topology_expire ({:?}) should be longer than shipper.refresh_topology_freq ({:?})", s.topology_expire, s.refresh_topology_freq);
    }
    TopologyService::start(
        s.name.clone(),
        stores,
        s.refresh_topology_freq,
        s.topology_expire,
    )
    .map(Some)
    .map_err(|e| format!("cannot start the topology thread: {e}"))
}

/// The topology stores of every output with `save_topology`.
fn stores(cfg: &Config) -> Result<Vec<Box<dyn TopologyStore>>, String> {
    let mut v: Vec<Box<dyn TopologyStore>> = Vec::new();
    if let Some(r) = cfg
        .output
        .redis
        .as_ref()
        .filter(|r| r.enabled && r.save_topology)
    {
        if r.db_topology == r.db {
            tracing::warn!(target: "topology", "output.redis.db_topology ({}) is the events' db: use another database", r.db);
        }
        v.push(Box::new(crate::output::redis::RedisTopologyStore::new(r)?));
    }
    if let Some(es) = cfg
        .output
        .elasticsearch
        .as_ref()
        .filter(|e| e.enabled && e.save_topology)
    {
        v.push(crate::output::elasticsearch::topology_store(es)?);
    }
    Ok(v)
}
