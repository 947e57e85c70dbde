//! Windows: the acceptability test of RFC 9293 §3.10.7.4, the send-window update rule
//! (SND.WL1/SND.WL2), zero windows and the persist timer (RFC 9293 §3.8.6.1), silly
//! window avoidance on both sides (RFC 1122 §4.2.3.3/§4.2.3.4, RFC 9293 §3.8.6.2), and
//! window scaling (RFC 7323 §2).

use super::harness::*;
use crate::stats::DropReason;
use crate::tcp::{State, TcpHandle};
use crate::StackConfig;

/// A passive connection with a receive buffer of `rcv_buf` bytes, no options but MSS
/// 1460: RCV.NXT = 1001, RCV.WND = rcv_buf (unscaled).
fn with_rcv_buf(rcv_buf: usize) -> (Harness, TcpHandle) {
    let mut cfg = StackConfig::default();
    cfg.tcp.socket.rcv_buf = rcv_buf;
    let mut h = Harness::with_config(cfg);
    let c = h.passive_plain();
    (h, c)
}

// ---- RFC 9293 §3.10.7.4 first check: sequence acceptability ----

#[test]
fn zero_length_segments_inside_the_window_are_acceptable() {
    // Case "SEG.LEN = 0, RCV.WND > 0": RCV.NXT =< SEG.SEQ < RCV.NXT + RCV.WND.
    let (mut h, c) = with_rcv_buf(1000);
    h.stack.tcp_send(c, b"abc").unwrap();
    expect!(h, seq: 1, len: 3);
    // An ACK at the left edge and one just inside the right edge are used.
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    assert_eq!(h.tcb(c).snd_una.0, h.tcb(c).iss.0 + 2);
    h.inject(seg! {flags: ".", seq: 2000, ack: 4});
    assert_eq!(h.tcb(c).snd_una.0, h.tcb(c).iss.0 + 4);
    h.expect_none();
}

#[test]
fn zero_length_segments_outside_the_window_get_an_ack() {
    // "If an incoming segment is not acceptable, an acknowledgment should be sent in
    // reply ... <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>", and the segment dropped (its ACK
    // field included).
    let (mut h, c) = with_rcv_buf(1000);
    h.stack.tcp_send(c, b"abc").unwrap();
    expect!(h, seq: 1, len: 3);
    h.inject(seg! {flags: ".", seq: 2001, ack: 4}); // right edge: outside
    expect!(h, flags: ".", seq: 4, ack: 1001);
    h.inject(seg! {flags: ".", seq: 1000, ack: 4}); // left of RCV.NXT
    expect!(h, flags: ".", seq: 4, ack: 1001);
    assert_eq!(
        h.tcb(c).snd_una.0,
        h.tcb(c).iss.0 + 1,
        "ACK fields were ignored"
    );
    assert_eq!(h.stack.stats().dropped(DropReason::TcpOutOfWindow), 2);
}

#[test]
fn data_segments_need_a_byte_inside_the_window() {
    // Case "SEG.LEN > 0, RCV.WND > 0": the first or the last octet in the window.
    let (mut h, c) = with_rcv_buf(1000);
    // Last byte inside (first byte old): acceptable, trimmed to the new part.
    h.inject(seg! {flags: "P.", seq: 996, ack: 1, data: b"0123456789"});
    expect!(h, ack: 1006);
    assert_eq!(h.read_all(c), b"56789");
    // Entirely old: not acceptable.
    h.inject(seg! {flags: "P.", seq: 990, ack: 1, data: b"0123456789"});
    expect!(h, flags: ".", ack: 1006);
    // First byte at the right edge - 1: acceptable, the rest trimmed to the window.
    h.inject(seg! {flags: "P.", seq: 2005, ack: 1, data: b"abcdef"});
    let a = expect!(h, flags: ".", ack: 1006);
    assert_eq!(a.sack, vec![], "no SACK without SACK-permitted");
    assert_eq!(
        h.tcb(c).reass.ranges().collect::<Vec<_>>(),
        vec![(999, 1000)]
    );
    // First byte past the right edge: not acceptable.
    h.inject(seg! {flags: "P.", seq: 2006, ack: 1, data: b"x"});
    expect!(h, flags: ".", ack: 1006);
    assert_eq!(h.stack.stats().dropped(DropReason::TcpOutOfWindow), 2);
}

#[test]
fn zero_window_accepts_only_the_exact_next_empty_segment() {
    // Cases "RCV.WND = 0": SEG.LEN = 0 needs SEG.SEQ = RCV.NXT; data is never
    // acceptable, but gets an ACK telling the current (zero) window.
    let (mut h, c) = with_rcv_buf(1000);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1000)});
    h.advance(ms(50)); // the delayed ACK
    expect!(h, ack: 2001, win: 0);
    h.inject(seg! {flags: ".", seq: 2001, ack: 1, data: b"z"}); // a zero-window probe
    expect!(h, flags: ".", seq: 1, ack: 2001, win: 0);
    h.inject(seg! {flags: ".", seq: 2002, ack: 1});
    expect!(h, flags: ".", ack: 2001, win: 0);
    h.inject(seg! {flags: ".", seq: 2001, ack: 1, win: 4000});
    h.expect_none();
    assert_eq!(h.stack.tcp_info(c).unwrap().snd_wnd, 4000);
    assert_eq!(h.read_all(c).len(), 1000);
}

#[test]
fn ack_in_a_zero_window_probe_is_processed() {
    // RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be acceptable, but
    // special allowance should be made to accept valid ACKs, URGs, and RSTs." Linux
    // (tcp_sequence) takes the ACK of a probe at RCV.NXT and drops only its data.
    let (mut h, c) = with_rcv_buf(1000);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1000)});
    h.advance(ms(50)); // the delayed ACK
    expect!(h, ack: 2001, win: 0);
    h.stack.tcp_send(c, b"abc").unwrap();
    expect!(h, seq: 1, len: 3);
    h.inject(seg! {flags: ".", seq: 2001, ack: 4, data: b"z"});
    expect!(h, flags: ".", seq: 4, ack: 2001, win: 0);
    assert_eq!(
        h.stack.tcp_send_queued(c),
        Ok(0),
        "the probe's ACK was used"
    );
}

#[test]
fn ack_of_unsent_data_is_answered_and_dropped() {
    // RFC 9293 §3.10.7.4 fifth: "If the ACK acks something not yet sent (SEG.ACK >
    // SND.NXT), then send an ACK, drop the segment, and return." Its data too.
    let mut h = Harness::new();
    let c = h.passive_plain();
    h.stack.tcp_send(c, b"abc").unwrap();
    expect!(h, seq: 1, len: 3);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 100, data: b"data"});
    expect!(h, flags: ".", seq: 4, ack: 1001);
    h.expect_none();
    assert_eq!(h.stack.tcp_recv_queued(c), Ok(0));
    assert_eq!(h.stack.tcp_send_queued(c), Ok(3));
    assert_eq!(h.stack.stats().dropped(DropReason::TcpBadAck), 1);
}

#[test]
fn duplicate_old_ack_is_ignored_but_its_data_is_used() {
    // RFC 9293 §3.10.7.4 fifth: "If the ACK is a duplicate (SEG.ACK =< SND.UNA), it can
    // be ignored"; the segment's text is still processed.
    let mut h = Harness::new();
    let c = h.passive_plain();
    h.stack.tcp_send(c, b"abc").unwrap();
    expect!(h, seq: 1, len: 3);
    h.inject(seg! {flags: ".", seq: 1001, ack: 4});
    h.inject(seg! {flags: "P.", seq: 1001, ack: 2, data: b"late"});
    expect!(h, flags: ".", ack: 1005);
    assert_eq!(h.read_all(c), b"late");
    assert_eq!(h.tcb(c).snd_una.0, h.tcb(c).iss.0 + 4);
}

#[test]
fn segment_without_ack_bit_is_dropped() {
    // RFC 9293 §3.10.7.4 fifth: "if the ACK bit is off, drop the segment and return".
    let mut h = Harness::new();
    let c = h.passive_plain();
    h.inject(seg! {flags: "P", seq: 1001, data: b"no ack"});
    h.expect_none();
    assert_eq!(h.stack.tcp_recv_queued(c), Ok(0));
    assert_eq!(h.stack.stats().dropped(DropReason::TcpNoAck), 1);
}

// ---- send window update: SND.WL1 / SND.WL2 ----

#[test]
fn window_is_updated_only_by_newer_segments() {
    // RFC 9293 §3.10.7.4 fifth: update SND.WND only if SND.WL1 < SEG.SEQ or (SND.WL1 =
    // SEG.SEQ and SND.WL2 =< SEG.ACK): an older segment, reordered, must not set an old
    // window.
    let mut h = Harness::new();
    let c = h.passive_plain();
    h.inject(seg! {flags: ".", seq: 1101, ack: 1, win: 2000, data: payload(100)});
    expect!(h, ack: 1001);
    assert_eq!(h.stack.tcp_info(c).unwrap().snd_wnd, 2000);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 500, data: payload(100)});
    expect!(h, ack: 1201);
    assert_eq!(
        h.stack.tcp_info(c).unwrap().snd_wnd,
        2000,
        "older segment ignored"
    );
    h.inject(seg! {flags: ".", seq: 1201, ack: 1, win: 700});
    assert_eq!(
        h.stack.tcp_info(c).unwrap().snd_wnd,
        700,
        "newer segment shrinks it"
    );
}

// ---- zero window: the persist timer (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17) ----

/// An established connection whose peer has just closed its window.
fn zero_window() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive_plain();
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 0});
    assert_eq!(h.stack.tcp_info(c).unwrap().snd_wnd, 0);
    (h, c)
}

#[test]
fn zero_window_is_probed_with_backoff() {
    // RFC 9293 §3.8.6.1: with data to send and a zero window, probe; RFC 1122
    // §4.2.2.17: the interval grows exponentially; the probe carries one byte (BSD).
    let (mut h, c) = zero_window();
    h.stack.tcp_send(c, &payload(100)).unwrap();
    h.expect_none();
    let rto = h.stack.tcp_info(c).unwrap().rto;
    let mut gap = rto;
    let mut last = h.now;
    for _ in 0..5 {
        h.advance_until_sent(secs(300));
        let p = expect!(h, seq: 1, len: 1, ack: 1001);
        assert_eq!(p.data, payload(1));
        assert_eq!(p.at - last, gap, "probe interval");
        h.expect_none();
        // The peer answers: still no room.
        h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 0});
        h.expect_none();
        last = p.at;
        gap = (gap * 2).min(h.stack.tcp.config.tcb.rto.max);
    }
    assert_eq!(h.stack.tcp_state(c), Ok(crate::tcp::State::Established));
}

#[test]
fn answered_probes_never_time_out() {
    // RFC 1122 §4.2.2.17: "the transmitting host SHOULD allow the connection to stay
    // open" as long as the receiver keeps acknowledging the probes.
    let (mut h, c) = zero_window();
    h.stack.tcp_send(c, &payload(100)).unwrap();
    for _ in 0..30 {
        h.advance_until_sent(secs(600));
        let p = expect!(h, seq: 1, len: 1);
        h.now = h.now.max(p.at);
        h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 0});
    }
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    let rto_max = h.stack.tcp.config.tcb.rto.max;
    let t = h.advance_until_sent(secs(600));
    assert!(t <= rto_max, "probe interval {t:?} above the RTO maximum");
}

#[test]
fn data_flows_from_snd_una_once_the_window_opens() {
    // RFC 9293 §3.8.6.1: when the window opens, transmission resumes at once; the
    // refused probe byte is part of the data (nothing skipped).
    let (mut h, c) = zero_window();
    h.stack.tcp_send(c, &payload(3000)).unwrap();
    h.advance_until_sent(secs(5));
    expect!(h, seq: 1, len: 1);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 0});
    h.expect_none();
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 65535});
    let s = expect!(h, seq: 1, len: 1460);
    assert_eq!(s.data, payload(1460));
    expect!(h, seq: 1461, len: 1460);
    expect!(h, seq: 2921, len: 80);
}

#[test]
fn accepted_probe_byte_advances_the_next_probe() {
    // A receiver may take the probe byte and still advertise zero: the next probe
    // carries the next byte.
    let (mut h, c) = zero_window();
    h.stack.tcp_send(c, b"abc").unwrap();
    h.advance_until_sent(secs(5));
    expect!(h, seq: 1, data: b"a");
    h.inject(seg! {flags: ".", seq: 1001, ack: 2, win: 0});
    h.advance_until_sent(secs(10));
    expect!(h, seq: 2, data: b"b");
}

// ---- silly window syndrome avoidance ----

#[test]
fn receiver_does_not_advertise_small_window_increases() {
    // RFC 9293 §3.8.6.2.2 / RFC 1122 §4.2.3.3: the window is reopened only once it can
    // grow by min(half the buffer, one MSS).
    let (mut h, c) = with_rcv_buf(4096);
    let mut seq = 1001;
    for n in [1460, 1460, 1176] {
        h.inject(seg! {flags: ".", seq: seq, ack: 1, data: payload(n)});
        seq += n as u32;
    }
    h.advance(ms(50)); // the delayed ACK of the last segment
    let last = h.drain().pop().unwrap();
    assert_eq!((last.ack, last.win), (5097, 0));
    let mut buf = vec![0u8; 100];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(100));
    h.expect_none();
    let mut buf = vec![0u8; 1300];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(1300));
    h.expect_none(); // 1400 free < one MSS
    let mut buf = vec![0u8; 60];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(60));
    expect!(h, flags: ".", seq: 1, ack: 5097, win: 1460);
}

#[test]
fn receiver_never_shrinks_the_advertised_window() {
    // RFC 9293 §3.8.6.2.2 / RFC 7323 §2.4: the right edge, once advertised, is not
    // moved left even while data fills the buffer.
    let (mut h, _c) = with_rcv_buf(4096);
    let mut seq = 1001u32;
    let mut edge = 1001 + 4096;
    for _ in 0..4 {
        h.inject(seg! {flags: ".", seq: seq, ack: 1, data: payload(1000)});
        seq += 1000;
        for a in h.drain() {
            assert!(
                a.ack + u32::from(a.win) >= edge,
                "{a:?} shrinks below {edge}"
            );
            edge = a.ack + u32::from(a.win);
        }
    }
}

#[test]
fn sender_does_not_send_small_segments_into_a_small_window() {
    // RFC 1122 §4.2.3.4: send a short segment only if it is all the data, or at least
    // half the largest window the peer offered; otherwise wait for the window to grow.
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, win: 4000});
    h.stack.tcp_send(c, &payload(6000)).unwrap();
    expect!(h, seq: 1, len: 1460);
    expect!(h, seq: 1461, len: 1460);
    h.expect_none(); // 1080 usable bytes: less than a segment and than 4000 / 2
                     // An ACK that opens 300 more bytes (1380 usable): still wait.
    h.inject(seg! {flags: ".", seq: 1001, ack: 301, win: 4000});
    h.expect_none();
    // 1460 usable: a full segment.
    h.inject(seg! {flags: ".", seq: 1001, ack: 381, win: 4000});
    expect!(h, seq: 2921, len: 1460);
    h.expect_none();
    // Everything acknowledged: the remaining 1620 bytes fit the window.
    h.inject(seg! {flags: ".", seq: 1001, ack: 4381, win: 4000});
    expect!(h, seq: 4381, len: 1460);
    expect!(h, flags: "P.", seq: 5841, len: 160);
    h.expect_none();
}

#[test]
fn sender_override_timer_uses_a_small_window_when_nothing_is_in_flight() {
    // RFC 1122 §4.2.3.4: SWS avoidance needs an override timeout, or a peer that
    // shrank its window below half its maximum would stall the connection forever.
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, win: 10000});
    h.stack.tcp_send(c, &payload(3000)).unwrap();
    expect!(h, seq: 1, len: 1460);
    expect!(h, seq: 1461, len: 1460);
    expect!(h, seq: 2921, len: 80);
    // Everything acknowledged, but the window is now only 100 bytes... and more data.
    h.inject(seg! {flags: ".", seq: 1001, ack: 3001, win: 100});
    h.stack.tcp_send(c, &payload(3000)).unwrap();
    h.expect_none();
    h.advance_until_sent(secs(10));
    expect!(h, seq: 3001, len: 100);
}

// ---- window scaling (RFC 7323 §2) ----

#[test]
fn our_window_is_advertised_scaled() {
    // RFC 7323 §2.3: the window field of non-SYN segments is RCV.WND >> Rcv.Wind.Shift.
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, ws: 7});
    assert_eq!(h.stack.tcp_info(c).unwrap().rcv_wscale, 1);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(100)});
    expect!(h, ack: 1101, win: ((65536 - 100) >> 1) as u16);
}

#[test]
fn peer_window_is_scaled() {
    // RFC 7323 §2.3: SND.WND = SEG.WND << Snd.Wind.Shift; we send exactly that much.
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1000, ws: 3});
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 500}); // 4000 bytes
    assert_eq!(h.stack.tcp_info(c).unwrap().snd_wnd, 4000);
    h.stack.tcp_send(c, &payload(10_000)).unwrap();
    let sent: usize = h.drain().iter().map(|s| s.data.len()).sum();
    assert_eq!(sent, 4000);
}

#[test]
fn window_scale_above_14_is_taken_as_14() {
    // RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt value
    // larger than 14, the TCP SHOULD log the error but MUST use 14 instead".
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, ws: 15});
    assert_eq!(h.stack.tcp_info(c).unwrap().snd_wscale, 14);
}

#[test]
fn big_buffer_gets_a_bigger_shift() {
    // RFC 7323 §2.3: the shift is chosen from the receive buffer; a 1 MiB buffer needs 5.
    let mut cfg = StackConfig::default();
    cfg.tcp.socket.rcv_buf = 1 << 20;
    let mut h = Harness::with_config(cfg);
    h.listen(4);
    h.inject(seg! {flags: "S", seq: PEER_ISN, mss: 1460, ws: 0});
    expect!(h, flags: "S.", ws: 5, win: 65535);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1});
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"x"});
    expect!(h, ack: 1002, win: (((1 << 20) - 1) >> 5) as u16);
}
