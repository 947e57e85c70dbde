//! The runtime end to end over the in-memory backend: a peer stack on the test thread,
//! one link (pipelined mode) or one link per queue with the peer's side doing RSS like a
//! NIC (run-to-completion mode), and 2 or 4 shards on real threads.
//!
//! What is proven, in both modes:
//! - 1,000 passive opens spread over the shards as the symmetric hash says, within the
//!   bound the binomial distribution allows (see [`balance_bound`]); every byte of every
//!   flow is checked by the shard that got it and again by the peer after the echo;
//! - both directions of every flow are processed on one shard: each connection is
//!   accepted on the shard its hash names, no shard ever sees a segment it has no socket
//!   for (that would be `TcpNoSocket` and a RST), and every segment the peer sent was
//!   received by a shard;
//! - active opens from every shard come back to it: each shard connects to a listener
//!   on the peer, and the peer's replies reach the opening shard (again: no
//!   `TcpNoSocket`, no RST, data verified both ways);
//! - shutdown closes the connections the applications hold and drains.

mod common;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant as StdInstant};

use rumpnet_runtime::rss::Rss;
use rumpnet_runtime::{
    IdlePolicy, Mode, Queue, RunReport, Runtime, RuntimeConfig, ShardApp, ShardCtx,
};
use rumpnet_stack::device::{Device, HeapFrame};
use rumpnet_stack::stats::{DropReason, Stats};
use rumpnet_stack::tcp::{Events, TcpError, TcpEvent, TcpHandle, TcpListenerHandle, TcpSocketRef};
use rumpnet_stack::wire::Ipv4Addr;

use common::*;

// ---- passive opens: an echo server on every shard ----

/// Reads each connection, checks every byte against [`pattern`] of the peer's port,
/// echoes it, and closes after the peer's FIN once the echo is out.
#[derive(Default)]
struct EchoVerify {
    listener: Option<TcpListenerHandle>,
    conns: HashMap<TcpHandle, EchoConn>,
    /// (local, remote) of every connection accepted here.
    flows: Vec<(SocketAddrV4, SocketAddrV4)>,
    verified: u64,
    bad: u64,
    completed: usize,
    errors: usize,
}

struct EchoConn {
    remote: SocketAddrV4,
    received: u64,
    pending: Vec<u8>,
    eof: bool,
}

impl EchoVerify {
    fn serve(&mut self, ctx: &mut ShardCtx<'_>, h: TcpHandle) {
        let Some(c) = self.conns.get_mut(&h) else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match ctx.stack().tcp_recv(h, &mut buf) {
                Ok(0) => {
                    c.eof = true;
                    break;
                }
                Ok(n) => {
                    for &b in &buf[..n] {
                        if b == pattern(c.remote.port(), c.received) {
                            self.verified += 1;
                        } else {
                            self.bad += 1;
                        }
                        c.received += 1;
                    }
                    c.pending.extend_from_slice(&buf[..n]);
                }
                Err(TcpError::WouldBlock) => break,
                Err(_) => {
                    self.errors += 1;
                    c.eof = true;
                    break;
                }
            }
        }
        while !c.pending.is_empty() {
            match ctx.stack().tcp_send(h, &c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(_) => break,
            }
        }
        if c.eof && c.pending.is_empty() {
            let _ = ctx.stack().tcp_close(h);
            self.conns.remove(&h);
            self.completed += 1;
        }
    }
}

impl ShardApp for EchoVerify {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        let l = ctx
            .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT), 1024)
            .expect("listen");
        self.listener = Some(l);
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        for ev in events {
            match ev.socket {
                TcpSocketRef::Listener(l) => {
                    while let Ok((h, remote)) = ctx.tcp_accept(l) {
                        let local = ctx.stack().tcp_info(h).unwrap().local;
                        assert!(ctx.owns_flow(local, remote));
                        self.flows.push((local, remote));
                        self.conns.insert(
                            h,
                            EchoConn {
                                remote,
                                received: 0,
                                pending: Vec::new(),
                                eof: false,
                            },
                        );
                        self.serve(ctx, h);
                    }
                }
                TcpSocketRef::Connection(h) => {
                    if ev.events.contains(Events::ERROR) {
                        self.errors += 1;
                    }
                    self.serve(ctx, h);
                }
            }
        }
    }
}

/// A connection of the peer's load generator.
struct ClientConn {
    port: u16,
    received: u64,
}

/// What the peer saw.
#[derive(Debug, Default)]
struct PeerTally {
    completed: usize,
    verified: u64,
    bad: u64,
    errors: usize,
}

/// Open `n` connections to the echo port, at most `concurrency` at a time, each sending
/// `len` bytes then FIN, and check the echo. Returns the peer's tally.
fn run_clients<D: Device>(
    alive: &dyn Fn() -> bool,
    peer: &mut Peer<D>,
    n: usize,
    len: usize,
    concurrency: usize,
) -> PeerTally {
    let server = SocketAddrV4::new(RT_IP, ECHO_PORT);
    let mut conns: HashMap<TcpHandle, ClientConn> = HashMap::new();
    let mut tally = PeerTally::default();
    let mut started = 0;
    let mut ramped = false;
    let mut events = Vec::new();
    let mut buf = vec![0u8; 8192];
    let mut data: Vec<u8> = Vec::with_capacity(len);
    let deadline = StdInstant::now() + TIMEOUT;
    while tally.completed + tally.errors < n {
        assert!(alive(), "a shard died");
        assert!(
            StdInstant::now() < deadline,
            "timed out: {tally:?}, {} open, {started} started",
            conns.len()
        );
        // One connection first, so ARP is resolved before the burst of SYNs.
        let limit = if ramped { concurrency } else { 1 };
        while conns.len() < limit && started < n {
            let h = peer.stack.tcp_connect(server).expect("connect");
            let port = peer.stack.tcp_info(h).unwrap().local.port();
            data.clear();
            data.extend((0..len as u64).map(|i| pattern(port, i)));
            assert_eq!(peer.stack.tcp_send(h, &data).unwrap(), len);
            peer.stack.tcp_shutdown(h).unwrap();
            conns.insert(h, ClientConn { port, received: 0 });
            started += 1;
        }
        let busy = peer.poll();
        peer.stack.tcp_events(&mut events);
        for ev in events.drain(..) {
            let TcpSocketRef::Connection(h) = ev.socket else {
                continue;
            };
            if ev.events.contains(Events::CONNECTED) {
                ramped = true;
            }
            let Some(c) = conns.get_mut(&h) else {
                continue;
            };
            loop {
                match peer.stack.tcp_recv(h, &mut buf) {
                    Ok(0) => {
                        assert_eq!(c.received, len as u64, "short echo on port {}", c.port);
                        peer.stack.tcp_close(h).unwrap();
                        conns.remove(&h);
                        tally.completed += 1;
                        break;
                    }
                    Ok(k) => {
                        for &b in &buf[..k] {
                            if b == pattern(c.port, c.received) {
                                tally.verified += 1;
                            } else {
                                tally.bad += 1;
                            }
                            c.received += 1;
                        }
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => {
                        eprintln!("peer connection from port {} failed: {e}", c.port);
                        let _ = peer.stack.tcp_abort(h);
                        conns.remove(&h);
                        tally.errors += 1;
                        break;
                    }
                }
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    tally
}

/// The largest deviation from an even spread the test accepts for `n` flows over
/// `shards` shards: 10% of the mean, or 4 standard deviations of the binomial
/// distribution (n, 1/shards) where that is larger. For n = 1000: 2 shards, mean 500,
/// sd 15.8, 10% = 50 = 3.2 sd, bound 63 (12.6%); 4 shards, mean 250, sd 13.7, 10% = 25
/// = 1.8 sd (a 10% bound would fail about one run in four with a perfect hash), bound
/// 55 (22%).
fn balance_bound(n: usize, shards: usize) -> f64 {
    let p = 1.0 / shards as f64;
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (0.10 * mean).max(4.0 * sd)
}

/// Per-shard checks that both directions of every flow stayed on one shard.
fn assert_flows_stayed_home(stats: &[rumpnet_runtime::ShardStats], peer: &Stats) {
    let mut rx = 0;
    let mut tx = 0;
    for s in stats {
        assert_eq!(
            s.stack.dropped(DropReason::TcpNoSocket),
            0,
            "shard {} got segments of a flow it does not own",
            s.shard
        );
        assert_eq!(s.stack.tcp_rst_tx, 0, "shard {} sent a RST", s.shard);
        assert_eq!(s.ring_rx_dropped, 0, "shard {} ring overflowed", s.shard);
        assert!(
            s.stack.tcp_rx > 0 && s.stack.tcp_tx > 0,
            "shard {} idle",
            s.shard
        );
        rx += s.stack.tcp_rx;
        tx += s.stack.tcp_tx;
    }
    assert_eq!(peer.dropped(DropReason::TcpNoSocket), 0);
    assert_eq!(peer.tcp_rst_tx, 0);
    // Every segment the peer sent was taken by a shard, and the reverse: nothing was lost
    // or processed twice on the way through the rings.
    assert_eq!(rx, peer.tcp_tx, "segments peer -> shards");
    assert_eq!(tx, peer.tcp_rx, "segments shards -> peer");
}

fn passive(mode: Mode, shards: usize, io: usize, n: usize, idle: IdlePolicy) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const LEN: usize = 3000;
    let mut config = rt_config(shards, mode);
    config.idle = idle;
    let (report, tally, peer_stats) = match backend(mode, shards, io) {
        Backend::Link(peer_dev, queues) => {
            passive_run(config, queues, Peer::new(peer_dev, 1), n, LEN)
        }
        Backend::Nic(peer_dev, queues) => {
            passive_run(config, queues, Peer::new(peer_dev, 1), n, LEN)
        }
    };
    assert_eq!(tally.errors, 0);
    assert_eq!(tally.bad, 0);
    assert_eq!(tally.completed, n);
    assert_eq!(
        tally.verified,
        (n * LEN) as u64,
        "echoed bytes verified by the peer"
    );

    let rss = Rss::symmetric(shards);
    let mut per_shard = vec![0usize; shards];
    let mut seen = std::collections::HashSet::new();
    for (s, app) in report.apps.iter().enumerate() {
        assert_eq!(app.bad, 0, "shard {s}: corrupt bytes");
        assert_eq!(app.errors, 0, "shard {s}: connection errors");
        assert_eq!(
            app.completed,
            app.flows.len(),
            "shard {s}: unfinished flows"
        );
        assert_eq!(
            app.verified,
            (app.flows.len() * LEN) as u64,
            "shard {s}: bytes"
        );
        for &(local, remote) in &app.flows {
            // The hash the peer's side of the flow gives names this shard too.
            assert_eq!(
                rss.shard_of_flow(*remote.ip(), *local.ip(), remote.port(), local.port()),
                s
            );
            if !seen.insert(remote) {
                for st in &report.stats.shards {
                    eprintln!("shard {}: {}", st.shard, st.stack);
                }
                eprintln!("peer: {peer_stats}");
                panic!("flow {remote} accepted twice (shard {s})");
            }
        }
        per_shard[s] = app.flows.len();
        assert_eq!(
            report.stats.shards[s].stack.tcp_passive_opens,
            app.flows.len() as u64,
            "shard {s}: every handshake completed where it started"
        );
    }
    assert_eq!(seen.len(), n);
    let mean = n as f64 / shards as f64;
    let bound = balance_bound(n, shards);
    let worst = per_shard
        .iter()
        .map(|&c| (c as f64 - mean).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{mode:?}, {shards} shards, {n} flows: per shard {per_shard:?}, worst deviation {:.1}% \
         of the mean {mean} (bound {:.1}%)",
        100.0 * worst / mean,
        100.0 * bound / mean
    );
    assert!(worst <= bound, "unbalanced: {per_shard:?}");
    assert_flows_stayed_home(&report.stats.shards, &peer_stats);
    if mode == Mode::RunToCompletion {
        // The NIC put every flow on its shard's queue; only ARP was passed on.
        for s in &report.stats.shards {
            assert!(
                s.forwarded <= 64,
                "shard {} forwarded {}",
                s.shard,
                s.forwarded
            );
        }
    }
}

type PassiveOut = (RunReport<EchoVerify>, PeerTally, Stats);

fn passive_run<D: Device, Q>(
    config: RuntimeConfig,
    queues: Vec<Queue<Q>>,
    mut peer: Peer<D>,
    n: usize,
    len: usize,
) -> PassiveOut
where
    Q: Device<Frame = HeapFrame> + Send + 'static,
{
    let rt = Runtime::start(config, queues, |_| EchoVerify::default()).expect("start");
    let shards = rt.placement().shards.len();
    let tally = run_clients(&|| rt.running_shards() == shards, &mut peer, n, len, 64);
    // Let the last ACKs of the closes through, then stop.
    peer.run_for(Duration::from_millis(100));
    let report = stop(rt, &mut peer);
    (report, tally, peer.stack.stats().clone())
}

#[test]
fn passive_opens_pipelined_2_shards() {
    passive(Mode::Pipelined, 2, 1, 1000, IdlePolicy::default());
}

#[test]
fn passive_opens_pipelined_4_shards() {
    passive(Mode::Pipelined, 4, 1, 1000, IdlePolicy::default());
}

#[test]
fn passive_opens_run_to_completion_2_shards() {
    passive(Mode::RunToCompletion, 2, 0, 1000, IdlePolicy::default());
}

#[test]
fn passive_opens_run_to_completion_4_shards() {
    passive(Mode::RunToCompletion, 4, 0, 1000, IdlePolicy::default());
}

/// Two I/O threads on a two-queue NIC feeding four shards: the device's RSS hash is
/// used, and frames of a queue reach shards of both I/O threads.
#[test]
fn passive_opens_pipelined_two_io_threads() {
    passive(Mode::Pipelined, 4, 2, 400, IdlePolicy::default());
}

/// Busy-polling shards (sharing two cores with everything else here).
#[test]
fn passive_opens_busy_poll() {
    passive(Mode::Pipelined, 2, 1, 200, IdlePolicy::BusyPoll);
}

// ---- active opens: every shard connects to a listener on the peer ----

/// Opens `total` connections to the peer, `window` at a time; sends [`ACTIVE_LEN`]
/// bytes on each, expects them echoed, then the peer's FIN.
struct Dialer {
    total: usize,
    window: usize,
    opened: usize,
    conns: HashMap<TcpHandle, DialConn>,
    /// Local ports used, each checked to hash to this shard.
    ports: Vec<u16>,
    verified: u64,
    bad: u64,
    completed: usize,
    errors: usize,
}

struct DialConn {
    port: u16,
    received: u64,
}

const ACTIVE_LEN: usize = 2000;

impl Dialer {
    fn new(total: usize, window: usize) -> Dialer {
        Dialer {
            total,
            window,
            opened: 0,
            conns: HashMap::new(),
            ports: Vec::new(),
            verified: 0,
            bad: 0,
            completed: 0,
            errors: 0,
        }
    }

    fn open_more(&mut self, ctx: &mut ShardCtx<'_>) {
        let peer = SocketAddrV4::new(PEER_IP, PEER_PORT);
        while self.conns.len() < self.window && self.opened < self.total {
            let h = ctx.tcp_connect(peer).expect("connect");
            let info = ctx.stack().tcp_info(h).unwrap();
            assert!(ctx.owns_flow(info.local, info.remote));
            let port = info.local.port();
            let data: Vec<u8> = (0..ACTIVE_LEN as u64).map(|i| pattern(port, i)).collect();
            assert_eq!(ctx.stack().tcp_send(h, &data).unwrap(), ACTIVE_LEN);
            self.conns.insert(h, DialConn { port, received: 0 });
            self.ports.push(port);
            self.opened += 1;
        }
    }
}

impl ShardApp for Dialer {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        self.open_more(ctx);
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        let mut buf = [0u8; 4096];
        for ev in events {
            let TcpSocketRef::Connection(h) = ev.socket else {
                continue;
            };
            let Some(c) = self.conns.get_mut(&h) else {
                continue;
            };
            loop {
                match ctx.stack().tcp_recv(h, &mut buf) {
                    Ok(0) => {
                        if c.received == ACTIVE_LEN as u64 {
                            self.completed += 1;
                        } else {
                            self.errors += 1;
                        }
                        let _ = ctx.stack().tcp_close(h);
                        self.conns.remove(&h);
                        break;
                    }
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if b == pattern(c.port, c.received) {
                                self.verified += 1;
                            } else {
                                self.bad += 1;
                            }
                            c.received += 1;
                        }
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(_) => {
                        self.errors += 1;
                        let _ = ctx.stack().tcp_abort(h);
                        self.conns.remove(&h);
                        break;
                    }
                }
            }
        }
        self.open_more(ctx);
    }
}

/// The peer's side: accept, check every byte, echo, close after [`ACTIVE_LEN`] bytes.
/// Returns the remote (shard-side) addresses accepted and the bytes verified.
fn serve_dialers<D: Device>(
    alive: &dyn Fn() -> bool,
    peer: &mut Peer<D>,
    l: TcpListenerHandle,
    expect: usize,
    limit: Duration,
) -> (Vec<SocketAddrV4>, u64, usize) {
    let mut conns: HashMap<TcpHandle, (SocketAddrV4, u64, Vec<u8>)> = HashMap::new();
    let mut accepted = Vec::new();
    let mut verified = 0u64;
    let mut closed = 0;
    let mut events = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = StdInstant::now() + limit;
    while closed < expect && StdInstant::now() < deadline {
        assert!(alive(), "a shard died");
        let busy = peer.poll();
        peer.stack.tcp_events(&mut events);
        for ev in events.drain(..) {
            let h = match ev.socket {
                TcpSocketRef::Listener(_) => {
                    while let Ok((h, remote)) = peer.stack.tcp_accept(l) {
                        accepted.push(remote);
                        conns.insert(h, (remote, 0, Vec::new()));
                    }
                    continue;
                }
                TcpSocketRef::Connection(h) => h,
            };
            let Some((remote, got, pending)) = conns.get_mut(&h) else {
                continue;
            };
            while let Ok(n) = peer.stack.tcp_recv(h, &mut buf) {
                if n == 0 {
                    break;
                }
                for &b in &buf[..n] {
                    assert_eq!(b, pattern(remote.port(), *got), "byte {got} from {remote}");
                    *got += 1;
                    verified += 1;
                }
                pending.extend_from_slice(&buf[..n]);
            }
            while !pending.is_empty() {
                match peer.stack.tcp_send(h, pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(_) => break,
                }
            }
            if *got == ACTIVE_LEN as u64 && pending.is_empty() {
                peer.stack.tcp_close(h).unwrap();
                conns.remove(&h);
                closed += 1;
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    (accepted, verified, closed)
}

fn active(mode: Mode, shards: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const PER_SHARD: usize = 100;
    let config = rt_config(shards, mode);
    let (report, accepted, verified, peer_stats) = match backend(mode, shards, 1) {
        Backend::Link(d, q) => active_run(config, q, Peer::new(d, 2), shards * PER_SHARD),
        Backend::Nic(d, q) => active_run(config, q, Peer::new(d, 2), shards * PER_SHARD),
    };
    let n = shards * PER_SHARD;
    assert_eq!(accepted.len(), n);
    assert_eq!(verified, (n * ACTIVE_LEN) as u64);
    let rss = Rss::symmetric(shards);
    let mut from_shard = vec![0usize; shards];
    for remote in &accepted {
        // The flow as the peer sees it hashes to the shard that opened it.
        let s = rss.shard_of_flow(PEER_IP, *remote.ip(), PEER_PORT, remote.port());
        from_shard[s] += 1;
    }
    for (s, app) in report.apps.iter().enumerate() {
        assert_eq!(app.errors, 0, "shard {s}");
        assert_eq!(app.bad, 0, "shard {s}");
        assert_eq!(app.completed, PER_SHARD, "shard {s}: completed");
        assert_eq!(
            app.verified,
            (PER_SHARD * ACTIVE_LEN) as u64,
            "shard {s}: bytes"
        );
        assert_eq!(from_shard[s], PER_SHARD, "shard {s}: flows the peer saw");
        for &p in &app.ports {
            assert_eq!(rss.shard_of_flow(RT_IP, PEER_IP, p, PEER_PORT), s);
        }
        assert_eq!(
            report.stats.shards[s].stack.tcp_active_opens,
            PER_SHARD as u64
        );
    }
    assert_flows_stayed_home(&report.stats.shards, &peer_stats);
}

fn active_run<D: Device, Q>(
    config: RuntimeConfig,
    queues: Vec<Queue<Q>>,
    mut peer: Peer<D>,
    n: usize,
) -> (RunReport<Dialer>, Vec<SocketAddrV4>, u64, Stats)
where
    Q: Device<Frame = HeapFrame> + Send + 'static,
{
    // The peer listens before the shards dial (they start dialling at once).
    let l = peer
        .stack
        .tcp_listen(SocketAddrV4::new(PEER_IP, PEER_PORT), 1024)
        .expect("peer listen");
    let per_shard = n / config.shards;
    let rt = Runtime::start(config, queues, move |_| Dialer::new(per_shard, 25)).expect("start");
    let shards = rt.placement().shards.len();
    let alive = || rt.running_shards() == shards;
    let (accepted, verified, closed) = serve_dialers(&alive, &mut peer, l, n, TIMEOUT);
    assert_eq!(
        closed,
        n,
        "timed out: {} accepted, {closed} closed",
        accepted.len()
    );
    peer.run_for(Duration::from_millis(100));
    let report = stop(rt, &mut peer);
    (report, accepted, verified, peer.stack.stats().clone())
}

#[test]
fn active_opens_come_home_pipelined_2_shards() {
    active(Mode::Pipelined, 2);
}

#[test]
fn active_opens_come_home_pipelined_4_shards() {
    active(Mode::Pipelined, 4);
}

#[test]
fn active_opens_come_home_run_to_completion_2_shards() {
    active(Mode::RunToCompletion, 2);
}

#[test]
fn active_opens_come_home_run_to_completion_4_shards() {
    active(Mode::RunToCompletion, 4);
}

/// The check above can fail: with the default (not symmetric) Microsoft key the port an
/// active open picks hashes to its shard one way only, the peer's replies hash
/// elsewhere about half the time, and the shard they reach has no socket for them.
#[test]
fn a_non_symmetric_key_sends_replies_astray() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = rt_config(2, Mode::Pipelined);
    config.rss_key = rumpnet_runtime::rss::MICROSOFT_KEY;
    config.drain_timeout = Duration::from_millis(200);
    let Backend::Link(d, q) = backend(Mode::Pipelined, 2, 1) else {
        unreachable!("one I/O thread: one link")
    };
    let mut peer = Peer::new(d, 4);
    let l = peer
        .stack
        .tcp_listen(SocketAddrV4::new(PEER_IP, PEER_PORT), 1024)
        .expect("peer listen");
    let rt = Runtime::start(config, q, |_| Dialer::new(20, 20)).expect("start");
    let (_, _, closed) = serve_dialers(&|| true, &mut peer, l, 40, Duration::from_millis(1500));
    let report = stop(rt, &mut peer);
    let astray: u64 = report
        .stats
        .shards
        .iter()
        .map(|s| s.stack.dropped(DropReason::TcpNoSocket))
        .sum();
    eprintln!("non-symmetric key: {astray} segments reached a shard without their socket, {closed} of 40 flows completed");
    assert!(astray > 0);
    assert!(closed < 40);
}
