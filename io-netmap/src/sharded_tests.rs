//! `serve --cores` over netmap without a netmap module: a 2-shard runtime (run to
//! completion) on two ports of one simulated NIC, each bound to its own ring pair on its
//! own descriptor (`netmap:sim0-0`, `netmap:sim0-1`) exactly as netmap lays that out
//! (`sim::build_nic`: one region, global buffer indices, one netmap_if and one extra
//! buffer list per registration), against a plain peer stack on the test thread.
//!
//! The NIC side is `memnic::multiqueue`: the peer's frames are spread over the two RX
//! rings by the symmetric Toeplitz hash, as a NIC programmed with the runtime's key does,
//! and what either TX ring sends reaches the peer. Each simulated kernel moves frames
//! between its ring pair and its link end in one burst per sync (`sim::SimWire`).
//!
//! What is proven: 100 connections echoed with every byte checked by the shard and by
//! the peer; both shards serve, each flow on the shard its hash names, no segment seen
//! by a shard without its socket, nothing lost between the rings; and at the end every
//! buffer index of each registration is in exactly one place (its ring slots or the
//! extra-buffer list it hands back), never in the other registration's ring, while
//! frames were dropped on other threads (ARP copies are made from shard 0's pool and
//! dropped by shard 1).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use rumpnet_runtime::memnic::{self, RssWire};
use rumpnet_runtime::rss::{Rss, SYMMETRIC_KEY};
use rumpnet_runtime::{Mode, Queue, Runtime, RuntimeConfig, ShardApp, ShardCtx};
use rumpnet_stack::device::Device;
use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::link::LinkConfig;
use rumpnet_stack::rand::Rand;
use rumpnet_stack::stats::DropReason;
use rumpnet_stack::tcp::{Events, TcpError, TcpEvent, TcpHandle, TcpSocketRef};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr};
use rumpnet_stack::{Stack, StackConfig};

use crate::name::RingMode;
use crate::port::NetmapPort;
use crate::sim::{build_nic, SimConfig, SimReport, SimWire};

const PAIRS: usize = 2;
const CONNS: usize = 100;
const LEN: usize = 5000;
const ECHO_PORT: u16 = 7000;
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const TIMEOUT: Duration = Duration::from_secs(120);

/// Byte `i` of the stream from client port `port`: a misplaced or foreign byte shows.
fn pattern(port: u16, i: u64) -> u8 {
    let x = (i ^ (u64::from(port) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (x >> 23) as u8
}

fn mac(last: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, last])
}

/// RACK-TLP off on both sides: its probe timeout has no floor, and threads sharing two
/// cores get descheduled for milliseconds, so probes would fire spuriously and a late
/// probe after a close draws a RST, blurring the "no segment without a socket" check.
fn stack_config() -> StackConfig {
    let mut c = StackConfig::default();
    c.tcp.tcb.rack = false;
    c
}

/// Echoes every connection, checking each byte against [`pattern`].
#[derive(Default)]
struct Echo {
    conns: HashMap<TcpHandle, Conn>,
    flows: Vec<(SocketAddrV4, SocketAddrV4)>,
    verified: u64,
    bad: u64,
    completed: usize,
    errors: usize,
}

struct Conn {
    remote: SocketAddrV4,
    received: u64,
    pending: Vec<u8>,
    eof: bool,
}

impl Echo {
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

impl ShardApp for Echo {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        ctx.tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT), 1024)
            .expect("listen");
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        for ev in events {
            match ev.socket {
                TcpSocketRef::Listener(l) => {
                    while let Ok((h, remote)) = ctx.tcp_accept(l) {
                        let local = ctx.stack().tcp_info(h).expect("accepted").local;
                        self.flows.push((local, remote));
                        self.conns.insert(
                            h,
                            Conn {
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

/// The peer: a plain stack on the test thread, on the NIC's wire.
struct Peer {
    stack: Stack,
    port: Port<RssWire>,
    epoch: StdInstant,
}

impl Peer {
    fn poll(&mut self) -> bool {
        let now = Instant::from_micros(self.epoch.elapsed().as_micros() as u64);
        let r = self.stack.poll(now, std::slice::from_mut(&mut self.port));
        r.rx_frames > 0 || r.tx_frames > 0
    }

    fn run_for(&mut self, d: Duration) {
        let end = StdInstant::now() + d;
        while StdInstant::now() < end {
            if !self.poll() {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    completed: usize,
    verified: u64,
    bad: u64,
    errors: usize,
}

/// `n` connections to the echo port, `window` at a time, each sending [`LEN`] bytes and
/// FIN, the echo checked byte by byte.
fn run_clients(alive: &dyn Fn() -> bool, peer: &mut Peer, n: usize, window: usize) -> Tally {
    let server = SocketAddrV4::new(SERVER, ECHO_PORT);
    let mut conns: HashMap<TcpHandle, (u16, u64)> = HashMap::new();
    let mut tally = Tally::default();
    let (mut started, mut ramped) = (0, false);
    let mut events = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = StdInstant::now() + TIMEOUT;
    while tally.completed + tally.errors < n {
        assert!(alive(), "a shard died");
        assert!(StdInstant::now() < deadline, "timed out: {tally:?}");
        // One connection first, so ARP is resolved before the burst of SYNs.
        let limit = if ramped { window } else { 1 };
        while conns.len() < limit && started < n {
            let h = peer.stack.tcp_connect(server).expect("connect");
            let port = peer.stack.tcp_info(h).expect("info").local.port();
            let data: Vec<u8> = (0..LEN as u64).map(|i| pattern(port, i)).collect();
            assert_eq!(peer.stack.tcp_send(h, &data).expect("send"), LEN);
            peer.stack.tcp_shutdown(h).expect("shutdown");
            conns.insert(h, (port, 0));
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
            let Some((port, received)) = conns.get_mut(&h) else {
                continue;
            };
            loop {
                match peer.stack.tcp_recv(h, &mut buf) {
                    Ok(0) => {
                        assert_eq!(*received, LEN as u64, "short echo on port {port}");
                        peer.stack.tcp_close(h).expect("close");
                        conns.remove(&h);
                        tally.completed += 1;
                        break;
                    }
                    Ok(k) => {
                        for &b in &buf[..k] {
                            if b == pattern(*port, *received) {
                                tally.verified += 1;
                            } else {
                                tally.bad += 1;
                            }
                            *received += 1;
                        }
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => {
                        eprintln!("peer connection from port {port} failed: {e}");
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

#[test]
fn two_shards_on_two_ring_pairs_of_one_nic_echo_every_byte() {
    let cfg = SimConfig {
        tx_rings: PAIRS as u32,
        rx_rings: PAIRS as u32,
        slots: 256,
        buf_size: 2048,
        extra_bufs: 1024,
    };
    let mut nic = build_nic(cfg, 0x5eed);
    let link = LinkConfig {
        capacity: 4096,
        pool_frames: 8192,
        ..LinkConfig::default()
    };
    let (wire, ends) = memnic::multiqueue(link, PAIRS, &SYMMETRIC_KEY);
    let reports: Vec<Arc<Mutex<SimReport>>> = (0..PAIRS).map(|_| Arc::default()).collect();
    let mut own_bufs = Vec::new();
    let mut queues = Vec::new();
    for (k, (mut sp, end)) in nic.take_ports().into_iter().zip(ends).enumerate() {
        sp.kernel
            .attach_wire(SimWire::new(end, Arc::clone(&reports[k])));
        own_bufs.push(sp.own_bufs.clone());
        let port = NetmapPort::new(
            sp.region,
            sp.nifp_offset,
            RingMode::OneNic(k as u16),
            &format!("netmap:sim0-{k}"),
            sp.kernel,
            256,
        )
        .expect("register");
        // One ring pair bound, of the interface's two.
        assert_eq!(port.interface_rings(), (PAIRS, PAIRS));
        let caps = port.capabilities();
        assert_eq!((caps.rx_queues, caps.tx_queues), (1, 1));
        queues.push(Queue::new(port, 0));
    }
    // The two registrations start with disjoint buffers.
    let all: HashSet<u32> = own_bufs.iter().flatten().copied().collect();
    assert_eq!(all.len(), own_bufs.iter().map(Vec::len).sum::<usize>());

    let mut config = RuntimeConfig::new(
        PAIRS,
        Mode::RunToCompletion,
        InterfaceConfig::new(mac(2), "10.0.0.2/24".parse().unwrap()),
    );
    config.stack = stack_config();
    config.seed = Some(0x5eed);
    config.ring_size = 4096;
    let rt = Runtime::start(config, queues, |_| Echo::default()).expect("start");

    let mut stack = Stack::new(stack_config(), Rand::from_u64(1));
    stack
        .add_interface(InterfaceConfig::new(mac(1), "10.0.0.1/24".parse().unwrap()))
        .unwrap();
    let mut peer = Peer {
        stack,
        port: Port::new(wire),
        epoch: StdInstant::now(),
    };
    let tally = run_clients(&|| rt.running_shards() == PAIRS, &mut peer, CONNS, 25);
    // Let the last ACKs through, then stop while the peer keeps answering.
    peer.run_for(Duration::from_millis(100));
    rt.request_stop();
    let t = StdInstant::now();
    while !rt.is_finished() {
        assert!(t.elapsed() < Duration::from_secs(10), "shutdown hangs");
        peer.run_for(Duration::from_millis(1));
    }
    let report = rt.shutdown().expect("clean shutdown");
    let peer_stats = peer.stack.stats().clone();

    // Every byte, both ways.
    assert_eq!((tally.errors, tally.bad), (0, 0), "{tally:?}");
    assert_eq!(tally.completed, CONNS);
    assert_eq!(tally.verified, (CONNS * LEN) as u64);
    let rss = Rss::symmetric(PAIRS);
    let mut flows = HashSet::new();
    let (mut rx, mut tx) = (0, 0);
    for (s, (app, st)) in report.apps.iter().zip(&report.stats.shards).enumerate() {
        assert_eq!((app.bad, app.errors), (0, 0), "shard {s}");
        assert!(!app.flows.is_empty(), "shard {s} served nothing");
        assert_eq!(
            app.completed,
            app.flows.len(),
            "shard {s}: unfinished flows"
        );
        assert_eq!(app.verified, (app.flows.len() * LEN) as u64, "shard {s}");
        for &(local, remote) in &app.flows {
            assert_eq!(
                rss.shard_of_flow(*remote.ip(), *local.ip(), remote.port(), local.port()),
                s,
                "flow {remote} accepted on the wrong shard"
            );
            assert!(flows.insert(remote), "flow {remote} accepted twice");
        }
        assert_eq!(st.stack.tcp_passive_opens, app.flows.len() as u64);
        assert_eq!(st.stack.dropped(DropReason::TcpNoSocket), 0, "shard {s}");
        assert_eq!(st.stack.tcp_rst_tx, 0, "shard {s} sent a RST");
        assert_eq!(st.ring_rx_dropped, 0, "shard {s}: ring overflow");
        // The NIC put every flow on its shard's ring pair: only ARP was passed on.
        assert!(st.forwarded <= 64, "shard {s} forwarded {}", st.forwarded);
        rx += st.stack.tcp_rx;
        tx += st.stack.tcp_tx;
    }
    assert_eq!(flows.len(), CONNS);
    // ARP reached shard 1 as a copy from shard 0's pool, dropped on shard 1's thread.
    assert!(report.stats.shards[0].forwarded > 0, "nothing passed on");
    // Nothing lost or doubled between the peer and the rings.
    assert_eq!(rx, peer_stats.tcp_tx, "segments peer -> shards");
    assert_eq!(tx, peer_stats.tcp_rx, "segments shards -> peer");
    assert_eq!(peer_stats.tcp_rst_tx, 0);

    // Buffer accounting, now that both ports and all their frames are gone.
    for (k, rep) in reports.iter().enumerate() {
        let rep = rep.lock().unwrap().clone();
        assert!(rep.closed, "port {k} was not dropped");
        assert!(rep.violations.is_empty(), "port {k}: {:?}", rep.violations);
        assert!(
            rep.rx_frames > 0 && rep.tx_frames > 0,
            "ring pair {k} idle: {rep:?}"
        );
        // Only this registration's buffers ever went out of its TX ring (a frame of the
        // other port would have been copied, never swapped in).
        let own: HashSet<u32> = own_bufs[k].iter().copied().collect();
        assert!(
            rep.tx_bufs_seen.iter().all(|i| own.contains(i)),
            "ring pair {k} sent another registration's buffer"
        );
        let mut now = nic.pair_bufs(k);
        let extra = nic.returned_extra_bufs(k);
        assert_eq!(extra.len(), cfg.extra_bufs as usize, "port {k}: extra list");
        now.extend(extra);
        now.sort_unstable();
        assert_eq!(
            now, own_bufs[k],
            "port {k}: a buffer index leaked, doubled or crossed ports"
        );
    }
    eprintln!(
        "flows per shard: {:?}; frames per ring pair (rx, tx): {:?}",
        report
            .apps
            .iter()
            .map(|a| a.flows.len())
            .collect::<Vec<_>>(),
        reports
            .iter()
            .map(|r| {
                let r = r.lock().unwrap();
                (r.rx_frames, r.tx_frames)
            })
            .collect::<Vec<_>>()
    );
}

/// A frame received on one port and sent on the other is copied into the sending
/// port's slot buffer: buffer indices are global to the region, but each registration
/// keeps its own buffers (its extra list is freed with its descriptor).
#[test]
fn a_frame_crossing_ports_of_one_nic_is_copied_not_swapped() {
    let cfg = SimConfig {
        tx_rings: 2,
        rx_rings: 2,
        slots: 8,
        buf_size: 256,
        extra_bufs: 16,
    };
    let mut nic = build_nic(cfg, 3);
    let mut ports = nic.take_ports().into_iter();
    let (a, b) = (ports.next().unwrap(), ports.next().unwrap());
    let (own_a, own_b) = (a.own_bufs.clone(), b.own_bufs.clone());
    let mut pa = NetmapPort::new(
        a.region,
        a.nifp_offset,
        RingMode::OneNic(0),
        "a",
        a.kernel,
        1,
    )
    .expect("a");
    let mut pb = NetmapPort::new(
        b.region,
        b.nifp_offset,
        RingMode::OneNic(1),
        "b",
        b.kernel,
        1,
    )
    .expect("b");
    let bytes: Vec<u8> = (0..100u8).collect();
    pa.kernel_mut().inbound[0].push_back(bytes.clone());
    let mut got = Vec::new();
    assert_eq!(pa.rx_burst(0, &mut got, 8), 1);
    let idx = got[0].buf_idx();
    assert!(own_a.contains(&idx));
    assert_eq!(pb.tx_burst(0, &mut got), 1);
    assert_eq!(pb.stats().tx_copied, 1);
    assert_eq!(pb.kernel_mut().sent[0], vec![bytes]);
    assert!(own_b.contains(&pb.kernel_mut().sent_idx[0][0]));
    assert_ne!(pb.kernel_mut().sent_idx[0][0], idx);
    pa.wait(None).unwrap();
    pb.wait(None).unwrap();
    drop((pa, pb));
    for (k, own) in [own_a, own_b].iter().enumerate() {
        let mut now = nic.pair_bufs(k);
        now.extend(nic.returned_extra_bufs(k));
        now.sort_unstable();
        assert_eq!(&now, own, "registration {k}");
    }
}
