//! The Environment Abstraction Layer: DPDK's process-wide runtime, started once.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{rte_errno, strerror, DpdkError};
use crate::sys;

/// Set by the first [`Eal::init`], whether it succeeded or not: DPDK cannot run
/// `rte_eal_init` a second time in a process, not even after a failure or a cleanup.
static STARTED: AtomicBool = AtomicBool::new(false);

/// A handle on the running EAL. Clones share it; every [`Mempool`](crate::Mempool) and
/// [`Port`](crate::Port) holds one, so the EAL can only be cleaned up after all of them
/// (and so all mbufs) are gone.
#[derive(Debug, Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

#[derive(Debug)]
struct EalInner {
    args: Vec<String>,
}

impl Eal {
    /// Start the EAL with `args` (the first is the program name, as in `argv`). Fails
    /// with [`DpdkError::EalAlreadyInitialized`] on any call after the first.
    ///
    /// Note that `rte_eal_init` pins the calling thread to the main lcore's CPUs.
    pub fn init<I, S>(args: I) -> Result<Eal, DpdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let layout = crate::mbuf::layout();
        let rust = std::mem::size_of::<sys::RnMbufLayout>() as u32;
        if layout.size != rust {
            return Err(DpdkError::ShimMismatch {
                shim: layout.size,
                rust,
            });
        }
        let mut cargs = Vec::with_capacity(args.len() + 1);
        for a in &args {
            let c =
                CString::new(a.as_str()).map_err(|_| DpdkError::EalArgument { arg: a.clone() })?;
            cargs.push(c);
        }
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialized);
        }
        // The strings are leaked: rte_eal_init permutes argv and some EAL parts keep
        // pointers into it for the life of the process. It runs once, so this is bounded.
        let mut argv: Vec<*mut c_char> = cargs.into_iter().map(CString::into_raw).collect();
        let argc = argv.len() as c_int;
        argv.push(std::ptr::null_mut());
        let argv = Box::leak(argv.into_boxed_slice());
        // SAFETY: argv holds argc valid NUL-terminated strings plus a terminating NULL,
        // all leaked so they outlive the call and whatever EAL keeps of them. STARTED
        // makes this the only call in the process, as DPDK requires.
        #[allow(unsafe_code)]
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let code = rte_errno();
            return Err(DpdkError::EalInit {
                code,
                text: strerror(code),
                args: args.join(" "),
            });
        }
        Ok(Eal {
            inner: Arc::new(EalInner { args }),
        })
    }

    /// Whether `rte_eal_init` has been called in this process (a second one would fail).
    pub fn started() -> bool {
        STARTED.load(Ordering::SeqCst)
    }

    /// The arguments the EAL was started with.
    pub fn args(&self) -> &[String] {
        &self.inner.args
    }

    /// Ports the EAL found (PCI devices bound to a DPDK driver, vdevs).
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised (self exists); the call only reads ethdev state.
        #[allow(unsafe_code)]
        unsafe {
            sys::rte_eth_dev_count_avail()
        }
    }

    /// The NUMA socket of the calling thread's lcore.
    pub fn socket_id(&self) -> u32 {
        // SAFETY: the EAL is initialised; rte_socket_id reads a thread-local.
        #[allow(unsafe_code)]
        unsafe {
            sys::rte_socket_id()
        }
    }

    /// Release the EAL's resources (hugepage files, the multi-process channel) with
    /// `rte_eal_cleanup`, if this is the last handle; otherwise hands it back, since
    /// pools, ports or mbufs still use DPDK memory. DPDK cannot be started again after.
    pub fn cleanup(self) -> Result<(), Eal> {
        match Arc::try_unwrap(self.inner) {
            Ok(_) => {
                // SAFETY: this was the last handle: every pool and port (which hold one)
                // is gone, a pool is only freed once all its mbufs are back, and a pool
                // with mbufs out leaks its handle, so no DPDK object outlives this.
                #[allow(unsafe_code)]
                unsafe {
                    sys::rte_eal_cleanup();
                }
                Ok(())
            }
            Err(inner) => Err(Eal { inner }),
        }
    }
}
