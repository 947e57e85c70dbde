//! Initial sequence numbers (RFC 6528) and per-connection timestamp offsets.
//!
//! An off-path attacker who can guess a connection's ISN can inject data or reset it
//! (RFC 6528 §1), so the ISN must not be predictable from outside, yet successive
//! incarnations of the same connection must still see increasing ISNs so that old
//! duplicates fall outside the new window (RFC 9293 §3.4.1). RFC 6528 §3 squares the
//! two: `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, a clock
//! shared by all connections plus a keyed hash of the 4-tuple. Each 4-tuple thus gets
//! its own secret starting point in sequence space, and the clock keeps it moving.
//!
//! The same keyed hash gives each connection a random offset for its TCP timestamps
//! (RFC 7323 §5.4), so TSvals do not reveal the host's uptime nor let an observer link
//! connections through a shared clock. F is the low half of one 64-bit SipHash-2-4 of
//! the 4-tuple and the offset its high half (as Linux 4.11's
//! `secure_tcp_seq_and_tsoff`): the halves of a PRF's output are independent, so
//! knowing one reveals nothing about the other, and a connection costs one hash, not
//! two.
//!
//! The hash is computed here rather than through `siphasher`'s streaming `Hasher`: its
//! input is always the same 12 bytes (one 8-byte block and a final one), so it is two
//! compressions and the finalization on registers, with no byte buffering; the tests
//! check it against `siphasher` bit for bit.

use core::fmt;
use core::net::SocketAddrV4;

use crate::rand::Rand;
use crate::time::Instant;
use crate::wire::seq::SeqNumber;

/// RFC 6528 §3: M is "a timer that is incremented every 4 microseconds".
const CLOCK_TICK_MICROS: u64 = 4;

/// Generates RFC 6528 initial sequence numbers and RFC 7323 timestamp offsets from one
/// secret key, drawn once from the host-seeded [`Rand`].
///
/// `Debug` prints no key: it is the only thing standing between an observer and
/// predictable ISNs.
#[derive(Clone)]
pub struct IsnGenerator {
    /// SipHash's state after keying with the secret (it depends on the key alone):
    /// each hash starts from it.
    init: [u64; 4],
}

impl IsnGenerator {
    /// A generator with a fresh 128-bit secret key (RFC 6528 §3: "secretkey is a secret
    /// key ... it SHOULD be at least 128 bits long").
    pub fn new(rand: &mut Rand) -> IsnGenerator {
        let mut key = [0u8; 16];
        rand.fill(&mut key);
        Self::with_key(&key)
    }

    fn with_key(key: &[u8; 16]) -> IsnGenerator {
        IsnGenerator {
            init: sip_init(key),
        }
    }

    /// The ISN for a connection from `local` to `remote` opened at `now`.
    ///
    /// RFC 6528 §3: `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`,
    /// where M is a 4 µs clock (it wraps every ~4.77 hours, as the RFC 793 ISN clock did)
    /// and F is SipHash-2-4 keyed with the secret, its low 32 bits.
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNumber {
        self.open(now, local, remote).0
    }

    /// The offset added to this connection's timestamp clock before it is sent as TSval
    /// (and subtracted from echoed TSecr values).
    ///
    /// RFC 7323 §5.4 allows a per-connection random offset; Linux has used one since 4.10
    /// so that TSvals do not expose uptime. It depends on the full 4-tuple, as in Linux
    /// again since its per-host-pair variant was found to leak source ports through SYN
    /// cookies. Being a function of the tuple, it is the same for every incarnation of a
    /// connection, so TSvals stay monotonic across them (PAWS, RFC 7323 §5).
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        (self.hash(local, remote) >> 32) as u32
    }

    /// Both [`isn`](Self::isn) and [`ts_offset`](Self::ts_offset) of a connection opened
    /// at `now`, from one hash.
    pub fn open(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> (SeqNumber, u32) {
        // Truncating to u32 is the wrap of the 32-bit ISN clock.
        let m = (now.total_micros() / CLOCK_TICK_MICROS) as u32;
        let h = self.hash(local, remote);
        (SeqNumber(m.wrapping_add(h as u32)), (h >> 32) as u32)
    }

    /// SipHash-2-4 of `local ip || local port || remote ip || remote port` (addresses
    /// and ports in network byte order).
    #[inline]
    fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u64 {
        // The 12 bytes as SipHash reads them, in little-endian words: the first 8, then
        // the final block, the last 4 with the message length in its top byte.
        let lip = local.ip().octets();
        let lport = local.port().to_be_bytes();
        let rip = remote.ip().octets();
        let rport = remote.port().to_be_bytes();
        let m0 = u64::from_le_bytes([
            lip[0], lip[1], lip[2], lip[3], lport[0], lport[1], rip[0], rip[1],
        ]);
        let m1 = u64::from(u32::from_le_bytes([rip[2], rip[3], rport[0], rport[1]])) | (12 << 56);
        let mut v = self.init;
        for m in [m0, m1] {
            v[3] ^= m;
            sip_round(&mut v);
            sip_round(&mut v);
            v[0] ^= m;
        }
        v[2] ^= 0xff;
        for _ in 0..4 {
            sip_round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

/// SipHash's state after keying with `key` (its two little-endian halves).
fn sip_init(key: &[u8; 16]) -> [u64; 4] {
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    k0.copy_from_slice(&key[..8]);
    k1.copy_from_slice(&key[8..]);
    let (k0, k1) = (u64::from_le_bytes(k0), u64::from_le_bytes(k1));
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// One SipRound.
#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

impl fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Ipv4Addr;
    use alloc::collections::BTreeSet;
    use alloc::format;

    fn addr(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
    }

    fn local() -> SocketAddrV4 {
        addr(10, 0, 0, 1, 80)
    }

    fn remote() -> SocketAddrV4 {
        addr(10, 0, 0, 2, 49152)
    }

    #[test]
    fn deterministic_for_a_fixed_seed() {
        let a = IsnGenerator::new(&mut Rand::from_u64(42));
        let b = IsnGenerator::new(&mut Rand::from_u64(42));
        let now = Instant::from_millis(123_456);
        assert_eq!(a.isn(now, local(), remote()), b.isn(now, local(), remote()));
        assert_eq!(
            a.ts_offset(local(), remote()),
            b.ts_offset(local(), remote())
        );
        // The key really comes from the generator: the stream moved by 16 bytes.
        let mut r = Rand::from_u64(42);
        let mut key = [0u8; 16];
        r.fill(&mut key);
        assert_eq!(a.init, sip_init(&key));
    }

    #[test]
    fn differs_across_tuples() {
        let g = IsnGenerator::new(&mut Rand::from_u64(1));
        let now = Instant::from_secs(5);
        let base = g.isn(now, local(), remote());
        // Each field of the 4-tuple matters, and so does its direction.
        assert_ne!(base, g.isn(now, addr(10, 0, 0, 3, 80), remote()));
        assert_ne!(base, g.isn(now, addr(10, 0, 0, 1, 81), remote()));
        assert_ne!(base, g.isn(now, local(), addr(10, 0, 0, 4, 49152)));
        assert_ne!(base, g.isn(now, local(), addr(10, 0, 0, 2, 49153)));
        assert_ne!(base, g.isn(now, remote(), local()));
        // Across many ephemeral ports at the same instant, no two ISNs collide (a 32-bit
        // hash of 4096 inputs collides with probability ~0.2%; the seed is fixed).
        let isns: BTreeSet<u32> = (0..4096u16)
            .map(|p| g.isn(now, local(), addr(10, 0, 0, 2, 32768 + p)).0)
            .collect();
        assert_eq!(isns.len(), 4096);
    }

    #[test]
    fn increases_with_time_at_250k_per_second() {
        let g = IsnGenerator::new(&mut Rand::from_u64(2));
        let t0 = Instant::from_secs(1000);
        let isn0 = g.isn(t0, local(), remote());
        // RFC 6528 §3: one increment every 4 µs, i.e. 250,000 per second.
        assert_eq!(
            g.isn(t0 + crate::time::Duration::from_secs(1), local(), remote()) - isn0,
            250_000
        );
        assert_eq!(
            g.isn(
                Instant::from_micros(1000 * 1_000_000 + 4),
                local(),
                remote()
            ) - isn0,
            1
        );
        assert_eq!(
            g.isn(
                Instant::from_micros(1000 * 1_000_000 + 3),
                local(),
                remote()
            ),
            isn0
        );
        // The 32-bit clock wraps after 2^32 * 4 µs; the ISN wraps with it.
        let wrap = Instant::from_micros(1000 * 1_000_000 + (1u64 << 32) * 4);
        assert_eq!(g.isn(wrap, local(), remote()), isn0);
    }

    #[test]
    fn different_keys_differ() {
        let a = IsnGenerator::new(&mut Rand::from_u64(3));
        let b = IsnGenerator::new(&mut Rand::from_u64(4));
        assert_ne!(a.init, b.init);
        let now = Instant::from_secs(7);
        assert_ne!(a.isn(now, local(), remote()), b.isn(now, local(), remote()));
        assert_ne!(
            a.ts_offset(local(), remote()),
            b.ts_offset(local(), remote())
        );
    }

    #[test]
    fn ts_offset_is_per_tuple_and_separate_from_isn() {
        let g = IsnGenerator::new(&mut Rand::from_u64(5));
        let off = g.ts_offset(local(), remote());
        assert_eq!(off, g.ts_offset(local(), remote()));
        assert_ne!(off, g.ts_offset(local(), addr(10, 0, 0, 2, 49153)));
        assert_ne!(off, g.ts_offset(remote(), local()));
        // The other half of the hash: F of the ISN (the ISN at M = 0) differs.
        assert_ne!(off, g.isn(Instant::ZERO, local(), remote()).0);
        // One hash gives both.
        let now = Instant::from_secs(9);
        assert_eq!(
            g.open(now, local(), remote()),
            (g.isn(now, local(), remote()), off)
        );
    }

    #[test]
    fn hash_is_siphash_2_4() {
        use core::hash::Hasher;
        let mut r = Rand::from_u64(7);
        for _ in 0..64 {
            let mut key = [0u8; 16];
            r.fill(&mut key);
            let g = IsnGenerator::with_key(&key);
            let (a, b) = (r.next_u64(), r.next_u64());
            let l = SocketAddrV4::new(Ipv4Addr::from((a as u32).to_be_bytes()), (a >> 32) as u16);
            let rm = SocketAddrV4::new(Ipv4Addr::from((b as u32).to_be_bytes()), (b >> 48) as u16);
            let mut input = [0u8; 12];
            input[0..4].copy_from_slice(&l.ip().octets());
            input[4..6].copy_from_slice(&l.port().to_be_bytes());
            input[6..10].copy_from_slice(&rm.ip().octets());
            input[10..12].copy_from_slice(&rm.port().to_be_bytes());
            let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
            h.write(&input);
            assert_eq!(g.hash(l, rm), h.finish());
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let g = IsnGenerator::new(&mut Rand::from_u64(6));
        let s = format!("{g:?}");
        assert_eq!(s, "IsnGenerator { .. }");
    }
}
