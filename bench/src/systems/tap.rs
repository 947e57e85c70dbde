//! rumpnet over TAP against a Linux client: the stack on a TAP device inside a network
//! namespace made for the run, the Linux kernel on the other side of the TAP with the
//! workload's client on kernel sockets. What a user sees when they put rumpnet behind
//! a TAP on their machine; the kernel's half of the path (its TCP, the TUN driver, one
//! system call per frame) is in every figure, so this is not rumpnet alone.
//!
//! The server (rumpnet) thread enters the namespace, creates the TAP there (with the
//! virtio-net header: checksum offload and TSO/GSO with the kernel), gives the kernel
//! side 10.204.0.1/24 and takes 10.204.0.2 itself. The client thread enters the same
//! namespace and connects to it with the same kernel-socket code as the Linux rows.
//! Same core: both pinned to core 0, and the stack sleeps on the TAP's descriptor
//! when a poll found nothing (spinning would take the core from the client); cross
//! core: the stack on core 1 polls without pause.
//!
//! Needs root (namespaces, /dev/net/tun); the suite runs it only then.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration as StdDuration, Instant as WallInstant};

use rumpnet_io_tap::{IdlePolicy, TapDevice, TapOptions};
use rumpnet_stack::iface::{InterfaceConfig, Port};
use rumpnet_stack::rand::Rand;
use rumpnet_stack::tcp::{TcpListenerHandle, TcpSocketOptions};
use rumpnet_stack::time::Instant;
use rumpnet_stack::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use rumpnet_stack::{Stack, StackConfig};

use super::linux::{LinuxSockets, Netns};
use super::rumpnet::socket_options;
use super::stack_sockets::StackSockets;
use super::{sample, stall_limit, BenchError, Placement, Sample};
use crate::machine;
use crate::workload::{Client, Server, Spec};

/// The kernel's side of the TAP.
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 204, 0, 1);
/// The stack's address behind the TAP.
const STACK_ADDR: Ipv4Addr = Ipv4Addr::new(10, 204, 0, 2);
/// The port the stack listens on.
const PORT: u16 = 5001;

/// The stack behind the TAP, listening.
fn server_stack(
    mtu: usize,
    opts: TcpSocketOptions,
    backlog: usize,
) -> Result<(Stack, TcpListenerHandle), BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let mut stack = Stack::new(StackConfig::default(), Rand::from_u64(7));
    let mut iface = InterfaceConfig::new(
        EthernetAddress([0x02, 0x72, 10, 204, 0, 2]),
        Ipv4Cidr::new(STACK_ADDR, 24).ok_or_else(|| setup(&"bad prefix"))?,
    );
    iface.mtu = Some(mtu);
    stack.add_interface(iface).map_err(|e| setup(&e))?;
    let l = stack
        .tcp_listen_with(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT),
            backlog,
            opts,
        )
        .map_err(|e| setup(&e))?;
    Ok((stack, l))
}

/// Run a timed workload once: rumpnet serves on a TAP, the Linux kernel's sockets are
/// the client. `mtu` is the TAP's.
pub fn run(spec: &Spec, placement: Placement, mtu: usize) -> Result<Sample, BenchError> {
    let spec = *spec;
    let ns = Netns::new(1500)?;
    let tap_name = format!("rbt{}", std::process::id() % 100_000_000);
    let (client_core, server_core) = placement.cores();
    let same_core = client_core == server_core;
    let epoch = WallInstant::now();
    let cpu0 = machine::process_cpu_time();
    let limit = epoch + spec.warmup() + spec.duration + stall_limit(&spec);
    let client_done = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<SocketAddr, String>>();
    let (client, server) = thread::scope(|s| {
        let (client_done, failed, ns, tap_name) = (&client_done, &failed, &ns, &tap_name);
        let server = s.spawn(move || -> Result<_, BenchError> {
            let ready = (|| -> Result<_, BenchError> {
                ns.enter()?;
                machine::pin_to_core(server_core);
                let topts = TapOptions {
                    mtu: Some(mtu),
                    offloads: true,
                    idle: IdlePolicy::BusyPoll,
                    ..TapOptions::default()
                };
                let tap = TapDevice::open(tap_name, &topts)
                    .map_err(|e| BenchError::Setup(format!("tap: {e}")))?;
                let host = Ipv4Cidr::new(HOST_ADDR, 24)
                    .ok_or_else(|| BenchError::Setup("bad prefix".into()))?;
                tap.set_host_addr(host)
                    .map_err(|e| BenchError::Setup(format!("tap: {e}")))?;
                let backlog = StackConfig::default().tcp.max_accept_backlog;
                let (stack, l) = server_stack(mtu, socket_options(&spec), backlog)?;
                Ok((tap, stack, l))
            })();
            let (tap, mut stack, listener) = match ready {
                Ok(r) => {
                    let _ = tx.send(Ok(SocketAddr::V4(SocketAddrV4::new(STACK_ADDR, PORT))));
                    r
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Err(e);
                }
            };
            let mut ports = [Port::new(tap)];
            let mut server = Server::new(spec, epoch);
            loop {
                let now = WallInstant::now();
                let t = Instant::from_micros(now.duration_since(epoch).as_micros() as u64);
                let r = stack.poll(t, &mut ports);
                let moved = server.step(
                    &mut StackSockets {
                        stack: &mut stack,
                        listener: Some(listener),
                        opts: socket_options(&spec),
                        client: None,
                    },
                    now,
                );
                let moved = match moved {
                    Ok(m) => m,
                    Err(e) => {
                        failed.store(true, Ordering::Release);
                        return Err(e.into());
                    }
                };
                if moved {
                    // Send what the server queued at once.
                    stack.poll(t, &mut ports);
                }
                if client_done.load(Ordering::Acquire) {
                    server.finish();
                }
                if server.done() {
                    // The last FINs and ACKs go out before the TAP closes.
                    stack.poll(t, &mut ports);
                    return Ok(server);
                }
                if failed.load(Ordering::Acquire) || now > limit {
                    failed.store(true, Ordering::Release);
                    return Err(BenchError::Stalled("rumpnet tap server"));
                }
                let idle = r.rx_frames == 0 && r.tx_frames == 0 && !moved;
                if same_core && idle && ports[0].tx_backlog() == 0 {
                    let due = stack.poll_at().map(|at| at.saturating_duration_since(t));
                    let timeout = due.map_or(StdDuration::from_millis(10), |d| {
                        d.min(StdDuration::from_millis(10))
                    });
                    let _ = ports[0].device_mut().wait(Some(timeout));
                }
            }
        });
        let client = s.spawn(move || -> Result<_, BenchError> {
            ns.enter()?;
            machine::pin_to_core(client_core);
            let addr = rx
                .recv()
                .map_err(|_| BenchError::Setup("the server thread died".into()))?
                .map_err(BenchError::Setup)?;
            let mut sockets = LinuxSockets::new(addr, None, &spec);
            let mut client = Client::new(spec, epoch);
            let result = loop {
                let moved = match client.step(&mut sockets, WallInstant::now()) {
                    Ok(m) => m,
                    Err(e) => break Err(e.into()),
                };
                if client.done() {
                    break Ok(());
                }
                if failed.load(Ordering::Acquire) || WallInstant::now() > limit {
                    break Err(BenchError::Stalled("linux client of rumpnet tap"));
                }
                if !moved && !sockets.is_blocking() {
                    sockets.wait();
                }
            };
            client_done.store(true, Ordering::Release);
            if result.is_err() {
                failed.store(true, Ordering::Release);
            }
            result.map(|()| client)
        });
        (
            client
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("client thread panicked".into()))),
            server
                .join()
                .unwrap_or_else(|_| Err(BenchError::Setup("server thread panicked".into()))),
        )
    });
    let (client, server) = (client?, server?);
    let wall = epoch.elapsed();
    let cpu = machine::process_cpu_time().saturating_sub(cpu0);
    sample(&spec, client.outcome(), &server.outcome(), cpu, wall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Kind;

    /// Root only (a namespace and a TAP); under `CI=true` a skip is a failure.
    #[test]
    fn workloads_run_over_tap_against_linux() {
        if !machine::is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root: rumpnet over TAP must be measured"
            );
            eprintln!("skipped: rumpnet over TAP needs root");
            return;
        }
        for (kind, conns) in [
            (Kind::Stream, 1),
            (Kind::Rr, 1),
            (Kind::Rr, 4),
            (Kind::Crr, 1),
        ] {
            let spec = Spec {
                kind,
                conns,
                msg: if kind == Kind::Stream { 65536 } else { 64 },
                duration: StdDuration::from_millis(200),
            };
            let s = run(&spec, Placement::SameCore, 1500)
                .unwrap_or_else(|e| panic!("{kind:?}/{conns}: {e}"));
            assert!(s.value > 0.0, "{kind:?}: {s:?}");
            assert!(s.checked > 0, "{kind:?}: {s:?}");
        }
    }
}
