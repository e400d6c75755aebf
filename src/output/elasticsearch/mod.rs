//! Elasticsearch output: bulk requests of at most `bulk_max_size` events and
//! `bulk_max_bytes` bytes, sent when full or after `flush_interval`, round-robin over
//! `hosts`. Whole requests that fail (transport errors, 429, 5xx) and the items a
//! bulk response reports as 429/5xx are sent again after an exponential backoff
//! with jitter, up to `max_retries` times; other item errors are counted and logged
//! once per error type. Every document carries an `_id` and goes in with `create`,
//! so an item sent again after a lost response is not indexed twice (the cluster
//! answers 409 and it counts as delivered). Item outcomes come from the parsed
//! response ([`bulk::outcomes`]); a response that cannot be read item by item
//! (`bad_responses`) makes the whole request go again, which the same ids make
//! safe.
//!
//! Retrying blocks this output's writer thread on purpose: its queue fills and,
//! with `when_full: block`, workers wait, so a slow or dead cluster never grows
//! memory.

pub mod bulk;
pub mod client;
pub mod template;
pub mod topology;

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use self::bulk::{Batch, IndexName, Item, Outcome};
use self::client::Client;
use self::template::Version;
use super::retry::{Backoff, GiveUp, Retry};
use super::{Chunk, Delivery, DeliveryProgress, Output};
use crate::config::ElasticsearchOutput;

pub use self::topology::topology_store;

/// Checks the settings without connecting (for `test config`).
pub fn check_config(cfg: &ElasticsearchOutput) -> Result<(), String> {
    IndexName::parse(&cfg.index)?;
    Client::new(cfg)?;
    Ok(())
}

/// How many distinct rejection types are logged before only counting.
const MAX_LOGGED_REASONS: usize = 64;

pub struct Elasticsearch {
    cfg: ElasticsearchOutput,
    client: Client,
    index: IndexName,
    batch: Batch,
    batch_started: Option<Instant>,
    body: Vec<u8>,
    /// Known after the first successful `GET /`.
    version: Option<Version>,
    /// Document ids: a random base per process plus a sequence number.
    id_base: u64,
    seq: u64,
    retry: Retry,
    logged: HashSet<String>,
}

/// What [`install_template`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateAction {
    Loaded,
    AlreadyPresent,
    Disabled,
}

impl Elasticsearch {
    /// The writer thread counts what the output delivers in the registry's
    /// `elasticsearch` stats; `_stats` (those stats) is not needed here.
    pub fn new(cfg: &ElasticsearchOutput) -> Result<Elasticsearch, String> {
        let index = IndexName::parse(&cfg.index)?;
        let client = Client::new(cfg)?;
        let seed = random_seed();
        let retry = Retry::new(
            Backoff::new(cfg.backoff_init, cfg.backoff_max),
            cfg.max_retries,
        )
        .with_jitter(seed);
        Ok(Elasticsearch {
            cfg: cfg.clone(),
            client,
            index,
            batch: Batch::default(),
            batch_started: None,
            body: Vec::new(),
            version: None,
            id_base: seed.rotate_left(17),
            seq: 0,
            retry,
            logged: HashSet::new(),
        })
    }

    /// The cluster version, once connected.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// `GET /` for the version, then the index template when it is missing.
    fn connect(&mut self) -> Result<Version, String> {
        let v = cluster_version(&mut self.client)?;
        tracing::info!(target: "elasticsearch", "connected to Elasticsearch {}.{} ({})", v.0, v.1, self.client.hosts().join(", "));
        match install_template(&mut self.client, &self.cfg, v, false) {
            Ok(TemplateAction::Loaded) => {
                tracing::info!(target: "elasticsearch", "index template {} loaded", self.cfg.template.name)
            }
            Ok(_) => {}
            // A template the cluster refuses is reported, and events still flow.
            Err(TemplateError::Rejected(e)) => tracing::error!(target: "elasticsearch", "{e}"),
            Err(TemplateError::Unavailable(e)) => return Err(e),
        }
        self.version = Some(v);
        Ok(v)
    }

    /// One bulk request for `items`, counted in `done`; returns the items to send
    /// again.
    fn try_send(&mut self, items: &[Item], done: &mut Delivery) -> Result<Vec<Item>, String> {
        let v = match self.version {
            Some(v) => v,
            None => self.connect()?,
        };
        let doc_type = (v.0 < 7).then_some("doc");
        self.batch.body(items, doc_type, &mut self.body);
        done.requests += 1;
        done.bytes += self.body.len() as u64;
        let rep = self
            .client
            .request("POST", "/_bulk", Some((&self.body, "application/x-ndjson")))
            .map_err(|e| {
                if e.kind() == io::ErrorKind::InvalidData {
                    done.bad_responses += 1;
                }
                format!("{e}; the whole request is sent again")
            })?;
        match rep.status {
            200..=299 => {}
            413 if items.len() > 1 => {
                // Too large for the cluster (`http.max_content_length`): each half
                // goes on its own, split again as long as needed. A half that fails
                // as a whole is retried with what the other half left.
                self.log_once("status-413", || {
                    format!(
                        "bulk request of {} events refused as too large (413): sent again in smaller requests; lower bulk_max_size",
                        items.len()
                    )
                });
                let (a, b) = items.split_at(items.len() / 2);
                let mut retry = Vec::new();
                for half in [a, b] {
                    match self.try_send(half, done) {
                        Ok(r) => retry.extend(r),
                        Err(e) => {
                            done.request_errors += 1;
                            tracing::warn!(target: "elasticsearch", "{e}");
                            retry.extend_from_slice(half);
                        }
                    }
                }
                return Ok(retry);
            }
            429 | 500..=599 | 401 | 403 | 408 => {
                return Err(format!(
                    "bulk request answered {}: {}",
                    rep.status,
                    excerpt(&rep.body)
                ));
            }
            s => {
                // The request itself is refused (too large, malformed): sending it
                // again cannot help.
                done.failed += items.len() as u64;
                self.log_once(&format!("status-{s}"), || {
                    format!(
                        "bulk request refused with status {s}: {}",
                        excerpt(&rep.body)
                    )
                });
                return Ok(Vec::new());
            }
        }
        // Each item's fate comes from its own entry of the parsed response. A
        // response that cannot be read that way says nothing reliable about any
        // item, so all of them are sent again (those already indexed then answer
        // 409 and count once).
        let outcomes = bulk::outcomes(&rep.body, items.len()).map_err(|e| {
            done.bad_responses += 1;
            format!(
                "{e}; the whole request is sent again (response starts with: {})",
                excerpt(&rep.body)
            )
        })?;
        let mut retry = Vec::new();
        for (it, o) in items.iter().zip(outcomes) {
            match o {
                Outcome::Ok => done.published += 1,
                // Indexed by an earlier send whose answer was lost.
                Outcome::Duplicate => {
                    done.published += 1;
                    done.resent += 1;
                }
                Outcome::Retry => retry.push(it.clone()),
                Outcome::Fail(kind, reason) => {
                    done.failed += 1;
                    self.log_once(&kind, || {
                        format!("event rejected by Elasticsearch ({kind}): {reason}; further rejections of this type are only counted")
                    });
                }
            }
        }
        Ok(retry)
    }

    fn log_once(&mut self, key: &str, msg: impl FnOnce() -> String) {
        if self.logged.len() < MAX_LOGGED_REASONS
            && !self.logged.contains(key)
            && self.logged.insert(key.to_string())
        {
            tracing::error!(target: "elasticsearch", "{}", msg());
        }
    }

    /// Sends the pending batch, retrying what failed; blocks until every event is
    /// acknowledged, rejected, or given up on. Each failed attempt is reported
    /// to the output's stats as it happens ([`Retry::report`]); the delivery
    /// returned holds the rest.
    fn send_batch(&mut self) -> Delivery {
        let mut done = Delivery::default();
        if self.batch.is_empty() {
            return done;
        }
        let mut pending: Vec<Item> = std::mem::take(&mut self.batch.items);
        let mut failures = 0u64;
        loop {
            match self.try_send(&pending, &mut done) {
                Ok(retry) => pending = retry,
                Err(e) => {
                    done.request_errors += 1;
                    if failures == 0 || failures.is_power_of_two() {
                        tracing::warn!(target: "elasticsearch", "{e} (attempt {})", failures + 1);
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            failures += 1;
            if let Err(why) = self.retry.check(failures) {
                done.failed += pending.len() as u64;
                tracing::error!(
                    target: "elasticsearch",
                    "giving up on {} event(s) after {failures} attempt(s){}",
                    pending.len(),
                    match why {
                        GiveUp::Stopping => " (stopping)",
                        GiveUp::MaxRetries => " (max_retries)",
                    }
                );
                break;
            }
            // Counted as it happens, so that the stats show the outage while
            // the events wait for their next attempt.
            done.retried += pending.len() as u64;
            self.retry.report(&mut done);
            let d = self.retry.delay(failures);
            self.retry.sleep(d);
        }
        self.batch.clear();
        self.batch_started = None;
        done
    }
}

impl Output for Elasticsearch {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    /// Gathers the events into bulk requests, sending each as soon as it is full.
    fn write_batch(&mut self, chunk: &Chunk) -> io::Result<Delivery> {
        let now = bulk::now_hour();
        let max_events = self.cfg.bulk_max_size.max(1);
        let max_bytes = self.cfg.bulk_max_bytes.max(1);
        let mut done = Delivery::default();
        for (line, hour) in chunk.events() {
            self.seq += 1;
            let id = self.id_base.wrapping_add(self.seq);
            self.batch.push(line, hour, &self.index, &now, id);
            self.batch_started.get_or_insert_with(Instant::now);
            if self.batch.len() >= max_events || self.batch.docs.len() >= max_bytes {
                done += self.send_batch();
            }
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<Delivery> {
        Ok(self.send_batch())
    }

    fn tick(&mut self) -> io::Result<Delivery> {
        if self
            .batch_started
            .is_some_and(|t| t.elapsed() >= self.cfg.flush_interval)
        {
            return Ok(self.send_batch());
        }
        Ok(Delivery::default())
    }

    fn set_stop(&mut self, stop: Arc<AtomicBool>) {
        self.retry.set_stop(stop);
    }

    fn set_progress(&mut self, progress: DeliveryProgress) {
        self.retry.set_progress(progress);
    }
}

/// `GET /`: the cluster's version.
pub fn cluster_version(client: &mut Client) -> Result<Version, String> {
    let rep = client
        .request("GET", "/", None)
        .map_err(|e| e.to_string())?;
    if rep.status != 200 {
        return Err(format!(
            "GET / answered {}: {}",
            rep.status,
            excerpt(&rep.body)
        ));
    }
    client::parse_version(&rep.body).ok_or_else(|| {
        format!(
            "GET / did not say which Elasticsearch version this is: {}",
            excerpt(&rep.body)
        )
    })
}

/// Why a template could not be installed.
#[derive(Debug)]
pub enum TemplateError {
    /// The cluster could not be asked (transport error, 5xx): try again later.
    Unavailable(String),
    /// The cluster or the local file refused it: trying again will not help.
    Rejected(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Unavailable(e) | TemplateError::Rejected(e) => f.write_str(e),
        }
    }
}

/// The template body: the file of `setup.template.path`, or the built-in one.
pub fn template_body(cfg: &ElasticsearchOutput, v: Version) -> Result<Vec<u8>, String> {
    match &cfg.template.path {
        Some(path) => {
            use std::io::Read;
            let f = std::fs::File::open(path).map_err(|e| format!("template.path {path}: {e}"))?;
            let mut buf = Vec::new();
            f.take(16 << 20)
                .read_to_end(&mut buf)
                .map_err(|e| format!("template.path {path}: {e}"))?;
            serde_json::from_slice::<serde_json::Value>(&buf)
                .map_err(|e| format!("template.path {path}: not JSON: {e}"))?;
            Ok(buf)
        }
        None => Ok(template::render(v, &cfg.template.pattern)
            .to_string()
            .into_bytes()),
    }
}

/// Loads the index template when it is absent (or always, with `overwrite` or
/// `force`), honouring `template.enabled`.
pub fn install_template(
    client: &mut Client,
    cfg: &ElasticsearchOutput,
    v: Version,
    force: bool,
) -> Result<TemplateAction, TemplateError> {
    let t = &cfg.template;
    if !t.enabled {
        return Ok(TemplateAction::Disabled);
    }
    let path = template::api_path(v, &t.name);
    if !(t.overwrite || force) {
        let rep = client
            .request("HEAD", &path, None)
            .map_err(|e| TemplateError::Unavailable(format!("template {}: {e}", t.name)))?;
        match rep.status {
            200 => return Ok(TemplateAction::AlreadyPresent),
            404 => {}
            s @ (429 | 500..=599) => {
                return Err(TemplateError::Unavailable(format!(
                    "HEAD {path} answered {s}"
                )));
            }
            s => return Err(TemplateError::Rejected(format!("HEAD {path} answered {s}"))),
        }
    }
    let body = template_body(cfg, v).map_err(TemplateError::Rejected)?;
    let rep = client
        .request("PUT", &path, Some((&body, "application/json")))
        .map_err(|e| TemplateError::Unavailable(format!("template {}: {e}", t.name)))?;
    match rep.status {
        200..=299 => Ok(TemplateAction::Loaded),
        s @ (429 | 500..=599) => Err(TemplateError::Unavailable(format!(
            "PUT {path} answered {s}: {}",
            excerpt(&rep.body)
        ))),
        s => Err(TemplateError::Rejected(format!(
            "index template {} refused ({s}): {}",
            t.name,
            excerpt(&rep.body)
        ))),
    }
}

/// The start of a response body, for messages.
fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)]);
    s.replace(['\n', '\r'], " ")
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}
