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
        if self.len >= self.limit {
            return Err(value);
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let Ok(i) = u32::try_from(self.entries.len()) else {
                    return Err(value);
                };
                self.entries.push(Entry {
                    generation: 0,
                    value: None,
                });
                i
            }
        };
        let e = &mut self.entries[index as usize];
        e.value = Some(value);
        self.len += 1;
        Ok(SlabKey {
            index,
            generation: e.generation,
        })
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
    }
}
