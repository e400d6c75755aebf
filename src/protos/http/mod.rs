//! HTTP/1.x: `parser.rs` frames messages on the wire, `transaction.rs` holds the
//! messages and the pairing exchange, `content.rs` reads what they carry (header
//! values, target and parameters, gzip/deflate bodies), `fields.rs` writes the event
//! fields, and `state.rs` is the per-connection [`Parser`](super::Parser).
//!
//! Requests flow `ToServer`, responses `ToClient`. Bodies are consumed as they stream;
//! only heads (bounded by [`parser::MAX_HEAD`]) and short framing lines are ever left
//! for the engine to buffer.
//!
//! A request is handed to pairing as soon as its head is parsed (open until its body
//! ends), so a response sent before the body was read (a redirect, 401 or 413 to a
//! large POST) pairs with it; the request's bytes still count the rest of its body,
//! and the transaction is published when both have ended.

pub mod content;
pub mod fields;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use state::HttpParser;
use transaction::HttpSettings;

use super::Protocol;
use crate::config::Config;

/// HTTP as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<Arc<HttpSettings>>> {
    let c = &cfg.protocols.http;
    let mut p = Protocol::from_config(
        "http",
        &c.common,
        64 * 1024,
        || Arc::new(HttpSettings::from_config(c)),
        |s, limits, conn| Box::new(HttpParser::new(s.clone(), conn, limits)),
    )?;
    // A request and a response of the largest size always fit.
    p.limits.max_bytes = p.limits.max_bytes.max(c.max_message_size.saturating_mul(2));
    Some(p)
}
