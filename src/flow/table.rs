//! The flow table's map: open addressing with linear probing over slots of 16 bytes
//! (the key's hash and the boxed flow), so that a worker can prefetch the slot of a
//! segment several segments ahead, then the flow it points to, then the flow's
//! parser state and what that points to, and find them in cache when the segment's
//! turn comes. At 4,000 open connections and a payload stream that evicts
//! everything between two segments of one connection, those first touches were
//! most of a worker's time.
//!
//! The hash is seeded per table (attackers choose tuples), the load factor stays at
//! or under one half, and removal shifts the following entries back (no tombstones),
//! so every probe ends at an empty slot within a few steps.

use super::FlowKey;

/// A cache hint: asks for the line holding `r`. No effect on what the program does.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse"
    ))]
    safe_arch::prefetch_t0(r);
    #[cfg(not(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse"
    )))]
    let _ = r;
}

/// Prefetching through a trait object: every parser gets it from the blanket impl.
pub trait Warm {
    /// Asks for the first cache line of `self`.
    fn warm(&self);
}

impl<T> Warm for T {
    #[inline]
    fn warm(&self) {
        prefetch(self);
    }
}

/// What the map holds: a flow, which knows its key and which of its lines and
/// pointers are worth prefetching.
pub(super) trait Entry {
    fn key(&self) -> &FlowKey;
    /// Prefetches the entry's own lines that every segment reads.
    fn warm_lines(&self) {}
    /// Prefetches what the entry points to (its lines are in cache by now).
    fn warm_state(&self) {}
    /// Prefetches what the entry's pointees point to (a step after `warm_state`).
    fn warm_deep(&self) {}
}

struct Slot<V> {
    hash: u64,
    flow: Option<Box<V>>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            hash: 0,
            flow: None,
        }
    }
}

/// Slots of a table's first allocation.
const MIN_SLOTS: usize = 64;

pub(super) struct FlowMap<V> {
    /// A power of two long, or empty before the first insertion.
    slots: Vec<Slot<V>>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for FlowMap<V> {
    fn default() -> FlowMap<V> {
        FlowMap {
            slots: Vec::new(),
            len: 0,
            hasher: Default::default(),
        }
    }
}

impl<V: Entry> FlowMap<V> {
    /// The hash every other call takes with its key.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the probe for `hash` starts (the high bits of a multiplicative mix, so
    /// that the bits the reader shards workers by do not matter).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize) & (self.slots.len() - 1)
    }

    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            let s = &self.slots[i];
            match &s.flow {
                None => return None,
                Some(f) if s.hash == hash && f.key() == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    pub fn contains(&self, hash: u64, key: &FlowKey) -> bool {
        self.find(hash, key).is_some()
    }

    pub fn get(&self, hash: u64, key: &FlowKey) -> Option<&V> {
        let i = self.find(hash, key)?;
        self.slots[i].flow.as_deref()
    }

    #[inline]
    pub fn get_mut(&mut self, hash: u64, key: &FlowKey) -> Option<&mut V> {
        let i = self.find(hash, key)?;
        self.slots[i].flow.as_deref_mut()
    }

    /// Adds a flow whose key is not in the map yet; `hash` is its key's.
    pub fn insert(&mut self, hash: u64, flow: Box<V>) -> &mut V {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        while self.slots[i].flow.is_some() {
            i = (i + 1) & mask;
        }
        self.len += 1;
        let s = &mut self.slots[i];
        s.hash = hash;
        s.flow.insert(flow)
    }

    pub fn remove(&mut self, hash: u64, key: &FlowKey) -> Option<Box<V>> {
        let mut hole = self.find(hash, key)?;
        let out = self.slots[hole].flow.take();
        self.len -= 1;
        // Backward shift: an entry after the hole moves into it unless its home lies
        // cyclically after the hole (it would then be found before the hole).
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.slots[j].flow.is_none() {
                break;
            }
            let home = self.home(self.slots[j].hash);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().filter_map(|s| s.flow.as_deref())
    }

    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, (0..n).map(|_| Slot::default()).collect());
        let mask = n - 1;
        for s in old {
            if let Some(f) = s.flow {
                let mut i = self.home(s.hash);
                while self.slots[i].flow.is_some() {
                    i = (i + 1) & mask;
                }
                self.slots[i] = Slot {
                    hash: s.hash,
                    flow: Some(f),
                };
            }
        }
    }

    /// First step ahead of a segment: the line of its home slot.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[self.home(hash)]);
        }
    }

    /// Second step: the flow the slot points to (read from the slot, which the first
    /// step brought in), without comparing keys; a few slots at most.
    #[inline]
    pub fn prefetch_flow(&self, hash: u64) {
        if let Some(f) = self.peek(hash) {
            f.warm_lines();
        }
    }

    /// Third step: what the flow points to, its parser state (the flow's lines came
    /// with the second step).
    #[inline]
    pub fn prefetch_state(&self, hash: u64) {
        if let Some(f) = self.peek(hash) {
            f.warm_state();
        }
    }

    /// Fourth step: what the parser state points to.
    #[inline]
    pub fn prefetch_deep(&self, hash: u64) {
        if let Some(f) = self.peek(hash) {
            f.warm_deep();
        }
    }

    /// The first flow with this hash near its home, if any.
    #[inline]
    fn peek(&self, hash: u64) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        for _ in 0..4 {
            let s = &self.slots[i];
            match &s.flow {
                None => return None,
                Some(f) if s.hash == hash => return Some(f),
                Some(_) => i = (i + 1) & mask,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct E {
        key: FlowKey,
        n: u32,
    }

    impl Entry for E {
        fn key(&self) -> &FlowKey {
            &self.key
        }
    }

    fn key(i: u32) -> FlowKey {
        FlowKey {
            a: i as u128,
            b: 7,
            a_port: (i % 97) as u16,
            b_port: 80,
            v6: false,
        }
    }

    /// Random inserts, lookups and removals against std's map; with the hash
    /// replaced by one of 8 values every probe collides, so the backward shift
    /// runs across long clusters and around the end of the slots.
    #[test]
    fn matches_a_hash_map() {
        for collide in [false, true] {
            let mut m: FlowMap<E> = FlowMap::default();
            let mut r: HashMap<FlowKey, u32> = HashMap::new();
            let h = |m: &FlowMap<E>, k: &FlowKey| {
                if collide {
                    m.hash(k) % 8 * 0x1234_5678_9abc_def1
                } else {
                    m.hash(k)
                }
            };
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            for step in 0..40_000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = key((x % 300) as u32);
                let hk = h(&m, &k);
                match x % 3 {
                    0 if !r.contains_key(&k) => {
                        m.insert(hk, Box::new(E { key: k, n: step }));
                        r.insert(k, step);
                    }
                    1 => {
                        let got = m.remove(hk, &k).map(|e| e.n);
                        assert_eq!(got, r.remove(&k));
                    }
                    _ => assert_eq!(m.get(hk, &k).map(|e| e.n), r.get(&k).copied()),
                }
                assert_eq!(m.len(), r.len());
            }
            for (k, n) in &r {
                assert_eq!(m.get(h(&m, k), k).map(|e| e.n), Some(*n));
            }
            assert_eq!(m.iter().count(), r.len());
        }
    }

    #[test]
    fn stays_at_most_half_full() {
        let mut m: FlowMap<E> = FlowMap::default();
        for i in 0..10_000 {
            let k = key(i);
            let hk = m.hash(&k);
            m.insert(hk, Box::new(E { key: k, n: i }));
            assert!(m.len() * 2 <= m.slots.len());
        }
        for i in 0..10_000 {
            let k = key(i);
            assert!(m.get_mut(m.hash(&k), &k).is_some());
            m.prefetch_slot(m.hash(&k));
            m.prefetch_flow(m.hash(&k));
            m.prefetch_state(m.hash(&k));
            m.prefetch_deep(m.hash(&k));
        }
    }
}
