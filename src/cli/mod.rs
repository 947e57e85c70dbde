//! The subcommands of the `rumpnet` binary, one module each.

pub mod sim;
