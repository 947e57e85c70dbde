//! [`Mempool`]: a pool of packet mbufs (`rte_pktmbuf_pool_create`), and
//! [`MbufAllocator`]: transmit mbufs from it for a thread that does not poll the port.

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use rumpnet_stack::device::TxAllocator;

use crate::eal::Eal;
use crate::error::{rte_errno, strerror, DpdkError};
use crate::mbuf::{layout, Mbuf};
use crate::sys::{self, RteMbuf, RteMempool};

/// Mempool ops whose dequeue (get) and enqueue (put) are both safe from several threads
/// at once: DPDK's multi-producer/multi-consumer ring (the default of
/// `rte_pktmbuf_pool_create`), its RTS and HTS rings, and the two stacks.
const MT_SAFE_OPS: &[&str] = &[
    "ring_mp_mc",
    "ring_mt_rts",
    "ring_mt_hts",
    "stack",
    "lf_stack",
];

/// Mbufs an [`MbufAllocator`] takes from the pool at once (one ring dequeue per this
/// many frames), and so the most it holds unused.
pub const ALLOC_BATCH: usize = 32;

/// A pool of mbufs with `data_room` bytes each (headroom included). Clones share the
/// pool. It is freed when the last handle goes *and* every mbuf is back; a pool dropped
/// with mbufs still out is left allocated (and keeps the EAL from being cleaned up),
/// because freeing it would leave those mbufs pointing into freed memory.
#[derive(Debug, Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    ptr: NonNull<RteMempool>,
    name: String,
    size: u32,
    data_room: u16,
    eal: Option<Eal>,
}

// SAFETY: an rte_mempool is built for concurrent use: its default ops ("ring_mp_mc") are
// multi-producer/multi-consumer safe, per-lcore caches are only touched by their own
// lcore's thread, and threads that are not lcores bypass them. The pointer itself is
// never freed while a handle exists.
#[allow(unsafe_code)]
unsafe impl Send for PoolInner {}
// SAFETY: see Send: every operation through &PoolInner is thread-safe in DPDK.
#[allow(unsafe_code)]
unsafe impl Sync for PoolInner {}

/// Longest pool name we accept (`RTE_MEMPOOL_NAMESIZE` is 29 with room for a prefix).
const MAX_NAME: usize = 24;

impl Mempool {
    /// Create a pool of `n` mbufs (DPDK suggests 2^k - 1), each with `data_room` bytes
    /// of buffer (`RTE_PKTMBUF_HEADROOM` of it in front of the data), with a per-lcore
    /// cache of `cache` mbufs, on NUMA `socket` (`None`: any).
    pub fn create(
        eal: &Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: Option<u32>,
    ) -> Result<Mempool, DpdkError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(DpdkError::MempoolName { name: name.into() });
        }
        let cname = CString::new(name).map_err(|_| DpdkError::MempoolName { name: name.into() })?;
        let socket = socket.map_or(sys::SOCKET_ID_ANY, |s| s as i32);
        // SAFETY: the EAL is initialised (we hold a handle); cname is a valid C string
        // that outlives the call (DPDK copies the name).
        #[allow(unsafe_code)]
        let ptr = unsafe { sys::rn_pool_create(cname.as_ptr(), n, cache, data_room, socket) };
        let Some(ptr) = NonNull::new(ptr) else {
            let code = rte_errno();
            return Err(DpdkError::Mempool {
                name: name.into(),
                n,
                cache,
                data_room,
                code,
                text: strerror(code),
            });
        };
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                ptr,
                name: name.into(),
                size: n,
                data_room,
                eal: Some(eal.clone()),
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of mbufs in the pool.
    pub fn size(&self) -> u32 {
        self.inner.size
    }

    /// Buffer size of each mbuf, headroom included.
    pub fn data_room(&self) -> u16 {
        self.inner.data_room
    }

    /// Mbufs currently allocated (held by the stack, a NIC ring or a cache of ours).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive while we hold a handle; the count only reads it.
        #[allow(unsafe_code)]
        unsafe {
            sys::rn_pool_in_use(self.inner.ptr.as_ptr())
        }
    }

    /// Mbufs free in the pool (its ring plus the lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: as in in_use.
        #[allow(unsafe_code)]
        unsafe {
            sys::rn_pool_avail(self.inner.ptr.as_ptr())
        }
    }

    /// The name of the pool's ops (`"ring_mp_mc"` unless the EAL was told otherwise
    /// with `--mbuf-pool-ops-name`).
    pub fn ops_name(&self) -> String {
        // SAFETY: the pool is alive; the shim returns the name array of its registered
        // ops, a static NUL-terminated string of librte_mempool, copied out at once.
        #[allow(unsafe_code)]
        let name = unsafe { CStr::from_ptr(sys::rn_pool_ops_name(self.inner.ptr.as_ptr())) };
        name.to_string_lossy().into_owned()
    }

    /// Whether several threads may take mbufs from and return them to this pool at
    /// once: its ops are multi-producer/multi-consumer and no single-thread flag is set.
    pub fn is_thread_safe(&self) -> bool {
        self.thread_safety().is_ok()
    }

    fn thread_safety(&self) -> Result<(), DpdkError> {
        // SAFETY: the pool is alive; the shim only reads its flags.
        #[allow(unsafe_code)]
        let single = unsafe { sys::rn_pool_single_thread_flags(self.inner.ptr.as_ptr()) };
        let ops = self.ops_name();
        if single == 0 && MT_SAFE_OPS.contains(&ops.as_str()) {
            return Ok(());
        }
        Err(DpdkError::PoolNotThreadSafe {
            name: self.inner.name.clone(),
            ops,
            flags: if single != 0 {
                " with a single-producer/consumer flag"
            } else {
                ""
            },
        })
    }

    /// An allocator of transmit mbufs of at most `max_len` data bytes (after the
    /// headroom) from this pool, for another thread: the runtime's pipelined mode gives
    /// one to each shard, which builds frames that an I/O thread then sends.
    ///
    /// Why this is sound from any thread: `rte_pktmbuf_alloc_bulk` takes mbufs with
    /// `rte_mempool_get_bulk`, which uses a per-lcore cache only on an EAL lcore thread
    /// (`rte_mempool_default_cache` returns none for `rte_lcore_id() == LCORE_ID_ANY`,
    /// as on every thread DPDK did not start or register), and each lcore id belongs to
    /// one thread; otherwise it dequeues straight from the pool's ops, which must then
    /// be multi-consumer safe. That is checked here: the ops must be one of DPDK's
    /// multi-producer/multi-consumer ones and the pool must not carry
    /// `RTE_MEMPOOL_F_SC_GET`/`RTE_MEMPOOL_F_SP_PUT` (the mbufs are freed on yet another
    /// thread, after the PMD has sent them). `rte_pktmbuf_pool_create`'s default,
    /// `ring_mp_mc` with no flags, passes.
    pub fn tx_allocator(&self, max_len: usize) -> Result<MbufAllocator, DpdkError> {
        self.thread_safety()?;
        let room = usize::from(self.data_room()).saturating_sub(layout().headroom as usize);
        Ok(MbufAllocator {
            pool: self.clone(),
            max_len: max_len.min(room),
            cache: [std::ptr::null_mut(); ALLOC_BATCH],
            cached: 0,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut RteMempool {
        self.inner.ptr.as_ptr()
    }

    /// One mbuf whose data is `len` bytes (contents unspecified); `None` if the pool is
    /// empty or `len` does not fit after the headroom.
    pub fn alloc(&self, len: usize) -> Option<Mbuf> {
        let mut p: [*mut RteMbuf; 1] = [std::ptr::null_mut()];
        if !self.alloc_raw(&mut p) {
            return None;
        }
        // SAFETY: alloc_raw filled p[0] with a fresh mbuf from our pool, owned by nobody.
        #[allow(unsafe_code)]
        let mut m = unsafe { Mbuf::from_raw(NonNull::new_unchecked(p[0])) };
        m.set_data_len(len).then_some(m)
    }

    /// Fill all of `out` with fresh (reset, single-segment) mbufs, or none of them.
    pub(crate) fn alloc_raw(&self, out: &mut [*mut RteMbuf]) -> bool {
        // SAFETY: the pool is alive; out has room for out.len() pointers, which
        // rte_pktmbuf_alloc_bulk fills only on success (returning 0).
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rn_alloc_bulk(self.as_ptr(), out.as_mut_ptr(), out.len() as u32) };
        rc == 0
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: this is the last handle, so no port or queue of ours can take mbufs
        // from it any more; the count only reads the pool.
        #[allow(unsafe_code)]
        let in_use = unsafe { sys::rn_pool_in_use(self.ptr.as_ptr()) };
        if in_use == 0 {
            // SAFETY: every mbuf is back and nobody else holds the pool pointer.
            #[allow(unsafe_code)]
            unsafe {
                sys::rte_mempool_free(self.ptr.as_ptr())
            };
        } else {
            // Mbufs still out point into this pool: leave it, and keep the EAL's handle
            // alive too so Eal::cleanup can never run under them.
            std::mem::forget(self.eal.take());
        }
    }
}

/// Transmit mbufs for a thread other than the port's poller (see
/// [`Mempool::tx_allocator`]). It takes [`ALLOC_BATCH`] mbufs from the pool at a time
/// and hands them out one by one, so the pool's shared ring is touched once per batch;
/// the ones not handed out go back to the pool when it is dropped.
pub struct MbufAllocator {
    pool: Mempool,
    max_len: usize,
    /// Fresh mbufs taken in bulk; `cache[..cached]` are owned by this allocator.
    cache: [*mut RteMbuf; ALLOC_BATCH],
    cached: usize,
}

// SAFETY: the allocator is used through &mut self only, so by one thread at a time. The
// cached mbufs are exclusively owned by it (taken from the pool, handed to nobody
// else), and both taking (Mempool::tx_allocator checked the pool's ops are
// multi-consumer safe; no lcore cache is used off an EAL lcore) and freeing them
// (multi-producer ops, see Mbuf's Send) are sound on whichever thread holds it.
#[allow(unsafe_code)]
unsafe impl Send for MbufAllocator {}

impl fmt::Debug for MbufAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbufAllocator")
            .field("pool", &self.pool.name())
            .field("max_len", &self.max_len)
            .field("cached", &self.cached)
            .finish()
    }
}

impl MbufAllocator {
    /// The longest frame it gives (data bytes after the headroom).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Mbufs taken from the pool and not handed out yet (at most [`ALLOC_BATCH`]).
    pub fn cached(&self) -> usize {
        self.cached
    }

    /// A frame of `len` bytes (contents unspecified) with the pool's headroom in front;
    /// `None` when the pool is exhausted or `len` is over [`max_len`](Self::max_len).
    pub fn alloc(&mut self, len: usize) -> Option<Mbuf> {
        if len > self.max_len {
            return None;
        }
        if self.cached == 0 {
            // A batch at once; when the pool is nearly empty, one.
            if self.pool.alloc_raw(&mut self.cache) {
                self.cached = ALLOC_BATCH;
            } else if self.pool.alloc_raw(&mut self.cache[..1]) {
                self.cached = 1;
            } else {
                return None;
            }
        }
        self.cached -= 1;
        let p = self.cache[self.cached];
        // SAFETY: cache[..cached + 1] held fresh mbufs from our pool owned by this
        // allocator (alloc_raw filled them); the one at `cached` is handed over now and
        // no longer counted, so it has exactly one owner.
        #[allow(unsafe_code)]
        let mut m = unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) };
        // Fits: len <= max_len <= data room - headroom, and a fresh mbuf's data_off is
        // the headroom.
        m.set_data_len(len).then_some(m)
    }
}

impl TxAllocator<Mbuf> for MbufAllocator {
    fn alloc(&mut self, len: usize) -> Option<Mbuf> {
        MbufAllocator::alloc(self, len)
    }
}

impl Drop for MbufAllocator {
    fn drop(&mut self) {
        if self.cached > 0 {
            // SAFETY: cache[..cached] are mbufs this allocator owns and nobody else
            // refers to; the pool outlives them (we hold a handle).
            #[allow(unsafe_code)]
            unsafe {
                sys::rn_free_bulk(self.cache.as_mut_ptr(), self.cached as u32)
            };
            self.cached = 0;
        }
    }
}
