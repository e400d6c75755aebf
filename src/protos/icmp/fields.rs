//! ICMP event fields: `icmp.version`, `icmp.request.*` and `icmp.response.*`
//! (`message`, `type`, `code`), keys in alphabetical order as Packetbeat writes them.

use super::parser;
use crate::event::{JsonWriter, ProtoFields};

/// The type and code of one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    pub ty: u8,
    pub code: u8,
}

#[derive(Debug)]
pub struct IcmpFields {
    pub v6: bool,
    pub request: Option<Side>,
    pub response: Option<Side>,
}

fn side(w: &mut JsonWriter<'_>, key: &'static str, v6: bool, s: &Side) {
    w.object(key)
        .kv_u64("code", s.code.into())
        .kv_str("message", &parser::message(v6, s.ty, s.code))
        .kv_u64("type", s.ty.into())
        .end_object();
}

impl ProtoFields for IcmpFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("icmp");
        if let Some(s) = &self.request {
            side(w, "request", self.v6, s);
        }
        if let Some(s) = &self.response {
            side(w, "response", self.v6, s);
        }
        w.kv_u64("version", if self.v6 { 6 } else { 4 });
        w.end_object();
    }
}
