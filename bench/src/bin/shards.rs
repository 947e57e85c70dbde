//! `shards`: the sharded runtime over the in-memory NIC, with 1 and with 2 shards, in
//! run-to-completion and pipelined mode: bulk TCP throughput (8 connections into a
//! discard server) and request/response rate (32 connections, 64-byte messages to an
//! echo server, with p50/p99 latency).
//!
//! The server is a [`Runtime`] whose [`ShardApp`] discards (stream) or echoes (rr) on
//! every shard. Run-to-completion: one in-memory link per shard ([`memnic::multiqueue`]),
//! the peer's side spreading frames over the queues by RSS as a NIC does. Pipelined: one
//! link polled by one I/O thread that steers to the shards by software RSS.
//!
//! The load generator is one plain stack on the main thread, busy-polling the peer's
//! side of the NIC (unpinned). It opens its connections from source ports whose RSS hash
//! spreads them evenly over the shards, so each shard serves the same share. The figures
//! are what the whole loop moved; the server is the part that changes between the rows
//! (shard count, mode), the client is the same. The client does as much TCP work as the
//! server, so a machine needs more CPUs than server threads plus one for the client to
//! show the server's limit; the output says when it has fewer.
//!
//! ```sh
//! cargo run --release -p rumpnet-bench --bin shards
//! cargo run --release -p rumpnet-bench --bin shards -- --duration 2 --json shards.json
//! ```
//!
//! Exits 1 when a case fails (a connection not established, no data moved, a shutdown
//! that hangs).

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use clap::{Parser, ValueEnum};
use serde::Serialize;

use rumpnet_bench::machine::Machine;
use rumpnet_bench::workload::new_histogram;
use rumpnet_runtime::memnic;
use rumpnet_runtime::rss::{Rss, SYMMETRIC_KEY};
use rumpnet_runtime::{IdlePolicy, Mode, Queue, Runtime, RuntimeConfig, ShardApp, ShardCtx};
use rumpnet_stack::device::Device;
use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::link::{self, LinkConfig, LinkEnd};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::tcp::{
    Events, State, TcpError, TcpEvent, TcpHandle, TcpSocketOptions, TcpSocketRef,
};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use rumpnet_stack::{Stack, StackConfig};

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 5001;
const STREAM_CONNS: usize = 8;
const RR_CONNS: usize = 32;
const RR_BYTES: usize = 64;
/// How long connecting (ARP included) and stopping may take.
const SETUP_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Parser)]
#[command(about = "Throughput and request/response rate of the sharded runtime")]
struct Args {
    /// Seconds measured per case, after a warm-up of a fifth of that (0.05 to 600).
    #[arg(long, default_value_t = 3.0, value_parser = parse_duration)]
    duration: f64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Shard counts to run (1 to 64).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2],
          value_parser = clap::value_parser!(u16).range(1..=64))]
    shards: Vec<u16>,
    /// Modes to run.
    #[arg(long, value_delimiter = ',', default_values_t = [ModeArg::Rtc, ModeArg::Pipelined])]
    modes: Vec<ModeArg>,
    /// The shards' idle policy: `adaptive` (the runtime's default: spin, then sleep up
    /// to 1 ms; the in-memory NIC cannot wake a sleeping shard) or `busy` (never sleep).
    #[arg(long, default_value_t = IdleArg::Adaptive)]
    idle: IdleArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum IdleArg {
    Adaptive,
    Busy,
}

impl std::fmt::Display for IdleArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdleArg::Adaptive => "adaptive",
            IdleArg::Busy => "busy",
        })
    }
}

fn parse_duration(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if (0.05..=600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} s is outside 0.05..=600"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Run-to-completion: one NIC queue per shard.
    Rtc,
    /// Pipelined: one I/O thread steering to the shards.
    Pipelined,
}

impl std::fmt::Display for ModeArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModeArg::Rtc => "rtc",
            ModeArg::Pipelined => "pipelined",
        })
    }
}

impl ModeArg {
    fn mode(self) -> Mode {
        match self {
            ModeArg::Rtc => Mode::RunToCompletion,
            ModeArg::Pipelined => Mode::Pipelined,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ModeArg::Rtc => "run-to-completion",
            ModeArg::Pipelined => "pipelined (1 I/O thread)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Workload {
    /// The client sends as fast as it can; the server discards.
    Stream,
    /// Each connection sends 64 bytes and waits for the server's echo.
    Rr,
}

impl Workload {
    fn conns(self) -> usize {
        match self {
            Workload::Stream => STREAM_CONNS,
            Workload::Rr => RR_CONNS,
        }
    }
}

// ---- the server: one per shard ----

/// What a shard's server publishes, once per batch of events (not per segment).
#[derive(Debug, Default)]
struct ShardCounters {
    bytes: AtomicU64,
    accepted: AtomicU64,
    listen_failed: AtomicBool,
}

struct Server {
    workload: Workload,
    counters: Arc<ShardCounters>,
    /// Echo bytes the send buffer had no room for yet, per connection.
    pending: HashMap<TcpHandle, Vec<u8>>,
    buf: Vec<u8>,
}

impl Server {
    /// Read what `h` has; echo it (rr). Returns the bytes read.
    fn serve(&mut self, ctx: &mut ShardCtx<'_>, h: TcpHandle) -> u64 {
        let mut read = 0u64;
        let mut eof = false;
        loop {
            match ctx.stack().tcp_recv(h, &mut self.buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    read += n as u64;
                    if self.workload == Workload::Rr {
                        let pending = self.pending.entry(h).or_default();
                        pending.extend_from_slice(&self.buf[..n]);
                    }
                }
                Err(TcpError::WouldBlock) => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if let Some(pending) = self.pending.get_mut(&h) {
            while !pending.is_empty() {
                match ctx.stack().tcp_send(h, pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(_) => break,
                }
            }
        }
        if eof {
            self.pending.remove(&h);
            let _ = ctx.stack().tcp_close(h);
        }
        read
    }
}

impl ShardApp for Server {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        let local = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT);
        if let Err(e) = ctx.tcp_listen(local, 256) {
            eprintln!("shard {}: listen on {local}: {e:?}", ctx.shard());
            self.counters.listen_failed.store(true, Ordering::Relaxed);
        }
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        let mut bytes = 0;
        for ev in events {
            match ev.socket {
                TcpSocketRef::Listener(l) => {
                    while let Ok((h, _)) = ctx.tcp_accept(l) {
                        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                        bytes += self.serve(ctx, h);
                    }
                }
                TcpSocketRef::Connection(h) => bytes += self.serve(ctx, h),
            }
        }
        if bytes > 0 {
            self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

// ---- the client ----

/// The load generator: a plain stack polled by the main thread with the wall clock.
struct Client<D: Device> {
    stack: Stack,
    port: Port<D>,
    epoch: WallInstant,
    events: Vec<TcpEvent>,
    opts: TcpSocketOptions,
    /// Every connection opened, to close at the end.
    conns: Vec<TcpHandle>,
}

impl<D: Device> Client<D> {
    fn new(dev: D, config: StackConfig) -> Result<Client<D>, String> {
        let opts = config.tcp.socket;
        let mut stack = Stack::new(config, Rand::from_u64(0xc11e47));
        let addr = Ipv4Cidr::new(CLIENT_IP, 24).ok_or("client address")?;
        stack
            .add_interface(InterfaceConfig::new(mac(1), addr))
            .map_err(|e| format!("client interface: {e}"))?;
        Ok(Client {
            stack,
            port: Port::new(dev),
            epoch: WallInstant::now(),
            events: Vec::with_capacity(256),
            opts,
            conns: Vec::new(),
        })
    }

    /// One poll; true if frames moved.
    fn poll(&mut self) -> bool {
        let now = Instant::from_micros(self.epoch.elapsed().as_micros() as u64);
        let r = self.stack.poll(now, std::slice::from_mut(&mut self.port));
        r.rx_frames > 0 || r.tx_frames > 0
    }

    /// Open `n` connections to the server, connection `i` from a source port whose flow
    /// hashes to shard `i % shards`, and wait until all are established (the first
    /// alone, so ARP is resolved before the rest).
    fn connect(&mut self, n: usize, rss: &Rss) -> Result<Vec<TcpHandle>, String> {
        let server = SocketAddrV4::new(SERVER_IP, PORT);
        let deadline = WallInstant::now() + SETUP_LIMIT;
        for i in 0..n {
            let shard = i % rss.shards();
            let h = self
                .stack
                .tcp_connect_with(server, None, self.opts, |p| {
                    rss.shard_of_flow(CLIENT_IP, SERVER_IP, p, PORT) == shard
                })
                .map_err(|e| format!("connect: {e:?}"))?;
            self.conns.push(h);
            if i == 0 || i + 1 == n {
                let conns = self.conns.clone();
                self.wait_established(&conns, deadline)?;
            }
        }
        Ok(self.conns.clone())
    }

    fn wait_established(
        &mut self,
        conns: &[TcpHandle],
        deadline: WallInstant,
    ) -> Result<(), String> {
        loop {
            let mut up = 0;
            for &h in conns {
                match self.stack.tcp_state(h) {
                    Ok(State::Established) => up += 1,
                    Ok(State::SynSent | State::SynReceived) => {}
                    other => return Err(format!("a connection failed: {other:?}")),
                }
            }
            if up == conns.len() {
                return Ok(());
            }
            if WallInstant::now() > deadline {
                return Err(format!("{up} of {} connections established", conns.len()));
            }
            if !self.poll() {
                std::thread::yield_now();
            }
        }
    }
}

fn mac(last: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, last])
}

// ---- one case ----

/// One row of the results.
#[derive(Debug, Clone, Serialize)]
struct CaseResult {
    mode: &'static str,
    shards: usize,
    workload: Workload,
    connections: usize,
    /// Connections each shard accepted.
    per_shard_connections: Vec<u64>,
    seconds: f64,
    /// Stream: payload bytes the server read in the measured window.
    bytes: u64,
    gbit_s: Option<f64>,
    /// Rr: completed request/response pairs in the measured window.
    transactions: u64,
    txn_s: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    /// Frames dropped because a ring was full (over the whole run).
    ring_drops: u64,
}

struct Case {
    idle: IdleArg,
    mode: ModeArg,
    shards: usize,
    workload: Workload,
    duration: Duration,
}

fn stack_config(workload: Workload) -> StackConfig {
    let mut c = StackConfig::default();
    // Request/response: a 64-byte message must not wait for Nagle.
    c.tcp.socket.nodelay = workload == Workload::Rr;
    c
}

fn link_config() -> LinkConfig {
    LinkConfig {
        capacity: 4096,
        pool_frames: 8192,
        ..LinkConfig::default()
    }
}

fn run_case(case: &Case) -> Result<CaseResult, String> {
    match case.mode {
        ModeArg::Rtc => {
            let (wire, ends) = memnic::multiqueue(link_config(), case.shards, &SYMMETRIC_KEY);
            run_case_on(
                case,
                wire,
                ends.into_iter().map(|e| Queue::new(e, 0)).collect(),
            )
        }
        ModeArg::Pipelined => {
            let (peer, rt) = link::pair(link_config());
            run_case_on(case, peer, vec![Queue::new(rt, 0)])
        }
    }
}

fn run_case_on<D: Device>(
    case: &Case,
    peer: D,
    queues: Vec<Queue<LinkEnd>>,
) -> Result<CaseResult, String> {
    let addr = Ipv4Cidr::new(SERVER_IP, 24).ok_or("server address")?;
    let mut config = RuntimeConfig::new(
        case.shards,
        case.mode.mode(),
        InterfaceConfig::new(mac(2), addr),
    );
    config.stack = stack_config(case.workload);
    config.ring_size = 4096;
    config.seed = Some(0x5eed);
    config.drain_timeout = Duration::from_millis(500);
    if case.idle == IdleArg::Busy {
        config.idle = IdlePolicy::BusyPoll;
    }
    let counters: Vec<Arc<ShardCounters>> = (0..case.shards).map(|_| Arc::default()).collect();
    let app_counters = counters.clone();
    let workload = case.workload;
    let rt = Runtime::start(config, queues, move |i| Server {
        workload,
        counters: Arc::clone(&app_counters[i]),
        pending: HashMap::new(),
        buf: vec![0; 64 * 1024],
    })
    .map_err(|e| format!("runtime: {e}"))?;
    if counters
        .iter()
        .any(|c| c.listen_failed.load(Ordering::Relaxed))
    {
        return Err("a shard could not listen".into());
    }
    let mut client = Client::new(peer, stack_config(case.workload))?;
    let measured = client
        .connect(case.workload.conns(), rt.rss())
        .and_then(|conns| match case.workload {
            Workload::Stream => drive_stream(&mut client, &conns, &counters, case.duration),
            Workload::Rr => drive_rr(&mut client, &conns, case.duration),
        });
    // Stop whatever happened: the client keeps answering while the shards close.
    for &h in &client.conns {
        let _ = client.stack.tcp_close(h);
    }
    rt.request_stop();
    let t = WallInstant::now();
    while !rt.is_finished() {
        if t.elapsed() > SETUP_LIMIT {
            return Err("the runtime did not stop".into());
        }
        if !client.poll() {
            std::thread::yield_now();
        }
    }
    let report = rt.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    let m = measured?;
    let secs = m.window.as_secs_f64();
    let per_sec = |n: u64| (n > 0).then(|| n as f64 / secs);
    Ok(CaseResult {
        mode: case.mode.label(),
        shards: case.shards,
        workload: case.workload,
        connections: case.workload.conns(),
        per_shard_connections: counters
            .iter()
            .map(|c| c.accepted.load(Ordering::Relaxed))
            .collect(),
        seconds: secs,
        bytes: m.bytes,
        gbit_s: per_sec(m.bytes).map(|b| b * 8.0 / 1e9),
        transactions: m.transactions,
        txn_s: per_sec(m.transactions),
        p50_us: m.p50_ns.map(|n| n as f64 / 1e3),
        p99_us: m.p99_ns.map(|n| n as f64 / 1e3),
        ring_drops: report.stats.ring_drops(),
    })
}

#[derive(Debug, Default)]
struct Measured {
    window: Duration,
    bytes: u64,
    transactions: u64,
    p50_ns: Option<u64>,
    p99_ns: Option<u64>,
}

fn warmup(d: Duration) -> Duration {
    (d / 5).max(Duration::from_millis(200))
}

/// Keep every connection's send buffer full; the server's counters say what arrived.
fn drive_stream<D: Device>(
    client: &mut Client<D>,
    conns: &[TcpHandle],
    counters: &[Arc<ShardCounters>],
    duration: Duration,
) -> Result<Measured, String> {
    let chunk = vec![0x5a_u8; 64 * 1024];
    let received = || -> u64 {
        counters
            .iter()
            .map(|c| c.bytes.load(Ordering::Relaxed))
            .sum()
    };
    let start = WallInstant::now();
    let measure_from = start + warmup(duration);
    let end = measure_from + duration;
    let mut base: Option<(WallInstant, u64)> = None;
    loop {
        let now = WallInstant::now();
        if base.is_none() && now >= measure_from {
            base = Some((now, received()));
        }
        if now >= end {
            break;
        }
        for &h in conns {
            match client.stack.tcp_send(h, &chunk) {
                Ok(_) | Err(TcpError::WouldBlock) => {}
                Err(e) => return Err(format!("stream send: {e:?}")),
            }
        }
        client.poll();
        client.stack.tcp_events(&mut client.events);
        client.events.clear();
    }
    let (t0, b0) = base.ok_or("no measured window")?;
    let bytes = received() - b0;
    if bytes == 0 {
        return Err("no data arrived in the measured window".into());
    }
    Ok(Measured {
        window: t0.elapsed(),
        bytes,
        ..Measured::default()
    })
}

/// One 64-byte request per connection in flight; the next goes out when the echo of
/// the last is complete.
fn drive_rr<D: Device>(
    client: &mut Client<D>,
    conns: &[TcpHandle],
    duration: Duration,
) -> Result<Measured, String> {
    struct Conn {
        sent_at: WallInstant,
        got: usize,
    }
    let request = [0xa5_u8; RR_BYTES];
    let index: HashMap<TcpHandle, usize> = conns.iter().enumerate().map(|(i, &h)| (h, i)).collect();
    let now = WallInstant::now();
    let mut state: Vec<Conn> = conns
        .iter()
        .map(|_| Conn {
            sent_at: now,
            got: 0,
        })
        .collect();
    for &h in conns {
        if client.stack.tcp_send(h, &request) != Ok(RR_BYTES) {
            return Err("rr: the first request did not fit the send buffer".into());
        }
    }
    let mut hist = new_histogram();
    let mut transactions = 0u64;
    let measure_from = now + warmup(duration);
    let end = measure_from + duration;
    let mut t0: Option<WallInstant> = None;
    let mut buf = [0u8; 4096];
    let mut events = std::mem::take(&mut client.events);
    loop {
        let now = WallInstant::now();
        if t0.is_none() && now >= measure_from {
            t0 = Some(now);
        }
        if now >= end {
            break;
        }
        client.poll();
        client.stack.tcp_events(&mut events);
        let now = WallInstant::now();
        for ev in events.drain(..) {
            let TcpSocketRef::Connection(h) = ev.socket else {
                continue;
            };
            let Some(&i) = index.get(&h) else { continue };
            if ev.events.contains(Events::ERROR | Events::CLOSED) {
                return Err(format!("rr: connection {i} closed"));
            }
            loop {
                match client.stack.tcp_recv(h, &mut buf) {
                    Ok(0) => return Err(format!("rr: connection {i} got EOF")),
                    Ok(n) => state[i].got += n,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => return Err(format!("rr recv: {e:?}")),
                }
            }
            while state[i].got >= RR_BYTES {
                state[i].got -= RR_BYTES;
                if t0.is_some() {
                    let ns = now.duration_since(state[i].sent_at).as_nanos();
                    hist.saturating_record(u64::try_from(ns).unwrap_or(u64::MAX));
                    transactions += 1;
                }
                if state[i].got == 0 {
                    if client.stack.tcp_send(h, &request) != Ok(RR_BYTES) {
                        return Err("rr: a request did not fit the send buffer".into());
                    }
                    state[i].sent_at = now;
                }
            }
        }
    }
    client.events = events;
    let t0 = t0.ok_or("no measured window")?;
    if transactions == 0 {
        return Err("no transaction completed in the measured window".into());
    }
    Ok(Measured {
        window: t0.elapsed(),
        transactions,
        p50_ns: Some(hist.value_at_quantile(0.5)),
        p99_ns: Some(hist.value_at_quantile(0.99)),
        ..Measured::default()
    })
}

// ---- output ----

#[derive(Debug, Serialize)]
struct Output<'a> {
    machine: &'a Machine,
    idle: IdleArg,
    duration_s: f64,
    results: &'a [CaseResult],
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn print_tables(results: &[CaseResult]) {
    println!("\nStream: {STREAM_CONNS} connections, client → server (discard)\n");
    println!("| mode | shards | Gbit/s | connections per shard |");
    println!("|---|---:|---:|---|");
    for r in results.iter().filter(|r| r.workload == Workload::Stream) {
        println!(
            "| {} | {} | {} | {:?} |",
            r.mode,
            r.shards,
            fmt_opt(r.gbit_s, 2),
            r.per_shard_connections
        );
    }
    println!("\nRequest/response: {RR_CONNS} connections, {RR_BYTES}-byte messages (echo)\n");
    println!("| mode | shards | txn/s | p50 µs | p99 µs | connections per shard |");
    println!("|---|---:|---:|---:|---:|---|");
    for r in results.iter().filter(|r| r.workload == Workload::Rr) {
        println!(
            "| {} | {} | {} | {} | {} | {:?} |",
            r.mode,
            r.shards,
            fmt_opt(r.txn_s, 0),
            fmt_opt(r.p50_us, 1),
            fmt_opt(r.p99_us, 1),
            r.per_shard_connections
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut machine = Machine::probe();
    let duration = Duration::from_secs_f64(args.duration);
    let max_shards = args.shards.iter().copied().max().map_or(1, usize::from);
    println!(
        "machine: {}, {} CPUs, kernel {}, {} build, {}",
        machine.cpu, machine.cores, machine.kernel, machine.build, machine.date
    );
    println!(
        "load average at start: {:.2} (other work on the machine shows up in every figure)",
        machine.load_before
    );
    if machine.cores < max_shards + 2 {
        println!(
            "note: {} CPUs for up to {max_shards} shards, the pipelined mode's I/O thread and \
             the client: threads share CPUs, so more shards cannot scale here",
            machine.cores
        );
    }
    if machine.load_before >= 0.5 {
        println!(
            "note: this machine is shared with other users' work (load {:.2} on {} CPUs): \
             run it on a quiet machine for figures to compare",
            machine.load_before, machine.cores
        );
    }
    println!(
        "each case: {:.1} s warm-up, {:.1} s measured; shards' idle policy: {}; \
         the client is one stack busy-polling on the main thread",
        warmup(duration).as_secs_f64(),
        duration.as_secs_f64(),
        args.idle
    );
    let mut results = Vec::new();
    let mut failed = false;
    for workload in [Workload::Stream, Workload::Rr] {
        for &mode in &args.modes {
            for &shards in &args.shards {
                let case = Case {
                    idle: args.idle,
                    mode,
                    shards: usize::from(shards),
                    workload,
                    duration,
                };
                match run_case(&case) {
                    Ok(r) => {
                        println!(
                            "{:?} {} {} shard(s): {}",
                            workload,
                            mode,
                            shards,
                            match workload {
                                Workload::Stream => format!("{} Gbit/s", fmt_opt(r.gbit_s, 2)),
                                Workload::Rr => format!(
                                    "{} txn/s, p50 {} µs, p99 {} µs",
                                    fmt_opt(r.txn_s, 0),
                                    fmt_opt(r.p50_us, 1),
                                    fmt_opt(r.p99_us, 1)
                                ),
                            }
                        );
                        if r.ring_drops > 0 {
                            println!("  ({} frames dropped at full rings)", r.ring_drops);
                        }
                        results.push(r);
                    }
                    Err(e) => {
                        eprintln!("{workload:?} {mode} {shards} shard(s): FAILED: {e}");
                        failed = true;
                    }
                }
            }
        }
    }
    machine.finish();
    print_tables(&results);
    println!("\nload average at the end: {:.2}", machine.load_after);
    if let Some(path) = &args.json {
        let out = Output {
            machine: &machine,
            idle: args.idle,
            duration_s: args.duration,
            results: &results,
        };
        let written = serde_json::to_string_pretty(&out)
            .map_err(|e| e.to_string())
            .and_then(|s| std::fs::write(path, s + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::from(1);
        }
        println!("results written to {}", path.display());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
