#!/usr/bin/env python3
"""Capture real frames that the Linux kernel sends, as test vectors for stack/src/wire.

Run as root:  python3 scripts/capture-linux-frames.py [OUTDIR]
(OUTDIR defaults to stack/src/wire/testdata next to this script's repository.)

Two private network namespaces joined by a veth pair (10.99.0.1/24 <-> 10.99.0.2/24)
with an 802.1Q subinterface (vid 42, 10.99.42.1/24 <-> .2) on top. An AF_PACKET socket
on host A's veth records everything that crosses it, while the kernel is made to talk:
ARP, ICMP echo (ping sockets), UDP (small, fragmented, to a closed port), TCP (a
kernel connect to a python listener) and an echo request carrying the IPv4 record-route
option. Checksum/segmentation offloads and VLAN tag acceleration are switched off with
the ethtool ioctl so the captured bytes are exactly what a NIC would put on the wire.
Every generated packet stays inside the two namespaces, which are removed at the end.

The same file is re-executed inside the namespaces (`ip netns exec NS python3 THIS
--role ROLE ...`) for the capture, server and client parts; only the standard library
is used.
"""

import array
import ctypes
import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

PID = os.getpid()
NS_A = f"rumpnet-capA-{PID}"
NS_B = f"rumpnet-capB-{PID}"
VETH_A = "veth0"  # names inside the namespaces; they cannot clash with the host's
VETH_B = "veth0"
VLAN_DEV = "vlan0"  # only without 8021q support: the veth whose traffic eBPF tags
MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"
IP_A, IP_B = "10.99.0.1", "10.99.0.2"
VIP_A, VIP_B = "10.99.42.1", "10.99.42.2"
VID = 42
UDP_PORT = 7777  # the server listens here
UDP_CLOSED_PORT = 9  # nothing listens: the kernel answers port unreachable
UDP_SRC_PORT = 40000
TCP_PORT = 8080
TCP_SRC_PORT = 40001
PING_IDENT = 0x1234
IP_MTU_DISCOVER = 10  # linux/in.h (not exported by the socket module)
IP_PMTUDISC_DONT = 0

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

# linux/ethtool.h legacy commands (struct ethtool_value { u32 cmd; u32 data; })
SIOCETHTOOL = 0x8946
ETHTOOL_SRXCSUM = 0x15
ETHTOOL_STXCSUM = 0x17
ETHTOOL_SSG = 0x19
ETHTOOL_STSO = 0x1F
ETHTOOL_SGSO = 0x24
ETHTOOL_GFLAGS = 0x25
ETHTOOL_SFLAGS = 0x26
ETHTOOL_SGRO = 0x2C
ETH_FLAG_TXVLAN = 1 << 7
ETH_FLAG_RXVLAN = 1 << 8


def run(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def in_ns(ns, *args, check=True):
    return run("ip", "netns", "exec", ns, *args, check=check)


# ----------------------------------------------------------------------------- offloads


def ethtool_value(ifname, cmd, data=0):
    """One legacy ethtool ioctl; returns the data word (for the GET commands)."""
    val = array.array("I", [cmd, data])
    addr, _ = val.buffer_info()
    ifreq = struct.pack("16sP", ifname.encode(), addr) + b"\0" * 16
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
    return val[1]


def role_offloads_off(ifnames):
    """Like `ethtool -K DEV tx off rx off sg off tso off gso off gro off txvlan off rxvlan off`."""
    for ifname in ifnames:
        for cmd in (ETHTOOL_STXCSUM, ETHTOOL_SRXCSUM, ETHTOOL_SSG, ETHTOOL_STSO,
                    ETHTOOL_SGSO, ETHTOOL_SGRO):
            try:
                ethtool_value(ifname, cmd, 0)
            except OSError as e:
                print(f"offload cmd {cmd:#x} on {ifname}: {e}", file=sys.stderr)
        try:
            flags = ethtool_value(ifname, ETHTOOL_GFLAGS)
            ethtool_value(ifname, ETHTOOL_SFLAGS,
                          flags & ~(ETH_FLAG_TXVLAN | ETH_FLAG_RXVLAN))
        except OSError as e:
            print(f"vlan offload on {ifname}: {e}", file=sys.stderr)


# ----------------------------------------------------------------------------- capture


def role_capture(out_path, ifnames):
    """Record every frame on `ifnames` until stdin closes: (pkttype u8, len u32, bytes)*."""
    socks = []
    for ifname in ifnames:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        s.bind((ifname, ETH_P_ALL))
        socks.append(s)
    print("ready", flush=True)
    with open(out_path, "wb") as out:
        while True:
            r, _, _ = select.select(socks + [sys.stdin], [], [])
            for s in r:
                if s is sys.stdin:
                    continue
                data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
                for level, typ, cdata in anc:
                    if level != SOL_PACKET or typ != PACKET_AUXDATA or len(cdata) < 20:
                        continue
                    status, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH", cdata[:20])
                    # The kernel may hold the 802.1Q tag out of band (skb metadata, e.g.
                    # on receive); put it back where the wire has it, as libpcap does.
                    if status & TP_STATUS_VLAN_VALID:
                        if not status & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
                out.write(struct.pack("!BI", addr[2], len(data)) + data)
                out.flush()
            if sys.stdin in r:
                if not sys.stdin.buffer.read1(1):
                    return


# ----------------------------------------------------------------------------- VLAN via eBPF

BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47
BPF_FUNC_SKB_VLAN_PUSH = 18
BPF_FUNC_SKB_VLAN_POP = 19
SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)


def bpf_insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


MOV64_IMM, CALL, EXIT = 0xB7, 0x85, 0x95


def bpf(cmd, attr):
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, 128)
    fd = libc.syscall(SYS_BPF, cmd, buf, 128)
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"bpf cmd {cmd}: {os.strerror(ctypes.get_errno())}")
    return fd


def tcx_attach(ifname, attach_type, insns):
    """Loads a tc (SCHED_CLS) program and links it to `ifname`; returns the link fd, which
    keeps it attached for as long as this process lives."""
    code = ctypes.create_string_buffer(b"".join(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQ", BPF_PROG_TYPE_SCHED_CLS, len(insns),
                       ctypes.addressof(code), ctypes.addressof(lic), 0, 0, 0)
    prog = bpf(BPF_PROG_LOAD, attr)
    attr = struct.pack("<IIII", prog, socket.if_nametoindex(ifname), attach_type, 0)
    return bpf(BPF_LINK_CREATE, attr)


def role_vlan_tagger(ifname):
    """What an 802.1Q subinterface does, for kernels built without CONFIG_VLAN_8021Q:
    bpf_skb_vlan_push(skb, 0x8100, VID) on egress, bpf_skb_vlan_pop on ingress."""
    push = [bpf_insn(MOV64_IMM, dst=2, imm=socket.htons(0x8100)),
            bpf_insn(MOV64_IMM, dst=3, imm=VID),
            bpf_insn(CALL, imm=BPF_FUNC_SKB_VLAN_PUSH),
            bpf_insn(MOV64_IMM, dst=0, imm=0),  # TCX_PASS
            bpf_insn(EXIT)]
    pop = [bpf_insn(CALL, imm=BPF_FUNC_SKB_VLAN_POP),
           bpf_insn(MOV64_IMM, dst=0, imm=0),
           bpf_insn(EXIT)]
    links = [tcx_attach(ifname, BPF_TCX_EGRESS, push), tcx_attach(ifname, BPF_TCX_INGRESS, pop)]
    print("ready", flush=True)
    sys.stdin.buffer.read()
    for fd in links:
        os.close(fd)


# ----------------------------------------------------------------------------- server (B)


def role_server():
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((IP_B, UDP_PORT))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((IP_B, TCP_PORT))
    tcp.listen(4)
    print("ready", flush=True)
    conns = []
    while True:
        r, _, _ = select.select([udp, tcp, sys.stdin] + conns, [], [])
        for s in r:
            if s is udp:
                udp.recv(65536)
            elif s is tcp:
                c, _ = tcp.accept()
                conns.append(c)
            elif s is sys.stdin:
                if not sys.stdin.buffer.read1(1):
                    return
            else:
                if not s.recv(65536):
                    s.close()
                    conns.remove(s)


# ----------------------------------------------------------------------------- client (A)


def ping(src, dst, seq, ip_options=None):
    """One echo request from a kernel ping socket (the kernel writes ident and checksum)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.bind((src, PING_IDENT))
    if ip_options is not None:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, ip_options)
    # type 8, code 0, checksum/ident filled by the kernel, then 56 data bytes like ping(8).
    data = bytes(range(0x10, 0x10 + 56))
    s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, seq) + data, (dst, 0))
    s.settimeout(2)
    s.recv(2048)  # the reply; proves the exchange completed
    s.close()


def role_client():
    # Let this namespace's root open ping sockets.
    with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
        f.write("0 2147483647")
    pause = lambda: time.sleep(0.3)

    # 1. First packet to B: the kernel resolves B with ARP (request, reply), then sends.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((IP_A, UDP_SRC_PORT))
    u.sendto(b"rumpnet udp test\n", (IP_B, UDP_PORT))
    pause()
    # 2. A datagram larger than the MTU: the kernel fragments it (DF clear).
    u.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    u.sendto(bytes(i & 0xFF for i in range(3000)), (IP_B, UDP_PORT))
    pause()
    # 3. To a closed port: B's kernel answers ICMP port unreachable.
    u.sendto(b"anyone there?", (IP_B, UDP_CLOSED_PORT))
    pause()
    u.close()
    # 4. Echo request and reply.
    ping(IP_A, IP_B, 1)
    pause()
    # 5. The same over VLAN 42.
    ping(VIP_A, VIP_B, 2)
    pause()
    # 6. An echo request with the record-route option (what `ping -R` sends):
    #    type 7, length 39, pointer 4, nine empty slots, then one End-of-options byte.
    ping(IP_A, IP_B, 3, ip_options=bytes([7, 39, 4]) + bytes(36) + bytes([0]))
    pause()
    # 7. TCP: a kernel connect (SYN with MSS, SACK-permitted, timestamps, window scale),
    #    the handshake's ACK, a data segment, then close.
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind((IP_A, TCP_SRC_PORT))
    t.connect((IP_B, TCP_PORT))
    pause()
    t.sendall(b"hello rumpnet\n")
    pause()
    t.close()
    pause()


# ----------------------------------------------------------------------------- parent


def classify(records):
    """Pick the named frames out of the capture; the first match of each name wins."""
    named = {}

    def put(name, frame):
        named.setdefault(name, frame)

    frag_offsets = []
    for pkttype, f in records:
        outgoing = pkttype == PACKET_OUTGOING
        if len(f) < 14:
            continue
        etype = struct.unpack("!H", f[12:14])[0]
        l3, vlan = f[14:], False
        if etype == 0x8100 and len(f) >= 18:
            vlan = True
            etype = struct.unpack("!H", f[16:18])[0]
            l3 = f[18:]
        if etype == 0x0806 and not vlan and len(l3) >= 8:
            op = struct.unpack("!H", l3[6:8])[0]
            put({1: "arp_request", 2: "arp_reply"}.get(op, "arp_other"), f)
            continue
        if etype != 0x0800 or len(l3) < 20:
            continue
        ihl = (l3[0] & 0xF) * 4
        proto = l3[9]
        flags_off = struct.unpack("!H", l3[6:8])[0]
        mf, off = bool(flags_off & 0x2000), (flags_off & 0x1FFF) * 8
        l4 = l3[ihl:]
        if vlan:
            if proto == 1 and l4[:1] == b"\x08":
                put("vlan_icmp_echo_request", f)
            continue
        if ihl > 20:
            if proto == 1 and l4[:1] == b"\x08":
                put("ipv4_options", f)
            elif proto == 1 and l4[:1] == b"\x00":
                put("ipv4_options_reply", f)
            continue
        if mf or off:
            frag_offsets.append(off)
            if off == 0:
                put("udp_frag_first", f)
            elif not mf:
                put("udp_frag_last", f)
            else:
                put("udp_frag_middle", f)
            continue
        if proto == 17 and len(l4) >= 8:
            dport = struct.unpack("!H", l4[2:4])[0]
            if dport == UDP_PORT:
                put("udp_datagram", f)
            elif dport == UDP_CLOSED_PORT:
                put("udp_to_closed_port", f)
        elif proto == 1 and l4:
            kind = {0: "icmp_echo_reply", 8: "icmp_echo_request"}.get(l4[0])
            if l4[0] == 3 and l4[1:2] == b"\x03":
                kind = "icmp_port_unreachable"
            if kind:
                put(kind, f)
        elif proto == 6 and len(l4) >= 20:
            flags = l4[13]
            hlen = (l4[12] >> 4) * 4
            datalen = len(l4) - hlen
            syn, ack, fin = flags & 0x02, flags & 0x10, flags & 0x01
            if syn and not ack:
                put("tcp_syn", f)
            elif syn and ack:
                put("tcp_synack", f)
            elif fin:
                put("tcp_fin" if outgoing else "tcp_fin_peer", f)
            elif ack and datalen == 0 and outgoing and "tcp_data" not in named:
                put("tcp_ack_ts", f)
            elif ack and datalen > 0 and outgoing:
                put("tcp_data", f)
    return named


def setup():
    """Creates the namespaces and links; returns the VLAN mode, "8021q" or "bpf"."""
    run("ip", "netns", "add", NS_A)
    run("ip", "netns", "add", NS_B)
    for ns in (NS_A, NS_B):
        # No IPv6: keeps router solicitations and MLD reports out of the capture.
        in_ns(ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                              "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
              check=False)
        in_ns(ns, "ip", "link", "set", "lo", "up")
    veth_pair(f"rna{PID}", f"rnb{PID}", VETH_A, IP_A, VETH_B, IP_B)
    mode = "8021q"
    for ns, dev, vip in ((NS_A, VETH_A, VIP_A), (NS_B, VETH_B, VIP_B)):
        vdev = f"{dev}.{VID}"
        r = in_ns(ns, "ip", "link", "add", "link", dev, "name", vdev, "type", "vlan",
                  "id", str(VID), check=False)
        if r.returncode != 0:
            mode = "bpf"
            break
        in_ns(ns, sys.executable, os.path.abspath(__file__), "--role", "offloads", vdev)
        in_ns(ns, "ip", "addr", "add", f"{vip}/24", "dev", vdev)
        in_ns(ns, "ip", "link", "set", vdev, "up")
    if mode == "bpf":
        print(f"no 802.1Q subinterfaces ({r.stderr.strip()}): tagging with tc eBPF on "
              f"a second veth pair, {VLAN_DEV}", file=sys.stderr)
        veth_pair(f"rva{PID}", f"rvb{PID}", VLAN_DEV, VIP_A, VLAN_DEV, VIP_B)
    time.sleep(0.5)
    return mode


def veth_pair(tmp_a, tmp_b, dev_a, ip_a, dev_b, ip_b):
    """A veth pair from NS_A to NS_B with fixed MACs, offloads off, addresses, up."""
    run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
    run("ip", "link", "set", tmp_a, "netns", NS_A, "name", dev_a)
    run("ip", "link", "set", tmp_b, "netns", NS_B, "name", dev_b)
    for ns, dev, mac, ip in ((NS_A, dev_a, MAC_A, ip_a), (NS_B, dev_b, MAC_B, ip_b)):
        in_ns(ns, "ip", "link", "set", dev, "address", mac, "mtu", "1500")
        in_ns(ns, sys.executable, os.path.abspath(__file__), "--role", "offloads", dev)
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", dev)
        in_ns(ns, "ip", "link", "set", dev, "up")


def teardown():
    for ns in (NS_A, NS_B):
        run("ip", "netns", "del", ns, check=False)


def child(ns, *args):
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                          *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"child {args} did not start")
    return p


def stop(p):
    if p is None:
        return
    try:
        p.stdin.close()
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "stack/src/wire/testdata")
    os.makedirs(outdir, exist_ok=True)
    raw_path = os.path.join(outdir, f".capture-{PID}.raw")
    children = []
    raw = b""
    # A SIGTERM should still remove the namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        mode = setup()
        ifaces = [VETH_A]
        if mode == "bpf":
            ifaces.append(VLAN_DEV)
            children.append(child(NS_A, "--role", "vlan-tagger", VLAN_DEV))
            children.append(child(NS_B, "--role", "vlan-tagger", VLAN_DEV))
        children.append(child(NS_A, "--role", "capture", raw_path, *ifaces))
        children.append(child(NS_B, "--role", "server"))
        r = in_ns(NS_A, sys.executable, os.path.abspath(__file__), "--role", "client",
                  check=False)
        if r.returncode != 0:
            raise RuntimeError(f"client failed: {r.stderr}")
        time.sleep(0.3)
    finally:
        for p in reversed(children):
            stop(p)
        teardown()
        try:
            with open(raw_path, "rb") as f:
                raw = f.read()
            os.unlink(raw_path)
        except FileNotFoundError:
            pass

    records = []
    i = 0
    while i + 5 <= len(raw):
        pkttype, n = struct.unpack("!BI", raw[i:i + 5])
        records.append((pkttype, raw[i + 5:i + 5 + n]))
        i += 5 + n
    named = classify(records)
    wanted = ["arp_request", "arp_reply", "icmp_echo_request", "icmp_echo_reply",
              "udp_datagram", "udp_frag_first", "udp_frag_middle", "udp_frag_last",
              "icmp_port_unreachable", "vlan_icmp_echo_request", "ipv4_options",
              "ipv4_options_reply", "tcp_syn", "tcp_synack", "tcp_ack_ts", "tcp_data"]
    missing = [w for w in wanted if w not in named]
    for name in wanted:
        if name in named:
            with open(os.path.join(outdir, name + ".bin"), "wb") as f:
                f.write(named[name])
            print(f"{name}.bin: {len(named[name])} bytes")
    print(f"{len(records)} frames captured; missing: {missing or 'none'}")
    return 1 if missing else 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (creates network namespaces)")
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role = sys.argv[2]
        if role == "offloads":
            role_offloads_off(sys.argv[3:])
        elif role == "capture":
            role_capture(sys.argv[3], sys.argv[4:])
        elif role == "vlan-tagger":
            role_vlan_tagger(sys.argv[3])
        elif role == "server":
            role_server()
        elif role == "client":
            role_client()
        sys.exit(0)
    sys.exit(main())
