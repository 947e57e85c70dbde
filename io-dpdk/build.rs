//! Finds the system libdpdk with pkg-config and compiles the C shim against it, only when
//! the `dpdk` feature is on, so that a plain `cargo build` of the workspace needs nothing
//! beyond cargo.
//!
//! The shim is compiled with every token of `pkg-config --cflags libdpdk`: DPDK's headers
//! need its `-include rte_config.h` and the `-march` the library was built with (the
//! inline burst functions use its SIMD); taking them from pkg-config instead of writing
//! them here keeps the build right on another distribution or a self-built DPDK.

use std::env;
use std::process::{self, Command};

/// The oldest DPDK whose ABI the backend is written against (Debian 12 ships 22.11 LTS).
const MIN_DPDK_VERSION: &str = "22.11";

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    process::exit(1);
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if env::var_os("CARGO_FEATURE_DPDK").is_none() {
        return;
    }
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let cflags = match Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => fail(&format!(
            "`{pkg_config} --cflags libdpdk` failed: run scripts/install-deps.sh \
             (needs libdpdk >= {MIN_DPDK_VERSION})\n{}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => fail(&format!(
            "cannot run `{pkg_config}`: {e}; run scripts/install-deps.sh"
        )),
    };
    // The shim first: its static library must come before the DPDK libraries it uses on
    // the link line, and cargo keeps the order the link directives are printed in.
    let mut build = cc::Build::new();
    build.file("shim/shim.c").warnings(true).opt_level(2);
    for flag in cflags.split_whitespace() {
        build.flag(flag);
    }
    build.compile("rumpnet_dpdk_shim");

    match pkg_config::Config::new()
        .atleast_version(MIN_DPDK_VERSION)
        .probe("libdpdk")
    {
        Ok(lib) => {
            println!("cargo:rustc-env=RUMPNET_DPDK_PKG_VERSION={}", lib.version);
        }
        Err(e) => fail(&format!(
            "libdpdk not found by pkg-config: run scripts/install-deps.sh \
             (needs libdpdk >= {MIN_DPDK_VERSION})\n\n{e}"
        )),
    }
}
