//! The topology store in Redis, in Packetbeat 1.x's layout so that both can share a
//! server: in database `db_topology`, one hash per shipper, named after it, whose
//! field `ipaddrs` holds the comma-joined addresses, expiring after
//! `topology_expire`. Reading lists every key (`SCAN`) and its `ipaddrs`.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Endpoint;
use super::resp::{Conn, Reply, encode_command};
use crate::config;
use crate::topology::TopologyStore;

/// Keys asked for per `SCAN` round trip.
const SCAN_COUNT: &[u8] = b"200";

pub struct RedisTopologyStore {
    endpoint: Endpoint,
    db: u32,
    /// Bytes of names and addresses read per fetch at most.
    max_bytes: usize,
    /// Wall time one fetch may take at most (`output.redis.timeout`): a server that
    /// answers slowly and never ends its scan cannot hold the topology thread, and
    /// with it the shutdown, for longer.
    fetch_time: Duration,
    conn: Option<Conn>,
}

impl RedisTopologyStore {
    pub fn new(cfg: &config::RedisOutput) -> Result<RedisTopologyStore, String> {
        Ok(RedisTopologyStore {
            endpoint: Endpoint::new(cfg)?,
            db: cfg.db_topology,
            max_bytes: cfg.max_reply_bytes,
            fetch_time: cfg.timeout,
            conn: None,
        })
    }

    /// Runs `f` on a connection, dropping the connection when it fails so that the
    /// next call opens a new one.
    fn with_conn<T>(&mut self, f: impl FnOnce(&mut Conn) -> io::Result<T>) -> io::Result<T> {
        if self.conn.is_none() {
            self.conn = Some(self.endpoint.connect(self.db)?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
        };
        let r = f(conn);
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

fn server_err(e: String) -> io::Error {
    io::Error::other(format!("server error: {e}"))
}

impl TopologyStore for RedisTopologyStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn publish(&mut self, name: &str, ips: &[IpAddr], expire: Duration) -> io::Result<()> {
        let joined = ips
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let ms = expire.as_millis().max(1).to_string();
        let mut buf = Vec::new();
        encode_command(&mut buf, &[b"MULTI"]);
        encode_command(
            &mut buf,
            &[b"HSET", name.as_bytes(), b"ipaddrs", joined.as_bytes()],
        );
        encode_command(&mut buf, &[b"PEXPIRE", name.as_bytes(), ms.as_bytes()]);
        encode_command(&mut buf, &[b"EXEC"]);
        self.with_conn(|c| {
            c.send(&buf)?;
            let mut first_err = None;
            for _ in 0..4 {
                if let Reply::Error(e) = c.read_reply()? {
                    first_err.get_or_insert(e);
                }
            }
            match first_err {
                Some(e) => Err(server_err(e)),
                None => Ok(()),
            }
        })
    }

    fn fetch(&mut self) -> io::Result<Vec<(String, Vec<IpAddr>)>> {
        let max_bytes = self.max_bytes;
        let fetch_time = self.fetch_time;
        let started = Instant::now();
        self.with_conn(|c| {
            let mut out = Vec::new();
            let mut cursor = b"0".to_vec();
            let mut used = 0usize;
            loop {
                let reply = c.call(&[b"SCAN", &cursor, b"COUNT", SCAN_COUNT])?;
                let (next, keys) = match reply {
                    Reply::Array(Some(mut v)) if v.len() == 2 => {
                        let keys = v.pop();
                        let next = v.pop();
                        match (next, keys) {
                            (Some(Reply::Bulk(Some(n))), Some(Reply::Array(Some(k)))) => (n, k),
                            _ => return Err(io::Error::other("malformed SCAN reply")),
                        }
                    }
                    Reply::Error(e) => return Err(server_err(e)),
                    _ => return Err(io::Error::other("malformed SCAN reply")),
                };
                // Every round trip counts, so a server that never ends the scan
                // cannot keep the topology thread busy forever.
                used = used.saturating_add(16 + next.len());
                if used > max_bytes {
                    tracing::warn!(target: "topology", "redis: topology scan exceeds output.redis.max_reply_bytes ({max_bytes}); the rest is ignored");
                    return Ok(out);
                }
                let keys: Vec<Vec<u8>> = keys
                    .into_iter()
                    .filter_map(|k| match k {
                        Reply::Bulk(Some(k)) => Some(k),
                        _ => None,
                    })
                    .collect();
                if !keys.is_empty() {
                    let mut buf = Vec::new();
                    for k in &keys {
                        encode_command(&mut buf, &[b"HGET", k, b"ipaddrs"]);
                    }
                    c.send(&buf)?;
                    for k in keys {
                        // Other kinds of keys (WRONGTYPE) and hashes without the
                        // field are not shipper entries: skipped.
                        if let Reply::Bulk(Some(v)) = c.read_reply()? {
                            used = used.saturating_add(k.len() + v.len());
                            if used > max_bytes {
                                tracing::warn!(target: "topology", "redis: topology entries exceed output.redis.max_reply_bytes ({max_bytes}); the rest is ignored");
                                return Ok(out);
                            }
                            out.push((String::from_utf8_lossy(&k).into_owned(), parse_ips(&v)));
                        }
                    }
                }
                if next == b"0" {
                    return Ok(out);
                }
                if started.elapsed() > fetch_time {
                    tracing::warn!(target: "topology", "redis: topology scan takes longer than output.redis.timeout ({fetch_time:?}); the rest is ignored");
                    return Ok(out);
                }
                cursor = next;
            }
        })
    }
}

/// The addresses of a comma-separated list; anything else is skipped.
pub fn parse_ips(v: &[u8]) -> Vec<IpAddr> {
    String::from_utf8_lossy(v)
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    #[test]
    fn endless_slow_scan_is_cut_by_the_timeout() {
        // A server that answers every SCAN late and with a cursor that never ends.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let argc: usize = line.trim()[1..].parse().unwrap_or(0);
                let mut first = Vec::new();
                for i in 0..argc {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let len: usize = line.trim()[1..].parse().unwrap_or(0);
                    let mut v = vec![0; len + 2];
                    if r.read_exact(&mut v).is_err() {
                        return;
                    }
                    if i == 0 {
                        first = v;
                    }
                }
                let reply: &[u8] = if first.starts_with(b"SCAN") {
                    std::thread::sleep(Duration::from_millis(50));
                    b"*2\r\n$1\r\n7\r\n*0\r\n"
                } else {
                    b"+OK\r\n"
                };
                if w.write_all(reply).is_err() {
                    return;
                }
            }
        });
        let cfg = config::RedisOutput {
            hosts: vec![addr],
            timeout: Duration::from_millis(300),
            // Without a time bound the byte budget alone allows ~240 round trips
            // (12 s at 50 ms each).
            max_reply_bytes: 4096,
            ..Default::default()
        };
        let mut store = RedisTopologyStore::new(&cfg).unwrap();
        let t = Instant::now();
        assert_eq!(store.fetch().unwrap(), vec![]);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn ip_lists() {
        assert_eq!(
            parse_ips(b"10.0.0.1, ::1,bogus,,192.168.1.300"),
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
    }
}
