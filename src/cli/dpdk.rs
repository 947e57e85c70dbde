//! `rumpnet serve --backend dpdk`: the glue between the dpdk backend and the CLI.

use std::sync::atomic::AtomicBool;

use rumpnet::stack::Stack;

use super::config::ServeOptions;
use super::serve::StackApp;

/// Run the stack on the dpdk backend configured by the `[dpdk]` table.
pub(crate) fn run<A: StackApp>(
    _opts: &ServeOptions,
    _table: &toml::Table,
    _app: &mut A,
    _stop: &AtomicBool,
) -> Result<Stack, String> {
    Err("backend `dpdk`: not wired into `serve` yet".into())
}
