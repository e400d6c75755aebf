//! The index template: a mapping for every field wirebeat emits, in the form the
//! cluster's version understands (composable `_index_template` from 7.8, legacy
//! `_template` before, typed mappings before 7.0, `string` before 5.0).

use serde_json::{Map, Value, json};

/// Elasticsearch field types used by wirebeat events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    /// Long free text (bodies, raw requests): analysed, not aggregatable.
    Text,
    Long,
    Boolean,
    Ip,
    Date,
    /// An object whose keys come from the traffic (HTTP headers, cookies):
    /// `flattened` where the cluster has it (7.3+), else a dynamic object of
    /// keywords.
    Flattened,
}

/// Every field of a wirebeat event, by dotted path.
pub const FIELDS: &[(&str, Kind)] = &[
    ("@timestamp", Kind::Date),
    ("agent.name", Kind::Keyword),
    ("agent.type", Kind::Keyword),
    ("agent.version", Kind::Keyword),
    ("client.bytes", Kind::Long),
    ("client.domain", Kind::Keyword),
    ("client.ip", Kind::Ip),
    ("client.port", Kind::Long),
    ("destination.bytes", Kind::Long),
    ("destination.domain", Kind::Keyword),
    ("destination.ip", Kind::Ip),
    ("destination.mac", Kind::Keyword),
    ("destination.packets", Kind::Long),
    ("destination.port", Kind::Long),
    ("dns.additionals.class", Kind::Keyword),
    ("dns.additionals.data", Kind::Keyword),
    ("dns.additionals.expire", Kind::Long),
    ("dns.additionals.minimum", Kind::Long),
    ("dns.additionals.name", Kind::Keyword),
    ("dns.additionals.port", Kind::Long),
    ("dns.additionals.preference", Kind::Long),
    ("dns.additionals.priority", Kind::Long),
    ("dns.additionals.refresh", Kind::Long),
    ("dns.additionals.retry", Kind::Long),
    ("dns.additionals.rname", Kind::Keyword),
    ("dns.additionals.serial", Kind::Long),
    ("dns.additionals.ttl", Kind::Long),
    ("dns.additionals.type", Kind::Keyword),
    ("dns.additionals.weight", Kind::Long),
    ("dns.additionals_count", Kind::Long),
    ("dns.answers.class", Kind::Keyword),
    ("dns.answers.data", Kind::Keyword),
    ("dns.answers.expire", Kind::Long),
    ("dns.answers.minimum", Kind::Long),
    ("dns.answers.name", Kind::Keyword),
    ("dns.answers.port", Kind::Long),
    ("dns.answers.preference", Kind::Long),
    ("dns.answers.priority", Kind::Long),
    ("dns.answers.refresh", Kind::Long),
    ("dns.answers.retry", Kind::Long),
    ("dns.answers.rname", Kind::Keyword),
    ("dns.answers.serial", Kind::Long),
    ("dns.answers.ttl", Kind::Long),
    ("dns.answers.type", Kind::Keyword),
    ("dns.answers.weight", Kind::Long),
    ("dns.answers_count", Kind::Long),
    ("dns.authorities.class", Kind::Keyword),
    ("dns.authorities.data", Kind::Keyword),
    ("dns.authorities.expire", Kind::Long),
    ("dns.authorities.minimum", Kind::Long),
    ("dns.authorities.name", Kind::Keyword),
    ("dns.authorities.port", Kind::Long),
    ("dns.authorities.preference", Kind::Long),
    ("dns.authorities.priority", Kind::Long),
    ("dns.authorities.refresh", Kind::Long),
    ("dns.authorities.retry", Kind::Long),
    ("dns.authorities.rname", Kind::Keyword),
    ("dns.authorities.serial", Kind::Long),
    ("dns.authorities.ttl", Kind::Long),
    ("dns.authorities.type", Kind::Keyword),
    ("dns.authorities.weight", Kind::Long),
    ("dns.authorities_count", Kind::Long),
    ("dns.flags.authentic_data", Kind::Boolean),
    ("dns.flags.authoritative", Kind::Boolean),
    ("dns.flags.checking_disabled", Kind::Boolean),
    ("dns.flags.recursion_available", Kind::Boolean),
    ("dns.flags.recursion_desired", Kind::Boolean),
    ("dns.flags.truncated_response", Kind::Boolean),
    ("dns.header_flags", Kind::Keyword),
    ("dns.id", Kind::Long),
    ("dns.op_code", Kind::Keyword),
    ("dns.opt.cookie", Kind::Keyword),
    ("dns.opt.do", Kind::Boolean),
    ("dns.opt.ext_rcode", Kind::Keyword),
    ("dns.opt.nsid", Kind::Keyword),
    ("dns.opt.subnet", Kind::Keyword),
    ("dns.opt.udp_size", Kind::Long),
    ("dns.opt.version", Kind::Keyword),
    ("dns.question.class", Kind::Keyword),
    ("dns.question.etld_plus_one", Kind::Keyword),
    ("dns.question.name", Kind::Keyword),
    ("dns.question.registered_domain", Kind::Keyword),
    ("dns.question.subdomain", Kind::Keyword),
    ("dns.question.top_level_domain", Kind::Keyword),
    ("dns.question.type", Kind::Keyword),
    ("dns.resolved_ip", Kind::Ip),
    ("dns.response_code", Kind::Keyword),
    ("dns.type", Kind::Keyword),
    ("ecs.version", Kind::Keyword),
    ("error.message", Kind::Text),
    ("event.action", Kind::Keyword),
    ("event.category", Kind::Keyword),
    ("event.dataset", Kind::Keyword),
    ("event.duration", Kind::Long),
    ("event.end", Kind::Date),
    ("event.kind", Kind::Keyword),
    ("event.start", Kind::Date),
    ("event.type", Kind::Keyword),
    ("flow.final", Kind::Boolean),
    ("flow.id", Kind::Keyword),
    ("flow.vlan", Kind::Long),
    ("host.name", Kind::Keyword),
    ("http.request.body.bytes", Kind::Long),
    ("http.request.body.content", Kind::Text),
    ("http.request.bytes", Kind::Long),
    ("http.request.headers", Kind::Flattened),
    ("http.request.method", Kind::Keyword),
    ("http.request.mime_type", Kind::Keyword),
    ("http.request.referrer", Kind::Keyword),
    ("http.response.body.bytes", Kind::Long),
    ("http.response.body.content", Kind::Text),
    ("http.response.bytes", Kind::Long),
    ("http.response.headers", Kind::Flattened),
    ("http.response.mime_type", Kind::Keyword),
    ("http.response.status_code", Kind::Long),
    ("http.response.status_phrase", Kind::Keyword),
    ("http.version", Kind::Keyword),
    ("icmp.request.code", Kind::Long),
    ("icmp.request.message", Kind::Keyword),
    ("icmp.request.type", Kind::Long),
    ("icmp.response.code", Kind::Long),
    ("icmp.response.message", Kind::Keyword),
    ("icmp.response.type", Kind::Long),
    ("icmp.version", Kind::Long),
    ("method", Kind::Keyword),
    ("mysql.affected_rows", Kind::Long),
    ("mysql.error_code", Kind::Long),
    ("mysql.error_message", Kind::Keyword),
    ("mysql.insert_id", Kind::Long),
    ("mysql.num_fields", Kind::Long),
    ("mysql.num_rows", Kind::Long),
    ("network.bytes", Kind::Long),
    ("network.community_id", Kind::Keyword),
    ("network.direction", Kind::Keyword),
    ("network.forwarded_ip", Kind::Keyword),
    ("network.packets", Kind::Long),
    ("network.protocol", Kind::Keyword),
    ("network.transport", Kind::Keyword),
    ("network.type", Kind::Keyword),
    ("params", Kind::Keyword),
    ("path", Kind::Keyword),
    ("pgsql.error_code", Kind::Keyword),
    ("pgsql.error_message", Kind::Keyword),
    ("pgsql.error_severity", Kind::Keyword),
    ("pgsql.num_fields", Kind::Long),
    ("pgsql.num_rows", Kind::Long),
    ("query", Kind::Keyword),
    ("redis.error", Kind::Keyword),
    ("redis.return_value", Kind::Keyword),
    ("related.hosts", Kind::Keyword),
    ("related.ip", Kind::Ip),
    ("related.user", Kind::Keyword),
    ("request", Kind::Text),
    ("resource", Kind::Keyword),
    ("response", Kind::Text),
    ("server.bytes", Kind::Long),
    ("server.domain", Kind::Keyword),
    ("server.ip", Kind::Ip),
    ("server.port", Kind::Long),
    ("source.bytes", Kind::Long),
    ("source.domain", Kind::Keyword),
    ("source.ip", Kind::Ip),
    ("source.mac", Kind::Keyword),
    ("source.packets", Kind::Long),
    ("source.port", Kind::Long),
    ("status", Kind::Keyword),
    ("tags", Kind::Keyword),
    ("thrift.exceptions", Kind::Keyword),
    ("thrift.params", Kind::Keyword),
    ("thrift.return_value", Kind::Keyword),
    ("thrift.service", Kind::Keyword),
    ("topology.client_server", Kind::Keyword),
    ("topology.server", Kind::Keyword),
    ("type", Kind::Keyword),
    ("url.domain", Kind::Keyword),
    ("url.extension", Kind::Keyword),
    ("url.full", Kind::Keyword),
    ("url.path", Kind::Keyword),
    ("url.port", Kind::Long),
    ("url.query", Kind::Keyword),
    ("url.scheme", Kind::Keyword),
    ("user.name", Kind::Keyword),
    ("user_agent.original", Kind::Keyword),
];

/// The type of the field at `path` (a leaf of an event): its own entry, or the
/// `flattened` object it lies under.
pub fn lookup(path: &str) -> Option<Kind> {
    if let Some((_, k)) = FIELDS.iter().find(|(p, _)| *p == path) {
        return Some(*k);
    }
    FIELDS
        .iter()
        .find(|(p, k)| {
            *k == Kind::Flattened
                && path.len() > p.len()
                && path.starts_with(p)
                && path.as_bytes()[p.len()] == b'.'
        })
        .map(|(_, k)| *k)
}

/// A cluster version, (major, minor).
pub type Version = (u32, u32);

/// The version `export template` assumes without `--es-version`.
pub const DEFAULT_VERSION: Version = (8, 0);

/// Composable index templates exist from 7.8.
pub fn is_composable(v: Version) -> bool {
    v >= (7, 8)
}

/// The API path of the template `name` for a cluster of version `v`.
pub fn api_path(v: Version, name: &str) -> String {
    if is_composable(v) {
        format!("/_index_template/{name}")
    } else {
        format!("/_template/{name}")
    }
}

const IGNORE_ABOVE: u64 = 1024;

fn keyword(v: Version) -> Value {
    if v.0 < 5 {
        json!({"type": "string", "index": "not_analyzed", "ignore_above": IGNORE_ABOVE})
    } else {
        json!({"type": "keyword", "ignore_above": IGNORE_ABOVE})
    }
}

fn leaf(k: Kind, v: Version) -> Value {
    match k {
        Kind::Keyword => keyword(v),
        Kind::Text if v.0 < 5 => json!({"type": "string"}),
        Kind::Text => json!({"type": "text"}),
        Kind::Long => json!({"type": "long"}),
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::Ip => json!({"type": "ip"}),
        Kind::Date => json!({"type": "date"}),
        Kind::Flattened if v >= (7, 3) => {
            json!({"type": "flattened", "ignore_above": IGNORE_ABOVE})
        }
        Kind::Flattened => json!({"type": "object", "dynamic": true}),
    }
}

fn insert(node: &mut Map<String, Value>, parts: &[&str], value: Value) {
    match parts {
        [] => {}
        [last] => {
            node.insert(last.to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = node
                .entry(first.to_string())
                .or_insert_with(|| json!({"properties": {}}));
            if let Some(m) = entry.get_mut("properties").and_then(Value::as_object_mut) {
                insert(m, rest, value);
            }
        }
    }
}

/// The mapping body (`dynamic_templates` + `properties`).
pub fn mappings(v: Version) -> Value {
    let mut root = Map::new();
    for (path, kind) in FIELDS {
        let parts: Vec<&str> = path.split('.').collect();
        insert(&mut root, &parts, leaf(*kind, v));
    }
    json!({
        "dynamic_templates": [
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": keyword(v)}}
        ],
        "properties": Value::Object(root),
    })
}

fn settings() -> Value {
    json!({
        "index": {
            "refresh_interval": "5s",
            "mapping": {"total_fields": {"limit": 10000}},
        }
    })
}

/// The whole template for index `pattern`, as the cluster of version `v` takes it.
pub fn render(v: Version, pattern: &str) -> Value {
    let meta = json!({"managed_by": "wirebeat", "version": env!("CARGO_PKG_VERSION")});
    if is_composable(v) {
        return json!({
            "index_patterns": [pattern],
            "priority": 150,
            "template": {"settings": settings(), "mappings": mappings(v)},
            "_meta": meta,
        });
    }
    let m = mappings(v);
    if v.0 >= 7 {
        json!({"index_patterns": [pattern], "order": 1, "settings": settings(), "mappings": m})
    } else if v.0 == 6 {
        json!({"index_patterns": [pattern], "order": 1, "settings": settings(), "mappings": {"doc": m}})
    } else {
        json!({"template": pattern, "order": 1, "settings": settings(), "mappings": {"_default_": m}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_leaves_and_flattened() {
        assert_eq!(lookup("client.ip"), Some(Kind::Ip));
        assert_eq!(lookup("http.request.headers.x-a"), Some(Kind::Flattened));
        assert_eq!(
            lookup("http.request.headers.cookie.sid"),
            Some(Kind::Flattened)
        );
        assert_eq!(lookup("http.request.headersx"), None);
        assert_eq!(lookup("nope"), None);
    }

    #[test]
    fn forms_by_version() {
        let t = render((8, 11), "packetbeat-*");
        assert_eq!(t["index_patterns"][0], "packetbeat-*");
        let m = &t["template"]["mappings"]["properties"];
        assert_eq!(m["client"]["properties"]["ip"]["type"], "ip");
        assert_eq!(m["@timestamp"]["type"], "date");
        assert_eq!(
            m["http"]["properties"]["request"]["properties"]["headers"]["type"],
            "flattened"
        );
        assert_eq!(api_path((8, 11), "pb"), "/_index_template/pb");
        assert_eq!(api_path((7, 7), "pb"), "/_template/pb");
        let t = render((7, 7), "p-*");
        assert_eq!(
            t["mappings"]["properties"]["source"]["properties"]["port"]["type"],
            "long"
        );
        let t = render((6, 8), "p-*");
        assert_eq!(
            t["mappings"]["doc"]["properties"]["http"]["properties"]["request"]["properties"]["headers"]
                ["type"],
            "object"
        );
        let t = render((2, 4), "p-*");
        assert_eq!(t["template"], "p-*");
        assert_eq!(
            t["mappings"]["_default_"]["properties"]["status"]["type"],
            "string"
        );
    }

    #[test]
    fn no_field_is_listed_twice_or_under_a_leaf() {
        for (i, (p, _)) in FIELDS.iter().enumerate() {
            for (q, _) in &FIELDS[i + 1..] {
                assert_ne!(p, q);
                assert!(!q.starts_with(&format!("{p}.")), "{q} under leaf {p}");
                assert!(!p.starts_with(&format!("{q}.")), "{p} under leaf {q}");
            }
        }
    }
}
