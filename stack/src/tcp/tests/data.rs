//! Data in ESTABLISHED: segmentation by the MSS (RFC 9293 §3.7.1), Nagle and
//! TCP_NODELAY (RFC 896, RFC 1122 §4.2.3.4), delayed ACKs (RFC 1122 §4.2.3.2, RFC 5681
//! §4.2), out-of-order reassembly with a memory bound (RFC 9293 §3.10.7.4), and SACK
//! generation (RFC 2018).

use super::harness::*;
use crate::stats::DropReason;
use crate::tcp::{Events, TcpError, TcpHandle};

/// Passive open, no options but MSS `mss`: the test's next sequence number is 1001, the
/// stack's 1; windows unscaled.
fn established_mss(mss: u16) -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: mss});
    (h, c)
}

/// Passive open with SACK and timestamps (MSS 1460, no window scaling).
fn established_sack() -> (Harness, TcpHandle) {
    let mut h = Harness::new();
    let ts = h.peer_tsval();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, sackok: true, ts: (ts, 0)});
    (h, c)
}

// ---- tcp_send's fast path ----

#[test]
fn tcp_send_fast_path_matches_the_general_path() {
    // `tcp_send` takes the common call without `tcp_send_any`: for every kind of call,
    // both give the same answer, leave the same bytes queued and send the same
    // segments afterwards.
    type Setup = fn() -> (Harness, TcpHandle);
    let established: Setup = || established_mss(1460);
    let buffered: Setup = || {
        let (mut h, c) = established_mss(1460);
        h.stack.tcp_send(c, &payload(10)).unwrap();
        h.drain();
        (h, c)
    };
    let acked: Setup = || {
        let (mut h, c) = established_mss(1460);
        h.stack.tcp_send(c, &payload(10)).unwrap();
        h.drain();
        h.inject(seg! {flags: ".", seq: 1001, ack: 11});
        (h, c)
    };
    let unpolled: Setup = || {
        let (mut h, c) = established_mss(1460);
        h.stack.tcp_send(c, &payload(10)).unwrap();
        (h, c)
    };
    let shut: Setup = || {
        let (mut h, c) = established_mss(1460);
        h.stack.tcp_shutdown(c).unwrap();
        (h, c)
    };
    let reset: Setup = || {
        let (mut h, c) = established_mss(1460);
        h.inject(seg! {flags: "R", seq: 1001});
        (h, c)
    };
    let closed: Setup = || {
        let (mut h, c) = established_mss(1460);
        h.stack.tcp_close(c).unwrap();
        (h, c)
    };
    let syn_sent: Setup = || {
        let mut h = Harness::new();
        let c = h.connect();
        (h, c)
    };
    let syn_sent_shut: Setup = || {
        let mut h = Harness::new();
        let c = h.connect();
        h.stack.tcp_send(c, &payload(10)).unwrap();
        h.stack.tcp_shutdown(c).unwrap();
        (h, c)
    };
    let cases: [(&str, Setup, usize); 16] = [
        ("fresh buffer", established, 100),
        ("fresh buffer, nothing", established, 0),
        ("more than the buffer", established, 4 << 20),
        ("buffer in use", buffered, 100),
        ("buffer in use, nothing", buffered, 0),
        ("buffer in use, all acknowledged", acked, 100),
        ("buffer in use, all acknowledged, nothing", acked, 0),
        ("buffer in use, all acknowledged, too much", acked, 4 << 20),
        ("already listed", unpolled, 100),
        ("after shutdown", shut, 100),
        ("after a reset", reset, 100),
        ("after close", closed, 100),
        ("in SYN-SENT", syn_sent, 100),
        ("in SYN-SENT, nothing", syn_sent, 0),
        ("in SYN-SENT, more than the buffer", syn_sent, 4 << 20),
        ("in SYN-SENT after shutdown", syn_sent_shut, 100),
    ];
    for (name, setup, len) in cases {
        let run = |general: bool| {
            let (mut h, c) = setup();
            let data = payload(len);
            let r = if general {
                h.stack.tcp_send_any(c, &data)
            } else {
                h.stack.tcp_send(c, &data)
            };
            let queued = h.stack.tcp_send_queued(c);
            (r, queued, h.drain())
        };
        assert_eq!(run(false), run(true), "{name}");
    }
}

// ---- sending: segment sizes ----

#[test]
fn tcp_recv_answers_each_case() {
    // `tcp_recv` is inlined into its caller with what it answers when it reads
    // nothing out of line: each answer, in turn.
    let (mut h, c) = established_mss(1460);
    let mut buf = [0u8; 8];
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Err(TcpError::WouldBlock));
    assert_eq!(h.stack.tcp_recv(c, &mut []), Ok(0));
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"hello"});
    expect!(h, ack: 1006);
    assert_eq!(h.stack.tcp_recv(c, &mut []), Ok(0));
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Err(TcpError::WouldBlock));
    h.inject(seg! {flags: "F.", seq: 1006, ack: 1});
    expect!(h, flags: ".", ack: 1007);
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Ok(0));
    h.stack.tcp_close(c).unwrap();
    assert_eq!(h.stack.tcp_recv(c, &mut buf), Err(TcpError::InvalidHandle));
}

#[test]
fn segments_are_cut_at_the_peer_mss() {
    // RFC 9293 §3.7.1: never send a segment larger than the peer's MSS. Linux's
    // Nagle (Minshall's variant) lets the tail go out at once too.
    let (mut h, c) = established_mss(536);
    let data = payload(2000);
    assert_eq!(h.stack.tcp_send(c, &data), Ok(2000));
    let mut got = Vec::new();
    for (i, want) in [536, 536, 536, 392].into_iter().enumerate() {
        let s = expect!(h, flags: if i == 3 { "P." } else { "." }, len: want, ack: 1001);
        assert_eq!(s.seq, 1 + got.len() as u32);
        got.extend_from_slice(&s.data);
    }
    assert_eq!(got, data);
    h.expect_none();
}

#[test]
fn peer_mss_is_clamped_to_ours() {
    // RFC 9293 §3.7.1 / RFC 6691: the effective send MSS is the smaller of the peer's
    // and what our own interface can carry.
    let (mut h, c) = established_mss(9000);
    assert_eq!(h.stack.tcp_info(c).unwrap().smss, 1460);
    h.stack.tcp_send(c, &payload(3000)).unwrap();
    expect!(h, len: 1460);
    expect!(h, len: 1460);
    expect!(h, len: 80);
}

#[test]
fn tiny_peer_mss_is_honoured() {
    let (mut h, c) = established_mss(100);
    h.stack.tcp_send(c, &payload(250)).unwrap();
    expect!(h, len: 100);
    expect!(h, len: 100);
    expect!(h, len: 50);
}

#[test]
fn data_is_acknowledged_and_send_buffer_freed() {
    // RFC 9293 §3.10.7.4 fifth: SND.UNA < SEG.ACK =< SND.NXT frees the acknowledged bytes;
    // the application hears WRITABLE.
    let (mut h, c) = established_mss(1460);
    let cap = h.stack.tcp_send_capacity(c).unwrap();
    h.stack.tcp_send(c, &payload(1000)).unwrap();
    expect!(h, flags: "P.", seq: 1, len: 1000);
    assert_eq!(h.stack.tcp_send_queued(c), Ok(1000));
    h.events_of(c);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1001});
    assert_eq!(h.stack.tcp_send_queued(c), Ok(0));
    assert_eq!(h.stack.tcp_send_capacity(c), Ok(cap));
    assert!(h.events_of(c) & Events::WRITABLE != 0);
    h.expect_none();
}

#[test]
fn send_buffer_full_would_block() {
    let (mut h, c) = established_mss(1460);
    let cap = h.stack.tcp_send_capacity(c).unwrap();
    assert_eq!(h.stack.tcp_send(c, &payload(cap + 100)), Ok(cap));
    assert_eq!(h.stack.tcp_send(c, b"more"), Err(TcpError::WouldBlock));
}

// ---- Nagle and TCP_NODELAY ----

#[test]
fn nagle_holds_small_segments_while_a_small_one_is_unacknowledged() {
    // RFC 896 / RFC 1122 §4.2.3.4: a small segment waits while data is unacknowledged,
    // and what accumulated goes in one segment once the ACK arrives.
    let (mut h, c) = established_mss(1460);
    h.stack.tcp_send(c, b"first").unwrap();
    expect!(h, flags: "P.", seq: 1, data: b"first");
    h.stack.tcp_send(c, b"second").unwrap();
    h.stack.tcp_send(c, b"third").unwrap();
    h.expect_none();
    h.advance(ms(100));
    h.expect_none();
    h.inject(seg! {flags: ".", seq: 1001, ack: 6});
    expect!(h, flags: "P.", seq: 6, data: b"secondthird");
    h.expect_none();
}

#[test]
fn nagle_sends_full_segments_at_once() {
    // RFC 1122 §4.2.3.4: "if a maximum-sized segment can be sent, send it".
    let (mut h, c) = established_mss(1460);
    h.stack.tcp_send(c, b"small").unwrap();
    expect!(h, seq: 1, len: 5);
    h.stack.tcp_send(c, &payload(1460 + 10)).unwrap();
    expect!(h, seq: 6, len: 1460);
    h.expect_none(); // the 10-byte tail waits for the ACK
    h.inject(seg! {flags: ".", seq: 1001, ack: 1466});
    expect!(h, seq: 1466, len: 10);
}

#[test]
fn nodelay_sends_every_write_at_once() {
    // TCP_NODELAY turns Nagle off (RFC 1122 §4.2.3.4: "a TCP MUST provide a way to
    // disable it").
    let (mut h, c) = established_mss(1460);
    h.stack.tcp_set_nodelay(c, true).unwrap();
    for (i, w) in [b"aa", b"bb", b"cc"].iter().enumerate() {
        h.stack.tcp_send(c, *w).unwrap();
        expect!(h, flags: "P.", seq: 1 + 2 * i as u32, data: *w);
    }
}

#[test]
fn turning_nodelay_on_flushes_held_data() {
    let (mut h, c) = established_mss(1460);
    h.stack.tcp_send(c, b"one").unwrap();
    expect!(h, data: b"one");
    h.stack.tcp_send(c, b"two").unwrap();
    h.expect_none();
    h.stack.tcp_set_nodelay(c, true).unwrap();
    expect!(h, seq: 4, data: b"two");
}

// ---- delayed ACK ----

#[test]
fn one_full_segment_is_acked_after_the_delayed_ack_timeout() {
    // RFC 1122 §4.2.3.2 / RFC 9293 §3.8.6.3: an ACK may be delayed, but less than 0.5 s
    // (we promise at most 200 ms; the timeout is `delack`).
    let (mut h, c) = established_mss(1460);
    let delack = h.stack.tcp.config.tcb.delack;
    assert!(delack <= ms(200));
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1460)});
    h.expect_none();
    h.advance(delack - ms(1));
    h.expect_none();
    h.advance(ms(1));
    let a = expect!(h, flags: ".", seq: 1, ack: 2461, win: 65535 - 1460 + 1);
    assert!(a.data.is_empty());
    assert_eq!(h.read_all(c), payload(1460));
}

#[test]
fn every_second_full_segment_is_acked_at_once() {
    // RFC 5681 §4.2: "an ACK SHOULD be generated for at least every second full-sized
    // segment".
    let (mut h, _c) = established_mss(1460);
    let mut seq = 1001;
    for _ in 0..3 {
        h.inject(seg! {flags: ".", seq: seq, ack: 1, data: payload(1460)});
        h.expect_none();
        h.inject(seg! {flags: ".", seq: seq + 1460, ack: 1, data: payload(1460)});
        expect!(h, flags: ".", ack: seq + 2920);
        h.expect_none();
        seq += 2920;
    }
}

#[test]
fn small_segment_is_acked_at_once() {
    // A request-sized segment is ACKed at once while the application has not shown
    // it answers (Linux's quick-ACK): a sender's Nagle may be waiting for this ACK.
    let (mut h, _c) = established_mss(1460);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"GET / HTTP/1.1\r\n\r\n"});
    expect!(h, flags: ".", ack: 1019);
}

#[test]
fn an_answering_application_gets_its_acks_piggybacked() {
    // Interactive (ping-pong) mode, as Linux's: once the application has answered a
    // request within the delayed-ACK time, the ACK of the next request waits for the
    // answer and rides on it: one segment each way per exchange, not two.
    let (mut h, c) = established_mss(1460);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"req1"});
    expect!(h, flags: ".", ack: 1005); // not interactive yet: ACKed at once
    assert_eq!(h.read_all(c), b"req1");
    h.stack.tcp_send(c, b"resp1").unwrap();
    expect!(h, flags: "P.", seq: 1, ack: 1005, data: b"resp1");
    h.inject(seg! {flags: "P.", seq: 1005, ack: 6, data: b"req2"});
    h.expect_none(); // the ACK waits for the answer
    assert_eq!(h.read_all(c), b"req2");
    h.advance(ms(1));
    h.stack.tcp_send(c, b"resp2").unwrap();
    expect!(h, flags: "P.", seq: 6, ack: 1009, data: b"resp2");
    h.expect_none();
}

#[test]
fn an_answer_in_the_applications_turn_carries_the_ack() {
    // Before interactive mode, a small segment's ACK still waits one poll (the
    // application's turn): an answer made in that turn carries it.
    let (mut h, c) = established_mss(1460);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"req1"});
    assert_eq!(h.read_all(c), b"req1");
    h.stack.tcp_send(c, b"resp1").unwrap();
    expect!(h, flags: "P.", seq: 1, ack: 1005, data: b"resp1");
    h.expect_none();
}

#[test]
fn interactive_mode_ends_when_the_answer_is_late() {
    // The delayed ACK still goes out within `delack` when no answer comes, and the
    // next small segment is ACKed at once again (Linux leaves ping-pong mode when its
    // delayed-ACK timer fires).
    let (mut h, c) = established_mss(1460);
    let delack = h.stack.tcp.config.tcb.delack;
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"req1"});
    expect!(h, ack: 1005);
    h.read_all(c);
    h.stack.tcp_send(c, b"resp1").unwrap();
    expect!(h, data: b"resp1");
    h.inject(seg! {flags: "P.", seq: 1005, ack: 6, data: b"req2"});
    h.expect_none();
    h.advance(delack - ms(1));
    h.expect_none();
    h.advance(ms(1));
    expect!(h, flags: ".", seq: 6, ack: 1009);
    h.inject(seg! {flags: "P.", seq: 1009, ack: 6, data: b"req3"});
    expect!(h, flags: ".", seq: 6, ack: 1013);
}

#[test]
fn delayed_ack_rides_on_data() {
    // RFC 9293 §3.8.6.3: an ACK owed goes out with data sent meanwhile; no separate
    // ACK follows.
    let (mut h, c) = established_mss(1460);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1460)});
    h.expect_none();
    h.advance(ms(10));
    h.stack.tcp_send(c, b"reply").unwrap();
    expect!(h, flags: "P.", seq: 1, ack: 2461, data: b"reply");
    h.advance(ms(100)); // past the delayed-ACK timeout, before the RTO
    h.expect_none();
}

#[test]
fn out_of_order_segment_is_acked_at_once() {
    // RFC 5681 §4.2: "an immediate ACK ... when an out-of-order segment arrives" (a
    // duplicate ACK), and again when a segment fills the hole.
    let (mut h, c) = established_mss(1460);
    h.inject(seg! {flags: ".", seq: 2461, ack: 1, data: payload(1460)});
    expect!(h, flags: ".", seq: 1, ack: 1001);
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1460)});
    expect!(h, flags: ".", seq: 1, ack: 3921);
    let mut want = payload(1460);
    want.extend_from_slice(&payload(1460));
    assert_eq!(h.read_all(c), want);
}

// ---- receiving: order, duplicates, overlap ----

#[test]
fn duplicate_data_is_acked_and_not_delivered_twice() {
    // RFC 9293 §3.10.7.4 first: a segment entirely left of RCV.NXT is not acceptable:
    // "send an acknowledgment in reply ... and drop".
    let (mut h, c) = established_mss(1460);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"hello"});
    expect!(h, ack: 1006);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"hello"});
    expect!(h, flags: ".", seq: 1, ack: 1006);
    assert_eq!(h.read_all(c), b"hello");
}

#[test]
fn overlapping_segment_delivers_only_new_bytes() {
    // RFC 9293 §3.10.7.4: a segment that starts before RCV.NXT is trimmed to its new part.
    let (mut h, c) = established_mss(1460);
    h.inject(seg! {flags: "P.", seq: 1001, ack: 1, data: b"hello"});
    expect!(h, ack: 1006);
    h.inject(seg! {flags: "P.", seq: 1003, ack: 1, data: b"llo world"});
    expect!(h, ack: 1012);
    assert_eq!(h.read_all(c), b"hello world");
}

#[test]
fn reassembly_puts_out_of_order_data_in_order() {
    // RFC 9293 §3.10.7.4: segments ahead of RCV.NXT may be held and delivered once the
    // gap fills.
    let (mut h, c) = established_mss(1460);
    let data = payload(5000);
    let order = [3, 1, 4, 0, 2];
    for &i in &order {
        let lo = i * 1000;
        h.inject(seg! {flags: ".", seq: 1001 + lo as u32, ack: 1, data: data[lo..lo + 1000]});
    }
    let acks: Vec<u32> = h.drain().iter().map(|s| s.ack).collect();
    assert_eq!(acks.last(), Some(&6001), "{acks:?}");
    assert_eq!(h.read_all(c), data);
}

#[test]
fn reassembly_is_bounded_by_the_window_and_hole_count() {
    // Out-of-order data is held only inside the receive window (it lives in the receive
    // buffer), and at most `reass.limit()` separate ranges are tracked (one per segment
    // the buffer holds, at least MIN_RANGES); what exceeds either bound is dropped and
    // counted, not buffered, so a peer cannot grow our memory.
    let mut cfg = crate::StackConfig::default();
    cfg.tcp.socket.rcv_buf = 8192;
    let mut h = Harness::with_config(cfg);
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460});
    // Beyond the window: not acceptable at all (RFC 9293 §3.10.7.4 first).
    h.inject(seg! {flags: ".", seq: 1001 + 8192, ack: 1, data: payload(100)});
    expect!(h, flags: ".", ack: 1001);
    assert_eq!(h.stack.stats().dropped(DropReason::TcpOutOfWindow), 1);
    // 40 one-byte islands, every other byte: only `limit` of them can be held.
    let max = h.tcb(c).reass.limit();
    assert_eq!(max, crate::tcp::reass::MIN_RANGES, "8 KiB holds 5 segments");
    for i in 0..40u32 {
        h.inject(seg! {flags: ".", seq: 1003 + 2 * i, ack: 1, data: [i as u8]});
    }
    assert_eq!(
        h.stack.stats().dropped(DropReason::TcpReassemblyFull),
        40 - max as u64
    );
    h.drain();
    // Fill every gap: all 2 * max + 1 bytes up to the last island held arrive in order,
    // the refused ones must be sent again.
    for i in 0..=max as u32 {
        h.inject(seg! {flags: ".", seq: 1001 + 2 * i, ack: 1, data: [0xff, 0xff]});
    }
    let got = h.read_all(c);
    assert_eq!(got.len(), 2 * (max + 1));
    for i in 0..max {
        assert_eq!(got[2 * i + 2], i as u8, "island {i}");
    }
    assert_eq!(h.tcb(c).rcv_nxt.0, 1001 + 2 * (max as u32 + 1));
}

#[test]
fn data_beyond_the_window_is_trimmed() {
    // RFC 9293 §3.10.7.4: "segments ... that extend beyond the window should be trimmed
    // to the window": only what fits is kept.
    let mut cfg = crate::StackConfig::default();
    cfg.tcp.socket.rcv_buf = 2000;
    let mut h = Harness::with_config(cfg);
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, win: 65535});
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1460)});
    h.inject(seg! {flags: ".", seq: 2461, ack: 1, data: payload(1460)});
    let a = h.drain().pop().expect("an ACK");
    assert_eq!(a.ack, 3001);
    assert_eq!(a.win, 0);
    assert_eq!(h.read_all(c).len(), 2000);
}

// ---- SACK generation (RFC 2018) ----

#[test]
fn sack_blocks_report_out_of_order_data_newest_first() {
    // RFC 2018 §4: each duplicate ACK carries SACK blocks; the first is the block with
    // the most recently received segment; up to 3 next to timestamps.
    let (mut h, _c) = established_sack();
    h.inject(seg! {flags: ".", seq: 2001, ack: 1, data: payload(100)});
    expect!(h, flags: ".", ack: 1001, sack: [(2001, 2101)]);
    h.inject(seg! {flags: ".", seq: 3001, ack: 1, data: payload(100)});
    expect!(h, ack: 1001, sack: [(3001, 3101), (2001, 2101)]);
    h.inject(seg! {flags: ".", seq: 4001, ack: 1, data: payload(100)});
    expect!(h, ack: 1001, sack: [(4001, 4101), (3001, 3101), (2001, 2101)]);
    h.inject(seg! {flags: ".", seq: 5001, ack: 1, data: payload(100)});
    let s = expect!(h, ack: 1001, sack: [(5001, 5101), (4001, 4101), (3001, 3101)]);
    assert!(s.ts.is_some(), "three blocks fit next to timestamps");
    // A segment that extends an older block moves it to the front.
    h.inject(seg! {flags: ".", seq: 2101, ack: 1, data: payload(100)});
    expect!(h, ack: 1001, sack: [(2001, 2201), (5001, 5101), (4001, 4101)]);
    // Filling the first hole: the cumulative ACK moves, the block it covered is gone.
    h.inject(seg! {flags: ".", seq: 1001, ack: 1, data: payload(1000)});
    expect!(h, ack: 2201, sack: [(5001, 5101), (4001, 4101), (3001, 3101)]);
}

#[test]
fn no_sack_blocks_without_sack_permitted() {
    // RFC 2018 §2: SACK only when the SYN carried SACK-permitted.
    let (mut h, _c) = established_mss(1460);
    h.inject(seg! {flags: ".", seq: 2001, ack: 1, data: payload(100)});
    let s = expect!(h, ack: 1001);
    assert!(s.sack.is_empty());
}

/// Request/response rounds with SACK and timestamps (RACK on), the peer answering
/// after `delay_ms(i)`: the TCB after each segment, as Debug text, with or without
/// header prediction (`predict`). Each request goes through a poll, or with `direct`
/// straight to the connection ([`Harness::input_to_tcb`]), the TCB then taken at once,
/// before an output pass settles it (which re-arms its timers whichever path took the
/// segment): what the input path alone leaves.
fn rr_states(
    predict: bool,
    direct: bool,
    rounds: u32,
    delay_ms: impl Fn(u32) -> u64,
) -> Vec<String> {
    let mut config = crate::StackConfig::default();
    config.tcp.tcb.header_prediction = predict;
    let mut h = Harness::with_config(config);
    let ts = h.peer_tsval();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, sackok: true, ts: (ts, 0)});
    let mut states = Vec::new();
    let (mut seq, mut ack) = (PEER_ISN + 1, 1u32);
    for i in 0..rounds {
        let req = payload(1 + (i as usize * 37) % 200);
        let tsecr = h.last_tsval();
        let ts = h.peer_tsval();
        let seg = seg! {flags: "P.", seq: seq, ack: ack, data: req.clone(), ts: (ts, tsecr)};
        if direct {
            h.input_to_tcb(c, &seg);
        } else {
            h.inject(seg);
        }
        states.push(h.tcb_text(c));
        seq += req.len() as u32;
        assert_eq!(h.read_all(c), req);
        let resp = payload(1 + (i as usize * 53) % 300);
        h.stack.tcp_send(c, &resp).unwrap();
        h.poll();
        h.drain();
        states.push(h.tcb_text(c));
        ack += resp.len() as u32;
        h.advance(ms(delay_ms(i)));
    }
    states
}

#[test]
fn a_predicted_ack_leaves_the_tcb_as_the_full_path_does() {
    // Header prediction's ACK (one segment sent once, acknowledged whole) has its own
    // short path (input.rs `try_sole_ack`): it must leave every field (RTT, congestion
    // control, RACK, timers, buffers) as the full path does, segment after segment,
    // with answers quick and slow (RTT samples moving the estimators both ways).
    let delay = |i: u32| [0, 1, 3, 0, 40, 7, 250, 2][i as usize % 8];
    let fast = rr_states(true, false, 40, delay);
    let full = rr_states(false, false, 40, delay);
    assert_eq!(fast.len(), full.len());
    for (i, (a, b)) in fast.iter().zip(&full).enumerate() {
        assert_eq!(a, b, "TCB differs after segment {i}");
    }
}

#[test]
fn a_predicted_segment_leaves_the_tcb_as_the_full_path_does_before_output() {
    // As `a_predicted_ack_leaves_the_tcb_as_the_full_path_does`, but compared right
    // after the input, before an output pass could mend a difference (RACK's timers,
    // which the sole-ACK path stops itself, are re-armed by the pass). Answers far
    // apart in time make the RTT vary enough for the probe to be armed before the RTO
    // with one segment in flight.
    let delay = |i: u32| [0, 1, 3, 0, 40, 7, 250, 2, 900, 0, 1500, 5][i as usize % 12];
    let fast = rr_states(true, true, 40, delay);
    let full = rr_states(false, true, 40, delay);
    assert_eq!(fast.len(), full.len());
    for (i, (a, b)) in fast.iter().zip(&full).enumerate() {
        assert_eq!(a, b, "TCB differs after step {i}");
    }
}

/// Request/response rounds (SACK and timestamps: RACK on) whose requests header
/// prediction leaves to the full path while they acknowledge the whole answer: some
/// arrive out of order (a hole, filled by the next segment), some carry a flag
/// prediction does not take (URG, ECE), the last one a FIN. Each segment is given
/// straight to the connection ([`Harness::input_to_tcb`]); the TCB after each input and
/// after each output pass, as Debug text, with or without header prediction
/// (`predict`).
fn unpredicted_ack_states(predict: bool, rounds: u32) -> Vec<String> {
    let mut config = crate::StackConfig::default();
    config.tcp.tcb.header_prediction = predict;
    let mut h = Harness::with_config(config);
    let ts = h.peer_tsval();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460, sackok: true, ts: (ts, 0)});
    let mut states = Vec::new();
    let input = |h: &mut Harness, seg: Seg| h.input_to_tcb(c, &seg);
    let (mut seq, mut ack) = (PEER_ISN + 1, 1u32);
    for i in 0..rounds {
        let req = payload(12 + (i as usize * 37) % 200);
        let last = i + 1 == rounds;
        let flags = match (last, i % 4) {
            (true, _) => "FP.",
            (_, 1) => "UP.",
            (_, 2) => "EP.",
            _ => "P.",
        };
        let tsecr = h.last_tsval();
        let ts = h.peer_tsval();
        if i % 4 == 3 {
            // The tail first (acknowledging the answer), then the hole.
            input(
                &mut h,
                seg! {flags: "P.", seq: seq + 10, ack: ack, data: req[10..].to_vec(), ts: (ts, tsecr)},
            );
            states.push(h.tcb_text(c));
            input(
                &mut h,
                seg! {flags: "P.", seq: seq, ack: ack, data: req[..10].to_vec(), ts: (ts, tsecr)},
            );
        } else {
            input(
                &mut h,
                seg! {flags: flags, seq: seq, ack: ack, data: req.clone(), ts: (ts, tsecr)},
            );
        }
        states.push(h.tcb_text(c));
        seq += req.len() as u32;
        assert_eq!(h.read_all(c), req);
        if last {
            break;
        }
        let resp = payload(1 + (i as usize * 53) % 300);
        h.stack.tcp_send(c, &resp).unwrap();
        h.poll();
        h.drain();
        states.push(h.tcb_text(c));
        ack += resp.len() as u32;
        h.advance(ms([0, 1, 3, 40, 7, 250, 2, 900][i as usize % 8]));
    }
    states
}

#[test]
fn an_unpredicted_segment_acknowledging_all_leaves_the_tcb_as_the_full_path_does() {
    // The full path takes `try_sole_ack` for the ACK of a segment header prediction
    // left to it (input.rs `sole_ack_may_apply`): every field as `on_new_ack` and
    // RACK's part would leave it, segment after segment.
    let fast = unpredicted_ack_states(true, 41);
    let full = unpredicted_ack_states(false, 41);
    assert_eq!(fast.len(), full.len());
    for (i, (a, b)) in fast.iter().zip(&full).enumerate() {
        assert_eq!(a, b, "TCB differs after step {i}");
    }
}

// ---- the output fast path ----

/// One run of [`in_order_output_changes_nothing`]'s script: every segment sent (as
/// packetdrill prints it, with its send time) and the whole TCB after each step.
fn output_script(predict: bool) -> Vec<alloc::string::String> {
    let mut config = crate::stack::StackConfig::default();
    config.tcp.tcb.header_prediction = predict;
    let mut h = Harness::with_config(config);
    let ts = h.peer_tsval();
    let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 536, sackok: true, ts: (ts, 0)});
    let mut log = Vec::new();
    let step = |h: &mut Harness, log: &mut Vec<alloc::string::String>| {
        h.advance(ms(3));
        for s in h.drain() {
            log.push(alloc::format!("{s:?} at {:?}", s.at));
        }
        // The switch itself aside.
        let tcb = alloc::format!("{:?}", h.tcb(c));
        log.push(tcb.replace("header_prediction: true", "header_prediction: false"));
    };
    let ack = |h: &mut Harness, seq: u32, ack: u32, win: u16, data: &[u8]| {
        let ts = h.peer_tsval();
        let tsecr = h.last_tsval();
        h.inject(seg! {flags: ".", seq: seq, ack: ack, win: win, ts: (ts, tsecr), data: data});
    };
    // A request after idle, then a second one Nagle holds while the first is out.
    h.stack.tcp_send(c, &payload(100)).unwrap();
    step(&mut h, &mut log);
    h.stack.tcp_send(c, &payload(50)).unwrap();
    step(&mut h, &mut log);
    // The answer acknowledges the first: the held one goes, with data in flight.
    ack(&mut h, 1001, 101, 65535, &payload(20));
    step(&mut h, &mut log);
    h.stack.tcp_send(c, &payload(30)).unwrap();
    step(&mut h, &mut log);
    // All acknowledged; more than a segment (the general path), then exactly one.
    ack(&mut h, 1021, 181, 65535, &[]);
    h.stack.tcp_send(c, &payload(1200)).unwrap();
    step(&mut h, &mut log);
    ack(&mut h, 1021, 1381, 65535, &[]);
    h.stack.tcp_send(c, &payload(524)).unwrap();
    step(&mut h, &mut log);
    // A window smaller than the data, then one that takes it.
    ack(&mut h, 1021, 1905, 40, &[]);
    h.stack.tcp_send(c, &payload(100)).unwrap();
    step(&mut h, &mut log);
    ack(&mut h, 1021, 1945, 65535, &[]);
    step(&mut h, &mut log);
    // A hole in what the peer sends: the data after it carries SACK blocks.
    ack(&mut h, 1031, 2005, 65535, &payload(10));
    h.stack.tcp_send(c, &payload(10)).unwrap();
    step(&mut h, &mut log);
    ack(&mut h, 1021, 2015, 65535, &payload(10));
    h.stack.tcp_send(c, &payload(10)).unwrap();
    step(&mut h, &mut log);
    // No Nagle; then the FIN after data.
    h.stack.tcp_set_nodelay(c, true).unwrap();
    h.stack.tcp_send(c, &payload(5)).unwrap();
    h.poll();
    h.stack.tcp_send(c, &payload(5)).unwrap();
    step(&mut h, &mut log);
    h.stack.tcp_send(c, &payload(7)).unwrap();
    h.stack.tcp_shutdown(c).unwrap();
    step(&mut h, &mut log);
    // Nothing acknowledged for long: retransmissions and probes, then the rest.
    h.advance(secs(3));
    step(&mut h, &mut log);
    log
}

/// The output fast path (`next_in_order`, under the header-prediction switch) sends
/// what the decision ladder would, byte for byte and at the same instants, and leaves
/// the TCB (timers, send log, congestion state, counters) exactly as the ladder does:
/// in request/response, Nagle, window limits, SACK blocks, TSO-sized writes, a FIN.
#[test]
fn in_order_output_changes_nothing() {
    let (fast, general) = (output_script(true), output_script(false));
    assert_eq!(fast.len(), general.len());
    for (i, (a, b)) in fast.iter().zip(&general).enumerate() {
        assert_eq!(a, b, "step {i}");
    }
    assert!(fast.iter().filter(|l| l.contains("P.")).count() >= 8);
}

// ---- Ring positions between messages ----

#[test]
fn emptied_rings_start_again_at_their_storage_start() {
    // A request/response connection's rings are empty between messages; each message
    // must start at the start of its ring's storage (the same few cache lines every
    // time), not where the last one ended. `fits_whole(capacity)` holds only for an
    // empty ring whose head is at 0. With header prediction and without.
    for predict in [true, false] {
        let mut config = crate::StackConfig::default();
        config.tcp.tcb.header_prediction = predict;
        let mut h = Harness::with_config(config);
        let c = h.passive(seg! {flags: "S", seq: PEER_ISN, mss: 1460});
        let (mut seq, mut ack) = (PEER_ISN + 1, 1u32);
        for i in 0..6 {
            let req = payload(40 + i * 13);
            h.inject(seg! {flags: "P.", seq: seq, ack: ack, data: req.clone()});
            seq += req.len() as u32;
            let t = h.tcb(c);
            assert!(
                t.snd_buf.is_empty(),
                "round {i}: the answer was acknowledged"
            );
            // (Its storage is allocated by the first answer.)
            assert!(
                i == 0 || t.snd_buf.fits_whole(t.snd_buf.capacity()),
                "round {i} (prediction {predict}): the send ring restarted"
            );
            assert_eq!(h.read_all(c), req);
            let resp = payload(30 + i * 7);
            // The receive ring, emptied by the read, restarts with the next request;
            // the send ring is written from its start.
            h.stack.tcp_send(c, &resp).unwrap();
            h.poll();
            let out = h.drain();
            assert_eq!(out.last().map(|s| s.data.clone()), Some(resp.clone()));
            ack += resp.len() as u32;
            let next = payload(5);
            h.inject(seg! {flags: "P.", seq: seq, ack: ack, data: next.clone()});
            seq += next.len() as u32;
            let t = h.tcb(c);
            assert_eq!(t.rcv_buf.len(), next.len());
            assert!(
                t.rcv_buf.fits_whole(t.rcv_buf.capacity() - next.len()),
                "round {i} (prediction {predict}): the receive ring restarted"
            );
            assert_eq!(h.read_all(c), next);
            h.poll();
            h.drain();
        }
    }
}

#[test]
fn a_receive_ring_drained_with_data_out_of_order_keeps_its_place() {
    // The receive ring must not restart while bytes lie past its readable ones: the
    // application drains what is readable, the hole is then filled, and every byte
    // reads back in order.
    let (mut h, c) = established_mss(1460);
    let data = payload(300);
    h.inject(seg! {flags: "P.", seq: PEER_ISN + 1, ack: 1, data: data[..100].to_vec()});
    h.inject(seg! {flags: "P.", seq: PEER_ISN + 201, ack: 1, data: data[200..].to_vec()});
    assert_eq!(h.read_all(c), &data[..100]);
    assert!(h.tcb(c).rcv_buf.is_empty());
    h.inject(seg! {flags: "P.", seq: PEER_ISN + 101, ack: 1, data: data[100..200].to_vec()});
    assert_eq!(h.read_all(c), &data[100..]);
}
