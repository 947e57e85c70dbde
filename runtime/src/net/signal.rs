//! How a shard tells the user's threads that a socket's readiness changed.
//!
//! The shard changes the socket's state first (bytes in a ring, a flag), then calls
//! [`Signal::wake`]. A thread that blocks announces itself in `waiters` and checks the
//! state again before it sleeps (the Dekker pattern of [`crate::ring::Notifier`], with
//! sequentially consistent fences on both sides), so one of the two always sees the
//! other: no wake-up is lost. The shard pays nothing but a fence and a load while
//! nobody waits; it takes the condition variable's lock only to wake a sleeper.
//!
//! For `mio` users a socket also carries a pipe whose read end is registered with their
//! [`mio::Registry`]: the shard writes one byte when readiness changed and the user had
//! re-armed it (by seeing `WouldBlock`), so the pipe's empty→non-empty edge is the
//! readiness edge.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use mio::unix::pipe;
use mio::{Interest, Registry, Token};

/// Wake-ups of one socket.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    waiters: AtomicU32,
    lock: Mutex<()>,
    cv: Condvar,
    /// The user registered the socket with mio and wants an edge on the next change.
    mio_armed: AtomicBool,
    mio: Mutex<Option<MioPipe>>,
}

#[derive(Debug)]
struct MioPipe {
    tx: pipe::Sender,
    rx: pipe::Receiver,
}

impl Signal {
    /// Wake the threads blocked in [`Signal::wait_until`] only, not a mio poller: for
    /// changes that are not readiness (a `bind` completing on one more shard, which the
    /// binding thread waits for before any poller can be registered). A late one of
    /// those must not show up as an edge after the poller registered.
    pub fn wake_waiters(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            drop(self.lock());
            self.cv.notify_all();
        }
    }

    /// Readiness changed (the state was updated before this call).
    pub fn wake(&self) {
        self.wake_waiters();
        if self.mio_armed.load(Ordering::Relaxed) && self.mio_armed.swap(false, Ordering::AcqRel) {
            if let Ok(g) = self.mio.lock() {
                if let Some(p) = g.as_ref() {
                    // A full pipe already says "readable": nothing is lost.
                    let _ = (&p.tx).write(&[1]);
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Block until `ready()` or `deadline`; returns whether it became ready.
    pub fn wait_until(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
        if ready() {
            return true;
        }
        let mut g = self.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let r = loop {
            if ready() {
                break true;
            }
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(g);
        r
    }

    /// The user is about to report `WouldBlock`: consume the pending edge and ask for
    /// the next one. Call before the final readiness check, so a change that happens
    /// after it writes a fresh byte.
    pub fn rearm(&self) {
        if let Ok(g) = self.mio.lock() {
            if let Some(p) = g.as_ref() {
                let mut sink = [0u8; 64];
                while matches!((&p.rx).read(&mut sink), Ok(n) if n > 0) {}
                self.mio_armed.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
            }
        }
    }

    /// `mio::event::Source::register`/`reregister`: a fresh pipe registered under
    /// `token`, with one byte in it so the first poll reports the socket (readiness is
    /// unknown to the caller until it tries).
    pub fn mio_register(&self, registry: &Registry, token: Token) -> std::io::Result<()> {
        let (tx, mut rx) = pipe::new()?;
        registry.register(&mut rx, token, Interest::READABLE)?;
        let _ = (&tx).write(&[1]);
        let mut g = self.mio.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut old) = g.take() {
            let _ = registry.deregister(&mut old.rx);
        }
        *g = Some(MioPipe { tx, rx });
        self.mio_armed.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// `mio::event::Source::deregister`.
    pub fn mio_deregister(&self, registry: &Registry) -> std::io::Result<()> {
        let mut g = self.mio.lock().unwrap_or_else(|e| e.into_inner());
        self.mio_armed.store(false, Ordering::SeqCst);
        match g.take() {
            Some(mut p) => registry.deregister(&mut p.rx),
            None => Err(std::io::Error::new(
                ErrorKind::NotFound,
                "socket is not registered",
            )),
        }
    }
}
