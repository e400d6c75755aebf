//! Thrift RPC: `parser.rs` decodes and renders messages (binary and compact protocols,
//! unframed and framed transports, recognised from the bytes unless configured),
//! `idl.rs` reads IDL files for argument, exception and service names,
//! `transaction.rs` holds messages and pairing, `fields.rs` writes `thrift.*`, and
//! `state.rs` is the per-connection [`Parser`](super::Parser) (framing and dispatch).
//!
//! Calls flow `ToServer`, replies `ToClient`. A framed message is waited for by its
//! length; an unframed one is scanned incrementally ([`parser::Scanner`]) until its end
//! is found, then rendered once. Oneway calls (message type ONEWAY, or a CALL of a
//! function the IDL declares oneway) are published as soon as they are complete, with
//! no response and `destination.bytes` 0. Calls pair with replies in order, but a
//! reply names its function: when it names a later waiting call than the oldest, the
//! calls before that one got no reply and are published as unmatched. A message larger than [`transaction::MAX_MESSAGE`]
//! is skipped (framed) or dropped with the stream's buffer (unframed). A message
//! whose content is malformed or breaks a bound (nesting, `drop_after_n_struct_fields`)
//! after a valid header is published by its header alone, so that calls and replies
//! stay paired; it counts as a parse error.

pub mod fields;
pub mod idl;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use state::ThriftParser;
use transaction::{MAX_MESSAGE, ThriftSettings};

use super::Protocol;
use crate::config::Config;

/// Thrift as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<Arc<ThriftSettings>>> {
    let c = &cfg.protocols.thrift;
    Protocol::from_config(
        "thrift",
        &c.common,
        MAX_MESSAGE,
        || Arc::new(ThriftSettings::from_config(c)),
        |s, limits, _| Box::new(ThriftParser::new(s.clone(), limits)),
    )
}
