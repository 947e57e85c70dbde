//! A bounded queue of datagrams in one preallocated byte ring.
//!
//! UDP and ICMP sockets keep what they received (and what waits to be sent) here. The
//! memory is allocated once when the socket is made: queueing copies the payload into the
//! ring and allocates nothing, so a flood fills the queue and is then dropped and
//! counted, never grown. Each datagram is stored contiguously; one that does not fit
//! before the end of the ring starts again at offset 0, and the skipped tail is
//! accounted to that datagram until it is dequeued.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;

#[derive(Debug, Clone, Copy)]
struct Slot<M> {
    meta: M,
    offset: usize,
    len: usize,
    /// Bytes skipped at the end of the ring before this datagram (wrap padding).
    padding: usize,
}

/// Why a datagram was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// No room for this datagram now (queue full of others).
    Full,
    /// Larger than the whole queue: it can never fit.
    TooLarge,
}

/// A bounded FIFO of datagrams with metadata `M` (e.g. the peer's address).
#[derive(Debug)]
pub struct DatagramQueue<M> {
    buf: Box<[u8]>,
    slots: VecDeque<Slot<M>>,
    max_slots: usize,
    /// Offset of the oldest datagram's data (or of its padding).
    read: usize,
    /// Offset where the next datagram would start.
    write: usize,
    /// Bytes in use, padding included.
    used: usize,
}

impl<M: Copy> DatagramQueue<M> {
    /// A queue of at most `max_datagrams` datagrams and `bytes` payload bytes.
    pub fn new(bytes: usize, max_datagrams: usize) -> Self {
        DatagramQueue {
            buf: vec![0u8; bytes].into_boxed_slice(),
            slots: VecDeque::with_capacity(max_datagrams),
            max_slots: max_datagrams.max(1),
            read: 0,
            write: 0,
            used: 0,
        }
    }

    /// A queue that holds nothing and allocates nothing (a placeholder while the real
    /// one is borrowed out).
    pub fn empty() -> Self {
        DatagramQueue {
            buf: Box::default(),
            slots: VecDeque::new(),
            max_slots: 0,
            read: 0,
            write: 0,
            used: 0,
        }
    }

    /// Number of queued datagrams.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No datagram is queued.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.buf.len()
    }

    /// A datagram of `len` bytes would be accepted now.
    pub fn can_push(&self, len: usize) -> bool {
        self.place(len).is_some()
    }

    /// Where a datagram of `len` bytes would go: (offset, padding).
    fn place(&self, len: usize) -> Option<(usize, usize)> {
        if self.slots.len() >= self.max_slots {
            return None;
        }
        let cap = self.buf.len();
        if self.slots.is_empty() {
            return (len <= cap).then_some((0, 0));
        }
        if self.write > self.read || (self.write == self.read && self.used == 0) {
            // Data lives in [read, write): free space is [write, cap) and [0, read).
            if len <= cap - self.write {
                Some((self.write, 0))
            } else if len <= self.read {
                Some((0, cap - self.write))
            } else {
                None
            }
        } else if self.write < self.read {
            // Wrapped: free space is [write, read).
            (len <= self.read - self.write).then_some((self.write, 0))
        } else {
            None // write == read with data: full
        }
    }

    /// Queue a datagram: `fill` writes its `len` bytes in place.
    pub fn push_with(
        &mut self,
        meta: M,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), QueueError> {
        if len > self.buf.len() {
            return Err(QueueError::TooLarge);
        }
        let (offset, padding) = self.place(len).ok_or(QueueError::Full)?;
        if self.slots.is_empty() {
            self.read = offset;
        }
        fill(&mut self.buf[offset..offset + len]);
        self.write = offset + len;
        if self.write == self.buf.len() {
            self.write = 0;
        }
        self.used += len + padding;
        self.slots.push_back(Slot {
            meta,
            offset,
            len,
            padding,
        });
        Ok(())
    }

    /// Queue a copy of `data`.
    pub fn push(&mut self, meta: M, data: &[u8]) -> Result<(), QueueError> {
        self.push_with(meta, data.len(), |b| b.copy_from_slice(data))
    }

    /// The oldest datagram, without removing it.
    pub fn peek(&self) -> Option<(M, &[u8])> {
        let s = self.slots.front()?;
        Some((s.meta, &self.buf[s.offset..s.offset + s.len]))
    }

    /// Remove the oldest datagram.
    pub fn pop_front(&mut self) -> Option<M> {
        let s = self.slots.pop_front()?;
        self.used -= s.len + s.padding;
        if let Some(next) = self.slots.front() {
            self.read = next.offset;
        } else {
            self.read = 0;
            self.write = 0;
            self.used = 0;
        }
        Some(s.meta)
    }

    /// Copy the oldest datagram into `out` (truncating, as `recv` does) and remove it;
    /// returns its metadata and its full length.
    pub fn pop_into(&mut self, out: &mut [u8]) -> Option<(M, usize)> {
        let (meta, data) = self.peek()?;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        let len = data.len();
        self.pop_front();
        Some((meta, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use alloc::collections::VecDeque as Model;
    use alloc::vec::Vec;

    #[test]
    fn fifo_and_limits() {
        let mut q: DatagramQueue<u32> = DatagramQueue::new(10, 3);
        assert_eq!(q.push(1, &[1; 11]), Err(QueueError::TooLarge));
        q.push(1, &[1; 4]).unwrap();
        q.push(2, &[2; 4]).unwrap();
        assert_eq!(q.push(3, &[3; 4]), Err(QueueError::Full));
        q.push(3, &[3; 2]).unwrap();
        assert_eq!(q.push(4, &[]), Err(QueueError::Full)); // slot limit
        let mut out = [0u8; 3];
        assert_eq!(q.pop_into(&mut out), Some((1, 4)));
        assert_eq!(out, [1, 1, 1]);
        // 4 free bytes at the front, none at the back: wraps.
        q.push(4, &[4; 4]).unwrap();
        assert_eq!(q.peek().unwrap(), (2, &[2u8; 4][..]));
        q.pop_front();
        q.pop_front();
        assert_eq!(q.peek().unwrap(), (4, &[4u8; 4][..]));
        q.pop_front();
        assert!(q.is_empty());
        q.push(5, &[5; 10]).unwrap();
        assert_eq!(q.pop_front(), Some(5));
    }

    #[test]
    fn matches_a_model_under_random_use() {
        let mut rng = Rand::from_u64(9);
        let mut q: DatagramQueue<u32> = DatagramQueue::new(257, 16);
        let mut model: Model<Vec<u8>> = Model::new();
        let mut used = 0usize;
        for i in 0..100_000u32 {
            if rng.chance(0.55) {
                let len = rng.below(90) as usize;
                let data: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
                match q.push(i, &data) {
                    Ok(()) => {
                        used += len;
                        model.push_back(data);
                    }
                    Err(QueueError::Full) => {
                        // At most one wrap padding (< 90 bytes) is live, and the free
                        // space is in at most two pieces: anything up to half of what
                        // is left must fit unless the slot limit is reached.
                        let free = 257usize.saturating_sub(used + 89);
                        assert!(
                            model.len() == 16 || 2 * len >= free,
                            "len {len} used {used}"
                        );
                    }
                    Err(QueueError::TooLarge) => unreachable!(),
                }
            } else if let Some((_, d)) = q.peek() {
                let m = model.pop_front().unwrap();
                assert_eq!(d, &m[..]);
                used -= m.len();
                q.pop_front();
            } else {
                assert!(model.is_empty());
            }
            assert_eq!(q.len(), model.len());
        }
    }
}
