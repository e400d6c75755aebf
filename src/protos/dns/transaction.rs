//! DNS queries as they wait for their answer, and the [`Exchange`] that turns a
//! query/answer pair (or an unmatched half) into a transaction.
//!
//! Queries pair with answers by message id within one flow (the 5-tuple), as in
//! Packetbeat; the notes are Packetbeat's.

use super::fields::DnsFields;
use super::parser::{self, Message};
use crate::event::{Status, Transaction};
use crate::protos::pairing::{self, Exchange, Wire};

/// An answer came while no query of its id was waiting.
pub const NOTE_ORPHAN: &str = "Response: received without an associated Query";
/// The query was not answered within `transaction_timeout`, or the flow ended.
pub const NOTE_NO_RESPONSE: &str = "No response to this query was received";
/// A second query with the same id arrived before the first was answered.
pub const NOTE_DUPLICATE: &str = "Another query with the same DNS ID from this client was received so this query was closed without receiving a response";
/// A UDP message without EDNS is over the 512 bytes plain DNS allows.
pub const NOTE_TOO_LARGE: &str = "Non-EDNS packet has size greater than 512";
/// The query used EDNS, the answer did not.
pub const NOTE_EDNS_NO_SUPPORT: &str = "Responder does not support EDNS";
/// The answer used EDNS, the query did not.
pub const NOTE_EDNS_UNEXPECTED: &str = "Unexpected EDNS answer";

/// Largest UDP message without EDNS (RFC 1035 §4.2.1).
pub const MAX_PLAIN_UDP: usize = 512;

/// The DNS options, from the configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsExchange {
    pub send_request: bool,
    pub send_response: bool,
    pub include_authorities: bool,
    pub include_additionals: bool,
}

/// A query or an answer: the parsed message and where it was on the wire.
#[derive(Debug)]
pub struct DnsMsg {
    pub wire: Wire,
    pub msg: Message,
}

impl pairing::Message for DnsMsg {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    /// The parsed message: names and text take up to four times their wire bytes
    /// (`\DDD` escapes).
    fn mem_size(&self) -> usize {
        std::mem::size_of::<DnsMsg>() + self.msg.len * 4
    }
}

impl Exchange for DnsExchange {
    const PROTOCOL: &'static str = "dns";
    type Request = DnsMsg;
    type Response = DnsMsg;

    fn fill(&self, tx: &mut Transaction, req: Option<DnsMsg>, resp: Option<DnsMsg>) {
        // The method and question come from the query when there is one; the rest
        // of `dns.*` from the answer when there is one.
        let first = req.as_ref().or(resp.as_ref()).map(|m| &m.msg);
        if let Some(m) = first {
            tx.method = Some(parser::opcode_name(m.header.opcode));
            if let Some(q) = m.questions.first() {
                tx.query = Some(format!(
                    "class {}, type {}, {}",
                    parser::class_name(q.qclass),
                    parser::type_name(q.qtype),
                    q.name
                ));
                tx.resource = Some(q.name.clone());
            }
        }
        // OK only for an answered query whose answer reports no error.
        tx.status = match (&req, &resp) {
            (Some(_), Some(r)) if r.msg.rcode() == 0 => Status::Ok,
            _ => Status::Error,
        };
        if self.send_request {
            tx.request = req.as_ref().map(|m| text(&m.msg));
        }
        if self.send_response {
            tx.response = resp.as_ref().map(|m| text(&m.msg));
        }
        let answered = resp.is_some();
        let Some(shown) = resp.or(req) else {
            return;
        };
        let fields = DnsFields::new(
            shown.msg,
            answered,
            self.include_authorities,
            self.include_additionals,
        );
        let mut seen = std::collections::HashSet::new();
        tx.related_ip = fields
            .resolved_ips()
            .into_iter()
            .filter(|ip| seen.insert(*ip))
            .collect();
        tx.fields = Some(Box::new(fields));
    }
}

/// A message as text (`request` / `response` with `send_request` / `send_response`),
/// in Packetbeat's layout: `ID 1; QR query; OPCODE QUERY; FLAGS rd; RCODE NOERROR;
/// QUESTION class IN, type A, example.com; ANSWER ...`.
pub fn text(m: &Message) -> String {
    let h = &m.header;
    let flags: Vec<&str> = [
        (h.authoritative, "aa"),
        (h.truncated, "tc"),
        (h.recursion_desired, "rd"),
        (h.recursion_available, "ra"),
        (h.authentic_data, "ad"),
        (h.checking_disabled, "cd"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
    let mut parts = vec![format!(
        "ID {}; QR {}; OPCODE {}; FLAGS {}; RCODE {}",
        h.id,
        if h.response { "response" } else { "query" },
        parser::opcode_name(h.opcode),
        flags.join(" "),
        parser::rcode_name(m.rcode())
    )];
    if !m.questions.is_empty() {
        let qs: Vec<String> = m
            .questions
            .iter()
            .map(|q| {
                format!(
                    "class {}, type {}, {}",
                    parser::class_name(q.qclass),
                    parser::type_name(q.qtype),
                    q.name
                )
            })
            .collect();
        parts.push(format!("QUESTION {}", qs.join("; ")));
    }
    for (title, records) in [
        ("ANSWER", &m.answers),
        ("AUTHORITY", &m.authorities),
        ("ADDITIONAL", &m.additionals),
    ] {
        let mut rs: Vec<String> = records.iter().map(super::fields::record_text).collect();
        // Packetbeat lists the OPT record among the additional ones, with no text.
        if title == "ADDITIONAL" && m.opt.is_some() {
            rs.push(String::new());
        }
        if !rs.is_empty() {
            parts.push(format!("{title} {}", rs.join("; ")));
        }
    }
    parts.join("; ")
}
