//! Congestion control, one instance per connection, behind [`CongestionControl`].
//!
//! FreeBSD's layout: each algorithm in its own file, the sender talks to the trait only.
//! Two algorithms, as Linux offers by default:
//!
//! - [`newreno`]: RFC 5681 slow start and congestion avoidance with the RFC 6582
//!   (NewReno) recovery window, RFC 3465 byte counting.
//! - [`cubic`]: RFC 9438 CUBIC, the default (as in Linux).
//!
//! Dispatch goes through the [`Cc`] enum, not a trait object: the sender calls into it
//! on every ACK, and a `match` on two variants inlines where a vtable call cannot.
//!
//! Common rules, shared by both algorithms:
//!
//! - Windows are in bytes. The initial window is 10 segments (RFC 6928, as Linux's
//!   `TCP_INIT_CWND`); RFC 5681 §3.1 alone would give `min(4*MSS, max(2*MSS, 4380))`.
//! - The initial ssthresh is "arbitrarily high" (RFC 5681 §3.1): [`INITIAL_SSTHRESH`].
//! - Slow start counts bytes (RFC 3465) with a limit of L = 2*MSS per ACK, so a stretch
//!   ACK cannot burst the window open; bytes left when ssthresh is reached go on to
//!   congestion avoidance, as Linux does.
//! - The initial slow start ends early when the RTT shows a queue building
//!   ([`hystart`], HyStart++, RFC 9406), for both algorithms: the sender reports round
//!   boundaries and RTT samples ([`on_round_start`], [`on_rtt_sample`]).
//! - On a congestion event the window drops straight to ssthresh ("cwnd = ssthresh", as
//!   in RFC 6675 §5 and Linux) instead of Reno's "ssthresh + 3*MSS" inflation: the
//!   sender clocks out data by its pipe estimate during recovery, not by an inflated
//!   window. Any inflation or PRR is the sender's business; it only reads [`cwnd`].
//! - The window grows only when it was used (RFC 7661 §4.3, Linux's
//!   `tcp_is_cwnd_limited`): an application-limited sender does not earn a window it
//!   never tested.
//!
//! [`cwnd`]: CongestionControl::cwnd
//! [`on_round_start`]: CongestionControl::on_round_start
//! [`on_rtt_sample`]: CongestionControl::on_rtt_sample

pub mod cubic;
pub mod hystart;
pub mod newreno;

use core::fmt;
use core::str::FromStr;

use crate::time::{Duration, Instant};

pub use cubic::Cubic;
pub use newreno::NewReno;

/// The initial slow-start threshold: "arbitrarily high" (RFC 5681 §3.1), with headroom
/// so that additions cannot overflow.
pub const INITIAL_SSTHRESH: u32 = u32::MAX / 2;

/// Initial window in segments: RFC 6928 IW10, as Linux.
const INITIAL_WINDOW_SEGMENTS: u32 = 10;

/// RFC 3465 §2.2: the slow-start byte-counting limit L, in segments.
const ABC_LIMIT_SEGMENTS: u32 = 2;

/// The initial (and restart) window for `mss`: 10 segments (RFC 6928, as Linux).
pub fn initial_window(mss: u32) -> u32 {
    mss.saturating_mul(INITIAL_WINDOW_SEGMENTS)
}

/// What a congestion control algorithm must do for the sender.
///
/// The sender keeps the recovery state machine (when recovery starts and ends, Karn's
/// rule, the pipe); the algorithm keeps the window. All sizes are in bytes.
pub trait CongestionControl {
    /// Congestion window, bytes.
    fn cwnd(&self) -> u32;
    /// Slow-start threshold, bytes.
    fn ssthresh(&self) -> u32;
    /// New data was cumulatively acknowledged outside recovery: grow the window.
    ///
    /// `acked` is the number of newly acknowledged bytes; `flight_before` the bytes in
    /// flight just before this ACK (`snd_max - snd_una` before it was processed), which
    /// tells whether the window was used; `rtt` the current smoothed RTT if known.
    fn on_ack(&mut self, now: Instant, acked: u32, flight_before: u32, rtt: Option<Duration>);
    /// Loss detected by duplicate ACKs / SACK (fast retransmit): enter recovery.
    ///
    /// Call it once per loss episode; a second call before
    /// [`on_recovery_end`](Self::on_recovery_end) is ignored, so that one window of
    /// losses reduces the window once (RFC 6582 §3.2).
    fn on_congestion(&mut self, now: Instant, flight: u32);
    /// Recovery ended (the recovery point was acknowledged).
    fn on_recovery_end(&mut self, now: Instant);
    /// Retransmission timeout: the window collapses to the loss window (RFC 5681 §3.1
    /// eq. 4).
    ///
    /// ssthresh is lowered only on the first timeout of a loss episode: not again on a
    /// backed-off retransmission of the same data (RFC 5681 §3.1), nor when the timeout
    /// strikes during a recovery that already lowered it (as Linux's `tcp_enter_loss`).
    /// The episode ends with the next [`on_ack`](Self::on_ack).
    fn on_rto(&mut self, now: Instant, flight: u32);
    /// Sending resumes after `idle` without data in flight (RFC 5681 §4.1 restart
    /// window: cwnd = min(cwnd, IW) when idle > RTO).
    #[inline]
    fn on_idle_restart(&mut self, now: Instant, idle: Duration, rto: Duration) {
        self.on_idle_restart_micros(now, micros(idle), micros(rto));
    }
    /// [`on_idle_restart`](Self::on_idle_restart) with both spans in microseconds, as
    /// the sender keeps its clock and RTO: asked before every segment sent with
    /// nothing in flight (each request of a request/response exchange), so the
    /// algorithms implement this form and the sender builds no `Duration` for it.
    fn on_idle_restart_micros(&mut self, now: Instant, idle_us: u64, rto_us: u64);
    /// The MSS changed (after the handshake). The window keeps its size in segments,
    /// as Linux counts it, so an initial window computed with a provisional MSS
    /// becomes 10 segments of the real one.
    fn set_mss(&mut self, mss: u32);
    /// A round trip begins: an ACK covered everything that was outstanding when the
    /// previous round began (RFC 9406 §4.2 `windowEnd`). Called before that ACK's
    /// [`on_rtt_sample`](Self::on_rtt_sample) and [`on_ack`](Self::on_ack).
    fn on_round_start(&mut self, now: Instant);
    /// An ACK gave an RTT sample (RFC 9406 `newRTT`; the sender applies Karn's rule).
    fn on_rtt_sample(&mut self, now: Instant, rtt: Duration);

    /// [`on_ack`](Self::on_ack) with the smoothed RTT in microseconds, as the sender's
    /// estimator keeps it: an algorithm that reads the RTT in µs anyway overrides it
    /// and spares the sender a `Duration` per ACK.
    #[inline]
    fn on_ack_micros(&mut self, now: Instant, acked: u32, flight_before: u32, rtt: Option<u64>) {
        self.on_ack(now, acked, flight_before, rtt.map(Duration::from_micros));
    }

    /// [`on_rtt_sample`](Self::on_rtt_sample) with the RTT in microseconds, as the
    /// sender measures it.
    #[inline]
    fn on_rtt_sample_micros(&mut self, now: Instant, rtt_us: u64) {
        self.on_rtt_sample(now, Duration::from_micros(rtt_us));
    }

    /// A cumulative ACK of new data, as the sender reports it: the round boundary, the
    /// RTT sample and, outside recovery, the window growth, in that order (the order
    /// [`on_round_start`](Self::on_round_start) documents). One call per ACK where
    /// three would each dispatch on the algorithm.
    #[inline(always)]
    fn on_new_ack(&mut self, now: Instant, ack: NewAck) {
        if ack.round_start {
            self.on_round_start(now);
        }
        if let Some(rtt) = ack.rtt_us {
            self.on_rtt_sample_micros(now, rtt);
        }
        if let Some(grow) = ack.grow {
            self.on_ack_micros(now, grow.acked, grow.flight_before, grow.srtt_us);
        }
    }
}

/// What a cumulative ACK of new data tells the congestion controller
/// ([`CongestionControl::on_new_ack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAck {
    /// The ACK ends a round ([`CongestionControl::on_round_start`]).
    pub round_start: bool,
    /// An RTT sample in microseconds, Karn's rule applied
    /// ([`CongestionControl::on_rtt_sample`]).
    pub rtt_us: Option<u64>,
    /// Outside recovery, the window may grow ([`CongestionControl::on_ack`]).
    pub grow: Option<Growth>,
}

/// [`CongestionControl::on_ack`]'s arguments, the smoothed RTT in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    /// Bytes newly acknowledged.
    pub acked: u32,
    /// Bytes in flight just before the ACK.
    pub flight_before: u32,
    /// The smoothed RTT, once known.
    pub srtt_us: Option<u64>,
}

/// Which congestion control algorithm a socket uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CcAlgorithm {
    /// RFC 5681 + RFC 6582.
    NewReno,
    /// RFC 9438, the default as in Linux.
    #[default]
    Cubic,
}

/// A name that [`CcAlgorithm::from_str`] does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCcAlgorithm;

impl fmt::Display for UnknownCcAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown congestion control algorithm (expected newreno, reno or cubic)")
    }
}

impl FromStr for CcAlgorithm {
    type Err = UnknownCcAlgorithm;

    /// Accepts Linux's names too (`reno`), in any case, as configuration files use them.
    fn from_str(s: &str) -> Result<CcAlgorithm, UnknownCcAlgorithm> {
        if s.eq_ignore_ascii_case("newreno") || s.eq_ignore_ascii_case("reno") {
            Ok(CcAlgorithm::NewReno)
        } else if s.eq_ignore_ascii_case("cubic") {
            Ok(CcAlgorithm::Cubic)
        } else {
            Err(UnknownCcAlgorithm)
        }
    }
}

impl fmt::Display for CcAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CcAlgorithm::NewReno => "newreno",
            CcAlgorithm::Cubic => "cubic",
        })
    }
}

/// The congestion controller of one connection: enum dispatch over the algorithms.
///
/// `repr(u8)`: an explicit one-byte tag, tested in one instruction on every ACK, where
/// the niche the compiler would otherwise pick takes a 16-byte compare.
#[derive(Debug, Clone)]
#[repr(u8)]
pub enum Cc {
    /// RFC 5681 + RFC 6582.
    NewReno(NewReno),
    /// RFC 9438.
    Cubic(Cubic),
}

impl Cc {
    /// A controller in slow start with the initial window for `mss`.
    ///
    /// `now` is taken so that algorithms that need a clock origin (HyStart rounds, for
    /// one) can be added without touching callers; the current ones do not use it.
    pub fn new(algorithm: CcAlgorithm, mss: u32, now: Instant) -> Cc {
        let _ = now;
        match algorithm {
            CcAlgorithm::NewReno => Cc::NewReno(NewReno::new(mss)),
            CcAlgorithm::Cubic => Cc::Cubic(Cubic::new(mss)),
        }
    }

    /// Which algorithm this is.
    pub fn algorithm(&self) -> CcAlgorithm {
        match self {
            Cc::NewReno(_) => CcAlgorithm::NewReno,
            Cc::Cubic(_) => CcAlgorithm::Cubic,
        }
    }

    /// Whether the window is below ssthresh (RFC 5681 §3.1: slow start).
    pub fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }
}

impl CongestionControl for Cc {
    #[inline]
    fn cwnd(&self) -> u32 {
        match self {
            Cc::NewReno(cc) => cc.cwnd(),
            Cc::Cubic(cc) => cc.cwnd(),
        }
    }

    #[inline]
    fn ssthresh(&self) -> u32 {
        match self {
            Cc::NewReno(cc) => cc.ssthresh(),
            Cc::Cubic(cc) => cc.ssthresh(),
        }
    }

    #[inline]
    fn on_ack(&mut self, now: Instant, acked: u32, flight_before: u32, rtt: Option<Duration>) {
        match self {
            Cc::NewReno(cc) => cc.on_ack(now, acked, flight_before, rtt),
            Cc::Cubic(cc) => cc.on_ack(now, acked, flight_before, rtt),
        }
    }

    fn on_congestion(&mut self, now: Instant, flight: u32) {
        match self {
            Cc::NewReno(cc) => cc.on_congestion(now, flight),
            Cc::Cubic(cc) => cc.on_congestion(now, flight),
        }
    }

    fn on_recovery_end(&mut self, now: Instant) {
        match self {
            Cc::NewReno(cc) => cc.on_recovery_end(now),
            Cc::Cubic(cc) => cc.on_recovery_end(now),
        }
    }

    fn on_rto(&mut self, now: Instant, flight: u32) {
        match self {
            Cc::NewReno(cc) => cc.on_rto(now, flight),
            Cc::Cubic(cc) => cc.on_rto(now, flight),
        }
    }

    #[inline]
    fn on_idle_restart_micros(&mut self, now: Instant, idle_us: u64, rto_us: u64) {
        match self {
            Cc::NewReno(cc) => cc.on_idle_restart_micros(now, idle_us, rto_us),
            Cc::Cubic(cc) => cc.on_idle_restart_micros(now, idle_us, rto_us),
        }
    }

    fn set_mss(&mut self, mss: u32) {
        match self {
            Cc::NewReno(cc) => cc.set_mss(mss),
            Cc::Cubic(cc) => cc.set_mss(mss),
        }
    }

    #[inline]
    fn on_round_start(&mut self, now: Instant) {
        match self {
            Cc::NewReno(cc) => cc.on_round_start(now),
            Cc::Cubic(cc) => cc.on_round_start(now),
        }
    }

    #[inline]
    fn on_rtt_sample(&mut self, now: Instant, rtt: Duration) {
        match self {
            Cc::NewReno(cc) => cc.on_rtt_sample(now, rtt),
            Cc::Cubic(cc) => cc.on_rtt_sample(now, rtt),
        }
    }

    #[inline]
    fn on_ack_micros(&mut self, now: Instant, acked: u32, flight_before: u32, rtt: Option<u64>) {
        match self {
            Cc::NewReno(cc) => cc.on_ack_micros(now, acked, flight_before, rtt),
            Cc::Cubic(cc) => cc.on_ack_micros(now, acked, flight_before, rtt),
        }
    }

    #[inline]
    fn on_rtt_sample_micros(&mut self, now: Instant, rtt_us: u64) {
        match self {
            Cc::NewReno(cc) => cc.on_rtt_sample_micros(now, rtt_us),
            Cc::Cubic(cc) => cc.on_rtt_sample_micros(now, rtt_us),
        }
    }

    #[inline(always)]
    fn on_new_ack(&mut self, now: Instant, ack: NewAck) {
        match self {
            Cc::NewReno(cc) => cc.on_new_ack(now, ack),
            Cc::Cubic(cc) => cc.on_new_ack(now, ack),
        }
    }
}

impl Cc {
    /// [`on_new_ack`](CongestionControl::on_new_ack) if it is its usual case (see
    /// [`Cubic::on_new_ack_round_start`]): then true; else false, with nothing changed,
    /// and `on_new_ack` is the caller's to call. A caller that makes that call out of
    /// line keeps its rare inner calls (HyStart++'s round judgement) from costing it
    /// saved registers on every ACK.
    #[inline(always)]
    pub fn on_new_ack_usual(&mut self, now: Instant, ack: NewAck) -> bool {
        match self {
            Cc::NewReno(_) => false,
            Cc::Cubic(cc) => cc.on_new_ack_round_start(now, ack),
        }
    }
}

/// An MSS that arithmetic can rely on: at least 1 (a peer may announce 0) and at most
/// what an IP packet can carry, so products with it stay far from overflow.
fn sane_mss(mss: u32) -> u32 {
    mss.clamp(1, u32::from(u16::MAX))
}

/// Whether the sender was limited by the window rather than by the application
/// (RFC 7661 §4.3; Linux's `tcp_is_cwnd_limited`). In slow start, using more than half
/// the window counts, since the window doubles each round; in congestion avoidance the
/// window must have been full to within a segment.
fn cwnd_limited(cwnd: u32, ssthresh: u32, flight_before: u32, mss: u32) -> bool {
    if cwnd < ssthresh {
        u64::from(flight_before) * 2 > u64::from(cwnd)
    } else {
        u64::from(flight_before) + u64::from(mss) > u64::from(cwnd)
    }
}

/// Slow start by byte counting (RFC 3465 §2.2, RFC 5681 §3.1): cwnd grows by the bytes
/// acknowledged, at most L = 2*MSS per ACK, divided by `divisor` (HyStart++'s
/// Conservative Slow Start, RFC 9406 §4.2; 1 otherwise), and not past ssthresh.
/// Returns the acked bytes left for congestion avoidance once ssthresh is reached (0
/// while below it).
fn slow_start(cwnd: &mut u32, ssthresh: u32, acked: u32, mss: u32, divisor: u32) -> u32 {
    let counted = acked.min(mss.saturating_mul(ABC_LIMIT_SEGMENTS)) / divisor.max(1);
    let grown = cwnd.saturating_add(counted).min(ssthresh.max(*cwnd));
    let used = grown - *cwnd;
    *cwnd = grown;
    if *cwnd >= ssthresh {
        acked - used
    } else {
        0
    }
}

/// A span in whole microseconds (saturating: no span here comes near 2^64 µs).
pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// RFC 5681 §4.1: after an idle period longer than the RTO, the window restarts from
/// RW = min(IW, cwnd). ssthresh first remembers 3/4 of the old window (RFC 2861 §3, as
/// Linux's `tcp_cwnd_restart`), so slow start quickly regains what the path carried.
/// Returns whether the window shrank.
fn restart_window(cwnd: &mut u32, ssthresh: &mut u32, mss: u32, idle: u64, rto: u64) -> bool {
    if idle <= rto {
        return false;
    }
    let restart = initial_window(mss);
    if *cwnd <= restart {
        return false;
    }
    let three_quarters = (u64::from(*cwnd) * 3 / 4) as u32;
    *ssthresh = (*ssthresh).max(three_quarters);
    *cwnd = restart;
    true
}

/// Scales a byte count kept "in segments" from one MSS to another. Zero stays zero
/// without the division (a new connection's `w_max` and `cwnd_prior`, when its
/// handshake sets the MSS).
#[inline]
fn rescale(bytes: u32, old_mss: u32, new_mss: u32) -> u32 {
    if bytes == 0 {
        return 0;
    }
    let scaled = u64::from(bytes) * u64::from(new_mss) / u64::from(old_mss.max(1));
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const MSS: u32 = 1000;

    #[test]
    fn algorithm_names_round_trip() {
        assert_eq!(CcAlgorithm::default(), CcAlgorithm::Cubic);
        assert_eq!("cubic".parse(), Ok(CcAlgorithm::Cubic));
        assert_eq!("CUBIC".parse(), Ok(CcAlgorithm::Cubic));
        assert_eq!("newreno".parse(), Ok(CcAlgorithm::NewReno));
        assert_eq!("reno".parse(), Ok(CcAlgorithm::NewReno));
        assert_eq!("bbr".parse::<CcAlgorithm>(), Err(UnknownCcAlgorithm));
        assert_eq!("".parse::<CcAlgorithm>(), Err(UnknownCcAlgorithm));
        for alg in [CcAlgorithm::NewReno, CcAlgorithm::Cubic] {
            assert_eq!(alg.to_string().parse(), Ok(alg));
        }
    }

    #[test]
    fn enum_dispatch_reaches_the_algorithm() {
        for alg in [CcAlgorithm::NewReno, CcAlgorithm::Cubic] {
            let mut cc = Cc::new(alg, MSS, Instant::ZERO);
            assert_eq!(cc.algorithm(), alg);
            assert_eq!(cc.cwnd(), 10 * MSS);
            assert_eq!(cc.ssthresh(), INITIAL_SSTHRESH);
            assert!(cc.in_slow_start());
            cc.on_ack(Instant::from_millis(10), MSS, 10 * MSS, None);
            assert_eq!(cc.cwnd(), 11 * MSS);
            cc.on_congestion(Instant::from_millis(20), 10 * MSS);
            assert!(cc.cwnd() < 11 * MSS);
            assert!(!cc.in_slow_start());
            cc.on_recovery_end(Instant::from_millis(30));
            cc.on_rto(Instant::from_millis(40), 10 * MSS);
            assert_eq!(cc.cwnd(), MSS);
            cc.set_mss(2 * MSS);
            assert_eq!(cc.cwnd(), 2 * MSS);
        }
    }

    #[test]
    fn slow_start_byte_counting_limits_stretch_acks() {
        let mut cwnd = 10 * MSS;
        // A stretch ACK for 8 segments opens the window by L = 2 segments only.
        assert_eq!(slow_start(&mut cwnd, INITIAL_SSTHRESH, 8 * MSS, MSS, 1), 0);
        assert_eq!(cwnd, 12 * MSS);
        // Reaching ssthresh hands the rest of the ACK to congestion avoidance.
        assert_eq!(slow_start(&mut cwnd, 13 * MSS, 2 * MSS, MSS, 1), MSS);
        assert_eq!(cwnd, 13 * MSS);
        // Conservative slow start grows a quarter as fast.
        assert_eq!(slow_start(&mut cwnd, INITIAL_SSTHRESH, 2 * MSS, MSS, 4), 0);
        assert_eq!(cwnd, 13 * MSS + MSS / 2);
    }

    /// One round of a window-limited slow start: the round boundary, then one ACK per
    /// segment of the window, each with an RTT sample of `rtt_us`.
    fn hystart_round(cc: &mut Cc, rtt_us: u64) {
        let now = Instant::ZERO;
        cc.on_round_start(now);
        for _ in 0..cc.cwnd() / MSS {
            cc.on_rtt_sample(now, Duration::from_micros(rtt_us));
            cc.on_ack(now, MSS, cc.cwnd(), None);
        }
    }

    #[test]
    fn hystart_ends_the_initial_slow_start_on_a_delay_rise() {
        // RFC 9406 in both algorithms: a rise of the round's minimum RTT slows growth
        // (CSS, a quarter of slow start's), and CSS_ROUNDS rounds later congestion
        // avoidance begins at the window reached.
        for alg in [CcAlgorithm::NewReno, CcAlgorithm::Cubic] {
            let mut cc = Cc::new(alg, MSS, Instant::ZERO);
            hystart_round(&mut cc, 100);
            hystart_round(&mut cc, 100);
            assert_eq!(cc.cwnd(), 40 * MSS, "{alg}: plain slow start");
            // 40 ACKs: 7 at full speed, then CSS from the 8th sample on.
            hystart_round(&mut cc, 200);
            let css = 40 * MSS + 7 * MSS + 33 * MSS / 4;
            assert_eq!(cc.cwnd(), css, "{alg}");
            for _ in 0..4 {
                hystart_round(&mut cc, 200);
                assert!(cc.in_slow_start(), "{alg}");
            }
            let before = cc.cwnd();
            assert!(before < css * 3, "{alg}: growth of 1.25x per round");
            cc.on_round_start(Instant::ZERO);
            assert_eq!(cc.ssthresh(), before, "{alg}");
            assert!(!cc.in_slow_start());
        }
        // A loss ends HyStart++ for good: the next slow start (after a timeout) stops at
        // the ssthresh the loss taught, whatever the RTT does.
        let mut cc = Cc::new(CcAlgorithm::NewReno, MSS, Instant::ZERO);
        hystart_round(&mut cc, 100);
        cc.on_rto(Instant::ZERO, 20 * MSS);
        hystart_round(&mut cc, 100);
        hystart_round(&mut cc, 900);
        assert_eq!(cc.cwnd(), 4 * MSS, "1 -> 2 -> 4 segments, no CSS");
    }

    #[test]
    fn window_must_be_used_to_grow() {
        // Slow start: more than half the window in flight.
        assert!(cwnd_limited(10 * MSS, INITIAL_SSTHRESH, 6 * MSS, MSS));
        assert!(!cwnd_limited(10 * MSS, INITIAL_SSTHRESH, 5 * MSS, MSS));
        // Congestion avoidance: the window full to within one segment.
        assert!(cwnd_limited(10 * MSS, 5 * MSS, 9 * MSS + 1, MSS));
        assert!(!cwnd_limited(10 * MSS, 5 * MSS, 9 * MSS, MSS));
    }

    #[test]
    fn initial_window_is_ten_segments() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(u32::MAX), u32::MAX);
    }

    #[test]
    fn mss_is_sane() {
        assert_eq!(sane_mss(0), 1);
        assert_eq!(sane_mss(1460), 1460);
        assert_eq!(sane_mss(1 << 20), 65_535);
    }
    #[test]
    fn the_usual_new_ack_leaves_the_controller_as_on_new_ack_does() {
        // `on_new_ack_usual` (input.rs `try_sole_ack` asks it first, and calls
        // `on_new_ack` only when it declines): taken or not, the controller must end as
        // `on_new_ack` alone leaves it, along a run that passes through slow start,
        // HyStart++'s rounds (RTTs rising far enough to leave slow start), recovery,
        // a timeout and congestion avoidance, for both algorithms.
        for algorithm in [CcAlgorithm::Cubic, CcAlgorithm::NewReno] {
            let mut usual = Cc::new(algorithm, MSS, Instant::ZERO);
            let mut plain = usual.clone();
            let mut taken = 0;
            for i in 0u32..400 {
                let now = Instant::from_micros(u64::from(i) * 1_000);
                match i {
                    150 | 300 => {
                        usual.on_congestion(now, 8 * MSS);
                        plain.on_congestion(now, 8 * MSS);
                    }
                    160 | 310 => {
                        usual.on_recovery_end(now);
                        plain.on_recovery_end(now);
                    }
                    230 => {
                        usual.on_rto(now, 8 * MSS);
                        plain.on_rto(now, 8 * MSS);
                    }
                    _ => {}
                }
                // RTTs that climb (HyStart++'s exit), rounds of one ACK or several,
                // growth or none (application-limited), samples or none.
                let rtt = 100 + u64::from(i % 7) * 10 + u64::from(i / 20) * 500;
                let ack = NewAck {
                    round_start: i % 3 != 1,
                    rtt_us: (i % 11 != 5).then_some(rtt),
                    grow: (i % 13 != 3).then(|| Growth {
                        acked: MSS * (1 + i % 3),
                        flight_before: if i % 4 == 0 { MSS } else { usual.cwnd() },
                        srtt_us: (i % 17 != 2).then_some(rtt + 7),
                    }),
                };
                if usual.on_new_ack_usual(now, ack) {
                    taken += 1;
                } else {
                    usual.on_new_ack(now, ack);
                }
                plain.on_new_ack(now, ack);
                assert_eq!(
                    alloc::format!("{usual:?}"),
                    alloc::format!("{plain:?}"),
                    "{algorithm:?} after ACK {i}"
                );
            }
            // The usual case was met (for CUBIC), and so was the rest.
            if algorithm == CcAlgorithm::Cubic {
                assert!(taken > 50 && taken < 400, "{taken}");
            }
        }
    }
}
