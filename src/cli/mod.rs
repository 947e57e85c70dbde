//! The subcommands of the `rumpnet` binary, one module each.

pub mod config;
pub mod serve;
pub mod sim;
