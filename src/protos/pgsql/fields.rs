//! PostgreSQL event fields: `pgsql.*` (Packetbeat 8 names).

use crate::event::{JsonWriter, ProtoFields};

#[derive(Debug, Default)]
pub struct PgsqlFields {
    pub num_fields: Option<u64>,
    pub num_rows: Option<u64>,
    /// SQLSTATE, e.g. `42P01`.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// ERROR, FATAL or PANIC.
    pub error_severity: Option<String>,
}

impl PgsqlFields {
    fn is_empty(&self) -> bool {
        self.num_fields.is_none()
            && self.num_rows.is_none()
            && self.error_code.is_none()
            && self.error_message.is_none()
            && self.error_severity.is_none()
    }
}

impl ProtoFields for PgsqlFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        if self.is_empty() {
            return;
        }
        w.object("pgsql");
        w.kv_opt_str("error_code", self.error_code.as_deref());
        w.kv_opt_str("error_message", self.error_message.as_deref());
        w.kv_opt_str("error_severity", self.error_severity.as_deref());
        if let Some(n) = self.num_fields {
            w.kv_u64("num_fields", n);
        }
        if let Some(n) = self.num_rows {
            w.kv_u64("num_rows", n);
        }
        w.end_object();
    }
}
