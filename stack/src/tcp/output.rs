//! What a connection may send now (RFC 9293 §3.8, RFC 1122 §4.2.3.4, RFC 5681, RFC 6675):
//! one decision ladder, asked again and again until it says "nothing".
//!
//! Each call yields at most one segment, described by an [`OutSegment`] whose payload is a
//! range of the send buffer; the stack copies it straight into the transmit frame. The
//! segment is written into a slot the caller lends (and reuses for every segment), not
//! returned: it is large (the header with every option), and passing it back by value
//! through the rungs of the ladder copied it several times per segment.

use crate::tcp::cc::CongestionControl;
use crate::tcp::tcb::{State, Tcb};
use crate::time::Instant;
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{Flags, HeaderImage, TcpTimestamp};

/// One segment to send: the header, and where its payload sits in the send buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutSegment {
    /// The header as it goes on the wire, ports and options included, built in wire
    /// order (the frame writer copies it out whole).
    pub repr: HeaderImage,
    /// Payload: bytes `payload_offset..payload_offset + payload_len` of the send buffer.
    pub payload_offset: usize,
    pub payload_len: usize,
    /// It retransmits data sent before (for the counters).
    pub retransmit: bool,
    /// The payload exceeds one segment: the device cuts it at this size (TSO).
    pub tso_mss: u16,
    /// Nothing is owed after this segment: the next [`Tcb::next_segment`] would find
    /// nothing to send and change nothing (its [`Tcb::owes_nothing`] holds), so the
    /// caller need not ask. False when unknown.
    pub last: bool,
}

impl Tcb {
    /// The next segment to send at `now`, if any, written into `out` (every field of
    /// it); the TCB's state advances as if it was sent. False when there is nothing to
    /// send (`out` may then hold anything). `tso_max` tells the payload bytes the
    /// device toward the peer segments in one frame (TSO; 0: none): asked only where a
    /// burst of more than one segment is possible, so that a connection that sends
    /// less (a request, a response) never looks the device up.
    pub fn next_segment(
        &mut self,
        now: Instant,
        out: &mut OutSegment,
        tso_max: impl FnOnce() -> usize,
    ) -> bool {
        if self.owed.send_rst() {
            self.owed.set_send_rst(false);
            // snd_max, not snd_nxt: after a timeout rewound snd_nxt the peer may already
            // expect snd_max, and RFC 5961 §3.2 accepts only an exact match (BSD
            // tcp_output does the same for every segment without data). But never at
            // the peer's right edge: when we filled its window exactly (data beyond a
            // hole it still waits for), a RST there is outside the window and dropped
            // silently (RFC 9293 §3.10.7.4), and the peer would stay open for good.
            // One octet inside, it answers with a challenge ACK (RFC 5961 §3.2), which
            // our stateless RST answers at its exact RCV.NXT. In a zero window only
            // SND.UNA can be taken.
            let edge = self.snd_una + self.snd_wnd;
            let seq = if self.snd_wnd == 0 {
                self.snd_una
            } else if self.snd_max.ge(edge) {
                edge - 1u32
            } else {
                self.snd_max
            };
            self.segment(out, now, Flags::RST, seq, 0, 0);
            self.close_now();
            return true;
        }
        // The synchronized states but TIME-WAIT first, as one range test: nearly every
        // call is made in them.
        if self.state.is_output_state() {
            // Asked once for all: neither the short answer nor a rung before next_data
            // changes anything when it declines, so the answer still holds there.
            let unsent = self.data_len_at(self.snd_nxt);
            // The common answer first (it needs data unsent, so something is owed:
            // asking `nothing_owed_with` before it would only repeat its tests).
            if self.next_in_order::<false>(now, out, unsent) {
                return true;
            }
            if self.nothing_owed_with(unsent) {
                return false;
            }
            return (self.fin_queued && self.next_in_order_fin(now, out, unsent))
                || self.next_retransmission(now, out)
                || self.next_data(now, out, unsent, tso_max)
                || self.next_probe(now, out)
                || self.next_ack(now, out);
        }
        match self.state {
            State::SynSent | State::SynReceived => self.next_syn(now, out),
            State::TimeWait => self.next_ack(now, out),
            _ => false,
        }
    }

    /// True when [`next_segment`](Self::next_segment) would find nothing to send (and
    /// change nothing): no RST owed, a synchronized state but TIME-WAIT, and
    /// [`nothing_owed`](Self::nothing_owed) (whose flags include the RST's). Lets the
    /// arrival of a segment that owes no answer skip the output pass.
    #[inline]
    pub(crate) fn owes_nothing(&self) -> bool {
        self.state.is_output_state() && self.nothing_owed()
    }

    /// True when the ladder below would find nothing in a synchronized state: no
    /// probe or retransmission due, no unsent data or FIN, no ACK owed. Asked first
    /// because most calls find nothing (the output pass asks until "nothing", and a
    /// segment that only took data owes no ACK yet), and each rung costs more. The
    /// owed flags are one test ([`Owed::any`](crate::tcp::tcb::Owed::any)); the RST
    /// among them is handled before the ladder is asked, so it changes no answer. An
    /// empty send buffer (everything acknowledged: the usual state after an ACK) has
    /// nothing unsent without working out where sending stands in it.
    #[inline]
    fn nothing_owed(&self) -> bool {
        let unsent = if self.snd_buf.is_empty() {
            0
        } else {
            self.data_len_at(self.snd_nxt)
        };
        self.nothing_owed_with(unsent)
    }

    /// [`nothing_owed`](Self::nothing_owed) given `unsent`, the send-buffer bytes from
    /// snd_nxt on.
    #[inline]
    fn nothing_owed_with(&self, unsent: usize) -> bool {
        !(self.owed.any() || (self.in_recovery && self.sack_ok))
            && unsent == 0
            && !(self.fin_queued && self.fin_seq().is_some_and(|f| self.snd_nxt.le(f)))
    }

    /// Our SYN (or SYN-ACK), with every option we offer (RFC 9293 §3.5).
    fn next_syn(&mut self, now: Instant, out: &mut OutSegment) -> bool {
        if self.snd_nxt != self.iss {
            return self.next_ack(now, out) && self.state == State::SynReceived;
        }
        let mut flags = Flags::SYN;
        if self.state == State::SynReceived {
            flags |= Flags::ACK;
        }
        self.segment(out, now, flags, self.iss, 0, 0);
        self.snd_nxt = self.iss + 1u32;
        if self.snd_max.lt(self.snd_nxt) {
            self.snd_max = self.snd_nxt;
        }
        if self.retransmits == 0 && self.rtt_probe.is_none() {
            self.rtt_probe = Some((self.iss, now));
        }
        if self.timers.rto_at().is_none() {
            self.timers.set_rto_at(Some(self.rto_deadline(now)));
        }
        self.sent(now);
        true
    }

    fn snd_wscale_offered(&self) -> bool {
        self.ws_agreed
    }

    /// Bytes the network holds by our estimate: RFC 6675 pipe in SACK recovery,
    /// flight less what duplicate ACKs reported gone in NewReno recovery.
    fn pipe(&self) -> u32 {
        let outstanding = (self.snd_nxt - self.snd_una).max(0) as u32;
        if !self.in_recovery {
            return outstanding;
        }
        if self.rack_on() {
            // RFC 6675 SetPipe with RACK's loss marks, kept as totals by the sent log.
            self.sent.pipe(self.flight())
        } else if self.sack_ok {
            self.scoreboard
                .pipe(self.snd_una, self.snd_max, self.high_rxt, self.smss, 3)
        } else {
            self.flight().saturating_sub(self.dupacks * self.smss)
        }
    }

    /// Loss recovery: a tail loss probe when its timer expired; the segment at snd_una
    /// (fast retransmit, NewReno partial ACK); then what is lost (RFC 6675 NextSeg rule
    /// 1: with RACK, the segments it marked lost, lost retransmissions included; else
    /// the holes SACK reports lost).
    fn next_retransmission(&mut self, now: Instant, out: &mut OutSegment) -> bool {
        if self.owed.tlp_send() {
            self.owed.set_tlp_send(false);
            if self.loss_probe(now, out) {
                return true;
            }
        }
        if self.owed.rexmit_una() {
            self.owed.set_rexmit_una(false);
            let start = self.snd_una;
            let len = self.data_len_at(start).min(self.seg_room());
            if len > 0 || self.fin_at(start) {
                let fin = self.fin_at(start + len);
                self.data_segment(out, now, start, len, true, fin);
                if self.high_rxt.lt(start + len) {
                    self.high_rxt = start + len;
                }
                return true;
            }
        }
        if !(self.in_recovery && self.sack_ok) {
            return false;
        }
        if self.rack_on() {
            let Some((start, end)) = self.sent.next_lost() else {
                return false;
            };
            let fin = self.fin_at(end - 1u32);
            let data = (end - start).max(0) as usize - usize::from(fin);
            let len = data.min(self.data_len_at(start)).min(self.seg_room());
            let fin = fin && len == data;
            if len == 0 && !fin {
                return false;
            }
            if !self.rexmit_first && self.pipe() + (len as u32).max(1) > self.cc.cwnd() {
                return false;
            }
            self.rexmit_first = false;
            if self.high_rxt.lt(start + len) {
                self.high_rxt = start + len;
            }
            self.data_segment(out, now, start, len, true, fin);
            return true;
        }
        let Some((start, len)) =
            self.scoreboard
                .next_seg(self.snd_una, self.snd_max, self.high_rxt, self.smss, 3)
        else {
            return false;
        };
        let len = (len as usize)
            .min(self.data_len_at(start))
            .min(self.seg_room());
        if len == 0 || self.pipe() + len as u32 > self.cc.cwnd() {
            return false;
        }
        self.high_rxt = start + len;
        let fin = self.fin_at(start + len);
        self.data_segment(out, now, start, len, true, fin);
        true
    }

    /// Payload bytes one segment may carry now: smss (which allows for timestamps) less
    /// the SACK blocks the segment will report. RFC 6691 / RFC 9293 §3.7.1: the MSS
    /// bounds data and options together, or the IP packet outgrows the MTU and is
    /// fragmented (Linux tcp_current_mss does the same).
    fn seg_room(&self) -> usize {
        let smss = self.smss as usize;
        if !self.sack_ok || self.reass.is_empty() {
            return smss;
        }
        let mut blocks = [(SeqNumber(0), SeqNumber(0)); 4];
        let max = if self.ts_ok { 3 } else { 4 };
        match self.reass.sack_blocks(self.rcv_nxt, &mut blocks, max) {
            0 => smss,
            // NOP, NOP, kind, length, then 8 bytes per block.
            n => smss.saturating_sub(4 + 8 * n).max(1),
        }
    }

    /// Send-buffer bytes from sequence number `seq` to the end of the buffer.
    fn data_len_at(&self, seq: SeqNumber) -> usize {
        let off = (seq - self.data_start()).max(0) as usize;
        self.snd_buf.len().saturating_sub(off)
    }

    fn fin_at(&self, seq: SeqNumber) -> bool {
        self.fin_seq() == Some(seq)
    }

    /// New data, or data again after a timeout (go-back-N from snd_nxt), within the
    /// peer's window and the congestion window; Nagle and sender-side SWS avoidance.
    /// `unsent` is `data_len_at(snd_nxt)`.
    fn next_data(
        &mut self,
        now: Instant,
        out: &mut OutSegment,
        unsent: usize,
        tso_max: impl FnOnce() -> usize,
    ) -> bool {
        debug_assert_eq!(unsent, self.data_len_at(self.snd_nxt));
        let seq = self.snd_nxt;
        let fin_left = self.fin_queued && self.fin_seq().is_some_and(|f| seq.le(f));
        if unsent == 0 && !fin_left {
            return false;
        }
        let wnd_edge = self.snd_una + self.snd_wnd;
        let in_window = (wnd_edge - seq).max(0) as usize;
        let cwnd_room = self.cc.cwnd().saturating_sub(self.pipe()) as usize;
        let smss = self.seg_room();
        let resend = seq.lt(self.snd_max);
        // With TSO, new data goes out in multiples of the segment size, up to what the
        // device cuts in one go; everything else (windows, Nagle) is unchanged.
        // (Only when there is more than a segment to send: the division is dearer
        // than the rest of the choice, and the device's limit is looked up only then.)
        let burst = if !resend && unsent > smss {
            match tso_max() {
                tso_max if tso_max > smss => (tso_max / smss).max(1) * smss,
                _ => smss,
            }
        } else {
            smss
        };
        let len = unsent.min(burst).min(in_window).min(cwnd_room);
        let fin = fin_left && len == unsent && (len > 0 || unsent == 0);
        if len == 0 && !(fin && unsent == 0) {
            return false;
        }
        if !resend && self.sent.is_full() {
            // As many segments in flight as the record of them may hold (small
            // segments; see sent.rs): new data waits for an ACK.
            return false;
        }
        if len < smss && !resend {
            // RFC 1122 §4.2.3.4 (sender SWS avoidance) with RFC 896 Nagle: a short
            // segment goes only if it is everything we have and no short segment is
            // outstanding (Minshall's variant, as Linux: the tail of a large write is
            // not held back), or Nagle is off, or it is at least half the largest
            // window offered.
            let all = len == unsent;
            let small_unacked = self.snd_sml.gt(self.snd_una) && self.snd_sml.le(self.snd_nxt);
            let half_window = self.max_snd_wnd > 0 && len >= self.max_snd_wnd as usize / 2;
            if !(all && (!small_unacked || self.opts.nodelay || fin) || half_window) {
                return false;
            }
            self.snd_sml = seq + len;
        }
        if !resend && self.snd_nxt == self.snd_una {
            // RFC 5681 §4.1: restart from a small window after an idle period.
            // (The algorithm decides what the pause means: CUBIC shifts its curve
            // even for short ones, RFC 9438 §5.8.)
            let idle_us = now
                .total_micros()
                .saturating_sub(self.last_send.total_micros());
            self.cc
                .on_idle_restart_micros(now, idle_us, self.rtt.rto_micros());
        }
        self.data_segment(out, now, seq, len, resend, fin);
        if len > smss {
            out.tso_mss = smss as u16;
        }
        if !resend {
            // RFC 8985 §7.2: new data (re)starts the probe timeout.
            self.arm_tlp(now, true);
        }
        // Everything went, the FIN too if it was queued, and the rungs before this one
        // cleared their flags on the way (the ACK flags went with this segment): only
        // recovery and the probes could still call for another segment. All the owed
        // flags are asked (one test), not just the probes', so that nothing is missed.
        let more = len != unsent
            || (fin_left && !fin)
            || (self.in_recovery && self.sack_ok)
            || self.owed.any();
        out.last = !more;
        true
    }

    /// The common answer of the ladder, found with one test: new data in order, all of
    /// what is unsent in one segment that the windows take, and our FIN after it if
    /// queued, with nothing to retransmit (a request, a response, the FIN that closes
    /// after them). Header prediction's counterpart on output (BSD's tcp_output has
    /// none, but its answer is the same): what
    /// [`next_retransmission`](Self::next_retransmission) (it declines with no side
    /// effect when no probe or retransmission is owed and no recovery runs) and then
    /// [`next_data`](Self::next_data) with [`data_segment`](Self::data_segment) would
    /// do, with the questions whose answers the test fixes left out: no TSO burst
    /// (one segment at most), not a retransmission, the PSH bit whenever there is
    /// data (the segment ends the buffer), the send log's entry whole. False, with
    /// nothing changed, where the ladder must be asked (or when it would decline:
    /// Nagle).
    /// Off with [`header_prediction`](crate::tcp::tcb::TcbConfig::header_prediction),
    /// so that tests/tcp_sim.rs compares the two on the wire.
    // One conjunction as written: clippy's folding of its negations changes the code
    // LLVM makes for the whole output pass (measured: +54 instructions per rr
    // transaction).
    #[allow(clippy::nonminimal_bool)]
    #[inline(always)]
    fn next_in_order<const FIN: bool>(
        &mut self,
        now: Instant,
        out: &mut OutSegment,
        unsent: usize,
    ) -> bool {
        let seq = self.snd_nxt;
        let smss = self.smss as usize;
        let len = unsent;
        // With `FIN`, for a queued FIN, which follows the data (not sent yet: checked
        // below); without, for none queued.
        let fin = FIN;
        // The outstanding bytes are `pipe()` outside recovery.
        let outstanding = (seq - self.snd_una).max(0) as u32;
        if !(self.config.header_prediction
            && !self.owed.probe_or_rexmit()
            && !self.in_recovery
            && self.fin_queued == fin
            && !(fin && self.fin_seq_no != seq + len)
            && seq == self.snd_max
            && (len > 0 || fin)
            && len <= smss
            && (!self.sack_ok || self.reass.is_empty())
            && len <= (self.snd_una + self.snd_wnd - seq).max(0) as usize
            && len <= self.cc.cwnd().saturating_sub(outstanding) as usize
            && !self.sent.is_full())
        {
            return false;
        }
        if len < smss {
            // next_data's sender SWS avoidance and Nagle for a segment that is all we
            // have (a FIN is never held).
            let small_unacked = self.snd_sml.gt(self.snd_una) && self.snd_sml.le(seq);
            let half_window = self.max_snd_wnd > 0 && len >= self.max_snd_wnd as usize / 2;
            if !fin && small_unacked && !self.opts.nodelay && !half_window {
                return false;
            }
            self.snd_sml = seq + len;
        }
        // Asked once for the idle restart and the retransmission deadline below:
        // nothing in between changes the RTT estimator.
        let rto_us = self.rtt.rto_micros();
        if seq == self.snd_una {
            // RFC 5681 §4.1, as in next_data.
            let idle_us = now
                .total_micros()
                .saturating_sub(self.last_send.total_micros());
            self.cc.on_idle_restart_micros(now, idle_us, rto_us);
        }
        // data_segment's work for this case.
        let offset = (seq - self.data_start()).max(0) as usize;
        let mut flags = Flags::ACK;
        if len > 0 {
            // The segment ends the buffer.
            flags |= Flags::PSH;
        }
        if fin {
            flags |= Flags::FIN;
        }
        if len > 0
            && !self.pingpong
            && now.saturating_duration_since(self.last_data_recv) < self.config.delack
            && self.rcv_nxt != self.irs + 1u32
        {
            self.pingpong = true;
        }
        // No SACK blocks: the test above found none to report.
        self.fill_segment::<false>(out, now, flags, seq, offset, len, false);
        let seq_len = len as u32 + u32::from(fin);
        let end = seq + seq_len;
        self.snd_nxt = end;
        self.snd_max = end;
        self.sent.on_send(now, seq, seq_len, seq_len);
        if self.timers.rto_at().is_none() || self.persisting {
            self.persisting = false;
            // rto_deadline(now), with the RTO asked above.
            let at = Instant::from_micros(now.total_micros().saturating_add(rto_us));
            self.timers.set_rto_at(Some(at));
        }
        self.sent(now);
        // next_data's tail: the probe timeout restarts; only owed flags could call for
        // another segment (no recovery runs, everything unsent went, the FIN too). The
        // segment just logged is in flight.
        self.arm_tlp_in_flight(now, true);
        out.last = !self.owed.any();
        true
    }

    /// [`next_in_order`](Self::next_in_order) for a queued FIN, out of line: inlined
    /// next to the data case, it cost that case more than it saves itself.
    #[inline(never)]
    fn next_in_order_fin(&mut self, now: Instant, out: &mut OutSegment, unsent: usize) -> bool {
        self.next_in_order::<true>(now, out, unsent)
    }

    /// RFC 8985 §7.3: the tail loss probe: one segment of new data if the peer's window
    /// allows, else the last segment sent, again. The ACK it brings back tells RACK
    /// what the tail lost. After it, the retransmission timer runs, not another probe.
    fn loss_probe(&mut self, now: Instant, out: &mut OutSegment) -> bool {
        if self.in_recovery || self.snd_nxt != self.snd_max {
            return false;
        }
        let Some(&last) = self.sent.last() else {
            return false;
        };
        let seq = self.snd_max;
        let unsent = self.data_len_at(seq);
        let in_window = (self.snd_una + self.snd_wnd - seq).max(0) as usize;
        if unsent > 0 && in_window > 0 && !self.sent.is_full() {
            let len = unsent.min(self.seg_room()).min(in_window);
            let fin = self.fin_at(seq + len);
            self.rack.tlp_is_retrans = false;
            self.data_segment(out, now, seq, len, false, fin);
        } else {
            let fin = self.fin_at(last.end - 1u32);
            let data = last.len() as usize - usize::from(fin);
            let len = data.min(self.seg_room());
            let fin = fin && len == data;
            self.rack.tlp_is_retrans = true;
            self.data_segment(out, now, last.start, len, true, fin);
        }
        self.rack.tlp_end = Some(self.snd_max);
        self.timers.set_rto_at(Some(self.rto_deadline(now)));
        true
    }

    /// A segment of `len` bytes of data at `seq`, and our FIN after them if `fin`;
    /// advances snd_nxt when `seq` is it, and records the transmission in the sent log
    /// (its send time, or that it was sent again).
    fn data_segment(
        &mut self,
        out: &mut OutSegment,
        now: Instant,
        seq: SeqNumber,
        len: usize,
        retransmit: bool,
        fin: bool,
    ) {
        let offset = (seq - self.data_start()).max(0) as usize;
        let mut flags = Flags::ACK;
        if len > 0 && offset + len == self.snd_buf.len() {
            flags |= Flags::PSH;
        }
        if fin {
            flags |= Flags::FIN;
        }
        if len > 0
            && !retransmit
            // Already answering: nothing to learn, and no clock arithmetic per segment.
            && !self.pingpong
            && now.saturating_duration_since(self.last_data_recv) < self.config.delack
            && self.rcv_nxt != self.irs + 1u32
        {
            // New data soon after data arrived: the application answers (Linux
            // tcp_event_data_sent).
            self.pingpong = true;
        }
        self.fill_segment::<true>(out, now, flags, seq, offset, len, false);
        out.retransmit = retransmit;
        let seq_len = len as u32 + u32::from(fin);
        if seq == self.snd_nxt {
            self.snd_nxt += seq_len;
        }
        if self.snd_max.lt(seq + seq_len) {
            self.snd_max = seq + seq_len;
        }
        // One log entry per segment on the wire: a TSO burst is cut at the segment
        // size the device is given (next_data's `seg_room`).
        let room = self.seg_room();
        let chunk = if len > room { room as u32 } else { seq_len };
        self.sent.on_send(now, seq, seq_len, chunk);
        if self.timers.rto_at().is_none() || self.persisting {
            self.persisting = false;
            self.timers.set_rto_at(Some(self.rto_deadline(now)));
        }
        self.sent(now);
    }

    /// A zero-window probe (one byte past the window, as BSD does) or a keepalive probe
    /// (RFC 1122 §4.2.3.6: a segment with SEG.SEQ = SND.NXT - 1 and no data).
    fn next_probe(&mut self, now: Instant, out: &mut OutSegment) -> bool {
        if self.owed.force_probe() {
            self.owed.set_force_probe(false);
            if self.snd_wnd == 0 {
                // The probe is the byte at snd_una, the same one each time (as BSD
                // does), so no later byte is ever sent past a hole.
                let seq = self.snd_una;
                if self.data_len_at(seq) > 0 {
                    self.data_segment(out, now, seq, 1, seq.lt(self.snd_max), false);
                    // The probe byte counts as sent; the persist timer keeps running.
                    self.persisting = true;
                    return true;
                }
            } else {
                // RFC 1122 §4.2.3.4: the timer overrides sender SWS avoidance: a window
                // too small for a full segment is used as it is (BSD t_force). That is
                // ordinary data, covered by the retransmission timer.
                let seq = self.snd_nxt;
                let unsent = self.data_len_at(seq);
                if unsent > 0 {
                    let in_window = (self.snd_una + self.snd_wnd - seq).max(0) as usize;
                    let len = unsent.min(in_window).min(self.seg_room()).max(1);
                    self.data_segment(out, now, seq, len, false, false);
                    return true;
                }
            }
        }
        if self.owed.keepalive_probe() {
            self.owed.set_keepalive_probe(false);
            let seq = self.snd_una - 1usize;
            self.segment(out, now, Flags::ACK, seq, 0, 0);
            self.sent(now);
            return true;
        }
        // Data waits for a zero window (RFC 9293 §3.8.6.1), or for a window too small
        // to send into under SWS avoidance with nothing in flight to bring an ACK
        // (RFC 1122 §4.2.3.4 asks for a timeout there): run the persist timer. A
        // retransmission timeout that finds the window closed turns into the persist
        // timer too (BSD tcp_output): retransmitting would send nothing, and only a
        // probe makes the peer tell us when its window opens.
        if self.data_len_at(self.snd_nxt) > 0
            && self.snd_nxt == self.snd_una
            && (self.timers.rto_at().is_none() || (self.snd_wnd == 0 && !self.persisting))
        {
            self.persisting = true;
            self.timers.set_rto_at(Some(self.rto_deadline(now)));
        }
        false
    }

    /// A pure ACK, when one is owed now (RFC 5681 §4.2, RFC 5961 challenge, window update).
    fn next_ack(&mut self, now: Instant, out: &mut OutSegment) -> bool {
        if !(self.owed.ack_now() || self.owed.challenge_ack() || self.owed.window_update()) {
            return false;
        }
        // A pure ACK carries snd_max, the next unsent octet, not snd_nxt (BSD
        // tcp_output): after a timeout rewinds snd_nxt, a peer that got the data has
        // rcv_nxt beyond it and would find the ACK outside its window, drop its ACK
        // field and answer with an ACK of its own; two such peers ACK each other
        // forever and neither learns what the other received. While persisting,
        // snd_una: a peer with a zero window dropped the probe byte, and accepts an
        // empty segment only at exactly its rcv_nxt (RFC 9293 §3.10.7.4).
        let seq = if self.state == State::SynReceived {
            self.iss + 1u32
        } else if self.persisting {
            self.snd_una
        } else {
            self.snd_max
        };
        self.segment(out, now, Flags::ACK, seq, 0, 0);
        self.sent(now);
        true
    }

    /// A segment with the ACK, window, timestamp and SACK fields filled in, written
    /// whole into `out` (no field of an earlier segment survives); a SYN gets the
    /// options of [`syn_header`](Self::syn_header).
    #[inline(never)]
    fn segment(
        &mut self,
        out: &mut OutSegment,
        now: Instant,
        flags: Flags,
        seq: SeqNumber,
        offset: usize,
        len: usize,
    ) {
        self.fill_segment::<true>(out, now, flags, seq, offset, len, true);
    }

    /// [`segment`](Self::segment), inline: for data segments, the most frequent.
    /// Without `control`, `flags` holds neither SYN nor RST, and their paths are
    /// left out of the copy. Without `SACK`, the caller knows that no SACK block is
    /// to be reported (SACK is off or nothing is out of order), and the question is
    /// not asked again.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn fill_segment<const SACK: bool>(
        &mut self,
        out: &mut OutSegment,
        now: Instant,
        flags: Flags,
        seq: SeqNumber,
        offset: usize,
        len: usize,
        control: bool,
    ) {
        debug_assert!(control || !flags.intersects(Flags::SYN | Flags::RST));
        let syn = control && flags.contains(Flags::SYN);
        let rst = control && flags.contains(Flags::RST);
        let ack = if flags.contains(Flags::ACK) || (rst && self.state.is_synchronized()) {
            Some(self.rcv_nxt)
        } else {
            None
        };
        let window = if rst { 0 } else { self.window_field(syn) };
        if syn {
            self.syn_header(&mut out.repr, now, flags, seq, ack, window);
        } else {
            let timestamp = (self.ts_ok && !rst).then(|| TcpTimestamp {
                tsval: self.ts_val(now),
                tsecr: self.ts_recent,
            });
            let (src, dst) = (self.local.port(), self.remote.port());
            debug_assert!(SACK || !self.sack_ok || self.reass.is_empty());
            if SACK && self.sack_ok && !rst && !self.reass.is_empty() {
                // RFC 2018 §4: the first block reports the most recent arrival.
                let mut blocks = [(SeqNumber(0), SeqNumber(0)); 4];
                let max = if timestamp.is_some() { 3 } else { 4 };
                let n = self.reass.sack_blocks(self.rcv_nxt, &mut blocks, max);
                out.repr
                    .set(src, dst, flags, seq, ack, window, timestamp, &blocks[..n]);
            } else {
                out.repr
                    .set(src, dst, flags, seq, ack, window, timestamp, &[]);
            }
        }
        out.payload_offset = offset;
        out.payload_len = len;
        out.retransmit = false;
        out.tso_mss = 0;
        out.last = false;
        if ack.is_some() {
            self.last_ack_sent = self.rcv_nxt;
            self.owed.set_ack_now(false);
            self.ack_next = false;
            self.owed.set_challenge_ack(false);
            self.owed.set_window_update(false);
            self.segs_unacked = 0;
            self.timers.set_delack_at(None);
        }
    }

    /// Our SYN (or SYN-ACK) header, with every option we offer (RFC 9293 §3.5). On a
    /// SYN-ACK, options are echoed only if the peer offered them (negotiate() recorded
    /// that); on our SYN, offer what the config allows.
    #[cold]
    fn syn_header(
        &self,
        out: &mut HeaderImage,
        now: Instant,
        flags: Flags,
        seq: SeqNumber,
        ack: Option<SeqNumber>,
        window: u16,
    ) {
        let synack = self.state == State::SynReceived;
        let offer = !synack;
        let window_scale = ((offer && self.config.window_scaling)
            || (synack && self.snd_wscale_offered()))
        .then_some(self.rcv_wscale);
        let sack_permitted = if offer {
            self.config.sack
        } else {
            self.sack_ok
        };
        let ts = if offer {
            self.config.timestamps
        } else {
            self.ts_ok
        };
        let timestamp = ts.then(|| TcpTimestamp {
            tsval: self.ts_val(now),
            tsecr: if synack { self.ts_recent } else { 0 },
        });
        out.set_syn(
            self.local.port(),
            self.remote.port(),
            flags,
            seq,
            ack,
            window,
            self.our_mss,
            window_scale,
            sack_permitted,
            timestamp,
        );
    }

    fn sent(&mut self, now: Instant) {
        self.last_send = now;
    }
}
