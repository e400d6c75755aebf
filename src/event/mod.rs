//! The transaction event: what every protocol produces, and how it becomes the
//! Packetbeat 8 / ECS JSON document. Protocols fill a [`Transaction`]; the engine adds
//! the connection facts ([`ConnInfo`]); [`EventEncoder`] writes one JSON object.

pub mod community_id;
pub mod direction;
pub mod flow;
pub mod json;

use std::net::IpAddr;

use crate::time::Ts;
use crate::topology::TopologyView;
pub use flow::{FlowEnd, FlowReport};
pub use json::{IpText, JsonWriter};

/// ECS version the event layout follows.
pub const ECS_VERSION: &str = "8.0.0";

/// Exact diagnostics strings of SPEC §3.
pub const NOTE_UNMATCHED_REQUEST: &str = "Unmatched request";
pub const NOTE_UNMATCHED_RESPONSE: &str = "Unmatched response";
pub const NOTE_LOSS_REQUEST: &str = "Packet loss while capturing the request";
pub const NOTE_LOSS_RESPONSE: &str = "Packet loss while capturing the response";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl Transport {
    /// `network.transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
            Transport::Icmpv6 => "ipv6-icmp",
        }
    }

    pub fn ip_proto(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
            Transport::Icmp => 1,
            Transport::Icmpv6 => 58,
        }
    }

    /// ICMPv6 when `v6`, else ICMP.
    pub fn icmp(v6: bool) -> Transport {
        if v6 {
            Transport::Icmpv6
        } else {
            Transport::Icmp
        }
    }

    /// ICMP or ICMPv6: no ports.
    pub fn is_icmp(self) -> bool {
        matches!(self, Transport::Icmp | Transport::Icmpv6)
    }
}

/// Facts about a connection that every event of it carries.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    pub transport: Transport,
    /// Community ID v1 of the 5-tuple (`1:...`).
    pub community_id: String,
    /// ECS `network.direction`.
    pub direction: &'static str,
}

impl ConnInfo {
    pub fn new(
        client_ip: IpAddr,
        client_port: u16,
        server_ip: IpAddr,
        server_port: u16,
        transport: Transport,
    ) -> ConnInfo {
        let community_id = community_id::community_id_v1(
            client_ip,
            server_ip,
            client_port,
            server_port,
            transport.ip_proto(),
            0,
        );
        ConnInfo {
            client_ip,
            client_port,
            server_ip,
            server_port,
            transport,
            community_id,
            direction: "unknown",
        }
    }
}

impl ConnInfo {
    /// The ends of an ICMP exchange whose first message, of type `ty` and code
    /// `code`, `client` sent to `server`: no ports; the Community ID is the ICMP one.
    pub fn icmp(client_ip: IpAddr, server_ip: IpAddr, ty: u8, code: u8) -> ConnInfo {
        let v6 = client_ip.is_ipv6();
        ConnInfo {
            client_ip,
            client_port: 0,
            server_ip,
            server_port: 0,
            transport: Transport::icmp(v6),
            community_id: community_id::community_id_icmp(client_ip, server_ip, v6, ty, code),
            direction: "unknown",
        }
    }
}

impl std::fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sa = |ip: IpAddr, port: u16| std::net::SocketAddr::new(ip, port);
        write!(
            f,
            "{} {} -> {}",
            self.transport.as_str(),
            sa(self.client_ip, self.client_port),
            sa(self.server_ip, self.server_port)
        )
    }
}

/// Protocol-specific fields of an event (`http.*`, `url.*`, `mysql.*`, ...).
pub trait ProtoFields: Send {
    /// Writes this protocol's top-level keys into the open event object.
    fn write(&self, w: &mut JsonWriter<'_>);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Ok,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Error => "Error",
        }
    }
}

/// One request/response pair (or an unmatched half), as produced by a protocol.
#[derive(Default)]
pub struct Transaction {
    /// Protocol name: `type`, `event.dataset`, `network.protocol`.
    pub kind: &'static str,
    /// First packet of the request (or of the response when unmatched).
    pub start: Ts,
    /// First packet of the response, if there is one.
    pub end: Option<Ts>,
    pub status: Status,
    /// `error.message` entries.
    pub notes: Vec<String>,
    /// Application bytes of the request (`source.bytes`) and response (`destination.bytes`).
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub method: Option<String>,
    pub query: Option<String>,
    pub path: Option<String>,
    pub resource: Option<String>,
    pub params: Option<String>,
    /// Raw text, with `send_request` / `send_response`.
    pub request: Option<String>,
    pub response: Option<String>,
    /// `destination.domain` (e.g. HTTP Host).
    pub destination_domain: Option<String>,
    /// `network.forwarded_ip` (e.g. from `real_ip_header`).
    pub forwarded_ip: Option<String>,
    /// `user.name` (e.g. from HTTP Basic auth).
    pub user_name: Option<String>,
    /// More addresses for `related.ip` (e.g. the addresses a DNS answer resolved),
    /// each once.
    pub related_ip: Vec<std::net::IpAddr>,
    pub fields: Option<Box<dyn ProtoFields>>,
}

impl Transaction {
    pub fn new(kind: &'static str, start: Ts) -> Transaction {
        Transaction {
            kind,
            start,
            ..Default::default()
        }
    }

    pub fn note(&mut self, note: &str) {
        if !self.notes.iter().any(|n| n == note) {
            self.notes.push(note.to_string());
        }
    }
}

/// Static facts stamped on every event.
#[derive(Clone, Debug)]
pub struct AgentInfo {
    /// The shipper name (`shipper.name`, default the host name).
    pub name: String,
    pub version: String,
    pub tags: Vec<String>,
}

impl AgentInfo {
    pub fn new(name: String, tags: Vec<String>) -> AgentInfo {
        AgentInfo {
            name,
            version: env!("CARGO_PKG_VERSION").to_string(),
            tags,
        }
    }
}

/// The parts of every event that depend only on the agent, encoded once.
#[derive(Clone, Debug)]
struct Fixed {
    /// The value of `agent`: `{"type":"wirebeat","name":..,"version":..}`.
    agent: Vec<u8>,
    /// The value of `host`: `{"name":..}`.
    host: Vec<u8>,
    /// The value of `tags`, when there are any.
    tags: Option<Vec<u8>>,
}

impl Fixed {
    fn new(agent: &AgentInfo) -> Fixed {
        let encode = |f: &dyn Fn(&mut JsonWriter<'_>)| {
            let mut out = Vec::new();
            f(&mut JsonWriter::new(&mut out));
            out
        };
        Fixed {
            agent: encode(&|w| {
                w.begin_object()
                    .kv_str("type", "wirebeat")
                    .kv_str("name", &agent.name)
                    .kv_str("version", &agent.version)
                    .end_object();
            }),
            host: encode(&|w| {
                w.begin_object().kv_str("name", &agent.name).end_object();
            }),
            tags: (!agent.tags.is_empty()).then(|| {
                encode(&|w| {
                    w.begin_array();
                    for t in &agent.tags {
                        w.str(t);
                    }
                    w.end_array();
                })
            }),
        }
    }
}

/// Encodes transactions as ECS JSON documents.
#[derive(Clone, Debug)]
pub struct EventEncoder {
    fixed: Fixed,
    /// Shipper names of both ends (`save_topology`), and `ignore_outgoing`.
    topology: Option<TopologyView>,
    ignore_outgoing: bool,
}

impl EventEncoder {
    pub fn new(agent: AgentInfo) -> EventEncoder {
        EventEncoder {
            fixed: Fixed::new(&agent),
            topology: None,
            ignore_outgoing: false,
        }
    }

    /// Stamps events with `topology.client_server` / `topology.server` from `view`;
    /// with `ignore_outgoing`, [`EventEncoder::ignores`] names the transactions to drop.
    pub fn with_topology(mut self, view: TopologyView, ignore_outgoing: bool) -> EventEncoder {
        self.topology = Some(view);
        self.ignore_outgoing = ignore_outgoing;
        self
    }

    /// The shipper names of the two ends (`save_topology`), when known.
    pub fn names_of(&self, conn: &ConnInfo) -> (Option<String>, Option<String>) {
        match &self.topology {
            Some(t) => t.with(|m| {
                (
                    m.name_of(conn.client_ip).map(str::to_string),
                    m.name_of(conn.server_ip).map(str::to_string),
                )
            }),
            None => (None, None),
        }
    }

    /// `shipper.ignore_outgoing`: this host is the client and another shipper sees
    /// the server, which reports the transaction itself.
    pub fn ignores(&self, conn: &ConnInfo) -> bool {
        match &self.topology {
            Some(t) if self.ignore_outgoing => {
                t.with(|m| m.is_outgoing_to_peer(conn.client_ip, conn.server_ip))
            }
            _ => false,
        }
    }

    /// Appends one JSON object (no trailing newline) for `tx` on `conn` to `out`.
    pub fn encode(&self, conn: &ConnInfo, tx: &Transaction, out: &mut Vec<u8>) {
        // Room for a whole event up front: the writes then never grow the buffer.
        out.reserve(4096);
        let mut w = JsonWriter::new(out);
        let (client_ip, server_ip) = (IpText::new(conn.client_ip), IpText::new(conn.server_ip));
        w.begin_object();
        w.key("@timestamp");
        let start_at = w.pos();
        w.ts(tx.start);
        let start_end = w.pos();
        w.key("agent").raw(&self.fixed.agent);
        // `source` repeats `client`, and `server` repeats `destination`. ICMP has
        // no ports.
        let icmp = conn.transport.is_icmp();
        let port = |p: u16| (!icmp).then_some(p);
        let client = endpoint(
            &mut w,
            "client",
            &client_ip,
            port(conn.client_port),
            tx.request_bytes,
            None,
        );
        let server = endpoint(
            &mut w,
            "destination",
            &server_ip,
            port(conn.server_port),
            tx.response_bytes,
            tx.destination_domain.as_deref(),
        );
        w.object("ecs").kv_str("version", ECS_VERSION).end_object();
        match tx.notes.len() {
            0 => {}
            1 => {
                w.object("error")
                    .kv_str("message", &tx.notes[0])
                    .end_object();
            }
            _ => {
                w.object("error").key("message").begin_array();
                for n in &tx.notes {
                    w.str(n);
                }
                w.end_array().end_object();
            }
        }
        w.object("event");
        w.kv_lit("kind", "event");
        w.key("category").raw(br#"["network"]"#);
        // Packetbeat's ICMP events are connections only.
        let types: &[u8] = if icmp {
            br#"["connection"]"#
        } else {
            br#"["connection","protocol"]"#
        };
        w.key("type").raw(types);
        w.kv_lit("dataset", tx.kind);
        w.key("start").value_copy(start_at, start_end);
        if let Some(end) = tx.end {
            w.key("end").ts(end);
            w.kv_u64("duration", end.since(tx.start));
        }
        w.end_object();
        w.key("host").raw(&self.fixed.host);
        if let Some(f) = &tx.fields {
            f.write(&mut w);
        }
        w.kv_opt_str("method", tx.method.as_deref());
        w.object("network")
            .kv_lit(
                "type",
                if conn.client_ip.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                },
            )
            .kv_lit("transport", conn.transport.as_str())
            .kv_lit("protocol", tx.kind)
            .kv_lit("direction", conn.direction)
            .kv_str("community_id", &conn.community_id)
            .kv_u64("bytes", tx.request_bytes.saturating_add(tx.response_bytes));
        w.kv_opt_str("forwarded_ip", tx.forwarded_ip.as_deref());
        w.end_object();
        w.kv_opt_str("params", tx.params.as_deref());
        w.kv_opt_str("path", tx.path.as_deref());
        w.kv_opt_str("query", tx.query.as_deref());
        w.object("related").key("ip").begin_array();
        w.raw(client_ip.as_bytes());
        if conn.server_ip != conn.client_ip {
            w.raw(server_ip.as_bytes());
        }
        // Already without repeats (see `Transaction::related_ip`).
        for ip in &tx.related_ip {
            if *ip != conn.client_ip && *ip != conn.server_ip {
                w.ip(*ip);
            }
        }
        w.end_array();
        if let Some(d) = &tx.destination_domain {
            w.key("hosts").begin_array().str(d).end_array();
        }
        if let Some(u) = &tx.user_name {
            w.key("user").begin_array().str(u).end_array();
        }
        w.end_object();
        w.kv_opt_str("request", tx.request.as_deref());
        w.kv_opt_str("resource", tx.resource.as_deref());
        w.kv_opt_str("response", tx.response.as_deref());
        w.key("server").value_copy(server.0, server.1);
        w.key("source").value_copy(client.0, client.1);
        w.kv_lit("status", tx.status.as_str());
        if let Some(tags) = &self.fixed.tags {
            w.key("tags").raw(tags);
        }
        if let Some(t) = &self.topology {
            t.with(|m| {
                let client = m.name_of(conn.client_ip);
                let server = m.name_of(conn.server_ip);
                if client.is_some() || server.is_some() {
                    w.object("topology")
                        .kv_opt_str("client_server", client)
                        .kv_opt_str("server", server)
                        .end_object();
                }
            });
        }
        w.kv_lit("type", tx.kind);
        if let Some(u) = &tx.user_name {
            w.object("user").kv_str("name", u).end_object();
        }
        w.end_object();
    }
}

/// Writes `name` with an endpoint object; returns where its value lies in the output.
/// Inlined, so that the key literals are copied with their lengths known.
#[inline(always)]
fn endpoint(
    w: &mut JsonWriter<'_>,
    name: &'static str,
    ip: &IpText,
    port: Option<u16>,
    bytes: u64,
    domain: Option<&str>,
) -> (usize, usize) {
    w.key(name);
    let start = w.pos();
    w.begin_object();
    w.key("ip").raw(ip.as_bytes());
    if let Some(port) = port {
        w.kv_u64("port", port as u64);
    }
    w.kv_u64("bytes", bytes);
    w.kv_opt_str("domain", domain);
    w.end_object();
    (start, w.pos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Topology, TopologyMap, TopologyView};
    use std::sync::Arc;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn event(enc: &EventEncoder, conn: &ConnInfo) -> serde_json::Value {
        let mut out = Vec::new();
        enc.encode(conn, &Transaction::new("http", Ts::default()), &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn agent_parts_encoded_once_match_the_agent() {
        let conn = ConnInfo::new(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80, Transport::Tcp);
        let tagged = EventEncoder::new(AgentInfo::new(
            "gw \"1\"\\".into(),
            vec!["web".into(), "a\tb".into()],
        ));
        let e = event(&tagged, &conn);
        assert_eq!(e["agent"]["type"], "wirebeat");
        assert_eq!(e["agent"]["name"], "gw \"1\"\\");
        assert_eq!(e["agent"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(e["host"]["name"], "gw \"1\"\\");
        assert_eq!(e["tags"], serde_json::json!(["web", "a\tb"]));
        assert_eq!(e["event"]["category"], serde_json::json!(["network"]));
        assert_eq!(
            e["event"]["type"],
            serde_json::json!(["connection", "protocol"])
        );
        let plain = EventEncoder::new(AgentInfo::new("gw".into(), vec![]));
        assert!(event(&plain, &conn).get("tags").is_none());
    }

    #[test]
    fn topology_stamping_and_ignore_outgoing() {
        let own = [ip("10.0.0.1")];
        let peers = vec![("db".to_string(), vec![ip("10.0.0.2")])];
        let topo = Topology::new(TopologyMap::new("me", &own, &peers));
        let plain = EventEncoder::new(AgentInfo::new("me".into(), vec![]));
        let enc = plain
            .clone()
            .with_topology(TopologyView::new(Arc::clone(&topo)), true);
        let out = ConnInfo::new(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80, Transport::Tcp);
        assert_eq!(enc.names_of(&out), (Some("me".into()), Some("db".into())));
        assert_eq!(plain.names_of(&out), (None, None));
        let e = event(&enc, &out);
        assert_eq!(e["topology"]["client_server"], "me");
        assert_eq!(e["topology"]["server"], "db");
        assert!(enc.ignores(&out));
        assert!(!plain.ignores(&out));
        assert!(event(&plain, &out).get("topology").is_none());
        // Only the known end is stamped; nothing when neither is known.
        let inbound = ConnInfo::new(ip("10.9.0.1"), 40000, ip("10.0.0.1"), 80, Transport::Tcp);
        let e = event(&enc, &inbound);
        assert!(e["topology"].get("client_server").is_none());
        assert_eq!(e["topology"]["server"], "me");
        assert!(!enc.ignores(&inbound));
        let other = ConnInfo::new(ip("10.9.0.1"), 40000, ip("10.9.0.2"), 80, Transport::Tcp);
        assert!(event(&enc, &other).get("topology").is_none());
        // Without ignore_outgoing nothing is dropped.
        let keep = plain.with_topology(TopologyView::new(topo), false);
        assert!(!keep.ignores(&out));
    }
}
