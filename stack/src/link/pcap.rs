//! pcap capture of a link, for Wireshark/tcpdump.
//!
//! A capture is a debugging tool, not the fast path: the writer sits behind a `Mutex` so
//! both ends of a link (possibly on two threads) can share one file through an
//! `Arc<PcapCapture>`, and each recorded frame takes the lock once. A link without a
//! capture never touches it.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::PcapError;

use crate::time::{Duration, Instant};

/// pcap's classic snapshot length: longer frames are stored truncated, with their real
/// length in the record header.
const SNAPLEN: usize = 65_535;

/// A classic pcap file (Ethernet link type, microsecond timestamps) that link ends write
/// the frames they put on the wire to. Timestamps are the virtual [`Instant`]s of the link
/// ends, read as seconds since the epoch of the simulation.
///
/// Write errors cannot be returned from `tx_burst`, so the first one is kept and the
/// capture stops; [`PcapCapture::flush`] reports it. Dropping the capture flushes it.
pub struct PcapCapture {
    inner: Mutex<Inner>,
}

struct Inner {
    writer: Option<PcapWriter<Sink>>,
    /// The same sink the `PcapWriter` owns, kept to flush it (pcap-file gives no access).
    sink: Sink,
    frames: u64,
    error: Option<io::Error>,
}

impl fmt::Debug for PcapCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("PcapCapture")
            .field("frames", &inner.frames)
            .field("error", &inner.error)
            .finish()
    }
}

impl PcapCapture {
    /// A capture into any writer; the pcap file header is written at once.
    pub fn new<W: Write + Send + 'static>(writer: W) -> io::Result<PcapCapture> {
        let sink = Sink(Arc::new(Mutex::new(Box::new(writer))));
        let writer = PcapWriter::new(sink.clone()).map_err(pcap_to_io)?;
        Ok(PcapCapture {
            inner: Mutex::new(Inner {
                writer: Some(writer),
                sink,
                frames: 0,
                error: None,
            }),
        })
    }

    /// A capture into a new file at `path` (truncated if it exists), buffered.
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<PcapCapture> {
        PcapCapture::new(BufWriter::new(File::create(path)?))
    }

    /// Record one Ethernet frame seen at `at`.
    pub fn record(&self, at: Instant, frame: &[u8]) {
        let mut inner = self.lock();
        let Some(writer) = inner.writer.as_mut() else {
            return;
        };
        let stored = frame.get(..SNAPLEN).unwrap_or(frame);
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let packet = PcapPacket::new(Duration::from_micros(at.total_micros()), orig_len, stored);
        match writer.write_packet(&packet) {
            Ok(_) => inner.frames += 1,
            Err(e) => {
                inner.error = Some(pcap_to_io(e));
                inner.writer = None;
            }
        }
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> u64 {
        self.lock().frames
    }

    /// Push buffered records to the underlying writer; reports the first write error the
    /// capture met, if any (once).
    pub fn flush(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        inner.sink.flush()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a valid (if partial) file: keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for PcapCapture {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// The capture's writer, shared between the `PcapWriter` (which owns one handle) and the
/// capture (which flushes through the other). Only ever used under the capture's lock, so
/// its own mutex is never contended.
#[derive(Clone)]
struct Sink(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

fn pcap_to_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::other(other),
    }
}
