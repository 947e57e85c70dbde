//! The subcommands of the `rumpnet` binary, one module each.

pub mod bench;
pub mod config;
pub mod connect;
pub mod serve;
pub mod sim;
