//! What the integration tests that drive real processes share: privilege and tool
//! checks, the skip rule (a skip prints why; under `CI=true` it is a failure), running
//! commands with bounded waits, and reading `key=value` reports.
//!
//! Included with `#[path]` by each such test crate, which uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The effective user id, from /proc (no libc call needed).
pub fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The first of `tools` (after `ip`, `timeout` and `python3`, which every such test
/// needs) that is missing, as the reason to skip.
pub fn missing_tool(tools: &[&str]) -> Option<String> {
    ["ip", "timeout", "python3"]
        .iter()
        .chain(tools)
        .find(|t| !have(t))
        .map(|t| format!("needs `{t}` (scripts/install-deps.sh installs it)"))
}

/// Skip `test` for `why`: a failure under `CI=true`, else a line on stderr; false.
pub fn skip(test: &str, why: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}; under CI=true a skipped test is a failure");
    }
    // Straight to the stream, past libtest's capture, so the skip is seen.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
    false
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Run a command to its end (the caller bounds it with `timeout`).
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `ip ARGS`, bounded to 20 s.
pub fn ip(args: &[&str]) -> Output {
    output(Command::new("timeout").arg("20").arg("ip").args(args))
}

/// The interpreter behind `python3` (a pyenv shim does not work under `ip netns exec`,
/// which remounts /sys).
pub fn python() -> String {
    let out = output(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    assert!(out.status.success(), "{}", describe("python3", &out));
    text(&out.stdout).trim().to_string()
}

/// `key=value` tokens of a script's or `connect`'s output.
pub fn fields(s: &str) -> HashMap<String, String> {
    s.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn field<T: std::str::FromStr>(f: &HashMap<String, String>, key: &str, all: &str) -> T {
    f.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}=` in:\n{all}"))
}

/// RFC 864's chargen pattern, as `/bytes/N` and the chargen server send it.
pub fn chargen_pattern() -> Vec<u8> {
    let mut p = Vec::with_capacity(95 * 74);
    for line in 0..95u8 {
        for i in 0..72u8 {
            p.push(b' ' + (line + i) % 95);
        }
        p.extend_from_slice(b"\r\n");
    }
    p
}
