//! The TCP data path in nanoseconds per full-size segment (MSS 1448, 1514-byte frames),
//! one connection between two stacks over the in-memory link, no offloads (checksums in
//! software), the clock standing still (no timer fires).
//!
//! - `receive`: B holds an established connection; 1,024 in-order data segments, made by
//!   A beforehand, wait in B's link end, and B has taken the first burst of 64 (its
//!   receive ring is allocated on first use). Timed: the other 960, B's polls (64 frames
//!   per burst: Ethernet
//!   and IPv4 in, TCP checksum, demux, `Tcb::input`, copy into the receive ring, an ACK
//!   every second segment built and handed to the link) and the application's
//!   `tcp_recv` copying the data out. Each iteration starts from a fresh pair (the
//!   setup is not timed), so the same frames are in sequence every time.
//! - `send`: A holds an established connection whose window has grown past 32 segments.
//!   Timed: `tcp_send` of 32 segments' worth, A's poll that turns them into frames
//!   (segmentation, headers, checksums, copy from the send ring), taking the frames off
//!   the link (the peer's NIC) and feeding A one ACK per two segments (a delayed-ACK
//!   receiver), made by patching the ACK number of a real ACK of B into place, which A's
//!   next poll processes. B's stack does no work.
//!
//! `Throughput::Elements` makes criterion print segments per second.
//!
//! `cargo bench -p rumpnet-bench --bench tcp_path -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rumpnet_bench::tcp_pair::{TcpPair, A_ADDR, B_ADDR};
use rumpnet_stack::device::{Device, Frame, HeapFrame};
use rumpnet_stack::link::{LinkConfig, MAX_BURST};
use rumpnet_stack::tcp::{TcpError, TcpSocketOptions};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::seq::SeqNumber;
use rumpnet_stack::wire::{ethernet, ipv4, tcp};
use rumpnet_stack::StackConfig;

/// Segments per `receive` iteration.
const RX_SEGMENTS: usize = 1024;

/// Segments per `send` iteration (one application write).
const TX_SEGMENTS: usize = 32;

/// Socket buffers: far more than one iteration moves, so the window never limits.
const BUF: usize = 4 << 20;

/// A pair over an unimpaired link with room for every frame of an iteration.
fn pair() -> TcpPair {
    let link = LinkConfig {
        capacity: 4 * RX_SEGMENTS,
        pool_frames: 4 * RX_SEGMENTS,
        ..LinkConfig::default()
    };
    let opts = TcpSocketOptions {
        rcv_buf: BUF,
        snd_buf: BUF,
        ..TcpSocketOptions::default()
    };
    TcpPair::connect(
        link,
        StackConfig::default(),
        StackConfig::default(),
        opts,
        1,
        Instant::from_secs(1),
        None,
    )
    .expect("connect over a perfect link")
}

/// The sequence number and payload length of the TCP segment in an Ethernet + IPv4
/// frame, or `None` if it is something else.
fn tcp_segment(frame: &[u8]) -> Option<(u32, usize)> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    let seg = tcp::Packet::new_checked(ip.payload()).ok()?;
    Some((seg.seq_number().0, seg.payload().len()))
}

/// Every frame waiting at `end`'s receive side, taken off the link.
fn drain(pair: &mut TcpPair, at_b: bool, out: &mut Vec<HeapFrame>) {
    let host = if at_b { &mut pair.b } else { &mut pair.a };
    while host.link().rx_burst(0, out, usize::MAX) > 0 {}
}

/// Read everything B's application can read now; bytes read.
fn read_all(pair: &mut TcpPair, buf: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        match pair.b.stack.tcp_recv(pair.server, buf) {
            Ok(0) | Err(TcpError::WouldBlock) => return n,
            Ok(k) => n += k,
            Err(e) => panic!("tcp_recv: {e}"),
        }
    }
}

/// The frames B receives when A sends `RX_SEGMENTS` full segments, recorded on the way
/// (and passed on to B, so A's window opens as in any transfer).
fn record_rx_frames() -> (Vec<Vec<u8>>, usize) {
    let mut pair = pair();
    let mss = pair.a.stack.tcp_info(pair.client).expect("info").smss as usize;
    let data = vec![0x5a; RX_SEGMENTS * mss];
    let (mut sent, mut frames, mut rx, mut buf) = (0, Vec::new(), Vec::new(), vec![0; BUF]);
    for _ in 0..100_000 {
        if frames.len() == RX_SEGMENTS {
            break;
        }
        if let Ok(n) = pair.a.stack.tcp_send(pair.client, &data[sent..]) {
            sent += n;
        }
        pair.a.poll(pair.now);
        drain(&mut pair, true, &mut rx);
        for f in rx.drain(..) {
            let (_, len) = tcp_segment(f.data()).expect("a TCP frame from A");
            assert_eq!(len, mss, "only full-size segments");
            frames.push(f.data().to_vec());
            pair.b.link().inject(f.data());
        }
        pair.b.poll(pair.now);
        read_all(&mut pair, &mut buf);
    }
    assert_eq!(frames.len(), RX_SEGMENTS);
    (frames, mss)
}

fn receive(c: &mut Criterion) {
    let (frames, mss) = record_rx_frames();
    let mut buf = vec![0u8; 64 * 1024];
    // The first burst is taken in the setup: a connection's first data allocates its
    // receive ring, a one-time cost that is not the path being measured.
    let timed = RX_SEGMENTS - MAX_BURST;
    let mut group = c.benchmark_group("tcp_path");
    group.throughput(Throughput::Elements(timed as u64));
    group.bench_function("receive", |b| {
        b.iter_batched_ref(
            || {
                let mut p = pair();
                for f in &frames {
                    p.b.link().inject(f);
                }
                p.b.poll(p.now);
                let mut first = vec![0u8; MAX_BURST * mss];
                assert_eq!(read_all(&mut p, &mut first), MAX_BURST * mss);
                p
            },
            |p| {
                let mut got = 0;
                for _ in 0..RX_SEGMENTS {
                    p.b.poll(p.now);
                    got += read_all(p, &mut buf);
                    if got == timed * mss {
                        break;
                    }
                }
                assert_eq!(got, timed * mss, "every recorded segment is taken in order");
                black_box(got)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// A's connection ready to send, and a real ACK of B's to patch and feed back.
struct Sender {
    pair: TcpPair,
    data: Vec<u8>,
    ack: Vec<u8>,
    /// Offset of the TCP header in `ack`.
    tcp_at: usize,
    rx: Vec<HeapFrame>,
    acks: Vec<u32>,
}

impl Sender {
    fn new() -> Sender {
        let mut pair = pair();
        let mss = pair.a.stack.tcp_info(pair.client).expect("info").smss as usize;
        let data = vec![0xa5; TX_SEGMENTS * mss];
        let mut buf = vec![0u8; BUF];
        // Warm up: 8 MiB through B, so slow start opens the window.
        let (mut sent, mut got) = (0usize, 0usize);
        let warm = 8 << 20;
        while got < warm {
            if sent < warm {
                let n = (warm - sent).min(data.len());
                if let Ok(k) = pair.a.stack.tcp_send(pair.client, &data[..n]) {
                    sent += k;
                }
            }
            pair.poll();
            got += read_all(&mut pair, &mut buf);
        }
        // Let B's last ACKs reach A, then make B ACK one more write and keep that ACK.
        for _ in 0..4 {
            pair.poll();
        }
        let cwnd = pair.a.stack.tcp_info(pair.client).expect("info").cwnd as usize;
        assert!(
            cwnd >= data.len(),
            "cwnd {cwnd} < one write of {}",
            data.len()
        );
        pair.a.stack.tcp_send(pair.client, &data).expect("send");
        pair.a.poll(pair.now);
        pair.b.poll(pair.now);
        read_all(&mut pair, &mut buf);
        let mut rx = Vec::new();
        drain(&mut pair, false, &mut rx);
        let ack = rx.last().expect("B acknowledged").data().to_vec();
        let eth = ethernet::Frame::new_checked(&ack[..]).expect("ethernet");
        let ip = ipv4::Packet::new_checked(eth.payload()).expect("ipv4");
        let tcp_at = ethernet::HEADER_LEN + ip.header_len();
        let mut s = Sender {
            pair,
            data,
            ack,
            tcp_at,
            rx,
            acks: Vec::with_capacity(TX_SEGMENTS),
        };
        // B's last ACK covers the whole write (an even number of segments: no delayed
        // ACK is pending); hand it over so A starts the bench with nothing in flight.
        s.rx.clear();
        s.feed_ack(s.template_ack());
        s.pair.a.poll(s.pair.now);
        assert_eq!(
            s.pair
                .a
                .stack
                .tcp_info(s.pair.client)
                .expect("info")
                .unacked,
            0
        );
        s
    }

    fn template_ack(&self) -> u32 {
        tcp::Packet::new_unchecked(&self.ack[self.tcp_at..])
            .ack_number()
            .0
    }

    /// Put an ACK of everything before `ack` into A's link end.
    fn feed_ack(&mut self, ack: u32) {
        let mut seg = tcp::Packet::new_unchecked(&mut self.ack[self.tcp_at..]);
        seg.set_ack_number(SeqNumber(ack));
        seg.fill_checksum(B_ADDR, A_ADDR);
        self.pair.a.link().inject(&self.ack);
    }

    /// One write of `TX_SEGMENTS` segments, sent and acknowledged.
    fn write(&mut self) -> usize {
        let p = &mut self.pair;
        let n = p.a.stack.tcp_send(p.client, &self.data).expect("send");
        assert_eq!(n, self.data.len(), "the send buffer takes a whole write");
        p.a.poll(p.now);
        drain(p, true, &mut self.rx);
        self.acks.clear();
        for (i, f) in self.rx.iter().enumerate() {
            if i % 2 == 1 || i + 1 == self.rx.len() {
                let (seq, len) = tcp_segment(f.data()).expect("a TCP frame from A");
                self.acks.push(seq.wrapping_add(len as u32));
            }
        }
        let frames = self.rx.len();
        self.rx.clear();
        for i in 0..self.acks.len() {
            let ack = self.acks[i];
            self.feed_ack(ack);
        }
        self.pair.a.poll(self.pair.now);
        frames
    }
}

fn send(c: &mut Criterion) {
    let mut s = Sender::new();
    assert_eq!(s.write(), TX_SEGMENTS, "one frame per segment");
    assert_eq!(
        s.pair
            .a
            .stack
            .tcp_info(s.pair.client)
            .expect("info")
            .unacked,
        0,
        "every segment acknowledged"
    );
    let mut group = c.benchmark_group("tcp_path");
    group.throughput(Throughput::Elements(TX_SEGMENTS as u64));
    group.bench_function("send", |b| b.iter(|| black_box(s.write())));
    group.finish();
    // The bench measured what it claims: every write became TX_SEGMENTS frames.
    assert_eq!(s.write(), TX_SEGMENTS);
}

criterion_group!(benches, receive, send);
criterion_main!(benches);
