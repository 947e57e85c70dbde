//! From the IP layer to TCP and back: demultiplexing by 4-tuple (a hash map, never a
//! scan), the listener path with SYN cookies, stateless RSTs (RFC 9293 §3.10.7.1), and
//! the output pass that turns what connections queued into frames.

use core::net::SocketAddrV4;

use crate::device::L4Proto;
use crate::device::{Device, RxMeta};
use crate::iface::ipv4::{L4Offload, TcpPathOut};
use crate::iface::route::RouteTable;
use crate::iface::{Port, PortLimits};
use crate::socket::SlabKey;
use crate::stats::{DropReason, Stats};
use crate::tcp::buffer::RingBuffer;
use crate::tcp::input::{InputOutcome, TcpDrop};
use crate::tcp::output::OutSegment;
use crate::tcp::syncookie::CookieOptions;
use crate::tcp::tcb::{OpenParams, State, Tcb};
use crate::tcp::{Conn, FourTuple, TcpTable};
use crate::time::Instant;
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{self, Flags, HeaderLayout, TcpChecksum, TcpRepr, TcpTimestamp};
use crate::wire::{Error, IpProtocol, Ipv4Addr};
use crate::Stack;

fn drop_reason(d: TcpDrop) -> DropReason {
    match d {
        TcpDrop::OutOfWindow => DropReason::TcpOutOfWindow,
        TcpDrop::Paws => DropReason::TcpPaws,
        TcpDrop::NoAck => DropReason::TcpNoAck,
        TcpDrop::BadAck => DropReason::TcpBadAck,
        TcpDrop::Challenged => DropReason::TcpChallenged,
        TcpDrop::ChallengeLimited => DropReason::TcpChallengeLimited,
        TcpDrop::ReassemblyFull => DropReason::TcpReassemblyFull,
    }
}

impl Stack {
    /// A TCP segment from `src` to `dst`, one of our unicast addresses (a datagram to a
    /// broadcast address is dropped before: RFC 9293 §3.9.1, TCP is unicast only).
    ///
    /// Inlined into its two callers, the IPv4 input's unicast fast path (in the
    /// poll loop) and [`deliver`](Stack::deliver) for the rest: out of line it was a
    /// frame of its own between the poll and `input_conn` (callgrind: rr 62
    /// instructions a transaction more, crr 220 a connection).
    #[inline(always)]
    pub(crate) fn input_tcp<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        (src, dst): (Ipv4Addr, Ipv4Addr),
        payload: &[u8],
        meta: RxMeta,
    ) {
        let packet = match tcp::Packet::new_checked(payload) {
            Ok(p) => p,
            Err(Error::BadHeaderLength) => return self.stats.drop(DropReason::TcpMalformed),
            Err(_) => return self.stats.drop(DropReason::TcpTruncated),
        };
        let verify = !(meta.l4_csum_ok || meta.l4_csum_partial);
        // Borrowed where it was parsed: the repr is big, and moving it out of the
        // `Result` would copy it.
        let parsed = TcpRepr::parse(&packet, src, dst, verify);
        let seg = match &parsed {
            Ok(r) => r,
            Err(Error::BadChecksum) => return self.stats.drop(DropReason::TcpBadChecksum),
            Err(Error::BadOption) => return self.stats.drop(DropReason::TcpBadOption),
            Err(Error::Truncated) => return self.stats.drop(DropReason::TcpTruncated),
            Err(_) => return self.stats.drop(DropReason::TcpMalformed),
        };
        self.stats.tcp_rx += 1;
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);

        if let Some(key) = self.tcp.lookup(FourTuple::new(local, remote)) {
            // The segment is asked first: only a SYN may reuse a connection's tuple, and
            // every other segment goes on to its connection without a lookup here.
            let reuse = seg.flags.contains(Flags::SYN)
                && seg.ack_number.is_none()
                && self.tcp.conns.get(key).is_some_and(|c| {
                    c.tcb.state == State::TimeWait && time_wait_reusable(&c.tcb, seg)
                });
            if reuse {
                // RFC 6191 / RFC 9293 §3.6.1: a new SYN may end TIME-WAIT early when
                // it is provably newer than the old connection.
                self.tcp.remove(key);
            } else {
                if self.input_conn(now, key, seg) {
                    self.reset_for_conn(now, ports, src, dst, seg);
                }
                return;
            }
        }
        if let Some(lk) = self.tcp.find_listener(local) {
            return self.input_listener(now, ports, lk, local, remote, seg);
        }
        self.stats.drop(DropReason::TcpNoSocket);
        if !seg.flags.contains(Flags::RST) {
            self.send_reset_for(now, ports, local, remote, seg);
        }
    }

    /// A segment for the connection `key`. True when the segment is to be answered
    /// with a reset ([`reset_for_conn`](Self::reset_for_conn), which the caller
    /// makes): what that needs (the ports, the addresses) then need not be kept
    /// across the connection's input, the path of every segment.
    #[must_use]
    fn input_conn(&mut self, now: Instant, key: SlabKey, seg: &TcpRepr<'_>) -> bool {
        let tcp = &mut self.tcp;
        let Some(c) = tcp.conns.get_mut(key) else {
            return false;
        };
        if !seg.payload.is_empty() && c.tcb.rcv_buf.allocated() == 0 {
            tcp.bufs.supply(&mut c.tcb.rcv_buf);
        }
        let ack_next = c.tcb.ack_next;
        let outcome = c.tcb.input(now, seg);
        if c.tcb.ack_next && !ack_next {
            tcp.ack_next.push(key);
        }
        let predicted = outcome == InputOutcome::Predicted;
        c.after_input(key, &mut tcp.dirty, &mut tcp.evented, predicted);
        match outcome {
            InputOutcome::Ok | InputOutcome::Predicted => false,
            InputOutcome::Dropped(d) => {
                self.stats.drop(drop_reason(d));
                false
            }
            InputOutcome::SendReset => true,
        }
    }

    /// The reset [`input_conn`](Self::input_conn) asked for: the segment from `src`
    /// to `dst` was not acceptable to its connection (RFC 9293 §3.10.7.3).
    #[cold]
    #[inline(never)]
    fn reset_for_conn<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr<'_>,
    ) {
        self.stats.drop(DropReason::TcpBadAck);
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        self.send_reset_for(now, ports, local, remote, seg);
    }

    /// A segment for a listener: a SYN opens a connection (or gets a cookie), the ACK
    /// of a cookie handshake makes one, anything else is reset.
    fn input_listener<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        lk: SlabKey,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
    ) {
        let f = seg.flags;
        if f.contains(Flags::RST) {
            return self.stats.drop(DropReason::TcpNoSocket);
        }
        if let Some(ack) = seg.ack_number {
            if f.contains(Flags::SYN) || !self.tcp.config.syncookies {
                self.stats.drop(DropReason::TcpNoSocket);
                return self.send_reset_for(now, ports, local, remote, seg);
            }
            // Possibly the final ACK of a handshake we answered with a cookie.
            let client_isn = seg.seq_number - 1usize;
            let cookie = ack - 1usize;
            let tsecr = seg.timestamp.map(|t| t.tsecr);
            let checked = self
                .tcp
                .cookies
                .check(now, local, remote, client_isn, cookie, tsecr);
            let Some(opts) = checked else {
                self.stats.drop(DropReason::TcpBadCookie);
                return self.send_reset_for(now, ports, local, remote, seg);
            };
            let room = self.tcp.listeners.get(lk).is_some_and(|l| l.has_room());
            if !room {
                return self.stats.drop(DropReason::TcpAcceptQueueFull);
            }
            let ts_offset = self.tcp.isn.ts_offset(local, remote);
            let Some(key) =
                self.new_passive(now, lk, local, remote, (cookie, ts_offset), seg, Some(opts))
            else {
                return;
            };
            if self.input_conn(now, key, seg) {
                self.reset_for_conn(now, ports, *remote.ip(), *local.ip(), seg);
            }
            return;
        }
        if !f.contains(Flags::SYN) {
            // RFC 9293 §3.10.7.2: anything else to a listener is dropped.
            return self.stats.drop(DropReason::TcpNoSocket);
        }
        let (embryonic, room) = match self.tcp.listeners.get(lk) {
            Some(l) => (l.embryonic, l.has_room()),
            None => return,
        };
        if embryonic >= self.tcp.config.syn_backlog || !room {
            if !self.tcp.config.syncookies {
                return self.stats.drop(DropReason::TcpSynBacklogFull);
            }
            return self.send_syn_cookie(now, ports, local, remote, seg);
        }
        let isn = self.tcp.isn.open(now, local, remote);
        // On the output list from the start: the SYN-ACK is owed.
        self.new_passive(now, lk, local, remote, isn, seg, None);
    }

    /// Make a connection for a listener: from a SYN (SYN-RECEIVED, the SYN-ACK is owed)
    /// or from a validated cookie (ESTABLISHED once the ACK is processed), with our ISN
    /// (RFC 6528's, or the cookie) and timestamp offset.
    ///
    /// Kept out of line: once per connection, it would only bloat the per-segment path it
    /// is reached from.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn new_passive(
        &mut self,
        now: Instant,
        lk: SlabKey,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        (iss, ts_offset): (SeqNumber, u32),
        seg: &TcpRepr<'_>,
        cookie: Option<CookieOptions>,
    ) -> Option<SlabKey> {
        let our_mss = self.mss_for(*remote.ip());
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
        // Held throughout (the table's parts are borrowed apart): one lookup.
        let listener = tcp.listeners.get_mut(lk)?;
        let opts = &listener.opts;
        let made = tcp.conns.insert_with_mut(|| Conn {
            tcb: Tcb::with_rtt(now, open, *config, *opts, rtt),
            owned: false,
            listener: Some(lk),
            queued: false,
            wheel_at: None,
            // On the output list (below): a SYN-ACK is owed, or, made from a cookie,
            // whatever the ACK it came with calls for.
            dirty: true,
            evented: false,
        });
        let Some((key, conn)) = made else {
            self.stats.drop(DropReason::TcpTooManyConnections);
            return None;
        };
        tcp.dirty.push(key);
        // Set up where it lies (a TCB is too big to build aside and move in), with no
        // lookup: the slab handed it back.
        let tcb = &mut conn.tcb;
        TcpTable::supply_log(&mut tcp.spare_logs, &mut tcb.sent);
        tcb.passive = true;
        match cookie {
            None => {
                tcb.irs = seg.seq_number;
                tcb.rcv_nxt = seg.seq_number + 1u32;
                tcb.rcv_adv = tcb.rcv_nxt;
                tcb.negotiate(now, seg);
                tcb.snd_wnd = u32::from(seg.window_len);
                tcb.snd_wl1 = seg.seq_number;
                tcb.set_state(State::SynReceived);
            }
            Some(c) => {
                // The SYN is long gone: rebuild what it told us from the cookie.
                tcb.irs = seg.seq_number - 1usize;
                tcb.rcv_nxt = seg.seq_number;
                tcb.rcv_adv = tcb.rcv_nxt;
                tcb.snd_una = iss;
                tcb.snd_nxt = iss + 1u32;
                tcb.snd_max = tcb.snd_nxt;
                tcb.sack_ok = c.sack_ok && config.sack;
                match c.wscale {
                    Some(ws) if config.window_scaling => {
                        tcb.snd_wscale = ws;
                        tcb.ws_agreed = true;
                    }
                    _ => tcb.rcv_wscale = 0,
                }
                if let Some(ts) = seg.timestamp.filter(|_| config.timestamps) {
                    tcb.ts_ok = true;
                    tcb.ts_recent = ts.tsval;
                    tcb.ts_recent_at = now;
                }
                tcb.set_peer_mss(Some(c.mss));
                tcb.set_state(State::SynReceived);
            }
        }
        let tuple = FourTuple::new(local, remote);
        tcp.demux.insert(tuple, key);
        // The memo names the new connection: the peer's next segment (the handshake's
        // ACK) is for it, and finds it without a hash and a probe. It holds what
        // `demux` maps the tuple to, as the memo must.
        tcp.demux_last = Some((tuple, key));
        listener.embryonic += 1;
        self.stats.tcp_passive_opens += 1;
        Some(key)
    }

    /// TCP payload bytes the device toward `dst` segments in one frame (0: no TSO),
    /// given the stack's `port_limits` and `routes` (not `self`, so that a connection
    /// may stay borrowed meanwhile).
    fn tso_for(port_limits: &[PortLimits], routes: &RouteTable, dst: Ipv4Addr) -> usize {
        if let [only] = port_limits {
            // One interface (the common host): whatever the route, the segment leaves
            // there or not at all; no lookup per segment.
            return only.tso_max.saturating_sub(40 + 60);
        }
        routes
            .lookup(dst)
            .and_then(|r| port_limits.get(r.iface))
            .map_or(0, |p| p.tso_max.saturating_sub(40 + 60))
    }

    /// The MSS to advertise toward `dst`: the outgoing interface's MTU less 40.
    pub(crate) fn mss_for(&self, dst: Ipv4Addr) -> u16 {
        // The output path's memo first: it names the interface the table's route to
        // `dst` takes (and one that exists), as the scan below would find it; a
        // connection's peer is usually where the stack sent last.
        let iface = match self.route_memo.get(dst, self.routes.generation()) {
            Some(hop) => Some(hop.iface),
            None => self.routes.lookup(dst).map(|r| r.iface),
        };
        // Before the first poll the device's MTU is not known yet: assume Ethernet's.
        let mtu = iface
            .and_then(|i| {
                let dev = self.port_limits.get(i).map_or(1500, |p| p.mtu);
                let cfg = self.ifaces.get(i)?.mtu;
                Some(cfg.map_or(dev, |m| m.min(dev)))
            })
            .unwrap_or(576);
        u16::try_from(mtu.saturating_sub(40))
            .unwrap_or(u16::MAX)
            .max(88)
    }

    /// Answer a SYN without keeping state: the ISN is a cookie (RFC 4987 §3.6).
    fn send_syn_cookie<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
    ) {
        let peer_mss = seg
            .max_seg_size
            .unwrap_or(536)
            .min(self.mss_for(*remote.ip()));
        let (cookie, mss) = self
            .tcp
            .cookies
            .generate(now, local, remote, seg.seq_number, peer_mss);
        let cfg = self.tcp.config.tcb;
        let wscale = (cfg.window_scaling && seg.window_scale.is_some())
            .then(|| crate::tcp::tcb::wscale_for(self.tcp.config.socket.rcv_buf));
        let sack_ok = cfg.sack && seg.sack_permitted;
        let timestamp = match (cfg.timestamps, seg.timestamp) {
            (true, Some(ts)) => {
                let now_ts =
                    (now.total_millis() as u32).wrapping_add(self.tcp.isn.ts_offset(local, remote));
                let opts = CookieOptions {
                    mss,
                    wscale: seg.window_scale.map(|w| w.min(14)),
                    sack_ok,
                };
                Some(TcpTimestamp {
                    tsval: self.tcp.cookies.timestamp(now_ts, &opts),
                    tsecr: ts.tsval,
                })
            }
            _ => None,
        };
        let reply = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            flags: Flags::SYN | Flags::ACK,
            seq_number: cookie,
            ack_number: Some(seg.seq_number + 1u32),
            window_len: self.tcp.config.socket.rcv_buf.min(65535) as u16,
            urgent_pointer: 0,
            // The MSS option tells what *we* can receive (RFC 9293 §3.7.1), as in Linux's
            // cookie SYN-ACKs; the peer's MSS is what the cookie encodes.
            max_seg_size: Some(self.mss_for(*remote.ip())),
            // Without timestamps the cookie cannot carry the scale: offer none.
            window_scale: if timestamp.is_some() { wscale } else { None },
            sack_permitted: sack_ok && timestamp.is_some(),
            sack_ranges: [None; 4],
            timestamp,
            payload: &[],
        };
        self.stats.tcp_syncookies_sent += 1;
        self.send_stateless(now, ports, *local.ip(), *remote.ip(), &reply);
    }

    /// RFC 9293 §3.10.7.1: the reset for a segment that belongs to no connection.
    pub(crate) fn send_reset_for<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
    ) {
        let (seq, ack, flags) = match seg.ack_number {
            Some(ack) => (ack, None, Flags::RST),
            None => (
                SeqNumber(0),
                Some(seg.seq_number + seg.segment_len()),
                Flags::RST | Flags::ACK,
            ),
        };
        let rst = TcpRepr::bare(local.port(), remote.port(), flags, seq, ack);
        self.stats.tcp_rst_tx += 1;
        self.send_stateless(now, ports, *local.ip(), *remote.ip(), &rst);
    }

    fn send_stateless<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr<'_>,
    ) {
        let ip = self.local_repr(src, dst, IpProtocol::Tcp, seg.header_len());
        match self.output_ipv4(now, ports, ip, |b| {
            seg.emit_header(
                &mut tcp::Packet::new_unchecked(b),
                0,
                src,
                dst,
                TcpChecksum::Compute,
            )
        }) {
            Ok(()) => self.stats.tcp_tx += 1,
            Err(reason) => self.stats.drop(reason),
        }
    }

    /// The ACKs deferred by the last poll ([`Tcb::ack_next`]) are due now.
    pub(crate) fn release_deferred_acks(&mut self) {
        let tcp = &mut self.tcp;
        for key in tcp.ack_next.drain(..) {
            if let Some(c) = tcp.conns.get_mut(key) {
                if c.tcb.ack_next {
                    c.tcb.ack_next = false;
                    c.tcb.owed.set_ack_now(true);
                    c.mark_dirty(key, &mut tcp.dirty);
                }
            }
        }
    }

    /// Wake the connections whose timers are due.
    ///
    /// Inlined into the poll loop: most polls find nothing due, and then cost a few
    /// compares, not a call that saves and restores registers for the loop below.
    #[inline]
    pub(crate) fn run_tcp_timers(&mut self, now: Instant) {
        if self.tcp.wheel.quiet(now) {
            return;
        }
        self.tcp.wheel.poll(now, &mut self.tcp.expired);
        if !self.tcp.expired.is_empty() {
            self.fire_tcp_timers(now);
        }
    }

    /// Act on the expirations the wheel handed out.
    #[inline(never)]
    fn fire_tcp_timers(&mut self, now: Instant) {
        let mut expired = core::mem::take(&mut self.tcp.expired);
        for (key, at) in expired.drain(..) {
            let Some(c) = self.tcp.conns.get_mut(key) else {
                continue;
            };
            if c.wheel_at != Some(at) {
                continue; // stale: the deadline moved since
            }
            c.wheel_at = None;
            let before = c.tcb.retransmits;
            c.tcb.on_timers(now);
            if c.tcb.retransmits > before {
                self.stats.tcp_timeouts += 1;
            }
            c.mark_dirty(key, &mut self.tcp.dirty);
        }
        self.tcp.expired = expired;
    }

    /// Send what every touched connection may send now, then settle it (timers,
    /// events, freeing).
    pub(crate) fn flush_tcp<D: Device>(&mut self, now: Instant, ports: &mut [Port<D>]) {
        if self.tcp.dirty.is_empty() {
            return;
        }
        // One slot for every segment: the TCB writes each into it in place (every
        // field), so it is kept in the stack from one pass to the next rather than
        // built afresh (the header with every option is large). Borrowed apart from
        // the connection table; the general path, which needs all of the stack, sends
        // a copy.
        let mut next = 0;
        while let Some(&key) = self.tcp.dirty.get(next) {
            next += 1;
            let Some(mut c) = self.tcp.conns.get_mut(key) else {
                continue;
            };
            c.dirty = false;
            // A bound on segments per connection per poll keeps one bulk sender from
            // starving the others; it is marked dirty again if it had more.
            let mut budget = 64;
            // The connection at the end (none if it went away), to be settled.
            let last = loop {
                if budget == 0 {
                    c.mark_dirty(key, &mut self.tcp.dirty);
                    break Some(c);
                }
                let seg = &mut self.out_seg;
                // The device's TSO limit, looked up only when a burst could use it.
                let (limits, routes) = (&self.port_limits, &self.routes);
                let remote = *c.tcb.remote.ip();
                let tso_max = || Self::tso_for(limits, routes, remote);
                if !c.tcb.next_segment(now, seg, tso_max) {
                    break Some(c);
                }
                budget -= 1;
                let (src, dst) = (*c.tcb.local.ip(), *c.tcb.remote.ip());
                let layout = seg.repr.layout_header();
                let hlen = layout.header_len();
                let want = L4Offload {
                    proto: Some(L4Proto::Tcp),
                    l4_len: hlen as u16,
                    tso_mss: seg.tso_mss,
                };
                let ip_len = hlen + seg.payload_len;
                // The path's template first: the connection stays at hand and its send
                // buffer is read where it is.
                let out = TcpPathOut {
                    path: self.tcp_path.as_ref(),
                    ifaces: &self.ifaces,
                    generation: self.routes.generation(),
                    ip_ident: &mut self.ip_ident,
                    stats: &mut self.stats,
                };
                let snd = &c.tcb.snd_buf;
                let seg = &*seg;
                let fill = |b: &mut [u8], csum: TcpChecksum| {
                    write_segment(b, csum, snd, seg, layout, src, dst);
                };
                if let Some(res) = out.send(now, ports, src, dst, ip_len, want, fill) {
                    count_tcp_tx(&mut self.stats, seg, res);
                    // The last segment owed ([`OutSegment::last`]): what asking again
                    // would have found, without the asking. Read from the slot after
                    // the send rather than kept across it (it was kept in memory); a
                    // budget run out still goes to the top, to mark the connection.
                    if seg.last && budget != 0 {
                        debug_assert!(c.tcb.owes_nothing());
                        break Some(c);
                    }
                    continue;
                }
                // The general path needs all of the stack: the connection is found
                // again after, and the segment is sent from a copy.
                let seg = *seg;
                let res = self.send_general(now, ports, key, &seg, layout, src, dst, want);
                count_tcp_tx(&mut self.stats, &seg, res);
                // The IP layer never removes a connection; the lookup is kept all the same.
                let Some(back) = self.tcp.conns.get_mut(key) else {
                    break None;
                };
                c = back;
                if seg.last && budget != 0 {
                    debug_assert!(c.tcb.owes_nothing());
                    break Some(c);
                }
            };
            // Settled with the connection at hand in the common case.
            let live = last.and_then(|c| {
                crate::tcp::settle_live(&mut self.tcp.wheel, &mut self.tcp.evented, key, c)
            });
            match live {
                Some(false) => {}
                Some(true) => self.tcp.purge_stale_timers(),
                None => self.tcp.settle(key),
            }
        }
        self.tcp.dirty.clear();
    }
}

impl Stack {
    /// Send segment `seg` of connection `key` through the general IP output path (the
    /// path's template did not hold), then learn the template for the next one. Out of
    /// line: the rare case, kept apart from the output loop (inlined there, its state
    /// was set up on every pass).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn send_general<D: Device>(
        &mut self,
        now: Instant,
        ports: &mut [Port<D>],
        key: SlabKey,
        seg: &OutSegment,
        layout: HeaderLayout,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        want: L4Offload,
    ) -> Result<(), DropReason> {
        // Lend the send buffer to the frame writer meanwhile.
        let snd = match self.tcp.conns.get_mut(key) {
            Some(c) => core::mem::replace(&mut c.tcb.snd_buf, RingBuffer::new(0)),
            None => RingBuffer::new(0),
        };
        let fill = |b: &mut [u8], offloaded: bool| {
            let csum = if offloaded {
                TcpChecksum::Offload
            } else {
                TcpChecksum::Compute
            };
            write_segment(b, csum, &snd, seg, layout, src, dst);
        };
        let ip_len = layout.header_len() + seg.payload_len;
        let mut ip = self.local_repr(src, dst, IpProtocol::Tcp, ip_len);
        // TCP does path MTU discovery: its segments are never fragmented (as Linux sets
        // DF; RFC 1191).
        ip.dont_frag = true;
        let res = self.output_ipv4_offload(now, ports, ip, want, fill);
        // The next segment on this path may take the template.
        self.learn_tcp_path(now, src, dst);
        if let Some(c) = self.tcp.conns.get_mut(key) {
            c.tcb.snd_buf = snd;
        }
        res
    }
}

/// Write segment `seg` into the IP payload `b`: its payload from the send buffer `snd`,
/// then its header (`layout`) with the checksum `csum` asks for.
#[inline(always)]
fn write_segment(
    b: &mut [u8],
    csum: TcpChecksum,
    snd: &RingBuffer,
    seg: &OutSegment,
    layout: HeaderLayout,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let hlen = layout.header_len();
    let (offset, len) = (seg.payload_offset, seg.payload_len);
    // `read_at` copies what `peek` hands out, in place for a range that does not wrap.
    snd.read_at(offset, &mut b[hlen..hlen + len]);
    let packet = &mut tcp::Packet::new_unchecked(b);
    seg.repr.emit_header_as(layout, packet, len, src, dst, csum);
}

/// The counters for a segment the IP layer took (`Ok`) or dropped.
#[inline(always)]
fn count_tcp_tx(stats: &mut Stats, seg: &OutSegment, res: Result<(), DropReason>) {
    match res {
        Ok(()) => {
            stats.tcp_tx += 1;
            if seg.retransmit {
                stats.tcp_retransmits += 1;
                stats.tcp_retransmit_bytes += seg.payload_len as u64;
            }
            if seg.repr.flags.contains(Flags::RST) {
                stats.tcp_rst_tx += 1;
            }
        }
        Err(reason) => stats.drop(reason),
    }
}

/// RFC 6191: a SYN may reuse a TIME-WAIT 4-tuple when its timestamp is newer than the
/// last one seen, or, without timestamps, when its sequence number is beyond the old
/// connection's (RFC 9293 §3.6.1, as BSD does).
fn time_wait_reusable(tcb: &Tcb, seg: &TcpRepr<'_>) -> bool {
    match (tcb.ts_ok, seg.timestamp) {
        // RFC 6191 §2: a newer timestamp, or an equal one with a newer sequence number.
        (true, Some(ts)) => {
            let d = ts.tsval.wrapping_sub(tcb.ts_recent) as i32;
            d > 0 || (d == 0 && seg.seq_number.gt(tcb.rcv_nxt))
        }
        (true, None) => false,
        (false, _) => seg.seq_number.gt(tcb.rcv_nxt),
    }
}
