//! rumpnet: two stacks (one shard each) joined by the in-memory link, driven by real
//! time.
//!
//! Same core: one thread owns both stacks and, in one loop, polls A, steps the client,
//! polls A again if the client queued anything (so it leaves at once), then does the same
//! for B and the server: a run-to-completion loop for two hosts. Cross core: each stack
//! with its half of the workload on its own thread, pinned to cores 0 and 1, spinning.
//!
//! The `conns` workload opens many idle connections from A to B and measures the
//! process's resident memory before and after.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant as WallInstant};

use rumpnet_stack::link::{self, LinkConfig};
use rumpnet_stack::tcp::{
    State, TcpConfig, TcpError, TcpHandle, TcpListenerHandle, TcpSocketOptions,
};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::Ipv4Addr;
use rumpnet_stack::StackConfig;

pub use super::stack_sockets::EPHEMERAL_FIRST;
use super::stack_sockets::{tcp_io, StackSockets};
use super::{sample, stall_limit, BenchError, Placement, Sample};
use crate::machine;
use crate::tcp_pair::{Host, A_ADDR, B_ADDR, PORT};
use crate::workload::{Client, Kind, Server, Spec};

/// Socket buffers of a bulk connection: large enough that the window never limits a
/// path whose round trip is a few microseconds.
pub const STREAM_BUF: usize = 1 << 20;

/// Socket buffers of request/response connections. The stack keeps a connection's
/// buffers until it is freed, TIME-WAIT included, and crr leaves up to 16,384
/// connections in TIME-WAIT on the server: small buffers keep that within reason.
pub const RR_BUF: usize = 8 * 1024;

/// Socket buffers of the idle connections of `conns`: never allocated while idle, and
/// only the one byte of the final check is ever sent.
pub const CONNS_BUF: usize = 512;

/// The socket options of a workload's connections.
pub fn socket_options(spec: &Spec) -> TcpSocketOptions {
    let buf = match spec.kind {
        Kind::Stream => STREAM_BUF,
        Kind::Rr | Kind::Crr => RR_BUF,
    };
    TcpSocketOptions {
        nodelay: spec.nodelay(),
        rcv_buf: buf,
        snd_buf: buf,
        ..TcpSocketOptions::default()
    }
}

/// The link between the two stacks: no impairment, so no delay and no clock (frames
/// are deliverable as soon as they are on the ring); no offloads.
pub fn link_config(mtu: usize) -> LinkConfig {
    link_config_with(mtu, false)
}

/// [`link_config`], with the link's checksum and segmentation offloads when `offloads`
/// (see [`LinkConfig::offloads`]: what Linux's `lo` and a virtio-net or TSO/LRO NIC
/// do; the MTU is unchanged).
pub fn link_config_with(mtu: usize, offloads: bool) -> LinkConfig {
    let mut config = LinkConfig {
        mtu,
        offloads,
        ..LinkConfig::default()
    };
    if mtu > 9000 {
        // Fewer, bigger buffers: 64 KiB frames at the default 1,024 ring slots and
        // 4,096 pooled buffers would pin half a gigabyte.
        config.capacity = 256;
        config.pool_frames = 512;
    }
    config
}

/// Hosts A (client, 10.0.0.1) and B (server, 10.0.0.2, listening on [`PORT`]).
fn hosts(
    mtu: usize,
    offloads: bool,
    tcp: TcpConfig,
    opts: TcpSocketOptions,
) -> Result<(Host, Host, TcpListenerHandle), BenchError> {
    let (ea, eb) = link::pair(link_config_with(mtu, offloads));
    let config = StackConfig {
        tcp,
        ..StackConfig::default()
    };
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let a = Host::new(config.clone(), ea, A_ADDR, 3).map_err(|e| setup(&e))?;
    let mut b = Host::new(config, eb, B_ADDR, 5).map_err(|e| setup(&e))?;
    let backlog = tcp.max_accept_backlog;
    let listener = b
        .stack
        .tcp_listen_with(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT),
            backlog,
            opts,
        )
        .map_err(|e| setup(&e))?;
    Ok((a, b, listener))
}

/// The stacks' clock: microseconds since the run began.
fn stack_now(epoch: WallInstant, now: WallInstant) -> Instant {
    Instant::from_micros(now.saturating_duration_since(epoch).as_micros() as u64)
}

/// The client's sockets on host A, toward B's listening port.
fn client_sockets<'a>(
    a: &'a mut Host,
    opts: TcpSocketOptions,
    next_port: &'a mut u16,
) -> StackSockets<'a> {
    StackSockets {
        stack: &mut a.stack,
        listener: None,
        opts,
        client: Some((A_ADDR, SocketAddrV4::new(B_ADDR, PORT), next_port)),
    }
}

/// The server's sockets on host B.
fn server_sockets(
    b: &mut Host,
    listener: TcpListenerHandle,
    opts: TcpSocketOptions,
) -> StackSockets<'_> {
    StackSockets {
        stack: &mut b.stack,
        listener: Some(listener),
        opts,
        client: None,
    }
}

/// Run a timed workload (stream, rr, crr) once; `mtu` is the link's, which offloads
/// nothing.
pub fn run(spec: &Spec, placement: Placement, mtu: usize) -> Result<Sample, BenchError> {
    run_with(spec, placement, mtu, false)
}

/// [`run`], over a link with checksum and segmentation offloads when `offloads`.
pub fn run_with(
    spec: &Spec,
    placement: Placement,
    mtu: usize,
    offloads: bool,
) -> Result<Sample, BenchError> {
    let opts = socket_options(spec);
    let (a, b, listener) = hosts(mtu, offloads, TcpConfig::default(), opts)?;
    match placement {
        Placement::SameCore => {
            let spec = *spec;
            thread::scope(|s| {
                s.spawn(move || {
                    machine::pin_to_core(0);
                    same_core(&spec, a, b, listener, opts)
                })
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("the benchmark thread panicked".into())))
            })
        }
        Placement::CrossCore => cross_core(spec, a, b, listener, opts),
    }
}

fn same_core(
    spec: &Spec,
    mut a: Host,
    mut b: Host,
    listener: TcpListenerHandle,
    opts: TcpSocketOptions,
) -> Result<Sample, BenchError> {
    let epoch = WallInstant::now();
    let cpu0 = machine::process_cpu_time();
    let mut client = Client::new(*spec, epoch);
    let mut server = Server::new(*spec, epoch);
    let limit = epoch + spec.warmup() + spec.duration + stall_limit(spec);
    let mut next_port = EPHEMERAL_FIRST;
    loop {
        // The client's own clock read of the last turn, if it made one (it ends each
        // transaction with one), else a fresh one: the stacks run on microseconds.
        let now = client.take_clock().unwrap_or_else(WallInstant::now);
        let t = stack_now(epoch, now);
        a.poll(t);
        let moved = client.step(&mut client_sockets(&mut a, opts, &mut next_port), now)?;
        if moved {
            a.poll(t);
        }
        b.poll(t);
        let moved = server.step(&mut server_sockets(&mut b, listener, opts), now)?;
        if moved {
            b.poll(t);
        }
        if client.done() {
            server.finish();
            if server.done() {
                break;
            }
        }
        if now > limit {
            return Err(BenchError::Stalled("rumpnet same-core"));
        }
    }
    let wall = epoch.elapsed();
    let cpu = machine::process_cpu_time().saturating_sub(cpu0);
    sample(spec, client.outcome(), &server.outcome(), cpu, wall)
}

fn cross_core(
    spec: &Spec,
    mut a: Host,
    mut b: Host,
    listener: TcpListenerHandle,
    opts: TcpSocketOptions,
) -> Result<Sample, BenchError> {
    let epoch = WallInstant::now();
    let cpu0 = machine::process_cpu_time();
    let limit = epoch + spec.warmup() + spec.duration + stall_limit(spec);
    let client_done = Arc::new(AtomicBool::new(false));
    let server_done = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicBool::new(false));
    let spec = *spec;
    let (client, server) = thread::scope(|s| {
        let (cd, sd, f) = (client_done.clone(), server_done.clone(), failed.clone());
        let client = s.spawn(move || -> Result<_, BenchError> {
            machine::pin_to_core(0);
            let mut client = Client::new(spec, epoch);
            let mut next_port = EPHEMERAL_FIRST;
            // Keep polling after the client is done until the server is: A must still
            // send its FINs and answer B's.
            while !sd.load(Ordering::Acquire) {
                let now = WallInstant::now();
                a.poll(stack_now(epoch, now));
                let r = client.step(&mut client_sockets(&mut a, opts, &mut next_port), now);
                if let Err(e) = r {
                    f.store(true, Ordering::Release);
                    return Err(e.into());
                }
                if client.done() {
                    cd.store(true, Ordering::Release);
                }
                if now > limit || f.load(Ordering::Acquire) {
                    f.store(true, Ordering::Release);
                    return Err(BenchError::Stalled("rumpnet cross-core client"));
                }
            }
            Ok(client)
        });
        let (cd, sd, f) = (client_done.clone(), server_done.clone(), failed.clone());
        let server = s.spawn(move || -> Result<_, BenchError> {
            machine::pin_to_core(1);
            let mut server = Server::new(spec, epoch);
            loop {
                let now = WallInstant::now();
                b.poll(stack_now(epoch, now));
                let r = server.step(&mut server_sockets(&mut b, listener, opts), now);
                if let Err(e) = r {
                    f.store(true, Ordering::Release);
                    return Err(e.into());
                }
                if cd.load(Ordering::Acquire) {
                    server.finish();
                    if server.done() {
                        sd.store(true, Ordering::Release);
                        return Ok(server);
                    }
                }
                if now > limit || f.load(Ordering::Acquire) {
                    f.store(true, Ordering::Release);
                    return Err(BenchError::Stalled("rumpnet cross-core server"));
                }
            }
        });
        (
            client
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("client thread panicked".into()))),
            server
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("server thread panicked".into()))),
        )
    });
    let (client, server) = (client?, server?);
    let wall = epoch.elapsed();
    let cpu = machine::process_cpu_time().saturating_sub(cpu0);
    sample(&spec, client.outcome(), &server.outcome(), cpu, wall)
}

/// What `conns` measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnsResult {
    /// Connections opened (each with both its ends in this process).
    pub count: usize,
    /// Growth of the resident set over the open, divided by `count`.
    pub bytes_per_conn: f64,
    /// Time to open them all.
    pub open: Duration,
    /// Connections that echoed a byte at the end.
    pub answered: usize,
}

/// Listening ports on B, so that `count` connections from one address find distinct
/// 4-tuples: each port takes [`PORTS_PER_LISTENER`] client ports.
const PORTS_PER_LISTENER: usize = 60_000;

/// Connections in their handshake at once: below the listener's SYN backlog, so no
/// SYN cookie or drop interferes.
const OPEN_WINDOW: usize = 128;

/// Open `count` idle connections from A to B on one thread, measure the resident memory
/// they added, then check that every one still echoes a byte.
pub fn conns(count: usize) -> Result<ConnsResult, BenchError> {
    let count = count.max(1);
    thread::scope(|s| {
        s.spawn(move || {
            machine::pin_to_core(0);
            conns_inner(count)
        })
        .join()
        .unwrap_or_else(|_| Err(BenchError::Setup("the conns thread panicked".into())))
    })
}

fn conns_inner(count: usize) -> Result<ConnsResult, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let opts = TcpSocketOptions {
        nodelay: true,
        rcv_buf: CONNS_BUF,
        snd_buf: CONNS_BUF,
        ..TcpSocketOptions::default()
    };
    let tcp = TcpConfig {
        max_connections: count + 1024,
        ..TcpConfig::default()
    };
    let (mut a, mut b, first) = hosts(1500, false, tcp, opts)?;
    let listeners = count.div_ceil(PORTS_PER_LISTENER);
    let mut ls = vec![first];
    for i in 1..listeners {
        let port = PORT + i as u16;
        ls.push(
            b.stack
                .tcp_listen_with(
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
                    tcp.max_accept_backlog,
                    opts,
                )
                .map_err(|e| setup(&e))?,
        );
    }
    let epoch = WallInstant::now();
    let limit = epoch + Duration::from_secs(60) + Duration::from_micros(count as u64 * 100);
    let mut client: Vec<TcpHandle> = Vec::with_capacity(count);
    let mut server: Vec<TcpHandle> = Vec::with_capacity(count);
    machine::release_free_memory();
    let rss0 = machine::rss_bytes();
    let mut pending: Vec<TcpHandle> = Vec::with_capacity(OPEN_WINDOW);
    let mut opened = 0usize;
    let mut events = Vec::new();
    while client.len() < count || server.len() < count {
        let now = WallInstant::now();
        let t = stack_now(epoch, now);
        // One connection alone first: the SYNs sent while A resolves B's address wait
        // in a short queue, and the ones it drops would cost an initial RTO (1 s).
        let window = if client.is_empty() { 1 } else { OPEN_WINDOW };
        while opened < count && pending.len() < window {
            let port = PORT + (opened / PORTS_PER_LISTENER) as u16;
            let local = SocketAddrV4::new(A_ADDR, 1024 + (opened % PORTS_PER_LISTENER) as u16);
            let h = a
                .stack
                .tcp_connect_with(SocketAddrV4::new(B_ADDR, port), Some(local), opts, |_| true)
                .map_err(|e| setup(&e))?;
            pending.push(h);
            opened += 1;
        }
        a.poll(t);
        b.poll(t);
        // An application drains readiness events; left alone they would queue one
        // entry per connection and be counted as the connections' memory.
        events.clear();
        a.stack.tcp_events(&mut events);
        events.clear();
        b.stack.tcp_events(&mut events);
        for &l in &ls {
            while let Ok((h, _)) = b.stack.tcp_accept(l) {
                server.push(h);
            }
        }
        let mut i = 0;
        while i < pending.len() {
            match a.stack.tcp_state(pending[i]).map_err(|e| setup(&e))? {
                State::Established => client.push(pending.swap_remove(i)),
                State::SynSent => i += 1,
                other => {
                    return Err(BenchError::Setup(format!(
                        "a connection ended up {other:?}"
                    )))
                }
            }
        }
        if now > limit {
            return Err(BenchError::Stalled("conns: opening"));
        }
    }
    let open = epoch.elapsed();
    let rss1 = machine::rss_bytes();
    drop(server);
    let answered = conns_check(&mut a, &mut b, &client, epoch, limit)?;
    Ok(ConnsResult {
        count,
        bytes_per_conn: rss1.saturating_sub(rss0) as f64 / count as f64,
        open,
        answered,
    })
}

/// Send one byte on every client connection, in windows, and have the server side echo
/// it; how many came back.
fn conns_check(
    a: &mut Host,
    b: &mut Host,
    client: &[TcpHandle],
    epoch: WallInstant,
    limit: WallInstant,
) -> Result<usize, BenchError> {
    let io = |e: TcpError| BenchError::Io(tcp_io(e));
    let mut answered = 0;
    // The server handles came out of the accept queues in an order of their own, so
    // B echoes on the connections its readiness events name.
    let mut events = Vec::new();
    let mut byte = [0u8; 1];
    for chunk in client.chunks(OPEN_WINDOW * 8) {
        for &h in chunk {
            if a.stack.tcp_send(h, &[0x5a]).map_err(io)? != 1 {
                return Err(BenchError::Setup("a one-byte send was refused".into()));
            }
        }
        let mut waiting: Vec<TcpHandle> = chunk.to_vec();
        while !waiting.is_empty() {
            let now = WallInstant::now();
            let t = stack_now(epoch, now);
            a.poll(t);
            b.poll(t);
            events.clear();
            b.stack.tcp_events(&mut events);
            for ev in &events {
                if let rumpnet_stack::tcp::TcpSocketRef::Connection(h) = ev.socket {
                    if let Ok(1) = b.stack.tcp_recv(h, &mut byte) {
                        b.stack.tcp_send(h, &byte).map_err(io)?;
                    }
                }
            }
            b.poll(t);
            a.poll(t);
            events.clear();
            a.stack.tcp_events(&mut events);
            let mut i = 0;
            while i < waiting.len() {
                match a.stack.tcp_recv(waiting[i], &mut byte) {
                    Ok(1) if byte[0] == 0x5a => {
                        answered += 1;
                        waiting.swap_remove(i);
                    }
                    Err(TcpError::WouldBlock) => i += 1,
                    Ok(_) => return Err(BenchError::Corrupt(1)),
                    Err(e) => return Err(io(e)),
                }
            }
            if now > limit {
                return Err(BenchError::Stalled("conns: checking"));
            }
        }
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind, conns: usize, msg: usize) -> Spec {
        Spec {
            kind,
            conns,
            msg,
            duration: Duration::from_millis(150),
        }
    }

    #[test]
    fn every_workload_runs_on_both_placements() {
        for placement in [Placement::SameCore, Placement::CrossCore] {
            for (kind, conns, msg) in [
                (Kind::Stream, 1, 65536),
                (Kind::Stream, 3, 65536),
                (Kind::Rr, 1, 64),
                (Kind::Rr, 4, 64),
                (Kind::Crr, 1, 64),
            ] {
                let mut s = run(&spec(kind, conns, msg), placement, 1500)
                    .unwrap_or_else(|e| panic!("{kind:?} {placement:?}: {e}"));
                if s.value == 0.0 {
                    // On a machine loaded by other work, a pinned thread can be kept off
                    // its core for the whole 150 ms window: once more, for longer.
                    let mut long = spec(kind, conns, msg);
                    long.duration = Duration::from_secs(2);
                    s = run(&long, placement, 1500)
                        .unwrap_or_else(|e| panic!("{kind:?} {placement:?}: {e}"));
                }
                assert!(s.value > 0.0, "{kind:?} {placement:?}: {s:?}");
                assert!(s.checked > 0);
                assert_eq!(s.errors, 0);
            }
        }
    }

    #[test]
    fn every_workload_runs_over_a_link_with_offloads() {
        for (kind, conns, msg) in [
            (Kind::Stream, 1, 65536),
            (Kind::Rr, 1, 64),
            (Kind::Crr, 1, 64),
        ] {
            let mut s = run_with(&spec(kind, conns, msg), Placement::SameCore, 1500, true)
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            if s.value == 0.0 {
                let mut long = spec(kind, conns, msg);
                long.duration = Duration::from_secs(2);
                s = run_with(&long, Placement::SameCore, 1500, true)
                    .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            }
            assert!(s.value > 0.0, "{kind:?}: {s:?}");
            assert!(s.checked > 0);
            assert_eq!(s.errors, 0);
        }
    }

    #[test]
    fn stream_runs_at_a_large_mtu() {
        let s = run(&spec(Kind::Stream, 1, 65536), Placement::SameCore, 65535).unwrap();
        assert!(s.value > 0.0);
    }

    #[test]
    fn idle_connections_open_and_answer() {
        let r = conns(3000).unwrap();
        assert_eq!(r.count, 3000);
        assert_eq!(r.answered, 3000);
        // The RSS delta is a measurement, not a property: in a test process whose other
        // threads just freed memory the allocator reuses, it can even be 0.
        assert!(r.bytes_per_conn.is_finite() && r.bytes_per_conn >= 0.0);
    }
}
