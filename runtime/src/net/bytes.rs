//! A bounded single-producer single-consumer byte ring: how a connection's bytes cross
//! between the user's thread and its shard without a lock or an allocation per call.
//!
//! The positions are free-running counters (`tail - head` is the fill), so "full" and
//! "empty" need no spare slot. The producer publishes bytes with a release store of
//! `tail`, the consumer frees room with a release store of `head`; each side reads the
//! other's counter with acquire, so the bytes are visible before the counter says so.
//!
//! Exclusivity (one producer, one consumer at a time) is the caller's promise, hence the
//! `unsafe` methods: the shard is by construction the only producer of a receive ring
//! and the only consumer of a transmit ring; the user side holds a lock per direction.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes on their way from one thread to another.
pub(crate) struct ByteRing {
    buf: Box<[UnsafeCell<u8>]>,
    mask: usize,
    /// Consumer position (bytes taken so far).
    head: AtomicUsize,
    /// Producer position (bytes put so far).
    tail: AtomicUsize,
}

// SAFETY: the bytes are only touched through the producer/consumer methods, whose
// callers guarantee one producer and one consumer at a time; the two never touch the
// same byte at once because the counters (acquire/release) hand each range over.
unsafe impl Sync for ByteRing {}

impl std::fmt::Debug for ByteRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteRing")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl ByteRing {
    /// A ring of at least `capacity` bytes (rounded up to a power of two, at least 64).
    pub fn new(capacity: usize) -> ByteRing {
        let cap = capacity.max(64).next_power_of_two();
        ByteRing {
            buf: (0..cap).map(|_| UnsafeCell::new(0)).collect(),
            mask: cap - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Bytes waiting (a snapshot).
    pub fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// Producer: offer the first contiguous free range to `fill`, which writes into a
    /// prefix of it and returns how much (or an error); the written bytes are published.
    /// `fill` is not called when the ring is full (returns `Ok(0)`).
    ///
    /// # Safety
    /// No other producer call may run at the same time.
    pub unsafe fn produce_with<E>(
        &self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let free = self.capacity() - tail.wrapping_sub(head);
        if free == 0 {
            return Ok(0);
        }
        let start = tail & self.mask;
        let len = free.min(self.capacity() - start);
        // SAFETY: [start, start+len) is free: the consumer has released it (head,
        // acquire) and will not read it before `tail` says so; we are the only
        // producer, so nobody else writes it. UnsafeCell<u8> has u8's layout.
        let slice = unsafe {
            std::slice::from_raw_parts_mut(UnsafeCell::raw_get(self.buf.as_ptr().add(start)), len)
        };
        let n = fill(slice)?.min(len);
        self.tail.store(tail.wrapping_add(n), Ordering::Release);
        Ok(n)
    }

    /// Producer: copy as much of `data` as fits; returns how much.
    ///
    /// # Safety
    /// No other producer call may run at the same time.
    pub unsafe fn push(&self, mut data: &[u8]) -> usize {
        let mut total = 0;
        // At most two contiguous ranges (before and after the wrap).
        for _ in 0..2 {
            if data.is_empty() {
                break;
            }
            // SAFETY: forwarded from the caller.
            let n = unsafe {
                self.produce_with(|dst| {
                    let n = dst.len().min(data.len());
                    dst[..n].copy_from_slice(&data[..n]);
                    Ok::<_, ()>(n)
                })
            }
            .unwrap_or(0);
            if n == 0 {
                break;
            }
            data = &data[n..];
            total += n;
        }
        total
    }

    /// Consumer: offer the first contiguous range of waiting bytes to `take`, which
    /// consumes a prefix of it and returns how much (or an error); that much is freed.
    /// `take` is not called when the ring is empty (returns `Ok(0)`).
    ///
    /// # Safety
    /// No other consumer call may run at the same time.
    pub unsafe fn consume_with<E>(
        &self,
        take: impl FnOnce(&[u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let avail = tail.wrapping_sub(head);
        if avail == 0 {
            return Ok(0);
        }
        let start = head & self.mask;
        let len = avail.min(self.capacity() - start);
        // SAFETY: [start, start+len) was published by the producer (tail, acquire) and
        // it will not write there again before `head` releases it; we are the only
        // consumer.
        let slice = unsafe {
            std::slice::from_raw_parts(UnsafeCell::raw_get(self.buf.as_ptr().add(start)), len)
        };
        let n = take(slice)?.min(len);
        self.head.store(head.wrapping_add(n), Ordering::Release);
        Ok(n)
    }

    /// Consumer: copy up to `out.len()` bytes out; returns how many.
    ///
    /// # Safety
    /// No other consumer call may run at the same time.
    pub unsafe fn pop(&self, out: &mut [u8]) -> usize {
        let mut total = 0;
        for _ in 0..2 {
            if total == out.len() {
                break;
            }
            let rest = &mut out[total..];
            // SAFETY: forwarded from the caller.
            let n = unsafe {
                self.consume_with(|src| {
                    let n = src.len().min(rest.len());
                    rest[..n].copy_from_slice(&src[..n]);
                    Ok::<_, ()>(n)
                })
            }
            .unwrap_or(0);
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }

    /// Consumer: copy up to `out.len()` bytes out without consuming them.
    ///
    /// # Safety
    /// No other consumer call may run at the same time.
    pub unsafe fn peek(&self, out: &mut [u8]) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(out.len());
        for (i, o) in out[..n].iter_mut().enumerate() {
            // SAFETY: published bytes (see consume_with), read only.
            *o = unsafe { *self.buf[(head.wrapping_add(i)) & self.mask].get() };
        }
        n
    }

    /// Consumer: drop everything waiting; returns how much.
    ///
    /// # Safety
    /// No other consumer call may run at the same time.
    pub unsafe fn clear(&self) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        self.head.store(tail, Ordering::Release);
        tail.wrapping_sub(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn wraps_and_keeps_order() {
        let r = ByteRing::new(64);
        let mut out = [0u8; 64];
        // SAFETY (all below): one thread is both the only producer and the only consumer.
        unsafe {
            assert_eq!(r.push(&[1; 40]), 40);
            assert_eq!(r.pop(&mut out[..30]), 30);
            let data: Vec<u8> = (0..60).collect();
            // 24 free at the end, 30 at the start: 54 fit (10 still waiting).
            assert_eq!(r.push(&data), 54);
            assert!(r.is_full());
            assert_eq!(r.pop(&mut out), 64);
            assert_eq!(&out[..10], &[1; 10]);
            assert_eq!(&out[10..64], &data[..54]);
            assert!(r.is_empty());
            assert_eq!(r.produce_with(|_| Err::<usize, _>("x")), Err("x"));
            assert_eq!(r.push(&[7, 8, 9]), 3);
            let mut p = [0u8; 8];
            assert_eq!(r.peek(&mut p), 3);
            assert_eq!(r.clear(), 3);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn threads_move_every_byte_in_order() {
        let r = Arc::new(ByteRing::new(256));
        let total = 1 << 20;
        let r2 = Arc::clone(&r);
        let producer = std::thread::spawn(move || {
            let mut sent = 0usize;
            while sent < total {
                let chunk: Vec<u8> = (sent..(sent + 97).min(total)).map(|i| i as u8).collect();
                let mut off = 0;
                while off < chunk.len() {
                    // SAFETY: this thread is the only producer.
                    off += unsafe { r2.push(&chunk[off..]) };
                    std::hint::spin_loop();
                }
                sent += chunk.len();
            }
        });
        let mut got = 0usize;
        let mut buf = [0u8; 113];
        while got < total {
            // SAFETY: this thread is the only consumer.
            let n = unsafe { r.pop(&mut buf) };
            for &b in &buf[..n] {
                assert_eq!(b, got as u8);
                got += 1;
            }
        }
        producer.join().unwrap();
    }
}
