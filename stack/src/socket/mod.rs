//! What sockets of every transport share: handles into per-stack tables, and the
//! bounded datagram queue.
//!
//! Sockets live in a [`Slab`] owned by their transport's table; applications hold a
//! `Copy` handle (index + generation), never a reference, so the stack remains the one
//! owner of socket state and a stale handle is an error, not a use-after-free.

pub mod datagram_queue;

pub use datagram_queue::{DatagramQueue, QueueError};

use alloc::vec::Vec;

/// A generational index into a [`Slab`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlabKey {
    index: u32,
    generation: u32,
}

impl SlabKey {
    /// The slot index (stable while the entry lives; useful for per-socket arrays).
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

/// A slot for a new value: a freed one, or one past the end.
#[derive(Clone, Copy)]
enum Vacant {
    Free(u32),
    End(u32),
}

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// A bounded slab with generational keys: O(1) insert, remove and lookup.
#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
    limit: usize,
}

impl<T> Slab<T> {
    /// A slab holding at most `limit` values.
    pub fn new(limit: usize) -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
            limit,
        }
    }

    /// Number of live values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No live values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Store `value`; `Err(value)` when the slab is at its limit.
    pub fn insert(&mut self, value: T) -> Result<SlabKey, T> {
        let Some(slot) = self.vacant() else {
            return Err(value);
        };
        Ok(self.fill(slot, || value).0)
    }

    /// Store the value `make` builds, if the slab has room (`None` when at its limit,
    /// and `make` is not called).
    ///
    /// For large values: with `make` inlined, the value is built once, then moved into
    /// its slot (an old slot) or with it (a new one), and moved nowhere else.
    #[inline]
    pub fn insert_with(&mut self, make: impl FnOnce() -> T) -> Option<SlabKey> {
        self.insert_with_mut(make).map(|(key, _)| key)
    }

    /// [`insert_with`](Self::insert_with), with the value where it now lies: a caller
    /// that goes on to set it up needs no lookup by its key.
    #[inline]
    pub fn insert_with_mut(&mut self, make: impl FnOnce() -> T) -> Option<(SlabKey, &mut T)> {
        let slot = self.vacant()?;
        Some(self.fill(slot, make))
    }

    /// Where the next value goes, if the slab may grow by one: a free slot, or a new
    /// one at the end (not pushed yet).
    fn vacant(&mut self) -> Option<Vacant> {
        if self.len >= self.limit {
            return None;
        }
        if let Some(i) = self.free.pop() {
            return Some(Vacant::Free(i));
        }
        u32::try_from(self.entries.len()).ok().map(Vacant::End)
    }

    /// Put the value `make` builds in the slot `vacant` found.
    ///
    /// A new slot is added empty first, so that both kinds of slot take the value the
    /// same way, with `make` called once, after the place is known: the value is built
    /// in its slot, not aside and then copied (callgrind, crr: a TCB's 1,400-byte memcpy
    /// less per connection, twice where pushed with its value). The empty entry is
    /// added by `resize_with`, which writes its generation and tag where it goes;
    /// `push` built the whole entry aside and copied all of it, the value's bytes too.
    #[inline(always)]
    fn fill(&mut self, slot: Vacant, make: impl FnOnce() -> T) -> (SlabKey, &mut T) {
        self.len += 1;
        let index = match slot {
            Vacant::Free(index) => index,
            Vacant::End(index) => {
                self.entries.resize_with(index as usize + 1, || Entry {
                    generation: 0,
                    value: None,
                });
                index
            }
        };
        let e = &mut self.entries[index as usize];
        let key = SlabKey {
            index,
            generation: e.generation,
        };
        (key, e.value.insert(make()))
    }

    /// The value behind `key`, if it is still live.
    pub fn get(&self, key: SlabKey) -> Option<&T> {
        let e = self.entries.get(key.index as usize)?;
        if e.generation != key.generation {
            return None;
        }
        e.value.as_ref()
    }

    /// The value behind `key`, writable.
    pub fn get_mut(&mut self, key: SlabKey) -> Option<&mut T> {
        let e = self.entries.get_mut(key.index as usize)?;
        if e.generation != key.generation {
            return None;
        }
        e.value.as_mut()
    }

    /// Remove and return the value behind `key`; its key becomes stale.
    pub fn remove(&mut self, key: SlabKey) -> Option<T> {
        let e = self.entries.get_mut(key.index as usize)?;
        if e.generation != key.generation {
            return None;
        }
        let v = e.value.take()?;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(v)
    }

    /// Drop the value behind `key` where it lies (large values are not moved out just to
    /// be dropped); its key becomes stale. False if it was not live.
    pub fn delete(&mut self, key: SlabKey) -> bool {
        let Some(e) = self.entries.get_mut(key.index as usize) else {
            return false;
        };
        if e.generation != key.generation || e.value.is_none() {
            return false;
        }
        e.value = None;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        true
    }

    /// Live values with their keys.
    pub fn iter(&self) -> impl Iterator<Item = (SlabKey, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            e.value.as_ref().map(|v| {
                (
                    SlabKey {
                        index: i as u32,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }

    /// Live values with their keys, writable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SlabKey, &mut T)> {
        self.entries.iter_mut().enumerate().filter_map(|(i, e)| {
            let generation = e.generation;
            e.value.as_mut().map(|v| {
                (
                    SlabKey {
                        index: i as u32,
                        generation,
                    },
                    v,
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_and_limit() {
        let mut s = Slab::new(2);
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_eq!(s.insert("c"), Err("c"));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.get(a), None);
        let c = s.insert("c").unwrap();
        assert_eq!(c.index(), a.index());
        assert_ne!(c, a);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(c), Some(&"c"));
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.iter().count(), 2);
        assert_eq!(s.remove(a), None);
        // Built in place, dropped in place.
        let d = s.insert_with(|| "d");
        assert_eq!(d, None);
        assert!(s.delete(c));
        assert!(!s.delete(c));
        assert_eq!(s.get(c), None);
        let d = s.insert_with(|| "d").unwrap();
        assert_eq!(d.index(), c.index());
        assert_ne!(d, c);
        assert_eq!(s.get(d), Some(&"d"));
        assert_eq!(s.len(), 2);
    }
}
