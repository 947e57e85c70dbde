//! What each TCP timer does when it fires (the BSD `tcp_timer`): timers only change
//! the control block; output then acts on what they set.

use crate::tcp::cc::CongestionControl;
use crate::tcp::rack::Rack;
use crate::tcp::tcb::{ConnError, State, Tcb};
use crate::time::Instant;

impl Tcb {
    /// Run every timer of this TCB that is due at `now`.
    pub fn on_timers(&mut self, now: Instant) {
        if self.timewait_at.is_some_and(|t| now >= t) {
            self.timewait_at = None;
            self.close_now();
            return;
        }
        if self.fin_wait2_at.is_some_and(|t| now >= t) {
            // Linux tcp_fin_timeout: an orphaned FIN-WAIT-2 does not wait forever.
            self.fin_wait2_at = None;
            self.close_now();
            return;
        }
        if self.rto_at.is_some_and(|t| now >= t) {
            self.rto_at = None;
            if self.persisting {
                self.on_persist(now);
            } else {
                self.on_retransmit_timeout(now);
            }
            if self.state == State::Closed {
                return;
            }
        }
        if self.rack_at.is_some_and(|t| now >= t) {
            // RFC 8985 §6.2: the reordering window of a suspect segment has passed.
            self.rack_at = None;
            self.rack_detect(now);
        }
        if self.tlp_at.is_some_and(|t| now >= t) {
            self.tlp_at = None;
            self.on_probe_timeout();
        }
        if self.delack_at.is_some_and(|t| now >= t) {
            self.delack_at = None;
            self.ack_now = true;
            // The answer did not come in time: ACK small segments at once again.
            self.pingpong = false;
        }
        if self.keepalive_at.is_some_and(|t| now >= t) {
            self.keepalive_at = None;
            self.on_keepalive(now);
        }
    }

    /// RFC 6298 §5.4-5.7 and RFC 5681 §3.1: retransmit from the oldest unacknowledged
    /// byte, back off, collapse the congestion window; give up after too many tries.
    fn on_retransmit_timeout(&mut self, now: Instant) {
        self.retransmits += 1;
        let limit = if self.state.is_synchronized() {
            self.config.retries
        } else {
            self.config.syn_retries
        };
        if self.retransmits > limit {
            self.error = Some(ConnError::TimedOut);
            self.close_now();
            return;
        }
        let flight = self.flight();
        self.cc.on_rto(now, flight);
        self.rtt.backoff();
        self.rtt_probe = None;
        // RFC 6582 §4: after a timeout, no fast retransmit for data sent before it.
        self.recover = self.snd_max;
        self.in_recovery = false;
        self.dupacks = 0;
        self.rexmit_una = false;
        self.rexmit_first = false;
        // RFC 6675 §5.1: the receiver may have reneged; start the scoreboard over.
        self.scoreboard.clear();
        self.sent.on_timeout();
        // RFC 8985 §7.4: the probe (if any) went unanswered; RACK starts over too.
        self.rack.on_timeout();
        self.rack_at = None;
        self.tlp_at = None;
        self.tlp_send = false;
        self.snd_nxt = self.snd_una;
        self.high_rxt = self.snd_una;
        self.rto_at = Some(self.rto_deadline(now));
    }

    /// Arm (or, with `restart`, re-arm) the tail loss probe, or cancel it where RFC
    /// 8985 §7.2 does not want one: without RACK, outside the established states, in
    /// a recovery or after a timeout (what is lost is known, or the RTO acts), while a
    /// probe is already out, with SACKed data (RACK's reordering timer covers it),
    /// with nothing in flight, or while persisting. The probe goes two SRTTs after
    /// the last transmission or ACK; where the RTO would expire first, the RTO acts
    /// (Linux fires the probe at the RTO's time instead; see docs/TCP.md).
    pub(crate) fn arm_tlp(&mut self, now: Instant, restart: bool) {
        let wanted = self.rack_on()
            && matches!(
                self.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            )
            && !self.in_recovery
            && self.retransmits == 0
            && self.snd_nxt == self.snd_max
            && self.rack.tlp_end.is_none()
            && !self.sent.is_empty()
            && self.sent.sacked_segs() == 0
            && !self.persisting;
        if !wanted {
            self.tlp_at = None;
            return;
        }
        if self.tlp_at.is_some() && !restart {
            return;
        }
        let pto = Rack::pto_micros(self.rtt.srtt_micros(), self.sent.len());
        let at = Instant::from_micros(now.total_micros().saturating_add(pto));
        self.tlp_at = match self.rto_at {
            Some(rto) if at >= rto => None,
            _ => Some(at),
        };
    }

    /// RFC 8985 §7.3: the probe timeout expired: output sends one probe, if a probe is
    /// still what the connection needs.
    fn on_probe_timeout(&mut self) {
        if self.rack_on()
            && !self.in_recovery
            && self.retransmits == 0
            && self.rack.tlp_end.is_none()
            && !self.sent.is_empty()
        {
            self.tlp_send = true;
        }
    }

    /// The persist timer: probe the zero window (RFC 9293 §3.8.6.1), backing off like
    /// the retransmission timer. A peer that keeps answering is not timed out.
    fn on_persist(&mut self, now: Instant) {
        self.rtt.backoff();
        self.force_probe = true;
        self.persisting = true;
        self.rto_at = Some(self.rto_deadline(now));
    }

    /// Keepalive (RFC 1122 §4.2.3.6): probe an idle peer, give up after `count` probes.
    fn on_keepalive(&mut self, now: Instant) {
        let Some(k) = self.opts.keepalive else {
            return;
        };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if now - self.last_recv < k.idle && self.keepalive_probes == 0 {
            self.keepalive_at = Some(self.last_recv + k.idle);
            return;
        }
        if self.snd_una != self.snd_max || self.persisting || !self.snd_buf.is_empty() {
            // Data in flight or waiting to go: the retransmission and persist timers
            // already watch the peer and give up on their own (Linux
            // tcp_keepalive_timer reschedules in this case too).
            self.keepalive_at = Some(now + k.idle);
            return;
        }
        if self.keepalive_probes >= k.count {
            // The peer is gone: reset (in case it is not, but our probes were lost) and
            // close, as Linux tcp_keepalive_timer does; output sends the RST, then
            // closes.
            self.error = Some(ConnError::TimedOut);
            self.send_rst = true;
            return;
        }
        self.keepalive_probes += 1;
        self.keepalive_probe = true;
        self.keepalive_at = Some(now + k.interval);
    }
}
