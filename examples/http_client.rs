//! A `std`-style HTTP/1.1 client on rumpnet: the code that talks HTTP is what one
//! writes with `std::net::TcpStream`, with `rumpnet::net` imported instead.
//!
//! Without root or hardware it runs end to end in one process: the client's runtime
//! (10.0.0.2, 2 shards) and a server runtime (10.0.0.1) running rumpnet's built-in
//! HTTP server on its shards, joined by an in-memory link.
//!
//! ```text
//! cargo run --example http_client                 # GET / and GET /bytes/1000000
//! cargo run --example http_client -- /bytes/123   # any paths
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use rumpnet::iface::InterfaceConfig;
use rumpnet::link::{self, LinkConfig};
use rumpnet::net::{NetConfig, NetRuntime, TcpStream};
use rumpnet::runtime::{Mode, Queue, Runtime, RuntimeConfig};
use rumpnet::servers::{ServerPorts, ShardServers};
use rumpnet::wire::EthernetAddress;

/// A response: status line, headers, body.
type Response = (String, Vec<(String, String)>, Vec<u8>);

/// The client: plain std-style code.
fn get(host: &str, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rumpnet-example\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body)?;
    Ok((status.trim_end().to_string(), headers, body))
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
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let paths = if paths.is_empty() {
        vec!["/".to_string(), "/bytes/1000000".to_string()]
    } else {
        paths
    };

    // The wire, and the server on its far end: rumpnet's HTTP server on every shard.
    let (ours, theirs) = link::pair(LinkConfig::default());
    let ports = ServerPorts {
        http: Some(80),
        ..ServerPorts::default()
    };
    let started = Arc::new(AtomicUsize::new(0));
    let s2 = Arc::clone(&started);
    let server = Runtime::start(
        runtime_config(1, "10.0.0.1/24"),
        vec![Queue::new(theirs, 0)],
        move |_| ShardServers::new(ports, Arc::clone(&s2)),
    )?;

    // Our side: a runtime for the std-like sockets, made the process default.
    let rt = NetRuntime::start(
        runtime_config(2, "10.0.0.2/24"),
        NetConfig::default(),
        vec![Queue::new(ours, 0)],
    )?;
    rt.install_default();

    for path in &paths {
        let t = Instant::now();
        let (status, headers, body) = get("10.0.0.1:80", path)?;
        let elapsed = t.elapsed();
        println!("GET {path} -> {status}");
        for (k, v) in &headers {
            println!("  {k}: {v}");
        }
        let declared: Option<usize> = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok());
        println!(
            "  body: {} bytes in {:.1} ms{}",
            body.len(),
            elapsed.as_secs_f64() * 1e3,
            match declared {
                Some(n) if n == body.len() => " (matches Content-Length)".to_string(),
                Some(n) => format!(" (Content-Length says {n}!)"),
                None => String::new(),
            }
        );
        if body.len() <= 600 {
            println!("{}", String::from_utf8_lossy(&body));
        }
        if declared.is_some_and(|n| n != body.len()) {
            return Err("short body".into());
        }
    }

    rt.shutdown()?;
    server.shutdown()?;
    Ok(())
}
