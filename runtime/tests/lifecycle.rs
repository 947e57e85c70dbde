//! Starting and stopping a runtime: configuration errors, live counters, pinning, and a
//! graceful shutdown that closes the connections the applications hold and drains.

mod common;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant as StdInstant};

use rumpnet_runtime::{Mode, Queue, Runtime, RuntimeError, ShardApp, ShardCtx};
use rumpnet_stack::device::{Device, HeapFrame};
use rumpnet_stack::iface::InterfaceConfig;
use rumpnet_stack::link::{self, LinkEnd};
use rumpnet_stack::stats::DropReason;
use rumpnet_stack::tcp::{Events, TcpError, TcpEvent, TcpHandle, TcpSocketRef};
use rumpnet_stack::wire::Ipv4Addr;

use common::*;

/// Accepts connections and holds them open, doing nothing else; counts what it saw.
#[derive(Default)]
struct Holder {
    held: Vec<TcpHandle>,
    shutdown_called: bool,
    events_while_stopping: usize,
}

impl ShardApp for Holder {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        ctx.tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT), 128)
            .expect("listen");
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        if ctx.is_stopping() {
            self.events_while_stopping += events.len();
        }
        for ev in events {
            if let TcpSocketRef::Listener(l) = ev.socket {
                while let Ok((h, _)) = ctx.tcp_accept(l) {
                    self.held.push(h);
                }
            }
        }
    }

    fn on_shutdown(&mut self, ctx: &mut ShardCtx<'_>) {
        assert!(ctx.is_stopping());
        self.shutdown_called = true;
    }
}

fn graceful_shutdown(mode: Mode) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 40;
    let shards = 2;
    let mut config = rt_config(shards, mode);
    config.drain_timeout = Duration::from_secs(5);
    match backend(mode, shards, 1) {
        Backend::Link(d, q) => shutdown_run(config, q, Peer::new(d, 3), N),
        Backend::Nic(d, q) => shutdown_run(config, q, Peer::new(d, 3), N),
    }
}

fn shutdown_run<D: Device, Q>(
    config: rumpnet_runtime::RuntimeConfig,
    queues: Vec<Queue<Q>>,
    mut peer: Peer<D>,
    n: usize,
) where
    Q: Device<Frame = HeapFrame> + Send + 'static,
{
    let drain_timeout = config.drain_timeout;
    let rt = Runtime::start(config, queues, |_| Holder::default()).expect("start");
    assert!(!rt.is_finished());
    let server = SocketAddrV4::new(RT_IP, ECHO_PORT);
    let mut conns: HashMap<TcpHandle, bool> = HashMap::new();
    // One first (ARP), then the rest.
    conns.insert(peer.stack.tcp_connect(server).unwrap(), false);
    let t = StdInstant::now();
    let mut events = Vec::new();
    let established = |peer: &mut Peer<D>, conns: &HashMap<TcpHandle, bool>| {
        conns
            .keys()
            .all(|&h| peer.stack.tcp_state(h) == Ok(rumpnet_stack::tcp::State::Established))
    };
    while !established(&mut peer, &conns) {
        assert!(t.elapsed() < TIMEOUT);
        peer.run_for(Duration::from_millis(1));
    }
    for _ in 1..n {
        conns.insert(peer.stack.tcp_connect(server).unwrap(), false);
    }
    while !established(&mut peer, &conns) {
        assert!(t.elapsed() < TIMEOUT);
        peer.run_for(Duration::from_millis(1));
    }
    peer.stack.tcp_events(&mut events);
    events.clear();

    // The shards publish their counters while they run.
    let t = StdInstant::now();
    loop {
        let stats = rt.stats();
        if stats.total().tcp_passive_opens == n as u64 {
            assert_eq!(stats.shards.len(), 2);
            assert!(stats.shards.iter().all(|s| s.polls > 0));
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "stats not published");
        peer.run_for(Duration::from_millis(5));
    }

    // Stop: every shard closes what it accepted; the peer sees EOF on each connection
    // and closes too; the shards drain long before their deadline.
    let t = StdInstant::now();
    rt.request_stop();
    let mut buf = [0u8; 64];
    while !rt.is_finished() {
        assert!(t.elapsed() < drain_timeout * 2, "shutdown hangs");
        peer.poll();
        peer.stack.tcp_events(&mut events);
        for ev in events.drain(..) {
            let TcpSocketRef::Connection(h) = ev.socket else {
                continue;
            };
            assert!(
                !ev.events.contains(Events::ERROR),
                "reset instead of closed"
            );
            if let Some(eof) = conns.get_mut(&h) {
                if !*eof && peer.stack.tcp_recv(h, &mut buf) == Ok(0) {
                    *eof = true;
                    peer.stack.tcp_close(h).unwrap();
                }
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let drained_in = t.elapsed();
    let report = rt.shutdown().expect("clean shutdown");

    assert!(
        drained_in < drain_timeout,
        "drained in {drained_in:?}: the closes completed, no deadline needed"
    );
    assert!(conns.values().all(|&eof| eof), "every connection got a FIN");
    let held: usize = report.apps.iter().map(|a| a.held.len()).sum();
    assert_eq!(held, n);
    assert!(report.apps.iter().all(|a| a.shutdown_called));
    // The closes were orderly (FIN, not RST) on both sides.
    for s in &report.stats.shards {
        assert_eq!(s.stack.tcp_rst_tx, 0);
        assert_eq!(s.stack.dropped(DropReason::TcpNoSocket), 0);
    }
    assert_eq!(peer.stack.stats().tcp_rst_tx, 0);
    // Summed counters are the per-shard ones added up.
    let total = report.stats.total();
    assert_eq!(
        total.tcp_rx,
        report
            .stats
            .shards
            .iter()
            .map(|s| s.stack.tcp_rx)
            .sum::<u64>()
    );
    assert_eq!(total.tcp_passive_opens, n as u64);
}

#[test]
fn graceful_shutdown_pipelined() {
    graceful_shutdown(Mode::Pipelined);
}

#[test]
fn graceful_shutdown_run_to_completion() {
    graceful_shutdown(Mode::RunToCompletion);
}

#[test]
fn threads_are_pinned_within_the_mask() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_peer, rt_end) = link::pair(link_config());
    let config = rt_config(2, Mode::Pipelined);
    let rt =
        Runtime::start(config, vec![Queue::new(rt_end, 0)], |_| Holder::default()).expect("start");
    let placement = rt.placement().clone();
    assert_eq!(placement.shards.len(), 2);
    assert_eq!(placement.io.len(), 1);
    let mask: Vec<usize> = core_ids();
    for cpu in placement.shards.iter().chain(placement.io.iter()) {
        let cpu = cpu.expect("placed");
        assert!(mask.contains(&cpu), "cpu {cpu} outside the mask {mask:?}");
    }
    assert!(!placement.to_string().is_empty());
    let report = rt.shutdown().unwrap();
    for s in &report.stats.shards {
        // Pinning inside the process's own mask succeeds.
        assert_eq!(s.cpu, placement.shards[s.shard]);
    }
    assert_eq!(report.stats.io.len(), 1);
}

fn core_ids() -> Vec<usize> {
    rumpnet_runtime::topology::Topology::detect()
        .cpus
        .iter()
        .map(|c| c.id)
        .collect()
}

#[test]
fn configuration_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ends = |k: usize| -> Vec<Queue<LinkEnd>> {
        (0..k)
            .map(|_| Queue::new(link::pair(link_config()).1, 0))
            .collect()
    };
    // Run-to-completion needs a queue per shard.
    let r = Runtime::start(rt_config(2, Mode::RunToCompletion), ends(1), |_| {
        Holder::default()
    });
    assert!(matches!(
        r,
        Err(RuntimeError::QueueCount {
            queues: 1,
            shards: 2,
            ..
        })
    ));
    let r = Runtime::start(rt_config(1, Mode::Pipelined), ends(0), |_| {
        Holder::default()
    });
    assert!(matches!(r, Err(RuntimeError::QueueCount { .. })));
    let r = Runtime::start(rt_config(0, Mode::Pipelined), ends(1), |_| {
        Holder::default()
    });
    assert!(matches!(r, Err(RuntimeError::NoShards)));
    // A stack that cannot be built (0.0.0.0 as host address): reported by the shard
    // threads, and the ones that started are stopped again.
    let mut c = rt_config(2, Mode::Pipelined);
    c.iface = InterfaceConfig::new(mac(2), "0.0.0.0/8".parse().unwrap());
    let r = Runtime::start(c, ends(1), |_| Holder::default());
    assert!(matches!(r, Err(RuntimeError::Interface(_))), "{r:?}");
}

/// `TcpError` is what a refused connect looks like on a shard: no listener anywhere.
#[test]
fn connect_needs_a_route() {
    struct Dial(Option<Result<TcpHandle, TcpError>>);
    impl ShardApp for Dial {
        fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
            // Off-link without a gateway: no route, reported, not panicked on.
            self.0 = Some(ctx.tcp_connect(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80)));
        }
        fn on_poll(&mut self, _: &mut ShardCtx<'_>, _: &[TcpEvent]) {}
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_peer, rt_end) = link::pair(link_config());
    let rt = Runtime::start(
        rt_config(2, Mode::Pipelined),
        vec![Queue::new(rt_end, 0)],
        |_| Dial(None),
    )
    .unwrap();
    let report = rt.shutdown().unwrap();
    for a in &report.apps {
        assert_eq!(a.0, Some(Err(TcpError::NoRoute)));
    }
}
