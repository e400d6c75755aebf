//! The network flow event (`flows:`): what [`crate::flow::netflow`] reports for a
//! flow every period and at its end, and its Packetbeat 8 / ECS JSON document
//! (`type: flow`, `event.action: network_flow`).

use std::net::IpAddr;

use base64::Engine;

use super::community_id;
use super::json::{IpText, JsonWriter};
use super::{ECS_VERSION, EventEncoder, Transport};
use crate::time::Ts;

/// One end of a flow as a report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEnd {
    pub ip: IpAddr,
    /// TCP and UDP only.
    pub port: Option<u16>,
    pub mac: Option<[u8; 6]>,
    /// Packets this end sent and their on-wire bytes (link-layer header included);
    /// since the previous report with `enable_delta_flow_reports`.
    pub packets: u64,
    pub bytes: u64,
    /// It sent at least one packet: an end that never did has no counts in the event.
    pub seen: bool,
}

/// One report of one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowReport {
    /// `@timestamp`: the period boundary, the moment the flow's timeout passed, or
    /// the end of the input.
    pub at: Ts,
    /// First and last packet.
    pub first: Ts,
    pub last: Ts,
    /// The flow ended (timeout, end of input, or making room in a full table).
    pub is_final: bool,
    pub transport: Transport,
    /// The sender of the flow's first packet.
    pub source: FlowEnd,
    pub destination: FlowEnd,
    /// VLAN ids, outermost first.
    pub vlans: Vec<u16>,
    /// ICMP: the type and code of the source's latest message (the Community ID's
    /// "ports").
    pub icmp: Option<(u8, u8)>,
    /// ICMP: the echo (or timestamp, information...) identifier the flow is keyed by.
    pub icmp_id: Option<u16>,
    /// ECS `network.direction`.
    pub direction: &'static str,
}

impl FlowReport {
    /// `flow.id`: the same for every report of the flow and for both directions,
    /// URL-safe base64 (no padding) of the key: a layout byte (bit 0 IPv6, bit 1
    /// Ethernet addresses, bits 2-3 VLAN count), the IP protocol, the VLAN ids, then
    /// each end (address, port, Ethernet address) in the order of their bytes, then
    /// the ICMP identifier.
    pub fn flow_id(&self) -> String {
        let mut buf = [0u8; FLOW_ID_MAX];
        let n = self.write_flow_id(&mut buf);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Writes [`FlowReport::flow_id`] into `out`; returns its length.
    fn write_flow_id(&self, out: &mut [u8; FLOW_ID_MAX]) -> usize {
        let ends = [&self.source, &self.destination];
        let mut key: Vec<[u8; 24]> = ends
            .iter()
            .map(|e| {
                let mut b = [0u8; 24];
                match e.ip {
                    IpAddr::V4(a) => b[12..16].copy_from_slice(&a.octets()),
                    IpAddr::V6(a) => b[..16].copy_from_slice(&a.octets()),
                }
                b[16..18].copy_from_slice(&e.port.unwrap_or(0).to_be_bytes());
                b[18..24].copy_from_slice(&e.mac.unwrap_or_default());
                b
            })
            .collect();
        key.sort_unstable();
        let v6 = self.source.ip.is_ipv6();
        let macs = self.source.mac.is_some();
        let mut raw = [0u8; FLOW_KEY_MAX];
        let mut n = 0;
        let mut put = |b: &[u8]| {
            raw[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        let vlans = &self.vlans[..self.vlans.len().min(2)];
        put(&[
            u8::from(v6) | u8::from(macs) << 1 | (vlans.len() as u8) << 2,
            self.transport.ip_proto(),
        ]);
        for v in vlans {
            put(&v.to_be_bytes());
        }
        let addr = if v6 { 0..16 } else { 12..16 };
        for k in &key {
            put(&k[addr.clone()]);
            if !self.transport.is_icmp() {
                put(&k[16..18]);
            }
            if macs {
                put(&k[18..24]);
            }
        }
        if let Some(id) = self.icmp_id {
            put(&id.to_be_bytes());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(&raw[..n], &mut out[..])
            .unwrap_or(0)
    }

    /// `network.community_id`, from the source to the destination.
    pub fn community_id(&self) -> String {
        let (s, d) = (&self.source, &self.destination);
        match (self.transport, self.icmp) {
            (Transport::Icmp | Transport::Icmpv6, Some((ty, code))) => {
                community_id::community_id_icmp(
                    s.ip,
                    d.ip,
                    self.transport == Transport::Icmpv6,
                    ty,
                    code,
                )
            }
            _ => community_id::community_id_v1(
                s.ip,
                d.ip,
                s.port.unwrap_or(0),
                d.port.unwrap_or(0),
                self.transport.ip_proto(),
                0,
            ),
        }
    }
}

/// The key's bytes at most: layout, protocol, two VLANs, two ends of (IPv6, port,
/// Ethernet address), the ICMP identifier.
const FLOW_KEY_MAX: usize = 2 + 4 + 2 * (16 + 2 + 6) + 2;
/// Its base64 (no padding).
const FLOW_ID_MAX: usize = FLOW_KEY_MAX.div_ceil(3) * 4;

/// The Ethernet address as ECS wants it, quoted: `"AA-BB-CC-DD-EE-FF"`.
fn mac_json(m: &[u8; 6]) -> [u8; 19] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = [b'-'; 19];
    s[0] = b'"';
    s[18] = b'"';
    for (i, b) in m.iter().enumerate() {
        s[1 + 3 * i] = HEX[usize::from(b >> 4)];
        s[2 + 3 * i] = HEX[usize::from(b & 15)];
    }
    s
}

fn flow_end(w: &mut JsonWriter<'_>, name: &'static str, ip: &IpText, e: &FlowEnd) {
    w.object(name);
    if e.seen {
        w.kv_u64("bytes", e.bytes);
    }
    w.key("ip").raw(ip.as_bytes());
    if let Some(m) = &e.mac {
        w.key("mac").raw(&mac_json(m));
    }
    if e.seen {
        w.kv_u64("packets", e.packets);
    }
    if let Some(p) = e.port {
        w.kv_u64("port", u64::from(p));
    }
    w.end_object();
}

impl EventEncoder {
    /// Appends one JSON object (no trailing newline) for the flow report `r`.
    pub fn encode_flow(&self, r: &FlowReport, out: &mut Vec<u8>) {
        out.reserve(1024);
        let mut w = JsonWriter::new(out);
        let (src_ip, dst_ip) = (IpText::new(r.source.ip), IpText::new(r.destination.ip));
        w.begin_object();
        w.key("@timestamp").ts(r.at);
        w.key("agent").raw(&self.fixed.agent);
        flow_end(&mut w, "destination", &dst_ip, &r.destination);
        w.object("ecs").kv_str("version", ECS_VERSION).end_object();
        w.object("event");
        w.kv_lit("action", "network_flow");
        w.key("category").raw(br#"["network"]"#);
        w.kv_lit("dataset", "flow");
        w.kv_u64("duration", r.last.since(r.first));
        w.key("end").ts(r.last);
        w.kv_lit("kind", "event");
        w.key("start").ts(r.first);
        let types: &[u8] = if r.is_final {
            br#"["connection","end"]"#
        } else {
            br#"["connection"]"#
        };
        w.key("type").raw(types);
        w.end_object();
        w.object("flow");
        w.key("final").bool(r.is_final);
        // Base64 needs no escaping.
        let mut id = [0u8; FLOW_ID_MAX];
        let n = r.write_flow_id(&mut id);
        let mut quoted = [b'"'; FLOW_ID_MAX + 2];
        quoted[1..=n].copy_from_slice(&id[..n]);
        w.key("id").raw(&quoted[..n + 2]);
        match r.vlans.as_slice() {
            [] => {}
            [v] => {
                w.kv_u64("vlan", u64::from(*v));
            }
            vs => {
                w.key("vlan").begin_array();
                for v in vs {
                    w.u64(u64::from(*v));
                }
                w.end_array();
            }
        }
        w.end_object();
        w.key("host").raw(&self.fixed.host);
        let count = |e: &FlowEnd| if e.seen { (e.packets, e.bytes) } else { (0, 0) };
        let (sp, sb) = count(&r.source);
        let (dp, db) = count(&r.destination);
        w.object("network")
            .kv_u64("bytes", sb.saturating_add(db))
            .kv_str("community_id", &r.community_id())
            .kv_lit("direction", r.direction)
            .kv_u64("packets", sp.saturating_add(dp))
            .kv_lit("transport", r.transport.as_str())
            .kv_lit(
                "type",
                if r.source.ip.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                },
            )
            .end_object();
        w.object("related").key("ip").begin_array();
        w.raw(src_ip.as_bytes());
        if r.destination.ip != r.source.ip {
            w.raw(dst_ip.as_bytes());
        }
        w.end_array().end_object();
        flow_end(&mut w, "source", &src_ip, &r.source);
        if let Some(tags) = &self.fixed.tags {
            w.key("tags").raw(tags);
        }
        w.kv_lit("type", "flow");
        w.end_object();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AgentInfo;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn report() -> FlowReport {
        FlowReport {
            at: Ts(20_000_000_000),
            first: Ts(12_000_000_000),
            last: Ts(13_500_000_000),
            is_final: false,
            transport: Transport::Tcp,
            source: FlowEnd {
                ip: ip("10.0.0.1"),
                port: Some(40000),
                mac: Some([0x02, 0, 0, 0, 0, 0x0a]),
                packets: 3,
                bytes: 200,
                seen: true,
            },
            destination: FlowEnd {
                ip: ip("10.0.0.2"),
                port: Some(8080),
                mac: Some([0x02, 0, 0, 0, 0, 0x0b]),
                packets: 0,
                bytes: 0,
                seen: false,
            },
            vlans: vec![],
            icmp: None,
            icmp_id: None,
            direction: "unknown",
        }
    }

    fn encode(r: &FlowReport) -> serde_json::Value {
        let enc = EventEncoder::new(AgentInfo::new("gw".into(), vec![]));
        let mut out = Vec::new();
        enc.encode_flow(r, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_flow_event_has_packetbeats_fields() {
        let e = encode(&report());
        assert_eq!(e["type"], "flow");
        assert_eq!(e["@timestamp"], "1970-01-01T00:00:20.000Z");
        assert_eq!(e["event"]["action"], "network_flow");
        assert_eq!(e["event"]["dataset"], "flow");
        assert_eq!(e["event"]["kind"], "event");
        assert_eq!(e["event"]["category"], serde_json::json!(["network"]));
        assert_eq!(e["event"]["type"], serde_json::json!(["connection"]));
        assert_eq!(e["event"]["start"], "1970-01-01T00:00:12.000Z");
        assert_eq!(e["event"]["end"], "1970-01-01T00:00:13.500Z");
        assert_eq!(e["event"]["duration"], 1_500_000_000u64);
        assert_eq!(e["flow"]["final"], false);
        assert!(e["flow"].get("vlan").is_none());
        assert_eq!(e["source"]["mac"], "02-00-00-00-00-0A");
        assert_eq!(e["source"]["packets"], 3);
        assert_eq!(e["source"]["bytes"], 200);
        assert_eq!(e["source"]["port"], 40000);
        // The destination never sent anything: no counts.
        assert!(e["destination"].get("packets").is_none());
        assert!(e["destination"].get("bytes").is_none());
        assert_eq!(e["destination"]["mac"], "02-00-00-00-00-0B");
        assert_eq!(e["network"]["bytes"], 200);
        assert_eq!(e["network"]["packets"], 3);
        assert_eq!(e["network"]["transport"], "tcp");
        assert_eq!(e["network"]["type"], "ipv4");
        assert_eq!(
            e["network"]["community_id"],
            community_id::community_id_v1(ip("10.0.0.1"), ip("10.0.0.2"), 40000, 8080, 6, 0)
        );
        assert_eq!(
            e["related"]["ip"],
            serde_json::json!(["10.0.0.1", "10.0.0.2"])
        );
    }

    #[test]
    fn final_reports_vlans_and_icmp() {
        let mut r = report();
        r.is_final = true;
        r.vlans = vec![100, 7];
        let e = encode(&r);
        assert_eq!(e["flow"]["final"], true);
        assert_eq!(e["event"]["type"], serde_json::json!(["connection", "end"]));
        assert_eq!(e["flow"]["vlan"], serde_json::json!([100, 7]));
        r.vlans = vec![100];
        assert_eq!(encode(&r)["flow"]["vlan"], 100);

        let mut r = report();
        r.transport = Transport::Icmp;
        r.source.port = None;
        r.destination.port = None;
        r.icmp = Some((8, 0));
        r.icmp_id = Some(77);
        let e = encode(&r);
        assert!(e["source"].get("port").is_none());
        assert_eq!(e["network"]["transport"], "icmp");
        assert_eq!(
            e["network"]["community_id"],
            community_id::community_id_icmp(ip("10.0.0.1"), ip("10.0.0.2"), false, 8, 0)
        );
    }

    #[test]
    fn the_flow_id_is_the_same_from_either_end_and_tells_flows_apart() {
        let r = report();
        let mut swapped = r.clone();
        std::mem::swap(&mut swapped.source, &mut swapped.destination);
        assert_eq!(r.flow_id(), swapped.flow_id());
        let mut other = r.clone();
        other.source.port = Some(40001);
        assert_ne!(r.flow_id(), other.flow_id());
        let mut tagged = r.clone();
        tagged.vlans = vec![5];
        assert_ne!(r.flow_id(), tagged.flow_id());
        let mut udp = r.clone();
        udp.transport = Transport::Udp;
        assert_ne!(r.flow_id(), udp.flow_id());
        // Layout byte (Ethernet addresses, IPv4), protocol, then the ends.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(r.flow_id())
            .unwrap();
        assert_eq!(&raw[..2], &[0b10, 6]);
        assert_eq!(raw.len(), 2 + 2 * (4 + 2 + 6));
    }
}
