//! Redis event fields: `redis.return_value`, or `redis.error` for an error reply.

use crate::event::{JsonWriter, ProtoFields};

/// Protocol fields of one Redis transaction with a reply.
#[derive(Debug, Default)]
pub struct RedisFields {
    /// Rendering of the reply (`OK`, `3`, `bar`, `nil`, `[a, [b, c]]`, `{k: v}`).
    pub return_value: Option<String>,
    /// Text of an error reply (`ERR unknown command ...`).
    pub error: Option<String>,
}

impl ProtoFields for RedisFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("redis");
        w.kv_opt_str("error", self.error.as_deref());
        w.kv_opt_str("return_value", self.return_value.as_deref());
        w.end_object();
    }
}
