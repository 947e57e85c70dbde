//! Closing (RFC 9293 §3.6): orderly close from either side, half-close, simultaneous
//! close, TIME-WAIT for 2*MSL and its early reuse (RFC 6191), aborts and resets
//! (RFC 9293 §3.10.7.1 for closed ports), and the FIN's own rules (retransmission,
//! arrival out of order).

use super::harness::*;
use crate::stats::DropReason;
use crate::tcp::{Events, State, TcpError, TcpHandle};

/// An established connection made by a passive open without options: the test's next
/// sequence number is 1001, the stack's 1 (relative), windows unscaled, RTT 0 (so
/// RTO = the 200 ms minimum).
fn established() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive_plain();
    (h, c)
}

fn msl2(h: &Harness) -> crate::time::Duration {
    h.stack.tcp.config.tcb.msl * 2
}

#[test]
fn active_close_fin_wait_1_fin_wait_2_time_wait_closed() {
    // RFC 9293 §3.6 case 1 and figure 13; TIME-WAIT lasts 2*MSL (§3.10.7.4 eighth).
    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001, len: 0);
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait1));
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait2));
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
    assert!(h.events_of(c) & Events::CLOSED != 0);
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0), "EOF");
    h.advance(msl2(&h) - ms(1));
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
    h.advance(ms(1));
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    h.expect_none();
    h.stack.tcp_close(c).unwrap();
    h.poll();
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

#[test]
fn time_wait_acks_a_retransmitted_fin_and_restarts_2msl() {
    // RFC 9293 §3.10.7.4 eighth, TIME-WAIT: "Remain in the TIME-WAIT state. Restart the
    // 2 MSL time-wait timeout."
    let (mut h, c) = established();
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    assert_eq!(h.tcb(c).state, State::TimeWait);
    h.advance(secs(50));
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    h.advance(msl2(&h) - ms(1));
    assert_eq!(
        h.tcb(c).state,
        State::TimeWait,
        "timer restarted by the FIN"
    );
    h.advance(ms(1));
    assert_eq!(h.stack.tcp_connection_count(), 0);
    // Now the port is closed: the FIN gets a reset (RFC 9293 §3.10.7.1).
    let l = h.stack.tcp.listeners.iter().next().unwrap().0;
    h.stack
        .tcp_close_listener(crate::tcp::TcpListenerHandle(l))
        .unwrap();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, flags: "R", seq: 2);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    // RFC 9293 §3.6 case 3 and figure 14: FIN-WAIT-1 -> CLOSING -> TIME-WAIT.
    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closing));
    h.inject(seg! {flags: ".", seq: 1002, ack: 2});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
}

#[test]
fn fin_acknowledging_our_fin_goes_straight_to_time_wait() {
    // RFC 9293 §3.10.7.4 eighth, FIN-WAIT-1: "If our FIN has been ACKed ... enter
    // TIME-WAIT".
    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
}

#[test]
fn passive_close_close_wait_then_last_ack() {
    // RFC 9293 §3.6 case 2: the peer's FIN: CLOSE-WAIT (ACK it at once, report EOF);
    // we may still send; our close: LAST-ACK; its ACK: CLOSED.
    let (mut h, c) = established();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    expect!(h, flags: ".", seq: 1, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::CloseWait));
    assert!(h.events_of(c) & Events::READABLE != 0);
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0));
    // Half-closed: our direction still works.
    assert_eq!(h.stack.tcp_send(c, b"bye"), Ok(3));
    expect!(h, flags: "P.", seq: 1, ack: 1002, data: b"bye");
    h.inject(seg! {flags: ".", seq: 1002, ack: 4});
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 4, ack: 1002);
    assert_eq!(h.tcb(c).state, State::LastAck);
    h.inject(seg! {flags: ".", seq: 1002, ack: 5});
    h.expect_none();
    assert_eq!(
        h.stack.tcp_connection_count(),
        0,
        "no TIME-WAIT on the passive side"
    );
}

#[test]
fn a_close_in_the_applications_turn_carries_the_ack_of_the_peers_fin() {
    // The ACK of a FIN waits one poll (the application's turn): a close made in that
    // turn sends one FIN+ACK, not an ACK and then a FIN.
    let (mut h, c) = established();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0));
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1002);
    h.expect_none();
    assert_eq!(h.tcb(c).state, State::LastAck);
}

#[test]
fn half_close_peer_keeps_sending() {
    // RFC 9293 §3.6: after our FIN we keep receiving until the peer's FIN
    // (FIN-WAIT-2 "can still receive").
    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait2));
    assert_eq!(h.stack.tcp_send(c, b"x"), Err(TcpError::InvalidState));
    h.inject(seg! {flags: "P.", seq: 1001, ack: 2, data: b"still talking"});
    expect!(h, flags: ".", seq: 2, ack: 1014);
    assert_eq!(h.read_all(c), b"still talking");
    h.inject(seg! {flags: "F.", seq: 1014, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 1015);
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
}

#[test]
fn fin_is_retransmitted_on_timeout() {
    // RFC 9293 §3.8.1: the FIN occupies sequence space and is retransmitted like data.
    let (mut h, c) = established();
    let rto = h.stack.tcp_info(c).unwrap().rto;
    h.stack.tcp_shutdown(c).unwrap();
    let f = expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.advance_until_sent(secs(5));
    let r = expect!(h, flags: "F.", seq: 1, ack: 1001);
    assert_eq!(r.at - f.at, rto);
    h.advance_until_sent(secs(5));
    let r2 = expect!(h, flags: "F.", seq: 1, ack: 1001);
    assert_eq!(r2.at - r.at, rto * 2, "backoff");
}

#[test]
fn fin_rides_on_the_last_data_segment() {
    // RFC 9293 §3.10.4: the FIN follows all queued data; it may share its segment.
    let (mut h, c) = established();
    h.stack.tcp_send(c, b"last words").unwrap();
    h.stack.tcp_shutdown(c).unwrap();
    let s = expect!(h, flags: "FP.", seq: 1, ack: 1001, data: b"last words");
    assert_eq!(s.len(), 11);
    h.inject(seg! {flags: ".", seq: 1001, ack: 12});
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait2));
}

#[test]
fn out_of_order_fin_waits_for_the_hole() {
    // RFC 9293 §3.10.7.4 eighth: the FIN counts only once everything before it arrived;
    // until then it is held like out-of-order data.
    let (mut h, c) = established();
    h.inject(seg! {flags: "F.", seq: 1101, ack: 1});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(100)});
    expect!(h, flags: ".", seq: 1, ack: 1102);
    assert_eq!(h.stack.tcp_state(c), Ok(State::CloseWait));
    assert_eq!(h.read_all(c), payload(100));
}

#[test]
fn data_and_fin_in_one_segment() {
    let (mut h, c) = established();
    h.inject(seg! {flags: "FP.", seq: 1001, ack: 1, data: b"hello"});
    expect!(h, flags: ".", seq: 1, ack: 1007);
    let mut buf = [0u8; 16];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0));
}

#[test]
fn orphaned_fin_wait_2_times_out() {
    // Linux tcp_fin_timeout: after close() a FIN-WAIT-2 that never gets the peer's FIN
    // is dropped (RFC 9293 leaves this to the implementation, §3.6).
    let (mut h, c) = established();
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    assert_eq!(h.tcb(c).state, State::FinWait2);
    let timeout = h.stack.tcp.config.tcb.fin_timeout;
    h.advance(timeout - ms(1));
    assert_eq!(h.stack.tcp_connection_count(), 1);
    h.advance(ms(1));
    assert_eq!(h.stack.tcp_connection_count(), 0);
    h.expect_none();
}

#[test]
fn close_with_unread_data_resets() {
    // RFC 2525 §2.17 (and Linux): closing with received data unread sends a RST, so
    // the peer learns the data was lost.
    let (mut h, c) = established();
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: payload(100)});
    expect!(h, flags: ".", seq: 1, ack: 1101);
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "R.", seq: 1, ack: 1101);
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

#[test]
fn data_after_close_is_answered_with_reset() {
    // RFC 9293 §3.10.4 (CLOSE): once the application closed, data that arrives has no
    // reader; Linux resets the connection (tcp_rcv_state_process, FIN-WAIT-1/2).
    let (mut h, c) = established();
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 2, data: b"too late"});
    let r = expect!(h, flags: "R.");
    assert_eq!(r.seq, 2);
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

#[test]
fn abort_sends_reset_and_frees() {
    // RFC 9293 §3.10.5 ABORT: "a reset segment should be sent <SEQ=SND.NXT><CTL=RST>".
    let (mut h, c) = established();
    h.stack.tcp_send(c, b"pending").unwrap();
    expect!(h, flags: "P.", seq: 1, data: b"pending");
    h.stack.tcp_abort(c).unwrap();
    expect!(h, flags: "R.", seq: 8, ack: 1001, win: 0);
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
    assert_eq!(h.stack.tcp_state(c), Err(TcpError::InvalidHandle));
    h.advance(secs(5));
    h.expect_none(); // nothing retransmitted
}

#[test]
fn reset_in_established_reports_connection_reset() {
    // RFC 9293 §3.10.7.4 second: a RST with SEG.SEQ = RCV.NXT: "any outstanding RECEIVEs
    // and SEND should receive 'reset' responses ... enter CLOSED".
    let (mut h, c) = established();
    h.stack.tcp_send(c, b"unacked").unwrap();
    expect!(h, flags: "P.", seq: 1);
    h.events_of(c);
    h.inject(seg! {flags: "R", seq: 1001});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(
        h.stack.tcp_recv(c, &mut buf),
        Err(TcpError::ConnectionReset)
    );
    assert_eq!(h.stack.tcp_send(c, b"x"), Err(TcpError::ConnectionReset));
    let ev = h.events_of(c);
    assert!(
        ev & Events::ERROR != 0 && ev & Events::CLOSED != 0,
        "{ev:#x}"
    );
    h.advance(secs(5));
    h.expect_none(); // no retransmission of the unacknowledged data
}

#[test]
fn reset_in_last_ack_closes_quietly() {
    // RFC 9293 §3.10.7.4 second, CLOSING/LAST-ACK/TIME-WAIT: "enter the CLOSED state";
    // it is not an error for a connection that was closing anyway.
    let (mut h, c) = established();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    expect!(h, flags: ".", seq: 1, ack: 1002);
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::LastAck));
    h.inject(seg! {flags: "R", seq: 1002});
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(None));
}

#[test]
fn last_ack_retransmits_fin() {
    let (mut h, c) = established();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    expect!(h, flags: ".", seq: 1, ack: 1002);
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1002);
    h.advance_until_sent(secs(2));
    expect!(h, flags: "F.", seq: 1, ack: 1002);
    h.inject(seg! {flags: ".", seq: 1002, ack: 2});
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

// ---- closed ports (RFC 9293 §3.10.7.1) ----

#[test]
fn closed_port_answers_with_reset() {
    // RFC 9293 §3.10.7.1: no ACK bit: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>;
    // ACK bit: <SEQ=SEG.ACK><CTL=RST>; an incoming RST is discarded.
    let mut h = Harness::new();
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "R.", seq: 0, ack: 1001, win: 0);
    h.inject(seg! {flags: "FP", seq: 1000, data: b"0123456789"});
    expect!(h, flags: "R.", seq: 0, ack: 1011);
    h.inject(seg! {flags: "P.", seq: 1000, ack: 4242, data: b"x"});
    let r = expect!(h, flags: "R", seq: 4242);
    assert!(r.data.is_empty() && r.mss.is_none() && r.ts.is_none());
    h.inject(seg! {flags: "R", seq: 1000});
    h.inject(seg! {flags: "R.", seq: 1000, ack: 5});
    h.expect_none();
    assert_eq!(h.stack.stats().dropped(DropReason::TcpNoSocket), 5);
    assert_eq!(h.stack.stats().tcp_rst_tx, 3);
}

#[test]
fn reset_after_the_listener_goes_away() {
    let mut h = Harness::new();
    let l = h.listen(4);
    h.stack.tcp_close_listener(l).unwrap();
    h.inject(seg! {flags: "S", seq: 1000});
    expect!(h, flags: "R.", seq: 0, ack: 1001);
}

// ---- TIME-WAIT reuse (RFC 6191, RFC 9293 §3.6.1) ----

/// A passive connection the stack closed first, now in TIME-WAIT; with timestamps if
/// `ts`.
fn in_time_wait(ts: bool) -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let l = h.listen(8);
    let syn = if ts {
        seg! {flags: "S", seq: 1000, mss: 1460, ts: (1_000, 0)}
    } else {
        seg! {flags: "S", seq: 1000, mss: 1460}
    };
    let c = h.passive_on(l, syn);
    h.stack.tcp_close(c).unwrap();
    expect!(h, flags: "F.", seq: 1, ack: 1001);
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    assert_eq!(h.tcb(c).state, State::TimeWait);
    h.advance(secs(1));
    (h, c)
}

#[test]
fn time_wait_reused_by_syn_with_newer_timestamp() {
    // RFC 6191 §2: a SYN whose TSval is newer than the TIME-WAIT's TS.Recent may
    // reopen the connection, whatever its sequence number.
    let (mut h, _) = in_time_wait(true);
    let tsval = h.peer_tsval();
    h.inject(seg! {flags: "S", seq: 10, mss: 1460, ts: (tsval, 0)});
    expect!(h, flags: "S.", seq: 0, ack: 11, tsecr: tsval);
}

#[test]
fn time_wait_not_reused_by_syn_with_older_timestamp() {
    // RFC 6191 §2 / RFC 7323 §5 (PAWS): an older TSval is an old duplicate: no new
    // connection; TIME-WAIT answers with an ACK, as Linux does.
    let (mut h, c) = in_time_wait(true);
    h.inject(seg! {flags: "S", seq: 5000, mss: 1460, ts: (999, 0)});
    let a = expect!(h, flags: ".", seq: 2, ack: 1002);
    assert!(!a.has("S"));
    h.expect_none();
    assert_eq!(h.tcb(c).state, State::TimeWait);
}

#[test]
fn time_wait_reused_without_timestamps_by_higher_sequence() {
    // RFC 9293 §3.6.1 / RFC 1122 §4.2.2.13 (BSD): without timestamps a SYN may reopen
    // a TIME-WAIT connection when its ISN is above the old connection's last sequence
    // number.
    let (mut h, c) = in_time_wait(false);
    h.inject(seg! {flags: "S", seq: 900, mss: 1460});
    expect!(h, flags: ".", seq: 2, ack: 1002);
    assert_eq!(h.tcb(c).state, State::TimeWait);
    h.inject(seg! {flags: "S", seq: 50_000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 50_001);
}

// ---- the remaining transitions ----

#[test]
fn close_in_syn_sent_deletes_the_connection() {
    // RFC 9293 §3.10.4 CLOSE, SYN-SENT: "Delete the TCB"; nothing is sent, and a late
    // SYN-ACK then finds a closed port (RFC 9293 §3.10.7.1).
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.stack.tcp_close(c).unwrap();
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
    h.inject(seg! {flags: "S.", seq: 3000, ack: 1, mss: 1460});
    expect!(h, flags: "R", seq: 1);
    h.advance(secs(5));
    h.expect_none(); // no SYN retransmission
}

#[test]
fn shutdown_in_syn_received_sends_fin_once_established() {
    // RFC 9293 §3.10.4 CLOSE, SYN-RECEIVED: "If no SENDs have been issued and there is
    // no pending data to send, then form a FIN segment and send it, and enter
    // FIN-WAIT-1 state" -- here once the handshake completes (queued FIN).
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.inject(seg! {flags: "S", seq: 5000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 5001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynReceived));
    h.stack.tcp_shutdown(c).unwrap();
    h.inject(seg! {flags: ".", seq: 5001, ack: 1});
    expect!(h, flags: "F.", seq: 1, ack: 5001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait1));
    h.inject(seg! {flags: "F.", seq: 5001, ack: 2});
    expect!(h, flags: ".", seq: 2, ack: 5002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
}

#[test]
fn reset_in_close_wait_and_fin_wait_2_reports_connection_reset() {
    // RFC 9293 §3.10.7.4 second: in FIN-WAIT-1/2 and CLOSE-WAIT a valid RST is a
    // "connection reset".
    let (mut h, c) = established();
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    expect!(h, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::CloseWait));
    h.inject(seg! {flags: "R", seq: 1002});
    assert_eq!(h.stack.tcp_error(c), Ok(Some(TcpError::ConnectionReset)));

    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.");
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait2));
    h.inject(seg! {flags: "R", seq: 1001});
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(Some(TcpError::ConnectionReset)));
}

#[test]
fn abort_in_syn_sent_sends_nothing() {
    // RFC 9293 §3.10.5 ABORT, SYN-SENT: no RST (the peer has no state for us); the
    // connection is deleted.
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S");
    h.stack.tcp_abort(c).unwrap();
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

#[test]
fn rst_in_time_wait_closes_it() {
    // RFC 9293 §3.10.7.4 second, TIME-WAIT: "enter the CLOSED state" (Linux default,
    // tcp_rfc1337 = 0).
    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.");
    h.inject(seg! {flags: "F.", seq: 1001, ack: 2});
    expect!(h, ack: 1002);
    assert_eq!(h.stack.tcp_state(c), Ok(State::TimeWait));
    h.inject(seg! {flags: "R", seq: 1002});
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(None));
}

/// A connection (SACK and timestamps: RACK on) that receives the peer's FIN, answers,
/// is closed by the application (LAST-ACK), and then hears the ACKs given by `acks`
/// (the sequence space acknowledged by each, relative to our ISN; a delay before
/// each): everything sent (as packetdrill prints it, with the send time), the counters
/// and the connections left after each step, with or without header prediction.
fn orphan_last_ack_script(predict: bool, acks: &[(u32, u64)]) -> Vec<alloc::string::String> {
    let mut config = crate::StackConfig::default();
    config.tcp.tcb.header_prediction = predict;
    let mut h = Harness::with_config(config);
    let ts = h.peer_tsval();
    let c = h.passive(seg! {flags: "S", seq: 1000, mss: 1460, sackok: true, ts: (ts, 0)});
    let mut log = alloc::vec::Vec::new();
    let step = |h: &mut Harness, log: &mut alloc::vec::Vec<alloc::string::String>| {
        for s in h.drain() {
            log.push(alloc::format!("{s:?} at {:?}", s.at));
        }
        let stats = alloc::format!("{:?}", h.stack.stats())
            .replace("header_prediction: true", "header_prediction: false");
        log.push(stats);
        log.push(alloc::format!("{}", h.stack.tcp_connection_count()));
    };
    let seg_in = |h: &mut Harness, flags: &str, seq: u32, ack: u32, data: &[u8]| {
        let ts = h.peer_tsval();
        let tsecr = h.last_tsval();
        h.inject(seg! {flags: flags, seq: seq, ack: ack, ts: (ts, tsecr), data: data});
    };
    seg_in(&mut h, "P.", 1001, 1, &payload(64));
    assert_eq!(h.read_all(c), payload(64));
    h.stack.tcp_send(c, &payload(100)).unwrap();
    h.advance(ms(2));
    step(&mut h, &mut log);
    seg_in(&mut h, "F.", 1065, 101, &[]);
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0));
    h.stack.tcp_send(c, &payload(30)).unwrap();
    h.stack.tcp_close(c).unwrap();
    step(&mut h, &mut log);
    for &(ack, delay) in acks {
        h.advance(ms(delay));
        seg_in(&mut h, ".", 1066, 1 + ack, &[]);
        step(&mut h, &mut log);
    }
    // A new connection on the same ports afterwards.
    h.advance(ms(5));
    let ts = h.peer_tsval();
    h.inject(seg! {flags: "S", seq: 90_000, mss: 1460, sackok: true, ts: (ts, 0)});
    step(&mut h, &mut log);
    log
}

#[test]
fn an_orphans_last_ack_changes_nothing_seen() {
    // In LAST-ACK, the ACK of our FIN on a connection the application closed closes
    // it at once, without recording the rest of what the ACK tells (input.rs
    // `last_ack_of_orphan`): the same segments, counters and connections as the full
    // path, whether the ACK covers everything at once, comes after part of it, after
    // the FIN was sent again, or comes twice.
    let cases: [&[(u32, u64)]; 4] = [
        &[(131, 1)],
        &[(120, 1), (131, 1)],
        &[(130, 1), (131, 3000)],
        &[(131, 0), (131, 1)],
    ];
    for acks in cases {
        let (fast, full) = (
            orphan_last_ack_script(true, acks),
            orphan_last_ack_script(false, acks),
        );
        assert_eq!(fast, full, "{acks:?}");
    }
}

/// Closes of every kind on a connection with SACK and timestamps (RACK on), each ACK
/// of everything sent given straight to the connection: ours first (FIN-WAIT-1 and 2,
/// with data before the FIN in the same segment or not, after a timeout or not), the
/// peer's first (CLOSE-WAIT with data still sent, then LAST-ACK), and both at once
/// (CLOSING). The TCB after
/// each input and after each output pass, as Debug text, with or without header
/// prediction (`predict`).
fn closing_states(predict: bool, kind: u32) -> Vec<alloc::string::String> {
    let mut config = crate::StackConfig::default();
    config.tcp.tcb.header_prediction = predict;
    let mut h = Harness::with_config(config);
    let ts = h.peer_tsval();
    let c = h.passive(seg! {flags: "S", seq: 1000, mss: 1460, sackok: true, ts: (ts, 0)});
    let mut states = alloc::vec::Vec::new();
    let state = |h: &Harness, states: &mut alloc::vec::Vec<alloc::string::String>| {
        if h.stack.tcp_connection_count() == 1 {
            states.push(h.tcb_text(c));
        } else {
            states.push(alloc::string::String::from("gone"));
        }
    };
    let input = |h: &mut Harness, flags: &str, seq: u32, ack: u32, data: &[u8]| {
        let ts = h.peer_tsval();
        let tsecr = h.last_tsval();
        h.input_to_tcb(
            c,
            &seg! {flags: flags, seq: seq, ack: ack, ts: (ts, tsecr), data: data},
        );
    };
    let output = |h: &mut Harness, states: &mut alloc::vec::Vec<alloc::string::String>| {
        h.poll();
        for s in h.drain() {
            states.push(alloc::format!("{s:?} at {:?}", s.at));
        }
        state(h, states);
        h.advance(ms(3));
    };
    // A request and its answer first.
    input(&mut h, "P.", 1001, 1, &payload(64));
    state(&h, &mut states);
    assert_eq!(h.read_all(c), payload(64));
    h.stack.tcp_send(c, &payload(100)).unwrap();
    output(&mut h, &mut states);
    match kind {
        0 | 1 => {
            // Our FIN: with the last data (0) or alone after it is acknowledged (1).
            if kind == 1 {
                input(&mut h, ".", 1065, 101, &[]);
                state(&h, &mut states);
            }
            h.stack.tcp_send(c, &payload(40)).unwrap();
            h.stack.tcp_shutdown(c).unwrap();
            output(&mut h, &mut states);
            input(&mut h, ".", 1065, 142, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
            input(&mut h, "F.", 1065, 142, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
        }
        2 => {
            // The peer's FIN, acknowledging our answer; more data, then our FIN.
            input(&mut h, "F.", 1065, 101, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
            h.stack.tcp_send(c, &payload(50)).unwrap();
            output(&mut h, &mut states);
            input(&mut h, ".", 1066, 151, &[]);
            state(&h, &mut states);
            h.stack.tcp_send(c, &payload(20)).unwrap();
            h.stack.tcp_shutdown(c).unwrap();
            output(&mut h, &mut states);
            input(&mut h, ".", 1066, 172, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
        }
        4 => {
            // A timeout first (the window down to one segment, so the ACK of our
            // full-sized last segment with its FIN grows it), then our FIN.
            h.advance(secs(2));
            output(&mut h, &mut states);
            input(&mut h, ".", 1065, 101, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
            h.stack.tcp_send(c, &payload(1448)).unwrap();
            h.stack.tcp_shutdown(c).unwrap();
            output(&mut h, &mut states);
            input(&mut h, ".", 1065, 1550, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
        }
        _ => {
            // Both FINs cross (CLOSING), then the ACK of ours.
            h.stack.tcp_send(c, &payload(30)).unwrap();
            h.stack.tcp_shutdown(c).unwrap();
            output(&mut h, &mut states);
            input(&mut h, "F.", 1065, 101, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
            input(&mut h, ".", 1066, 132, &[]);
            state(&h, &mut states);
            output(&mut h, &mut states);
        }
    }
    states
}

#[test]
fn a_closing_ack_leaves_the_tcb_as_the_full_path_does() {
    // The full path takes `try_sole_ack` for an ACK of everything sent in a closing
    // state, our FIN included or not (input.rs `sole_ack_may_apply`): every field as
    // `on_new_ack` and RACK's part would leave it.
    for kind in 0..5 {
        let (fast, full) = (closing_states(true, kind), closing_states(false, kind));
        assert_eq!(fast.len(), full.len(), "kind {kind}");
        for (i, (a, b)) in fast.iter().zip(&full).enumerate() {
            assert_eq!(a, b, "kind {kind}: TCB differs after step {i}");
        }
    }
}
