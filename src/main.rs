//! The `rumpnet` command line.
//!
//! Usage errors are reported by clap with exit code 2; any other failure prints one line
//! on stderr and exits with code 1. Nothing here panics on bad input or a closed pipe.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// rumpnet: a userspace TCP/IP stack for kernel-bypass NICs.
#[derive(Debug, Parser)]
#[command(name = "rumpnet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare rumpnet with the Linux kernel stack and smoltcp (and the machine's own
    /// limits): bulk throughput, request/response rate and latency, connection rate,
    /// memory per idle connection; prints a table, `--json`/`--plot` write the figures.
    Bench(cli::bench::BenchArgs),
    /// Run two stacks over the in-memory link (ping + UDP echo, with seeded loss,
    /// reordering, duplication, corruption, delay and rate) and print what happened.
    Sim(cli::sim::SimArgs),
    /// Run the stack behind a TAP device with the built-in servers (needs root or
    /// CAP_NET_ADMIN); prints a line starting with `ready` once it serves, and its
    /// counters when stopped with SIGINT/SIGTERM.
    Serve(cli::serve::ServeArgs),
    /// Run the stack behind a TAP device as a client: connect to IPV4:PORT, send a seeded
    /// stream, read what the peer sends until its EOF, and print byte counts, CRC-32s and
    /// the time taken (exit 1 with one line if it fails).
    Connect(cli::connect::ConnectArgs),
    /// Print the version, the backends compiled into this binary and the stack's build facts.
    Info,
    /// One end of `rumpnet bench`'s dpdk-memif transport (started by `rumpnet bench`).
    #[cfg(feature = "dpdk")]
    #[command(hide = true)]
    BenchPeer(cli::bench_peer::BenchPeerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(&mut io::stdout().lock()),
        Command::Serve(args) => {
            let opts = match args.options() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("rumpnet: error: {e}");
                    return ExitCode::from(2);
                }
            };
            match cli::serve::run(opts) {
                Ok(report) => writeln!(io::stdout().lock(), "{report}"),
                Err(e) => Err(io::Error::other(e)),
            }
        }
        Command::Connect(args) => {
            let opts = match args.options() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("rumpnet: error: {e}");
                    return ExitCode::from(2);
                }
            };
            match cli::connect::run(&args, opts) {
                Ok(report) => writeln!(io::stdout().lock(), "{report}"),
                Err(e) => Err(io::Error::other(e)),
            }
        }
        Command::Bench(args) => match cli::bench::run(&args) {
            Ok(text) => write!(io::stdout().lock(), "{text}"),
            Err(e) => Err(io::Error::other(e)),
        },
        #[cfg(feature = "dpdk")]
        Command::BenchPeer(args) => cli::bench_peer::run(&args).map_err(io::Error::other),
        Command::Sim(args) => match cli::sim::run(&args) {
            Ok(report) => writeln!(io::stdout().lock(), "{}", report.text),
            Err(e) => Err(io::Error::other(e)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `rumpnet info | head -1` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rumpnet: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `rumpnet info` reports: facts about this build, nothing measured.
fn info(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "rumpnet {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        "build: {} profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )?;
    writeln!(out)?;
    writeln!(out, "stack (rumpnet-stack):")?;
    writeln!(out, "  unsafe code: denied (#![deny(unsafe_code)])")?;
    writeln!(
        out,
        "  no_std: capable (core + alloc without the `std` feature); this build uses std"
    )?;
    writeln!(
        out,
        "  protocols: Ethernet (802.1Q), ARP, IPv4 (forwarding, fragments), ICMPv4, UDP, TCP (SACK, NewReno, CUBIC)"
    )?;
    writeln!(out)?;
    writeln!(out, "backends:")?;
    writeln!(
        out,
        "  in-memory link: yes (seeded impairments, pcap capture)"
    )?;
    writeln!(
        out,
        "  tap:    yes (virtio-net offloads, multi-queue; `rumpnet serve`, `rumpnet connect`)"
    )?;
    writeln!(out, "  dpdk:   {}", dpdk_status())?;
    writeln!(
        out,
        "  netmap: {}",
        if cfg!(feature = "netmap") {
            "feature enabled, backend not yet implemented"
        } else {
            "not compiled in (build with --features netmap)"
        }
    )?;
    Ok(())
}

#[cfg(feature = "dpdk")]
fn dpdk_status() -> String {
    format!(
        "linked against {}; `serve`/`connect --backend dpdk` (one queue pair, see docs/DPDK.md)",
        rumpnet::dpdk::dpdk_version()
    )
}

#[cfg(not(feature = "dpdk"))]
fn dpdk_status() -> String {
    "not compiled in (build with --features dpdk)".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_reports_version_and_backends() {
        let mut out = Vec::new();
        info(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("rumpnet {}\n", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains("  dpdk:   "));
        assert_eq!(
            text.contains("linked against DPDK"),
            cfg!(feature = "dpdk"),
            "{text}"
        );
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_subcommand_is_a_usage_error() {
        let err = Cli::try_parse_from(["rumpnet", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
