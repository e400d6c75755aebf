//! Configuration: the canonical settings tree (Packetbeat 1.x layout), its defaults,
//! and loading from YAML with the other accepted layouts mapped onto it.
//!
//! The typed structs below are what the rest of wirebeat reads. Loading, layout
//! mapping, `-E` overrides, validation and export live in the submodules.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod convert;
mod duration;
mod error;
mod export;
mod layout;
mod tree;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
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
}

#[derive(Clone, Debug, PartialEq)]
pub struct ShipperConfig {
    /// Default: the host name.
    pub name: String,
    pub tags: Vec<String>,
    pub ignore_outgoing: bool,
    pub refresh_topology_freq: Duration,
    pub topology_expire: Duration,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            name: hostname(),
            tags: Vec::new(),
            ignore_outgoing: false,
            refresh_topology_freq: Duration::from_secs(10),
            topology_expire: Duration::from_secs(15),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaptureType {
    #[default]
    AfPacket,
    Pcap,
    PfRing,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceConfig {
    /// A device name, `any`, or several names separated by commas (see
    /// [`InterfaceConfig::devices`]).
    pub device: String,
    pub kind: CaptureType,
    pub snaplen: u32,
    pub buffer_size_mb: u32,
    pub with_vlans: bool,
    pub bpf_filter: Option<String>,
    pub auto_promisc_mode: bool,
    /// CIDRs (or `loopback`, `private`) inside the perimeter, for `network.direction`.
    pub internal_networks: Vec<String>,
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

impl Default for InterfaceConfig {
    fn default() -> Self {
        InterfaceConfig {
            device: "any".into(),
            kind: CaptureType::AfPacket,
            snaplen: 65535,
            buffer_size_mb: 30,
            with_vlans: false,
            bpf_filter: None,
            auto_promisc_mode: false,
            internal_networks: Vec::new(),
        }
    }
}

/// Options every protocol has.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtoCommon {
    pub enabled: bool,
    pub ports: Vec<u16>,
    pub send_request: bool,
    pub send_response: bool,
    pub transaction_timeout: Duration,
    /// Requests waiting for their response on one connection: the oldest is
    /// published unmatched when a new one would exceed either bound.
    pub queue_max_messages: usize,
    /// Memory those requests may hold (for HTTP, at least twice
    /// `max_message_size`).
    pub queue_max_bytes: usize,
}

impl ProtoCommon {
    pub fn with_ports(ports: &[u16]) -> ProtoCommon {
        ProtoCommon {
            enabled: true,
            ports: ports.to_vec(),
            send_request: false,
            send_response: false,
            transaction_timeout: Duration::from_secs(10),
            queue_max_messages: 1024,
            queue_max_bytes: 4 << 20,
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

#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    pub common: ProtoCommon,
    pub send_headers: Vec<String>,
    pub send_all_headers: bool,
    pub split_cookie: bool,
    pub real_ip_header: Option<String>,
    pub hide_keywords: Vec<String>,
    pub redact_authorization: bool,
    pub redact_headers: Vec<String>,
    pub include_body_for: Vec<String>,
    pub include_request_body_for: Vec<String>,
    pub include_response_body_for: Vec<String>,
    pub decode_body: bool,
    pub max_message_size: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            common: ProtoCommon::with_ports(&[80, 8080, 8000, 5000, 8002]),
            send_headers: Vec::new(),
            send_all_headers: false,
            split_cookie: false,
            real_ip_header: None,
            hide_keywords: Vec::new(),
            redact_authorization: false,
            redact_headers: Vec::new(),
            include_body_for: Vec::new(),
            include_request_body_for: Vec::new(),
            include_response_body_for: Vec::new(),
            decode_body: true,
            max_message_size: 10 * 1024 * 1024,
        }
    }
}

/// MySQL and PostgreSQL.
#[derive(Clone, Debug, PartialEq)]
pub struct SqlConfig {
    pub common: ProtoCommon,
    pub max_rows: usize,
    pub max_row_length: usize,
    /// MySQL prepared-statement cache lifetime.
    pub statement_timeout: Duration,
    /// PostgreSQL prepared statements (and, separately, portals) remembered per
    /// connection.
    pub max_statements: usize,
}

impl SqlConfig {
    fn with_ports(ports: &[u16]) -> SqlConfig {
        SqlConfig {
            common: ProtoCommon::with_ports(ports).with_queue(1024, 16 << 20),
            max_rows: 10,
            max_row_length: 1024,
            statement_timeout: Duration::from_secs(3600),
            max_statements: 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedisConfig {
    pub common: ProtoCommon,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            common: ProtoCommon::with_ports(&[6379]).with_queue(20000, 1024 * 1024),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ThriftConfig {
    pub common: ProtoCommon,
    /// `socket` or `framed`; `None` = detect.
    pub transport_type: Option<String>,
    /// `binary` or `compact`; `None` = detect.
    pub protocol_type: Option<String>,
    pub idl_files: Vec<String>,
    pub string_max_size: usize,
    pub collection_max_size: usize,
    pub capture_reply: bool,
    pub obfuscate_strings: bool,
    pub drop_after_n_struct_fields: usize,
}

impl Default for ThriftConfig {
    fn default() -> Self {
        ThriftConfig {
            common: ProtoCommon::with_ports(&[9090]),
            transport_type: None,
            protocol_type: None,
            idl_files: Vec::new(),
            string_max_size: 200,
            collection_max_size: 15,
            capture_reply: true,
            obfuscate_strings: false,
            drop_after_n_struct_fields: 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolsConfig {
    pub http: HttpConfig,
    pub mysql: SqlConfig,
    pub pgsql: SqlConfig,
    pub redis: RedisConfig,
    pub thrift: ThriftConfig,
    pub memcache: ProtoCommon,
    pub dns: ProtoCommon,
}

impl Default for ProtocolsConfig {
    fn default() -> Self {
        ProtocolsConfig {
            http: HttpConfig::default(),
            mysql: SqlConfig::with_ports(&[3306, 3307]),
            pgsql: SqlConfig::with_ports(&[5432]),
            redis: RedisConfig::default(),
            thrift: ThriftConfig::default(),
            memcache: ProtoCommon::with_ports(&[11211]),
            dns: ProtoCommon::with_ports(&[53]),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputsConfig {
    pub elasticsearch: Option<ElasticsearchOutput>,
    pub redis: Option<RedisOutput>,
    pub file: Option<FileOutput>,
    pub console: Option<ConsoleOutput>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ElasticsearchOutput {
    pub enabled: bool,
    /// `host:port` or URLs; the 1.x `host`/`port` pair is folded in here.
    pub hosts: Vec<String>,
    pub protocol: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub api_key: Option<String>,
    pub index: String,
    /// Events per bulk request.
    pub bulk_max_size: usize,
    /// Bytes of events per bulk request (before compression).
    pub bulk_max_bytes: usize,
    pub flush_interval: Duration,
    /// Attempts after the first for a failed request or item; [`RETRY_FOREVER`]
    /// (`max_retries: -1`) never gives up.
    pub max_retries: u32,
    /// Exponential backoff between retries (Beats `backoff.init` / `backoff.max`).
    pub backoff_init: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    pub compression_level: u32,
    /// Largest response body read from the cluster (wirebeat); a larger one fails
    /// the request, which is sent again.
    pub max_response_bytes: usize,
    pub tls_certificate_authorities: Vec<String>,
    pub tls_verify: bool,
    pub save_topology: bool,
    /// Index template (1.x `output.elasticsearch.template`, 6.x+ `setup.template`).
    pub template: TemplateConfig,
}

/// `max_retries: -1`: retry until the destination accepts (or the run stops).
pub const RETRY_FOREVER: u32 = u32::MAX;

/// Index template settings of the Elasticsearch output.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateConfig {
    /// Load the template when it is absent.
    pub enabled: bool,
    pub name: String,
    /// Index pattern the template applies to.
    pub pattern: String,
    /// A template JSON file to load instead of the built-in one.
    pub path: Option<String>,
    /// Replace an existing template.
    pub overwrite: bool,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            enabled: true,
            name: "packetbeat".into(),
            pattern: "packetbeat-*".into(),
            path: None,
            overwrite: false,
        }
    }
}

impl Default for ElasticsearchOutput {
    fn default() -> Self {
        ElasticsearchOutput {
            enabled: true,
            hosts: vec!["localhost:9200".into()],
            protocol: None,
            path: None,
            username: None,
            password: None,
            api_key: None,
            index: "packetbeat".into(),
            bulk_max_size: 2048,
            bulk_max_bytes: 8 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            max_retries: 3,
            backoff_init: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            timeout: Duration::from_secs(90),
            compression_level: 0,
            max_response_bytes: 64 * 1024 * 1024,
            tls_certificate_authorities: Vec::new(),
            tls_verify: true,
            save_topology: false,
            template: TemplateConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedisOutput {
    pub enabled: bool,
    /// `host:port` entries; the 1.x `host`/`port` pair is folded in here.
    pub hosts: Vec<String>,
    /// List or channel name (1.x: `index`).
    pub key: String,
    pub db: u32,
    pub db_topology: u32,
    pub password: Option<String>,
    /// `list` or `channel`.
    pub datatype: String,
    pub timeout: Duration,
    pub reconnect_interval: Duration,
    pub save_topology: bool,
    /// Longest wait between reconnection attempts; the wait starts at
    /// `reconnect_interval` and doubles up to this (5.x `backoff.max`).
    pub backoff_max: Duration,
    /// Events per `RPUSH` (5.x `bulk_max_size`).
    pub bulk_max_size: usize,
    /// Bytes of events per `RPUSH` (wirebeat); a larger single event goes alone.
    pub bulk_max_bytes: usize,
    /// Attempts after the first before a batch is given up and counted as failed;
    /// negative = retry until it is written.
    pub max_retries: i64,
    /// Largest reply accepted from the server, and the most topology data read per
    /// refresh (wirebeat).
    pub max_reply_bytes: usize,
}

impl Default for RedisOutput {
    fn default() -> Self {
        RedisOutput {
            enabled: true,
            hosts: vec!["localhost:6379".into()],
            key: "packetbeat".into(),
            db: 0,
            db_topology: 1,
            password: None,
            datatype: "list".into(),
            timeout: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(1),
            save_topology: false,
            backoff_max: Duration::from_secs(60),
            bulk_max_size: 2048,
            bulk_max_bytes: 16 * 1024 * 1024,
            max_retries: 3,
            max_reply_bytes: 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileOutput {
    pub enabled: bool,
    pub path: String,
    pub filename: String,
    pub rotate_every_kb: u64,
    pub number_of_files: u32,
}

impl Default for FileOutput {
    fn default() -> Self {
        FileOutput {
            enabled: true,
            path: "/tmp/wirebeat".into(),
            filename: "wirebeat".into(),
            rotate_every_kb: 10240,
            number_of_files: 7,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleOutput {
    pub enabled: bool,
    pub pretty: bool,
}

impl Default for ConsoleOutput {
    fn default() -> Self {
        ConsoleOutput {
            enabled: true,
            pretty: false,
        }
    }
}

/// wirebeat additions (`pipeline:`): threads, queues and memory bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Capture reader threads; 0 = derived from the core count.
    pub readers: usize,
    /// Worker threads; 0 = derived from the core count.
    pub workers: usize,
    /// Pin workers to cores.
    pub pin: bool,
    /// Packets per batch handed from a reader to a worker.
    pub batch_packets: usize,
    /// Batches queued per worker channel.
    pub worker_queue: usize,
    /// Encoded event chunks (about 256 KiB each) queued towards each output.
    pub output_queue: usize,
    /// Events queued towards each output (Beats: `queue.mem.events`).
    pub output_queue_events: usize,
    /// Bytes of encoded events queued towards each output (`queue.mem.bytes`).
    pub output_queue_bytes: usize,
    /// `block` (backpressure) or `drop_newest` (counted).
    pub when_full: String,
    /// Connections tracked per worker.
    pub max_flows: usize,
    /// Closed connections remembered per worker so that their late segments open
    /// no new flow (0: none).
    pub tcp_max_closed_flows: usize,
    /// How long a closed connection is remembered (packet time).
    pub tcp_closed_timeout: Duration,
    /// Out-of-order bytes buffered per TCP stream direction.
    pub tcp_max_ooo_bytes: usize,
    /// Out-of-order segments buffered per TCP stream direction.
    pub tcp_max_ooo_segments: usize,
    /// Out-of-order bytes buffered per worker across all streams.
    pub tcp_max_ooo_total_bytes: usize,
    /// IP datagrams being reassembled at once.
    pub defrag_max_datagrams: usize,
    /// Bytes held by IP fragment reassembly.
    pub defrag_max_bytes: usize,
    /// Incomplete datagrams are dropped after this long (packet time).
    pub defrag_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            readers: 0,
            workers: 0,
            pin: true,
            batch_packets: 512,
            worker_queue: 8,
            output_queue: 64,
            output_queue_events: 65_536,
            output_queue_bytes: 64 * 1024 * 1024,
            when_full: "block".into(),
            max_flows: 131_072,
            tcp_max_closed_flows: 65_536,
            tcp_closed_timeout: Duration::from_secs(15),
            tcp_max_ooo_bytes: 256 * 1024,
            tcp_max_ooo_segments: 256,
            tcp_max_ooo_total_bytes: 32 * 1024 * 1024,
            defrag_max_datagrams: 1024,
            defrag_max_bytes: 8 * 1024 * 1024,
            defrag_timeout: Duration::from_secs(30),
        }
    }
}

/// The optional local metrics endpoint (Beats' `http.enabled/host/port`).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpEndpointConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
}

impl Default for HttpEndpointConfig {
    fn default() -> Self {
        HttpEndpointConfig {
            enabled: false,
            host: "localhost".into(),
            port: 5066,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoggingConfig {
    pub level: String,
    pub selectors: Vec<String>,
    pub to_stderr: bool,
    pub metrics_interval: Duration,
    /// `logging.metrics.enabled`: the periodic counters report.
    pub metrics_enabled: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            selectors: Vec::new(),
            to_stderr: false,
            metrics_interval: Duration::from_secs(30),
            metrics_enabled: true,
        }
    }
}

impl ProtocolsConfig {
    /// The common options of a protocol by its configuration name.
    pub fn common(&self, name: &str) -> Option<&ProtoCommon> {
        Some(match name {
            "http" => &self.http.common,
            "mysql" => &self.mysql.common,
            "pgsql" => &self.pgsql.common,
            "redis" => &self.redis.common,
            "thrift" => &self.thrift.common,
            "memcache" => &self.memcache,
            "dns" => &self.dns,
            _ => return None,
        })
    }

    pub fn common_mut(&mut self, name: &str) -> Option<&mut ProtoCommon> {
        Some(match name {
            "http" => &mut self.http.common,
            "mysql" => &mut self.mysql.common,
            "pgsql" => &mut self.pgsql.common,
            "redis" => &mut self.redis.common,
            "thrift" => &mut self.thrift.common,
            "memcache" => &mut self.memcache,
            "dns" => &mut self.dns,
            _ => return None,
        })
    }
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
    /// are shown as "<redacted>".
    pub fn to_yaml(&self) -> String {
        export::to_yaml(self, true)
    }

    /// Like [`Config::to_yaml`] but with secrets in clear text. Never log this.
    pub fn to_yaml_with_secrets(&self) -> String {
        export::to_yaml(self, false)
    }

    /// tcpdump-syntax capture filter: the first interface's `bpf_filter` when set,
    /// else generated from the ports of the enabled protocols named in
    /// `implemented` (`tcp port N`, `udp port N` for dns, `port N` for memcache,
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
        assert!(!c.protocols.dns.enabled);
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
}
