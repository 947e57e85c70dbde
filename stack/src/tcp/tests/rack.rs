//! RACK-TLP (RFC 8985) and the RTT it relies on: losses found by time rather than by
//! counting duplicate ACKs (a single SACK, lost retransmissions, many holes at once),
//! the tail loss probe that replaces a retransmission timeout, RTT samples from send
//! times in microseconds (RFC 6298 with Karn), and the abort RST of a full window.
//! Without SACK: NewReno's fast retransmit right after a recovery (RFC 6582 §4).

use super::harness::*;
use crate::tcp::cc::CcAlgorithm;
use crate::tcp::TcpHandle;
use crate::time::Duration;
use crate::StackConfig;

/// Segments of 1448 bytes (MSS 1460 less timestamps).
const MSS_TS: u32 = 1448;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// Sequence number of segment `i` (0-based).
fn s(i: u32) -> u32 {
    1 + MSS_TS * i
}

/// A passive open with SACK and timestamps whose handshake took `rtt`, and a peer
/// window of `win` bytes.
fn established(rtt: Duration, win: u16) -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let l = h.listen(8);
    let syn = seg! {flags: "S", seq: PEER_ISN, mss: 1460, sackok: true,
    ts: (START.total_millis() as u32, 0), win: win};
    h.inject(syn);
    let synack = expect!(h, flags: "S.", seq: 0, ack: PEER_ISN + 1);
    h.advance(rtt);
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: 1, win: win,
    ts: (h.peer_tsval(), synack.tsval())});
    h.auto_ts = true;
    let (c, _) = h.stack.tcp_accept(l).unwrap();
    (h, c)
}

/// `n` full segments sent (and checked), nothing else.
fn send_segments(h: &mut Harness, c: TcpHandle, n: u32) {
    h.stack
        .tcp_send(c, &payload((n * MSS_TS) as usize))
        .unwrap();
    for i in 0..n {
        expect!(h, seq: s(i), len: MSS_TS as usize);
    }
    h.expect_none();
}

/// A duplicate ACK at `ack` with SACK blocks (relative sequence numbers).
fn sack(h: &mut Harness, ack: u32, blocks: &[(u32, u32)]) {
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: ack, sack: blocks});
}

#[test]
fn rtt_comes_from_send_times_in_microseconds() {
    // RFC 6298 with Karn's rule, as Linux: the sample is the time since the segment
    // was sent, to the microsecond, even though the timestamp clock ticks in
    // milliseconds (its echo would read 1 ms here).
    let (mut h, c) = established(us(150), 65535);
    assert_eq!(h.stack.tcp_info(c).unwrap().srtt, Some(us(150)));
    send_segments(&mut h, c, 1);
    h.advance(us(120));
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: s(1)});
    // RFC 6298 §2.3: 7/8 * 150 + 1/8 * 120 = 146.25 µs.
    assert_eq!(h.stack.tcp_info(c).unwrap().srtt, Some(us(146)));
}

#[test]
fn one_sack_is_enough_once_the_reordering_window_passes() {
    // RFC 8985 §6.2: segment 0 is lost when segment 1, sent after it, was delivered
    // and a reordering window of min_RTT / 4 has passed, though only one duplicate ACK
    // came (RFC 6675's DupThresh of three would wait for the RTO).
    let (mut h, c) = established(ms(10), 65535);
    send_segments(&mut h, c, 2);
    h.advance(ms(10));
    sack(&mut h, 1, &[(s(1), s(2))]);
    h.expect_none();
    let waited = h.advance_until_sent(ms(100));
    expect!(h, seq: s(0), len: MSS_TS as usize);
    assert_eq!(waited, us(2500), "RACK.rtt + min_RTT/4 after the send");
    assert!(h.tcb(c).in_recovery);
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: s(2)});
    assert!(!h.tcb(c).in_recovery);
    assert_eq!(h.stack.stats().tcp_timeouts, 0);
    assert_eq!(h.stack.stats().tcp_retransmits, 1);
}

#[test]
fn every_hole_of_a_window_is_repaired_in_one_recovery() {
    // Every other segment lost: each hole lies below a SACKed segment sent after it,
    // so RACK marks all five lost at once, and recovery resends each exactly once.
    let (mut h, c) = established(ms(10), 65535);
    send_segments(&mut h, c, 10);
    h.advance(ms(10));
    // The receiver reports the newest island first, then the ones before it.
    for i in [1u32, 3, 5, 7, 9] {
        let blocks: alloc::vec::Vec<(u32, u32)> = [i, i.wrapping_sub(2), i.wrapping_sub(4)]
            .into_iter()
            .filter(|&j| j < 10)
            .map(|j| (s(j), s(j + 1)))
            .collect();
        sack(&mut h, 1, &blocks);
    }
    let mut resent: alloc::vec::Vec<u32> = h.drain().iter().map(|x| x.seq).collect();
    resent.sort_unstable();
    assert_eq!(resent, [s(0), s(2), s(4), s(6), s(8)]);
    h.advance(ms(10));
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: s(10)});
    assert!(!h.tcb(c).in_recovery);
    h.expect_none();
    assert_eq!(h.stack.stats().tcp_retransmits, 5);
    assert_eq!(h.stack.stats().tcp_timeouts, 0);
}

#[test]
fn a_lost_retransmission_is_sent_again_without_a_timeout() {
    // RFC 8985 §2.2: the retransmission of segment 0 is lost too. New data sent after
    // it is SACKed an RTT later, so RACK marks the retransmission lost as it would
    // any segment, and it goes a third time long before the 200 ms RTO.
    let (mut h, c) = established(ms(10), 65535);
    h.stack
        .tcp_send(c, &payload((16 * MSS_TS) as usize))
        .unwrap();
    for i in 0..10 {
        expect!(h, seq: s(i));
    }
    h.advance(ms(10));
    // Segments 1..9 arrive, segment 0 does not.
    for i in 1..10 {
        sack(&mut h, 1, &[(s(1), s(i + 1))]);
    }
    let out = h.drain();
    let first_rxt = out
        .iter()
        .find(|x| x.seq == s(0))
        .expect("fast retransmit")
        .at;
    let new: alloc::vec::Vec<u32> = out.iter().map(|x| x.seq).filter(|&q| q >= s(10)).collect();
    assert!(
        !new.is_empty(),
        "new data follows the retransmission: {out:?}"
    );
    // An RTT later the new data is SACKed, the retransmission is not.
    h.advance(ms(10));
    let top = *new.last().unwrap() + MSS_TS;
    sack(&mut h, 1, &[(s(10), top), (s(1), s(10))]);
    let again = expect!(h, seq: s(0), len: MSS_TS as usize);
    assert_eq!(again.at - first_rxt, ms(10));
    assert_eq!(h.stack.stats().tcp_timeouts, 0);
}

#[test]
fn a_tail_loss_is_probed_instead_of_timed_out() {
    // RFC 8985 §7: the last two segments are lost, so no SACK can say so. Two SRTTs
    // after the ACK of the first two, the last segment is sent again as a probe; the
    // SACK it brings lets RACK find the other loss: no retransmission timeout.
    let (mut h, c) = established(ms(10), 65535);
    send_segments(&mut h, c, 4);
    h.advance(ms(10));
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: s(2)});
    let waited = h.advance_until_sent(ms(150));
    let probe = expect!(h, seq: s(3), len: MSS_TS as usize);
    assert_eq!(waited, ms(20), "PTO = 2 * SRTT");
    h.expect_none();
    assert_eq!(h.tcb(c).rack.tlp_end.map(|e| e.0), Some(h.tcb(c).snd_max.0));
    // The probe arrives: segment 3 is SACKed, segment 2 (sent before it) is lost.
    h.advance(ms(10));
    sack(&mut h, s(2), &[(s(3), s(4))]);
    let r = expect!(h, seq: s(2), len: MSS_TS as usize);
    assert_eq!(r.at - probe.at, ms(10));
    h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: s(4)});
    assert_eq!(h.stack.tcp_info(c).unwrap().unacked, 0);
    assert_eq!(h.stack.stats().tcp_timeouts, 0);
    assert_eq!(h.stack.stats().tcp_retransmits, 2);
}

#[test]
fn a_lone_segment_waits_for_the_rto_not_a_probe() {
    // RFC 8985 §7.2: with one segment in flight the probe also waits out a delayed
    // ACK (200 ms), which here puts it past the RTO: the RTO acts (and counts).
    let (mut h, c) = established(ms(10), 65535);
    send_segments(&mut h, c, 1);
    let waited = h.advance_until_sent(secs(1));
    expect!(h, seq: s(0));
    assert_eq!(waited, ms(200), "the minimum RTO");
    assert_eq!(h.stack.stats().tcp_timeouts, 1);
}

#[test]
fn abort_with_a_full_window_resets_inside_the_peer_window() {
    // The peer's window is full (it waits for a hole, holding data beyond): a RST at
    // SND.MAX would sit on its right edge, outside its window, and be dropped silently
    // (RFC 9293 §3.10.7.4). One octet inside, the peer challenges it (RFC 5961 §3.2).
    let (mut h, c) = established(ms(10), 2 * MSS_TS as u16);
    h.stack
        .tcp_send(c, &payload((3 * MSS_TS) as usize))
        .unwrap();
    expect!(h, seq: s(0));
    expect!(h, seq: s(1));
    h.expect_none();
    h.stack.tcp_abort(c).unwrap();
    let rst = expect!(h, flags: "R.");
    assert_eq!(rst.seq, s(2) - 1);
}

#[test]
fn newreno_retransmits_a_loss_right_after_its_recovery() {
    // Without SACK, RFC 6582 §3.2 step 2 starts no fast retransmit for duplicate ACKs
    // that do not cover more than `recover`: they might answer needless
    // retransmissions. When the first segment sent beyond `recover` is lost, its
    // duplicate ACKs sit exactly at `recover`, and only the RTO would repair it. But
    // nothing in flight was sent twice, so the duplicates can only report a loss
    // (RFC 6582 §4, with the sent log as the evidence).
    let mut cfg = StackConfig::default();
    cfg.tcp.socket.cc = CcAlgorithm::NewReno;
    let mut h = Harness::with_config(cfg);
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460});
    let seg_at = |i: u32| 1 + 1460 * i;
    h.stack.tcp_set_nodelay(c, true).unwrap();
    h.stack.tcp_send(c, &payload(30 * 1460)).unwrap();
    for i in 0..10 {
        expect!(h, seq: seg_at(i), len: 1460);
    }
    h.advance(ms(10));
    let dupack =
        |h: &mut Harness, ack: u32| h.inject(seg! {flags: ".", seq: PEER_ISN + 1, ack: ack});
    // Segment 0 lost: nine duplicate ACKs, a fast retransmit, and new data beyond
    // `recover` (segment 10 on) as the duplicates shrink the pipe.
    for _ in 0..9 {
        dupack(&mut h, 1);
    }
    let out = h.drain();
    assert_eq!(out[0].seq, seg_at(0), "fast retransmit: {out:?}");
    let new: alloc::vec::Vec<u32> = out[1..].iter().map(|x| x.seq).collect();
    assert!(new.len() >= 4 && new[0] == seg_at(10), "{out:?}");
    // The full ACK ends the recovery at exactly `recover`; segment 10 was lost.
    h.advance(ms(10));
    dupack(&mut h, seg_at(10));
    assert!(!h.tcb(c).in_recovery);
    assert_eq!(h.tcb(c).snd_una, h.tcb(c).recover);
    h.drain();
    for _ in 0..3 {
        dupack(&mut h, seg_at(10));
    }
    let r = h.drain();
    assert_eq!(r.first().map(|x| x.seq), Some(seg_at(10)), "{r:?}");
    assert!(h.tcb(c).in_recovery);
    assert_eq!(h.stack.stats().tcp_timeouts, 0);
}
