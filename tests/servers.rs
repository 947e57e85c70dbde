//! The built-in servers over the in-memory link, with a client stack.

mod common;

use std::net::SocketAddrV4;

use common::*;
use rumpnet::servers::{ServerPorts, Servers};
use rumpnet::stack::link::LinkConfig;
use rumpnet::stack::tcp::{TcpError, TcpHandle};
use rumpnet::stack::time::Duration;

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

struct World {
    net: Net,
    servers: Servers,
}

impl World {
    fn new() -> World {
        let mut net = two_hosts(LinkConfig {
            capacity: 4096,
            ..Default::default()
        });
        let ports = ServerPorts {
            echo: Some(7),
            discard: Some(9),
            chargen: Some(19),
            http: Some(80),
            udp_echo: Some(7),
        };
        let servers = Servers::start(&mut net.node(1).stack, ports).unwrap();
        World { net, servers }
    }

    fn step(&mut self) {
        self.net.run(Duration::from_millis(1));
        self.servers.run(&mut self.net.nodes[1].stack);
    }

    fn connect(&mut self, port: u16) -> TcpHandle {
        let c = self
            .net
            .node(0)
            .stack
            .tcp_connect(SocketAddrV4::new(ip("10.0.0.2"), port))
            .unwrap();
        for _ in 0..20 {
            self.step();
        }
        c
    }

    /// Send `out` (all of it), shut down if asked, and read until `want` bytes or EOF.
    fn exchange(&mut self, c: TcpHandle, out: &[u8], shut: bool, want: usize) -> Vec<u8> {
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut shut_done = false;
        for _ in 0..100_000 {
            if sent < out.len() {
                if let Ok(n) = self.net.node(0).stack.tcp_send(c, &out[sent..]) {
                    sent += n;
                }
            } else if shut && !shut_done {
                self.net.node(0).stack.tcp_shutdown(c).unwrap();
                shut_done = true;
            }
            self.step();
            loop {
                match self.net.node(0).stack.tcp_recv(c, &mut buf) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            if got.len() >= want && sent == out.len() && (!shut || shut_done) {
                return got;
            }
        }
        panic!("stuck: sent {sent} of {}, got {}", out.len(), got.len());
    }
}

#[test]
fn echo_returns_every_byte_and_closes_after_eof() {
    let mut w = World::new();
    let c = w.connect(7);
    let data: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let got = w.exchange(c, &data, true, usize::MAX);
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    assert_eq!(w.servers.stats().echo_bytes, data.len() as u64);
}

#[test]
fn discard_and_chargen() {
    let mut w = World::new();
    let d = w.connect(9);
    let data = vec![0x55u8; 500_000];
    let got = w.exchange(d, &data, true, usize::MAX);
    assert!(got.is_empty());
    assert_eq!(w.servers.stats().discard_bytes, 500_000);

    let c = w.connect(19);
    let got = w.exchange(c, b"", false, 100_000);
    assert!(got.len() >= 100_000);
    // RFC 864: 72-character lines, each starting one character further.
    let lines: Vec<&[u8]> = got.split(|&b| b == b'\n').take(200).collect();
    for (i, l) in lines.iter().enumerate().take(190) {
        assert_eq!(l.len(), 73, "line {i}"); // 72 + CR
        assert_eq!(l[0], b' ' + (i % 95) as u8);
        assert_eq!(l[72], b'\r');
    }
    w.net.node(0).stack.tcp_close(c).unwrap();
    for _ in 0..50 {
        w.step();
    }
    assert_eq!(w.servers.connections(), 0);
}

fn http_body(resp: &[u8]) -> (&str, &[u8]) {
    let end = resp.windows(4).position(|x| x == b"\r\n\r\n").unwrap();
    (std::str::from_utf8(&resp[..end]).unwrap(), &resp[end + 4..])
}

#[test]
fn http_index_bytes_keepalive_404_400() {
    let mut w = World::new();
    let c = w.connect(80);
    let resp = w.exchange(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, 50);
    let mut resp = resp;
    while !resp.ends_with(b"</pre>\n") {
        resp.extend(w.exchange(c, b"", false, 1));
    }
    let (head, body) = http_body(&resp);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(std::str::from_utf8(body)
        .unwrap()
        .contains("tcp segments received"));

    // 100 keep-alive requests for /bytes/1000 on the same connection.
    for _ in 0..100 {
        let mut r = w.exchange(c, b"GET /bytes/1000 HTTP/1.1\r\n\r\n", false, 1);
        loop {
            if let Some(end) = r.windows(4).position(|x| x == b"\r\n\r\n") {
                if r.len() >= end + 4 + 1000 {
                    break;
                }
            }
            r.extend(w.exchange(c, b"", false, 1));
        }
        let (head, body) = http_body(&r);
        assert!(head.contains("Content-Length: 1000"), "{head}");
        assert_eq!(body.len(), 1000);
    }
    let r = w.exchange(c, b"GET /nope HTTP/1.1\r\n\r\n", false, 20);
    assert!(r.starts_with(b"HTTP/1.1 404"));
    // A malformed request gets 400 and the connection closes.
    let r = w.exchange(c, b"BLAH\r\n\r\n", false, usize::MAX);
    assert!(
        r.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&r)
    );

    // A large body, with Connection: close.
    let c2 = w.connect(80);
    let r = w.exchange(
        c2,
        b"GET /bytes/3000000 HTTP/1.1\r\nConnection: close\r\n\r\n",
        false,
        usize::MAX,
    );
    let (head, body) = http_body(&r);
    assert!(head.contains("Content-Length: 3000000"));
    assert_eq!(body.len(), 3_000_000);
}

#[test]
fn udp_echo_small_and_fragmented() {
    let mut w = World::new();
    let u = w.net.node(0).stack.udp_bind(sa("0.0.0.0:5555")).unwrap();
    let mut buf = vec![0u8; 70_000];
    for size in [1usize, 100, 1472, 1473, 4000, 8192] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        w.net
            .node(0)
            .stack
            .udp_send_to(u, &data, sa("10.0.0.2:7"))
            .unwrap();
        let mut got = None;
        for _ in 0..50 {
            w.step();
            if let Ok((n, from)) = w.net.node(0).stack.udp_recv_from(u, &mut buf) {
                assert_eq!(from, sa("10.0.0.2:7"));
                got = Some(buf[..n].to_vec());
                break;
            }
        }
        assert_eq!(got.as_deref(), Some(&data[..]), "size {size}");
    }
}
