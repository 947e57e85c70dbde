//! `rumpnet serve --backend netmap` on a machine without netmap: one clear line, a
//! non-zero exit, never a panic.
#![cfg(feature = "netmap")]

use std::path::Path;
use std::process::Command;

#[test]
fn serve_without_the_netmap_module_says_so_and_fails() {
    if Path::new("/dev/netmap").exists() {
        // With the module loaded the command would really open eth0; nothing to check.
        eprintln!("skipped: /dev/netmap exists on this machine");
        return;
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/netmap.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_rumpnet"))
        .args(["serve", "--backend", "netmap", "--config"])
        .arg(&config)
        .args(["--addr", "10.77.0.2/24"])
        .output()
        .expect("run rumpnet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("netmap kernel module not loaded"),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

#[test]
fn serve_with_a_bad_netmap_table_names_the_key() {
    let dir = std::env::temp_dir().join(format!("rumpnet-netmap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.toml");
    std::fs::write(
        &config,
        "backend = \"netmap\"\naddr = \"10.77.0.2/24\"\n[netmap]\nport = \"eth0\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rumpnet"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run rumpnet");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("bad netmap port name `eth0`"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

/// `--cores` opens one port per ring pair through the same `/dev/netmap`: without the
/// module that is the same one clear line, before any shard starts.
#[test]
fn sharded_serve_without_the_netmap_module_says_so_and_fails() {
    if Path::new("/dev/netmap").exists() {
        eprintln!("skipped: /dev/netmap exists on this machine");
        return;
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/netmap.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_rumpnet"))
        .args(["serve", "--backend", "netmap", "--cores", "0,1", "--config"])
        .arg(&config)
        .args(["--addr", "10.77.0.2/24"])
        .output()
        .expect("run rumpnet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("netmap kernel module not loaded"),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

/// A port that cannot be split into one ring pair per shard is refused with the reason,
/// whether or not netmap is there (the name is checked before `/dev/netmap` is opened).
#[test]
fn sharded_serve_on_a_single_ring_netmap_port_names_the_problem() {
    let dir = std::env::temp_dir().join(format!("rumpnet-netmap-cores-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("one-ring.toml");
    std::fs::write(
        &config,
        "backend = \"netmap\"\naddr = \"10.77.0.2/24\"\n[netmap]\nport = \"netmap:eth0-1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rumpnet"))
        .args(["serve", "--cores", "0,1", "--config"])
        .arg(&config)
        .output()
        .expect("run rumpnet");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("names ring pair 1 only") && stderr.contains("netmap:eth0-i"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
