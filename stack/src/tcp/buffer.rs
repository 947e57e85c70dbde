//! The byte ring behind a TCP connection's send and receive buffers.
//!
//! One fixed allocation, made the first time bytes are written (so an idle connection
//! costs no buffer memory: a million idle connections fit), none afterwards: a
//! connection's memory is bounded by the sizes it was opened with, whatever its peer
//! sends.
//!
//! The **send** side is a plain queue: the application enqueues, [`RingBuffer::peek`]
//! hands out the (up to two) pieces of any unacknowledged range to copy into a segment,
//! and [`RingBuffer::dequeue_allocated`] drops bytes once they are acknowledged.
//!
//! The **receive** side also holds data that arrived out of order. It is written into
//! the free space past the readable bytes with [`RingBuffer::write_unallocated`] (offset
//! `SEG.SEQ - RCV.NXT`) and made readable with [`RingBuffer::enqueue_unallocated`] once
//! the hole before it is filled; which ranges have arrived is the
//! [`Assembler`](super::reass::Assembler)'s business, not the ring's.
//!
//! Positions never move behind the caller's back: the ring does not realign itself when
//! it becomes empty, because bytes written past the end (out-of-order data) would no
//! longer be where their offset says. The owner, who knows none are there, asks for it
//! ([`RingBuffer::dequeue_rewinding`], [`RingBuffer::rewind_if_empty`]). Every operation clamps its offsets and lengths to
//! what the ring holds instead of panicking.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Storage of the rings of finished connections, handed to new ones on their first
/// write: a stack that opens and closes connections at a high rate (HTTP/1.0, crr)
/// then allocates, zeroes and frees no ring memory per connection. Bounded in count
/// and in the size of a buffer it keeps, so it holds at most
/// `max_buffers * max_len` bytes; beyond, buffers are freed as before.
#[derive(Debug)]
pub struct BufferCache {
    free: Vec<Box<[u8]>>,
    max_buffers: usize,
    max_len: usize,
}

impl BufferCache {
    /// A cache of at most `max_buffers` buffers of at most `max_len` bytes each.
    pub fn new(max_buffers: usize, max_len: usize) -> BufferCache {
        BufferCache {
            free: Vec::new(),
            max_buffers,
            max_len,
        }
    }

    /// Buffers held.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// No buffer is held.
    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }

    /// Keep `buf` for reuse, or free it when the cache is full or it is too large.
    pub fn put(&mut self, buf: Box<[u8]>) {
        if self.free.len() < self.max_buffers && buf.len() <= self.max_len {
            self.free.push(buf);
        }
    }

    /// Take the storage of `ring` back into the cache (the ring forgets its data).
    pub fn reclaim(&mut self, ring: &mut RingBuffer) {
        if let Some(buf) = ring.take_storage() {
            self.put(buf);
        }
    }

    /// Give `ring` a cached buffer of its capacity if it has no storage yet.
    pub fn supply(&mut self, ring: &mut RingBuffer) {
        if ring.allocated() != 0 || ring.capacity() == 0 {
            return;
        }
        let cap = ring.capacity();
        if let Some(i) = self.free.iter().rposition(|b| b.len() == cap) {
            let buf = self.free.swap_remove(i);
            if let Err(buf) = ring.provide(buf) {
                self.put(buf);
            }
        }
    }
}

/// A fixed-capacity byte ring (see the module documentation).
pub struct RingBuffer {
    /// Empty until the first write, then `capacity` bytes.
    storage: Box<[u8]>,
    capacity: usize,
    /// Index in `storage` of the first readable byte; `< capacity` when capacity > 0.
    head: usize,
    /// Readable bytes, `<= capacity`.
    length: usize,
}

/// `dst.copy_from_slice(src)`, with a copy of 33 to 64 bytes made in place as two
/// 32-byte moves that may overlap: `copy_from_slice` of a length the compiler does not
/// know calls `memcpy`, whose call and dispatch on the length cost more than that.
#[inline(always)]
fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n == dst.len() && (33..=64).contains(&n) {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else {
        dst.copy_from_slice(src);
    }
}

impl RingBuffer {
    /// A ring of `capacity` bytes, allocated once, on the first write.
    pub fn new(capacity: usize) -> RingBuffer {
        RingBuffer {
            storage: Box::default(),
            capacity,
            head: 0,
            length: 0,
        }
    }

    /// Allocate the storage before the first write.
    #[inline]
    fn materialize(&mut self) {
        if self.storage.len() != self.capacity {
            self.allocate();
        }
    }

    /// Out of line: it happens once per ring (if the stack's cache did not provide
    /// storage), and inlined into every write it cost registers and code there.
    #[cold]
    #[inline(never)]
    fn allocate(&mut self) {
        self.storage = vec![0; self.capacity].into_boxed_slice();
    }

    /// Bytes of memory the ring holds now (0 until the first write).
    pub fn allocated(&self) -> usize {
        self.storage.len()
    }

    /// Give the ring its storage before its first write, from a cache of released
    /// buffers, so a new connection costs no allocation (nor the zeroing of one). The
    /// contents need not be zero: no byte becomes readable before it is written.
    /// `storage` comes back as the error if the ring already has storage or it is not
    /// `capacity` bytes long.
    pub fn provide(&mut self, storage: Box<[u8]>) -> Result<(), Box<[u8]>> {
        if self.storage.len() == self.capacity || storage.len() != self.capacity {
            return Err(storage);
        }
        self.storage = storage;
        Ok(())
    }

    /// Take the storage away (for reuse by another ring), forgetting all data, as
    /// [`clear`](Self::clear) does; a later write allocates again. `None` if there
    /// was none.
    pub fn take_storage(&mut self) -> Option<Box<[u8]>> {
        self.clear();
        if self.storage.is_empty() {
            return None;
        }
        Some(core::mem::take(&mut self.storage))
    }

    /// Total size in bytes.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Readable (enqueued) bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.length
    }

    /// Nothing is readable.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// No free space is left.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.length == self.capacity()
    }

    /// Free bytes, `capacity - len`: for a receive buffer, the window to advertise.
    #[inline]
    pub fn window(&self) -> usize {
        self.capacity() - self.length
    }

    /// Forget all data, readable or written past the end.
    pub fn clear(&mut self) {
        self.head = 0;
        self.length = 0;
    }

    /// Storage index of the byte `logical` bytes past `head`, for `logical < 2·capacity`.
    #[inline]
    fn wrap(&self, logical: usize) -> usize {
        let i = self.head + logical;
        if i >= self.capacity() {
            i - self.capacity()
        } else {
            i
        }
    }

    /// Copy as much of `data` as fits to the end; returns how many bytes were taken.
    ///
    /// Inlined for the common case, storage allocated and all of `data` fitting in one
    /// piece before the end of the storage: one bounds check and the copy, where the
    /// general case ([`enqueue_slice_any`](Self::enqueue_slice_any)) is a call that
    /// clamps, allocates and wraps.
    #[inline(always)]
    pub fn enqueue_slice(&mut self, data: &[u8]) -> usize {
        if self.enqueue_whole(data) {
            return data.len();
        }
        self.enqueue_slice_any(data)
    }

    /// `len` more bytes fit at the end in one piece: [`enqueue_whole`] would take
    /// them.
    ///
    /// [`enqueue_whole`]: Self::enqueue_whole
    #[inline(always)]
    pub fn fits_whole(&self, len: usize) -> bool {
        // Within the storage (empty before the first write), the end of the readable
        // bytes has not wrapped, so all of it up to the end is free space.
        self.head + self.length + len <= self.storage.len()
    }

    /// [`enqueue_slice`](Self::enqueue_slice)'s common case alone: all of `data`
    /// copied to the end if it fits there in one piece (storage allocated, not
    /// wrapping), as `enqueue_slice` would; `false`, and nothing written, if not.
    #[inline(always)]
    pub fn enqueue_whole(&mut self, data: &[u8]) -> bool {
        if !self.fits_whole(data.len()) {
            return false;
        }
        // The length is counted before the copy: across the copy's call only the
        // count to return is kept.
        let start = self.head + self.length;
        let end = start + data.len();
        self.length += data.len();
        copy_bytes(&mut self.storage[start..end], data);
        true
    }

    /// [`enqueue_slice`](Self::enqueue_slice) in general: clamped to the free space,
    /// allocating the storage, wrapping.
    #[inline(never)]
    fn enqueue_slice_any(&mut self, data: &[u8]) -> usize {
        // `write_unallocated(0, data)` then `enqueue_unallocated`, in one pass: the
        // free space is counted once and the storage checked once.
        let n = data.len().min(self.window());
        if n == 0 {
            return 0;
        }
        self.materialize();
        let start = self.wrap(self.length);
        let first = n.min(self.capacity() - start);
        self.storage[start..start + first].copy_from_slice(&data[..first]);
        if first < n {
            // Wrapped (rarely): the rest at the start.
            self.storage[..n - first].copy_from_slice(&data[first..n]);
        }
        self.length += n;
        n
    }

    /// Let `f` write into the largest contiguous free slice at the end and enqueue the
    /// number of bytes it returns (clamped to the slice). Lets a producer fill the ring
    /// without a bounce buffer; the slice may be shorter than [`window`](Self::window)
    /// when the free space wraps, so call again for the rest.
    pub fn enqueue_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        self.materialize();
        let start = self.wrap(self.length);
        let contiguous = self.window().min(self.capacity() - start);
        let slice = &mut self.storage[start..start + contiguous];
        let n = f(slice).min(contiguous);
        self.length += n;
        n
    }

    /// Copy up to `out.len()` bytes from the front into `out` and remove them; returns
    /// the count.
    ///
    /// Inlined for the common case, the bytes taken lying in one piece before the end
    /// of the storage and leaving the head short of it: one bounds check and the copy,
    /// where the general case ([`dequeue_slice_any`](Self::dequeue_slice_any)) clamps
    /// and wraps.
    #[inline]
    pub fn dequeue_slice(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.length);
        let start = self.head;
        // `<`, not `<=`: the head stays below the capacity without wrapping.
        if start + n < self.storage.len() {
            copy_bytes(&mut out[..n], &self.storage[start..start + n]);
            self.head = start + n;
            self.length -= n;
            return n;
        }
        self.dequeue_slice_any(out)
    }

    /// [`dequeue_slice`](Self::dequeue_slice) in general: clamped, wrapping.
    #[inline(never)]
    fn dequeue_slice_any(&mut self, out: &mut [u8]) -> usize {
        // `read_at(0, out)` then `dequeue_allocated`, in one pass: the readable bytes
        // start at `head` (below the capacity), and are clamped once.
        let n = out.len().min(self.length);
        if n == 0 {
            return 0;
        }
        let start = self.head;
        let first = n.min(self.capacity() - start);
        out[..first].copy_from_slice(&self.storage[start..start + first]);
        if first < n {
            // Wrapped (rarely): the rest from the start.
            out[first..n].copy_from_slice(&self.storage[..n - first]);
        }
        self.head = self.wrap(n);
        self.length -= n;
        n
    }

    /// Remove up to `n` bytes from the front without reading them (acknowledged send
    /// data, or bytes the application consumed through [`peek`](Self::peek)); returns
    /// how many were removed.
    pub fn dequeue_allocated(&mut self, n: usize) -> usize {
        let n = n.min(self.length);
        if n > 0 {
            self.head = self.wrap(n);
            self.length -= n;
        }
        n
    }

    /// [`dequeue_allocated`](Self::dequeue_allocated) for a ring that never holds bytes
    /// past its readable ones (a send ring): when it empties, its head goes back to the
    /// start of the storage.
    ///
    /// Why: a request/response connection's ring is empty between messages, and a
    /// head left where the last message ended walks each message onto new cache lines,
    /// round and round the storage (four 8 KiB rings per transaction pair, more than a
    /// core's L1 data cache with the rest of the path); rewound, every message reuses
    /// the same few lines.
    #[inline]
    pub fn dequeue_rewinding(&mut self, n: usize) -> usize {
        let n = n.min(self.length);
        self.length -= n;
        self.head = if self.length == 0 { 0 } else { self.wrap(n) };
        n
    }

    /// Move the head of an empty ring back to the start of the storage (see
    /// [`dequeue_rewinding`](Self::dequeue_rewinding) for why). Only for a caller
    /// that knows no bytes past the readable ones are kept (a receive ring with
    /// nothing out of order): those would no longer be where their offset says.
    #[inline(always)]
    pub fn rewind_if_empty(&mut self) {
        if self.length == 0 {
            self.head = 0;
        }
    }

    /// The bytes `[offset, offset + len)` counted from the front, as up to two contiguous
    /// pieces (the second is empty unless the range wraps). Clamped to the readable
    /// bytes, so the pieces may be shorter than `len` in total. Zero-copy access for
    /// building (re)transmitted segments.
    pub fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let offset = offset.min(self.length);
        let len = len.min(self.length - offset);
        if len == 0 {
            return (&[], &[]);
        }
        let start = self.wrap(offset);
        let first = len.min(self.capacity() - start);
        (
            &self.storage[start..start + first],
            &self.storage[..len - first],
        )
    }

    /// Copy the readable bytes from `offset` on into `out` without removing them;
    /// returns the count (short when fewer bytes are readable).
    ///
    /// Inlined for the common case, a range within the readable bytes that does not
    /// wrap (every segment's payload but the rare one across the storage's end): no
    /// clamps, one bounds check, and a 33-64 byte copy made in place
    /// ([`copy_bytes`]); [`read_at_any`](Self::read_at_any) otherwise.
    #[inline(always)]
    pub fn read_at(&self, offset: usize, out: &mut [u8]) -> usize {
        let n = out.len();
        if offset <= self.length && n <= self.length - offset {
            // `head < capacity` and `offset + n <= length <= capacity`: no overflow.
            let start = self.head + offset;
            if start + n <= self.storage.len() {
                copy_bytes(out, &self.storage[start..start + n]);
                return n;
            }
        }
        self.read_at_any(offset, out)
    }

    /// [`read_at`](Self::read_at) in general: clamped, wrapping.
    #[inline(never)]
    fn read_at_any(&self, offset: usize, out: &mut [u8]) -> usize {
        let (a, b) = self.peek(offset, out.len());
        out[..a.len()].copy_from_slice(a);
        if !b.is_empty() {
            out[a.len()..a.len() + b.len()].copy_from_slice(b);
        }
        a.len() + b.len()
    }

    /// Write `data` into the free space, `offset` bytes past the end of the readable
    /// bytes, without making it readable: out-of-order receive data at
    /// `offset = SEG.SEQ - RCV.NXT`. Returns how many bytes were written (the prefix of
    /// `data` that fits in the free space; 0 when `offset` is at or past its end).
    pub fn write_unallocated(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.window();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        if n == 0 {
            return 0;
        }
        self.materialize();
        // length + offset < capacity, so the logical index is below 2·capacity.
        let start = self.wrap(self.length + offset);
        let first = n.min(self.capacity() - start);
        self.storage[start..start + first].copy_from_slice(&data[..first]);
        if first < n {
            // Wrapped (rarely): the rest at the start; no empty copy call otherwise.
            self.storage[..n - first].copy_from_slice(&data[first..n]);
        }
        n
    }

    /// Make the next `n` bytes past the end readable: the bytes written there by
    /// [`write_unallocated`](Self::write_unallocated) once the data before them has
    /// arrived. Clamped to the free space; returns how many bytes became readable.
    pub fn enqueue_unallocated(&mut self, n: usize) -> usize {
        let n = n.min(self.window());
        if n > 0 {
            self.materialize();
        }
        self.length += n;
        n
    }
}

impl fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .field("len", &self.length)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;

    /// A ring of `cap` bytes whose read position sits at `head`, empty.
    fn ring_at(cap: usize, head: usize) -> RingBuffer {
        let mut r = RingBuffer::new(cap);
        let junk = vec![0xa5; head];
        assert_eq!(r.enqueue_slice(&junk), head);
        assert_eq!(r.dequeue_allocated(head), head);
        assert!(r.is_empty());
        r
    }

    #[test]
    fn cached_storage_moves_to_a_new_ring_and_shows_no_old_data() {
        let mut cache = BufferCache::new(2, 64);
        let mut old = RingBuffer::new(16);
        assert_eq!(old.enqueue_slice(b"old bytes"), 9);
        cache.reclaim(&mut old);
        assert_eq!((cache.len(), old.allocated(), old.len()), (1, 0, 0));
        // A ring of another size is not served from it.
        let mut other = RingBuffer::new(32);
        cache.supply(&mut other);
        assert_eq!((cache.len(), other.allocated()), (1, 0));
        let mut new = RingBuffer::new(16);
        cache.supply(&mut new);
        assert_eq!((cache.len(), new.allocated(), new.len()), (0, 16, 0));
        assert_eq!(new.peek(0, 16), (&[][..], &[][..]), "nothing readable");
        assert_eq!(new.enqueue_slice(b"new"), 3);
        let mut out = [0u8; 16];
        assert_eq!(new.dequeue_slice(&mut out), 3);
        assert_eq!(&out[..3], b"new");
        // A ring that has storage refuses more; the bounds hold.
        assert!(new.provide(vec![0; 16].into_boxed_slice()).is_err());
        cache.put(vec![0; 65].into_boxed_slice());
        assert!(cache.is_empty(), "too large to keep");
        for _ in 0..3 {
            cache.put(vec![0; 16].into_boxed_slice());
        }
        assert_eq!(cache.len(), 2, "at most max_buffers");
    }

    #[test]
    fn copy_bytes_is_copy_from_slice() {
        let src: Vec<u8> = (0..=255).collect();
        for n in 0..=80 {
            for off in [0, 1, 7, 100] {
                let mut a = vec![0xee; n];
                let mut b = vec![0xee; n];
                copy_bytes(&mut a, &src[off..off + n]);
                b.copy_from_slice(&src[off..off + n]);
                assert_eq!(a, b, "{n} bytes from {off}");
            }
        }
    }

    #[test]
    fn enqueue_whole_is_enqueue_slice_when_it_fits_in_one_piece() {
        // Every head, fill and length on a small ring: `enqueue_whole` either does
        // exactly what `enqueue_slice` does and takes everything, or refuses and
        // leaves the ring as it was; `fits_whole` says which beforehand.
        let cap = 8;
        for head in 0..cap {
            for fill in 0..=cap {
                for len in 0..=cap + 1 {
                    let data: Vec<u8> = (0..len as u8).map(|b| b + 100).collect();
                    let mut a = ring_at(cap, head);
                    let mut b = ring_at(cap, head);
                    let filler = vec![7; fill];
                    assert_eq!(a.enqueue_slice(&filler), fill);
                    assert_eq!(b.enqueue_slice(&filler), fill);
                    let fits = b.fits_whole(len);
                    let took = b.enqueue_whole(&data);
                    assert_eq!(took, fits, "head {head} fill {fill} len {len}");
                    if took {
                        assert_eq!(a.enqueue_slice(&data), len, "head {head} fill {fill}");
                    }
                    assert_eq!((a.len(), a.window()), (b.len(), b.window()));
                    assert_eq!(joined(a.peek(0, cap)), joined(b.peek(0, cap)));
                }
            }
        }
    }

    fn joined(pieces: (&[u8], &[u8])) -> Vec<u8> {
        let mut v = pieces.0.to_vec();
        v.extend_from_slice(pieces.1);
        v
    }

    #[test]
    fn storage_is_allocated_on_first_write() {
        let mut r = RingBuffer::new(1000);
        assert_eq!((r.capacity(), r.allocated(), r.window()), (1000, 0, 1000));
        assert_eq!(r.peek(0, 10), (&[][..], &[][..]));
        assert_eq!(r.dequeue_allocated(5), 0);
        assert_eq!(r.enqueue_slice(b"abc"), 3);
        assert_eq!(r.allocated(), 1000);
        assert_eq!(r.peek(0, 3).0, b"abc");
    }

    #[test]
    fn sizes_and_window() {
        let mut r = RingBuffer::new(8);
        assert_eq!((r.capacity(), r.len(), r.window()), (8, 0, 8));
        assert!(r.is_empty() && !r.is_full());
        assert_eq!(r.enqueue_slice(b"abcdefghij"), 8); // takes what fits
        assert!(r.is_full() && !r.is_empty());
        assert_eq!(r.window(), 0);
        assert_eq!(r.enqueue_slice(b"x"), 0);
        let mut out = [0u8; 3];
        assert_eq!(r.dequeue_slice(&mut out), 3);
        assert_eq!(&out, b"abc");
        assert_eq!((r.len(), r.window()), (5, 3));
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.window(), 8);
    }

    #[test]
    fn enqueue_and_dequeue_wrap_at_every_head() {
        // Every start position × every length: data that straddles the end comes back
        // intact through dequeue_slice, peek and read_at.
        let cap = 7;
        for head in 0..cap {
            for n in 1..=cap {
                let data: Vec<u8> = (1..=n as u8).collect();
                let mut r = ring_at(cap, head);
                assert_eq!(r.enqueue_slice(&data), n);
                let (a, b) = r.peek(0, n);
                assert_eq!(a.len(), n.min(cap - head), "head {head} n {n}");
                assert_eq!(joined((a, b)), data);
                for off in 0..n {
                    let mut out = vec![0; n];
                    assert_eq!(r.read_at(off, &mut out), n - off);
                    assert_eq!(&out[..n - off], &data[off..]);
                }
                let mut out = vec![0; cap + 3];
                assert_eq!(r.dequeue_slice(&mut out), n);
                assert_eq!(&out[..n], &data[..]);
                assert!(r.is_empty());
            }
        }
    }

    #[test]
    fn peek_pieces_at_the_wrap() {
        let mut r = ring_at(8, 5);
        r.enqueue_slice(b"012345");
        // storage: [3 4 5 . . 0 1 2]
        assert_eq!(r.peek(0, 6), (&b"012"[..], &b"345"[..]));
        assert_eq!(r.peek(1, 2), (&b"12"[..], &b""[..]));
        assert_eq!(r.peek(2, 3), (&b"2"[..], &b"34"[..]));
        assert_eq!(r.peek(3, 3), (&b"345"[..], &b""[..]));
        assert_eq!(r.peek(4, 100), (&b"45"[..], &b""[..]));
        assert_eq!(r.peek(6, 1), (&b""[..], &b""[..]));
    }

    #[test]
    fn enqueue_with_offers_contiguous_free_space() {
        // Free space that wraps is offered one piece at a time.
        let mut r = ring_at(8, 5);
        r.enqueue_slice(b"a");
        // head 5, one byte: free is [6, 8) then [0, 5).
        let n = r.enqueue_with(|buf| {
            assert_eq!(buf.len(), 2);
            buf.copy_from_slice(b"bc");
            2
        });
        assert_eq!(n, 2);
        let n = r.enqueue_with(|buf| {
            assert_eq!(buf.len(), 5);
            buf[..3].copy_from_slice(b"def");
            3
        });
        assert_eq!(n, 3);
        assert_eq!(joined(r.peek(0, 8)), b"abcdef");
        // Free space below the head is one piece: [3, 5).
        let n = r.enqueue_with(|buf| {
            assert_eq!(buf.len(), 2);
            99 // more than offered: clamped
        });
        assert_eq!(n, 2);
        assert!(r.is_full());
        assert_eq!(r.enqueue_with(|buf| buf.len() + 1), 0);
    }

    #[test]
    fn unallocated_writes_become_readable_in_order() {
        // Out-of-order data at every head position, written across the wrap.
        let cap = 10;
        for head in 0..cap {
            let mut r = ring_at(cap, head);
            r.enqueue_slice(b"ab");
            // Segment "fgh" arrives before "cde".
            assert_eq!(r.write_unallocated(3, b"fgh"), 3);
            assert_eq!(r.len(), 2, "not readable yet");
            assert_eq!(r.write_unallocated(0, b"cde"), 3);
            assert_eq!(r.enqueue_unallocated(6), 6);
            assert_eq!(joined(r.peek(0, 10)), b"abcdefgh", "head {head}");
            // Bounded by the free space: 2 bytes left.
            assert_eq!(r.write_unallocated(1, b"xyz"), 1);
            assert_eq!(r.write_unallocated(2, b"xyz"), 0);
            assert_eq!(r.write_unallocated(0, b"ij"), 2);
            assert_eq!(r.enqueue_unallocated(5), 2);
            assert_eq!(joined(r.peek(0, 10)), b"abcdefghij");
        }
    }

    #[test]
    fn dequeue_rewinding_starts_an_emptied_ring_at_its_storage_start() {
        for head in 0..8 {
            let mut r = ring_at(8, head);
            assert_eq!(r.enqueue_slice(b"abcde"), 5);
            // Not emptied: the rest stays readable, in order, across the wrap.
            assert_eq!(r.dequeue_rewinding(2), 2);
            assert_eq!(joined(r.peek(0, 8)), b"cde", "head {head}");
            assert!(!r.fits_whole(8));
            // Emptied (asking for more than there is): the head is back at 0, so
            // the whole capacity takes a write in one piece.
            assert_eq!(r.dequeue_rewinding(9), 3);
            assert!(r.is_empty());
            assert!(r.fits_whole(8), "head {head}");
            assert!(r.enqueue_whole(b"12345678"));
            assert_eq!(joined(r.peek(0, 8)), b"12345678");
        }
        // As `dequeue_allocated` on an empty or unallocated ring: nothing to remove.
        assert_eq!(RingBuffer::new(4).dequeue_rewinding(3), 0);
    }

    #[test]
    fn rewind_if_empty_moves_only_an_empty_ring() {
        let mut r = ring_at(8, 5);
        assert_eq!(r.enqueue_slice(b"xy"), 2);
        r.rewind_if_empty();
        assert_eq!(joined(r.peek(0, 8)), b"xy", "data kept where it was");
        assert!(
            !r.fits_whole(2),
            "the head did not move: the end is still at 7"
        );
        assert_eq!(r.dequeue_slice(&mut [0; 2]), 2);
        assert!(!r.fits_whole(8));
        r.rewind_if_empty();
        assert!(r.fits_whole(8));
        assert_eq!(r.enqueue_slice(b"abcdefgh"), 8);
        assert_eq!(joined(r.peek(0, 8)), b"abcdefgh");
    }

    #[test]
    fn unallocated_data_survives_draining_the_readable_bytes() {
        // The ring must not realign when it empties: out-of-order bytes written past the
        // end would be lost.
        let mut r = ring_at(8, 3);
        r.enqueue_slice(b"ab");
        assert_eq!(r.write_unallocated(1, b"dd"), 2);
        let mut out = [0; 2];
        assert_eq!(r.dequeue_slice(&mut out), 2);
        assert!(r.is_empty());
        assert_eq!(r.write_unallocated(0, b"c"), 1);
        assert_eq!(r.enqueue_unallocated(3), 3);
        assert_eq!(joined(r.peek(0, 3)), b"cdd");
    }

    #[test]
    fn zero_and_one_byte_rings() {
        let mut z = RingBuffer::new(0);
        assert!(z.is_empty() && z.is_full());
        assert_eq!(z.enqueue_slice(b"abc"), 0);
        assert_eq!(z.enqueue_with(|b| b.len() + 5), 0);
        assert_eq!(z.write_unallocated(0, b"a"), 0);
        assert_eq!(z.enqueue_unallocated(3), 0);
        assert_eq!(z.dequeue_allocated(3), 0);
        assert_eq!(z.dequeue_slice(&mut [0; 4]), 0);
        assert_eq!(z.peek(0, 1), (&b""[..], &b""[..]));

        let mut one = RingBuffer::new(1);
        for i in 0..5u8 {
            assert_eq!(one.enqueue_slice(&[i, i]), 1);
            assert_eq!(one.peek(0, 1).0, &[i]);
            let mut out = [9];
            assert_eq!(one.dequeue_slice(&mut out), 1);
            assert_eq!(out, [i]);
        }
    }

    #[test]
    fn wild_offsets_and_lengths_clamp() {
        let mut r = ring_at(16, 11);
        r.enqueue_slice(b"0123456789");
        for &off in &[0, 1, 9, 10, 11, 15, 16, 17, usize::MAX / 2, usize::MAX] {
            for &len in &[0, 1, 6, 10, 16, 17, usize::MAX] {
                let (a, b) = r.peek(off, len);
                assert!(a.len() + b.len() <= 10usize.saturating_sub(off).min(len));
            }
            let mut out = [0; 32];
            assert!(r.read_at(off, &mut out) <= 10);
        }
        let mut w = ring_at(16, 11);
        w.enqueue_slice(b"0123456789");
        for &off in &[6, 7, 16, usize::MAX - 1, usize::MAX] {
            assert_eq!(w.write_unallocated(off, b"xyz"), 0, "offset {off}");
        }
        assert_eq!(w.write_unallocated(4, b"xyz"), 2);
        assert_eq!(w.enqueue_unallocated(usize::MAX), 6);
        assert_eq!(w.dequeue_allocated(usize::MAX), 16);
        assert!(w.is_empty());
    }

    /// Random operations against a `VecDeque` model. The model also tracks the bytes
    /// written past the end: one `Option<u8>` per free byte, `None` where nothing was
    /// written since that space was freed (its content is then unspecified).
    #[test]
    fn model_against_vecdeque() {
        for seed in 0..40u64 {
            let mut rng = Rand::from_u64(seed);
            let cap = 1 + rng.below(40) as usize;
            let mut ring = RingBuffer::new(cap);
            let mut data: VecDeque<Option<u8>> = VecDeque::new();
            let mut pending: VecDeque<Option<u8>> = (0..cap).map(|_| None).collect();
            let mut next = 0u8;
            let mut fresh = |n: usize| -> Vec<u8> {
                (0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect()
            };
            for _ in 0..2_000 {
                let n = rng.below(cap as u32 + 3) as usize;
                match rng.below(7) {
                    0 => {
                        let bytes = fresh(n);
                        let took = ring.enqueue_slice(&bytes);
                        assert_eq!(took, n.min(cap - data.len()));
                        for &b in &bytes[..took] {
                            data.push_back(Some(b));
                            pending.pop_front();
                        }
                    }
                    1 => {
                        let bytes = fresh(n);
                        let mut offered = 0;
                        let took = ring.enqueue_with(|buf| {
                            offered = buf.len();
                            let k = n.min(buf.len());
                            buf[..k].copy_from_slice(&bytes[..k]);
                            n
                        });
                        assert!(offered >= 1 || data.len() == cap);
                        assert_eq!(took, n.min(offered));
                        for &b in &bytes[..took] {
                            data.push_back(Some(b));
                            pending.pop_front();
                        }
                    }
                    2 => {
                        let mut out = vec![0; n];
                        let got = ring.dequeue_slice(&mut out);
                        assert_eq!(got, n.min(data.len()));
                        for &b in &out[..got] {
                            let m = data.pop_front().unwrap();
                            assert!(m.is_none() || m == Some(b));
                            pending.push_back(None);
                        }
                    }
                    3 => {
                        let got = ring.dequeue_allocated(n);
                        assert_eq!(got, n.min(data.len()));
                        for _ in 0..got {
                            data.pop_front();
                            pending.push_back(None);
                        }
                    }
                    4 => {
                        let off = rng.below(cap as u32 + 2) as usize;
                        let got = joined(ring.peek(off, n));
                        let want: Vec<_> = data.iter().skip(off).take(n).collect();
                        assert_eq!(got.len(), want.len());
                        for (g, w) in got.iter().zip(want) {
                            assert!(w.is_none() || *w == Some(*g));
                        }
                        let mut out = vec![0; n];
                        assert_eq!(ring.read_at(off, &mut out), got.len());
                        assert_eq!(&out[..got.len()], &got[..]);
                    }
                    5 => {
                        let off = rng.below(cap as u32 + 2) as usize;
                        let bytes = fresh(n);
                        let wrote = ring.write_unallocated(off, &bytes);
                        let free = cap - data.len();
                        assert_eq!(wrote, n.min(free.saturating_sub(off)));
                        for (i, &b) in bytes[..wrote].iter().enumerate() {
                            pending[off + i] = Some(b);
                        }
                    }
                    _ => {
                        let got = ring.enqueue_unallocated(n);
                        assert_eq!(got, n.min(cap - data.len()));
                        for _ in 0..got {
                            data.push_back(pending.pop_front().unwrap());
                        }
                    }
                }
                assert_eq!(ring.len(), data.len());
                assert_eq!(ring.window(), pending.len());
                assert_eq!(ring.is_full(), data.len() == cap);
                let all = joined(ring.peek(0, cap));
                assert_eq!(all.len(), data.len());
                for (g, w) in all.iter().zip(&data) {
                    assert!(w.is_none() || *w == Some(*g), "seed {seed}");
                }
            }
        }
    }

    /// `read_at`'s inlined case against `peek` (what the general case copies), for
    /// every offset and length around the in-place copy's sizes, wrapped or not: the
    /// same count, the same bytes, nothing written past them.
    #[test]
    fn read_at_matches_peek() {
        let cap = 100;
        for head in [0, 17, 40, 70, 99] {
            let mut r = RingBuffer::new(cap);
            r.enqueue_slice(&[0xee; 100][..head]);
            r.dequeue_allocated(head);
            let data: Vec<u8> = (0..90u8).map(|i| i.wrapping_mul(7) ^ 0x5a).collect();
            assert_eq!(r.enqueue_slice(&data), 90);
            for off in 0..=92 {
                for len in [0, 1, 31, 32, 33, 40, 63, 64, 65, 89, 90, 91] {
                    let want = joined(r.peek(off, len));
                    let mut out = vec![0xa5; len + 4];
                    let got = r.read_at(off, &mut out[..len]);
                    assert_eq!(got, want.len(), "head {head} off {off} len {len}");
                    assert_eq!(&out[..got], &want[..], "head {head} off {off} len {len}");
                    assert!(out[got..].iter().all(|&b| b == 0xa5));
                }
            }
        }
    }
}
