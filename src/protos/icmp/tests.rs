//! ICMP pairing and naming tests on hand-built messages; the recorded captures are
//! checked in tests/icmp_fixtures.rs.

use std::time::Duration;

use super::parser;
use super::state::IcmpParser;
use super::transaction::{NOTE_DUPLICATE, NOTE_NO_RESPONSE, NOTE_ORPHAN};
use crate::event::{ConnInfo, EventEncoder, Status, Transaction};
use crate::protos::pairing::Limits;
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::stats::Counters;
use crate::time::Ts;

fn conn(v6: bool) -> ConnInfo {
    if v6 {
        ConnInfo::icmp(
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            128,
            0,
        )
    } else {
        ConnInfo::icmp(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            8,
            0,
        )
    }
}

/// An ICMP message: type, code, checksum 0, identifier 0x1234, `seq`, then
/// `body` bytes of data.
fn msg(ty: u8, code: u8, seq: u16, body: usize) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0x12, 0x34];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend(std::iter::repeat_n(0xa5, body));
    m
}

struct Run {
    parser: IcmpParser,
    out: Vec<Transaction>,
    counters: Counters,
}

impl Run {
    fn new(v6: bool, limits: Limits) -> Run {
        Run {
            parser: IcmpParser::new(limits, &conn(v6)),
            out: Vec::new(),
            counters: Counters::default(),
        }
    }

    fn feed(&mut self, ms: u64, m: &[u8]) -> Progress {
        let mut ctx = Ctx::new(Ts(ms * 1_000_000), &mut self.out, &mut self.counters);
        self.parser.parse(Dir::ToServer, m, &mut ctx)
    }

    fn expire(&mut self, ms: u64) {
        let mut ctx = Ctx::new(Ts(ms * 1_000_000), &mut self.out, &mut self.counters);
        self.parser.expire(Ts(ms * 1_000_000), &mut ctx);
    }

    fn close(&mut self) {
        let mut ctx = Ctx::new(Ts::default(), &mut self.out, &mut self.counters);
        self.parser.close(&mut ctx);
    }
}

fn json(tx: &Transaction, v6: bool) -> serde_json::Value {
    let enc = EventEncoder::new(crate::event::AgentInfo::new("gw".into(), Vec::new()));
    let mut out = Vec::new();
    enc.encode(&conn(v6), tx, &mut out);
    serde_json::from_slice(&out).expect("json")
}

#[test]
fn an_echo_pairs_with_its_reply_by_sequence_number() {
    let mut r = Run::new(false, Limits::default());
    r.feed(0, &msg(8, 0, 1, 56));
    r.feed(1, &msg(8, 0, 2, 56));
    assert!(!r.parser.idle());
    r.feed(5, &msg(0, 0, 2, 56));
    r.feed(7, &msg(0, 0, 1, 56));
    assert!(r.parser.idle(), "both answered");
    assert_eq!(r.out.len(), 2);
    let e = json(&r.out[0], false);
    assert_eq!(e["icmp"]["version"], 4);
    assert_eq!(e["icmp"]["request"]["message"], "EchoRequest");
    assert_eq!(e["icmp"]["request"]["type"], 8);
    assert_eq!(e["icmp"]["response"]["message"], "EchoReply");
    assert_eq!(e["icmp"]["response"]["code"], 0);
    assert_eq!(e["status"], "OK");
    assert_eq!(e["path"], "10.0.0.2");
    assert_eq!(e["type"], "icmp");
    assert_eq!(e["network"]["transport"], "icmp");
    assert_eq!(e["network"]["community_id"], conn(false).community_id);
    assert_eq!(e["event"]["type"], serde_json::json!(["connection"]));
    assert_eq!(e["event"]["duration"], 4_000_000, "seq 2: 1 ms -> 5 ms");
    assert_eq!(e["source"]["bytes"], 56);
    assert_eq!(e["destination"]["bytes"], 56);
    assert!(e["source"].get("port").is_none(), "ICMP has no ports");
    assert!(e["client"].get("port").is_none());
    assert!(e.get("error").is_none());
    assert_eq!(r.counters.transactions, 2);
}

#[test]
fn unanswered_duplicate_and_orphan_messages_carry_packetbeats_notes() {
    let limits = Limits {
        timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    let mut r = Run::new(false, limits);
    r.feed(0, &msg(8, 0, 1, 8));
    r.feed(100, &msg(8, 0, 1, 8));
    r.feed(200, &msg(0, 0, 9, 8));
    r.feed(300, &msg(8, 0, 2, 8));
    r.expire(10_099);
    assert_eq!(r.out.len(), 2, "seq 1 again is not due yet");
    r.expire(10_100);
    r.close();
    let notes: Vec<(Vec<String>, Status, bool, bool)> = r
        .out
        .iter()
        .map(|t| {
            let e = json(t, false);
            (
                t.notes.clone(),
                t.status,
                e["icmp"].get("request").is_some(),
                e["icmp"].get("response").is_some(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        vec![
            (vec![NOTE_DUPLICATE.to_string()], Status::Error, true, false),
            (vec![NOTE_ORPHAN.to_string()], Status::Error, false, true),
            (
                vec![NOTE_NO_RESPONSE.to_string()],
                Status::Error,
                true,
                false
            ),
            (
                vec![NOTE_NO_RESPONSE.to_string()],
                Status::Error,
                true,
                false
            ),
        ]
    );
    assert_eq!(
        r.out[2].start,
        Ts(100_000_000),
        "the second seq 1, timed out"
    );
    assert_eq!(
        (
            r.counters.unmatched_requests,
            r.counters.unmatched_responses
        ),
        (3, 1)
    );
}

#[test]
fn messages_of_their_own_are_published_at_once() {
    let mut r = Run::new(false, Limits::default());
    r.feed(0, &[3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0]);
    r.feed(1, &msg(5, 1, 0, 0));
    assert!(r.parser.idle());
    let e = json(&r.out[0], false);
    assert_eq!(
        e["icmp"]["request"]["message"],
        "DestinationUnreachable(Port)"
    );
    assert_eq!(e["status"], "Error", "an error report");
    assert_eq!(e["source"]["bytes"], 2);
    let e = json(&r.out[1], false);
    assert_eq!(e["icmp"]["request"]["message"], "Redirect(Host)");
    assert_eq!(e["status"], "OK");
    assert!(e["icmp"].get("response").is_none());

    let mut r = Run::new(true, Limits::default());
    r.feed(0, &[135, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80]);
    r.feed(1, &msg(128, 0, 7, 4));
    r.feed(2, &msg(129, 0, 7, 4));
    let e = json(&r.out[0], true);
    assert_eq!(e["icmp"]["version"], 6);
    assert_eq!(e["icmp"]["request"]["message"], "NeighborSolicitation");
    assert_eq!(e["source"]["bytes"], 6, "ICMPv6 counts from byte 4");
    assert_eq!(e["network"]["transport"], "ipv6-icmp");
    let e = json(&r.out[1], true);
    assert_eq!(e["icmp"]["response"]["message"], "EchoReply");
    assert_eq!(e["source"]["bytes"], 8);
}

#[test]
fn a_queue_bound_closes_the_oldest_request() {
    let limits = Limits {
        max_messages: 2,
        ..Limits::default()
    };
    let mut r = Run::new(false, limits);
    for seq in 0..5 {
        r.feed(seq.into(), &msg(8, 0, seq, 0));
    }
    assert_eq!(r.out.len(), 3);
    assert_eq!(r.counters.pairing_evictions, 3);
    assert!(r.out.iter().all(|t| t.notes == [NOTE_NO_RESPONSE]));
}

#[test]
fn short_or_empty_messages_are_errors() {
    let mut r = Run::new(false, Limits::default());
    assert_eq!(r.feed(0, &[8, 0, 0, 0, 0]), Progress::Error);
    assert_eq!(r.feed(0, &[]), Progress::Error);
    assert!(r.out.is_empty());
}

#[test]
fn names_follow_packetbeat() {
    let cases = [
        (false, 0, 0, "EchoReply"),
        (false, 8, 0, "EchoRequest"),
        (false, 8, 3, "EchoRequest(Code: 3)"),
        (false, 3, 4, "DestinationUnreachable(FragmentationNeeded)"),
        (false, 3, 99, "DestinationUnreachable(Code: 99)"),
        (false, 11, 0, "TimeExceeded(TTLExceeded)"),
        (false, 5, 2, "Redirect(TOS+Net)"),
        (false, 42, 1, "42(1)"),
        (true, 1, 4, "DestinationUnreachable(PortUnreachable)"),
        (true, 3, 0, "TimeExceeded(HopLimitExceeded)"),
        (true, 2, 0, "PacketTooBig"),
        (true, 136, 0, "NeighborAdvertisement"),
        (true, 143, 0, "143(0)"),
        (true, 8, 0, "8(0)"),
    ];
    for (v6, ty, code, want) in cases {
        assert_eq!(parser::message(v6, ty, code), want, "v6={v6} {ty}/{code}");
    }
}
