//! The application's TCP calls on a [`Stack`]: listen/accept, connect, send/recv,
//! shutdown/close/abort, options, and readiness events collected in batches.

use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddrV4;

use crate::socket::Slab;
use crate::tcp::cc::{CcAlgorithm, CongestionControl};
use crate::tcp::listen::Listener;
use crate::tcp::tcb::{ConnError, Keepalive, OpenParams, State, Tcb, TcpSocketOptions};
use crate::tcp::{
    Conn, Events, FourTuple, TcpEvent, TcpHandle, TcpListenerHandle, TcpSocketRef, TcpTable,
};
use crate::time::Duration;
use crate::wire::Ipv4Addr;
use crate::Stack;

/// Errors of TCP socket calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// The handle does not name a live socket.
    InvalidHandle,
    /// The address and port are taken.
    AddrInUse,
    /// The local address is not one of the stack's.
    AddrNotAvailable,
    /// No free ephemeral port for this destination.
    NoPortsAvailable,
    /// The connection table (or listener table) is full.
    TooManyConnections,
    /// Nothing to read / no buffer space / nothing to accept, now.
    WouldBlock,
    /// No route to the destination.
    NoRoute,
    /// Destination unusable (0.0.0.0, broadcast, multicast, port 0).
    Unaddressable,
    /// The call does not fit the connection's state (send after shutdown, ...).
    InvalidState,
    /// The peer refused the connection.
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The peer stopped answering.
    TimedOut,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::InvalidHandle => "invalid tcp socket handle",
            TcpError::AddrInUse => "address in use",
            TcpError::AddrNotAvailable => "address not available",
            TcpError::NoPortsAvailable => "no ephemeral ports available",
            TcpError::TooManyConnections => "too many tcp sockets",
            TcpError::WouldBlock => "operation would block",
            TcpError::NoRoute => "no route to host",
            TcpError::Unaddressable => "unaddressable destination",
            TcpError::InvalidState => "operation not valid in this connection state",
            TcpError::ConnectionRefused => "connection refused",
            TcpError::ConnectionReset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TcpError {}

impl From<ConnError> for TcpError {
    fn from(e: ConnError) -> Self {
        match e {
            ConnError::Refused => TcpError::ConnectionRefused,
            ConnError::Reset => TcpError::ConnectionReset,
            ConnError::TimedOut => TcpError::TimedOut,
        }
    }
}

/// A snapshot of a connection's internals (like Linux's `TCP_INFO`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpInfo {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub cc: CcAlgorithm,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub srtt: Option<Duration>,
    pub rto: Duration,
    pub smss: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub timestamps: bool,
    pub sack: bool,
    pub unacked: u32,
    pub send_queued: usize,
    pub recv_queued: usize,
}

/// The IANA dynamic range (RFC 6335), as for UDP.
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

/// The connection behind the application's handle `h`, writable; from the slab alone, so
/// a caller can borrow the table's other parts (buffer cache, output list) beside it.
#[inline(always)]
fn owned_mut(conns: &mut Slab<Conn>, h: TcpHandle) -> Result<&mut Conn, TcpError> {
    conns
        .get_mut(h.0)
        .filter(|c| c.owned)
        .ok_or(TcpError::InvalidHandle)
}

/// `tcp_send` may queue data in this state: before the handshake ends (it leaves with
/// the first segments after), and until our side is closed.
#[inline(always)]
fn takes_data(state: State) -> bool {
    matches!(
        state,
        State::SynSent | State::SynReceived | State::Established | State::CloseWait
    )
}

impl Stack {
    fn conn(&self, h: TcpHandle) -> Result<&Conn, TcpError> {
        self.tcp
            .conns
            .get(h.0)
            .filter(|c| c.owned)
            .ok_or(TcpError::InvalidHandle)
    }

    fn conn_mut(&mut self, h: TcpHandle) -> Result<&mut Conn, TcpError> {
        owned_mut(&mut self.tcp.conns, h)
    }

    /// Listen on `local` (address 0.0.0.0: all of ours) with an accept queue of
    /// `backlog` connections, and the stack's default socket options.
    pub fn tcp_listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<TcpListenerHandle, TcpError> {
        let opts = self.tcp.config.socket;
        self.tcp_listen_with(local, backlog, opts)
    }

    /// [`tcp_listen`](Self::tcp_listen) with these options for accepted connections.
    pub fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        opts: TcpSocketOptions,
    ) -> Result<TcpListenerHandle, TcpError> {
        let addr = *local.ip();
        if !addr.is_unspecified() && !self.is_local_addr(addr) {
            return Err(TcpError::AddrNotAvailable);
        }
        if local.port() == 0 {
            return Err(TcpError::Unaddressable);
        }
        let taken = self.tcp.listen_map.contains_key(&(addr, local.port()))
            || self
                .tcp
                .listen_map
                .contains_key(&(Ipv4Addr::UNSPECIFIED, local.port()))
            || (addr.is_unspecified()
                && self.tcp.listen_map.keys().any(|&(_, p)| p == local.port()));
        if taken {
            return Err(TcpError::AddrInUse);
        }
        let backlog = backlog.clamp(1, self.tcp.config.max_accept_backlog);
        let key = self
            .tcp
            .listeners
            .insert(Listener::new(local, backlog, opts))
            .map_err(|_| TcpError::TooManyConnections)?;
        self.tcp.bind_listener(local, key);
        Ok(TcpListenerHandle(key))
    }

    /// Take an established connection from the listener's queue.
    pub fn tcp_accept(
        &mut self,
        l: TcpListenerHandle,
    ) -> Result<(TcpHandle, SocketAddrV4), TcpError> {
        let tcp = &mut self.tcp;
        let listener = tcp.listeners.get_mut(l.0).ok_or(TcpError::InvalidHandle)?;
        listener.evented = false;
        while let Some(key) = listener.accept.pop_front() {
            if let Some(c) = tcp.conns.get_mut(key) {
                c.listener = None;
                c.queued = false;
                c.owned = true;
                c.mark_evented(key, &mut tcp.evented);
                return Ok((TcpHandle(key), c.tcb.remote));
            }
        }
        Err(TcpError::WouldBlock)
    }

    /// Stop listening; connections not yet accepted are reset.
    pub fn tcp_close_listener(&mut self, l: TcpListenerHandle) -> Result<(), TcpError> {
        let listener = self
            .tcp
            .listeners
            .remove(l.0)
            .ok_or(TcpError::InvalidHandle)?;
        self.tcp.unbind_listener(listener.local);
        // Embryonic and queued connections lose their parent: reset them.
        let keys: Vec<_> = self
            .tcp
            .conns
            .iter()
            .filter(|(_, c)| c.listener == Some(l.0))
            .map(|(k, _)| k)
            .collect();
        for k in keys {
            if let Some(c) = self.tcp.conns.get_mut(k) {
                c.listener = None;
                c.tcb.owed.set_send_rst(true);
            }
            self.tcp.mark_dirty(k);
        }
        Ok(())
    }

    /// Open a connection to `remote` from an ephemeral port of the outgoing interface's
    /// address, with the default options.
    pub fn tcp_connect(&mut self, remote: SocketAddrV4) -> Result<TcpHandle, TcpError> {
        let opts = self.tcp.config.socket;
        self.tcp_connect_with(remote, None, opts, |_| true)
    }

    /// Open a connection with these options, from `local` if given (port 0: ephemeral),
    /// choosing an ephemeral port only among those `port_ok` accepts (a runtime uses it
    /// to pick a port whose RSS hash lands on the calling shard).
    pub fn tcp_connect_with(
        &mut self,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
        opts: TcpSocketOptions,
        mut port_ok: impl FnMut(u16) -> bool,
    ) -> Result<TcpHandle, TcpError> {
        let rip = *remote.ip();
        if rip.is_unspecified() || rip.is_broadcast() || rip.is_multicast() || remote.port() == 0 {
            return Err(TcpError::Unaddressable);
        }
        let bound = local.map_or(Ipv4Addr::UNSPECIFIED, |l| *l.ip());
        if !bound.is_unspecified() && !self.is_local_addr(bound) {
            return Err(TcpError::AddrNotAvailable);
        }
        let src = self.source_addr_for(bound, rip).ok_or(TcpError::NoRoute)?;
        let port = match local.map_or(0, |l| l.port()) {
            0 => {
                let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
                let start = self.rand.below(span);
                (0..span)
                    .map(|i| EPHEMERAL.start() + ((start + i) % span) as u16)
                    .find(|&p| {
                        port_ok(p)
                            && !self
                                .tcp
                                .demux
                                .contains_key(&FourTuple::new(SocketAddrV4::new(src, p), remote))
                    })
                    .ok_or(TcpError::NoPortsAvailable)?
            }
            p => p,
        };
        let local = SocketAddrV4::new(src, port);
        let now = self.now;
        let (iss, ts_offset) = self.tcp.isn.open(now, local, remote);
        let our_mss = self.mss_for(rip);
        let open = OpenParams {
            local,
            remote,
            iss,
            ts_offset,
            our_mss,
        };
        let tcp = &mut self.tcp;
        let rtt = tcp.new_rtt();
        // Read where it lies, not copied aside first: the TCB takes its own copy.
        let config = &tcp.config.tcb;
        // One lookup of the tuple, to see that it is free and then to take it.
        let hashbrown::hash_map::Entry::Vacant(tuple) =
            tcp.demux.entry(FourTuple::new(local, remote))
        else {
            return Err(TcpError::AddrInUse);
        };
        // Built where it will live: a TCB is too big to build aside and move in.
        let (key, conn) = tcp
            .conns
            .insert_with_mut(|| {
                let mut tcb = Tcb::with_rtt(now, open, *config, opts, rtt);
                tcb.set_state(State::SynSent);
                Conn {
                    tcb,
                    owned: true,
                    listener: None,
                    queued: false,
                    wheel_at: None,
                    // On the output list (below): the SYN is owed.
                    dirty: true,
                    evented: false,
                }
            })
            .ok_or(TcpError::TooManyConnections)?;
        tuple.insert(key);
        // No lookup: the slab handed the connection back.
        TcpTable::supply_log(&mut tcp.spare_logs, &mut conn.tcb.sent);
        tcp.dirty.push(key);
        self.stats.tcp_active_opens += 1;
        Ok(TcpHandle(key))
    }

    /// Queue as much of `data` as the send buffer takes; returns how much.
    ///
    /// Inlined into the caller, as [`tcp_recv`](Self::tcp_recv) is: the common call
    /// is a lookup, a few checks and a copy, and the result needs no trip through
    /// memory.
    #[inline(always)]
    pub fn tcp_send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, TcpError> {
        // The common call, whole: a connection that can send, with its buffer, takes
        // all of `data` in one piece, and the output list has room if it must join
        // it. What `tcp_send_any` does then, with no call on the way, so no registers
        // to save and restore; anything else is left to it.
        let tcp = &mut self.tcp;
        if let Ok(c) = owned_mut(&mut tcp.conns, h) {
            if c.tcb.error.is_none()
                && takes_data(c.tcb.state)
                && !c.tcb.fin_queued
                && c.tcb.snd_buf.fits_whole(data.len())
            {
                if !c.dirty {
                    if tcp.dirty.len() == tcp.dirty.capacity() {
                        return self.tcp_send_any(h, data);
                    }
                    // Right after the check: the push cannot grow the list.
                    tcp.dirty.push(h.0);
                    c.dirty = true;
                }
                let queued = c.tcb.snd_buf.enqueue_whole(data);
                debug_assert!(queued, "checked by fits_whole");
                return Ok(data.len());
            }
        }
        self.tcp_send_any(h, data)
    }

    /// [`tcp_send`](Self::tcp_send) in general.
    #[inline(never)]
    pub(crate) fn tcp_send_any(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, TcpError> {
        // One lookup for the whole call: the table's other parts (buffer cache, dirty
        // list) are borrowed beside the connection.
        let tcp = &mut self.tcp;
        let c = owned_mut(&mut tcp.conns, h)?;
        if let Some(e) = c.tcb.error {
            return Err(e.into());
        }
        if !takes_data(c.tcb.state) {
            return Err(TcpError::InvalidState);
        }
        if c.tcb.fin_queued {
            return Err(TcpError::InvalidState);
        }
        if c.tcb.snd_buf.allocated() == 0 && !data.is_empty() {
            tcp.bufs.supply(&mut c.tcb.snd_buf);
        }
        let n = c.tcb.snd_buf.enqueue_slice(data);
        if n == 0 && !data.is_empty() {
            return Err(TcpError::WouldBlock);
        }
        c.mark_dirty(h.0, &mut tcp.dirty);
        Ok(n)
    }

    /// Read received data into `buf`. `Ok(0)` means the peer closed its side (EOF).
    ///
    /// Inlined into the caller: a read that finds data is a lookup, a copy and the
    /// window check, and as a call it cost a call, six registers saved and restored
    /// and the result through memory. What else can happen is out of line.
    #[inline]
    pub fn tcp_recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, TcpError> {
        let c = self.conn_mut(h)?;
        let n = c.tcb.rcv_buf.dequeue_slice(buf);
        if n == 0 {
            return recv_nothing(&c.tcb, buf.is_empty());
        }
        // RFC 9293 §3.8.6.2.2 receiver SWS avoidance: announce the reopened window only
        // once it grew by min(half the buffer, one MSS).
        if window_update_due(&c.tcb, n) {
            self.owe_window_update(h);
        }
        Ok(n)
    }

    /// [`tcp_recv`](Self::tcp_recv) made room enough for a window update: it is owed
    /// and the connection joins the output list.
    #[inline(never)]
    fn owe_window_update(&mut self, h: TcpHandle) {
        if let Ok(c) = self.conn_mut(h) {
            c.tcb.owed.set_window_update(true);
        }
        self.tcp.mark_dirty(h.0);
    }

    /// No more data will be sent: a FIN follows what is queued (half-close).
    pub fn tcp_shutdown(&mut self, h: TcpHandle) -> Result<(), TcpError> {
        let c = self.conn_mut(h)?;
        shutdown(&mut c.tcb);
        self.tcp.mark_dirty(h.0);
        Ok(())
    }

    /// Close: shut down sending and release the handle; the stack finishes the close
    /// (FIN, TIME-WAIT) on its own. Unread received data makes it a reset instead, as
    /// RFC 2525 §2.17 and Linux do.
    pub fn tcp_close(&mut self, h: TcpHandle) -> Result<(), TcpError> {
        let tcp = &mut self.tcp;
        let c = owned_mut(&mut tcp.conns, h)?;
        c.owned = false;
        c.tcb.orphaned = true;
        if !c.tcb.rcv_buf.is_empty() && c.tcb.state.is_synchronized() {
            c.tcb.owed.set_send_rst(true);
        } else if c.tcb.state == State::SynSent && c.tcb.snd_buf.is_empty() {
            // RFC 9293 §3.10.4 CLOSE in SYN-SENT: nothing queued, nobody will read:
            // delete the TCB.
            c.tcb.close_now();
        } else {
            shutdown(&mut c.tcb);
        }
        // `TcpTable::mark_dirty`, with the lookup made above.
        c.mark_dirty(h.0, &mut tcp.dirty);
        Ok(())
    }

    /// Abort: reset the connection and release the handle.
    pub fn tcp_abort(&mut self, h: TcpHandle) -> Result<(), TcpError> {
        let c = self.conn_mut(h)?;
        c.owned = false;
        c.tcb.orphaned = true;
        if c.tcb.state.is_synchronized() && c.tcb.state != State::TimeWait {
            c.tcb.owed.set_send_rst(true);
        } else {
            c.tcb.close_now();
        }
        self.tcp.mark_dirty(h.0);
        Ok(())
    }

    /// The connection's state.
    pub fn tcp_state(&self, h: TcpHandle) -> Result<State, TcpError> {
        Ok(self.conn(h)?.tcb.state)
    }

    /// The connection failed: why (refused, reset, timed out).
    pub fn tcp_error(&self, h: TcpHandle) -> Result<Option<TcpError>, TcpError> {
        Ok(self.conn(h)?.tcb.error.map(Into::into))
    }

    /// Bytes that can be queued with `tcp_send` now.
    pub fn tcp_send_capacity(&self, h: TcpHandle) -> Result<usize, TcpError> {
        Ok(self.conn(h)?.tcb.snd_buf.window())
    }

    /// Bytes queued and not yet acknowledged by the peer.
    pub fn tcp_send_queued(&self, h: TcpHandle) -> Result<usize, TcpError> {
        Ok(self.conn(h)?.tcb.snd_buf.len())
    }

    /// Bytes received and not yet read.
    pub fn tcp_recv_queued(&self, h: TcpHandle) -> Result<usize, TcpError> {
        Ok(self.conn(h)?.tcb.rcv_buf.len())
    }

    /// Turn Nagle's algorithm off (true) or on.
    pub fn tcp_set_nodelay(&mut self, h: TcpHandle, nodelay: bool) -> Result<(), TcpError> {
        self.conn_mut(h)?.tcb.opts.nodelay = nodelay;
        self.tcp.mark_dirty(h.0);
        Ok(())
    }

    /// Turn keepalive on with these settings, or off.
    pub fn tcp_set_keepalive(
        &mut self,
        h: TcpHandle,
        keepalive: Option<Keepalive>,
    ) -> Result<(), TcpError> {
        let now = self.now;
        let c = self.conn_mut(h)?;
        c.tcb.opts.keepalive = keepalive;
        c.tcb.timers.set_keepalive_at(None);
        c.tcb.arm_keepalive(now);
        self.tcp.mark_dirty(h.0);
        Ok(())
    }

    /// Internals of the connection.
    pub fn tcp_info(&self, h: TcpHandle) -> Result<TcpInfo, TcpError> {
        let t = &self.conn(h)?.tcb;
        Ok(TcpInfo {
            state: t.state,
            local: t.local,
            remote: t.remote,
            cc: t.cc.algorithm(),
            cwnd: t.cc.cwnd(),
            ssthresh: t.cc.ssthresh(),
            srtt: t.rtt.srtt(),
            rto: t.rtt.rto(),
            smss: t.smss,
            snd_wnd: t.snd_wnd,
            rcv_wnd: t.rcv_wnd(),
            snd_wscale: t.snd_wscale,
            rcv_wscale: t.rcv_wscale,
            timestamps: t.ts_ok,
            sack: t.sack_ok,
            unacked: t.flight(),
            send_queued: t.snd_buf.len(),
            recv_queued: t.rcv_buf.len(),
        })
    }

    /// Connections open (all states), for tests and monitoring.
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.conns.len()
    }

    /// Move the readiness events that happened since the last call into `out`.
    pub fn tcp_events(&mut self, out: &mut Vec<TcpEvent>) {
        while let Some(r) = self.tcp.evented.pop_front() {
            match r {
                TcpSocketRef::Connection(h) => {
                    if let Some(c) = self.tcp.conns.get_mut(h.0) {
                        c.evented = false;
                        let bits = core::mem::take(&mut c.tcb.events);
                        if c.owned && bits != 0 {
                            out.push(TcpEvent {
                                socket: r,
                                events: Events(bits),
                            });
                        }
                    }
                }
                TcpSocketRef::Listener(l) => {
                    if let Some(lst) = self.tcp.listeners.get_mut(l.0) {
                        lst.evented = false;
                        if lst.pending() > 0 {
                            out.push(TcpEvent {
                                socket: r,
                                events: Events(Events::ACCEPTABLE),
                            });
                        }
                    }
                }
            }
        }
    }
}

/// The send side closes: FIN after the queued data (RFC 9293 §3.10.4 CLOSE).
fn shutdown(tcb: &mut Tcb) {
    if tcb.fin_queued {
        return;
    }
    match tcb.state {
        // RFC 9293 §3.10.4 (SYN-RECEIVED, and SYN-SENT here since tcp_send queues data
        // before the handshake completes): the FIN waits until ESTABLISHED and follows
        // the queued data; dropping the connection would lose bytes tcp_send accepted
        // and, for a half-close, the reply the application still wants to read.
        State::SynSent | State::SynReceived => tcb.queue_fin(), // FIN-WAIT-1 once established
        State::Established => {
            tcb.queue_fin();
            tcb.set_state(State::FinWait1);
        }
        State::CloseWait => {
            tcb.queue_fin();
            tcb.set_state(State::LastAck);
        }
        _ => {}
    }
}

/// What [`Stack::tcp_recv`] answers when it read nothing from the connection with
/// `tcb` (`empty`: into an empty buffer): the connection's error, end of file, or
/// nothing yet.
#[inline(never)]
fn recv_nothing(tcb: &Tcb, empty: bool) -> Result<usize, TcpError> {
    if let Some(e) = tcb.error {
        return Err(e.into());
    }
    if tcb.rcv_closed || tcb.state == State::Closed {
        return Ok(0);
    }
    if empty {
        Ok(0)
    } else {
        Err(TcpError::WouldBlock)
    }
}

/// After a read of `n` bytes (`n > 0`) from the receive buffer, the reopened window is
/// to be announced (RFC 9293 §3.8.6.2.2 receiver SWS avoidance): it grew by at least
/// min(half the buffer, one MSS) past the right edge advertised, and the read made it
/// larger.
#[inline(always)]
fn window_update_due(tcb: &Tcb, n: usize) -> bool {
    let edge = (tcb.rcv_adv - tcb.rcv_nxt).max(0) as u32;
    let threshold = (tcb.rcv_buf.capacity() as u32 / 2).min(tcb.smss);
    // The usual answer (a read smaller than the step) without the window's bound: the
    // window is at most the free space, so it cannot have grown by the threshold past
    // the edge when the free space has not.
    let free = tcb.rcv_buf.window();
    if free.saturating_sub(edge as usize) < threshold as usize {
        return false;
    }
    let wnd = tcb.rcv_wnd();
    // The window before the read, worked out after it: the free space was `n` bytes
    // less, under the same bound, which `wnd` is when it holds. Nothing is kept across
    // the copy.
    let before_wnd = (free - n).min(wnd as usize) as u32;
    let grown = wnd.saturating_sub(edge);
    tcb.state.can_receive() && grown >= threshold && wnd > before_wnd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rand;
    use crate::wire::seq::SeqNumber;

    /// `window_update_due` as it read before its early answer.
    fn window_update_due_reference(tcb: &Tcb, n: usize) -> bool {
        let wnd = tcb.rcv_wnd();
        let before_wnd = (tcb.rcv_buf.window() - n).min(wnd as usize) as u32;
        let edge = (tcb.rcv_adv - tcb.rcv_nxt).max(0) as u32;
        let grown = wnd.saturating_sub(edge);
        let threshold = (tcb.rcv_buf.capacity() as u32 / 2).min(tcb.smss);
        tcb.state.can_receive() && grown >= threshold && wnd > before_wnd
    }

    /// The early answer changes nothing: over random buffers (sizes, fill, reads),
    /// window scales, MSSs, advertised edges and states, the same decision as the
    /// reference, and both answers are met.
    #[test]
    fn window_update_due_matches_its_reference() {
        let mut rand = Rand::from_u64(7);
        let states = State::all_but(&[
            State::Closed,
            State::SynSent,
            State::Closing,
            State::TimeWait,
        ]);
        let (mut due, mut not_due) = (0, 0);
        for _ in 0..50_000 {
            let r = rand.next_u64();
            let r2 = rand.next_u64();
            let mut t = crate::tcp::tcb::random_receiver(r, &states);
            let cap = t.rcv_buf.capacity();
            // Bytes received, then `n` of them read.
            let filled = (r2 % (cap as u64 + 1)) as usize;
            let bytes = alloc::vec![0u8; filled];
            assert_eq!(t.rcv_buf.enqueue_slice(&bytes), filled);
            if filled == 0 {
                continue;
            }
            let n = 1 + ((r2 >> 24) % filled as u64) as usize;
            assert_eq!(t.rcv_buf.dequeue_allocated(n), n);
            t.rcv_nxt = SeqNumber((r >> 20) as u32);
            // The advertised edge around the free space, behind rcv_nxt at times.
            let free = t.rcv_buf.window() as i64;
            let spread = (free / 2).max(4);
            let edge = free - spread + ((r2 >> 44) as i64 % (2 * spread + 1)) - 2;
            t.rcv_adv = SeqNumber(t.rcv_nxt.0.wrapping_add(edge as u32));
            let want = window_update_due_reference(&t, n);
            assert_eq!(window_update_due(&t, n), want, "{cap} {n} {edge}");
            if want {
                due += 1;
            } else {
                not_due += 1;
            }
        }
        assert!(due > 1000 && not_due > 1000, "{due} {not_due}");
    }
}
