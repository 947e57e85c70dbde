//! NewReno: RFC 5681 slow start and congestion avoidance, the RFC 6582 recovery window.
//!
//! - Slow start (RFC 5681 §3.1, RFC 3465 §2.2): cwnd += min(acked, 2*MSS) per ACK.
//! - Congestion avoidance (RFC 5681 §3.1 eq. 3, byte-counting form of RFC 3465 §2.1):
//!   acknowledged bytes accumulate, and each full cwnd of them adds one MSS, i.e. about
//!   one segment per round trip.
//! - Fast retransmit (RFC 5681 §3.2 eq. 4, RFC 6582 §3.2 step 2): ssthresh =
//!   max(FlightSize/2, 2*MSS), cwnd = ssthresh (no "+3*MSS" inflation: see the
//!   [module docs](super)).
//! - End of recovery (RFC 6582 §3.2 step 3, option 2): cwnd = ssthresh.
//! - Timeout (RFC 5681 §3.1 eq. 4, §3.1 last paragraph): ssthresh = max(FlightSize/2,
//!   2*MSS), cwnd = loss window = 1 MSS.
//! - The initial slow start may end early by HyStart++ (RFC 9406, [`super::hystart`]).

use super::hystart::HyStart;
use super::{
    cwnd_limited, initial_window, rescale, restart_window, sane_mss, slow_start, CongestionControl,
    NewAck, INITIAL_SSTHRESH,
};
use crate::time::{Duration, Instant};

/// NewReno congestion control state of one connection.
#[derive(Debug, Clone)]
pub struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: u32,
    /// Between [`on_congestion`](CongestionControl::on_congestion) and the end of
    /// recovery (or a timeout).
    in_recovery: bool,
    /// A timeout lowered ssthresh and no new data was acknowledged since.
    rto_episode: bool,
    /// HyStart++ for the initial slow start.
    hystart: HyStart,
}

impl NewReno {
    /// Slow start from the initial window (RFC 6928 IW10) with an "arbitrarily high"
    /// ssthresh (RFC 5681 §3.1).
    pub fn new(mss: u32) -> NewReno {
        let mss = sane_mss(mss);
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: INITIAL_SSTHRESH,
            bytes_acked: 0,
            in_recovery: false,
            rto_episode: false,
            hystart: HyStart::new(),
        }
    }

    /// RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
    fn loss_ssthresh(&self, flight: u32) -> u32 {
        (flight / 2).max(self.mss.saturating_mul(2))
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    #[inline]
    fn on_ack(&mut self, _now: Instant, acked: u32, flight_before: u32, _rtt: Option<Duration>) {
        // New data acknowledged: a retransmission after a timeout got through.
        self.rto_episode = false;
        // RFC 6582: the window is set by recovery, not grown by its partial ACKs.
        if self.in_recovery || !cwnd_limited(self.cwnd, self.ssthresh, flight_before, self.mss) {
            return;
        }
        let mut acked = acked;
        if self.cwnd < self.ssthresh {
            let divisor = self.hystart.growth_divisor();
            acked = slow_start(&mut self.cwnd, self.ssthresh, acked, self.mss, divisor);
        }
        if acked == 0 {
            return;
        }
        // RFC 5681 §3.1 / RFC 3465 §2.1: one MSS per cwnd of bytes acknowledged.
        self.bytes_acked = self.bytes_acked.saturating_add(acked);
        if self.bytes_acked >= self.cwnd {
            let rounds = self.bytes_acked / self.cwnd.max(1);
            self.bytes_acked -= rounds * self.cwnd;
            self.cwnd = self.cwnd.saturating_add(rounds.saturating_mul(self.mss));
        }
    }

    fn on_congestion(&mut self, _now: Instant, flight: u32) {
        if self.in_recovery {
            return;
        }
        // RFC 5681 §3.2 step 2, RFC 6582 §3.2 step 2; cwnd = ssthresh (RFC 6675 §5).
        self.hystart.finish();
        self.ssthresh = self.loss_ssthresh(flight);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
        self.in_recovery = true;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        if self.in_recovery {
            // RFC 6582 §3.2 step 3, option 2: deflate the window to ssthresh.
            self.cwnd = self.ssthresh;
            self.in_recovery = false;
        }
    }

    fn on_rto(&mut self, _now: Instant, flight: u32) {
        // RFC 5681 §3.1: ssthresh is held on a repeated timeout, and a recovery in
        // progress already lowered it for this loss.
        if !self.rto_episode && !self.in_recovery {
            self.ssthresh = self.loss_ssthresh(flight);
        }
        self.hystart.finish();
        // RFC 5681 §3.1: cwnd = LW = 1*SMSS.
        self.cwnd = self.mss;
        self.bytes_acked = 0;
        self.in_recovery = false;
        self.rto_episode = true;
    }

    #[inline]
    fn on_idle_restart_micros(&mut self, _now: Instant, idle: u64, rto: u64) {
        if restart_window(&mut self.cwnd, &mut self.ssthresh, self.mss, idle, rto) {
            self.bytes_acked = 0;
        }
    }

    fn set_mss(&mut self, mss: u32) {
        let mss = sane_mss(mss);
        self.cwnd = rescale(self.cwnd, self.mss, mss).max(mss);
        if self.ssthresh < INITIAL_SSTHRESH {
            self.ssthresh = rescale(self.ssthresh, self.mss, mss).max(2 * mss);
        }
        self.bytes_acked = 0;
        self.mss = mss;
    }

    #[inline]
    fn on_round_start(&mut self, _now: Instant) {
        self.hystart.round_start(self.cwnd, &mut self.ssthresh);
    }

    fn on_rtt_sample(&mut self, _now: Instant, rtt: Duration) {
        self.hystart.rtt_sample(self.cwnd, self.ssthresh, rtt);
    }

    /// NewReno does not read the RTT.
    #[inline]
    fn on_ack_micros(&mut self, now: Instant, acked: u32, flight_before: u32, _rtt: Option<u64>) {
        self.on_ack(now, acked, flight_before, None);
    }

    #[inline]
    fn on_rtt_sample_micros(&mut self, _now: Instant, rtt_us: u64) {
        self.hystart
            .rtt_sample_micros(self.cwnd, self.ssthresh, rtt_us);
    }

    /// The HyStart++ hooks in one step ([`HyStart::on_ack`]), then the growth.
    #[inline(always)]
    fn on_new_ack(&mut self, now: Instant, ack: NewAck) {
        self.hystart
            .on_ack(self.cwnd, &mut self.ssthresh, ack.round_start, ack.rtt_us);
        if let Some(grow) = ack.grow {
            self.on_ack_micros(now, grow.acked, grow.flight_before, grow.srtt_us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;
    const RTT: Duration = Duration::from_millis(100);

    /// One round trip of a window-limited sender: a whole window is sent and each
    /// segment is acknowledged by its own ACK, spread over the RTT. The sender refills
    /// the window after each ACK, so the window is full when the next ACK arrives.
    fn round(cc: &mut NewReno, now: &mut Instant) {
        let segments = (cc.cwnd() / MSS).max(1);
        for i in 0..segments {
            let at = *now + RTT * (i + 1) / segments;
            cc.on_ack(at, MSS, cc.cwnd(), Some(RTT));
        }
        *now += RTT;
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO;
        assert_eq!(cc.cwnd(), 10 * MSS);
        for expected in [20, 40, 80, 160] {
            round(&mut cc, &mut now);
            assert_eq!(cc.cwnd(), expected * MSS);
        }
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_rtt() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO;
        round(&mut cc, &mut now); // 20 segments
        cc.on_congestion(now, 20 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.cwnd(), 10 * MSS);
        cc.on_recovery_end(now);
        for expected in 11..=20 {
            round(&mut cc, &mut now);
            assert_eq!(cc.cwnd(), expected * MSS);
        }
    }

    #[test]
    fn slow_start_hands_over_at_ssthresh() {
        let mut cc = NewReno::new(MSS);
        cc.on_congestion(Instant::ZERO, 30 * MSS); // ssthresh 15 segments
        cc.on_rto(Instant::ZERO, 30 * MSS); // in recovery: ssthresh held
        assert_eq!(cc.ssthresh(), 15 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        let mut now = Instant::ZERO;
        // 1 -> 2 -> 4 -> 8 -> 15 (capped), then linear.
        for expected in [2, 4, 8, 15, 16, 17] {
            round(&mut cc, &mut now);
            assert_eq!(cc.cwnd(), expected * MSS);
        }
    }

    #[test]
    fn congestion_event_halves_flight_once() {
        let mut cc = NewReno::new(MSS);
        cc.on_congestion(Instant::ZERO, 10 * MSS);
        assert_eq!(cc.ssthresh(), 5 * MSS);
        assert_eq!(cc.cwnd(), 5 * MSS);
        // Another loss in the same window does not cut again.
        cc.on_congestion(Instant::ZERO, 5 * MSS);
        assert_eq!(cc.cwnd(), 5 * MSS);
        // ACKs during recovery do not grow the window.
        cc.on_ack(Instant::ZERO, MSS, 5 * MSS, None);
        assert_eq!(cc.cwnd(), 5 * MSS);
        cc.on_recovery_end(Instant::ZERO);
        cc.on_congestion(Instant::ZERO, 5 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS + MSS / 2);
        // Floor of 2*MSS (RFC 5681 eq. 4).
        cc.on_recovery_end(Instant::ZERO);
        cc.on_congestion(Instant::ZERO, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
    }

    #[test]
    fn rto_collapses_to_one_mss_and_holds_ssthresh_on_repeat() {
        let mut cc = NewReno::new(MSS);
        cc.on_rto(Instant::ZERO, 40 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        // The retransmission timed out again: FlightSize is now tiny, but ssthresh holds.
        cc.on_rto(Instant::ZERO, MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        // New data acknowledged ends the episode; the next timeout is a new loss.
        cc.on_ack(Instant::ZERO, MSS, MSS, None);
        assert_eq!(cc.cwnd(), 2 * MSS);
        cc.on_rto(Instant::ZERO, 8 * MSS);
        assert_eq!(cc.ssthresh(), 4 * MSS);
    }

    #[test]
    fn application_limited_sender_does_not_grow() {
        let mut cc = NewReno::new(MSS);
        // Only 2 of 10 segments in flight.
        for _ in 0..100 {
            cc.on_ack(Instant::ZERO, MSS, 2 * MSS, None);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn restart_after_idle() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO;
        round(&mut cc, &mut now);
        round(&mut cc, &mut now); // 40 segments
        cc.on_idle_restart(now, Duration::from_millis(500), Duration::from_secs(1));
        assert_eq!(
            cc.cwnd(),
            40 * MSS,
            "idle shorter than the RTO keeps the window"
        );
        cc.on_idle_restart(now, Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(cc.cwnd(), 10 * MSS, "RW = min(IW, cwnd)");
        assert_eq!(cc.ssthresh(), INITIAL_SSTHRESH);
    }

    #[test]
    fn restart_after_idle_remembers_three_quarters_in_ssthresh() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO;
        round(&mut cc, &mut now);
        round(&mut cc, &mut now); // 40 segments
        cc.on_congestion(now, 40 * MSS); // ssthresh 20
        cc.on_recovery_end(now);
        for _ in 0..20 {
            round(&mut cc, &mut now);
        }
        assert_eq!(cc.cwnd(), 40 * MSS);
        cc.on_idle_restart(now, Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert_eq!(cc.ssthresh(), 30 * MSS);
        // Slow start up to 30 segments again, then linear growth.
        for expected in [20, 30, 31] {
            round(&mut cc, &mut now);
            assert_eq!(cc.cwnd(), expected * MSS);
        }
        // A small window is not raised by a restart.
        cc.on_rto(now, 10 * MSS);
        cc.on_idle_restart(now, Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn mss_change_keeps_segments() {
        let mut cc = NewReno::new(536);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.ssthresh(), INITIAL_SSTHRESH);
        cc.on_congestion(Instant::ZERO, 20 * 1460);
        cc.set_mss(1000);
        assert_eq!(cc.ssthresh(), 10 * 1000);
        // A zero MSS from a broken peer cannot divide by zero.
        cc.set_mss(0);
        cc.on_ack(Instant::ZERO, 1, u32::MAX, None);
        assert!(cc.cwnd() >= 1);
    }
}
