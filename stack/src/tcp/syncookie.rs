//! SYN cookies: answering a SYN without keeping state, as Linux does.
//!
//! Under a SYN flood the listen queue fills with half-open connections that will never
//! complete. A SYN cookie (D. J. Bernstein, 1996; RFC 4987 §3.6) moves that state into
//! the SYN-ACK itself: our ISN is a keyed hash of the 4-tuple, the client's ISN and a
//! coarse clock, with the peer's MSS folded in. The final ACK of the handshake echoes it
//! back as `ack - 1`; if it verifies, the connection is created then, from the ACK alone.
//!
//! The layout follows Linux (`net/ipv4/syncookies.c`), with one change:
//!
//! ```text
//! cookie = H0(tuple) + client_isn + (count << 24)
//!        + ((H1(tuple, count) + (mss_index << 22)) mod 2^24)
//! ```
//!
//! `count` is a minute counter; only its low 8 bits survive in the top of the cookie,
//! and a cookie is accepted while the counter has moved on by less than
//! [`MAX_COOKIE_AGE`] (so it lives between one and two minutes, as in Linux). The MSS
//! is an index into a four-entry table, so 2 bits of the 24-bit hash field are data and
//! a forged cookie passes with probability about `2/256 * 4/2^24`, as in Linux.
//!
//! The change: Linux adds the index at the bottom of the field, so a cookie or client
//! ISN off by one or two still verifies, with a neighbouring MSS. We add it at the top
//! (bits 22..24) and require the 22 bits below to come back as zero, which rejects
//! small offsets, and with them a caller that forgot the `- 1` on the ACK's numbers.
//!
//! The ISN has no room for the other SYN options. When the peer sent timestamps, Linux
//! carries window scale and SACK-permitted in the low 6 bits of our TSval, which the
//! ACK echoes in TSecr ([`SynCookies::timestamp`]). Without timestamps those options
//! are lost and the connection runs without them. The echoed bits are not
//! authenticated: a client can only choose options for its own connection, as it could
//! in its SYN.

use core::fmt;
use core::hash::Hasher;
use core::net::SocketAddrV4;

use siphasher::sip::SipHasher24;

use crate::rand::Rand;
use crate::time::Instant;
use crate::wire::seq::SeqNumber;

/// The low 24 bits of a cookie carry the hash and the MSS index; the top 8 the counter.
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// The MSS index sits in the top 2 of those 24 bits; the 22 below verify the hash.
const INDEX_SHIFT: u32 = COOKIE_BITS - 2;
const CHECK_MASK: u32 = (1 << INDEX_SHIFT) - 1;

/// MSS values a cookie can encode, as Linux's IPv4 `msstab`: 536 is the IPv4 default
/// (RFC 9293 §3.7.1, RFC 1122 §4.2.2.6), 1300 covers tunnels, 1440 PPPoE and IPsec,
/// 1460 plain Ethernet.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// The cookie counter ticks once a minute (Linux `TCP_SYNCOOKIE_PERIOD`).
const COUNTER_PERIOD_MICROS: u64 = 60 * 1_000_000;

/// A cookie is valid while the counter has advanced by less than this (Linux
/// `MAX_SYNCOOKIE_AGE`): it covers the client's SYN-ACK round trip and its first
/// retransmissions of the final ACK.
pub const MAX_COOKIE_AGE: u32 = 2;

/// The low bits of the SYN-ACK's TSval that carry options (Linux `TSBITS`).
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
/// Window shift in bits 0..4; all ones means "no window scaling".
const TS_OPT_WSCALE_MASK: u32 = 0xf;
const TS_OPT_SACK: u32 = 1 << 4;
// Bit 5 is Linux's ECN bit (`TS_OPT_ECN`); we do not negotiate ECN, so it is sent as 0
// and ignored on return.

/// RFC 7323 §2.3: a shift count above 14 is treated as 14.
const MAX_WSCALE: u8 = 14;

/// The SYN options a cookie carries, recovered from the handshake's final ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The MSS to send with: the [`MSS_TABLE`] entry encoded in the cookie.
    pub mss: u16,
    /// The peer's window shift, if it offered window scaling (RFC 7323 §2).
    pub wscale: Option<u8>,
    /// The peer sent SACK-permitted (RFC 2018).
    pub sack_ok: bool,
}

/// The secret state of SYN cookies: two SipHash keys, drawn once from the host-seeded
/// [`Rand`], one for the tuple hash `H0` and one for the counter-dependent hash `H1`.
///
/// `Debug` prints no key: with it, anyone could forge cookies.
#[derive(Clone)]
pub struct SynCookies {
    keys: [[u8; 16]; 2],
}

impl SynCookies {
    /// Cookie state with fresh secret keys.
    pub fn new(rand: &mut Rand) -> SynCookies {
        let mut keys = [[0u8; 16]; 2];
        for k in keys.iter_mut() {
            rand.fill(k);
        }
        SynCookies { keys }
    }

    /// The cookie to send as our ISN in the SYN-ACK, and the MSS it encodes.
    ///
    /// The MSS is the largest [`MSS_TABLE`] entry not above the peer's `mss`, so the
    /// connection never sends segments larger than the peer asked for, with one
    /// exception kept from Linux: offers below 536 encode 536, the IPv4 default every
    /// host must accept (RFC 1122 §4.2.2.6). Callers pass the peer's MSS option, or 536
    /// when the SYN had none (RFC 9293 §3.7.1).
    pub fn generate(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: SeqNumber,
        mss: u16,
    ) -> (SeqNumber, u16) {
        let index = MSS_TABLE.iter().rposition(|&m| mss >= m).unwrap_or(0);
        let count = counter(now);
        let cookie = self
            .hash(0, local, remote, 0)
            .wrapping_add(client_isn.0)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(
                self.hash(1, local, remote, count)
                    .wrapping_add((index as u32) << INDEX_SHIFT)
                    & COOKIE_MASK,
            );
        (SeqNumber(cookie), MSS_TABLE[index])
    }

    /// The TSval to send in a cookie SYN-ACK: `now_ts` (the connection's timestamp clock,
    /// offset included) with the window shift and SACK-permitted in its low 6 bits.
    ///
    /// As Linux's `cookie_init_timestamp`, the result is never later than `now_ts`: if
    /// putting the options in the low bits moved the value forward, it is taken from the
    /// previous 64-tick block instead. Our later TSvals, read from the clock, then never
    /// run backwards, which the peer's PAWS check (RFC 7323 §5) would punish.
    pub fn timestamp(&self, now_ts: u32, opts: &CookieOptions) -> u32 {
        let mut options = opts
            .wscale
            .map_or(TS_OPT_WSCALE_MASK, |w| u32::from(w.min(MAX_WSCALE)));
        if opts.sack_ok {
            options |= TS_OPT_SACK;
        }
        let ts = (now_ts & !TS_MASK) | options;
        if ts > now_ts {
            // At now_ts < 64 this wraps, which is still "just before now_ts" in the
            // modular timestamp space (RFC 7323 §5.2).
            ts.wrapping_sub(1 << TS_BITS)
        } else {
            ts
        }
    }

    /// Validates the final ACK of a handshake answered with a cookie and recovers the
    /// SYN's options, or `None` if the cookie is forged, for another connection or too
    /// old.
    ///
    /// `client_isn` is the ACK's sequence number minus one and `cookie` its
    /// acknowledgement number minus one. `tsecr` is the ACK's echoed timestamp, if it
    /// carried the timestamp option: then the window shift and SACK-permitted come from
    /// its low bits; without it the connection has neither, as in Linux.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: SeqNumber,
        cookie: SeqNumber,
        tsecr: Option<u32>,
    ) -> Option<CookieOptions> {
        let count = counter(now);
        // Peel off the tuple hash and the client's ISN: (count << 24) + (H1 + (index << 22))
        // mod 2^24 remains.
        let rest = cookie
            .0
            .wrapping_sub(self.hash(0, local, remote, 0))
            .wrapping_sub(client_isn.0);
        // Only the counter's low 8 bits were kept; a cookie from the "future" reads as
        // very old here and is rejected too.
        let age = count.wrapping_sub(rest >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if age >= MAX_COOKIE_AGE {
            return None;
        }
        let sent_count = count.wrapping_sub(age);
        let data = rest.wrapping_sub(self.hash(1, local, remote, sent_count)) & COOKIE_MASK;
        // Anything but a table index with zeros below means the hash did not match.
        if data & CHECK_MASK != 0 {
            return None;
        }
        let mss = *MSS_TABLE.get((data >> INDEX_SHIFT) as usize)?;
        let (wscale, sack_ok) = match tsecr {
            Some(ts) => {
                let w = ts & TS_OPT_WSCALE_MASK;
                // Bits 0..4 hold 0..=15; 15 is "none", so the cast cannot exceed 14.
                let wscale = (w != TS_OPT_WSCALE_MASK).then_some(w as u8);
                (wscale, ts & TS_OPT_SACK != 0)
            }
            None => (None, false),
        };
        Some(CookieOptions {
            mss,
            wscale,
            sack_ok,
        })
    }

    /// Linux's `cookie_hash`: SipHash-2-4 under key `which` of the remote address, the
    /// local address, both ports and `count`, truncated to 32 bits.
    fn hash(&self, which: usize, local: SocketAddrV4, remote: SocketAddrV4, count: u32) -> u32 {
        let mut input = [0u8; 16];
        input[0..4].copy_from_slice(&remote.ip().octets());
        input[4..8].copy_from_slice(&local.ip().octets());
        input[8..10].copy_from_slice(&remote.port().to_be_bytes());
        input[10..12].copy_from_slice(&local.port().to_be_bytes());
        input[12..16].copy_from_slice(&count.to_be_bytes());
        let mut h = SipHasher24::new_with_key(&self.keys[which & 1]);
        h.write(&input);
        h.finish() as u32
    }
}

/// The minute counter of Linux's `tcp_cookie_time()`; only its low 8 bits matter.
fn counter(now: Instant) -> u32 {
    (now.total_micros() / COUNTER_PERIOD_MICROS) as u32
}

impl fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynCookies").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use crate::wire::Ipv4Addr;
    use alloc::format;

    fn random_addr(r: &mut Rand) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(r.next_u32()), r.next_u32() as u16)
    }

    fn local() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 443)
    }

    fn remote() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 51000)
    }

    const NO_TS_OPTS: CookieOptions = CookieOptions {
        mss: 1460,
        wscale: None,
        sack_ok: false,
    };

    #[test]
    fn round_trip_every_mss_over_random_tuples() {
        let mut r = Rand::from_u64(10);
        let sc = SynCookies::new(&mut r);
        for &mss in MSS_TABLE.iter() {
            for _ in 0..2000 {
                let (l, rem) = (random_addr(&mut r), random_addr(&mut r));
                let isn = SeqNumber(r.next_u32());
                let now = Instant::from_micros(r.next_u64() >> 8);
                let (cookie, encoded) = sc.generate(now, l, rem, isn, mss);
                assert_eq!(encoded, mss);
                let got = sc.check(now, l, rem, isn, cookie, None);
                assert_eq!(got, Some(CookieOptions { mss, ..NO_TS_OPTS }));
            }
        }
    }

    #[test]
    fn requested_mss_rounds_down_to_the_table() {
        let sc = SynCookies::new(&mut Rand::from_u64(11));
        let now = Instant::from_secs(100);
        let isn = SeqNumber(0xffff_fff0);
        for (asked, expect) in [
            (9000, 1460),
            (1460, 1460),
            (1459, 1440),
            (1440, 1440),
            (1400, 1300),
            (1300, 1300),
            (1299, 536),
            (536, 536),
            // Below the IPv4 default: Linux's floor (see `generate`).
            (500, 536),
            (0, 536),
        ] {
            let (cookie, encoded) = sc.generate(now, local(), remote(), isn, asked);
            assert_eq!(encoded, expect, "asked {asked}");
            let opts = sc.check(now, local(), remote(), isn, cookie, None).unwrap();
            assert_eq!(opts.mss, expect, "asked {asked}");
        }
    }

    #[test]
    fn cookie_expires_after_two_counter_steps() {
        let sc = SynCookies::new(&mut Rand::from_u64(12));
        let isn = SeqNumber(1234);
        // Sent at the very end of a counter minute.
        let sent = Instant::from_micros(600_000_000 - 1);
        let (cookie, _) = sc.generate(sent, local(), remote(), isn, 1460);
        let at = |t: Instant| sc.check(t, local(), remote(), isn, cookie, None);
        assert!(at(sent).is_some());
        assert!(at(Instant::from_secs(600)).is_some()); // counter +1
        assert!(at(Instant::from_secs(659)).is_some()); // still +1
        assert!(at(Instant::from_secs(660)).is_none()); // counter +2: too old
        assert!(at(Instant::from_secs(600 + 3600)).is_none());
        // Sent at the start of a minute: valid for just under two minutes.
        let sent = Instant::from_secs(600);
        let (cookie, _) = sc.generate(sent, local(), remote(), isn, 1460);
        let at = |t: Instant| sc.check(t, local(), remote(), isn, cookie, None);
        assert!(at(sent + Duration::from_micros(119_999_999)).is_some());
        assert!(at(sent + Duration::from_secs(120)).is_none());
        // A cookie from a later minute than "now" is not accepted either.
        assert!(at(Instant::from_secs(540)).is_none());
        // 256 minutes later the 8-bit counter has wrapped back: the hash still differs.
        assert!(at(sent + Duration::from_secs(256 * 60)).is_none());
    }

    #[test]
    fn cookie_is_bound_to_the_tuple_and_client_isn() {
        let sc = SynCookies::new(&mut Rand::from_u64(13));
        let now = Instant::from_secs(42);
        let isn = SeqNumber(0x1234_5678);
        let (cookie, _) = sc.generate(now, local(), remote(), isn, 1440);
        let check = |l, r, i| sc.check(now, l, r, i, cookie, None);
        assert!(check(local(), remote(), isn).is_some());
        let other_ip = Ipv4Addr::new(198, 51, 100, 8);
        assert!(check(local(), SocketAddrV4::new(other_ip, 51000), isn).is_none());
        assert!(check(local(), SocketAddrV4::new(*remote().ip(), 51001), isn).is_none());
        assert!(check(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 443),
            remote(),
            isn
        )
        .is_none());
        assert!(check(SocketAddrV4::new(*local().ip(), 444), remote(), isn).is_none());
        assert!(check(remote(), local(), isn).is_none());
        assert!(check(local(), remote(), isn + 1u32).is_none());
    }

    #[test]
    fn modified_or_random_cookies_are_rejected() {
        let mut r = Rand::from_u64(14);
        let sc = SynCookies::new(&mut r);
        let now = Instant::from_secs(3600);
        let isn = SeqNumber(77);
        let (cookie, _) = sc.generate(now, local(), remote(), isn, 1460);
        for bit in 0..32 {
            let forged = SeqNumber(cookie.0 ^ (1 << bit));
            if let Some(opts) = sc.check(now, local(), remote(), isn, forged, None) {
                // Bits 22 and 23 are the MSS index itself: flipping them changes the
                // MSS (1460 is index 3, so never to 1460 again), which only someone who
                // saw the SYN-ACK can do, and who could have asked for any MSS anyway.
                assert!((22..24).contains(&bit) && opts.mss != 1460, "bit {bit}");
            }
        }
        // Small offsets of the cookie or of the client ISN (off-by-one callers) fail.
        for delta in 1..=1000u32 {
            for (c, i) in [
                (cookie + delta, isn),
                (cookie - delta, isn),
                (cookie, isn + delta),
                (cookie, isn - delta),
            ] {
                assert!(
                    sc.check(now, local(), remote(), i, c, None).is_none(),
                    "{delta}"
                );
            }
        }
        // Blind guesses: expected false accepts ~ 100k * 2/256 * 4/2^24 = 0.0002.
        let accepted = (0..100_000)
            .filter(|_| {
                let guess = SeqNumber(r.next_u32());
                sc.check(now, local(), remote(), isn, guess, None).is_some()
            })
            .count();
        assert_eq!(accepted, 0);
    }

    #[test]
    fn timestamp_round_trips_wscale_and_sack() {
        let mut r = Rand::from_u64(15);
        let sc = SynCookies::new(&mut r);
        let now = Instant::from_secs(5);
        let isn = SeqNumber(99);
        let (cookie, mss) = sc.generate(now, local(), remote(), isn, 1460);
        let wscales = (0..=MAX_WSCALE).map(Some).chain([None]);
        for wscale in wscales {
            for sack_ok in [false, true] {
                let opts = CookieOptions {
                    mss,
                    wscale,
                    sack_ok,
                };
                for now_ts in [
                    0u32,
                    1,
                    63,
                    64,
                    65,
                    1000,
                    0x7fff_ffff,
                    u32::MAX,
                    r.next_u32(),
                ] {
                    let ts = sc.timestamp(now_ts, &opts);
                    // Never later than now_ts, and less than one 64-tick block earlier
                    // (modulo 2^32).
                    assert!(
                        now_ts.wrapping_sub(ts) < 64,
                        "now {now_ts} ts {ts} {opts:?}"
                    );
                    // The ACK echoes our TSval: the options come back.
                    let got = sc.check(now, local(), remote(), isn, cookie, Some(ts));
                    assert_eq!(got, Some(opts), "now {now_ts} ts {ts}");
                }
            }
        }
    }

    #[test]
    fn timestamp_keeps_the_clock_bits_and_clamps_wscale() {
        let sc = SynCookies::new(&mut Rand::from_u64(16));
        let opts = CookieOptions {
            mss: 536,
            wscale: Some(7),
            sack_ok: true,
        };
        // 0x1000_0017 has low bits 0x17 = 23 = 16 | 7: exactly the options, no change.
        assert_eq!(sc.timestamp(0x1000_0017, &opts), 0x1000_0017);
        // Low bits above the options: cleared to them, still in the same block.
        assert_eq!(sc.timestamp(0x1000_003f, &opts), 0x1000_0017);
        // Low bits below the options: the previous block.
        assert_eq!(sc.timestamp(0x1000_0005, &opts), 0x0fff_ffd7);
        // No window scaling, no SACK: 0xf; ECN is never set.
        assert_eq!(sc.timestamp(0x100, &NO_TS_OPTS), 0xcf);
        // RFC 7323 §2.3: a shift above 14 is 14.
        let big = CookieOptions {
            wscale: Some(20),
            ..opts
        };
        assert_eq!(sc.timestamp(0x1000_003f, &big) & TS_MASK, TS_OPT_SACK | 14);
    }

    #[test]
    fn without_timestamps_options_are_lost() {
        let sc = SynCookies::new(&mut Rand::from_u64(17));
        let now = Instant::from_secs(1);
        let (cookie, _) = sc.generate(now, local(), remote(), SeqNumber(5), 1300);
        let got = sc
            .check(now, local(), remote(), SeqNumber(5), cookie, None)
            .unwrap();
        assert_eq!(got.wscale, None);
        assert!(!got.sack_ok);
        assert_eq!(got.mss, 1300);
    }

    #[test]
    fn keys_matter_and_stay_secret() {
        let a = SynCookies::new(&mut Rand::from_u64(18));
        let b = SynCookies::new(&mut Rand::from_u64(19));
        let now = Instant::from_secs(9);
        let (cookie, _) = a.generate(now, local(), remote(), SeqNumber(1), 1460);
        assert_ne!(
            cookie,
            b.generate(now, local(), remote(), SeqNumber(1), 1460).0
        );
        assert!(b
            .check(now, local(), remote(), SeqNumber(1), cookie, None)
            .is_none());
        assert_eq!(format!("{a:?}"), "SynCookies { .. }");
    }
}
