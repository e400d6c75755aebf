//! PostgreSQL frontend/backend protocol v3: `parser.rs` reads the wire format,
//! `transaction.rs` holds requests, responses and the pairing exchange, `fields.rs`
//! writes `pgsql.*`, `cache.rs` remembers prepared statements, and `state.rs` is the
//! per-connection state machine (the [`Parser`](super::Parser)).
//!
//! Frontend messages flow `ToServer`, backend messages `ToClient`.
//!
//! Transactions:
//! - a simple Query yields one request per statement, each answered by the backend
//!   messages up to its CommandComplete, ErrorResponse or EmptyQueryResponse;
//! - in the extended protocol every Execute is a request, carrying the Parse,
//!   Bind and Describe messages before it and a Sync or Flush right after it, so
//!   with several Executes per Sync (pipelines) each is its own transaction; it is
//!   answered by the backend messages up to its own CommandComplete, ErrorResponse,
//!   EmptyQueryResponse or PortalSuspended (ParseComplete, BindComplete,
//!   RowDescription, NoData, DataRows of that statement), which give its `num_rows`,
//!   `num_fields` and error. Its query is the text of the Parse of the statement it
//!   executes: statements and portals are remembered per connection
//!   (`max_statements` of each, least recently used forgotten first and counted in
//!   `statement_evictions`), so a named statement executed by Bind alone, or a
//!   suspended portal executed again, keeps its query; its params are the Bind
//!   values. A pipeline of Parse/Bind/Describe/Close messages ended by Sync without
//!   an Execute (`PQprepare`) is one request (method `PREPARE`, `BIND`, `DESCRIBE`
//!   or `CLOSE`) answered up to ReadyForQuery;
//! - after an ErrorResponse the server skips the rest of the Query string or, in the
//!   extended protocol, every message up to Sync: the requests of that batch that
//!   got no answer are published at ReadyForQuery with status Error, the note
//!   [`transaction::NOTE_SKIPPED`], no response bytes and no `pgsql` fields;
//! - a response also takes the NoticeResponse, NotificationResponse and
//!   ParameterStatus messages that arrive while it is awaited or right after it.
//!   ReadyForQuery ends a batch and counts in no transaction's bytes (Packetbeat
//!   counts it nowhere either). Asynchronous messages arriving while no request is
//!   waiting are not responses and belong to no transaction;
//! - `num_fields` comes from the RowDescription, or for an Execute whose statement
//!   was described at its Parse (no RowDescription of its own), from its rows;
//! - the `send_response` text of a result is Packetbeat's: column names, then up to
//!   `max_rows` rows, each line ended by a newline (see [`crate::protos::csv`] and
//!   [`parser::render_row`] for the quoting and the `max_row_length` cut); NULL and
//!   binary values are empty. Without rows it is the error (`SEVERITY CODE:
//!   message`) or the command tag;
//! - COPY FROM STDIN data counts into the COPY's request bytes, COPY TO STDOUT data
//!   into its response (each CopyData a line of the `send_response` text).
//!
//! Startup, SSLRequest refusal, authentication, ParameterStatus and BackendKeyData
//! are skipped; an accepted SSLRequest or GSSENCRequest stops the parser (the engine
//! counts `parser_stopped`). Messages up to [`parser::WHOLE_LIMIT`] are parsed whole;
//! larger ones (a huge DataRow or query) from a prefix, the rest counted as it
//! streams. A stream picked up mid-connection, or after a gap or garbage, resumes at
//! the first message that passes [`parser::probe`].

pub mod cache;
pub mod fields;
pub mod parser;
pub mod state;
pub mod transaction;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use state::PgsqlParser;
use transaction::PgsqlSettings;

use super::Protocol;
use crate::config::Config;

/// PostgreSQL as configured; `None` when disabled.
pub fn protocol(cfg: &Config) -> Option<Protocol<Arc<PgsqlSettings>>> {
    let c = &cfg.protocols.pgsql;
    Protocol::from_config(
        "pgsql",
        &c.common,
        128 * 1024,
        || Arc::new(PgsqlSettings::from_config(c)),
        |s, limits, _| Box::new(PgsqlParser::new(s.clone(), limits)),
    )
}
