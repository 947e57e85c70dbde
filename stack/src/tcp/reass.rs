//! Out-of-order reassembly bookkeeping for the receiver: which byte ranges past
//! `RCV.NXT` have arrived, and the SACK blocks that report them.
//!
//! RFC 9293 §3.10.7.4 lets a receiver keep segments that arrive ahead of `RCV.NXT`
//! ("segments with higher beginning sequence numbers ... may be held for later
//! processing"). The bytes themselves go into the receive ring past its readable end
//! ([`RingBuffer::write_unallocated`](super::buffer::RingBuffer::write_unallocated));
//! the [`Assembler`] only remembers which ranges are there. For an in-window segment at
//! `offset = SEG.SEQ - RCV.NXT` the receive path does:
//!
//! ```text
//! assembler.add(offset, len)?;            // Err: too many holes, drop and count
//! rx.write_unallocated(offset, payload);
//! let n = assembler.remove_front();        // bytes now contiguous from RCV.NXT
//! rx.enqueue_unallocated(n);
//! rcv_nxt += n;
//! ```
//!
//! Ranges are kept sorted and merged in a `Vec` that is allocated on the first
//! out-of-order arrival and keeps its capacity afterwards (a connection that only ever
//! receives in order never allocates). Its length is bounded by a per-connection
//! [`limit`](Assembler::limit): at most [`MAX_RANGES`], fewer for a receive buffer
//! that cannot hold that many segments ([`range_limit`]). A peer that sends every other
//! byte cannot make the receiver allocate more than `limit` ranges; the segment that
//! would open one hole too many is refused instead.
//!
//! Why hundreds: a sender whose slow start overshoots a short bottleneck queue loses
//! every other segment of a window, hundreds of holes at once on a fast path. A
//! receiver that refuses segments past its 32nd hole never SACKs them, so the sender's
//! scoreboard counts them as in flight and only a retransmission timeout repairs them
//! (Linux keeps an out-of-order queue bounded only by the receive buffer).
//!
//! Costs: `add` finds its place by binary search; `remove_front` is O(1) apart from the
//! `Vec`'s front removal (a `memmove` of the remaining ranges): ranges are kept as
//! positions in the assembler's own wrapping numbering, relative to an origin that
//! moves with `RCV.NXT`, so releasing data does not rewrite every range.
//! [`sack_blocks`](Assembler::sack_blocks) makes one pass over the ranges.

use alloc::vec::Vec;
use core::fmt;

use crate::wire::seq::SeqNumber;
use crate::wire::tcp::MAX_SACK_BLOCKS;

/// Most distinct (non-adjacent) ranges one connection tracks beyond `RCV.NXT`.
pub const MAX_RANGES: usize = 1024;

/// Fewest ranges a connection may track, whatever its buffer: what the receiver always
/// allowed, and more than one window of SACK blocks.
pub const MIN_RANGES: usize = 32;

/// The range limit for a receive buffer of `rcv_buf` bytes that takes segments of at
/// most `mss` payload bytes: one range per segment the buffer holds (a range needs a
/// segment and a hole needs one missing), within [`MIN_RANGES`]..=[`MAX_RANGES`].
pub fn range_limit(rcv_buf: usize, mss: usize) -> usize {
    (rcv_buf / mss.max(1)).clamp(MIN_RANGES, MAX_RANGES)
}

/// [`Assembler::add`] refused a range: recording it would need more than
/// [`Assembler::limit`] distinct ranges. Nothing was recorded; drop the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyHoles;

impl fmt::Display for TooManyHoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many holes in the reassembly queue")
    }
}

/// One received range `[start, end)` as positions in the assembler's numbering (see
/// [`Assembler`]), and when it last grew.
#[derive(Clone, Copy, Default)]
struct Range {
    start: u32,
    end: u32,
    /// Value of [`Assembler::clock`] when a segment last landed in this range: the SACK
    /// recency order of RFC 2018 §4.
    stamp: u32,
}

/// The ranges received beyond `RCV.NXT` (see the module documentation).
///
/// Offsets are `u32`: TCP's window is at most 2^30 bytes (RFC 7323 §2.3), so every
/// in-window offset fits; larger offsets passed in are clamped to `u32::MAX`. Internally
/// a range is kept as `origin + offset` (wrapping), where `origin` is the position of
/// `RCV.NXT`; every live range lies less than 2^32 past the origin, so offsets come back
/// by wrapping subtraction.
#[derive(Clone)]
pub struct Assembler {
    /// Sorted by offset, pairwise neither overlapping nor adjacent.
    ranges: Vec<Range>,
    /// Position of `RCV.NXT` in the wrapping numbering of `ranges`.
    origin: u32,
    /// Most ranges kept (at most [`MAX_RANGES`]).
    limit: usize,
    /// Counts calls to `add`; a range's age is `clock - stamp` (wrapping).
    clock: u32,
}

impl Default for Assembler {
    fn default() -> Assembler {
        Assembler::new()
    }
}

#[inline]
fn clamp32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

impl Assembler {
    /// An assembler with nothing received out of order that tracks up to
    /// [`MAX_RANGES`] ranges. Allocates nothing until the first out-of-order range.
    pub const fn new() -> Assembler {
        Assembler::with_limit(MAX_RANGES)
    }

    /// An assembler that tracks at most `limit` ranges (at least 1, at most
    /// [`MAX_RANGES`]; see [`range_limit`]).
    pub const fn with_limit(limit: usize) -> Assembler {
        let limit = if limit == 0 {
            1
        } else if limit > MAX_RANGES {
            MAX_RANGES
        } else {
            limit
        };
        Assembler {
            ranges: Vec::new(),
            origin: 0,
            limit,
            clock: 0,
        }
    }

    /// Most distinct ranges this assembler tracks.
    #[inline]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// No range is recorded: everything received so far was in order.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of distinct ranges recorded.
    #[inline]
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Forget every range (connection reset, or a reneging receiver). The memory is
    /// kept for the next out-of-order burst.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// The offset past `RCV.NXT` of a position.
    #[inline]
    fn off(&self, pos: u32) -> u32 {
        pos.wrapping_sub(self.origin)
    }

    /// The recorded ranges as `(start, end)` offsets past `RCV.NXT`, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges
            .iter()
            .map(|r| (self.off(r.start) as usize, self.off(r.end) as usize))
    }

    /// Record that bytes `[offset, offset + len)` past `RCV.NXT` arrived. Overlapping
    /// and adjacent ranges merge; duplicates change nothing but recency. `len == 0`
    /// records nothing. Fails, recording nothing, when the range would be the
    /// `limit + 1`-th distinct one.
    pub fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyHoles> {
        let start = clamp32(offset);
        let end = clamp32(offset.saturating_add(len));
        if start >= end {
            return Ok(());
        }
        // Ranges lo..hi touch [start, end]: they end at or after `start` and begin at or
        // before `end` (equality is adjacency, which merges too). Both searches are
        // binary: the ranges are sorted and disjoint, so their ends are sorted too.
        let origin = self.origin;
        let off = |pos: u32| pos.wrapping_sub(origin);
        let lo = self.ranges.partition_point(|r| off(r.end) < start);
        let hi = lo + self.ranges[lo..].partition_point(|r| off(r.start) <= end);
        if lo == hi && self.ranges.len() >= self.limit {
            if start != 0 {
                return Err(TooManyHoles);
            }
            // Data at RCV.NXT is always taken: refusing it would deadlock the
            // connection, since every retransmission of the first hole would be refused
            // too. Make room by forgetting the highest range (reneging on it, as Linux's
            // tcp_prune_ofo_queue does from the tail; RFC 2018 §8 allows it); its bytes
            // will arrive again.
            self.ranges.pop();
        }
        self.clock = self.clock.wrapping_add(1);
        let stamp = self.clock;
        let pos = |o: u32| origin.wrapping_add(o);
        if lo == hi {
            // The first out-of-order range allocates; afterwards the capacity is kept.
            self.ranges.insert(
                lo,
                Range {
                    start: pos(start),
                    end: pos(end),
                    stamp,
                },
            );
        } else {
            let merged = Range {
                start: pos(start.min(off(self.ranges[lo].start))),
                end: pos(end.max(off(self.ranges[hi - 1].end))),
                stamp,
            };
            self.ranges[lo] = merged;
            self.ranges.drain(lo + 1..hi);
        }
        Ok(())
    }

    /// If data is now contiguous from `RCV.NXT` (a range starts at offset 0), remove that
    /// range and return its length: the number of bytes to make readable and to advance
    /// `RCV.NXT` by. The remaining ranges keep their offsets relative to the new
    /// `RCV.NXT`. Returns 0 while the first hole is unfilled.
    pub fn remove_front(&mut self) -> usize {
        match self.ranges.first() {
            Some(r) if r.start == self.origin => {
                let n = self.off(r.end);
                self.origin = r.end;
                self.ranges.remove(0);
                n as usize
            }
            _ => 0,
        }
    }

    /// Fill `out` with up to `max` (at most [`MAX_SACK_BLOCKS`]) SACK blocks as absolute
    /// `[left, right)` sequence numbers and return how many were written.
    ///
    /// RFC 2018 §4: the first block holds the most recently received segment; the rest
    /// repeat the most recently reported blocks. Here every block is ordered by when a
    /// segment last landed in it, newest first, which satisfies both rules. A segment
    /// that made data contiguous is covered by the cumulative ACK and reported by no
    /// block.
    pub fn sack_blocks(
        &self,
        rcv_nxt: SeqNumber,
        out: &mut [(SeqNumber, SeqNumber); MAX_SACK_BLOCKS],
        max: usize,
    ) -> usize {
        let want = max.min(MAX_SACK_BLOCKS).min(self.ranges.len());
        if want == 0 {
            return 0;
        }
        // One pass keeping the `want` youngest ranges, youngest first: no sort, no
        // allocation. Ages are distinct (each `add` stamps one range), so the order is
        // total.
        let mut best = [(u32::MAX, 0usize); MAX_SACK_BLOCKS];
        let mut found = 0;
        for (i, r) in self.ranges.iter().enumerate() {
            let age = self.clock.wrapping_sub(r.stamp);
            if found == want && age >= best[want - 1].0 {
                continue;
            }
            let mut j = found.min(want - 1);
            while j > 0 && best[j - 1].0 > age {
                best[j] = best[j - 1];
                j -= 1;
            }
            best[j] = (age, i);
            found = (found + 1).min(want);
        }
        for (slot, &(_, i)) in out.iter_mut().zip(&best[..found]) {
            let r = self.ranges[i];
            *slot = (rcv_nxt + self.off(r.start), rcv_nxt + self.off(r.end));
        }
        found
    }
}

impl fmt::Debug for Assembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ranges().map(|(s, e)| s..e))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use alloc::vec;
    use alloc::vec::Vec;

    fn ranges(a: &Assembler) -> Vec<(usize, usize)> {
        a.ranges().collect()
    }

    fn blocks(a: &Assembler, rcv_nxt: u32, max: usize) -> Vec<(u32, u32)> {
        let mut out = [(SeqNumber(0), SeqNumber(0)); MAX_SACK_BLOCKS];
        let n = a.sack_blocks(SeqNumber(rcv_nxt), &mut out, max);
        out[..n].iter().map(|&(l, r)| (l.0, r.0)).collect()
    }

    #[test]
    fn in_order_data_is_contiguous_at_once() {
        let mut a = Assembler::new();
        assert!(a.is_empty());
        assert_eq!(a.remove_front(), 0);
        a.add(0, 100).unwrap();
        assert_eq!(a.remove_front(), 100);
        assert!(a.is_empty());
        assert_eq!(a.remove_front(), 0);
        a.add(0, 0).unwrap(); // empty segment: nothing
        assert!(a.is_empty());
    }

    #[test]
    fn out_of_order_fill_releases_everything_joined() {
        let mut a = Assembler::new();
        a.add(10, 10).unwrap(); // [10, 20)
        a.add(30, 5).unwrap(); // [30, 35)
        assert_eq!(ranges(&a), vec![(10, 20), (30, 35)]);
        assert_eq!(a.remove_front(), 0, "hole at [0, 10)");
        a.add(0, 10).unwrap(); // fills the first hole, joins [10, 20)
        assert_eq!(a.remove_front(), 20);
        // [30, 35) is now 10 bytes past the new RCV.NXT.
        assert_eq!(ranges(&a), vec![(10, 15)]);
        a.add(0, 10).unwrap();
        assert_eq!(a.remove_front(), 15);
        assert!(a.is_empty());
    }

    #[test]
    fn overlaps_and_adjacency_merge() {
        let mut a = Assembler::new();
        a.add(10, 5).unwrap(); // [10, 15)
        a.add(20, 5).unwrap(); // [20, 25)
        a.add(30, 5).unwrap(); // [30, 35)
        a.add(15, 5).unwrap(); // adjacent on both sides: [10, 25)
        assert_eq!(ranges(&a), vec![(10, 25), (30, 35)]);
        a.add(8, 30).unwrap(); // covers everything
        assert_eq!(ranges(&a), vec![(8, 38)]);
        a.add(40, 2).unwrap();
        a.add(37, 4).unwrap(); // overlaps the end of one and the start of the next
        assert_eq!(ranges(&a), vec![(8, 42)]);
        a.add(2, 3).unwrap(); // before, not adjacent
        assert_eq!(ranges(&a), vec![(2, 5), (8, 42)]);
        a.add(5, 3).unwrap(); // exactly the gap
        assert_eq!(ranges(&a), vec![(2, 42)]);
    }

    #[test]
    fn duplicates_change_nothing() {
        let mut a = Assembler::new();
        a.add(10, 10).unwrap();
        for (off, len) in [(10, 10), (12, 3), (10, 1), (19, 1)] {
            a.add(off, len).unwrap();
            assert_eq!(ranges(&a), vec![(10, 20)]);
        }
    }

    #[test]
    fn holes_are_bounded() {
        let mut a = Assembler::new();
        for i in 0..MAX_RANGES {
            a.add(10 * i + 5, 1).unwrap();
        }
        let before = ranges(&a);
        assert_eq!(before.len(), MAX_RANGES);
        // One more distinct range: refused, nothing recorded.
        assert_eq!(a.add(10 * MAX_RANGES + 5, 1), Err(TooManyHoles));
        assert_eq!(a.add(1, 1), Err(TooManyHoles));
        assert_eq!(ranges(&a), before);
        // Growing or joining existing ranges is still fine when full.
        a.add(6, 2).unwrap();
        a.add(15, 1).unwrap(); // duplicate
        a.add(8, 7).unwrap(); // joins the first two
        assert_eq!(ranges(&a).len(), MAX_RANGES - 1);
        a.add(1, 1).unwrap(); // room again
        assert_eq!(ranges(&a).len(), MAX_RANGES);
    }

    #[test]
    fn data_at_rcv_nxt_is_taken_when_full() {
        let mut a = Assembler::new();
        // 32 one-byte ranges from offset 3: the first hole is 3 bytes wide, so neither
        // byte 0 nor byte 1 joins a range.
        for i in 0..MAX_RANGES {
            a.add(10 * i + 3, 1).unwrap();
        }
        assert_eq!(a.add(1, 1), Err(TooManyHoles));
        a.add(0, 1).unwrap();
        // The highest range was given up for it; the rest are intact.
        let r = ranges(&a);
        let last = 10 * (MAX_RANGES - 2) + 3;
        assert_eq!(r.len(), MAX_RANGES);
        assert_eq!((r[0], r[1]), ((0, 1), (3, 4)));
        assert_eq!(r[MAX_RANGES - 1], (last, last + 1));
        assert_eq!(a.remove_front(), 1);
        assert_eq!(ranges(&a).len(), MAX_RANGES - 1);
    }

    #[test]
    fn wild_offsets_do_not_panic() {
        let mut a = Assembler::new();
        a.add(usize::MAX, usize::MAX).unwrap(); // clamps to nothing
        assert!(a.is_empty());
        a.add(u32::MAX as usize - 1, usize::MAX).unwrap();
        assert_eq!(ranges(&a), vec![(u32::MAX as usize - 1, u32::MAX as usize)]);
        a.clear();
        assert!(a.is_empty());
    }

    #[test]
    fn first_sack_block_is_the_latest_segment() {
        let mut a = Assembler::new();
        a.add(10, 10).unwrap(); // A [10, 20)
        a.add(30, 10).unwrap(); // B [30, 40)
        a.add(50, 10).unwrap(); // C [50, 60)
        assert_eq!(
            blocks(&a, 1000, 4),
            vec![(1050, 1060), (1030, 1040), (1010, 1020)]
        );
        a.add(20, 5).unwrap(); // extends A: A becomes the first block
        assert_eq!(
            blocks(&a, 1000, 4),
            vec![(1010, 1025), (1050, 1060), (1030, 1040)]
        );
        a.add(35, 1).unwrap(); // a duplicate inside B still reports B first
        assert_eq!(blocks(&a, 1000, 2), vec![(1030, 1040), (1010, 1025)]);
        a.add(70, 10).unwrap(); // D
        a.add(90, 10).unwrap(); // E
                                // Only `max` blocks, the most recent ones (3 fit next to timestamps).
        assert_eq!(
            blocks(&a, 1000, 3),
            vec![(1090, 1100), (1070, 1080), (1030, 1040)]
        );
        assert_eq!(blocks(&a, 1000, 9).len(), 4);
        assert_eq!(blocks(&a, 1000, 0), vec![]);
        // In-order data that arrives is covered by the ACK: no block for it.
        a.add(0, 10).unwrap();
        assert_eq!(a.remove_front(), 25);
        assert_eq!(blocks(&a, 1025, 1), vec![(1090, 1100)]);
    }

    #[test]
    fn sack_blocks_wrap_the_sequence_space() {
        let mut a = Assembler::new();
        a.add(10, 20).unwrap();
        let rcv_nxt = u32::MAX - 14;
        // [rcv_nxt + 10, rcv_nxt + 30) straddles 2^32.
        assert_eq!(blocks(&a, rcv_nxt, 1), vec![(u32::MAX - 4, 15)]);
    }

    /// Random adds against a bitmap of received bytes: the ranges are exactly its maximal
    /// runs, and remove_front releases exactly the leading run.
    #[test]
    fn model_against_bitmap() {
        const SPAN: usize = 600;
        for seed in 0..100u64 {
            let mut rng = Rand::from_u64(seed);
            // Half the seeds with the smallest limit, so that refusals happen too.
            let limit = if seed % 2 == 0 {
                MIN_RANGES
            } else {
                MAX_RANGES
            };
            let mut a = Assembler::with_limit(limit);
            let mut got = vec![false; SPAN * 2];
            let mut last = None;
            for _ in 0..300 {
                let off = rng.below(SPAN as u32) as usize;
                let len = 1 + rng.below(40) as usize;
                let before = ranges(&a);
                match a.add(off, len) {
                    Ok(()) => {
                        got[off..off + len].iter_mut().for_each(|b| *b = true);
                        last = Some(off);
                    }
                    Err(TooManyHoles) => {
                        assert_eq!(ranges(&a), before);
                        assert_eq!(before.len(), limit);
                    }
                }
                let mut runs = Vec::new();
                let mut i = 0;
                while i < got.len() {
                    if got[i] {
                        let s = i;
                        while i < got.len() && got[i] {
                            i += 1;
                        }
                        runs.push((s, i));
                    } else {
                        i += 1;
                    }
                }
                assert_eq!(ranges(&a), runs, "seed {seed}");
                assert!(runs.len() <= limit);
                if let Some(off) = last {
                    // RFC 2018 §4: the first block holds the latest accepted segment.
                    let (l, r) = blocks(&a, 0, 1)[0];
                    assert!((l as usize..r as usize).contains(&off), "seed {seed}");
                }
                let lead = runs.first().filter(|r| r.0 == 0).map_or(0, |r| r.1);
                if rng.chance(0.3) {
                    assert_eq!(a.remove_front(), lead);
                    got.drain(..lead);
                    got.resize(SPAN * 2, false);
                    last = None;
                }
            }
        }
    }

    #[test]
    fn hundreds_of_holes_are_tracked_and_reported() {
        // A slow-start overshoot into a short queue: every other segment of a large
        // window lost. Every island is held (and so can be SACKed), up to the limit.
        const MSS: usize = 1448;
        let mut a = Assembler::with_limit(range_limit(4 << 20, MSS));
        assert_eq!(a.limit(), MAX_RANGES);
        for i in 0..MAX_RANGES {
            a.add((2 * i + 1) * MSS, MSS).unwrap();
        }
        assert_eq!(a.len(), MAX_RANGES);
        assert_eq!(a.add((2 * MAX_RANGES + 1) * MSS, MSS), Err(TooManyHoles));
        // The newest island is the first block; the next ones are the next youngest.
        let last = (2 * MAX_RANGES - 1) * MSS;
        assert_eq!(
            blocks(&a, 0, 3),
            vec![
                (last as u32, (last + MSS) as u32),
                ((last - 2 * MSS) as u32, (last - MSS) as u32),
                ((last - 4 * MSS) as u32, (last - 3 * MSS) as u32),
            ]
        );
        // Filling the holes in order releases island after island.
        let mut released = 0;
        for i in 0..MAX_RANGES {
            a.add(0, MSS).unwrap();
            let n = a.remove_front();
            assert_eq!(n, 2 * MSS, "hole {i}");
            released += n;
        }
        assert!(a.is_empty());
        assert_eq!(released, 2 * MAX_RANGES * MSS);
    }

    #[test]
    fn memory_is_taken_on_first_out_of_order_data_and_kept() {
        // (The receive path does not call the assembler for in-order data while it is
        // empty, so an in-order connection never allocates.)
        let mut a = Assembler::new();
        assert_eq!(a.ranges.capacity(), 0);
        a.add(10, 10).unwrap();
        let cap = a.ranges.capacity();
        assert!(cap >= 1);
        a.add(0, 10).unwrap();
        assert_eq!(a.remove_front(), 20);
        assert!(a.is_empty());
        assert_eq!(a.ranges.capacity(), cap, "capacity kept for the next burst");
    }

    #[test]
    fn the_limit_follows_the_buffer() {
        // One range per segment the buffer can hold, within MIN..=MAX.
        assert_eq!(range_limit(64 * 1024, 1460), 44);
        assert_eq!(range_limit(8192, 1460), MIN_RANGES);
        assert_eq!(range_limit(4 << 20, 1448), MAX_RANGES);
        assert_eq!(range_limit(1 << 20, 0), MAX_RANGES);
        assert_eq!(Assembler::with_limit(0).limit(), 1);
        assert_eq!(Assembler::with_limit(usize::MAX).limit(), MAX_RANGES);
        // A small limit refuses the extra hole, still takes data at RCV.NXT.
        let mut a = Assembler::with_limit(2);
        a.add(10, 1).unwrap();
        a.add(20, 1).unwrap();
        assert_eq!(a.add(30, 1), Err(TooManyHoles));
        a.add(0, 1).unwrap();
        assert_eq!(ranges(&a), vec![(0, 1), (10, 11)]);
    }

    #[test]
    fn offsets_survive_the_origin_wrapping() {
        // The internal origin moves with every release and wraps past 2^32: offsets
        // must come back unchanged.
        let mut a = Assembler::new();
        let step = 1usize << 30;
        for _ in 0..9 {
            a.add(step + 5, 10).unwrap();
            a.add(0, step).unwrap();
            assert_eq!(a.remove_front(), step);
            assert_eq!(ranges(&a), vec![(5, 15)]);
            a.add(0, 5).unwrap();
            assert_eq!(a.remove_front(), 15);
        }
        assert!(a.origin < (1 << 31), "wrapped at least once: {}", a.origin);
    }
}
