//! The per-flow ICMP state behind the engine's [`Parser`] contract: each message
//! comes whole, one per call. Requests wait by sequence number for their reply,
//! bounded by `queue_max_messages` and `transaction_timeout`.

use std::collections::VecDeque;

use super::parser::{self, IcmpRole};
use super::transaction::{IcmpExchange, IcmpMsg, NOTE_DUPLICATE, NOTE_NO_RESPONSE, NOTE_ORPHAN};
use crate::event::{ConnInfo, Transport};
use crate::protos::pairing::{self, Limits, Wire};
use crate::protos::{Ctx, Dir, Parser, Progress};
use crate::time::Ts;

pub struct IcmpParser {
    limits: Limits,
    v6: bool,
    /// `path`: the address the requests went to.
    path: String,
    /// Requests waiting for their reply, oldest first.
    pending: VecDeque<IcmpMsg>,
}

impl IcmpParser {
    pub fn new(limits: Limits, conn: &ConnInfo) -> IcmpParser {
        IcmpParser {
            limits,
            v6: conn.transport == Transport::Icmpv6,
            path: conn.server_ip.to_string(),
            pending: VecDeque::new(),
        }
    }

    fn publish(
        &self,
        req: Option<IcmpMsg>,
        resp: Option<IcmpMsg>,
        note: Option<&str>,
        ctx: &mut Ctx<'_>,
    ) {
        let mut tx = pairing::transaction(&IcmpExchange, req, resp);
        tx.path = Some(self.path.clone());
        if let Some(n) = note {
            tx.note(n);
        }
        ctx.counters.transactions += 1;
        ctx.emit(tx);
    }

    fn unanswered(&self, req: IcmpMsg, note: &str, ctx: &mut Ctx<'_>) {
        ctx.counters.unmatched_requests += 1;
        self.publish(Some(req), None, Some(note), ctx);
    }

    fn take(&mut self, seq: u16) -> Option<IcmpMsg> {
        let i = self.pending.iter().position(|m| m.seq == seq)?;
        self.pending.remove(i)
    }
}

impl Parser for IcmpParser {
    fn parse(&mut self, _dir: Dir, data: &[u8], ctx: &mut Ctx<'_>) -> Progress {
        // The flow's key already tells requests from replies: the direction is not
        // needed (and is no help when a host pings itself).
        let Some(h) = parser::parse(self.v6, data) else {
            return Progress::Error;
        };
        let msg = IcmpMsg {
            wire: Wire {
                ts: ctx.ts,
                bytes: h.body_len as u64,
                loss: false,
            },
            v6: self.v6,
            ty: h.ty,
            code: h.code,
            seq: h.seq,
            error: h.is_error(),
            role: h.role(),
        };
        match msg.role {
            IcmpRole::Request => {
                if let Some(old) = self.take(msg.seq) {
                    self.unanswered(old, NOTE_DUPLICATE, ctx);
                }
                while self.pending.len() >= self.limits.max_messages.max(1) {
                    let Some(oldest) = self.pending.pop_front() else {
                        break;
                    };
                    ctx.counters.pairing_evictions += 1;
                    self.unanswered(oldest, NOTE_NO_RESPONSE, ctx);
                }
                self.pending.push_back(msg);
            }
            IcmpRole::Reply => match self.take(msg.seq) {
                Some(req) => self.publish(Some(req), Some(msg), None, ctx),
                None => {
                    ctx.counters.unmatched_responses += 1;
                    self.publish(None, Some(msg), Some(NOTE_ORPHAN), ctx);
                }
            },
            IcmpRole::Single => self.publish(Some(msg), None, None, ctx),
        }
        Progress::all(data)
    }

    fn gap(&mut self, _dir: Dir, _len: u64, _ctx: &mut Ctx<'_>) {
        // A message cut by the snaplen was read as far as it went; Packetbeat
        // counts the captured bytes too.
    }

    fn expire(&mut self, now: Ts, ctx: &mut Ctx<'_>) {
        while let Some(m) = self.pending.front() {
            if m.wire.ts.saturating_add(self.limits.timeout) > now {
                break;
            }
            if let Some(m) = self.pending.pop_front() {
                self.unanswered(m, NOTE_NO_RESPONSE, ctx);
            }
        }
    }

    fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(m) = self.pending.pop_front() {
            self.unanswered(m, NOTE_NO_RESPONSE, ctx);
        }
    }
}
