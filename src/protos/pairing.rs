//! FIFO request/response pairing shared by every protocol.
//!
//! Requests wait in a bounded per-connection queue; each completed response pairs with
//! the oldest request, so pipelining works. Responses with no request, requests left at
//! timeout or at connection end, and requests evicted from a full queue are published
//! as unmatched transactions with status Error and the exact notes of SPEC §3.
//!
//! A response belongs to the oldest request whose head has been seen, complete or not:
//! servers answer before reading a request's body (HTTP 413, 401, redirects; a MySQL
//! packet over `max_allowed_packet`). A parser that can see such a case queues the
//! request with [`Pairing::open`] as soon as its head is known, keeps counting into it
//! through [`Pairing::opened_mut`] and calls [`Pairing::complete`] when it ends. A
//! response completing against the open request waits for it (at most one response
//! ever waits: only the newest request can be open), and the pair is published when
//! the request completes, when the response has waited the transaction timeout, or at
//! connection end. An open request that has no response yet is still streaming, so it
//! does not time out; its memory counts towards the queue's bounds like any other.

use std::collections::VecDeque;
use std::time::Duration;

use super::Ctx;
use crate::event::{
    NOTE_LOSS_REQUEST, NOTE_LOSS_RESPONSE, NOTE_UNMATCHED_REQUEST, NOTE_UNMATCHED_RESPONSE, Status,
    Transaction,
};
use crate::time::Ts;

/// What the engine knows of every message, whatever its protocol: when its first
/// packet was seen, its size on the wire (the event's `client.bytes` or
/// `server.bytes`) and whether capture loss cut part of it (the loss note).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    pub ts: Ts,
    pub bytes: u64,
    pub loss: bool,
}

impl Wire {
    /// A message whose first packet was seen at `ts`, nothing counted yet.
    pub fn at(ts: Ts) -> Wire {
        Wire {
            ts,
            ..Wire::default()
        }
    }
}

/// A parsed request or response waiting to be paired.
pub trait Message {
    /// Its timing, size and loss, which [`transaction`] turns into the fields every
    /// protocol shares.
    fn wire(&self) -> &Wire;
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

/// A protocol's way of turning a pair (or an unmatched half) into a transaction.
pub trait Exchange {
    /// The event's `type`.
    const PROTOCOL: &'static str;
    type Request: Message;
    type Response: Message;
    /// Fills in the protocol's part of a transaction that [`transaction`] has begun
    /// with what every protocol shares (times, bytes, loss notes). At least one side
    /// is present. Pairing sets the status and note for unmatched halves afterwards.
    fn fill(&self, tx: &mut Transaction, req: Option<Self::Request>, resp: Option<Self::Response>);
}

/// The transaction of a pair (or an unmatched half): start at the request's first
/// packet (the response's when the request is missing), end at the response's, the
/// bytes of each side, a loss note for each side cut by capture loss, then the
/// protocol's own fields.
pub fn transaction<E: Exchange>(
    ex: &E,
    req: Option<E::Request>,
    resp: Option<E::Response>,
) -> Transaction {
    let start = req
        .as_ref()
        .map(|r| r.wire().ts)
        .or_else(|| resp.as_ref().map(|r| r.wire().ts))
        .unwrap_or_default();
    let mut tx = Transaction::new(E::PROTOCOL, start);
    if let Some(r) = req.as_ref().map(Message::wire) {
        tx.request_bytes = r.bytes;
        if r.loss {
            tx.note(NOTE_LOSS_REQUEST);
        }
    }
    if let Some(r) = resp.as_ref().map(Message::wire) {
        tx.end = Some(r.ts);
        tx.response_bytes = r.bytes;
        if r.loss {
            tx.note(NOTE_LOSS_RESPONSE);
        }
    }
    ex.fill(&mut tx, req, resp);
    tx
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

/// One queued request.
struct Slot<R> {
    req: R,
    /// The request's head was seen but not its end.
    open: bool,
    /// Memory accounted for `req` in `Pairing::bytes`.
    size: usize,
    /// Start of the transaction timeout: the request's first packet, or for a request
    /// opened early, the packet that completed it.
    since: Ts,
}

pub struct Pairing<R, S = R> {
    pending: VecDeque<Slot<R>>,
    /// Response that arrived while the request it answers (the only one queued) was
    /// still open, and the memory accounted for it.
    answer: Option<(S, usize)>,
    bytes: usize,
    limits: Limits,
}

impl<R: Message, S: Message> Pairing<R, S> {
    pub fn new(limits: Limits) -> Self {
        Pairing {
            pending: VecDeque::new(),
            answer: None,
            bytes: 0,
            limits,
        }
    }

    /// Asks for the lines of the queue's bookkeeping (a hint; see
    /// [`crate::protos::Parser::prefetch`]).
    pub fn prefetch(&self, step: crate::protos::Prefetch) {
        use crate::flow::prefetch;
        match step {
            crate::protos::Prefetch::Fields => {
                prefetch(&self.pending);
                prefetch(&self.answer);
                prefetch(&self.bytes);
            }
            crate::protos::Prefetch::Owned => {
                // The oldest request (a response pairs with it) and the newest (the
                // open one, which more of a request goes into): each slot's first
                // line and the one holding its `open` flag.
                for s in self.pending.front().into_iter().chain(self.pending.back()) {
                    prefetch(&s.req);
                    prefetch(&s.open);
                }
            }
        }
    }

    /// Requests queued, open ones included.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The oldest request not yet answered: the one the response being parsed
    /// answers. An open request counts: its head has been seen.
    pub fn front(&self) -> Option<&R> {
        if self.answer.is_some() {
            return None;
        }
        self.pending.front().map(|s| &s.req)
    }

    /// The open request (head seen, end not yet), if any.
    pub fn opened(&self) -> Option<&R> {
        self.pending.back().filter(|s| s.open).map(|s| &s.req)
    }

    /// The open request, to count the rest of its bytes into it.
    pub fn opened_mut(&mut self) -> Option<&mut R> {
        self.pending
            .back_mut()
            .filter(|s| s.open)
            .map(|s| &mut s.req)
    }

    /// Queues a complete request. When the queue is full the oldest request is
    /// published as unmatched and counted as an eviction.
    pub fn request<E>(&mut self, ex: &E, req: R, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        // A new request means the one before it ended.
        self.complete(ex, ctx);
        let since = req.wire().ts;
        self.push(ex, req, false, since, ctx);
    }

    /// Queues a request whose head has been seen and whose end has not: responses
    /// pair with it from now on. A request still open is completed first (only the
    /// newest request can be open).
    pub fn open<E>(&mut self, ex: &E, req: R, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        self.complete(ex, ctx);
        let since = req.wire().ts;
        self.push(ex, req, true, since, ctx);
    }

    /// The open request ended (its last byte was seen, or the stream was cut and it
    /// is published as it is). If its response already arrived, the pair is
    /// published now. Without an open request this does nothing.
    pub fn complete<E>(&mut self, ex: &E, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        let Some(slot) = self.pending.back_mut().filter(|s| s.open) else {
            return;
        };
        slot.open = false;
        slot.since = slot.since.max(ctx.ts);
        // The body may have grown since the request was opened.
        let size = slot.req.mem_size();
        self.bytes = self.bytes.saturating_sub(slot.size).saturating_add(size);
        slot.size = size;
        if self.answer.is_some() {
            self.publish_front(ex, ctx);
        }
    }

    /// Pairs a complete response with the oldest request not yet answered, or
    /// publishes it unmatched. A response to a request still open waits for it.
    pub fn response<E>(&mut self, ex: &E, resp: S, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        match self.pending.front() {
            Some(slot) if self.answer.is_none() => {
                if slot.open {
                    let size = resp.mem_size();
                    self.bytes = self.bytes.saturating_add(size);
                    self.answer = Some((resp, size));
                } else if let Some(req) = self.pop() {
                    // The answer to a silent request is dropped with it.
                    if !req.silent() {
                        let tx = transaction(ex, Some(req), Some(resp));
                        ctx.counters.transactions += 1;
                        ctx.emit(tx);
                    }
                }
            }
            _ => {
                let mut tx = transaction(ex, None, Some(resp));
                tx.status = Status::Error;
                tx.note(NOTE_UNMATCHED_RESPONSE);
                ctx.counters.transactions += 1;
                ctx.counters.unmatched_responses += 1;
                ctx.emit(tx);
            }
        }
    }

    /// Publishes, as unmatched, every request that has waited the transaction timeout
    /// with the server silent (counted from the request's end or the server's latest
    /// payload, [`Ctx::server_active`], whichever is later: a long response streaming
    /// to a slow client keeps its request and those queued behind it), and an
    /// answered open request whose response has waited that long (as a pair: the rest
    /// of its body is no longer waited for).
    pub fn expire<E>(&mut self, ex: &E, now: Ts, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        let timeout = self.limits.timeout;
        while let Some(front) = self.pending.front() {
            let since = match (&self.answer, front.open) {
                (Some((resp, _)), _) => resp.wire().ts,
                (None, true) => break,
                (None, false) => front.since.max(ctx.server_active),
            };
            if since.saturating_add(timeout) > now {
                break;
            }
            self.publish_front(ex, ctx);
        }
    }

    /// Publishes every pending request (connection end): an open request that has
    /// its response as a pair, the others as unmatched.
    pub fn drain<E>(&mut self, ex: &E, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        while !self.pending.is_empty() {
            self.publish_front(ex, ctx);
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
        E: Exchange<Request = R, Response = S>,
    {
        if self.answer.is_some() || self.pending.front().is_none_or(|s| answers(&s.req)) {
            return 0;
        }
        let Some(n) = self.pending.iter().position(|s| answers(&s.req)) else {
            return 0;
        };
        for _ in 0..n {
            if let Some(old) = self.pop() {
                emit_unmatched_request(ex, old, ctx);
            }
        }
        n
    }

    fn push<E>(&mut self, ex: &E, req: R, open: bool, since: Ts, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        let size = req.mem_size();
        while !self.pending.is_empty()
            && (self.pending.len() >= self.limits.max_messages.max(1)
                || self.bytes + size > self.limits.max_bytes)
        {
            ctx.counters.pairing_evictions += 1;
            self.publish_front(ex, ctx);
        }
        self.bytes += size;
        self.pending.push_back(Slot {
            req,
            open,
            size,
            since,
        });
    }

    /// Publishes the oldest request: with the waiting response if there is one
    /// (it answers this request), otherwise as unmatched.
    fn publish_front<E>(&mut self, ex: &E, ctx: &mut Ctx<'_>)
    where
        E: Exchange<Request = R, Response = S>,
    {
        let Some(req) = self.pop() else {
            return;
        };
        match self.answer.take() {
            Some((resp, size)) => {
                self.bytes = self.bytes.saturating_sub(size);
                if req.silent() {
                    return;
                }
                let tx = transaction(ex, Some(req), Some(resp));
                ctx.counters.transactions += 1;
                ctx.emit(tx);
            }
            None => emit_unmatched_request(ex, req, ctx),
        }
    }

    fn pop(&mut self) -> Option<R> {
        let s = self.pending.pop_front()?;
        self.bytes = self.bytes.saturating_sub(s.size);
        Some(s.req)
    }
}

/// Publishes at once a request that no response answers by design (a oneway call):
/// a complete transaction, with the status the exchange gives it and no note.
pub fn request_only<E: Exchange>(ex: &E, req: E::Request, ctx: &mut Ctx<'_>) {
    let tx = transaction(ex, Some(req), None);
    ctx.counters.transactions += 1;
    ctx.emit(tx);
}

fn emit_unmatched_request<E: Exchange>(ex: &E, req: E::Request, ctx: &mut Ctx<'_>) {
    if req.silent() {
        return;
    }
    let mut tx = transaction(ex, Some(req), None);
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

    /// Timing and bytes, name.
    struct Msg(Wire, &'static str);
    fn msg(ts: Ts, name: &'static str, bytes: u64) -> Msg {
        Msg(
            Wire {
                ts,
                bytes,
                loss: false,
            },
            name,
        )
    }
    impl Message for Msg {
        fn wire(&self) -> &Wire {
            &self.0
        }
        fn silent(&self) -> bool {
            self.1.starts_with('~')
        }
    }
    struct Ex;
    impl Exchange for Ex {
        const PROTOCOL: &'static str = "test";
        type Request = Msg;
        type Response = Msg;
        fn fill(&self, tx: &mut Transaction, req: Option<Msg>, _: Option<Msg>) {
            tx.method = req.map(|m| m.1.to_string());
        }
    }

    #[test]
    fn fifo_unmatched_timeout_and_eviction() {
        let mut out = Vec::new();
        let mut counters = Counters::default();
        let mut ctx = Ctx::new(Ts(0), &mut out, &mut counters);
        let limits = Limits {
            max_messages: 2,
            max_bytes: usize::MAX,
            timeout: Duration::from_secs(1),
        };
        let mut p = Pairing::new(limits);
        p.request(&Ex, msg(Ts(1), "a", 0), &mut ctx);
        p.request(&Ex, msg(Ts(2), "b", 0), &mut ctx);
        p.response(&Ex, msg(Ts(3), "", 0), &mut ctx);
        p.request(&Ex, msg(Ts(4), "c", 0), &mut ctx);
        p.request(&Ex, msg(Ts(5), "d", 0), &mut ctx); // evicts b
        p.expire(&Ex, Ts(1_000_000_004), &mut ctx); // expires c
        p.drain(&Ex, &mut ctx); // d
        p.response(&Ex, msg(Ts(9), "", 0), &mut ctx);
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

    fn ctx<'a>(out: &'a mut Vec<Transaction>, counters: &'a mut Counters, ts: u64) -> Ctx<'a> {
        Ctx::new(Ts(ts), out, counters)
    }

    fn limits(timeout_ns: u64) -> Limits {
        Limits {
            max_messages: 4,
            max_bytes: usize::MAX,
            timeout: Duration::from_nanos(timeout_ns),
        }
    }

    /// (method, end, request bytes, notes) of each transaction.
    fn seen(out: &[Transaction]) -> Vec<(String, Option<u64>, u64, Vec<String>)> {
        out.iter()
            .map(|t| {
                (
                    t.method.clone().unwrap_or_default(),
                    t.end.map(|e| e.0),
                    t.request_bytes,
                    t.notes.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn early_response_waits_for_its_open_request() {
        let (mut out, mut counters) = (Vec::new(), Counters::default());
        let mut p = Pairing::new(limits(1_000));
        {
            let c = &mut ctx(&mut out, &mut counters, 1);
            p.open(&Ex, msg(Ts(1), "post", 10), c);
            assert_eq!(p.front().map(|m| m.1), Some("post"));
            // Answered before the body ends: nothing is published yet, and the
            // answered request is no longer the one a next response answers.
            p.response(&Ex, msg(Ts(2), "", 0), c);
            assert!(c.out.is_empty());
            assert!(p.front().is_none());
            p.opened_mut().unwrap().0.bytes += 90;
        }
        {
            let c = &mut ctx(&mut out, &mut counters, 3);
            p.complete(&Ex, c);
            assert!(p.is_empty());
            p.request(&Ex, msg(Ts(4), "get", 5), c);
            p.response(&Ex, msg(Ts(5), "", 0), c);
            // A second complete is harmless.
            p.complete(&Ex, c);
        }
        assert_eq!(
            seen(&out),
            vec![
                ("post".into(), Some(2), 100, vec![]),
                ("get".into(), Some(5), 5, vec![]),
            ]
        );
        assert_eq!(
            counters.unmatched_responses + counters.unmatched_requests,
            0
        );
        assert_eq!(counters.transactions, 2);
        assert_eq!(p.bytes, 0);
    }

    #[test]
    fn pipelined_then_open_and_extra_response() {
        let (mut out, mut counters) = (Vec::new(), Counters::default());
        let mut p = Pairing::new(limits(1_000));
        let c = &mut ctx(&mut out, &mut counters, 1);
        p.request(&Ex, msg(Ts(1), "a", 1), c);
        p.open(&Ex, msg(Ts(2), "b", 2), c);
        p.response(&Ex, msg(Ts(3), "", 0), c); // a
        assert_eq!(p.front().map(|m| m.1), Some("b"));
        p.response(&Ex, msg(Ts(4), "", 0), c); // b, waits
        p.response(&Ex, msg(Ts(5), "", 0), c); // nothing left to answer
        // A new request ends the open one, which is then published with its answer.
        p.request(&Ex, msg(Ts(6), "c", 3), c);
        p.drain(&Ex, c);
        assert_eq!(
            seen(c.out),
            vec![
                ("a".into(), Some(3), 1, vec![]),
                ("".into(), Some(5), 0, vec![NOTE_UNMATCHED_RESPONSE.into()]),
                ("b".into(), Some(4), 2, vec![]),
                ("c".into(), None, 3, vec![NOTE_UNMATCHED_REQUEST.into()]),
            ]
        );
        assert_eq!(p.bytes, 0);
    }

    #[test]
    fn open_requests_at_timeout_and_connection_end() {
        let (mut out, mut counters) = (Vec::new(), Counters::default());
        let mut p = Pairing::new(limits(100));
        {
            // Still streaming and unanswered: not timed out.
            let c = &mut ctx(&mut out, &mut counters, 1);
            p.open(&Ex, msg(Ts(1), "slow", 1), c);
            p.expire(&Ex, Ts(1_000), c);
            assert!(c.out.is_empty());
        }
        {
            // Completed late: the timeout runs from its end.
            let c = &mut ctx(&mut out, &mut counters, 1_000);
            p.complete(&Ex, c);
            p.expire(&Ex, Ts(1_050), c);
            assert!(c.out.is_empty());
            p.expire(&Ex, Ts(1_100), c);
            assert_eq!(c.out.len(), 1);
        }
        {
            // Answered but the body never ends: published as a pair once the
            // response has waited the timeout; later bytes find no open request.
            let c = &mut ctx(&mut out, &mut counters, 2_000);
            p.open(&Ex, msg(Ts(2_000), "stuck", 1), c);
            p.response(&Ex, msg(Ts(2_010), "", 0), c);
            p.expire(&Ex, Ts(2_109), c);
            assert_eq!(c.out.len(), 1);
            p.expire(&Ex, Ts(2_110), c);
            assert_eq!(c.out.len(), 2);
            assert!(p.opened_mut().is_none());
            p.complete(&Ex, c);
        }
        {
            // Connection end: answered open request as a pair, unanswered as
            // unmatched.
            let c = &mut ctx(&mut out, &mut counters, 3_000);
            p.open(&Ex, msg(Ts(3_000), "cut", 7), c);
            p.response(&Ex, msg(Ts(3_001), "", 0), c);
            p.drain(&Ex, c);
            p.open(&Ex, msg(Ts(3_002), "left", 8), c);
            p.drain(&Ex, c);
        }
        assert_eq!(
            seen(&out),
            vec![
                ("slow".into(), None, 1, vec![NOTE_UNMATCHED_REQUEST.into()]),
                ("stuck".into(), Some(2_010), 1, vec![]),
                ("cut".into(), Some(3_001), 7, vec![]),
                ("left".into(), None, 8, vec![NOTE_UNMATCHED_REQUEST.into()]),
            ]
        );
        assert_eq!(counters.unmatched_requests, 2);
        assert_eq!(counters.unmatched_responses, 0);
        assert_eq!(p.bytes, 0);
    }

    #[test]
    fn open_requests_are_bounded_like_the_rest() {
        let (mut out, mut counters) = (Vec::new(), Counters::default());
        let mut p = Pairing::new(Limits {
            max_messages: 2,
            ..limits(1_000)
        });
        let c = &mut ctx(&mut out, &mut counters, 1);
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            p.open(&Ex, msg(Ts(i as u64), name, 0), c);
        }
        // Each open completed the one before; the queue holds two.
        assert_eq!(p.len(), 2);
        assert_eq!(p.opened().map(|m| m.1), Some("d"));
        assert_eq!(c.counters.pairing_evictions, 2);
        let names: Vec<_> = seen(c.out).into_iter().map(|t| t.0).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn request_only_and_skipping_unanswered_requests() {
        let mut out = Vec::new();
        let mut counters = Counters::default();
        let mut ctx = Ctx::new(Ts(0), &mut out, &mut counters);
        let mut p = Pairing::new(Limits::default());
        request_only(&Ex, msg(Ts(1), "oneway", 0), &mut ctx);
        for (ts, m) in [(2, "a"), (3, "b"), (4, "c")] {
            p.request(&Ex, msg(Ts(ts), m, 0), &mut ctx);
        }
        // The oldest is answered, or no pending request is: nothing is skipped.
        assert_eq!(p.skip_unanswered(&Ex, |m| m.1 == "a", &mut ctx), 0);
        assert_eq!(p.skip_unanswered(&Ex, |m| m.1 == "z", &mut ctx), 0);
        assert_eq!(p.len(), 3);
        // The response answers c: a and b get none.
        assert_eq!(p.skip_unanswered(&Ex, |m| m.1 == "c", &mut ctx), 2);
        p.response(&Ex, msg(Ts(5), "", 0), &mut ctx);
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
        let mut ctx = Ctx::new(Ts(0), &mut out, &mut counters);
        let limits = Limits {
            max_messages: 8,
            max_bytes: usize::MAX,
            timeout: Duration::from_secs(1),
        };
        let mut p = Pairing::new(limits);
        p.request(&Ex, msg(Ts(1), "~ping", 0), &mut ctx);
        p.request(&Ex, msg(Ts(2), "a", 0), &mut ctx);
        p.request(&Ex, msg(Ts(3), "~stat", 0), &mut ctx);
        p.request(&Ex, msg(Ts(4), "~quit", 0), &mut ctx);
        // The first answer belongs to the ping: dropped; the second pairs with "a".
        p.response(&Ex, msg(Ts(5), "", 0), &mut ctx);
        p.response(&Ex, msg(Ts(6), "", 0), &mut ctx);
        p.response(&Ex, msg(Ts(7), "", 0), &mut ctx);
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
