//! Randomness, seeded by the host.
//!
//! The stack does not read an entropy source: the host hands it a 256-bit seed (from
//! `getrandom` in production, a fixed value in tests) and the stack expands it with
//! xoshiro256**. Tests replay exactly; production keys (ISNs, SYN cookies, ephemeral
//! ports) stay unpredictable because the seed is.

/// A small, fast, seedable generator (xoshiro256**). Not a CSPRNG: secrets that must
/// resist an observer (RFC 6528 ISN keys) are drawn from it once, at start, and then
/// used as keys of a keyed hash.
#[derive(Clone, Debug)]
pub struct Rand {
    s: [u64; 4],
}

impl Rand {
    /// A generator from a 256-bit host seed.
    pub fn from_seed(seed: [u8; 32]) -> Rand {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            // xoshiro must not start from the all-zero state.
            s = [
                0x9e37_79b9_7f4a_7c15,
                0xbf58_476d_1ce4_e5b9,
                0x94d0_49bb_1331_11eb,
                1,
            ];
        }
        Rand { s }
    }

    /// A generator from a 64-bit seed, expanded with SplitMix64 (tests, simulations).
    pub fn from_u64(seed: u64) -> Rand {
        let mut x = seed;
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes());
        }
        Rand::from_seed(out)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform value in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n.max(1))) >> 32) as u32
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_repeatable_and_spread() {
        let mut a = Rand::from_u64(7);
        let mut b = Rand::from_u64(7);
        let mut c = Rand::from_u64(8);
        let xs: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let ys: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        assert_eq!(xs, ys);
        assert_ne!(xs[0], c.next_u64());
        let mut hits = [0u32; 10];
        for _ in 0..10_000 {
            hits[a.below(10) as usize] += 1;
        }
        assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
        assert!(Rand::from_seed([0; 32]).next_u64() != 0);
    }
}
