//! Finds the system libdpdk with pkg-config, and only when the `dpdk` feature is on, so
//! that a plain `cargo build` of the workspace needs nothing beyond cargo.

use std::env;
use std::process;

/// The oldest DPDK whose ABI the backend is written against (Debian 12 ships 22.11 LTS).
const MIN_DPDK_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if env::var_os("CARGO_FEATURE_DPDK").is_none() {
        return;
    }
    match pkg_config::Config::new()
        .atleast_version(MIN_DPDK_VERSION)
        .probe("libdpdk")
    {
        Ok(lib) => {
            println!("cargo:rustc-env=RUMPNET_DPDK_PKG_VERSION={}", lib.version);
        }
        Err(e) => {
            eprintln!(
                "error: libdpdk not found by pkg-config: run scripts/install-deps.sh \
                 (needs libdpdk >= {MIN_DPDK_VERSION})\n\n{e}"
            );
            process::exit(1);
        }
    }
}
