//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes and time.
//!
//! Overlaps are resolved first-wins: bytes already received are never overwritten,
//! so duplicates are harmless and a later overlapping fragment cannot rewrite data
//! (the classic evasion trick). A train whose end lies beyond the largest possible
//! datagram, whose last fragment disagrees with data already seen, or that is split
//! into too many pieces is dropped whole.

use std::collections::HashMap;
use std::net::IpAddr;

use super::DefragLimits;
use crate::stats::Counters;
use crate::time::Ts;

/// Largest number of disjoint received ranges kept for one datagram.
const MAX_RANGES: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    /// IPv4 protocol (part of the RFC 791 key); 0 for IPv6.
    pub proto: u8,
}

struct Datagram {
    first: Ts,
    buf: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and non-adjacent.
    ranges: Vec<(u32, u32)>,
    /// Payload length, known once the last fragment has arrived.
    total: Option<u32>,
    frags: u64,
    /// Next header from the first fragment (IPv6) or the protocol (IPv4).
    next: Option<u8>,
    vlan: Option<u16>,
}

/// A completed datagram: its payload is in `Defrag::assembled`.
pub(crate) struct Done {
    pub next: u8,
    pub vlan: Option<u16>,
}

/// One fragment as seen on the wire.
pub(crate) struct Frag<'a> {
    pub key: FragKey,
    pub ts: Ts,
    /// Byte offset of `data` in the datagram's fragmentable part.
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
    /// Protocol / next header, meaningful when `offset == 0`.
    pub next: u8,
    pub vlan: Option<u16>,
    /// Largest allowed end offset of the fragmentable part.
    pub max_end: usize,
}

pub(crate) struct Defrag {
    limits: DefragLimits,
    map: HashMap<FragKey, Datagram, foldhash::fast::RandomState>,
    bytes: usize,
    oldest: Ts,
    /// Payload of the last completed datagram.
    pub assembled: Vec<u8>,
}

impl Defrag {
    pub fn new(limits: DefragLimits) -> Defrag {
        Defrag {
            limits,
            map: HashMap::default(),
            bytes: 0,
            oldest: Ts::ZERO,
            assembled: Vec::new(),
        }
    }

    /// Datagrams waiting for more fragments.
    pub fn pending(&self) -> usize {
        self.map.len()
    }

    /// Bytes held by incomplete datagrams.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Cheap check called on every packet.
    #[inline]
    pub fn maybe_expire(&mut self, now: Ts, c: &mut Counters) {
        if !self.map.is_empty() && now.since(self.oldest) > self.limits.timeout.as_nanos() as u64 {
            self.expire(now, c);
        }
    }

    pub fn expire(&mut self, now: Ts, c: &mut Counters) {
        if self.map.is_empty() {
            return;
        }
        let timeout = self.limits.timeout.as_nanos().min(u64::MAX as u128) as u64;
        let mut oldest = Ts(u64::MAX);
        let mut freed = 0usize;
        self.map.retain(|_, d| {
            if now.since(d.first) > timeout {
                c.ip_fragments_dropped += d.frags;
                freed += d.buf.len();
                false
            } else {
                oldest = oldest.min(d.first);
                true
            }
        });
        self.bytes -= freed;
        self.oldest = oldest;
    }

    fn drop_datagram(&mut self, key: &FragKey, c: &mut Counters) {
        if let Some(d) = self.map.remove(key) {
            c.ip_fragments_dropped += d.frags;
            self.bytes -= d.buf.len();
        }
    }

    /// Evicts the oldest datagram other than `keep`. False if there is none.
    fn evict_oldest(&mut self, keep: Option<&FragKey>, c: &mut Counters) -> bool {
        let victim = self
            .map
            .iter()
            .filter(|(k, _)| Some(*k) != keep)
            .min_by_key(|(_, d)| d.first)
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                self.drop_datagram(&k, c);
                true
            }
            None => false,
        }
    }

    /// Adds one fragment (already counted in `ip_fragments`). Returns the completed
    /// datagram's metadata when this fragment completes it.
    pub fn insert(&mut self, f: Frag<'_>, c: &mut Counters) -> Option<Done> {
        let end = f.offset + f.data.len();
        if end > f.max_end {
            // The train cannot form a valid datagram.
            c.ip_fragments_dropped += 1;
            self.drop_datagram(&f.key, c);
            return None;
        }
        if f.more && (f.data.is_empty() || !f.data.len().is_multiple_of(8)) {
            c.ip_fragments_dropped += 1;
            return None;
        }
        if !self.map.contains_key(&f.key) {
            while self.map.len() >= self.limits.max_datagrams.max(1) {
                if !self.evict_oldest(None, c) {
                    break;
                }
            }
            if self.map.is_empty() || f.ts < self.oldest {
                self.oldest = f.ts;
            }
            self.map.insert(
                f.key,
                Datagram {
                    first: f.ts,
                    buf: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                    frags: 0,
                    next: None,
                    vlan: f.vlan,
                },
            );
        }
        // Room for the bytes this fragment adds.
        let have = self.map.get(&f.key).map_or(0, |d| d.buf.len());
        if end > have {
            let grow = end - have;
            while self.bytes + grow > self.limits.max_bytes {
                if !self.evict_oldest(Some(&f.key), c) {
                    break;
                }
            }
            if self.bytes + grow > self.limits.max_bytes {
                c.ip_fragments_dropped += 1;
                self.drop_datagram(&f.key, c);
                return None;
            }
        }
        let d = self.map.get_mut(&f.key)?;
        d.frags += 1;
        let (start, end32) = (f.offset as u32, end as u32);
        let consistent = match d.total {
            Some(t) => end32 <= t && (f.more || end32 == t),
            None => f.more || d.ranges.last().is_none_or(|r| r.1 <= end32),
        };
        if !consistent {
            self.drop_datagram(&f.key, c);
            return None;
        }
        if !f.more {
            d.total = Some(end32);
        }
        if end > d.buf.len() {
            let grow = end - d.buf.len();
            d.buf.reserve_exact(grow);
            d.buf.resize(end, 0);
            self.bytes += grow;
        }
        // Copy only the bytes not yet received (first wins).
        let mut cur = start;
        for &(s, e) in &d.ranges {
            if e <= cur {
                continue;
            }
            if s >= end32 {
                break;
            }
            if s > cur {
                let (a, b) = (cur as usize, s as usize);
                d.buf[a..b].copy_from_slice(&f.data[a - f.offset..b - f.offset]);
            }
            cur = cur.max(e);
        }
        if cur < end32 {
            let a = cur as usize;
            d.buf[a..end].copy_from_slice(&f.data[a - f.offset..]);
        }
        add_range(&mut d.ranges, start, end32);
        if f.offset == 0 && d.next.is_none() {
            d.next = Some(f.next);
        }
        if d.ranges.len() > MAX_RANGES {
            self.drop_datagram(&f.key, c);
            return None;
        }
        let complete = match d.total {
            Some(t) => d.ranges.len() == 1 && d.ranges[0] == (0, t),
            None => false,
        };
        if !complete {
            return None;
        }
        let d = self.map.remove(&f.key)?;
        self.bytes -= d.buf.len();
        c.ip_reassembled += 1;
        let done = Done {
            next: d.next.unwrap_or(0),
            vlan: d.vlan,
        };
        self.assembled = d.buf;
        if self.map.is_empty() {
            self.oldest = Ts::ZERO;
        }
        Some(done)
    }
}

/// Inserts `[s, e)` into sorted, disjoint ranges, merging overlapping or touching ones.
fn add_range(r: &mut Vec<(u32, u32)>, s: u32, e: u32) {
    if s == e {
        return;
    }
    let i = r.partition_point(|x| x.1 < s);
    let mut j = i;
    let (mut ns, mut ne) = (s, e);
    while j < r.len() && r[j].0 <= e {
        ns = ns.min(r[j].0);
        ne = ne.max(r[j].1);
        j += 1;
    }
    r.splice(i..j, std::iter::once((ns, ne)));
}

#[cfg(test)]
mod tests {
    use super::add_range;

    #[test]
    fn ranges_merge() {
        let mut r = Vec::new();
        add_range(&mut r, 16, 24);
        add_range(&mut r, 0, 8);
        assert_eq!(r, vec![(0, 8), (16, 24)]);
        add_range(&mut r, 8, 16);
        assert_eq!(r, vec![(0, 24)]);
        add_range(&mut r, 40, 48);
        add_range(&mut r, 20, 44);
        assert_eq!(r, vec![(0, 48)]);
        add_range(&mut r, 4, 8);
        assert_eq!(r, vec![(0, 48)]);
    }
}
