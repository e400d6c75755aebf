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
    /// Ports given in the protocol sections read so far.
    pub claims: Vec<PortClaim>,
}

impl Ctx {
    pub fn new(file_name: &str) -> Ctx {
        Ctx {
            sources: vec![Source {
                name: file_name.to_string(),
                show_pos: true,
            }],
            warnings: Vec::new(),
            claims: Vec::new(),
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
    pub path: String,
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
    pub fn choice(
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

    /// Beats' `max_retries`: a count, or `-1` for no end.
    pub fn retries(
        &mut self,
        ctx: &Ctx,
        name: &str,
        slot: &mut MaxRetries,
    ) -> Result<(), ConfigError> {
        let mut n: i64 = match *slot {
            MaxRetries::Bounded(n) => i64::try_from(n).unwrap_or(i64::MAX),
            MaxRetries::Forever => -1,
        };
        self.int(ctx, name, &mut n, -1, MAX_U32)?;
        *slot = MaxRetries::from_setting(n);
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

/// `ports` of a protocol section, remembered with their positions in
/// [`Ctx::claims`] for the check that no port belongs to two protocols.
pub(super) fn proto_ports(
    c: &mut ProtoCommon,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    let Some((n, path)) = f.take_set("ports") else {
        return Ok(());
    };
    let ports = to_ports(&n, &path, ctx)?;
    c.ports = ports.iter().map(|(p, _)| *p).collect();
    let section = f.path.as_str();
    if let Some(protocol) = PROTOCOL_NAMES
        .iter()
        .copied()
        .find(|p| section.strip_prefix("protocols.") == Some(*p))
    {
        ctx.claims.retain(|cl| cl.protocol != protocol);
        ctx.claims
            .extend(ports.into_iter().map(|(port, pos)| PortClaim {
                protocol,
                port,
                pos: Some(pos),
                path: path.clone(),
            }));
    }
    Ok(())
}

/// Protocols Packetbeat has and wirebeat does not parse.
const OTHER_PROTOCOLS: &[&str] = &[
    "mongodb",
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
    "http", "mysql", "redis", "pgsql", "thrift", "dns", "memcache", "icmp",
];

fn protocols(
    node: Option<Node>,
    restrict: bool,
    ctx: &mut Ctx,
) -> Result<ProtocolsConfig, ConfigError> {
    let mut pc = ProtocolsConfig::default();
    if restrict {
        for name in PROTOCOL_NAMES {
            if let Some(c) = pc.common_mut(name) {
                c.enabled = false;
            }
        }
    }
    let Some(node) = node else {
        check_ports(&pc, Vec::new(), ctx)?;
        return Ok(pc);
    };
    let mut all = Fields::of(node, "protocols", ctx)?;
    for (key, value) in all.drain() {
        let path = join("protocols", &key.name);
        let mut f = Fields::of(value, &path, ctx)?;
        if let Some(c) = pc.common_mut(&key.name) {
            c.enabled = true;
        }
        let unsupported = match pc.read_section(&key.name, &mut f, ctx) {
            Some(read) => read?,
            None if OTHER_PROTOCOLS.contains(&key.name.as_str()) => {
                ctx.warn(
                    key.pos,
                    &path,
                    "protocol not supported by wirebeat, ignored",
                );
                continue;
            }
            None => {
                ctx.warn(key.pos, &path, "unknown protocol, ignored");
                continue;
            }
        };
        f.unsupported(ctx, ProtoCommon::UNSUPPORTED);
        f.unsupported(ctx, unsupported);
        f.finish(ctx);
        if key.name == "icmp" && !pc.icmp.common.ports.is_empty() {
            ctx.warn(
                key.pos,
                &join(&path, "ports"),
                "ICMP has no ports: every ICMP message is followed; ignored",
            );
            pc.icmp.common.ports.clear();
        }
    }
    let claims = std::mem::take(&mut ctx.claims);
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

/// `device: eth0`, `device: any`, or several devices as a list (kept
/// comma-separated: `device: [eth0, eth1]` is `device: eth0,eth1`).
pub(super) fn device(
    ic: &mut InterfaceConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, p)) = f.take_set("device") {
        ic.device = match n.value {
            Value::Seq(_) => to_strings(&n, &p, ctx)?.join(","),
            _ => to_string(&n, &p, ctx)?,
        };
    }
    Ok(())
}

/// `type`: af_packet (also `afpacket`), pcap or pf_ring (also `pfring`).
pub(super) fn capture_type(
    ic: &mut InterfaceConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
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
    Ok(())
}

fn interface(node: Node, path: &str, ctx: &mut Ctx) -> Result<InterfaceConfig, ConfigError> {
    let mut ic = InterfaceConfig::default();
    ic.read_section(node, path, ctx)?;
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
    cas: &mut Vec<String>,
    verify: &mut bool,
) -> Result<(), ConfigError> {
    let mut f = Fields::of(node, path, ctx)?;
    let mut enabled = true;
    f.bool(ctx, "enabled", &mut enabled)?;
    f.strings(ctx, "certificate_authorities", cas)?;
    let mut insecure = false;
    if f.has("insecure") {
        f.bool(ctx, "insecure", &mut insecure)?;
        *verify = !insecure;
    }
    let mut mode = None;
    f.choice(
        ctx,
        "verification_mode",
        &["none", "certificate", "full", "strict"],
        &mut mode,
    )?;
    if let Some(mode) = mode {
        *verify = mode != "none";
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
        // TLS settings off: the system roots, verified.
        cas.clear();
        *verify = true;
    }
    Ok(())
}

fn template(
    node: Node,
    path: &str,
    ctx: &mut Ctx,
    t: &mut TemplateConfig,
) -> Result<(), ConfigError> {
    t.read_section(node, path, ctx)
}

/// `hosts`, with the 1.x `host`/`port` pair folded in.
pub(super) fn fold_host_port(
    f: &mut Fields,
    ctx: &mut Ctx,
    default_port: u16,
    hosts: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let host_node = f.take("host");
    let port_node = f.take("port");
    let explicit_hosts = f.has("hosts");
    if let Some(n) = f.take("hosts") {
        let path = f.child("hosts");
        *hosts = to_strings(&n, &path, ctx)?;
        let positions: Vec<Pos> = match &n.value {
            Value::Seq(items) => items.iter().map(|i| i.pos).collect(),
            _ => vec![n.pos],
        };
        for (h, pos) in hosts.iter().zip(positions) {
            if let Err(why) = check_host(h) {
                return Err(ctx.err(pos, &path, format!("{h:?}: {why}")));
            }
        }
    }
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

/// One `hosts` entry: `[scheme://]host[:port][/path]`, the host a name, an IPv4
/// address or an IPv6 address (in brackets when a port follows). A number alone
/// (`hosts: 12`) is refused rather than dialled as 0.0.0.12.
pub(super) fn check_host(entry: &str) -> Result<(), String> {
    let rest = match entry.split_once("://") {
        Some((scheme, rest)) => {
            if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!("not a URL scheme: {scheme:?}"));
            }
            rest
        }
        None => entry,
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err("unclosed `[` in an IPv6 address".into());
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("not an IPv6 address: {addr:?}"));
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (addr, Some(p)),
                None => return Err(format!("unexpected {after:?} after the address")),
            },
        }
    } else if authority.matches(':').count() > 1 {
        // a bare IPv6 address, no port
        if authority.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not a host, host:port or [IPv6]:port".into());
        }
        (authority, None)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host name or address".into());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err("a number is not a host: give a name or a full IPv4 address".into());
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(1..))
    {
        return Err(format!("port {p:?} is not a number from 1 to 65535"));
    }
    Ok(())
}

/// `backoff.init` and `backoff.max` (never below `init`).
pub(super) fn es_backoff(
    es: &mut ElasticsearchOutput,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, p)) = f.take_set("backoff") {
        let mut b = Fields::of(n, &p, ctx)?;
        b.duration(ctx, "init", &mut es.backoff_init)?;
        b.duration(ctx, "max", &mut es.backoff_max)?;
        b.finish(ctx);
        es.backoff_max = es.backoff_max.max(es.backoff_init);
    }
    Ok(())
}

/// `tls:` (1.x) and `ssl:` (5.x+) of a section, into its CA list and switch.
fn tls_sections(
    f: &mut Fields,
    ctx: &mut Ctx,
    cas: &mut Vec<String>,
    verify: &mut bool,
) -> Result<(), ConfigError> {
    for name in ["tls", "ssl"] {
        if let Some((n, p)) = f.take_set(name) {
            tls(n, &p, ctx, cas, verify)?;
        }
    }
    Ok(())
}

pub(super) fn es_tls(
    es: &mut ElasticsearchOutput,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    tls_sections(
        f,
        ctx,
        &mut es.tls_certificate_authorities,
        &mut es.tls_verify,
    )
}

pub(super) fn kibana_tls(
    k: &mut KibanaConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    tls_sections(
        f,
        ctx,
        &mut k.tls_certificate_authorities,
        &mut k.tls_verify,
    )
}

/// `space.id` (Beats' nested form).
pub(super) fn kibana_space(
    k: &mut KibanaConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, p)) = f.take_set("space") {
        let mut s = Fields::of(n, &p, ctx)?;
        s.opt_string(ctx, "id", &mut k.space_id)?;
        s.finish(ctx);
    }
    Ok(())
}

pub(super) fn es_template(
    es: &mut ElasticsearchOutput,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, p)) = f.take_set("template") {
        template(n, &p, ctx, &mut es.template)?;
    }
    Ok(())
}

/// 1.x called the list name `index`; `key` wins when both are given.
pub(super) fn redis_key(
    r: &mut RedisOutput,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    f.string(ctx, "index", &mut r.key)?;
    f.string(ctx, "key", &mut r.key)
}

/// `backoff.init` is `reconnect_interval`; `backoff.max` caps its doubling.
pub(super) fn redis_backoff(
    r: &mut RedisOutput,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, p)) = f.take_set("backoff") {
        let mut b = Fields::of(n, &p, ctx)?;
        b.duration(ctx, "init", &mut r.reconnect_interval)?;
        b.duration(ctx, "max", &mut r.backoff_max)?;
        b.finish(ctx);
    }
    Ok(())
}

fn outputs(node: Node, ctx: &mut Ctx) -> Result<OutputsConfig, ConfigError> {
    let mut o = OutputsConfig::default();
    let mut f = Fields::of(node, "output", ctx)?;
    if let Some(n) = f.take("elasticsearch") {
        let es = o.elasticsearch.insert(ElasticsearchOutput::default());
        es.read_section(n, "output.elasticsearch", ctx)?;
    }
    if let Some(n) = f.take("redis") {
        let r = o.redis.insert(RedisOutput::default());
        r.read_section(n, "output.redis", ctx)?;
    }
    if let Some(n) = f.take("file") {
        let file = o.file.insert(FileOutput::default());
        file.read_section(n, "output.file", ctx)?;
    }
    if let Some(n) = f.take("console") {
        let console = o.console.insert(ConsoleOutput::default());
        console.read_section(n, "output.console", ctx)?;
    }
    f.unsupported(ctx, &["logstash", "kafka", "discard"]);
    f.finish(ctx);
    Ok(o)
}

/// Beats 5+: `logging.metrics.period` and `logging.metrics.enabled`.
pub(super) fn log_metrics(
    l: &mut LoggingConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, p)) = f.take_set("metrics") {
        let mut m = Fields::of(n, &p, ctx)?;
        m.duration(ctx, "period", &mut l.metrics_interval)?;
        m.bool(ctx, "enabled", &mut l.metrics_enabled)?;
        m.unsupported(ctx, &["namespaces"]);
        m.finish(ctx);
    }
    Ok(())
}

/// `flows.timeout`: at least one second (Packetbeat refuses less).
pub(super) fn flows_timeout(
    fc: &mut FlowsConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    if let Some((n, path)) = f.take_set("timeout") {
        let d = to_duration(&n, &path, ctx)?;
        if d < Duration::from_secs(1) {
            return Err(ctx.err(n.pos, &path, "the flow timeout must be at least 1s"));
        }
        fc.timeout = d;
    }
    Ok(())
}

/// `flows.period`: a duration of at least one second, or `-1` (any value <= 0) for
/// final reports only.
pub(super) fn flows_period(
    fc: &mut FlowsConfig,
    f: &mut Fields,
    ctx: &mut Ctx,
) -> Result<(), ConfigError> {
    let Some((n, path)) = f.take_set("period") else {
        return Ok(());
    };
    let off = match &n.value {
        Value::Int(i) => *i <= 0,
        Value::Float(x) => *x <= 0.0,
        Value::Str(s) => s.trim().starts_with('-'),
        _ => false,
    };
    if off {
        fc.period = None;
        return Ok(());
    }
    let d = to_duration(&n, &path, ctx)?;
    if d.is_zero() {
        fc.period = None;
    } else if d < Duration::from_secs(1) {
        return Err(ctx.err(
            n.pos,
            &path,
            "the flow report period must be -1 or at least 1s",
        ));
    } else {
        fc.period = Some(d);
    }
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
    f.pick(ctx, "when_full", &mut p.when_full)?;
    f.unsupported(ctx, &["disk", "spool"]);
    f.finish(ctx);
    Ok(())
}

/// Beats 6+: `setup.template.*` applies to the Elasticsearch output's template;
/// `setup.kibana.*` is where `setup --dashboards` imports.
fn setup(node: Node, ctx: &mut Ctx, cfg: &mut Config) -> Result<(), ConfigError> {
    let out = &mut cfg.output;
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
    if let Some(n) = f.take("kibana") {
        cfg.kibana.read_section(n, "setup.kibana", ctx)?;
    }
    f.unsupported(ctx, &["dashboards", "ilm"]);
    f.finish(ctx);
    Ok(())
}

/// Converts the canonical tree. `restrict_protocols`: the configuration file has
/// a protocols section, so protocols it does not list are disabled.
pub fn build(root: Node, restrict_protocols: bool, ctx: &mut Ctx) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut f = Fields::of(root, "", ctx)?;
    if let Some(n) = f.take("shipper") {
        cfg.shipper.read_section(n, "shipper", ctx)?;
    }
    cfg.interfaces = interfaces(f.take("interfaces").filter(|n| !n.is_null()), ctx)?;
    cfg.protocols = protocols(f.take("protocols"), restrict_protocols, ctx)?;
    if let Some(n) = f.take("output") {
        cfg.output = outputs(n, ctx)?;
    }
    if let Some(n) = f.take("pipeline") {
        cfg.pipeline.read_section(n, "pipeline", ctx)?;
    }
    if let Some(n) = f.take("logging") {
        cfg.logging.read_section(n, "logging", ctx)?;
    }
    if let Some(n) = f.take("setup") {
        setup(n, ctx, &mut cfg)?;
    }
    if let Some(n) = f.take("http") {
        // Beats' monitoring endpoint: `http.enabled`, `http.host`, `http.port`.
        cfg.http.read_section(n, "http", ctx)?;
    }
    if let Some(n) = f.take("queue") {
        queue(n, ctx, &mut cfg.pipeline)?;
    }
    if let Some(n) = f.take("flows") {
        // Packetbeat: the section being there turns flows on.
        cfg.flows.enabled = true;
        cfg.flows.read_section(n, "flows", ctx)?;
    }
    if let Some(n) = f.take("packetbeat") {
        let mut p = Fields::of(n, "packetbeat", ctx)?;
        p.unsupported(
            ctx,
            &[
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
