//! DNS over UDP and TCP (RFC 1035; EDNS, RFC 6891): `parser.rs` reads one whole
//! message, `transaction.rs` pairs a query with its answer and builds the
//! transaction, `fields.rs` writes `dns.*`, and `state.rs` is the per-flow
//! [`Parser`](super::Parser):
//!
//! - Over UDP every datagram is one message (the engine's UDP flows hand them over
//!   whole); over TCP each message follows its 2-byte length, and the engine holds a
//!   message until it is complete (up to 64 KiB).
//! - A message is a query or an answer by its QR bit; answers pair with the waiting
//!   query of the same id on the same flow, as in Packetbeat. A second query with an
//!   id still waiting closes the first; an answer without a query is published alone;
//!   a query left unanswered for `transaction_timeout` (or when the flow ends) is
//!   published with Packetbeat's note.
//! - `dns.*` comes from the answer when there is one, else from the query;
//!   `include_authorities` and `include_additionals` add those sections.

pub mod fields;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

pub use state::DnsParser;
use transaction::DnsExchange;

use super::Protocol;
use crate::config::Config;
use crate::event::Transport;

/// DNS as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<DnsExchange>> {
    let c = &cfg.protocols.dns;
    let p = Protocol::from_config(
        "dns",
        &c.common,
        // A whole TCP message waits in the engine.
        state::MAX_TCP_MESSAGE,
        || DnsExchange {
            send_request: c.common.send_request,
            send_response: c.common.send_response,
            include_authorities: c.include_authorities,
            include_additionals: c.include_additionals,
        },
        |ex, limits, conn| {
            Box::new(DnsParser::new(
                *ex,
                limits,
                conn.transport == Transport::Udp,
            ))
        },
    )?;
    Some(p.on(&[Transport::Udp, Transport::Tcp]))
}
