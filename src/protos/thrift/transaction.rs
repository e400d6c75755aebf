//! Thrift messages as they wait for pairing, the settings derived from the
//! configuration, and the pairing [`Exchange`] that turns a call and its reply into a
//! [`Transaction`].

use std::hash::BuildHasher;
use std::sync::Arc;

use super::fields::ThriftFields;
use super::idl::Idl;
use super::parser::{
    self, Body, Bounds, CALL, EXCEPTION, Forced, ONEWAY, Protocol, REPLY, Style, Transport,
};
use crate::config::ThriftConfig;
use crate::event::{Status, Transaction};
use crate::protos::pairing::{Exchange, Message, Wire};
use crate::time::Ts;

/// Largest message followed (and unparsed bytes kept per direction).
pub const MAX_MESSAGE: usize = 1 << 20;

/// The Thrift options, resolved once per factory.
#[derive(Debug)]
pub struct ThriftSettings {
    pub forced: Forced,
    pub bounds: Bounds,
    pub style: Style,
    pub capture_reply: bool,
    pub send_request: bool,
    pub send_response: bool,
    pub idl: Option<Idl>,
    /// Keys the hash of each message's function name (random per run), so that a
    /// reply looks for its call among the waiting ones by hash, not by name.
    pub names: std::collections::hash_map::RandomState,
}

impl ThriftSettings {
    pub fn from_config(c: &ThriftConfig) -> ThriftSettings {
        let transport = match c.transport_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.eq_ignore_ascii_case("socket") => Some(Transport::Socket),
            Some(t) if t.eq_ignore_ascii_case("framed") => Some(Transport::Framed),
            Some(t) => {
                tracing::warn!(target: "thrift", "protocols.thrift.transport_type `{t}` is not socket or framed; recognising the transport from the traffic");
                None
            }
        };
        let protocol = match c.protocol_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.eq_ignore_ascii_case("binary") => Some(Protocol::Binary),
            Some(t) if t.eq_ignore_ascii_case("compact") => Some(Protocol::Compact),
            Some(t) => {
                tracing::warn!(target: "thrift", "protocols.thrift.protocol_type `{t}` is not binary or compact; recognising the protocol from the traffic");
                None
            }
        };
        let idl = if c.idl_files.is_empty() {
            None
        } else {
            match Idl::load(&c.idl_files) {
                Ok(idl) => Some(idl),
                Err(e) => {
                    tracing::warn!(target: "thrift", "protocols.thrift.idl_files: {e}; Thrift fields are reported by id, without service names");
                    None
                }
            }
        };
        ThriftSettings {
            forced: Forced {
                transport,
                protocol,
            },
            bounds: Bounds {
                max_message: MAX_MESSAGE,
                max_struct_fields: c.drop_after_n_struct_fields.max(1),
            },
            style: Style {
                string_max_size: c.string_max_size,
                collection_max_size: c.collection_max_size,
                obfuscate_strings: c.obfuscate_strings,
            },
            capture_reply: c.capture_reply,
            send_request: c.common.send_request,
            send_response: c.common.send_response,
            idl,
            names: Default::default(),
        }
    }

    /// Renders a top-level struct, naming fields from `names` when given.
    fn format_struct(
        &self,
        body: &Body,
        names: Option<&std::collections::HashMap<i16, String>>,
    ) -> String {
        let mut s = String::from("(");
        for (i, f) in body.fields.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            match names.and_then(|n| n.get(&f.id)) {
                Some(name) => s.push_str(name),
                None => s.push_str(&f.id.to_string()),
            }
            s.push_str(": ");
            s.push_str(&f.value);
        }
        if body.more {
            s.push_str(", ...");
        }
        s.push(')');
        s
    }

    /// Builds the message from its header and rendered body (None: not rendered).
    pub fn message(
        &self,
        ts: Ts,
        header: &parser::Header,
        body: Option<&Body>,
        bytes: u64,
        loss: bool,
    ) -> Msg {
        let func = self.idl.as_ref().and_then(|i| i.function(&header.name));
        let mut m = Msg {
            wire: Wire { ts, bytes, loss },
            name: header.name.clone(),
            mtype: header.mtype,
            // The IDL knows a oneway function also when a client sends it as a CALL.
            oneway: header.mtype == ONEWAY
                || (header.mtype == CALL && func.is_some_and(|f| f.oneway)),
            function_hash: self.names.hash_one(function_name(&header.name)),
            service: func.map(|f| f.service.clone()),
            ..Default::default()
        };
        let Some(body) = body else {
            return m;
        };
        if header.mtype == REPLY || header.mtype == EXCEPTION {
            match body.fields.first() {
                Some(f) if f.id == 0 && header.mtype == REPLY => {
                    m.return_value = Some(f.value.clone());
                }
                Some(_) => {
                    // Declared exceptions by name; an application exception
                    // (message type 3) is the library's own struct.
                    let names = func
                        .filter(|_| header.mtype == REPLY)
                        .map(|f| &f.exceptions);
                    m.exceptions = Some(self.format_struct(body, names));
                }
                None => m.return_value = Some(String::new()),
            }
        } else {
            m.params = Some(self.format_struct(body, func.map(|f| &f.params)));
        }
        m
    }
}

/// A call or reply, complete.
#[derive(Debug, Default, Clone)]
pub struct Msg {
    pub wire: Wire,
    pub name: String,
    pub mtype: u8,
    /// A oneway call: no reply will come.
    pub oneway: bool,
    /// Hash of [`Msg::function`] (keyed by [`ThriftSettings::names`]).
    pub function_hash: u64,
    pub params: Option<String>,
    pub service: Option<String>,
    pub return_value: Option<String>,
    pub exceptions: Option<String>,
}

impl Msg {
    /// The function's name without the `Service:` prefix of a multiplexed call
    /// (servers reply with the bare name).
    pub fn function(&self) -> &str {
        function_name(&self.name)
    }

    /// Whether `reply` names this call's function.
    pub fn answered_by(&self, reply: &Response) -> bool {
        self.function_hash == reply.function_hash && self.function() == reply.function()
    }
}

/// A call as it waits for its reply. Calls and replies share one shape (the
/// message type tells them apart once decoded), so both sides name [`Msg`].
pub type Request = Msg;
/// A reply (or exception) as it waits to pair with its call.
pub type Response = Msg;

fn function_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, f)| f)
}

impl Message for Msg {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn mem_size(&self) -> usize {
        std::mem::size_of::<Msg>()
            + self.name.len()
            + self.params.as_ref().map_or(0, String::len)
            + self.service.as_ref().map_or(0, String::len)
            + self.return_value.as_ref().map_or(0, String::len)
            + self.exceptions.as_ref().map_or(0, String::len)
    }
}

pub struct ThriftExchange {
    pub settings: Arc<ThriftSettings>,
}

impl Exchange for ThriftExchange {
    const PROTOCOL: &'static str = "thrift";
    type Request = Request;
    type Response = Response;

    fn fill(&self, tx: &mut Transaction, req: Option<Request>, resp: Option<Response>) {
        let mut f = ThriftFields::default();
        if let Some(r) = req {
            if let Some(p) = &r.params {
                let q = format!("{}{}", r.name, p);
                if self.settings.send_request {
                    tx.request = Some(q.clone());
                }
                tx.query = Some(q);
            }
            tx.method = Some(r.name);
            f.params = r.params;
            f.service = r.service;
        }
        if let Some(r) = resp {
            if tx.method.is_none() {
                tx.method = Some(r.name);
            }
            if f.service.is_none() {
                f.service = r.service;
            }
            if let Some(e) = &r.exceptions {
                tx.status = Status::Error;
                if self.settings.send_response {
                    tx.response = Some(format!("Exceptions: {e}"));
                }
            } else if self.settings.send_response {
                tx.response = r.return_value.clone();
            }
            f.return_value = r.return_value;
            f.exceptions = r.exceptions;
        }
        tx.path = f.service.clone();
        tx.fields = Some(Box::new(f));
    }
}
