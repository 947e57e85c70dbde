//! Two runtimes joined by an in-memory link, each serving the std-like sockets: the
//! "server" at 10.0.0.2 (installed as the process default) and the "client" at
//! 10.0.0.1 (entered per thread).
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rumpnet_runtime::net::{NetConfig, NetHandle, NetRuntime};
use rumpnet_runtime::{IdlePolicy, Mode, Queue, RuntimeConfig};
use rumpnet_stack::iface::InterfaceConfig;
use rumpnet_stack::link::{self, LinkConfig};
use rumpnet_stack::wire::EthernetAddress;
use rumpnet_stack::StackConfig;

/// One pair of runtimes at a time (threads on a small machine; the process default).
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub const SERVER_IP: &str = "10.0.0.2";
pub const CLIENT_IP: &str = "10.0.0.1";

/// Byte `i` of stream `id`: a mix of both, so a misplaced or foreign byte shows.
pub fn pattern(id: u64, i: u64) -> u8 {
    let x = (i ^ (id << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (x >> 23) as u8
}

fn config(shards: usize, last: u8, cidr: &str) -> RuntimeConfig {
    let iface = InterfaceConfig::new(
        EthernetAddress([0x02, 0, 0, 0, 0, last]),
        cidr.parse().unwrap(),
    );
    let mut c = RuntimeConfig::new(shards, Mode::Pipelined, iface);
    let mut stack = StackConfig::default();
    // See tests/common: RACK's probe timeout has no floor and misfires on a loaded
    // machine with microsecond RTTs.
    stack.tcp.tcb.rack = false;
    c.stack = stack;
    c.seed = Some(0x5eed ^ u64::from(last));
    c.ring_size = 4096;
    c.pin = false;
    c.idle = IdlePolicy::Adaptive {
        min_spin: 16,
        max_spin: 256,
        max_sleep: Duration::from_millis(1),
    };
    c
}

pub struct Pair {
    pub server: NetRuntime,
    pub client: NetRuntime,
}

impl Pair {
    /// The two runtimes, `shards` shards each; the server is the process default.
    pub fn start(shards: usize) -> Pair {
        Pair::start_with(shards, NetConfig::default())
    }

    pub fn start_with(shards: usize, net: NetConfig) -> Pair {
        let (a, b) = link::pair(LinkConfig {
            capacity: 4096,
            pool_frames: 8192,
            ..LinkConfig::default()
        });
        let server = NetRuntime::start(
            config(shards, 2, "10.0.0.2/24"),
            net,
            vec![Queue::new(a, 0)],
        )
        .expect("server runtime");
        let client = NetRuntime::start(
            config(shards, 1, "10.0.0.1/24"),
            net,
            vec![Queue::new(b, 0)],
        )
        .expect("client runtime");
        server.install_default();
        Pair { server, client }
    }

    pub fn client(&self) -> NetHandle {
        self.client.handle().clone()
    }

    /// Stop the server first (the client still answers its FINs), then the client.
    pub fn stop(self) {
        NetHandle::uninstall_default();
        let Pair { server, client } = self;
        server.shutdown().expect("server stops cleanly");
        client.shutdown().expect("client stops cleanly");
    }
}
