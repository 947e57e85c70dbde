//! Loss recovery under random loss: one bulk transfer over a simulated fast, short, lossy
//! path, measured in virtual time.
//!
//! The default is the TCP issue's benchmark: 64 MiB from A to B over a 10 Gbit/s link
//! with 50 µs each way (100 µs RTT) and 1% of the data frames lost at random, after a
//! bottleneck queue of two bandwidth-delay products. ACKs travel the same rate and
//! delay but are not lost, so the configurations differ only in how they recover data
//! (see [`LossConfig::ack_loss`] to lose them too). The goodput is the payload divided by
//! the virtual time from `connect` to the last byte read by the receiving application,
//! so it measures the protocol, not the machine that runs the simulation.
//!
//! What each configuration is judged by: goodput, and the bytes it sent twice
//! (`tcp_retransmit_bytes` of the sender). With 1% loss about 1% of the data must be
//! resent whatever the algorithm; what SACK saves is the data resent although it had
//! arrived (go-back-N after a timeout, NewReno's guesses) and the timeouts themselves.

use std::sync::Arc;
use std::time::Instant as WallInstant;

use rumpnet_stack::link::{Impairments, LinkConfig, LinkStats, PcapCapture};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::stats::Stats;
use rumpnet_stack::tcp::rtt::RtoConfig;
use rumpnet_stack::tcp::{CcAlgorithm, TcpError, TcpInfo, TcpSocketOptions};
use rumpnet_stack::time::{Duration, Instant};
use rumpnet_stack::StackConfig;

use crate::tcp_pair::{SetupError, TcpPair};

/// 64 MiB: the transfer of the issue's benchmark.
pub const DEFAULT_BYTES: usize = 64 << 20;

/// One run of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// Payload bytes A sends to B.
    pub bytes: usize,
    /// Link MTU (IP packet bytes; the frame adds 14 bytes of Ethernet).
    pub mtu: usize,
    /// Serialization rate of each direction, bits per second.
    pub rate_bps: u64,
    /// One-way delay of each direction (the RTT is twice this, plus serialization).
    pub one_way_delay: Duration,
    /// Probability that a data frame (A to B) is lost, after the bottleneck queue.
    pub loss: f64,
    /// Probability that a frame from B to A (ACKs) is lost.
    pub ack_loss: f64,
    /// Bottleneck buffer of each direction, bytes: frames beyond it are tail-dropped.
    pub queue_limit_bytes: usize,
    /// Send and receive buffer of both sockets, bytes (the window scale follows).
    pub socket_buf: usize,
    /// Negotiate SACK (RFC 2018); set on both stacks.
    pub sack: bool,
    /// Congestion control of both sockets (only the sender's matters).
    pub cc: CcAlgorithm,
    /// Lower bound of the retransmission timeout (the stack's default: 200 ms, as
    /// Linux). On a 100 µs path one timeout costs 2,000 RTTs, so this bound, not the
    /// path, sets the cost of every loss that fast recovery does not repair.
    pub rto_min: Duration,
    /// Seed of the link's loss draws (data direction; ACKs use `seed + 1`) and of the
    /// stacks' randomness.
    pub seed: u64,
    /// Give up after this much virtual time.
    pub time_limit: Duration,
}

impl Default for LossConfig {
    /// The issue's benchmark: 64 MiB, 10 Gbit/s, 100 µs RTT, 1% data loss, MTU 1500,
    /// a 2 BDP bottleneck queue (250 kB) and 4 MiB socket buffers (32 BDP: the window
    /// never limits; window scale 7), CUBIC with SACK.
    fn default() -> Self {
        LossConfig {
            bytes: DEFAULT_BYTES,
            mtu: 1500,
            rate_bps: 10_000_000_000,
            one_way_delay: Duration::from_micros(50),
            loss: 0.01,
            ack_loss: 0.0,
            queue_limit_bytes: 250_000,
            socket_buf: 4 << 20,
            sack: true,
            cc: CcAlgorithm::Cubic,
            rto_min: RtoConfig::default().min,
            seed: 1,
            time_limit: Duration::from_secs(600),
        }
    }
}

impl LossConfig {
    /// The bandwidth-delay product in bytes (rate times the two propagation delays).
    pub fn bdp_bytes(&self) -> u64 {
        let rtt_ns = self.one_way_delay.as_nanos() * 2;
        u64::try_from(u128::from(self.rate_bps) * rtt_ns / 8_000_000_000).unwrap_or(u64::MAX)
    }

    fn link(&self) -> LinkConfig {
        let dir = |seed: u64, loss: f64| Impairments {
            seed,
            loss,
            delay: self.one_way_delay,
            rate_bps: Some(self.rate_bps),
            queue_limit_bytes: Some(self.queue_limit_bytes),
            ..Impairments::default()
        };
        // Room on the rings for everything the queue and the wire can hold, and more:
        // a full ring would push back on the sender instead of the queue dropping.
        let frames = (self.queue_limit_bytes as u64 + self.bdp_bytes()) / 64 + 1024;
        let capacity = usize::try_from(frames).unwrap_or(usize::MAX).min(1 << 16);
        LinkConfig {
            capacity,
            mtu: self.mtu,
            a_to_b: dir(self.seed, self.loss),
            b_to_a: dir(self.seed.wrapping_add(1), self.ack_loss),
            pool_frames: capacity,
            ..LinkConfig::default()
        }
    }

    fn stack(&self) -> StackConfig {
        let mut c = StackConfig::default();
        c.tcp.tcb.sack = self.sack;
        c.tcp.tcb.rto.min = self.rto_min;
        c.tx_backlog = 1 << 16;
        c
    }

    fn socket(&self) -> TcpSocketOptions {
        TcpSocketOptions {
            rcv_buf: self.socket_buf,
            snd_buf: self.socket_buf,
            cc: self.cc,
            ..TcpSocketOptions::default()
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LossReport {
    pub config: LossConfig,
    /// Every byte arrived, in order and intact, within the time limit.
    pub completed: bool,
    /// Bytes the receiving application read (and found intact).
    pub bytes_received: u64,
    /// Virtual time from `connect` to the last byte read (or to the time limit).
    pub duration: Duration,
    /// `bytes_received * 8 / duration`, bits per second.
    pub goodput_bps: f64,
    /// Segments the sender sent again (fast retransmit, recovery, after timeouts).
    pub retransmits: u64,
    /// Payload bytes in those segments.
    pub retransmit_bytes: u64,
    /// Retransmission timeouts of the sender.
    pub timeouts: u64,
    /// Retransmitted segments beyond one per data frame the link dropped (lost or
    /// tail-dropped): data sent again although it had arrived (go-back-N after a
    /// timeout, a NewReno guess), or a frame dropped by the receiver (a full
    /// out-of-order queue). Zero for a perfect recovery.
    pub excess_retransmits: u64,
    /// TCP segments the sender sent in all.
    pub segments_sent: u64,
    /// The data direction of the link (A to B).
    pub data_link: LinkStats,
    /// The ACK direction of the link (B to A).
    pub ack_link: LinkStats,
    /// The sender's MSS.
    pub smss: u32,
    /// SACK was negotiated (must equal `config.sack`).
    pub sack_negotiated: bool,
    /// The receiver's window scale (what lets the window exceed 64 KiB).
    pub rcv_wscale: u8,
    /// Wall-clock time the simulation took.
    pub wall: std::time::Duration,
    /// Every counter of the sending stack (A).
    pub sender: Stats,
    /// Every counter of the receiving stack (B): its drops say what the receiver
    /// refused (out-of-window data, a full reassembly queue).
    pub receiver: Stats,
}

/// Why a run could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossError {
    /// The two hosts or the connection could not be set up.
    Setup(SetupError),
    /// A socket call failed during the transfer (the connection broke).
    Transfer(TcpError),
    /// The receiver read a byte that differs from what was sent, at this offset.
    Corrupted(u64),
}

impl core::fmt::Display for LossError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LossError::Setup(e) => write!(f, "setup: {e}"),
            LossError::Transfer(e) => write!(f, "transfer: {e}"),
            LossError::Corrupted(at) => write!(f, "received data differs at byte {at}"),
        }
    }
}

impl std::error::Error for LossError {}

impl From<SetupError> for LossError {
    fn from(e: SetupError) -> Self {
        LossError::Setup(e)
    }
}

/// The bytes A sends: seeded noise, so a misplaced segment cannot compare equal.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rand::from_u64(seed ^ 0x7463_705f_6c6f_7373).fill(&mut v);
    v
}

/// A callback of [`Observer`]: the virtual time since `connect` and the sender's state.
pub type InfoHook<'a> = Box<dyn FnMut(Duration, &TcpInfo) + 'a>;

/// How to watch a run: the sender's state over time, and the frames on the wire.
#[derive(Default)]
pub struct Observer<'a> {
    /// Call `on_info` at the first poll at least this much virtual time after the
    /// previous call (zero: never).
    pub interval: Duration,
    /// Called with the virtual time since `connect` and the sender's [`TcpInfo`].
    pub on_info: Option<InfoHook<'a>>,
    /// Record every frame of both directions (as it leaves the sender's NIC: lost
    /// frames are absent).
    pub capture: Option<Arc<PcapCapture>>,
}

impl core::fmt::Debug for Observer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Observer")
            .field("interval", &self.interval)
            .field("on_info", &self.on_info.is_some())
            .field("capture", &self.capture.is_some())
            .finish()
    }
}

/// Run one transfer.
pub fn run(config: &LossConfig) -> Result<LossReport, LossError> {
    run_observed(config, Observer::default())
}

/// [`run`], watched by `observer`.
pub fn run_observed(
    config: &LossConfig,
    mut observer: Observer<'_>,
) -> Result<LossReport, LossError> {
    let wall = WallInstant::now();
    let data = payload(config.bytes, config.seed);
    let start = Instant::from_secs(1);
    let mut pair = TcpPair::connect(
        config.link(),
        config.stack(),
        config.stack(),
        config.socket(),
        config.seed,
        start,
        observer.capture.clone(),
    )?;
    let (client, server) = (pair.client, pair.server);
    let deadline = start + config.time_limit;
    let mut sent = 0usize;
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut next_trace = start;
    let completed = loop {
        let polled = pair.poll();
        if let Some(trace) = observer.on_info.as_mut() {
            if !observer.interval.is_zero() && pair.now >= next_trace {
                if let Ok(info) = pair.a.stack.tcp_info(client) {
                    trace(pair.now - start, &info);
                }
                next_trace = pair.now + observer.interval;
            }
        }
        let mut busy = false;
        while sent < data.len() {
            match pair.a.stack.tcp_send(client, &data[sent..]) {
                Ok(n) => {
                    sent += n;
                    busy = true;
                }
                Err(TcpError::WouldBlock) => break,
                Err(e) => return Err(LossError::Transfer(e)),
            }
        }
        loop {
            match pair.b.stack.tcp_recv(server, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let want = data.get(got..got + n).unwrap_or(&[]);
                    if want != &buf[..n] {
                        let at = want
                            .iter()
                            .zip(&buf[..n])
                            .position(|(a, b)| a != b)
                            .unwrap_or(want.len());
                        return Err(LossError::Corrupted((got + at) as u64));
                    }
                    got += n;
                    busy = true;
                }
                Err(TcpError::WouldBlock) => break,
                Err(e) => return Err(LossError::Transfer(e)),
            }
        }
        if got == data.len() {
            break true;
        }
        if pair.now >= deadline {
            break false;
        }
        pair.advance(polled, busy);
    };
    let duration = pair.now - start;
    let a = pair.a.stack.stats().clone();
    let info = pair.a.stack.tcp_info(client).map_err(LossError::Transfer)?;
    let rcv_wscale = pair
        .b
        .stack
        .tcp_info(server)
        .map_err(LossError::Transfer)?
        .rcv_wscale;
    let secs = duration.as_secs_f64();
    let data_link = pair.a.link().stats();
    Ok(LossReport {
        config: *config,
        completed,
        bytes_received: got as u64,
        duration,
        goodput_bps: if secs > 0.0 {
            got as f64 * 8.0 / secs
        } else {
            0.0
        },
        retransmits: a.tcp_retransmits,
        retransmit_bytes: a.tcp_retransmit_bytes,
        timeouts: a.tcp_timeouts,
        excess_retransmits: a
            .tcp_retransmits
            .saturating_sub(data_link.lost + data_link.queue_dropped),
        segments_sent: a.tcp_tx,
        data_link,
        ack_link: pair.b.link().stats(),
        smss: info.smss,
        sack_negotiated: info.sack,
        rcv_wscale,
        wall: wall.elapsed(),
        sender: a,
        receiver: pair.b.stack.stats().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(sack: bool, cc: CcAlgorithm, seed: u64) -> LossConfig {
        LossConfig {
            bytes: 2 << 20,
            sack,
            cc,
            seed,
            time_limit: Duration::from_secs(60),
            ..LossConfig::default()
        }
    }

    #[test]
    fn default_is_the_issues_benchmark() {
        let c = LossConfig::default();
        assert_eq!(c.bytes, 64 * 1024 * 1024);
        assert_eq!(c.rate_bps, 10_000_000_000);
        assert_eq!(c.one_way_delay * 2, Duration::from_micros(100));
        assert_eq!(c.loss, 0.01);
        assert_eq!(c.bdp_bytes(), 125_000);
        assert!(c.socket_buf as u64 >= 2 * c.bdp_bytes());
    }

    #[test]
    fn lossless_transfer_runs_at_the_link_rate() {
        // A bottleneck queue deeper than the socket buffer: nothing is dropped, so the
        // goodput shows what the simulated link carries.
        let c = LossConfig {
            bytes: 16 << 20,
            loss: 0.0,
            queue_limit_bytes: 8 << 20,
            ..small(true, CcAlgorithm::Cubic, 1)
        };
        let r = run(&c).unwrap();
        assert!(r.completed, "{r:?}");
        assert_eq!(r.bytes_received, c.bytes as u64);
        assert_eq!((r.data_link.lost, r.data_link.queue_dropped), (0, 0));
        assert_eq!((r.retransmits, r.timeouts), (0, 0));
        assert!(r.sack_negotiated);
        assert!(r.rcv_wscale >= 6, "4 MiB needs a window scale: {r:?}");
        // 1448 payload bytes per 1514-byte frame cap the goodput at 9.56 Gbit/s; slow
        // start from 10 segments costs a few 100 µs RTTs of the 14 ms.
        let gbps = r.goodput_bps / 1e9;
        assert!((8.5..9.57).contains(&gbps), "{gbps:.3} Gbit/s");
    }

    #[test]
    fn slow_start_overshoot_into_a_short_queue_still_completes() {
        // The 2 BDP queue tail-drops every other segment once slow start outgrows it:
        // dozens of holes at once, more than the receiver's out-of-order queue tracks.
        for (sack, cc) in [
            (false, CcAlgorithm::NewReno),
            (true, CcAlgorithm::NewReno),
            (false, CcAlgorithm::Cubic),
            (true, CcAlgorithm::Cubic),
        ] {
            let c = LossConfig {
                bytes: 4 << 20,
                loss: 0.0,
                ..small(sack, cc, 1)
            };
            let r = run(&c).unwrap();
            assert!(r.completed, "{cc} sack={sack}: {r:?}");
            assert!(r.data_link.queue_dropped > 0, "{r:?}");
            assert!(r.retransmits >= r.data_link.queue_dropped, "{r:?}");
        }
    }

    #[test]
    fn lossy_transfer_completes_and_counts_retransmissions() {
        for (sack, cc) in [(false, CcAlgorithm::NewReno), (true, CcAlgorithm::Cubic)] {
            let r = run(&small(sack, cc, 2)).unwrap();
            assert!(r.completed, "{r:?}");
            assert_eq!(r.sack_negotiated, sack);
            assert!(r.data_link.lost > 0);
            // Every lost data frame had to be sent again.
            assert!(r.retransmits >= r.data_link.lost, "{r:?}");
            assert!(r.retransmit_bytes >= r.retransmits, "{r:?}");
        }
    }
}
