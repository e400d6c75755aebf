//! DNS messages on the wire (RFC 1035, EDNS per RFC 6891), read from one whole
//! message: a UDP datagram, or one length-prefixed message of a TCP stream.
//!
//! Hostile input is bounded by construction: every read is checked against the
//! message; a name follows at most [`MAX_POINTERS`] compression pointers and each must
//! point strictly before the one that led to it (so no loop is possible) and is cut
//! at 255 wire bytes; the records of a section are counted against the bytes left
//! (each takes at least 11), so the message's own length bounds what is allocated.
//! Names and text are presented as `dig` and Packetbeat do: labels joined with `.`
//! (no trailing dot; the root is `.`), special characters escaped with `\`, bytes
//! outside printable ASCII as `\DDD`.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Header length.
pub const HEADER: usize = 12;
/// Compression pointers one name may follow.
pub const MAX_POINTERS: usize = 64;
/// Longest name on the wire (RFC 1035 §3.1).
const MAX_NAME: usize = 255;
/// Smallest resource record: a root name, type, class, TTL and rdata length.
const MIN_RECORD: usize = 11;
/// Smallest question: a root name, type and class.
const MIN_QUESTION: usize = 5;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;

/// Why a message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The message ends before what it announces.
    Short,
    /// A name is malformed: a reserved label type, a pointer that does not point
    /// back, too many pointers or a name over 255 bytes.
    BadName,
    /// A record's data does not fit its type, or a count cannot fit the message.
    BadRecord,
}

/// The fixed header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// A response (QR).
    pub response: bool,
    pub opcode: u8,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub authentic_data: bool,
    pub checking_disabled: bool,
    /// The header's 4-bit response code (the OPT record may extend it).
    pub rcode: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// A record's data, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// CNAME, NS, PTR: a name.
    Name(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// The character strings, each escaped, joined with spaces.
    Txt(String),
    /// Any other type: the data bytes, escaped.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

/// The EDNS pseudo-record (OPT).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opt {
    pub udp_size: u16,
    /// The upper 8 bits of the extended response code.
    pub ext_rcode: u8,
    pub version: u8,
    /// DNSSEC OK.
    pub dnssec_ok: bool,
    /// Options: COOKIE and NSID as hex, CLIENT-SUBNET as `address/source/scope`.
    pub cookie: Option<String>,
    pub nsid: Option<String>,
    pub subnet: Option<String>,
}

/// One DNS message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// The additional records other than OPT.
    pub additionals: Vec<Record>,
    pub opt: Option<Opt>,
    /// Bytes of the message (without a TCP length prefix).
    pub len: usize,
}

impl Message {
    /// The full response code: the header's, extended by the OPT record's.
    pub fn rcode(&self) -> u16 {
        let ext = self.opt.as_ref().map_or(0, |o| o.ext_rcode);
        (u16::from(ext) << 4) | u16::from(self.header.rcode)
    }
}

struct Reader<'a> {
    msg: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.at.checked_add(n).ok_or(Error::Short)?;
        let b = self.msg.get(self.at..end).ok_or(Error::Short)?;
        self.at = end;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn left(&self) -> usize {
        self.msg.len() - self.at
    }

    /// A (possibly compressed) name at the current position.
    fn name(&mut self) -> Result<String, Error> {
        let (name, end) = read_name(self.msg, self.at)?;
        self.at = end;
        Ok(name)
    }
}

/// Reads the name at `at` of `msg`; returns it and where the bytes after it start.
pub fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), Error> {
    let mut out = String::new();
    let mut pos = at;
    // Where reading continues once the name ends: after its first pointer.
    let mut end = None;
    let mut pointers = 0;
    let mut wire_len = 0usize;
    // Pointers must go strictly back from the lowest position seen so far.
    let mut floor = at;
    loop {
        let &len = msg.get(pos).ok_or(Error::Short)?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    if out.is_empty() {
                        out.push('.');
                    }
                    return Ok((out, end.unwrap_or(pos + 1)));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len as usize)
                    .ok_or(Error::Short)?;
                wire_len += len as usize + 1;
                if wire_len > MAX_NAME {
                    return Err(Error::BadName);
                }
                if !out.is_empty() {
                    out.push('.');
                }
                escape_label(label, &mut out);
                pos += 1 + len as usize;
            }
            0xC0 => {
                let &lo = msg.get(pos + 1).ok_or(Error::Short)?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(lo);
                pointers += 1;
                if target >= floor || pointers > MAX_POINTERS {
                    return Err(Error::BadName);
                }
                end.get_or_insert(pos + 2);
                floor = target;
                pos = target;
            }
            _ => return Err(Error::BadName),
        }
    }
}

/// A label as presentation text: `.` and the other special characters escaped
/// with `\`, bytes outside printable ASCII as `\DDD`.
fn escape_label(label: &[u8], out: &mut String) {
    for &b in label {
        match b {
            b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7E => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

/// Text bytes (a character string, unknown record data) as presentation text:
/// `"` and `\` escaped, tab, CR and LF as `\t`, `\r`, `\n`, other bytes outside
/// printable ASCII as `\DDD`.
pub fn escape_text(b: &[u8], out: &mut String) {
    for &c in b {
        match c {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(c as char);
            }
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7E => out.push(c as char),
            _ => {
                let _ = write!(out, "\\{c:03}");
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for c in b {
        let _ = write!(s, "{c:02x}");
    }
    s
}

/// Parses one whole message.
pub fn parse(msg: &[u8]) -> Result<Message, Error> {
    let mut r = Reader { msg, at: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
    let header = Header {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xF) as u8,
        authoritative: flags & 0x0400 != 0,
        truncated: flags & 0x0200 != 0,
        recursion_desired: flags & 0x0100 != 0,
        recursion_available: flags & 0x0080 != 0,
        authentic_data: flags & 0x0020 != 0,
        checking_disabled: flags & 0x0010 != 0,
        rcode: (flags & 0xF) as u8,
    };
    // Every announced entry takes some bytes: counts the message cannot hold are
    // refused before anything is allocated for them.
    let need = usize::from(counts[0]) * MIN_QUESTION
        + (usize::from(counts[1]) + usize::from(counts[2]) + usize::from(counts[3])) * MIN_RECORD;
    if need > r.left() {
        return Err(Error::Short);
    }
    let mut m = Message {
        header,
        len: msg.len(),
        ..Message::default()
    };
    m.questions.reserve(usize::from(counts[0]));
    for _ in 0..counts[0] {
        let name = r.name()?;
        let qtype = r.u16()?;
        let qclass = r.u16()?;
        m.questions.push(Question {
            name,
            qtype,
            qclass,
        });
    }
    for (section, &n) in counts[1..].iter().enumerate() {
        for _ in 0..n {
            let name = r.name()?;
            let rtype = r.u16()?;
            let class = r.u16()?;
            let ttl = r.u32()?;
            let rdlen = usize::from(r.u16()?);
            let start = r.at;
            let rdata = r.take(rdlen)?;
            if rtype == TYPE_OPT {
                if section == 2 && m.opt.is_none() {
                    m.opt = Some(opt(class, ttl, rdata)?);
                }
                continue;
            }
            let data = rdata_of(msg, start, rdlen, rtype)?;
            let rec = Record {
                name,
                rtype,
                class,
                ttl,
                data,
            };
            match section {
                0 => m.answers.push(rec),
                1 => m.authorities.push(rec),
                _ => m.additionals.push(rec),
            }
        }
    }
    Ok(m)
}

fn opt(class: u16, ttl: u32, rdata: &[u8]) -> Result<Opt, Error> {
    let mut o = Opt {
        udp_size: class,
        ext_rcode: (ttl >> 24) as u8,
        version: (ttl >> 16) as u8,
        dnssec_ok: ttl & 0x8000 != 0,
        ..Opt::default()
    };
    let mut r = Reader { msg: rdata, at: 0 };
    while r.left() >= 4 {
        let code = r.u16()?;
        let len = usize::from(r.u16()?);
        let data = r.take(len).map_err(|_| Error::BadRecord)?;
        match code {
            3 => o.nsid = Some(hex(data)),
            8 => o.subnet = subnet(data),
            10 => o.cookie = Some(hex(data)),
            _ => {}
        }
    }
    Ok(o)
}

/// EDNS Client Subnet (RFC 7871): `address/source prefix/scope prefix`.
fn subnet(d: &[u8]) -> Option<String> {
    let family = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
    let (source, scope) = (*d.get(2)?, *d.get(3)?);
    let addr = &d[4..];
    let ip = match family {
        1 => {
            let mut a = [0u8; 4];
            a[..addr.len().min(4)].copy_from_slice(&addr[..addr.len().min(4)]);
            Ipv4Addr::from(a).to_string()
        }
        2 => {
            let mut a = [0u8; 16];
            a[..addr.len().min(16)].copy_from_slice(&addr[..addr.len().min(16)]);
            Ipv6Addr::from(a).to_string()
        }
        _ => return None,
    };
    Some(format!("{ip}/{source}/{scope}"))
}

/// The data of a record of type `rtype` at `start..start + len` of `msg` (names in
/// it may point anywhere before them in the message).
fn rdata_of(msg: &[u8], start: usize, len: usize, rtype: u16) -> Result<RData, Error> {
    let end = start + len;
    // Reads stop at the end of the data; names in it point back, so they stay
    // inside this prefix of the message too.
    let msg = &msg[..end];
    let rdata = &msg[start..];
    let mut r = Reader { msg, at: start };
    let name = |r: &mut Reader<'_>| r.name().map_err(|_| Error::BadRecord);
    let data = match rtype {
        TYPE_A if len == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        TYPE_AAAA if len == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(rdata);
            RData::Aaaa(Ipv6Addr::from(a))
        }
        TYPE_A | TYPE_AAAA => return Err(Error::BadRecord),
        TYPE_CNAME | TYPE_NS | TYPE_PTR => RData::Name(name(&mut r)?),
        TYPE_MX => {
            let preference = r.u16()?;
            RData::Mx {
                preference,
                exchange: name(&mut r)?,
            }
        }
        TYPE_SOA => {
            let mname = name(&mut r)?;
            let rname = name(&mut r)?;
            if end - r.at != 20 {
                return Err(Error::BadRecord);
            }
            RData::Soa {
                mname,
                rname,
                serial: r.u32()?,
                refresh: r.u32()?,
                retry: r.u32()?,
                expire: r.u32()?,
                minimum: r.u32()?,
            }
        }
        TYPE_SRV => {
            let (priority, weight, port) = (r.u16()?, r.u16()?, r.u16()?);
            RData::Srv {
                priority,
                weight,
                port,
                target: name(&mut r)?,
            }
        }
        TYPE_TXT => {
            let mut out = String::with_capacity(len);
            let mut t = Reader { msg: rdata, at: 0 };
            while t.left() > 0 {
                let n = usize::from(t.u8()?);
                let s = t.take(n).map_err(|_| Error::BadRecord)?;
                if !out.is_empty() {
                    out.push(' ');
                }
                escape_text(s, &mut out);
            }
            RData::Txt(out)
        }
        _ => {
            let mut out = String::with_capacity(len);
            escape_text(rdata, &mut out);
            RData::Other(out)
        }
    };
    Ok(data)
}

/// `QUERY`, `NOTIFY`, ...; the number for others.
pub fn opcode_name(op: u8) -> String {
    match op {
        0 => "QUERY".into(),
        1 => "IQUERY".into(),
        2 => "STATUS".into(),
        4 => "NOTIFY".into(),
        5 => "UPDATE".into(),
        n => n.to_string(),
    }
}

/// `NOERROR`, `NXDOMAIN`, ...; `Unknown N` for others.
pub fn rcode_name(rc: u16) -> String {
    let s = match rc {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        n => return format!("Unknown {n}"),
    };
    s.into()
}

/// `IN`, `CH`, ...; the number for others.
pub fn class_name(c: u16) -> String {
    let s = match c {
        1 => "IN",
        2 => "CS",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        n => return n.to_string(),
    };
    s.into()
}

/// The mnemonic of a record type (`A`, `AAAA`, `HTTPS`, ...); the number for others.
pub fn type_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        260 => "AMTRELAY",
        32768 => "TA",
        32769 => "DLV",
        65535 => "Reserved",
        n => return n.to_string(),
    };
    s.into()
}
