//! The workload's socket calls on one rumpnet stack, whatever carries its frames (the
//! in-memory link, a TAP device, a DPDK port): one implementation of
//! [`Sockets`](crate::workload::Sockets) for every rumpnet row.

use std::io;
use std::net::SocketAddrV4;

use rumpnet_stack::tcp::{TcpError, TcpHandle, TcpListenerHandle, TcpSocketOptions};
use rumpnet_stack::wire::Ipv4Addr;
use rumpnet_stack::Stack;

use crate::workload::Sockets;

/// The client binds its local ports itself, in turn through 49152-65535, as netperf's
/// TCP_CRR does: a port comes back only after 16,383 others, by when the server's
/// TIME-WAIT for it can be ended by the new SYN (RFC 6191: its timestamp is newer).
/// The stack's own choice is random, and a random port soon lands on a TIME-WAIT
/// whose last timestamp is in the same millisecond.
pub const EPHEMERAL_FIRST: u16 = 49152;

/// One side's socket calls on its stack.
#[derive(Debug)]
pub struct StackSockets<'a> {
    pub stack: &'a mut Stack,
    /// The server side's listener (`None` on the client side).
    pub listener: Option<TcpListenerHandle>,
    /// Options of the connections the client opens.
    pub opts: TcpSocketOptions,
    /// The client side: its own address, the server, and the next local port it binds
    /// (see [`EPHEMERAL_FIRST`]); `None` on a side that only serves.
    pub client: Option<(Ipv4Addr, SocketAddrV4, &'a mut u16)>,
}

/// A stack error as the `io::Error` kind std would give.
pub fn tcp_io(e: TcpError) -> io::Error {
    let kind = match e {
        TcpError::ConnectionReset => io::ErrorKind::ConnectionReset,
        TcpError::ConnectionRefused => io::ErrorKind::ConnectionRefused,
        TcpError::TimedOut => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl Sockets for StackSockets<'_> {
    type Conn = TcpHandle;

    fn connect(&mut self) -> io::Result<TcpHandle> {
        let Some((local_ip, remote, next_port)) = self.client.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this side only serves",
            ));
        };
        // A port still held by this side (a connection not fully closed) is skipped.
        for _ in 0..64 {
            let port = **next_port;
            **next_port = port.checked_add(1).unwrap_or(EPHEMERAL_FIRST);
            let local = SocketAddrV4::new(*local_ip, port);
            match self
                .stack
                .tcp_connect_with(*remote, Some(local), self.opts, |_| true)
            {
                Err(TcpError::AddrInUse) => continue,
                r => return r.map_err(tcp_io),
            }
        }
        Err(tcp_io(TcpError::NoPortsAvailable))
    }

    fn accept(&mut self) -> io::Result<Option<TcpHandle>> {
        let Some(l) = self.listener else {
            return Ok(None);
        };
        match self.stack.tcp_accept(l) {
            Ok((h, _)) => Ok(Some(h)),
            Err(TcpError::WouldBlock) => Ok(None),
            Err(e) => Err(tcp_io(e)),
        }
    }

    fn send(&mut self, c: TcpHandle, data: &[u8]) -> io::Result<usize> {
        match self.stack.tcp_send(c, data) {
            Ok(n) => Ok(n),
            Err(TcpError::WouldBlock) => Ok(0),
            Err(e) => Err(tcp_io(e)),
        }
    }

    fn recv(&mut self, c: TcpHandle, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.stack.tcp_recv(c, buf) {
            Ok(n) => Ok(Some(n)),
            Err(TcpError::WouldBlock) => Ok(None),
            Err(e) => Err(tcp_io(e)),
        }
    }

    fn close(&mut self, c: TcpHandle) {
        // The handle is ours and live; a failure here would be a bug in the workload,
        // and the stack cleans up on its own either way.
        let _ = self.stack.tcp_close(c);
    }
}
