//! Segment arrival (RFC 9293 §3.10.7): the checks in the RFC's order, then the effects
//! of the acknowledgment, the data and the FIN.

use crate::tcp::cc::{CongestionControl, Growth, NewAck};
use crate::tcp::rack::{trust_retransmission, TlpAck};
use crate::tcp::sack::valid_block;
use crate::tcp::sent::SentSeg;
use crate::tcp::tcb::{ConnError, State, Tcb};
use crate::tcp::Events;
use crate::time::{Duration, Instant};
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{Flags, TcpRepr};

/// What the stack must do after a TCB took a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOutcome {
    /// The segment was used (or dropped silently); output may have work.
    Ok,
    /// [`Ok`](Self::Ok), by header prediction: the connection is ESTABLISHED, with no
    /// recovery and no FIN of ours queued (what prediction asked for and left so),
    /// which spares the stack asking again what output owes.
    Predicted,
    /// Answer with a RST built from the segment (RFC 9293 §3.10.7.3 / "Reset
    /// Generation"): the TCB is unaffected.
    SendReset,
    /// The segment was dropped for a reason worth counting.
    Dropped(TcpDrop),
}

/// Why a segment was not accepted by a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpDrop {
    /// Outside the receive window (RFC 9293 §3.10.7.4 first check).
    OutOfWindow,
    /// An old duplicate rejected by PAWS (RFC 7323 §5).
    Paws,
    /// No ACK bit in a synchronized state.
    NoAck,
    /// Acknowledges data never sent / too old (RFC 5961 §5.2).
    BadAck,
    /// A RST or SYN answered with a challenge ACK (RFC 5961 §3, §4).
    Challenged,
    /// A RST or SYN that would have been challenged, past the connection's budget of
    /// challenge ACKs (RFC 5961 §7): dropped without an answer.
    ChallengeLimited,
    /// Too many holes in the out-of-order queue.
    ReassemblyFull,
}

/// 24 days: a TS.Recent older than this is invalid (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// RFC 5961 §7: at most this many challenge ACKs per connection per
/// [`CHALLENGE_ACK_INTERVAL`], so forged RSTs and SYNs cannot turn a connection into an
/// ACK reflector (and, counted per connection rather than per host as Linux first did,
/// cannot be used to probe another connection's sequence numbers either).
pub const CHALLENGE_ACK_LIMIT: u8 = 10;
/// The window of [`CHALLENGE_ACK_LIMIT`].
pub const CHALLENGE_ACK_INTERVAL: Duration = Duration::from_secs(1);

impl Tcb {
    /// Owe a challenge ACK if the connection's budget allows one (RFC 5961 §7).
    fn challenge(&mut self, now: Instant) -> TcpDrop {
        if now.saturating_duration_since(self.challenge_window) >= CHALLENGE_ACK_INTERVAL {
            self.challenge_window = now;
            self.challenges = 0;
        }
        if self.challenges >= CHALLENGE_ACK_LIMIT {
            return TcpDrop::ChallengeLimited;
        }
        self.challenges += 1;
        self.owed.set_challenge_ack(true);
        TcpDrop::Challenged
    }

    /// A segment for this connection arrived.
    ///
    /// Header prediction is tried here, inlined into the caller: a predicted segment
    /// costs no call to, and no frame of, the full path.
    /// ESTABLISHED, the only state prediction takes, is asked first.
    #[inline]
    pub fn input(&mut self, now: Instant, seg: &TcpRepr<'_>) -> InputOutcome {
        if self.state == State::Established && self.config.header_prediction {
            if self.input_predicted(now, seg) {
                return InputOutcome::Predicted;
            }
            return self.input_synchronized(now, seg);
        }
        match self.state {
            State::Closed => InputOutcome::SendReset,
            State::SynSent => self.input_syn_sent(now, seg),
            _ => self.input_synchronized(now, seg),
        }
    }

    /// RFC 9293 §3.10.7.3, SYN-SENT.
    fn input_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>) -> InputOutcome {
        let f = seg.flags;
        if let Some(ack) = seg.ack_number {
            // First: an ACK of something we did not send gets a reset.
            if ack.le(self.iss) || ack.gt(self.snd_max) {
                if f.contains(Flags::RST) {
                    return InputOutcome::Dropped(TcpDrop::BadAck);
                }
                return InputOutcome::SendReset;
            }
        }
        if f.contains(Flags::RST) {
            // Second: RFC 5961 §3 for SYN-SENT: only a RST that acknowledges our SYN.
            if seg.ack_number.is_some() {
                self.error = Some(ConnError::Refused);
                self.close_now();
            }
            return InputOutcome::Ok;
        }
        if !f.contains(Flags::SYN) {
            return InputOutcome::Ok;
        }
        self.last_recv = now;
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1u32;
        self.rcv_adv = self.rcv_nxt;
        self.negotiate(now, seg);
        self.snd_wnd = u32::from(seg.window_len); // never scaled in a SYN (RFC 7323 §2.2)
        self.snd_wl1 = seg.seq_number;
        if let Some(ack) = seg.ack_number {
            self.snd_wl2 = ack;
            self.snd_una = ack;
            self.max_snd_wnd = self.snd_wnd;
            // RFC 6298 with Karn: our SYN's send time if it was sent once, else the
            // timestamp echo (RFC 7323 §4.1).
            match self.rtt_probe.take().filter(|_| self.retransmits == 0) {
                Some((_, t0)) => self.rtt_sample_since(now, t0),
                None => {
                    if let Some(ts) = seg.timestamp.filter(|_| self.ts_ok) {
                        self.rtt_sample_ts(now, ts.tsecr);
                    }
                }
            }
            if self.retransmits > 0 {
                // RFC 6298 §5.7: a retransmitted SYN leaves the RTO at 3 s until the
                // first sample.
                self.rtt.syn_timeout_fallback();
            }
            self.retransmits = 0;
            self.timers.set_rto_at(None);
            self.set_state(State::Established);
            self.events |= Events::CONNECTED | Events::WRITABLE;
            self.owed.set_ack_now(true);
            self.arm_keepalive(now);
            if self.fin_queued {
                // The application shut down during the handshake: its FIN follows the
                // queued data (RFC 9293 §3.10.4).
                self.set_state(State::FinWait1);
            }
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8): answer SYN-ACK.
            self.set_state(State::SynReceived);
            self.snd_nxt = self.iss;
        }
        InputOutcome::Ok
    }

    /// Options of the peer's SYN: MSS, window scale, SACK-permitted, timestamps. Each is
    /// used only if both sides offered it (we offered what our config allows).
    pub fn negotiate(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        match seg.window_scale {
            Some(ws) if self.config.window_scaling => {
                self.snd_wscale = ws.min(14);
                self.ws_agreed = true;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.ws_agreed = false;
            }
        }
        self.sack_ok = self.config.sack && seg.sack_permitted;
        if let (true, Some(ts)) = (self.config.timestamps, seg.timestamp) {
            self.ts_ok = true;
            self.ts_recent = ts.tsval;
            self.ts_recent_at = now;
        } else {
            self.ts_ok = false;
        }
        self.set_peer_mss(seg.max_seg_size);
    }

    /// One RTT sample: for the RTO (RFC 6298) and for HyStart++ (RFC 9406).
    fn rtt_sample(&mut self, now: Instant, rtt: Duration) {
        self.rtt.sample(rtt);
        self.cc.on_rtt_sample(now, rtt);
    }

    /// An RTT sample from the send time `t0` of what was acknowledged: the estimator
    /// takes microseconds, as the clock counts them (no `Duration` and back per ACK).
    #[inline]
    fn rtt_sample_since(&mut self, now: Instant, t0: Instant) {
        let rtt = now.total_micros().saturating_sub(t0.total_micros());
        self.rtt.sample_micros(rtt);
        self.cc.on_rtt_sample_micros(now, rtt);
    }

    /// An RTT sample from the timestamp echo (RFC 7323 §4.1): milliseconds, so only
    /// where the send time of what was answered is not known (retransmitted data).
    fn rtt_sample_ts(&mut self, now: Instant, tsecr: u32) {
        let d = self.ts_val(now).wrapping_sub(tsecr);
        // A TSecr from the future or older than a minute is bogus (or 0: not an echo).
        if tsecr != 0 && d < 60_000 {
            self.rtt_sample(now, Duration::from_millis(u64::from(d.max(1))));
        }
    }

    /// Header prediction (Van Jacobson's, as in BSD's tcp_input and Linux's fast path),
    /// widened to the segment of a request/response exchange, which both carries data
    /// and acknowledges everything we sent: an ESTABLISHED connection with nothing
    /// unusual going on (no recovery, probe, SACK state, reassembly or FIN), and a
    /// segment that is exactly the next one (ACK and maybe PSH, at RCV.NXT, a timestamp
    /// not older than TS.Recent, no SACK blocks, fitting the buffer)
    /// acknowledging nothing new with data, or everything outstanding. Such a segment
    /// passes every check of [`input_synchronized`](Self::input_synchronized)
    /// trivially and has no effect on its SACK, RACK and loss-probe state beyond what is
    /// done here; anything else takes that full path. False: not predicted, nothing
    /// changed. Asked in ESTABLISHED only (by [`input`](Self::input)).
    #[inline]
    fn input_predicted(&mut self, now: Instant, seg: &TcpRepr<'_>) -> bool {
        debug_assert_eq!(self.state, State::Established);
        let f = seg.flags;
        let seq = seg.seq_number;
        let Some(ack) = seg.ack_number else {
            return false;
        };
        if !(f == Flags::ACK || f == (Flags::ACK | Flags::PSH))
            || seq != self.rcv_nxt
            || seg.sack_ranges[0].is_some()
            || self.in_recovery
            || self.persisting
            || self.fin_queued
            || self.rcv_closed
            || self.orphaned
            || self.fin_pending.is_some()
            || self.rack.tlp_end.is_some()
            || !self.reass.is_empty()
            || !self.scoreboard.is_empty()
            || seg.payload.len() > self.rcv_buf.window()
        {
            return false;
        }
        let advanced = ack != self.snd_una;
        if (advanced && ack != self.snd_max) || (!advanced && seg.payload.is_empty()) {
            // A partial ACK (RACK may have losses to find) or a possible duplicate ACK.
            return false;
        }
        let ts = match (self.ts_ok, seg.timestamp) {
            (true, Some(ts)) if (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0 => Some(ts),
            (true, _) => return false,
            (false, _) => None,
        };
        self.last_recv = now;
        self.keepalive_probes = 0;
        self.arm_keepalive(now);
        if let Some(ts) = ts {
            // RFC 7323 §4.3, as in the full path.
            if seq.le(self.last_ack_sent) {
                self.ts_recent = ts.tsval;
                self.ts_recent_at = now;
            }
        }
        // Everything sent is acknowledged (ack == SND.MAX): one segment sent once and
        // our SYN acknowledged long ago is the usual case, and has its own.
        // `try_sole_ack` settles RACK's timers too; otherwise they are RACK's to set
        // (loss detection, the probe timeout), as in the full path.
        let sole = advanced && self.try_sole_ack::<false>(now, ack);
        if !sole {
            if advanced {
                self.on_new_ack(now, ack, seg, None);
            }
            if self.rack_on() {
                self.rack_detect(now);
                self.arm_tlp(now, advanced);
            }
        }
        // The window update of the full path (not persisting: nothing to stop).
        if advanced || self.snd_wl1.lt(seq) || (self.snd_wl1 == seq && self.snd_wl2.le(ack)) {
            let seg_wnd = u32::from(seg.window_len) << self.snd_wscale;
            self.snd_wnd = seg_wnd;
            if self.snd_wl1.lt(seq) {
                self.snd_wl1 = seq;
            }
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(seg_wnd);
        }
        if !seg.payload.is_empty() {
            // `receive_data`'s in-order case, its checks already made: at RCV.NXT,
            // fitting the buffer, nothing queued out of order (so an empty ring may
            // start again at the start of its storage), no FIN pending.
            self.rcv_buf.rewind_if_empty();
            let n = self.rcv_buf.enqueue_slice(seg.payload);
            self.receive_in_order(n);
        }
        true
    }

    /// RFC 9293 §3.10.7.4: every state after SYN-SENT.
    /// Past header prediction (tried by [`input`](Self::input)).
    fn input_synchronized(&mut self, now: Instant, seg: &TcpRepr<'_>) -> InputOutcome {
        let f = seg.flags;
        let seq = seg.seq_number;

        // RFC 7323 §5.3 R1: PAWS, before the window check.
        if self.ts_ok && !f.contains(Flags::RST) {
            if let Some(ts) = seg.timestamp {
                let older = (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0;
                if older && now - self.ts_recent_at < PAWS_IDLE {
                    self.owed.set_ack_now(true);
                    return InputOutcome::Dropped(TcpDrop::Paws);
                }
            }
        }

        // First: is the segment acceptable?
        let acceptable = if self.state == State::SynReceived && f.contains(Flags::SYN) {
            // A retransmitted SYN: answer with our SYN-ACK again.
            seq == self.irs
        } else if seq == self.rcv_nxt {
            // Every case below takes a segment at RCV.NXT (the usual one): no window
            // to work out.
            true
        } else {
            let seg_len = seg.segment_len();
            let wnd = self
                .rcv_wnd()
                .max((self.rcv_adv - self.rcv_nxt).max(0) as u32);
            match (seg_len, wnd) {
                (0, 0) => seq == self.rcv_nxt,
                (0, _) => seq.between(self.rcv_nxt, self.rcv_nxt + wnd),
                // RFC 9293 §3.10.7.4: "special allowance should be made to accept
                // valid ACKs, URGs, and RSTs" in a zero window: at RCV.NXT the segment
                // is taken and only its text dropped (Linux tcp_sequence), so the ACK
                // in a zero-window probe counts, and a bare FIN is accepted.
                (_, 0) => seq == self.rcv_nxt,
                (n, _) => {
                    seq.between(self.rcv_nxt, self.rcv_nxt + wnd)
                        || (seq + (n - 1)).between(self.rcv_nxt, self.rcv_nxt + wnd)
                }
            }
        };
        if self.state == State::SynReceived && f.contains(Flags::SYN) && acceptable {
            if seg.ack_number == Some(self.iss + 1u32) {
                // RFC 9293 §3.5 figure 8 (simultaneous open): the peer's SYN-ACK
                // acknowledges our SYN; take it as the handshake's ACK, its SYN already
                // counted (Linux tcp_validate_incoming). Answering it with our SYN-ACK
                // again would make two such stacks loop.
                let mut rest = *seg;
                rest.flags.remove(Flags::SYN);
                rest.seq_number = seq + 1u32;
                return self.input_synchronized(now, &rest);
            }
            self.snd_nxt = self.iss; // retransmit the SYN-ACK
            return InputOutcome::Ok;
        }
        if !acceptable {
            // A zero-window probe lands here too: it gets an ACK with our window.
            if !f.contains(Flags::RST) {
                self.owed.set_ack_now(true);
            }
            if self.state == State::TimeWait && f.contains(Flags::FIN) {
                // RFC 9293 §3.10.7.4 eighth: a retransmitted FIN (left of RCV.NXT, so
                // "unacceptable") restarts the 2 MSL timeout, as in Linux
                // tcp_timewait_state_process.
                self.enter_time_wait(now);
            }
            return InputOutcome::Dropped(TcpDrop::OutOfWindow);
        }

        // Second: RST (RFC 5961 §3.2: exact match resets, in window challenges).
        if f.contains(Flags::RST) {
            if seq != self.rcv_nxt {
                return InputOutcome::Dropped(self.challenge(now));
            }
            if self.state == State::SynReceived && self.passive_open() {
                // Back to LISTEN: for us that means the embryonic connection goes away.
                self.close_now();
                return InputOutcome::Ok;
            }
            self.error = match self.state {
                State::Closing | State::LastAck | State::TimeWait => None,
                _ => Some(ConnError::Reset),
            };
            self.close_now();
            return InputOutcome::Ok;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 §4.2).
        if f.contains(Flags::SYN) {
            return InputOutcome::Dropped(self.challenge(now));
        }

        // Fifth: the ACK field.
        let Some(ack) = seg.ack_number else {
            return InputOutcome::Dropped(TcpDrop::NoAck);
        };
        self.last_recv = now;
        self.keepalive_probes = 0;
        self.arm_keepalive(now);

        // RFC 7323 §4.3: remember the timestamp of the segment that fills rcv_nxt.
        if let Some(ts) = seg.timestamp.filter(|_| self.ts_ok) {
            let newer = (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0;
            // RFC 7323 §5.5: a TS.Recent idle for 24 days is invalid and is replaced
            // whatever the new value (Linux tcp_paws_check with its 24-day rule).
            let expired = now - self.ts_recent_at >= PAWS_IDLE;
            if (newer || expired) && seq.le(self.last_ack_sent) {
                self.ts_recent = ts.tsval;
                self.ts_recent_at = now;
            }
        }

        if self.state == State::SynReceived {
            if ack.gt(self.snd_una) && ack.le(self.snd_max) {
                if self.retransmits > 0 {
                    self.rtt.syn_timeout_fallback();
                }
                self.set_state(State::Established);
                self.events |= Events::CONNECTED | Events::WRITABLE;
                self.snd_wnd = u32::from(seg.window_len) << self.snd_wscale;
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seq;
                self.snd_wl2 = ack;
                if self.fin_queued {
                    self.set_state(State::FinWait1);
                }
            } else {
                return InputOutcome::SendReset;
            }
        }

        // RFC 5961 §5.2: the acceptable ACK range.
        if ack.gt(self.snd_max) {
            self.owed.set_ack_now(true);
            return InputOutcome::Dropped(TcpDrop::BadAck);
        }
        let oldest = self.snd_una - self.max_snd_wnd.max(1) as usize;
        if ack.lt(oldest) {
            let _ = self.challenge(now);
            return InputOutcome::Dropped(TcpDrop::BadAck);
        }
        if self.last_ack_of_orphan(ack) {
            // What the rest would come to: the FIN acknowledged below closes it.
            self.snd_una = ack;
            self.close_now();
            return InputOutcome::Ok;
        }

        let seg_wnd = u32::from(seg.window_len) << self.snd_wscale;
        let mut blocks = [(SeqNumber(0), SeqNumber(0)); 4];
        let mut nblocks = 0;
        if self.sack_ok {
            for (l, r) in seg.sack_ranges.iter().flatten() {
                blocks[nblocks] = (*l, *r);
                nblocks += 1;
            }
        }
        // Without blocks, an empty scoreboard has nothing to trim and the sent log
        // nothing to mark (the usual ACK): no calls.
        let sack_update = if self.sack_ok && (nblocks > 0 || !self.scoreboard.is_empty()) {
            self.scoreboard
                .on_ack(ack.max(self.snd_una), self.snd_max, &blocks[..nblocks])
        } else {
            Default::default()
        };
        let sack_xmit = if nblocks > 0 {
            let tsecr = seg.timestamp.filter(|_| self.ts_ok).map(|t| t.tsecr);
            self.mark_sacked(now, ack, &blocks[..nblocks], sack_update.dsack, tsecr)
        } else {
            None
        };

        let advanced = ack.gt(self.snd_una);
        // The ACK header prediction takes (`try_sole_ack`), in a segment it left to
        // this path for another reason (a FIN, data out of order...): RACK's part
        // below is then done too.
        let sole = advanced
            && nblocks == 0
            && self.sole_ack_may_apply(ack)
            && self.try_sole_ack::<true>(now, ack);
        if advanced {
            if !sole {
                self.on_new_ack(now, ack, seg, sack_xmit);
            }
        } else {
            if let Some(t0) = sack_xmit {
                // RTT from newly SACKed data (Linux's sack_rtt_us), even when the ACK
                // does not advance.
                self.rtt_sample_since(now, t0);
            }
            if ack == self.snd_una
                && seg.payload.is_empty()
                && !f.contains(Flags::FIN)
                && seg_wnd == self.snd_wnd
                && self.snd_max != self.snd_una
                && !self.persisting
            {
                // RFC 5681 §2 "duplicate acknowledgment" (with SACK, RFC 6675 counts
                // ACKs that carry new SACK information). Answers to zero-window probes
                // are not (BSD counts dupacks only while the retransmission timer runs):
                // three of them must not fast-retransmit into the closed window.
                if !self.sack_ok || sack_update.newly_sacked_bytes > 0 || nblocks == 0 {
                    self.on_dupack(now);
                }
            }
        }
        if self.rack_on() && !sole {
            // RFC 8985 §6.2 step 4: D-SACKs widen the reordering window (only from
            // ACKs that are not old, whose blocks below SND.UNA are real duplicates).
            if sack_update.dsack && !ack.lt(self.snd_una) {
                self.rack.on_dsack(self.snd_una, self.snd_nxt);
            }
            self.rack_detect(now);
            // RFC 8985 §7.4: does this ACK settle a probe episode?
            let dsack_probe = sack_update.dsack
                && self.rack.tlp_end.is_some_and(|end| {
                    blocks[..nblocks]
                        .first()
                        .is_some_and(|&(_, r)| r.between_inclusive(end - 1u32, end))
                });
            let news = advanced
                || sack_update.newly_sacked_bytes > 0
                || !seg.payload.is_empty()
                || seg_wnd != self.snd_wnd;
            if self.rack.on_tlp_ack(ack, dsack_probe, news) == TlpAck::Loss {
                // The probe repaired a loss: reduce the window once, as a recovery
                // would have (Linux enters and leaves CWR).
                self.cc.on_congestion(now, self.flight());
                self.cc.on_recovery_end(now);
            }
            self.arm_tlp(now, advanced);
        }

        // Window update (RFC 9293 §3.10.7.4, fifth, ESTABLISHED). An ACK that advances
        // SND.UNA carries the peer's newest window even in a segment older than SND.WL1
        // (its data retransmitted with a fresh ACK): take it, as Linux
        // tcp_may_update_window does, or SND.UNA + SND.WND runs past the edge the peer
        // offered and we send beyond its window. SND.WL1 never moves back.
        if advanced || self.snd_wl1.lt(seq) || (self.snd_wl1 == seq && self.snd_wl2.le(ack)) {
            let opened = seg_wnd > self.snd_wnd;
            self.snd_wnd = seg_wnd;
            if self.snd_wl1.lt(seq) {
                self.snd_wl1 = seq;
            }
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(seg_wnd);
            if opened && self.persisting && seg_wnd > 0 {
                // The window opened: stop probing, send at once.
                self.persisting = false;
                self.timers.set_rto_at(None);
                self.rtt.reset_backoff();
                // Resume at SND.UNA: a refused probe byte is sent again with the data
                // (BSD pulls snd_nxt back to the closed window the same way).
                self.snd_nxt = self.snd_una;
            }
        }

        // Our FIN acknowledged?
        if self.fin_acked() {
            match self.state {
                State::FinWait1 => {
                    self.set_state(State::FinWait2);
                    if self.orphaned {
                        self.timers
                            .set_fin_wait2_at(Some(now + self.config.fin_timeout));
                    }
                }
                State::Closing => self.enter_time_wait(now),
                State::LastAck => {
                    self.close_now();
                    return InputOutcome::Ok;
                }
                _ => {}
            }
        }
        if self.state == State::TimeWait {
            // RFC 9293: the only thing that can arrive is a retransmitted FIN: ACK it and
            // restart the 2 MSL timeout.
            if f.contains(Flags::FIN) {
                self.owed.set_ack_now(true);
                self.enter_time_wait(now);
            }
            return InputOutcome::Ok;
        }

        // Seventh: segment text.
        let mut outcome = InputOutcome::Ok;
        if !seg.payload.is_empty() {
            if self.state.can_receive() && !self.rcv_closed {
                if self.orphaned {
                    // Data for a connection the application closed: RFC 9293 §3.10.4
                    // lets us reset it (Linux does).
                    self.owed.set_send_rst(true);
                    return InputOutcome::Ok;
                }
                outcome = self.receive_data(seq, seg.payload);
            } else {
                // After a FIN the peer may not send data (RFC 9293 §3.10.7.4 seventh).
                self.owed.set_ack_now(true);
            }
        }

        // Eighth: FIN.
        if f.contains(Flags::FIN) && !self.rcv_closed {
            let fin_at = seq + seg.payload.len();
            if fin_at == self.rcv_nxt {
                self.receive_fin(now);
            } else if fin_at.gt(self.rcv_nxt) {
                self.fin_pending = Some(fin_at);
                self.owed.set_ack_now(true);
            }
        }
        outcome
    }

    /// Mark in the sent log what the SACK blocks of an ACK report held (their
    /// validation is the scoreboard's, [`valid_block`]), and tell RACK what was
    /// delivered. Returns the send time of the oldest segment newly SACKed that was
    /// sent only once: an RTT sample (Karn).
    fn mark_sacked(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        blocks: &[(SeqNumber, SeqNumber)],
        dsack: bool,
        tsecr: Option<u32>,
    ) -> Option<Instant> {
        if !self.sack_ok || blocks.is_empty() {
            return None;
        }
        let snd_una = ack.max(self.snd_una);
        // The first block of a D-SACK reports a duplicate, not new data (RFC 2883).
        let blocks = blocks.get(usize::from(dsack)..).unwrap_or(&[]);
        let mut valid = [(SeqNumber(0), SeqNumber(0)); 4];
        let mut n = 0;
        for &(l, r) in blocks {
            if let Some(b) = valid_block(l, r, snd_una, self.snd_max) {
                valid[n] = b;
                n += 1;
            }
        }
        // Lowest first, as they lie in the sequence space (the option lists them newest
        // first).
        let valid = &mut valid[..n];
        valid.sort_unstable_by_key(|&(l, _)| (l - snd_una) as u32);
        let mut first = None;
        let rack_on = self.rack_on();
        let (min_rtt, ts_offset) = (self.rtt.min_rtt_micros(), self.ts_offset);
        let rack = &mut self.rack;
        for &(l, r) in valid.iter() {
            self.sent.on_sack(l, r, |s| {
                if !s.retransmitted() {
                    first = Some(first.map_or(s.xmit, |t: Instant| t.min(s.xmit)));
                }
                if rack_on {
                    rack.on_delivered(s, now, |rtt| {
                        trust_retransmission(rtt, s.xmit, tsecr, ts_offset, min_rtt)
                    });
                }
            });
        }
        first
    }

    /// RFC 8985 §6.2 step 5 (`RACK_detect_loss_and_arm_timer`): mark lost what RACK
    /// says is, arm the reordering timer for what it will say is, and start a
    /// recovery when data is lost (RFC 6675 §5 with RACK's `IsLost`).
    ///
    /// Inline, the usual case (nothing sent after the newest delivered segment is
    /// outstanding, nothing lost): a few loads, where a call cost a stack frame per ACK.
    #[inline]
    pub(crate) fn rack_detect(&mut self, now: Instant) {
        let Some((xmit, end)) = self.rack.newest_sent().filter(|_| self.rack_on()) else {
            return;
        };
        self.timers.set_rack_at(None);
        if !self.sent.nothing_to_detect(xmit, end)
            || (self.sent.lost_bytes() > 0 && !self.in_recovery)
        {
            self.rack_detect_scan(now, xmit, end);
        }
    }

    /// [`rack_detect`](Self::rack_detect) past its usual case: the scan of the sent
    /// log, and the start of a recovery.
    #[inline(never)]
    fn rack_detect_scan(&mut self, now: Instant, xmit: Instant, end: SeqNumber) {
        if !self.sent.nothing_to_detect(xmit, end) {
            let rack_rtt = self.rack.delivered_at() - xmit;
            let reo_wnd = self.rack.reo_wnd(
                self.in_recovery,
                self.sent.sacked_segs(),
                self.rtt.min_rtt(),
                self.rtt.srtt(),
            );
            let scan = self
                .sent
                .detect_lost(now, xmit, end, rack_rtt.saturating_add(reo_wnd));
            self.timers.set_rack_at(scan.wait.map(|w| now + w));
        }
        if self.sent.lost_bytes() > 0 && !self.in_recovery && self.may_start_recovery() {
            self.enter_recovery(now);
        }
    }

    /// A new recovery may start: not for losses from before the last one. RFC 6582
    /// §3.2 step 2 (NewReno): only once the ACK covers more than `recover`. RFC 6675
    /// §5.1 (SACK): once it reaches `recover`; SACK tells a new hole right at
    /// `recover` from a spurious retransmission, and waiting for more would leave it
    /// to the RTO.
    ///
    /// Without SACK, duplicate ACKs at or below `recover` come either from segments
    /// sent again needlessly (go-back-N after a timeout: the receiver had them) or from
    /// a new loss, which only the RTO would then repair (RFC 6582 §4). Two ways to tell
    /// them apart:
    /// - the sent log: when nothing in flight was sent twice, every duplicate ACK was
    ///   triggered by a segment sent once arriving above a hole: a loss. The common
    ///   case is a recovery that ended exactly at `recover` and lost the first segment
    ///   it had sent beyond it, which RFC 6582 §3.2 step 2 alone leaves to the RTO;
    /// - RFC 6582 §4.1's ACK heuristic: after needless retransmissions the cumulative
    ///   ACK jumps over what the receiver already held; if the last advance was at most
    ///   4 segments and the window is more than one segment, the receiver lacked that
    ///   data, and the duplicate ACKs report a loss.
    fn may_start_recovery(&self) -> bool {
        if self.recover == self.iss {
            return true;
        }
        if self.sack_ok {
            return self.snd_una.ge(self.recover);
        }
        let last_advance = (self.snd_una - self.prev_highest_ack).max(0) as u32;
        self.snd_una.gt(self.recover)
            || !self.sent.any_retransmitted()
            || (self.cc.cwnd() > self.smss && last_advance <= 4 * self.smss)
    }

    /// Enter fast recovery (RFC 5681 §3.2, RFC 6582, RFC 6675 §5) until everything
    /// sent so far is acknowledged; the window is reduced once.
    fn enter_recovery(&mut self, now: Instant) {
        self.in_recovery = true;
        self.recover = self.snd_max;
        self.high_rxt = self.snd_una;
        self.cc.on_congestion(now, self.flight());
        self.rtt_probe = None;
        // A window reduction ends a probe episode (Linux tcp_init_cwnd_reduction);
        // recovery, not a probe, repairs what is lost now.
        self.rack.tlp_end = None;
        self.timers.set_tlp_at(None);
        if self.rack_on() {
            // Output resends what RACK marked, the first segment at once.
            self.rexmit_first = true;
        } else {
            // The segment at snd_una first.
            self.owed.set_rexmit_una(true);
        }
    }

    /// Was this connection made from a listener (its first segment was the peer's SYN)?
    fn passive_open(&self) -> bool {
        self.passive
    }

    /// Whether `ack`, acceptable, acknowledges our FIN in LAST-ACK on a connection
    /// the application closed (header prediction on): the full path then records what
    /// the ACK tells (the send buffer and log, RTT, congestion window, RACK, the
    /// peer's window) and closes the connection, which nobody holds: the table
    /// removes it when it settles it, in the same pass, and nothing of those records
    /// is read again. Closing it at once leaves out the records: the same segments,
    /// timers (none), counters and events (none posted for an orphan).
    #[inline]
    fn last_ack_of_orphan(&self, ack: SeqNumber) -> bool {
        self.state == State::LastAck
            && self.orphaned
            && self.config.header_prediction
            && self.fin_seq().is_some_and(|f| ack.gt(f))
    }

    /// Whether an ACK of new data without SACK blocks, in a segment the full path
    /// takes, may be [`try_sole_ack`](Self::try_sole_ack)'s: with header prediction
    /// on, it acknowledges everything sent (`ack` is SND.MAX, our FIN too if sent), in
    /// a synchronized state where we may send (not SYN-RECEIVED: our SYN is
    /// acknowledged), with no recovery, no persisting, no probe episode and an empty
    /// scoreboard (what [`input_predicted`](Self::input_predicted) checks before it).
    /// RACK's part of the full path then comes to what `try_sole_ack` does: nothing
    /// is left in flight, no D-SACK, no probe to settle, both timers stopped.
    #[inline]
    fn sole_ack_may_apply(&self, ack: SeqNumber) -> bool {
        self.config.header_prediction
            && self.state.is_output_state()
            && ack == self.snd_max
            && !self.in_recovery
            && !self.persisting
            && self.rack.tlp_end.is_none()
            && self.scoreboard.is_empty()
    }

    /// New data was acknowledged (RFC 9293 §3.10.7.4 fifth; RFC 6298 §5; RFC 5681 §3).
    fn on_new_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        seg: &TcpRepr<'_>,
        sack_xmit: Option<Instant>,
    ) {
        let flight_before = self.flight();
        let mut acked = (ack - self.snd_una) as u32;
        let syn_acked = self.syn_unacked();
        if syn_acked {
            acked = acked.saturating_sub(1);
        }
        if let Some(fin) = self.fin_seq() {
            if ack.gt(fin) {
                acked = acked.saturating_sub(1);
            }
        }
        self.snd_buf.dequeue_rewinding(acked as usize);
        self.prev_highest_ack = self.snd_una;
        self.snd_una = ack;
        // RFC 9406 §4.2: a round ends when what was outstanding at its start is
        // acknowledged; the next one lasts until what is outstanding now is. The
        // congestion controller hears of it with the rest of this ACK, below.
        let mut round_start = ack.ge(self.round_end);
        if round_start {
            self.round_end = self.snd_max;
        }
        if self.snd_nxt.lt(self.snd_una) {
            self.snd_nxt = self.snd_una;
        }
        // RTT (RFC 6298), in microseconds, as Linux's tcp_clean_rtx_queue: from the send
        // time of the oldest segment this ACK newly delivers, or of our SYN-ACK. Karn
        // (RFC 6298 §3): not when the ACK covers retransmitted data, which either copy
        // may have brought; then from what it newly SACKs, and failing that from the
        // timestamp echo, which tells which copy was answered (RFC 7323 §4.1).
        let rack_on = self.rack_on();
        let (first_xmit, rxt_acked) = match self.sent.take_only(ack) {
            // The usual ACK: the one segment in flight, delivered.
            Some(s) => {
                if rack_on {
                    self.rack_delivered(&s, now, seg);
                }
                let rxt = s.retransmitted();
                ((!rxt).then_some(s.xmit), rxt)
            }
            // Nothing logged (the ACK of our SYN-ACK): no walk, nothing delivered.
            None if self.sent.is_empty() => (None, false),
            None => self.cum_ack_walk(now, ack, seg, rack_on),
        };
        let sent_at = if syn_acked {
            self.rtt_probe
                .take()
                .map(|(_, t0)| t0)
                .or(first_xmit.filter(|_| !rxt_acked))
                .or(sack_xmit)
        } else if rxt_acked {
            sack_xmit
        } else {
            first_xmit.or(sack_xmit)
        };
        let rtt_us = match sent_at {
            Some(t0) => {
                let rtt = now.total_micros().saturating_sub(t0.total_micros());
                self.rtt.sample_micros(rtt);
                Some(rtt)
            }
            None => {
                if rxt_acked || syn_acked {
                    round_start = self.rtt_sample_echo(now, seg, round_start);
                }
                None
            }
        };
        self.retransmits = 0;
        // Outside recovery the window may grow; in it, recovery sets the window.
        let grow = (!self.in_recovery).then(|| Growth {
            acked,
            flight_before,
            srtt_us: self.rtt.srtt_micros(),
        });
        self.cc.on_new_ack(
            now,
            NewAck {
                round_start,
                rtt_us,
                grow,
            },
        );
        if self.in_recovery {
            self.recovery_ack(now, ack);
        } else {
            self.dupacks = 0;
        }
        // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
        if self.snd_una == self.snd_max {
            if !self.persisting {
                self.timers.set_rto_at(None);
            }
        } else {
            self.timers.set_rto_at(Some(self.rto_deadline(now)));
        }
        if acked > 0 && self.snd_buf.window() > 0 {
            self.events |= Events::WRITABLE;
        }
    }

    /// The ACK header prediction sees most (a request's or an answer's), if this is
    /// it: it acknowledges everything sent (`ack` is SND.MAX), which was one segment
    /// sent once ([`SentLog::only`](crate::tcp::sent::SentLog::only)), our SYN
    /// acknowledged long ago; in ESTABLISHED with no FIN queued, no recovery and no
    /// persisting (what [`input_predicted`](Self::input_predicted) checked), or, with
    /// `FIN`, in any state [`sole_ack_may_apply`](Self::sole_ack_may_apply) allows.
    /// False, with nothing changed, when it is not: [`on_new_ack`](Self::on_new_ack)
    /// acts.
    ///
    /// Exactly what `on_new_ack` does then, without the cases that cannot arise: no
    /// SYN in the acknowledged range, and without `FIN` no FIN either (so the flight
    /// before is what is acknowledged; with `FIN`, our FIN may be in it: it counts in
    /// the flight but takes no byte of the buffer), the RTT from the segment's send
    /// time (Karn is satisfied), the window may grow, and the timer stops (nothing is
    /// left); then what RACK's `rack_detect` and `arm_tlp` would do after it, with the
    /// RACK check made here once. `a_predicted_ack_leaves_the_tcb_as_the_full_path_does`
    /// and `an_unpredicted_segment_acknowledging_all_leaves_the_tcb_as_the_full_path_does`
    /// (tests/data.rs), `a_closing_ack_leaves_the_tcb_as_the_full_path_does`
    /// (tests/close.rs) hold it to that.
    ///
    /// Out of line: inlined, the caller's frame grew by more than it saved.
    #[inline(never)]
    fn try_sole_ack<const FIN: bool>(&mut self, now: Instant, ack: SeqNumber) -> bool {
        debug_assert!(FIN || !self.fin_queued);
        let s = match self.sent.only(ack) {
            Some(s) if !s.retransmitted() && !self.syn_unacked() => s,
            _ => return false,
        };
        self.sent.drop_only();
        let flight_before = (ack - self.snd_una) as u32;
        let acked = if FIN {
            flight_before - u32::from(self.fin_seq().is_some_and(|f| ack.gt(f)))
        } else {
            flight_before
        };
        self.snd_buf.dequeue_rewinding(acked as usize);
        // Here rather than after the rest (which neither reads nor writes the events or
        // the send buffer): what it asks is then not kept across the rest. Without
        // `FIN`, something was acknowledged (the caller's ACK advanced), and all of it
        // was data.
        debug_assert!(FIN || acked > 0);
        if (!FIN || acked > 0) && self.snd_buf.window() > 0 {
            self.events |= Events::WRITABLE;
        }
        self.prev_highest_ack = self.snd_una;
        self.snd_una = ack;
        // `ack` is SND.MAX (both callers ask), which neither the round's end nor
        // SND.NXT is ever above: the round's end is SND.MAX of an earlier ACK, less
        // than a window behind (or the ISS), and SND.NXT at most SND.MAX. So every
        // such ACK ends the round (`on_new_ack`'s `ack >= round_end`), the next one
        // lasting until SND.MAX, and SND.NXT moves up to `ack` (its `max`), without
        // the comparisons.
        debug_assert!(
            ack == self.snd_max && ack.ge(self.round_end) && self.snd_nxt.le(ack),
            "a sole ACK acknowledges SND.MAX"
        );
        let round_start = true;
        self.round_end = ack;
        self.snd_nxt = ack;
        if self.rack_on() {
            // Sent once, and the last segment sent (it ends at SND.MAX).
            self.rack.on_delivered_last(&s, now);
            // What `rack_detect` and `arm_tlp` come to now: RACK has a newest delivered
            // segment (this one), and the log is empty, so nothing is left to find lost
            // (the totals of an empty log are zero) and no probe is wanted: both
            // timers stop.
            debug_assert!(self.rack.newest_sent().is_some() && self.sent.is_empty());
            debug_assert_eq!(self.sent.lost_bytes(), 0);
            self.timers.set_rack_at(None);
            self.timers.set_tlp_at(None);
        }
        let rtt = now.total_micros().saturating_sub(s.xmit.total_micros());
        self.rtt.sample_micros(rtt);
        self.retransmits = 0;
        self.dupacks = 0;
        self.timers.set_rto_at(None);
        // The congestion controller last (it reads and writes nothing of the above):
        // its rare calls (growth, HyStart++'s round judgement) then leave nothing of
        // this function's to keep across them. Its usual case inline, the rest a call
        // (of the same steps) made last.
        let ack = NewAck {
            round_start,
            rtt_us: Some(rtt),
            grow: Some(Growth {
                acked,
                flight_before,
                srtt_us: self.rtt.srtt_micros(),
            }),
        };
        if !self.cc.on_new_ack_usual(now, ack) {
            self.sole_ack_cc(now, round_start, rtt, acked, flight_before);
        }
        true
    }

    /// [`try_sole_ack`](Self::try_sole_ack)'s congestion control step when it is not
    /// the usual case ([`Cc::on_new_ack_usual`](crate::tcp::cc::Cc::on_new_ack_usual)):
    /// the same [`NewAck`], built here. Out of line, with the `NewAck`'s parts as
    /// arguments (in registers).
    #[inline(never)]
    fn sole_ack_cc(
        &mut self,
        now: Instant,
        round_start: bool,
        rtt: u64,
        acked: u32,
        flight_before: u32,
    ) {
        let grow = Some(Growth {
            acked,
            flight_before,
            srtt_us: self.rtt.srtt_micros(),
        });
        self.cc.on_new_ack(
            now,
            NewAck {
                round_start,
                rtt_us: Some(rtt),
                grow,
            },
        );
    }

    /// [`on_new_ack`](Self::on_new_ack) without a send time to measure from (Karn, or
    /// the SYN's): the RTT from the timestamp echo, in milliseconds, through the
    /// `Duration` hooks; the round boundary `round_start` goes to the congestion
    /// controller first, as always. Returns whether the round start is still to
    /// report. Out of line: rare, and it keeps the usual path small.
    #[cold]
    #[inline(never)]
    fn rtt_sample_echo(&mut self, now: Instant, seg: &TcpRepr<'_>, round_start: bool) -> bool {
        let Some(ts) = seg.timestamp.filter(|_| self.ts_ok) else {
            return round_start;
        };
        if round_start {
            self.cc.on_round_start(now);
        }
        self.rtt_sample_ts(now, ts.tsecr);
        false
    }

    /// New data acknowledged during recovery (after the congestion controller heard
    /// of it). Out of line, as [`rtt_sample_echo`](Self::rtt_sample_echo).
    #[cold]
    #[inline(never)]
    fn recovery_ack(&mut self, now: Instant, ack: SeqNumber) {
        if ack.ge(self.recover) {
            // RFC 6582 §3.2 step 3 / RFC 6675 §5: full acknowledgment ends recovery.
            self.in_recovery = false;
            self.rexmit_first = false;
            self.dupacks = 0;
            self.cc.on_recovery_end(now);
            self.rack.on_recovery_end();
        } else {
            // Partial ACK: without SACK the next hole is presumed lost too (RFC 6582
            // §3.2 step 5); with SACK the scoreboard says which holes to resend
            // (RFC 6675 NextSeg), and snd_una's was most likely resent already.
            if !self.sack_ok {
                self.owed.set_rexmit_una(true);
            }
            self.dupacks = 0;
        }
    }

    /// RACK's record of a newly delivered segment (RFC 8985 §6.2 step 2). What its
    /// ambiguity check reads is looked up only for a retransmitted segment.
    #[inline(always)]
    fn rack_delivered(&mut self, s: &SentSeg, now: Instant, seg: &TcpRepr<'_>) {
        let (ts_ok, ts_offset, rtt) = (self.ts_ok, self.ts_offset, &self.rtt);
        self.rack.on_delivered(s, now, |r| {
            let tsecr = seg.timestamp.filter(|_| ts_ok).map(|t| t.tsecr);
            trust_retransmission(r, s.xmit, tsecr, ts_offset, rtt.min_rtt_micros())
        });
    }

    /// [`on_new_ack`](Self::on_new_ack)'s walk of the sent log when the ACK is not the
    /// usual one ([`SentLog::take_only`](crate::tcp::sent::SentLog::take_only)): each
    /// newly delivered segment goes to RACK. The send time of the oldest one sent only
    /// once, and whether any was retransmitted, come back for the RTT sample.
    #[inline(never)]
    fn cum_ack_walk(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        seg: &TcpRepr<'_>,
        rack_on: bool,
    ) -> (Option<Instant>, bool) {
        let mut first_xmit = None;
        let mut rxt_acked = false;
        let (ts_ok, ts_offset) = (self.ts_ok, self.ts_offset);
        let (rack, rtt) = (&mut self.rack, &self.rtt);
        self.sent.on_cum_ack(ack, |s| {
            if s.retransmitted() {
                rxt_acked = true;
            } else if first_xmit.is_none() {
                first_xmit = Some(s.xmit);
            }
            if rack_on {
                rack.on_delivered(s, now, |r| {
                    let tsecr = seg.timestamp.filter(|_| ts_ok).map(|t| t.tsecr);
                    trust_retransmission(r, s.xmit, tsecr, ts_offset, rtt.min_rtt_micros())
                });
            }
        });
        (first_xmit, rxt_acked)
    }

    /// A duplicate ACK: fast retransmit at the third (RFC 5681 §3.2), or when SACK says
    /// the first segment is lost (RFC 6675 §5).
    fn on_dupack(&mut self, now: Instant) {
        self.dupacks += 1;
        if self.in_recovery || self.rack_on() {
            // With RACK, losses are found by time, not by counting (rack_detect).
            return;
        }
        let lost = if self.sack_ok {
            self.dupacks >= 3 || self.scoreboard.is_lost(self.snd_una, self.smss, 3)
        } else {
            self.dupacks >= 3
        };
        if lost && self.may_start_recovery() {
            self.enter_recovery(now);
        }
    }

    /// Payload at `seq` (already known to touch the window).
    fn receive_data(&mut self, seq: SeqNumber, payload: &[u8]) -> InputOutcome {
        // Trim what was already received.
        let mut data = payload;
        let mut offset = seq - self.rcv_nxt;
        if offset < 0 {
            let skip = (-offset) as usize;
            if skip >= data.len() {
                self.owed.set_ack_now(true); // an old duplicate: ACK so the peer moves on
                return InputOutcome::Ok;
            }
            data = &data[skip..];
            offset = 0;
        }
        let offset = offset as usize;
        let room = self.rcv_buf.window().saturating_sub(offset);
        let data = &data[..data.len().min(room)];
        if data.is_empty() {
            self.owed.set_ack_now(true);
            return InputOutcome::Dropped(TcpDrop::OutOfWindow);
        }
        if offset == 0 && self.reass.is_empty() {
            // In order with nothing queued out of order (the common case): no
            // bookkeeping, and the assembler never allocates. `data` fits (clamped to
            // the window above), so the ring takes it whole; an empty ring starts again
            // at the start of its storage (nothing lies past its readable bytes).
            self.rcv_buf.rewind_if_empty();
            let n = self.rcv_buf.enqueue_slice(data);
            self.receive_in_order(n);
        } else {
            if self.reass.add(offset, data.len()).is_err() {
                self.owed.set_ack_now(true);
                return InputOutcome::Dropped(TcpDrop::ReassemblyFull);
            }
            self.rcv_buf.write_unallocated(offset, data);
            let ready = self.reass.remove_front();
            if ready > 0 {
                self.rcv_buf.enqueue_unallocated(ready);
                self.rcv_nxt += ready;
                self.events |= Events::READABLE;
            }
            // RFC 5681 §4.2: out-of-order data, and data filling a hole, are ACKed at once.
            self.owed.set_ack_now(true);
        }
        if let Some(fin_at) = self.fin_pending {
            if fin_at == self.rcv_nxt {
                self.fin_pending = None;
                self.receive_fin(self.last_recv);
            }
        }
        InputOutcome::Ok
    }

    /// `n` (> 0) bytes at RCV.NXT, with nothing queued out of order, now readable:
    /// RCV.NXT moves, and the ACK is owed at once, at the next poll or after the
    /// delayed-ACK time. Always inlined (LLVM left it a call): it is a few stores on
    /// the path of every in-order data segment.
    #[inline(always)]
    fn receive_in_order(&mut self, n: usize) {
        self.rcv_nxt += n;
        self.events |= Events::READABLE;
        self.segs_unacked += 1;
        self.last_data_recv = self.last_recv;
        let small = n < self.smss as usize / 2;
        if self.segs_unacked >= 2 {
            // RFC 5681 §4.2: every second full-sized segment.
            self.owed.set_ack_now(true);
        } else if small && !self.pingpong {
            // A small one without delay unless the application answers within the
            // delayed-ACK time (interactive mode, where the ACK rides on the answer),
            // as Linux's quick-ACK and ping-pong modes do; "without delay" being the
            // next poll, after the application's turn.
            self.ack_next = true;
        } else if self.timers.delack_at().is_none() {
            // `last_recv + config.delack`, in microseconds (the same saturating sum).
            let at = self
                .last_recv
                .total_micros()
                .saturating_add(self.delack_micros);
            self.timers.set_delack_at(Some(Instant::from_micros(at)));
        }
    }

    /// The peer's FIN, in order (RFC 9293 §3.10.7.4 eighth).
    fn receive_fin(&mut self, now: Instant) {
        self.rcv_nxt += 1u32;
        self.rcv_closed = true;
        // At the next poll: an application that closes in its turn sends its FIN with
        // this ACK.
        self.ack_next = true;
        self.events |= Events::READABLE;
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now);
                } else {
                    self.set_state(State::Closing);
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// TIME-WAIT for 2*MSL; every other timer stops.
    pub fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.timers.set_rto_at(None);
        self.timers.set_rack_at(None);
        self.timers.set_tlp_at(None);
        self.persisting = false;
        self.timers.set_keepalive_at(None);
        self.timers.set_fin_wait2_at(None);
        self.timers.set_timewait_at(Some(now + self.config.msl * 2));
        self.events |= Events::CLOSED;
    }

    /// The connection is over: no timers, nothing more to send.
    pub fn close_now(&mut self) {
        self.set_state(State::Closed);
        self.timers.set_rto_at(None);
        self.timers.set_rack_at(None);
        self.timers.set_tlp_at(None);
        self.persisting = false;
        self.timers.set_delack_at(None);
        self.timers.set_keepalive_at(None);
        self.timers.set_timewait_at(None);
        self.timers.set_fin_wait2_at(None);
        self.events |= Events::CLOSED;
        if self.error.is_some() {
            self.events |= Events::ERROR;
        }
    }

    /// (Re)arm the keepalive timer after activity.
    ///
    /// Inline, as every segment asks and keepalive is seldom on: the answer for a
    /// connection without it is one test.
    #[inline]
    pub fn arm_keepalive(&mut self, now: Instant) {
        if self.opts.keepalive.is_some() {
            self.arm_keepalive_on(now);
        }
    }

    /// [`arm_keepalive`](Self::arm_keepalive) with keepalive on.
    #[inline(never)]
    fn arm_keepalive_on(&mut self, now: Instant) {
        if let Some(k) = self.opts.keepalive {
            if self.state.is_synchronized() && self.state != State::TimeWait {
                self.timers.set_keepalive_at(Some(now + k.idle));
            }
        }
    }
}
