#!/usr/bin/env bash
# Install what rumpnet's optional backends, CI and captures need on Debian/Ubuntu.
#
# A plain `cargo build` / `cargo test` needs nothing from here; this is for the `dpdk`
# feature (libdpdk via pkg-config, hwloc), tshark (CI opens the link's pcap captures) and
# the tools the TAP/netns tests will use. Run as root. Idempotent: packages already
# installed are skipped, and `apt-get update` runs only when something is missing, so a
# second run does not touch the network.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    tshark         # reads the pcap captures the in-memory link writes
    iproute2       # `ip netns`, veth/TAP setup for the Linux-peer tests
    pkg-config     # how io-dpdk's build.rs finds libdpdk
    libdpdk-dev    # the `dpdk` feature of rumpnet-io-dpdk
    dpdk-dev       # DPDK tools and headers used by the DPDK backend tests
    libhwloc-dev   # core/NUMA topology for pinning shards (the `hwloc` feature)
    libudev-dev    # hwloc's private link dependency (hwlocality links with `pkg-config --static`)
    ethtool        # offload settings of TAP/veth devices in the tests
    python3        # helper scripts
    iputils-ping   # `ping` from inside the netns in the TAP tests
    arping         # ARP probes from inside the netns in the TAP tests
    curl           # HTTP client of the TAP interop tests
)

log() { printf 'install-deps: %s\n' "$*"; }

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if is_installed "$pkg"; then
        log "already installed: $pkg"
    else
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing packages: ${missing[*]}; run this script as root" >&2
        exit 1
    fi
    # tshark asks whether non-root users may capture; answer "no" so it never prompts.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    log "apt-get update (missing: ${missing[*]})"
    apt-get update -qq
    log "installing: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    for pkg in "${missing[@]}"; do
        is_installed "$pkg" || { log "failed to install $pkg" >&2; exit 1; }
    done
    log "installed: ${missing[*]}"
else
    log "all system packages present; nothing to install"
fi

# The Rust toolchain comes from rustup, not apt. A non-login shell may lack ~/.cargo/bin.
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
        export PATH="${HOME:-/root}/.cargo/bin:$PATH"
        log "added ${HOME:-/root}/.cargo/bin to PATH"
    else
        log "cargo not found: install the Rust toolchain with rustup (https://rustup.rs)" >&2
        exit 1
    fi
fi
log "$(cargo --version)"

# CI runs `cargo fmt --check` and `cargo clippy`; make sure both components exist.
for comp in rustfmt clippy; do
    if [ "$comp" = rustfmt ]; then probe=(cargo fmt --version); else probe=(cargo clippy --version); fi
    if "${probe[@]}" >/dev/null 2>&1; then
        log "$("${probe[@]}")"
    elif command -v rustup >/dev/null 2>&1; then
        log "rustup component add $comp"
        rustup component add "$comp"
    else
        log "$comp is missing and rustup is not available to add it" >&2
        exit 1
    fi
done
