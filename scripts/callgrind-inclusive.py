#!/usr/bin/env python3
"""Inclusive instruction counts per function, inlined functions included.

callgrind_annotate's inclusive view knows only functions that were called; in a fat-LTO
build most of the segment path is inlined into `Stack::poll`. This reads a callgrind
profile taken with `--dump-instr=yes`, asks llvm-addr2line for every address's chain of
inlined frames, and charges each instruction (and each call's inclusive cost, at its
call site) to every distinct function on that chain.

    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \\
        cargo build --release -p rumpnet-bench --example path_cost
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=/tmp/rr.out \\
        target/release/examples/path_cost rr 20000 1
    scripts/callgrind-inclusive.py /tmp/rr.out target/release/examples/path_cost 20000 [filter]

Prints instructions per unit (the last number: transactions, connections) for the
binary's own code, largest first; `filter` keeps the names that contain it.
"""
import collections
import json
import re
import subprocess
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    profile, binary, units = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pattern = sys.argv[4] if len(sys.argv) > 4 else ""
    own = binary.rsplit("/", 1)[-1]
    cost = collections.Counter()
    names = {}
    obj = None
    addr = 0

    def name(kind, text):
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        key = (kind, m.group(1))
        if m.group(2):
            names[key] = m.group(2)
        return names.get(key)

    with open(profile) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("ob="):
                obj = name("ob", line[3:])
            elif line.startswith("cob="):
                name("ob", line[4:])
            elif line.startswith(("fn=", "cfn=")):
                name("fn", line.split("=", 1)[1])
            elif line.startswith(("calls=", "cfi=", "cfl=", "fl=", "fi=", "fe=")):
                continue
            elif line[0] in "0123456789+-*":
                parts = line.split()
                pos = parts[0]
                if pos.startswith("0x"):
                    addr = int(pos, 16)
                elif pos.startswith("+"):
                    addr += int(pos[1:])
                elif pos.startswith("-"):
                    addr -= int(pos[1:])
                if obj and obj.endswith(own) and len(parts) >= 3:
                    cost[addr] += int(parts[2])
    if not cost:
        sys.exit("no costs for the binary's code: was the profile taken with --dump-instr=yes?")
    addrs = sorted(cost)
    out = subprocess.run(
        ["llvm-addr2line", "-e", binary, "-f", "-i", "-C", "--output-style=JSON"],
        input="\n".join(hex(a) for a in addrs) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inclusive = collections.Counter()
    for row in out.splitlines():
        j = json.loads(row)
        if "Address" not in j:
            continue
        c = cost[int(j["Address"], 16)]
        seen = set()
        for frame in j["Symbol"]:
            fn = re.sub(r"::h[0-9a-f]{16}$", "", frame["FunctionName"])
            if fn and fn not in seen:
                seen.add(fn)
                inclusive[fn] += c
    for fn, c in inclusive.most_common():
        if pattern in fn:
            print(f"{c / units:9.1f}  {fn[-110:]}")


if __name__ == "__main__":
    main()
