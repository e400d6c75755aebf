//! MySQL requests and responses as they wait for pairing, the prepared-statement
//! cache, and the pairing [`Exchange`] that turns a pair into a [`Transaction`].

use std::collections::HashMap;
use std::time::Duration;

use super::fields::MysqlFields;
use super::parser::{Expect, trim_query};
use crate::config::SqlConfig;
use crate::event::{Status, Transaction};
use crate::protos::pairing::{Exchange, Message, Wire};
use crate::text::{self, Replace};
use crate::time::Ts;

/// Longest statement text kept for `query` / `request`.
pub const MAX_QUERY: usize = 64 * 1024;
/// Rows starting past this many bytes of a response are left out of its `response`
/// text (Packetbeat's `maxPayloadSize`); they are still counted.
pub const MAX_PAYLOAD_TEXT: usize = 100 * 1024;
/// Hard bound on a `response` text (a header of thousands of long column names).
pub const MAX_RESPONSE_TEXT: usize = 256 * 1024;
/// Longest `params` text.
pub const MAX_PARAMS: usize = 4096;
/// Distinct `db.table` names kept for `path`.
pub const MAX_PATHS: usize = 16;
/// Longest `db.table` name kept.
const MAX_PATH_NAME: usize = 256;
/// Prepared statements remembered per connection.
pub const MAX_STATEMENTS: usize = 1024;

/// The MySQL options, fixed per factory.
#[derive(Clone, Debug)]
pub struct MysqlSettings {
    pub send_request: bool,
    pub send_response: bool,
    pub max_rows: usize,
    pub max_row_length: usize,
    pub statement_timeout: Duration,
}

impl MysqlSettings {
    pub fn from_config(c: &SqlConfig) -> MysqlSettings {
        MysqlSettings {
            send_request: c.common.send_request,
            send_response: c.common.send_response,
            max_rows: c.max_rows,
            max_row_length: c.max_row_length,
            statement_timeout: c.statement_timeout,
        }
    }
}

/// A command from the client.
#[derive(Debug)]
pub struct Request {
    pub wire: Wire,
    pub cmd: u8,
    pub expect: Expect,
    /// Not a transaction (see [`Message::silent`]).
    pub silent: bool,
    pub method: String,
    /// The statement as sent (`request`); `query` is it trimmed.
    pub query: Option<String>,
    pub params: Option<String>,
}

impl Message for Request {
    fn wire(&self) -> &Wire {
        &self.wire
    }
    fn silent(&self) -> bool {
        self.silent
    }
    fn mem_size(&self) -> usize {
        std::mem::size_of::<Request>()
            + self.method.len()
            + self.query.as_ref().map_or(0, |q| q.len())
            + self.params.as_ref().map_or(0, |q| q.len())
    }
}

/// A complete (or loss-cut) answer from the server.
#[derive(Debug, Default)]
pub struct Response {
    pub wire: Wire,
    pub num_fields: u64,
    pub num_rows: u64,
    pub affected_rows: u64,
    pub insert_id: u64,
    pub error: Option<(u16, String)>,
    /// `db.table` of the result's columns, `, `-separated (Packetbeat's `path`).
    pub path: String,
    /// Names in `path`.
    pub paths: usize,
    /// Header record(s) and the first rows, with `send_response`.
    pub text: Option<String>,
    /// Statement id of a COM_STMT_PREPARE answer and its parameter count.
    pub prepared: Option<(u32, u16)>,
}

impl Message for Response {
    fn wire(&self) -> &Wire {
        &self.wire
    }
    fn mem_size(&self) -> usize {
        std::mem::size_of::<Response>()
            + self.text.as_ref().map_or(0, |t| t.len())
            + self.path.len()
    }
}

impl Response {
    /// Adds the `schema.table` of a column definition to `path` as Packetbeat does:
    /// `.` for a column of no table, and nothing when `path` already holds the name
    /// (as a substring: `test.users` hides a later `.` or `test.user`).
    pub fn add_path(&mut self, schema: &[u8], table: &[u8]) {
        if self.paths >= MAX_PATHS {
            return;
        }
        let mut p = text::lossy(&schema[..schema.len().min(MAX_PATH_NAME)], Replace::PerByte);
        p.push('.');
        text::push_lossy(
            &mut p,
            &table[..table.len().min(MAX_PATH_NAME)],
            Replace::PerByte,
        );
        if self.path.is_empty() {
            self.path = p;
        } else if !self.path.contains(&p) {
            self.path.push_str(", ");
            self.path.push_str(&p);
        } else {
            return;
        }
        self.paths += 1;
    }
}

/// A prepared statement: its text, parameter count and the parameter types last
/// bound (a later COM_STMT_EXECUTE may omit them).
#[derive(Debug)]
pub struct Statement {
    pub query: String,
    pub num_params: u16,
    pub types: Vec<(u8, bool)>,
    pub used: Ts,
}

/// Prepared statements of one connection, expiring `statement_timeout` after last use.
#[derive(Debug, Default)]
pub struct Statements {
    map: HashMap<u32, Statement>,
    pub last_id: Option<u32>,
}

impl Statements {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn insert(&mut self, id: u32, st: Statement) {
        if self.map.len() >= MAX_STATEMENTS && !self.map.contains_key(&id) {
            // Forget the least recently used one.
            if let Some(old) = self.map.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| *k) {
                self.map.remove(&old);
            }
        }
        self.map.insert(id, st);
        self.last_id = Some(id);
    }

    /// The statement `id` (0xFFFFFFFF: the last one prepared, as MariaDB allows).
    pub fn get_mut(&mut self, id: u32, now: Ts, ttl: Duration) -> Option<&mut Statement> {
        let id = if id == u32::MAX { self.last_id? } else { id };
        let expired = self.map.get(&id)?.used.saturating_add(ttl) <= now;
        if expired {
            self.map.remove(&id);
            return None;
        }
        let st = self.map.get_mut(&id)?;
        st.used = now;
        Some(st)
    }

    pub fn remove(&mut self, id: u32) {
        self.map.remove(&id);
    }

    pub fn expire(&mut self, now: Ts, ttl: Duration) {
        if !self.map.is_empty() {
            self.map.retain(|_, s| s.used.saturating_add(ttl) > now);
        }
    }
}

#[derive(Debug)]
pub struct MysqlExchange {
    pub settings: MysqlSettings,
}

impl Exchange for MysqlExchange {
    const PROTOCOL: &'static str = "mysql";
    type Request = Request;
    type Response = Response;

    fn fill(&self, tx: &mut Transaction, req: Option<Request>, resp: Option<Response>) {
        if let Some(req) = req {
            tx.method = Some(req.method);
            tx.query = req.query.as_deref().map(|q| trim_query(q).to_string());
            if self.settings.send_request {
                tx.request = req.query;
            }
            tx.params = req.params;
        }
        if let Some(resp) = resp {
            if resp.error.is_some() {
                tx.status = Status::Error;
            }
            if !resp.path.is_empty() {
                tx.path = Some(resp.path);
            }
            tx.response = resp.text;
            let (error_code, error_message) = match resp.error {
                Some((c, m)) => (Some(c), Some(m)),
                None => (None, None),
            };
            tx.fields = Some(Box::new(MysqlFields {
                affected_rows: resp.affected_rows,
                insert_id: resp.insert_id,
                num_fields: resp.num_fields,
                num_rows: resp.num_rows,
                error_code,
                error_message,
            }));
        }
    }
}
