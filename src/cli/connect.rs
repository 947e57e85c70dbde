//! `rumpnet connect`: the stack as a client, on any backend (`tap`, `dpdk`, `netmap`).
//!
//! It opens the device like `serve` does (same device flags and config keys) and runs
//! one of three clients against IPV4:PORT, then exits (code 1 with one line if it fails):
//!
//! - one TCP connection (the default): it sends a seeded pseudo-random stream while
//!   reading whatever the peer sends, half-closes when everything is sent and finishes
//!   at the peer's EOF. It prints byte counts, a CRC-32 of each direction and the time
//!   taken, so a test (or a person with a Linux echo server) can check both directions.
//!   With `--verify-echo` the received bytes must be exactly the sent ones.
//! - `--conns N`: N TCP connections to an echo server at once, each sending its own
//!   seeded stream (`--seed` + its index) and checking the echo byte for byte; every
//!   connection stays open until all are checked, so N are established together, then
//!   all close. At most `--parallel` are in their handshake at a time, so a burst of
//!   SYNs stays within the peer's SYN backlog.
//! - `--udp`: datagrams of sizes spread over `--sizes` to a UDP echo server, at most
//!   `--window` outstanding, each waited for at most `--udp-timeout-ms` and compared
//!   byte for byte with what was sent. Loss fails the run unless `--max-loss` allows it
//!   (for links that may drop; memif and TAP do not).
//!
//! The stream is the little-endian bytes of `Rand::from_u64(seed).next_u64()`, one
//! after the other: any program with the stack's `Rand` can regenerate it.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::time::Instant as StdInstant;

use clap::Args;

use rumpnet::stack::rand::Rand;
use rumpnet::stack::tcp::{State, TcpError, TcpHandle};
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::udp::{UdpError, UdpHandle, UdpSocketOptions};
use rumpnet::stack::Stack;

use super::config::{FileConfig, ServeOptions};
use super::serve::{run_on_backend, stop_on_signals, DeviceArgs, StackApp};

/// Bytes each connection sends when `--send` is not given: one connection, and
/// `--conns`.
const SEND_ONE: u64 = 16 << 20;
const SEND_MANY: u64 = 4096;

/// Largest UDP payload in one IPv4 datagram (65,535 - 20 - 8).
const UDP_MAX: usize = 65_507;

/// Options of `rumpnet connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Where to connect.
    #[arg(value_name = "IPV4:PORT")]
    pub remote: SocketAddrV4,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Bytes to send before half-closing, per connection [default: 16777216; with
    /// --conns: 4096].
    #[arg(long, value_name = "BYTES")]
    pub send: Option<u64>,
    /// Seed of the pseudo-random stream sent (connection i of --conns: seed + i; --udp:
    /// of the datagrams' contents).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Fail unless exactly this many bytes arrive before the peer's EOF.
    #[arg(long, value_name = "BYTES", conflicts_with_all = ["conns", "udp"])]
    pub expect: Option<u64>,
    /// Fail unless what arrives is exactly what was sent (the peer is an echo server).
    #[arg(long, conflicts_with = "udp")]
    pub verify_echo: bool,
    /// Open N connections to an echo server at once, each checking its echo byte for
    /// byte; all stay open until every one is checked. Exit 1 if any fails.
    #[arg(long, value_name = "N", conflicts_with = "udp",
          value_parser = clap::value_parser!(u32).range(1..=MAX_CONNS as i64))]
    pub conns: Option<u32>,
    /// With --conns: at most this many connections in their handshake at once.
    #[arg(long, value_name = "N", default_value_t = 128, requires = "conns",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub parallel: u32,
    /// UDP echo client: send --datagrams datagrams and check each echo.
    #[arg(long)]
    pub udp: bool,
    /// With --udp: how many datagrams.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "udp",
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub datagrams: u32,
    /// With --udp: datagram payload sizes, spread over MIN-MAX bytes (over the MTU:
    /// fragmented) [default: 1-1472].
    #[arg(long, value_name = "MIN-MAX", requires = "udp")]
    pub sizes: Option<SizeRange>,
    /// With --udp: datagrams outstanding at once (the first goes alone, so the
    /// peer's address is resolved before the window opens).
    #[arg(long, value_name = "N", default_value_t = 16, requires = "udp",
          value_parser = clap::value_parser!(u32).range(1..=MAX_WINDOW as i64))]
    pub window: u32,
    /// With --udp: how long to wait for each echo before counting it lost.
    #[arg(long, value_name = "MS", default_value_t = 1000, requires = "udp",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub udp_timeout_ms: u64,
    /// With --udp: the loss accepted, in percent of the datagrams (0: every echo must
    /// come back; only for links that may drop).
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0, requires = "udp")]
    pub max_loss: f64,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

/// Most connections `--conns` opens (the ephemeral ports of one address, with room).
pub const MAX_CONNS: u32 = 60_000;
/// Most datagrams `--udp` keeps outstanding.
pub const MAX_WINDOW: u32 = 1024;

/// `--sizes MIN-MAX` (or one size, `N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min: usize,
    pub max: usize,
}

impl Default for SizeRange {
    fn default() -> Self {
        SizeRange { min: 1, max: 1472 }
    }
}

impl FromStr for SizeRange {
    type Err = String;

    fn from_str(s: &str) -> Result<SizeRange, String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let parse = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|e| format!("{t:?}: {e} (give MIN-MAX bytes, e.g. 1-1472)"))
        };
        let (min, max) = (parse(a)?, parse(b)?);
        if min > max {
            return Err(format!("{min}-{max}: MIN is larger than MAX"));
        }
        if max > UDP_MAX {
            return Err(format!(
                "{max} bytes: a UDP datagram carries at most {UDP_MAX}"
            ));
        }
        Ok(SizeRange { min, max })
    }
}

impl ConnectArgs {
    /// The device options (config file overlaid with the flags), checked.
    pub fn options(&self) -> Result<ServeOptions, String> {
        if self.remote.port() == 0 || self.remote.ip().is_unspecified() {
            return Err(format!("{}: not an address to connect to", self.remote));
        }
        if self.timeout == 0 {
            return Err("--timeout 0: give at least one second".into());
        }
        if !(0.0..=100.0).contains(&self.max_loss) {
            return Err(format!(
                "--max-loss {}: a percentage, 0 to 100",
                self.max_loss
            ));
        }
        self.device.options(FileConfig::default())
    }
}

/// The seeded stream, generated block by block (blocks are whole `u64`s, so the
/// stream does not depend on how it is cut).
struct Stream {
    rand: Rand,
    block: Vec<u8>,
    pos: usize,
}

impl Stream {
    const BLOCK: usize = 64 * 1024;

    fn new(seed: u64) -> Stream {
        Stream::for_bytes(seed, Self::BLOCK as u64)
    }

    /// The stream of `seed` with a block just large enough for `bytes` (whole `u64`s,
    /// at most [`Stream::BLOCK`]): a thousand short connections need no 64 KiB each.
    fn for_bytes(seed: u64, bytes: u64) -> Stream {
        let block = usize::try_from(bytes.max(8).div_ceil(8) * 8)
            .unwrap_or(Self::BLOCK)
            .min(Self::BLOCK);
        Stream {
            rand: Rand::from_u64(seed),
            block: vec![0; block],
            pos: block,
        }
    }

    /// The next bytes of the stream, at most `max` (at least one if `max > 0`); they
    /// stay current until `advance`.
    fn peek(&mut self, max: usize) -> &[u8] {
        if self.pos == self.block.len() {
            self.rand.fill(&mut self.block);
            self.pos = 0;
        }
        let end = self.block.len().min(self.pos + max);
        &self.block[self.pos..end]
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
    }
}

/// CRC-32 of IEEE 802.3 (zlib's `crc32`, `python3 -c 'import zlib'`, the gzip trailer):
/// anyone can recompute it on the other end to check a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32 {
    state: u32,
}

/// The byte-wise table of the reflected polynomial 0xedb88320.
const CRC32_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Default for Crc32 {
    fn default() -> Self {
        Crc32 { state: !0 }
    }
}

impl Crc32 {
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.state;
        for &b in data {
            c = CRC32_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.state = c;
    }

    pub fn value(&self) -> u32 {
        !self.state
    }
}

impl fmt::Display for Crc32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.value())
    }
}

/// The client, driven from the stack's loop.
struct Client {
    remote: SocketAddrV4,
    handle: Option<TcpHandle>,
    timeout: Duration,
    deadline: Instant,
    started: Option<StdInstant>,
    connected_after: Option<std::time::Duration>,
    to_send: u64,
    sent: u64,
    sent_hash: Crc32,
    shut: bool,
    tx: Stream,
    /// The stream again, to compare the echo with (`--verify-echo`).
    echo: Option<Stream>,
    received: u64,
    recv_hash: Crc32,
    eof: bool,
    buf: Vec<u8>,
}

impl StackApp for Client {
    fn start(&mut self, _stack: &mut Stack, _opts: &ServeOptions) -> Result<(), String> {
        Ok(())
    }

    fn run(&mut self, stack: &mut Stack, now: Instant) -> Result<bool, String> {
        let h = match self.handle {
            Some(h) => h,
            None => {
                // Connect after the first poll, so the stack's clock is running.
                self.deadline = now.saturating_add(self.timeout);
                self.started = Some(StdInstant::now());
                let h = stack
                    .tcp_connect(self.remote)
                    .map_err(|e| format!("connect to {}: {e}", self.remote))?;
                self.handle = Some(h);
                h
            }
        };
        if now >= self.deadline {
            return Err(format!(
                "timed out: sent {} of {} bytes, received {} bytes{}",
                self.sent,
                self.to_send,
                self.received,
                if self.connected_after.is_none() {
                    ", never connected"
                } else {
                    ""
                }
            ));
        }
        if let Some(e) = stack.tcp_error(h).map_err(|e| e.to_string())? {
            return Err(if self.connected_after.is_none() {
                format!("connect to {}: {e}", self.remote)
            } else {
                format!(
                    "{e} after sending {} and receiving {} bytes",
                    self.sent, self.received
                )
            });
        }
        let state = stack.tcp_state(h).map_err(|e| e.to_string())?;
        if matches!(state, State::SynSent | State::SynReceived) {
            return Ok(false);
        }
        if self.connected_after.is_none() {
            self.connected_after = self.started.map(|t| t.elapsed());
            let info = stack.tcp_info(h).map_err(|e| e.to_string())?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "connected {} -> {}", info.local, info.remote);
            let _ = out.flush();
        }
        self.send(stack, h)?;
        self.recv(stack, h)?;
        if self.eof && self.shut {
            stack.tcp_close(h).map_err(|e| e.to_string())?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Client {
    fn send(&mut self, stack: &mut Stack, h: TcpHandle) -> Result<(), String> {
        while self.sent < self.to_send {
            let left = usize::try_from(self.to_send - self.sent).unwrap_or(usize::MAX);
            let chunk = self.tx.peek(left);
            match stack.tcp_send(h, chunk) {
                Ok(n) => {
                    self.sent_hash.update(&chunk[..n]);
                    self.tx.advance(n);
                    self.sent += n as u64;
                }
                Err(TcpError::WouldBlock) => return Ok(()),
                Err(e) => return Err(format!("send after {} bytes: {e}", self.sent)),
            }
        }
        if !self.shut {
            stack
                .tcp_shutdown(h)
                .map_err(|e| format!("shutdown: {e}"))?;
            self.shut = true;
        }
        Ok(())
    }

    fn recv(&mut self, stack: &mut Stack, h: TcpHandle) -> Result<(), String> {
        while !self.eof {
            let n = match stack.tcp_recv(h, &mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => return Err(format!("receive after {} bytes: {e}", self.received)),
            };
            let data = &self.buf[..n];
            self.recv_hash.update(data);
            if let Some(expect) = &mut self.echo {
                let mut off = 0;
                while off < n {
                    let want = expect.peek(n - off);
                    let k = want.len();
                    if self.received + off as u64 + k as u64 > self.sent {
                        return Err(format!(
                            "the peer sent more than was sent to it ({} bytes)",
                            self.sent
                        ));
                    }
                    if let Some(i) = want
                        .iter()
                        .zip(&data[off..off + k])
                        .position(|(a, b)| a != b)
                    {
                        return Err(format!(
                            "echo differs from what was sent at byte {}",
                            self.received + (off + i) as u64
                        ));
                    }
                    expect.advance(k);
                    off += k;
                }
            }
            self.received += n as u64;
        }
        Ok(())
    }
}

/// Run `connect`: one connection, then exit. The report is what to print on success.
pub fn run(args: &ConnectArgs, opts: ServeOptions) -> Result<String, String> {
    if opts.cores.len() > 1 {
        return Err("--cores: `connect` runs one stack on one thread; give at most one CPU".into());
    }
    if let Some(n) = args.conns {
        return run_many(args, n, opts);
    }
    if args.udp {
        return run_udp(args, opts);
    }
    let stop = stop_on_signals()?;
    let mut client = Client {
        remote: args.remote,
        handle: None,
        timeout: Duration::from_secs(args.timeout),
        deadline: Instant::ZERO,
        started: None,
        connected_after: None,
        to_send: args.send.unwrap_or(SEND_ONE),
        sent: 0,
        sent_hash: Crc32::default(),
        shut: false,
        tx: Stream::new(args.seed),
        echo: args.verify_echo.then(|| Stream::new(args.seed)),
        received: 0,
        recv_hash: Crc32::default(),
        eof: false,
        buf: vec![0; 256 * 1024],
    };
    run_on_backend(&opts, &mut client, &stop)?;
    let Some(started) = client.started else {
        return Err("interrupted before connecting".into());
    };
    if !(client.eof && client.shut) {
        return Err(format!(
            "interrupted after sending {} and receiving {} bytes",
            client.sent, client.received
        ));
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(n) = args.expect {
        if client.received != n {
            return Err(format!(
                "received {} bytes before EOF, expected {n}",
                client.received
            ));
        }
    }
    if args.verify_echo && client.received != client.sent {
        return Err(format!(
            "the echo stopped at {} of {} bytes",
            client.received, client.sent
        ));
    }
    let mbit = |b: u64| b as f64 * 8.0 / elapsed.max(1e-9) / 1e6;
    Ok(format!(
        "sent={} sent_crc32={} received={} received_crc32={} echo={} elapsed_s={:.3} connect_ms={:.3} send_mbit_s={:.1} recv_mbit_s={:.1}",
        client.sent,
        client.sent_hash,
        client.received,
        client.recv_hash,
        if args.verify_echo { "verified" } else { "unchecked" },
        elapsed,
        client
            .connected_after
            .map_or(0.0, |d| d.as_secs_f64() * 1e3),
        mbit(client.sent),
        mbit(client.received),
    ))
}

// ------------------------------------------------------------------ --conns

/// Where one of `--conns`'s connections is.
#[derive(Debug)]
enum Phase {
    /// Not opened yet.
    Waiting,
    /// SYN sent, not established yet.
    Connecting,
    /// Sending its stream and checking the echo.
    Echoing,
    /// Its whole echo arrived and matched; open until every connection is here.
    Verified,
    /// Half-closed, waiting for the peer's EOF.
    Closing,
    /// Closed after a clean EOF.
    Done,
    /// Gave up on it (the reason is kept).
    Failed(String),
}

/// One connection of `--conns`.
struct Conn {
    phase: Phase,
    handle: Option<TcpHandle>,
    sent: u64,
    received: u64,
    /// The stream it sends and the same stream to check the echo against, while
    /// echoing (dropped once verified, so held connections cost no buffers here).
    streams: Option<(Stream, Stream)>,
    opened: Option<StdInstant>,
    /// Its handshake completed.
    established: bool,
}

/// `--conns`: many connections at once, each an echo checked byte for byte.
struct ManyClient {
    remote: SocketAddrV4,
    seed: u64,
    per_conn: u64,
    parallel: usize,
    timeout: Duration,
    deadline: Option<Instant>,
    started: Option<StdInstant>,
    conns: Vec<Conn>,
    /// Next connection to open.
    next: usize,
    /// Connections in their handshake now.
    connecting: usize,
    /// Established and not yet closing, now and at most.
    open: usize,
    peak_open: usize,
    /// Indices of connections that may need work (not waiting, verified, done or failed).
    active: Vec<usize>,
    verified: usize,
    failed: usize,
    /// Every connection was verified (or failed): the closing phase began.
    released: bool,
    connect_ms: Vec<f64>,
    buf: Vec<u8>,
}

impl ManyClient {
    fn new(args: &ConnectArgs, n: u32) -> ManyClient {
        let n = n as usize;
        ManyClient {
            remote: args.remote,
            seed: args.seed,
            per_conn: args.send.unwrap_or(SEND_MANY),
            parallel: args.parallel as usize,
            timeout: Duration::from_secs(args.timeout),
            deadline: None,
            started: None,
            conns: (0..n)
                .map(|_| Conn {
                    phase: Phase::Waiting,
                    handle: None,
                    sent: 0,
                    received: 0,
                    streams: None,
                    opened: None,
                    established: false,
                })
                .collect(),
            next: 0,
            connecting: 0,
            open: 0,
            peak_open: 0,
            active: Vec::with_capacity(n),
            verified: 0,
            failed: 0,
            released: false,
            connect_ms: Vec::with_capacity(n),
            buf: vec![0; 64 * 1024],
        }
    }

    fn fail(&mut self, stack: &mut Stack, i: usize, why: String) {
        let c = &mut self.conns[i];
        match c.phase {
            Phase::Connecting => self.connecting -= 1,
            Phase::Echoing | Phase::Verified => self.open -= 1,
            _ => {}
        }
        if matches!(c.phase, Phase::Verified) {
            self.verified -= 1;
        }
        if let Some(h) = c.handle.take() {
            // Gone already when the stack reported the error; an abort frees it either way.
            let _ = stack.tcp_abort(h);
        }
        c.streams = None;
        c.phase = Phase::Failed(why);
        self.failed += 1;
    }

    /// Open connections while fewer than `--parallel` are in their handshake. The first
    /// goes alone: until the peer's MAC is resolved the stack holds only a few frames
    /// for it (a burst of SYNs would mostly wait out a retransmission timeout).
    fn open_more(&mut self, stack: &mut Stack) {
        let parallel = if self.connect_ms.is_empty() && self.failed == 0 {
            1
        } else {
            self.parallel
        };
        while self.connecting < parallel && self.next < self.conns.len() {
            let i = self.next;
            self.next += 1;
            match stack.tcp_connect(self.remote) {
                Ok(h) => {
                    let c = &mut self.conns[i];
                    c.handle = Some(h);
                    c.phase = Phase::Connecting;
                    c.opened = Some(StdInstant::now());
                    self.connecting += 1;
                    self.active.push(i);
                }
                Err(e) => self.fail(stack, i, format!("connect: {e}")),
            }
        }
    }

    /// Move connection `i` on; whether it still needs the loop's attention.
    fn step(&mut self, stack: &mut Stack, i: usize) -> bool {
        let Some(h) = self.conns[i].handle else {
            return false;
        };
        match stack.tcp_error(h) {
            Ok(None) => {}
            Ok(Some(e)) => {
                let c = &self.conns[i];
                let why = format!(
                    "{e} ({}, after sending {} and receiving {} bytes)",
                    phase_name(&c.phase),
                    c.sent,
                    c.received
                );
                self.fail(stack, i, why);
                return false;
            }
            Err(e) => {
                self.fail(stack, i, e.to_string());
                return false;
            }
        }
        if matches!(self.conns[i].phase, Phase::Connecting) {
            match stack.tcp_state(h) {
                Ok(State::SynSent | State::SynReceived) => return true,
                Ok(_) => {}
                Err(e) => {
                    self.fail(stack, i, e.to_string());
                    return false;
                }
            }
            self.connecting -= 1;
            self.open += 1;
            self.peak_open = self.peak_open.max(self.open);
            let c = &mut self.conns[i];
            c.established = true;
            if let Some(t) = c.opened {
                self.connect_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let seed = self.seed.wrapping_add(i as u64);
            c.streams = Some((
                Stream::for_bytes(seed, self.per_conn),
                Stream::for_bytes(seed, self.per_conn),
            ));
            c.phase = Phase::Echoing;
        }
        match self.conns[i].phase {
            Phase::Echoing => match self.echo(stack, i, h) {
                Ok(true) => {
                    let c = &mut self.conns[i];
                    c.phase = Phase::Verified;
                    c.streams = None;
                    self.verified += 1;
                    false
                }
                Ok(false) => true,
                Err(why) => {
                    self.fail(stack, i, why);
                    false
                }
            },
            Phase::Closing => match self.drain(stack, h) {
                Ok(true) => {
                    let _ = stack.tcp_close(h);
                    let c = &mut self.conns[i];
                    c.handle = None;
                    c.phase = Phase::Done;
                    false
                }
                Ok(false) => true,
                Err(why) => {
                    self.fail(stack, i, why);
                    false
                }
            },
            _ => false,
        }
    }

    /// Send what fits and check what came back; `Ok(true)` once the whole echo matched.
    fn echo(&mut self, stack: &mut Stack, i: usize, h: TcpHandle) -> Result<bool, String> {
        let c = &mut self.conns[i];
        let Some((tx, expect)) = c.streams.as_mut() else {
            return Ok(true);
        };
        while c.sent < self.per_conn {
            let left = usize::try_from(self.per_conn - c.sent).unwrap_or(usize::MAX);
            let chunk = tx.peek(left);
            match stack.tcp_send(h, chunk) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => {
                    tx.advance(n);
                    c.sent += n as u64;
                }
                Err(e) => return Err(format!("send after {} bytes: {e}", c.sent)),
            }
        }
        loop {
            let n = match stack.tcp_recv(h, &mut self.buf) {
                Ok(0) => {
                    return Err(format!(
                        "the peer closed after echoing {} of {} bytes",
                        c.received, self.per_conn
                    ))
                }
                Ok(n) => n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => return Err(format!("receive after {} bytes: {e}", c.received)),
            };
            let data = &self.buf[..n];
            if c.received + n as u64 > c.sent {
                return Err(format!(
                    "the peer sent more than was sent to it ({} bytes)",
                    c.sent
                ));
            }
            let mut off = 0;
            while off < n {
                let want = expect.peek(n - off);
                let k = want.len();
                if let Some(j) = want
                    .iter()
                    .zip(&data[off..off + k])
                    .position(|(a, b)| a != b)
                {
                    return Err(format!(
                        "echo differs from what was sent at byte {}",
                        c.received + (off + j) as u64
                    ));
                }
                expect.advance(k);
                off += k;
            }
            c.received += n as u64;
        }
        Ok(c.received == self.per_conn && c.sent == self.per_conn)
    }

    /// After the half-close: read to the peer's EOF; nothing more may arrive.
    fn drain(&mut self, stack: &mut Stack, h: TcpHandle) -> Result<bool, String> {
        match stack.tcp_recv(h, &mut self.buf) {
            Ok(0) => Ok(true),
            Ok(n) => Err(format!(
                "{n} bytes more than the echo arrived after the half-close"
            )),
            Err(TcpError::WouldBlock) => Ok(false),
            Err(e) => Err(format!("waiting for the peer's EOF: {e}")),
        }
    }

    /// Every connection verified or failed: half-close all the verified ones.
    fn release(&mut self, stack: &mut Stack) {
        self.released = true;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            if !matches!(c.phase, Phase::Verified) {
                continue;
            }
            let Some(h) = c.handle else { continue };
            c.phase = Phase::Closing;
            self.open -= 1;
            if let Err(e) = stack.tcp_shutdown(h) {
                self.fail(stack, i, format!("shutdown: {e}"));
                // Counted as verified before: it was, but it did not close cleanly.
                continue;
            }
            self.active.push(i);
        }
    }

    /// The deadline passed: everything unfinished fails, with where it was.
    fn give_up(&mut self, stack: &mut Stack) {
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if matches!(c.phase, Phase::Done | Phase::Failed(_)) {
                continue;
            }
            let why = format!(
                "timed out ({}, sent {} and received {} bytes)",
                phase_name(&c.phase),
                c.sent,
                c.received
            );
            if matches!(c.phase, Phase::Waiting) {
                self.conns[i].phase = Phase::Failed(why);
                self.failed += 1;
            } else {
                self.fail(stack, i, why);
            }
        }
        self.active.clear();
    }

    fn finished(&self) -> bool {
        self.released && self.active.is_empty()
    }

    /// The `key=value` line of the outcome.
    fn report(&self) -> String {
        let elapsed = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let opened = self.conns.iter().filter(|c| c.established).count();
        let done = self
            .conns
            .iter()
            .filter(|c| matches!(c.phase, Phase::Done))
            .count();
        let sent: u64 = self.conns.iter().map(|c| c.sent).sum();
        let received: u64 = self.conns.iter().map(|c| c.received).sum();
        let mut ms = self.connect_ms.clone();
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| {
            ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        format!(
            "conns={} opened={opened} verified={} closed={done} failed={} peak_open={} sent={sent} received={received} echo={} elapsed_s={elapsed:.3} connect_ms_p50={:.3} connect_ms_max={:.3}",
            self.conns.len(),
            self.verified,
            self.failed,
            self.peak_open,
            if self.failed == 0 { "verified" } else { "failed" },
            q(0.5),
            q(1.0),
        )
    }
}

fn phase_name(p: &Phase) -> &'static str {
    match p {
        Phase::Waiting => "not opened",
        Phase::Connecting => "in the handshake",
        Phase::Echoing => "echoing",
        Phase::Verified => "verified, held open",
        Phase::Closing => "closing",
        Phase::Done => "closed",
        Phase::Failed(_) => "failed",
    }
}

impl StackApp for ManyClient {
    fn start(&mut self, _stack: &mut Stack, _opts: &ServeOptions) -> Result<(), String> {
        Ok(())
    }

    fn run(&mut self, stack: &mut Stack, now: Instant) -> Result<bool, String> {
        let deadline = *self.deadline.get_or_insert_with(|| {
            // The first call: the stack's clock runs from here.
            self.started = Some(StdInstant::now());
            now.saturating_add(self.timeout)
        });
        if now >= deadline {
            self.give_up(stack);
            self.released = true;
            return Ok(true);
        }
        self.open_more(stack);
        let mut k = 0;
        while k < self.active.len() {
            let i = self.active[k];
            if self.step(stack, i) {
                k += 1;
            } else {
                self.active.swap_remove(k);
            }
        }
        // Slots freed by handshakes that completed: open the next ones now.
        self.open_more(stack);
        if !self.released
            && self.next == self.conns.len()
            && self.active.is_empty()
            && self.verified + self.failed == self.conns.len()
        {
            self.release(stack);
        }
        Ok(self.finished())
    }
}

/// `connect --conns N`.
fn run_many(args: &ConnectArgs, n: u32, opts: ServeOptions) -> Result<String, String> {
    let stop = stop_on_signals()?;
    let mut client = ManyClient::new(args, n);
    run_on_backend(&opts, &mut client, &stop)?;
    let report = client.report();
    if !client.finished() {
        return Err(format!("interrupted: {report}"));
    }
    if client.failed > 0 {
        let (i, why) = client
            .conns
            .iter()
            .enumerate()
            .find_map(|(i, c)| match &c.phase {
                Phase::Failed(w) => Some((i, w.as_str())),
                _ => None,
            })
            .unwrap_or((0, "?"));
        return Err(format!(
            "{} of {n} connections failed (the first: connection {i}: {why}); {report}",
            client.failed
        ));
    }
    Ok(report)
}

// ------------------------------------------------------------------ --udp

/// A datagram waiting for its echo.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    seq: u64,
    len: usize,
    sent_at: Instant,
    sent_wall: StdInstant,
}

/// How long the first datagram may wait for its echo: address resolution with retries.
const FIRST_DATAGRAM_WAIT: Duration = Duration::from_secs(5);

/// Datagrams counted lost that are still recognised if their echo turns up late.
const LATE_MEMORY: usize = 256;

/// `--udp`: datagrams to an echo server, each echo checked byte for byte.
struct UdpClient {
    remote: SocketAddrV4,
    seed: u64,
    count: u64,
    sizes: SizeRange,
    window: usize,
    wait: Duration,
    timeout: Duration,
    deadline: Option<Instant>,
    started: Option<StdInstant>,
    handle: Option<UdpHandle>,
    next: u64,
    outstanding: Vec<Outstanding>,
    /// Lost (timed-out) datagrams, newest last, at most [`LATE_MEMORY`].
    expired: VecDeque<(u64, usize)>,
    sent: u64,
    received: u64,
    verified: u64,
    lost: u64,
    late: u64,
    bad: u64,
    foreign: u64,
    bytes: u64,
    rtt_us: Vec<f64>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl UdpClient {
    fn new(args: &ConnectArgs) -> UdpClient {
        let sizes = args.sizes.unwrap_or_default();
        UdpClient {
            remote: args.remote,
            seed: args.seed,
            count: u64::from(args.datagrams),
            sizes,
            window: args.window as usize,
            wait: Duration::from_millis(args.udp_timeout_ms),
            timeout: Duration::from_secs(args.timeout),
            deadline: None,
            started: None,
            handle: None,
            next: 0,
            outstanding: Vec::with_capacity(args.window as usize),
            expired: VecDeque::with_capacity(LATE_MEMORY),
            sent: 0,
            received: 0,
            verified: 0,
            lost: 0,
            late: 0,
            bad: 0,
            foreign: 0,
            bytes: 0,
            rtt_us: Vec::with_capacity(args.datagrams.min(1 << 20) as usize),
            // One more than the largest, so a longer echo shows as longer.
            buf: vec![0; sizes.max + 1],
            scratch: vec![0; sizes.max],
        }
    }

    /// Payload length of datagram `seq`: a stride through the range that is coprime
    /// with nothing in particular, so consecutive datagrams differ in size.
    fn len_of(&self, seq: u64) -> usize {
        let span = (self.sizes.max - self.sizes.min) as u64 + 1;
        self.sizes.min + (seq.wrapping_mul(7919) % span) as usize
    }

    /// Write datagram `seq`'s payload into `scratch[..len]`.
    fn payload(&mut self, seq: u64, len: usize) {
        let mut r = Rand::from_u64(self.seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.fill(&mut self.scratch[..len]);
    }

    /// Whether `data` is datagram `seq` of length `len`.
    fn is(&mut self, seq: u64, len: usize, data: &[u8]) -> bool {
        if data.len() != len {
            return false;
        }
        self.payload(seq, len);
        self.scratch[..len] == *data
    }

    fn receive(&mut self, stack: &mut Stack, h: UdpHandle) -> Result<(), String> {
        loop {
            let (len, from) = match stack.udp_recv_from(h, &mut self.buf) {
                Ok(r) => r,
                Err(UdpError::WouldBlock) => return Ok(()),
                Err(UdpError::ConnectionRefused) => {
                    return Err(format!(
                        "{}: port unreachable (no UDP echo server there)",
                        self.remote
                    ))
                }
                Err(e) => return Err(format!("udp receive: {e}")),
            };
            if from != self.remote {
                self.foreign += 1;
                continue;
            }
            self.received += 1;
            // A payload longer than the buffer arrives cut: it can match nothing.
            let got = len.min(self.buf.len());
            let data = std::mem::take(&mut self.buf);
            let hit = (0..self.outstanding.len()).find(|&k| {
                let o = self.outstanding[k];
                self.is(o.seq, o.len, &data[..got]) && len == o.len
            });
            if let Some(k) = hit {
                let o = self.outstanding.swap_remove(k);
                self.verified += 1;
                self.bytes += o.len as u64;
                self.rtt_us.push(o.sent_wall.elapsed().as_secs_f64() * 1e6);
            } else if (0..self.expired.len()).any(|k| {
                let (seq, l) = self.expired[k];
                self.is(seq, l, &data[..got]) && len == l
            }) {
                self.late += 1;
            } else {
                self.bad += 1;
            }
            self.buf = data;
            if self.bad > 0 {
                // Corruption is a verdict: no need to wait for the rest.
                return Err(format!(
                    "an echo of {len} bytes matched no datagram sent; {}",
                    self.report()
                ));
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut k = 0;
        while k < self.outstanding.len() {
            let o = self.outstanding[k];
            // The first datagram waits for the peer's address: when the first ARP
            // request is lost (a link that just came up), the stack asks again a
            // second later, so its echo may take that long and is not lost.
            let wait = if o.seq == 0 {
                self.wait.max(FIRST_DATAGRAM_WAIT)
            } else {
                self.wait
            };
            if now.saturating_duration_since(o.sent_at) >= wait {
                self.outstanding.swap_remove(k);
                self.lost += 1;
                if self.expired.len() == LATE_MEMORY {
                    self.expired.pop_front();
                }
                self.expired.push_back((o.seq, o.len));
            } else {
                k += 1;
            }
        }
    }

    fn send(&mut self, stack: &mut Stack, h: UdpHandle, now: Instant) -> Result<(), String> {
        // The first datagram goes alone: the peer's MAC is resolved by the time its
        // echo is back, so the window never waits in the neighbour queue.
        let window = if self.verified + self.lost == 0 {
            1
        } else {
            self.window
        };
        while self.outstanding.len() < window && self.next < self.count {
            let seq = self.next;
            let len = self.len_of(seq);
            self.payload(seq, len);
            match stack.udp_send(h, &self.scratch[..len]) {
                Ok(()) => {}
                Err(UdpError::WouldBlock) => return Ok(()),
                Err(UdpError::ConnectionRefused) => {
                    return Err(format!(
                        "{}: port unreachable (no UDP echo server there)",
                        self.remote
                    ))
                }
                Err(e) => return Err(format!("udp send of {len} bytes: {e}")),
            }
            self.next += 1;
            self.sent += 1;
            self.outstanding.push(Outstanding {
                seq,
                len,
                sent_at: now,
                sent_wall: StdInstant::now(),
            });
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.next == self.count && self.outstanding.is_empty()
    }

    fn loss_pct(&self) -> f64 {
        self.lost as f64 * 100.0 / self.count.max(1) as f64
    }

    fn report(&self) -> String {
        let elapsed = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let mut rtt = self.rtt_us.clone();
        rtt.sort_by(f64::total_cmp);
        let q = |p: f64| {
            rtt.get(((rtt.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        format!(
            "datagrams={} sent={} received={} verified={} lost={} late={} bad={} foreign={} loss_pct={:.3} bytes={} sizes={}-{} elapsed_s={elapsed:.3} rtt_us_p50={:.1} rtt_us_p99={:.1} rtt_us_max={:.1}",
            self.count,
            self.sent,
            self.received,
            self.verified,
            self.lost,
            self.late,
            self.bad,
            self.foreign,
            self.loss_pct(),
            self.bytes,
            self.sizes.min,
            self.sizes.max,
            q(0.5),
            q(0.99),
            q(1.0),
        )
    }
}

impl StackApp for UdpClient {
    fn start(&mut self, stack: &mut Stack, _opts: &ServeOptions) -> Result<(), String> {
        // Queues for a full window of the largest datagrams (and their echoes).
        let bytes = (self.window * self.sizes.max.max(1)).max(64 * 1024) + UDP_MAX;
        let opts = UdpSocketOptions {
            rx_bytes: bytes,
            rx_datagrams: 2 * self.window + 16,
            tx_bytes: bytes,
            tx_datagrams: 2 * self.window + 16,
        };
        let h = stack
            .udp_bind_with(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), opts)
            .map_err(|e| format!("udp bind: {e}"))?;
        stack
            .udp_connect(h, self.remote)
            .map_err(|e| format!("udp connect to {}: {e}", self.remote))?;
        self.handle = Some(h);
        Ok(())
    }

    fn run(&mut self, stack: &mut Stack, now: Instant) -> Result<bool, String> {
        let Some(h) = self.handle else {
            return Err("the UDP socket is not open".into());
        };
        let deadline = *self.deadline.get_or_insert_with(|| {
            self.started = Some(StdInstant::now());
            now.saturating_add(self.timeout)
        });
        self.receive(stack, h)?;
        self.expire(now);
        if now >= deadline {
            return Err(format!("timed out: {}", self.report()));
        }
        self.send(stack, h, now)?;
        Ok(self.finished())
    }
}

/// `connect --udp`.
fn run_udp(args: &ConnectArgs, opts: ServeOptions) -> Result<String, String> {
    if args.send.is_some() {
        return Err("--send: --udp sends --datagrams datagrams of --sizes bytes".into());
    }
    let stop = stop_on_signals()?;
    let mut client = UdpClient::new(args);
    run_on_backend(&opts, &mut client, &stop)?;
    let report = client.report();
    if !client.finished() {
        return Err(format!("interrupted: {report}"));
    }
    if client.loss_pct() > args.max_loss {
        return Err(format!(
            "{} of {} datagrams lost ({:.3}%, --max-loss {}); {report}",
            client.lost,
            client.count,
            client.loss_pct(),
            args.max_loss
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_does_not_depend_on_how_it_is_cut() {
        let mut whole = vec![0u8; 3 * Stream::BLOCK];
        Rand::from_u64(9).fill(&mut whole);
        let mut s = Stream::new(9);
        let mut got = Vec::new();
        for step in [1usize, 7, 8, 1000, 65536, 3].iter().cycle() {
            if got.len() >= whole.len() {
                break;
            }
            let c = s.peek(*step).to_vec();
            assert!(!c.is_empty() && c.len() <= *step);
            s.advance(c.len());
            got.extend_from_slice(&c);
        }
        assert_eq!(&got[..whole.len()], &whole[..]);
    }

    #[test]
    fn crc32_matches_zlib() {
        let c = |s: &[u8]| {
            let mut c = Crc32::default();
            c.update(s);
            c.value()
        };
        assert_eq!(c(b""), 0);
        // The CRC-32 check value, and `zlib.crc32(b"The quick brown fox jumps over the lazy dog")`.
        assert_eq!(c(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            c(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
        let mut split = Crc32::default();
        split.update(b"12345");
        split.update(b"6789");
        assert_eq!(split.value(), 0xcbf4_3926);
    }
}
