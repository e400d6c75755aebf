//! Configuration loading: layouts, overrides, validation, export and BPF generation.

use std::path::Path;
use std::time::Duration;

use wirebeat::config::{CaptureType, Config, ConfigError, Loaded, parse_duration};

fn load(text: &str) -> Loaded {
    match Config::from_yaml_str(text, "wirebeat.yml", &[]) {
        Ok(l) => l,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn load_e(text: &str, overrides: &[&str]) -> Result<Loaded, ConfigError> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::from_yaml_str(text, "wirebeat.yml", &o)
}

fn err(text: &str) -> String {
    match Config::from_yaml_str(text, "wirebeat.yml", &[]) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

fn repo_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
}

#[test]
fn seed_config_loads_verbatim() {
    let path = repo_file("packetbeat-1x-seed.yml");
    let l = Config::load(Some(&path), &[]).expect("seed loads");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.source.as_deref(), Some(path.as_path()));
    let c = &l.config;
    assert_eq!(c.protocols.http.common.ports, vec![80, 8080]);
    assert_eq!(
        c.protocols.http.send_headers,
        vec!["User-Agent".to_string()]
    );
    assert_eq!(
        c.protocols.http.real_ip_header.as_deref(),
        Some("X-Forwarded-For")
    );
    assert!(c.protocols.http.common.enabled);
    assert_eq!(c.protocols.mysql.common.ports, vec![3306]);
    assert!(c.protocols.mysql.common.enabled);
    // Protocols not listed are off.
    assert!(!c.protocols.pgsql.common.enabled);
    assert!(!c.protocols.redis.common.enabled);
    assert!(!c.protocols.dns.common.enabled);
    let es = c.output.elasticsearch.as_ref().expect("es");
    assert!(es.enabled);
    assert_eq!(es.hosts, vec!["192.168.0.2:9200".to_string()]);
    let r = c.output.redis.as_ref().expect("redis");
    assert_eq!(r.hosts, vec!["192.168.0.3:6379".to_string()]);
    assert!(r.save_topology);
    assert!(c.output.file.is_none());
    assert!(c.output.console.is_none());
    // Empty `shipper:` / `interfaces:` sections keep their defaults.
    assert_eq!(c.interfaces.len(), 1);
    assert_eq!(c.interfaces[0].device, "any");
    assert_eq!(c.shipper.refresh_topology_freq, Duration::from_secs(10));
    assert_eq!(c.shipper.name, wirebeat::config::hostname());
}

#[test]
fn packetbeat_1x_sample_loads() {
    let l = Config::load(Some(&repo_file("packetbeat-1x-sample.yml")), &[]).expect("sample loads");
    let c = &l.config;
    assert_eq!(c.protocols.dns.common.ports, vec![53]);
    assert!(c.protocols.thrift.common.enabled);
    assert_eq!(c.protocols.mysql.common.ports, vec![3306]);
    assert_eq!(
        c.output.elasticsearch.as_ref().map(|e| e.hosts.clone()),
        Some(vec!["localhost:9200".to_string()])
    );
    // mongodb and logging.files are Packetbeat settings wirebeat does not use; DNS's
    // include_* are read.
    let all = l.warnings.join("\n");
    assert!(all.contains("protocols.mongodb"), "{all}");
    assert!(!all.contains("protocols.dns"), "{all}");
    assert!(c.protocols.dns.include_authorities && c.protocols.dns.include_additionals);
    assert!(all.contains("logging.files"), "{all}");
}

#[test]
fn reference_config_loads_without_warnings() {
    let l = Config::load(Some(&repo_file("wirebeat.yml")), &[]).expect("reference loads");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert!(c.output.elasticsearch.is_none());
    assert!(c.output.redis.is_none());
    assert!(c.output.file.is_none());
    assert!(c.output.console.is_some());
    // Every other setting equals the built-in default.
    let mut expected = Config {
        interfaces: vec![Default::default()],
        ..Config::default()
    };
    expected.output.console = Some(Default::default());
    expected.shipper.name = c.shipper.name.clone();
    assert_eq!(c, &expected);
}

#[test]
fn prefixed_layout() {
    let l = load(
        "packetbeat.interfaces.device: eth0\n\
         packetbeat.interfaces.type: pcap\n\
         packetbeat.protocols.http.ports: [8080]\n\
         packetbeat:\n  protocols:\n    dns:\n      ports: [5353]\n  ignore_outgoing: true\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.interfaces[0].device, "eth0");
    assert_eq!(c.interfaces[0].kind, CaptureType::Pcap);
    assert_eq!(c.protocols.http.common.ports, vec![8080]);
    assert_eq!(c.protocols.dns.common.ports, vec![5353]);
    assert!(!c.protocols.mysql.common.enabled);
    assert!(c.shipper.ignore_outgoing);
}

#[test]
fn prefixed_interfaces_as_list() {
    let l = load(
        "packetbeat.interfaces:\n  - device: eth0\n    type: af_packet\n  - device: eth1\n    with_vlans: true\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.interfaces.len(), 2);
    assert_eq!(l.config.interfaces[1].device, "eth1");
    assert!(l.config.interfaces[1].with_vlans);
}

#[test]
fn list_style_protocols() {
    let l = load(
        "packetbeat.protocols:\n- type: http\n  ports: [80]\n- type: redis\n  ports: [6380]\n  enabled: false\n- type: icmp\n- type: amqp\n",
    );
    let c = &l.config;
    assert_eq!(c.protocols.http.common.ports, vec![80]);
    assert!(c.protocols.http.common.enabled);
    assert!(!c.protocols.redis.common.enabled);
    assert_eq!(c.protocols.redis.common.ports, vec![6380]);
    assert!(!c.protocols.pgsql.common.enabled);
    assert!(c.protocols.icmp.common.enabled);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("protocols.amqp"), "{:?}", l.warnings);

    let l = load("protocols:\n  - {type: mysql, ports: [3306]}\n");
    assert!(l.config.protocols.mysql.common.enabled);
    assert!(!l.config.protocols.http.common.enabled);
}

#[test]
fn list_of_interfaces() {
    let l = load(
        "interfaces:\n  - device: eth0\n    snaplen: 1514\n  - device: lo\n    type: pfring\n",
    );
    let i = &l.config.interfaces;
    assert_eq!(i.len(), 2);
    assert_eq!(i[0].snaplen, 1514);
    assert_eq!(i[1].kind, CaptureType::PfRing);
    let e = err("interfaces:\n  - device: eth0\n  - device: eth0\n");
    assert!(e.contains("eth0") && e.contains("twice"), "{e}");
}

#[test]
fn agent_alias() {
    let l = load("agent:\n  name: probe-7\n  tags: [web]\n  refresh_topology_freq: 20\n");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.shipper.name, "probe-7");
    assert_eq!(l.config.shipper.tags, vec!["web".to_string()]);
    assert_eq!(
        l.config.shipper.refresh_topology_freq,
        Duration::from_secs(20)
    );
}

#[test]
fn host_port_folding() {
    let l = load(
        "output:\n  elasticsearch:\n    host: 10.0.0.1\n    port: 9201\n  redis:\n    host: 10.0.0.2\n    index: logs\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let o = &l.config.output;
    assert_eq!(
        o.elasticsearch.as_ref().map(|e| e.hosts.clone()),
        Some(vec!["10.0.0.1:9201".into()])
    );
    let r = o.redis.as_ref().expect("redis");
    assert_eq!(r.hosts, vec!["10.0.0.2:6379".to_string()]);
    assert_eq!(r.key, "logs");
    assert!(r.enabled);
}

#[test]
fn output_sections_and_tls() {
    let l = load(
        "output:\n  elasticsearch:\n    enabled: false\n    ssl:\n      certificate_authorities: [/ca.pem]\n      verification_mode: none\n  file:\n",
    );
    let es = l.config.output.elasticsearch.as_ref().expect("es");
    assert!(!es.enabled);
    assert!(!es.tls_verify);
    assert_eq!(es.tls_certificate_authorities, vec!["/ca.pem".to_string()]);
    assert!(l.config.output.file.as_ref().is_some_and(|f| f.enabled));
    assert!(l.config.output.console.is_none());

    let l = load("output.elasticsearch.tls.insecure: true\nsetup.template.name: wb\n");
    let es = l.config.output.elasticsearch.as_ref().expect("es");
    assert!(!es.tls_verify);
    assert_eq!(es.template.name, "wb");
}

#[test]
fn unknown_keys_warn_with_path() {
    let l = load("protocols:\n  http:\n    prots: [80]\nshiper:\n  name: x\n");
    let all = l.warnings.join("\n");
    assert!(
        all.contains("wirebeat.yml:3:5: protocols.http.prots"),
        "{all}"
    );
    assert!(all.contains("shiper"), "{all}");
    // Defaults are kept when the key was misspelled.
    assert_eq!(
        l.config.protocols.http.common.ports,
        vec![80, 8080, 8000, 5000, 8002]
    );
}

#[test]
fn type_errors_have_line_and_column() {
    let text = "shipper:\n  name: x\n\n\n\nprotocols:\n  http:\n    ports: eighty\n";
    let e = err(text);
    assert_eq!(
        e,
        "wirebeat.yml:8:12: protocols.http.ports: expected a list of port numbers, found string \"eighty\""
    );
    let e = err("interfaces:\n  with_vlans: yes\n");
    assert!(
        e.starts_with("wirebeat.yml:2:15: interfaces.with_vlans: expected true or false"),
        "{e}"
    );
    let e = err("shipper:\n  topology_expire: soon\n");
    assert!(
        e.starts_with("wirebeat.yml:2:20: shipper.topology_expire:"),
        "{e}"
    );
    let e = err("interfaces:\n  type: dag\n");
    assert!(
        e.contains("interfaces.type") && e.contains("pf_ring"),
        "{e}"
    );
    let e = err("protocols:\n  http:\n    ports: [80, 70000]\n");
    assert!(
        e.contains("wirebeat.yml:3:17") && e.contains("70000"),
        "{e}"
    );
    let e = err("protocols:\n  http:\n    ports: [0]\n");
    assert!(e.contains("out of range"), "{e}");
    let e = err("a: [1, 2\n");
    assert!(e.starts_with("wirebeat.yml:"), "{e}");
}

#[test]
fn duplicate_port_is_an_error() {
    let e = err("protocols:\n  http:\n    ports: [80, 9090]\n  thrift:\n    ports: [9090]\n");
    assert!(
        e.contains("9090") && e.contains("http") && e.contains("thrift"),
        "{e}"
    );
    assert!(e.starts_with("wirebeat.yml:5:"), "{e}");
    // A disabled protocol does not claim its ports.
    load("protocols:\n  http:\n    ports: [80, 9090]\n  thrift:\n    enabled: false\n");
    // Without a protocols section, defaults stay and a clash with them is found.
    let e = err("protocols.dns.ports: [53]\nprotocols.memcache.ports: [53]\n");
    assert!(e.contains("dns") && e.contains("memcache"), "{e}");
}

#[test]
fn overrides() {
    let l = load_e(
        "protocols:\n  http:\n    ports: [80]\n",
        &[
            "protocols.http.ports=[8888]",
            "output.console.pretty=true",
            "output.elasticsearch.hosts=[\"127.0.0.1:9200\"]",
            "output.file.path=/tmp/x",
            "shipper.name=probe",
        ],
    )
    .expect("loads");
    let c = &l.config;
    assert_eq!(c.protocols.http.common.ports, vec![8888]);
    assert!(
        c.output
            .console
            .as_ref()
            .is_some_and(|o| o.pretty && o.enabled)
    );
    assert_eq!(
        c.output.elasticsearch.as_ref().map(|e| e.hosts.clone()),
        Some(vec!["127.0.0.1:9200".to_string()])
    );
    let f = c.output.file.as_ref().expect("file output created");
    assert!(f.enabled);
    assert_eq!(f.path, "/tmp/x");
    assert_eq!(c.shipper.name, "probe");
    assert!(!c.protocols.mysql.common.enabled);

    // Without a protocols section in the file, an override only changes that protocol.
    let l = load_e("", &["protocols.http.ports=[81]", "interfaces.device=eth3"]).expect("loads");
    assert_eq!(l.config.protocols.http.common.ports, vec![81]);
    assert!(l.config.protocols.mysql.common.enabled);
    assert_eq!(l.config.interfaces[0].device, "eth3");

    // An override can enable a protocol the file did not list.
    let l = load_e("protocols:\n  http:\n", &["protocols.redis.ports=[6380]"]).expect("loads");
    assert!(l.config.protocols.redis.common.enabled);

    // Overrides into a list of interfaces, by index.
    let l = load_e(
        "interfaces:\n  - device: a\n  - device: b\n",
        &["interfaces.1.snaplen=1500"],
    )
    .expect("loads");
    assert_eq!(l.config.interfaces[1].snaplen, 1500);
}

#[test]
fn override_errors_name_the_argument() {
    let e = load_e("", &["protocols.http.ports=eighty"]).expect_err("bad");
    assert_eq!(
        e.to_string(),
        "-E 'protocols.http.ports=eighty': protocols.http.ports: expected a list of port numbers, found string \"eighty\""
    );
    let e = load_e("", &["nonsense"]).expect_err("bad");
    assert!(e.to_string().starts_with("-E 'nonsense'"), "{e}");
    let e = load_e("", &["output.console.pretty=[1"]).expect_err("bad");
    assert!(
        e.to_string().starts_with("-E 'output.console.pretty=[1'"),
        "{e}"
    );
    let l = load_e("", &["protocols.http.prots=[1]"]).expect("warning only");
    assert!(
        l.warnings[0].starts_with("-E 'protocols.http.prots=[1]': protocols.http.prots"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn defaults_without_file() {
    let l = Config::from_yaml_str("", "empty.yml", &[]).expect("empty");
    assert!(l.warnings.is_empty());
    let c = &l.config;
    assert_eq!(
        c.protocols.http.common.ports,
        vec![80, 8080, 8000, 5000, 8002]
    );
    assert_eq!(c.protocols.mysql.common.ports, vec![3306, 3307]);
    for name in [
        "http", "mysql", "pgsql", "redis", "thrift", "memcache", "dns",
    ] {
        assert!(
            c.protocols.common(name).is_some_and(|p| p.enabled),
            "{name}"
        );
    }
    assert!(c.output.elasticsearch.is_none() && c.output.console.is_none());
    assert_eq!(c.interfaces.len(), 1);

    let missing =
        Config::load(Some(Path::new("/nonexistent/wirebeat.yml")), &[]).expect_err("missing file");
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/wirebeat.yml: "),
        "{missing}"
    );
}

#[test]
fn bpf_generation() {
    let all = [
        "http", "mysql", "pgsql", "redis", "thrift", "memcache", "dns",
    ];
    let c =
        load("protocols:\n  http: {ports: [80, 8080]}\n  mysql: {ports: [3306]}\n  dns:\n").config;
    assert_eq!(
        c.bpf_filter(&all),
        "tcp port 80 or tcp port 8080 or tcp port 3306 or port 53"
    );
    assert_eq!(c.bpf_filter(&["http"]), "tcp port 80 or tcp port 8080");

    let c = load("interfaces: {with_vlans: true}\nprotocols:\n  http: {ports: [80]}\n  redis:\n")
        .config;
    assert_eq!(
        c.bpf_filter(&all),
        "tcp port 80 or tcp port 6379 or (vlan and (tcp port 80 or tcp port 6379))"
    );

    let c = load("interfaces: {bpf_filter: \"host 10.0.0.1\"}\n").config;
    assert_eq!(c.bpf_filter(&all), "host 10.0.0.1");

    let c = load("").config;
    assert_eq!(
        c.bpf_filter(&all),
        "tcp port 80 or tcp port 8080 or tcp port 8000 or tcp port 5000 or tcp port 8002 or \
         tcp port 3306 or tcp port 3307 or tcp port 6379 or tcp port 5432 or tcp port 9090 or \
         port 53 or port 11211"
    );
}

#[test]
fn to_yaml_round_trip() {
    let texts = [
        "",
        "protocols:\n  http: {ports: [80], send_headers: [Host], real_ip_header: \"X-Real-IP\"}\n  thrift: {transport_type: framed}\n",
        "interfaces:\n  - {device: eth0, bpf_filter: \"tcp and port 80\"}\n  - {device: \"we\\\"ird\\\\\", type: pcap}\n\
         output:\n  elasticsearch: {hosts: [a, b], username: u, password: p, api_key: k, flush_interval: 1500ms, ssl: {verification_mode: none}}\n  \
         redis: {host: r, password: s, datatype: channel}\n  file: {path: /tmp/y, enabled: false}\n  console: {pretty: true}\n\
         pipeline: {workers: 3, when_full: drop_newest, defrag_timeout: 1h30m, tcp_max_closed_flows: 0, tcp_closed_timeout: 2500ms}\n\
         logging: {level: debug, selectors: [http, tcp], to_stderr: true}\nshipper: {name: \"n: x\", tags: [\"a b\", \"#c\"]}\n",
        // Every section away from its defaults, folded and nested settings included.
        "interfaces: {device: [eth0, eth1], type: pfring, snaplen: 1500, buffer_size_mb: 2, with_vlans: true, \
         auto_promisc_mode: true, internal_networks: [private]}\n\
         protocols:\n  http: {ports: [81], strip_authorization: true, decode_body: false, max_message_size: 77, \
         send_all_headers: true, split_cookie: true, hide_keywords: [pass], redact_headers: [X-Token], \
         include_body_for: [text/html], include_request_body_for: [a], include_response_body_for: [b]}\n  \
         mysql: {ports: [3306], max_rows: 3, max_row_length: 9, statement_timeout: 5m, send_request: true}\n  \
         pgsql: {max_statements: 9, send_response: true, transaction_timeout: 2s}\n  redis: {queue_max_bytes: 5, queue_max_messages: 6}\n  \
         thrift: {protocol_type: compact, idl_files: a.thrift, string_max_size: 1, collection_max_size: 2, \
         capture_reply: false, obfuscate_strings: true, drop_after_n_struct_fields: 3}\n  dns: {enabled: false}\n  memcache: {ports: [11212]}\n\
         output:\n  elasticsearch: {protocol: https, path: /es, index: i, bulk_max_size: 5, bulk_max_bytes: 4096, max_retries: -1, \
         backoff: {init: 2s, max: 9s}, timeout: 3s, compression_level: 5, max_response_bytes: 2048, save_topology: true, \
         tls: {certificate_authorities: [/ca.pem]}, template: {enabled: false, name: t, pattern: \"t-*\", path: /t.json, overwrite: true}}\n  \
         redis: {hosts: [\"r:1\"], index: idx, db: 2, db_topology: 3, timeout: 4s, reconnect_interval: 2s, save_topology: true, \
         backoff: {max: 7s}, bulk_max_size: 3, bulk_max_bytes: 100, max_retries: -1, max_reply_bytes: 4096}\n  \
         file: {filename: f, rotate_every_kb: 5, number_of_files: 2}\n\
         pipeline: {readers: 2, pin: false, batch_packets: 3, worker_queue: 4, output_queue: 5, output_queue_events: 6, \
         output_queue_bytes: 8192, max_flows: 7, tcp_max_ooo_bytes: 8, tcp_max_ooo_segments: 9, tcp_max_ooo_total_bytes: 10, \
         defrag_max_datagrams: 11, defrag_max_bytes: 12}\n\
         logging: {level: warn, metrics_interval: 5s, metrics: {enabled: false}}\n\
         shipper: {ignore_outgoing: true, refresh_topology_freq: 3s, topology_expire: 4s}\nhttp: {enabled: true, host: h, port: 1}\n",
        "flows: {timeout: 45s, period: -1, enable_delta_flow_reports: true, allow_mismatched_eth: true, max_flows: 9}\n",
        "packetbeat.flows: {period: 1m}\n",
    ];
    for text in texts {
        let original = load(text).config;
        let exported = original.to_yaml_with_secrets();
        let again = match Config::from_yaml_str(&exported, "export.yml", &[]) {
            Ok(l) => {
                assert!(l.warnings.is_empty(), "{:?}\n{exported}", l.warnings);
                l.config
            }
            Err(e) => panic!("{e}\n{exported}"),
        };
        assert_eq!(original, again, "{exported}");
        // The redacted form loads too (secrets become the placeholder).
        let redacted = original.to_yaml();
        assert!(!redacted.contains("\"p\"") || original.output.elasticsearch.is_none());
        Config::from_yaml_str(&redacted, "export.yml", &[]).expect("redacted export loads");
    }
    let c = load("output:\n  elasticsearch: {password: hunter2, api_key: abc}\n  redis: {password: hunter3}\n").config;
    let y = c.to_yaml();
    assert!(
        !y.contains("hunter2") && !y.contains("hunter3") && !y.contains("abc"),
        "{y}"
    );
    assert!(y.contains("<redacted>"));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("42"), Some(Duration::from_secs(42)));
    assert_eq!(parse_duration("fast"), None);
    let c = load(
        "protocols:\n  http: {transaction_timeout: 500ms}\n  mysql: {transaction_timeout: 3}\n",
    )
    .config;
    assert_eq!(
        c.protocols.http.common.transaction_timeout,
        Duration::from_millis(500)
    );
    assert_eq!(
        c.protocols.mysql.common.transaction_timeout,
        Duration::from_secs(3)
    );
}

#[test]
fn hostile_input_never_panics() {
    let inputs = [
        "- - - - [",
        "{a: {b: {c: [1, {d: }]}}}",
        "protocols: 7",
        "protocols: [1, 2]",
        "protocols: [{ports: [1]}]",
        "protocols: [{type: 5}]",
        "interfaces: [1]",
        "output: []",
        "output: {elasticsearch: [1]}",
        "pipeline: {workers: -1}",
        "pipeline: {workers: 99999999999999999999999999999999999999}",
        "shipper: {refresh_topology_freq: -5}",
        "shipper: {refresh_topology_freq: .inf}",
        "a: &x [*x]",
        "a: &a [1]\nb: [*a, *a, *a]\n",
        "? [complex, key]\n: value\n",
        "\u{feff}shipper: {}",
        "...\n---\n",
        "a: 1\na: 2\n",
        "packetbeat: 3",
        "packetbeat.protocols: {http: {ports: [80, 80]}}",
        "interfaces.0.device: x",
    ];
    for text in inputs {
        let _ = Config::from_yaml_str(text, "fuzz.yml", &[]);
    }
    let big = "x".repeat(2 * 1024 * 1024);
    assert!(Config::from_yaml_str(&big, "big.yml", &[]).is_err());
    let deep = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Config::from_yaml_str(&deep, "deep.yml", &[]).is_err());
}

#[test]
fn closed_connection_settings() {
    let p = load("").config.pipeline;
    assert_eq!(p.tcp_max_closed_flows, 65_536);
    assert_eq!(p.tcp_closed_timeout, Duration::from_secs(15));
    let p = load("pipeline: {tcp_max_closed_flows: 0, tcp_closed_timeout: 30s}\n")
        .config
        .pipeline;
    assert_eq!(p.tcp_max_closed_flows, 0);
    assert_eq!(p.tcp_closed_timeout, Duration::from_secs(30));
    let e = err("pipeline:\n  tcp_max_closed_flows: -1\n");
    assert!(e.contains("pipeline.tcp_max_closed_flows"), "{e}");
    let e = err("pipeline:\n  tcp_closed_timeout: soon\n");
    assert!(e.contains("pipeline.tcp_closed_timeout"), "{e}");
    // Exported with the rest of the pipeline settings.
    let y = load("").config.to_yaml();
    assert!(y.contains("tcp_max_closed_flows: 65536"), "{y}");
    assert!(y.contains("tcp_closed_timeout: \"15s\""), "{y}");
}

#[test]
fn every_parsed_protocol_bounds_its_pairing_queue() {
    let text = "protocols:\n  mysql:\n    queue_max_messages: 5\n  thrift:\n    queue_max_bytes: 4096\n  memcache:\n    queue_max_messages: 5\n";
    let l = load_e(text, &["protocols.http.queue_max_bytes=123456789"]).expect("loads");
    let p = &l.config.protocols;
    assert_eq!(p.mysql.common.queue_max_messages, 5);
    assert_eq!(p.mysql.common.queue_max_bytes, 16 << 20);
    assert_eq!(p.pgsql.common.queue_max_messages, 1024);
    assert_eq!(p.thrift.common.queue_max_bytes, 4096);
    assert_eq!(p.http.common.queue_max_bytes, 123456789);
    assert_eq!(p.redis.common.queue_max_messages, 20000);
    // Every protocol section has the bounds (memcache and dns will pair too).
    assert_eq!(p.memcache.queue_max_messages, 5);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn hosts_must_name_a_host() {
    for bad in [
        "output:\n  elasticsearch:\n    hosts: 12\n",
        "output:\n  elasticsearch:\n    hosts: [\"es:9200\", 12]\n",
        "output:\n  redis:\n    hosts: [\"r:0\"]\n",
        "output:\n  redis:\n    hosts: [\"r:6379x\"]\n",
        "output:\n  elasticsearch:\n    hosts: [\":9200\"]\n",
        "output:\n  elasticsearch:\n    hosts: [\"[::1:9200\"]\n",
        "output:\n  elasticsearch:\n    hosts: [\"1.5\"]\n",
    ] {
        let e = err(bad);
        assert!(e.contains(".hosts:"), "{bad}: {e}");
        assert!(e.starts_with("wirebeat.yml:"), "{bad}: {e}");
    }
    let e = err("output:\n  elasticsearch:\n    hosts: 12\n");
    assert!(e.contains("a number is not a host"), "{e}");
    // What Beats users write is accepted.
    let l = load(
        "output:\n  elasticsearch:\n    hosts: [localhost, \"es1:9200\", \"10.0.0.1:9200\", \
         \"https://es.example:9243/prefix\", \"[::1]:9200\", \"::1\"]\n  \
         redis:\n    hosts: [\"r:6379\"]\n",
    );
    let es = l.config.output.elasticsearch.as_ref().unwrap();
    assert_eq!(es.hosts.len(), 6);
    // Overrides are checked the same way.
    let e = load_e("", &["output.elasticsearch.hosts=12"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a number is not a host"), "{e}");
}

/// Every setting `export config` prints, dotted (`protocols.http.ports`).
fn every_setting() -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirebeat"))
        .args(["export", "config"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') || body.starts_with('-') {
            continue;
        }
        let indent = line.len() - body.len();
        let Some((key, value)) = body.split_once(':') else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).chain([key]).collect();
        if value.trim().is_empty() {
            stack.push((indent, key.to_string()));
        } else {
            keys.push(path.join("."));
        }
    }
    keys
}

#[test]
fn every_setting_refuses_wrong_values_with_one_clear_error() {
    let keys = every_setting();
    assert!(keys.len() > 100, "{keys:?}");
    let bad = [
        "-1",
        "1e300",
        "99999999999999999999999",
        "[1, [2]]",
        "{a: 1}",
        "\"\\u0000\"",
        "not a value",
        "",
    ];
    let (mut tried, mut refused) = (0, 0);
    for key in &keys {
        for v in bad {
            tried += 1;
            let o = vec![format!("{key}={v}")];
            let r = std::panic::catch_unwind(|| Config::from_yaml_str("", "wirebeat.yml", &o));
            let Ok(r) = r else {
                panic!("{key}={v}: panicked");
            };
            if let Err(e) = r {
                refused += 1;
                let msg = e.to_string();
                // One error, naming the setting (or the part of it that is wrong).
                let leaf = key.rsplit('.').next().unwrap();
                assert!(msg.contains(leaf), "{key}={v}: {msg}");
                assert_eq!(msg.lines().count(), 1, "{key}={v}: {msg}");
            }
        }
    }
    // Most of these are wrong for most settings (a text setting takes a number).
    assert!(refused * 2 > tried, "{refused} of {tried} refused");
}

#[test]
fn a_flows_section_turns_flows_on_in_either_layout() {
    let off = load("").config.flows;
    assert!(!off.enabled);
    assert_eq!(off.timeout, Duration::from_secs(30));
    assert_eq!(off.period, Some(Duration::from_secs(10)));
    let c = load("flows:\n  timeout: 45s\n").config.flows;
    assert!(c.enabled);
    assert_eq!(c.timeout, Duration::from_secs(45));
    assert_eq!(c.period, Some(Duration::from_secs(10)));
    // An empty section is a section.
    assert!(load("flows:\n").config.flows.enabled);
    let c = load("packetbeat.flows:\n  period: -1\n").config.flows;
    assert!(c.enabled);
    assert_eq!(c.period, None);
    let c = load("packetbeat:\n  flows:\n    enabled: false\n    period: 20s\n")
        .config
        .flows;
    assert!(!c.enabled);
    assert_eq!(c.period, Some(Duration::from_secs(20)));
    for off in ["-1s", "0", "\"-1\"", "-5"] {
        let c = load(&format!("flows:\n  period: {off}\n")).config.flows;
        assert_eq!(c.period, None, "{off}");
    }
    let e = load_e("", &["flows.enabled=true", "flows.max_flows=10"]).unwrap();
    assert!(e.config.flows.enabled);
    assert_eq!(e.config.flows.max_flows, 10);
    // Packetbeat refuses a timeout or a period under a second.
    assert!(err("flows:\n  timeout: 500ms\n").contains("at least 1s"));
    assert!(err("flows:\n  period: 999ms\n").contains("at least 1s"));
    assert!(err("flows:\n  max_flows: 0\n").contains("max_flows"));
    // Event options of Beats are accepted and reported as not supported.
    let l = load("flows:\n  fields: {a: b}\n  index: x\n");
    assert!(l.config.flows.enabled);
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(
        l.warnings.iter().all(|w| w.contains("not supported")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn with_flows_on_nothing_is_filtered_unless_a_filter_is_given() {
    let all = ["http", "mysql", "pgsql", "redis", "thrift", "dns", "icmp"];
    let c = load("protocols:\n  http: {ports: [80]}\nflows: {}\n").config;
    assert_eq!(c.bpf_filter(&all), "");
    let c = load("interfaces: {bpf_filter: \"net 10.0.0.0/8\"}\nflows: {}\n").config;
    assert_eq!(c.bpf_filter(&all), "net 10.0.0.0/8");
    let c = load("protocols:\n  http: {ports: [80]}\nflows: {enabled: false}\n").config;
    assert_eq!(c.bpf_filter(&["http"]), "tcp port 80");
}
