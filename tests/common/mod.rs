//! A small network simulator for integration tests: stacks joined by in-memory links,
//! stepped on one virtual clock.
#![allow(dead_code)]

use rumpnet::stack::iface::{InterfaceConfig, Port};
use rumpnet::stack::link::{self, LinkConfig, LinkEnd};
use rumpnet::stack::rand::Rand;
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use rumpnet::stack::{Stack, StackConfig};

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

    pub fn poll(&mut self, now: Instant) {
        for p in &mut self.ports {
            p.device_mut().set_now(now);
        }
        self.stack.poll(now, &mut self.ports);
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
}

/// Two hosts on one link: 10.0.0.1 (mac ..:01) and 10.0.0.2 (mac ..:02).
pub fn two_hosts(config: LinkConfig) -> Net {
    let (a, b) = link::pair(config);
    let mut na = Node::new(StackConfig::default(), 1);
    na.attach(a, mac(1), "10.0.0.1/24");
    let mut nb = Node::new(StackConfig::default(), 2);
    nb.attach(b, mac(2), "10.0.0.2/24");
    Net::new(vec![na, nb])
}
