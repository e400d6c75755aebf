//! The effective configuration as canonical (1.x layout) YAML, and BPF filter
//! generation.

use std::fmt::Write as _;

use super::convert::PROTOCOL_NAMES;
use super::duration::format_duration;
use super::*;

const REDACTED: &str = "<redacted>";

/// A YAML double-quoted scalar.
pub(super) fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn opt(s: &Option<String>) -> String {
    s.as_deref().map(q).unwrap_or_else(|| "null".into())
}

pub(super) fn secret(s: &Option<String>, redact: bool) -> String {
    match s {
        Some(_) if redact => q(REDACTED),
        _ => opt(s),
    }
}

pub(super) fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", parts.join(", "))
}

fn ports(items: &[u16]) -> String {
    let parts: Vec<String> = items.iter().map(|p| p.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

pub(super) fn dur(d: Duration) -> String {
    q(&format_duration(d))
}

pub(super) struct W {
    out: String,
}

impl W {
    pub(super) fn kv(&mut self, indent: usize, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{:indent$}{key}: {value}", "", indent = indent);
    }
    pub(super) fn section(&mut self, indent: usize, key: &str) {
        let _ = writeln!(self.out, "{:indent$}{key}:", "", indent = indent);
    }
    fn comment(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{:indent$}# {text}", "", indent = indent);
    }
}

pub(super) fn proto_ports(c: &ProtoCommon, w: &mut W, indent: usize, _redact: bool) {
    w.kv(indent, "ports", ports(&c.ports));
}

pub fn to_yaml(cfg: &Config, redact: bool) -> String {
    let mut w = W { out: String::new() };
    w.comment(0, "wirebeat effective configuration (canonical layout)");

    let s = &cfg.shipper;
    w.section(0, "shipper");
    s.write_settings(&mut w, 2, redact);

    w.section(0, "interfaces");
    let default_interface = [InterfaceConfig::default()];
    let ifaces: &[InterfaceConfig] = if cfg.interfaces.is_empty() {
        &default_interface
    } else {
        &cfg.interfaces
    };
    if let [only] = ifaces {
        only.write_settings(&mut w, 2, redact);
    } else {
        for i in ifaces {
            // A list item: the first setting goes after the dash.
            let start = w.out.len();
            i.write_settings(&mut w, 4, redact);
            if w.out[start..].starts_with("    ") {
                w.out.replace_range(start..start + 4, "  - ");
            }
        }
    }

    let p = &cfg.protocols;
    w.section(0, "protocols");
    p.write_sections(&mut w, redact);

    let o = &cfg.output;
    w.section(0, "output");
    match &o.elasticsearch {
        Some(es) => {
            w.section(2, "elasticsearch");
            es.write_settings(&mut w, 4, redact);
        }
        None => w.comment(2, "elasticsearch: not configured"),
    }
    match &o.redis {
        Some(r) => {
            w.section(2, "redis");
            r.write_settings(&mut w, 4, redact);
        }
        None => w.comment(2, "redis: not configured"),
    }
    match &o.file {
        Some(f) => {
            w.section(2, "file");
            f.write_settings(&mut w, 4, redact);
        }
        None => w.comment(2, "file: not configured"),
    }
    match &o.console {
        Some(c) => {
            w.section(2, "console");
            c.write_settings(&mut w, 4, redact);
        }
        None => w.comment(2, "console: not configured"),
    }

    let pl = &cfg.pipeline;
    w.section(0, "pipeline");
    pl.write_settings(&mut w, 2, redact);

    let l = &cfg.logging;
    w.section(0, "logging");
    l.write_settings(&mut w, 2, redact);

    let h = &cfg.http;
    w.section(0, "http");
    h.write_settings(&mut w, 2, redact);

    w.section(0, "setup");
    w.section(2, "kibana");
    cfg.kibana.write_settings(&mut w, 4, redact);

    w.section(0, "flows");
    cfg.flows.write_settings(&mut w, 2, redact);
    w.out
}

pub(super) fn flows_timeout(fc: &FlowsConfig, w: &mut W, indent: usize, _redact: bool) {
    w.kv(indent, "timeout", dur(fc.timeout));
}

pub(super) fn flows_period(fc: &FlowsConfig, w: &mut W, indent: usize, _redact: bool) {
    match fc.period {
        Some(p) => w.kv(indent, "period", dur(p)),
        None => w.kv(indent, "period", "-1".to_string()),
    }
}

pub(super) fn device(i: &InterfaceConfig, w: &mut W, indent: usize, _redact: bool) {
    w.kv(indent, "device", q(&i.device));
}

pub(super) fn capture_type(i: &InterfaceConfig, w: &mut W, indent: usize, _redact: bool) {
    w.kv(indent, "type", q(i.kind.as_str()));
}

pub(super) fn es_backoff(es: &ElasticsearchOutput, w: &mut W, indent: usize, _redact: bool) {
    w.section(indent, "backoff");
    w.kv(indent + 2, "init", dur(es.backoff_init));
    w.kv(indent + 2, "max", dur(es.backoff_max));
}

/// A `tls`/`ssl` section: the CA files and the verification mode.
fn tls_section(w: &mut W, indent: usize, name: &str, cas: &[String], verify: bool) {
    w.section(indent, name);
    w.kv(indent + 2, "certificate_authorities", list(cas));
    w.kv(
        indent + 2,
        "verification_mode",
        q(if verify { "full" } else { "none" }),
    );
}

pub(super) fn es_tls(es: &ElasticsearchOutput, w: &mut W, indent: usize, _redact: bool) {
    tls_section(
        w,
        indent,
        "tls",
        &es.tls_certificate_authorities,
        es.tls_verify,
    );
}

pub(super) fn kibana_tls(k: &KibanaConfig, w: &mut W, indent: usize, _redact: bool) {
    tls_section(
        w,
        indent,
        "ssl",
        &k.tls_certificate_authorities,
        k.tls_verify,
    );
}

pub(super) fn kibana_space(k: &KibanaConfig, w: &mut W, indent: usize, _redact: bool) {
    w.section(indent, "space");
    w.kv(indent + 2, "id", opt(&k.space_id));
}

pub(super) fn es_template(es: &ElasticsearchOutput, w: &mut W, indent: usize, redact: bool) {
    w.section(indent, "template");
    es.template.write_settings(w, indent + 2, redact);
}

pub(super) fn redis_key(r: &RedisOutput, w: &mut W, indent: usize, _redact: bool) {
    w.kv(indent, "key", q(&r.key));
}

pub(super) fn redis_backoff(r: &RedisOutput, w: &mut W, indent: usize, _redact: bool) {
    w.section(indent, "backoff");
    w.kv(indent + 2, "max", dur(r.backoff_max));
}

pub(super) fn log_metrics(l: &LoggingConfig, w: &mut W, indent: usize, _redact: bool) {
    w.kv(
        indent,
        "metrics",
        format!("{{enabled: {}}}", l.metrics_enabled),
    );
}

/// How a protocol's ports appear in the capture filter.
fn port_expr(protocol: &str) -> &'static str {
    match protocol {
        // Both are analysed over TCP and UDP.
        "dns" | "memcache" => "port",
        _ => "tcp port",
    }
}

pub fn bpf_filter(cfg: &Config, implemented: &[&str]) -> String {
    let first = cfg.interfaces.first();
    if let Some(f) = first
        .and_then(|i| i.bpf_filter.as_deref())
        .filter(|f| !f.trim().is_empty())
    {
        return f.to_string();
    }
    if cfg.flows.enabled {
        // Flows count every packet: as Packetbeat, nothing is filtered out.
        return String::new();
    }
    let mut exprs: Vec<String> = Vec::new();
    for name in PROTOCOL_NAMES {
        if !implemented.contains(name) {
            continue;
        }
        let Some(c) = cfg.protocols.common(name) else {
            continue;
        };
        if !c.enabled {
            continue;
        }
        if *name == "icmp" {
            // As Packetbeat adds them: every ICMP message of either version.
            exprs.extend(["icmp".to_string(), "icmp6".to_string()]);
            continue;
        }
        for port in &c.ports {
            exprs.push(format!("{} {port}", port_expr(name)));
        }
    }
    let filter = exprs.join(" or ");
    if first.is_some_and(|i| i.with_vlans) && !filter.is_empty() {
        format!("{filter} or (vlan and ({filter}))")
    } else {
        filter
    }
}
