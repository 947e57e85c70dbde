//! TCP sequence numbers: 32-bit counters compared modulo 2^32.
//!
//! Sequence space wraps (RFC 9293 §3.4: "the sequence number space ranges from 0 to
//! 2**32 - 1 ... all arithmetic dealing with sequence numbers must be performed modulo
//! 2**32"), so `a < b` means "b lies less than 2^31 ahead of a", the serial number
//! arithmetic of RFC 1982. That relation is not an order: it is not transitive once the
//! numbers involved span more than 2^31 (0 < 2^30 < 2^31 < 3·2^30 < 0 all hold), so
//! [`SeqNumber`] deliberately implements neither `PartialOrd` nor `Ord`. A derived `Ord`
//! would compare raw integers and be wrong across the wrap; a modular `PartialOrd` would
//! invite `sort`, `max` and `BTreeMap` to assume transitivity they cannot have. Callers
//! say what they mean with [`SeqNumber::lt`], [`SeqNumber::between`] and friends.

use core::{fmt, ops};

/// A TCP sequence or acknowledgement number.
///
/// Comparisons are modular ([`lt`](Self::lt), [`le`](Self::le), [`gt`](Self::gt),
/// [`ge`](Self::ge), [`between`](Self::between)) and arithmetic wraps; there is no
/// `PartialOrd` (see the module documentation for why).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// `self + n` modulo 2^32.
    #[inline]
    pub const fn wrapping_add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// `self - n` modulo 2^32.
    #[inline]
    pub const fn wrapping_sub(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n))
    }

    /// The signed distance from `other` to `self`: positive when `self` is ahead of
    /// `other` by less than 2^31, negative when it is behind. Exactly 2^31 apart reads as
    /// `i32::MIN` (behind), the one ambiguous case of RFC 1982 §3.2.
    #[inline]
    pub const fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self` comes before `other` (RFC 1982 serial-number "less than").
    #[inline]
    pub const fn lt(self, other: SeqNumber) -> bool {
        self.diff(other) < 0
    }

    /// `self` comes before `other` or equals it.
    #[inline]
    pub const fn le(self, other: SeqNumber) -> bool {
        self.diff(other) <= 0
    }

    /// `self` comes after `other`.
    #[inline]
    pub const fn gt(self, other: SeqNumber) -> bool {
        self.diff(other) > 0
    }

    /// `self` comes after `other` or equals it.
    #[inline]
    pub const fn ge(self, other: SeqNumber) -> bool {
        self.diff(other) >= 0
    }

    /// `lo <= self < hi` in sequence space: `self` lies on the half-open arc that starts
    /// at `lo` and runs forward to `hi`. Computed as `self - lo < hi - lo` (unsigned,
    /// modulo 2^32), so it is exact for arcs of any length up to 2^32 - 1, not only those
    /// under 2^31; `lo == hi` is the empty arc. This is the receive-window test of
    /// RFC 9293 §3.10.7.4 for a segment's first octet: `RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND`.
    #[inline]
    pub const fn between(self, lo: SeqNumber, hi: SeqNumber) -> bool {
        self.0.wrapping_sub(lo.0) < hi.0.wrapping_sub(lo.0)
    }

    /// `lo <= self <= hi` in sequence space: the closed arc from `lo` forward to `hi`
    /// (`self - lo <= hi - lo`, unsigned). Used where RFC 9293 writes `=<` on both sides,
    /// e.g. the acceptable-ACK test `SND.UNA =< SEG.ACK =< SND.NXT` (§3.10.7.4).
    #[inline]
    pub const fn between_inclusive(self, lo: SeqNumber, hi: SeqNumber) -> bool {
        self.0.wrapping_sub(lo.0) <= hi.0.wrapping_sub(lo.0)
    }

    /// The later of the two in sequence space (`self` if they are 2^31 apart).
    #[inline]
    pub const fn max(self, other: SeqNumber) -> SeqNumber {
        if other.gt(self) {
            other
        } else {
            self
        }
    }

    /// The earlier of the two in sequence space (`self` if they are 2^31 apart).
    #[inline]
    pub const fn min(self, other: SeqNumber) -> SeqNumber {
        if other.lt(self) {
            other
        } else {
            self
        }
    }
}

// Adding a byte count. `usize` is reduced modulo 2^32 first, which is exact in a space that
// is itself modulo 2^32, so no value panics or is rejected.
impl ops::Add<usize> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn add(self, rhs: usize) -> SeqNumber {
        self.wrapping_add(rhs as u32)
    }
}

impl ops::Add<u32> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn add(self, rhs: u32) -> SeqNumber {
        self.wrapping_add(rhs)
    }
}

impl ops::AddAssign<usize> for SeqNumber {
    #[inline]
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl ops::AddAssign<u32> for SeqNumber {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl ops::Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn sub(self, rhs: usize) -> SeqNumber {
        self.wrapping_sub(rhs as u32)
    }
}

impl ops::Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn sub(self, rhs: u32) -> SeqNumber {
        self.wrapping_sub(rhs)
    }
}

impl ops::SubAssign<usize> for SeqNumber {
    #[inline]
    fn sub_assign(&mut self, rhs: usize) {
        *self = *self - rhs;
    }
}

/// The signed distance `self - rhs`, as [`SeqNumber::diff`].
impl ops::Sub<SeqNumber> for SeqNumber {
    type Output = i32;
    #[inline]
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.diff(rhs)
    }
}

impl From<u32> for SeqNumber {
    fn from(v: u32) -> SeqNumber {
        SeqNumber(v)
    }
}

impl From<SeqNumber> for u32 {
    fn from(s: SeqNumber) -> u32 {
        s.0
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    const NEAR_WRAP: SeqNumber = SeqNumber(0xffff_fff0);

    #[test]
    fn add_and_sub_wrap() {
        let a = NEAR_WRAP + 0x20usize;
        assert_eq!(a, SeqNumber(0x10));
        assert_eq!(NEAR_WRAP + 0x20u32, SeqNumber(0x10));
        assert_eq!(a - 0x20usize, NEAR_WRAP);
        assert_eq!(a - 0x20u32, NEAR_WRAP);
        let mut b = NEAR_WRAP;
        b += 0x10usize;
        assert_eq!(b, SeqNumber(0));
        b += 1u32;
        assert_eq!(b, SeqNumber(1));
        b -= 2usize;
        assert_eq!(b, SeqNumber(u32::MAX));
        // usize beyond u32 reduces modulo 2^32: adding 2^32 + 5 is adding 5.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(SeqNumber(1) + ((1usize << 32) + 5), SeqNumber(6));
    }

    #[test]
    fn diff_is_signed_distance_across_wrap() {
        let a = NEAR_WRAP;
        let b = a + 0x20usize;
        assert_eq!(b - a, 0x20);
        assert_eq!(a - b, -0x20);
        assert_eq!(b.diff(a), 0x20);
        assert_eq!(a.diff(a), 0);
        // Exactly 2^31 apart: the ambiguous point reads as "behind" both ways.
        assert_eq!(SeqNumber(0x8000_0000).diff(SeqNumber(0)), i32::MIN);
        assert_eq!(SeqNumber(0).diff(SeqNumber(0x8000_0000)), i32::MIN);
    }

    #[test]
    fn comparisons_across_wrap() {
        let a = NEAR_WRAP;
        let b = a + 0x20usize; // 0x10, numerically smaller but later
        assert!(a.lt(b) && a.le(b) && !a.gt(b) && !a.ge(b));
        assert!(b.gt(a) && b.ge(a) && !b.lt(a) && !b.le(a));
        assert!(a.le(a) && a.ge(a) && !a.lt(a) && !a.gt(a));
        assert_eq!(a.max(b), b);
        assert_eq!(b.max(a), b);
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
        // Largest forward distance that still compares as "after".
        assert!(SeqNumber(0x7fff_ffff).gt(SeqNumber(0)));
        assert!(SeqNumber(0x8000_0001).lt(SeqNumber(0)));
    }

    #[test]
    fn between_half_open_and_closed() {
        let lo = NEAR_WRAP;
        let hi = lo + 0x20usize;
        assert!(lo.between(lo, hi));
        assert!(SeqNumber(u32::MAX).between(lo, hi));
        assert!(SeqNumber(0).between(lo, hi));
        assert!(SeqNumber(0xf).between(lo, hi));
        assert!(!hi.between(lo, hi)); // half-open
        assert!(!SeqNumber(0xffff_ffef).between(lo, hi));
        assert!(hi.between_inclusive(lo, hi));
        assert!(lo.between_inclusive(lo, hi));
        assert!(!(hi + 1usize).between_inclusive(lo, hi));
        // The empty arc holds nothing; the one-point closed arc holds its point.
        assert!(!lo.between(lo, lo));
        assert!(lo.between_inclusive(lo, lo));
        // Arcs longer than 2^31 still work, where lt/gt alone would not.
        let far = SeqNumber(0xc000_0000);
        assert!(far.between(SeqNumber(0), SeqNumber(0xf000_0000)));
        assert!(!far.gt(SeqNumber(0))); // ... because modular "after" already failed
    }

    #[test]
    fn comparison_is_not_transitive() {
        // Three points a third of the space apart: each is "before" the next, yet the
        // last is "before" the first. a < b and b < c, but c < a: no total order exists.
        let a = SeqNumber(0);
        let b = SeqNumber(0x5555_5555);
        let c = SeqNumber(0xaaaa_aaaa);
        assert!(a.lt(b) && b.lt(c));
        assert!(c.lt(a) && !a.lt(c));
        // The raw integers would say a < c: that is what a derived Ord would get wrong.
        assert!(a.0 < c.0);
    }

    #[test]
    fn display_and_debug_print_the_number() {
        assert_eq!(format!("{}", SeqNumber(4_000_000_000)), "4000000000");
        assert_eq!(format!("{:?}", SeqNumber(7)), "7");
        assert_eq!(u32::from(SeqNumber::from(9)), 9);
    }
}
