//! An echo server (RFC 862) that runs *on the shards*: each shard's loop calls it
//! with the batch of socket events of its poll, and it reads, writes and accepts on
//! its own shard's stack without crossing threads or taking a lock. Software RSS
//! spreads the connections over the shards.
//!
//! Without root or hardware it runs end to end in one process: the server runtime
//! (10.0.0.2, 2 shards) and, on the far end of an in-memory link, a client runtime
//! (10.0.0.1) whose threads use the std-like `rumpnet::net::TcpStream`.
//!
//! ```text
//! cargo run --example shard_echo            # 8 clients x 1 MiB
//! cargo run --example shard_echo -- 32 4    # 32 clients x 4 MiB
//! ```

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddrV4};
use std::time::Instant;

use rumpnet::iface::InterfaceConfig;
use rumpnet::link::{self, LinkConfig};
use rumpnet::net::{NetConfig, NetRuntime, TcpStream};
use rumpnet::runtime::{Mode, Queue, Runtime, RuntimeConfig, ShardApp, ShardCtx};
use rumpnet::tcp::{TcpError, TcpEvent, TcpHandle, TcpSocketRef};
use rumpnet::wire::{EthernetAddress, Ipv4Addr};

const PORT: u16 = 7;
/// Bytes a connection may hold unsent before the server stops reading it
/// (backpressure: a client that does not read is not buffered for).
const PENDING_MAX: usize = 64 * 1024;

/// One shard's echo server.
#[derive(Default)]
struct Echo {
    /// Bytes read and not yet written back, per connection.
    pending: HashMap<TcpHandle, Vec<u8>>,
    accepted: u64,
    echoed: u64,
}

impl Echo {
    fn serve(&mut self, ctx: &mut ShardCtx<'_>, h: TcpHandle) {
        let Some(out) = self.pending.get_mut(&h) else {
            return;
        };
        let stack = ctx.stack();
        let mut buf = [0u8; 16 * 1024];
        let mut eof = false;
        loop {
            // Write back first, so reading never outruns the peer.
            while !out.is_empty() {
                match stack.tcp_send(h, out) {
                    Ok(n) => {
                        out.drain(..n);
                        self.echoed += n as u64;
                    }
                    Err(_) => break,
                }
            }
            if out.len() >= PENDING_MAX {
                break;
            }
            let room = (PENDING_MAX - out.len()).min(buf.len());
            match stack.tcp_recv(h, &mut buf[..room]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(TcpError::WouldBlock) => break,
                Err(_) => {
                    eof = true;
                    out.clear();
                    break;
                }
            }
        }
        if eof && out.is_empty() {
            let _ = stack.tcp_close(h);
            self.pending.remove(&h);
        }
    }
}

impl ShardApp for Echo {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        ctx.tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT), 1024)
            .expect("listen");
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        for ev in events {
            match ev.socket {
                TcpSocketRef::Listener(l) => {
                    while let Ok((h, _)) = ctx.tcp_accept(l) {
                        self.accepted += 1;
                        self.pending.insert(h, Vec::new());
                        self.serve(ctx, h);
                    }
                }
                TcpSocketRef::Connection(h) => self.serve(ctx, h),
            }
        }
    }
}

fn runtime_config(last: u8, cidr: &str) -> RuntimeConfig {
    let iface = InterfaceConfig::new(
        EthernetAddress([2, 0, 0, 0, 0, last]),
        cidr.parse().unwrap(),
    );
    let mut c = RuntimeConfig::new(2, Mode::Pipelined, iface);
    c.pin = false;
    c
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let mib: usize = args.next().map_or(Ok(1), |a| a.parse())?;
    let len = mib << 20;

    let (server_end, client_end) = link::pair(LinkConfig::default());
    let server = Runtime::start(
        runtime_config(2, "10.0.0.2/24"),
        vec![Queue::new(server_end, 0)],
        |_| Echo::default(),
    )?;
    let client_rt = NetRuntime::start(
        runtime_config(1, "10.0.0.1/24"),
        NetConfig::default(),
        vec![Queue::new(client_end, 0)],
    )?;
    client_rt.install_default();

    let t = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|id| {
            std::thread::spawn(move || -> std::io::Result<usize> {
                let stream = TcpStream::connect(("10.0.0.2", PORT))?;
                let mut writer = stream.try_clone()?;
                let w = std::thread::spawn(move || -> std::io::Result<()> {
                    let chunk: Vec<u8> = (0..65536u32).map(|i| (i as u8) ^ (id as u8)).collect();
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        writer.write_all(&chunk[..n])?;
                        left -= n;
                    }
                    writer.shutdown(Shutdown::Write)
                });
                let mut reader = stream;
                let mut buf = vec![0u8; 65536];
                let mut got = 0usize;
                loop {
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    for (k, &b) in buf[..n].iter().enumerate() {
                        let i = (got + k) % 65536;
                        if b != (i as u8) ^ (id as u8) {
                            return Err(std::io::Error::other(format!(
                                "client {id}: bad byte at {}",
                                got + k
                            )));
                        }
                    }
                    got += n;
                }
                w.join().expect("writer")?;
                Ok(got)
            })
        })
        .collect();
    let mut total = 0;
    for (id, th) in threads.into_iter().enumerate() {
        let got = th.join().expect("client thread")?;
        if got != len {
            return Err(format!("client {id}: {got} of {len} bytes came back").into());
        }
        total += got;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{clients} clients echoed and verified {total} bytes in {:.2} s ({:.1} MB/s each way)",
        secs,
        total as f64 / secs / 1e6
    );

    client_rt.shutdown()?;
    let report = server.shutdown()?;
    for (i, app) in report.apps.iter().enumerate() {
        println!(
            "shard {i}: accepted {} connections, echoed {} bytes",
            app.accepted, app.echoed
        );
    }
    Ok(())
}
