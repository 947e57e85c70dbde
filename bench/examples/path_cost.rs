//! The cost of one rr transaction and of one crr connection through two rumpnet stacks
//! on one thread, over the in-memory link with offloads, as `rumpnet bench` runs them
//! same-core, but a fixed number of times on a virtual clock: repeatable under
//! `valgrind --tool=callgrind` (instructions per transaction, whatever else the
//! machine does), and timed natively (best of five).
//!
//! ```sh
//! cargo run --release -p rumpnet-bench --example path_cost -- rr 200000
//! valgrind --tool=callgrind target/release/examples/path_cost rr 20000
//! ```

use std::net::SocketAddrV4;
use std::time::Instant as WallInstant;

use rumpnet_bench::systems::rumpnet::{link_config_with, RR_BUF};
use rumpnet_bench::tcp_pair::{Host, A_ADDR, B_ADDR, PORT};
use rumpnet_stack::link;
use rumpnet_stack::tcp::{TcpError, TcpHandle, TcpSocketOptions};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::Ipv4Addr;
use rumpnet_stack::StackConfig;

const MSG: usize = 64;

fn hosts() -> (Host, Host, rumpnet_stack::tcp::TcpListenerHandle) {
    // PATH_COST_PCAP=file.pcap records every frame (for a look at the segments).
    let (ea, eb) = match std::env::var_os("PATH_COST_PCAP") {
        Some(path) => {
            let cap = link::PcapCapture::create(std::path::Path::new(&path)).expect("pcap file");
            link::pair_with_capture(link_config_with(1500, true), std::sync::Arc::new(cap))
        }
        None => link::pair(link_config_with(1500, true)),
    };
    let a = Host::new(StackConfig::default(), ea, A_ADDR, 3).expect("host a");
    let mut b = Host::new(StackConfig::default(), eb, B_ADDR, 5).expect("host b");
    let l = b
        .stack
        .tcp_listen_with(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT), 128, opts())
        .expect("listen");
    (a, b, l)
}

fn opts() -> TcpSocketOptions {
    TcpSocketOptions {
        nodelay: true,
        rcv_buf: RR_BUF,
        snd_buf: RR_BUF,
        ..TcpSocketOptions::default()
    }
}

fn recv(h: &mut Host, c: TcpHandle, buf: &mut [u8]) -> usize {
    match h.stack.tcp_recv(c, buf) {
        Ok(n) => n,
        Err(TcpError::WouldBlock) => 0,
        Err(e) => panic!("recv: {e:?}"),
    }
}

/// `n` request/response transactions on one connection; returns nanoseconds and
/// segments (both directions) each.
fn rr(n: u64) -> (f64, f64) {
    let (mut a, mut b, l) = hosts();
    let mut clock = Instant::from_micros(1);
    a.poll(clock);
    b.poll(clock);
    let c = a
        .stack
        .tcp_connect_with(SocketAddrV4::new(B_ADDR, PORT), None, opts(), |_| true)
        .expect("connect");
    let mut s = None;
    while s.is_none() {
        a.poll(clock);
        b.poll(clock);
        s = b.stack.tcp_accept(l).ok().map(|(h, _)| h);
        clock += rumpnet_stack::time::Duration::from_micros(1);
    }
    let s = s.expect("accepted");
    let req = [7u8; MSG];
    let mut buf = [0u8; MSG];
    let segs0 = a.stack.stats().tcp_tx + b.stack.stats().tcp_tx;
    let start = WallInstant::now();
    for i in 0..n {
        let t = clock + rumpnet_stack::time::Duration::from_micros(i / 2);
        assert_eq!(a.stack.tcp_send(c, &req).expect("send"), MSG);
        a.poll(t);
        let mut got = 0;
        while got < MSG {
            b.poll(t);
            got += recv(&mut b, s, &mut buf[got..]);
        }
        assert_eq!(b.stack.tcp_send(s, &buf).expect("send"), MSG);
        b.poll(t);
        let mut got = 0;
        while got < MSG {
            a.poll(t);
            got += recv(&mut a, c, &mut buf[got..]);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    let segs = a.stack.stats().tcp_tx + b.stack.stats().tcp_tx - segs0;
    (ns, segs as f64 / n as f64)
}

/// `n` connect, request/response, close cycles; returns nanoseconds and segments
/// (both directions) each.
fn crr(n: u64) -> (f64, f64) {
    let (mut a, mut b, l) = hosts();
    let mut port = 49152u16;
    let req = [7u8; MSG];
    let mut buf = [0u8; MSG];
    let t0 = Instant::from_micros(1);
    a.poll(t0);
    b.poll(t0);
    let segs0 = a.stack.stats().tcp_tx + b.stack.stats().tcp_tx;
    let start = WallInstant::now();
    for i in 0..n {
        let t = t0 + rumpnet_stack::time::Duration::from_micros(i * 3);
        let local = SocketAddrV4::new(A_ADDR, port);
        port = port.checked_add(1).unwrap_or(49152);
        let c = a
            .stack
            .tcp_connect_with(SocketAddrV4::new(B_ADDR, PORT), Some(local), opts(), |_| {
                true
            })
            .expect("connect");
        a.stack.tcp_send(c, &req).expect("send");
        let mut s = None;
        let mut got = 0;
        while got < MSG {
            a.poll(t);
            b.poll(t);
            if s.is_none() {
                s = b.stack.tcp_accept(l).ok().map(|(h, _)| h);
            }
            if let Some(s) = s {
                got += recv(&mut b, s, &mut buf[got..]);
            }
        }
        let s = s.expect("accepted");
        // The server closes first (it holds the TIME-WAIT), as the workload's does.
        b.stack.tcp_send(s, &buf).expect("send");
        b.stack.tcp_close(s).expect("close");
        let mut got = 0;
        let mut eof = false;
        while !eof {
            b.poll(t);
            a.poll(t);
            if got < MSG {
                got += recv(&mut a, c, &mut buf[got..]);
            }
            if got == MSG {
                // In the same turn, as the workload's client does.
                let mut byte = [0u8; 1];
                eof = matches!(a.stack.tcp_recv(c, &mut byte), Ok(0));
            }
        }
        a.stack.tcp_close(c).expect("close");
        a.poll(t);
        b.poll(t);
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    let segs = a.stack.stats().tcp_tx + b.stack.stats().tcp_tx - segs0;
    (ns, segs as f64 / n as f64)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "rr".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let f = match what.as_str() {
        "rr" => rr,
        "crr" => crr,
        _ => {
            eprintln!("usage: path_cost rr|crr [count] [runs]");
            std::process::exit(2);
        }
    };
    // PATH_COST_EACH=1 prints every run's time (does this machine's speed move
    // between runs of one process, or between processes?).
    let each = std::env::var_os("PATH_COST_EACH").is_some();
    let mut best = f64::INFINITY;
    let mut segs = 0.0;
    for _ in 0..runs {
        let (ns, s) = f(n);
        if each {
            eprintln!("{what}: {ns:.0} ns");
        }
        best = best.min(ns);
        segs = s;
    }
    println!("{what}: {best:.0} ns each (best of {runs}, {n} each), {segs:.2} segments each");
}
