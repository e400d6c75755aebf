//! Packet time. Every clock in wirebeat (timeouts, expiry, `@timestamp`) is derived
//! from packet timestamps, so replaying a capture gives the same events every time.

use std::fmt;

/// Nanoseconds since the Unix epoch, as stamped on a captured packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    pub const ZERO: Ts = Ts(0);

    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Ts {
        Ts(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    pub fn nanos(self) -> u64 {
        self.0
    }

    pub fn saturating_add(self, d: std::time::Duration) -> Ts {
        Ts(self
            .0
            .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64))
    }

    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Ts) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Writes the RFC 3339 UTC form with millisecond precision, as Packetbeat does:
    /// `2026-11-24T22:27:38.123Z`.
    pub fn write_rfc3339_millis(self, out: &mut Vec<u8>) {
        let secs = self.0 / 1_000_000_000;
        let millis = (self.0 % 1_000_000_000) / 1_000_000;
        // Events come in time order, several per second: the text of the last
        // second is kept, and only the milliseconds are written again.
        thread_local! {
            static LAST: std::cell::Cell<(u64, [u8; 24])> =
                const { std::cell::Cell::new((u64::MAX, [0; 24])) };
        }
        let (last, mut t) = LAST.get();
        if last == secs {
            put_digits(&mut t[20..23], millis);
            out.extend_from_slice(&t);
            return;
        }
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
        // A `u64` of nanoseconds ends in 2554: the year always has four digits,
        // so the text has a fixed layout and is copied in one piece.
        let mut t = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut t[0..4], y as u64);
        put_digits(&mut t[5..7], m as u64);
        put_digits(&mut t[8..10], d as u64);
        put_digits(&mut t[11..13], hh);
        put_digits(&mut t[14..16], mm);
        put_digits(&mut t[17..19], ss);
        put_digits(&mut t[20..23], millis);
        LAST.set((secs, t));
        out.extend_from_slice(&t);
    }

    /// UTC calendar date `(year, month, day)` of this instant.
    pub fn utc_date(self) -> (i64, u32, u32) {
        civil_from_days((self.0 / 1_000_000_000 / 86_400) as i64)
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(24);
        self.write_rfc3339_millis(&mut v);
        f.write_str(std::str::from_utf8(&v).unwrap_or("?"))
    }
}

/// Writes the last `to.len()` decimal digits of `v` into `to`, zero-padded.
#[inline]
fn put_digits(to: &mut [u8], mut v: u64) {
    for d in to.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Ts(0).to_string(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z
        let t = Ts::from_secs_nanos(951_827_696, 789_000_123);
        assert_eq!(t.to_string(), "2000-02-29T12:34:56.789Z");
        assert_eq!(
            Ts::from_secs_nanos(1_795_991_258, 0).to_string(),
            "2026-11-29T22:27:38.000Z"
        );
        assert_eq!(t.utc_date(), (2000, 2, 29));
        // The same second again, then back: the kept text of the last second
        // never leaks into another.
        let same = Ts::from_secs_nanos(951_827_696, 5_000_000);
        assert_eq!(same.to_string(), "2000-02-29T12:34:56.005Z");
        assert_eq!(
            Ts::from_secs_nanos(951_827_697, 0).to_string(),
            "2000-02-29T12:34:57.000Z"
        );
        assert_eq!(t.to_string(), "2000-02-29T12:34:56.789Z");
        // The last instant a `Ts` holds still has a four-digit year.
        assert_eq!(Ts(u64::MAX).to_string(), "2554-07-21T23:34:33.709Z");
    }
}
