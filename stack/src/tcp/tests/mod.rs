//! Unit tests of TCP, one rule per test, packetdrill style: hand-built segments in,
//! expected segments out (see `harness`). Each test cites the RFC section it checks.
//!
//! - `handshake`: LISTEN, SYN-SENT, SYN-RECEIVED; simultaneous open; options; SYN
//!   retransmission.
//! - `close`: FIN-WAIT-1/2, CLOSING, TIME-WAIT (2*MSL, RFC 6191 reuse), CLOSE-WAIT,
//!   LAST-ACK; aborts, resets, closed ports.
//! - `data`: MSS, Nagle / TCP_NODELAY, delayed ACK, reassembly and its bounds, SACK
//!   generation.
//! - `window`: the acceptability test, SND.WL1/WL2, persist timer, silly window
//!   avoidance on both sides, window scaling.
//! - `recovery`: RTO (RFC 6298), fast retransmit, NewReno, SACK recovery, D-SACK.
//! - `rack`: RACK-TLP (RFC 8985), RTT samples from send times.
//! - `security`: RFC 5961 challenge ACKs, PAWS and timestamps, ISNs.
//! - `listen`: SYN backlog, SYN cookies, accept queue.
//! - `timers`: keepalive, the RTO after a lost SYN.
//! - `events`: readiness.
#![cfg(feature = "std")]

#[macro_use]
mod harness;

mod close;
mod data;
mod events;
mod handshake;
mod listen;
mod rack;
mod recovery;
mod security;
mod timers;
mod window;
