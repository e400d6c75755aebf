//! ICMP and ICMPv6 (RFC 792, RFC 4443), as Packetbeat follows them: `parser.rs`
//! reads a message's header and names it, `transaction.rs` turns a request/reply
//! pair (or a message of its own) into a transaction, `fields.rs` writes `icmp.*`,
//! and `state.rs` is the per-flow [`Parser`](super::Parser):
//!
//! - The engine's datagram flows hand over every ICMP message whole, with no port:
//!   a flow is one requester, responder and identifier (see `FlowKey::icmp`), so a
//!   reply meets its request there; errors and other messages of their own each get
//!   a flow that ends with them.
//! - Echo, timestamp, information and address mask requests (ICMPv6: echo) wait
//!   for the reply of the same sequence number; a second request with a sequence
//!   number still waiting closes the first; a reply without its request is
//!   published alone; a request left unanswered for `transaction_timeout` (or when
//!   the flow ends) is published with Packetbeat's note.
//! - Every other message is published at once, alone: `Error` for error reports,
//!   `OK` for the rest.

pub mod fields;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

pub use state::IcmpParser;
use transaction::IcmpExchange;

use super::Protocol;
use crate::config::Config;
use crate::event::Transport;

/// ICMP as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<IcmpExchange>> {
    let c = &cfg.protocols.icmp;
    let p = Protocol::from_config(
        "icmp",
        &c.common,
        // Messages come whole; the engine buffers nothing.
        0,
        IcmpExchange::default,
        |_, limits, conn| Box::new(IcmpParser::new(limits, conn)),
    )?;
    Some(p.on(&[Transport::Icmp, Transport::Icmpv6]))
}
