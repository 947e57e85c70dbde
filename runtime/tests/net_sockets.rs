//! The std-like sockets' semantics, one at a time, over two runtimes joined by an
//! in-memory link (see `net_common`): timeouts, half-close, refusal, nonblocking mode,
//! UDP, mio readiness, many connections across shards, drop and shutdown.

mod net_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use rumpnet_runtime::net::{TcpListener, TcpStream, UdpSocket};

use net_common::*;

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A listener on the server and a connected pair of streams (client side, server side).
fn connected(pair: &Pair, port: u16) -> (TcpListener, TcpStream, TcpStream) {
    let l = TcpListener::bind(addr(SERVER_IP, port)).expect("bind");
    let c = TcpStream::connect_on(&pair.client(), addr(SERVER_IP, port)).expect("connect");
    let (s, peer) = l.accept().expect("accept");
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(s.local_addr().unwrap(), addr(SERVER_IP, port));
    (l, c, s)
}

#[test]
fn read_timeout_returns_would_block_on_schedule() {
    let _s = serial();
    let pair = Pair::start(2);
    let (_l, mut c, mut s) = connected(&pair, 7101);
    assert_eq!(c.read_timeout().unwrap(), None);
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    for _ in 0..2 {
        let t = Instant::now();
        let e = c.read(&mut buf).unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // Data that arrives within the timeout is returned at once.
    let w = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        s.write_all(b"late").unwrap();
        s
    });
    let t = Instant::now();
    let mut got = Vec::new();
    while got.len() < 4 {
        let n = c.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"late");
    assert!(t.elapsed() < Duration::from_secs(1));
    let s_back = w.join().unwrap();
    // A write timeout also applies to a stream whose peer does not read: writes fill
    // the rings and windows, then time out.
    c.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let t = Instant::now();
    let err = loop {
        match c.write(&chunk) {
            Ok(n) => {
                assert!(n > 0);
                assert!(t.elapsed() < Duration::from_secs(20), "never blocked")
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    drop((c, s_back));
    pair.stop();
}

#[test]
fn shutdown_write_gives_the_peer_eof_and_the_other_way_still_works() {
    let _s = serial();
    let pair = Pair::start(2);
    let (_l, mut c, mut s) = connected(&pair, 7102);
    c.write_all(b"hello").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.write(b"more").unwrap_err().kind(), ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    // EOF stays EOF.
    assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
    // Half-closed: the server can still answer.
    s.write_all(b"bye").unwrap();
    drop(s);
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"bye");
    // shutdown(Read): reads return 0 at once.
    let (_l2, c2, _s2) = connected(&pair, 7112);
    c2.shutdown(Shutdown::Read).unwrap();
    assert_eq!((&c2).read(&mut [0u8; 8]).unwrap(), 0);
    pair.stop();
}

#[test]
fn connect_to_a_closed_port_is_refused_and_silence_times_out() {
    let _s = serial();
    let pair = Pair::start(2);
    let client = pair.client();
    let e = TcpStream::connect_on(&client, addr(SERVER_IP, 7999)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // Nobody at .99 answers ARP: the connect times out when asked to.
    let t = Instant::now();
    let e =
        TcpStream::connect_timeout_on(&client, &addr("10.0.0.99", 80), Duration::from_millis(300))
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(t.elapsed() < Duration::from_secs(3));
    // A port in use on the server cannot be bound twice; IPv6 is refused plainly.
    let _l = TcpListener::bind(addr(SERVER_IP, 7103)).unwrap();
    assert_eq!(
        TcpListener::bind(addr(SERVER_IP, 7103)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert!(TcpListener::bind("[::1]:80").is_err());
    // An address that is not ours.
    assert_eq!(
        TcpListener::bind("10.0.0.77:80").unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    pair.stop();
}

#[test]
fn nonblocking_mode_returns_would_block_instead_of_waiting() {
    let _s = serial();
    let pair = Pair::start(2);
    let l = TcpListener::bind(addr(SERVER_IP, 7104)).unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    let mut c = TcpStream::connect_on(&pair.client(), addr(SERVER_IP, 7104)).unwrap();
    let t = Instant::now();
    let mut s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(t.elapsed() < Duration::from_secs(10));
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    };
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Writes go until rings and windows are full, then WouldBlock; nothing is lost.
    let mut sent = 0u64;
    let chunk: Vec<u8> = (0..8192u64).map(|i| pattern(9, i)).collect();
    let t = Instant::now();
    loop {
        let off = (sent % 8192) as usize;
        match c.write(&chunk[off..]) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(t.elapsed() < Duration::from_secs(20), "never blocked");
    }
    assert!(sent >= 64 * 1024, "only {sent} bytes before WouldBlock");
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = 0u64;
    let mut rbuf = vec![0u8; 10_000];
    loop {
        let n = s.read(&mut rbuf).unwrap();
        if n == 0 {
            break;
        }
        for &b in &rbuf[..n] {
            assert_eq!(b, pattern(9, got % 8192));
            got += 1;
        }
    }
    assert_eq!(got, sent);
    drop((c, s, l));
    pair.stop();
}

#[test]
fn udp_echo() {
    let _s = serial();
    let pair = Pair::start(2);
    let server = UdpSocket::bind(addr(SERVER_IP, 5353)).unwrap();
    assert_eq!(server.local_addr().unwrap(), addr(SERVER_IP, 5353));
    let echo = server.try_clone().unwrap();
    let h = thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        for _ in 0..100 {
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            echo.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = UdpSocket::bind_on(&pair.client(), "0.0.0.0:0").unwrap();
    let port = client.local_addr().unwrap().port();
    assert_ne!(port, 0);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 70_000];
    for k in 0..100u64 {
        // Sizes up to several fragments.
        let len = ((k * 397) % 4000 + 1) as usize;
        let data: Vec<u8> = (0..len as u64).map(|i| pattern(k, i)).collect();
        if k % 2 == 0 {
            client.send_to(&data, addr(SERVER_IP, 5353)).unwrap();
        } else {
            client.connect(addr(SERVER_IP, 5353)).unwrap();
            client.send(&data).unwrap();
        }
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr(SERVER_IP, 5353));
        assert_eq!(&buf[..n], &data[..], "datagram {k}");
    }
    h.join().unwrap();
    // Nothing more comes: the read timeout answers WouldBlock.
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(
        client.recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    client.set_nonblocking(true).unwrap();
    assert_eq!(
        client.recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(
        UdpSocket::bind(addr(SERVER_IP, 5353)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    drop((server, client));
    pair.stop();
}

#[test]
fn mio_reports_readiness_edges() {
    use mio::{Events, Interest, Poll, Token};
    let _s = serial();
    let pair = Pair::start(2);
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(16);
    let mut l = TcpListener::bind(addr(SERVER_IP, 7105)).unwrap();
    l.set_nonblocking(true).unwrap();
    poll.registry()
        .register(&mut l, Token(1), Interest::READABLE)
        .unwrap();
    // The first poll reports a new registration once; accept re-arms it.
    poll.poll(&mut events, Some(Duration::from_secs(1)))
        .unwrap();
    assert!(events.iter().any(|e| e.token() == Token(1)));
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    poll.poll(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    assert!(events.is_empty(), "no edge without a change");

    let mut c = TcpStream::connect_on(&pair.client(), addr(SERVER_IP, 7105)).unwrap();
    let t = Instant::now();
    let mut s = loop {
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "no accept event");
        if events.iter().any(|e| e.token() == Token(1)) {
            if let Ok((s, _)) = l.accept() {
                break s;
            }
        }
    };
    s.set_nonblocking(true).unwrap();
    poll.registry()
        .register(&mut s, Token(2), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut buf = [0u8; 64];
    // Drain the registration edge.
    poll.poll(&mut events, Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(s.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    poll.poll(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    assert!(events.is_empty(), "no edge without a change");
    for round in 0..3u8 {
        c.write_all(&[round; 10]).unwrap();
        let t = Instant::now();
        let mut got = Vec::new();
        while got.len() < 10 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(t.elapsed() < Duration::from_secs(10), "no read event");
            loop {
                match s.read(&mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(got, [round; 10]);
    }
    // EOF is an edge too.
    drop(c);
    let t = Instant::now();
    loop {
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "no EOF event");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => panic!("{n} unexpected bytes"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    poll.registry().deregister(&mut s).unwrap();
    drop((s, l));
    pair.stop();
}

#[test]
fn two_hundred_connections_across_shards() {
    const N: usize = 200;
    let _s = serial();
    let pair = Pair::start_with(
        2,
        rumpnet_runtime::net::NetConfig {
            rx_ring: 4096,
            tx_ring: 4096,
            ..Default::default()
        },
    );
    let l = TcpListener::bind(addr(SERVER_IP, 7106)).unwrap();
    let acceptor = thread::spawn(move || {
        let mut v = Vec::new();
        for _ in 0..N {
            v.push(l.accept().unwrap().0);
        }
        v
    });
    let client = pair.client();
    let clients: Vec<TcpStream> = (0..N)
        .map(|_| TcpStream::connect_on(&client, addr(SERVER_IP, 7106)).unwrap())
        .collect();
    let servers = acceptor.join().unwrap();
    let mut per_shard = [0usize; 2];
    for s in &servers {
        per_shard[s.shard()] += 1;
    }
    assert!(per_shard.iter().all(|&n| n > 50), "{per_shard:?}");
    let mut client_shards = [0usize; 2];
    for c in &clients {
        client_shards[c.shard()] += 1;
    }
    assert_eq!(client_shards, [N / 2, N / 2], "active opens go round robin");
    // Every client sends its id; the server side reads it, matches by peer address,
    // and echoes it twice.
    for (i, mut c) in clients.iter().enumerate() {
        c.write_all(&(i as u32).to_be_bytes()).unwrap();
    }
    for mut s in &servers {
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        let i = u32::from_be_bytes(b) as usize;
        assert_eq!(s.peer_addr().unwrap(), clients[i].local_addr().unwrap());
        s.write_all(&[b, b].concat()).unwrap();
    }
    for (i, mut c) in clients.iter().enumerate() {
        let mut b = [0u8; 8];
        c.read_exact(&mut b).unwrap();
        assert_eq!(
            b,
            [(i as u32).to_be_bytes(), (i as u32).to_be_bytes()].concat()[..]
        );
    }
    // Dropping the clients closes them: every server side reads EOF.
    drop(clients);
    for mut s in &servers {
        assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
    }
    drop(servers);
    pair.stop();
}

#[test]
fn drop_sends_what_was_written_then_fin_and_runtime_shutdown_fails_blocked_calls() {
    let _s = serial();
    let pair = Pair::start(2);
    let (l, mut c, mut s) = connected(&pair, 7107);
    let len = 300 * 1024;
    let data: Vec<u8> = (0..len as u64).map(|i| pattern(3, i)).collect();
    let w = thread::spawn(move || {
        c.write_all(&data).unwrap();
        // Dropped at once: the rings still hold most of it.
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    w.join().unwrap();
    assert_eq!(got.len(), len);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(3, i as u64)));
    drop(s);

    // A thread blocked in read when the client runtime stops gets an error, not a hang.
    let (_l2, c2, _s2) = connected(&pair, 7108);
    let reader = thread::spawn(move || {
        let mut c2 = c2;
        c2.read(&mut [0u8; 8])
    });
    thread::sleep(Duration::from_millis(50));
    let Pair { server, client } = pair;
    client.request_stop();
    let t = Instant::now();
    let r = reader.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    // The runtime closed the connection (EOF from the shard's FIN exchange) or aborted.
    match r {
        Ok(0) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionAborted, "{e}"),
        Ok(n) => panic!("read {n} bytes"),
    }
    // New calls on a stopped runtime fail plainly.
    let h = client.handle().clone();
    client.shutdown().expect("client stops");
    assert_eq!(
        TcpStream::connect_on(&h, addr(SERVER_IP, 7107))
            .unwrap_err()
            .kind(),
        ErrorKind::ConnectionAborted
    );
    drop(l);
    rumpnet_runtime::net::NetHandle::uninstall_default();
    server.shutdown().expect("server stops");
}
