//! The port of a small `std::net` program: an echo server (a thread per connection)
//! and clients that each stream a pattern through it from a writer thread while a
//! reader checks every byte that comes back. The same source is compiled twice, once
//! over `std::net` (run on loopback, which proves the program itself) and once over
//! `rumpnet_runtime::net` (the only change is the import path), and run over two
//! runtimes of 2 shards each joined by an in-memory link.

mod net_common;

use net_common::*;

macro_rules! echo_program {
    ($name:ident, $($net:tt)+) => {
        pub mod $name {
            use std::io::{self, Read, Write};
            use std::thread;
            use $($net)+::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};

            /// Run `clients` clients of `len` bytes each against an echo server bound
            /// to `bind`; `client_ip` is where clients connect. `on_client_thread` runs
            /// first in every client thread (and returns what must live as long as it).
            /// Returns the bytes verified.
            pub fn run<G>(
                bind: &str,
                client_ip: Ipv4Addr,
                clients: usize,
                len: usize,
                on_client_thread: &(dyn Fn() -> G + Sync),
            ) -> io::Result<usize> {
                let listener = TcpListener::bind(bind)?;
                let port = listener.local_addr()?.port();
                let server = thread::spawn(move || -> io::Result<()> {
                    let mut handlers = Vec::new();
                    for stream in listener.incoming().take(clients) {
                        let mut s = stream?;
                        handlers.push(thread::spawn(move || -> io::Result<()> {
                            let mut buf = [0u8; 4096];
                            loop {
                                let n = s.read(&mut buf)?;
                                if n == 0 {
                                    return Ok(());
                                }
                                s.write_all(&buf[..n])?;
                            }
                        }));
                    }
                    for h in handlers {
                        h.join().expect("handler panicked")?;
                    }
                    Ok(())
                });
                let verified = thread::scope(|scope| -> io::Result<usize> {
                    let mut joins = Vec::new();
                    for id in 0..clients {
                        joins.push(scope.spawn(move || -> io::Result<usize> {
                            let _guard = on_client_thread();
                            let addr = SocketAddr::from((client_ip, port));
                            let stream = TcpStream::connect(addr)?;
                            assert_eq!(stream.peer_addr()?, addr);
                            stream.set_nodelay(true)?;
                            let mut writer = stream.try_clone()?;
                            let w = thread::spawn(move || -> io::Result<()> {
                                let data: Vec<u8> = (0..len as u64)
                                    .map(|i| super::pattern(id as u64, i))
                                    .collect();
                                // Uneven chunks, so writes straddle ring and segment edges.
                                for chunk in data.chunks(1000 + id * 7) {
                                    writer.write_all(chunk)?;
                                }
                                writer.shutdown(Shutdown::Write)
                            });
                            let mut reader = stream;
                            let mut buf = vec![0u8; 3000];
                            let mut got = 0usize;
                            loop {
                                let n = reader.read(&mut buf)?;
                                if n == 0 {
                                    break;
                                }
                                for (k, &b) in buf[..n].iter().enumerate() {
                                    let i = (got + k) as u64;
                                    if b != super::pattern(id as u64, i) {
                                        return Err(io::Error::other(format!(
                                            "client {id}: byte {i} is {b:#x}"
                                        )));
                                    }
                                }
                                got += n;
                            }
                            w.join().expect("writer panicked")?;
                            assert_eq!(got, len, "client {id} got everything back");
                            Ok(got)
                        }));
                    }
                    let mut total = 0;
                    for j in joins {
                        total += j.join().expect("client panicked")?;
                    }
                    Ok(total)
                })?;
                server.join().expect("server panicked")?;
                Ok(verified)
            }
        }
    };
}

echo_program!(on_std, std::net);
echo_program!(on_rumpnet, rumpnet_runtime::net);

pub use net_common::pattern;

const CLIENTS: usize = 6;
const LEN: usize = 256 * 1024;

#[test]
fn the_program_itself_works_on_std_net() {
    let n = on_std::run(
        "127.0.0.1:0",
        std::net::Ipv4Addr::LOCALHOST,
        CLIENTS,
        LEN,
        &|| (),
    )
    .expect("std run");
    assert_eq!(n, CLIENTS * LEN);
}

#[test]
fn the_ported_program_works_on_rumpnet() {
    let _s = serial();
    let pair = Pair::start(2);
    let client = pair.client();
    let t = std::time::Instant::now();
    let n = on_rumpnet::run(
        "0.0.0.0:0",
        SERVER_IP.parse().unwrap(),
        CLIENTS,
        LEN,
        &|| client.enter(),
    )
    .expect("rumpnet run");
    assert_eq!(n, CLIENTS * LEN);
    eprintln!(
        "{CLIENTS} clients x {LEN} bytes echoed and verified in {:?}",
        t.elapsed()
    );
    // Both shards of the server took connections: the client's shards open in turn
    // from ports that hash to themselves, and the server's RSS (same key, same shard
    // count) maps each flow to the shard of the same index.
    let stats = pair.server.stats().unwrap();
    let accepted: Vec<u64> = stats
        .shards
        .iter()
        .map(|s| s.stack.tcp_passive_opens)
        .collect();
    assert_eq!(accepted.iter().sum::<u64>(), CLIENTS as u64, "{accepted:?}");
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
    pair.stop();
}
