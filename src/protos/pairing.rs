//! FIFO request/response pairing shared by every protocol.
//!
//! Requests wait in a bounded per-connection queue; each completed response pairs with
//! the oldest request, so pipelining works. Responses with no request, requests left at
//! timeout or at connection end, and requests evicted from a full queue are published
//! as unmatched transactions with status Error and the exact notes of SPEC §3.

use std::collections::VecDeque;
use std::time::Duration;

use super::Ctx;
use crate::event::{NOTE_UNMATCHED_REQUEST, NOTE_UNMATCHED_RESPONSE, Status, Transaction};
use crate::time::Ts;

/// A parsed request or response waiting to be paired.
pub trait Message {
    /// Timestamp of the message's first packet.
    fn ts(&self) -> Ts;
    /// Approximate memory held, for `max_bytes` bounds.
    fn mem_size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    /// A request that is no transaction of its own (MySQL COM_PING, COM_INIT_DB...):
    /// it holds its place in the queue so that its answer is consumed in order, but
    /// neither the pair nor the request left unanswered is ever published.
    fn silent(&self) -> bool {
        false
    }
}

/// Start of a transaction: the request's first packet, or the response's when the
/// request is missing.
pub fn start_ts<R: Message, S: Message>(req: Option<&R>, resp: Option<&S>) -> Ts {
    req.map(|r| r.ts())
        .or_else(|| resp.map(|r| r.ts()))
        .unwrap_or_default()
}

/// A protocol's way of turning a pair (or an unmatched half) into a transaction.
pub trait Exchange {
    type Request: Message;
    type Response: Message;
    /// Builds the transaction. At least one side is present. Pairing sets the status
    /// and note for unmatched halves after this returns.
    fn transaction(&self, req: Option<Self::Request>, resp: Option<Self::Response>) -> Transaction;
}

/// Bounds of one connection's pending-request queue.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_messages: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_messages: 1000,
            max_bytes: 10 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

pub struct Pairing<R> {
    pending: VecDeque<R>,
    bytes: usize,
    limits: Limits,
}

impl<R: Message> Pairing<R> {
    pub fn new(limits: Limits) -> Self {
        Pairing {
            pending: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The oldest pending request: the one the response being parsed answers.
    pub fn front(&self) -> Option<&R> {
        self.pending.front()
    }

    /// Queues a complete request. When the queue is full the oldest request is
    /// published as unmatched and counted as an eviction.
    pub fn request<E>(&mut self, ex: &E, req: R, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R>,
    {
        let size = req.mem_size();
        while !self.pending.is_empty()
            && (self.pending.len() >= self.limits.max_messages.max(1)
                || self.bytes + size > self.limits.max_bytes)
        {
            ctx.counters.pairing_evictions += 1;
            if let Some(old) = self.pop() {
                emit_unmatched_request(ex, old, ctx);
            }
        }
        self.bytes += size;
        self.pending.push_back(req);
    }

    /// Pairs a complete response with the oldest request (or publishes it unmatched);
    /// the answer to a silent request is dropped with it.
    pub fn response<E>(&mut self, ex: &E, resp: E::Response, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R>,
    {
        match self.pop() {
            Some(req) if req.silent() => {}
            Some(req) => {
                let tx = ex.transaction(Some(req), Some(resp));
                ctx.counters.transactions += 1;
                ctx.emit(tx);
            }
            None => {
                let mut tx = ex.transaction(None, Some(resp));
                tx.status = Status::Error;
                tx.note(NOTE_UNMATCHED_RESPONSE);
                ctx.counters.transactions += 1;
                ctx.counters.unmatched_responses += 1;
                ctx.emit(tx);
            }
        }
    }

    /// Publishes, as unmatched, every request older than the transaction timeout.
    pub fn expire<E>(&mut self, ex: &E, now: Ts, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R>,
    {
        while let Some(front) = self.pending.front() {
            if front.ts().saturating_add(self.limits.timeout) > now {
                break;
            }
            if let Some(old) = self.pop() {
                emit_unmatched_request(ex, old, ctx);
            }
        }
    }

    /// Publishes every pending request as unmatched (connection end).
    pub fn drain<E>(&mut self, ex: &E, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R>,
    {
        while let Some(old) = self.pop() {
            emit_unmatched_request(ex, old, ctx);
        }
    }

    /// When a pending request other than the oldest is the one `answers` names (the
    /// protocol's response says which request it answers), publishes the older ones as
    /// unmatched: no response will come for them. Returns how many were published.
    pub fn skip_unanswered<E>(
        &mut self,
        ex: &E,
        answers: impl Fn(&R) -> bool,
        ctx: &mut Ctx<'_>,
    ) -> usize
    where
        E: Exchange<Request = R>,
    {
        if self.pending.front().is_none_or(&answers) {
            return 0;
        }
        let Some(n) = self.pending.iter().position(&answers) else {
            return 0;
        };
        for _ in 0..n {
            if let Some(old) = self.pop() {
                emit_unmatched_request(ex, old, ctx);
            }
        }
        n
    }

    fn pop(&mut self) -> Option<R> {
        let r = self.pending.pop_front()?;
        self.bytes = self.bytes.saturating_sub(r.mem_size());
        Some(r)
    }
}

/// Publishes at once a request that no response answers by design (a oneway call):
/// a complete transaction, with the status the exchange gives it and no note.
pub fn request_only<E: Exchange>(ex: &E, req: E::Request, ctx: &mut Ctx<'_>) {
    let tx = ex.transaction(Some(req), None);
    ctx.counters.transactions += 1;
    ctx.emit(tx);
}

fn emit_unmatched_request<E: Exchange>(ex: &E, req: E::Request, ctx: &mut Ctx<'_>) {
    if req.silent() {
        return;
    }
    let mut tx = ex.transaction(Some(req), None);
    tx.status = Status::Error;
    tx.note(NOTE_UNMATCHED_REQUEST);
    ctx.counters.transactions += 1;
    ctx.counters.unmatched_requests += 1;
    ctx.emit(tx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counters;

    struct Msg(Ts, &'static str);
    impl Message for Msg {
        fn ts(&self) -> Ts {
            self.0
        }
        fn silent(&self) -> bool {
            self.1.starts_with('~')
        }
    }
    struct Ex;
    impl Exchange for Ex {
        type Request = Msg;
        type Response = Msg;
        fn transaction(&self, req: Option<Msg>, resp: Option<Msg>) -> Transaction {
            let mut tx = Transaction::new("test", start_ts(req.as_ref(), resp.as_ref()));
            tx.method = req.map(|m| m.1.to_string());
            tx.end = resp.map(|m| m.0);
            tx
        }
    }

    #[test]
    fn fifo_unmatched_timeout_and_eviction() {
        let mut out = Vec::new();
        let mut counters = Counters::default();
        let mut ctx = Ctx {
            ts: Ts(0),
            out: &mut out,
            counters: &mut counters,
        };
        let limits = Limits {
            max_messages: 2,
            max_bytes: usize::MAX,
            timeout: Duration::from_secs(1),
        };
        let mut p = Pairing::new(limits);
        p.request(&Ex, Msg(Ts(1), "a"), &mut ctx);
        p.request(&Ex, Msg(Ts(2), "b"), &mut ctx);
        p.response(&Ex, Msg(Ts(3), ""), &mut ctx);
        p.request(&Ex, Msg(Ts(4), "c"), &mut ctx);
        p.request(&Ex, Msg(Ts(5), "d"), &mut ctx); // evicts b
        p.expire(&Ex, Ts(1_000_000_004), &mut ctx); // expires c
        p.drain(&Ex, &mut ctx); // d
        p.response(&Ex, Msg(Ts(9), ""), &mut ctx);
        let got: Vec<_> = out
            .iter()
            .map(|t| {
                (
                    t.method.clone().unwrap_or_default(),
                    t.status,
                    t.notes.clone(),
                )
            })
            .collect();
        assert_eq!(got[0], ("a".into(), Status::Ok, vec![]));
        assert_eq!(got[1].0, "b");
        assert_eq!(got[1].2, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
        assert_eq!(got[2].0, "c");
        assert_eq!(got[3].0, "d");
        assert_eq!(
            got[4],
            (
                "".into(),
                Status::Error,
                vec![NOTE_UNMATCHED_RESPONSE.to_string()]
            )
        );
        assert_eq!(counters.pairing_evictions, 1);
        assert_eq!(counters.unmatched_requests, 3);
        assert_eq!(counters.unmatched_responses, 1);
    }

    #[test]
    fn request_only_and_skipping_unanswered_requests() {
        let mut out = Vec::new();
        let mut counters = Counters::default();
        let mut ctx = Ctx {
            ts: Ts(0),
            out: &mut out,
            counters: &mut counters,
        };
        let mut p = Pairing::new(Limits::default());
        request_only(&Ex, Msg(Ts(1), "oneway"), &mut ctx);
        for (ts, m) in [(2, "a"), (3, "b"), (4, "c")] {
            p.request(&Ex, Msg(Ts(ts), m), &mut ctx);
        }
        // The oldest is answered, or no pending request is: nothing is skipped.
        assert_eq!(p.skip_unanswered(&Ex, |m| m.1 == "a", &mut ctx), 0);
        assert_eq!(p.skip_unanswered(&Ex, |m| m.1 == "z", &mut ctx), 0);
        assert_eq!(p.len(), 3);
        // The response answers c: a and b get none.
        assert_eq!(p.skip_unanswered(&Ex, |m| m.1 == "c", &mut ctx), 2);
        p.response(&Ex, Msg(Ts(5), ""), &mut ctx);
        assert!(p.is_empty());
        let got: Vec<_> = out
            .iter()
            .map(|t| (t.method.clone().unwrap_or_default(), t.status, t.end))
            .collect();
        assert_eq!(
            got,
            vec![
                ("oneway".into(), Status::Ok, None),
                ("a".into(), Status::Error, None),
                ("b".into(), Status::Error, None),
                ("c".into(), Status::Ok, Some(Ts(5))),
            ]
        );
        assert!(out[0].notes.is_empty());
        assert_eq!(out[1].notes, vec![NOTE_UNMATCHED_REQUEST.to_string()]);
        assert_eq!(counters.transactions, 4);
        assert_eq!(counters.unmatched_requests, 2);
    }

    #[test]
    fn silent_requests_keep_their_place_and_are_never_published() {
        let mut out = Vec::new();
        let mut counters = Counters::default();
        let mut ctx = Ctx {
            ts: Ts(0),
            out: &mut out,
            counters: &mut counters,
        };
        let limits = Limits {
            max_messages: 8,
            max_bytes: usize::MAX,
            timeout: Duration::from_secs(1),
        };
        let mut p = Pairing::new(limits);
        p.request(&Ex, Msg(Ts(1), "~ping"), &mut ctx);
        p.request(&Ex, Msg(Ts(2), "a"), &mut ctx);
        p.request(&Ex, Msg(Ts(3), "~stat"), &mut ctx);
        p.request(&Ex, Msg(Ts(4), "~quit"), &mut ctx);
        // The first answer belongs to the ping: dropped; the second pairs with "a".
        p.response(&Ex, Msg(Ts(5), ""), &mut ctx);
        p.response(&Ex, Msg(Ts(6), ""), &mut ctx);
        p.response(&Ex, Msg(Ts(7), ""), &mut ctx);
        p.drain(&Ex, &mut ctx);
        let got: Vec<_> = out
            .iter()
            .map(|t| (t.method.clone().unwrap_or_default(), t.status))
            .collect();
        assert_eq!(got, [("a".to_string(), Status::Ok)]);
        assert_eq!(counters.unmatched_requests, 0);
        assert_eq!(counters.unmatched_responses, 0);
        assert_eq!(counters.transactions, 1);
    }
}
