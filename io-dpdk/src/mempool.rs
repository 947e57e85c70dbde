//! [`Mempool`]: a pool of packet mbufs (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::Eal;
use crate::error::{rte_errno, strerror, DpdkError};
use crate::mbuf::Mbuf;
use crate::sys::{self, RteMbuf, RteMempool};

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
