//! Whole-or-prefix framing of length-prefixed messages, shared by the protocols whose
//! messages announce their length up front (MySQL packets, PostgreSQL messages,
//! framed Thrift).
//!
//! A message up to a protocol's whole limit is left to the engine until it has fully
//! arrived and is parsed in one piece. A larger one is parsed from its first bytes
//! only (the prefix, possibly empty) and the rest streams past uncopied: [`Skip`]
//! counts it down across calls and gaps, so the parser stays in step with the wire
//! and memory stays bounded whatever length the header claims.

/// How much of a message to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// Messages up to this many bytes are held whole.
    pub whole: usize,
    /// Bytes held of a larger message; the rest is skipped.
    pub prefix: usize,
}

impl Framing {
    /// Splits a message of `total` bytes into the bytes to hold and parse and the
    /// bytes to skip after them.
    pub fn split(&self, total: u64) -> (usize, u64) {
        match usize::try_from(total) {
            Ok(t) if t <= self.whole => (t, 0),
            _ => {
                // `take` is at most `total`, so it fits in both types.
                let take = (self.prefix as u64).min(total);
                (take as usize, total - take)
            }
        }
    }
}

/// Bytes of the current message still to pass over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skip(u64);

impl Skip {
    /// Starts passing over `n` bytes (replacing what was left to skip).
    pub fn start(&mut self, n: u64) {
        self.0 = n;
    }

    pub fn remaining(&self) -> u64 {
        self.0
    }

    /// Bytes are still to be skipped.
    pub fn active(&self) -> bool {
        self.0 > 0
    }

    /// Passes over what of the next `avail` bytes belongs to the skipped part and
    /// returns how many that is.
    pub fn pass(&mut self, avail: usize) -> usize {
        let n = self.0.min(avail as u64);
        self.0 -= n;
        n as usize
    }

    /// `len` bytes were lost. When they lay inside the skipped part (the parser is
    /// still in step with the wire), they are counted off and `true` is returned;
    /// otherwise nothing changes.
    pub fn lose(&mut self, len: u64) -> bool {
        if len <= self.0 {
            self.0 -= len;
            true
        } else {
            false
        }
    }

    /// Forgets what was left to skip.
    pub fn clear(&mut self) {
        self.0 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_holds_small_messages_whole_and_prefixes_large_ones() {
        let f = Framing {
            whole: 100,
            prefix: 10,
        };
        assert_eq!(f.split(0), (0, 0));
        assert_eq!(f.split(100), (100, 0));
        assert_eq!(f.split(101), (10, 91));
        assert_eq!(f.split(u64::MAX), (10, u64::MAX - 10));
        // Prefix as large as the whole limit (MySQL): the cut falls at the limit.
        let f = Framing {
            whole: 64,
            prefix: 64,
        };
        assert_eq!(f.split(64), (64, 0));
        assert_eq!(f.split(65), (64, 1));
        // No prefix: a large message is skipped entirely (framed Thrift).
        let f = Framing {
            whole: 8,
            prefix: 0,
        };
        assert_eq!(f.split(9), (0, 9));
        // A prefix larger than the whole limit never holds more than the message.
        let f = Framing {
            whole: 4,
            prefix: 16,
        };
        assert_eq!(f.split(5), (5, 0));
        assert_eq!(f.split(20), (16, 4));
    }

    #[test]
    fn skip_counts_down_across_calls() {
        let mut s = Skip::default();
        assert!(!s.active());
        assert_eq!(s.pass(10), 0);
        s.start(25);
        assert!(s.active());
        assert_eq!(s.pass(10), 10);
        assert_eq!(s.remaining(), 15);
        assert_eq!(s.pass(0), 0);
        assert_eq!(s.pass(100), 15);
        assert!(!s.active());
        assert_eq!(s.remaining(), 0);
    }

    #[test]
    fn skip_absorbs_gaps_inside_the_skipped_part_only() {
        let mut s = Skip::default();
        s.start(100);
        assert!(s.lose(40));
        assert_eq!(s.remaining(), 60);
        assert!(s.lose(60));
        assert!(!s.active());
        s.start(10);
        assert!(!s.lose(11));
        assert_eq!(s.remaining(), 10, "a gap past the message leaves the count");
        s.clear();
        assert!(!s.active());
        assert!(s.lose(0));
        assert!(!s.lose(1));
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut s = Skip::default();
        s.start(u64::MAX);
        assert_eq!(s.pass(usize::MAX), usize::MAX);
        assert!(s.lose(u64::MAX - usize::MAX as u64));
        assert!(!s.active());
    }
}
