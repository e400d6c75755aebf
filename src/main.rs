//! The `wirebeat` command line (Packetbeat-compatible flags).

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wirebeat::config::{CaptureType, Config, Loaded};
use wirebeat::pipeline::{self, ReplayOptions};
use wirebeat::stats::Counters;
use wirebeat::stats::Registry;
use wirebeat::stats::report::{PeriodicReport, final_lines};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes of SPEC §1.
const EXIT_CONFIG: u8 = 1;
const EXIT_RUNTIME: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "wirebeat",
    version,
    about = "Passive network transaction analyzer (Packetbeat-compatible)"
)]
struct Cli {
    /// Configuration file [default: ./wirebeat.yml, then /etc/wirebeat/wirebeat.yml]
    #[arg(short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Override a setting: dotted path into the canonical layout, YAML value (repeatable)
    #[arg(short = 'E', value_name = "KEY=VALUE", global = true)]
    overrides: Vec<String>,
    /// Read packets from a pcap or pcapng file instead of an interface
    #[arg(short = 'I', value_name = "FILE")]
    input: Option<PathBuf>,
    /// Replay the file as fast as possible (without it, replay follows the capture's timing)
    #[arg(short = 't')]
    top_speed: bool,
    /// Loop over the file N times (0 = forever)
    #[arg(short = 'l', value_name = "N", default_value_t = 1)]
    loops: u64,
    /// Log to stderr
    #[arg(short = 'e', global = true)]
    log_stderr: bool,
    /// Debug logging for the named components (-d http,tcp or -d '*')
    #[arg(short = 'd', value_name = "SELECTORS", global = true)]
    debug: Option<String>,
    /// Also write every captured packet to this pcap file
    #[arg(long = "dump", value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Parse but publish nothing (benchmarking)
    #[arg(short = 'N')]
    no_publish: bool,
    /// With -I: serve the metrics endpoint and the live view (http.*, turned on)
    /// and keep serving after the input ends, until interrupted
    #[arg(long)]
    serve: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List capture devices
    Devices,
    /// Checks
    Test {
        #[command(subcommand)]
        what: TestWhat,
    },
    /// Print configuration
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Load the index template into Elasticsearch (output.elasticsearch) and exit;
    /// with --dashboards, import the Kibana dashboards (setup.kibana)
    Setup {
        /// Import the dashboards into Kibana (setup.kibana), overwriting earlier ones
        #[arg(long)]
        dashboards: bool,
        /// Load the index template (the default when no other part is named)
        #[arg(long = "index-management")]
        index_management: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TestWhat {
    /// Validate the configuration (and that the capture devices exist) without
    /// opening any network connection
    Config,
}

#[derive(Subcommand, Debug)]
enum ExportWhat {
    /// Print the effective configuration in the canonical layout
    Config,
    /// Print the Kibana 8 saved objects (NDJSON for the saved objects import API):
    /// a data view over the template's index pattern and four dashboards
    Dashboards,
    /// Print the Elasticsearch index template (composable; legacy for versions before 7.8)
    Template {
        /// Elasticsearch version the template is for (X.Y)
        #[arg(long = "es-version", value_name = "X.Y")]
        es_version: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    match cli.command {
        Some(Command::Devices) => devices(),
        Some(Command::Test {
            what: TestWhat::Config,
        }) => test_config(&cli),
        Some(Command::Export {
            what: ExportWhat::Config,
        }) => match load(&cli) {
            Ok(l) => {
                print!("{}", l.config.to_yaml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Some(Command::Export {
            what: ExportWhat::Template { ref es_version },
        }) => export_template(&cli, es_version.as_deref()),
        Some(Command::Export {
            what: ExportWhat::Dashboards,
        }) => match load(&cli) {
            Ok(l) => {
                print!(
                    "{}",
                    wirebeat::dashboards::export(&data_view_pattern(&l.config))
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Some(Command::Setup {
            dashboards,
            index_management,
        }) => {
            let template = index_management || !dashboards;
            let mut code = ExitCode::SUCCESS;
            if template {
                code = setup(&cli);
            }
            if dashboards && code == ExitCode::SUCCESS {
                code = setup_dashboards(&cli);
            }
            code
        }
        None => run(&cli),
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let base = if cli.log_stderr { "info" } else { "warn" };
    // The periodic metrics report is part of the normal output.
    let mut directives = vec![base.to_string(), "metrics=info".to_string()];
    if let Some(sel) = &cli.debug {
        for s in sel.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if s == "*" {
                directives = vec!["debug".into()];
                break;
            }
            directives.push(format!("{s}=debug"));
        }
    }
    let filter = EnvFilter::try_new(directives.join(",")).unwrap_or_else(|_| EnvFilter::new(base));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}

fn load(cli: &Cli) -> Result<Loaded, ExitCode> {
    match Config::load(cli.config.as_deref(), &cli.overrides) {
        Ok(l) => {
            for w in &l.warnings {
                tracing::warn!(target: "config", "{w}");
            }
            Ok(l)
        }
        Err(e) => {
            eprintln!("wirebeat: configuration error: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn source_name(l: &Loaded) -> String {
    l.source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into())
}

fn devices() -> ExitCode {
    let mut names: Vec<String> = match std::fs::read_dir("/sys/class/net") {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            eprintln!("wirebeat: cannot list devices: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    names.sort();
    println!("0: any (all interfaces)");
    for (i, n) in names.iter().enumerate() {
        println!("{}: {n}", i + 1);
    }
    ExitCode::SUCCESS
}

fn device_exists(name: &str) -> bool {
    name == "any" || std::path::Path::new("/sys/class/net").join(name).exists()
}

fn test_config(cli: &Cli) -> ExitCode {
    let l = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut ok = true;
    for (i, ifc) in l.config.interfaces.iter().enumerate() {
        if ifc.kind == CaptureType::PfRing {
            eprintln!(
                "wirebeat: interfaces[{i}].type: pf_ring needs the PF_RING kernel module, which wirebeat does \
                 not support; use af_packet (recommended) or pcap"
            );
            ok = false;
        }
        if cli.input.is_none() {
            for dev in ifc.devices() {
                if !device_exists(dev) {
                    eprintln!(
                        "wirebeat: interfaces[{i}].device: no such capture device {dev:?} (see `wirebeat devices`)"
                    );
                    ok = false;
                }
            }
        }
    }
    if let Err(e) = l.config.internal_networks() {
        eprintln!("wirebeat: {e}");
        ok = false;
    }
    if cli.input.is_none()
        && let Some(expr) = l
            .config
            .interfaces
            .first()
            .and_then(|i| i.bpf_filter.as_deref())
    {
        // A custom filter is compiled by libpcap: check its syntax now.
        let lt = wirebeat::capture::LinkType::ETHERNET;
        if let Err(e) = wirebeat::capture::pcap_live::compile_filter(expr, lt, 65535) {
            eprintln!("wirebeat: interfaces.bpf_filter: {e}");
            ok = false;
        }
    }
    if let Err(e) = wirebeat::output::check_config(&l.config) {
        eprintln!("wirebeat: {e}");
        ok = false;
    }
    if ok {
        println!("Config OK ({})", source_name(&l));
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CONFIG)
    }
}

fn run(cli: &Cli) -> ExitCode {
    let l = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut cfg = l.config;
    if cli.serve {
        if cli.input.is_none() {
            eprintln!(
                "wirebeat: --serve is for a replay (-I FILE); live capture serves as long as it runs with http.enabled"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        cfg.http.enabled = true;
    }
    if let Err(e) = cfg.internal_networks() {
        eprintln!("wirebeat: configuration error: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let registry = wirebeat::stats::Registry::new();
    let outputs = if cli.no_publish {
        Vec::new()
    } else {
        match wirebeat::output::from_config(&cfg) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("wirebeat: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    };
    let stop = pipeline::install_signal_handlers();
    let metrics = match start_metrics(&cfg, &registry) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let Some(input) = cli.input.clone() else {
        let code = run_live(cli, &cfg, outputs, stop, &registry, started, metrics);
        return code;
    };
    let opts = ReplayOptions {
        file: input.clone(),
        top_speed: cli.top_speed,
        loops: cli.loops,
        no_publish: cli.no_publish,
        dump: cli.dump.clone(),
    };
    let result = pipeline::run_replay(
        &cfg,
        &opts,
        outputs,
        std::sync::Arc::clone(&stop),
        &registry,
    );
    let code = finish(
        result,
        metrics,
        &registry,
        started,
        &format!("{}: input ended early", input.display()),
        &input.display().to_string(),
    );
    if cli.serve && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "wirebeat: input ended; serving http://{}:{}/api/summary and /api/topology until interrupted",
            cfg.http.host, cfg.http.port
        );
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    code
}

/// Starts the periodic metrics report (`logging.metrics`) and the optional metrics
/// endpoint (`http.enabled`).
fn start_metrics(
    cfg: &Config,
    registry: &std::sync::Arc<Registry>,
) -> Result<Option<PeriodicReport>, ExitCode> {
    if cfg.http.enabled {
        let h = &cfg.http;
        match wirebeat::stats::http::serve(
            std::sync::Arc::clone(registry),
            &h.host,
            h.port,
            cfg.shipper.name.clone(),
        ) {
            Ok(addr) => {
                tracing::info!(target: "metrics", "metrics endpoint on http://{addr}/stats and /metrics")
            }
            Err(e) => {
                eprintln!(
                    "wirebeat: http: cannot serve metrics on {}:{}: {e}",
                    h.host, h.port
                );
                return Err(ExitCode::from(EXIT_RUNTIME));
            }
        }
    }
    if !cfg.logging.metrics_enabled {
        return Ok(None);
    }
    match PeriodicReport::spawn(
        std::sync::Arc::clone(registry),
        cfg.logging.metrics_interval,
    ) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            tracing::warn!(target: "metrics", "cannot start the metrics report: {e}");
            Ok(None)
        }
    }
}

/// The Elasticsearch output's settings (defaults when the file has none).
fn es_settings(cfg: &Config) -> wirebeat::config::ElasticsearchOutput {
    cfg.output.elasticsearch.clone().unwrap_or_default()
}

fn export_template(cli: &Cli, es_version: Option<&str>) -> ExitCode {
    use wirebeat::output::elasticsearch::{client, template, template_body};
    let l = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let v = match es_version {
        None => template::DEFAULT_VERSION,
        Some(s) => match client::parse_version_str(s) {
            Some(v) => v,
            None => {
                eprintln!("wirebeat: --es-version: expected X.Y, found {s:?}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    match template_body(&es_settings(&l.config), v) {
        Ok(body) => {
            match serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|j| serde_json::to_string_pretty(&j).ok())
            {
                Some(pretty) => println!("{pretty}"),
                None => println!("{}", String::from_utf8_lossy(&body)),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wirebeat: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Live capture on the configured interfaces until SIGINT/SIGTERM.
fn run_live(
    cli: &Cli,
    cfg: &Config,
    outputs: Vec<Box<dyn wirebeat::output::Output>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    registry: &std::sync::Arc<wirebeat::stats::Registry>,
    started: std::time::Instant,
    metrics: Option<PeriodicReport>,
) -> ExitCode {
    use wirebeat::capture::live;
    if let Err(e) = live::check_devices(cfg) {
        eprintln!("wirebeat: {e}");
        // pf_ring is a configuration mistake; a missing device is a runtime failure.
        return ExitCode::from(match e {
            wirebeat::capture::LiveError::Unsupported(_) => EXIT_CONFIG,
            _ => EXIT_RUNTIME,
        });
    }
    let cores = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(1);
    let readers = live::readers_per_device(cfg, cores);
    // The ports the readers and flow tables track (the same map, built the same way).
    let map = wirebeat::flow::PortMap::new(wirebeat::protos::enabled(cfg));
    let ports = live::Ports {
        tcp: map.ports(),
        udp: map.udp_ports(),
        icmp: map.wants_icmp(),
    };
    let protocols: Vec<&str> = wirebeat::protos::REGISTRY.iter().map(|(n, _)| *n).collect();
    let sources = match live::open_sources(cfg, readers, &ports, &protocols) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wirebeat: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    if cli.dump.is_some() && sources.len() > 1 {
        eprintln!(
            "wirebeat: --dump needs a single capture reader; set pipeline.readers: 1 and capture one device"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let input = pipeline::Input::Live {
        sources,
        dump: cli.dump.clone(),
        no_publish: cli.no_publish,
    };
    let result = pipeline::run(cfg, input, outputs, stop, registry);
    finish(result, metrics, registry, started, "capture stopped", "")
}

/// Stops the periodic report, prints the final report and turns the run's result
/// into the exit code: `input_ended` prefixes an input error, `what` a failure to run.
fn finish(
    result: Result<pipeline::Summary, pipeline::PipelineError>,
    metrics: Option<PeriodicReport>,
    registry: &Registry,
    started: std::time::Instant,
    input_ended: &str,
    what: &str,
) -> ExitCode {
    drop(metrics);
    match result {
        Ok(summary) => {
            report(&summary.counters, registry, started.elapsed());
            let mut code = ExitCode::SUCCESS;
            if let Some(e) = summary.input_error {
                eprintln!("wirebeat: {input_ended}: {e}");
                code = ExitCode::from(EXIT_RUNTIME);
            }
            if let Some(e) = summary.output_error {
                eprintln!("wirebeat: {e}");
                code = ExitCode::from(EXIT_RUNTIME);
            }
            // Events an output gave up on (rejected, or retries exhausted) are lost:
            // the run did not do its job, whatever else went well.
            for (name, entries) in registry.snapshot().outputs {
                let failed = entries
                    .iter()
                    .find(|(k, _)| *k == "events_failed")
                    .map_or(0, |(_, v)| *v);
                if failed > 0 {
                    eprintln!("wirebeat: output {name}: {failed} events could not be delivered");
                    code = ExitCode::from(EXIT_RUNTIME);
                }
            }
            code
        }
        Err(e) if what.is_empty() => {
            eprintln!("wirebeat: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
        Err(e) => {
            eprintln!("wirebeat: {what}: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// The index pattern of the dashboards' data view: the template's, or the
/// configured index's when only the index was changed.
fn data_view_pattern(cfg: &Config) -> String {
    let es = es_settings(cfg);
    let defaults = wirebeat::config::ElasticsearchOutput::default();
    if es.template.pattern == defaults.template.pattern && es.index != defaults.index {
        format!("{}-*", es.index)
    } else {
        es.template.pattern
    }
}

/// `setup --dashboards`: imports the saved objects into `setup.kibana`.
fn setup_dashboards(cli: &Cli) -> ExitCode {
    use wirebeat::dashboards::{self, kibana};
    let l = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let k = &l.config.kibana;
    let pattern = data_view_pattern(&l.config);
    let objects = dashboards::export(&pattern);
    let url = match kibana::import_url(k, true) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("wirebeat: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match kibana::import(k, &objects, true) {
        Ok(done) if done.errors.is_empty() => {
            let boards: Vec<String> = dashboards::dashboards()
                .iter()
                .map(|d| d.title.to_string())
                .collect();
            println!(
                "Imported {} saved objects into Kibana ({}): the data view for {}, dashboards {}",
                done.count,
                url.split("/api/").next().unwrap_or(&url),
                pattern,
                boards.join(", ")
            );
            ExitCode::SUCCESS
        }
        Ok(done) => {
            eprintln!(
                "wirebeat: setup --dashboards: Kibana imported {} objects and refused {}:",
                done.count,
                done.errors.len()
            );
            for e in &done.errors {
                eprintln!("  {e}");
            }
            ExitCode::from(EXIT_RUNTIME)
        }
        Err(e) => {
            eprintln!("wirebeat: setup --dashboards: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn setup(cli: &Cli) -> ExitCode {
    use wirebeat::output::elasticsearch::{
        TemplateAction, client::Client, cluster_version, install_template,
    };
    let l = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let es = es_settings(&l.config);
    let mut c = match Client::new(&es) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wirebeat: output.elasticsearch: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let v = match cluster_version(&mut c) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("wirebeat: setup: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match install_template(&mut c, &es, v, false) {
        Ok(TemplateAction::Loaded) => {
            println!(
                "Index template {} loaded for {} (Elasticsearch {}.{})",
                es.template.name, es.template.pattern, v.0, v.1
            );
            ExitCode::SUCCESS
        }
        Ok(TemplateAction::AlreadyPresent) => {
            println!(
                "Index template {} already present (Elasticsearch {}.{}); set setup.template.overwrite=true to replace it",
                es.template.name, v.0, v.1
            );
            ExitCode::SUCCESS
        }
        Ok(TemplateAction::Disabled) => {
            println!("Index template loading is disabled (setup.template.enabled: false)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wirebeat: setup: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Final report, on stderr: every non-zero counter on one line, then each output's
/// counters and the response-time percentiles.
fn report(c: &Counters, registry: &Registry, elapsed: std::time::Duration) {
    for line in final_lines(c, &registry.snapshot(), elapsed) {
        eprintln!("wirebeat: {line}");
    }
}
