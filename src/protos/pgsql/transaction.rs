//! PostgreSQL requests and responses as they wait for pairing, and the pairing
//! [`Exchange`] that turns a pair into a [`Transaction`].

use std::sync::Arc;

use super::fields::PgsqlFields;
use super::parser::{ErrorFields, Formats};
use crate::config::SqlConfig;
use crate::event::{Status, Transaction};
use crate::protos::pairing::{Exchange, Message, Wire};
use crate::time::Ts;

/// Note of a statement the server never ran because an earlier statement of the same
/// simple query (or of the same extended-protocol pipeline, up to its Sync) failed.
pub const NOTE_SKIPPED: &str = "Not executed: an earlier statement of the same batch failed";

/// The pgsql options, normalised once per factory.
#[derive(Debug)]
pub struct PgsqlSettings {
    pub send_request: bool,
    pub send_response: bool,
    pub max_rows: usize,
    pub max_row_length: usize,
    pub max_statements: usize,
}

impl PgsqlSettings {
    pub fn from_config(c: &SqlConfig) -> PgsqlSettings {
        PgsqlSettings {
            send_request: c.common.send_request,
            send_response: c.common.send_response,
            max_rows: c.max_rows.min(100_000),
            max_row_length: c.max_row_length.min(1 << 20),
            max_statements: c.max_statements,
        }
    }
}

/// What a request is; decides which backend message ends its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One statement of a simple Query.
    Simple,
    /// Bind/Execute (with the Parse, Describe, Sync around it).
    Execute,
    /// Parse, Describe, Bind or Close messages ended by Sync without an Execute
    /// (e.g. `PQprepare`): answered by ReadyForQuery.
    Prepare,
    /// FunctionCall.
    Function,
    /// Stands for request bytes lost in capture.
    Lost,
}

#[derive(Debug)]
pub struct Request {
    pub wire: Wire,
    pub kind: Kind,
    /// Simple Query, or Sync-terminated pipeline, the request belongs to.
    pub batch: u64,
    pub method: Option<String>,
    pub query: Option<Arc<str>>,
    pub params: Option<String>,
    /// Result-format codes of the Bind (with `send_response` only).
    pub formats: Arc<Formats>,
}

impl Message for Request {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn mem_size(&self) -> usize {
        std::mem::size_of::<Request>()
            + self.query.as_ref().map_or(0, |q| q.len())
            + self.params.as_ref().map_or(0, |p| p.len())
    }
}

#[derive(Debug, Default)]
pub struct Response {
    pub wire: Wire,
    /// COPY FROM STDIN data the client sent, counted into the request.
    pub copy_in: u64,
    pub num_fields: Option<u64>,
    pub rows: u64,
    pub tag_rows: Option<u64>,
    pub tag: Option<String>,
    pub error: Option<ErrorFields>,
    /// Synthetic response of a request the server skipped: the note to publish.
    pub skipped: Option<&'static str>,
    /// `send_response` text: the header line and up to `max_rows` row lines, each
    /// ended by a newline.
    pub header: Option<String>,
    pub lines: Vec<String>,
    /// Column formats of the RowDescription (with `send_response` only); the rows
    /// of an Execute have its Bind's instead.
    pub formats: Arc<Formats>,
}

impl Message for Response {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn mem_size(&self) -> usize {
        std::mem::size_of::<Response>()
            + self.header.as_ref().map_or(0, |h| h.len())
            + self.lines.iter().map(|l| l.len() + 24).sum::<usize>()
    }
}

impl Response {
    pub fn new(ts: Ts) -> Response {
        Response {
            wire: Wire::at(ts),
            ..Default::default()
        }
    }

    /// The `send_response` text: the error (`SEVERITY CODE: message`), else the
    /// result rows as Packetbeat writes them (column names, then rows, each line
    /// ended by a newline), else the command tag.
    fn text(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("{} {}: {}", e.severity, e.code, e.message));
        }
        if self.header.is_none() && self.lines.is_empty() {
            return self.tag.clone();
        }
        let mut s = self.header.clone().unwrap_or_default();
        for l in &self.lines {
            s.push_str(l);
        }
        Some(s)
    }
}

#[derive(Debug)]
pub struct PgsqlExchange {
    pub settings: Arc<PgsqlSettings>,
}

impl Exchange for PgsqlExchange {
    const PROTOCOL: &'static str = "pgsql";
    type Request = Request;
    type Response = Response;

    fn fill(&self, tx: &mut Transaction, req: Option<Request>, resp: Option<Response>) {
        let mut f = PgsqlFields::default();
        if let Some(req) = req {
            tx.method = req.method;
            if let Some(q) = req.query {
                if self.settings.send_request {
                    tx.request = Some(q.to_string());
                }
                tx.query = Some(q.to_string());
            }
            tx.params = req.params;
        }
        if let Some(resp) = resp {
            if let Some(note) = resp.skipped {
                tx.status = Status::Error;
                tx.note(note);
                tx.fields = Some(Box::new(f));
                return;
            }
            tx.request_bytes += resp.copy_in;
            if self.settings.send_response {
                tx.response = resp.text();
            }
            f.num_fields = Some(resp.num_fields.unwrap_or(0));
            f.num_rows = Some(resp.tag_rows.unwrap_or(resp.rows));
            if let Some(e) = resp.error {
                tx.status = Status::Error;
                f.error_code = Some(e.code);
                f.error_message = Some(e.message);
                f.error_severity = Some(e.severity);
            }
        }
        tx.fields = Some(Box::new(f));
    }
}
