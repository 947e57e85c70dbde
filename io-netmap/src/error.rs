//! What can go wrong opening or driving a netmap port.

use std::io;

use crate::name::NameError;

/// Why a netmap port could not be opened or driven. Every variant names the port (or the
/// device) and keeps the original OS error, so the one-line message is enough to act on.
#[derive(Debug, thiserror::Error)]
pub enum NetmapError {
    /// `/dev/netmap` does not exist: the kernel module is not loaded (Linux) or the kernel
    /// was built without `device netmap` (FreeBSD).
    #[error("netmap kernel module not loaded (no /dev/netmap): on Linux build and `insmod netmap.ko` from the netmap sources, on FreeBSD use a kernel with `device netmap` (see docs/NETMAP.md)")]
    ModuleNotLoaded,
    /// `/dev/netmap` exists but could not be opened.
    #[error("cannot open /dev/netmap: {0}")]
    Open(#[source] io::Error),
    /// The port name does not parse.
    #[error(transparent)]
    BadName(#[from] NameError),
    /// The kernel refused `NETMAP_REQ_REGISTER` for the port.
    #[error("netmap: cannot register `{name}`: {} ({hint})", io::Error::from_raw_os_error(*.errno))]
    Register {
        /// The port name as given.
        name: String,
        /// The errno of the `NIOCCTRL` ioctl.
        errno: i32,
        /// What that errno usually means for a registration.
        hint: &'static str,
    },
    /// The shared region could not be mapped.
    #[error("netmap: cannot mmap the {size}-byte shared region of `{name}`: {source}")]
    Mmap {
        name: String,
        size: u64,
        #[source]
        source: io::Error,
    },
    /// The region the kernel described is not one this backend can trust (a ring or a
    /// buffer outside the mapping, a ring count of zero, ...).
    #[error("netmap: `{name}`: unexpected shared-memory layout: {what}")]
    Layout { name: String, what: String },
    /// Fewer extra buffers than the backend needs to lend RX buffers and allocate TX ones.
    #[error("netmap: `{name}`: the kernel gave {got} extra buffers, at least {min} are needed (raise `extra-bufs`, or netmap's `priv_buf_num`/`buf_num` module parameter)")]
    ExtraBufs { name: String, got: u32, min: u32 },
    /// A sync or poll on the port failed.
    #[error("netmap: {op} failed: {source}")]
    Sync {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What a registration errno usually means (netmap's own messages go to the kernel log).
#[cfg_attr(not(feature = "netmap"), allow(dead_code))]
pub(crate) fn register_hint(errno: i32) -> &'static str {
    match errno {
        libc_errno::ENOENT | libc_errno::ENXIO | libc_errno::ENODEV => {
            "no such interface, or its driver has no netmap support"
        }
        libc_errno::EBUSY => "the rings are in use by another process (or /x was asked)",
        libc_errno::EINVAL => {
            "the kernel rejected the request: netmap API version mismatch or a ring id out of range (see dmesg)"
        }
        libc_errno::ENOMEM => "not enough netmap memory for the rings or the extra buffers",
        libc_errno::EPERM | libc_errno::EACCES => "permission denied: run as root",
        libc_errno::EOPNOTSUPP => "the port does not support this ring mode",
        _ => "see dmesg for netmap's message",
    }
}

/// The few errno values the hints need, without making libc a dependency of the
/// feature-less build (Linux and FreeBSD agree on all of them but EOPNOTSUPP).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ENXIO: i32 = 6;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    #[cfg(target_os = "freebsd")]
    pub const EOPNOTSUPP: i32 = 45;
    #[cfg(not(target_os = "freebsd"))]
    pub const EOPNOTSUPP: i32 = 95;
}
