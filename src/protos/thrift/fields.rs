//! Thrift event fields: `thrift.*` (Packetbeat 8).

use crate::event::{JsonWriter, ProtoFields};

/// Protocol fields of one Thrift transaction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ThriftFields {
    /// Rendered arguments, `(1: 1, 2: "x")` or `(num1: 1, s: "x")` with an IDL.
    pub params: Option<String>,
    /// Service of the function, from the IDL.
    pub service: Option<String>,
    /// Rendered field 0 of the reply (`""` for void functions).
    pub return_value: Option<String>,
    /// Rendered exception fields of the reply, `(1: (1: 4, 2: "..."))`.
    pub exceptions: Option<String>,
}

impl ProtoFields for ThriftFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("thrift");
        w.kv_opt_str("exceptions", self.exceptions.as_deref());
        w.kv_opt_str("params", self.params.as_deref());
        w.kv_opt_str("return_value", self.return_value.as_deref());
        w.kv_opt_str("service", self.service.as_deref());
        w.end_object();
    }
}
