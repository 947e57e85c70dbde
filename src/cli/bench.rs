//! `rumpnet bench`: throughput, latency, connection rate and memory per connection of
//! rumpnet against the Linux kernel stack and smoltcp, with the machine's own limits
//! measured in the same run. The workloads live in `rumpnet-bench`; this module turns
//! flags into its options and writes what it reports.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use rumpnet_bench::report;
use rumpnet_bench::suite::{self, Options, Workload};
use rumpnet_bench::systems::{Placement, System};

/// A workload on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// One-way bulk TCP: Gbit/s and CPU use.
    Stream,
    /// Request/response on open connections: transactions/s and latency percentiles.
    Rr,
    /// Connect, request/response, close: connections/s.
    Crr,
    /// Idle connections: memory per connection, time to open them.
    Conns,
}

/// A system on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SystemArg {
    Rumpnet,
    Linux,
    Smoltcp,
    /// The machine's ceilings: memcpy bandwidth, frame ping-pong without a stack.
    Limit,
}

/// A placement on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    SameCore,
    CrossCore,
}

/// Options of `rumpnet bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Short runs of every case (under a minute on two cores); flags given as well
    /// override its settings.
    #[arg(long)]
    pub quick: bool,
    /// Rounds of every case; the table shows min / median / max over them [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// Measured seconds per case, after a warm-up of a tenth of that [default: 2, --quick 0.15].
    #[arg(long, value_parser = seconds)]
    pub duration: Option<f64>,
    /// Workloads to run [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub workloads: Vec<WorkloadArg>,
    /// Systems to run [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub systems: Vec<SystemArg>,
    /// Placements to run [default: both].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub placements: Vec<PlacementArg>,
    /// Connection counts of `stream` [default: 1,8].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub stream_conns: Vec<u32>,
    /// Connection counts of `rr` [default: 1,32].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub rr_conns: Vec<u32>,
    /// Bytes per send call of `stream`.
    #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..=16 << 20))]
    pub stream_msg: u32,
    /// Request and response bytes of `rr` and `crr`.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    pub msg_size: u32,
    /// Idle connections `conns` opens on rumpnet [default: 100000, --quick 10000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4_000_000))]
    pub conns: Option<u32>,
    /// At most this many idle connections on Linux [default: 100000, --quick 10000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4_000_000))]
    pub conns_linux: Option<u32>,
    /// At most this many idle connections on smoltcp [default: 10000, --quick 2000; 10000 at most].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub conns_smoltcp: Option<u32>,
    /// The MTU every system shares.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(576..=65535))]
    pub mtu: u32,
    /// The large MTU `stream` also runs at on rumpnet and smoltcp (Linux's lo keeps
    /// its default, 65536).
    #[arg(long, default_value_t = 65535, value_parser = clap::value_parser!(u32).range(576..=65535))]
    pub large_mtu: u32,
    /// Skip Linux over a veth pair (run as root only).
    #[arg(long)]
    pub no_veth: bool,
    /// Skip rumpnet on a TAP device against a Linux client (run as root only).
    #[arg(long)]
    pub no_tap: bool,
    /// rumpnet's in-memory link offloads checksums and segmentation (TSO up to 64 KiB,
    /// received as one GRO super-segment; the MTU is unchanged), as Linux's `lo` does,
    /// and smoltcp skips checksums as its stock loopback does. `false`: every checksum
    /// in software on both, one segment per MTU-sized frame.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub link_offloads: bool,
    /// Write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the comparison as SVG into this file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.001..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err("between 0.001 and 3600 seconds".into())
    }
}

impl BenchArgs {
    /// The suite's options: `--quick` or the full run, with the flags laid over.
    pub fn options(&self) -> Options {
        let mut o = if self.quick {
            Options::quick()
        } else {
            Options::full()
        };
        if let Some(r) = self.repeat {
            o.repeat = r as usize;
        }
        if let Some(d) = self.duration {
            o.duration = Duration::from_secs_f64(d);
        }
        if !self.workloads.is_empty() {
            o.workloads = self
                .workloads
                .iter()
                .map(|w| match w {
                    WorkloadArg::Stream => Workload::Stream,
                    WorkloadArg::Rr => Workload::Rr,
                    WorkloadArg::Crr => Workload::Crr,
                    WorkloadArg::Conns => Workload::Conns,
                })
                .collect();
        }
        if !self.systems.is_empty() {
            o.systems = self
                .systems
                .iter()
                .map(|s| match s {
                    SystemArg::Rumpnet => System::Rumpnet,
                    SystemArg::Linux => System::Linux,
                    SystemArg::Smoltcp => System::Smoltcp,
                    SystemArg::Limit => System::Limit,
                })
                .collect();
        }
        if !self.placements.is_empty() {
            o.placements = self
                .placements
                .iter()
                .map(|p| match p {
                    PlacementArg::SameCore => Placement::SameCore,
                    PlacementArg::CrossCore => Placement::CrossCore,
                })
                .collect();
        }
        if !self.stream_conns.is_empty() {
            o.stream_conns = self.stream_conns.iter().map(|&c| c as usize).collect();
        }
        if !self.rr_conns.is_empty() {
            o.rr_conns = self.rr_conns.iter().map(|&c| c as usize).collect();
        }
        o.stream_msg = self.stream_msg as usize;
        o.rr_msg = self.msg_size as usize;
        if let Some(c) = self.conns {
            o.conns = c as usize;
        }
        if let Some(c) = self.conns_linux {
            o.conns_linux_max = c as usize;
        }
        if let Some(c) = self.conns_smoltcp {
            o.conns_smoltcp_max = c as usize;
        }
        o.mtu = self.mtu as usize;
        o.large_mtu = self.large_mtu as usize;
        o.veth &= !self.no_veth;
        o.tap &= !self.no_tap;
        o.link_offloads = self.link_offloads;
        o.progress = !self.no_progress;
        o
    }
}

/// Run the benchmark; the table (and where the JSON and plot went) as text.
pub fn run(args: &BenchArgs) -> Result<String, String> {
    let report = suite::run(&args.options());
    let mut text = report::text(&report);
    if let Some(path) = &args.json {
        let json =
            serde_json::to_string_pretty(&report::json(&report)).map_err(|e| e.to_string())?;
        fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        text.push_str(&format!("json: {}\n", path.display()));
    }
    if let Some(path) = &args.plot {
        report::plot(&report, path).map_err(|e| format!("{}: {e}", path.display()))?;
        text.push_str(&format!("plot: {}\n", path.display()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn flags_override_quick() {
        let cli = Cli::try_parse_from([
            "bench",
            "--quick",
            "--repeat",
            "2",
            "--workloads",
            "rr,crr",
            "--systems",
            "rumpnet",
            "--rr-conns",
            "1,4",
            "--duration",
            "0.5",
        ])
        .unwrap();
        let o = cli.bench.options();
        assert_eq!(o.repeat, 2);
        assert_eq!(o.workloads, vec![Workload::Rr, Workload::Crr]);
        assert_eq!(o.systems, vec![System::Rumpnet]);
        assert_eq!(o.rr_conns, vec![1, 4]);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.conns, Options::quick().conns);
    }

    #[test]
    fn link_offloads_default_on_and_can_be_turned_off() {
        let on = Cli::try_parse_from(["bench"]).unwrap().bench.options();
        assert!(on.link_offloads);
        let off = Cli::try_parse_from(["bench", "--link-offloads", "false"])
            .unwrap()
            .bench
            .options();
        assert!(!off.link_offloads);
        assert!(Cli::try_parse_from(["bench", "--link-offloads", "maybe"]).is_err());
    }

    #[test]
    fn defaults_are_the_full_run() {
        let o = Cli::try_parse_from(["bench"]).unwrap().bench.options();
        assert_eq!(o, Options::full());
    }

    #[test]
    fn a_tiny_run_writes_json_and_a_plot() {
        let dir = std::env::temp_dir().join(format!("rumpnet-bench-cli-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (json, svg) = (dir.join("b.json"), dir.join("b.svg"));
        let cli = Cli::try_parse_from([
            "bench",
            "--quick",
            "--repeat",
            "1",
            "--duration",
            "0.01",
            "--systems",
            "rumpnet,limit",
            "--workloads",
            "rr,stream",
            "--no-progress",
            "--json",
            json.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ])
        .unwrap();
        let text = run(&cli.bench).unwrap();
        assert!(text.contains("rumpnet"), "{text}");
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
        let results = v["results"].as_array().unwrap();
        assert!(results.iter().any(|r| r["workload"] == "rr"
            && r["system"] == "rumpnet"
            && r["metric"] == "txn_per_s"));
        assert!(results
            .iter()
            .any(|r| r["workload"] == "stream" && r["metric"] == "gbit_per_s"));
        assert!(v["machine"]["kernel"].is_string());
        assert!(fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
