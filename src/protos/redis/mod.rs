//! Redis (RESP2 and RESP3): `parser.rs` reads requests and replies off the wire as
//! streams, `transaction.rs` holds them for pairing and builds the transaction,
//! `fields.rs` writes `redis.*`, and `state.rs` is the per-connection
//! [`Parser`](super::Parser) that sorts replies from out-of-band data:
//!
//! - Requests flow `ToServer`, replies `ToClient`; replies pair FIFO with requests, so
//!   pipelines of any depth work, within `queue_max_messages` / `queue_max_bytes`.
//! - RESP3 push frames (`>`: published messages, client-tracking invalidations) are
//!   not replies and are skipped, except the confirmation of a (un)subscribe.
//! - Once a client subscribes, RESP2 arrays `[message, ...]`, `[pmessage, ...]` and
//!   `[smessage, ...]` are published data and are skipped.
//! - A (un)subscribe of N channels gets N confirmations: the first is the reply of
//!   the command (the transaction), the other N-1 are skipped. A confirmation pairs
//!   only with a waiting command of its own kind (`unsubscribe` with UNSUBSCRIBE...),
//!   so the unknown number of confirmations of an UNSUBSCRIBE of every channel never
//!   answers a later command: the first is its reply, the others are skipped.
//! - After MONITOR, the stream of `+<time> [...] "command"` lines is skipped.
//! - MULTI/EXEC need nothing special: MULTI gets `OK`, every queued command `QUEUED`,
//!   EXEC the array of results, each its own transaction.
//!
//! Every byte is consumed when it arrives (no tail is left to the engine), so huge
//! values stream through with bounded memory and no rescanning.

pub mod fields;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

pub use state::RedisParser;
use transaction::RedisExchange;

use super::Protocol;
use crate::config::Config;

/// Redis as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<RedisExchange>> {
    let c = &cfg.protocols.redis;
    Protocol::from_config(
        "redis",
        &c.common,
        // The parser consumes everything it is given; nothing waits in the engine.
        16 * 1024,
        || RedisExchange {
            send_request: c.common.send_request,
            send_response: c.common.send_response,
        },
        |ex, limits, _| Box::new(RedisParser::new(limits, *ex)),
    )
}
