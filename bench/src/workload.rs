//! The netperf-style workloads of `rumpnet bench`, written once against [`Sockets`] so
//! every system (rumpnet, Linux, smoltcp) runs exactly the same application code.
//!
//! A workload is two state machines, a client and a server, each stepped by its
//! system's driver loop: [`Client::step`] and [`Server::step`] do what they can without
//! waiting and say whether anything moved, so a driver that owns the stacks (rumpnet,
//! smoltcp) interleaves them with its polls, and a driver over blocking kernel sockets
//! (Linux, one connection a side) simply lets each call wait.
//!
//! - `stream`: the client sends a position-dependent byte pattern as fast as the
//!   sockets take it, on each of its connections, until the deadline, then closes; the
//!   server reads until EOF and counts the bytes that arrived after the warm-up.
//! - `rr`: each connection carries one request of `msg` bytes at a time; the server
//!   echoes it, the client checks the echo byte for byte and records the latency.
//! - `crr`: connect, one request/response, and close, in a loop. The server closes
//!   first once it has echoed the request (as an HTTP/1.0 server does), so TIME-WAIT
//!   stays with the server, whose stack may end it early for a newer SYN on the same
//!   4-tuple (RFC 6191): the client never runs out of ports.
//!
//! The first tenth of the run is a warm-up: handshakes, slow start and cold caches
//! happen there, and nothing done in it is counted.

use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The three timed workloads (the idle-connection count `conns` has its own code per
/// system: it measures memory, not a rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One-way bulk transfer.
    Stream,
    /// Request/response on established connections.
    Rr,
    /// Connect, request/response, close.
    Crr,
}

impl Kind {
    /// The name used on the command line, in the table and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Stream => "stream",
            Kind::Rr => "rr",
            Kind::Crr => "crr",
        }
    }
}

/// What to run: a workload, its connection count, message size and duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    /// Connections open at once (crr: always 1, one after another).
    pub conns: usize,
    /// `stream`: bytes handed to one send call; `rr`/`crr`: the request (and
    /// response) size.
    pub msg: usize,
    /// Measured time after the warm-up.
    pub duration: Duration,
}

impl Spec {
    /// The warm-up before the measured window: a tenth of the measured time.
    pub fn warmup(&self) -> Duration {
        self.duration / 10
    }

    /// Disable Nagle's algorithm: on for request/response (as netperf's TCP_RR is run
    /// in practice), off for bulk, on every system alike.
    pub fn nodelay(&self) -> bool {
        self.kind != Kind::Stream
    }
}

/// The application's socket calls on one side of one system, non-blocking unless the
/// system's driver chose blocking sockets (then `None`/`0` never come back).
pub trait Sockets {
    /// A connection handle.
    type Conn: Copy + Eq + std::fmt::Debug;

    /// Start a connection to the server (the address is the system's business).
    fn connect(&mut self) -> io::Result<Self::Conn>;

    /// An established connection from the server's listener, if one is waiting.
    fn accept(&mut self) -> io::Result<Option<Self::Conn>>;

    /// Queue bytes; `Ok(0)`: no room now (or not connected yet).
    fn send(&mut self, c: Self::Conn, data: &[u8]) -> io::Result<usize>;

    /// Read bytes; `Ok(None)`: nothing now; `Ok(Some(0))`: the peer closed (EOF).
    fn recv(&mut self, c: Self::Conn, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Close gracefully (FIN after what is queued) and forget the handle.
    fn close(&mut self, c: Self::Conn);
}

/// The byte at stream offset `offset`: a period of 251 (prime, so it never lines up
/// with a power-of-two buffer or segment size), which makes a byte out of place show.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// A buffer of the pattern long enough that any send of up to `chunk` bytes starting
/// at any stream offset is one slice of it: the sender never fills a buffer per call.
#[derive(Debug, Clone)]
pub struct Pattern {
    buf: Vec<u8>,
    chunk: usize,
}

impl Pattern {
    pub fn new(chunk: usize) -> Pattern {
        let buf = (0..chunk as u64 + 251).map(pattern_byte).collect();
        Pattern { buf, chunk }
    }

    /// The `chunk` bytes of the stream starting at `offset`.
    pub fn at(&self, offset: u64) -> &[u8] {
        let start = (offset % 251) as usize;
        &self.buf[start..start + self.chunk]
    }
}

/// What one side measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Payload bytes received in the measured window (stream).
    pub bytes: u64,
    /// Transactions (rr) or connections (crr) completed that started in the window.
    pub transactions: u64,
    /// Length of the measured window.
    pub window: Duration,
    /// Latency of each counted transaction, nanoseconds (rr, crr).
    pub latency: Option<Histogram<u64>>,
    /// Payload bytes checked against what was sent (all of them for rr/crr; the first
    /// and last byte of each read for stream, whose check must not cost a pass over
    /// every byte).
    pub checked: u64,
    /// Checks that failed: data corrupted, reordered or lost.
    pub errors: u64,
}

impl Outcome {
    fn new(kind: Kind) -> Outcome {
        Outcome {
            bytes: 0,
            transactions: 0,
            window: Duration::ZERO,
            latency: (kind != Kind::Stream).then(new_histogram),
            checked: 0,
            errors: 0,
        }
    }

    /// The workload's figure: Gbit/s (stream), transactions/s (rr) or connections/s (crr).
    pub fn rate(&self, kind: Kind) -> f64 {
        let secs = self.window.as_secs_f64().max(1e-9);
        match kind {
            Kind::Stream => self.bytes as f64 * 8.0 / secs / 1e9,
            Kind::Rr | Kind::Crr => self.transactions as f64 / secs,
        }
    }
}

/// A latency histogram from 1 ns to 100 s, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// One rr connection of the client.
#[derive(Debug)]
struct RrConn<C> {
    conn: C,
    req: Vec<u8>,
    resp: Vec<u8>,
    sent: usize,
    got: usize,
    started: Instant,
    seq: u64,
    /// A request is outstanding.
    busy: bool,
}

/// The crr client's one connection and where it is in its cycle.
#[derive(Debug)]
enum CrrState<C> {
    /// No connection: open the next one (or stop, after the deadline).
    Idle,
    /// Sending the request (the stack may still be in the handshake).
    Sending {
        conn: C,
        started: Instant,
        sent: usize,
    },
    /// Reading the response.
    Reading {
        conn: C,
        started: Instant,
        got: usize,
    },
    /// The response is in: waiting for the server's FIN.
    Draining { conn: C, started: Instant },
}

/// The client side of a workload.
#[derive(Debug)]
pub struct Client<C> {
    spec: Spec,
    start: Instant,
    warm_end: Instant,
    deadline: Instant,
    out: Outcome,
    done: bool,
    // stream
    pattern: Option<Pattern>,
    stream: Vec<(C, u64)>,
    // rr
    rr: Vec<RrConn<C>>,
    // crr
    crr: CrrState<C>,
    crr_req: Vec<u8>,
    crr_buf: Vec<u8>,
    crr_seq: u64,
    opened: bool,
    /// The last instant the client read from the clock, for a driver loop that would
    /// read it again just after (see [`Client::take_clock`]).
    clock: Option<Instant>,
}

impl<C: Copy + Eq + std::fmt::Debug> Client<C> {
    /// A client that starts at `start`: the window is `[start + warm-up, start +
    /// warm-up + duration)`.
    pub fn new(spec: Spec, start: Instant) -> Client<C> {
        let warm_end = start + spec.warmup();
        Client {
            spec,
            start,
            warm_end,
            deadline: warm_end + spec.duration,
            out: Outcome::new(spec.kind),
            done: false,
            pattern: (spec.kind == Kind::Stream).then(|| Pattern::new(spec.msg)),
            stream: Vec::new(),
            rr: Vec::new(),
            crr: CrrState::Idle,
            crr_req: vec![0; spec.msg],
            crr_buf: vec![0; spec.msg.max(1)],
            crr_seq: 0,
            opened: false,
            clock: None,
        }
    }

    /// The instant the client last read from the clock (ending a transaction, starting
    /// a connection), once. A polling driver loop takes it as its next `now` instead of
    /// reading the clock again within the same microsecond: one clock read per
    /// transaction, not two, for every polled system alike.
    pub fn take_clock(&mut self) -> Option<Instant> {
        self.clock.take()
    }

    /// The client stopped: every connection it opened is closed.
    pub fn done(&self) -> bool {
        self.done
    }

    /// When the client began.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// What it measured (rr, crr; a stream's figures are the server's).
    pub fn outcome(&self) -> &Outcome {
        &self.out
    }

    /// Do what can be done now; `Ok(true)` if anything moved.
    pub fn step<S: Sockets<Conn = C>>(&mut self, s: &mut S, now: Instant) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        match self.spec.kind {
            Kind::Stream => self.step_stream(s, now),
            Kind::Rr => self.step_rr(s, now),
            Kind::Crr => self.step_crr(s),
        }
    }

    fn open_all<S: Sockets<Conn = C>>(&mut self, s: &mut S) -> io::Result<Vec<C>> {
        self.opened = true;
        (0..self.spec.conns.max(1)).map(|_| s.connect()).collect()
    }

    fn step_stream<S: Sockets<Conn = C>>(&mut self, s: &mut S, now: Instant) -> io::Result<bool> {
        if !self.opened {
            self.stream = self.open_all(s)?.into_iter().map(|c| (c, 0)).collect();
        }
        if now >= self.deadline {
            for (c, _) in self.stream.drain(..) {
                s.close(c);
            }
            self.done = true;
            return Ok(true);
        }
        let pattern = self.pattern.as_ref().expect("stream has a pattern");
        let mut moved = false;
        for (c, off) in self.stream.iter_mut() {
            let n = s.send(*c, pattern.at(*off))?;
            *off += n as u64;
            moved |= n > 0;
        }
        Ok(moved)
    }

    fn step_rr<S: Sockets<Conn = C>>(&mut self, s: &mut S, now: Instant) -> io::Result<bool> {
        if !self.opened {
            let msg = self.spec.msg.max(1);
            self.rr = self
                .open_all(s)?
                .into_iter()
                .enumerate()
                .map(|(i, conn)| RrConn {
                    conn,
                    req: {
                        let mut req = vec![0; msg];
                        fill_request(&mut req, 0, i as u64);
                        req
                    },
                    resp: vec![0; msg],
                    sent: 0,
                    got: 0,
                    started: now,
                    seq: 0,
                    busy: false,
                })
                .collect();
        }
        let stopping = now >= self.deadline;
        let mut moved = false;
        for (i, r) in self.rr.iter_mut().enumerate() {
            // The request in flight: the rest of it out, its response in.
            let mut ended = None;
            if r.busy {
                if r.sent < r.req.len() {
                    let n = s.send(r.conn, &r.req[r.sent..])?;
                    r.sent += n;
                    moved |= n > 0;
                }
                if r.got < r.resp.len() {
                    match s.recv(r.conn, &mut r.resp[r.got..])? {
                        None => {}
                        Some(0) => return Err(eof("rr server")),
                        Some(n) => {
                            r.got += n;
                            moved = true;
                        }
                    }
                }
                if r.got == r.resp.len() && r.sent == r.req.len() {
                    let end = Instant::now();
                    self.clock = Some(end);
                    r.busy = false;
                    self.out.checked += r.req.len() as u64;
                    if r.req != r.resp {
                        self.out.errors += 1;
                    }
                    if r.started >= self.warm_end && r.started < self.deadline {
                        self.out.transactions += 1;
                        record(&mut self.out, end - r.started);
                    }
                    ended = Some(end);
                }
            }
            // The next request, at once: in the same step as the response it follows
            // (as netperf's TCP_RR loop does), so no round of polls passes with
            // nothing in flight, and the instant that ended one transaction starts
            // the next (one clock read each).
            if !r.busy && !stopping {
                // A request the echo can be checked against: its number, the
                // connection's, then the pattern (written once, at open).
                r.seq += 1;
                stamp_request(&mut r.req, r.seq, i as u64);
                r.sent = 0;
                r.got = 0;
                r.busy = true;
                r.started = ended.unwrap_or_else(Instant::now);
                let n = s.send(r.conn, &r.req)?;
                r.sent += n;
                moved |= n > 0;
            }
        }
        if stopping && self.rr.iter().all(|r| !r.busy) {
            for r in self.rr.drain(..) {
                s.close(r.conn);
            }
            self.out.window = self.deadline - self.warm_end;
            self.done = true;
            moved = true;
        }
        Ok(moved)
    }

    fn step_crr<S: Sockets<Conn = C>>(&mut self, s: &mut S) -> io::Result<bool> {
        let mut moved = false;
        loop {
            match self.crr {
                CrrState::Idle => {
                    // Not the `now` the step began with: over blocking sockets the
                    // cycle repeats within one step.
                    let started = Instant::now();
                    self.clock = Some(started);
                    if started >= self.deadline {
                        self.out.window = self.deadline - self.warm_end;
                        self.done = true;
                        return Ok(true);
                    }
                    let conn = s.connect()?;
                    self.crr_seq += 1;
                    fill_request(&mut self.crr_req, self.crr_seq, 0);
                    self.crr = CrrState::Sending {
                        conn,
                        started,
                        sent: 0,
                    };
                    moved = true;
                }
                CrrState::Sending {
                    conn,
                    started,
                    sent,
                } => {
                    let n = s.send(conn, &self.crr_req[sent..])?;
                    if n == 0 {
                        return Ok(moved);
                    }
                    moved = true;
                    self.crr = if sent + n == self.crr_req.len() {
                        CrrState::Reading {
                            conn,
                            started,
                            got: 0,
                        }
                    } else {
                        CrrState::Sending {
                            conn,
                            started,
                            sent: sent + n,
                        }
                    };
                }
                CrrState::Reading { conn, started, got } => {
                    match s.recv(conn, &mut self.crr_buf[got..])? {
                        None => return Ok(moved),
                        Some(0) => return Err(eof("crr server")),
                        Some(n) => {
                            moved = true;
                            self.crr = if got + n == self.crr_buf.len() {
                                self.out.checked += self.crr_buf.len() as u64;
                                if self.crr_buf != self.crr_req {
                                    self.out.errors += 1;
                                }
                                CrrState::Draining { conn, started }
                            } else {
                                CrrState::Reading {
                                    conn,
                                    started,
                                    got: got + n,
                                }
                            };
                        }
                    }
                }
                CrrState::Draining { conn, started } => {
                    let mut byte = [0u8; 1];
                    match s.recv(conn, &mut byte)? {
                        None => return Ok(moved),
                        Some(0) => {
                            s.close(conn);
                            let end = Instant::now();
                            if started >= self.warm_end && started < self.deadline {
                                self.out.transactions += 1;
                                record(&mut self.out, end - started);
                            }
                            self.crr = CrrState::Idle;
                            moved = true;
                        }
                        Some(_) => {
                            // The server sent more than it was asked to echo.
                            self.out.errors += 1;
                        }
                    }
                }
            }
        }
    }
}

/// One connection of the server.
#[derive(Debug)]
struct ServerConn<C> {
    conn: C,
    buf: Vec<u8>,
    /// Bytes of `buf` read but not echoed yet: `buf[sent..len]`.
    len: usize,
    sent: usize,
    /// Bytes echoed so far.
    echoed: usize,
    /// Stream offset of the next byte (stream).
    offset: u64,
}

/// The server side of a workload: an echo server (rr, crr) or a sink (stream).
#[derive(Debug)]
pub struct Server<C> {
    spec: Spec,
    warm_end: Instant,
    conns: Vec<ServerConn<C>>,
    /// Buffers of closed connections, for the next ones (crr accepts one per
    /// transaction: an allocation each would be the harness's cost, not the stack's).
    spare: Vec<Vec<u8>>,
    accepted: usize,
    finishing: bool,
    out: Outcome,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl<C: Copy + Eq + std::fmt::Debug> Server<C> {
    /// A server for the client started at `start`.
    pub fn new(spec: Spec, start: Instant) -> Server<C> {
        Server {
            spec,
            warm_end: start + spec.warmup(),
            conns: Vec::new(),
            spare: Vec::new(),
            accepted: 0,
            finishing: false,
            out: Outcome::new(spec.kind),
            first: None,
            last: None,
        }
    }

    /// The client is done: for crr (where the server cannot know how many connections
    /// come), stop once the open ones are closed.
    pub fn finish(&mut self) {
        self.finishing = true;
    }

    /// Every connection came and went.
    pub fn done(&self) -> bool {
        self.conns.is_empty()
            && match self.spec.kind {
                Kind::Crr => self.finishing,
                Kind::Stream | Kind::Rr => self.accepted >= self.spec.conns.max(1),
            }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// What it measured (a stream's figures; for rr/crr only the bytes it echoed).
    pub fn outcome(&self) -> Outcome {
        let mut out = self.out.clone();
        if let (Some(first), Some(last)) = (self.first, self.last) {
            out.window = last.saturating_duration_since(first);
        }
        out
    }

    /// Do what can be done now; `Ok(true)` if anything moved.
    pub fn step<S: Sockets<Conn = C>>(&mut self, s: &mut S, now: Instant) -> io::Result<bool> {
        let mut moved = false;
        let want = match self.spec.kind {
            Kind::Crr => usize::MAX,
            Kind::Stream | Kind::Rr => self.spec.conns.max(1),
        };
        if self.accepted < want {
            if let Some(conn) = s.accept()? {
                let size = match self.spec.kind {
                    Kind::Stream => self.spec.msg.clamp(1, 256 * 1024),
                    Kind::Rr | Kind::Crr => self.spec.msg.max(1),
                };
                let buf = match self.spare.pop() {
                    Some(buf) if buf.len() == size => buf,
                    _ => vec![0; size],
                };
                self.conns.push(ServerConn {
                    conn,
                    buf,
                    len: 0,
                    sent: 0,
                    echoed: 0,
                    offset: 0,
                });
                self.accepted += 1;
                moved = true;
            }
        }
        let mut i = 0;
        while i < self.conns.len() {
            let closed = match self.spec.kind {
                Kind::Stream => self.sink(s, i, now, &mut moved)?,
                Kind::Rr | Kind::Crr => self.echo(s, i, &mut moved)?,
            };
            if closed {
                let c = self.conns.swap_remove(i);
                s.close(c.conn);
                if self.spare.len() < 64 {
                    self.spare.push(c.buf);
                }
                moved = true;
            } else {
                i += 1;
            }
        }
        Ok(moved)
    }

    /// Read and count stream bytes on connection `i`; true once it is at EOF.
    fn sink<S: Sockets<Conn = C>>(
        &mut self,
        s: &mut S,
        i: usize,
        now: Instant,
        moved: &mut bool,
    ) -> io::Result<bool> {
        let c = &mut self.conns[i];
        // Drain what is there, a bounded number of reads so other connections get a turn.
        for _ in 0..4 {
            match s.recv(c.conn, &mut c.buf)? {
                None => return Ok(false),
                Some(0) => return Ok(true),
                Some(n) => {
                    *moved = true;
                    let first = c.buf[0];
                    let last = c.buf[n - 1];
                    self.out.checked += 2;
                    if first != pattern_byte(c.offset)
                        || last != pattern_byte(c.offset + n as u64 - 1)
                    {
                        self.out.errors += 1;
                    }
                    c.offset += n as u64;
                    // A read taken at a stale `now` is late, never early: what
                    // arrived before the warm-up ended is never counted.
                    if now >= self.warm_end {
                        self.first.get_or_insert(now);
                        self.out.bytes += n as u64;
                        self.last = Some(Instant::now());
                    }
                }
            }
        }
        Ok(false)
    }

    /// Echo what connection `i` sends; true once it is done (EOF, or for crr the
    /// request echoed: the server closes first).
    fn echo<S: Sockets<Conn = C>>(
        &mut self,
        s: &mut S,
        i: usize,
        moved: &mut bool,
    ) -> io::Result<bool> {
        let msg = self.spec.msg.max(1);
        let crr = self.spec.kind == Kind::Crr;
        let c = &mut self.conns[i];
        loop {
            if c.sent < c.len {
                let n = s.send(c.conn, &c.buf[c.sent..c.len])?;
                c.sent += n;
                c.echoed += n;
                *moved |= n > 0;
                if c.sent < c.len {
                    return Ok(false);
                }
                if crr && c.echoed >= msg {
                    return Ok(true);
                }
                if c.echoed.is_multiple_of(msg) {
                    // A whole response is out. The client sends its next request only
                    // once it has it all, so nothing can be waiting: no read to find
                    // that out (on a polled stack, a call that would only say "would
                    // block"; on a blocking socket, the next step's read waits anyway).
                    return Ok(false);
                }
            }
            let room = if crr { msg - c.echoed } else { c.buf.len() };
            match s.recv(c.conn, &mut c.buf[..room])? {
                None => return Ok(false),
                Some(0) => return Ok(true),
                Some(n) => {
                    *moved = true;
                    c.len = n;
                    c.sent = 0;
                }
            }
        }
    }
}

/// Request `seq` of connection `conn`: both numbers, then the pattern.
fn fill_request(req: &mut [u8], seq: u64, conn: u64) {
    for (j, b) in req.iter_mut().enumerate() {
        *b = pattern_byte(j as u64);
    }
    stamp_request(req, seq, conn);
}

/// Write a request's head (its number and its connection's) over a buffer that
/// [`fill_request`] filled.
fn stamp_request(req: &mut [u8], seq: u64, conn: u64) {
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8..].copy_from_slice(&conn.to_le_bytes());
    let n = req.len().min(head.len());
    req[..n].copy_from_slice(&head[..n]);
}

fn record(out: &mut Outcome, d: Duration) {
    if let Some(h) = out.latency.as_mut() {
        h.saturating_record(d.as_nanos().clamp(1, u64::MAX as u128) as u64);
    }
}

fn eof(who: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{who} closed the connection early"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};

    /// An in-process socket pair table with no stack: bytes move at once, so the
    /// state machines can be checked on their own.
    #[derive(Default)]
    struct Loop {
        next: u32,
        /// Connection id -> (bytes to the client, bytes to the server, closed by
        /// client, closed by server).
        pipes: HashMap<u32, (VecDeque<u8>, VecDeque<u8>, bool, bool)>,
        pending: VecDeque<u32>,
    }

    struct End<'a> {
        net: &'a mut Loop,
        client: bool,
    }

    impl Sockets for End<'_> {
        type Conn = u32;
        fn connect(&mut self) -> io::Result<u32> {
            self.net.next += 1;
            let id = self.net.next;
            self.net.pipes.insert(id, Default::default());
            self.net.pending.push_back(id);
            Ok(id)
        }
        fn accept(&mut self) -> io::Result<Option<u32>> {
            Ok(self.net.pending.pop_front())
        }
        fn send(&mut self, c: u32, data: &[u8]) -> io::Result<usize> {
            let p = self.net.pipes.get_mut(&c).unwrap();
            let q = if self.client { &mut p.1 } else { &mut p.0 };
            let n = data.len().min(4096usize.saturating_sub(q.len()));
            q.extend(&data[..n]);
            Ok(n)
        }
        fn recv(&mut self, c: u32, buf: &mut [u8]) -> io::Result<Option<usize>> {
            let p = self.net.pipes.get_mut(&c).unwrap();
            let (q, peer_closed) = if self.client {
                (&mut p.0, p.3)
            } else {
                (&mut p.1, p.2)
            };
            if q.is_empty() {
                return Ok(peer_closed.then_some(0));
            }
            let n = buf.len().min(q.len());
            for b in buf.iter_mut().take(n) {
                *b = q.pop_front().unwrap();
            }
            Ok(Some(n))
        }
        fn close(&mut self, c: u32) {
            let p = self.net.pipes.get_mut(&c).unwrap();
            if self.client {
                p.2 = true
            } else {
                p.3 = true
            }
        }
    }

    fn run(kind: Kind, conns: usize, msg: usize) -> (Outcome, Outcome) {
        let spec = Spec {
            kind,
            conns,
            msg,
            duration: Duration::from_millis(20),
        };
        let start = Instant::now();
        let mut net = Loop::default();
        let mut client = Client::new(spec, start);
        let mut server = Server::new(spec, start);
        while !(client.done() && server.done()) {
            let now = Instant::now();
            client
                .step(
                    &mut End {
                        net: &mut net,
                        client: true,
                    },
                    now,
                )
                .unwrap();
            if client.done() {
                server.finish();
            }
            server
                .step(
                    &mut End {
                        net: &mut net,
                        client: false,
                    },
                    now,
                )
                .unwrap();
            assert!(now < start + Duration::from_secs(10), "stalled");
        }
        (client.outcome().clone(), server.outcome())
    }

    #[test]
    fn pattern_slices_continue_the_stream() {
        let p = Pattern::new(1000);
        for off in [0u64, 1, 250, 251, 252, 10_000_019] {
            let s = p.at(off);
            assert_eq!(s.len(), 1000);
            for (i, &b) in s.iter().enumerate() {
                assert_eq!(b, pattern_byte(off + i as u64));
            }
        }
    }

    #[test]
    fn stream_counts_checked_bytes() {
        let (_, server) = run(Kind::Stream, 2, 3000);
        assert!(server.bytes > 0);
        assert!(server.checked > 0);
        assert_eq!(server.errors, 0);
    }

    #[test]
    fn rr_checks_every_echo() {
        let (client, _) = run(Kind::Rr, 3, 64);
        assert!(client.transactions > 0);
        assert_eq!(client.errors, 0);
        assert_eq!(client.latency.as_ref().unwrap().len(), client.transactions);
    }

    #[test]
    fn a_request_head_is_its_number_then_its_connection() {
        for len in [1usize, 7, 8, 12, 16, 64] {
            let mut req = vec![0u8; len];
            fill_request(&mut req, 0x0102_0304_0506_0708, 0x1112_1314_1516_1718);
            let mut head = 0x0102_0304_0506_0708u64.to_le_bytes().to_vec();
            head.extend_from_slice(&0x1112_1314_1516_1718u64.to_le_bytes());
            let n = len.min(16);
            assert_eq!(req[..n], head[..n], "{len}");
            for (j, b) in req.iter().enumerate().skip(16) {
                assert_eq!(*b, pattern_byte(j as u64));
            }
        }
    }

    #[test]
    fn rr_works_with_messages_shorter_than_the_head() {
        let (client, _) = run(Kind::Rr, 2, 5);
        assert!(client.transactions > 0);
        assert_eq!(client.errors, 0);
    }

    #[test]
    fn crr_opens_one_connection_per_transaction() {
        let (client, _) = run(Kind::Crr, 1, 64);
        assert!(client.transactions > 0);
        assert_eq!(client.errors, 0);
    }

    #[test]
    fn a_corrupted_echo_is_an_error() {
        /// Flips a bit in everything the server sends.
        struct Bad<'a>(End<'a>);
        impl Sockets for Bad<'_> {
            type Conn = u32;
            fn connect(&mut self) -> io::Result<u32> {
                self.0.connect()
            }
            fn accept(&mut self) -> io::Result<Option<u32>> {
                self.0.accept()
            }
            fn send(&mut self, c: u32, data: &[u8]) -> io::Result<usize> {
                let mut d = data.to_vec();
                d[0] ^= 1;
                self.0.send(c, &d)
            }
            fn recv(&mut self, c: u32, buf: &mut [u8]) -> io::Result<Option<usize>> {
                self.0.recv(c, buf)
            }
            fn close(&mut self, c: u32) {
                self.0.close(c)
            }
        }
        let spec = Spec {
            kind: Kind::Rr,
            conns: 1,
            msg: 64,
            duration: Duration::from_millis(5),
        };
        let start = Instant::now();
        let mut net = Loop::default();
        let mut client = Client::new(spec, start);
        let mut server = Server::new(spec, start);
        while !client.done() {
            let now = Instant::now();
            client
                .step(
                    &mut End {
                        net: &mut net,
                        client: true,
                    },
                    now,
                )
                .unwrap();
            server
                .step(
                    &mut Bad(End {
                        net: &mut net,
                        client: false,
                    }),
                    now,
                )
                .unwrap();
        }
        assert!(client.outcome().errors > 0);
    }
}
