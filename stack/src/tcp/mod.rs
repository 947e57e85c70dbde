//! TCP (RFC 9293), split the BSD way: by direction and by time.
//!
//! - `tcb`: the control block, fields named as in the RFC; `input` (segment arrival),
//!   `output` (the send decision ladder) and `timers` (what expirations do) act on it.
//! - `listen`: listeners with a bounded SYN backlog and accept queue, SYN cookies when
//!   the backlog is full (`syncookie`).
//! - `dispatch`: from the IP layer to the right connection or listener (a 4-tuple hash
//!   map, never a scan), stateless RSTs, and sending what connections queued.
//! - `socket`: the application's calls on the stack (`tcp_connect`, `tcp_send`, ...).
//! - Building blocks, each with its own tests: the send and receive byte rings
//!   (`buffer`), out-of-order reassembly with SACK reporting (`reass`), the sender's
//!   SACK scoreboard (`sack`, RFC 6675), the record of every segment in flight
//!   (`sent`) and RACK-TLP loss detection on it (`rack`, RFC 8985), RTT and RTO (`rtt`,
//!   RFC 6298), congestion control (`cc/`: NewReno, CUBIC, HyStart++), ISNs (`isn`,
//!   RFC 6528) and the timing wheel (`timer`) that wakes connections without scanning
//!   them.

pub mod buffer;
pub mod cc;
mod dispatch;
pub mod input;
pub mod isn;
pub mod listen;
pub mod output;
pub mod rack;
pub mod reass;
pub mod rtt;
pub mod sack;
pub mod sent;
mod socket;
pub mod syncookie;
pub mod tcb;
pub mod timer;
pub mod timers;

#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddrV4;

use crate::rand::Rand;
use crate::socket::{Slab, SlabKey};
use crate::time::{Duration, Instant};
use crate::wire::Ipv4Addr;
use crate::HashMap;

pub use cc::CcAlgorithm;
pub use listen::Listener;
pub use socket::{TcpError, TcpInfo};
pub use tcb::{ConnError, Keepalive, State, TcbConfig, TcpSocketOptions};

use isn::IsnGenerator;
use syncookie::SynCookies;
use tcb::Tcb;
use timer::TimerWheel;

/// Readiness bits of a socket, collected in batches by [`crate::Stack::tcp_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(pub u8);

impl Events {
    /// Data (or the peer's FIN) can be read.
    pub const READABLE: u8 = 1;
    /// Send buffer space opened.
    pub const WRITABLE: u8 = 2;
    /// The handshake completed.
    pub const CONNECTED: u8 = 4;
    /// The connection closed (orderly or not).
    pub const CLOSED: u8 = 8;
    /// The connection failed (refused, reset, timed out).
    pub const ERROR: u8 = 16;
    /// A listener has connections to accept.
    pub const ACCEPTABLE: u8 = 32;

    /// Any of `bits` is set.
    pub fn contains(self, bits: u8) -> bool {
        self.0 & bits != 0
    }
}

/// A handle to a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpHandle(pub(crate) SlabKey);

/// A handle to a TCP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpListenerHandle(pub(crate) SlabKey);

/// What a readiness event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSocketRef {
    Connection(TcpHandle),
    Listener(TcpListenerHandle),
}

/// One readiness event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpEvent {
    pub socket: TcpSocketRef,
    pub events: Events,
}

/// TCP settings of a stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpConfig {
    /// Most connections (all states, TIME-WAIT included).
    pub max_connections: usize,
    /// Most listeners.
    pub max_listeners: usize,
    /// Most half-open connections per listener; beyond, SYN cookies (or drops).
    pub syn_backlog: usize,
    /// Largest accept queue a listener may ask for (Linux somaxconn: 4096).
    pub max_accept_backlog: usize,
    /// Answer SYNs with cookies when the SYN backlog is full (Linux tcp_syncookies=1).
    pub syncookies: bool,
    /// Per-connection protocol settings.
    pub tcb: TcbConfig,
    /// Options of new sockets.
    pub socket: TcpSocketOptions,
    /// Resolution of the timing wheel.
    pub timer_tick: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 1 << 20,
            max_listeners: 1024,
            syn_backlog: 256,
            max_accept_backlog: 4096,
            syncookies: true,
            tcb: TcbConfig::default(),
            socket: TcpSocketOptions::default(),
            timer_tick: Duration::from_millis(1),
        }
    }
}

/// The 4-tuple a connection is found by: local and remote address and port, packed
/// in 96 bits. Hashed as one `u128` (one multiply of the map's hasher), not field by
/// field as a pair of `SocketAddrV4` would be (four): the lookup runs on every
/// segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FourTuple(u128);

impl FourTuple {
    #[inline(always)]
    pub fn new(local: SocketAddrV4, remote: SocketAddrV4) -> FourTuple {
        FourTuple(
            u128::from(local.ip().to_bits()) << 64
                | u128::from(local.port()) << 48
                | u128::from(remote.ip().to_bits()) << 16
                | u128::from(remote.port()),
        )
    }
}

impl core::hash::Hash for FourTuple {
    #[inline(always)]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.0);
    }
}

/// Bookkeeping the table keeps beside each TCB.
#[derive(Debug)]
pub(crate) struct Conn {
    pub tcb: Tcb,
    /// The application holds a handle (accepted or connected, not yet closed).
    pub owned: bool,
    /// The listener it came from, until accepted.
    pub listener: Option<SlabKey>,
    /// It sits in that listener's accept queue.
    pub queued: bool,
    /// The deadline the wheel will wake it for (stale wheel entries are ignored).
    pub wheel_at: Option<Instant>,
    /// It is on the output list.
    pub dirty: bool,
    /// It is on the event list.
    pub evented: bool,
}

impl Conn {
    /// Report the connection's (`key`) pending events on the list `evented`, if the
    /// application holds it and it is not listed yet; for callers that hold the
    /// connection already, which saves a lookup.
    #[inline]
    pub fn mark_evented(&mut self, key: SlabKey, evented: &mut VecDeque<TcpSocketRef>) {
        if self.owned && self.tcb.events != 0 && !self.evented {
            self.evented = true;
            evented.push_back(TcpSocketRef::Connection(TcpHandle(key)));
        }
    }

    /// Put the connection (`key`) on the output list `dirty` unless it is on it: the
    /// body of [`TcpTable::mark_dirty`] for callers that hold the connection already
    /// (and the list beside it), which saves the lookup.
    #[inline]
    pub fn mark_dirty(&mut self, key: SlabKey, dirty: &mut Vec<SlabKey>) {
        if !self.dirty {
            self.dirty = true;
            push_dirty(dirty, key);
        }
    }

    /// What follows a segment's arrival on the connection (`key`; the table's lists
    /// it may join are passed beside it): the output list, whose pass sends what is
    /// owed and then settles it; unless that pass would do no more than post its
    /// events, as for most segments whose ACK is delayed. Then they are posted here,
    /// and the pass (its lookup, the ladder, the settle) is skipped.
    ///
    /// That is exactly what the pass would have done, and in the same order, when:
    /// - it owes nothing ([`Tcb::owes_nothing`]: the ladder would change nothing) in
    ///   a state for which `settle` only rearms and posts events (no listener, not
    ///   finished);
    /// - the wheel holds what its deadlines need, so the rearm would do nothing (and
    ///   the wheel is not touched before this poll's timers run);
    /// - the output list is empty, so this is the settle the pass would have made
    ///   first; and its events are posted now or not at all this poll (not owned,
    ///   posted already, or some to post), so a later settle in this poll posts
    ///   nothing ahead of the others' events.
    ///
    /// `predicted`: the segment took header prediction's path, which leaves less to
    /// ask ([`Tcb::owes_nothing_predicted`]).
    #[inline]
    pub fn after_input(
        &mut self,
        key: SlabKey,
        dirty: &mut Vec<SlabKey>,
        evented: &mut VecDeque<TcpSocketRef>,
        predicted: bool,
    ) {
        if !self.dirty
            && dirty.is_empty()
            && self.listener.is_none()
            && (!self.owned || self.evented || self.tcb.events != 0)
            && if predicted {
                self.tcb.owes_nothing_predicted()
            } else {
                self.tcb.owes_nothing()
            }
            && match self.wheel_at {
                Some(w) => !self.tcb.deadline_before(w),
                None => self.tcb.next_deadline().is_none(),
            }
        {
            if self.owned && !self.evented {
                self.evented = true;
                evented.push_back(TcpSocketRef::Connection(TcpHandle(key)));
            }
            return;
        }
        // `mark_dirty` with the push inline: this is the path of most segments.
        if !self.dirty {
            self.dirty = true;
            dirty.push(key);
        }
    }
}

/// [`Conn::mark_dirty`]'s push, out of line: inlined there, it made the socket calls
/// (`tcp_send`) too big to be inlined into the application's loop, which cost more
/// than the call. The input path pushes inline (see [`Conn::after_input`]).
///
/// The list nearly always has room (it keeps its allocation across polls): that case
/// is a leaf, with no registers to save, and growing is a call of its own.
#[inline(never)]
fn push_dirty(dirty: &mut Vec<SlabKey>, key: SlabKey) {
    if dirty.len() == dirty.capacity() {
        return push_dirty_grow(dirty, key);
    }
    dirty.push(key);
}

/// [`push_dirty`] when the list must grow first.
#[cold]
#[inline(never)]
fn push_dirty_grow(dirty: &mut Vec<SlabKey>, key: SlabKey) {
    dirty.push(key);
}

/// The TCP state of one stack.
#[derive(Debug)]
pub(crate) struct TcpTable {
    pub config: TcpConfig,
    pub conns: Slab<Conn>,
    pub demux: HashMap<FourTuple, SlabKey>,
    /// The last tuple [`lookup`](Self::lookup) found in `demux`, or the last one a
    /// listener's new connection took, and its connection: a segment is most often for
    /// the connection the one before was for (or, after a SYN, the one it made), and
    /// the compare spares the hash and the probe. Always what `demux` maps that tuple
    /// to: entries are only ever added for tuples absent from the map, and
    /// [`remove`](Self::remove), the only place one leaves it, forgets the memo.
    pub demux_last: Option<(FourTuple, SlabKey)>,
    pub listeners: Slab<Listener>,
    pub listen_map: HashMap<(Ipv4Addr, u16), SlabKey>,
    /// How many of `listen_map`'s listeners are bound to one address (not 0.0.0.0):
    /// while none is, a segment's listener can only be a wildcard one, and
    /// [`find_listener`](Self::find_listener) asks the map once, not twice. Kept by
    /// [`bind_listener`](Self::bind_listener) and
    /// [`unbind_listener`](Self::unbind_listener), the only writers of the map.
    addr_listeners: usize,
    /// The one listener of `listen_map`, with its address, while it holds exactly one
    /// (a server's usual case): a segment's listener is then that one or none, found by
    /// a compare rather than a hash and a probe. Kept by
    /// [`bind_listener`](Self::bind_listener) and
    /// [`unbind_listener`](Self::unbind_listener).
    sole_listener: Option<(SocketAddrV4, SlabKey)>,
    pub wheel: TimerWheel<SlabKey>,
    /// The output list: connections with something to send or to settle, in the
    /// order they were touched. The output pass walks it (entries added meanwhile
    /// included) and then clears it: a `Vec` rather than a queue, whose pops cost
    /// more, as it is emptied whole.
    pub dirty: Vec<SlabKey>,
    /// Connections owing an ACK at the next poll ([`Tcb::ack_next`]); drained at the
    /// start of every poll, so it holds at most what one poll received.
    pub ack_next: Vec<SlabKey>,
    pub evented: VecDeque<TcpSocketRef>,
    pub isn: IsnGenerator,
    pub cookies: SynCookies,
    /// Scratch for expired timers (kept to avoid allocating per poll).
    pub expired: Vec<(SlabKey, Instant)>,
    /// Connections reset because their listener's accept queue was full.
    pub overflows: u64,
    /// Ring storage of finished connections, for new ones.
    pub bufs: buffer::BufferCache,
    /// Sent-log storage of finished connections, for new ones (see
    /// [`sent::SentLog::pass_storage`]).
    pub spare_logs: Vec<sent::SentLog>,
    /// A new connection's RTT estimator, made once (see [`Self::new_rtt`]).
    rtt_template: rtt::RttEstimator,
}

/// Schedule the connection's earliest deadline in the wheel if it is earlier than the
/// one the wheel holds for it (a later one waits: the wheel wakes it early and it
/// re-arms then). True when that left a stale entry behind (lazy cancellation), for
/// the caller's purge check.
///
/// Inline, with the scheduling out of line: after nearly every burst the deadlines
/// moved later or not at all, and the answer is one pass over the timers.
#[inline]
fn rearm(wheel: &mut TimerWheel<SlabKey>, key: SlabKey, c: &mut Conn) -> bool {
    match c.wheel_at {
        Some(w) if !c.tcb.deadline_before(w) => false,
        _ => schedule(wheel, key, c),
    }
}

/// [`rearm`] when the wheel holds no entry for the connection or a later one than its
/// deadline. In the second case the question already found the deadline (leaving
/// the wheel's entry stale: true); in the first, the timers are looked at.
#[inline(never)]
fn schedule(wheel: &mut TimerWheel<SlabKey>, key: SlabKey, c: &mut Conn) -> bool {
    let stale = c.wheel_at.is_some();
    let d = if stale {
        c.tcb.timers.earliest_after_any_before()
    } else {
        let Some(d) = c.tcb.next_deadline() else {
            return false;
        };
        handshake_wake(&c.tcb, d)
            .filter(|&early| wheel.after_current_tick(early))
            .unwrap_or(d)
    };
    c.wheel_at = Some(d);
    wheel.schedule(key, d);
    stale
}

/// An earlier first wake than the connection's earliest deadline `d`, during a
/// handshake: its SYN (or SYN-ACK) waits out the initial RTO (1 s), and it is woken
/// one minimum RTO after that segment went out instead (if that is earlier). That is
/// no later than any retransmission timer armed from then on (each is at least the
/// minimum RTO after the instant it is armed): when the handshake completes and the
/// data's timer replaces the SYN's, as it does at once in nearly every connection,
/// the wheel's entry already covers it, where waiting for `d` would take a second
/// entry (and a second schedule) for the earlier deadline.
///
/// The wheel's entries are hints (see [`timer`]): an early wake fires nothing (each
/// timer is checked against the clock) and re-arms for the deadline then, which a
/// handshake slower than the minimum RTO pays once: the caller takes the early wake
/// only while it lies beyond the wheel's current tick, which it no longer does once
/// it woke the connection (else that would be woken again at once).
#[inline]
fn handshake_wake(tcb: &Tcb, d: Instant) -> Option<Instant> {
    if !matches!(tcb.state, State::SynSent | State::SynReceived) || tcb.retransmits != 0 {
        return None;
    }
    let early = tcb
        .last_send
        .total_micros()
        .saturating_add(tcb.rtt.min_rto_micros());
    (early < d.total_micros()).then_some(Instant::from_micros(early))
}

/// [`TcpTable::settle`]'s common case, for a connection at hand (`key`; the table's
/// wheel and event list passed beside it): one neither finished nor waiting for accept
/// posts its events and (re)arms its timer. `Some(stale)`, `stale` when that left a
/// stale wheel entry (see [`rearm`]) for the caller's purge check; `None` when the
/// connection needs the full settle.
#[inline]
pub(crate) fn settle_live(
    wheel: &mut TimerWheel<SlabKey>,
    evented: &mut VecDeque<TcpSocketRef>,
    key: SlabKey,
    c: &mut Conn,
) -> Option<bool> {
    if c.listener.is_some() || matches!(c.tcb.state, State::Closed | State::TimeWait) {
        return None;
    }
    c.mark_evented(key, evented);
    Some(rearm(wheel, key, c))
}

/// Stale timer entries (of connections gone or deadlines moved) the wheel may hold
/// beyond twice the live connections before they are purged in bulk.
const WHEEL_STALE_SLACK: usize = 4096;

/// Ring buffers the stack keeps for reuse (see [`buffer::BufferCache`]): enough for a
/// few connections opening and closing at once, at most 2 MiB.
const BUF_CACHE_BUFFERS: usize = 32;
const BUF_CACHE_MAX_LEN: usize = 64 * 1024;

/// Sent logs kept for reuse, as many as ring buffers, and only small ones (a bulk
/// sender's log is not held on to): at most 32 × 256 entries.
const SPARE_LOGS: usize = BUF_CACHE_BUFFERS;
const SPARE_LOG_MAX_ENTRIES: usize = 256;

impl TcpTable {
    pub fn new(config: TcpConfig, rand: &mut Rand, now: Instant) -> Self {
        TcpTable {
            conns: Slab::new(config.max_connections),
            demux: crate::new_map(rand.next_u64()),
            demux_last: None,
            listeners: Slab::new(config.max_listeners),
            listen_map: crate::new_map(rand.next_u64()),
            addr_listeners: 0,
            sole_listener: None,
            wheel: TimerWheel::new(config.timer_tick, 4096, now),
            dirty: Vec::new(),
            ack_next: Vec::new(),
            evented: VecDeque::new(),
            isn: IsnGenerator::new(rand),
            cookies: SynCookies::new(rand),
            expired: Vec::new(),
            overflows: 0,
            bufs: buffer::BufferCache::new(BUF_CACHE_BUFFERS, BUF_CACHE_MAX_LEN),
            spare_logs: Vec::new(),
            rtt_template: rtt::RttEstimator::new(config.tcb.rto),
            config,
        }
    }

    /// The RTT estimator a new connection starts with: `RttEstimator::new` of the
    /// configuration's RTO bounds, copied from the one made when the table was (unless
    /// the configuration changed since).
    #[inline]
    pub fn new_rtt(&self) -> rtt::RttEstimator {
        if self.rtt_template.config() == self.config.tcb.rto {
            self.rtt_template.clone()
        } else {
            rtt::RttEstimator::new(self.config.tcb.rto)
        }
    }

    /// The connection `tuple` maps to in `demux`, through the one-entry memo.
    #[inline]
    pub fn lookup(&mut self, tuple: FourTuple) -> Option<SlabKey> {
        if let Some((t, key)) = self.demux_last {
            if t == tuple {
                return Some(key);
            }
        }
        let key = self.demux.get(&tuple).copied()?;
        self.demux_last = Some((tuple, key));
        Some(key)
    }

    /// Put a connection on the output list.
    pub fn mark_dirty(&mut self, key: SlabKey) {
        if let Some(c) = self.conns.get_mut(key) {
            c.mark_dirty(key, &mut self.dirty);
        }
    }

    /// The listener for a segment to `local`: bound to that address, or to any.
    pub fn find_listener(&self, local: SocketAddrV4) -> Option<SlabKey> {
        if let Some((at, key)) = self.sole_listener {
            // What the lookups below would answer with one listener in the map.
            let ip_ok = at.ip().is_unspecified() || at.ip() == local.ip();
            return (at.port() == local.port() && ip_ok).then_some(key);
        }
        let bound = if self.addr_listeners == 0 {
            // No listener is bound to one address: that lookup would miss.
            None
        } else {
            self.listen_map.get(&(*local.ip(), local.port()))
        };
        bound
            .or_else(|| self.listen_map.get(&(Ipv4Addr::UNSPECIFIED, local.port())))
            .copied()
    }

    /// Map `local` to the listener `key` (the caller checked that it is free).
    pub(crate) fn bind_listener(&mut self, local: SocketAddrV4, key: SlabKey) {
        if self
            .listen_map
            .insert((*local.ip(), local.port()), key)
            .is_none()
            && !local.ip().is_unspecified()
        {
            self.addr_listeners += 1;
        }
        self.note_sole_listener();
    }

    /// Unmap the listener bound to `local`.
    pub(crate) fn unbind_listener(&mut self, local: SocketAddrV4) {
        if self
            .listen_map
            .remove(&(*local.ip(), local.port()))
            .is_some()
            && !local.ip().is_unspecified()
        {
            self.addr_listeners -= 1;
        }
        self.note_sole_listener();
    }

    /// Work out [`sole_listener`](Self::sole_listener) again after `listen_map` changed.
    fn note_sole_listener(&mut self) {
        self.sole_listener = if self.listen_map.len() == 1 {
            self.listen_map
                .iter()
                .next()
                .map(|(&(ip, port), &key)| (SocketAddrV4::new(ip, port), key))
        } else {
            None
        };
    }

    /// Give a new connection's `log` the storage of a finished one, if one is spare
    /// (the table's `spare_logs`, passed apart: the caller holds the connection).
    #[inline]
    pub fn supply_log(spare_logs: &mut Vec<sent::SentLog>, log: &mut sent::SentLog) {
        if log.capacity() == 0 {
            if let Some(mut spare) = spare_logs.pop() {
                spare.pass_storage(log);
            }
        }
    }

    /// Keep the storage of a log whose connection will send no more.
    fn reclaim_log(spare_logs: &mut Vec<sent::SentLog>, log: &mut sent::SentLog) {
        let cap = log.capacity();
        if cap != 0 && cap <= SPARE_LOG_MAX_ENTRIES && spare_logs.len() < SPARE_LOGS {
            let mut spare = sent::SentLog::default();
            log.pass_storage(&mut spare);
            spare_logs.push(spare);
        }
    }

    /// Free a connection's slot and its 4-tuple.
    pub fn remove(&mut self, key: SlabKey) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        self.bufs.reclaim(&mut c.tcb.snd_buf);
        self.bufs.reclaim(&mut c.tcb.rcv_buf);
        Self::reclaim_log(&mut self.spare_logs, &mut c.tcb.sent);
        let tuple = FourTuple::new(c.tcb.local, c.tcb.remote);
        let (listener, queued) = (c.listener, c.queued);
        // Dropped where it lies: a connection is too big to move out just to drop it.
        self.conns.delete(key);
        // One lookup, not a get then a remove: the tuple maps to this connection unless
        // a newer one took it over.
        if let hashbrown::hash_map::Entry::Occupied(e) = self.demux.entry(tuple) {
            if *e.get() == key {
                e.remove();
                self.demux_last = None;
            }
        }
        if let Some(l) = listener.and_then(|l| self.listeners.get_mut(l)) {
            l.forget(key, queued);
        }
        self.purge_stale_timers();
    }

    /// The wheel cancels lazily: a connection that goes away, or whose deadline moves
    /// earlier, leaves an entry behind that is ignored when it fires. At a high
    /// connection rate (each one leaves a 60 s TIME-WAIT entry) those would pile up
    /// by the million and be walked at every refill; once they outnumber the live
    /// connections twice over (plus a slack, so the purge is amortized), drop them.
    ///
    /// Inline, the purge itself out of line: asked at every connection's end and at
    /// every stale entry left, it nearly always finds nothing to do.
    #[inline]
    pub(crate) fn purge_stale_timers(&mut self) {
        if self.wheel.len() > 2 * self.conns.len() + WHEEL_STALE_SLACK {
            self.purge_wheel();
        }
    }

    #[cold]
    #[inline(never)]
    fn purge_wheel(&mut self) {
        let conns = &self.conns;
        self.wheel
            .retain(|key, at| conns.get(key).is_some_and(|c| c.wheel_at == Some(at)));
    }

    /// After anything touched a connection: free it if it is done and nobody holds
    /// it, hand it to its listener's accept queue once established, and (re)arm its
    /// timer.
    ///
    /// The output pass, its caller, settles a connection neither finished nor waiting
    /// for accept with [`settle_live`] and calls this only for the others, so the
    /// common case is not asked about again here: for such a connection, what follows
    /// does what `settle_live` does (its events and its timer) and no more.
    pub fn settle(&mut self, key: SlabKey) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.tcb.state == State::Closed && !c.owned {
            self.remove(key);
            return;
        }
        // The rest with the connection at hand too (the table's other parts borrowed
        // beside it): these run at every segment of a handshake or a close.
        if c.tcb.state == State::TimeWait {
            if (c.tcb.snd_buf.allocated() != 0 || c.tcb.rcv_buf.allocated() != 0)
                && c.tcb.snd_buf.is_empty()
                && (!c.owned || c.tcb.rcv_buf.is_empty())
            {
                // TIME-WAIT only answers retransmitted FINs: nothing more can be sent
                // or arrive, and what was received is read (or nobody can read it).
                // Its rings go to the next connection rather than wait out 2 MSL.
                self.bufs.reclaim(&mut c.tcb.snd_buf);
                self.bufs.reclaim(&mut c.tcb.rcv_buf);
            }
            if c.tcb.sent.is_empty() {
                // Likewise its sent log: everything it sent was acknowledged.
                Self::reclaim_log(&mut self.spare_logs, &mut c.tcb.sent);
            }
        }
        if let (Some(lk), false) = (c.listener, c.queued) {
            if c.tcb.state.is_synchronized() {
                match self.listeners.get_mut(lk) {
                    Some(l) => {
                        if l.push_established(key) {
                            c.queued = true;
                            // Report that the listener has connections waiting.
                            if !l.evented {
                                l.evented = true;
                                self.evented
                                    .push_back(TcpSocketRef::Listener(TcpListenerHandle(lk)));
                            }
                        } else {
                            // Accept queue full: reset rather than leave the peer
                            // hanging (Linux with tcp_abort_on_overflow).
                            c.listener = None;
                            c.tcb.owed.set_send_rst(true);
                            self.overflows += 1;
                            c.mark_dirty(key, &mut self.dirty);
                        }
                    }
                    None => c.listener = None,
                }
            }
        }
        let stale = rearm(&mut self.wheel, key, c);
        c.mark_evented(key, &mut self.evented);
        if stale {
            self.purge_stale_timers();
        }
    }
}
