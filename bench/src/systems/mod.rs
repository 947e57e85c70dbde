//! The systems `rumpnet bench` compares, each driving the same [`workload`](crate::workload)
//! code: [`rumpnet`] (two stacks over the in-memory link), [`linux`] (kernel sockets over
//! loopback or a veth pair in network namespaces of our own) and [`smoltcp`] (its loopback
//! device), plus the machine's own [`limits`](crate::limits).

pub mod dpdk;
pub mod linux;
pub mod rumpnet;
pub mod smoltcp;
pub mod stack_sockets;
pub mod tap;

use std::fmt;
use std::io;
use std::time::Duration;

use crate::workload::{Kind, Outcome, Spec};

/// Whose TCP/IP is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    Rumpnet,
    Linux,
    Smoltcp,
    /// No stack: the machine's ceiling for the workload.
    Limit,
}

impl System {
    pub const ALL: [System; 4] = [
        System::Rumpnet,
        System::Linux,
        System::Smoltcp,
        System::Limit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            System::Rumpnet => "rumpnet",
            System::Linux => "linux",
            System::Smoltcp => "smoltcp",
            System::Limit => "limit",
        }
    }
}

/// Where the two ends run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// Both ends on core 0: one thread polling both stacks (rumpnet, smoltcp), or the
    /// client and server threads both pinned to core 0 (Linux).
    SameCore,
    /// Client on core 0, server on core 1, each its own thread.
    CrossCore,
}

impl Placement {
    pub const ALL: [Placement; 2] = [Placement::SameCore, Placement::CrossCore];

    pub fn name(self) -> &'static str {
        match self {
            Placement::SameCore => "same-core",
            Placement::CrossCore => "cross-core",
        }
    }

    /// The cores of the client's and the server's thread.
    pub fn cores(self) -> (usize, usize) {
        match self {
            Placement::SameCore => (0, 0),
            Placement::CrossCore => (0, 1),
        }
    }
}

/// What carries the frames between the two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// rumpnet's in-memory link (lock-free rings between the two stacks).
    Mem,
    /// A TAP device with the Linux kernel on the other side.
    Tap,
    /// A loopback device (Linux `lo`, smoltcp's `Loopback`).
    Loopback,
    /// A Linux veth pair between two network namespaces.
    Veth,
    /// DPDK's net_memif between two rumpnet processes (shared-memory rings).
    DpdkMemif,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Mem => "mem",
            Transport::Tap => "tap",
            Transport::Loopback => "loopback",
            Transport::Veth => "veth",
            Transport::DpdkMemif => "dpdk-memif",
        }
    }
}

/// One measurement: the workload's figure and what goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The figure the rows are compared by (see [`metric_name`]).
    pub value: f64,
    /// Secondary figures, by name (latency percentiles, CPU use, ...).
    pub extra: Vec<(&'static str, f64)>,
    /// Bytes checked against what was sent, and checks that failed.
    pub checked: u64,
    pub errors: u64,
}

/// The name of a workload's figure in the table and the JSON.
pub fn metric_name(workload: &str) -> &'static str {
    match workload {
        "stream" => "gbit_per_s",
        "rr" => "txn_per_s",
        "crr" => "conn_per_s",
        "conns" => "bytes_per_conn",
        _ => "value",
    }
}

/// Why a measurement failed.
#[derive(Debug)]
pub enum BenchError {
    /// Setting the system up failed (a socket call, a namespace, ...).
    Setup(String),
    /// A socket call failed during the run.
    Io(io::Error),
    /// The run made no progress for far longer than asked.
    Stalled(&'static str),
    /// The data that arrived was not what was sent.
    Corrupt(u64),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Setup(s) => write!(f, "setup: {s}"),
            BenchError::Io(e) => write!(f, "i/o: {e}"),
            BenchError::Stalled(w) => write!(f, "stalled: {w}"),
            BenchError::Corrupt(n) => write!(f, "{n} data checks failed"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<io::Error> for BenchError {
    fn from(e: io::Error) -> Self {
        BenchError::Io(e)
    }
}

/// How long past its planned end a run may go before it counts as stalled.
pub fn stall_limit(spec: &Spec) -> Duration {
    Duration::from_secs(10) + (spec.duration + spec.warmup()) * 5
}

/// The sample of a timed workload from its two sides' outcomes and the CPU the whole
/// process used over the run's wall time.
pub fn sample(
    spec: &Spec,
    client: &Outcome,
    server: &Outcome,
    cpu: Duration,
    wall: Duration,
) -> Result<Sample, BenchError> {
    let errors = client.errors + server.errors;
    if errors > 0 {
        return Err(BenchError::Corrupt(errors));
    }
    let cpu_cores = cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    let (value, mut extra) = match spec.kind {
        Kind::Stream => (server.rate(Kind::Stream), Vec::new()),
        Kind::Rr | Kind::Crr => {
            let mut extra = Vec::new();
            if let Some(h) = client.latency.as_ref().filter(|h| !h.is_empty()) {
                extra.push(("latency_p50_us", h.value_at_quantile(0.5) as f64 / 1e3));
                extra.push(("latency_p99_us", h.value_at_quantile(0.99) as f64 / 1e3));
                extra.push(("latency_p999_us", h.value_at_quantile(0.999) as f64 / 1e3));
            }
            (client.rate(spec.kind), extra)
        }
    };
    extra.push(("cpu_cores", cpu_cores));
    Ok(Sample {
        value,
        extra,
        checked: client.checked + server.checked,
        errors,
    })
}
