//! Text taken from the traffic (or from a peer's answer) for events and logs: invalid
//! UTF-8 replaced by U+FFFD, cut to a byte cap on a character boundary, and marked
//! with [`ELLIPSIS`] where the caller shows that something was left out.
//!
//! The callers differ in three ways, each chosen by a parameter or by the function
//! used, so that every field keeps the exact text it has always had:
//! - how invalid UTF-8 is replaced ([`Replace`]): one U+FFFD per ill-formed sequence
//!   (Redis, PgSQL) or one per byte (MySQL, as Packetbeat's strings come out of its
//!   JSON encoder);
//! - what the cap counts: the text written ([`push_capped`], [`cap`], [`capped`]) or
//!   the bytes read from the wire ([`Capped`]);
//! - whether a cut is marked ([`cap`] and [`capped`] take the marker, [`Capped`]
//!   always marks, [`push_capped`] never does and tells the caller instead).
//!
//! Every function is linear in the bytes it keeps or reads, whatever the input.

use std::borrow::Cow;

/// Marker appended to text cut at its cap.
pub const ELLIPSIS: &str = "...";

/// How bytes that are not UTF-8 become text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// One U+FFFD per maximal ill-formed sequence (`String::from_utf8_lossy`).
    PerSequence,
    /// One U+FFFD per byte of an ill-formed sequence (Go's JSON encoder).
    PerByte,
}

/// Appends `b` to `out` as text, invalid UTF-8 replaced as `how` says.
pub fn push_lossy(out: &mut String, b: &[u8], how: Replace) {
    // Most text is valid UTF-8: one validation pass and one copy.
    if let Ok(s) = std::str::from_utf8(b) {
        out.push_str(s);
        return;
    }
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        let bad = chunk.invalid().len();
        if bad > 0 {
            // The bytes of a maximal ill-formed sequence after its first are
            // continuation bytes, each ill-formed on its own: per byte, every one of
            // them is a replacement.
            let n = match how {
                Replace::PerSequence => 1,
                Replace::PerByte => bad,
            };
            out.extend(std::iter::repeat_n('\u{FFFD}', n));
        }
    }
}

/// The text of `b` (see [`push_lossy`]).
pub fn lossy(b: &[u8], how: Replace) -> String {
    let mut s = String::with_capacity(b.len());
    push_lossy(&mut s, b, how);
    s
}

/// The largest index not above `max` that is a character boundary of `s` (`s.len()`
/// when `s` is shorter).
pub fn floor_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut end = max;
    // A character is at most 4 bytes: at most 3 steps back.
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `s` up to `max` bytes, cut on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    &s[..floor_boundary(s, max)]
}

/// `s` itself when it holds at most `max` bytes, else its first `max` bytes (cut on
/// a character boundary) followed by `marker`.
pub fn capped<'a>(s: &'a str, max: usize, marker: &str) -> Cow<'a, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let kept = cut(s, max);
    let mut out = String::with_capacity(kept.len() + marker.len());
    out.push_str(kept);
    out.push_str(marker);
    Cow::Owned(out)
}

/// When `s` holds more than `max` bytes: cuts it to `max` (on a character boundary),
/// appends `marker` and returns true.
pub fn cap(s: &mut String, max: usize, marker: &str) -> bool {
    if s.len() <= max {
        return false;
    }
    s.truncate(floor_boundary(s, max));
    s.push_str(marker);
    true
}

/// Appends `b` to `out` as text (invalid UTF-8 replaced as `how` says) as far as
/// `out` stays within `max` bytes, cut on a character boundary and not marked; only
/// the first bytes of `b` that can fit are read. Returns true when every byte of `b`
/// was read (its text may still have been cut, a replacement being longer than the
/// byte it replaces), false when `b` was cut or `out` was already full.
pub fn push_capped(out: &mut String, b: &[u8], max: usize, how: Replace) -> bool {
    if out.len() >= max {
        return false;
    }
    let room = max - out.len();
    push_lossy(out, &b[..b.len().min(room)], how);
    cap(out, max, "");
    b.len() <= room
}

/// The text of the first `max` bytes of `b` (see [`push_capped`]).
pub fn lossy_capped(b: &[u8], max: usize, how: Replace) -> String {
    let mut s = String::with_capacity(b.len().min(max));
    push_capped(&mut s, b, max, how);
    s
}

/// Bytes collected up to a cap, in pieces as they arrive; what does not fit is
/// dropped, and the text is then marked with [`ELLIPSIS`]. The cap counts bytes of
/// the wire, not of the text.
#[derive(Clone, Debug, Default)]
pub struct Capped {
    buf: Vec<u8>,
    cut: bool,
}

impl Capped {
    /// Adds `b`, as far as the bytes kept stay within `cap`.
    pub fn push(&mut self, b: &[u8], cap: usize) {
        if self.cut || b.is_empty() {
            return;
        }
        let room = cap.saturating_sub(self.buf.len());
        if b.len() <= room {
            self.buf.extend_from_slice(b);
        } else {
            self.buf.extend_from_slice(&b[..room]);
            self.cut = true;
        }
    }

    /// Marks the text as cut (something was left out before it reached the cap).
    pub fn mark_cut(&mut self) {
        self.cut = true;
    }

    pub fn is_cut(&self) -> bool {
        self.cut
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The text (one U+FFFD per ill-formed sequence), with [`ELLIPSIS`] when it was
    /// cut. When the bytes kept are UTF-8 but for a character split by the cut, that
    /// character is dropped rather than replaced.
    pub fn into_string(self) -> String {
        let mut buf = self.buf;
        if self.cut
            && let Err(e) = std::str::from_utf8(&buf)
            && e.error_len().is_none()
        {
            buf.truncate(e.valid_up_to());
        }
        let mut s = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => lossy(e.as_bytes(), Replace::PerSequence),
        };
        if self.cut {
            s.push_str(ELLIPSIS);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-byte replacement written the plain way: re-decode after each bad byte.
    fn per_byte_reference(b: &[u8]) -> String {
        let mut out = String::new();
        let mut rest = b;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&rest[..good]).unwrap());
                    out.push('\u{FFFD}');
                    rest = &rest[good + 1..];
                }
            }
        }
        out
    }

    /// Byte strings rich in UTF-8 lead, continuation and invalid bytes.
    fn hostile_inputs() -> Vec<Vec<u8>> {
        let alphabet: &[u8] = &[
            b'a', b'\'', 0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xED,
            0xA0, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x90, 0xF5, 0xFF,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = vec![Vec::new(), b"plain".to_vec(), "h\u{e9}\u{1F600}".into()];
        for len in 1..40 {
            for _ in 0..50 {
                let v = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        alphabet[(x % alphabet.len() as u64) as usize]
                    })
                    .collect();
                out.push(v);
            }
        }
        out
    }

    #[test]
    fn replacement_per_sequence_or_per_byte() {
        let b = b"a\xE2\x82b\xFF\xF0\x9F\x98";
        assert_eq!(lossy(b, Replace::PerSequence), "a\u{FFFD}b\u{FFFD}\u{FFFD}");
        assert_eq!(
            lossy(b, Replace::PerByte),
            "a\u{FFFD}\u{FFFD}b\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(lossy("h\u{e9}".as_bytes(), Replace::PerByte), "h\u{e9}");
        // Surrogates and over-long forms are ill-formed byte by byte.
        assert_eq!(
            lossy(b"\xED\xA0\x80\xC0\xAF", Replace::PerSequence),
            "\u{FFFD}".repeat(5)
        );
        for b in hostile_inputs() {
            assert_eq!(
                lossy(&b, Replace::PerSequence),
                String::from_utf8_lossy(&b),
                "{b:x?}"
            );
            assert_eq!(
                lossy(&b, Replace::PerByte),
                per_byte_reference(&b),
                "{b:x?}"
            );
        }
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let s = "ab\u{e9}\u{20AC}\u{1F600}"; // 2 + 2 + 3 + 4 bytes
        let ends: Vec<usize> = (0..=12).map(|m| floor_boundary(s, m)).collect();
        assert_eq!(ends, [0, 1, 2, 2, 4, 4, 4, 7, 7, 7, 7, 11, 11]);
        assert_eq!(cut(s, 0), "");
        assert_eq!(cut(s, 3), "ab");
        assert_eq!(cut(s, 100), s);
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn capped_borrows_what_fits_and_marks_what_does_not() {
        assert!(matches!(capped("abc", 3, ELLIPSIS), Cow::Borrowed("abc")));
        assert_eq!(capped("abcd", 3, ELLIPSIS), "abc...");
        assert_eq!(capped("a\u{e9}", 2, ELLIPSIS), "a...");
        assert_eq!(capped("\u{e9}", 0, ELLIPSIS), "...");
        assert_eq!(capped("", 0, ELLIPSIS), "");
        let mut s = String::from("\u{20AC}\u{20AC}");
        assert!(!cap(&mut s, 6, ELLIPSIS));
        assert!(cap(&mut s, 5, ELLIPSIS));
        assert_eq!(s, "\u{20AC}...");
        let mut s = String::from("x");
        assert!(cap(&mut s, 0, ""));
        assert_eq!(s, "");
    }

    #[test]
    fn push_capped_counts_the_text_written() {
        let mut s = String::from("ab");
        assert!(push_capped(&mut s, b"cd", 4, Replace::PerSequence));
        assert_eq!(s, "abcd");
        // Full: nothing read, even of an empty piece.
        assert!(!push_capped(&mut s, b"", 4, Replace::PerSequence));
        // A character split by the cap: its replacement does not fit either.
        let mut s = String::new();
        assert!(!push_capped(
            &mut s,
            "a\u{e9}".as_bytes(),
            2,
            Replace::PerSequence
        ));
        assert_eq!(s, "a");
        // Three bytes of a four-byte character: the replacement fits exactly.
        let mut s = String::new();
        assert!(!push_capped(
            &mut s,
            "\u{1F600}".as_bytes(),
            3,
            Replace::PerSequence
        ));
        assert_eq!(s, "\u{FFFD}");
        // Every byte read, but the replacements are longer than the bytes.
        let mut s = String::new();
        assert!(push_capped(&mut s, b"\xFF\xFF", 4, Replace::PerByte));
        assert_eq!(s, "\u{FFFD}");
        assert_eq!(
            lossy_capped(b"\xFF\xFF", 4, Replace::PerSequence),
            "\u{FFFD}"
        );
        assert_eq!(lossy_capped(b"abc", 0, Replace::PerByte), "");
        for b in hostile_inputs() {
            for max in 0..12 {
                for how in [Replace::PerSequence, Replace::PerByte] {
                    let got = lossy_capped(&b, max, how);
                    let whole = lossy(&b[..b.len().min(max)], how);
                    assert!(got.len() <= max);
                    assert!(whole.starts_with(&got), "{b:x?} {max}");
                    assert_eq!(got, cut(&whole, max));
                }
            }
        }
    }

    #[test]
    fn capped_bytes_count_the_wire_and_mark_the_cut() {
        let mut c = Capped::default();
        c.push(b"ab", 4);
        c.push(b"", 4);
        assert!(!c.is_cut());
        c.push("c\u{e9}".as_bytes(), 4);
        assert!(c.is_cut());
        assert_eq!(c.as_bytes(), b"abc\xC3");
        c.push(b"more", 100);
        assert_eq!(c.as_bytes(), b"abc\xC3");
        // The split character is dropped, not replaced.
        assert_eq!(c.into_string(), "abc...");
        // With invalid bytes before it, the split character is replaced too.
        let mut c = Capped::default();
        c.push(b"\xFFa\xE2\x82\xAC", 4);
        assert_eq!(c.into_string(), "\u{FFFD}a\u{FFFD}...");
        // Replacements may make the text longer than the cap.
        let mut c = Capped::default();
        c.push(b"\xFF\xFF", 2);
        assert_eq!(c.clone().into_string(), "\u{FFFD}\u{FFFD}");
        c.mark_cut();
        assert_eq!(c.into_string(), "\u{FFFD}\u{FFFD}...");
        let mut c = Capped::default();
        c.push(b"x", 0);
        assert_eq!(c.into_string(), "...");
        assert_eq!(Capped::default().into_string(), "");
    }

    #[test]
    fn huge_input_is_read_only_as_far_as_the_cap() {
        let huge = vec![0xFFu8; 8 << 20];
        let t = std::time::Instant::now();
        let mut c = Capped::default();
        for piece in huge.chunks(7) {
            c.push(piece, 1024);
        }
        assert!(c.capacity() <= 2048);
        let s = c.into_string();
        assert_eq!(s.len(), 1024 * 3 + ELLIPSIS.len());
        let mut out = String::new();
        for piece in huge.chunks(7) {
            push_capped(&mut out, piece, 1024, Replace::PerByte);
        }
        assert_eq!(out.len(), 1023);
        assert_eq!(lossy_capped(&huge, 10, Replace::PerSequence).len(), 9);
        assert_eq!(capped(&"\u{e9}".repeat(4 << 20), 5, "").len(), 4);
        assert_eq!(lossy(&huge, Replace::PerByte).len(), huge.len() * 3);
        // Linear work: well under a second in a debug build on any machine, where
        // re-scanning the text for every piece would take minutes.
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
    }
}
