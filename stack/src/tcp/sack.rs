//! The sender's SACK scoreboard and the loss-recovery queries of RFC 6675.
//!
//! The scoreboard remembers which ranges of `[SND.UNA, SND.MAX)` the receiver has
//! reported holding (RFC 2018 SACK blocks), as absolute sequence numbers in a fixed
//! array of [`MAX_BLOCKS`]. From it come the three routines of RFC 6675 §4 that drive
//! SACK-based loss recovery: `IsLost` ([`Scoreboard::is_lost`]), `SetPipe`
//! ([`Scoreboard::pipe`]) and rule 1 of `NextSeg` ([`Scoreboard::next_seg`]; rules 2
//! and 3, new data and the rescue retransmission, are the caller's, since they depend
//! on the send buffer and window).
//!
//! RFC 6675 walks the sequence space octet by octet (or segment by segment). Every
//! octet of one hole -- a gap between SACKed ranges -- has the same SACKed data above
//! it, so `IsLost` has one answer per hole; the routines here walk the holes instead and
//! cost O(ranges), not O(window / MSS).
//!
//! `HighRxt` is taken **exclusive** here: one past the last octet retransmitted during
//! this recovery (RFC 6675 §5 keeps the last octet itself), and `SND.UNA` when nothing
//! has been retransmitted yet. An octet `S` has been retransmitted iff `S < high_rxt`.
//!
//! Bounded memory: when a new, disjoint SACK range arrives and all [`MAX_BLOCKS`] slots
//! are taken, the lowest range is forgotten (or the new one, if it is lowest). Forgetting
//! is the safe direction: the sender may retransmit data the receiver already holds, but
//! never skips data the receiver lacks, as merging two ranges across a hole would.
//!
//! With RACK-TLP on (`TcbConfig::rack`, the default), losses are found by time and the
//! per-segment SACKed / lost marks live in the sent log
//! ([`SentLog`](super::sent::SentLog)); the scoreboard then validates each ACK's blocks
//! ([`valid_block`]) and spots D-SACKs, and its RFC 6675 queries drive recovery only
//! when RACK is off.
//!
//! After a retransmission timeout, [`Scoreboard::clear`] it: a receiver may renege on
//! SACKed data, so RFC 2018 §8 has the sender turn off all SACKed bits after a timeout
//! (see also RFC 6675 §5.1). Clearing, rather than marking, is the simplest way to never
//! trust a stale scoreboard.

use core::fmt;

use crate::wire::seq::SeqNumber;

/// Most disjoint SACKed ranges the scoreboard keeps.
pub const MAX_BLOCKS: usize = 32;

/// RFC 6675 §2 `DupThresh`: the default number of duplicate ACKs (here: SACKed ranges,
/// or that many segments' worth of SACKed octets) above a hole that mark it lost.
pub const DUP_THRESH: u32 = 3;

/// What one ACK's SACK blocks changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SackUpdate {
    /// Octets SACKed by this ACK that were not SACKed before (for congestion control,
    /// e.g. PRR's `DeliveredData`, RFC 6937).
    pub newly_sacked_bytes: u32,
    /// The first block was a D-SACK (RFC 2883): the receiver got some data twice, a hint
    /// that a retransmission was spurious.
    pub dsack: bool,
}

/// The SACKed ranges within `[SND.UNA, SND.MAX)` (see the module documentation).
#[derive(Clone)]
pub struct Scoreboard {
    /// `[left, right)` ranges, non-empty, ascending from `SND.UNA`, pairwise neither
    /// overlapping nor adjacent; `ranges[..count]` are live. All lie within one send
    /// window (< 2^31), so modular comparisons among them are consistent.
    ranges: [(SeqNumber, SeqNumber); MAX_BLOCKS],
    count: usize,
}

impl Default for Scoreboard {
    fn default() -> Scoreboard {
        Scoreboard::new()
    }
}

/// Ranges as octet offsets from `SND.UNA`, clipped to `[0, snd_max - snd_una]`.
struct Offsets {
    ranges: [(u32, u32); MAX_BLOCKS],
    count: usize,
    /// `snd_max - snd_una`.
    end: u32,
}

impl Offsets {
    fn live(&self) -> &[(u32, u32)] {
        &self.ranges[..self.count]
    }

    fn sacked(&self) -> u64 {
        self.live().iter().map(|&(s, e)| u64::from(e - s)).sum()
    }
}

/// A SACK block as the sender may use it: `[left, right)` clipped to start at
/// `snd_una`, or `None` when it carries no information (empty, inverted, or ending
/// outside `(snd_una, snd_max]`: no receiver holds data that was never sent).
pub fn valid_block(
    left: SeqNumber,
    right: SeqNumber,
    snd_una: SeqNumber,
    snd_max: SeqNumber,
) -> Option<(SeqNumber, SeqNumber)> {
    // A valid block ends inside (SND.UNA, SND.MAX] and starts before it ends.
    if right == snd_una || !right.between_inclusive(snd_una, snd_max) || !left.lt(right) {
        return None;
    }
    let left = if left.between(snd_una, right) {
        left
    } else {
        snd_una
    };
    Some((left, right))
}

/// The length of `[l, r)` for `l` before `r` (within one window).
#[inline]
fn span(l: SeqNumber, r: SeqNumber) -> u32 {
    r.0.wrapping_sub(l.0)
}

/// RFC 6675 §4 `IsLost` for an octet with `blocks` discontiguous SACKed ranges and
/// `bytes` SACKed octets above it.
#[inline]
fn lost(blocks: u32, bytes: u64, mss: u32, dup_thresh: u32) -> bool {
    blocks >= dup_thresh || bytes > u64::from(dup_thresh.saturating_sub(1)) * u64::from(mss)
}

impl Scoreboard {
    /// An empty scoreboard.
    pub const fn new() -> Scoreboard {
        Scoreboard {
            ranges: [(SeqNumber(0), SeqNumber(0)); MAX_BLOCKS],
            count: 0,
        }
    }

    /// Nothing is SACKed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forget everything (after an RTO; see the module documentation).
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// The SACKed ranges `[left, right)`, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (SeqNumber, SeqNumber)> + '_ {
        self.live().iter().copied()
    }

    fn live(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges[..self.count]
    }

    /// Process the SACK blocks of an acceptable ACK, in the order they appear in the
    /// option. `snd_una` is the cumulative ACK point *after* this ACK.
    ///
    /// Ranges now at or below `snd_una` are dropped. RFC 2883 §4: the first block is a
    /// D-SACK when it starts below the cumulative ACK or lies within the second block;
    /// it is reported and not recorded. Other blocks are clipped to start at `snd_una`
    /// and ignored when they are empty, inverted, or reach past `snd_max` (no receiver
    /// holds data that was never sent): nothing a peer sends can corrupt the scoreboard
    /// or grow it past [`MAX_BLOCKS`].
    ///
    /// For an old ACK (`SEG.ACK < SND.UNA`, reordered) blocks the receiver sent above its
    /// own ACK may now lie below `snd_una` and read as a D-SACK; callers that use
    /// `dsack` for undo decisions should only trust it on ACKs that are not old.
    pub fn on_ack(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        sack_blocks: &[(SeqNumber, SeqNumber)],
    ) -> SackUpdate {
        self.trim(snd_una, snd_max);
        let mut update = SackUpdate::default();
        let mut blocks = sack_blocks;
        if let [(l0, r0), rest @ ..] = sack_blocks {
            let (l0, r0) = (*l0, *r0);
            let below_ack = l0.lt(r0) && l0.lt(snd_una);
            let in_second = rest
                .first()
                .is_some_and(|&(l1, r1)| l1.lt(r1) && l0.ge(l1) && r0.le(r1));
            if below_ack || in_second {
                update.dsack = true;
                blocks = rest;
            }
        }
        for &(left, right) in blocks {
            if let Some((left, right)) = valid_block(left, right, snd_una, snd_max) {
                update.newly_sacked_bytes += self.insert(left, right);
            }
        }
        update
    }

    /// Drop what lies outside `[snd_una, snd_max)`, clipping ranges that straddle either
    /// end.
    fn trim(&mut self, snd_una: SeqNumber, snd_max: SeqNumber) {
        let mut kept = 0;
        for i in 0..self.count {
            let (left, right) = self.ranges[i];
            if right.le(snd_una) || left.ge(snd_max) {
                continue;
            }
            self.ranges[kept] = (left.max(snd_una), right.min(snd_max));
            kept += 1;
        }
        self.count = kept;
    }

    /// Merge `[left, right)` (non-empty, within the window) into the ranges; returns how
    /// many of its octets were not SACKed before (0 if it had to be forgotten).
    fn insert(&mut self, left: SeqNumber, right: SeqNumber) -> u32 {
        // Ranges lo..hi touch [left, right]: end at or after `left`, begin at or before
        // `right`.
        let lo = self
            .live()
            .iter()
            .position(|&(_, r)| r.ge(left))
            .unwrap_or(self.count);
        let hi = lo
            + self.ranges[lo..self.count]
                .iter()
                .take_while(|&&(l, _)| l.le(right))
                .count();
        let covered: u32 = self.ranges[lo..hi]
            .iter()
            .map(|&(l, r)| {
                let (a, b) = (l.max(left), r.min(right));
                if a.lt(b) {
                    span(a, b)
                } else {
                    0
                }
            })
            .sum();
        let added = span(left, right) - covered;
        if lo < hi {
            let merged = (
                left.min(self.ranges[lo].0),
                right.max(self.ranges[hi - 1].1),
            );
            self.ranges[lo] = merged;
            self.ranges.copy_within(hi..self.count, lo + 1);
            self.count -= hi - lo - 1;
        } else if self.count < MAX_BLOCKS {
            self.ranges.copy_within(lo..self.count, lo + 1);
            self.ranges[lo] = (left, right);
            self.count += 1;
        } else if lo == 0 {
            // Full, and the new range is the lowest: it is the one forgotten.
            return 0;
        } else {
            // Full: forget the lowest range to keep the higher ones.
            self.ranges.copy_within(1..lo, 0);
            self.ranges[lo - 1] = (left, right);
        }
        added
    }

    /// Octet `seq` has been SACKed.
    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        self.live().iter().any(|&(l, r)| seq.between(l, r))
    }

    /// Octets SACKed in total.
    pub fn sacked_bytes(&self) -> u32 {
        self.live().iter().map(|&(l, r)| span(l, r)).sum()
    }

    /// One past the highest SACKed octet (the right edge of the highest range).
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.live().last().map(|&(_, r)| r)
    }

    /// RFC 6675 §4 `IsLost(seq)`: at least `dup_thresh` discontiguous SACKed ranges lie
    /// above `seq`, or more than `(dup_thresh - 1) · mss` octets above `seq` are SACKed.
    ///
    /// The scoreboard keeps ranges, not segments, so "discontiguous SACKed sequences"
    /// counts ranges: several small segments SACKed back to back count once (the octet
    /// rule still applies to them).
    pub fn is_lost(&self, seq: SeqNumber, mss: u32, dup_thresh: u32) -> bool {
        let above = seq + 1u32;
        let (mut blocks, mut bytes) = (0u32, 0u64);
        for &(l, r) in self.live() {
            let l = l.max(above);
            if l.lt(r) {
                blocks += 1;
                bytes += u64::from(span(l, r));
            }
        }
        lost(blocks, bytes, mss, dup_thresh)
    }

    /// The ranges relative to `snd_una`, clipped to `[snd_una, snd_max]`.
    fn offsets(&self, snd_una: SeqNumber, snd_max: SeqNumber) -> Offsets {
        let end = if snd_max.ge(snd_una) {
            span(snd_una, snd_max)
        } else {
            0
        };
        let off = |s: SeqNumber| {
            if s.lt(snd_una) {
                0
            } else {
                span(snd_una, s).min(end)
            }
        };
        let mut o = Offsets {
            ranges: [(0, 0); MAX_BLOCKS],
            count: 0,
            end,
        };
        for &(l, r) in self.live() {
            let (l, r) = (off(l), off(r));
            if l < r {
                o.ranges[o.count] = (l, r);
                o.count += 1;
            }
        }
        o
    }

    /// `high_rxt` as an offset from `snd_una`, clipped to `[0, end]`.
    fn rxt_offset(snd_una: SeqNumber, high_rxt: SeqNumber, end: u32) -> u32 {
        if high_rxt.lt(snd_una) {
            0
        } else {
            span(snd_una, high_rxt).min(end)
        }
    }

    /// RFC 6675 §4 `SetPipe`: the octets estimated in flight. For every octet of
    /// `[snd_una, snd_max)` that is not SACKed, count one if it is not lost (the original
    /// may still be in the network) and one more if it lies below `high_rxt` (its
    /// retransmission may be). `high_rxt` is exclusive (see the module documentation);
    /// `dup_thresh` must be the one given to [`next_seg`](Self::next_seg).
    pub fn pipe(
        &self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        high_rxt: SeqNumber,
        mss: u32,
        dup_thresh: u32,
    ) -> u32 {
        let o = self.offsets(snd_una, snd_max);
        let rxt = Self::rxt_offset(snd_una, high_rxt, o.end);
        let mut pipe = 0u64;
        let mut hole = |start: u32, end: u32, lost_here: bool| {
            if !lost_here {
                pipe += u64::from(end - start);
            }
            pipe += u64::from(end.min(rxt).saturating_sub(start));
        };
        // Walk the holes from the top down, gathering what is SACKed above each.
        let (mut blocks, mut bytes) = (0u32, 0u64);
        let mut hole_end = o.end;
        for &(l, r) in o.live().iter().rev() {
            hole(r, hole_end, lost(blocks, bytes, mss, dup_thresh));
            blocks += 1;
            bytes += u64::from(r - l);
            hole_end = l;
        }
        hole(0, hole_end, lost(blocks, bytes, mss, dup_thresh));
        u32::try_from(pipe).unwrap_or(u32::MAX)
    }

    /// RFC 6675 §4 `NextSeg` rule 1: the first octet `S2` that is not SACKed, not yet
    /// retransmitted (`S2 >= high_rxt`), below the highest SACKed octet, and lost; and
    /// the length to retransmit from it: up to `mss`, not past the hole. `None` when no
    /// such octet exists (the caller then tries rules 2 and 3) or `mss == 0`.
    pub fn next_seg(
        &self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        high_rxt: SeqNumber,
        mss: u32,
        dup_thresh: u32,
    ) -> Option<(SeqNumber, u32)> {
        if mss == 0 {
            return None;
        }
        let o = self.offsets(snd_una, snd_max);
        let rxt = Self::rxt_offset(snd_una, high_rxt, o.end);
        let mut blocks = o.count as u32;
        let mut bytes = o.sacked();
        let mut hole_start = 0;
        // Holes below each range, lowest first; the space above the highest range is
        // not eligible (rule 1.b).
        for &(l, r) in o.live() {
            if !lost(blocks, bytes, mss, dup_thresh) {
                // Higher holes have less SACKed above them: none is lost either.
                return None;
            }
            let start = hole_start.max(rxt);
            if start < l {
                return Some((snd_una + start, mss.min(l - start)));
            }
            blocks -= 1;
            bytes -= u64::from(r - l);
            hole_start = r;
        }
        None
    }
}

impl fmt::Debug for Scoreboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.live().iter().map(|&(l, r)| l..r))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use alloc::vec;
    use alloc::vec::Vec;

    const MSS: u32 = 100;

    fn sq(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn blk(l: u32, r: u32) -> (SeqNumber, SeqNumber) {
        (sq(l), sq(r))
    }

    fn ranges(sb: &Scoreboard) -> Vec<(u32, u32)> {
        sb.ranges().map(|(l, r)| (l.0, r.0)).collect()
    }

    #[test]
    fn blocks_merge_and_count_new_bytes() {
        let mut sb = Scoreboard::new();
        let (una, max) = (sq(1000), sq(2000));
        let u = sb.on_ack(una, max, &[blk(1200, 1300)]);
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 100,
                dsack: false
            }
        );
        let u = sb.on_ack(una, max, &[blk(1400, 1500), blk(1200, 1300)]);
        assert_eq!(u.newly_sacked_bytes, 100, "the repeated block adds nothing");
        assert_eq!(ranges(&sb), vec![(1200, 1300), (1400, 1500)]);
        // Adjacent on both sides: one range.
        let u = sb.on_ack(una, max, &[blk(1300, 1400)]);
        assert_eq!(u.newly_sacked_bytes, 100);
        assert_eq!(ranges(&sb), vec![(1200, 1500)]);
        // Overlapping both edges.
        let u = sb.on_ack(una, max, &[blk(1150, 1550)]);
        assert_eq!(u.newly_sacked_bytes, 100);
        assert_eq!(ranges(&sb), vec![(1150, 1550)]);
        assert_eq!(sb.sacked_bytes(), 400);
        assert_eq!(sb.highest_sacked(), Some(sq(1550)));
        assert!(sb.is_sacked(sq(1150)) && sb.is_sacked(sq(1549)));
        assert!(!sb.is_sacked(sq(1149)) && !sb.is_sacked(sq(1550)));
    }

    #[test]
    fn dsack_below_the_cumulative_ack() {
        // RFC 2883 §4.1.1: a retransmission of data already ACKed comes back as a first
        // block below SEG.ACK.
        let mut sb = Scoreboard::new();
        let u = sb.on_ack(sq(2000), sq(3000), &[blk(1500, 1600)]);
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 0,
                dsack: true
            }
        );
        assert!(sb.is_empty());
        // The D-SACK block is skipped, the rest processed.
        let u = sb.on_ack(sq(2000), sq(3000), &[blk(1500, 1600), blk(2500, 2600)]);
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 100,
                dsack: true
            }
        );
        assert_eq!(ranges(&sb), vec![(2500, 2600)]);
        // A block below the ACK in second place is not a D-SACK, only stale.
        let u = sb.on_ack(sq(2000), sq(3000), &[blk(2500, 2700), blk(1500, 1600)]);
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 100,
                dsack: false
            }
        );
    }

    #[test]
    fn dsack_inside_the_second_block() {
        // RFC 2883 §4.1.2-style: a duplicate of data above the ACK that is already SACKed.
        let mut sb = Scoreboard::new();
        let u = sb.on_ack(sq(1000), sq(2000), &[blk(1300, 1400), blk(1200, 1500)]);
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 300,
                dsack: true
            }
        );
        assert_eq!(ranges(&sb), vec![(1200, 1500)]);
        // Not contained: an ordinary first block.
        let u = sb.on_ack(sq(1000), sq(2000), &[blk(1500, 1600), blk(1200, 1500)]);
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 100,
                dsack: false
            }
        );
    }

    #[test]
    fn ranges_below_snd_una_are_dropped_and_bad_blocks_ignored() {
        let mut sb = Scoreboard::new();
        sb.on_ack(
            sq(0),
            sq(1000),
            &[blk(100, 200), blk(300, 400), blk(500, 600)],
        );
        // The cumulative ACK passes the first range and cuts into the second.
        let u = sb.on_ack(sq(350), sq(1000), &[]);
        assert_eq!(u, SackUpdate::default());
        assert_eq!(ranges(&sb), vec![(350, 400), (500, 600)]);
        assert_eq!(sb.sacked_bytes(), 150);
        // Beyond SND.MAX, inverted, empty, or wholly acknowledged: ignored.
        let u = sb.on_ack(
            sq(350),
            sq(1000),
            &[
                blk(700, 800),
                blk(900, 1001),
                blk(800, 700),
                blk(750, 750),
                blk(100, 350),
            ],
        );
        assert_eq!(
            u,
            SackUpdate {
                newly_sacked_bytes: 100,
                dsack: false
            }
        );
        assert_eq!(ranges(&sb), vec![(350, 400), (500, 600), (700, 800)]);
        // A non-first block straddling SND.UNA is clipped to it.
        let u = sb.on_ack(sq(350), sq(1000), &[blk(900, 950), blk(300, 360)]);
        assert_eq!(u.newly_sacked_bytes, 50);
        assert_eq!(ranges(&sb)[0], (350, 400));
        // Everything acknowledged: empty.
        sb.on_ack(sq(1000), sq(1000), &[]);
        assert!(sb.is_empty());
        assert_eq!(sb.highest_sacked(), None);
    }

    #[test]
    fn works_across_the_sequence_wrap() {
        let una = sq(u32::MAX - 250);
        let max = una + 1000u32;
        let mut sb = Scoreboard::new();
        let a = una + 200u32; // [2^32 - 51, 49): straddles 2^32
        let b = una + 400u32; // [149, 249): after it
        let u = sb.on_ack(una, max, &[(b, b + 100u32), (a, a + 100u32)]);
        assert_eq!(u.newly_sacked_bytes, 200);
        assert_eq!(
            sb.ranges().collect::<Vec<_>>(),
            vec![(a, a + 100u32), (b, b + 100u32)]
        );
        assert_eq!(sb.highest_sacked(), Some(b + 100u32));
        assert!(sb.is_sacked(sq(u32::MAX)) && sb.is_sacked(sq(0)) && sb.is_sacked(sq(150)));
        assert!(!sb.is_sacked(sq(100)) && !sb.is_sacked(una));
        // Two ranges and 200 octets above the first hole: not lost yet (DupThresh 3).
        assert!(!sb.is_lost(una, MSS, DUP_THRESH));
        sb.on_ack(una, max, &[(una + 600u32, una + 700u32)]);
        assert!(sb.is_lost(una, MSS, DUP_THRESH));
        assert_eq!(
            sb.next_seg(una, max, una, MSS, DUP_THRESH),
            Some((una, MSS))
        );
        // A cumulative ACK across 2^32 trims correctly.
        sb.on_ack(b + 50u32, max, &[]);
        assert_eq!(sb.ranges().next(), Some((b + 50u32, b + 100u32)));
    }

    #[test]
    fn is_lost_after_three_segments_sacked_above() {
        let mut sb = Scoreboard::new();
        let (una, max) = (sq(0), sq(1000));
        // Segment 0 lost; segments 1, 2 SACKed: 200 octets, one range.
        sb.on_ack(una, max, &[blk(100, 300)]);
        assert!(
            !sb.is_lost(sq(0), MSS, 3),
            "200 = (3-1)·MSS is not more than it"
        );
        sb.on_ack(una, max, &[blk(300, 400)]);
        assert!(sb.is_lost(sq(0), MSS, 3), "300 octets above");
        assert!(sb.is_lost(sq(99), MSS, 3));
        assert!(!sb.is_lost(sq(400), MSS, 3), "nothing above");
        // Three discontiguous small ranges count too, whatever their size.
        let mut small = Scoreboard::new();
        small.on_ack(una, max, &[blk(10, 11), blk(20, 21)]);
        assert!(!small.is_lost(sq(0), MSS, 3));
        small.on_ack(una, max, &[blk(30, 31)]);
        assert!(small.is_lost(sq(0), MSS, 3));
        assert!(!small.is_lost(sq(10), MSS, 3), "only two ranges above 10");
        assert!(small.is_lost(sq(10), MSS, 2));
    }

    #[test]
    fn pipe_decreases_as_blocks_arrive() {
        let (una, max) = (sq(0), sq(1000)); // ten segments in flight
        let mut sb = Scoreboard::new();
        assert_eq!(sb.pipe(una, max, una, MSS, 3), 1000);
        let mut last = 1000;
        for (k, seg) in [1u32, 2, 3, 5].into_iter().enumerate() {
            sb.on_ack(una, max, &[blk(seg * 100, seg * 100 + 100)]);
            let p = sb.pipe(una, max, una, MSS, 3);
            assert!(p < last, "block {k}: {p} !< {last}");
            last = p;
        }
        // Segment 0 is lost (300 octets SACKed above it) and 4 not yet (100 above):
        // in flight are 4 and 6..9 = 500.
        assert_eq!(last, 500);
        // Retransmitting segment 0 puts it back in the pipe.
        assert_eq!(sb.pipe(una, max, sq(100), MSS, 3), 600);
        // A retransmitted octet that is not lost counts twice (original + copy).
        assert_eq!(sb.pipe(una, max, sq(500), MSS, 3), 700);
        assert_eq!(sb.pipe(una, una, una, MSS, 3), 0);
    }

    #[test]
    fn next_seg_walks_the_holes_in_order() {
        let (una, max) = (sq(0), sq(2000));
        let mut sb = Scoreboard::new();
        // Holes: [0,100) [200,250) [300,400) [500,600) [900, 2000).
        sb.on_ack(
            una,
            max,
            &[blk(100, 200), blk(250, 300), blk(400, 500), blk(600, 900)],
        );
        let mut high_rxt = una;
        let mut sent = Vec::new();
        // Bounded: a next_seg that ignored high_rxt would repeat forever.
        for _ in 0..10 {
            let Some((seq, len)) = sb.next_seg(una, max, high_rxt, MSS, 3) else {
                break;
            };
            sent.push((seq.0, len));
            high_rxt = seq + len;
        }
        // [500, 600) has one range but 300 > (3-1)·100 octets above it: lost. The space
        // above the highest SACK, [900, 2000), is never eligible for rule 1.
        assert_eq!(sent, vec![(0, 100), (200, 50), (300, 100), (500, 100)]);
        // Smaller MSS: segments stop at the hole's end and at MSS.
        assert_eq!(sb.next_seg(una, max, sq(210), 30, 3), Some((sq(210), 30)));
        assert_eq!(sb.next_seg(una, max, sq(230), 30, 3), Some((sq(230), 20)));
        assert_eq!(sb.next_seg(una, max, una, 0, 3), None);
        // Not lost yet: nothing to retransmit by rule 1.
        let mut one = Scoreboard::new();
        one.on_ack(una, max, &[blk(100, 200)]);
        assert_eq!(one.next_seg(una, max, una, MSS, 3), None);
    }

    #[test]
    fn the_number_of_ranges_is_bounded() {
        let mut sb = Scoreboard::new();
        let (una, max) = (sq(0), sq(100_000));
        for i in 0..100u32 {
            sb.on_ack(una, max, &[blk(i * 100 + 50, i * 100 + 60)]);
            assert!(ranges(&sb).len() <= MAX_BLOCKS);
        }
        // The highest ranges are kept, the lowest forgotten.
        let r = ranges(&sb);
        assert_eq!(r.len(), MAX_BLOCKS);
        assert_eq!(r.last(), Some(&(9950, 9960)));
        assert_eq!(r[0], (6850, 6860));
        // A new lowest range while full is the one forgotten.
        let u = sb.on_ack(una, max, &[blk(10, 20)]);
        assert_eq!(u.newly_sacked_bytes, 0);
        assert_eq!(ranges(&sb), r);
        // Joining ranges needs no slot.
        sb.on_ack(una, max, &[blk(6860, 6950)]);
        assert_eq!(ranges(&sb).len(), MAX_BLOCKS - 1);
        sb.clear();
        assert!(sb.is_empty());
        assert_eq!(sb.pipe(una, max, una, MSS, 3), 100_000);
    }

    /// Octet-by-octet RFC 6675 against the hole arithmetic, with random SACK patterns.
    #[test]
    fn model_against_octet_by_octet_rfc6675() {
        const WND: usize = 400;
        for seed in 0..60u64 {
            let mut rng = Rand::from_u64(seed);
            let una = SeqNumber(rng.next_u32());
            let max = una + WND;
            let mss = 1 + rng.below(40);
            let dt = 1 + rng.below(4);
            let mut sb = Scoreboard::new();
            let mut sacked = vec![false; WND];
            for _ in 0..12 {
                let l = rng.below(WND as u32) as usize;
                let r = (l + 1 + rng.below(30) as usize).min(WND);
                let u = sb.on_ack(una, max, &[(una + l, una + r)]);
                assert!(!u.dsack);
                let newly = sacked[l..r].iter().filter(|s| !**s).count() as u32;
                sacked[l..r].iter_mut().for_each(|s| *s = true);
                assert_eq!(u.newly_sacked_bytes, newly);

                // Maximal runs of SACKed octets.
                let runs: Vec<(usize, usize)> = {
                    let mut v = Vec::new();
                    let mut i = 0;
                    while i < WND {
                        if sacked[i] {
                            let s = i;
                            while i < WND && sacked[i] {
                                i += 1;
                            }
                            v.push((s, i));
                        } else {
                            i += 1;
                        }
                    }
                    v
                };
                let got: Vec<_> = sb
                    .ranges()
                    .map(|(l, r)| ((l - una) as usize, (r - una) as usize))
                    .collect();
                assert_eq!(got, runs);
                let is_lost = |s: usize| {
                    let blocks = runs.iter().filter(|&&(_, e)| e > s + 1).count() as u32;
                    let bytes = sacked[s + 1..].iter().filter(|x| **x).count() as u32;
                    blocks >= dt || bytes > (dt - 1) * mss
                };
                for s in 0..WND {
                    assert_eq!(
                        sb.is_lost(una + s, mss, dt),
                        is_lost(s),
                        "seed {seed} octet {s}"
                    );
                }
                let highest = runs.last().map_or(0, |r| r.1);
                for rxt in [0, rng.below(WND as u32) as usize, WND] {
                    let want_pipe: u32 = (0..WND)
                        .filter(|&s| !sacked[s])
                        .map(|s| u32::from(!is_lost(s)) + u32::from(s < rxt))
                        .sum();
                    assert_eq!(
                        sb.pipe(una, max, una + rxt, mss, dt),
                        want_pipe,
                        "seed {seed}"
                    );
                    let want_next = (rxt..highest).find(|&s| !sacked[s] && is_lost(s)).map(|s| {
                        let run = (s..WND).take_while(|&t| !sacked[t]).count();
                        (una + s, (run as u32).min(mss))
                    });
                    assert_eq!(
                        sb.next_seg(una, max, una + rxt, mss, dt),
                        want_next,
                        "seed {seed}"
                    );
                }
            }
        }
    }
}
