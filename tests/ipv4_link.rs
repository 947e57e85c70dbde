//! Two (and three) stacks over the in-memory link: ARP, ping, UDP, routing through a
//! gateway stack, fragmentation and reassembly under reordering and duplication.

mod common;

use std::net::SocketAddrV4;

use common::*;
use rumpnet::stack::iface::InterfaceConfig;
use rumpnet::stack::link::{self, Impairments, LinkConfig};
use rumpnet::stack::stats::DropReason;
use rumpnet::stack::time::Duration;
use rumpnet::stack::udp::UdpError;
use rumpnet::stack::StackConfig;

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

#[test]
fn gratuitous_arp_then_resolution_and_ping_both_ways() {
    let mut net = two_hosts(LinkConfig::default());
    net.run(Duration::from_millis(2));
    // Gratuitous ARP at start: each announced its address.
    assert_eq!(net.node(0).stack.stats().arp_requests_tx, 1);
    // An announcement is not addressed to the receiver: no entry is created (RFC 826).
    assert_eq!(net.node(1).stack.neighbor(0, ip("10.0.0.1")), None);

    let h = net.node(0).stack.icmp_bind(0x1234).unwrap();
    let data: Vec<u8> = (0..56).collect();
    net.node(0)
        .stack
        .icmp_send_echo(h, ip("10.0.0.2"), 1, &data)
        .unwrap();
    net.run(Duration::from_millis(5));
    let mut buf = [0u8; 128];
    let r = net.node(0).stack.icmp_recv(h, &mut buf).unwrap();
    assert_eq!((r.src, r.seq_no, r.len), (ip("10.0.0.2"), 1, 56));
    assert_eq!(&buf[..56], &data[..]);
    // Both learnt each other: A from B's reply, B from A's request (it was the target).
    assert_eq!(net.node(0).stack.neighbor(0, ip("10.0.0.2")), Some(mac(2)));
    assert_eq!(net.node(1).stack.neighbor(0, ip("10.0.0.1")), Some(mac(1)));
    assert_eq!(net.node(1).stack.stats().icmp_echo_replies_tx, 1);
    // One request each way was all it took.
    assert_eq!(net.node(0).stack.stats().arp_requests_tx, 2);
    assert_eq!(net.node(1).stack.stats().arp_replies_tx, 1);

    let hb = net.node(1).stack.icmp_bind(7).unwrap();
    for seq in 0..10 {
        net.node(1)
            .stack
            .icmp_send_echo(hb, ip("10.0.0.1"), seq, b"pong?")
            .unwrap();
    }
    net.run(Duration::from_millis(5));
    for seq in 0..10 {
        let r = net.node(1).stack.icmp_recv(hb, &mut buf).unwrap();
        assert_eq!(
            (r.src, r.seq_no, &buf[..r.len]),
            (ip("10.0.0.1"), seq, &b"pong?"[..])
        );
    }
    assert_eq!(
        net.node(1).stack.stats().arp_requests_tx,
        1,
        "B needed no ARP"
    );
    assert_eq!(net.node(0).stack.stats().total_drops(), 0);
    assert_eq!(net.node(1).stack.stats().total_drops(), 0);
}

#[test]
fn unresolvable_neighbour_is_retried_then_dropped_and_counted() {
    let mut net = two_hosts(LinkConfig::default());
    let h = net.node(0).stack.icmp_bind(1).unwrap();
    net.node(0)
        .stack
        .icmp_send_echo(h, ip("10.0.0.99"), 1, b"x")
        .unwrap();
    net.run(Duration::from_millis(3500));
    let s = net.node(0).stack.stats();
    assert_eq!(s.arp_requests_tx, 1 + 3, "announcement + 3 probes");
    assert_eq!(s.dropped(DropReason::ArpUnresolved), 1);
}

#[test]
fn udp_both_ways_and_port_unreachable() {
    let mut net = two_hosts(LinkConfig::default());
    let a = net.node(0).stack.udp_bind(sa("0.0.0.0:0")).unwrap();
    let b = net.node(1).stack.udp_bind(sa("10.0.0.2:7777")).unwrap();
    let a_addr = net.node(0).stack.udp_local_addr(a).unwrap();
    assert!((49152..=65535).contains(&a_addr.port()));
    for k in 0..20u8 {
        net.node(0)
            .stack
            .udp_send_to(a, &[k; 100], sa("10.0.0.2:7777"))
            .unwrap();
    }
    net.run(Duration::from_millis(5));
    let mut buf = [0u8; 2048];
    for k in 0..20u8 {
        let (n, from) = net.node(1).stack.udp_recv_from(b, &mut buf).unwrap();
        assert_eq!(from, SocketAddrV4::new(ip("10.0.0.1"), a_addr.port()));
        assert_eq!(&buf[..n], &[k; 100][..]);
    }
    assert_eq!(
        net.node(1).stack.udp_recv_from(b, &mut buf),
        Err(UdpError::WouldBlock)
    );
    // And back.
    net.node(1)
        .stack
        .udp_send_to(
            b,
            b"reply",
            SocketAddrV4::new(ip("10.0.0.1"), a_addr.port()),
        )
        .unwrap();
    net.run(Duration::from_millis(3));
    let (n, from) = net.node(0).stack.udp_recv_from(a, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"reply"[..], sa("10.0.0.2:7777")));

    // A connected socket hears of the closed port through ICMP port unreachable.
    let c = net.node(0).stack.udp_bind(sa("0.0.0.0:0")).unwrap();
    net.node(0).stack.udp_connect(c, sa("10.0.0.2:9")).unwrap();
    net.node(0).stack.udp_send(c, b"anyone?").unwrap();
    net.run(Duration::from_millis(3));
    assert_eq!(
        net.node(1).stack.stats().dropped(DropReason::UdpNoSocket),
        1
    );
    assert_eq!(net.node(1).stack.stats().icmp_tx, 1);
    assert_eq!(
        net.node(0).stack.udp_recv_from(c, &mut buf),
        Err(UdpError::ConnectionRefused)
    );
    assert_eq!(net.node(0).stack.stats().icmp_errors_rx, 1);
    // Binding rules.
    assert_eq!(
        net.node(1).stack.udp_bind(sa("0.0.0.0:7777")),
        Err(UdpError::AddrInUse)
    );
    assert_eq!(
        net.node(1).stack.udp_bind(sa("10.9.9.9:1")),
        Err(UdpError::AddrNotAvailable)
    );
    assert_eq!(
        net.node(0)
            .stack
            .udp_send_to(a, &vec![0; 70_000], sa("10.0.0.2:1")),
        Err(UdpError::TooLarge)
    );
    assert_eq!(
        net.node(0).stack.udp_send_to(a, b"x", sa("192.0.2.1:1")),
        Err(UdpError::NoRoute)
    );
}

#[test]
fn icmp_port_unreachable_is_rate_limited() {
    let mut net = two_hosts(LinkConfig::default());
    let a = net
        .node(0)
        .stack
        .udp_bind_with(
            sa("0.0.0.0:0"),
            rumpnet::stack::udp::UdpSocketOptions {
                tx_datagrams: 1024,
                ..Default::default()
            },
        )
        .unwrap();
    // Resolve ARP both ways first (the first datagram draws one error).
    net.node(0)
        .stack
        .udp_send_to(a, b"x", sa("10.0.0.2:9"))
        .unwrap();
    net.run(Duration::from_millis(3));
    assert_eq!(net.node(1).stack.stats().icmp_tx, 1);
    // Then 200 datagrams to a closed port within one millisecond.
    for _ in 0..200 {
        net.node(0)
            .stack
            .udp_send_to(a, b"x", sa("10.0.0.2:9"))
            .unwrap();
    }
    // (A burst is at most 64 frames per poll: four polls take them all.)
    net.run(Duration::from_millis(6));
    let s = net.node(1).stack.stats().clone();
    assert_eq!(s.dropped(DropReason::UdpNoSocket), 201);
    // The bucket held 49 tokens after the first error, plus at most a few refilled at
    // 1000/s over the test's 9 ms.
    let sent = s.icmp_tx - 1;
    assert!((49..=58).contains(&sent), "icmp errors sent {sent}");
    assert_eq!(s.dropped(DropReason::IcmpRateLimited), 200 - sent);
    assert_eq!(net.node(0).stack.stats().icmp_errors_rx, s.icmp_tx);
}

/// A -- G -- B, G forwarding between 10.0.1.0/24 and 10.0.2.0/24.
fn routed() -> Net {
    let (a_end, g0) = link::pair(LinkConfig::default());
    let (g1, b_end) = link::pair(LinkConfig::default());
    let mut a = Node::new(StackConfig::default(), 11);
    a.attach(a_end, mac(0xa), "10.0.1.2/24");
    a.stack.set_default_gateway(ip("10.0.1.1")).unwrap();
    let mut g = Node::new(
        StackConfig {
            ip_forward: true,
            ..Default::default()
        },
        12,
    );
    g.attach(g0, mac(0x10), "10.0.1.1/24");
    g.attach(g1, mac(0x11), "10.0.2.1/24");
    let mut b = Node::new(StackConfig::default(), 13);
    b.attach(b_end, mac(0xb), "10.0.2.2/24");
    b.stack.set_default_gateway(ip("10.0.2.1")).unwrap();
    Net::new(vec![a, g, b])
}

#[test]
fn routed_through_a_gateway_stack() {
    let mut net = routed();
    let h = net.node(0).stack.icmp_bind(5).unwrap();
    net.node(0)
        .stack
        .icmp_send_echo(h, ip("10.0.2.2"), 1, b"through the router")
        .unwrap();
    net.run(Duration::from_millis(10));
    let mut buf = [0u8; 64];
    let r = net.node(0).stack.icmp_recv(h, &mut buf).unwrap();
    assert_eq!(r.src, ip("10.0.2.2"));
    assert_eq!(&buf[..r.len], b"through the router");
    // B's reply went via its gateway too: G forwarded both directions.
    assert_eq!(net.node(1).stack.stats().ipv4_forwarded, 2);
    assert_eq!(
        net.node(2).stack.neighbor(0, ip("10.0.2.1")),
        Some(mac(0x11))
    );

    // UDP both ways, with a datagram the router must fragment further? No: same MTU.
    let ua = net.node(0).stack.udp_bind(sa("10.0.1.2:1000")).unwrap();
    let ub = net.node(2).stack.udp_bind(sa("10.0.2.2:2000")).unwrap();
    net.node(0)
        .stack
        .udp_send_to(ua, &[7u8; 4000], sa("10.0.2.2:2000"))
        .unwrap();
    net.run(Duration::from_millis(5));
    let mut big = [0u8; 5000];
    let (n, from) = net.node(2).stack.udp_recv_from(ub, &mut big).unwrap();
    assert_eq!((n, from), (4000, sa("10.0.1.2:1000")));
    assert!(big[..n].iter().all(|&b| b == 7));
    net.node(2).stack.udp_send_to(ub, b"ack", from).unwrap();
    net.run(Duration::from_millis(5));
    let (n, _) = net.node(0).stack.udp_recv_from(ua, &mut big).unwrap();
    assert_eq!(&big[..n], b"ack");

    // No route on the gateway: ICMP net unreachable goes back to the sender, whose
    // UDP socket is not connected, so it only counts the error.
    net.node(0)
        .stack
        .udp_send_to(ua, b"nowhere", sa("192.0.2.7:9"))
        .unwrap();
    net.run(Duration::from_millis(5));
    assert_eq!(
        net.node(1).stack.stats().dropped(DropReason::Ipv4NoRoute),
        1
    );
    assert_eq!(net.node(0).stack.stats().icmp_errors_rx, 1);
}

#[test]
fn a_host_does_not_forward() {
    let mut net = routed();
    // Turn the router into a host: it must drop what is not for it.
    let (a_end, g0) = link::pair(LinkConfig::default());
    let (g1, b_end) = link::pair(LinkConfig::default());
    net.nodes[0].ports[0] = rumpnet::stack::iface::Port::new(a_end);
    let mut g = Node::new(StackConfig::default(), 99);
    g.attach(g0, mac(0x10), "10.0.1.1/24");
    g.attach(g1, mac(0x11), "10.0.2.1/24");
    net.nodes[1] = g;
    net.nodes[2].ports[0] = rumpnet::stack::iface::Port::new(b_end);
    let h = net.node(0).stack.icmp_bind(5).unwrap();
    net.node(0)
        .stack
        .icmp_send_echo(h, ip("10.0.2.2"), 1, b"x")
        .unwrap();
    net.run(Duration::from_millis(10));
    assert_eq!(
        net.node(1).stack.stats().dropped(DropReason::Ipv4NotForUs),
        1
    );
    assert_eq!(net.node(1).stack.stats().ipv4_forwarded, 0);
}

#[test]
fn fragmented_udp_reassembled_out_of_order_and_duplicated() {
    let payload: Vec<u8> = (0..9000u32).map(|i| (i * 31 % 251) as u8).collect();
    for seed in 0..20 {
        let imp = Impairments {
            seed,
            reorder: 0.5,
            duplicate: 0.3,
            ..Default::default()
        };
        let mut net = two_hosts(LinkConfig {
            a_to_b: imp,
            ..Default::default()
        });
        let a = net.node(0).stack.udp_bind(sa("0.0.0.0:5000")).unwrap();
        let b = net.node(1).stack.udp_bind(sa("0.0.0.0:6000")).unwrap();
        net.run(Duration::from_millis(3));
        for _ in 0..3 {
            net.node(0)
                .stack
                .udp_send_to(a, &payload, sa("10.0.0.2:6000"))
                .unwrap();
        }
        net.run(Duration::from_millis(20));
        let mut buf = vec![0u8; 10_000];
        for _ in 0..3 {
            let (n, _) = net
                .node(1)
                .stack
                .udp_recv_from(b, &mut buf)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(&buf[..n], &payload[..], "seed {seed}");
        }
        let s = net.node(1).stack.stats().clone();
        assert_eq!(s.frag_reassembled, 3, "seed {seed}");
        assert_eq!(
            net.node(0).stack.stats().frag_tx,
            3 * 7,
            "9008 bytes in 1480-byte pieces"
        );
        assert_eq!(s.dropped(DropReason::FragOverlap), 0);
    }
}

#[test]
fn vlan_tagged_interfaces_talk_and_untagged_frames_are_dropped() {
    let (a_end, b_end) = link::pair(LinkConfig::default());
    let mut a = Node::new(StackConfig::default(), 1);
    let mut cfg = InterfaceConfig::new(mac(1), cidr("10.42.0.1/24"));
    cfg.vlan = Some(42);
    a.attach_with(a_end, cfg);
    let mut b = Node::new(StackConfig::default(), 2);
    let mut cfg = InterfaceConfig::new(mac(2), cidr("10.42.0.2/24"));
    cfg.vlan = Some(42);
    b.attach_with(b_end, cfg);
    let mut net = Net::new(vec![a, b]);
    let h = net.node(0).stack.icmp_bind(1).unwrap();
    net.node(0)
        .stack
        .icmp_send_echo(h, ip("10.42.0.2"), 9, b"tagged")
        .unwrap();
    net.run(Duration::from_millis(5));
    let mut buf = [0u8; 16];
    assert_eq!(net.node(0).stack.icmp_recv(h, &mut buf).unwrap().seq_no, 9);

    // An untagged host on the same wire is not heard.
    let (c_end, d_end) = link::pair(LinkConfig::default());
    let mut c = Node::new(StackConfig::default(), 3);
    c.attach(c_end, mac(3), "10.42.0.3/24");
    let mut d = Node::new(StackConfig::default(), 4);
    let mut cfg = InterfaceConfig::new(mac(4), cidr("10.42.0.4/24"));
    cfg.vlan = Some(42);
    d.attach_with(d_end, cfg);
    let mut net = Net::new(vec![c, d]);
    net.run(Duration::from_millis(5));
    assert_eq!(
        net.node(1).stack.stats().dropped(DropReason::VlanMismatch),
        1
    );
    assert_eq!(
        net.node(0).stack.stats().dropped(DropReason::VlanMismatch),
        1
    );
}

#[test]
fn lossy_corrupting_link_never_delivers_garbage() {
    // Bits flipped anywhere: checksums catch them (or, in the Ethernet header, the
    // frame is simply not for us). Whatever arrives intact is byte-exact.
    let imp = Impairments {
        seed: 3,
        loss: 0.05,
        corrupt: 0.2,
        ..Default::default()
    };
    let mut net = two_hosts(LinkConfig {
        a_to_b: imp,
        b_to_a: Impairments { seed: 4, ..imp },
        ..Default::default()
    });
    let a = net.node(0).stack.udp_bind(sa("0.0.0.0:1")).unwrap();
    let b = net.node(1).stack.udp_bind(sa("0.0.0.0:2")).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 600];
    for k in 0..500u32 {
        let msg: Vec<u8> = (0..512).map(|i| (i as u32 * 7 + k) as u8).collect();
        let _ = net.node(0).stack.udp_send_to(a, &msg, sa("10.0.0.2:2"));
        net.run(Duration::from_millis(1));
        while let Ok((n, _)) = net.node(1).stack.udp_recv_from(b, &mut buf) {
            let k0 = buf[0];
            let expect: Vec<u8> = (0..512)
                .map(|i| (i as u32 * 7) as u8)
                .map(|x| x.wrapping_add(k0))
                .collect();
            assert_eq!(&buf[..n], &expect[..]);
            got += 1;
        }
    }
    let s = net.node(1).stack.stats().clone();
    assert!(got > 300, "only {got} of 500 arrived");
    assert!(s.total_drops() > 0, "corruption must have been caught: {s}");
}
