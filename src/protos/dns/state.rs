//! The per-flow DNS state behind the engine's [`Parser`] contract: over UDP each
//! datagram is one message; over TCP messages are framed by a 2-byte length (RFC
//! 1035 §4.2.2) and the engine buffers a message until it is whole. Queries wait by
//! id for their answer, bounded by `queue_max_messages`, `queue_max_bytes` and
//! `transaction_timeout`.

use std::collections::VecDeque;

use super::parser::{self, Message};
use super::transaction::{
    DnsExchange, DnsMsg, MAX_PLAIN_UDP, NOTE_DUPLICATE, NOTE_EDNS_NO_SUPPORT, NOTE_EDNS_UNEXPECTED,
    NOTE_NO_RESPONSE, NOTE_ORPHAN, NOTE_TOO_LARGE,
};
use crate::protos::pairing::{self, Limits, Message as _, Wire};
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::time::Ts;

/// Largest DNS message over TCP, with its length prefix.
pub const MAX_TCP_MESSAGE: usize = 2 + u16::MAX as usize;

struct Pending {
    query: DnsMsg,
    notes: Vec<String>,
}

pub struct DnsParser {
    ex: DnsExchange,
    limits: Limits,
    udp: bool,
    /// Queries waiting for an answer, oldest first, and their memory.
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// A TCP direction whose framing was lost to a gap: its bytes are skipped.
    lost: [bool; 2],
}

impl DnsParser {
    pub fn new(ex: DnsExchange, limits: Limits, udp: bool) -> DnsParser {
        DnsParser {
            ex,
            limits,
            udp,
            pending: VecDeque::new(),
            pending_bytes: 0,
            lost: [false; 2],
        }
    }

    fn publish(
        &self,
        query: Option<DnsMsg>,
        answer: Option<DnsMsg>,
        notes: &[String],
        ctx: &mut Ctx<'_>,
    ) {
        let mut tx = pairing::transaction(&self.ex, query, answer);
        for n in notes {
            tx.note(n);
        }
        ctx.counters.transactions += 1;
        ctx.emit(tx);
    }

    fn unanswered(&self, p: Pending, note: &str, ctx: &mut Ctx<'_>) {
        let mut notes = p.notes;
        notes.push(note.to_string());
        ctx.counters.unmatched_requests += 1;
        self.publish(Some(p.query), None, &notes, ctx);
    }

    /// Takes the waiting query at `i` out of the queue.
    fn take(&mut self, i: usize) -> Option<Pending> {
        let p = self.pending.remove(i)?;
        self.pending_bytes = self.pending_bytes.saturating_sub(p.query.mem_size());
        Some(p)
    }

    fn on_message(&mut self, msg: Message, ts: Ts, ctx: &mut Ctx<'_>) {
        let wire = Wire {
            ts,
            bytes: msg.len as u64,
            loss: false,
        };
        let edns = msg.opt.is_some();
        let large = self.udp && msg.len > MAX_PLAIN_UDP;
        if !msg.header.response {
            let id = msg.header.id;
            if let Some(i) = self
                .pending
                .iter()
                .position(|p| p.query.msg.header.id == id)
                && let Some(old) = self.take(i)
            {
                let mut notes = old.notes;
                notes.push(NOTE_DUPLICATE.to_string());
                self.publish(Some(old.query), None, &notes, ctx);
            }
            let query = DnsMsg { wire, msg };
            let size = query.mem_size();
            while !self.pending.is_empty()
                && (self.pending.len() >= self.limits.max_messages.max(1)
                    || self.pending_bytes + size > self.limits.max_bytes)
            {
                let Some(oldest) = self.take(0) else {
                    break;
                };
                ctx.counters.pairing_evictions += 1;
                self.unanswered(oldest, NOTE_NO_RESPONSE, ctx);
            }
            let mut notes = Vec::new();
            // As Packetbeat checks it: an EDNS query over the plain size.
            if large && edns {
                notes.push(NOTE_TOO_LARGE.to_string());
            }
            self.pending_bytes += size;
            self.pending.push_back(Pending { query, notes });
            return;
        }
        let id = msg.header.id;
        let query = self
            .pending
            .iter()
            .position(|p| p.query.msg.header.id == id)
            .and_then(|i| self.take(i));
        let mut notes = Vec::new();
        if query.is_none() {
            notes.push(NOTE_ORPHAN.to_string());
            ctx.counters.unmatched_responses += 1;
        }
        if large && !edns {
            notes.push(format!("Response: {NOTE_TOO_LARGE}"));
        }
        let (query, mut qnotes) = match query {
            Some(p) => (Some(p.query), p.notes),
            None => (None, Vec::new()),
        };
        if self.udp
            && let Some(q) = &query
        {
            match (q.msg.opt.is_some(), edns) {
                (true, false) => notes.push(NOTE_EDNS_NO_SUPPORT.to_string()),
                (false, true) => notes.push(NOTE_EDNS_UNEXPECTED.to_string()),
                _ => {}
            }
        }
        qnotes.extend(notes);
        self.publish(query, Some(DnsMsg { wire, msg }), &qnotes, ctx);
    }

    /// TCP: the whole messages of `data`, each after its 2-byte length.
    fn parse_stream(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        if self.lost[dir.idx()] {
            return Progress::all(data);
        }
        let mut at = 0;
        loop {
            let rest = &data[at..];
            if rest.is_empty() {
                return Progress::all(data);
            }
            let Some(len) = rest
                .get(..2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            else {
                return Progress::Consumed {
                    consumed: at,
                    need: 2 - rest.len(),
                };
            };
            if len < parser::HEADER {
                // A zero or too short length: the framing cannot be trusted.
                self.lost[dir.idx()] = true;
                return Progress::Error;
            }
            if rest.len() < 2 + len {
                return Progress::Consumed {
                    consumed: at,
                    need: 2 + len - rest.len(),
                };
            }
            let ts = ctx.start_ts(at);
            match parser::parse(&rest[2..2 + len]) {
                Ok(m) => self.on_message(m, ts, ctx),
                Err(_) => ctx.counters.parse_errors += 1,
            }
            at += 2 + len;
        }
    }
}

impl Parser for DnsParser {
    fn parse(&mut self, dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        if !self.udp {
            return self.parse_stream(dir, data, ctx);
        }
        match parser::parse(data) {
            Ok(m) => {
                let ts = ctx.ts;
                self.on_message(m, ts, ctx);
                Progress::all(data)
            }
            Err(_) => Progress::Error,
        }
    }

    fn gap(&mut self, dir: Dir, _len: u64, _ctx: &mut Ctx<'_>) {
        // A datagram cut by the snaplen was already read as far as it went; a TCP
        // stream's framing is lost for good.
        if !self.udp {
            self.lost[dir.idx()] = true;
        }
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        while let Some(p) = self.pending.front() {
            if p.query.wire.ts.saturating_add(self.limits.timeout) > now {
                break;
            }
            if let Some(p) = self.take(0) {
                self.unanswered(p, NOTE_NO_RESPONSE, ctx);
            }
        }
    }

    fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(p) = self.take(0) {
            self.unanswered(p, NOTE_NO_RESPONSE, ctx);
        }
    }
}
