//! Per-connection memory of named objects: prepared statements (name -> query text)
//! and portals (name -> what was bound), so that an Execute with no Parse of its own
//! still reports its query. Bounded by a number of entries and a number of bytes;
//! the least recently used entry is forgotten first (deterministically, so a replay
//! gives the same events every time).

use std::collections::{BTreeMap, HashMap};

#[derive(Debug)]
pub struct Lru<V> {
    map: HashMap<Vec<u8>, (V, u64, usize)>,
    /// Last use -> name.
    order: BTreeMap<u64, Vec<u8>>,
    clock: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<V: Clone> Lru<V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Lru<V> {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held (names and the sizes given at insertion).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Remembers `v` (taking `size` bytes besides its name) under `name`, replacing
    /// an entry of the same name. Returns how many other entries were forgotten to
    /// make room; an entry larger than the whole budget is not kept (counted as one).
    pub fn insert(&mut self, name: Vec<u8>, v: V, size: usize) -> u64 {
        self.remove(&name);
        let size = size.saturating_add(name.len());
        if self.max_entries == 0 || size > self.max_bytes {
            return 1;
        }
        let mut evicted = 0;
        while self.map.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, _, n)) = self.map.remove(&oldest) {
                self.bytes -= n;
                evicted += 1;
            }
        }
        let t = self.tick();
        self.order.insert(t, name.clone());
        self.map.insert(name, (v, t, size));
        self.bytes += size;
        evicted
    }

    /// The entry `name`, marked as just used.
    pub fn get(&mut self, name: &[u8]) -> Option<V> {
        let t = self.clock + 1;
        let (v, used, _) = self.map.get_mut(name)?;
        let old = std::mem::replace(used, t);
        let v = v.clone();
        self.clock = t;
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(t, k);
        }
        Some(v)
    }

    pub fn remove(&mut self, name: &[u8]) {
        if let Some((_, used, n)) = self.map.remove(name) {
            self.order.remove(&used);
            self.bytes -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first() {
        let mut c: Lru<u32> = Lru::new(2, 1000);
        assert_eq!(c.insert(b"a".to_vec(), 1, 10), 0);
        assert_eq!(c.insert(b"b".to_vec(), 2, 10), 0);
        assert_eq!(c.get(b"a"), Some(1));
        // "b" is the least recently used now.
        assert_eq!(c.insert(b"c".to_vec(), 3, 10), 1);
        assert_eq!(c.get(b"b"), None);
        assert_eq!((c.get(b"a"), c.get(b"c")), (Some(1), Some(3)));
        // Replacing an entry evicts nothing.
        assert_eq!(c.insert(b"a".to_vec(), 4, 10), 0);
        assert_eq!((c.len(), c.bytes()), (2, 22));
        c.remove(b"a");
        assert_eq!((c.len(), c.bytes()), (1, 11));
    }

    #[test]
    fn byte_budget() {
        let mut c: Lru<u32> = Lru::new(100, 25);
        assert_eq!(c.insert(b"a".to_vec(), 1, 10), 0);
        assert_eq!(c.insert(b"b".to_vec(), 2, 10), 0);
        assert_eq!(c.insert(b"c".to_vec(), 3, 10), 1);
        assert_eq!(c.get(b"a"), None);
        // Too large for the whole budget: not kept, the others stay.
        assert_eq!(c.insert(b"d".to_vec(), 4, 100), 1);
        assert_eq!((c.len(), c.get(b"d")), (2, None));
        let mut none: Lru<u32> = Lru::new(0, 25);
        assert_eq!(none.insert(b"a".to_vec(), 1, 1), 1);
        assert_eq!(none.len(), 0);
    }
}
