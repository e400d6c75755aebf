//! The `wirebeat` command line (Packetbeat-compatible flags).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wirebeat::config::{CaptureType, Config, Loaded};
use wirebeat::pipeline::{self, ReplayOptions};
use wirebeat::stats::Counters;

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
    /// Load the index template into Elasticsearch (output.elasticsearch) and exit
    Setup,
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
        Some(Command::Setup) => setup(&cli),
        None => run(&cli),
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let base = if cli.log_stderr { "info" } else { "warn" };
    let mut directives = vec![base.to_string()];
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
        if cli.input.is_none() && !device_exists(&ifc.device) {
            eprintln!(
                "wirebeat: interfaces[{i}].device: no such capture device {:?} (see `wirebeat devices`)",
                ifc.device
            );
            ok = false;
        }
    }
    if let Err(e) = l.config.internal_networks() {
        eprintln!("wirebeat: {e}");
        ok = false;
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
    let cfg = l.config;
    if let Err(e) = cfg.internal_networks() {
        eprintln!("wirebeat: configuration error: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let Some(input) = cli.input.clone() else {
        eprintln!(
            "wirebeat: live capture (interfaces.type af_packet/pcap) is not available in this build yet; \
             replay a capture file with -I FILE"
        );
        return ExitCode::from(EXIT_RUNTIME);
    };
    let registry = wirebeat::stats::Registry::new();
    let outputs = if cli.no_publish {
        Vec::new()
    } else {
        match wirebeat::output::from_config(&cfg, &registry) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("wirebeat: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    };
    let opts = ReplayOptions {
        file: input.clone(),
        top_speed: cli.top_speed,
        loops: cli.loops,
        no_publish: cli.no_publish,
        dump: cli.dump.clone(),
    };
    let stop = pipeline::install_signal_handlers();
    let started = std::time::Instant::now();
    match pipeline::run_replay(&cfg, &opts, outputs, stop, &registry) {
        Ok(summary) => {
            report(&summary.counters, started.elapsed());
            for (name, entries) in registry.snapshot().outputs {
                let parts: Vec<String> = entries
                    .into_iter()
                    .filter(|(k, v)| *v != 0 && *k != "queue_events")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                eprintln!("wirebeat: output {name}: {}", parts.join(" "));
            }
            let mut code = ExitCode::SUCCESS;
            if let Some(e) = summary.input_error {
                eprintln!("wirebeat: {}: input ended early: {e}", input.display());
                code = ExitCode::from(EXIT_RUNTIME);
            }
            if let Some(e) = summary.output_error {
                eprintln!("wirebeat: {e}");
                code = ExitCode::from(EXIT_RUNTIME);
            }
            code
        }
        Err(e) => {
            eprintln!("wirebeat: {}: {e}", input.display());
            ExitCode::from(EXIT_RUNTIME)
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

/// Final counters, on stderr: every non-zero counter, one line.
fn report(c: &Counters, elapsed: std::time::Duration) {
    let parts: Vec<String> = c
        .entries()
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    eprintln!(
        "wirebeat: final counters ({:.3}s): {}",
        elapsed.as_secs_f64(),
        parts.join(" ")
    );
}
