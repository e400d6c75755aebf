//! MySQL client/server protocol (as spoken by MariaDB and MySQL 5.7/8):
//! `parser.rs` reads the wire format (and guesses message starts mid-stream),
//! `transaction.rs` holds requests, responses, the prepared-statement cache and the
//! pairing exchange, `fields.rs` writes `mysql.*` and renders the `response` text and
//! the bound parameters, and `state.rs` is the per-connection state machine behind
//! the engine's [`Parser`](super::Parser).
//!
//! Requests flow `ToServer`, responses `ToClient`. Every packet carries its length in
//! a 4-byte header, so the parser asks the engine for exactly what it needs. Packets
//! up to [`SMALL`] bytes are handled whole; of a larger packet only the first
//! [`SMALL`] bytes are looked at and the rest streams past uncounted in memory, so a
//! 100 MB row or a result of millions of rows never builds up.
//!
//! Events, as in Packetbeat, only for statements: COM_QUERY, COM_STMT_PREPARE and
//! COM_STMT_EXECUTE. Every other command (COM_PING, COM_INIT_DB, COM_STATISTICS,
//! COM_FIELD_LIST, COM_SET_OPTION, COM_STMT_RESET / FETCH / CLOSE, COM_QUIT,
//! COM_CHANGE_USER's authentication, ...) is followed only so that its answer is
//! consumed in order: it waits in the pairing queue as a silent request, publishes
//! nothing, is never unmatched, and is counted in `untracked_commands`.
//!
//! `method` is Packetbeat's: the statement trimmed of space, tab, CR and LF, up to
//! the first of those, upper-cased (`/* c */ SELECT` gives `/*`); `query` is the
//! trimmed statement and `request` (`send_request`) the statement as sent.
//! COM_STMT_PREPARE is `PREPARE` with the statement as `query`; COM_STMT_EXECUTE
//! takes the prepared statement's first word, its text as `query` and the bound
//! values as `params` (`1, 'bob', NULL`), or `EXECUTE` without a query when the
//! statement was never seen (or expired after `statement_timeout`).
//!
//! `path` is Packetbeat's: `schema.table` of every column definition of the result
//! (the table as named in the statement, so an alias), `.` for a column of no table,
//! `, `-joined and left out when the text already contains it. `response`
//! (`send_response`) is Packetbeat's Go CSV: each result set's header record, then
//! its rows, every record ending in a newline; see `rows_packet` for the cuts.
//!
//! A multi-statement query (or a CALL) answered by several results is one event:
//! `num_fields` of the first result set, `num_rows` and `affected_rows` summed, the
//! `response` text holding each result set; an ERR anywhere makes it an error.
//!
//! Connections that switch to TLS or to the compressed protocol stop being followed
//! (counted in `parser_stopped`, logged once per process).

pub mod fields;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

use state::RESYNC_KEEP;
pub use state::{MysqlParser, SMALL};
use transaction::MysqlSettings;

use super::Protocol;
use crate::config::Config;

/// MySQL as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<MysqlSettings>> {
    let c = &cfg.protocols.mysql;
    Protocol::from_config(
        "mysql",
        &c.common,
        SMALL + RESYNC_KEEP + 4,
        || MysqlSettings::from_config(c),
        |s, limits, _| Box::new(MysqlParser::new(s.clone(), limits)),
    )
}
