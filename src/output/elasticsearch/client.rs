//! HTTP to an Elasticsearch cluster: host list with round-robin and failover,
//! health back-off for hosts that fail, authentication, TLS and gzip.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::config::ElasticsearchOutput;
use crate::output::retry::Backoff;

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

struct Host {
    base: String,
    /// Consecutive failures, for the back-off.
    failures: u32,
    down_until: Option<Instant>,
}

/// Requests to the configured hosts, round-robin, skipping hosts that failed
/// recently (their back-off doubles with each failure up to `backoff_max`).
pub struct Client {
    agent: Agent,
    hosts: Vec<Host>,
    next: usize,
    auth: Option<String>,
    gzip: Option<u32>,
    /// How long a failed host is skipped: grows with its consecutive failures.
    backoff: Backoff,
    /// `max_response_bytes`: bulk responses list every item, so this bounds them.
    max_response: u64,
    gz_buf: Vec<u8>,
}

/// Why [`Client::send`] failed.
enum SendError {
    /// The host could not be reached or broke off: try another.
    Transport(String),
    /// The host answered with a body over `max_response_bytes`.
    TooLarge,
}

/// `host:port`, `host`, or a URL (`https://h:9200/prefix`), with the output's
/// `protocol` and `path`, as a base URL without a trailing slash.
pub fn base_url(host: &str, protocol: Option<&str>, path: Option<&str>) -> Result<String, String> {
    base_url_port(host, protocol, path, 9200)
}

/// [`base_url`] with `port` for a host given without one.
pub fn base_url_port(
    host: &str,
    protocol: Option<&str>,
    path: Option<&str>,
    port: u16,
) -> Result<String, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("empty host".into());
    }
    let (scheme, rest) = match host.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => (protocol.unwrap_or("http").to_ascii_lowercase(), host),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{host:?}: unsupported scheme {scheme:?} (http or https)"
        ));
    }
    let (authority, url_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(format!("{host:?}: expected host:port or a URL"));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority.ends_with(']') && authority[i + 1..].parse::<u16>().is_ok(),
        None => false,
    };
    let mut url = format!("{scheme}://{authority}");
    if !has_port {
        url.push(':');
        url.push_str(&port.to_string());
    }
    let mut prefix = url_path.trim_end_matches('/').to_string();
    if let Some(p) = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(p);
    }
    url.push_str(&prefix);
    Ok(url)
}

/// An HTTP agent that verifies servers against `cas` (PEM files; the system roots
/// when empty) unless `verify` is off, with `timeout` for a whole request. Every
/// status is an answer, not an error; no redirect is followed.
pub fn agent(cas: &[String], verify: bool, timeout: Duration) -> Result<Agent, String> {
    let mut tls = TlsConfig::builder().disable_verification(!verify);
    if !cas.is_empty() {
        let mut certs: Vec<Certificate<'static>> = Vec::new();
        for path in cas {
            let pem = std::fs::read(path)
                .map_err(|e| format!("tls.certificate_authorities: {path}: {e}"))?;
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(format!("tls.certificate_authorities: {path}: {e}"));
                    }
                }
            }
        }
        if certs.is_empty() {
            return Err("tls.certificate_authorities: no certificate found".into());
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout.max(Duration::from_millis(10))))
        .timeout_connect(Some(
            timeout.clamp(Duration::from_millis(10), Duration::from_secs(10)),
        ))
        .max_idle_connections(16)
        .max_idle_connections_per_host(4)
        .max_redirects(0)
        .user_agent(concat!("wirebeat/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build()
        .into())
}

/// The `Authorization` header of Beats' settings: `api_key` (`id:key`, encoded
/// here, or already encoded) wins over `username`/`password`.
pub fn auth_header(
    username: Option<&str>,
    password: Option<&str>,
    api_key: Option<&str>,
) -> Option<String> {
    if let Some(k) = api_key.filter(|k| !k.is_empty()) {
        let enc = if k.contains(':') {
            base64_encode(k.as_bytes())
        } else {
            k.to_string()
        };
        return Some(format!("ApiKey {enc}"));
    }
    username.filter(|u| !u.is_empty()).map(|u| {
        let pw = password.unwrap_or("");
        format!("Basic {}", base64_encode(format!("{u}:{pw}").as_bytes()))
    })
}

impl Client {
    pub fn new(cfg: &ElasticsearchOutput) -> Result<Client, String> {
        if cfg.hosts.is_empty() {
            return Err("hosts: no host configured".into());
        }
        let mut hosts = Vec::new();
        for h in &cfg.hosts {
            hosts.push(Host {
                base: base_url(h, cfg.protocol.as_deref(), cfg.path.as_deref())
                    .map_err(|e| format!("hosts: {e}"))?,
                failures: 0,
                down_until: None,
            });
        }
        let agent = agent(
            &cfg.tls_certificate_authorities,
            cfg.tls_verify,
            cfg.timeout,
        )?;
        let auth = auth_header(
            cfg.username.as_deref(),
            cfg.password.as_deref(),
            cfg.api_key.as_deref(),
        );
        Ok(Client {
            agent,
            hosts,
            next: 0,
            auth,
            gzip: (cfg.compression_level > 0).then_some(cfg.compression_level.min(9)),
            backoff: Backoff::new(cfg.backoff_init, cfg.backoff_max),
            max_response: cfg.max_response_bytes as u64,
            gz_buf: Vec::new(),
        })
    }

    /// The next host to use: round-robin over the healthy ones; when every host is
    /// backing off, the one that comes back first.
    fn pick(&mut self) -> usize {
        let now = Instant::now();
        let n = self.hosts.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.hosts[i].down_until.is_none_or(|t| t <= now) {
                self.next = (i + 1) % n;
                return i;
            }
        }
        let i = (0..n)
            .min_by_key(|&i| self.hosts[i].down_until)
            .unwrap_or(0);
        self.next = (i + 1) % n;
        i
    }

    fn mark(&mut self, i: usize, ok: bool) {
        let h = &mut self.hosts[i];
        if ok {
            h.failures = 0;
            h.down_until = None;
            return;
        }
        h.failures = h.failures.saturating_add(1);
        let d = self.backoff.delay(u64::from(h.failures));
        h.down_until = Some(crate::output::retry::deadline(d));
        if h.failures.is_power_of_two() {
            tracing::warn!(target: "elasticsearch", "{}: backing off for {d:?} after {} failure(s)", h.base, h.failures);
        }
    }

    /// The base URL of every host.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.base.clone()).collect()
    }

    /// Sends a request to the next host; on a transport error, fails over to the
    /// other healthy hosts at once (each at most once per call). Transport errors
    /// and 502/503/504 put a host into back-off; every status is returned as a
    /// [`Reply`]. A body larger than `max_response_bytes` is not read further: that
    /// is an error of kind [`io::ErrorKind::InvalidData`], and the host stays
    /// healthy. `path` starts with `/`.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> io::Result<Reply> {
        let mut last_err = None;
        for k in 0..self.hosts.len() {
            let i = self.pick();
            if k > 0 && self.hosts[i].down_until.is_some_and(|t| t > Instant::now()) {
                break; // every other host is backing off too
            }
            let url = format!("{}{path}", self.hosts[i].base);
            match self.send(method, &url, body) {
                Ok(rep) => {
                    self.mark(i, !matches!(rep.status, 502..=504));
                    return Ok(rep);
                }
                Err(SendError::TooLarge) => {
                    self.mark(i, true);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: response larger than output.elasticsearch.max_response_bytes ({})",
                            self.hosts[i].base, self.max_response
                        ),
                    ));
                }
                Err(SendError::Transport(e)) => {
                    self.mark(i, false);
                    last_err = Some(io::Error::other(format!("{}: {e}", self.hosts[i].base)));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no host")))
    }

    fn send(
        &mut self,
        method: &str,
        url: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Reply, SendError> {
        let t = |e: String| SendError::Transport(e);
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a.as_str());
        }
        let resp = match body {
            Some((data, ctype)) => {
                req = req.header("Content-Type", ctype);
                let data: &[u8] = match self.gzip {
                    Some(level) if data.len() > 1024 => {
                        req = req.header("Content-Encoding", "gzip");
                        self.gz_buf.clear();
                        let mut enc = flate2::write::GzEncoder::new(
                            std::mem::take(&mut self.gz_buf),
                            flate2::Compression::new(level),
                        );
                        enc.write_all(data).map_err(|e| t(e.to_string()))?;
                        self.gz_buf = enc.finish().map_err(|e| t(e.to_string()))?;
                        &self.gz_buf
                    }
                    _ => data,
                };
                let req = req.body(data).map_err(|e| t(e.to_string()))?;
                self.agent.run(req)
            }
            None => {
                let req = req.body(()).map_err(|e| t(e.to_string()))?;
                self.agent.run(req)
            }
        }
        .map_err(|e| t(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            match resp
                .into_body()
                .with_config()
                .limit(self.max_response)
                .read_to_vec()
            {
                Ok(b) => b,
                Err(ureq::Error::BodyExceedsLimit(_)) => return Err(SendError::TooLarge),
                Err(e) => return Err(t(e.to_string())),
            }
        };
        Ok(Reply { status, body })
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Parses `version.number` of a `GET /` response into (major, minor).
pub fn parse_version(body: &[u8]) -> Option<(u32, u32)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let n = v.get("version")?.get("number")?.as_str()?;
    parse_version_str(n)
}

/// `"7.17.3"` or `"8.11"` → (major, minor).
pub fn parse_version_str(n: &str) -> Option<(u32, u32)> {
    let mut it = n.split(['.', '-']);
    let major = it.next()?.trim().parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(base_url("es1:9201", None, None).unwrap(), "http://es1:9201");
        assert_eq!(
            base_url("es1", Some("https"), Some("/proxy/")).unwrap(),
            "https://es1:9200/proxy"
        );
        assert_eq!(
            base_url("https://es1/a/", None, Some("b")).unwrap(),
            "https://es1:9200/a/b"
        );
        assert_eq!(
            base_url("[::1]:9200", None, None).unwrap(),
            "http://[::1]:9200"
        );
        assert_eq!(base_url("[::1]", None, None).unwrap(), "http://[::1]:9200");
        assert!(base_url("ftp://x", None, None).is_err());
        assert!(base_url("user@x", None, None).is_err());
        assert!(base_url(" ", None, None).is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version(br#"{"version":{"number":"7.17.3"}}"#),
            Some((7, 17))
        );
        assert_eq!(parse_version_str("8.0.0-SNAPSHOT"), Some((8, 0)));
        assert_eq!(parse_version(b"{}"), None);
    }

    #[test]
    fn round_robin_skips_hosts_backing_off() {
        let cfg = ElasticsearchOutput {
            hosts: vec!["a:1".into(), "b:2".into(), "c:3".into()],
            ..Default::default()
        };
        let mut c = Client::new(&cfg).unwrap();
        assert_eq!([c.pick(), c.pick(), c.pick(), c.pick()], [0, 1, 2, 0]);
        c.mark(1, false);
        assert_eq!([c.pick(), c.pick(), c.pick()], [2, 0, 2]);
        c.mark(0, false);
        c.mark(2, false);
        // Every host is down: the one that comes back first.
        assert_eq!(c.pick(), 1);
        c.mark(1, true);
        assert_eq!(c.pick(), 1);
    }
}
