//! Deterministic simulation of TCP: two stacks over the in-memory link with seeded loss,
//! reordering, duplication, corruption and delay.
//!
//! [`simulate`] derives a whole run from one seed: the impairments of each direction,
//! how many connections, how much each side sends, who half-closes first, how the
//! applications read and write, buffer sizes, Nagle and congestion control. Every byte
//! must arrive intact (hash and length of each stream), every connection must end in
//! CLOSED or TIME-WAIT with both connection tables drained, and no run may stall
//! ([`STALL_LIMIT`] of virtual time without progress) or deadlock (nothing pending).
//! A failing seed prints the command that replays it:
//! `RUMPNET_SEED=<n> cargo test --test tcp_sim replay -- --nocapture`
//! (add `RUMPNET_PCAP=/tmp/run.pcap` to capture it). `many_seeds` runs seeds
//! `0..RUMPNET_SIM_SEEDS` (default 500); `RUMPNET_PCAP_DIR=<dir>` captures each
//! specific test.
//!
//! The clock steps in 1 ms while anything moves and jumps to the next event (a stack
//! timer, a frame due on the link, an application waking up) when all is idle, so RTO
//! backoff and TIME-WAIT cost nothing. The other tests pin down one case each: a lost
//! SYN, SYN-ACK, final ACK or FIN, a reset in mid-transfer, a long zero window, tiny
//! receive buffers, and 10,000 concurrent connections.

mod common;

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use rumpnet::stack::link::{Impairments, LinkConfig, PcapCapture};
use rumpnet::stack::rand::Rand;
use rumpnet::stack::tcp::{
    CcAlgorithm, Events, State, TcpError, TcpHandle, TcpListenerHandle, TcpSocketOptions,
};
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::wire::ethernet::{self, EtherType};
use rumpnet::stack::wire::tcp::{self as tcpw, Flags};
use rumpnet::stack::wire::{ipv4, IpProtocol};
use rumpnet::stack::{Stack, StackConfig};

const CLIENT: usize = 0;
const SERVER: usize = 1;
const STEP: Duration = Duration::from_millis(1);
/// A run in which no application made progress (bytes written or read, a half-close,
/// a close, a connection freed) for this much virtual time is stuck: ten times the
/// largest RTO (120 s). At 20% loss each way a retransmission and its answer both
/// arrive with probability 0.64, and a path that also loses ACKs inflates the RTT
/// estimate (the ACK of a retransmitted duplicate echoes the first transmission's
/// timestamp, RFC 7323 §4.3, as in Linux and BSD), so a connection whose timer backed
/// off to the limit needs several tries; ten leave a 0.36^10 chance of a false alarm.
/// (A run with nothing pending at all fails at once as a deadlock.)
const STALL_LIMIT: Duration = Duration::from_secs(1200);
/// A run that has not finished after this much virtual time is stuck too, progress or
/// not (a typical run takes seconds).
const VIRTUAL_LIMIT: Duration = Duration::from_secs(7200);

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn replay_hint(seed: u64) -> String {
    format!("replay: RUMPNET_SEED={seed} cargo test --test tcp_sim replay -- --nocapture")
}

/// FNV-1a, 64 bits: enough to tell two streams apart in a test.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `n` bytes of a stream that depends on `seed`.
fn stream(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    Rand::from_u64(seed).fill(&mut v);
    v
}

/// Uniform in `lo..=hi`.
fn pick(r: &mut Rand, lo: u64, hi: u64) -> u64 {
    lo + r.next_u64() % (hi - lo + 1)
}

/// Uniform in `0..1`.
fn unit(r: &mut Rand) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

// ---------------------------------------------------------------------------------
// Frame inspection for drop filters.

/// The TCP fields of a frame a filter looks at.
#[derive(Debug, Clone, Copy)]
struct Seg {
    flags: Flags,
    seq: u32,
    payload: usize,
}

impl Seg {
    fn is(&self, f: Flags) -> bool {
        self.flags.contains(f)
    }
    fn syn_only(&self) -> bool {
        self.is(Flags::SYN) && !self.is(Flags::ACK)
    }
    fn syn_ack(&self) -> bool {
        self.is(Flags::SYN) && self.is(Flags::ACK)
    }
    /// An ACK with nothing else: no data, no SYN/FIN/RST.
    fn pure_ack(&self) -> bool {
        self.payload == 0 && !self.is(Flags::SYN) && !self.is(Flags::FIN) && !self.is(Flags::RST)
    }
}

fn tcp_seg(frame: &[u8]) -> Option<Seg> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != IpProtocol::Tcp {
        return None;
    }
    let t = tcpw::Packet::new_checked(ip.payload()).ok()?;
    Some(Seg {
        flags: t.flags(),
        seq: t.seq_number().0,
        payload: t.payload().len(),
    })
}

/// Counts kept by a segment filter: segments selected so far, and how many of them were
/// dropped.
#[derive(Clone, Default)]
struct Counts {
    seen: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
}

impl Counts {
    fn seen(&self) -> u32 {
        self.seen.load(Ordering::Relaxed)
    }
    fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Watch the TCP segments `node` sends that `pick` selects, dropping the first `n` of
/// them (before any impairment).
fn drop_first(
    net: &mut Net,
    node: usize,
    n: u32,
    pick: impl Fn(&Seg) -> bool + Send + 'static,
) -> Counts {
    let counts = Counts::default();
    let c = counts.clone();
    net.node(node).ports[0]
        .device_mut()
        .set_drop_filter(Some(Box::new(move |f: &[u8]| match tcp_seg(f) {
            Some(s) if pick(&s) => {
                c.seen.fetch_add(1, Ordering::Relaxed);
                if c.dropped() < n {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                false
            }
            _ => false,
        })));
    counts
}

/// Count (without dropping) the TCP segments `node` sends that `pick` selects.
fn watch(net: &mut Net, node: usize, pick: impl Fn(&Seg) -> bool + Send + 'static) -> Counts {
    drop_first(net, node, 0, pick)
}

// ---------------------------------------------------------------------------------
// Driving a network efficiently.

/// Advance the network: poll at the current time, then move the clock 1 ms if anything
/// moved (or `busy`), else jump to the next event (never past `wake`). Returns false if
/// nothing at all is pending (a deadlock unless the caller is done).
fn advance(net: &mut Net, busy: bool, wake: Option<Instant>) -> bool {
    let moved = net.poll_once();
    let next = if moved || busy {
        Some(net.now + STEP)
    } else {
        match (net.next_event_at(), wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    match next {
        Some(t) => {
            net.now = t.max(net.now + STEP);
            true
        }
        None => false,
    }
}

/// Poll until `done` holds (checked after every poll) or `limit` of virtual time passed;
/// idle time is skipped. Returns whether `done` held.
fn run_until(net: &mut Net, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
    drive(net, limit, |n| (done(n), false))
}

/// [`run_until`] for a closure that also makes socket calls: it returns (done, acted),
/// `acted` when a call moved data (or otherwise left the stack something to send), so
/// the next poll comes 1 ms later instead of at the next timer.
fn drive(net: &mut Net, limit: Duration, mut step: impl FnMut(&mut Net) -> (bool, bool)) -> bool {
    let end = net.now + limit;
    while net.now < end {
        let moved = net.poll_once();
        let (done, acted) = step(net);
        if done {
            return true;
        }
        let next = if moved || acted {
            net.now + STEP
        } else {
            net.next_event_at().unwrap_or(end).max(net.now + STEP)
        };
        net.now = next.min(end);
    }
    net.poll_once();
    step(net).0
}

fn counts(net: &Net) -> (usize, usize) {
    (
        net.nodes[CLIENT].stack.tcp_connection_count(),
        net.nodes[SERVER].stack.tcp_connection_count(),
    )
}

/// Run past TIME-WAIT (2 MSL = 60 s) and check both connection tables are empty.
fn assert_drains(net: &mut Net) {
    let ok = run_until(net, Duration::from_secs(70), |n| counts(n) == (0, 0));
    assert!(ok, "connection tables did not drain: {:?}", counts(net));
}

// ---------------------------------------------------------------------------------
// The randomized simulation.

/// Which side sends first when the run is request/response shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Both send at once; each half-closes when done.
    Concurrent,
    /// The server sends only after the client's FIN (a request, then the reply).
    ClientFirst,
    /// The client sends only after the server's FIN.
    ServerFirst,
}

/// What one side of one connection does.
#[derive(Debug, Clone)]
struct SidePlan {
    opts: TcpSocketOptions,
    bytes: usize,
    data_seed: u64,
    write_chunk: usize,
    read_chunk: usize,
    /// Time between application turns (0: act whenever possible).
    pace: Duration,
    /// Call `tcp_close` as soon as the FIN is queued and EOF read, leaving the rest of
    /// the close to the stack; otherwise wait for TIME-WAIT/CLOSED with the handle.
    close_early: bool,
}

#[derive(Debug, Clone)]
struct ConnPlan {
    port: u16,
    start: Duration,
    order: Order,
    client: SidePlan,
    server: SidePlan,
}

#[derive(Debug, Clone)]
struct Plan {
    link: LinkConfig,
    conns: Vec<ConnPlan>,
}

fn impairments(r: &mut Rand, seed: u64) -> Impairments {
    let lossy = r.below(5) != 0; // one direction in five is clean
    Impairments {
        seed,
        loss: if lossy { unit(r) * 0.20 } else { 0.0 },
        reorder: if lossy { unit(r) * 0.3 } else { 0.0 },
        duplicate: if lossy { unit(r) * 0.1 } else { 0.0 },
        corrupt: if lossy { unit(r) * 0.05 } else { 0.0 },
        delay: Duration::from_micros(pick(r, 0, 5000)),
        jitter: if r.below(3) == 0 {
            Duration::from_micros(pick(r, 0, 2000))
        } else {
            Duration::ZERO
        },
        ..Impairments::default()
    }
}

fn buffer_size(r: &mut Rand) -> usize {
    if r.below(4) == 0 {
        pick(r, 512, 4096) as usize
    } else {
        // 4 KiB .. 256 KiB, spread evenly in log scale.
        (4096.0 * 64f64.powf(unit(r))) as usize
    }
}

fn side_plan(r: &mut Rand, tiny_peer_rcv: bool) -> SidePlan {
    let opts = TcpSocketOptions {
        nodelay: r.below(2) == 0,
        rcv_buf: buffer_size(r),
        snd_buf: buffer_size(r),
        cc: if r.below(2) == 0 {
            CcAlgorithm::NewReno
        } else {
            CcAlgorithm::Cubic
        },
        keepalive: None,
    };
    let mut bytes = if r.below(6) == 0 {
        0
    } else {
        // Mostly small, sometimes up to 300 KB.
        let u = unit(r);
        (u * u * 300_000.0) as usize
    };
    let tiny = opts.rcv_buf < 4096 || opts.snd_buf < 4096 || tiny_peer_rcv;
    if tiny {
        // A window smaller than a segment moves a few hundred bytes per round trip:
        // keep those transfers short.
        bytes = bytes.min(40_000);
    }
    let pace = match r.below(4) {
        0 | 1 => Duration::ZERO,
        2 => Duration::from_millis(pick(r, 1, 5)),
        _ => Duration::from_millis(pick(r, 5, 50)),
    };
    // Tiny reads and writes only when the application is not paced (it then loops
    // until the call would block); a paced one moves at least 1000 bytes a turn, so the
    // slowest application still moves 20 KB/s and a run stays short.
    let small = if pace.is_zero() { 1 } else { 1000 };
    SidePlan {
        opts,
        bytes,
        data_seed: r.next_u64(),
        write_chunk: if r.below(3) == 0 {
            pick(r, small, 1000) as usize
        } else {
            pick(r, 1000, 65536) as usize
        },
        read_chunk: if r.below(3) == 0 {
            pick(r, small, 1000) as usize
        } else {
            pick(r, 1000, 65536) as usize
        },
        pace,
        close_early: r.below(2) == 0,
    }
}

fn plan(seed: u64) -> Plan {
    let mut r = Rand::from_u64(seed ^ 0x7463_7073_696d_0001);
    let a_to_b = impairments(&mut r, seed.wrapping_mul(2).wrapping_add(1));
    let b_to_a = impairments(&mut r, seed.wrapping_mul(2).wrapping_add(2));
    let nconns = pick(&mut r, 1, 4) as usize;
    let conns = (0..nconns)
        .map(|i| {
            let mut client = side_plan(&mut r, false);
            let mut server = side_plan(&mut r, false);
            // Each side's sending is limited by the other's receive buffer too.
            if server.opts.rcv_buf < 4096 {
                client.bytes = client.bytes.min(40_000);
            }
            if client.opts.rcv_buf < 4096 {
                server.bytes = server.bytes.min(40_000);
            }
            ConnPlan {
                port: 1000 + i as u16,
                start: Duration::from_millis(pick(&mut r, 0, 50)),
                order: match r.below(3) {
                    0 => Order::Concurrent,
                    1 => Order::ClientFirst,
                    _ => Order::ServerFirst,
                },
                client,
                server,
            }
        })
        .collect();
    Plan {
        link: LinkConfig {
            a_to_b,
            b_to_a,
            ..LinkConfig::default()
        },
        conns,
    }
}

/// One side's progress.
struct Side {
    plan: SidePlan,
    /// Send only after EOF from the peer.
    wait_eof: bool,
    handle: Option<TcpHandle>,
    tx: Vec<u8>,
    tx_off: usize,
    shut: bool,
    rx: Vec<u8>,
    eof: bool,
    closed: bool,
    next_turn: Instant,
}

impl Side {
    fn new(plan: &SidePlan, wait_eof: bool, start: Instant) -> Side {
        Side {
            tx: stream(plan.data_seed, plan.bytes),
            plan: plan.clone(),
            wait_eof,
            handle: None,
            tx_off: 0,
            shut: false,
            rx: Vec::new(),
            eof: false,
            closed: false,
            next_turn: start,
        }
    }

    fn describe(&self, stack: &Stack) -> String {
        let state = self.handle.map(|h| {
            (
                stack.tcp_state(h),
                stack.tcp_error(h),
                stack.tcp_info(h).ok(),
            )
        });
        format!(
            "sent {}/{} shut {} | received {} eof {} | closed {} | {:?}",
            self.tx_off,
            self.tx.len(),
            self.shut,
            self.rx.len(),
            self.eof,
            self.closed,
            state
        )
    }
}

struct Conn {
    plan: ConnPlan,
    listener: TcpListenerHandle,
    client: Side,
    server: Side,
}

/// What the applications did in one turn.
#[derive(Default)]
struct Turn {
    progress: bool,
    wake: Option<Instant>,
}

impl Turn {
    fn wake_at(&mut self, t: Instant) {
        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
    }
}

/// One application turn on one side: write what fits, half-close when done, read
/// what is there, close when both directions are finished.
fn side_turn(
    stack: &mut Stack,
    side: &mut Side,
    now: Instant,
    buf: &mut [u8],
    turn: &mut Turn,
) -> Result<(), String> {
    let Some(h) = side.handle else {
        return Ok(());
    };
    if side.closed {
        return Ok(());
    }
    if now < side.next_turn {
        turn.wake_at(side.next_turn);
        return Ok(());
    }
    if let Some(e) = stack
        .tcp_error(h)
        .map_err(|e| format!("tcp_error: {e:?}"))?
    {
        return Err(format!("connection failed: {e:?}"));
    }
    let paced = !side.plan.pace.is_zero();
    let mut progress = false;
    // Write.
    if !side.shut && (!side.wait_eof || side.eof) {
        while side.tx_off < side.tx.len() {
            let end = (side.tx_off + side.plan.write_chunk).min(side.tx.len());
            match stack.tcp_send(h, &side.tx[side.tx_off..end]) {
                Ok(n) => {
                    side.tx_off += n;
                    progress |= n > 0;
                }
                Err(TcpError::WouldBlock) => break,
                Err(e) => return Err(format!("tcp_send: {e:?}")),
            }
            if paced {
                break;
            }
        }
        if side.tx_off == side.tx.len() {
            stack
                .tcp_shutdown(h)
                .map_err(|e| format!("tcp_shutdown: {e:?}"))?;
            side.shut = true;
            progress = true;
        }
    }
    // Read.
    let chunk = side.plan.read_chunk.min(buf.len());
    while !side.eof {
        match stack.tcp_recv(h, &mut buf[..chunk]) {
            Ok(0) => {
                side.eof = true;
                progress = true;
            }
            Ok(n) => {
                side.rx.extend_from_slice(&buf[..n]);
                progress = true;
            }
            Err(TcpError::WouldBlock) => break,
            Err(e) => return Err(format!("tcp_recv: {e:?}")),
        }
        if paced {
            break;
        }
    }
    // Close.
    if side.shut && side.eof {
        let finished = side.plan.close_early
            || matches!(stack.tcp_state(h), Ok(State::TimeWait) | Ok(State::Closed));
        if finished {
            if let Some(e) = stack
                .tcp_error(h)
                .map_err(|e| format!("tcp_error: {e:?}"))?
            {
                return Err(format!("connection failed at close: {e:?}"));
            }
            stack
                .tcp_close(h)
                .map_err(|e| format!("tcp_close: {e:?}"))?;
            side.closed = true;
            progress = true;
        }
    }
    if progress {
        turn.progress = true;
        if paced {
            side.next_turn = now + side.plan.pace;
        }
    }
    Ok(())
}

/// What a passing run did.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    connections: usize,
    bytes: usize,
    virtual_time: Duration,
    frames: u64,
    lost: u64,
    retransmits: u64,
    timeouts: u64,
    /// Resets sent. Not an error in itself: a duplicate of the ACK that ended LAST-ACK
    /// finds no connection and is answered with a RST (RFC 9293 §3.10.7.1); a reset
    /// that hit a live connection fails the run through the connection's error.
    resets: u64,
}

/// Run the simulation of `seed`.
fn simulate(seed: u64) -> Result<Summary, String> {
    simulate_with_capture(seed, None)
}

/// [`simulate`], writing every frame into a pcap file at `pcap` (for `replay`).
fn simulate_with_capture(seed: u64, pcap: Option<&str>) -> Result<Summary, String> {
    let plan = plan(seed);
    run_plan(seed, &plan, pcap).map_err(|e| {
        format!(
            "seed {seed}: {e}\n{}\nplan: {:#?}",
            replay_hint(seed),
            plan.link
        )
    })
}

/// The stacks' configuration in the simulation: the defaults, except that a SYN is
/// tried 11 times instead of 7. At 20% loss each way a SYN and its SYN-ACK both arrive
/// with probability 0.64, so 7 tries (127 s, Linux's tcp_syn_retries = 6) all fail for
/// about one connection in 1,300: a correct give-up (ETIMEDOUT), not what the
/// simulation looks for. 11 tries make that one in 75,000.
fn sim_stack_config() -> StackConfig {
    let mut config = StackConfig::default();
    config.tcp.tcb.syn_retries = 10;
    config
}

fn run_plan(seed: u64, plan: &Plan, pcap: Option<&str>) -> Result<Summary, String> {
    run_plan_with(seed, plan, pcap, sim_stack_config())
}

fn run_plan_with(
    seed: u64,
    plan: &Plan,
    pcap: Option<&str>,
    config: StackConfig,
) -> Result<Summary, String> {
    let mut net = two_hosts_with(
        plan.link,
        config,
        (seed.wrapping_mul(3), seed.wrapping_mul(3).wrapping_add(1)),
    );
    let capture = match pcap {
        Some(path) => {
            let c = Arc::new(PcapCapture::create(path).map_err(|e| format!("{path}: {e}"))?);
            for n in &mut net.nodes {
                n.ports[0].device_mut().capture(Arc::clone(&c));
            }
            Some(c)
        }
        None => None,
    };
    let result = run_net(&mut net, plan);
    if let Some(c) = capture {
        let _ = c.flush();
    }
    result
}

fn run_net(net: &mut Net, plan: &Plan) -> Result<Summary, String> {
    let t0 = net.now;
    let mut conns = Vec::new();
    for p in &plan.conns {
        let listener = net.nodes[SERVER]
            .stack
            .tcp_listen_with(SocketAddrV4::new(ip("0.0.0.0"), p.port), 4, p.server.opts)
            .map_err(|e| format!("listen: {e:?}"))?;
        let start = t0 + p.start;
        conns.push(Conn {
            client: Side::new(&p.client, p.order == Order::ServerFirst, start),
            server: Side::new(&p.server, p.order == Order::ClientFirst, start),
            plan: p.clone(),
            listener,
        });
    }
    let mut buf = vec![0u8; 65536];
    let deadline = t0 + VIRTUAL_LIMIT;
    let mut all_closed_at = None;
    let mut last_progress = t0;
    let mut last_counts = counts(net);
    loop {
        let now = net.now;
        let mut turn = Turn::default();
        for c in &mut conns {
            // Open and accept.
            if c.client.handle.is_none() {
                if now >= c.client.next_turn {
                    let remote = SocketAddrV4::new(ip("10.0.0.2"), c.plan.port);
                    let h = net.nodes[CLIENT]
                        .stack
                        .tcp_connect_with(remote, None, c.plan.client.opts, |_| true)
                        .map_err(|e| format!("connect: {e:?}"))?;
                    c.client.handle = Some(h);
                    turn.progress = true;
                } else {
                    turn.wake_at(c.client.next_turn);
                }
            }
            if c.server.handle.is_none() {
                match net.nodes[SERVER].stack.tcp_accept(c.listener) {
                    Ok((h, _)) => {
                        c.server.handle = Some(h);
                        c.server.next_turn = now;
                        turn.progress = true;
                    }
                    Err(TcpError::WouldBlock) => {}
                    Err(e) => return Err(format!("accept: {e:?}")),
                }
            }
            let port = c.plan.port;
            side_turn(
                &mut net.nodes[CLIENT].stack,
                &mut c.client,
                now,
                &mut buf,
                &mut turn,
            )
            .map_err(|e| format!("conn {port} client: {e}"))?;
            side_turn(
                &mut net.nodes[SERVER].stack,
                &mut c.server,
                now,
                &mut buf,
                &mut turn,
            )
            .map_err(|e| format!("conn {port} server: {e}"))?;
        }
        let all_closed = conns.iter().all(|c| c.client.closed && c.server.closed);
        if all_closed && all_closed_at.is_none() {
            all_closed_at = Some(now);
        }
        if all_closed && counts(net) == (0, 0) {
            break;
        }
        if turn.progress || counts(net) != last_counts {
            last_progress = now;
            last_counts = counts(net);
        }
        if now >= deadline || now - last_progress > STALL_LIMIT {
            return Err(format!(
                "stuck: no progress since {:?}, now {:?} (limits: {STALL_LIMIT:?} without progress, {VIRTUAL_LIMIT:?} in all)\n{}",
                last_progress - t0,
                now - t0,
                report(net, &conns)
            ));
        }
        let pending = advance(net, turn.progress, turn.wake);
        let finished = all_closed && counts(net) == (0, 0);
        if !pending && !finished {
            return Err(format!(
                "deadlock: nothing pending at {:?}\n{}",
                now - t0,
                report(net, &conns)
            ));
        }
    }
    // Every stream intact.
    let mut bytes = 0;
    for c in &conns {
        for (what, from, to) in [
            ("client->server", &c.client, &c.server),
            ("server->client", &c.server, &c.client),
        ] {
            if from.tx.len() != to.rx.len() || fnv1a(&from.tx) != fnv1a(&to.rx) {
                let first_diff = from.tx.iter().zip(&to.rx).position(|(a, b)| a != b);
                return Err(format!(
                    "conn {} {what}: sent {} bytes (hash {:016x}), received {} (hash {:016x}), first difference at {first_diff:?}",
                    c.plan.port,
                    from.tx.len(),
                    fnv1a(&from.tx),
                    to.rx.len(),
                    fnv1a(&to.rx)
                ));
            }
            bytes += from.tx.len();
        }
    }
    let (sa, sb) = (net.nodes[0].stack.stats(), net.nodes[1].stack.stats());
    // Segments fit the MTU with all their options (RFC 6691): nothing was fragmented.
    if sa.frag_tx + sb.frag_tx != 0 {
        return Err(format!(
            "TCP segments were fragmented: {} + {} fragments",
            sa.frag_tx, sb.frag_tx
        ));
    }
    let la = net.nodes[0].ports[0].device().stats();
    let lb = net.nodes[1].ports[0].device().stats();
    // On a path that loses and corrupts nothing no retransmission timer may fire.
    let clean = |i: &Impairments| i.loss == 0.0 && i.corrupt == 0.0;
    let lossless = clean(&plan.link.a_to_b) && clean(&plan.link.b_to_a);
    if lossless && sa.tcp_timeouts + sb.tcp_timeouts != 0 {
        return Err(format!(
            "retransmission timeouts on a lossless path: {} + {}",
            sa.tcp_timeouts, sb.tcp_timeouts
        ));
    }
    Ok(Summary {
        connections: conns.len(),
        bytes,
        virtual_time: all_closed_at.unwrap_or(net.now) - t0,
        frames: la.sent + lb.sent,
        lost: la.lost + lb.lost,
        retransmits: sa.tcp_retransmits + sb.tcp_retransmits,
        timeouts: sa.tcp_timeouts + sb.tcp_timeouts,
        resets: sa.tcp_rst_tx + sb.tcp_rst_tx,
    })
}

fn report(net: &mut Net, conns: &[Conn]) -> String {
    let mut out = String::new();
    for c in conns {
        out += &format!(
            "conn {} ({:?}):\n  client: {}\n  server: {}\n",
            c.plan.port,
            c.plan.order,
            c.client.describe(&net.nodes[CLIENT].stack),
            c.server.describe(&net.nodes[SERVER].stack)
        );
    }
    for (i, n) in net.nodes.iter_mut().enumerate() {
        out += &format!(
            "node {i}: {} connections, link tx {:?}\n  {:?}\n",
            n.stack.tcp_connection_count(),
            n.ports[0].device().stats(),
            n.stack.stats()
        );
    }
    out
}

/// Seeds 0..RUMPNET_SIM_SEEDS (default 500), spread over the machine's cores.
#[test]
fn many_seeds() {
    let n: u64 = std::env::var("RUMPNET_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let threads = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .clamp(1, 8);
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let results: Vec<Vec<(u64, Result<Summary, String>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let next = Arc::clone(&next);
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed) as u64;
                        if seed >= n {
                            return out;
                        }
                        let r = std::panic::catch_unwind(|| simulate(seed)).unwrap_or_else(|p| {
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            Err(format!("seed {seed}: panic: {msg}\n{}", replay_hint(seed)))
                        });
                        out.push((seed, r));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<_> = results.into_iter().flatten().collect();
    all.sort_by_key(|(s, _)| *s);
    let mut total = Summary::default();
    let mut failed = Vec::new();
    for (seed, r) in &all {
        match r {
            Ok(s) => {
                total.connections += s.connections;
                total.bytes += s.bytes;
                total.virtual_time += s.virtual_time;
                total.frames += s.frames;
                total.lost += s.lost;
                total.retransmits += s.retransmits;
                total.timeouts += s.timeouts;
                total.resets += s.resets;
            }
            Err(e) => failed.push((*seed, e)),
        }
    }
    eprintln!(
        "{n} seeds in {:?} on {threads} threads: {} connections, {} bytes, {:?} virtual, {} frames ({} lost), {} retransmits, {} timeouts, {} resets",
        started.elapsed(),
        total.connections,
        total.bytes,
        total.virtual_time,
        total.frames,
        total.lost,
        total.retransmits,
        total.timeouts,
        total.resets
    );
    if let Some((_, first)) = failed.first() {
        let seeds: Vec<u64> = failed.iter().map(|(s, _)| *s).collect();
        for (_, e) in &failed {
            eprintln!("{}", e.lines().next().unwrap_or_default());
        }
        panic!(
            "{} of {n} seeds failed: {seeds:?}\nfirst: {first}",
            seeds.len()
        );
    }
    assert_eq!(all.len() as u64, n);
}

/// Replay one seed: `RUMPNET_SEED=<n> cargo test --test tcp_sim replay -- --nocapture`.
/// Passes trivially when the variable is unset.
#[test]
fn replay() {
    let Some(seed) = std::env::var("RUMPNET_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    else {
        return;
    };
    let plan = plan(seed);
    eprintln!("seed {seed}: {plan:#?}");
    let pcap = std::env::var("RUMPNET_PCAP").ok();
    match simulate_with_capture(seed, pcap.as_deref()) {
        Ok(s) => eprintln!("seed {seed}: ok {s:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// The same seed gives the same run, to the frame.
#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17] {
        let a = simulate(seed).unwrap();
        let b = simulate(seed).unwrap();
        assert_eq!(
            (a.frames, a.lost, a.retransmits, a.virtual_time),
            (b.frames, b.lost, b.retransmits, b.virtual_time),
            "seed {seed}"
        );
    }
}

/// Header prediction is only a shortcut: with it and without it, a seed's run puts
/// the same frames on the wire, byte for byte and at the same instants (the pcap
/// files of both runs are identical), across lossy, reordering, duplicating links.
#[test]
fn header_prediction_changes_nothing_on_the_wire() {
    let dir = std::env::temp_dir();
    for seed in 1..=40u64 {
        let plan = plan(seed);
        let mut files = Vec::new();
        for predict in [true, false] {
            let path = dir.join(format!(
                "rumpnet-hp-{}-{seed}-{predict}.pcap",
                std::process::id()
            ));
            let mut config = sim_stack_config();
            config.tcp.tcb.header_prediction = predict;
            let p = path.to_str().expect("utf-8 temp path");
            run_plan_with(seed, &plan, Some(p), config)
                .unwrap_or_else(|e| panic!("seed {seed}, prediction {predict}: {e}"));
            let bytes = std::fs::read(&path).expect("the capture");
            let _ = std::fs::remove_file(&path);
            files.push(bytes);
        }
        assert!(files[0].len() > 24, "seed {seed}: nothing captured");
        assert!(
            files[0] == files[1],
            "seed {seed}: the runs differ with and without header prediction"
        );
    }
}

// ---------------------------------------------------------------------------------
// Specific cases.

/// Two hosts on a clean link; with `RUMPNET_PCAP_DIR` set, both directions are
/// captured to `<dir>/<test name>.pcap` for a look in Wireshark.
fn clean_hosts() -> Net {
    let mut net = two_hosts(LinkConfig::default());
    if let Ok(dir) = std::env::var("RUMPNET_PCAP_DIR") {
        let name = std::thread::current()
            .name()
            .unwrap_or("tcp_sim")
            .replace("::", "_");
        let path = std::path::Path::new(&dir).join(format!("{name}.pcap"));
        let capture = Arc::new(PcapCapture::create(&path).expect("pcap file"));
        for n in &mut net.nodes {
            n.ports[0].device_mut().capture(Arc::clone(&capture));
        }
    }
    net
}

/// A clean network, a listener on port 80 of the server.
fn clean_net() -> (Net, TcpListenerHandle) {
    let mut net = clean_hosts();
    let l = net.nodes[SERVER]
        .stack
        .tcp_listen(sa("0.0.0.0:80"), 64)
        .unwrap();
    (net, l)
}

fn state(net: &Net, node: usize, h: TcpHandle) -> State {
    net.nodes[node].stack.tcp_state(h).unwrap()
}

/// Move `data` from `from`'s connection to `to`'s (both established) within `limit`
/// of virtual time, returning what arrived.
fn transfer(
    net: &mut Net,
    from: (usize, TcpHandle),
    to: (usize, TcpHandle),
    data: &[u8],
    limit: Duration,
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let end = net.now + limit;
    while got.len() < data.len() && net.now < end {
        let mut progress = false;
        if sent < data.len() {
            if let Ok(n) = net.nodes[from.0].stack.tcp_send(from.1, &data[sent..]) {
                sent += n;
                progress = true;
            }
        }
        while let Ok(n) = net.nodes[to.0].stack.tcp_recv(to.1, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            progress = true;
        }
        if !advance(net, progress, None) {
            break;
        }
    }
    got
}

/// Both sides half-close and close; the tables drain after TIME-WAIT.
fn close_both(net: &mut Net, c: TcpHandle, s: TcpHandle) {
    let mut buf = [0u8; 64];
    net.nodes[CLIENT].stack.tcp_shutdown(c).unwrap();
    let eof = run_until(net, Duration::from_secs(30), |n| {
        n.nodes[SERVER].stack.tcp_recv(s, &mut buf) == Ok(0)
    });
    assert!(eof, "server saw no EOF");
    net.nodes[SERVER].stack.tcp_close(s).unwrap();
    let tw = run_until(net, Duration::from_secs(30), |n| {
        n.nodes[CLIENT].stack.tcp_state(c) == Ok(State::TimeWait)
    });
    assert!(
        tw,
        "client state {:?}",
        net.nodes[CLIENT].stack.tcp_state(c)
    );
    assert_eq!(net.nodes[CLIENT].stack.tcp_recv(c, &mut buf), Ok(0));
    net.nodes[CLIENT].stack.tcp_close(c).unwrap();
    assert_drains(net);
}

/// Connect to port 80 and run until the client is established and the server accepted;
/// returns (client, server, virtual time until the client was established).
fn establish(
    net: &mut Net,
    l: TcpListenerHandle,
    limit: Duration,
) -> (TcpHandle, TcpHandle, Duration) {
    let t0 = net.now;
    let c = net.nodes[CLIENT]
        .stack
        .tcp_connect(sa("10.0.0.2:80"))
        .unwrap();
    let mut s = None;
    let mut took = None;
    let ok = run_until(net, limit, |n| {
        if took.is_none() && n.nodes[CLIENT].stack.tcp_state(c) == Ok(State::Established) {
            took = Some(n.now - t0);
        }
        if s.is_none() {
            s = n.nodes[SERVER].stack.tcp_accept(l).ok().map(|(h, _)| h);
        }
        took.is_some() && s.is_some()
    });
    assert!(
        ok,
        "not established: client {:?}, server accepted {}",
        state(net, CLIENT, c),
        s.is_some()
    );
    (c, s.unwrap(), took.unwrap())
}

#[test]
fn lost_syn_is_retransmitted_after_the_initial_rto() {
    let (mut net, l) = clean_net();
    let syns = drop_first(&mut net, CLIENT, 1, Seg::syn_only);
    let (c, s, took) = establish(&mut net, l, Duration::from_secs(5));
    assert_eq!((syns.seen(), syns.dropped()), (2, 1));
    // RFC 6298 §2.1: the first RTO is 1 s.
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
        "{took:?}"
    );
    assert_eq!(net.nodes[CLIENT].stack.stats().tcp_timeouts, 1);
    assert_eq!(net.nodes[CLIENT].ports[0].device().stats().filtered, 1);
    let data = stream(1, 50_000);
    let got = transfer(
        &mut net,
        (CLIENT, c),
        (SERVER, s),
        &data,
        Duration::from_secs(10),
    );
    assert!(got == data);
    close_both(&mut net, c, s);
}

#[test]
fn lost_syn_ack_is_recovered_by_retransmission() {
    let (mut net, l) = clean_net();
    let synacks = drop_first(&mut net, SERVER, 1, Seg::syn_ack);
    let syns = watch(&mut net, CLIENT, Seg::syn_only);
    let (c, s, took) = establish(&mut net, l, Duration::from_secs(5));
    assert_eq!(synacks.dropped(), 1);
    // The client's SYN and the server's SYN-ACK time out together after the first RTO
    // (1 s); the server answers the retransmitted SYN with its SYN-ACK again, and its
    // own timeout must not add a third one in the same instant.
    assert_eq!(syns.seen(), 2);
    assert_eq!(synacks.seen(), 2, "one lost, one retransmitted");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
        "{took:?}"
    );
    assert_eq!(net.nodes[CLIENT].stack.stats().tcp_timeouts, 1);
    let data = stream(2, 30_000);
    let got = transfer(
        &mut net,
        (SERVER, s),
        (CLIENT, c),
        &data,
        Duration::from_secs(10),
    );
    assert!(got == data);
    close_both(&mut net, c, s);
}

#[test]
fn lost_final_ack_is_covered_by_the_first_data() {
    // The client's first data segment carries the ACK the handshake lacks: the server
    // is established by it at once, with no timeout anywhere.
    let (mut net, l) = clean_net();
    let acks = drop_first(&mut net, CLIENT, 1, Seg::pure_ack);
    let c = net.nodes[CLIENT]
        .stack
        .tcp_connect(sa("10.0.0.2:80"))
        .unwrap();
    let ok = run_until(&mut net, Duration::from_secs(1), |n| {
        n.nodes[CLIENT].stack.tcp_state(c) == Ok(State::Established)
    });
    assert!(ok);
    run_until(&mut net, Duration::from_millis(5), |_| false);
    assert_eq!(acks.dropped(), 1, "the handshake's ACK was lost");
    assert_eq!(
        net.nodes[SERVER].stack.tcp_accept(l),
        Err(TcpError::WouldBlock)
    );
    let t0 = net.now;
    let request = stream(3, 500);
    assert_eq!(net.nodes[CLIENT].stack.tcp_send(c, &request), Ok(500));
    let mut s = None;
    let ok = run_until(&mut net, Duration::from_secs(5), |n| {
        s = s.or_else(|| n.nodes[SERVER].stack.tcp_accept(l).ok().map(|x| x.0));
        s.is_some()
    });
    assert!(ok);
    let s = s.unwrap();
    assert_eq!(acks.dropped(), 1);
    assert!(
        net.now - t0 < Duration::from_millis(20),
        "{:?}",
        net.now - t0
    );
    let mut buf = [0u8; 1000];
    assert_eq!(net.nodes[SERVER].stack.tcp_recv(s, &mut buf), Ok(500));
    assert!(buf[..500] == request[..]);
    for n in 0..2 {
        assert_eq!(net.nodes[n].stack.stats().tcp_timeouts, 0, "node {n}");
    }
    close_both(&mut net, c, s);
}

#[test]
fn lost_final_ack_with_a_silent_client_is_recovered_by_the_syn_ack_timeout() {
    // The client sends nothing (the server speaks first): the server stays in
    // SYN-RECEIVED until its SYN-ACK times out (1 s); the client, established, answers
    // the duplicate SYN-ACK with an ACK (RFC 9293 §3.10.7.4: an unacceptable segment
    // is acknowledged), which completes the handshake.
    let (mut net, l) = clean_net();
    let acks = drop_first(&mut net, CLIENT, 1, Seg::pure_ack);
    let synacks = watch(&mut net, SERVER, Seg::syn_ack);
    let (c, s, took) = establish(&mut net, l, Duration::from_secs(5));
    assert_eq!(acks.dropped(), 1);
    assert!(
        took < Duration::from_millis(20),
        "the client is established at once"
    );
    assert_eq!(synacks.seen(), 2);
    assert_eq!(net.nodes[SERVER].stack.stats().tcp_timeouts, 1);
    assert_eq!(net.nodes[CLIENT].stack.stats().tcp_timeouts, 0);
    let greeting = stream(4, 3000);
    let got = transfer(
        &mut net,
        (SERVER, s),
        (CLIENT, c),
        &greeting,
        Duration::from_secs(5),
    );
    assert!(got == greeting);
    close_both(&mut net, c, s);
}

#[test]
fn lost_fins_are_retransmitted_and_the_close_completes() {
    let (mut net, l) = clean_net();
    let (c, s, _) = establish(&mut net, l, Duration::from_secs(1));
    let data = stream(5, 20_000);
    let got = transfer(
        &mut net,
        (CLIENT, c),
        (SERVER, s),
        &data,
        Duration::from_secs(5),
    );
    assert!(got == data);
    // Everything is acknowledged: the FIN goes alone, and is lost.
    let ok = run_until(&mut net, Duration::from_secs(1), |n| {
        n.nodes[CLIENT].stack.tcp_send_queued(c) == Ok(0)
    });
    assert!(ok);
    let client_fins = drop_first(&mut net, CLIENT, 1, |s| s.is(Flags::FIN));
    let server_fins = drop_first(&mut net, SERVER, 1, |s| s.is(Flags::FIN));
    let timeouts = net.nodes[CLIENT].stack.stats().tcp_timeouts;
    net.nodes[CLIENT].stack.tcp_shutdown(c).unwrap();
    assert_eq!(state(&net, CLIENT, c), State::FinWait1);
    let t0 = net.now;
    let mut buf = [0u8; 64];
    let eof = run_until(&mut net, Duration::from_secs(5), |n| {
        n.nodes[SERVER].stack.tcp_recv(s, &mut buf) == Ok(0)
    });
    assert!(eof);
    let took = net.now - t0;
    // Retransmitted once the RTO (at least 200 ms) expired.
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(client_fins.dropped(), 1);
    assert_eq!(client_fins.seen(), 2);
    assert_eq!(net.nodes[CLIENT].stack.stats().tcp_timeouts, timeouts + 1);
    let ok = run_until(&mut net, Duration::from_millis(10), |n| {
        n.nodes[CLIENT].stack.tcp_state(c) == Ok(State::FinWait2)
    });
    assert!(ok, "{:?}", state(&net, CLIENT, c));
    assert_eq!(state(&net, SERVER, s), State::CloseWait);

    // The server still sends after the half-close, then closes; its FIN (LAST-ACK) is
    // lost as well and retransmitted.
    let reply = stream(6, 5000);
    let got = transfer(
        &mut net,
        (SERVER, s),
        (CLIENT, c),
        &reply,
        Duration::from_secs(5),
    );
    assert!(got == reply);
    net.nodes[SERVER].stack.tcp_close(s).unwrap();
    let t0 = net.now;
    let eof = run_until(&mut net, Duration::from_secs(5), |n| {
        n.nodes[CLIENT].stack.tcp_recv(c, &mut buf) == Ok(0)
    });
    assert!(eof);
    assert!(
        net.now - t0 >= Duration::from_millis(200),
        "{:?}",
        net.now - t0
    );
    assert_eq!((server_fins.seen(), server_fins.dropped()), (2, 1));
    assert_eq!(state(&net, CLIENT, c), State::TimeWait);
    let gone = run_until(&mut net, Duration::from_secs(1), |n| {
        n.nodes[SERVER].stack.tcp_connection_count() == 0
    });
    assert!(
        gone,
        "the server's LAST-ACK ends when its FIN is acknowledged"
    );
    net.nodes[CLIENT].stack.tcp_close(c).unwrap();
    assert_drains(&mut net);
}

#[test]
fn receiver_abort_resets_the_sender() {
    let (mut net, l) = clean_net();
    let (c, s, _) = establish(&mut net, l, Duration::from_secs(1));
    let data = stream(7, 1_000_000);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    // Stream until the server has read 100 KB, then it aborts.
    while got.len() < 100_000 {
        if let Ok(n) = net.nodes[CLIENT].stack.tcp_send(c, &data[sent..]) {
            sent += n;
        }
        while let Ok(n) = net.nodes[SERVER].stack.tcp_recv(s, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert!(advance(&mut net, true, None));
    }
    assert!(got[..] == data[..got.len()]);
    let rst_before = net.nodes[SERVER].stack.stats().tcp_rst_tx;
    net.nodes[SERVER].stack.tcp_abort(s).unwrap();
    assert_eq!(
        net.nodes[SERVER].stack.tcp_recv(s, &mut buf),
        Err(TcpError::InvalidHandle),
        "the handle is released"
    );
    // The client keeps sending until the reset arrives.
    let mut send_err = None;
    let ok = drive(&mut net, Duration::from_secs(1), |n| {
        let mut acted = false;
        match n.nodes[CLIENT].stack.tcp_send(c, &data[sent..]) {
            Ok(k) => {
                sent += k;
                acted = k > 0;
            }
            Err(TcpError::WouldBlock) => {}
            Err(e) => send_err = Some(e),
        }
        (send_err.is_some(), acted)
    });
    assert!(ok, "client never saw the reset");
    assert_eq!(send_err, Some(TcpError::ConnectionReset));
    assert!(net.nodes[SERVER].stack.stats().tcp_rst_tx > rst_before);
    assert_eq!(state(&net, CLIENT, c), State::Closed);
    assert_eq!(
        net.nodes[CLIENT].stack.tcp_error(c),
        Ok(Some(TcpError::ConnectionReset))
    );
    assert_eq!(
        net.nodes[CLIENT].stack.tcp_recv(c, &mut buf),
        Err(TcpError::ConnectionReset)
    );
    let mut events = Vec::new();
    net.nodes[CLIENT].stack.tcp_events(&mut events);
    assert!(
        events
            .iter()
            .any(|e| e.events.contains(Events::ERROR | Events::CLOSED)),
        "{events:?}"
    );
    assert_eq!(net.nodes[SERVER].stack.tcp_connection_count(), 0);
    net.nodes[CLIENT].stack.tcp_close(c).unwrap();
    run_until(&mut net, Duration::from_millis(10), |_| false);
    assert_eq!(counts(&net), (0, 0));
}

#[test]
fn sender_abort_delivers_nothing_after_the_reset() {
    let (mut net, l) = clean_net();
    // Lose every copy of the segment holding byte 50,000 of the client's stream (and
    // keep the first): the server then holds a hole, data beyond it, and has delivered
    // exactly the bytes before it.
    const HOLE_AT: u32 = 50_000;
    // The stream offset of the lost segment and its frame.
    type Lost = Option<(u32, Vec<u8>)>;
    let lost: Arc<Mutex<Lost>> = Arc::default();
    let iss: Arc<Mutex<Option<u32>>> = Arc::default();
    {
        let (lost, iss) = (Arc::clone(&lost), Arc::clone(&iss));
        net.node(CLIENT).ports[0]
            .device_mut()
            .set_drop_filter(Some(Box::new(move |f: &[u8]| {
                let Some(seg) = tcp_seg(f) else { return false };
                let mut iss = iss.lock().unwrap();
                if seg.syn_only() {
                    *iss = Some(seg.seq);
                    return false;
                }
                let Some(iss) = *iss else { return false };
                let off = seg.seq.wrapping_sub(iss).wrapping_sub(1);
                let hit = seg.payload > 0
                    && off <= HOLE_AT
                    && HOLE_AT < off.wrapping_add(seg.payload as u32);
                if hit {
                    lost.lock().unwrap().get_or_insert((off, f.to_vec()));
                }
                hit
            })));
    }
    let (c, s, _) = establish(&mut net, l, Duration::from_secs(1));
    let data = stream(8, 200_000);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    // Send until the hole is known and the server is stuck at it (it holds data
    // beyond), reading all the while.
    for _ in 0..300 {
        if let Ok(n) = net.nodes[CLIENT].stack.tcp_send(c, &data[sent..]) {
            sent += n;
        }
        while let Ok(n) = net.nodes[SERVER].stack.tcp_recv(s, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert!(advance(&mut net, true, None));
    }
    let (hole, frame) = lost.lock().unwrap().clone().expect("the segment was sent");
    assert_eq!(got.len(), hole as usize, "delivered exactly up to the hole");
    assert!(got[..] == data[..hole as usize]);
    assert!(
        sent > hole as usize + 10_000,
        "data beyond the hole was sent"
    );

    // The client aborts. Its RST carries snd_max, not the server's rcv_nxt (the hole):
    // the server answers with a challenge ACK (RFC 5961 §3.2), the client's stack
    // (connection gone) answers that with a RST at exactly rcv_nxt, which resets.
    net.nodes[CLIENT].stack.tcp_abort(c).unwrap();
    let mut reset = false;
    let ok = drive(&mut net, Duration::from_secs(1), |n| {
        let mut acted = false;
        loop {
            match n.nodes[SERVER].stack.tcp_recv(s, &mut buf) {
                Ok(k) if k > 0 => {
                    got.extend_from_slice(&buf[..k]);
                    acted = true;
                }
                Err(TcpError::ConnectionReset) => {
                    reset = true;
                    break;
                }
                _ => break,
            }
        }
        (reset, acted)
    });
    assert!(ok, "server not reset: {:?}", state(&net, SERVER, s));
    assert_eq!(
        got.len(),
        hole as usize,
        "nothing past the hole was delivered"
    );
    assert_eq!(state(&net, SERVER, s), State::Closed);
    assert_eq!(
        net.nodes[SERVER].stack.tcp_error(s),
        Ok(Some(TcpError::ConnectionReset))
    );
    assert_eq!(net.nodes[CLIENT].stack.tcp_connection_count(), 0);

    // The missing segment turns up late: there is no connection for it any more, so it
    // is answered with a reset and its bytes go nowhere.
    let rst = net.nodes[SERVER].stack.stats().tcp_rst_tx;
    net.nodes[SERVER].ports[0].device_mut().inject(&frame);
    run_until(&mut net, Duration::from_millis(10), |_| false);
    assert_eq!(net.nodes[SERVER].stack.stats().tcp_rst_tx, rst + 1);
    assert_eq!(
        net.nodes[SERVER].stack.tcp_recv(s, &mut buf),
        Err(TcpError::ConnectionReset)
    );
    assert_eq!(got.len(), hole as usize);
    net.nodes[SERVER].stack.tcp_close(s).unwrap();
    run_until(&mut net, Duration::from_millis(10), |_| false);
    assert_eq!(counts(&net), (0, 0));
}

/// A network whose server listens on port 80 with these socket options.
fn net_with_server_opts(opts: TcpSocketOptions) -> (Net, TcpListenerHandle) {
    let mut net = clean_hosts();
    let l = net.nodes[SERVER]
        .stack
        .tcp_listen_with(sa("0.0.0.0:80"), 64, opts)
        .unwrap();
    (net, l)
}

#[test]
fn zero_window_for_a_long_time_is_probed_and_survives() {
    let (mut net, l) = net_with_server_opts(TcpSocketOptions {
        rcv_buf: 16 * 1024,
        ..TcpSocketOptions::default()
    });
    let (c, s, _) = establish(&mut net, l, Duration::from_secs(1));
    let data = stream(9, 200_000);
    // The server does not read: the client fills the window and its own buffer.
    let mut sent = 0;
    let ok = drive(&mut net, Duration::from_secs(5), |n| {
        let k = n.nodes[CLIENT]
            .stack
            .tcp_send(c, &data[sent..])
            .unwrap_or(0);
        sent += k;
        let full = n.nodes[CLIENT].stack.tcp_info(c).unwrap().snd_wnd == 0
            && n.nodes[SERVER].stack.tcp_recv_queued(s) == Ok(16 * 1024);
        (full, k > 0)
    });
    assert!(ok, "{:?}", net.nodes[CLIENT].stack.tcp_info(c));
    // From here on every segment the client sends is a one-byte window probe.
    let probes = watch(&mut net, CLIENT, |s| s.payload > 0);
    let mut times = Vec::new();
    let t0 = net.now;
    run_until(&mut net, Duration::from_secs(90), |n| {
        if probes.seen() as usize > times.len() {
            times.push(n.now - t0);
        }
        false
    });
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // RFC 9293 §3.8.6.1 / RFC 6298 backoff: 0.2 s, then doubling (0.4, 0.8, ... 51.2 s).
    assert!(
        (6..=10).contains(&times.len()),
        "probes at {times:?} (gaps {gaps:?})"
    );
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "probe intervals back off: {gaps:?}"
    );
    assert!(
        gaps.last().is_some_and(|g| *g >= Duration::from_secs(20)),
        "{gaps:?}"
    );
    for (n, h) in [(CLIENT, c), (SERVER, s)] {
        assert_eq!(state(&net, n, h), State::Established);
        assert_eq!(net.nodes[n].stack.tcp_error(h), Ok(None));
    }
    assert_eq!(net.nodes[SERVER].stack.tcp_recv_queued(s), Ok(16 * 1024));

    // The server reads again: its window update restarts the transfer at once.
    let t0 = net.now;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let done = drive(&mut net, Duration::from_secs(30), |n| {
        let mut acted = false;
        if sent < data.len() {
            if let Ok(k) = n.nodes[CLIENT].stack.tcp_send(c, &data[sent..]) {
                sent += k;
                acted = k > 0;
            }
        }
        while let Ok(k) = n.nodes[SERVER].stack.tcp_recv(s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
            acted = true;
        }
        (got.len() == data.len(), acted)
    });
    assert!(done, "{} of {} bytes", got.len(), data.len());
    assert!(got == data);
    // The window update goes out at the read: no waiting for the next probe (51 s).
    assert!(
        net.now - t0 < Duration::from_millis(200),
        "{:?}",
        net.now - t0
    );
    close_both(&mut net, c, s);
}

/// Move 1 MB from the client to a server whose receive buffer is `rcv_buf` bytes
/// (smaller than one segment), returning the virtual time it took.
fn tiny_buffer_transfer(rcv_buf: usize) -> Duration {
    let (mut net, l) = net_with_server_opts(TcpSocketOptions {
        rcv_buf,
        ..TcpSocketOptions::default()
    });
    let (c, s, _) = establish(&mut net, l, Duration::from_secs(1));
    let info = net.nodes[SERVER].stack.tcp_info(s).unwrap();
    assert!(info.smss as usize > rcv_buf, "{info:?}");
    assert!(info.rcv_wnd as usize <= rcv_buf, "{info:?}");
    let data = stream(10 + rcv_buf as u64, 1 << 20);
    let t0 = net.now;
    let got = transfer(
        &mut net,
        (CLIENT, c),
        (SERVER, s),
        &data,
        Duration::from_secs(600),
    );
    let took = net.now - t0;
    assert_eq!(got.len(), data.len(), "rcv_buf {rcv_buf}");
    assert!(got == data, "rcv_buf {rcv_buf}");
    assert_eq!(net.nodes[CLIENT].stack.stats().tcp_retransmits, 0);
    close_both(&mut net, c, s);
    took
}

#[test]
fn tiny_receive_buffers_move_a_megabyte_intact() {
    // One window per round trip (2 ms on this link, polled each millisecond): 4096
    // windows of 256 bytes take 8 s, 1024 of 1 KB 2 s. The bounds leave room for that
    // and fail if windows wait for a timer (a 40 ms delayed ACK, a 200 ms persist
    // timeout) instead of a window update.
    for (rcv_buf, bound) in [(256, 30), (1024, 10)] {
        let took = tiny_buffer_transfer(rcv_buf);
        eprintln!("1 MB through a {rcv_buf}-byte receive buffer: {took:?} virtual");
        assert!(took < Duration::from_secs(bound), "{rcv_buf}: {took:?}");
    }
}

#[test]
fn ten_thousand_concurrent_connections() {
    const N: usize = 10_000;
    let started = std::time::Instant::now();
    let mut config = StackConfig::default();
    config.tcp.max_accept_backlog = N;
    config.tcp.syn_backlog = N;
    config.tcp.socket = TcpSocketOptions {
        rcv_buf: 2048,
        snd_buf: 2048,
        ..TcpSocketOptions::default()
    };
    // Every SYN of the first burst must fit the stack's transmit backlog and the link.
    config.tx_backlog = 4 * N;
    let link = LinkConfig {
        capacity: 4 * N,
        pool_frames: 4 * N,
        ..LinkConfig::default()
    };
    let mut net = two_hosts_with(link, config, (1, 2));
    let l = net.nodes[SERVER]
        .stack
        .tcp_listen(sa("0.0.0.0:80"), N)
        .unwrap();
    // Resolve the neighbours first, so no SYN waits in an ARP queue.
    let warm = net.nodes[CLIENT]
        .stack
        .tcp_connect(sa("10.0.0.2:80"))
        .unwrap();
    let warm_s = {
        let mut s = None;
        assert!(run_until(&mut net, Duration::from_secs(2), |n| {
            s = n.nodes[SERVER].stack.tcp_accept(l).ok().map(|x| x.0);
            s.is_some()
        }));
        s.unwrap()
    };
    net.nodes[CLIENT].stack.tcp_abort(warm).unwrap();
    net.nodes[SERVER].stack.tcp_abort(warm_s).unwrap();
    run_until(&mut net, Duration::from_millis(5), |_| false);
    assert_eq!(counts(&net), (0, 0));

    let clients: Vec<TcpHandle> = (0..N)
        .map(|_| {
            net.nodes[CLIENT]
                .stack
                .tcp_connect(sa("10.0.0.2:80"))
                .unwrap()
        })
        .collect();
    assert_eq!(net.nodes[CLIENT].stack.tcp_connection_count(), N);
    // Each request names its connection; the reply echoes it.
    let request = |i: usize| format!("GET /{i:05} please").into_bytes();
    let reply = |req: &[u8]| {
        let mut r = b"200 OK for ".to_vec();
        r.extend_from_slice(req);
        r
    };
    let mut servers: Vec<(TcpHandle, Vec<u8>, bool)> = Vec::with_capacity(N);
    let mut replies: Vec<Vec<u8>> = vec![Vec::new(); N];
    let mut sent = vec![false; N];
    let mut client_done = vec![false; N];
    let mut buf = [0u8; 256];
    let mut done_clients = 0;
    let mut accepted = 0;
    let mut peak = (0, 0);
    let t0 = net.now;
    let ok = drive(&mut net, Duration::from_secs(60), |n| {
        let mut acted = false;
        // Clients: send the request once established, read the reply to EOF, close.
        for i in 0..N {
            if client_done[i] {
                continue;
            }
            let c = clients[i];
            let st = &mut n.nodes[CLIENT].stack;
            if !sent[i] {
                if st.tcp_state(c) == Ok(State::Established) {
                    let req = request(i);
                    assert_eq!(st.tcp_send(c, &req), Ok(req.len()));
                    st.tcp_shutdown(c).unwrap();
                    sent[i] = true;
                    acted = true;
                }
                continue;
            }
            loop {
                match st.tcp_recv(c, &mut buf) {
                    Ok(0) => {
                        st.tcp_close(c).unwrap();
                        client_done[i] = true;
                        done_clients += 1;
                        acted = true;
                        break;
                    }
                    Ok(k) => {
                        replies[i].extend_from_slice(&buf[..k]);
                        acted = true;
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("client {i}: {e:?}"),
                }
            }
        }
        // Server: accept everything, read each request to EOF, reply, close.
        while let Ok((h, _)) = n.nodes[SERVER].stack.tcp_accept(l) {
            servers.push((h, Vec::new(), false));
            accepted += 1;
            acted = true;
        }
        for (h, req, done) in servers.iter_mut() {
            if *done {
                continue;
            }
            let st = &mut n.nodes[SERVER].stack;
            loop {
                match st.tcp_recv(*h, &mut buf) {
                    Ok(0) => {
                        let r = reply(req);
                        assert_eq!(st.tcp_send(*h, &r), Ok(r.len()));
                        st.tcp_close(*h).unwrap();
                        *done = true;
                        acted = true;
                        break;
                    }
                    Ok(k) => {
                        req.extend_from_slice(&buf[..k]);
                        acted = true;
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("server: {e:?}"),
                }
            }
        }
        peak = peak.max(counts(n));
        (done_clients == N, acted)
    });
    let exchanged_in = net.now - t0;
    assert_eq!(peak.0, N, "all client connections open at once");
    assert!(peak.1 >= N / 2, "server peak {}", peak.1);
    assert!(
        ok,
        "{done_clients} of {N} clients done, {accepted} accepted, counts {:?}",
        counts(&net)
    );
    assert_eq!(accepted, N);
    assert!(servers.iter().all(|(_, _, done)| *done));
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(*r, reply(&request(i)), "connection {i}");
    }
    let mut seen: Vec<&[u8]> = servers.iter().map(|(_, req, _)| &req[..]).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), N, "every request arrived once");
    for n in 0..2 {
        let s = net.nodes[n].stack.stats();
        assert_eq!(s.tcp_timeouts, 0, "node {n}: {s:?}");
        assert_eq!(s.tcp_syncookies_sent, 0, "node {n}");
    }
    // The servers closed last (LAST-ACK): their side is gone; the clients wait in
    // TIME-WAIT, then both tables are empty.
    let (cc, sc) = counts(&net);
    assert_eq!(sc, 0);
    assert_eq!(cc, N);
    assert_drains(&mut net);
    eprintln!(
        "{N} connections: exchanged in {exchanged_in:?} virtual, peak tables {peak:?}, {:?} wall in all",
        started.elapsed()
    );
}

/// The same plans over a link with checksum and segmentation offloads
/// (`LinkConfig::offloads`): TSO super-segments, checksums left to the "NIC", and
/// corrupted frames (no longer marked verified) verified and dropped in software.
/// Seeds 0..RUMPNET_SIM_OFFLOAD_SEEDS (default 500).
#[test]
fn many_seeds_with_link_offloads() {
    let n: u64 = std::env::var("RUMPNET_SIM_OFFLOAD_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut failed = Vec::new();
    let (mut bytes, mut frames) = (0, 0);
    for seed in 0..n {
        let mut p = plan(seed);
        p.link.offloads = true;
        match std::panic::catch_unwind(|| run_plan(seed, &p, None)) {
            Ok(Ok(s)) => {
                bytes += s.bytes;
                frames += s.frames;
            }
            Ok(Err(e)) => failed.push(format!("seed {seed}: {e}")),
            Err(_) => failed.push(format!("seed {seed}: panic")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {n} seeds failed with offloads: {}",
        failed.len(),
        failed.join("\n")
    );
    eprintln!("{n} seeds with link offloads: {bytes} bytes in {frames} frames");
    assert!(bytes > 0, "no data moved");
}
