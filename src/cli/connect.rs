//! `rumpnet connect`: the stack behind a TAP device as a client.
//!
//! It opens the TAP like `serve` does (same device flags and config keys), connects to
//! one IPV4:PORT, sends a seeded pseudo-random stream while reading whatever the peer
//! sends, half-closes when everything is sent and finishes at the peer's EOF. It prints
//! byte counts, a CRC-32 of each direction and the time taken, so a test (or a
//! person with a Linux echo server) can check both directions. With `--verify-echo`
//! the received bytes must be exactly the sent ones.
//!
//! The stream is the little-endian bytes of `Rand::from_u64(seed).next_u64()`, one
//! after the other: any program with the stack's `Rand` can regenerate it.

use std::fmt;
use std::io::Write;
use std::net::SocketAddrV4;
use std::time::Instant as StdInstant;

use clap::Args;

use rumpnet::stack::rand::Rand;
use rumpnet::stack::tcp::{State, TcpError, TcpHandle};
use rumpnet::stack::time::{Duration, Instant};
use rumpnet::stack::Stack;

use super::config::{FileConfig, ServeOptions};
use super::serve::{run_on_backend, stop_on_signals, DeviceArgs, StackApp};

/// Options of `rumpnet connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Where to connect.
    #[arg(value_name = "IPV4:PORT")]
    pub remote: SocketAddrV4,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Bytes to send before half-closing.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub send: u64,
    /// Seed of the pseudo-random stream sent.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Fail unless exactly this many bytes arrive before the peer's EOF.
    #[arg(long, value_name = "BYTES")]
    pub expect: Option<u64>,
    /// Fail unless what arrives is exactly what was sent (the peer is an echo server).
    #[arg(long)]
    pub verify_echo: bool,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
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
        Stream {
            rand: Rand::from_u64(seed),
            block: vec![0; Self::BLOCK],
            pos: Self::BLOCK,
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
    let stop = stop_on_signals()?;
    let mut client = Client {
        remote: args.remote,
        handle: None,
        timeout: Duration::from_secs(args.timeout),
        deadline: Instant::ZERO,
        started: None,
        connected_after: None,
        to_send: args.send,
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
