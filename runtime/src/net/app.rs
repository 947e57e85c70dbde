//! The shard's side of the std-like sockets: a [`ShardApp`] that carries out the
//! commands of user threads and moves bytes between the stack and the sockets' rings.

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use rumpnet_stack::tcp::{Events, TcpError, TcpEvent, TcpHandle, TcpListenerHandle, TcpSocketRef};
use rumpnet_stack::Stack;

use super::tcp::{
    Accepted, ConnShared, ListenerShared, CONNECTED, FAILED, REQ_CLOSE, REQ_NODELAY, REQ_SHUT_RD,
    REQ_SHUT_WR, RX_EOF, WANT_RX_ROOM, WANT_TX, WR_FAILED,
};
use super::udp::UdpShard;
use super::{tcp_code, Cmd, ShardLink, STOPPED_CODE};
use crate::{ShardApp, ShardCtx};

/// Commands taken per turn: the rest wait for the next turn, so a flood of commands
/// cannot starve the stack's own work.
const CMDS_PER_TURN: usize = 256;

/// A connection as its shard keeps it.
struct Entry {
    conn: Arc<ConnShared>,
    /// Received data is read and dropped (shutdown(Read), or the user closed).
    discard_rx: bool,
    /// EOF or an error was seen on the receive side.
    rx_done: bool,
    /// A FIN was asked of the stack.
    fin_sent: bool,
    shut_wr: bool,
    /// The user dropped the stream: close once the transmit ring is empty.
    closing: bool,
}

/// The application every shard of a [`NetRuntime`](super::NetRuntime) runs.
pub struct NetApp {
    link: Arc<ShardLink>,
    conns: HashMap<TcpHandle, Entry>,
    listeners: HashMap<TcpListenerHandle, Arc<ListenerShared>>,
    udp: UdpShard,
    stopping: bool,
    scratch: Box<[u8]>,
}

impl std::fmt::Debug for NetApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetApp")
            .field("shard", &self.link.id)
            .field("conns", &self.conns.len())
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl NetApp {
    pub(crate) fn new(link: Arc<ShardLink>) -> NetApp {
        NetApp {
            link,
            conns: HashMap::new(),
            listeners: HashMap::new(),
            udp: UdpShard::default(),
            stopping: false,
            scratch: vec![0u8; 64 * 1024].into_boxed_slice(),
        }
    }

    /// Connections this shard serves (for tests and monitoring).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn command(&mut self, ctx: &mut ShardCtx<'_>, cmd: Cmd) {
        if self.stopping {
            fail_command(cmd, self.link.id);
            return;
        }
        match cmd {
            Cmd::Conn(c) => {
                c.queued.store(false, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if let Some(&h) = c.handle.get() {
                    self.service(ctx.stack(), h);
                }
            }
            Cmd::Connect(c) => match ctx.tcp_connect(c.remote) {
                Ok(h) => {
                    let _ = c.handle.set(h);
                    if let Ok(info) = ctx.stack().tcp_info(h) {
                        let _ = c.local.set(info.local);
                    }
                    self.conns.insert(h, Entry::new(c));
                    self.service(ctx.stack(), h);
                }
                Err(e) => {
                    c.fail_tcp(e, FAILED | WR_FAILED);
                    c.signal.wake();
                }
            },
            Cmd::Listen(l) => {
                let me = self.link.id;
                match ctx.tcp_listen(l.local, l.backlog) {
                    Ok(h) => {
                        let _ = l.shards[me].handle.set(h);
                        self.listeners.insert(h, Arc::clone(&l));
                    }
                    Err(e) => {
                        let _ = l.bind_error.compare_exchange(
                            0,
                            tcp_code(e),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                    }
                }
                l.pending.fetch_sub(1, Ordering::AcqRel);
                // Only `bind` waits for this; it is not a readiness change.
                l.signal.wake_waiters();
            }
            Cmd::AcceptMore(l) => {
                if let Some(&h) = l.shards[self.link.id].handle.get() {
                    if self.listeners.contains_key(&h) {
                        self.accept(ctx, h);
                    }
                }
            }
            Cmd::CloseListener(l) => {
                let sa = &l.shards[self.link.id];
                if let Some(&h) = sa.handle.get() {
                    if self.listeners.remove(&h).is_some() {
                        let _ = ctx.stack().tcp_close_listener(h);
                    }
                }
                // Accepted and never taken: closed as if the user had dropped them.
                while let Some(a) = sa.queue.pop() {
                    a.conn.req.fetch_or(REQ_CLOSE, Ordering::SeqCst);
                    if let Some(&h) = a.conn.handle.get() {
                        self.service(ctx.stack(), h);
                    }
                }
            }
            Cmd::UdpBind(u) => self.udp.bind(ctx.stack(), &self.link, u),
            Cmd::UdpClose(u) => self.udp.close(ctx.stack(), &self.link, &u),
        }
    }

    /// Take what the stack has queued on listener `h` while the accept queue has room.
    fn accept(&mut self, ctx: &mut ShardCtx<'_>, h: TcpListenerHandle) {
        let Some(l) = self.listeners.get(&h).cloned() else {
            return;
        };
        let me = self.link.id;
        let sa = &l.shards[me];
        let mut taken = false;
        loop {
            if sa.queue.is_full() {
                // Announce, then look again (the user side pops, fences, then looks
                // at the flag): one of us sees the other.
                sa.want_room.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if sa.queue.is_full() {
                    break;
                }
                sa.want_room.store(false, Ordering::SeqCst);
            }
            let Ok((ch, remote)) = ctx.tcp_accept(h) else {
                break;
            };
            let conn = Arc::new(ConnShared::new(&self.link.config, me, remote));
            let _ = conn.handle.set(ch);
            if let Ok(info) = ctx.stack().tcp_info(ch) {
                let _ = conn.local.set(info.local);
            }
            conn.state.fetch_or(CONNECTED, Ordering::AcqRel);
            self.conns.insert(ch, Entry::new(Arc::clone(&conn)));
            // Only this shard pushes to its queue, and it had room.
            if let Err(a) = sa.queue.push(Accepted { conn }) {
                a.conn.req.fetch_or(REQ_CLOSE, Ordering::SeqCst);
            }
            self.service(ctx.stack(), ch);
            taken = true;
        }
        if taken {
            l.signal.wake();
        }
    }

    /// Move what can move for connection `h`; forget it once it is done with.
    fn service(&mut self, stack: &mut Stack, h: TcpHandle) {
        let Some(e) = self.conns.get_mut(&h) else {
            return;
        };
        if service(stack, h, e, &mut self.scratch) {
            let _ = stack.tcp_close(h);
            self.conns.remove(&h);
        }
    }

    /// The runtime stops: every socket learns it, every waiting command is refused.
    fn stop(&mut self, ctx: &mut ShardCtx<'_>) {
        // Hand the stack what the users already wrote, so the drain can send it.
        let handles: Vec<TcpHandle> = self.conns.keys().copied().collect();
        for h in handles {
            self.service(ctx.stack(), h);
        }
        self.stopping = true;
        self.link.stopped.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        for (_, e) in self.conns.drain() {
            e.conn.fail(STOPPED_CODE, FAILED | WR_FAILED);
            e.conn.signal.wake();
        }
        for (_, l) in self.listeners.drain() {
            l.stopped.store(true, Ordering::Release);
            l.signal.wake();
        }
        self.udp.stop();
        while let Some(cmd) = self.link.cmds.pop() {
            fail_command(cmd, self.link.id);
        }
    }
}

/// Refuse a command because the runtime stops.
fn fail_command(cmd: Cmd, shard: usize) {
    match cmd {
        Cmd::Conn(c) | Cmd::Connect(c) => {
            c.fail(STOPPED_CODE, FAILED | WR_FAILED);
            c.signal.wake();
        }
        Cmd::Listen(l) => {
            l.stopped.store(true, Ordering::Release);
            l.pending.fetch_sub(1, Ordering::AcqRel);
            l.signal.wake();
        }
        Cmd::AcceptMore(_) | Cmd::CloseListener(_) | Cmd::UdpClose(_) => {}
        Cmd::UdpBind(u) => u.bind_answered(shard, Err(STOPPED_CODE)),
    }
}

impl Entry {
    fn new(conn: Arc<ConnShared>) -> Entry {
        Entry {
            conn,
            discard_rx: false,
            rx_done: false,
            fin_sent: false,
            shut_wr: false,
            closing: false,
        }
    }
}

/// One connection's work: apply the user's requests, stack → receive ring, transmit
/// ring → stack, then wake the user if anything changed. Returns true when the entry
/// is done with (the caller closes the handle).
fn service(stack: &mut Stack, h: TcpHandle, e: &mut Entry, scratch: &mut [u8]) -> bool {
    let c = Arc::clone(&e.conn);
    let req = c.req.swap(0, Ordering::SeqCst);
    if req & REQ_NODELAY != 0 {
        let _ = stack.tcp_set_nodelay(h, c.nodelay.load(Ordering::Acquire));
    }
    if req & REQ_SHUT_RD != 0 {
        e.discard_rx = true;
    }
    if req & REQ_SHUT_WR != 0 {
        e.shut_wr = true;
    }
    if req & REQ_CLOSE != 0 {
        e.closing = true;
        e.discard_rx = true;
    }
    let mut changed = false;
    if c.state() & CONNECTED == 0 {
        match stack.tcp_state(h) {
            Ok(s) if s.is_synchronized() => {
                c.state.fetch_or(CONNECTED, Ordering::AcqRel);
                changed = true;
            }
            _ => {}
        }
    }

    // Stack → receive ring.
    while !e.rx_done {
        let r = if e.discard_rx {
            stack.tcp_recv(h, scratch)
        } else {
            if c.rx.is_full() {
                // Announce, then look again (the reader frees room, fences, then
                // looks at `want`): one of us sees the other.
                c.want.fetch_or(WANT_RX_ROOM, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if c.rx.is_full() {
                    break;
                }
                c.want.fetch_and(!WANT_RX_ROOM, Ordering::SeqCst);
            }
            // SAFETY: the shard is the receive ring's only producer. The ring has
            // room (checked above; only we fill it), so `fill` gets a non-empty slice
            // and `Ok(0)` from it is the stack's EOF.
            unsafe { c.rx.produce_with(|buf| stack.tcp_recv(h, buf)) }
        };
        match r {
            Ok(0) => {
                e.rx_done = true;
                c.state.fetch_or(RX_EOF, Ordering::AcqRel);
                changed = true;
            }
            Ok(_) => changed |= !e.discard_rx,
            Err(TcpError::WouldBlock) => break,
            Err(err) => {
                e.rx_done = true;
                c.fail_tcp(err, FAILED | WR_FAILED);
                changed = true;
            }
        }
    }

    // Transmit ring → stack.
    let mut tx_failed = c.state() & WR_FAILED != 0;
    while !tx_failed {
        // SAFETY: the shard is the transmit ring's only consumer.
        let r = unsafe { c.tx.consume_with(|buf| stack.tcp_send(h, buf)) };
        match r {
            // The ring is empty (`tcp_send` of a non-empty slice never returns 0).
            Ok(0) => {
                c.want.fetch_or(WANT_TX, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if !c.tx.is_empty() {
                    c.want.fetch_and(!WANT_TX, Ordering::SeqCst);
                    continue;
                }
                if (e.shut_wr || e.closing) && !e.fin_sent {
                    let _ = stack.tcp_shutdown(h);
                    e.fin_sent = true;
                }
                break;
            }
            Ok(_) => changed = true,
            // The stack's buffer is full: its WRITABLE event brings us back.
            Err(TcpError::WouldBlock) => break,
            Err(err) => {
                c.fail_tcp(err, WR_FAILED);
                tx_failed = true;
                changed = true;
            }
        }
    }
    if tx_failed {
        // Nobody will send these.
        // SAFETY: the shard is the transmit ring's only consumer.
        if unsafe { c.tx.clear() } > 0 {
            changed = true;
        }
    }
    if changed {
        c.signal.wake();
    }
    let failed = c.state() & FAILED != 0;
    (e.closing && (c.tx.is_empty() || tx_failed)) || (failed && e.rx_done)
}

impl ShardApp for NetApp {
    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        if self.stopping {
            return;
        }
        for ev in events {
            match ev.socket {
                TcpSocketRef::Connection(h) => {
                    if ev.events.contains(
                        Events::READABLE
                            | Events::WRITABLE
                            | Events::CONNECTED
                            | Events::CLOSED
                            | Events::ERROR,
                    ) {
                        self.service(ctx.stack(), h);
                    }
                }
                TcpSocketRef::Listener(l) => self.accept(ctx, l),
            }
        }
    }

    fn on_turn(&mut self, ctx: &mut ShardCtx<'_>) -> bool {
        let mut busy = false;
        for _ in 0..CMDS_PER_TURN {
            let Some(cmd) = self.link.cmds.pop() else {
                break;
            };
            self.command(ctx, cmd);
            busy = true;
        }
        if !self.stopping {
            busy |= self.udp.turn(ctx.stack(), &self.link, &mut self.scratch);
        }
        busy
    }

    fn has_pending(&self) -> bool {
        !self.link.cmds.is_empty() || self.link.udp_tx_pending.load(Ordering::Acquire) > 0
    }

    fn on_shutdown(&mut self, ctx: &mut ShardCtx<'_>) {
        self.stop(ctx);
    }
}
