//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! One [`RttEstimator`] per connection turns RTT samples into the smoothed RTT (SRTT),
//! its variation (RTTVAR) and the retransmission timeout (RTO), and keeps the exponential
//! backoff applied while retransmissions go unanswered.
//!
//! What is *not* done here, because only the sender knows: Karn's algorithm (RFC 6298 §3).
//! A segment that was retransmitted must not yield a sample (the ACK may answer either
//! copy), unless the sample comes from the timestamp option (RFC 7323 §4), whose echo
//! says which copy was answered. The caller feeds [`RttEstimator::sample`] only with
//! unambiguous samples.
//!
//! Bounds differ from the RFC on purpose, like Linux: RFC 6298 §2.4 asks for a 1 s
//! minimum RTO, Linux uses 200 ms (`TCP_RTO_MIN`), which is what data-centre and loopback
//! paths need; the maximum is Linux's 120 s (`TCP_RTO_MAX`, RFC 6298 §2.5 allows any
//! maximum of at least 60 s). Both are in [`RtoConfig`].

use crate::time::Duration;

/// The clock granularity G of RFC 6298 §2: the host clock is read in microseconds, but
/// RTO timers fire on a millisecond-grained wheel, so 1 ms is the honest figure.
const GRANULARITY_MICROS: u64 = 1_000;

/// RFC 6298 §5.7: the RTO after a lost SYN, when no sample was taken, is at least 3 s.
const SYN_FALLBACK_MICROS: u64 = 3_000_000;

/// The RTO's initial value and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoConfig {
    /// RTO before the first sample: 1 s (RFC 6298 §2.1).
    pub initial: Duration,
    /// Lower bound: 200 ms as Linux (RFC 6298 §2.4 says 1 s; see the module docs).
    pub min: Duration,
    /// Upper bound, backoff included: 120 s as Linux (RFC 6298 §2.5: at least 60 s).
    pub max: Duration,
}

impl Default for RtoConfig {
    fn default() -> RtoConfig {
        RtoConfig {
            initial: Duration::from_secs(1),
            min: Duration::from_millis(200),
            max: Duration::from_secs(120),
        }
    }
}

/// SRTT, RTTVAR and RTO of one connection (RFC 6298 §2), with exponential backoff (§5.5).
///
/// Kept in whole microseconds: exact enough for any path, and integer arithmetic keeps
/// the estimator deterministic and `no_std`.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    config: RtoConfig,
    /// SRTT in µs; `None` until the first sample.
    srtt: Option<u64>,
    /// RTTVAR in µs; meaningful once `srtt` is set.
    rttvar: u64,
    /// The RTO without backoff, already clamped to `[min, max]`, in µs.
    base_rto: u64,
    /// How many times the timer was backed off since the last sample.
    backoff: u32,
    /// The smallest sample ever seen, in µs; meaningful once `srtt` is set (both are
    /// set by every sample), `u64::MAX` before: the minimum is then a plain `min`.
    min_rtt: u64,
    /// `config.min` and `config.max` in µs, worked out once: every sample clamps with
    /// them. `min_us` is already brought down to `max_us` (see [`clamp`](Self::clamp)).
    min_us: u64,
    max_us: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl RttEstimator {
    /// An estimator with no sample yet: the RTO is `config.initial` (RFC 6298 §2.1),
    /// brought within `[min, max]`.
    pub fn new(config: RtoConfig) -> RttEstimator {
        let mut est = RttEstimator {
            config,
            srtt: None,
            rttvar: 0,
            base_rto: 0,
            backoff: 0,
            min_rtt: u64::MAX,
            min_us: micros(config.min).min(micros(config.max)),
            max_us: micros(config.max),
        };
        est.base_rto = est.clamp(micros(config.initial));
        est
    }

    /// The configuration this estimator was built with.
    pub fn config(&self) -> RtoConfig {
        self.config
    }

    fn clamp(&self, rto: u64) -> u64 {
        // `min_us` is at most `max_us`, so a `min` above `max` cannot make this panic
        // (`min(max)` first, then `max(min)`).
        rto.min(self.max_us).max(self.min_us)
    }

    /// Takes one RTT measurement from new data (never from a retransmitted segment
    /// without timestamps: Karn's algorithm is the caller's, see the module docs).
    ///
    /// The sample also collapses the backoff (RFC 6298 §5.7): a fresh measurement is
    /// evidence that the path answers again.
    pub fn sample(&mut self, rtt: Duration) {
        self.sample_micros(micros(rtt));
    }

    /// [`sample`](Self::sample) with the RTT in microseconds, as the sender measures
    /// it (the difference of two [`Instant`](crate::time::Instant)s): no round trip
    /// through a `Duration` per ACK.
    pub fn sample_micros(&mut self, r: u64) {
        self.min_rtt = self.min_rtt.min(r);
        let srtt = match self.srtt {
            // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
            None => {
                self.rttvar = r / 2;
                r
            }
            // Every value below 2^60 µs (36,000 years): the sums below, the RTO's
            // `4 * RTTVAR` and `SRTT + 4 * RTTVAR` all fit a u64 with room to spare,
            // so plain arithmetic gives what the general case gives.
            Some(srtt) if (srtt | r | self.rttvar) >> 60 == 0 => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (3 * self.rttvar + delta) / 4;
                let srtt = (7 * srtt + r) / 8;
                self.srtt = Some(srtt);
                self.base_rto = self.clamp(srtt + GRANULARITY_MICROS.max(self.rttvar * 4));
                self.backoff = 0;
                return;
            }
            // RFC 6298 §2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'| (with the old SRTT),
            // then SRTT <- 7/8 SRTT + 1/8 R'. Weighted means of u64 values fit a u64;
            // only the intermediate sums need u128.
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = ((3 * u128::from(self.rttvar) + u128::from(delta)) / 4) as u64;
                ((7 * u128::from(srtt) + u128::from(r)) / 8) as u64
            }
        };
        self.srtt = Some(srtt);
        // RFC 6298 §2.2/§2.3: RTO <- SRTT + max(G, K*RTTVAR), K = 4; §2.4/§2.5 bounds.
        let var = GRANULARITY_MICROS.max(self.rttvar.saturating_mul(4));
        self.base_rto = self.clamp(srtt.saturating_add(var));
        self.backoff = 0;
    }

    /// The retransmission timeout to arm now: the base RTO doubled once per backoff
    /// (RFC 6298 §5.5), never above `max`.
    #[inline]
    pub fn rto(&self) -> Duration {
        Duration::from_micros(self.rto_micros())
    }

    /// [`rto`](Self::rto) in microseconds: what arming the timer adds to an
    /// [`Instant`](crate::time::Instant), without converting to a `Duration` and back.
    #[inline]
    pub fn rto_micros(&self) -> u64 {
        if self.backoff == 0 {
            // The common case, asked for on every data segment: `base_rto` is already
            // within `[min, max]`, so there is nothing to double or clamp.
            return self.base_rto;
        }
        let max = self.max_us;
        let rto = match 1u64.checked_shl(self.backoff) {
            Some(factor) => self.base_rto.saturating_mul(factor),
            None => u64::MAX,
        };
        rto.min(max)
    }

    /// The least RTO this estimator gives, backoff or not (its configured minimum,
    /// brought down to the maximum), in microseconds.
    #[inline]
    pub fn min_rto_micros(&self) -> u64 {
        self.min_us
    }

    /// The smallest RTT seen, in microseconds, once a sample was taken.
    #[inline]
    pub fn min_rtt_micros(&self) -> Option<u64> {
        self.srtt.map(|_| self.min_rtt)
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 §5.5).
    pub fn backoff(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Backoffs since the last sample or [`reset_backoff`](Self::reset_backoff); the
    /// caller compares it with its retry limit (RFC 9293 §3.8.3, R2).
    pub fn backoff_count(&self) -> u32 {
        self.backoff
    }

    /// Forgets the backoff without a new sample, e.g. when an ACK for new data arrives
    /// that Karn's algorithm forbids to measure.
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// RFC 6298 §5.7: when the SYN (or SYN-ACK) had to be retransmitted and no RTT
    /// could be measured, the RTO is re-initialised to at least 3 s once the handshake
    /// completes. Call it then; it does nothing once a sample exists.
    pub fn syn_timeout_fallback(&mut self) {
        if self.srtt.is_none() {
            self.base_rto = self.clamp(self.base_rto.max(SYN_FALLBACK_MICROS));
        }
        self.backoff = 0;
    }

    /// The smoothed RTT, once a sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(Duration::from_micros)
    }

    /// The smoothed RTT in microseconds (for per-segment arithmetic), once a sample was
    /// taken.
    #[inline]
    pub fn srtt_micros(&self) -> Option<u64> {
        self.srtt
    }

    /// The RTT variation, once a sample was taken.
    pub fn rttvar(&self) -> Option<Duration> {
        self.srtt.map(|_| Duration::from_micros(self.rttvar))
    }

    /// The smallest RTT sample of the connection's life (not windowed: CUBIC only needs
    /// a floor for its RTT term).
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt_micros().map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn initial_rto_is_one_second() {
        let est = RttEstimator::new(RtoConfig::default());
        assert_eq!(est.rto(), Duration::from_secs(1));
        assert_eq!(est.srtt(), None);
        assert_eq!(est.rttvar(), None);
        assert_eq!(est.min_rtt(), None);
        assert_eq!(est.backoff_count(), 0);
    }

    #[test]
    fn rfc6298_formulas_by_hand() {
        let mut est = RttEstimator::new(RtoConfig::default());
        // First sample: SRTT = 100, RTTVAR = 50, RTO = 100 + 4*50 = 300 ms.
        est.sample(ms(100));
        assert_eq!(est.srtt(), Some(ms(100)));
        assert_eq!(est.rttvar(), Some(ms(50)));
        assert_eq!(est.rto(), ms(300));
        // Second sample 200 ms: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5,
        // SRTT = 7/8*100 + 1/8*200 = 112.5, RTO = 112.5 + 4*62.5 = 362.5 ms.
        est.sample(ms(200));
        assert_eq!(est.rttvar(), Some(us(62_500)));
        assert_eq!(est.srtt(), Some(us(112_500)));
        assert_eq!(est.rto(), us(362_500));
        // Third sample 50 ms: RTTVAR = 3/4*62.5 + 1/4*62.5 = 62.5,
        // SRTT = 7/8*112.5 + 50/8 = 104.6875, RTO = 104.6875 + 250 = 354.6875 ms.
        est.sample(ms(50));
        assert_eq!(est.rttvar(), Some(us(62_500)));
        assert_eq!(est.srtt(), Some(us(104_687)));
        assert_eq!(est.rto(), us(354_687));
        assert_eq!(est.min_rtt(), Some(ms(50)));
        est.sample(ms(70));
        assert_eq!(est.min_rtt(), Some(ms(50)), "all-time minimum is kept");
    }

    #[test]
    fn clock_granularity_floors_the_variance_term() {
        let config = RtoConfig {
            min: Duration::ZERO,
            ..RtoConfig::default()
        };
        let mut est = RttEstimator::new(config);
        // Constant samples drive RTTVAR to 0; RTO must stay SRTT + G, not SRTT.
        for _ in 0..100 {
            est.sample(ms(5));
        }
        assert_eq!(est.rttvar(), Some(Duration::ZERO));
        assert_eq!(est.rto(), ms(6));
    }

    #[test]
    fn rto_is_clamped_to_min_and_max() {
        let mut est = RttEstimator::new(RtoConfig::default());
        est.sample(ms(10)); // 10 + 20 = 30 ms, below the 200 ms floor
        assert_eq!(est.rto(), ms(200));
        let mut est = RttEstimator::new(RtoConfig::default());
        est.sample(Duration::from_secs(100)); // 100 + 200 = 300 s, above 120 s
        assert_eq!(est.rto(), Duration::from_secs(120));
        // Absurd samples (e.g. a forged timestamp echo) saturate instead of overflowing.
        est.sample(Duration::MAX);
        est.sample(Duration::MAX);
        assert_eq!(est.rto(), Duration::from_secs(120));
    }

    #[test]
    fn initial_rto_respects_bounds() {
        let est = RttEstimator::new(RtoConfig {
            initial: ms(50),
            ..RtoConfig::default()
        });
        assert_eq!(est.rto(), ms(200));
        let est = RttEstimator::new(RtoConfig {
            initial: Duration::from_secs(500),
            ..RtoConfig::default()
        });
        assert_eq!(est.rto(), Duration::from_secs(120));
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let mut est = RttEstimator::new(RtoConfig::default());
        est.sample(ms(100)); // RTO 300 ms
        let mut expected = 300;
        for n in 1..=8 {
            est.backoff();
            expected *= 2;
            assert_eq!(est.backoff_count(), n);
            assert_eq!(est.rto(), ms(expected.min(120_000)));
        }
        // 300 ms * 2^9 = 153.6 s > 120 s.
        est.backoff();
        assert_eq!(est.rto(), Duration::from_secs(120));
        for _ in 0..200 {
            est.backoff();
        }
        assert_eq!(est.rto(), Duration::from_secs(120));
        assert_eq!(est.backoff_count(), 209);
        est.reset_backoff();
        assert_eq!(est.rto(), ms(300));
    }

    #[test]
    fn backoff_applies_before_first_sample() {
        let mut est = RttEstimator::new(RtoConfig::default());
        est.backoff();
        est.backoff();
        assert_eq!(est.rto(), Duration::from_secs(4));
    }

    #[test]
    fn sample_after_backoff_collapses_it() {
        let mut est = RttEstimator::new(RtoConfig::default());
        est.sample(ms(100));
        est.backoff();
        est.backoff();
        assert_eq!(est.rto(), ms(1200));
        // RFC 6298 §5.7: RTTVAR = 3/4*50 + 1/4*0 = 37.5, SRTT = 100, RTO = 250 ms.
        est.sample(ms(100));
        assert_eq!(est.backoff_count(), 0);
        assert_eq!(est.rto(), ms(250));
    }

    #[test]
    fn syn_timeout_fallback_is_three_seconds_without_sample() {
        let mut est = RttEstimator::new(RtoConfig::default());
        est.backoff();
        est.syn_timeout_fallback();
        assert_eq!(est.rto(), Duration::from_secs(3));
        assert_eq!(est.backoff_count(), 0);
        // With a sample, the measured RTO stands.
        let mut est = RttEstimator::new(RtoConfig::default());
        est.sample(ms(100));
        est.syn_timeout_fallback();
        assert_eq!(est.rto(), ms(300));
    }

    /// RFC 6298 §2.3 as the general case computes it: in u128, saturating.
    fn reference(est: &mut RttEstimator, r: u64) -> (Option<u64>, u64, u64, Option<u64>) {
        let min_rtt = Some(est.min_rtt_micros().map_or(r, |m| m.min(r)));
        let (srtt, rttvar) = match est.srtt_micros() {
            None => (r, r / 2),
            Some(srtt) => {
                let delta = u128::from(srtt.abs_diff(r));
                (
                    ((7 * u128::from(srtt) + u128::from(r)) / 8) as u64,
                    ((3 * u128::from(est.rttvar) + delta) / 4) as u64,
                )
            }
        };
        let var = GRANULARITY_MICROS.max(rttvar.saturating_mul(4));
        (
            Some(srtt),
            rttvar,
            est.clamp(srtt.saturating_add(var)),
            min_rtt,
        )
    }

    #[test]
    fn the_u64_case_of_a_sample_is_the_general_one() {
        use crate::rand::Rand;
        let mut rng = Rand::from_u64(6298);
        for _ in 0..2000 {
            let config = RtoConfig {
                initial: us(rng.next_u64() >> rng.below(64)),
                min: us(rng.next_u64() >> rng.below(64)),
                max: us(rng.next_u64() >> rng.below(64)),
            };
            let mut est = RttEstimator::new(config);
            for _ in 0..8 {
                // Any size: small ones take the u64 case, the rest the general one,
                // and values either side of 2^60 meet.
                let r = rng.next_u64() >> rng.below(64);
                est.backoff();
                let want = reference(&mut est, r);
                est.sample_micros(r);
                let got = (est.srtt, est.rttvar, est.base_rto, est.min_rtt_micros());
                assert_eq!(got, want, "sample {r}");
                assert_eq!(est.backoff_count(), 0);
            }
        }
    }
}
