//! Configuration: the canonical settings tree (Packetbeat 1.x layout), its defaults,
//! and loading from YAML with the other accepted layouts mapped onto it.
//!
//! The typed structs below are what the rest of wirebeat reads. Each section is
//! declared once in a settings table (`settings!` and `protocols!` in
//! `settings.rs`): key, type, default and doc per setting, from which the
//! struct, its default, the typed conversion and the export are generated.
//! Loading, layout mapping, `-E` overrides, validation and export live in the
//! submodules.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[macro_use]
mod settings;
mod convert;
mod duration;
mod error;
mod export;
mod layout;
mod tree;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use settings::Choice;
pub use tree::MAX_INPUT_BYTES;

/// Every setting wirebeat reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub shipper: ShipperConfig,
    pub interfaces: Vec<InterfaceConfig>,
    pub protocols: ProtocolsConfig,
    pub output: OutputsConfig,
    pub pipeline: PipelineConfig,
    pub logging: LoggingConfig,
    /// Beats' local monitoring endpoint (`http.*`): counters as JSON and Prometheus text.
    pub http: HttpEndpointConfig,
    /// `setup.kibana.*`: where `wirebeat setup --dashboards` imports the dashboards.
    pub kibana: KibanaConfig,
    /// `flows.*` (`packetbeat.flows.*`): network flow reports.
    pub flows: FlowsConfig,
}

const MAX_USIZE: i128 = usize::MAX as i128;
const MAX_U32: i128 = u32::MAX as i128;

settings! {
    pub struct ShipperConfig {
        /// Default: the host name.
        name: String = hostname() => text;
        tags: Vec<String> = Vec::new() => texts;
        ignore_outgoing: bool = false => bool;
        refresh_topology_freq: Duration = Duration::from_secs(10) => duration;
        topology_expire: Duration = Duration::from_secs(15) => duration;
    }
    unsupported ["queue_size", "bulk_queue_size", "max_procs", "geoip"]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaptureType {
    #[default]
    AfPacket,
    Pcap,
    PfRing,
}

impl CaptureType {
    /// The configuration name (`type`).
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureType::AfPacket => "af_packet",
            CaptureType::Pcap => "pcap",
            CaptureType::PfRing => "pf_ring",
        }
    }
}

settings! {
    pub struct InterfaceConfig {
        /// A device name, `any`, or several names separated by commas (see
        /// [`InterfaceConfig::devices`]).
        device: String = "any".into() => custom(convert::device, export::device);
        /// `type`.
        kind: CaptureType = CaptureType::AfPacket => custom(convert::capture_type, export::capture_type);
        snaplen: u32 = 65535 => int(1, 262_144);
        buffer_size_mb: u32 = 30 => int(1, 65_536);
        with_vlans: bool = false => bool;
        bpf_filter: Option<String> = None => nonblank_text;
        auto_promisc_mode: bool = false => bool;
        /// CIDRs (or `loopback`, `private`) inside the perimeter, for `network.direction`.
        internal_networks: Vec<String> = Vec::new() => texts;
    }
    unsupported [
        "fanout_group",
        "metrics_interval",
        "poll_default_route",
        "ignore_outgoing",
    ]
}

impl InterfaceConfig {
    /// Every device named by `device` (`eth0,eth1` is two devices).
    pub fn devices(&self) -> Vec<&str> {
        self.device
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect()
    }
}

settings! {
    /// Options every protocol has.
    pub struct ProtoCommon {
        enabled: bool = true => bool;
        ports: Vec<u16> = Vec::new() => custom(convert::proto_ports, export::proto_ports);
        send_request: bool = false => bool;
        send_response: bool = false => bool;
        transaction_timeout: Duration = Duration::from_secs(10) => duration;
        /// Memory the requests waiting for their response on one connection may hold
        /// (for HTTP, at least twice `max_message_size`).
        queue_max_bytes: usize = 4 << 20 => int(0, MAX_USIZE);
        /// Requests waiting for their response on one connection: the oldest is
        /// published unmatched when a new one would exceed either bound.
        queue_max_messages: usize = 1024 => int(0, MAX_USIZE);
    }
    unsupported [
        "fields",
        "fields_under_root",
        "tags",
        "processors",
        "keep_null",
        "index",
        "interface",
        "pipeline",
    ]
}

impl ProtoCommon {
    pub fn with_ports(ports: &[u16]) -> ProtoCommon {
        ProtoCommon {
            ports: ports.to_vec(),
            ..ProtoCommon::default()
        }
    }

    /// The same with other pairing queue bounds.
    pub fn with_queue(self, queue_max_messages: usize, queue_max_bytes: usize) -> ProtoCommon {
        ProtoCommon {
            queue_max_messages,
            queue_max_bytes,
            ..self
        }
    }
}

settings! {
    pub struct HttpConfig {
        common: ProtoCommon = ProtoCommon::with_ports(&[80, 8080, 8000, 5000, 8002]) => flatten;
        send_headers: Vec<String> = Vec::new() => texts;
        send_all_headers: bool = false => bool;
        split_cookie: bool = false => bool;
        real_ip_header: Option<String> = None => opt_text;
        hide_keywords: Vec<String> = Vec::new() => texts;
        /// `strip_authorization` is the pre-1.0 name.
        redact_authorization: bool = false => bool_or("strip_authorization");
        redact_headers: Vec<String> = Vec::new() => texts;
        include_body_for: Vec<String> = Vec::new() => texts;
        include_request_body_for: Vec<String> = Vec::new() => texts;
        include_response_body_for: Vec<String> = Vec::new() => texts;
        decode_body: bool = true => bool;
        max_message_size: usize = 10 * 1024 * 1024 => int(0, MAX_USIZE);
    }
    unsupported []
}

settings! {
    /// MySQL and PostgreSQL.
    pub struct SqlConfig {
        common: ProtoCommon = ProtoCommon::with_ports(&[]) => flatten;
        max_rows: usize = 10 => int(0, MAX_USIZE);
        max_row_length: usize = 1024 => int(0, MAX_USIZE);
        /// MySQL prepared-statement cache lifetime.
        statement_timeout: Duration = Duration::from_secs(3600) => duration;
        /// PostgreSQL prepared statements (and, separately, portals) remembered per
        /// connection.
        max_statements: usize = 1024 => int(0, MAX_USIZE);
    }
    unsupported []
}

impl SqlConfig {
    fn with_ports(ports: &[u16]) -> SqlConfig {
        SqlConfig {
            common: ProtoCommon::with_ports(ports).with_queue(1024, 16 << 20),
            ..SqlConfig::default()
        }
    }
}

settings! {
    pub struct RedisConfig {
        common: ProtoCommon = ProtoCommon::with_ports(&[6379]).with_queue(20000, 1024 * 1024) => flatten;
    }
    unsupported []
}

settings! {
    pub struct ThriftConfig {
        common: ProtoCommon = ProtoCommon::with_ports(&[9090]) => flatten;
        /// `socket` or `framed`; `None` = detect.
        transport_type: Option<String> = None => opt_one_of(&["socket", "framed"]);
        /// `binary` or `compact`; `None` = detect.
        protocol_type: Option<String> = None => opt_one_of(&["binary", "compact"]);
        idl_files: Vec<String> = Vec::new() => texts;
        string_max_size: usize = 200 => int(0, MAX_USIZE);
        collection_max_size: usize = 15 => int(0, MAX_USIZE);
        capture_reply: bool = true => bool;
        obfuscate_strings: bool = false => bool;
        drop_after_n_struct_fields: usize = 500 => int(0, MAX_USIZE);
    }
    unsupported []
}

settings! {
    pub struct DnsConfig {
        common: ProtoCommon = ProtoCommon::with_ports(&[53]) => flatten;
        /// Write `dns.authorities` (the authority section).
        include_authorities: bool = false => bool;
        /// Write `dns.additionals` (the additional section, without OPT).
        include_additionals: bool = false => bool;
    }
    unsupported []
}

settings! {
    /// ICMP and ICMPv6 (no ports: every message is followed).
    pub struct IcmpConfig {
        common: ProtoCommon = ProtoCommon::default() => flatten;
    }
    unsupported []
}

protocols! {
    pub struct ProtocolsConfig {
        http: HttpConfig = HttpConfig::default(), unsupported [];
        mysql: SqlConfig = SqlConfig::with_ports(&[3306, 3307]), unsupported [];
        pgsql: SqlConfig = SqlConfig::with_ports(&[5432]), unsupported [];
        redis: RedisConfig = RedisConfig::default(), unsupported [];
        thrift: ThriftConfig = ThriftConfig::default(), unsupported [];
        memcache: ProtoCommon = ProtoCommon::with_ports(&[11211]), unsupported [
            "parseunknown",
            "maxvalues",
            "maxbytespervalue",
            "udptransactiontimeout",
        ];
        dns: DnsConfig = DnsConfig::default(), unsupported [];
        icmp: IcmpConfig = IcmpConfig::default(), unsupported [];
    }
}

/// A protocol's settings, with the options every protocol has.
trait HasCommon {
    fn common(&self) -> &ProtoCommon;
    fn common_mut(&mut self) -> &mut ProtoCommon;
}

impl HasCommon for ProtoCommon {
    fn common(&self) -> &ProtoCommon {
        self
    }
    fn common_mut(&mut self) -> &mut ProtoCommon {
        self
    }
}

macro_rules! has_common {
    ($($ty:ty),*) => {
        $(impl HasCommon for $ty {
            fn common(&self) -> &ProtoCommon {
                &self.common
            }
            fn common_mut(&mut self) -> &mut ProtoCommon {
                &mut self.common
            }
        })*
    };
}

has_common!(
    HttpConfig,
    SqlConfig,
    RedisConfig,
    ThriftConfig,
    DnsConfig,
    IcmpConfig
);

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputsConfig {
    pub elasticsearch: Option<ElasticsearchOutput>,
    pub redis: Option<RedisOutput>,
    pub file: Option<FileOutput>,
    pub console: Option<ConsoleOutput>,
}

settings! {
    pub struct ElasticsearchOutput {
        enabled: bool = true => bool;
        /// `host:port` or URLs; the 1.x `host`/`port` pair is folded in here.
        hosts: Vec<String> = vec!["localhost:9200".into()] => hosts(9200);
        protocol: Option<String> = None => opt_text;
        path: Option<String> = None => opt_text;
        username: Option<String> = None => opt_text;
        password: Option<String> = None => secret;
        api_key: Option<String> = None => secret;
        index: String = "packetbeat".into() => text;
        /// Events per bulk request.
        bulk_max_size: usize = 2048 => int(1, MAX_USIZE);
        /// Bytes of events per bulk request (before compression).
        bulk_max_bytes: usize = 8 * 1024 * 1024 => int(1024, MAX_USIZE);
        flush_interval: Duration = Duration::from_secs(1) => duration;
        /// Attempts after the first for a failed request or item; `max_retries: -1`
        /// never gives up.
        max_retries: MaxRetries = MaxRetries::Bounded(3) => retries;
        /// Exponential backoff between retries (Beats `backoff.init` / `backoff.max`).
        backoff_init: Duration = Duration::from_secs(1)
            => custom(convert::es_backoff, export::es_backoff);
        /// Read and exported with `backoff_init`.
        backoff_max: Duration = Duration::from_secs(60) => skip;
        timeout: Duration = Duration::from_secs(90) => duration;
        compression_level: u32 = 0 => int(0, 9);
        /// Largest response body read from the cluster (wirebeat); a larger one fails
        /// the request, which is sent again.
        max_response_bytes: usize = 64 * 1024 * 1024 => int(1024, MAX_USIZE);
        save_topology: bool = false => bool;
        /// `tls.certificate_authorities` (1.x; `ssl.` in 5.x+).
        tls_certificate_authorities: Vec<String> = Vec::new()
            => custom(convert::es_tls, export::es_tls);
        /// Read and exported with `tls_certificate_authorities`.
        tls_verify: bool = true => skip;
        /// Index template (1.x `output.elasticsearch.template`, 6.x+ `setup.template`).
        template: TemplateConfig = TemplateConfig::default()
            => custom(convert::es_template, export::es_template);
    }
    unsupported [
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
    ]
}

settings! {
    /// Beats' `setup.kibana`: the Kibana that `setup --dashboards` imports into.
    pub struct KibanaConfig {
        /// `host:port` or a URL; the port defaults to 5601.
        host: String = "localhost:5601".into() => text;
        protocol: Option<String> = None => opt_text;
        path: Option<String> = None => opt_text;
        username: Option<String> = None => opt_text;
        password: Option<String> = None => secret;
        api_key: Option<String> = None => secret;
        /// `space.id`: the Kibana space; none is the default space.
        space_id: Option<String> = None => custom(convert::kibana_space, export::kibana_space);
        /// `ssl.certificate_authorities`.
        tls_certificate_authorities: Vec<String> = Vec::new()
            => custom(convert::kibana_tls, export::kibana_tls);
        /// Read and exported with `tls_certificate_authorities`.
        tls_verify: bool = true => skip;
        timeout: Duration = Duration::from_secs(90) => duration;
    }
    unsupported ["headers", "proxy_url", "proxy_disable"]
}

/// Attempts after the first before events are given up (Beats `max_retries`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxRetries {
    Bounded(u64),
    /// `max_retries: -1` (any negative number): until the destination accepts,
    /// or the run stops.
    Forever,
}

impl MaxRetries {
    /// Beats' setting: a negative number retries without end.
    pub fn from_setting(n: i64) -> MaxRetries {
        u64::try_from(n).map_or(MaxRetries::Forever, MaxRetries::Bounded)
    }

    pub fn is_forever(self) -> bool {
        self == MaxRetries::Forever
    }
}

/// As written in the configuration: `-1` for [`MaxRetries::Forever`].
impl std::fmt::Display for MaxRetries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxRetries::Bounded(n) => write!(f, "{n}"),
            MaxRetries::Forever => f.write_str("-1"),
        }
    }
}

settings! {
    /// Index template settings of the Elasticsearch output.
    pub struct TemplateConfig {
        /// Load the template when it is absent.
        enabled: bool = true => bool;
        name: String = "packetbeat".into() => text;
        /// Index pattern the template applies to.
        pattern: String = "packetbeat-*".into() => text;
        /// A template JSON file to load instead of the built-in one.
        path: Option<String> = None => opt_text;
        /// Replace an existing template.
        overwrite: bool = false => bool;
    }
    unsupported ["fields", "settings", "append_fields", "json", "type"]
}

choice! {
    /// How the Redis output sends events: `RPUSH` to a list or `PUBLISH` to a
    /// channel.
    pub enum RedisDatatype {
        #[default]
        List = "list",
        Channel = "channel",
    }
}

settings! {
    pub struct RedisOutput {
        enabled: bool = true => bool;
        /// `host:port` entries; the 1.x `host`/`port` pair is folded in here.
        hosts: Vec<String> = vec!["localhost:6379".into()] => hosts(6379);
        /// List or channel name (1.x: `index`).
        key: String = "packetbeat".into() => custom(convert::redis_key, export::redis_key);
        db: u32 = 0 => int(0, MAX_U32);
        db_topology: u32 = 1 => int(0, MAX_U32);
        password: Option<String> = None => secret;
        datatype: RedisDatatype = RedisDatatype::List => choice;
        timeout: Duration = Duration::from_secs(5) => duration;
        reconnect_interval: Duration = Duration::from_secs(1) => duration;
        save_topology: bool = false => bool;
        /// Events per `RPUSH` (5.x `bulk_max_size`).
        bulk_max_size: usize = 2048 => int(1, MAX_USIZE);
        /// Bytes of events per `RPUSH` (wirebeat); a larger single event goes alone.
        bulk_max_bytes: usize = 16 * 1024 * 1024 => int(1, MAX_USIZE);
        /// Attempts after the first before a batch is given up and counted as failed;
        /// `max_retries: -1` retries until it is written.
        max_retries: MaxRetries = MaxRetries::Bounded(3) => retries;
        /// Largest reply accepted from the server, and the most topology data read per
        /// refresh (wirebeat).
        max_reply_bytes: usize = 1024 * 1024 => int(1024, MAX_USIZE);
        /// Longest wait between reconnection attempts; the wait starts at
        /// `reconnect_interval` and doubles up to this (5.x `backoff.max`;
        /// `backoff.init` is `reconnect_interval`).
        backoff_max: Duration = Duration::from_secs(60)
            => custom(convert::redis_backoff, export::redis_backoff);
    }
    unsupported [
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
    ]
}

settings! {
    pub struct FileOutput {
        enabled: bool = true => bool;
        path: String = "/tmp/wirebeat".into() => text;
        filename: String = "wirebeat".into() => text;
        rotate_every_kb: u64 = 10240 => int(1, u64::MAX as i128);
        number_of_files: u32 = 7 => int(1, 1024);
    }
    unsupported ["permissions", "codec", "rotate_on_startup"]
}

settings! {
    pub struct ConsoleOutput {
        enabled: bool = true => bool;
        pretty: bool = false => bool;
    }
    unsupported ["codec", "bulk_max_size"]
}

choice! {
    /// What a full queue does with new data: wait for room (backpressure), or drop
    /// it and count.
    pub enum WhenFull {
        #[default]
        Block = "block",
        DropNewest = "drop_newest",
    }
}

settings! {
    /// wirebeat additions (`pipeline:`): threads, queues and memory bounds.
    pub struct PipelineConfig {
        /// Capture reader threads; 0 = derived from the core count.
        readers: usize = 0 => int(0, 1024);
        /// Worker threads; 0 = derived from the core count.
        workers: usize = 0 => int(0, 1024);
        /// Pin workers to cores.
        pin: bool = true => bool;
        /// Packets per batch handed from a reader to a worker.
        batch_packets: usize = 512 => int(1, 1 << 20);
        /// Batches queued per worker channel.
        worker_queue: usize = 8 => int(1, 1 << 20);
        /// Encoded event chunks (about 256 KiB each) queued towards each output.
        output_queue: usize = 64 => int(1, 1 << 20);
        /// Events queued towards each output (Beats: `queue.mem.events`).
        output_queue_events: usize = 65_536 => int(1, 1 << 30);
        /// Bytes of encoded events queued towards each output (`queue.mem.bytes`).
        output_queue_bytes: usize = 64 * 1024 * 1024 => int(4096, MAX_USIZE);
        /// `block` (backpressure) or `drop_newest` (counted).
        when_full: WhenFull = WhenFull::Block => choice;
        /// Once the input has ended or a stop signal came, how long the outputs may
        /// still take to deliver what is queued (Beats' `shutdown_timeout`); what is
        /// left after it is dropped and counted, and the run ends.
        shutdown_timeout: Duration = Duration::from_secs(10) => duration;
        /// Connections tracked at once by the whole process (shared out among the
        /// workers); when full, a new connection ends the least recently active one
        /// (counted in `flows_evicted`).
        max_flows: usize = 131_072 => int(1, MAX_USIZE);
        /// Closed connections remembered per worker so that their late segments open
        /// no new flow (0: none).
        tcp_max_closed_flows: usize = 65_536 => int(0, MAX_USIZE);
        /// How long a closed connection is remembered (packet time).
        tcp_closed_timeout: Duration = Duration::from_secs(15) => duration;
        /// Out-of-order bytes buffered per TCP stream direction.
        tcp_max_ooo_bytes: usize = 256 * 1024 => int(0, MAX_USIZE);
        /// Out-of-order segments buffered per TCP stream direction.
        tcp_max_ooo_segments: usize = 256 => int(0, MAX_USIZE);
        /// Out-of-order bytes buffered per worker across all streams.
        tcp_max_ooo_total_bytes: usize = 32 * 1024 * 1024 => int(0, MAX_USIZE);
        /// IP datagrams being reassembled at once.
        defrag_max_datagrams: usize = 1024 => int(0, MAX_USIZE);
        /// Bytes held by IP fragment reassembly.
        defrag_max_bytes: usize = 8 * 1024 * 1024 => int(0, MAX_USIZE);
        /// Incomplete datagrams are dropped after this long (packet time).
        defrag_timeout: Duration = Duration::from_secs(30) => duration;
    }
    unsupported []
}

settings! {
    /// Network flows (`flows:` in the 5.x layout, `packetbeat.flows:` later): on when
    /// the section is there unless `enabled: false`, off without it (as Packetbeat).
    pub struct FlowsConfig {
        enabled: bool = false => bool;
        /// A flow with no packet for longer than this (packet time) ends with its
        /// final report; at least 1s.
        timeout: Duration = Duration::from_secs(30) => custom(convert::flows_timeout, export::flows_timeout);
        /// Every live flow is reported this often (packet time, at multiples of the
        /// period); `-1` (or any value <= 0): final reports only. At least 1s.
        period: Option<Duration> = Some(Duration::from_secs(10)) => custom(convert::flows_period, export::flows_period);
        /// Each report counts the packets and bytes since the previous one.
        enable_delta_flow_reports: bool = false => bool;
        /// Flows are not told apart by their Ethernet addresses (and report none).
        allow_mismatched_eth: bool = false => bool;
        /// Flows followed at once by the whole process (shared out among the
        /// workers); a new flow beyond it ends the least recently active one first,
        /// with its final report (counted in `netflows_evicted`).
        max_flows: usize = 65_536 => int(1, MAX_USIZE);
    }
    unsupported [
        "fields",
        "fields_under_root",
        "tags",
        "processors",
        "keep_null",
        "index",
    ]
}

settings! {
    /// The optional local metrics endpoint (Beats' `http.enabled/host/port`).
    pub struct HttpEndpointConfig {
        enabled: bool = false => bool;
        host: String = "localhost".into() => text;
        port: u16 = 5066 => int(0, 65535);
    }
    unsupported ["named_pipe.user", "named_pipe.security_descriptor", "pprof"]
}

/// Accepted `logging.level` names.
const LOG_LEVELS: &[&str] = &[
    "critical", "error", "warning", "warn", "info", "debug", "trace",
];

settings! {
    pub struct LoggingConfig {
        level: String = "info".into() => one_of(LOG_LEVELS);
        selectors: Vec<String> = Vec::new() => texts;
        to_stderr: bool = false => bool;
        /// Also `logging.metrics.period` (Beats 5+).
        metrics_interval: Duration = Duration::from_secs(30) => duration;
        /// `logging.metrics.enabled`: the periodic counters report.
        metrics_enabled: bool = true => custom(convert::log_metrics, export::log_metrics);
    }
    unsupported [
        "to_syslog",
        "to_files",
        "files",
        "json",
        "to_eventlog",
        "ecs",
        "event_data",
    ]
}

/// A loaded configuration.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// Unknown or unsupported settings, each naming its source, position and path.
    pub warnings: Vec<String>,
    /// The file the configuration came from; `None` = built-in defaults.
    pub source: Option<PathBuf>,
}

/// Files tried, in order, when no `-c` is given.
pub const DEFAULT_PATHS: &[&str] = &["wirebeat.yml", "/etc/wirebeat/wirebeat.yml"];

impl Config {
    /// Loads the configuration file and applies `-E` overrides.
    ///
    /// `path` None: ./wirebeat.yml, then /etc/wirebeat/wirebeat.yml, else built-in defaults.
    /// `overrides`: the CLI's `-E key=value` strings (dotted path into the canonical
    /// layout, value parsed as YAML), applied in order after the file.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Loaded, ConfigError> {
        let chosen: Option<PathBuf> = match path {
            Some(p) => Some(p.to_path_buf()),
            None => DEFAULT_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        };
        let Some(file) = chosen else {
            let mut loaded = Self::load_text(None, "<defaults>", overrides)?;
            loaded.source = None;
            return Ok(loaded);
        };
        let name = file.display().to_string();
        let text = read_limited(&file).map_err(|msg| ConfigError::new(name.clone(), "", msg))?;
        let mut loaded = Self::load_text(Some(&text), &name, overrides)?;
        loaded.source = Some(file);
        Ok(loaded)
    }

    /// Loads configuration text; `source_name` names it in messages.
    pub fn from_yaml_str(
        text: &str,
        source_name: &str,
        overrides: &[String],
    ) -> Result<Loaded, ConfigError> {
        Self::load_text(Some(text), source_name, overrides)
    }

    fn load_text(
        text: Option<&str>,
        source_name: &str,
        overrides: &[String],
    ) -> Result<Loaded, ConfigError> {
        let mut ctx = convert::Ctx::new(source_name);
        let root = match text {
            Some(text) => tree::parse(text, 0).map_err(|e| {
                let mut err = ConfigError::new(source_name, "", e.message);
                if e.line > 0 {
                    err.line = Some(e.line);
                    err.column = Some(e.col);
                }
                err
            })?,
            None => tree::Node::new(tree::Value::Null, tree::Pos::default()),
        };
        let mut canonical = layout::normalize(root, &ctx)?;
        let restrict_protocols = layout::has_section(&canonical, "protocols");
        for arg in overrides {
            let src = ctx.add_override(arg);
            layout::apply_override(&mut canonical, arg, src, &ctx)?;
        }
        let config = convert::build(canonical, restrict_protocols, &mut ctx)?;
        Ok(Loaded {
            config,
            warnings: ctx.warnings,
            source: None,
        })
    }

    /// The effective configuration in the canonical (1.x) layout, as YAML, every
    /// setting shown (for `wirebeat export config`). Secrets (passwords, api_key)
    /// are shown as `"<redacted>"`.
    pub fn to_yaml(&self) -> String {
        export::to_yaml(self, true)
    }

    /// Like [`Config::to_yaml`] but with secrets in clear text. Never log this.
    pub fn to_yaml_with_secrets(&self) -> String {
        export::to_yaml(self, false)
    }

    /// tcpdump-syntax capture filter: the first interface's `bpf_filter` when set,
    /// else generated from the ports of the enabled protocols named in
    /// `implemented` (`tcp port N`, `port N` for dns and memcache,
    /// OR-joined in Packetbeat's protocol order), wrapped as `X or (vlan and (X))`
    /// with `with_vlans`. Empty when no port is left (capture everything).
    pub fn bpf_filter(&self, implemented: &[&str]) -> String {
        export::bpf_filter(self, implemented)
    }
}

/// Reads a configuration file, refusing anything over [`MAX_INPUT_BYTES`].
fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open configuration file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read configuration file: {e}"))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "configuration file is larger than the {MAX_INPUT_BYTES} byte limit"
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("configuration file is not UTF-8: {e}"))
}

impl Config {
    /// Every interface's `internal_networks`, parsed.
    pub fn internal_networks(&self) -> Result<crate::event::direction::Networks, String> {
        let all: Vec<String> = self
            .interfaces
            .iter()
            .flat_map(|i| i.internal_networks.iter().cloned())
            .collect();
        crate::event::direction::Networks::parse(&all)
    }
}

/// The machine's host name (`/proc/sys/kernel/hostname`, then `$HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, overrides: &[&str]) -> Result<Loaded, ConfigError> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::from_yaml_str(text, "t.yml", &o)
    }

    #[test]
    fn dotted_keys_equal_nested_maps() {
        let a = load("protocols.http.ports: [81]\nagent.name: n\n", &[]).expect("dotted");
        let b = load(
            "protocols:\n  http:\n    ports: [81]\nshipper:\n  name: n\n",
            &[],
        )
        .expect("nested");
        assert_eq!(a.config, b.config);
        assert!(a.warnings.is_empty() && b.warnings.is_empty());
    }

    #[test]
    fn listed_protocols_only() {
        let c = load("protocols:\n  redis:\n  http: {enabled: false}\n", &[])
            .expect("ok")
            .config;
        assert!(c.protocols.redis.common.enabled);
        assert_eq!(c.protocols.redis.common.ports, vec![6379]);
        assert!(!c.protocols.http.common.enabled);
        assert!(!c.protocols.dns.common.enabled);
    }

    #[test]
    fn unsupported_and_unknown_are_reported() {
        let l = load(
            "procs: {enabled: true}\nlogging: {to_syslog: true, levle: info}\n",
            &[],
        )
        .expect("ok");
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains("logging.levle: unknown setting"))
        );
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains("procs: not supported"))
        );
    }

    #[test]
    fn override_key_limits() {
        let long = format!("{}=1", vec!["a"; 500].join("."));
        assert!(load("", &[&long]).is_err());
        assert!(load("", &["=1"]).is_err());
        assert!(load("", &["a..b=1"]).is_err());
    }

    #[test]
    fn duplicate_default_ports_conflict_with_file_ports() {
        let e = load(
            "protocols:\n  http: {ports: [80]}\n  redis: {ports: [80]}\n",
            &[],
        )
        .expect_err("dup");
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string()
                .contains("port 80 is claimed by both http and redis"),
            "{e}"
        );
    }

    #[test]
    fn choices_parse_in_one_place() {
        for (name, want) in [
            ("block", WhenFull::Block),
            ("drop_newest", WhenFull::DropNewest),
        ] {
            let c = load(&format!("pipeline.when_full: {name}\n"), &[])
                .expect("ok")
                .config;
            assert_eq!(c.pipeline.when_full, want);
            assert_eq!(want.as_str(), name);
        }
        let c = load("output.redis.datatype: channel\n", &[])
            .expect("ok")
            .config;
        let r = c.output.redis.expect("redis");
        assert_eq!(r.datatype, RedisDatatype::Channel);
        // Null is the default, as for every choice.
        let c = load(
            "pipeline.when_full: drop_newest\nqueue.when_full: null\n",
            &[],
        )
        .expect("ok")
        .config;
        assert_eq!(c.pipeline.when_full, WhenFull::Block);
        let e = load("pipeline:\n  when_full: drop\n", &[]).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "t.yml:2:14: pipeline.when_full: expected one of block, drop_newest, found \"drop\""
        );
        let e = load("", &["output.redis.datatype=set"]).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "-E 'output.redis.datatype=set': output.redis.datatype: \
             expected one of list, channel, found \"set\""
        );
    }
}
