//! The built-in servers of `rumpnet serve`: TCP echo (RFC 862), discard (RFC 863),
//! chargen (RFC 864), a small HTTP/1.1 server, and UDP echo.
//!
//! They run on the stack's own thread as an event handler: after each poll,
//! [`Servers::run`] takes the batch of readiness events the stack collected and
//! serves exactly the connections they name — nothing scans all connections, and no
//! data crosses a thread. Every connection's pending output is bounded; a client that
//! does not read is simply not read from any more (backpressure), never buffered for.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rumpnet_runtime::{ShardApp, ShardCtx};

use rumpnet_stack::tcp::{Events, TcpError, TcpEvent, TcpHandle, TcpListenerHandle, TcpSocketRef};
use rumpnet_stack::udp::{UdpError, UdpHandle};
use rumpnet_stack::wire::Ipv4Addr;
use rumpnet_stack::Stack;

/// Which servers to run, by port (`None`: off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerPorts {
    pub echo: Option<u16>,
    pub discard: Option<u16>,
    pub chargen: Option<u16>,
    pub http: Option<u16>,
    pub udp_echo: Option<u16>,
}

/// Most bytes of request headers the HTTP server reads before answering 431.
const HTTP_MAX_HEADER: usize = 8192;
/// Largest body `GET /bytes/N` serves.
const HTTP_MAX_BYTES: u64 = 1 << 40;
/// Pending output per echo connection before it stops reading.
const ECHO_PENDING: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    Discard,
    Chargen,
    Http,
}

#[derive(Debug)]
struct Conn {
    kind: Kind,
    /// Echo: bytes read and not yet written back. HTTP: the request being read.
    inbuf: Vec<u8>,
    /// Bytes to write before anything else (echo data, HTTP headers, small pages).
    out: Vec<u8>,
    out_pos: usize,
    /// A generated stream still to write: chargen (unbounded) or an HTTP body.
    stream_left: u64,
    stream_pos: u64,
    /// Close after the output is written (HTTP `Connection: close`, errors).
    close_after: bool,
    /// The peer closed its side.
    peer_done: bool,
}

/// Counters of the servers (shown on the HTTP index page and at exit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub accepted: u64,
    pub closed: u64,
    pub echo_bytes: u64,
    pub discard_bytes: u64,
    pub chargen_bytes: u64,
    pub http_requests: u64,
    pub http_bytes: u64,
    pub udp_echoed: u64,
    /// Echoes not sent because the UDP send queue was full.
    pub udp_dropped: u64,
}

/// The servers, driven from the stack's loop.
#[derive(Debug)]
pub struct Servers {
    listeners: Vec<(TcpListenerHandle, Kind)>,
    udp: Option<UdpHandle>,
    conns: HashMap<TcpHandle, Conn>,
    events: Vec<TcpEvent>,
    scratch: Vec<u8>,
    stats: ServerStats,
}

/// RFC 864's pattern: lines of 72 printable characters, each starting one further along
/// the 95 printable ASCII characters, CR LF after each; it repeats every 95 lines.
fn chargen_pattern() -> Vec<u8> {
    let mut p = Vec::with_capacity(95 * 74);
    for line in 0..95u8 {
        for i in 0..72u8 {
            p.push(b' ' + (line + i) % 95);
        }
        p.extend_from_slice(b"\r\n");
    }
    p
}

thread_local! {
    static PATTERN: Vec<u8> = chargen_pattern();
}

impl Servers {
    /// Open the listeners and the UDP socket the ports ask for.
    pub fn start(stack: &mut Stack, ports: ServerPorts) -> Result<Servers, String> {
        let mut listeners = Vec::new();
        let any = |p| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p);
        for (port, kind, name) in [
            (ports.echo, Kind::Echo, "echo"),
            (ports.discard, Kind::Discard, "discard"),
            (ports.chargen, Kind::Chargen, "chargen"),
            (ports.http, Kind::Http, "http"),
        ] {
            if let Some(p) = port {
                let l = stack
                    .tcp_listen(any(p), 1024)
                    .map_err(|e| format!("{name} server on tcp port {p}: {e}"))?;
                listeners.push((l, kind));
            }
        }
        let udp = match ports.udp_echo {
            Some(p) => Some(
                stack
                    .udp_bind(any(p))
                    .map_err(|e| format!("udp echo server on port {p}: {e}"))?,
            ),
            None => None,
        };
        Ok(Servers {
            listeners,
            udp,
            conns: HashMap::new(),
            events: Vec::new(),
            scratch: vec![0u8; 64 * 1024],
            stats: ServerStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Connections being served.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Serve what the last poll made ready. Call after every `Stack::poll`.
    pub fn run(&mut self, stack: &mut Stack) {
        self.serve_udp(stack);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        stack.tcp_events(&mut events);
        self.handle(stack, &events);
        self.events = events;
    }

    /// Serve the connections and listeners these events name (a batch of one poll).
    pub fn handle(&mut self, stack: &mut Stack, events: &[TcpEvent]) {
        for ev in events {
            match ev.socket {
                TcpSocketRef::Listener(l) => self.accept_all(stack, l),
                TcpSocketRef::Connection(h) => self.serve(stack, h, ev.events),
            }
        }
    }

    /// Answer the UDP datagrams waiting; true if there were any.
    pub fn run_udp(&mut self, stack: &mut Stack) -> bool {
        let before = self.stats.udp_echoed;
        self.serve_udp(stack);
        self.stats.udp_echoed != before
    }

    fn accept_all(&mut self, stack: &mut Stack, l: TcpListenerHandle) {
        let Some(&(_, kind)) = self.listeners.iter().find(|(h, _)| *h == l) else {
            return;
        };
        while let Ok((h, _peer)) = stack.tcp_accept(l) {
            self.stats.accepted += 1;
            let _ = stack.tcp_set_nodelay(h, kind == Kind::Http);
            let conn = Conn {
                kind,
                inbuf: Vec::new(),
                out: Vec::new(),
                out_pos: 0,
                stream_left: if kind == Kind::Chargen { u64::MAX } else { 0 },
                stream_pos: 0,
                close_after: false,
                peer_done: false,
            };
            self.conns.insert(h, conn);
            // Whatever arrived with the handshake is served now.
            self.serve(stack, h, Events(Events::READABLE | Events::WRITABLE));
        }
    }

    fn serve(&mut self, stack: &mut Stack, h: TcpHandle, ev: Events) {
        let Some(mut c) = self.conns.remove(&h) else {
            return;
        };
        let done = if ev.contains(Events::ERROR | Events::CLOSED)
            && stack.tcp_error(h).ok().flatten().is_some()
        {
            true
        } else {
            self.step(stack, h, &mut c)
        };
        if done {
            let _ = stack.tcp_close(h);
            self.stats.closed += 1;
        } else {
            self.conns.insert(h, c);
        }
    }

    /// Read what can be read, answer, write what fits. True when the connection is
    /// finished and should be closed.
    fn step(&mut self, stack: &mut Stack, h: TcpHandle, c: &mut Conn) -> bool {
        loop {
            if !flush(stack, h, c, &mut self.stats) {
                return true;
            }
            let blocked = c.out_pos < c.out.len() || (c.stream_left > 0 && c.kind != Kind::Chargen);
            if c.close_after && !blocked {
                return true;
            }
            if c.peer_done {
                // Echo: everything was written back; HTTP: nothing more will come.
                return !blocked && c.kind != Kind::Chargen || c.kind == Kind::Discard;
            }
            // Backpressure: read only when the previous answer is out.
            if blocked {
                return false;
            }
            // A pipelined HTTP request already read is answered before reading more.
            if c.kind == Kind::Http && find(&c.inbuf, b"\r\n\r\n").is_some() {
                http_requests(c, stack, &mut self.stats);
                continue;
            }
            if c.kind == Kind::Chargen && c.stream_left > 0 {
                // Chargen ignores input but must notice EOF.
                match stack.tcp_recv(h, &mut self.scratch) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(TcpError::WouldBlock) => return false,
                    Err(_) => return true,
                }
            }
            let n = match stack.tcp_recv(h, &mut self.scratch) {
                Ok(0) => {
                    c.peer_done = true;
                    continue;
                }
                Ok(n) => n,
                Err(TcpError::WouldBlock) => return false,
                Err(_) => return true,
            };
            let data = &self.scratch[..n];
            match c.kind {
                Kind::Discard => self.stats.discard_bytes += n as u64,
                Kind::Echo => {
                    c.out.clear();
                    c.out_pos = 0;
                    c.out.extend_from_slice(data);
                    debug_assert!(c.out.len() <= ECHO_PENDING);
                }
                Kind::Http => {
                    c.inbuf.extend_from_slice(data);
                    http_requests(c, stack, &mut self.stats);
                }
                Kind::Chargen => {}
            }
        }
    }

    fn serve_udp(&mut self, stack: &mut Stack) {
        let Some(u) = self.udp else {
            return;
        };
        loop {
            match stack.udp_recv_from(u, &mut self.scratch) {
                Ok((n, from)) => {
                    let n = n.min(self.scratch.len());
                    // A full send queue drops the echo, as a busy UDP server would.
                    if stack.udp_send_to(u, &self.scratch[..n], from).is_ok() {
                        self.stats.udp_echoed += 1;
                    } else {
                        self.stats.udp_dropped += 1;
                    }
                }
                Err(UdpError::WouldBlock) => break,
                Err(_) => break,
            }
        }
    }
}

/// Write pending output, then stream; false if the connection failed.
fn flush(stack: &mut Stack, h: TcpHandle, c: &mut Conn, stats: &mut ServerStats) -> bool {
    while c.out_pos < c.out.len() {
        match stack.tcp_send(h, &c.out[c.out_pos..]) {
            Ok(n) => {
                c.out_pos += n;
                match c.kind {
                    Kind::Echo => stats.echo_bytes += n as u64,
                    Kind::Http => stats.http_bytes += n as u64,
                    _ => {}
                }
            }
            Err(TcpError::WouldBlock) => return true,
            Err(_) => return false,
        }
    }
    if c.out_pos == c.out.len() {
        c.out.clear();
        c.out_pos = 0;
    }
    while c.stream_left > 0 {
        let sent = PATTERN.with(|p| {
            let off = (c.stream_pos % p.len() as u64) as usize;
            let take = ((p.len() - off) as u64).min(c.stream_left) as usize;
            stack.tcp_send(h, &p[off..off + take])
        });
        match sent {
            Ok(n) => {
                c.stream_pos += n as u64;
                if c.stream_left != u64::MAX {
                    c.stream_left -= n as u64;
                }
                match c.kind {
                    Kind::Chargen => stats.chargen_bytes += n as u64,
                    _ => stats.http_bytes += n as u64,
                }
            }
            Err(TcpError::WouldBlock) => return true,
            Err(_) => return false,
        }
    }
    true
}

/// Answer every complete request in the connection's input, one at a time (a
/// pipelined request waits until the previous answer is out).
fn http_requests(c: &mut Conn, stack: &Stack, stats: &mut ServerStats) {
    let Some(end) = find(&c.inbuf, b"\r\n\r\n") else {
        if c.inbuf.len() > HTTP_MAX_HEADER {
            respond(c, 431, "text/plain", b"request header too large\n", true);
        }
        return;
    };
    let head = c.inbuf[..end].to_vec();
    c.inbuf.drain(..end + 4);
    stats.http_requests += 1;
    let Ok(head) = std::str::from_utf8(&head) else {
        return respond(c, 400, "text/plain", b"bad request\n", true);
    };
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return respond(c, 400, "text/plain", b"bad request line\n", true);
    };
    if !version.starts_with("HTTP/1.") {
        return respond(c, 400, "text/plain", b"unsupported version\n", true);
    }
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return respond(c, 400, "text/plain", b"bad header\n", true);
        };
        if name.eq_ignore_ascii_case("connection") {
            let v = value.trim();
            if v.eq_ignore_ascii_case("close") {
                close = true;
            } else if v.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        }
    }
    if method != "GET" && method != "HEAD" {
        return respond(c, 405, "text/plain", b"only GET and HEAD\n", close);
    }
    let head_only = method == "HEAD";
    if target == "/" {
        let page = index_page(stack, stats);
        return respond_head(c, 200, "text/html", page.as_bytes(), close, head_only);
    }
    if let Some(n) = target.strip_prefix("/bytes/") {
        return match n.parse::<u64>() {
            Ok(n) if n <= HTTP_MAX_BYTES => {
                let _ = write!(
                    ByteWriter(&mut c.out),
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n{}\r\n",
                    if close { "Connection: close\r\n" } else { "" }
                );
                if !head_only {
                    c.stream_left = n;
                    c.stream_pos = 0;
                }
                c.close_after = close;
            }
            _ => respond(c, 400, "text/plain", b"bad byte count\n", close),
        };
    }
    respond_head(c, 404, "text/plain", b"not found\n", close, head_only)
}

fn respond(c: &mut Conn, status: u16, ctype: &str, body: &[u8], close: bool) {
    respond_head(c, status, ctype, body, close, false);
}

fn respond_head(c: &mut Conn, status: u16, ctype: &str, body: &[u8], close: bool, head_only: bool) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let _ = write!(
        ByteWriter(&mut c.out),
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    if !head_only {
        c.out.extend_from_slice(body);
    }
    c.close_after = close;
}

fn index_page(stack: &Stack, stats: &ServerStats) -> String {
    let s = stack.stats();
    let mut p = String::from("<!doctype html><title>rumpnet</title><h1>rumpnet</h1><pre>\n");
    let _ = writeln!(
        p,
        "connections accepted {}  closed {}",
        stats.accepted, stats.closed
    );
    let _ = writeln!(p, "http requests {}", stats.http_requests);
    for (name, v) in s.traffic() {
        let _ = writeln!(p, "{v:>14} {name}");
    }
    let _ = writeln!(p, "{:>14} dropped", s.total_drops());
    p.push_str("</pre>\n");
    p
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The built-in servers on every shard of a runtime (`rumpnet serve --cores`): each shard
/// listens on the same ports and serves the connections software RSS brings it, inside
/// its own loop (the on-shard API: no thread crossing, no lock).
#[derive(Debug)]
pub struct ShardServers {
    ports: ServerPorts,
    servers: Option<Servers>,
    error: Option<String>,
    started: Arc<AtomicUsize>,
}

impl ShardServers {
    /// Servers on `ports`; `started` counts the shards whose listeners are open (or
    /// failed to open: see [`ShardServers::error`]).
    pub fn new(ports: ServerPorts, started: Arc<AtomicUsize>) -> ShardServers {
        ShardServers {
            ports,
            servers: None,
            error: None,
            started,
        }
    }

    /// Why the servers could not start on this shard, if they could not.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// This shard's counters.
    pub fn stats(&self) -> ServerStats {
        self.servers.as_ref().map(|s| s.stats()).unwrap_or_default()
    }
}

impl ShardApp for ShardServers {
    fn on_start(&mut self, ctx: &mut ShardCtx<'_>) {
        match Servers::start(ctx.stack(), self.ports) {
            Ok(s) => self.servers = Some(s),
            Err(e) => self.error = Some(format!("shard {}: {e}", ctx.shard())),
        }
        self.started.fetch_add(1, Ordering::Release);
    }

    fn on_poll(&mut self, ctx: &mut ShardCtx<'_>, events: &[TcpEvent]) {
        if let Some(s) = &mut self.servers {
            s.handle(ctx.stack(), events);
        }
    }

    fn on_turn(&mut self, ctx: &mut ShardCtx<'_>) -> bool {
        match &mut self.servers {
            Some(s) => s.run_udp(ctx.stack()),
            None => false,
        }
    }
}

impl ServerStats {
    /// Add another shard's counters.
    pub fn add(&mut self, o: &ServerStats) {
        self.accepted += o.accepted;
        self.closed += o.closed;
        self.http_requests += o.http_requests;
        self.echo_bytes += o.echo_bytes;
        self.discard_bytes += o.discard_bytes;
        self.chargen_bytes += o.chargen_bytes;
        self.http_bytes += o.http_bytes;
        self.udp_echoed += o.udp_echoed;
        self.udp_dropped += o.udp_dropped;
    }
}
