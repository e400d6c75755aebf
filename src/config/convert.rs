//! Typed conversion of the canonical tree onto [`Config`], with unknown-key
//! warnings and located type errors.

use super::duration::parse_duration;
use super::error::ConfigError;
use super::tree::{Key, Node, Pos, Value};
use super::*;

/// One place settings can come from: the file, or one `-E` argument.
struct Source {
    name: String,
    /// Line/column are shown for files; `-E` values are one short string.
    show_pos: bool,
}

/// Source names and collected warnings.
pub struct Ctx {
    sources: Vec<Source>,
    pub warnings: Vec<String>,
}

impl Ctx {
    pub fn new(file_name: &str) -> Ctx {
        Ctx {
            sources: vec![Source {
                name: file_name.to_string(),
                show_pos: true,
            }],
            warnings: Vec::new(),
        }
    }

    /// Registers a `-E` argument; returns its source index.
    pub fn add_override(&mut self, arg: &str) -> usize {
        self.sources.push(Source {
            name: format!("-E '{arg}'"),
            show_pos: false,
        });
        self.sources.len() - 1
    }

    pub fn err(&self, pos: Pos, path: &str, message: impl Into<String>) -> ConfigError {
        let (origin, show) = match self.sources.get(pos.src) {
            Some(s) => (s.name.clone(), s.show_pos),
            None => ("<config>".to_string(), false),
        };
        let mut e = ConfigError::new(origin, path, message);
        if show && pos.line > 0 {
            e.line = Some(pos.line);
            e.column = Some(pos.col);
        }
        e
    }

    pub fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let text = self.err(pos, path, message).to_string();
        self.warnings.push(text);
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The entries of one mapping, consumed as they are converted; whatever is left
/// at the end is reported as unknown.
pub struct Fields {
    path: String,
    entries: Vec<(Key, Node)>,
}

impl Fields {
    pub fn of(node: Node, path: &str, ctx: &Ctx) -> Result<Fields, ConfigError> {
        match node.value {
            Value::Null => Ok(Fields {
                path: path.to_string(),
                entries: Vec::new(),
            }),
            Value::Map(entries) => Ok(Fields {
                path: path.to_string(),
                entries,
            }),
            _ => Err(ctx.err(
                node.pos,
                path,
                format!("expected a mapping, found {}", node.describe()),
            )),
        }
    }

    fn child(&self, name: &str) -> String {
        join(&self.path, name)
    }

    pub fn take(&mut self, name: &str) -> Option<Node> {
        let i = self.entries.iter().position(|(k, _)| k.name == name)?;
        Some(self.entries.remove(i).1)
    }

    /// Takes a value, treating an explicit null like an absent key.
    fn take_set(&mut self, name: &str) -> Option<(Node, String)> {
        let path = self.child(name);
        self.take(name).filter(|n| !n.is_null()).map(|n| (n, path))
    }

    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.name == name)
    }

    /// Reports known Packetbeat settings that wirebeat accepts but does not use.
    pub fn unsupported(&mut self, ctx: &mut Ctx, names: &[&str]) {
        let mut kept = Vec::with_capacity(self.entries.len());
        for (k, v) in std::mem::take(&mut self.entries) {
            if names.contains(&k.name.as_str()) {
                ctx.warn(
                    k.pos,
                    &join(&self.path, &k.name),
                    "not supported by wirebeat, ignored",
                );
            } else {
                kept.push((k, v));
            }
        }
        self.entries = kept;
    }

    /// Reports every remaining key as unknown.
    pub fn finish(self, ctx: &mut Ctx) {
        for (k, _) in self.entries {
            ctx.warn(
                k.pos,
                &join(&self.path, &k.name),
                "unknown setting, ignored",
            );
        }
    }

    fn drain(&mut self) -> Vec<(Key, Node)> {
        std::mem::take(&mut self.entries)
    }

    pub fn bool(&mut self, ctx: &Ctx, name: &str, slot: &mut bool) -> Result<(), ConfigError> {
        if let Some((n, path)) = self.take_set(name) {
            *slot = to_bool(&n, &path, ctx)?;
        }
        Ok(())
    }

    pub fn string(&mut self, ctx: &Ctx, name: &str, slot: &mut String) -> Result<(), ConfigError> {
        if let Some((n, path)) = self.take_set(name) {
            *slot = to_string(&n, &path, ctx)?;
        }
        Ok(())
    }

    pub fn opt_string(
        &mut self,
        ctx: &Ctx,
        name: &str,
        slot: &mut Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(n) = self.take(name) {
            let path = self.child(name);
            *slot = if n.is_null() {
                None
            } else {
                Some(to_string(&n, &path, ctx)?)
            };
        }
        Ok(())
    }

    /// A string restricted to `allowed` values (null = unset).
    fn choice(
        &mut self,
        ctx: &Ctx,
        name: &str,
        allowed: &[&str],
        slot: &mut Option<String>,
    ) -> Result<(), ConfigError> {
        let mut value = slot.clone();
        let pos = self
            .entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v.pos);
        self.opt_string(ctx, name, &mut value)?;
        if let (Some(v), Some(pos)) = (&value, pos)
            && !allowed.contains(&v.as_str())
        {
            return Err(ctx.err(
                pos,
                &self.child(name),
                format!("expected one of {}, found {v:?}", allowed.join(", ")),
            ));
        }
        *slot = value;
        Ok(())
    }

    pub fn strings(
        &mut self,
        ctx: &Ctx,
        name: &str,
        slot: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        if let Some(n) = self.take(name) {
            let path = self.child(name);
            *slot = to_strings(&n, &path, ctx)?;
        }
        Ok(())
    }

    pub fn int<T: TryFrom<i128>>(
        &mut self,
        ctx: &Ctx,
        name: &str,
        slot: &mut T,
        min: i128,
        max: i128,
    ) -> Result<(), ConfigError> {
        if let Some((n, path)) = self.take_set(name) {
            *slot = to_int(&n, &path, ctx, min, max)?;
        }
        Ok(())
    }

    pub fn duration(
        &mut self,
        ctx: &Ctx,
        name: &str,
        slot: &mut Duration,
    ) -> Result<(), ConfigError> {
        if let Some((n, path)) = self.take_set(name) {
            *slot = to_duration(&n, &path, ctx)?;
        }
        Ok(())
    }
}

fn to_bool(n: &Node, path: &str, ctx: &Ctx) -> Result<bool, ConfigError> {
    match n.value {
        Value::Bool(b) => Ok(b),
        _ => Err(ctx.err(
            n.pos,
            path,
            format!("expected true or false, found {}", n.describe()),
        )),
    }
}

fn to_string(n: &Node, path: &str, ctx: &Ctx) -> Result<String, ConfigError> {
    match &n.value {
        Value::Str(s) => Ok(s.clone()),
        // Numbers are fine where text is expected (`device: 0`, `name: 1234`).
        Value::Int(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        _ => Err(ctx.err(
            n.pos,
            path,
            format!("expected a string, found {}", n.describe()),
        )),
    }
}

/// A list of strings; a single string counts as a list of one, null as empty.
fn to_strings(n: &Node, path: &str, ctx: &Ctx) -> Result<Vec<String>, ConfigError> {
    match &n.value {
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                to_string(item, &format!("{path}.{i}"), ctx).map_err(|_| {
                    ctx.err(
                        item.pos,
                        path,
                        format!(
                            "expected a list of strings, found {} in the list",
                            item.describe()
                        ),
                    )
                })
            })
            .collect(),
        Value::Str(_) | Value::Int(_) | Value::Float(_) => Ok(vec![to_string(n, path, ctx)?]),
        _ => Err(ctx.err(
            n.pos,
            path,
            format!("expected a list of strings, found {}", n.describe()),
        )),
    }
}

fn to_int<T: TryFrom<i128>>(
    n: &Node,
    path: &str,
    ctx: &Ctx,
    min: i128,
    max: i128,
) -> Result<T, ConfigError> {
    match n.value {
        Value::Int(i) if i >= min && i <= max => T::try_from(i)
            .map_err(|_| ctx.err(n.pos, path, format!("{i} is out of range {min}..={max}"))),
        Value::Int(i) => Err(ctx.err(n.pos, path, format!("{i} is out of range {min}..={max}"))),
        _ => Err(ctx.err(
            n.pos,
            path,
            format!("expected an integer, found {}", n.describe()),
        )),
    }
}

fn to_duration(n: &Node, path: &str, ctx: &Ctx) -> Result<Duration, ConfigError> {
    let bad = || {
        ctx.err(
            n.pos,
            path,
            format!(
                "expected a duration like \"10s\", \"500ms\", \"1h30m\" or a number of seconds, found {}",
                n.describe()
            ),
        )
    };
    match &n.value {
        Value::Str(s) => parse_duration(s).ok_or_else(bad),
        Value::Int(i) => u64::try_from(*i)
            .map(Duration::from_secs)
            .map_err(|_| bad()),
        Value::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e15 => {
            Ok(Duration::from_secs_f64(*f))
        }
        _ => Err(bad()),
    }
}

/// Where a port was configured, for duplicate-port errors.
pub struct PortClaim {
    pub protocol: &'static str,
    pub port: u16,
    pub pos: Option<Pos>,
    pub path: String,
}

fn to_ports(n: &Node, path: &str, ctx: &Ctx) -> Result<Vec<(u16, Pos)>, ConfigError> {
    let one = |item: &Node| -> Result<(u16, Pos), ConfigError> {
        match item.value {
            Value::Int(p) if (1..=65535).contains(&p) => Ok((p as u16, item.pos)),
            Value::Int(p) => Err(ctx.err(
                item.pos,
                path,
                format!("port {p} is out of range 1..=65535"),
            )),
            _ => Err(ctx.err(
                item.pos,
                path,
                format!("expected a list of port numbers, found {}", item.describe()),
            )),
        }
    };
    match &n.value {
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => {
            let mut out: Vec<(u16, Pos)> = Vec::with_capacity(items.len());
            for item in items {
                let (port, pos) = one(item)?;
                if !out.iter().any(|(p, _)| *p == port) {
                    out.push((port, pos));
                }
            }
            Ok(out)
        }
        _ => Ok(vec![one(n)?]),
    }
}

const COMMON_UNSUPPORTED: &[&str] = &[
    "fields",
    "fields_under_root",
    "tags",
    "processors",
    "keep_null",
    "index",
    "interface",
    "pipeline",
];

fn common(
    f: &mut Fields,
    ctx: &mut Ctx,
    protocol: &'static str,
    c: &mut ProtoCommon,
    claims: &mut Vec<PortClaim>,
) -> Result<(), ConfigError> {
    f.bool(ctx, "enabled", &mut c.enabled)?;
    if let Some((n, path)) = f.take_set("ports") {
        let ports = to_ports(&n, &path, ctx)?;
        c.ports = ports.iter().map(|(p, _)| *p).collect();
        claims.retain(|cl| cl.protocol != protocol);
        claims.extend(ports.into_iter().map(|(port, pos)| PortClaim {
            protocol,
            port,
            pos: Some(pos),
            path: path.clone(),
        }));
    }
    f.bool(ctx, "send_request", &mut c.send_request)?;
    f.bool(ctx, "send_response", &mut c.send_response)?;
    f.duration(ctx, "transaction_timeout", &mut c.transaction_timeout)?;
    f.unsupported(ctx, COMMON_UNSUPPORTED);
    Ok(())
}

/// The bounds of the pairing queue, which every protocol wirebeat parses has.
fn pairing_queue(f: &mut Fields, ctx: &mut Ctx, c: &mut ProtoCommon) -> Result<(), ConfigError> {
    f.int(ctx, "queue_max_bytes", &mut c.queue_max_bytes, 0, MAX_USIZE)?;
    f.int(
        ctx,
        "queue_max_messages",
        &mut c.queue_max_messages,
        0,
        MAX_USIZE,
    )?;
    Ok(())
}

const MAX_USIZE: i128 = usize::MAX as i128;
const MAX_U32: i128 = u32::MAX as i128;

fn http(
    f: &mut Fields,
    ctx: &mut Ctx,
    h: &mut HttpConfig,
    claims: &mut Vec<PortClaim>,
) -> Result<(), ConfigError> {
    common(f, ctx, "http", &mut h.common, claims)?;
    pairing_queue(f, ctx, &mut h.common)?;
    f.strings(ctx, "send_headers", &mut h.send_headers)?;
    f.bool(ctx, "send_all_headers", &mut h.send_all_headers)?;
    f.bool(ctx, "split_cookie", &mut h.split_cookie)?;
    f.opt_string(ctx, "real_ip_header", &mut h.real_ip_header)?;
    f.strings(ctx, "hide_keywords", &mut h.hide_keywords)?;
    // `strip_authorization` is the pre-1.0 name of `redact_authorization`.
    f.bool(ctx, "strip_authorization", &mut h.redact_authorization)?;
    f.bool(ctx, "redact_authorization", &mut h.redact_authorization)?;
    f.strings(ctx, "redact_headers", &mut h.redact_headers)?;
    f.strings(ctx, "include_body_for", &mut h.include_body_for)?;
    f.strings(
        ctx,
        "include_request_body_for",
        &mut h.include_request_body_for,
    )?;
    f.strings(
        ctx,
        "include_response_body_for",
        &mut h.include_response_body_for,
    )?;
    f.bool(ctx, "decode_body", &mut h.decode_body)?;
    f.int(
        ctx,
        "max_message_size",
        &mut h.max_message_size,
        0,
        MAX_USIZE,
    )?;
    Ok(())
}

fn sql(
    f: &mut Fields,
    ctx: &mut Ctx,
    protocol: &'static str,
    s: &mut SqlConfig,
    claims: &mut Vec<PortClaim>,
) -> Result<(), ConfigError> {
    common(f, ctx, protocol, &mut s.common, claims)?;
    pairing_queue(f, ctx, &mut s.common)?;
    f.int(ctx, "max_rows", &mut s.max_rows, 0, MAX_USIZE)?;
    f.int(ctx, "max_row_length", &mut s.max_row_length, 0, MAX_USIZE)?;
    f.duration(ctx, "statement_timeout", &mut s.statement_timeout)?;
    f.int(ctx, "max_statements", &mut s.max_statements, 0, MAX_USIZE)?;
    Ok(())
}

fn redis_proto(
    f: &mut Fields,
    ctx: &mut Ctx,
    r: &mut RedisConfig,
    claims: &mut Vec<PortClaim>,
) -> Result<(), ConfigError> {
    common(f, ctx, "redis", &mut r.common, claims)?;
    pairing_queue(f, ctx, &mut r.common)
}

fn thrift(
    f: &mut Fields,
    ctx: &mut Ctx,
    t: &mut ThriftConfig,
    claims: &mut Vec<PortClaim>,
) -> Result<(), ConfigError> {
    common(f, ctx, "thrift", &mut t.common, claims)?;
    pairing_queue(f, ctx, &mut t.common)?;
    f.choice(
        ctx,
        "transport_type",
        &["socket", "framed"],
        &mut t.transport_type,
    )?;
    f.choice(
        ctx,
        "protocol_type",
        &["binary", "compact"],
        &mut t.protocol_type,
    )?;
    f.strings(ctx, "idl_files", &mut t.idl_files)?;
    f.int(ctx, "string_max_size", &mut t.string_max_size, 0, MAX_USIZE)?;
    f.int(
        ctx,
        "collection_max_size",
        &mut t.collection_max_size,
        0,
        MAX_USIZE,
    )?;
    f.bool(ctx, "capture_reply", &mut t.capture_reply)?;
    f.bool(ctx, "obfuscate_strings", &mut t.obfuscate_strings)?;
    f.int(
        ctx,
        "drop_after_n_struct_fields",
        &mut t.drop_after_n_struct_fields,
        0,
        MAX_USIZE,
    )?;
    Ok(())
}

/// Protocols Packetbeat has and wirebeat does not parse.
const OTHER_PROTOCOLS: &[&str] = &[
    "mongodb",
    "icmp",
    "amqp",
    "cassandra",
    "tls",
    "nfs",
    "dhcpv4",
    "sip",
    "mongo",
];

/// Every protocol wirebeat knows, in Packetbeat's protocol-id order (used for BPF generation).
pub const PROTOCOL_NAMES: &[&str] = &[
    "http", "mysql", "redis", "pgsql", "thrift", "dns", "memcache",
];

fn protocols(
    node: Option<Node>,
    restrict: bool,
    ctx: &mut Ctx,
) -> Result<ProtocolsConfig, ConfigError> {
    let mut pc = ProtocolsConfig::default();
    let mut claims: Vec<PortClaim> = Vec::new();
    if restrict {
        for name in PROTOCOL_NAMES {
            if let Some(c) = pc.common_mut(name) {
                c.enabled = false;
            }
        }
    }
    let Some(node) = node else {
        check_ports(&pc, claims, ctx)?;
        return Ok(pc);
    };
    let mut all = Fields::of(node, "protocols", ctx)?;
    for (key, value) in all.drain() {
        let path = join("protocols", &key.name);
        let mut f = Fields::of(value, &path, ctx)?;
        match key.name.as_str() {
            "http" => {
                pc.http.common.enabled = true;
                http(&mut f, ctx, &mut pc.http, &mut claims)?
            }
            "mysql" => {
                pc.mysql.common.enabled = true;
                sql(&mut f, ctx, "mysql", &mut pc.mysql, &mut claims)?
            }
            "pgsql" => {
                pc.pgsql.common.enabled = true;
                sql(&mut f, ctx, "pgsql", &mut pc.pgsql, &mut claims)?
            }
            "redis" => {
                pc.redis.common.enabled = true;
                redis_proto(&mut f, ctx, &mut pc.redis, &mut claims)?
            }
            "thrift" => {
                pc.thrift.common.enabled = true;
                thrift(&mut f, ctx, &mut pc.thrift, &mut claims)?
            }
            "memcache" => {
                pc.memcache.enabled = true;
                common(&mut f, ctx, "memcache", &mut pc.memcache, &mut claims)?;
                f.unsupported(
                    ctx,
                    &[
                        "parseunknown",
                        "maxvalues",
                        "maxbytespervalue",
                        "udptransactiontimeout",
                    ],
                );
            }
            "dns" => {
                pc.dns.enabled = true;
                common(&mut f, ctx, "dns", &mut pc.dns, &mut claims)?;
                f.unsupported(ctx, &["include_authorities", "include_additionals"]);
            }
            other if OTHER_PROTOCOLS.contains(&other) => {
                ctx.warn(
                    key.pos,
                    &path,
                    "protocol not supported by wirebeat, ignored",
                );
                continue;
            }
            _ => {
                ctx.warn(key.pos, &path, "unknown protocol, ignored");
                continue;
            }
        }
        f.finish(ctx);
    }
    check_ports(&pc, claims, ctx)?;
    Ok(pc)
}

/// A port may belong to one enabled protocol only.
fn check_ports(pc: &ProtocolsConfig, claims: Vec<PortClaim>, ctx: &Ctx) -> Result<(), ConfigError> {
    let mut seen: Vec<(u16, &'static str)> = Vec::new();
    for name in PROTOCOL_NAMES {
        let Some(c) = pc.common(name) else { continue };
        if !c.enabled {
            continue;
        }
        for &port in &c.ports {
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == port) {
                let claim = claims
                    .iter()
                    .find(|cl| cl.protocol == *name && cl.port == port);
                let path = claim
                    .map(|cl| cl.path.clone())
                    .unwrap_or_else(|| format!("protocols.{name}.ports"));
                let pos = claim.and_then(|cl| cl.pos).or_else(|| {
                    claims
                        .iter()
                        .find(|cl| cl.protocol == *first && cl.port == port)
                        .and_then(|cl| cl.pos)
                });
                let msg = format!("port {port} is claimed by both {first} and {name}");
                return Err(match pos {
                    Some(pos) => ctx.err(pos, &path, msg),
                    None => ctx.err(Pos::default(), &path, msg),
                });
            }
            seen.push((port, name));
        }
    }
    Ok(())
}

fn shipper(node: Node, ctx: &mut Ctx, s: &mut ShipperConfig) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, "shipper", ctx)?;
    f.string(ctx, "name", &mut s.name)?;
    f.strings(ctx, "tags", &mut s.tags)?;
    f.bool(ctx, "ignore_outgoing", &mut s.ignore_outgoing)?;
    f.duration(ctx, "refresh_topology_freq", &mut s.refresh_topology_freq)?;
    f.duration(ctx, "topology_expire", &mut s.topology_expire)?;
    f.unsupported(
        ctx,
        &["queue_size", "bulk_queue_size", "max_procs", "geoip"],
    );
    f.finish(ctx);
    Ok(())
}

fn interface(node: Node, path: &str, ctx: &mut Ctx) -> Result<InterfaceConfig, ConfigError> {
    let mut ic = InterfaceConfig::default();
    let mut f = Fields::of(node, path, ctx)?;
    // `device: eth0`, `device: any`, or several devices as a list (kept
    // comma-separated: `device: [eth0, eth1]` is `device: eth0,eth1`).
    if let Some((n, p)) = f.take_set("device") {
        ic.device = match n.value {
            Value::Seq(_) => to_strings(&n, &p, ctx)?.join(","),
            _ => to_string(&n, &p, ctx)?,
        };
    }
    if let Some((n, p)) = f.take_set("type") {
        let name = to_string(&n, &p, ctx)?;
        ic.kind = match name.as_str() {
            "af_packet" | "afpacket" => CaptureType::AfPacket,
            "pcap" => CaptureType::Pcap,
            "pf_ring" | "pfring" => CaptureType::PfRing,
            _ => {
                return Err(ctx.err(
                    n.pos,
                    &p,
                    format!("expected af_packet, pcap or pf_ring, found {name:?}"),
                ));
            }
        };
    }
    f.int(ctx, "snaplen", &mut ic.snaplen, 1, 262_144)?;
    f.int(ctx, "buffer_size_mb", &mut ic.buffer_size_mb, 1, 65_536)?;
    f.bool(ctx, "with_vlans", &mut ic.with_vlans)?;
    f.opt_string(ctx, "bpf_filter", &mut ic.bpf_filter)?;
    if ic
        .bpf_filter
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        ic.bpf_filter = None;
    }
    f.bool(ctx, "auto_promisc_mode", &mut ic.auto_promisc_mode)?;
    f.strings(ctx, "internal_networks", &mut ic.internal_networks)?;
    f.unsupported(
        ctx,
        &[
            "fanout_group",
            "metrics_interval",
            "poll_default_route",
            "ignore_outgoing",
        ],
    );
    f.finish(ctx);
    Ok(ic)
}

fn interfaces(node: Option<Node>, ctx: &mut Ctx) -> Result<Vec<InterfaceConfig>, ConfigError> {
    let Some(node) = node else {
        return Ok(vec![InterfaceConfig::default()]);
    };
    let mut out: Vec<InterfaceConfig> = Vec::new();
    match node.value {
        Value::Seq(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let path = format!("interfaces.{i}");
                let pos = item.pos;
                let ic = interface(item, &path, ctx)?;
                if out.iter().any(|o| o.device == ic.device) {
                    return Err(ctx.err(
                        pos,
                        &path,
                        format!("device {:?} is listed twice", ic.device),
                    ));
                }
                out.push(ic);
            }
        }
        _ => out.push(interface(node, "interfaces", ctx)?),
    }
    if out.is_empty() {
        out.push(InterfaceConfig::default());
    }
    Ok(out)
}

/// `tls:` (1.x) and `ssl:` (5.x+) under an Elasticsearch output.
fn tls(
    node: Node,
    path: &str,
    ctx: &mut Ctx,
    es: &mut ElasticsearchOutput,
) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, path, ctx)?;
    let mut enabled = true;
    f.bool(ctx, "enabled", &mut enabled)?;
    f.strings(
        ctx,
        "certificate_authorities",
        &mut es.tls_certificate_authorities,
    )?;
    let mut insecure = false;
    if f.has("insecure") {
        f.bool(ctx, "insecure", &mut insecure)?;
        es.tls_verify = !insecure;
    }
    let mut mode = None;
    f.choice(
        ctx,
        "verification_mode",
        &["none", "certificate", "full", "strict"],
        &mut mode,
    )?;
    if let Some(mode) = mode {
        es.tls_verify = mode != "none";
    }
    f.unsupported(
        ctx,
        &[
            "certificate",
            "certificate_key",
            "key",
            "key_passphrase",
            "cipher_suites",
            "curve_types",
            "min_version",
            "max_version",
            "supported_protocols",
            "renegotiation",
            "ca_trusted_fingerprint",
            "ca_sha256",
        ],
    );
    f.finish(ctx);
    if !enabled {
        let d = ElasticsearchOutput::default();
        es.tls_certificate_authorities = d.tls_certificate_authorities;
        es.tls_verify = d.tls_verify;
    }
    Ok(())
}

fn template(
    node: Node,
    path: &str,
    ctx: &mut Ctx,
    t: &mut TemplateConfig,
) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, path, ctx)?;
    f.bool(ctx, "enabled", &mut t.enabled)?;
    f.string(ctx, "name", &mut t.name)?;
    f.string(ctx, "pattern", &mut t.pattern)?;
    f.opt_string(ctx, "path", &mut t.path)?;
    f.bool(ctx, "overwrite", &mut t.overwrite)?;
    f.unsupported(
        ctx,
        &["fields", "settings", "append_fields", "json", "type"],
    );
    f.finish(ctx);
    Ok(())
}

/// Folds the 1.x `host`/`port` pair into `hosts`.
fn fold_host_port(
    f: &mut Fields,
    ctx: &mut Ctx,
    default_port: u16,
    hosts: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let host_node = f.take("host");
    let port_node = f.take("port");
    let explicit_hosts = f.has("hosts");
    f.strings(ctx, "hosts", hosts)?;
    if host_node.is_none() && port_node.is_none() {
        return Ok(());
    }
    let mut host = "localhost".to_string();
    let mut port = default_port;
    let mut pos = Pos::default();
    if let Some(n) = host_node.filter(|n| !n.is_null()) {
        host = to_string(&n, &f.child("host"), ctx)?;
        pos = n.pos;
    }
    if let Some(n) = port_node.filter(|n| !n.is_null()) {
        port = to_int(&n, &f.child("port"), ctx, 1, 65535)?;
        pos = n.pos;
    }
    if explicit_hosts {
        ctx.warn(
            pos,
            &f.child("host"),
            "both host/port and hosts are set; host/port ignored",
        );
    } else {
        *hosts = vec![format!("{host}:{port}")];
    }
    Ok(())
}

fn elasticsearch(node: Node, ctx: &mut Ctx) -> Result<ElasticsearchOutput, ConfigError> {
    let path = "output.elasticsearch";
    let mut es = ElasticsearchOutput::default();
    let mut f = Fields::of(node, path, ctx)?;
    f.bool(ctx, "enabled", &mut es.enabled)?;
    fold_host_port(&mut f, ctx, 9200, &mut es.hosts)?;
    f.opt_string(ctx, "protocol", &mut es.protocol)?;
    f.opt_string(ctx, "path", &mut es.path)?;
    f.opt_string(ctx, "username", &mut es.username)?;
    f.opt_string(ctx, "password", &mut es.password)?;
    f.opt_string(ctx, "api_key", &mut es.api_key)?;
    f.string(ctx, "index", &mut es.index)?;
    f.int(ctx, "bulk_max_size", &mut es.bulk_max_size, 1, MAX_USIZE)?;
    f.int(
        ctx,
        "bulk_max_bytes",
        &mut es.bulk_max_bytes,
        1024,
        MAX_USIZE,
    )?;
    f.duration(ctx, "flush_interval", &mut es.flush_interval)?;
    let mut retries: i64 = if es.max_retries == RETRY_FOREVER {
        -1
    } else {
        es.max_retries as i64
    };
    f.int(ctx, "max_retries", &mut retries, -1, MAX_U32 - 1)?;
    es.max_retries = u32::try_from(retries).unwrap_or(RETRY_FOREVER);
    if let Some((n, p)) = f.take_set("backoff") {
        let mut b = Fields::of(n, &p, ctx)?;
        b.duration(ctx, "init", &mut es.backoff_init)?;
        b.duration(ctx, "max", &mut es.backoff_max)?;
        b.finish(ctx);
        es.backoff_max = es.backoff_max.max(es.backoff_init);
    }
    f.duration(ctx, "timeout", &mut es.timeout)?;
    f.int(ctx, "compression_level", &mut es.compression_level, 0, 9)?;
    f.int(
        ctx,
        "max_response_bytes",
        &mut es.max_response_bytes,
        1024,
        MAX_USIZE,
    )?;
    f.bool(ctx, "save_topology", &mut es.save_topology)?;
    for name in ["tls", "ssl"] {
        if let Some((n, p)) = f.take_set(name) {
            tls(n, &p, ctx, &mut es)?;
        }
    }
    if let Some((n, p)) = f.take_set("template") {
        template(n, &p, ctx, &mut es.template)?;
    }
    f.unsupported(
        ctx,
        &[
            "worker",
            "workers",
            "proxy_url",
            "loadbalance",
            "headers",
            "parameters",
            "pipeline",
            "pipelines",
            "topology_expire",
            "max_bulk_size",
            "escape_html",
            "allow_older_versions",
            "indices",
            "kerberos",
            "non_indexable_policy",
            "preset",
            "idle_connection_timeout",
            "codec",
        ],
    );
    f.finish(ctx);
    Ok(es)
}

fn redis_output(node: Node, ctx: &mut Ctx) -> Result<RedisOutput, ConfigError> {
    let path = "output.redis";
    let mut r = RedisOutput::default();
    let mut f = Fields::of(node, path, ctx)?;
    f.bool(ctx, "enabled", &mut r.enabled)?;
    fold_host_port(&mut f, ctx, 6379, &mut r.hosts)?;
    // 1.x called the list name `index`; `key` wins when both are given.
    f.string(ctx, "index", &mut r.key)?;
    f.string(ctx, "key", &mut r.key)?;
    f.int(ctx, "db", &mut r.db, 0, MAX_U32)?;
    f.int(ctx, "db_topology", &mut r.db_topology, 0, MAX_U32)?;
    f.opt_string(ctx, "password", &mut r.password)?;
    let mut datatype = Some(r.datatype.clone());
    f.choice(ctx, "datatype", &["list", "channel"], &mut datatype)?;
    r.datatype = datatype.unwrap_or_else(|| "list".into());
    f.duration(ctx, "timeout", &mut r.timeout)?;
    f.duration(ctx, "reconnect_interval", &mut r.reconnect_interval)?;
    f.bool(ctx, "save_topology", &mut r.save_topology)?;
    f.int(ctx, "bulk_max_size", &mut r.bulk_max_size, 1, MAX_USIZE)?;
    f.int(ctx, "bulk_max_bytes", &mut r.bulk_max_bytes, 1, MAX_USIZE)?;
    f.int(ctx, "max_retries", &mut r.max_retries, -1, MAX_U32)?;
    f.int(
        ctx,
        "max_reply_bytes",
        &mut r.max_reply_bytes,
        1024,
        MAX_USIZE,
    )?;
    if let Some((n, p)) = f.take_set("backoff") {
        let mut b = Fields::of(n, &p, ctx)?;
        b.duration(ctx, "init", &mut r.reconnect_interval)?;
        b.duration(ctx, "max", &mut r.backoff_max)?;
        b.finish(ctx);
    }
    f.unsupported(
        ctx,
        &[
            "host_topology",
            "password_topology",
            "loadbalance",
            "worker",
            "workers",
            "ssl",
            "tls",
            "proxy_url",
            "codec",
            "topology_expire",
        ],
    );
    f.finish(ctx);
    Ok(r)
}

fn file_output(node: Node, ctx: &mut Ctx) -> Result<FileOutput, ConfigError> {
    let mut o = FileOutput::default();
    let mut f = Fields::of(node, "output.file", ctx)?;
    f.bool(ctx, "enabled", &mut o.enabled)?;
    f.string(ctx, "path", &mut o.path)?;
    f.string(ctx, "filename", &mut o.filename)?;
    f.int(
        ctx,
        "rotate_every_kb",
        &mut o.rotate_every_kb,
        1,
        u64::MAX as i128,
    )?;
    f.int(ctx, "number_of_files", &mut o.number_of_files, 1, 1024)?;
    f.unsupported(ctx, &["permissions", "codec", "rotate_on_startup"]);
    f.finish(ctx);
    Ok(o)
}

fn console_output(node: Node, ctx: &mut Ctx) -> Result<ConsoleOutput, ConfigError> {
    let mut o = ConsoleOutput::default();
    let mut f = Fields::of(node, "output.console", ctx)?;
    f.bool(ctx, "enabled", &mut o.enabled)?;
    f.bool(ctx, "pretty", &mut o.pretty)?;
    f.unsupported(ctx, &["codec", "bulk_max_size"]);
    f.finish(ctx);
    Ok(o)
}

fn outputs(node: Node, ctx: &mut Ctx) -> Result<OutputsConfig, ConfigError> {
    let mut o = OutputsConfig::default();
    let mut f = Fields::of(node, "output", ctx)?;
    if let Some(n) = f.take("elasticsearch") {
        o.elasticsearch = Some(elasticsearch(n, ctx)?);
    }
    if let Some(n) = f.take("redis") {
        o.redis = Some(redis_output(n, ctx)?);
    }
    if let Some(n) = f.take("file") {
        o.file = Some(file_output(n, ctx)?);
    }
    if let Some(n) = f.take("console") {
        o.console = Some(console_output(n, ctx)?);
    }
    f.unsupported(ctx, &["logstash", "kafka", "discard"]);
    f.finish(ctx);
    Ok(o)
}

fn pipeline(node: Node, ctx: &mut Ctx, p: &mut PipelineConfig) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, "pipeline", ctx)?;
    f.int(ctx, "readers", &mut p.readers, 0, 1024)?;
    f.int(ctx, "workers", &mut p.workers, 0, 1024)?;
    f.bool(ctx, "pin", &mut p.pin)?;
    f.int(ctx, "batch_packets", &mut p.batch_packets, 1, 1 << 20)?;
    f.int(ctx, "worker_queue", &mut p.worker_queue, 1, 1 << 20)?;
    f.int(ctx, "output_queue", &mut p.output_queue, 1, 1 << 20)?;
    f.int(
        ctx,
        "output_queue_events",
        &mut p.output_queue_events,
        1,
        1 << 30,
    )?;
    f.int(
        ctx,
        "output_queue_bytes",
        &mut p.output_queue_bytes,
        4096,
        MAX_USIZE,
    )?;
    let mut when_full = Some(p.when_full.clone());
    f.choice(ctx, "when_full", &["block", "drop_newest"], &mut when_full)?;
    p.when_full = when_full.unwrap_or_else(|| "block".into());
    f.int(ctx, "max_flows", &mut p.max_flows, 1, MAX_USIZE)?;
    f.int(
        ctx,
        "tcp_max_closed_flows",
        &mut p.tcp_max_closed_flows,
        0,
        MAX_USIZE,
    )?;
    f.duration(ctx, "tcp_closed_timeout", &mut p.tcp_closed_timeout)?;
    f.int(
        ctx,
        "tcp_max_ooo_bytes",
        &mut p.tcp_max_ooo_bytes,
        0,
        MAX_USIZE,
    )?;
    f.int(
        ctx,
        "tcp_max_ooo_segments",
        &mut p.tcp_max_ooo_segments,
        0,
        MAX_USIZE,
    )?;
    f.int(
        ctx,
        "tcp_max_ooo_total_bytes",
        &mut p.tcp_max_ooo_total_bytes,
        0,
        MAX_USIZE,
    )?;
    f.int(
        ctx,
        "defrag_max_datagrams",
        &mut p.defrag_max_datagrams,
        0,
        MAX_USIZE,
    )?;
    f.int(
        ctx,
        "defrag_max_bytes",
        &mut p.defrag_max_bytes,
        0,
        MAX_USIZE,
    )?;
    f.duration(ctx, "defrag_timeout", &mut p.defrag_timeout)?;
    f.finish(ctx);
    Ok(())
}

const LOG_LEVELS: &[&str] = &[
    "critical", "error", "warning", "warn", "info", "debug", "trace",
];

fn logging(node: Node, ctx: &mut Ctx, l: &mut LoggingConfig) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, "logging", ctx)?;
    let mut level = Some(l.level.clone());
    f.choice(ctx, "level", LOG_LEVELS, &mut level)?;
    l.level = level.unwrap_or_else(|| "info".into());
    f.strings(ctx, "selectors", &mut l.selectors)?;
    f.bool(ctx, "to_stderr", &mut l.to_stderr)?;
    f.duration(ctx, "metrics_interval", &mut l.metrics_interval)?;
    if let Some((n, p)) = f.take_set("metrics") {
        // Beats 5+: `logging.metrics.period`.
        let mut m = Fields::of(n, &p, ctx)?;
        m.duration(ctx, "period", &mut l.metrics_interval)?;
        m.bool(ctx, "enabled", &mut l.metrics_enabled)?;
        m.unsupported(ctx, &["namespaces"]);
        m.finish(ctx);
    }
    f.unsupported(
        ctx,
        &[
            "to_syslog",
            "to_files",
            "files",
            "json",
            "to_eventlog",
            "ecs",
            "event_data",
        ],
    );
    f.finish(ctx);
    Ok(())
}

/// Beats' monitoring endpoint: `http.enabled`, `http.host`, `http.port`.
fn http_endpoint(node: Node, ctx: &mut Ctx, h: &mut HttpEndpointConfig) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, "http", ctx)?;
    f.bool(ctx, "enabled", &mut h.enabled)?;
    f.string(ctx, "host", &mut h.host)?;
    f.int(ctx, "port", &mut h.port, 0, 65535)?;
    f.unsupported(
        ctx,
        &["named_pipe.user", "named_pipe.security_descriptor", "pprof"],
    );
    f.finish(ctx);
    Ok(())
}

/// Beats 5+: `queue.mem.events`, `queue.mem.bytes` and `queue.when_full` are the
/// per-output queue bounds (`pipeline.output_queue_events`, `output_queue_bytes`,
/// `when_full`).
fn queue(node: Node, ctx: &mut Ctx, p: &mut PipelineConfig) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, "queue", ctx)?;
    if let Some((n, path)) = f.take_set("mem") {
        let mut m = Fields::of(n, &path, ctx)?;
        m.int(ctx, "events", &mut p.output_queue_events, 1, 1 << 30)?;
        m.int(ctx, "bytes", &mut p.output_queue_bytes, 4096, MAX_USIZE)?;
        m.unsupported(ctx, &["flush"]);
        m.finish(ctx);
    }
    let mut when_full = Some(p.when_full.clone());
    f.choice(ctx, "when_full", &["block", "drop_newest"], &mut when_full)?;
    p.when_full = when_full.unwrap_or_else(|| "block".into());
    f.unsupported(ctx, &["disk", "spool"]);
    f.finish(ctx);
    Ok(())
}

/// Beats 6+: `setup.template.*` applies to the Elasticsearch output's template.
fn setup(node: Node, ctx: &mut Ctx, out: &mut OutputsConfig) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, "setup", ctx)?;
    if let Some(n) = f.take("template") {
        match out.elasticsearch.as_mut() {
            Some(es) => template(n, "setup.template", ctx, &mut es.template)?,
            None => {
                // Still type-check it, then say it has no effect.
                let mut scratch = TemplateConfig::default();
                let pos = n.pos;
                template(n, "setup.template", ctx, &mut scratch)?;
                ctx.warn(
                    pos,
                    "setup.template",
                    "ignored: no output.elasticsearch section",
                );
            }
        }
    }
    f.unsupported(ctx, &["kibana", "dashboards", "ilm"]);
    f.finish(ctx);
    Ok(())
}

/// Converts the canonical tree. `restrict_protocols`: the configuration file has
/// a protocols section, so protocols it does not list are disabled.
pub fn build(root: Node, restrict_protocols: bool, ctx: &mut Ctx) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut f = Fields::of(root, "", ctx)?;
    if let Some(n) = f.take("shipper") {
        shipper(n, ctx, &mut cfg.shipper)?;
    }
    cfg.interfaces = interfaces(f.take("interfaces").filter(|n| !n.is_null()), ctx)?;
    cfg.protocols = protocols(f.take("protocols"), restrict_protocols, ctx)?;
    if let Some(n) = f.take("output") {
        cfg.output = outputs(n, ctx)?;
    }
    if let Some(n) = f.take("pipeline") {
        pipeline(n, ctx, &mut cfg.pipeline)?;
    }
    if let Some(n) = f.take("logging") {
        logging(n, ctx, &mut cfg.logging)?;
    }
    if let Some(n) = f.take("setup") {
        setup(n, ctx, &mut cfg.output)?;
    }
    if let Some(n) = f.take("http") {
        http_endpoint(n, ctx, &mut cfg.http)?;
    }
    if let Some(n) = f.take("queue") {
        queue(n, ctx, &mut cfg.pipeline)?;
    }
    if let Some(n) = f.take("packetbeat") {
        let mut p = Fields::of(n, "packetbeat", ctx)?;
        p.unsupported(
            ctx,
            &[
                "flows",
                "procs",
                "shutdown_timeout",
                "overwrite_pipelines",
                "npcap",
                "ignore_outgoing",
            ],
        );
        p.finish(ctx);
    }
    f.unsupported(
        ctx,
        &[
            "procs",
            "flows",
            "fields",
            "fields_under_root",
            "processors",
            "monitoring",
            "xpack",
            "path",
            "seccomp",
            "max_procs",
            "runoptions",
            "filter",
            "geoip",
        ],
    );
    f.finish(ctx);
    Ok(cfg)
}
