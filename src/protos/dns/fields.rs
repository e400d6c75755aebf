//! DNS event fields: `dns.*` (Packetbeat 8 / ECS), keys in alphabetical order as
//! Packetbeat writes them.

use std::net::IpAddr;

use super::parser::{self, Message, RData, Record};
use crate::event::{JsonWriter, ProtoFields};

/// Protocol fields of one DNS transaction: the message shown (the answer when
/// there is one, else the query).
#[derive(Debug)]
pub struct DnsFields {
    msg: Message,
    /// `dns.type`: `answer` or `query`.
    answered: bool,
    include_authorities: bool,
    include_additionals: bool,
}

impl DnsFields {
    pub fn new(
        msg: Message,
        answered: bool,
        include_authorities: bool,
        include_additionals: bool,
    ) -> DnsFields {
        DnsFields {
            msg,
            answered,
            include_authorities,
            include_additionals,
        }
    }

    /// The addresses of the A and AAAA answers (`dns.resolved_ip`, also in
    /// `related.ip`).
    pub fn resolved_ips(&self) -> Vec<IpAddr> {
        self.msg
            .answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(a) => Some(IpAddr::V4(a)),
                RData::Aaaa(a) => Some(IpAddr::V6(a)),
                _ => None,
            })
            .collect()
    }
}

/// A value of a record's map.
enum V<'a> {
    S(&'a str),
    Owned(String),
    N(u64),
}

/// The keys of one record besides `class`, `name`, `ttl` and `type`.
fn rdata_keys(d: &RData) -> Vec<(&'static str, V<'_>)> {
    match d {
        RData::A(a) => vec![("data", V::Owned(a.to_string()))],
        RData::Aaaa(a) => vec![("data", V::Owned(a.to_string()))],
        RData::Name(n) | RData::Txt(n) | RData::Other(n) => vec![("data", V::S(n))],
        RData::Mx {
            preference,
            exchange,
        } => vec![
            ("data", V::S(exchange)),
            ("preference", V::N(u64::from(*preference))),
        ],
        RData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => vec![
            ("data", V::S(mname)),
            ("expire", V::N(u64::from(*expire))),
            ("minimum", V::N(u64::from(*minimum))),
            ("refresh", V::N(u64::from(*refresh))),
            ("retry", V::N(u64::from(*retry))),
            ("rname", V::S(rname)),
            ("serial", V::N(u64::from(*serial))),
        ],
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => vec![
            ("data", V::S(target)),
            ("port", V::N(u64::from(*port))),
            ("priority", V::N(u64::from(*priority))),
            ("weight", V::N(u64::from(*weight))),
        ],
    }
}

/// A record's data as Packetbeat's text form writes it: its string-valued keys
/// other than `data` in alphabetical order (`rname X, `), then `data`. (Numeric
/// record fields are left out there, as Packetbeat does.)
pub fn record_text(r: &Record) -> String {
    let mut out = String::new();
    let mut data = None;
    for (k, v) in rdata_keys(&r.data) {
        let s = match &v {
            V::S(s) => *s,
            V::Owned(s) => s.as_str(),
            V::N(_) => continue,
        };
        if k == "data" {
            data = Some(s.to_string());
        } else {
            out.push_str(k);
            out.push(' ');
            out.push_str(s);
            out.push_str(", ");
        }
    }
    match data {
        Some(d) => out.push_str(&d),
        None => {
            out.truncate(out.len().saturating_sub(2));
        }
    }
    out
}

fn write_records(w: &mut JsonWriter<'_>, key: &'static str, records: &[Record]) {
    w.key(key).begin_array();
    for r in records {
        let mut keys = rdata_keys(&r.data);
        let ttl = r.ttl.to_string();
        keys.push(("class", V::Owned(parser::class_name(r.class))));
        keys.push(("name", V::S(&r.name)));
        keys.push(("ttl", V::Owned(ttl)));
        keys.push(("type", V::Owned(parser::type_name(r.rtype))));
        keys.sort_by_key(|(k, _)| *k);
        w.begin_object();
        for (k, v) in &keys {
            w.key(k);
            match v {
                V::S(s) => w.str(s),
                V::Owned(s) => w.str(s),
                V::N(n) => w.u64(*n),
            };
        }
        w.end_object();
    }
    w.end_array();
}

impl ProtoFields for DnsFields {
    fn write(&self, w: &mut JsonWriter<'_>) {
        let m = &self.msg;
        let h = &m.header;
        w.object("dns");
        if self.include_additionals && !m.additionals.is_empty() {
            write_records(w, "additionals", &m.additionals);
        }
        w.kv_u64("additionals_count", m.additionals.len() as u64);
        if !m.answers.is_empty() {
            write_records(w, "answers", &m.answers);
        }
        w.kv_u64("answers_count", m.answers.len() as u64);
        if self.include_authorities && !m.authorities.is_empty() {
            write_records(w, "authorities", &m.authorities);
        }
        w.kv_u64("authorities_count", m.authorities.len() as u64);
        w.object("flags");
        w.key("authentic_data").bool(h.authentic_data);
        w.key("authoritative").bool(h.authoritative);
        w.key("checking_disabled").bool(h.checking_disabled);
        w.key("recursion_available").bool(h.recursion_available);
        w.key("recursion_desired").bool(h.recursion_desired);
        w.key("truncated_response").bool(h.truncated);
        w.end_object();
        let dnssec_ok = m.opt.as_ref().is_some_and(|o| o.dnssec_ok);
        let header_flags = [
            (h.authoritative, "AA"),
            (h.truncated, "TC"),
            (h.recursion_desired, "RD"),
            (h.recursion_available, "RA"),
            (h.authentic_data, "AD"),
            (h.checking_disabled, "CD"),
            (dnssec_ok, "DO"),
        ];
        if header_flags.iter().any(|(on, _)| *on) {
            w.key("header_flags").begin_array();
            for (_, f) in header_flags.iter().filter(|(on, _)| *on) {
                w.str(f);
            }
            w.end_array();
        }
        w.kv_u64("id", u64::from(h.id));
        w.kv_str("op_code", &parser::opcode_name(h.opcode));
        if let Some(o) = &m.opt {
            w.object("opt");
            w.kv_opt_str("cookie", o.cookie.as_deref());
            w.key("do").bool(o.dnssec_ok);
            w.kv_str(
                "ext_rcode",
                &parser::rcode_name(u16::from(o.ext_rcode) << 4),
            );
            w.kv_opt_str("nsid", o.nsid.as_deref());
            w.kv_opt_str("subnet", o.subnet.as_deref());
            w.kv_u64("udp_size", u64::from(o.udp_size));
            w.kv_str("version", &o.version.to_string());
            w.end_object();
        }
        if let Some(q) = m.questions.first() {
            write_question(w, q);
        }
        let ips = self.resolved_ips();
        if !ips.is_empty() {
            w.key("resolved_ip").begin_array();
            for ip in ips {
                w.ip(ip);
            }
            w.end_array();
        }
        w.kv_str("response_code", &parser::rcode_name(m.rcode()));
        w.kv_lit("type", if self.answered { "answer" } else { "query" });
        w.end_object();
    }
}

/// `dns.question.*`, with the registered domain, its top-level domain and the
/// subdomain from the public suffix list, as Packetbeat derives them.
fn write_question(w: &mut JsonWriter<'_>, q: &parser::Question) {
    let name = q.name.as_str();
    let (mut registered, mut tld, mut sub) = (None, None, None);
    match psl::domain_str(name).filter(|d| !d.is_empty()) {
        Some(reg) => {
            registered = Some(reg);
            tld = reg.find('.').map(|i| &reg[i + 1..]);
            let s = name.strip_suffix(reg).unwrap_or("").trim_end_matches('.');
            sub = (!s.is_empty()).then_some(s);
        }
        None if name.matches('.').count() == 1 => {
            tld = name.split('.').nth(1).filter(|t| !t.is_empty());
            registered = Some(name);
        }
        None => {}
    }
    w.object("question");
    w.kv_str("class", &parser::class_name(q.qclass));
    w.kv_opt_str(
        "etld_plus_one",
        psl::domain_str(name).filter(|d| !d.is_empty()),
    );
    w.kv_str("name", name);
    w.kv_opt_str("registered_domain", registered);
    w.kv_opt_str("subdomain", sub);
    w.kv_opt_str("top_level_domain", tld);
    w.kv_str("type", &parser::type_name(q.qtype));
    w.end_object();
}
