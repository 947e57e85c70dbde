//! Listeners: a bounded backlog of half-open connections and a bounded accept queue.
//!
//! A SYN to a listener makes a connection in SYN-RECEIVED (counted as embryonic); once
//! the handshake completes it moves to the accept queue, where the application takes it
//! with `tcp_accept`. When the embryonic count reaches the SYN backlog the listener
//! answers with SYN cookies instead (RFC 4987 §3.6), which costs no state until the
//! final ACK proves the peer is real.

use alloc::collections::VecDeque;
use core::net::SocketAddrV4;

use crate::socket::SlabKey;
use crate::tcp::tcb::TcpSocketOptions;

/// One listening socket.
#[derive(Debug)]
pub struct Listener {
    /// The address and port it listens on (address 0.0.0.0: all of ours).
    pub local: SocketAddrV4,
    /// Most connections waiting in the accept queue.
    pub backlog: usize,
    /// Options for the connections it makes.
    pub opts: TcpSocketOptions,
    /// Established connections waiting for `tcp_accept`.
    pub(crate) accept: VecDeque<SlabKey>,
    /// Connections of this listener still in SYN-RECEIVED.
    pub(crate) embryonic: usize,
    pub(crate) evented: bool,
}

impl Listener {
    pub(crate) fn new(local: SocketAddrV4, backlog: usize, opts: TcpSocketOptions) -> Self {
        Listener {
            local,
            backlog: backlog.max(1),
            opts,
            accept: VecDeque::new(),
            embryonic: 0,
            evented: false,
        }
    }

    /// The accept queue has room for one more connection.
    pub(crate) fn has_room(&self) -> bool {
        self.accept.len() < self.backlog
    }

    /// An embryonic connection completed its handshake: queue it for accept. False
    /// when the queue is full (the connection is then reset).
    pub(crate) fn push_established(&mut self, key: SlabKey) -> bool {
        self.embryonic = self.embryonic.saturating_sub(1);
        if !self.has_room() {
            return false;
        }
        self.accept.push_back(key);
        true
    }

    /// A connection of this listener went away before it was accepted.
    pub(crate) fn forget(&mut self, key: SlabKey, queued: bool) {
        if queued {
            if let Some(i) = self.accept.iter().position(|&k| k == key) {
                self.accept.remove(i);
            }
        } else {
            self.embryonic = self.embryonic.saturating_sub(1);
        }
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.accept.len()
    }
}
