//! `rumpnet serve --backend netmap`: the glue between the netmap backend and the CLI.

use std::sync::atomic::AtomicBool;

use rumpnet::stack::Stack;

use super::config::ServeOptions;
use super::serve::StackApp;

/// Run the stack on the netmap backend configured by the `[netmap]` table.
pub(crate) fn run<A: StackApp>(
    _opts: &ServeOptions,
    _table: &toml::Table,
    _app: &mut A,
    _stop: &AtomicBool,
) -> Result<Stack, String> {
    Err("backend `netmap`: not wired into `serve` yet".into())
}
