//! A real `redis-server` per test, on 127.0.0.1 and a free port, in its own
//! temporary directory; killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wirebeat::output::redis::resp::{Conn, Reply};

/// Whether the tests may run: `redis-server` is installed. Without it the test is
/// skipped with a message, unless `WIREBEAT_REQUIRE_SERVERS=1` (set by
/// scripts/test.sh when it installed the servers), where it fails.
pub fn available(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("WIREBEAT_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "{test}: redis-server is not installed but WIREBEAT_REQUIRE_SERVERS=1"
        );
        eprintln!("{test}: SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port; `extra` are more `redis-server` arguments.
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_on(free_port(), extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("wirebeat-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut s = RedisServer {
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        s.restart();
        s
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `-E` settings that point the redis output at this server.
    pub fn output_args(&self) -> Vec<String> {
        vec![
            "-E".into(),
            "output.redis.enabled=true".into(),
            "-E".into(),
            format!("output.redis.hosts=[\"{}\"]", self.addr()),
        ]
    }

    /// Starts the server again (same port, same directory) after [`Self::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--daemonize".into(),
            "no".into(),
            "--dir".into(),
            self.dir.to_string_lossy().into_owned(),
            "--save".into(),
            "".into(),
        ];
        if !self.extra.iter().any(|a| a == "--appendonly") {
            args.extend(["--appendonly".into(), "no".into()]);
        }
        args.extend(self.extra.iter().cloned());
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            match Conn::open(&self.addr(), Duration::from_secs(1), None, 0, 1 << 20) {
                Ok(mut c) => {
                    if c.call(&[b"PING"]).is_ok() {
                        return;
                    }
                }
                // NOAUTH (requirepass) still proves that it is up.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return,
                Err(_) => {}
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A clean stop: `SHUTDOWN` (the append-only file is flushed first), then
    /// waits for the process to end. [`Self::restart`] starts it again.
    pub fn shutdown(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(mut conn) = Conn::open(&self.addr(), Duration::from_secs(5), None, 0, 1 << 20)
            {
                // The server closes the connection instead of answering.
                let _ = conn.call(&[b"SHUTDOWN"]);
            }
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A client connection to database `db`.
    pub fn client(&self, password: Option<&str>, db: u32) -> Conn {
        Conn::open(&self.addr(), Duration::from_secs(5), password, db, 1 << 30)
            .expect("connect to redis-server")
    }

    /// Every element of list `key` in database `db`.
    pub fn list(&self, password: Option<&str>, db: u32, key: &str) -> Vec<Vec<u8>> {
        let mut c = self.client(password, db);
        match c
            .call(&[b"LRANGE", key.as_bytes(), b"0", b"-1"])
            .expect("LRANGE")
        {
            Reply::Array(Some(items)) => items
                .into_iter()
                .map(|i| match i {
                    Reply::Bulk(Some(b)) => b,
                    other => panic!("unexpected list element {other:?}"),
                })
                .collect(),
            other => panic!("unexpected LRANGE reply {other:?}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
