//! Outputs. Workers encode events as NDJSON into byte batches; a writer thread hands
//! each batch to every enabled output.

pub mod console;
pub mod file;
pub mod redis;
pub mod topology;

use std::io;

use crate::config::Config;

/// A destination for encoded events.
pub trait Output: Send {
    fn name(&self) -> &'static str;
    /// Writes a batch of NDJSON lines (each ending in `\n`).
    fn write_batch(&mut self, ndjson: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    /// Called by the writer thread when idle, at least every 100 ms, so that
    /// time-based flushes, retries and reconnects happen without new events.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks the output settings without opening anything (for `test config`).
pub fn check_config(cfg: &Config) -> Result<(), String> {
    let o = &cfg.output;
    if let Some(f) = o.file.as_ref().filter(|f| f.enabled)
        && (f.filename.is_empty() || f.filename.contains('/'))
    {
        return Err(format!(
            "output.file.filename: {:?} must be a plain file name",
            f.filename
        ));
    }
    if let Some(r) = o.redis.as_ref().filter(|r| r.enabled) {
        redis::addresses(r)?;
    }
    Ok(())
}

/// Builds every enabled output. With none configured, events go to stdout.
/// Outputs that this build cannot drive are a configuration error naming them.
pub fn from_config(cfg: &Config) -> Result<Vec<Box<dyn Output>>, String> {
    let mut outs: Vec<Box<dyn Output>> = Vec::new();
    let o = &cfg.output;
    if let Some(es) = o.elasticsearch.as_ref().filter(|e| e.enabled) {
        return Err(format!(
            "output.elasticsearch (hosts {:?}) is not available in this build of wirebeat yet; \
             use output.console or output.file, or disable it with -E output.elasticsearch.enabled=false",
            es.hosts
        ));
    }
    if let Some(r) = o.redis.as_ref().filter(|r| r.enabled) {
        let stats = std::sync::Arc::new(crate::stats::OutputStats::default());
        outs.push(Box::new(redis::RedisOutput::new(r, stats)?));
    }
    if let Some(f) = o.file.as_ref().filter(|f| f.enabled) {
        outs.push(Box::new(
            file::RotatingFile::new(f).map_err(|e| format!("output.file: {e}"))?,
        ));
    }
    if let Some(c) = o.console.as_ref().filter(|c| c.enabled) {
        outs.push(Box::new(console::Console::stdout(c.pretty)));
    }
    if outs.is_empty() {
        outs.push(Box::new(console::Console::stdout(false)));
    }
    Ok(outs)
}
