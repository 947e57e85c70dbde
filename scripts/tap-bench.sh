#!/usr/bin/env bash
# Bulk TCP throughput of a Linux client against rumpnet over a TAP device, next to Linux
# against Linux over a veth pair, measured with the same client in the same run.
#
#   sudo scripts/tap-bench.sh [--bytes N] [--runs R] [--no-build]
#
# What runs (all in network namespaces this script creates, with names and 10.x.y.0/24
# subnets unique to its pid; they are removed on exit, also on failure or Ctrl-C):
#   rumpnet:  `rumpnet serve` (release build) on a TAP in namespace A, with its chargen
#             (RFC 864) and discard (RFC 863) servers; the client runs in A against the
#             kernel side of the TAP. Once with offloads (virtio-net header: checksum
#             offload, TSO/GSO both ways), once with `--offloads false`.
#   linux:    namespaces B and C joined by a veth pair; a Python server in C sends an
#             endless stream (like chargen) and discards what it reads (like discard).
#             Once with the veth's default offloads, once with them off (`ethtool -K`).
# The client is the same Python script everywhere (scripts are written to a temp dir):
#   download: connect to the sender, read N bytes into a 1 MiB buffer, close.
#   upload:   connect to the discard server, send N bytes from a 1 MiB buffer, shut down
#             the sending side and wait for the server's close (so every byte arrived).
# Each figure is the median of R runs, in Gbit/s of TCP payload (10^9 bit/s). Python's
# per-call cost is negligible at 1 MiB per call; the kernel does the work on the Linux
# side, so the client is the same load for every path.
set -euo pipefail

BYTES=$((1 << 30))
RUNS=3
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --bytes) BYTES="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "tap-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf 'tap-bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (TAP devices, network namespaces)"
[ -e /dev/net/tun ] || die "needs /dev/net/tun"
for t in ip python3 ethtool timeout; do
    command -v "$t" >/dev/null || die "needs $t (scripts/install-deps.sh)"
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BUILD" -eq 1 ]; then
    log "cargo build --release --bin rumpnet"
    (cd "$ROOT" && cargo build --release --bin rumpnet >&2)
fi
BIN="$TARGET/release/rumpnet"
[ -x "$BIN" ] || die "no release binary at $BIN (build it or drop --no-build)"
# pyenv shims do not work under `ip netns exec` (it remounts /sys): use the interpreter.
PY="$(python3 -c 'import sys; print(sys.executable)')"

ID=$$
NS_A="rnbench-$ID-tap"
NS_B="rnbench-$ID-cli"
NS_C="rnbench-$ID-srv"
TAP="rnb${ID}t"
VETH_B="rnb${ID}b"
VETH_C="rnb${ID}c"
# 10.<240..249>.<0..255>: the pid picks the subnets.
NET_A="10.$((240 + ID % 10)).$(((ID / 10) % 128 * 2))"
NET_V="10.$((240 + ID % 10)).$(((ID / 10) % 128 * 2 + 1))"
TMP="$(mktemp -d)"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for ns in "$NS_A" "$NS_B" "$NS_C"; do
        if ip netns list | grep -qw "$ns"; then
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$TMP/client.py" <<'EOF'
import socket, sys, time
mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=10)
s.settimeout(30)
done = 0
start = time.monotonic()
if mode == "down":
    buf = bytearray(1 << 20)
    while done < n:
        k = s.recv_into(buf, min(len(buf), n - done))
        if k == 0:
            sys.exit("the server closed after %d bytes" % done)
        done += k
else:
    chunk = memoryview(bytes(range(256)) * 4096)
    while done < n:
        done += s.send(chunk[:min(len(chunk), n - done)])
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
secs = time.monotonic() - start
s.close()
print("%.3f" % (done * 8 / secs / 1e9))
EOF

cat >"$TMP/server.py" <<'EOF'
# Linux peer: an endless sender on port 19, a discard server on port 9.
import socket, sys, threading
chunk = memoryview(bytes(range(256)) * 4096)
def sender(c):
    try:
        while True:
            c.sendall(chunk)
    except OSError:
        pass
    c.close()
def discard(c):
    buf = bytearray(1 << 20)
    try:
        while c.recv_into(buf):
            pass
    except OSError:
        pass
    c.close()
def serve(port, handler):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(16)
    while True:
        c, _ = l.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(19, sender), daemon=True).start()
threading.Thread(target=serve, args=(9, discard), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
EOF

# wait_for FILE WORD: up to 20 s for WORD to appear in FILE.
wait_for() {
    for _ in $(seq 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "timed out waiting for '$2' in $1: $(cat "$1")"
}

# measure NS MODE HOST PORT: the median of RUNS runs, in Gbit/s.
measure() {
    local ns="$1" mode="$2" host="$3" port="$4" vals=()
    for _ in $(seq "$RUNS"); do
        vals+=("$(timeout 300 ip netns exec "$ns" "$PY" "$TMP/client.py" "$mode" "$host" "$port" "$BYTES")") \
            || die "client $mode to $host:$port failed"
    done
    log "  $mode: ${vals[*]} Gbit/s"
    local median
    median=$(printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
    # The median, then every run.
    echo "**$median** (${vals[*]})"
}

ROWS=()
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- rumpnet over the TAP
ip netns add "$NS_A"
ip -n "$NS_A" link set lo up
for offloads in true false; do
    log "rumpnet serve --offloads $offloads"
    ip netns exec "$NS_A" "$BIN" serve --tap "$TAP" --addr "$NET_A.2/24" --host-addr "$NET_A.1/24" \
        --chargen 19 --discard 9 --offloads "$offloads" >"$TMP/serve.out" 2>"$TMP/serve.err" &
    SERVER=$!
    PIDS+=("$SERVER")
    wait_for "$TMP/serve.out" '^ready'
    down=$(measure "$NS_A" down "$NET_A.2" 19)
    up=$(measure "$NS_A" up "$NET_A.2" 9)
    kill -TERM "$SERVER"
    wait "$SERVER" || die "rumpnet serve failed: $(cat "$TMP/serve.err")"
    ROWS+=("| Linux client ↔ rumpnet over TAP | $offloads | $down | $up |")
done

# ---- Linux over a veth pair
ip netns add "$NS_B"
ip netns add "$NS_C"
ip -n "$NS_B" link set lo up
ip -n "$NS_C" link set lo up
ip link add "$VETH_B" netns "$NS_B" type veth peer name "$VETH_C" netns "$NS_C"
ip -n "$NS_B" addr add "$NET_V.1/24" dev "$VETH_B"
ip -n "$NS_C" addr add "$NET_V.2/24" dev "$VETH_C"
ip -n "$NS_B" link set "$VETH_B" up
ip -n "$NS_C" link set "$VETH_C" up
ip netns exec "$NS_C" "$PY" "$TMP/server.py" >"$TMP/linux.out" 2>&1 &
PIDS+=("$!")
wait_for "$TMP/linux.out" listening
for offloads in true false; do
    state=on
    [ "$offloads" = true ] || state=off
    for pair in "$NS_B:$VETH_B" "$NS_C:$VETH_C"; do
        # Features a veth lacks are refused one by one; the rest are still set.
        ip netns exec "${pair%%:*}" ethtool -K "${pair##*:}" tx "$state" rx "$state" tso "$state" \
            gso "$state" gro "$state" >/dev/null 2>&1 || true
    done
    log "linux over veth, offloads $state"
    down=$(measure "$NS_B" down "$NET_V.2" 19)
    up=$(measure "$NS_B" up "$NET_V.2" 9)
    ROWS+=("| Linux client ↔ Linux over veth | $offloads | $down | $up |")
done

echo
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); kernel $(uname -r); $("$PY" --version)"
echo "- Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $RUNS runs of $BYTES bytes per figure; Gbit/s of TCP payload (10^9 bit/s), median in bold, then each run"
echo
echo "| path | offloads | download: server → Linux client | upload: Linux client → server |"
echo "|---|---|---:|---:|"
printf '%s\n' "${ROWS[@]}"
