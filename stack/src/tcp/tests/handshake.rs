//! Opening a connection (RFC 9293 §3.5): passive and active open, simultaneous open,
//! option negotiation (RFC 7323, RFC 2018), the MSS (RFC 9293 §3.7.1), SYN
//! retransmission, and what SYN-SENT and SYN-RECEIVED do with odd segments
//! (RFC 9293 §3.10.7.3, §3.10.7.4).

use super::harness::*;
use crate::tcp::{Events, State, TcpError};
use crate::StackConfig;

// ---- passive open (LISTEN -> SYN-RECEIVED -> ESTABLISHED) ----

#[test]
fn passive_open_negotiates_every_option() {
    // RFC 9293 §3.5 figure 6; RFC 7323 §2.2/§3.2; RFC 2018 §2.
    let mut h = Harness::new();
    let l = h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460, sackok: true, ts: (5000, 0), ws: 7});
    // Our window in a SYN is never scaled (RFC 7323 §2.2); a 64 KiB buffer needs shift 1.
    let synack = expect!(h, flags: "S.", seq: 0, ack: 1001, win: 65535, mss: 1460,
                         ws: 1, sackok: true, tsecr: 5000);
    h.expect_none();
    assert_eq!(h.stack.tcp_accept(l), Err(TcpError::WouldBlock));
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 512, ts: (5001, synack.tsval())});
    let (c, peer) = h.stack.tcp_accept(l).expect("established");
    assert_eq!(peer, Harness::remote());
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.state, State::Established);
    assert!(info.timestamps && info.sack);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (7, 1));
    assert_eq!(info.snd_wnd, 512 << 7, "the ACK's window is scaled");
    assert_eq!(
        info.smss,
        1460 - 12,
        "timestamps take 12 bytes of each segment"
    );
    h.expect_none();
}

#[test]
fn passive_open_without_options_offers_none_back() {
    // RFC 7323 §1.3/§2.2, RFC 2018 §2: an option the SYN did not carry is not used,
    // and the SYN-ACK does not offer it. Only MSS is always sent (RFC 9293 §3.7.1).
    let mut h = Harness::new();
    let l = h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000});
    let s = expect!(h, flags: "S.", seq: 0, ack: 1001, mss: 1460, sackok: false, nots: true);
    assert_eq!(s.ws, None);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 1000});
    let c = h.stack.tcp_accept(l).unwrap().0;
    let info = h.stack.tcp_info(c).unwrap();
    assert!(!info.timestamps && !info.sack);
    assert_eq!((info.snd_wscale, info.rcv_wscale), (0, 0));
    // RFC 9293 §3.7.1: without an MSS option the peer takes 536.
    assert_eq!(info.smss, 536);
    assert_eq!(info.snd_wnd, 1000);
}

#[test]
fn syn_ack_is_retransmitted_with_backoff_then_dropped() {
    // RFC 6298 §5.5 backoff; RFC 9293 §3.8.3 R2 for a SYN: give up after
    // `syn_retries` retransmissions. The embryonic connection then disappears.
    let mut h = Harness::new();
    h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    let first = expect!(h, flags: "S.", seq: 0, ack: 1001);
    let retries = h.stack.tcp.config.tcb.syn_retries;
    let mut at = first.at;
    let mut gap = ms(1000);
    for _ in 0..retries {
        h.advance_until_sent(gap * 2);
        let s = expect!(h, flags: "S.", seq: 0, ack: 1001, mss: 1460);
        assert_eq!(s.at - at, gap, "RTO doubles on each retransmission");
        h.expect_none();
        at = s.at;
        gap *= 2;
    }
    h.advance(secs(300));
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
    let l = h.stack.tcp.listeners.iter().next().unwrap().1;
    assert_eq!(l.embryonic, 0);
}

#[test]
fn duplicate_syn_in_syn_received_resends_syn_ack() {
    // RFC 9293 §3.10.7.4: a retransmitted SYN (same ISN) gets the SYN-ACK again, as
    // Linux does (the first SYN-ACK may have been lost).
    let mut h = Harness::new();
    h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 1001);
    h.advance(ms(300));
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 1001, mss: 1460);
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 1);
}

#[test]
fn unacceptable_ack_in_syn_received_gets_reset() {
    // RFC 9293 §3.10.7.4 fifth, SYN-RECEIVED: "If the segment acknowledgment is not
    // acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST>". The connection stays.
    let mut h = Harness::new();
    let l = h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 1001);
    h.inject(seg! {flags: ".", seq: 1001, ack: 5});
    expect!(h, flags: "R", seq: 5);
    h.expect_none();
    // The right ACK still completes the handshake.
    h.inject(seg! {flags: ".", seq: 1001, ack: 1});
    assert!(h.stack.tcp_accept(l).is_ok());
}

#[test]
fn rst_in_syn_received_returns_to_listen() {
    // RFC 9293 §3.10.7.4 second, SYN-RECEIVED from a passive OPEN: a RST returns the
    // connection to LISTEN: the embryonic connection goes, the listener stays.
    let mut h = Harness::new();
    let l = h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 1001);
    h.inject(seg! {flags: "R", seq: 1001});
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
    h.advance(secs(5));
    h.expect_none(); // no SYN-ACK retransmission
    h.inject(seg! {flags: "S", seq: 7000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 7001);
    h.inject(seg! {flags: ".", seq: 7001, ack: 1});
    assert!(h.stack.tcp_accept(l).is_ok());
}

#[test]
fn listener_resets_an_ack() {
    // RFC 9293 §3.10.7.2 second: an ACK to a LISTEN socket gets <SEQ=SEG.ACK><CTL=RST>.
    let mut h = Harness::new();
    h.listen(8);
    h.inject(seg! {flags: ".", seq: 5000, ack: 777});
    expect!(h, flags: "R", seq: 777);
    h.inject(seg! {flags: "P.", seq: 5000, ack: 777, data: b"GET /"});
    expect!(h, flags: "R", seq: 777);
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

#[test]
fn listener_ignores_rst_and_segments_without_syn_or_ack() {
    // RFC 9293 §3.10.7.2 first ("an incoming RST should be ignored") and fourth ("any
    // other control or text-bearing segment ... drop it").
    let mut h = Harness::new();
    h.listen(8);
    h.inject(seg! {flags: "R", seq: 5000});
    h.inject(seg! {flags: "R.", seq: 5000, ack: 9});
    h.inject(seg! {flags: "F", seq: 5000});
    h.inject(seg! {flags: "P", seq: 5000, data: b"hello"});
    h.expect_none();
    assert_eq!(h.stack.tcp_connection_count(), 0);
}

// ---- active open (SYN-SENT -> ESTABLISHED) ----

#[test]
fn active_open_syn_offers_every_option() {
    // RFC 9293 §3.5; RFC 7323 §2.2 (WS, TS with TSecr 0), RFC 2018 (SACK-permitted),
    // MSS = MTU - 40 (RFC 9293 §3.7.1).
    let mut h = Harness::new();
    let c = h.connect();
    let syn = expect!(h, flags: "S", seq: 0, win: 65535, mss: 1460, ws: 1, sackok: true,
                      tsecr: 0);
    assert_eq!(syn.sport, STACK_PORT);
    assert_eq!(syn.dport, PEER_PORT);
    assert!(syn.data.is_empty());
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynSent));
    h.expect_none();
}

#[test]
fn active_open_completes_on_syn_ack() {
    // RFC 9293 §3.10.7.3 fourth: a SYN-ACK that acknowledges our SYN: ESTABLISHED, and
    // "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" is sent.
    let mut h = Harness::new();
    let c = h.connect();
    let syn = expect!(h, flags: "S", seq: 0);
    assert_eq!(h.events_of(c), 0);
    h.inject(
        seg! {flags: "S.", seq: 3000, ack: 1, win: 1000, mss: 1400, ws: 3, sackok: true,
        ts: (42, syn.tsval())},
    );
    expect!(h, flags: ".", seq: 1, ack: 3001, tsecr: 42, win: 32768);
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    let ev = h.events_of(c);
    assert!(
        ev & Events::CONNECTED != 0 && ev & Events::WRITABLE != 0,
        "{ev:#x}"
    );
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.snd_wnd, 1000, "the window of a SYN-ACK is not scaled");
    assert_eq!(info.snd_wscale, 3);
    assert_eq!(info.smss, 1400 - 12);
}

#[test]
fn syn_is_retransmitted_with_backoff_then_times_out() {
    // RFC 6298 §5.5 (double the RTO), §2.1 (1 s initially); RFC 9293 §3.8.3 R2:
    // give up after `syn_retries`, report a timeout.
    let mut h = Harness::new();
    let c = h.connect();
    let first = expect!(h, flags: "S", seq: 0);
    let retries = h.stack.tcp.config.tcb.syn_retries;
    let mut at = first.at;
    let mut gap = ms(1000);
    for _ in 0..retries {
        let waited = h.advance_until_sent(gap * 2);
        assert_eq!(waited, gap);
        let s = expect!(h, flags: "S", seq: 0, mss: 1460);
        assert_eq!(s.at - at, gap);
        at = s.at;
        gap *= 2;
    }
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynSent));
    h.advance(gap - ms(1));
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynSent));
    h.advance(ms(1));
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(Some(TcpError::TimedOut)));
    let ev = h.events_of(c);
    assert!(
        ev & Events::ERROR != 0 && ev & Events::CLOSED != 0,
        "{ev:#x}"
    );
}

#[test]
fn rst_acknowledging_our_syn_refuses_the_connection() {
    // RFC 9293 §3.10.7.3 second: a RST with an acceptable ACK: "connection reset",
    // drop the segment, enter CLOSED.
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.inject(seg! {flags: "R.", seq: 0, ack: 1});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(Some(TcpError::ConnectionRefused)));
    assert_eq!(h.stack.tcp_send(c, b"x"), Err(TcpError::ConnectionRefused));
    assert!(h.events_of(c) & Events::ERROR != 0);
    h.advance(secs(10));
    h.expect_none(); // no SYN retransmission
}

#[test]
fn rst_in_syn_sent_without_ack_or_with_bad_ack_is_ignored() {
    // RFC 9293 §3.10.7.3: a RST whose ACK is unacceptable is dropped (first check);
    // one without ACK is dropped too (RFC 5961 §3: it could be blind).
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.inject(seg! {flags: "R", seq: 0});
    h.inject(seg! {flags: "R.", seq: 0, ack: 100});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynSent));
}

#[test]
fn syn_ack_with_unacceptable_ack_gets_reset() {
    // RFC 9293 §3.10.7.3 first: SEG.ACK =< ISS or SEG.ACK > SND.NXT: send
    // <SEQ=SEG.ACK><CTL=RST> and drop; the connection stays in SYN-SENT.
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.inject(seg! {flags: "S.", seq: 3000, ack: 2, mss: 1460});
    expect!(h, flags: "R", seq: 2);
    h.inject(seg! {flags: "S.", seq: 3000, ack: 0, mss: 1460});
    expect!(h, flags: "R", seq: 0);
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynSent));
    // The real SYN-ACK still completes it.
    h.inject(seg! {flags: "S.", seq: 3000, ack: 1, mss: 1460});
    expect!(h, flags: ".", seq: 1, ack: 3001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
}

#[test]
fn segment_without_syn_or_rst_in_syn_sent_is_dropped() {
    // RFC 9293 §3.10.7.3 fifth: "If neither of the SYN or RST bits is set, then drop the
    // segment and return."
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.inject(seg! {flags: ".", seq: 3000, ack: 1});
    h.inject(seg! {flags: "P.", seq: 3000, ack: 1, data: b"early"});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynSent));
}

#[test]
fn simultaneous_open() {
    // RFC 9293 §3.5 figure 8: both sides send SYN. Ours is answered by a bare SYN:
    // SYN-RECEIVED, and we send SYN-ACK. The peer's SYN-ACK then completes the
    // handshake (Linux accepts it in SYN-RECV, tcp_validate_incoming) and must not be
    // answered with yet another SYN-ACK, or two such stacks would loop forever.
    let mut h = Harness::new();
    let c = h.connect();
    let syn = expect!(h, flags: "S", seq: 0);
    h.inject(seg! {flags: "S", seq: 5000, mss: 1460, ts: (10, 0), sackok: true, ws: 2});
    expect!(h, flags: "S.", seq: 0, ack: 5001, mss: 1460, tsecr: 10);
    assert_eq!(h.stack.tcp_state(c), Ok(State::SynReceived));
    h.inject(
        seg! {flags: "S.", seq: 5000, ack: 1, mss: 1460, ts: (11, syn.tsval()),
        sackok: true, ws: 2},
    );
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    for s in h.drain() {
        assert!(!s.has("S"), "no more SYNs once established: {s:?}");
    }
    assert!(h.events_of(c) & Events::CONNECTED != 0);
    // Data flows.
    h.stack.tcp_send(c, b"hi").unwrap();
    expect!(h, flags: "P.", seq: 1, ack: 5001, data: b"hi");
}

#[test]
fn advertised_mss_follows_the_interface_mtu() {
    // RFC 9293 §3.7.1 / RFC 879: MSS = MTU - 20 (IP) - 20 (TCP).
    let mut h = Harness::build(StackConfig::default(), Some(1280));
    h.connect();
    expect!(h, flags: "S", mss: 1240);
    h.listen(4);
    h.inject(seg! {flags: "S", seq: 9, sport: 999, mss: 1460});
    expect!(h, flags: "S.", mss: 1240, dport: 999);
}

#[test]
fn first_data_segment_completes_the_handshake() {
    // RFC 9293 §3.10.7.4 fifth, SYN-RECEIVED: any acceptable ACK completes it, so data
    // that carries the ACK (the pure ACK was lost) is established and delivered.
    let mut h = Harness::new();
    let l = h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 1001);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"GET /"});
    expect!(h, flags: ".", seq: 1, ack: 1006);
    let (c, _) = h.stack.tcp_accept(l).unwrap();
    assert_eq!(h.read_all(c), b"GET /");
}

#[test]
fn fin_completing_the_handshake_goes_to_close_wait() {
    // RFC 9293 §3.10.7.4 eighth: a FIN in SYN-RECEIVED (with the handshake's ACK)
    // enters CLOSE-WAIT; the application accepts a connection that reads EOF.
    let mut h = Harness::new();
    let l = h.listen(8);
    h.inject(seg! {flags: "S", seq: 1000, mss: 1460});
    expect!(h, flags: "S.", seq: 0, ack: 1001);
    h.inject(seg! {flags: "F.", seq: 1001, ack: 1});
    expect!(h, flags: ".", seq: 1, ack: 1002);
    let (c, _) = h.stack.tcp_accept(l).unwrap();
    assert_eq!(h.stack.tcp_state(c), Ok(State::CloseWait));
    let mut buf = [0u8; 4];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0));
}

#[test]
fn the_mss_offered_is_the_same_with_the_route_memo_or_without() {
    // `mss_for` takes the interface from the output path's route memo when it holds
    // the peer: that must be what the route table's scan answers.
    let mut h = Harness::new();
    h.connect();
    expect!(h, flags: "S", seq: 0, mss: 1460);
    let gen = h.stack.routes.generation();
    assert!(
        h.stack.route_memo.get(PEER_IP, gen).is_some(),
        "the SYN filled the memo"
    );
    let elsewhere = crate::wire::Ipv4Addr::new(192, 0, 2, 1);
    let with_memo = (h.stack.mss_for(PEER_IP), h.stack.mss_for(elsewhere));
    h.stack.route_memo = Default::default();
    let without = (h.stack.mss_for(PEER_IP), h.stack.mss_for(elsewhere));
    assert_eq!(with_memo, without);
    assert_eq!(with_memo.0, 1460);
}
