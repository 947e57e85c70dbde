//! One shard: a stack instance, the device it polls, and the application that runs
//! inside its loop, all owned by one pinned thread.
//!
//! The loop is the same in both modes; only the device differs (a
//! [`SteeredDevice`](crate::steer::SteeredDevice) over a backend queue in
//! run-to-completion mode, a [`RingDevice`](crate::ring::RingDevice) in pipelined mode).
//! Each turn polls the stack once (one receive burst, timers, one transmit flush),
//! hands the socket events of that turn to the application in one batch, and, when
//! nothing happened, spins or sleeps as the [`IdlePolicy`] says until the stack's next
//! timer or a wake-up.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumpnet_stack::device::{Device, Frame};
use rumpnet_stack::iface::Port;
use rumpnet_stack::stats::Stats;
use rumpnet_stack::tcp::{
    State, TcpError, TcpEvent, TcpHandle, TcpListenerHandle, TcpSocketOptions,
};
use rumpnet_stack::time::Instant;
use rumpnet_stack::Stack;

use crate::ring::{Parker, RingState};
use crate::rss::Rss;

/// An application that runs on every shard, inside the shard's loop: it reads, writes,
/// accepts and connects on its own shard's stack without crossing threads. The runtime
/// makes one per shard.
pub trait ShardApp: Send + 'static {
    /// Once, before the first poll: listen, connect.
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        let _ = ctx;
    }

    /// After a poll that produced socket events, with all of them.
    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]);

    /// Every turn of the shard loop, after the poll (and after [`on_poll`](Self::on_poll)
    /// when there were events): work that arrives from outside the stack, such as
    /// requests other threads put on a ring (then woken with [`Runtime::shard_waker`](crate::Runtime::shard_waker)).
    /// Returns true when it did something, so the shard polls again at once instead of
    /// going idle. Keep it cheap when there is nothing to do: it runs on every turn.
    fn on_turn(&mut self, ctx: &mut ShardCtx<'_>) -> bool {
        let _ = ctx;
        false
    }

    /// Checked just before the shard sleeps: true if work from outside is waiting
    /// (so a wake-up that raced with going to sleep is not lost).
    fn has_pending(&self) -> bool {
        false
    }

    /// Once, when the runtime is asked to stop. Then the runtime closes the listeners
    /// opened through [`ShardCtx`] and sends a FIN on the connections obtained through
    /// it; from there on it reads and discards what they still receive and releases
    /// each once it has closed (or at `drain_timeout`). Close or drain anything else here.
    fn on_shutdown(&mut self, ctx: &mut ShardCtx<'_>) {
        let _ = ctx;
    }
}

/// What the application sees of its shard during a call.
#[derive(Debug)]
pub struct ShardCtx<'a> {
    stack: &'a mut Stack,
    shard: usize,
    rss: &'a Rss,
    owned: &'a mut Owned,
    socket_opts: TcpSocketOptions,
    now: Instant,
    stopping: bool,
}

impl<'a> ShardCtx<'a> {
    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.rss.shards()
    }

    /// The time of this poll.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The runtime is stopping (set from [`ShardApp::on_shutdown`] on).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The shard's stack, for every call the context does not wrap.
    pub fn stack(&mut self) -> &mut Stack {
        self.stack
    }

    /// The shard map.
    pub fn rss(&self) -> &Rss {
        self.rss
    }

    /// The flow `local`–`remote` is this shard's: its frames, both ways, come here.
    pub fn owns_flow(&self, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
        self.rss
            .shard_of_flow(*local.ip(), *remote.ip(), local.port(), remote.port())
            == self.shard
    }

    /// Listen on `local` (every shard listens on its own stack; software RSS decides
    /// which one a new connection reaches). Closed when the runtime stops.
    pub fn tcp_listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<TcpListenerHandle, TcpError> {
        let l = self.stack.tcp_listen(local, backlog)?;
        self.owned.listeners.push(l);
        Ok(l)
    }

    /// Accept a connection. Closed when the runtime stops, if the application has not.
    pub fn tcp_accept(
        &mut self,
        l: TcpListenerHandle,
    ) -> Result<(TcpHandle, SocketAddrV4), TcpError> {
        let (h, remote) = self.stack.tcp_accept(l)?;
        self.owned.track(self.stack, h);
        Ok((h, remote))
    }

    /// Open a connection to `remote` with the stack's default options (see
    /// [`tcp_connect_with`](Self::tcp_connect_with)).
    pub fn tcp_connect(&mut self, remote: SocketAddrV4) -> Result<TcpHandle, TcpError> {
        let opts = self.socket_opts;
        self.tcp_connect_with(remote, opts)
    }

    /// Open a connection to `remote` from an ephemeral port whose 4-tuple hashes to this
    /// shard, so the peer's replies come back here. Closed when the runtime stops, if
    /// the application has not.
    pub fn tcp_connect_with(
        &mut self,
        remote: SocketAddrV4,
        opts: TcpSocketOptions,
    ) -> Result<TcpHandle, TcpError> {
        let rip = *remote.ip();
        // The source address the stack would pick, fixed here so the port predicate
        // hashes the same 4-tuple the segments will carry.
        let src = self
            .stack
            .routes()
            .lookup(rip)
            .and_then(|r| self.stack.interface(r.iface)?.source_for(r.next_hop(rip)))
            .ok_or(TcpError::NoRoute)?;
        let (rss, me, rport) = (self.rss, self.shard, remote.port());
        let h =
            self.stack
                .tcp_connect_with(remote, Some(SocketAddrV4::new(src, 0)), opts, |port| {
                    rss.shard_of_flow(src, rip, port, rport) == me
                })?;
        self.owned.track(self.stack, h);
        Ok(h)
    }
}

/// The sockets the application got through [`ShardCtx`], closed at shutdown. Handles are
/// generational, so closing one the application already closed (and whose slot was
/// reused) fails harmlessly; the list is pruned of dead handles as it grows.
#[derive(Debug, Default)]
pub(crate) struct Owned {
    conns: Vec<TcpHandle>,
    listeners: Vec<TcpListenerHandle>,
    prune_at: usize,
}

impl Owned {
    fn track(&mut self, stack: &Stack, h: TcpHandle) {
        if self.conns.len() >= self.prune_at {
            self.conns.retain(|&h| stack.tcp_state(h).is_ok());
            self.prune_at = (self.conns.len() * 2).max(64);
        }
        self.conns.push(h);
    }

    /// Shutdown begins: stop listening (connections not yet accepted are reset) and
    /// send a FIN on every connection, keeping the handles to watch them close.
    fn begin_close(&mut self, stack: &mut Stack) {
        for l in self.listeners.drain(..) {
            let _ = stack.tcp_close_listener(l);
        }
        for &h in &self.conns {
            let _ = stack.tcp_shutdown(h);
        }
    }

    /// Advance the closes: read and discard what the peers still send (so their FIN
    /// can arrive), and release each connection once it is closed or in TIME-WAIT (it
    /// has nothing more to exchange; TIME-WAIT ends with the stack). True once all are.
    fn closes_done(&mut self, stack: &mut Stack) -> bool {
        let mut sink = [0u8; 2048];
        self.conns.retain(|&h| {
            while let Ok(n) = stack.tcp_recv(h, &mut sink) {
                if n == 0 {
                    break;
                }
            }
            match stack.tcp_state(h) {
                Ok(State::TimeWait | State::Closed) => {
                    let _ = stack.tcp_close(h);
                    false
                }
                Ok(_) => true,
                // Closed by the application meanwhile.
                Err(_) => false,
            }
        });
        self.conns.is_empty()
    }

    /// The deadline passed: release what is left (a close with unread data resets).
    fn close_all(&mut self, stack: &mut Stack) {
        for l in self.listeners.drain(..) {
            let _ = stack.tcp_close_listener(l);
        }
        for h in self.conns.drain(..) {
            let _ = stack.tcp_close(h);
        }
    }
}

/// How long a draining shard must see no traffic before it stops, once the connections
/// it watches are closed: time for the last exchanges of connections the application
/// closed itself, which the runtime cannot watch.
const DRAIN_QUIET: Duration = Duration::from_millis(50);

/// The longest sleep of a thread whose device wakes it: only a bound on how late a
/// stop request or a lost wake-up is noticed.
const DEVICE_SLEEP_MAX: Duration = Duration::from_millis(100);

/// What a shard does when a poll found nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause: the lowest latency, one core per shard at 100%.
    BusyPoll,
    /// Spin for a while, then sleep until the next stack timer, a wake-up from a ring,
    /// or `max_sleep`, whichever comes first. The spin adapts between `min_spin` and
    /// `max_spin` empty polls: it doubles when work arrived during a spin (the gaps in
    /// the traffic are short: spinning through them saves a wake-up) and halves when a
    /// sleep ran to its timeout (the shard is really idle: spinning only burns the core).
    Adaptive {
        min_spin: u32,
        max_spin: u32,
        /// The longest sleep. It bounds the latency of devices that cannot wake a
        /// thread (a backend queue polled in run-to-completion mode, the in-memory link).
        max_sleep: Duration,
    },
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy::Adaptive {
            min_spin: 16,
            max_spin: 2048,
            max_sleep: Duration::from_millis(1),
        }
    }
}

/// The idle state of one thread.
#[derive(Debug)]
pub(crate) struct Idle {
    policy: IdlePolicy,
    spin_limit: u32,
    empty: u32,
    /// The thread shares its CPU with other runtime threads: yield instead of spinning.
    yield_cpu: bool,
    /// The device wakes the thread when frames arrive ([`Idle::watch_device`]): sleep
    /// until the next timer (at most [`DEVICE_SLEEP_MAX`]) rather than `max_sleep`.
    device_wakes: bool,
    pub sleeps: u64,
}

impl Idle {
    pub fn new(policy: IdlePolicy, yield_cpu: bool) -> Idle {
        let spin_limit = match policy {
            IdlePolicy::BusyPoll => 0,
            IdlePolicy::Adaptive { max_spin, .. } => max_spin,
        };
        Idle {
            policy,
            spin_limit,
            empty: 0,
            yield_cpu,
            device_wakes: false,
            sleeps: 0,
        }
    }

    /// Register `dev`'s readiness descriptor with `parker`, if it has one, so an idle
    /// thread sleeps until frames arrive instead of napping `max_sleep` at a time.
    pub fn watch_device<D: Device>(&mut self, dev: &D, parker: &mut Parker) {
        if let Some(fd) = dev.readiness_fd() {
            match parker.watch_fd(fd) {
                Ok(()) => self.device_wakes = true,
                Err(e) => tracing::warn!("cannot wait on the device (fd {fd}): {e}; napping"),
            }
        }
    }

    /// The last poll did work.
    pub fn work(&mut self) {
        if let IdlePolicy::Adaptive { max_spin, .. } = self.policy {
            if self.empty > 0 && self.empty < self.spin_limit {
                self.spin_limit = (self.spin_limit.saturating_mul(2)).min(max_spin);
            }
        }
        self.empty = 0;
    }

    /// The last poll found nothing; the next work is due in `due` (`None`: only when
    /// something arrives). `has_work` is checked once more before sleeping.
    pub fn wait(
        &mut self,
        due: Option<Duration>,
        parker: &mut Parker,
        has_work: impl FnOnce() -> bool,
    ) {
        let IdlePolicy::Adaptive {
            min_spin,
            max_sleep,
            ..
        } = self.policy
        else {
            self.pause();
            return;
        };
        self.empty += 1;
        if self.empty < self.spin_limit {
            self.pause();
            return;
        }
        let cap = if self.device_wakes {
            DEVICE_SLEEP_MAX
        } else {
            max_sleep
        };
        let timeout = due.map_or(cap, |d| d.min(cap));
        if timeout.is_zero() {
            // A timer is due: poll again rather than sleep.
            self.empty = 0;
            return;
        }
        let start = std::time::Instant::now();
        if parker.park(timeout, has_work) {
            self.sleeps += 1;
            if start.elapsed() >= timeout {
                self.spin_limit = (self.spin_limit / 2).max(min_spin);
            }
        }
        self.empty = 0;
    }

    fn pause(&self) {
        if self.yield_cpu {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The shared clock of a runtime: microseconds since it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }
}

/// A shard's counters as the runtime reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStats {
    /// The shard's index.
    pub shard: usize,
    /// The CPU it was pinned to (`None`: unpinned, or pinning failed).
    pub cpu: Option<usize>,
    /// The stack's counters.
    pub stack: Stats,
    /// Frames put on this shard's receive ring (by the I/O threads, or by other shards
    /// in run-to-completion mode).
    pub ring_rx: u64,
    /// Frames dropped because this shard's receive ring was full.
    pub ring_rx_dropped: u64,
    /// Run-to-completion: frames this shard's queue received for other shards.
    pub forwarded: u64,
    /// Polls of the stack.
    pub polls: u64,
    /// Times the shard slept.
    pub sleeps: u64,
}

impl ShardStats {
    pub(crate) fn new(shard: usize) -> ShardStats {
        ShardStats {
            shard,
            cpu: None,
            stack: Stats::default(),
            ring_rx: 0,
            ring_rx_dropped: 0,
            forwarded: 0,
            polls: 0,
            sleeps: 0,
        }
    }
}

/// What the runtime shares with one shard thread.
#[derive(Debug)]
pub(crate) struct ShardShared {
    pub inbox: Arc<dyn RingState>,
    /// The latest snapshot, published every `stats_interval` and at exit.
    pub stats: Mutex<ShardStats>,
}

/// What an application call borrows: the stack and what [`ShardCtx`] adds to it.
pub(crate) struct Host {
    pub id: usize,
    pub stack: Stack,
    pub rss: Rss,
    /// Options of sockets opened through [`ShardCtx::tcp_connect`].
    pub socket_opts: TcpSocketOptions,
    pub owned: Owned,
}

impl Host {
    fn ctx(&mut self, now: Instant, stopping: bool) -> ShardCtx<'_> {
        ShardCtx {
            stack: &mut self.stack,
            shard: self.id,
            rss: &self.rss,
            owned: &mut self.owned,
            socket_opts: self.socket_opts,
            now,
            stopping,
        }
    }
}

/// Everything one shard thread runs with.
pub(crate) struct ShardRun<D: ShardPort, A> {
    pub host: Host,
    pub port: Port<D>,
    pub app: A,
    pub parker: Parker,
    pub shared: Arc<ShardShared>,
    pub stop: Arc<AtomicBool>,
    pub clock: Clock,
    pub idle: Idle,
    pub drain_timeout: Duration,
    pub stats_interval: Duration,
    pub cpu: Option<usize>,
}

/// A device a shard polls: a ring pair or a steered backend queue.
pub(crate) trait ShardPort: Device {
    /// Frames received here for other shards and passed on to them.
    fn forwarded(&self) -> u64;
}

impl<F: Frame> ShardPort for crate::ring::RingDevice<F> {
    fn forwarded(&self) -> u64 {
        0
    }
}

impl<D: Device> ShardPort for crate::steer::SteeredDevice<D> {
    fn forwarded(&self) -> u64 {
        crate::steer::SteeredDevice::forwarded(self)
    }
}

impl<D: ShardPort, A: ShardApp> ShardRun<D, A> {
    /// The shard loop; returns the application and the final counters.
    pub fn run(mut self) -> (A, ShardStats) {
        let mut events: Vec<TcpEvent> = Vec::new();
        let mut polls = 0u64;
        self.idle.watch_device(self.port.device(), &mut self.parker);
        let now = self.clock.now();
        self.app.on_start(&mut self.host.ctx(now, false));
        let mut draining: Option<Instant> = None;
        let mut last_traffic = now;
        let mut published = now;
        loop {
            let now = self.clock.now();
            let stack = &mut self.host.stack;
            let r = stack.poll(now, std::slice::from_mut(&mut self.port));
            polls += 1;
            stack.tcp_events(&mut events);
            let had_events = !events.is_empty();
            if had_events {
                let mut ctx = self.host.ctx(now, draining.is_some());
                self.app.on_poll(&mut ctx, &events);
                events.clear();
            }
            let app_busy = self
                .app
                .on_turn(&mut self.host.ctx(now, draining.is_some()));
            if draining.is_none() && self.stop.load(Ordering::Acquire) {
                self.app.on_shutdown(&mut self.host.ctx(now, true));
                self.host.owned.begin_close(&mut self.host.stack);
                draining = Some(now + self.drain_timeout);
                last_traffic = now;
                continue;
            }
            let busy = r.rx_frames > 0 || r.tx_frames > 0 || had_events || app_busy;
            if let Some(deadline) = draining {
                // Drained: the connections closed, nothing waits to be sent, and either
                // no connection is left at all or the link has been quiet for a while
                // (connections in TIME-WAIT need nothing more).
                if busy {
                    last_traffic = now;
                }
                let Host { stack, owned, .. } = &mut self.host;
                let closed = owned.closes_done(stack);
                let idle = !busy && self.port.tx_backlog() == 0 && self.shared.inbox.is_empty();
                let quiet = now.saturating_duration_since(last_traffic) >= DRAIN_QUIET;
                let none_left = stack.tcp_connection_count() == 0;
                if now >= deadline {
                    owned.close_all(stack);
                    let _ = stack.poll(now, std::slice::from_mut(&mut self.port));
                    break;
                }
                if closed && idle && (none_left || quiet) {
                    break;
                }
            }
            if now.saturating_duration_since(published) >= self.stats_interval {
                self.publish(polls);
                published = now;
            }
            if busy {
                self.idle.work();
                continue;
            }
            let due = self
                .host
                .stack
                .poll_at()
                .map(|t| t.saturating_duration_since(now));
            if draining.is_some() {
                // Poll the closes through quickly, without the spin.
                let _ = self.parker.park(
                    due.unwrap_or(Duration::from_millis(1))
                        .min(Duration::from_millis(1)),
                    || !self.shared.inbox.is_empty() || self.app.has_pending(),
                );
                continue;
            }
            let (inbox, stop, app) = (&self.shared.inbox, &self.stop, &self.app);
            self.idle.wait(due, &mut self.parker, || {
                !inbox.is_empty() || stop.load(Ordering::Relaxed) || app.has_pending()
            });
        }
        let stats = self.publish(polls);
        (self.app, stats)
    }

    fn publish(&self, polls: u64) -> ShardStats {
        let s = ShardStats {
            shard: self.host.id,
            cpu: self.cpu,
            stack: self.host.stack.stats().clone(),
            ring_rx: self.shared.inbox.pushed(),
            ring_rx_dropped: self.shared.inbox.dropped_full(),
            forwarded: self.port.device().forwarded(),
            polls,
            sleeps: self.idle.sleeps,
        };
        if let Ok(mut g) = self.shared.stats.lock() {
            *g = s.clone();
        }
        s
    }
}
