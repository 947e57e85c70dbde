//! Timers not covered elsewhere: keepalive (RFC 1122 §4.2.3.6: idle, interval,
//! count), and the RTO after a lost SYN (RFC 6298 §5.7). The retransmission timer is
//! in `recovery`, the persist timer in `window`, TIME-WAIT in `close`, delayed ACKs
//! in `data`.

use super::harness::*;
use crate::tcp::{Events, Keepalive, State, TcpError, TcpHandle};

fn with_keepalive() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive_plain();
    let k = Keepalive {
        idle: secs(10),
        interval: secs(2),
        count: 3,
    };
    h.stack.tcp_set_keepalive(c, Some(k)).unwrap();
    (h, c)
}

#[test]
fn no_keepalive_probe_while_data_is_in_flight() {
    // With data unacknowledged the retransmission timer watches the peer: keepalive
    // sends no probe (RFC 1122 §4.2.3.6 probes an idle connection; Linux
    // tcp_keepalive_timer reschedules while packets are out).
    let (mut h, c) = with_keepalive();
    h.stack.tcp_send(c, &[7u8; 100]).unwrap();
    expect!(h, seq: 1, len: 100);
    h.advance(secs(30));
    for s in h.drain() {
        assert_eq!(
            (s.seq, s.data.len()),
            (1, 100),
            "only retransmissions: {s:?}"
        );
    }
}

#[test]
fn keepalive_probes_an_idle_peer_then_gives_up() {
    // RFC 1122 §4.2.3.6: after `idle` without anything from the peer, send a probe
    // (SEG.SEQ = SND.NXT - 1, no data, so the peer must answer); every `interval`
    // again; after `count` unanswered probes the connection is dead: reset it and
    // report a timeout (Linux tcp_keepalive_timer).
    let (mut h, c) = with_keepalive();
    let t0 = h.now;
    h.advance(secs(10) - ms(1));
    h.expect_none();
    h.advance(ms(1));
    let p = expect!(h, flags: ".", seq: 0, ack: 1001, len: 0);
    assert_eq!(p.at - t0, secs(10));
    for i in 1..3u64 {
        h.advance_until_sent(secs(5));
        let p = expect!(h, flags: ".", seq: 0, ack: 1001, len: 0);
        assert_eq!(p.at - t0, secs(10 + 2 * i));
    }
    h.advance_until_sent(secs(5));
    let r = expect!(h, flags: "R.", seq: 1);
    assert_eq!(r.at - t0, secs(16));
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(Some(TcpError::TimedOut)));
    let ev = h.events_of(c);
    assert!(
        ev & Events::ERROR != 0 && ev & Events::CLOSED != 0,
        "{ev:#x}"
    );
    h.advance(secs(60));
    h.expect_none();
}

#[test]
fn answered_keepalive_starts_a_new_idle_period() {
    let (mut h, c) = with_keepalive();
    h.advance(secs(10));
    let p = expect!(h, seq: 0, len: 0);
    h.advance(ms(30));
    h.inject(seg! {flags: ".", seq: 1001, ack: 1});
    h.expect_none();
    h.advance(secs(10) - ms(1));
    h.expect_none();
    h.advance(ms(1));
    let q = expect!(h, seq: 0, len: 0);
    assert_eq!(q.at - p.at, secs(10) + ms(30));
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
}

#[test]
fn traffic_from_the_peer_postpones_keepalive() {
    let (mut h, _c) = with_keepalive();
    for _ in 0..5 {
        h.advance(secs(8));
        h.inject(seg! {flags: ".", seq: 1001, ack: 1});
        h.expect_none();
    }
    h.advance(secs(10));
    expect!(h, seq: 0, len: 0);
}

#[test]
fn keepalive_is_off_by_default() {
    // RFC 1122 §4.2.3.6: "Keep-alive packets MUST only be sent when ... the application
    // has requested them" (default off); when on, the idle default is 2 hours.
    let mut h = Harness::new();
    let c = h.passive_plain();
    h.advance(secs(3 * 3600));
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    assert_eq!(Keepalive::default().idle, secs(7200));
}

#[test]
fn rto_is_3s_after_a_retransmitted_syn() {
    // RFC 6298 §5.7: if the SYN was retransmitted and no RTT sample could be taken
    // (Karn), the RTO is set to 3 s once the connection is established.
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S", seq: 0);
    h.advance_until_sent(secs(2));
    expect!(h, flags: "S", seq: 0);
    h.advance(ms(50));
    h.inject(seg! {flags: "S.", seq: 3000, ack: 1, mss: 1460});
    expect!(h, flags: ".", seq: 1, ack: 3001);
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.srtt, None, "no sample after a retransmitted SYN");
    assert_eq!(info.rto, secs(3));
    h.stack.tcp_send(c, b"x").unwrap();
    let d = expect!(h, seq: 1);
    h.advance_until_sent(secs(10));
    let r = expect!(h, seq: 1);
    assert_eq!(r.at - d.at, secs(3));
}

#[test]
fn syn_ack_timestamp_gives_a_sample_even_after_a_retransmission() {
    // RFC 7323 §4.1: the echoed TSval identifies which SYN was answered, so the
    // handshake is measured even after a retransmission.
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S");
    h.advance_until_sent(secs(2));
    let syn2 = expect!(h, flags: "S");
    h.advance(ms(50));
    h.inject(seg! {flags: "S.", seq: 3000, ack: 1, mss: 1460, ts: (7, syn2.tsval())});
    expect!(h, flags: ".", ack: 3001, tsecr: 7);
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.srtt, Some(ms(50)));
}

#[test]
fn a_handshake_is_woken_one_minimum_rto_after_its_syn() {
    // The SYN's RTO is the initial 1 s, but the wheel wakes the connection one minimum
    // RTO (200 ms) after the SYN: the data's RTO, armed once the handshake is done, is
    // no earlier, so it takes no entry of its own.
    let mut h = Harness::new();
    let c = h.connect();
    let syn = expect!(h, flags: "S", seq: 0);
    assert_eq!(h.stack.tcp.wheel.len(), 1);
    assert_eq!(h.stack.poll_at(), Some(syn.at + ms(200)));
    h.inject(seg! {flags: "S.", seq: 3000, ack: 1, win: 1000, mss: 1400, ts: (42, syn.tsval())});
    expect!(h, flags: ".", seq: 1, ack: 3001);
    h.stack.tcp_send(c, b"hello").unwrap();
    let data = expect!(h, flags: "P.", seq: 1, ack: 3001);
    assert_eq!(data.data, b"hello");
    assert_eq!(h.stack.tcp.wheel.len(), 1, "the data's RTO took no entry");
    // The early wake fires nothing; the RTO still fires at its own deadline (the RTT
    // sample was 0: the minimum RTO after the data).
    let waited = h.advance_until_sent(secs(1));
    assert_eq!(waited, ms(200));
    expect!(h, flags: "P.", seq: 1, ack: 3001);
}

#[test]
fn a_slow_handshake_is_woken_early_once_and_its_syn_retransmitted_on_time() {
    let mut h = Harness::new();
    h.connect();
    let syn = expect!(h, flags: "S", seq: 0);
    h.advance(ms(200));
    h.expect_none();
    // Woken early, nothing due: woken next at the SYN's own deadline.
    assert_eq!(h.stack.poll_at(), Some(syn.at + secs(1)));
    h.advance_until_sent(secs(1));
    let again = expect!(h, flags: "S", seq: 0);
    assert_eq!(again.at - syn.at, secs(1));
}
