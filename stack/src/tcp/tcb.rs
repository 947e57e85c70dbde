//! The TCP control block: one connection's state, named as in RFC 9293 §3.3.1.
//!
//! Only TCP code changes a TCB (one owner). `input.rs` applies arriving segments,
//! `output.rs` decides what may be sent, `timers.rs` handles expirations; all three
//! are `impl Tcb` blocks over the fields defined here.

use core::net::SocketAddrV4;

use crate::tcp::buffer::RingBuffer;
use crate::tcp::cc::{Cc, CcAlgorithm, CongestionControl};
use crate::tcp::rack::Rack;
use crate::tcp::reass::{range_limit, Assembler};
use crate::tcp::rtt::{RtoConfig, RttEstimator};
use crate::tcp::sack::Scoreboard;
use crate::tcp::sent::{record_limit, SentLog};
use crate::tcp::timers::Deadlines;
use crate::time::{Duration, Instant};
use crate::wire::seq::SeqNumber;

/// Connection states (RFC 9293 §3.3.2). Listening is a listener's job, not a TCB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// Every state, in declaration order: the random tests' pool.
    #[cfg(test)]
    pub(crate) const ALL: [State; 10] = [
        State::Closed,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// [`State::ALL`] without `except`, in the same order.
    #[cfg(test)]
    pub(crate) fn all_but(except: &[State]) -> alloc::vec::Vec<State> {
        State::ALL
            .into_iter()
            .filter(|s| !except.contains(s))
            .collect()
    }

    /// A SYN has been exchanged both ways (RFC 9293's "synchronized" states).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::SynSent | State::SynReceived)
    }

    /// The synchronized states but TIME-WAIT: where a connection's output is decided
    /// segment by segment (retransmission, data, probes, ACKs). One range test, as the
    /// variants are declared in that order.
    #[inline(always)]
    pub fn is_output_state(self) -> bool {
        matches!(
            self,
            State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
        )
    }

    /// We may still send data (no FIN of ours queued by the state).
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// Data from the peer is still expected.
    pub fn can_receive(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            State::Closed => "CLOSED",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        })
    }
}

/// Why a connection ended other than by an orderly close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnError {
    /// The peer refused the connection (RST in answer to our SYN).
    Refused,
    /// The peer reset an established connection.
    Reset,
    /// Retransmissions (or keepalive probes) went unanswered.
    TimedOut,
}

/// Keepalive settings (RFC 1122 §4.2.3.6; off unless asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        // Linux's tcp_keepalive_time / intvl / probes.
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// Per-connection options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpSocketOptions {
    /// Disable Nagle's algorithm (TCP_NODELAY).
    pub nodelay: bool,
    /// Receive buffer bytes (also bounds out-of-order data held).
    pub rcv_buf: usize,
    /// Send buffer bytes.
    pub snd_buf: usize,
    /// Congestion control.
    pub cc: CcAlgorithm,
    /// Keepalive probing, if wanted.
    pub keepalive: Option<Keepalive>,
}

impl Default for TcpSocketOptions {
    fn default() -> Self {
        TcpSocketOptions {
            nodelay: false,
            rcv_buf: 64 * 1024,
            snd_buf: 64 * 1024,
            cc: CcAlgorithm::default(),
            keepalive: None,
        }
    }
}

/// What a TCB needs from its stack's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcbConfig {
    pub rto: RtoConfig,
    /// SYN retransmissions before giving up (Linux tcp_syn_retries: 6).
    pub syn_retries: u32,
    /// Data retransmissions before giving up (Linux tcp_retries2: 15).
    pub retries: u32,
    /// TIME-WAIT lasts 2*MSL; Linux uses 60 s in all (RFC 9293 suggests MSL = 2 min).
    pub msl: Duration,
    /// Delayed-ACK timeout (RFC 9293 §3.8.6.3 / RFC 1122: at most 500 ms; we use 40 ms
    /// as Linux's minimum, well under the 200 ms the stack promises).
    pub delack: Duration,
    /// FIN-WAIT-2 timeout after the application closed (Linux tcp_fin_timeout: 60 s).
    pub fin_timeout: Duration,
    /// Offer timestamps (RFC 7323).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Offer window scaling (RFC 7323).
    pub window_scaling: bool,
    /// Detect losses with RACK-TLP (RFC 8985) when SACK is on, as Linux does by
    /// default; off: RFC 6675's duplicate-ACK threshold alone, and no tail probes.
    pub rack: bool,
    /// Take the segments header prediction recognizes through its short path
    /// (input.rs `input_predicted`), and send new data in order through output's
    /// (output.rs `next_in_order`); off, every segment takes the full one. The two
    /// give the same results (tests/tcp_sim.rs compares them frame by frame): the
    /// switch is there for that comparison and for measuring what prediction saves.
    pub header_prediction: bool,
}

impl Default for TcbConfig {
    fn default() -> Self {
        TcbConfig {
            rto: RtoConfig::default(),
            syn_retries: 6,
            retries: 15,
            msl: Duration::from_secs(30),
            delack: Duration::from_millis(40),
            fin_timeout: Duration::from_secs(60),
            timestamps: true,
            sack: true,
            window_scaling: true,
            rack: true,
            header_prediction: true,
        }
    }
}

/// One connection.
#[derive(Debug)]
pub struct Tcb {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub config: TcbConfig,
    pub opts: TcpSocketOptions,

    // Send sequence space (RFC 9293 §3.3.1).
    pub iss: SeqNumber,
    pub snd_una: SeqNumber,
    /// Next sequence number to send on the normal walk (reset to snd_una on RTO).
    pub snd_nxt: SeqNumber,
    /// Highest sequence number sent so far (+1).
    pub snd_max: SeqNumber,
    /// The peer's window, scaled, in bytes.
    pub snd_wnd: u32,
    pub snd_wl1: SeqNumber,
    pub snd_wl2: SeqNumber,
    /// Largest window the peer ever offered (RFC 1122 SWS avoidance, RFC 5961 §5).
    pub max_snd_wnd: u32,
    /// Shift for the peer's advertised windows.
    pub snd_wscale: u8,

    // Receive sequence space.
    pub irs: SeqNumber,
    pub rcv_nxt: SeqNumber,
    /// Shift for the windows we advertise.
    pub rcv_wscale: u8,
    /// The right edge of the window we last advertised (never shrunk, RFC 9293 §3.8.6).
    pub rcv_adv: SeqNumber,

    /// Payload bytes per segment we send (the peer's MSS, path-clamped, less options).
    pub smss: u32,
    /// The MSS we advertise.
    pub our_mss: u16,

    // RFC 7323 timestamps.
    pub ts_ok: bool,
    pub ts_recent: u32,
    pub ts_recent_at: Instant,
    pub ts_offset: u32,
    pub last_ack_sent: SeqNumber,
    pub sack_ok: bool,
    /// Both sides offered window scaling.
    pub ws_agreed: bool,

    pub snd_buf: RingBuffer,
    pub rcv_buf: RingBuffer,
    pub reass: Assembler,
    pub scoreboard: Scoreboard,
    /// Every segment in flight: when it left, whether it was SACKed, lost, resent.
    pub sent: SentLog,
    /// RACK-TLP state (RFC 8985).
    pub rack: Rack,

    pub rtt: RttEstimator,
    /// When our SYN (or SYN-ACK) left, while it was sent only once (Karn): its ACK gives
    /// the first RTT sample. Data is timed by the sent log (`sent`).
    pub rtt_probe: Option<(SeqNumber, Instant)>,
    pub cc: Cc,
    /// The end of the current round trip: SND.MAX when it began (RFC 9406 `windowEnd`).
    pub round_end: SeqNumber,
    /// The first retransmission of a RACK recovery is owed: it goes whatever the pipe
    /// says (RFC 6675 §5 step 4.3; Linux's PRR forces it the same way).
    pub rexmit_first: bool,
    /// In fast recovery (RFC 6582 / RFC 6675) until `recover` is acknowledged.
    pub in_recovery: bool,
    pub recover: SeqNumber,
    /// SND.UNA before the last ACK that advanced it (RFC 6582 §4.1 `prev_highest_ack`).
    pub prev_highest_ack: SeqNumber,
    pub dupacks: u32,
    /// Highest sequence retransmitted in this recovery (RFC 6675 HighRxt).
    pub high_rxt: SeqNumber,
    /// End of the last short segment sent: Nagle holds a new short segment only while
    /// that one is unacknowledged (Minshall's variant, as Linux `tcp_minshall_check`).
    pub snd_sml: SeqNumber,

    /// The application will send no more: a FIN follows the data.
    pub fin_queued: bool,
    /// The sequence number the FIN takes (fixed when it is queued: no data follows).
    pub fin_seq_no: SeqNumber,
    /// A FIN arrived out of order at this sequence number.
    pub fin_pending: Option<SeqNumber>,
    /// The peer's FIN was received in order: no more data from it.
    pub rcv_closed: bool,

    /// What output owes the peer, flag by flag.
    pub owed: Owed,
    /// The timers (see timers.rs): the stack's wheel wakes the TCB when the earliest is
    /// due.
    pub timers: Deadlines,
    /// The retransmission timer runs as the persist timer (zero window probing).
    pub persisting: bool,
    pub keepalive_probes: u32,
    /// Consecutive retransmission timeouts of the same data.
    pub retransmits: u32,

    /// Full-sized segments received since our last ACK (RFC 5681 §4.2: ACK every 2nd).
    pub segs_unacked: u32,
    /// An ACK is owed at the next poll rather than this one: the application gets its
    /// turn between the two, and what it sends carries the ACK (a request's answer,
    /// the FIN of a close that follows the peer's). RFC 1122 §4.2.3.2 lets an ACK wait
    /// far longer; this waits one turn of a run-to-completion loop.
    pub ack_next: bool,
    /// Interactive ("ping-pong") mode, as Linux has it: the application answers what it
    /// receives within the delayed-ACK time, so the ACK of a small segment waits to ride
    /// on the answer instead of leaving alone (half the segments of a request/response
    /// exchange). Entered when data is sent soon after data arrived; left when the
    /// delayed-ACK timer fires (the answer did not come in time).
    pub pingpong: bool,
    /// When data last arrived in order (what [`Tcb::pingpong`] measures answers from).
    pub last_data_recv: Instant,
    /// Start of the current window of the challenge ACK budget (RFC 5961 §7).
    pub challenge_window: Instant,
    /// Challenge ACKs owed in the current window.
    pub challenges: u8,
    /// When we last sent anything (idle restart, RFC 5681 §4.1).
    pub last_send: Instant,
    /// When we last heard from the peer (keepalive).
    pub last_recv: Instant,
    /// `config.delack` in microseconds, worked out once: the delayed ACK is armed on
    /// most data segments, and adding a `Duration` to an `Instant` converts it each
    /// time (a multiply, a divide by constant, an overflow check).
    pub delack_micros: u64,

    pub error: Option<ConnError>,
    /// Made by a listener from the peer's SYN (a RST in SYN-RECEIVED then just drops it).
    pub passive: bool,
    /// The application released its handle: free the TCB once CLOSED.
    pub orphaned: bool,
    /// Events to report (readiness), as bits of `crate::tcp::Events`.
    pub events: u8,
}

/// What output owes the peer: each flag makes the output pass send something (or,
/// for `send_rst`, abort). The flags are bits of one byte, so that "owes nothing",
/// asked at every turn of the output pass and after every segment received, is one
/// test of them all ([`any`](Self::any)). One byte written and read whole, not eight
/// `bool`s read as one word: a word load of bytes stored just before (the output pass
/// clears the ACK flags, then asks) cannot take its data from those stores and waits
/// for them to reach the cache, a stall that cost about 5% of an rr transaction's time.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Owed(u8);

/// One accessor pair per flag: `name()` reads it, `set_name(on)` sets or clears it.
macro_rules! owed_flags {
    ($($(#[$doc:meta])* $name:ident, $set:ident = $bit:expr;)*) => {
        impl Owed {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $name(&self) -> bool {
                    self.0 & (1 << $bit) != 0
                }

                #[inline(always)]
                pub fn $set(&mut self, on: bool) {
                    self.0 = (self.0 & !(1 << $bit)) | (u8::from(on) << $bit);
                }
            )*
        }

        impl core::fmt::Debug for Owed {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("Owed")
                    $(.field(stringify!($name), &self.$name()))*
                    .finish()
            }
        }
    };
}

owed_flags! {
    /// An ACK must go out in the next output pass.
    ack_now, set_ack_now = 0;
    /// A challenge ACK is owed (RFC 5961).
    challenge_ack, set_challenge_ack = 1;
    /// A window update is owed (the application read a lot).
    window_update, set_window_update = 2;
    /// The probe timeout expired: output sends a loss probe next.
    tlp_send, set_tlp_send = 3;
    /// Retransmit the segment at snd_una next (fast retransmit, partial ACK).
    rexmit_una, set_rexmit_una = 4;
    /// Send one byte past a zero window (persist probe), or a keepalive probe.
    force_probe, set_force_probe = 5;
    /// Send a keepalive probe.
    keepalive_probe, set_keepalive_probe = 6;
    /// Send a RST and close (abort).
    send_rst, set_send_rst = 7;
}

impl Owed {
    /// Some flag is set.
    #[inline(always)]
    pub fn any(&self) -> bool {
        self.0 != 0
    }

    /// A loss probe or a retransmission at snd_una is owed
    /// ([`tlp_send`](Self::tlp_send) or [`rexmit_una`](Self::rexmit_una)): one test of
    /// both bits, where the two accessors made two branches of the output pass's
    /// common case.
    #[inline(always)]
    pub fn probe_or_rexmit(&self) -> bool {
        self.0 & (1 << 3 | 1 << 4) != 0
    }
}

/// Who a new connection is between and what it starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenParams {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// Our initial sequence number (RFC 6528, or a SYN cookie).
    pub iss: SeqNumber,
    /// Added to our timestamp clock (hides uptime, RFC 7323 §5.4).
    pub ts_offset: u32,
    /// The MSS we advertise.
    pub our_mss: u16,
}

/// Room the options of a data segment take: timestamps (12 bytes with padding).
pub const TS_OPTION_LEN: u32 = 12;

/// RFC 9293 §3.7.1: the MSS to assume when the peer sends none.
pub const DEFAULT_MSS: u16 = 536;

impl Tcb {
    /// A TCB with buffers and estimators ready; the caller sets the state.
    #[inline(always)]
    pub fn new(now: Instant, open: OpenParams, config: TcbConfig, opts: TcpSocketOptions) -> Tcb {
        Tcb::with_rtt(now, open, config, opts, RttEstimator::new(config.rto))
    }

    /// [`new`](Self::new) with `rtt`, an estimator as `RttEstimator::new(config.rto)`
    /// makes it: the stack keeps one made, and each connection starts from a copy
    /// rather than working its bounds out from the configuration's durations again.
    #[inline(always)]
    pub(crate) fn with_rtt(
        now: Instant,
        open: OpenParams,
        config: TcbConfig,
        opts: TcpSocketOptions,
        rtt: RttEstimator,
    ) -> Tcb {
        let OpenParams {
            local,
            remote,
            iss,
            ts_offset,
            our_mss,
        } = open;
        let rcv_wscale = if config.window_scaling {
            wscale_for(opts.rcv_buf)
        } else {
            0
        };
        let smss = u32::from(DEFAULT_MSS);
        Tcb {
            state: State::Closed,
            local,
            remote,
            config,
            opts,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_wscale: 0,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_wscale,
            rcv_adv: SeqNumber(0),
            smss,
            our_mss,
            ts_ok: false,
            ts_recent: 0,
            ts_recent_at: now,
            ts_offset,
            last_ack_sent: SeqNumber(0),
            sack_ok: false,
            ws_agreed: false,
            snd_buf: RingBuffer::new(opts.snd_buf),
            rcv_buf: RingBuffer::new(opts.rcv_buf),
            reass: Assembler::with_limit(range_limit(opts.rcv_buf, usize::from(our_mss))),
            // A constant: its 256 zero bytes are set where the TCB is built, not built
            // aside and copied in (callgrind, crr: 11 instructions a connection).
            scoreboard: const { Scoreboard::new() },
            sent: SentLog::new(record_limit(opts.snd_buf, smss)),
            rack: Rack::new(),
            rtt,
            rtt_probe: None,
            cc: Cc::new(opts.cc, smss, now),
            round_end: iss,
            rexmit_first: false,
            in_recovery: false,
            recover: iss,
            prev_highest_ack: iss,
            dupacks: 0,
            high_rxt: iss,
            snd_sml: iss,
            fin_queued: false,
            fin_seq_no: iss,
            fin_pending: None,
            rcv_closed: false,
            owed: Owed::default(),
            timers: Deadlines::default(),
            persisting: false,
            keepalive_probes: 0,
            retransmits: 0,
            segs_unacked: 0,
            ack_next: false,
            pingpong: false,
            last_data_recv: now,
            challenge_window: now,
            challenges: 0,
            last_send: now,
            last_recv: now,
            delack_micros: u64::try_from(config.delack.as_micros()).unwrap_or(u64::MAX),
            error: None,
            passive: false,
            orphaned: false,
            events: 0,
        }
    }

    /// The SYN we sent is not acknowledged yet (it occupies `iss`).
    pub fn syn_unacked(&self) -> bool {
        self.snd_una == self.iss
    }

    /// [`owes_nothing`](Self::owes_nothing) after a segment header prediction took
    /// (input.rs `input_predicted`): ESTABLISHED, no recovery, no FIN of ours queued,
    /// so with an empty send buffer (everything sent acknowledged: the usual case)
    /// only the owed flags are left to ask.
    #[inline(always)]
    pub(crate) fn owes_nothing_predicted(&self) -> bool {
        debug_assert!(self.state == State::Established && !self.in_recovery && !self.fin_queued);
        let answer = !self.owed.any() && (self.snd_buf.is_empty() || self.owes_nothing());
        debug_assert_eq!(answer, self.owes_nothing());
        answer
    }

    /// The sequence number of the first byte in the send buffer.
    pub fn data_start(&self) -> SeqNumber {
        if self.syn_unacked() {
            self.iss + 1u32
        } else {
            self.snd_una
        }
    }

    /// The sequence number our FIN takes, once queued.
    pub fn fin_seq(&self) -> Option<SeqNumber> {
        self.fin_queued.then_some(self.fin_seq_no)
    }

    /// Queue our FIN after the data already in the send buffer.
    pub fn queue_fin(&mut self) {
        if !self.fin_queued {
            self.fin_queued = true;
            self.fin_seq_no = self.data_start() + self.snd_buf.len();
        }
    }

    /// Our FIN was sent and acknowledged.
    pub fn fin_acked(&self) -> bool {
        match self.fin_seq() {
            Some(f) => self.snd_una.gt(f),
            None => false,
        }
    }

    /// Bytes sent and not acknowledged (sequence space, SYN/FIN included).
    pub fn flight(&self) -> u32 {
        (self.snd_max - self.snd_una).max(0) as u32
    }

    /// The receive window we can offer now: free buffer space, scaled down.
    pub fn rcv_wnd(&self) -> u32 {
        let free = self.rcv_buf.window() as u64;
        let max = 65535u64 << self.rcv_wscale;
        free.min(max) as u32
    }

    /// The window field to put in a segment (RFC 7323: SYNs are never scaled), never
    /// shrinking the right edge already advertised (RFC 9293 §3.8.6.2.2).
    ///
    /// Nearly every segment of a synchronized connection re-advertises the edge already
    /// promised (the free space has not grown by the SWS step past it): that answer,
    /// [`Tcb::window_unmoved`], needs neither the clamp of the free space nor the
    /// rounding and comparison of a new edge; anything else takes the general path.
    #[inline]
    pub fn window_field(&mut self, syn: bool) -> u16 {
        if !syn && self.state.is_synchronized() {
            if let Some(field) = self.window_unmoved() {
                return field;
            }
        }
        self.window_field_general(syn)
    }

    /// The window field when the right edge stays where it was promised: the edge is
    /// not behind `RCV.NXT` and the free space is short of it plus the SWS step, so
    /// [`Tcb::window_field_general`] would re-advertise the promised window, whose
    /// scaled-down edge does not pass `RCV.ADV` (no update). `None` otherwise.
    #[inline]
    fn window_unmoved(&self) -> Option<u16> {
        let promised = self.rcv_adv - self.rcv_nxt;
        if promised < 0 {
            return None;
        }
        let promised = promised as u32;
        let free = self.rcv_buf.window() as u64;
        if free >= u64::from(promised) + u64::from(self.sws_step()) {
            return None;
        }
        Some((promised >> self.rcv_wscale).min(65535) as u16)
    }

    /// The least move of the advertised right edge (RFC 9293 §3.8.6.2.2, receiver SWS
    /// avoidance): min(half the buffer, one MSS), at least one byte.
    #[inline]
    fn sws_step(&self) -> u32 {
        (self.rcv_buf.capacity() as u32 / 2).min(self.smss).max(1)
    }

    /// [`Tcb::window_field`] in full: the free space, clamped to what the scale can
    /// express, replaces the promised window only when it moves the edge by the step.
    fn window_field_general(&mut self, syn: bool) -> u16 {
        let mut wnd = self.rcv_wnd();
        if self.state.is_synchronized() {
            let promised = (self.rcv_adv - self.rcv_nxt).max(0) as u32;
            // RFC 9293 §3.8.6.2.2 (receiver SWS avoidance): move the right edge only by
            // at least min(half the buffer, one MSS); never pull it back (§3.8.6).
            let step = self.sws_step();
            if wnd < promised || wnd - promised < step {
                wnd = promised;
            }
        }
        if syn {
            return wnd.min(65535) as u16;
        }
        let scaled = (wnd >> self.rcv_wscale).min(65535);
        let advertised = self.rcv_nxt + (scaled << self.rcv_wscale);
        if advertised.gt(self.rcv_adv) || !self.state.is_synchronized() {
            self.rcv_adv = advertised;
        }
        scaled as u16
    }

    /// The timestamp value we send now (1 ms clock + per-connection offset).
    pub fn ts_val(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// The earliest deadline among the TCB's timers.
    #[inline]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Some timer is armed before `at`: `next_deadline() < Some(at)` (see
    /// [`Deadlines::any_before`]: nearly always without looking at the timers).
    #[inline(always)]
    pub fn deadline_before(&mut self, at: Instant) -> bool {
        self.timers.any_before(at)
    }

    /// When a retransmission timer armed at `now` expires (`now + RTO`, saturating),
    /// in microseconds throughout: arming it is per data segment, and a `Duration`
    /// would be built from the RTO only to be taken apart again.
    #[inline]
    pub(crate) fn rto_deadline(&self, now: Instant) -> Instant {
        Instant::from_micros(now.total_micros().saturating_add(self.rtt.rto_micros()))
    }

    /// Loss detection is RACK-TLP's (RFC 8985): SACK is on and RACK is enabled.
    #[inline]
    pub fn rack_on(&self) -> bool {
        self.sack_ok && self.config.rack
    }

    /// Enter a state.
    pub fn set_state(&mut self, state: State) {
        self.state = state;
    }

    /// Use `mss` as the peer's MSS (clamped by ours and the options we send).
    pub fn set_peer_mss(&mut self, peer_mss: Option<u16>) {
        let mss = u32::from(peer_mss.unwrap_or(DEFAULT_MSS).min(self.our_mss).max(64));
        let opts = if self.ts_ok { TS_OPTION_LEN } else { 0 };
        self.smss = mss.saturating_sub(opts).max(32);
        self.cc.set_mss(self.smss);
        self.sent
            .set_limit(record_limit(self.opts.snd_buf, self.smss));
    }
}

/// The smallest shift that lets `buf` bytes be advertised in 16 bits (RFC 7323 §2.3).
pub fn wscale_for(buf: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buf >> shift) > 65535 {
        shift += 1;
    }
    shift
}

/// A TCB for the receive-window tests, drawn from `r`: fresh, then given one of
/// `states`, a receive buffer of one of a spread of sizes (1 byte to 1 MiB), a window
/// scale and an MSS (1 byte to jumbo).
#[cfg(test)]
pub(crate) fn random_receiver(r: u64, states: &[State]) -> Tcb {
    const SIZES: [usize; 9] = [1, 2, 100, 1460, 2920, 65535, 65536, 262_144, 1 << 20];
    let addr = |p| SocketAddrV4::new(core::net::Ipv4Addr::new(10, 0, 0, 1), p);
    let opts = TcpSocketOptions {
        rcv_buf: SIZES[(r % SIZES.len() as u64) as usize],
        ..TcpSocketOptions::default()
    };
    let open = OpenParams {
        local: addr(1),
        remote: addr(2),
        iss: SeqNumber(1000),
        ts_offset: 0,
        our_mss: 1460,
    };
    let now = Instant::from_micros(1_000_000);
    let mut t = Tcb::new(now, open, TcbConfig::default(), opts);
    t.state = states[((r >> 8) % states.len() as u64) as usize];
    t.rcv_wscale = ((r >> 12) % 15) as u8;
    t.smss = [1, 536, 1460, 9000][((r >> 16) % 4) as usize];
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;

    /// Each owed flag is its own bit: setting or clearing one leaves the others as
    /// they were, and `any` is true exactly while one is set.
    #[test]
    fn owed_flags_are_independent_bits() {
        type Get = fn(&Owed) -> bool;
        type Set = fn(&mut Owed, bool);
        let flags: [(Get, Set); 8] = [
            (Owed::ack_now, Owed::set_ack_now),
            (Owed::challenge_ack, Owed::set_challenge_ack),
            (Owed::window_update, Owed::set_window_update),
            (Owed::tlp_send, Owed::set_tlp_send),
            (Owed::rexmit_una, Owed::set_rexmit_una),
            (Owed::force_probe, Owed::set_force_probe),
            (Owed::keepalive_probe, Owed::set_keepalive_probe),
            (Owed::send_rst, Owed::set_send_rst),
        ];
        // Every one of the 256 combinations, built flag by flag, then each flag flipped.
        for combo in 0u32..256 {
            let mut o = Owed::default();
            assert!(!o.any());
            for (i, (_, set)) in flags.iter().enumerate() {
                set(&mut o, combo & (1 << i) != 0);
            }
            for (i, (get, _)) in flags.iter().enumerate() {
                assert_eq!(get(&o), combo & (1 << i) != 0, "flag {i} of {combo:#x}");
            }
            assert_eq!(o.any(), combo != 0);
            for (i, (get, set)) in flags.iter().enumerate() {
                let mut p = o;
                set(&mut p, !get(&o));
                for (j, (g, _)) in flags.iter().enumerate() {
                    assert_eq!(g(&p), g(&o) != (i == j), "flip {i}, flag {j} of {combo:#x}");
                }
            }
        }
    }

    /// `probe_or_rexmit` answers what its two flags answer, for every set of flags.
    #[test]
    fn probe_or_rexmit_is_its_two_flags() {
        for bits in 0..=u8::MAX {
            let owed = Owed(bits);
            assert_eq!(
                owed.probe_or_rexmit(),
                owed.tlp_send() || owed.rexmit_una(),
                "{owed:?}"
            );
        }
    }

    /// The early answer of `window_field` changes nothing: over random buffers (sizes,
    /// fill, reads), window scales, MSSs, advertised edges (behind `RCV.NXT` at times)
    /// and states, SYN or not, the same field and the same `RCV.ADV` as the general
    /// path, and both the early answer and the general path are taken.
    #[test]
    fn window_field_matches_the_general_path() {
        let mut rand = Rand::from_u64(5);
        let states = State::ALL;
        let (mut early, mut general) = (0, 0);
        for _ in 0..20_000 {
            let r = rand.next_u64();
            let r2 = rand.next_u64();
            let mut t = random_receiver(r, &states);
            let cap = t.rcv_buf.capacity();
            // Bytes received, then some of them read (the ring holds what is unread).
            let filled = (r2 % (cap.min(1 << 17) as u64 + 1)) as usize;
            let bytes = alloc::vec![0u8; filled];
            assert_eq!(t.rcv_buf.enqueue_slice(&bytes), filled);
            let read = ((r2 >> 20) % (filled as u64 + 1)) as usize;
            assert_eq!(t.rcv_buf.dequeue_allocated(read), read);
            t.rcv_nxt = SeqNumber((r >> 20) as u32);
            // The advertised edge around the free space (clamped to the scale), behind
            // rcv_nxt at times, past the largest expressible window at times.
            let max = (65535i64 << t.rcv_wscale).min(i64::from(i32::MAX));
            let free = (t.rcv_buf.window() as i64).min(max);
            let spread = (free / 2).clamp(4, 1 << 20);
            let mut edge = free - spread + ((r2 >> 44) as i64 % (2 * spread + 1)) - 2;
            if (r >> 52).is_multiple_of(8) {
                edge = -((r >> 56) as i64);
            }
            t.rcv_adv = SeqNumber(t.rcv_nxt.0.wrapping_add(edge.min(max) as u32));
            let syn = (r >> 60).is_multiple_of(4);
            if !syn && t.state.is_synchronized() && t.window_unmoved().is_some() {
                early += 1;
            } else {
                general += 1;
            }
            let before = t.rcv_adv;
            let field = t.window_field(syn);
            let adv = t.rcv_adv;
            t.rcv_adv = before;
            assert_eq!(field, t.window_field_general(syn), "{cap} {edge} {syn}");
            assert_eq!(adv, t.rcv_adv, "{cap} {edge} {syn}");
        }
        assert!(early > 2000 && general > 2000, "{early} {general}");
    }

    #[test]
    fn window_scale_choice() {
        assert_eq!(wscale_for(65535), 0);
        assert_eq!(wscale_for(65536), 1);
        assert_eq!(wscale_for(1 << 20), 5);
        assert_eq!(wscale_for(usize::MAX), 14);
    }
}
