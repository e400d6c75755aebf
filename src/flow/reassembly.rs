//! Per-direction TCP stream reassembly.
//!
//! In-order bytes go straight to the consumer; segments ahead of the expected sequence
//! number are buffered (bounded per stream and per worker), retransmissions are dropped
//! and overlaps trimmed. A hole that is never filled becomes a [`Chunk::Gap`]: when
//! the buffering limits are hit, when the peer acknowledges data we never saw, or when
//! the stream is flushed (FIN, RST, idle expiry, end of input).

use crate::protos::Chunk;
use crate::stats::Counters;

/// Buffering limits of one direction.
#[derive(Clone, Copy, Debug)]
pub struct ReasmLimits {
    pub max_ooo_bytes: usize,
    pub max_ooo_segments: usize,
    /// Out-of-order bytes allowed across every stream of a worker.
    pub max_ooo_total_bytes: usize,
}

impl Default for ReasmLimits {
    fn default() -> Self {
        ReasmLimits {
            max_ooo_bytes: 256 * 1024,
            max_ooo_segments: 256,
            max_ooo_total_bytes: 32 << 20,
        }
    }
}

struct Seg {
    seq: u32,
    data: Vec<u8>,
    /// Bytes of this segment cut by the snaplen (follow `data` on the wire).
    missing: u32,
}

impl Seg {
    fn wire_len(&self) -> u32 {
        (self.data.len() as u32).wrapping_add(self.missing)
    }
}

/// Signed distance from `b` to `a` in sequence space.
#[inline]
fn diff(a: u32, b: u32) -> i64 {
    a.wrapping_sub(b) as i32 as i64
}

#[derive(Default)]
pub struct Reassembler {
    /// Next expected sequence number; `None` until the first SYN or data segment.
    next: Option<u32>,
    /// Sequence number of the SYN, and where the stream started (the SYN, or the
    /// first segment of a stream picked up mid-connection).
    isn: Option<u32>,
    first: Option<u32>,
    ooo: Vec<Seg>,
    ooo_bytes: usize,
    fin_seq: Option<u32>,
    fin_done: bool,
    /// The sequence range most recently reported lost (`[start, end)`): a segment
    /// that falls in it later arrived late, it is not a retransmission.
    lost: Option<(u32, u32)>,
}

impl Reassembler {
    pub fn fin_done(&self) -> bool {
        self.fin_done
    }

    pub fn buffered_bytes(&self) -> usize {
        self.ooo_bytes
    }

    pub fn started(&self) -> bool {
        self.next.is_some()
    }

    /// The sequence space this direction used: its SYN's sequence number if one was
    /// seen, where it started, and the first sequence number after everything it
    /// sent (past its FIN). `None` when it sent nothing.
    pub fn span(&self) -> Option<(Option<u32>, u32, u32)> {
        let first = self.first?;
        let mut end = self.next.unwrap_or(first);
        if let Some(f) = self.fin_seq {
            let after_fin = f.wrapping_add(1);
            if diff(after_fin, end) > 0 {
                end = after_fin;
            }
        }
        Some((self.isn, first, end))
    }

    /// A SYN was seen with this sequence number. Returns false when the stream was
    /// already running at another position (the tuple is being reused).
    pub fn syn(&mut self, seq: u32) -> bool {
        let want = seq.wrapping_add(1);
        match self.next {
            None => {
                self.next = Some(want);
                self.isn = Some(seq);
                self.first = Some(seq);
                true
            }
            Some(n) => n == want || diff(n, want) > 0 && diff(n, want) < 1 << 20,
        }
    }

    /// Handles one segment of this direction.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        missing: u32,
        fin: bool,
        limits: &ReasmLimits,
        total_ooo: &mut usize,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        if self.fin_done {
            return;
        }
        let wire_len = (data.len() as u32).wrapping_add(missing);
        let next = *self.next.get_or_insert(seq);
        self.first.get_or_insert(seq);
        if fin {
            self.fin_seq = Some(seq.wrapping_add(wire_len));
        }
        if wire_len > 0 {
            let rel = diff(seq, next);
            if rel <= 0 {
                let end = rel + wire_len as i64;
                if end <= 0 {
                    if self.was_lost(seq, wire_len) {
                        counters.tcp_late_segments += 1;
                    } else {
                        counters.tcp_retransmits += 1;
                    }
                } else {
                    if rel < 0 {
                        counters.tcp_overlaps += 1;
                    }
                    self.deliver(seq, data, missing, counters, emit);
                    self.drain_ooo(total_ooo, counters, emit);
                }
            } else {
                let over = self.ooo.len() >= limits.max_ooo_segments
                    || self.ooo_bytes + data.len() > limits.max_ooo_bytes
                    || *total_ooo + data.len() > limits.max_ooo_total_bytes;
                if over {
                    // The hole is not going to be filled within our limits: declare it
                    // lost, deliver what is buffered, then this segment.
                    counters.tcp_ooo_dropped += 1;
                    self.flush(total_ooo, counters, emit);
                    if !self.fin_done {
                        let n = self.next.unwrap_or(seq);
                        let hole = diff(seq, n);
                        if hole > 0 {
                            self.gap(hole as u64, counters, emit);
                        }
                        self.deliver(seq, data, missing, counters, emit);
                    }
                } else {
                    counters.tcp_ooo_buffered += 1;
                    self.insert(seq, data, missing, total_ooo);
                }
            }
        }
        self.check_fin(counters, emit);
    }

    /// The peer acknowledged up to `ack`. If that covers a hole and the buffered
    /// segment after it, the hole's bytes reached the peer but not us: they are lost.
    pub fn peer_ack(
        &mut self,
        ack: u32,
        total_ooo: &mut usize,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        // Require the ACK to cover the first buffered segment too, not just the hole:
        // a capture may reorder an ACK ahead of the segment it acknowledges.
        let covers = |s: &Seg| diff(ack, s.seq.wrapping_add(s.wire_len())) >= 0;
        let (Some(next), Some(first)) = (self.next, self.ooo.first()) else {
            return;
        };
        if diff(ack, next) > 0 && covers(first) {
            while let (Some(n), Some(first)) = (self.next, self.ooo.first()) {
                if !covers(first) {
                    break;
                }
                let hole = diff(first.seq, n);
                if hole > 0 {
                    self.gap(hole as u64, counters, emit);
                }
                self.drain_ooo(total_ooo, counters, emit);
            }
            self.check_fin(counters, emit);
        }
    }

    /// Declares every remaining hole lost and delivers everything buffered, then the
    /// FIN if one was seen. Used at connection end and at the buffering limits.
    pub fn flush(
        &mut self,
        total_ooo: &mut usize,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        while let (Some(n), Some(first)) = (self.next, self.ooo.first()) {
            let hole = diff(first.seq, n);
            if hole > 0 {
                self.gap(hole as u64, counters, emit);
            }
            self.drain_ooo(total_ooo, counters, emit);
        }
        if let (Some(n), Some(f)) = (self.next, self.fin_seq) {
            let hole = diff(f, n);
            if hole > 0 && !self.fin_done {
                self.gap(hole as u64, counters, emit);
            }
        }
        self.check_fin(counters, emit);
    }

    /// Releases buffered memory without delivering it (connection dropped).
    pub fn discard(&mut self, total_ooo: &mut usize) {
        *total_ooo = total_ooo.saturating_sub(self.ooo_bytes);
        self.ooo.clear();
        self.ooo_bytes = 0;
    }

    fn gap(
        &mut self,
        len: u64,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        counters.tcp_gaps += 1;
        counters.tcp_gap_bytes += len;
        emit(Chunk::Gap(len), counters);
        if let Some(n) = self.next.as_mut() {
            let start = *n;
            *n = n.wrapping_add(len as u32);
            self.lost = match self.lost {
                Some((a, b)) if b == start => Some((a, *n)),
                _ => Some((start, *n)),
            };
        }
    }

    /// Whether `[seq, seq + len)` overlaps the range last reported lost.
    fn was_lost(&self, seq: u32, len: u32) -> bool {
        self.lost
            .is_some_and(|(a, b)| diff(seq, b) < 0 && diff(seq.wrapping_add(len), a) > 0)
    }

    /// Delivers the part of a segment at or after `next`. The caller checked that the
    /// segment ends after `next`.
    fn deliver(
        &mut self,
        seq: u32,
        data: &[u8],
        missing: u32,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        let next = self.next.unwrap_or(seq);
        let skip = (-diff(seq, next)).max(0) as u64;
        let dlen = data.len() as u64;
        if skip < dlen {
            emit(Chunk::Data(&data[skip as usize..]), counters);
        }
        let wire = dlen + missing as u64;
        let lost = wire.saturating_sub(skip.max(dlen));
        if lost > 0 {
            // Snaplen cut this segment: its tail never reached us.
            counters.tcp_gaps += 1;
            counters.tcp_gap_bytes += lost;
            emit(Chunk::Gap(lost), counters);
        }
        self.next = Some(seq.wrapping_add(wire as u32));
    }

    fn insert(&mut self, seq: u32, data: &[u8], missing: u32, total_ooo: &mut usize) {
        let next = self.next.unwrap_or(seq);
        let rel = diff(seq, next);
        let pos = self.ooo.partition_point(|s| diff(s.seq, next) < rel);
        if let Some(s) = self.ooo.get(pos)
            && s.seq == seq
            && s.wire_len() >= (data.len() as u32).wrapping_add(missing)
        {
            return; // duplicate of a buffered segment
        }
        self.ooo_bytes += data.len();
        *total_ooo += data.len();
        self.ooo.insert(
            pos,
            Seg {
                seq,
                data: data.to_vec(),
                missing,
            },
        );
    }

    /// Delivers buffered segments that have become in-order.
    fn drain_ooo(
        &mut self,
        total_ooo: &mut usize,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        let mut taken = 0;
        while taken < self.ooo.len() {
            let next = self.next.unwrap_or(self.ooo[taken].seq);
            let s = &self.ooo[taken];
            if diff(s.seq, next) > 0 {
                break;
            }
            let end = diff(s.seq, next) + s.wire_len() as i64;
            if end <= 0 {
                counters.tcp_retransmits += 1;
            } else {
                if diff(s.seq, next) < 0 {
                    counters.tcp_overlaps += 1;
                }
                let (seq, missing) = (s.seq, s.missing);
                let data = std::mem::take(&mut self.ooo[taken].data);
                self.ooo_bytes -= data.len();
                *total_ooo = total_ooo.saturating_sub(data.len());
                self.deliver(seq, &data, missing, counters, emit);
                taken += 1;
                continue;
            }
            let len = self.ooo[taken].data.len();
            self.ooo_bytes -= len;
            *total_ooo = total_ooo.saturating_sub(len);
            taken += 1;
        }
        if taken > 0 {
            self.ooo.drain(..taken);
        }
    }

    fn check_fin(
        &mut self,
        counters: &mut Counters,
        emit: &mut dyn FnMut(Chunk<'_>, &mut Counters),
    ) {
        if self.fin_done || !self.ooo.is_empty() {
            return;
        }
        if let (Some(n), Some(f)) = (self.next, self.fin_seq)
            && diff(f, n) <= 0
        {
            self.fin_done = true;
            emit(Chunk::Fin, counters);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Out {
        D(Vec<u8>),
        G(u64),
        F,
    }

    struct H {
        r: Reassembler,
        total: usize,
        c: Counters,
        out: Vec<Out>,
        limits: ReasmLimits,
    }

    impl H {
        fn new() -> H {
            H {
                r: Reassembler::default(),
                total: 0,
                c: Counters::default(),
                out: vec![],
                limits: ReasmLimits::default(),
            }
        }
        fn seg(&mut self, seq: u32, d: &[u8], fin: bool) {
            let out = &mut self.out;
            self.r.segment(
                seq,
                d,
                0,
                fin,
                &self.limits,
                &mut self.total,
                &mut self.c,
                &mut |c, _| push(out, c),
            );
        }
        fn ack(&mut self, ack: u32) {
            let out = &mut self.out;
            self.r
                .peer_ack(ack, &mut self.total, &mut self.c, &mut |c, _| push(out, c));
        }
        fn flush(&mut self) {
            let out = &mut self.out;
            self.r
                .flush(&mut self.total, &mut self.c, &mut |c, _| push(out, c));
        }
        fn data(&self) -> Vec<u8> {
            self.out
                .iter()
                .flat_map(|o| if let Out::D(d) = o { d.clone() } else { vec![] })
                .collect()
        }
    }

    fn push(out: &mut Vec<Out>, c: Chunk<'_>) {
        out.push(match c {
            Chunk::Data(d) => Out::D(d.to_vec()),
            Chunk::Gap(n) => Out::G(n),
            Chunk::Fin => Out::F,
        })
    }

    #[test]
    fn in_order_ooo_retransmit_overlap_fin() {
        let mut h = H::new();
        assert!(h.r.syn(99));
        h.seg(100, b"abc", false);
        h.seg(106, b"ghi", true); // ahead: buffered
        assert_eq!(h.c.tcp_ooo_buffered, 1);
        h.seg(100, b"abc", false); // retransmission
        h.seg(102, b"cdef", false); // overlap, fills the hole
        assert_eq!(h.data(), b"abcdefghi");
        assert_eq!(h.out.last(), Some(&Out::F));
        assert_eq!(h.c.tcp_retransmits, 1);
        assert!(h.c.tcp_overlaps >= 1);
        assert_eq!(h.total, 0);
    }

    #[test]
    fn hole_becomes_gap_on_flush_and_on_ack() {
        let mut h = H::new();
        h.seg(1000, b"aa", false);
        h.seg(1010, b"bb", false);
        h.flush();
        assert_eq!(
            h.out,
            vec![Out::D(b"aa".to_vec()), Out::G(8), Out::D(b"bb".to_vec())]
        );

        let mut h = H::new();
        h.seg(1000, b"aa", false);
        h.seg(1010, b"bb", false);
        h.ack(1010); // covers the hole but not the buffered segment: nothing yet
        assert_eq!(h.out.len(), 1);
        h.ack(1012);
        assert_eq!(
            h.out,
            vec![Out::D(b"aa".to_vec()), Out::G(8), Out::D(b"bb".to_vec())]
        );
        assert_eq!(h.c.tcp_gaps, 1);
    }

    #[test]
    fn late_originals_are_not_retransmissions() {
        // The hole 1002..1010 is given up (flush); its bytes arriving afterwards are
        // late, while bytes delivered twice are a retransmission.
        let mut h = H::new();
        h.seg(1000, b"aa", false);
        h.seg(1010, b"bb", false);
        h.flush();
        h.seg(1004, b"xx", false); // inside the lost range
        assert_eq!(h.c.tcp_late_segments, 1);
        assert_eq!(h.c.tcp_retransmits, 0);
        h.seg(1010, b"bb", false); // delivered already
        assert_eq!(h.c.tcp_retransmits, 1);
        h.seg(1000, b"aa", false);
        assert_eq!(h.c.tcp_retransmits, 2);
        assert_eq!(h.c.tcp_late_segments, 1);
        // A hole proved lost by the peer's ACK counts the same way.
        let mut h = H::new();
        h.seg(1000, b"aa", false);
        h.seg(1010, b"bb", false);
        h.ack(1012);
        h.seg(1002, b"12345678", false);
        assert_eq!((h.c.tcp_late_segments, h.c.tcp_retransmits), (1, 0));
    }

    #[test]
    fn limits_force_gap() {
        let mut h = H::new();
        h.limits.max_ooo_segments = 2;
        h.seg(0, b"a", false);
        h.seg(10, b"b", false);
        h.seg(20, b"c", false);
        h.seg(30, b"d", false); // over the limit
        assert_eq!(h.c.tcp_ooo_dropped, 1);
        assert_eq!(h.data(), b"abcd");
        assert_eq!(h.total, 0);
    }

    #[test]
    fn sequence_wraps() {
        let mut h = H::new();
        h.seg(u32::MAX - 1, b"xy", false);
        h.seg(2, b"w", false);
        h.seg(0, b"zv", false);
        assert_eq!(h.data(), b"xyzvw");
    }

    #[test]
    fn snaplen_cut_is_a_gap() {
        let mut h = H::new();
        let out = &mut h.out;
        h.r.segment(
            0,
            b"ab",
            3,
            false,
            &h.limits,
            &mut h.total,
            &mut h.c,
            &mut |c, _| push(out, c),
        );
        h.seg(5, b"c", false);
        assert_eq!(
            h.out,
            vec![Out::D(b"ab".to_vec()), Out::G(3), Out::D(b"c".to_vec())]
        );
    }

    #[test]
    fn random_segments_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut h = H::new();
        h.limits.max_ooo_segments = 8;
        for _ in 0..20000 {
            let seq = (rnd() % 5000) as u32;
            let len = (rnd() % 40) as usize;
            let fin = rnd() % 50 == 0;
            h.seg(seq, &vec![1u8; len], fin);
            if rnd() % 10 == 0 {
                h.ack((rnd() % 6000) as u32);
            }
            if h.out.len() > 1000 {
                h.out.clear();
            }
        }
        h.flush();
        assert!(h.r.buffered_bytes() <= h.limits.max_ooo_bytes);
    }
}
