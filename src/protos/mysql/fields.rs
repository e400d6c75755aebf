//! MySQL event fields: `mysql.*` (Packetbeat 8 names).

use crate::event::{JsonWriter, ProtoFields};

/// Protocol fields of one MySQL transaction with a response.
#[derive(Debug, Default)]
pub struct MysqlFields {
    pub affected_rows: u64,
    pub insert_id: u64,
    pub num_fields: u64,
    pub num_rows: u64,
    pub error_code: Option<u16>,
    /// `"<SQLSTATE>: <text>"`.
    pub error_message: Option<String>,
}

impl ProtoFields for MysqlFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("mysql");
        w.kv_u64("affected_rows", self.affected_rows);
        if let Some(c) = self.error_code {
            w.kv_u64("error_code", c as u64);
        }
        w.kv_opt_str("error_message", self.error_message.as_deref());
        w.kv_u64("insert_id", self.insert_id);
        w.kv_u64("num_fields", self.num_fields);
        w.kv_u64("num_rows", self.num_rows);
        w.end_object();
    }
}
