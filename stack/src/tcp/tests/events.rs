//! Readiness events (`Stack::tcp_events`): what the application is told, when, and
//! only once per change.

use super::harness::*;
use crate::tcp::{Events, TcpHandle};
use crate::StackConfig;

fn established() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive_plain();
    (h, c)
}

#[test]
fn accepted_connection_reports_connected_and_writable() {
    let (mut h, c) = established();
    let ev = h.events_of(c);
    assert_eq!(ev, Events::CONNECTED | Events::WRITABLE, "{ev:#x}");
    assert_eq!(h.events_of(c), 0, "reported once");
}

#[test]
fn data_makes_it_readable_once_per_batch() {
    let (mut h, c) = established();
    h.events_of(c);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"a"});
    h.inject(seg! {flags: "P.", seq: 1002, ack: 1, data: b"b"});
    assert_eq!(h.events_of(c), Events::READABLE);
    assert_eq!(h.events_of(c), 0);
    // An ACK without data is not a readiness change.
    h.stack.tcp_send(c, b"x").unwrap();
    h.recv();
    h.inject(seg! {flags: ".", seq: 1003, ack: 2});
    assert_eq!(h.events_of(c) & Events::READABLE, 0);
    // Out-of-order data is not readable yet.
    h.inject(seg! {flags: "P.", seq: 1010, ack: 2, data: b"z"});
    assert_eq!(h.events_of(c) & Events::READABLE, 0);
}

#[test]
fn freed_send_buffer_makes_it_writable() {
    let mut cfg = StackConfig::default();
    cfg.tcp.socket.snd_buf = 4096;
    let mut h = Harness::with_config(cfg);
    let c = h.passive_plain();
    h.events_of(c);
    assert_eq!(h.stack.tcp_send(c, &payload(10_000)), Ok(4096));
    let sent = h.drain();
    assert!(!sent.is_empty());
    assert_eq!(h.events_of(c) & Events::WRITABLE, 0);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1461});
    assert_eq!(h.events_of(c) & Events::WRITABLE, Events::WRITABLE);
    assert_eq!(h.stack.tcp_send_capacity(c), Ok(1460));
}

#[test]
fn peer_fin_makes_it_readable_and_close_reports_closed() {
    let (mut h, c) = established();
    h.events_of(c);
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    assert_eq!(h.events_of(c), Events::READABLE);
    h.stack.tcp_shutdown(c).unwrap();
    h.recv();
    h.inject(seg! {flags: ".", seq: 1002, ack: 2});
    let ev = h.events_of(c);
    assert!(
        ev & Events::CLOSED != 0 && ev & Events::ERROR == 0,
        "{ev:#x}"
    );
}

#[test]
fn reset_reports_error_and_closed() {
    let (mut h, c) = established();
    h.events_of(c);
    h.inject(seg! {flags: "R", seq: 1001});
    assert_eq!(h.events_of(c), Events::CLOSED | Events::ERROR);
}

#[test]
fn connect_reports_connected_or_error() {
    let mut h = Harness::new();
    let ok = h.connect();
    h.recv();
    assert_eq!(h.events_of(ok), 0, "nothing while SYN-SENT");
    h.inject(seg! {flags: "S.", seq: 5, ack: 1, mss: 1460});
    assert_eq!(h.events_of(ok), Events::CONNECTED | Events::WRITABLE);
}

#[test]
fn released_handles_report_nothing() {
    // After close the handle is gone: its later events are not reported.
    let (mut h, c) = established();
    h.events_of(c);
    h.stack.tcp_close(c).unwrap();
    h.recv();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    let mut evs = Vec::new();
    h.stack.tcp_events(&mut evs);
    assert!(evs.is_empty(), "{evs:?}");
}
