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
//! Ranges are kept sorted and merged in a fixed array of [`MAX_RANGES`]: a peer that
//! sends every other byte cannot make the receiver allocate; the segment that would open
//! one hole too many is refused instead.

use core::fmt;

use crate::wire::seq::SeqNumber;
use crate::wire::tcp::MAX_SACK_BLOCKS;

/// Most distinct (non-adjacent) ranges one connection tracks beyond `RCV.NXT`.
pub const MAX_RANGES: usize = 32;

/// [`Assembler::add`] refused a range: recording it would need more than
/// [`MAX_RANGES`] distinct ranges. Nothing was recorded; drop the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyHoles;

impl fmt::Display for TooManyHoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many holes in the reassembly queue")
    }
}

/// One received range `[start, end)` in bytes past `RCV.NXT`, and when it last grew.
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
/// Offsets are stored as `u32`: TCP's window is at most 2^30 bytes (RFC 7323 §2.3), so
/// every in-window offset fits; larger offsets passed in are clamped to `u32::MAX`.
#[derive(Clone)]
pub struct Assembler {
    /// Sorted by `start`, pairwise neither overlapping nor adjacent; `ranges[..count]`
    /// are live.
    ranges: [Range; MAX_RANGES],
    count: usize,
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
    /// An assembler with nothing received out of order.
    pub const fn new() -> Assembler {
        Assembler {
            ranges: [Range {
                start: 0,
                end: 0,
                stamp: 0,
            }; MAX_RANGES],
            count: 0,
            clock: 0,
        }
    }

    /// No range is recorded: everything received so far was in order.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forget every range (connection reset, or a reneging receiver).
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// The recorded ranges as `(start, end)` offsets past `RCV.NXT`, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.live()
            .iter()
            .map(|r| (r.start as usize, r.end as usize))
    }

    fn live(&self) -> &[Range] {
        &self.ranges[..self.count]
    }

    /// Record that bytes `[offset, offset + len)` past `RCV.NXT` arrived. Overlapping
    /// and adjacent ranges merge; duplicates change nothing but recency. `len == 0`
    /// records nothing. Fails, recording nothing, when the range would be the
    /// `MAX_RANGES + 1`-th distinct one.
    pub fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyHoles> {
        let start = clamp32(offset);
        let end = clamp32(offset.saturating_add(len));
        if start >= end {
            return Ok(());
        }
        // Ranges lo..hi touch [start, end]: they end at or after `start` and begin at or
        // before `end` (equality is adjacency, which merges too).
        let lo = self
            .live()
            .iter()
            .position(|r| r.end >= start)
            .unwrap_or(self.count);
        let hi = lo
            + self.ranges[lo..self.count]
                .iter()
                .take_while(|r| r.start <= end)
                .count();
        if lo == hi && self.count == MAX_RANGES {
            if start != 0 {
                return Err(TooManyHoles);
            }
            // Data at RCV.NXT is always taken: refusing it would deadlock the
            // connection, since every retransmission of the first hole would be refused
            // too. Make room by forgetting the highest range (reneging on it, as Linux's
            // tcp_prune_ofo_queue does from the tail; RFC 2018 §8 allows it); its bytes
            // will arrive again.
            self.count -= 1;
        }
        self.clock = self.clock.wrapping_add(1);
        let stamp = self.clock;
        if lo == hi {
            self.ranges.copy_within(lo..self.count, lo + 1);
            self.ranges[lo] = Range { start, end, stamp };
            self.count += 1;
        } else {
            let merged = Range {
                start: start.min(self.ranges[lo].start),
                end: end.max(self.ranges[hi - 1].end),
                stamp,
            };
            self.ranges[lo] = merged;
            self.ranges.copy_within(hi..self.count, lo + 1);
            self.count -= hi - lo - 1;
        }
        Ok(())
    }

    /// If data is now contiguous from `RCV.NXT` (a range starts at offset 0), remove that
    /// range and return its length: the number of bytes to make readable and to advance
    /// `RCV.NXT` by. The remaining ranges are shifted down by the same amount, so they
    /// stay relative to the new `RCV.NXT`. Returns 0 while the first hole is unfilled.
    pub fn remove_front(&mut self) -> usize {
        match self.live().first() {
            Some(r) if r.start == 0 => {
                let n = r.end;
                self.ranges.copy_within(1..self.count, 0);
                self.count -= 1;
                for r in &mut self.ranges[..self.count] {
                    // Merged ranges are not adjacent, so every remaining start is > n.
                    r.start -= n;
                    r.end -= n;
                }
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
        let want = max.min(MAX_SACK_BLOCKS).min(self.count);
        // Repeated selection of the next-youngest range: at most 4 × 32 steps, no sort
        // and no allocation. Keys (age, index) are distinct, so none is picked twice.
        let mut prev: Option<(u32, usize)> = None;
        for slot in out.iter_mut().take(want) {
            let mut best: Option<(u32, usize)> = None;
            for (i, r) in self.live().iter().enumerate() {
                let key = (self.clock.wrapping_sub(r.stamp), i);
                if prev.is_some_and(|p| key <= p) {
                    continue;
                }
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
            let Some((age, i)) = best else { break };
            let r = self.ranges[i];
            *slot = (rcv_nxt + r.start, rcv_nxt + r.end);
            prev = Some((age, i));
        }
        want
    }
}

impl fmt::Debug for Assembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.live().iter().map(|r| r.start..r.end))
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
        for seed in 0..50u64 {
            let mut rng = Rand::from_u64(seed);
            let mut a = Assembler::new();
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
                        assert_eq!(before.len(), MAX_RANGES);
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
                assert!(runs.len() <= MAX_RANGES);
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
}
