//! DNS parser and pairing tests on hand-built messages; the recorded captures are
//! checked in tests/dns_fixtures.rs.

use std::time::Duration;

use super::parser::{self, Error, RData};
use super::state::DnsParser;
use super::transaction::{DnsExchange, NOTE_DUPLICATE, NOTE_NO_RESPONSE, NOTE_ORPHAN};
use crate::event::{Status, Transaction};
use crate::protos::pairing::Limits;
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::stats::Counters;
use crate::time::Ts;

/// A message: header, then `body` (questions and records already encoded).
fn msg(id: u16, flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        m.extend_from_slice(&c.to_be_bytes());
    }
    m.extend_from_slice(body);
    m
}

fn name(n: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

fn question(n: &str, qtype: u16) -> Vec<u8> {
    let mut q = name(n);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

fn rr(owner: &[u8], rtype: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&(data.len() as u16).to_be_bytes());
    r.extend_from_slice(data);
    r
}

const QUERY: u16 = 0x0100; // RD
const ANSWER: u16 = 0x8180; // QR RD RA

fn query(id: u16, n: &str) -> Vec<u8> {
    msg(id, QUERY, [1, 0, 0, 0], &question(n, 1))
}

/// An answer to `query(id, n)` with one A record (the owner compressed to the
/// question's name at offset 12).
fn answer(id: u16, n: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut body = question(n, 1);
    body.extend(rr(&[0xC0, 12], 1, 60, &ip));
    msg(id, ANSWER, [1, 1, 0, 0], &body)
}

#[test]
fn records_of_every_kind() {
    let mut body = question("example.com", 255);
    let owner = [0xC0u8, 12];
    body.extend(rr(&owner, 1, 60, &[192, 0, 2, 1]));
    body.extend(rr(
        &owner,
        28,
        60,
        &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    ));
    let mut mx = vec![0, 10];
    mx.extend(name("mail.example.com"));
    body.extend(rr(&owner, 15, 300, &mx));
    let mut soa = name("ns1.example.com");
    soa.extend(name("host\\master.example.com"));
    for v in [2024u32, 7200, 3600, 1209600, 300] {
        soa.extend_from_slice(&v.to_be_bytes());
    }
    body.extend(rr(&owner, 6, 300, &soa));
    let mut srv = vec![0, 1, 0, 2, 0x1F, 0x90];
    srv.extend([0xC0, 12]);
    body.extend(rr(&owner, 33, 300, &srv));
    body.extend(rr(&owner, 16, 300, b"\x05hello\x07a \"b\" \x01"));
    body.extend(rr(&owner, 65280, 300, b"\x00\xffok\\"));
    let m = parser::parse(&msg(7, ANSWER, [1, 7, 0, 0], &body)).expect("parses");
    assert_eq!(m.header.id, 7);
    assert!(m.header.response && m.header.recursion_available);
    assert_eq!(m.questions[0].name, "example.com");
    let data: Vec<&RData> = m.answers.iter().map(|r| &r.data).collect();
    assert_eq!(data[0], &RData::A("192.0.2.1".parse().unwrap()));
    assert_eq!(data[1], &RData::Aaaa("2001:db8::1".parse().unwrap()));
    assert_eq!(
        data[2],
        &RData::Mx {
            preference: 10,
            exchange: "mail.example.com".into()
        }
    );
    let RData::Soa { rname, minimum, .. } = data[3] else {
        panic!("{:?}", data[3]);
    };
    // A backslash in a label is escaped in the presentation.
    assert_eq!(
        (rname.as_str(), *minimum),
        ("host\\\\master.example.com", 300)
    );
    assert_eq!(
        data[4],
        &RData::Srv {
            priority: 1,
            weight: 2,
            port: 8080,
            target: "example.com".into()
        }
    );
    assert_eq!(data[5], &RData::Txt("hello a \\\"b\\\" \\001".into()));
    assert_eq!(data[6], &RData::Other("\\000\\255ok\\\\".into()));
    assert!(m.answers.iter().all(|r| r.name == "example.com"));
}

#[test]
fn names_are_presented_like_dig() {
    let body = [
        b"\x03a.b\x01 \x02\xc3\xa9\x00".as_slice(),
        &1u16.to_be_bytes(),
        &1u16.to_be_bytes(),
    ]
    .concat();
    let m = parser::parse(&msg(1, QUERY, [1, 0, 0, 0], &body)).unwrap();
    assert_eq!(m.questions[0].name, "a\\.b.\\ .\\195\\169");
    // The root.
    let m = parser::parse(&msg(1, QUERY, [1, 0, 0, 0], b"\x00\x00\x02\x00\x01")).unwrap();
    assert_eq!(m.questions[0].name, ".");
}

#[test]
fn hostile_messages_are_refused_without_panic() {
    // A pointer to itself, a pointer forward, a loop of two pointers.
    for bad in [
        [&[0xC0u8, 12][..], &[0, 1, 0, 1]].concat(),
        [&[0xC0u8, 40][..], &[0, 1, 0, 1]].concat(),
    ] {
        let m = msg(1, QUERY, [1, 0, 0, 0], &bad);
        assert_eq!(parser::parse(&m), Err(Error::BadName));
    }
    let mut looped = msg(1, ANSWER, [1, 1, 0, 0], &question("a.example", 1));
    let at = looped.len();
    // The answer's owner is a pointer to itself.
    looped.extend([0xC0, at as u8]);
    looped.extend([0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
    assert_eq!(parser::parse(&looped), Err(Error::BadName));
    // Reserved label types (0x40, 0x80).
    let m = msg(1, QUERY, [1, 0, 0, 0], &[0x41, b'a', 0, 0, 1, 0, 1]);
    assert_eq!(parser::parse(&m), Err(Error::BadName));
    // A name over 255 bytes.
    let long = (0..5).map(|_| "x".repeat(63)).collect::<Vec<_>>().join(".");
    let m = msg(1, QUERY, [1, 0, 0, 0], &question(&long, 1));
    assert_eq!(parser::parse(&m), Err(Error::BadName));
    // Counts the message cannot hold: refused before anything is allocated.
    let m = msg(
        1,
        ANSWER,
        [u16::MAX, u16::MAX, u16::MAX, u16::MAX],
        &[0; 40],
    );
    assert_eq!(parser::parse(&m), Err(Error::Short));
    // Record data longer than the message; an A record of 3 bytes; an MX whose
    // name runs past its data.
    let mut body = question("a.example", 1);
    body.extend(rr(&[0xC0, 12], 1, 1, &[1, 2, 3]));
    assert_eq!(
        parser::parse(&msg(1, ANSWER, [1, 1, 0, 0], &body)),
        Err(Error::BadRecord)
    );
    let mut body = question("a.example", 15);
    body.extend(rr(&[0xC0, 12], 15, 1, &[0, 1, 5, b'a']));
    body.extend_from_slice(b"bcde\x00");
    assert_eq!(
        parser::parse(&msg(1, ANSWER, [1, 1, 0, 0], &body)),
        Err(Error::BadRecord)
    );
    let mut m = answer(1, "a.example", [1, 2, 3, 4]);
    m.truncate(m.len() - 2);
    assert_eq!(parser::parse(&m), Err(Error::Short));
    assert_eq!(parser::parse(&[0; 11]), Err(Error::Short));
    // Every prefix of a valid message is refused or read, never a panic.
    let full = answer(9, "www.example.com", [10, 0, 0, 1]);
    for n in 0..full.len() {
        let _ = parser::parse(&full[..n]);
    }
    assert!(parser::parse(&full).is_ok());
}

#[test]
fn edns_options_and_the_extended_rcode() {
    let mut opt = vec![0u8]; // root owner
    opt.extend_from_slice(&41u16.to_be_bytes());
    opt.extend_from_slice(&1232u16.to_be_bytes()); // UDP size
    opt.extend_from_slice(&[1, 0, 0x80, 0]); // ext rcode 1, version 0, DO
    let options = [
        &[0u8, 10, 0, 8][..],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2],
    ]
    .concat();
    opt.extend_from_slice(&(options.len() as u16).to_be_bytes());
    opt.extend_from_slice(&options);
    let mut body = question("a.example", 1);
    body.extend(opt);
    let m = parser::parse(&msg(3, 0x8000, [1, 0, 0, 1], &body)).unwrap();
    let o = m.opt.as_ref().expect("opt");
    assert_eq!((o.udp_size, o.version, o.dnssec_ok), (1232, 0, true));
    assert_eq!(o.cookie.as_deref(), Some("0102030405060708"));
    assert_eq!(o.subnet.as_deref(), Some("192.0.2.0/24/0"));
    assert!(m.additionals.is_empty(), "OPT is not an additional record");
    // Header rcode 0 extended by 1: BADSIG/BADVERS (16).
    assert_eq!(m.rcode(), 16);
    assert_eq!(parser::rcode_name(m.rcode()), "BADSIG");
}

/// A transaction's resource, status, notes and duration in ms.
type Summary = (Option<String>, Status, Vec<String>, Option<u64>);

struct Run {
    p: DnsParser,
    out: Vec<Transaction>,
    counters: Counters,
}

impl Run {
    fn new(udp: bool) -> Run {
        Run {
            p: DnsParser::new(
                DnsExchange::default(),
                Limits {
                    max_messages: 4,
                    max_bytes: 1 << 20,
                    timeout: Duration::from_secs(10),
                },
                udp,
            ),
            out: Vec::new(),
            counters: Counters::default(),
        }
    }

    fn feed(&mut self, ms: u64, dir: Dir, data: &[u8]) -> Progress {
        let mut ctx = Ctx::new(Ts(ms * 1_000_000), &mut self.out, &mut self.counters);
        self.p.parse(dir, data, &mut ctx)
    }

    fn expire(&mut self, ms: u64) {
        let mut ctx = Ctx::new(Ts(ms * 1_000_000), &mut self.out, &mut self.counters);
        self.p.expire(Ts(ms * 1_000_000), &mut ctx);
    }

    fn close(&mut self) {
        let mut ctx = Ctx::new(Ts(0), &mut self.out, &mut self.counters);
        self.p.close(&mut ctx);
    }

    fn summary(&self) -> Vec<Summary> {
        self.out
            .iter()
            .map(|t| {
                (
                    t.resource.clone(),
                    t.status,
                    t.notes.clone(),
                    t.end.map(|e| e.since(t.start) / 1_000_000),
                )
            })
            .collect()
    }
}

fn note(n: &str) -> Vec<String> {
    vec![n.to_string()]
}

#[test]
fn answers_pair_by_id_in_any_order() {
    let mut r = Run::new(true);
    r.feed(0, Dir::ToServer, &query(1, "a.example"));
    r.feed(1, Dir::ToServer, &query(2, "b.example"));
    r.feed(5, Dir::ToClient, &answer(2, "b.example", [1, 1, 1, 1]));
    r.feed(7, Dir::ToClient, &answer(1, "a.example", [2, 2, 2, 2]));
    // An answer nobody asked for.
    r.feed(8, Dir::ToClient, &answer(3, "c.example", [3, 3, 3, 3]));
    let ok = Status::Ok;
    assert_eq!(
        r.summary(),
        vec![
            (Some("b.example".into()), ok, vec![], Some(4)),
            (Some("a.example".into()), ok, vec![], Some(7)),
            (
                Some("c.example".into()),
                Status::Error,
                note(NOTE_ORPHAN),
                Some(0)
            ),
        ]
    );
    assert_eq!(
        (r.counters.transactions, r.counters.unmatched_responses),
        (3, 1)
    );
    assert_eq!(r.feed(9, Dir::ToClient, b"not dns"), Progress::Error);
}

#[test]
fn unanswered_duplicate_and_evicted_queries() {
    let mut r = Run::new(true);
    r.feed(0, Dir::ToServer, &query(1, "a.example"));
    // The same id again closes the first.
    r.feed(1, Dir::ToServer, &query(1, "a2.example"));
    for (i, id) in (10..14).enumerate() {
        r.feed(2 + i as u64, Dir::ToServer, &query(id, "q.example"));
    }
    // The queue holds 4: a2 was evicted by the fourth of these.
    assert_eq!(r.counters.pairing_evictions, 1);
    r.expire(5_000);
    assert_eq!(r.out.len(), 2);
    // 10 s after query 10 (sent at 2 ms) it times out, the later ones do not.
    r.expire(10_002);
    assert_eq!(r.out.len(), 3);
    r.close();
    let err = Status::Error;
    let s = r.summary();
    assert_eq!(
        s[0],
        (Some("a.example".into()), err, note(NOTE_DUPLICATE), None)
    );
    assert_eq!(
        s[1],
        (Some("a2.example".into()), err, note(NOTE_NO_RESPONSE), None)
    );
    assert_eq!(s.len(), 6);
    assert!(s[2..].iter().all(|t| t.2 == note(NOTE_NO_RESPONSE)));
    assert_eq!(r.counters.unmatched_requests, 5);
}

#[test]
fn tcp_messages_follow_their_length_across_segments() {
    let mut r = Run::new(false);
    let framed = |m: Vec<u8>| [(m.len() as u16).to_be_bytes().to_vec(), m].concat();
    let two = [framed(query(1, "a.example")), framed(query(2, "b.example"))].concat();
    // One byte short of both: the first is read, the engine keeps the second.
    let first_len = framed(query(1, "a.example")).len();
    assert_eq!(
        r.feed(0, Dir::ToServer, &two[..two.len() - 1]),
        Progress::Consumed {
            consumed: first_len,
            need: 1
        }
    );
    assert_eq!(
        r.feed(1, Dir::ToServer, &two[first_len..]),
        Progress::all(&two[first_len..])
    );
    // Half a length prefix.
    let ans = framed(answer(2, "b.example", [1, 2, 3, 4]));
    assert_eq!(
        r.feed(2, Dir::ToClient, &ans[..1]),
        Progress::Consumed {
            consumed: 0,
            need: 1
        }
    );
    assert_eq!(r.feed(3, Dir::ToClient, &ans), Progress::all(&ans));
    assert_eq!(r.out.len(), 1);
    assert_eq!(r.out[0].resource.as_deref(), Some("b.example"));
    // A zero length is not DNS: the direction is skipped from then on.
    assert_eq!(r.feed(4, Dir::ToClient, &[0, 0, 1]), Progress::Error);
    let a1 = framed(answer(1, "a.example", [1, 2, 3, 4]));
    assert_eq!(r.feed(5, Dir::ToClient, &a1), Progress::all(&a1));
    assert_eq!(r.out.len(), 1);
}

#[test]
fn waiting_queries_are_bounded_in_bytes_too() {
    let mut r = Run::new(false);
    // Room for about two queries of 27 bytes (their parsed size is counted).
    let one = std::mem::size_of::<super::transaction::DnsMsg>() + 27 * 4;
    r.p = DnsParser::new(
        DnsExchange::default(),
        Limits {
            max_messages: 1000,
            max_bytes: 2 * one + 1,
            timeout: Duration::from_secs(10),
        },
        false,
    );
    let framed = |m: Vec<u8>| [(m.len() as u16).to_be_bytes().to_vec(), m].concat();
    for id in 0..5 {
        r.feed(id.into(), Dir::ToServer, &framed(query(id, "a.example")));
    }
    assert_eq!(r.counters.pairing_evictions, 3);
    assert_eq!(r.out.len(), 3);
    r.close();
    assert_eq!(r.out.len(), 5);
}
