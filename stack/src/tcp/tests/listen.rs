//! Listeners under load: a bounded SYN backlog, SYN cookies when it is full (RFC 4987
//! §3.6) carrying MSS, window scale, SACK-permitted and timestamps, a bounded accept
//! queue, and listener readiness.

use super::harness::*;
use crate::stats::DropReason;
use crate::tcp::{Events, State, TcpEvent, TcpListenerHandle, TcpSocketRef};
use crate::wire::Ipv4Addr;
use crate::StackConfig;
use core::net::SocketAddrV4;

fn cfg_backlog(syn_backlog: usize) -> StackConfig {
    let mut cfg = StackConfig::default();
    cfg.tcp.syn_backlog = syn_backlog;
    cfg
}

/// Listener events reported since the last call.
fn listener_events(h: &mut Harness, l: TcpListenerHandle) -> u8 {
    let mut evs: Vec<TcpEvent> = Vec::new();
    h.stack.tcp_events(&mut evs);
    evs.iter()
        .filter(|e| e.socket == TcpSocketRef::Listener(l))
        .fold(0, |a, e| a | e.events.0)
}

#[test]
fn syn_backlog_is_bounded_and_cookies_take_over() {
    // RFC 4987 §3.6: past the backlog, answer SYNs statelessly with a cookie ISN;
    // the half-open table never grows beyond its bound.
    let mut h = Harness::with_config(cfg_backlog(2));
    let l = h.listen(16);
    for port in [1001, 1002, 1003, 1004] {
        h.inject(seg! {flags: "S", seq: 7000, sport: port, mss: 1460});
        expect!(h, flags: "S.", ack: 7001, dport: port);
    }
    assert_eq!(
        h.stack.tcp_connection_count(),
        2,
        "only the backlog holds state"
    );
    assert_eq!(h.stack.stats().tcp_syncookies_sent, 2);
    // The cookie's ACK makes the connection: ESTABLISHED, ready to accept.
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, sport: 1004});
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 3);
    let (c, peer) = h.stack.tcp_accept(l).unwrap();
    assert_eq!(peer.port(), 1004);
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    // And it works.
    h.inject(seg! {flags: "P.", seq: 7001, ack: 1, sport: 1004, data: b"hi"});
    expect!(h, ack: 7003, dport: 1004);
    assert_eq!(h.read_all(c), b"hi");
}

#[test]
fn syn_cookie_encodes_mss_wscale_sack_and_timestamps() {
    // RFC 4987 §3.6 / Linux: the cookie encodes the MSS (from a table); with
    // timestamps, the SYN-ACK's TSval carries the window scale and SACK-permitted, so
    // the connection keeps all its options.
    let mut h = Harness::with_config(cfg_backlog(0));
    let l = h.listen(16);
    h.inject(seg! {flags: "S", seq: 7000, mss: 1400, ws: 7, sackok: true, ts: (500, 0)});
    let sa = expect!(h, flags: "S.", ack: 7001, ws: 1, sackok: true, tsecr: 500);
    // Our MSS, not the peer's: the MSS option tells what we can receive.
    assert_eq!(sa.mss, Some(1460));
    assert_eq!(sa.tsval() & 0xf, 7, "window shift in the TSval's low bits");
    assert_ne!(sa.tsval() & 0x10, 0, "SACK-permitted bit");
    assert_eq!(h.stack.tcp_connection_count(), 0, "no state for a cookie");
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, win: 100, ts: (501, sa.tsval())});
    let (c, _) = h.stack.tcp_accept(l).unwrap();
    let info = h.stack.tcp_info(c).unwrap();
    assert!(info.timestamps && info.sack);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (7, 1));
    assert_eq!(info.snd_wnd, 100 << 7);
    // 1400 is encoded as the table entry below it, 1300, less 12 for timestamps.
    assert_eq!(info.smss, 1300 - 12);
}

#[test]
fn syn_cookie_without_timestamps_offers_neither_wscale_nor_sack() {
    // Without timestamps there is nowhere to keep them (as Linux): the SYN-ACK offers
    // neither, the connection runs without.
    let mut h = Harness::with_config(cfg_backlog(0));
    let l = h.listen(16);
    h.inject(seg! {flags: "S", seq: 7000, mss: 536, ws: 7, sackok: true});
    let sa = expect!(h, flags: "S.", ack: 7001, nots: true, sackok: false);
    assert_eq!(sa.ws, None);
    assert_eq!(sa.mss, Some(1460));
    h.inject(seg! {flags: ".", seq: 7001, ack: 1});
    let (c, _) = h.stack.tcp_accept(l).unwrap();
    let info = h.stack.tcp_info(c).unwrap();
    assert!(!info.timestamps && !info.sack);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));
    assert_eq!(info.smss, 536);
}

#[test]
fn forged_or_stale_cookie_ack_is_reset() {
    // A final ACK whose cookie does not verify (forged, or for another tuple, or too
    // old) makes no connection; it is answered like any ACK to a listener
    // (RFC 9293 §3.10.7.2: <SEQ=SEG.ACK><CTL=RST>).
    let mut h = Harness::with_config(cfg_backlog(0));
    let l = h.listen(16);
    h.inject(seg! {flags: "S", seq: 7000, mss: 1460});
    expect!(h, flags: "S.", ack: 7001);
    h.inject(seg! {flags: ".", seq: 7001, ack: 2}); // cookie + 1 wrong
    expect!(h, flags: "R", seq: 2);
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, sport: 999}); // another tuple
    h.recv();
    assert_eq!(h.stack.stats().dropped(DropReason::TcpBadCookie), 2);
    // Three minutes later the right cookie is too old (MAX_COOKIE_AGE counter ticks).
    h.advance(secs(180));
    h.inject(seg! {flags: ".", seq: 7001, ack: 1});
    expect!(h, flags: "R", seq: 1);
    assert_eq!(
        h.stack.tcp_accept(l).map(|_| ()),
        Err(crate::tcp::TcpError::WouldBlock)
    );
}

#[test]
fn accept_queue_is_bounded() {
    // The accept queue holds `backlog` connections. A SYN while it is full gets a
    // cookie (no state); its ACK is dropped while the queue is full and accepted once
    // the application made room (the client retransmits it).
    let mut h = Harness::new();
    let l = h.listen(1);
    h.inject(seg! {flags: "S", seq: 7000, sport: 1001, mss: 1460});
    expect!(h, flags: "S.", dport: 1001);
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, sport: 1001});
    assert_eq!(h.stack.tcp.listeners.get(l.0).unwrap().pending(), 1);
    h.inject(seg! {flags: "S", seq: 8000, sport: 1002, mss: 1460});
    expect!(h, flags: "S.", dport: 1002, ack: 8001);
    assert_eq!(h.stack.tcp_connection_count(), 1);
    h.inject(seg! {flags: ".", seq: 8001, ack: 1, sport: 1002});
    h.expect_none();
    assert_eq!(h.stack.stats().dropped(DropReason::TcpAcceptQueueFull), 1);
    assert_eq!(h.stack.tcp_connection_count(), 1);
    let (a, _) = h.stack.tcp_accept(l).unwrap();
    assert_eq!(
        h.stack.tcp_accept(l).map(|_| ()),
        Err(crate::tcp::TcpError::WouldBlock)
    );
    h.inject(seg! {flags: ".", seq: 8001, ack: 1, sport: 1002});
    let (b, peer) = h.stack.tcp_accept(l).unwrap();
    assert_eq!(peer.port(), 1002);
    assert_ne!(a, b);
}

#[test]
fn handshakes_completing_into_a_full_accept_queue_are_reset() {
    // Two half-open connections, room for one: the second to complete is reset
    // (Linux with tcp_abort_on_overflow), never queued beyond the bound.
    let mut h = Harness::new();
    let l = h.listen(1);
    for port in [1001, 1002] {
        h.inject(seg! {flags: "S", seq: 7000, sport: port, mss: 1460});
        expect!(h, flags: "S.", dport: port);
    }
    assert_eq!(h.stack.tcp_connection_count(), 2);
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, sport: 1001});
    h.expect_none();
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, sport: 1002});
    expect!(h, flags: "R.", dport: 1002, seq: 1);
    assert_eq!(h.stack.tcp.listeners.get(l.0).unwrap().pending(), 1);
    assert_eq!(h.stack.tcp_connection_count(), 1);
}

#[test]
fn listener_reports_acceptable() {
    // Readiness: a listener with a connection to accept reports ACCEPTABLE once.
    let mut h = Harness::new();
    let l = h.listen(4);
    h.inject(seg! {flags: "S", seq: 7000, mss: 1460});
    h.recv();
    assert_eq!(
        listener_events(&mut h, l),
        0,
        "not before the handshake completes"
    );
    h.inject(seg! {flags: ".", seq: 7001, ack: 1});
    assert_eq!(listener_events(&mut h, l), Events::ACCEPTABLE);
    assert_eq!(listener_events(&mut h, l), 0);
    h.stack.tcp_accept(l).unwrap();
    assert_eq!(listener_events(&mut h, l), 0);
}

#[test]
fn closing_a_listener_resets_what_it_did_not_hand_out() {
    // Connections neither accepted nor complete lose their listener: they are reset.
    let mut h = Harness::new();
    let l = h.listen(4);
    h.inject(seg! {flags: "S", seq: 7000, sport: 1001, mss: 1460});
    h.recv();
    h.inject(seg! {flags: ".", seq: 7001, ack: 1, sport: 1001});
    h.inject(seg! {flags: "S", seq: 9000, sport: 1002, mss: 1460});
    h.recv();
    h.stack.tcp_close_listener(l).unwrap();
    let mut rsts: Vec<u16> = h
        .drain()
        .iter()
        .filter(|s| s.has("R"))
        .map(|s| s.dport)
        .collect();
    rsts.sort();
    assert_eq!(rsts, vec![1001, 1002]);
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

#[test]
fn wildcard_and_addressed_listeners_are_both_found() {
    // While no listener is bound to one address, the lookup by address is skipped: a
    // wildcard listener answers alone, an addressed one answers while it is bound,
    // and its port is closed again once it is.
    let mut h = Harness::new();
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9090);
    h.stack.tcp_listen(any, 4).expect("listen on any address");
    h.inject(seg! {flags: "S", seq: 7000, sport: 1001, dport: 9090, mss: 1460});
    expect!(h, flags: "S.", ack: 7001, sport: 9090, dport: 1001);
    let one = h.listen(4);
    h.inject(seg! {flags: "S", seq: 7000, sport: 1002, mss: 1460});
    expect!(h, flags: "S.", ack: 7001, sport: STACK_PORT, dport: 1002);
    h.stack.tcp_close_listener(one).unwrap();
    // Its half-open connection is reset with it.
    expect!(h, flags: "R", dport: 1002);
    h.inject(seg! {flags: "S", seq: 7000, sport: 1003, mss: 1460});
    expect!(h, flags: "R.", ack: 7001, sport: STACK_PORT, dport: 1003);
    h.inject(seg! {flags: "S", seq: 8000, sport: 1004, dport: 9090, mss: 1460});
    expect!(h, flags: "S.", ack: 8001, sport: 9090, dport: 1004);
}
