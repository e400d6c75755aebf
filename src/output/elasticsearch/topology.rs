//! Topology entries in Elasticsearch: one document per shipper (id = shipper name)
//! in the `.wirebeat-topology` index, `{name, ips, @timestamp, expires}` with
//! `expires` in milliseconds since the epoch. Reading returns every entry whose
//! `expires` is still ahead.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::client::Client;
use super::template::Version;
use crate::config::ElasticsearchOutput;
use crate::topology::TopologyStore;

/// The index topology entries live in.
pub const TOPOLOGY_INDEX: &str = ".wirebeat-topology";

/// The most entries read back at once.
const MAX_ENTRIES: usize = 10_000;

pub struct EsTopology {
    client: Client,
    version: Option<Version>,
    index: String,
}

/// The topology store of an Elasticsearch output (`save_topology: true`).
pub fn topology_store(cfg: &ElasticsearchOutput) -> Result<Box<dyn TopologyStore>, String> {
    Ok(Box::new(EsTopology::new(cfg, TOPOLOGY_INDEX)?))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl EsTopology {
    pub fn new(cfg: &ElasticsearchOutput, index: &str) -> Result<EsTopology, String> {
        Ok(EsTopology {
            client: Client::new(cfg)?,
            version: None,
            index: index.to_string(),
        })
    }

    fn version(&mut self) -> io::Result<Version> {
        if let Some(v) = self.version {
            return Ok(v);
        }
        let v = super::cluster_version(&mut self.client).map_err(io::Error::other)?;
        self.version = Some(v);
        Ok(v)
    }
}

/// Percent-encodes a shipper name for a URL path.
fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl TopologyStore for EsTopology {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    fn publish(&mut self, name: &str, ips: &[IpAddr], expire: Duration) -> io::Result<()> {
        let v = self.version()?;
        let now = now_ms();
        let body = json!({
            "name": name,
            "ips": ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "@timestamp": now,
            "expires": now.saturating_add(expire.as_millis() as u64),
        })
        .to_string();
        let kind = if v.0 < 7 { "doc" } else { "_doc" };
        let path = format!("/{}/{kind}/{}?refresh=true", self.index, path_escape(name));
        let rep = self
            .client
            .request("PUT", &path, Some((body.as_bytes(), "application/json")))?;
        if !(200..300).contains(&rep.status) {
            return Err(io::Error::other(format!(
                "topology: PUT {path} answered {}",
                rep.status
            )));
        }
        Ok(())
    }

    fn fetch(&mut self) -> io::Result<Vec<(String, Vec<IpAddr>)>> {
        self.version()?;
        let q = json!({"size": MAX_ENTRIES, "query": {"match_all": {}}}).to_string();
        let path = format!("/{}/_search", self.index);
        let rep = self
            .client
            .request("POST", &path, Some((q.as_bytes(), "application/json")))?;
        if rep.status == 404 {
            return Ok(Vec::new()); // nobody published yet
        }
        if rep.status != 200 {
            return Err(io::Error::other(format!(
                "topology: POST {path} answered {}",
                rep.status
            )));
        }
        let v: Value = serde_json::from_slice(&rep.body)
            .map_err(|e| invalid(format!("topology: unreadable search response: {e}")))?;
        let now = now_ms();
        let mut out = Vec::new();
        let hits = v
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for h in hits.iter().take(MAX_ENTRIES) {
            let Some(src) = h.get("_source") else {
                continue;
            };
            let Some(name) = src.get("name").and_then(Value::as_str) else {
                continue;
            };
            let expires = src.get("expires").and_then(Value::as_u64).unwrap_or(0);
            if expires <= now {
                continue;
            }
            let ips: Vec<IpAddr> = src
                .get("ips")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|i| i.as_str()?.parse().ok()).collect())
                .unwrap_or_default();
            out.push((name.to_string(), ips));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        assert_eq!(path_escape("web-1.dc"), "web-1.dc");
        assert_eq!(path_escape("a b/c"), "a%20b%2Fc");
    }
}
