//! Blind-attack defences: RFC 5961 challenge ACKs (RST §3, SYN §4, ACK range §5),
//! PAWS and the timestamp rules (RFC 7323 §4-5), and ISNs (RFC 6528).

use super::harness::*;
use crate::stats::DropReason;
use crate::tcp::{State, TcpHandle};

/// Passive open without options: peer's next sequence 1001, ours 1, window 65535.
fn established() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive_plain();
    (h, c)
}

// ---- RFC 5961 §3: RST ----

#[test]
fn in_window_rst_gets_a_challenge_ack() {
    // RFC 5961 §3.2: a RST in the window but not exactly at RCV.NXT: send a challenge
    // ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and drop it. Only the exact RST resets.
    let (mut h, c) = established();
    h.inject(seg! {flags: "R", seq: 1002});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    h.inject(seg! {flags: "R.", seq: 1001 + 30_000, ack: 1});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    assert_eq!(h.stack.stats().dropped(DropReason::TcpChallenged), 2);
    h.inject(seg! {flags: "R", seq: 1001});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
}

#[test]
fn challenge_acks_are_rate_limited_per_connection() {
    // RFC 5961 §7: a flood of in-window RSTs gets at most CHALLENGE_ACK_LIMIT
    // challenge ACKs per interval; the rest are dropped without an answer, and the
    // budget comes back with the next interval.
    use crate::tcp::input::{CHALLENGE_ACK_INTERVAL, CHALLENGE_ACK_LIMIT};
    let (mut h, c) = established();
    let limit = u64::from(CHALLENGE_ACK_LIMIT);
    for i in 0..limit + 5 {
        h.inject(seg! {flags: "R", seq: 1002 + i as u32});
        if i < limit {
            expect!(h, flags: ".", seq: 1, ack: 1001);
        } else {
            h.expect_none();
        }
    }
    let stats = h.stack.stats();
    assert_eq!(stats.dropped(DropReason::TcpChallenged), limit);
    assert_eq!(stats.dropped(DropReason::TcpChallengeLimited), 5);
    h.advance(CHALLENGE_ACK_INTERVAL);
    h.inject(seg! {flags: "S", seq: 5_000_000, mss: 1460});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
}

#[test]
fn out_of_window_rst_is_dropped_silently() {
    // RFC 5961 §3.2 / RFC 9293 §3.10.7.4: a RST outside the window is dropped, with no
    // reply (a reply would let an attacker probe the window).
    let (mut h, c) = established();
    h.inject(seg! {flags: "R", seq: 1000});
    h.inject(seg! {flags: "R", seq: 1001 + 70_000});
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
}

// ---- RFC 5961 §4: SYN ----

#[test]
fn syn_in_a_synchronized_state_gets_a_challenge_ack() {
    // RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence number, TCP
    // MUST send an ACK (also referred to as challenge ACK) to the remote peer", and
    // must not reset the connection (RFC 9293 §3.10.7.4 fourth).
    let (mut h, c) = established();
    h.inject(seg! {flags: "S", seq: 1001, mss: 1460});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    h.inject(seg! {flags: "S", seq: 5_000_000, mss: 1460});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    h.inject(seg! {flags: "S.", seq: 1500, ack: 1, mss: 1460});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    h.expect_none();
    assert_eq!(h.stack.tcp_state(c), Ok(State::Established));
    // The connection still works.
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"ok"});
    expect!(h, ack: 1003);
}

#[test]
fn syn_in_close_wait_and_fin_wait_gets_a_challenge_ack() {
    // RFC 5961 §4.2 applies to every synchronized state.
    let (mut h, c) = established();
    h.stack.tcp_shutdown(c).unwrap();
    expect!(h, flags: "F.", seq: 1);
    h.inject(seg! {flags: ".", seq: 1001, ack: 2});
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait2));
    h.inject(seg! {flags: "S", seq: 1001});
    expect!(h, flags: ".", seq: 2, ack: 1001);
    assert_eq!(h.stack.tcp_state(c), Ok(State::FinWait2));
}

// ---- RFC 5961 §5: ACK range ----

#[test]
fn ack_older_than_the_max_window_gets_a_challenge_ack() {
    // RFC 5961 §5.2: the ACK is acceptable only in [SND.UNA - MAX.SND.WND, SND.NXT];
    // below it, send a challenge ACK and drop the segment (its data included).
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, win: 1000});
    for i in 0..3u32 {
        h.stack.tcp_send(c, &payload(1000)).unwrap();
        expect!(h, seq: 1 + 1000 * i, len: 1000);
        h.inject(seg! {flags: ".", seq: 1001, ack: 1001 + 1000 * i, win: 1000});
    }
    // SND.UNA = 3001, MAX.SND.WND = 1000: ACK 2001 is still fine (a duplicate) ...
    h.inject(seg! {flags: "P.", seq: 1001, ack: 2001, win: 1000, data: b"a"});
    expect!(h, flags: ".", ack: 1002);
    // ... ACK 2000 is too old: challenge, and the data is not taken.
    h.inject(seg! {flags: "P.", seq: 1002, ack: 2000, win: 1000, data: b"b"});
    expect!(h, flags: ".", seq: 3001, ack: 1002);
    assert_eq!(h.read_all(c), b"a");
    assert_eq!(h.stack.stats().dropped(DropReason::TcpBadAck), 1);
}

// ---- RFC 7323: timestamps and PAWS ----

/// The peer's TSval in the handshake's last ACK (the harness's clock at START):
/// TS.Recent once established.
const T: u32 = 100_000;

/// Passive open with timestamps; TS.Recent = T.
fn with_ts() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, ts: (T - 10, 0)});
    assert_eq!(h.tcb(c).ts_recent, T);
    h.auto_ts = false; // every timestamp below is explicit
    (h, c)
}

#[test]
fn paws_drops_segments_with_an_older_tsval() {
    // RFC 7323 §5.3 R1: SEG.TSval < TS.Recent: not acceptable, send an ACK, drop.
    let (mut h, c) = with_ts();
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, ts: (T + 1000, 0), data: b"new"});
    expect!(h, ack: 1004, tsecr: T + 1000);
    h.inject(seg! {flags: "P.", seq: 1004, ack: 1, ts: (T + 999, 0), data: b"old"});
    expect!(h, flags: ".", ack: 1004, tsecr: T + 1000);
    assert_eq!(h.read_all(c), b"new");
    assert_eq!(h.stack.stats().dropped(DropReason::TcpPaws), 1);
    // An equal TSval is fine (RFC 7323 §5.3: "less than").
    h.inject(seg! {flags: "P.", seq: 1004, ack: 1, ts: (T + 1000, 0), data: b"same"});
    expect!(h, ack: 1008);
    // TSval comparison is modular (RFC 7323 §5.2): 2^31 - 1 ahead is newer.
    h.inject(seg! {flags: "P.", seq: 1008, ack: 1, ts: (T + 1000 + 0x7fff_ffff, 0), data: b"far"});
    expect!(h, ack: 1011);
}

#[test]
fn paws_does_not_apply_to_rst() {
    // Linux (tcp_validate_incoming): "Reset is accepted even if it did not pass PAWS";
    // RFC 5961 guards it instead (exact sequence number).
    let (mut h, c) = with_ts();
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, ts: (T + 4000, 0)});
    h.inject(seg! {flags: "R", seq: 1001, ts: (10, 0)});
    assert_eq!(h.stack.tcp_state(c), Ok(State::Closed));
}

#[test]
fn paws_ignores_a_ts_recent_idle_for_24_days() {
    // RFC 7323 §5.5: TS.Recent older than 24 days is invalid; the next segment is
    // accepted whatever its TSval.
    let (mut h, c) = with_ts();
    h.advance(secs(25 * 24 * 3600));
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, ts: (5, 0), data: b"hi"});
    expect!(h, ack: 1003, tsecr: 5);
    assert_eq!(h.read_all(c), b"hi");
}

#[test]
fn ts_recent_follows_in_order_segments_only() {
    // RFC 7323 §4.3 (2)/(3): TS.Recent is taken from the segment that advances (or
    // sits at) the left window edge; an out-of-order segment's TSval is not echoed.
    let (mut h, _c) = with_ts();
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, ts: (T + 10, 0), data: b"a"});
    expect!(h, ack: 1002, tsecr: T + 10);
    h.inject(seg! {flags: "P.", seq: 1003, ack: 1, ts: (T + 30, 0), data: b"c"});
    expect!(h, ack: 1002, tsecr: T + 10);
    h.inject(seg! {flags: "P.", seq: 1002, ack: 1, ts: (T + 20, 0), data: b"b"});
    expect!(h, ack: 1004, tsecr: T + 20);
}

#[test]
fn tsval_is_a_millisecond_clock() {
    // RFC 7323 §5.4: the TSval clock ticks between 1 ms and 1 s; ours is 1 ms.
    let (mut h, _c) = with_ts();
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, ts: (T + 10, 0), data: b"a"});
    let a = expect!(h, ack: 1002);
    h.advance(ms(250));
    h.inject(seg! {flags: "P.", seq: 1002, ack: 1, ts: (T + 20, 0), data: b"b"});
    let b = expect!(h, ack: 1003);
    assert_eq!(b.tsval().wrapping_sub(a.tsval()), 250);
}

#[test]
fn every_segment_carries_timestamps_once_negotiated() {
    // RFC 7323 §3.2: once negotiated, TSopt is sent in every non-RST segment.
    let (mut h, c) = with_ts();
    h.stack.tcp_send(c, b"data").unwrap();
    let d = expect!(h, seq: 1, data: b"data");
    assert_eq!(d.tsecr(), T);
    h.stack.tcp_abort(c).unwrap();
    let r = expect!(h, flags: "R.");
    assert!(r.ts.is_none(), "no TSopt on a RST: {r:?}");
}

// ---- RFC 6528: initial sequence numbers ----

#[test]
fn isn_is_a_keyed_hash_plus_a_4us_clock() {
    // RFC 6528 §3: ISN = M + F(4-tuple, secret): successive incarnations of one 4-tuple
    // move with the 4 µs clock; different 4-tuples start at unrelated points.
    let mut h = Harness::new();
    let c = h.connect();
    expect!(h, flags: "S");
    let isn1 = h.stack_iss().unwrap();
    h.stack.tcp_abort(c).unwrap();
    h.advance(secs(1));
    h.connect();
    expect!(h, flags: "S");
    let isn2 = h.stack_iss().unwrap();
    assert_eq!(isn2.wrapping_sub(isn1), 250_000, "1 s of a 4 µs clock");
    // Another remote port, same instant: a different, far-away starting point.
    let other = std::net::SocketAddrV4::new(PEER_IP, PEER_PORT + 1);
    let opts = h.stack.tcp.config.socket;
    h.stack
        .tcp_connect_with(other, Some(Harness::local()), opts, |_| true)
        .unwrap();
    let s = h.recv();
    assert!(s.has("S"));
    let isn3 = h.iss_of(STACK_PORT, PEER_PORT + 1).unwrap();
    let d = isn3.wrapping_sub(isn2);
    assert!(d > 1 << 16 && d < u32::MAX - (1 << 16), "{isn2} vs {isn3}");
}
