//! Network namespaces for live-capture tests: a server and a client namespace joined
//! by a veth pair (MTU 1500, offloads off), servers started inside them, and guards
//! that tear everything down even when a test fails. Nothing here touches the host's
//! own interfaces: every device lives in a namespace created here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const SERVER_IP: &str = "10.99.0.1";
pub const CLIENT_IP: &str = "10.99.0.2";

/// Whether a missing prerequisite must fail the test (CI running as root).
pub fn required() -> bool {
    std::env::var("WIREBEAT_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Checks root and `tools`. Returns false (after saying why) when the test should be
/// skipped; panics instead when `WIREBEAT_REQUIRE_ROOT_TESTS=1`.
pub fn prerequisites(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !is_root() {
        missing.push("root (network namespaces and raw sockets)".into());
    }
    for t in ["ip", "ethtool"].iter().chain(tools) {
        if !have(t) {
            missing.push(format!("`{t}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: needs {} (scripts/test.sh installs them when run as root)",
        missing.join(", ")
    );
    if required() {
        panic!("{msg}; WIREBEAT_REQUIRE_ROOT_TESTS=1 makes this a failure");
    }
    eprintln!("SKIPPED {msg}");
    false
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A server and a client namespace joined by a veth pair; deleted on drop.
pub struct Pair {
    pub server: String,
    pub client: String,
    pub server_if: String,
    pub client_if: String,
    pub dir: PathBuf,
    children: Vec<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Pair {
    pub fn new() -> Pair {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 1_000_000);
        let dir = std::env::temp_dir().join(format!("wirebeat-live-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pair = Pair {
            server: format!("wbs-{tag}"),
            client: format!("wbc-{tag}"),
            // Device names are limited to 15 bytes.
            server_if: format!("wvs{tag}"),
            client_if: format!("wvc{tag}"),
            dir,
            children: Vec::new(),
        };
        pair.setup();
        pair
    }

    fn setup(&self) {
        let (s, c) = (self.server.as_str(), self.client.as_str());
        run(&["ip", "netns", "add", s]);
        run(&["ip", "netns", "add", c]);
        run(&[
            "ip",
            "link",
            "add",
            "name",
            &self.server_if,
            "netns",
            s,
            "mtu",
            "1500",
            "type",
            "veth",
            "peer",
            "name",
            &self.client_if,
            "netns",
            c,
            "mtu",
            "1500",
        ]);
        for (ns, dev, ip) in [
            (s, self.server_if.as_str(), SERVER_IP),
            (c, self.client_if.as_str(), CLIENT_IP),
        ] {
            // No IPv6: no router solicitations or neighbour discovery on the link, so
            // the only traffic is what the test sends.
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ]);
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
            // Offloads off: frames on the wire are what the capture sees (no 64 KiB
            // GSO super-packets, no partial checksums).
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", dev])
                .args([
                    "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off",
                ])
                .output();
        }
    }

    /// Runs `args` inside namespace `ns` and waits for it.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Starts `args` inside `ns` in the background; killed on drop.
    pub fn spawn(&mut self, ns: &str, args: &[&str], log: &str) -> u32 {
        let out = std::fs::File::create(self.dir.join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Starts nginx in the server namespace, serving `files` (name, bytes) on port 80.
    pub fn start_nginx(&mut self, files: &[(&str, Vec<u8>)]) {
        let d = self.dir.join("nginx");
        let www = d.join("www");
        std::fs::create_dir_all(&www).unwrap();
        for (name, body) in files {
            std::fs::write(www.join(name), body).unwrap();
        }
        let p = |x: &str| d.join(x).display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {err};\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  \
             fastcgi_temp_path {t}/fcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n  \
             default_type application/octet-stream;\n  keepalive_timeout 5;\n  \
             server {{ listen {ip}:80; root {www}; location / {{ }} }}\n}}\n",
            pid = p("nginx.pid"),
            err = p("error.log"),
            t = p("tmp"),
            ip = SERVER_IP,
            www = www.display(),
        );
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let server = self.server.clone();
        self.spawn(
            &server,
            &[
                "nginx",
                "-c",
                &conf_path.display().to_string(),
                "-p",
                &p(""),
            ],
            "nginx.log",
        );
        let client = self.client.clone();
        self.wait_ready("nginx", || {
            self.exec(
                &client,
                &[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-m",
                    "1",
                    &format!("http://{SERVER_IP}/"),
                ],
            )
            .status
            .success()
        });
    }

    /// Starts redis-server in the server namespace on port 6379, persistence off.
    pub fn start_redis(&mut self) {
        let d = self.dir.join("redis");
        std::fs::create_dir_all(&d).unwrap();
        let server = self.server.clone();
        self.spawn(
            &server,
            &[
                "redis-server",
                "--bind",
                SERVER_IP,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                &d.display().to_string(),
            ],
            "redis.log",
        );
        let client = self.client.clone();
        self.wait_ready("redis-server", || {
            let o = self.exec(&client, &["redis-cli", "-h", SERVER_IP, "PING"]);
            String::from_utf8_lossy(&o.stdout).contains("PONG")
        });
    }

    /// Starts dnsmasq in the server namespace on UDP and TCP port 53, authoritative
    /// for `wirebeat.test` with `www.wirebeat.test` at 10.77.0.50.
    pub fn start_dnsmasq(&mut self) {
        let server = self.server.clone();
        let listen = format!("--listen-address={SERVER_IP}");
        let auth = format!("--auth-server=ns1.wirebeat.test,{}", self.server_if);
        self.spawn(
            &server,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--pid-file=",
                "--user=root",
                &listen,
                "--bind-interfaces",
                "--port=53",
                &auth,
                "--auth-zone=wirebeat.test",
                "--host-record=www.wirebeat.test,10.77.0.50",
            ],
            "dnsmasq.log",
        );
        let client = self.client.clone();
        self.wait_ready("dnsmasq", || {
            let at = format!("@{SERVER_IP}");
            let o = self.exec(
                &client,
                &[
                    "dig",
                    &at,
                    "+tries=1",
                    "+time=1",
                    "+short",
                    "ns1.wirebeat.test",
                ],
            );
            o.status.success()
        });
    }

    fn wait_ready(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what} did not start in the server namespace (logs in {})",
            self.dir.display()
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // `ip netns exec` runs the server as a child; make sure nothing stays in the
        // namespaces, then delete them (which deletes the veth pair too).
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| {
                    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).output();
                    }
                });
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A wirebeat process capturing inside a namespace.
pub struct Capture {
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Capture {
    /// Starts wirebeat in `ns` with `config` (YAML text) plus `extra` arguments, and
    /// waits until its readers run.
    pub fn start(pair: &Pair, ns: &str, config: &str, extra: &[&str]) -> Capture {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let cfg = pair.dir.join(format!("wirebeat-{n}.yml"));
        std::fs::write(&cfg, config).unwrap();
        let stdout = pair.dir.join(format!("wirebeat-{n}.out"));
        let stderr = pair.dir.join(format!("wirebeat-{n}.err"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_wirebeat")])
            .args(["-c", &cfg.display().to_string(), "-e"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start wirebeat");
        let cap = Capture {
            child: Some(child),
            stdout,
            stderr,
        };
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let err = std::fs::read_to_string(&cap.stderr).unwrap_or_default();
            if err.contains("capturing with") {
                break;
            }
            assert!(
                Instant::now() < until,
                "wirebeat did not start capturing:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader threads start right after that line.
        std::thread::sleep(Duration::from_millis(200));
        cap
    }

    /// SIGINT, then waits for a clean exit; returns (exit code, stdout, stderr).
    pub fn stop(mut self) -> (i32, Vec<u8>, String) {
        let mut child = self.child.take().unwrap();
        // `ip netns exec` execs wirebeat in place, so the child is wirebeat itself.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .output();
        let until = Instant::now() + Duration::from_secs(15);
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wirebeat did not exit within 15 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            code,
            std::fs::read(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
