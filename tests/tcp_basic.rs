//! TCP between two stacks over the in-memory link: handshake, data both ways,
//! half-close, orderly close, resets.

mod common;

use std::net::SocketAddrV4;

use common::*;
use rumpnet::stack::link::{Impairments, LinkConfig};
use rumpnet::stack::tcp::{State, TcpError};
use rumpnet::stack::time::Duration;

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

#[test]
fn handshake_data_both_ways_and_orderly_close() {
    let mut net = two_hosts(LinkConfig::default());
    let l = net.node(1).stack.tcp_listen(sa("0.0.0.0:80"), 16).unwrap();
    let c = net.node(0).stack.tcp_connect(sa("10.0.0.2:80")).unwrap();
    net.run(Duration::from_millis(5));
    assert_eq!(net.node(0).stack.tcp_state(c).unwrap(), State::Established);
    let (s, peer) = net.node(1).stack.tcp_accept(l).unwrap();
    assert_eq!(peer.ip(), &ip("10.0.0.1"));
    assert_eq!(net.node(1).stack.tcp_state(s).unwrap(), State::Established);
    let info = net.node(0).stack.tcp_info(c).unwrap();
    assert!(info.timestamps && info.sack, "{info:?}");
    assert_eq!(info.smss, 1460 - 12);

    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..2000 {
        if sent < data.len() {
            if let Ok(n) = net.node(0).stack.tcp_send(c, &data[sent..]) {
                sent += n;
            }
        }
        net.run(Duration::from_millis(1));
        while let Ok(n) = net.node(1).stack.tcp_recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data);

    // Half-close from A; B still sends, then closes.
    net.node(0).stack.tcp_shutdown(c).unwrap();
    net.run(Duration::from_millis(5));
    assert_eq!(net.node(1).stack.tcp_recv(s, &mut buf), Ok(0));
    assert_eq!(net.node(1).stack.tcp_state(s).unwrap(), State::CloseWait);
    assert_eq!(net.node(0).stack.tcp_state(c).unwrap(), State::FinWait2);
    assert_eq!(net.node(1).stack.tcp_send(s, b"late reply"), Ok(10));
    net.run(Duration::from_millis(5));
    let n = net.node(0).stack.tcp_recv(c, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"late reply");
    net.node(1).stack.tcp_close(s).unwrap();
    net.run(Duration::from_millis(5));
    assert_eq!(net.node(0).stack.tcp_state(c).unwrap(), State::TimeWait);
    assert_eq!(net.node(0).stack.tcp_recv(c, &mut buf), Ok(0));
    // B's side is gone once its FIN was acknowledged.
    assert_eq!(net.node(1).stack.tcp_connection_count(), 0);
    net.run(Duration::from_secs(61));
    assert_eq!(net.node(0).stack.tcp_state(c).unwrap(), State::Closed);
    net.node(0).stack.tcp_close(c).unwrap();
    net.run(Duration::from_millis(1));
    assert_eq!(net.node(0).stack.tcp_connection_count(), 0);
}

#[test]
fn closed_port_is_refused() {
    let mut net = two_hosts(LinkConfig::default());
    let c = net.node(0).stack.tcp_connect(sa("10.0.0.2:81")).unwrap();
    net.run(Duration::from_millis(5));
    assert_eq!(net.node(0).stack.tcp_state(c).unwrap(), State::Closed);
    assert_eq!(
        net.node(0).stack.tcp_error(c).unwrap(),
        Some(TcpError::ConnectionRefused)
    );
    assert_eq!(net.node(1).stack.stats().tcp_rst_tx, 1);
}

#[test]
fn transfer_survives_loss() {
    for seed in 0..5 {
        let imp = Impairments {
            seed,
            loss: 0.05,
            reorder: 0.05,
            duplicate: 0.02,
            delay: Duration::from_millis(1),
            ..Default::default()
        };
        let mut net = two_hosts(LinkConfig {
            a_to_b: imp,
            b_to_a: Impairments {
                seed: seed + 100,
                ..imp
            },
            ..Default::default()
        });
        let l = net.node(1).stack.tcp_listen(sa("0.0.0.0:80"), 16).unwrap();
        let c = net.node(0).stack.tcp_connect(sa("10.0.0.2:80")).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut s = None;
        for _ in 0..60_000 {
            if sent < data.len() {
                if let Ok(n) = net.node(0).stack.tcp_send(c, &data[sent..]) {
                    sent += n;
                    if sent == data.len() {
                        net.node(0).stack.tcp_shutdown(c).unwrap();
                    }
                }
            }
            net.run(Duration::from_millis(1));
            if s.is_none() {
                s = net.node(1).stack.tcp_accept(l).ok().map(|x| x.0);
            }
            if let Some(s) = s {
                loop {
                    match net.node(1).stack.tcp_recv(s, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(_) => break,
                    }
                }
                if net.node(1).stack.tcp_state(s).unwrap() == State::CloseWait {
                    break;
                }
            }
        }
        assert_eq!(got.len(), data.len(), "seed {seed}");
        assert!(got == data, "seed {seed}");
    }
}
