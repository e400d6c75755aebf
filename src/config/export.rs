//! The effective configuration as canonical (1.x layout) YAML, and BPF filter
//! generation.

use std::fmt::Write as _;

use super::convert::PROTOCOL_NAMES;
use super::duration::format_duration;
use super::*;

const REDACTED: &str = "<redacted>";

/// A YAML double-quoted scalar.
fn q(s: &str) -> String {
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

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(q).unwrap_or_else(|| "null".into())
}

fn secret(s: &Option<String>, redact: bool) -> String {
    match s {
        Some(_) if redact => q(REDACTED),
        _ => opt(s),
    }
}

fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", parts.join(", "))
}

fn ports(items: &[u16]) -> String {
    let parts: Vec<String> = items.iter().map(|p| p.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

fn dur(d: Duration) -> String {
    q(&format_duration(d))
}

struct W {
    out: String,
}

impl W {
    fn kv(&mut self, indent: usize, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{:indent$}{key}: {value}", "", indent = indent);
    }
    fn section(&mut self, indent: usize, key: &str) {
        let _ = writeln!(self.out, "{:indent$}{key}:", "", indent = indent);
    }
    fn comment(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{:indent$}# {text}", "", indent = indent);
    }
}

fn common(w: &mut W, c: &ProtoCommon) {
    w.kv(4, "enabled", c.enabled);
    w.kv(4, "ports", ports(&c.ports));
    w.kv(4, "send_request", c.send_request);
    w.kv(4, "send_response", c.send_response);
    w.kv(4, "transaction_timeout", dur(c.transaction_timeout));
}

/// The common options of a protocol wirebeat parses, pairing queue bounds included.
fn parsed_common(w: &mut W, c: &ProtoCommon) {
    common(w, c);
    w.kv(4, "queue_max_bytes", c.queue_max_bytes);
    w.kv(4, "queue_max_messages", c.queue_max_messages);
}

fn sql(w: &mut W, name: &str, s: &SqlConfig) {
    w.section(2, name);
    parsed_common(w, &s.common);
    w.kv(4, "max_rows", s.max_rows);
    w.kv(4, "max_row_length", s.max_row_length);
    w.kv(4, "statement_timeout", dur(s.statement_timeout));
    w.kv(4, "max_statements", s.max_statements);
}

fn interface(w: &mut W, first_indent: usize, indent: usize, i: &InterfaceConfig) {
    let kind = match i.kind {
        CaptureType::AfPacket => "af_packet",
        CaptureType::Pcap => "pcap",
        CaptureType::PfRing => "pf_ring",
    };
    let _ = writeln!(
        w.out,
        "{:first_indent$}device: {}",
        "",
        q(&i.device),
        first_indent = first_indent
    );
    w.kv(indent, "type", q(kind));
    w.kv(indent, "snaplen", i.snaplen);
    w.kv(indent, "buffer_size_mb", i.buffer_size_mb);
    w.kv(indent, "with_vlans", i.with_vlans);
    w.kv(indent, "bpf_filter", opt(&i.bpf_filter));
    w.kv(indent, "auto_promisc_mode", i.auto_promisc_mode);
    w.kv(indent, "internal_networks", list(&i.internal_networks));
}

pub fn to_yaml(cfg: &Config, redact: bool) -> String {
    let mut w = W { out: String::new() };
    w.comment(0, "wirebeat effective configuration (canonical layout)");

    let s = &cfg.shipper;
    w.section(0, "shipper");
    w.kv(2, "name", q(&s.name));
    w.kv(2, "tags", list(&s.tags));
    w.kv(2, "ignore_outgoing", s.ignore_outgoing);
    w.kv(2, "refresh_topology_freq", dur(s.refresh_topology_freq));
    w.kv(2, "topology_expire", dur(s.topology_expire));

    w.section(0, "interfaces");
    let default_interface = [InterfaceConfig::default()];
    let ifaces: &[InterfaceConfig] = if cfg.interfaces.is_empty() {
        &default_interface
    } else {
        &cfg.interfaces
    };
    if let [only] = ifaces {
        interface(&mut w, 2, 2, only);
    } else {
        for i in ifaces {
            w.out.push_str("  - ");
            interface(&mut w, 0, 4, i);
        }
    }

    let p = &cfg.protocols;
    w.section(0, "protocols");
    w.section(2, "http");
    parsed_common(&mut w, &p.http.common);
    w.kv(4, "send_headers", list(&p.http.send_headers));
    w.kv(4, "send_all_headers", p.http.send_all_headers);
    w.kv(4, "split_cookie", p.http.split_cookie);
    w.kv(4, "real_ip_header", opt(&p.http.real_ip_header));
    w.kv(4, "hide_keywords", list(&p.http.hide_keywords));
    w.kv(4, "redact_authorization", p.http.redact_authorization);
    w.kv(4, "redact_headers", list(&p.http.redact_headers));
    w.kv(4, "include_body_for", list(&p.http.include_body_for));
    w.kv(
        4,
        "include_request_body_for",
        list(&p.http.include_request_body_for),
    );
    w.kv(
        4,
        "include_response_body_for",
        list(&p.http.include_response_body_for),
    );
    w.kv(4, "decode_body", p.http.decode_body);
    w.kv(4, "max_message_size", p.http.max_message_size);
    sql(&mut w, "mysql", &p.mysql);
    sql(&mut w, "pgsql", &p.pgsql);
    w.section(2, "redis");
    parsed_common(&mut w, &p.redis.common);
    let t = &p.thrift;
    w.section(2, "thrift");
    parsed_common(&mut w, &t.common);
    w.kv(4, "transport_type", opt(&t.transport_type));
    w.kv(4, "protocol_type", opt(&t.protocol_type));
    w.kv(4, "idl_files", list(&t.idl_files));
    w.kv(4, "string_max_size", t.string_max_size);
    w.kv(4, "collection_max_size", t.collection_max_size);
    w.kv(4, "capture_reply", t.capture_reply);
    w.kv(4, "obfuscate_strings", t.obfuscate_strings);
    w.kv(
        4,
        "drop_after_n_struct_fields",
        t.drop_after_n_struct_fields,
    );
    w.section(2, "memcache");
    common(&mut w, &p.memcache);
    w.section(2, "dns");
    common(&mut w, &p.dns);

    let o = &cfg.output;
    w.section(0, "output");
    match &o.elasticsearch {
        Some(es) => {
            w.section(2, "elasticsearch");
            w.kv(4, "enabled", es.enabled);
            w.kv(4, "hosts", list(&es.hosts));
            w.kv(4, "protocol", opt(&es.protocol));
            w.kv(4, "path", opt(&es.path));
            w.kv(4, "username", opt(&es.username));
            w.kv(4, "password", secret(&es.password, redact));
            w.kv(4, "api_key", secret(&es.api_key, redact));
            w.kv(4, "index", q(&es.index));
            w.kv(4, "bulk_max_size", es.bulk_max_size);
            w.kv(4, "bulk_max_bytes", es.bulk_max_bytes);
            w.kv(4, "flush_interval", dur(es.flush_interval));
            if es.max_retries == super::RETRY_FOREVER {
                w.kv(4, "max_retries", -1);
            } else {
                w.kv(4, "max_retries", es.max_retries);
            }
            w.section(4, "backoff");
            w.kv(6, "init", dur(es.backoff_init));
            w.kv(6, "max", dur(es.backoff_max));
            w.kv(4, "timeout", dur(es.timeout));
            w.kv(4, "compression_level", es.compression_level);
            w.kv(4, "max_response_bytes", es.max_response_bytes);
            w.kv(4, "save_topology", es.save_topology);
            w.section(4, "tls");
            w.kv(
                6,
                "certificate_authorities",
                list(&es.tls_certificate_authorities),
            );
            w.kv(
                6,
                "verification_mode",
                q(if es.tls_verify { "full" } else { "none" }),
            );
            w.section(4, "template");
            w.kv(6, "enabled", es.template.enabled);
            w.kv(6, "name", q(&es.template.name));
            w.kv(6, "pattern", q(&es.template.pattern));
            w.kv(6, "path", opt(&es.template.path));
            w.kv(6, "overwrite", es.template.overwrite);
        }
        None => w.comment(2, "elasticsearch: not configured"),
    }
    match &o.redis {
        Some(r) => {
            w.section(2, "redis");
            w.kv(4, "enabled", r.enabled);
            w.kv(4, "hosts", list(&r.hosts));
            w.kv(4, "key", q(&r.key));
            w.kv(4, "db", r.db);
            w.kv(4, "db_topology", r.db_topology);
            w.kv(4, "password", secret(&r.password, redact));
            w.kv(4, "datatype", q(&r.datatype));
            w.kv(4, "timeout", dur(r.timeout));
            w.kv(4, "reconnect_interval", dur(r.reconnect_interval));
            w.kv(4, "save_topology", r.save_topology);
            w.kv(4, "bulk_max_size", r.bulk_max_size);
            w.kv(4, "bulk_max_bytes", r.bulk_max_bytes);
            w.kv(4, "max_retries", r.max_retries);
            w.kv(4, "max_reply_bytes", r.max_reply_bytes);
            w.section(4, "backoff");
            w.kv(6, "max", dur(r.backoff_max));
        }
        None => w.comment(2, "redis: not configured"),
    }
    match &o.file {
        Some(f) => {
            w.section(2, "file");
            w.kv(4, "enabled", f.enabled);
            w.kv(4, "path", q(&f.path));
            w.kv(4, "filename", q(&f.filename));
            w.kv(4, "rotate_every_kb", f.rotate_every_kb);
            w.kv(4, "number_of_files", f.number_of_files);
        }
        None => w.comment(2, "file: not configured"),
    }
    match &o.console {
        Some(c) => {
            w.section(2, "console");
            w.kv(4, "enabled", c.enabled);
            w.kv(4, "pretty", c.pretty);
        }
        None => w.comment(2, "console: not configured"),
    }

    let pl = &cfg.pipeline;
    w.section(0, "pipeline");
    w.kv(2, "readers", pl.readers);
    w.kv(2, "workers", pl.workers);
    w.kv(2, "pin", pl.pin);
    w.kv(2, "batch_packets", pl.batch_packets);
    w.kv(2, "worker_queue", pl.worker_queue);
    w.kv(2, "output_queue", pl.output_queue);
    w.kv(2, "output_queue_events", pl.output_queue_events);
    w.kv(2, "output_queue_bytes", pl.output_queue_bytes);
    w.kv(2, "when_full", q(&pl.when_full));
    w.kv(2, "max_flows", pl.max_flows);
    w.kv(2, "tcp_max_closed_flows", pl.tcp_max_closed_flows);
    w.kv(2, "tcp_closed_timeout", dur(pl.tcp_closed_timeout));
    w.kv(2, "tcp_max_ooo_bytes", pl.tcp_max_ooo_bytes);
    w.kv(2, "tcp_max_ooo_segments", pl.tcp_max_ooo_segments);
    w.kv(2, "tcp_max_ooo_total_bytes", pl.tcp_max_ooo_total_bytes);
    w.kv(2, "defrag_max_datagrams", pl.defrag_max_datagrams);
    w.kv(2, "defrag_max_bytes", pl.defrag_max_bytes);
    w.kv(2, "defrag_timeout", dur(pl.defrag_timeout));

    let l = &cfg.logging;
    w.section(0, "logging");
    w.kv(2, "level", q(&l.level));
    w.kv(2, "selectors", list(&l.selectors));
    w.kv(2, "to_stderr", l.to_stderr);
    w.kv(2, "metrics_interval", dur(l.metrics_interval));
    w.kv(2, "metrics", format!("{{enabled: {}}}", l.metrics_enabled));

    let h = &cfg.http;
    w.section(0, "http");
    w.kv(2, "enabled", h.enabled);
    w.kv(2, "host", q(&h.host));
    w.kv(2, "port", h.port);
    w.out
}

/// How a protocol's ports appear in the capture filter.
fn port_expr(protocol: &str) -> &'static str {
    match protocol {
        "dns" => "udp port",
        // Packetbeat analyses memcache over both TCP and UDP.
        "memcache" => "port",
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
