//! A small network simulator for integration tests: stacks joined by in-memory links,
//! stepped on one virtual clock.
#![allow(dead_code)]

use rumpnet::stack::iface::{InterfaceConfig, Port};
use rumpnet::stack::link::{self, LinkConfig, LinkEnd};
use rumpnet::stack::rand::Rand;
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use rumpnet::stack::{PollResult, Stack, StackConfig};

/// One host: a stack and the ports of its interfaces (port `i` = interface `i`).
pub struct Node {
    pub stack: Stack,
    pub ports: Vec<Port<LinkEnd>>,
}

impl Node {
    pub fn new(config: StackConfig, seed: u64) -> Node {
        Node {
            stack: Stack::new(config, Rand::from_u64(seed)),
            ports: Vec::new(),
        }
    }

    /// Attach `end` as a new interface with `mac` and `addr`.
    pub fn attach(&mut self, end: LinkEnd, mac: EthernetAddress, addr: &str) -> usize {
        self.attach_with(end, InterfaceConfig::new(mac, cidr(addr)))
    }

    pub fn attach_with(&mut self, end: LinkEnd, cfg: InterfaceConfig) -> usize {
        let i = self.stack.add_interface(cfg).expect("interface");
        assert_eq!(i, self.ports.len());
        self.ports.push(Port::new(end));
        i
    }

    pub fn poll(&mut self, now: Instant) -> PollResult {
        for p in &mut self.ports {
            p.device_mut().set_now(now);
        }
        self.stack.poll(now, &mut self.ports)
    }

    /// When this node next has work if nobody calls its sockets: a stack timer, a frame
    /// due on one of its links, or a frame its links hold back for reordering.
    pub fn next_event_at(&mut self) -> Option<Instant> {
        let mut at = self.stack.poll_at();
        for p in &mut self.ports {
            let dev = p.device_mut();
            for t in [dev.next_rx_at(), dev.next_release_at()] {
                at = match (at, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        at
    }
}

pub fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().expect("cidr")
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

pub fn mac(last: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, last])
}

/// A network of nodes on one clock.
pub struct Net {
    pub nodes: Vec<Node>,
    pub now: Instant,
}

impl Net {
    pub fn new(nodes: Vec<Node>) -> Net {
        Net {
            nodes,
            now: Instant::from_secs(1),
        }
    }

    /// Poll every node once per millisecond for `d`.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            for n in &mut self.nodes {
                n.poll(self.now);
            }
            self.now += Duration::from_millis(1);
        }
    }

    pub fn node(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    /// Poll every node at the current time, again while any of them received a full
    /// burst (its receive ring may hold more: a host runs to completion rather than
    /// leave frames waiting a millisecond per burst); true if any frame moved.
    pub fn poll_once(&mut self) -> bool {
        let now = self.now;
        let mut busy = false;
        for _ in 0..10_000 {
            let mut full = false;
            for n in &mut self.nodes {
                let burst = n
                    .ports
                    .iter()
                    .map(|p| p.capabilities().max_burst)
                    .min()
                    .unwrap_or(1);
                let r = n.poll(now);
                busy |= r.rx_frames > 0 || r.tx_frames > 0;
                full |= r.rx_frames >= burst;
            }
            if !full {
                break;
            }
        }
        busy
    }

    /// The earliest time any node has work without socket calls (see
    /// [`Node::next_event_at`]).
    pub fn next_event_at(&mut self) -> Option<Instant> {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.next_event_at())
            .min()
    }
}

/// Two hosts on one link: 10.0.0.1 (mac ..:01) and 10.0.0.2 (mac ..:02).
pub fn two_hosts(config: LinkConfig) -> Net {
    two_hosts_with(config, StackConfig::default(), (1, 2))
}

/// [`two_hosts`] with this stack configuration on both and these stack seeds.
pub fn two_hosts_with(config: LinkConfig, stack: StackConfig, seeds: (u64, u64)) -> Net {
    let (a, b) = link::pair(config);
    let mut na = Node::new(stack.clone(), seeds.0);
    na.attach(a, mac(1), "10.0.0.1/24");
    let mut nb = Node::new(stack, seeds.1);
    nb.attach(b, mac(2), "10.0.0.2/24");
    Net::new(vec![na, nb])
}
