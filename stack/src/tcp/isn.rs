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

use core::fmt;
use core::net::SocketAddrV4;

use siphasher::sip::SipHasher24;

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
    /// SipHash-2-4 keyed with the secret, its state set up once: each hash starts from a
    /// copy of it (the crate's one-shot `hash`), not from the key, split and mixed in
    /// anew per connection (callgrind, crr: 398 -> 288 instructions a connection, both
    /// ends).
    sip: SipHasher24,
}

impl IsnGenerator {
    /// A generator with a fresh 128-bit secret key (RFC 6528 §3: "secretkey is a secret
    /// key ... it SHOULD be at least 128 bits long").
    pub fn new(rand: &mut Rand) -> IsnGenerator {
        let mut key = [0u8; 16];
        rand.fill(&mut key);
        IsnGenerator {
            sip: SipHasher24::new_with_key(&key),
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
    fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u64 {
        let mut input = [0u8; 12];
        input[0..4].copy_from_slice(&local.ip().octets());
        input[4..6].copy_from_slice(&local.port().to_be_bytes());
        input[6..10].copy_from_slice(&remote.ip().octets());
        input[10..12].copy_from_slice(&remote.port().to_be_bytes());
        self.sip.hash(&input)
    }
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
        assert_eq!(a.sip.key(), key);
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
        assert_ne!(a.sip.key(), b.sip.key());
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
    fn debug_hides_the_key() {
        let g = IsnGenerator::new(&mut Rand::from_u64(6));
        let s = format!("{g:?}");
        assert_eq!(s, "IsnGenerator { .. }");
    }
}
