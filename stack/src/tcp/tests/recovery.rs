//! Loss recovery: the retransmission timer (RFC 6298: RTO from SRTT/RTTVAR, Karn's
//! algorithm, backoff, bounds), fast retransmit and NewReno partial ACKs (RFC 5681
//! §3.2, RFC 6582), SACK-based recovery (RFC 6675), and D-SACK (RFC 2883) received
//! without harm.

use super::harness::*;
use crate::tcp::cc::CcAlgorithm;
use crate::tcp::{State, TcpError, TcpHandle};
use crate::time::Duration;
use crate::StackConfig;

fn newreno() -> StackConfig {
    let mut cfg = StackConfig::default();
    cfg.tcp.socket.cc = CcAlgorithm::NewReno;
    cfg
}

/// A passive open whose handshake took `rtt` (the SYN-ACK's ACK came `rtt` after it),
/// with `syn`'s options; NewReno.
fn established_rtt(rtt: Duration, syn: Seg) -> (Harness, TcpHandle) {
    let mut h = Harness::with_config(newreno());
    let l = h.listen(8);
    let isn = syn.seq;
    let ts = syn.ts.is_some();
    h.inject(syn);
    let synack = expect!(h, flags: "S.", seq: 0, ack: isn + 1);
    h.advance(rtt);
    let mut ack = seg! {flags: ".", seq: isn + 1, ack: 1};
    if ts {
        ack.ts = Some((h.peer_tsval(), synack.tsval()));
    }
    h.inject(ack);
    h.auto_ts = ts;
    let (c, _) = h.stack.tcp_accept(l).unwrap();
    (h, c)
}

/// No options but MSS 1460 (so no timestamps: RTT from timed segments, Karn applies).
fn plain(rtt: Duration) -> (Harness, TcpHandle) {
    established_rtt(rtt, seg! {flags: "S", seq: PEER_ISN, mss: 1460})
}

/// SACK and timestamps (MSS 1460: segments of 1448).
fn sack(rtt: Duration) -> (Harness, TcpHandle) {
    established_rtt(
        rtt,
        seg! {flags: "S", seq: PEER_ISN, mss: 1460, sackok: true, ts: (START.total_millis() as u32, 0)},
    )
}

// ---- RFC 6298: the retransmission timer ----

#[test]
fn rto_is_computed_from_the_first_sample() {
    // RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR).
    let (mut h, c) = plain(ms(100));
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.srtt, Some(ms(100)));
    assert_eq!(info.rto, ms(300));
    h.stack.tcp_send(c, b"data").unwrap();
    let s = expect!(h, seq: 1, len: 4);
    h.advance_until_sent(secs(5));
    let r = expect!(h, seq: 1, len: 4, data: b"data");
    assert_eq!(r.at - s.at, ms(300));
}

#[test]
fn rto_has_a_lower_bound() {
    // RFC 6298 §2.4 rounds the RTO up to a minimum (1 s in the RFC; 200 ms as Linux
    // TCP_RTO_MIN, see rtt.rs), however small the RTT.
    let (mut h, c) = plain(ms(1));
    assert_eq!(h.stack.tcp_info(c).unwrap().rto, ms(200));
    h.stack.tcp_send(c, b"x").unwrap();
    let s = expect!(h, seq: 1);
    h.advance_until_sent(secs(5));
    let r = expect!(h, seq: 1);
    assert_eq!(r.at - s.at, ms(200));
}

#[test]
fn rto_backs_off_to_the_maximum_then_the_connection_times_out() {
    // RFC 6298 §5.5: double the RTO at each expiry; §2.5: a maximum (120 s, Linux's
    // TCP_RTO_MAX); RFC 9293 §3.8.3 R2 / RFC 1122 §4.2.3.5: give up after `retries`,
    // reporting a timeout.
    let (mut h, c) = plain(ms(100));
    let cfg = h.stack.tcp.config.tcb;
    h.stack.tcp_send(c, b"lost forever").unwrap();
    let mut last = expect!(h, seq: 1).at;
    let mut rto = ms(300);
    for i in 0..cfg.retries {
        let waited = h.advance_until_sent(secs(600));
        let r = expect!(h, seq: 1, data: b"lost forever");
        assert_eq!(waited, rto, "retransmission {}", i + 1);
        assert_eq!(r.at - last, rto);
        last = r.at;
        rto = (rto * 2).min(cfg.rto.max);
    }
    h.advance(rto - ms(1));
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    h.advance(ms(1));
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
    assert_eq!(h.stack.tcp_error(c), Ok(Some(TcpError::TimedOut)));
    // Every expiry counts, the last one (that gave up) included.
    assert_eq!(h.stack.stats().tcp_timeouts, u64::from(cfg.retries) + 1);
}

#[test]
fn rto_restarts_when_new_data_is_acknowledged() {
    // RFC 6298 §5.3: "When an ACK is received that acknowledges new data, restart the
    // retransmission timer so that it will expire after RTO seconds".
    let (mut h, c) = plain(ms(100));
    h.stack.tcp_set_nodelay(c, true).unwrap();
    h.stack.tcp_send(c, b"one").unwrap();
    expect!(h, seq: 1, data: b"one");
    h.stack.tcp_send(c, b"two").unwrap();
    expect!(h, seq: 4, data: b"two");
    h.advance(ms(250));
    h.inject(seg! {flags: ".", seq: 1001, ack: 4});
    // Without the restart "two" would go at 300 ms; RTO is now from 250 ms on.
    let rto = h.stack.tcp_info(c).unwrap().rto;
    let waited = h.advance_until_sent(secs(5));
    let r = expect!(h, seq: 4, data: b"two");
    assert_eq!(waited, rto);
    assert!(r.at - START > ms(100 + 250 + 200));
}

#[test]
fn timer_stops_when_everything_is_acknowledged() {
    // RFC 6298 §5.2: "When all outstanding data has been acknowledged, turn off the
    // retransmission timer."
    let (mut h, c) = plain(ms(100));
    h.stack.tcp_send(c, b"abc").unwrap();
    expect!(h, seq: 1);
    h.inject(seg! {flags: ".", seq: 1001, ack: 4});
    h.advance(secs(30));
    h.expect_none();
    assert_eq!(h.tcb(c).timers.rto_at(), None);
}

#[test]
fn karn_no_sample_from_a_retransmitted_segment() {
    // RFC 6298 §3 (Karn): an ACK for a retransmitted segment gives no RTT sample, and
    // the backed-off RTO stays until a sample from new data (§5.7 last paragraph,
    // Linux: backoff cleared only on a valid measurement).
    let (mut h, c) = plain(ms(100));
    h.stack.tcp_set_nodelay(c, true).unwrap();
    h.stack.tcp_send(c, b"a").unwrap();
    expect!(h, seq: 1);
    h.advance_until_sent(secs(5));
    expect!(h, seq: 1); // at 300 ms; the RTO is now 600 ms
    h.advance(ms(500)); // before the next expiry (600 ms on)
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(
        info.srtt,
        Some(ms(100)),
        "no sample from the retransmitted segment"
    );
    assert_eq!(info.rto, ms(600), "backoff kept");
    // New data measured at 50 ms: a sample, the backoff is gone.
    h.stack.tcp_send(c, b"b").unwrap();
    expect!(h, seq: 2);
    h.advance(ms(50));
    h.inject(seg! {flags: ".", seq: 1001, ack: 3});
    let info = h.stack.tcp_info(c).unwrap();
    // RFC 6298 §2.3: RTTVAR = 3/4*50 + 1/4*|100-50| = 50, SRTT = 7/8*100 + 1/8*50.
    assert_eq!(info.srtt, Some(Duration::from_micros(93_750)));
    assert_eq!(info.rto, Duration::from_micros(93_750 + 4 * 50_000));
}

#[test]
fn timestamps_measure_retransmitted_segments() {
    // RFC 7323 §4.1 (RTTM): the echoed TSval tells which copy was answered, so a
    // retransmission may be timed; an ACK echoing the first copy's TSval is not used
    // after a timeout.
    let (mut h, c) = sack(ms(100));
    h.stack.tcp_send(c, b"a").unwrap();
    expect!(h, seq: 1);
    h.advance_until_sent(secs(5));
    let r = expect!(h, seq: 1);
    h.advance(ms(40));
    h.inject(seg! {flags: ".", seq: 1001, ack: 2, ts: (h.peer_tsval(), r.tsval())});
    let info = h.stack.tcp_info(c).unwrap();
    // SRTT = 7/8*100 + 1/8*40 = 92.5 ms.
    assert_eq!(info.srtt, Some(Duration::from_micros(92_500)));
}

// ---- RTO recovery: go-back-N with slow start (RFC 5681 §3.1, RFC 6298 §5.4) ----

#[test]
fn timeout_retransmits_one_segment_then_slow_starts() {
    // RFC 6298 §5.4: retransmit the earliest unacknowledged segment; RFC 5681 §3.1:
    // cwnd = 1 MSS after a timeout, ssthresh = max(FlightSize/2, 2*SMSS).
    let (mut h, c) = plain(ms(100));
    h.stack.tcp_send(c, &payload(4 * 1460)).unwrap();
    for i in 0..4u32 {
        expect!(h, seq: 1 + 1460 * i, len: 1460);
    }
    h.advance_until_sent(secs(5));
    expect!(h, seq: 1, len: 1460);
    h.expect_none();
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.cwnd, 1460);
    assert_eq!(info.ssthresh, 2 * 1460);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1461});
    // Slow start: cwnd 2 MSS, the next two segments go again (go-back-N).
    expect!(h, seq: 1461, len: 1460);
    expect!(h, seq: 2921, len: 1460);
    h.expect_none();
}

// ---- fast retransmit and NewReno (RFC 5681 §3.2, RFC 6582) ----

/// Ten full segments in flight (the initial window), data 1..14601.
fn ten_in_flight(h: &mut Harness, c: TcpHandle) {
    h.stack.tcp_send(c, &payload(10 * 1460)).unwrap();
    for i in 0..10u32 {
        expect!(h, seq: 1 + 1460 * i, len: 1460);
    }
    h.expect_none();
}

#[test]
fn third_duplicate_ack_triggers_fast_retransmit() {
    // RFC 5681 §3.2 steps 1-3: on the third duplicate ACK, ssthresh = max(FlightSize/2,
    // 2*SMSS) and the lost segment is retransmitted at once.
    let (mut h, c) = plain(ms(100));
    ten_in_flight(&mut h, c);
    for _ in 0..2 {
        h.inject(seg! {flags: ".", seq: 1001, ack: 1});
        h.expect_none();
    }
    h.inject(seg! {flags: ".", seq: 1001, ack: 1});
    let r = expect!(h, seq: 1, len: 1460);
    assert_eq!(r.at, h.now);
    h.expect_none();
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.ssthresh, 5 * 1460);
    assert_eq!(h.stack.stats().tcp_retransmits, 1);
}

#[test]
fn acks_that_are_not_duplicates_do_not_count() {
    // RFC 5681 §2 DUPLICATE ACKNOWLEDGMENT: no data, no window change, SND.UNA
    // unchanged, data outstanding. Others do not count toward fast retransmit.
    let (mut h, c) = plain(ms(100));
    ten_in_flight(&mut h, c);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, win: 60000}); // window update
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"x"}); // carries data
    expect!(h, flags: ".", ack: 1002);
    h.inject(seg! {flags: ".", seq: 1002, ack: 1, win: 50000}); // window update
    h.expect_none();
    assert_eq!(h.tcb(c).dupacks, 0);
    h.inject(seg! {flags: ".", seq: 1002, ack: 1, win: 50000});
    h.inject(seg! {flags: ".", seq: 1002, ack: 1, win: 50000});
    h.expect_none();
    h.inject(seg! {flags: ".", seq: 1002, ack: 1, win: 50000});
    expect!(h, seq: 1, len: 1460);
}

#[test]
fn newreno_partial_ack_retransmits_the_next_hole() {
    // RFC 6582 §3.2 step 5: a partial ACK (below `recover`) retransmits the first
    // unacknowledged segment at once and stays in recovery; step 3: the full ACK ends
    // it with cwnd = ssthresh ("deflate").
    let (mut h, c) = plain(ms(100));
    ten_in_flight(&mut h, c);
    // Segments 1 and 3 lost.
    for _ in 0..3 {
        h.inject(seg! {flags: ".", seq: 1001, ack: 1});
    }
    expect!(h, seq: 1, len: 1460);
    h.expect_none();
    assert!(h.tcb(c).in_recovery);
    h.inject(seg! {flags: ".", seq: 1001, ack: 2921}); // partial: up to the 2nd hole
    expect!(h, seq: 2921, len: 1460);
    h.expect_none();
    assert!(h.tcb(c).in_recovery);
    h.inject(seg! {flags: ".", seq: 1001, ack: 14601}); // full
    assert!(!h.tcb(c).in_recovery);
    let info = h.stack.tcp_info(c).unwrap();
    assert_eq!(info.cwnd, info.ssthresh);
    assert_eq!(h.stack.stats().tcp_retransmits, 2);
}

#[test]
fn no_fast_retransmit_for_data_sent_before_a_timeout() {
    // RFC 6582 §4.1 (via §3.2 step 2): after a timeout, recover = the highest sequence
    // sent; duplicate ACKs for data below it must not start another fast retransmit.
    let (mut h, c) = plain(ms(100));
    ten_in_flight(&mut h, c);
    h.advance_until_sent(secs(5));
    expect!(h, seq: 1, len: 1460); // the timeout retransmission
    let before = h.stack.stats().tcp_retransmits;
    for _ in 0..4 {
        h.inject(seg! {flags: ".", seq: 1001, ack: 1});
    }
    h.expect_none();
    assert_eq!(h.stack.stats().tcp_retransmits, before);
    assert!(!h.tcb(c).in_recovery);
}

// ---- SACK-based recovery (RFC 6675) ----

const MSS_TS: u32 = 1448;

/// Sequence number of segment `i` (0-based) of 1448 bytes.
fn s(i: u32) -> u32 {
    1 + MSS_TS * i
}

#[test]
fn sack_recovery_retransmits_only_the_holes() {
    // RFC 6675 §5: loss is declared when DupThresh segments are SACKed above a hole
    // (IsLost), NextSeg picks the holes in order, never a SACKed segment; the full ACK
    // ends recovery.
    let (mut h, c) = sack(ms(100));
    h.stack.tcp_send(c, &payload(10 * MSS_TS as usize)).unwrap();
    for i in 0..10 {
        expect!(h, seq: s(i), len: MSS_TS as usize);
    }
    // The ACKs come back one RTT later (the RTT the handshake measured): RACK (RFC
    // 8985) times losses against it.
    h.advance(ms(100));
    // Segments 0 and 5 lost. SACKs for 1, 2, 3: the third declares 0 lost (with RACK:
    // DupThresh segments SACKed and no reordering seen make the reordering window 0).
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(1), s(2))]});
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(1), s(3))]});
    h.expect_none();
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(1), s(4))]});
    expect!(h, seq: s(0), len: MSS_TS as usize);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(1), s(5))]});
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(6), s(7)), (s(1), s(5))]});
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(6), s(8)), (s(1), s(5))]});
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, sack: [(s(6), s(9)), (s(1), s(5))]});
    // Three segments SACKed above segment 5: it is lost and goes next.
    let mut resent: Vec<u32> = h.drain().iter().map(|x| x.seq).collect();
    h.inject(seg! {flags: ".", seq: 1001, ack: s(5), sack: [(s(6), s(10))]});
    resent.extend(h.drain().iter().map(|x| x.seq));
    assert_eq!(resent, vec![s(5)], "only the second hole, once");
    h.inject(seg! {flags: ".", seq: 1001, ack: s(10)});
    assert!(!h.tcb(c).in_recovery);
    h.expect_none();
    assert_eq!(h.stack.stats().tcp_retransmits, 2);
}

#[test]
fn dsack_is_received_without_harm() {
    // RFC 2883 §4: a D-SACK block (below the cumulative ACK, or inside the second
    // block) reports a duplicate. It must not be taken for new SACK information: no
    // duplicate-ACK count, no retransmission, no window reduction.
    let (mut h, c) = sack(ms(100));
    h.stack.tcp_send(c, &payload(4 * MSS_TS as usize)).unwrap();
    for i in 0..4 {
        expect!(h, seq: s(i));
    }
    // The ACKs come back one RTT later (the RTT the handshake measured; RACK's
    // reordering window is a fraction of it).
    h.advance(ms(100));
    h.inject(seg! {flags: ".", seq: 1001, ack: s(2)});
    let cwnd = h.stack.tcp_info(c).unwrap().cwnd;
    for _ in 0..4 {
        // Below the ACK: segment 0 arrived twice.
        h.inject(seg! {flags: ".", seq: 1001, ack: s(2), sack: [(s(0), s(1))]});
    }
    h.expect_none();
    // Inside the second block.
    h.inject(seg! {flags: ".", seq: 1001, ack: s(2), sack: [(s(3), s(4))]});
    for _ in 0..4 {
        h.inject(seg! {flags: ".", seq: 1001, ack: s(2), sack: [(s(3), s(4)), (s(3), s(4))]});
    }
    h.expect_none();
    assert!(!h.tcb(c).in_recovery);
    assert_eq!(h.stack.tcp_info(c).unwrap().cwnd, cwnd);
    assert_eq!(h.stack.stats().tcp_retransmits, 0);
    h.inject(seg! {flags: ".", seq: 1001, ack: s(4)});
    assert_eq!(h.stack.tcp_send_queued(c), Ok(0));
}

#[test]
fn sack_blocks_outside_the_window_are_ignored() {
    // RFC 2018 §8 / RFC 6675: blocks beyond SND.MAX or malformed (left >= right) carry
    // no information; they must neither crash nor count.
    let (mut h, c) = sack(ms(100));
    h.stack.tcp_send(c, &payload(2 * MSS_TS as usize)).unwrap();
    expect!(h, seq: s(0));
    expect!(h, seq: s(1));
    for _ in 0..4 {
        h.inject(seg! {flags: ".", seq: 1001, ack: 1,
        sack: [(s(5), s(9)), (s(1), s(0)), (s(1), s(1))]});
    }
    h.expect_none();
    assert!(h.tcb(c).scoreboard.is_empty());
    assert!(!h.tcb(c).in_recovery);
}
