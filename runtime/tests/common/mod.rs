//! What the runtime's integration tests share: the peer stack, the backends, the
//! configurations.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use rumpnet_runtime::memnic::{self, RssWire};
use rumpnet_runtime::rss::SYMMETRIC_KEY;
use rumpnet_runtime::{Mode, Queue, RunReport, Runtime, RuntimeConfig, ShardApp};
use rumpnet_stack::device::Device;
use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::link::{self, LinkConfig, LinkEnd};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr};
use rumpnet_stack::{Stack, StackConfig};

/// Runtime tests start many threads on a 2-core machine: one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const RT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const ECHO_PORT: u16 = 7000;
pub const PEER_PORT: u16 = 9000;
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub fn mac(last: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, last])
}

/// Byte `i` of the stream a connection from port `port` carries: a mix of both, so a
/// misplaced, repeated or foreign byte shows.
pub fn pattern(port: u16, i: u64) -> u8 {
    let x = (i ^ (u64::from(port) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (x >> 23) as u8
}

pub fn link_config() -> LinkConfig {
    LinkConfig {
        capacity: 4096,
        pool_frames: 8192,
        ..LinkConfig::default()
    }
}

/// The stacks of both sides. RACK-TLP is off: its probe timeout is twice the smoothed
/// RTT with no floor, and an RTT of tens of microseconds on an idle in-memory link meets
/// threads that share two cores and get descheduled for milliseconds, so probes fire
/// spuriously; a probe that arrives after its connection closed is answered with a RST
/// (RFC 9293 §3.10.7.1), which would blur the check that no shard ever sees a segment
/// it has no socket for. Losses are still repaired (duplicate ACKs, RTO); there are none
/// here.
pub fn stack_config() -> StackConfig {
    let mut c = StackConfig::default();
    c.tcp.tcb.rack = false;
    c
}

pub fn rt_config(shards: usize, mode: Mode) -> RuntimeConfig {
    let iface = InterfaceConfig::new(mac(2), "10.0.0.2/24".parse().unwrap());
    let mut c = RuntimeConfig::new(shards, mode, iface);
    c.stack = stack_config();
    c.seed = Some(0x5eed + shards as u64);
    c.ring_size = 4096;
    c
}

/// The backend: the peer's device and the runtime's queues.
// One per test, moved once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Link(LinkEnd, Vec<Queue<LinkEnd>>),
    Nic(RssWire, Vec<Queue<LinkEnd>>),
}

/// One link for pipelined mode with one I/O thread; an RSS NIC with one queue per
/// shard (run-to-completion) or `io` queues (pipelined with `io` I/O threads).
pub fn backend(mode: Mode, shards: usize, io: usize) -> Backend {
    match (mode, io) {
        (Mode::Pipelined, 1) => {
            let (peer, rt) = link::pair(link_config());
            Backend::Link(peer, vec![Queue::new(rt, 0)])
        }
        _ => {
            let queues = if mode == Mode::RunToCompletion {
                shards
            } else {
                io
            };
            let (wire, ends) = memnic::multiqueue(link_config(), queues, &SYMMETRIC_KEY);
            Backend::Nic(wire, ends.into_iter().map(|e| Queue::new(e, 0)).collect())
        }
    }
}

/// The peer: a plain stack polled by the test thread with a real clock.
pub struct Peer<D: Device> {
    pub stack: Stack,
    pub port: Port<D>,
    pub epoch: StdInstant,
}

impl<D: Device> Peer<D> {
    pub fn new(dev: D, seed: u64) -> Peer<D> {
        let mut stack = Stack::new(stack_config(), Rand::from_u64(seed));
        stack
            .add_interface(InterfaceConfig::new(mac(1), "10.0.0.1/24".parse().unwrap()))
            .unwrap();
        Peer {
            stack,
            port: Port::new(dev),
            epoch: StdInstant::now(),
        }
    }

    /// One poll; true if frames moved.
    pub fn poll(&mut self) -> bool {
        let now = Instant::from_micros(self.epoch.elapsed().as_micros() as u64);
        let r = self.stack.poll(now, std::slice::from_mut(&mut self.port));
        r.rx_frames > 0 || r.tx_frames > 0
    }

    /// Poll for `d`, pausing briefly when idle (the shards need the CPUs).
    pub fn run_for(&mut self, d: Duration) {
        let end = StdInstant::now() + d;
        while StdInstant::now() < end {
            if !self.poll() {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

/// Stop the runtime while the peer keeps answering, and wait for every thread.
pub fn stop<A: ShardApp, D: Device>(rt: Runtime<A>, peer: &mut Peer<D>) -> RunReport<A> {
    rt.request_stop();
    let t = StdInstant::now();
    while !rt.is_finished() {
        assert!(t.elapsed() < Duration::from_secs(10), "shutdown hangs");
        peer.run_for(Duration::from_millis(1));
    }
    rt.shutdown().expect("clean shutdown")
}
