//! Why a TAP interface could not be opened or configured, in terms a user can act on.

use std::io;
use std::path::PathBuf;

/// An error of the TAP backend. Every variant says what was being done; the system error
/// is kept where there is one.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The TUN/TAP character device is missing (no `tun` driver, or a container without
    /// `/dev/net/tun`).
    #[error(
        "{path}: no TUN/TAP device ({source}); load the `tun` module or give the \
         container /dev/net/tun"
    )]
    NoTunDevice {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The caller may not create or configure the interface.
    #[error(
        "{op}: permission denied; creating and configuring a TAP interface needs \
         CAP_NET_ADMIN (run as root, or grant the capability to the binary)"
    )]
    PermissionDenied {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The name does not fit `IFNAMSIZ` (15 bytes plus the terminating NUL).
    #[error("interface name {name:?} is {len} bytes long; Linux allows at most 15")]
    NameTooLong { name: String, len: usize },
    /// The kernel would refuse the name: empty, `.`/`..`, or with `/`, `:`, NUL or
    /// whitespace.
    #[error(
        "{name:?} is not a valid interface name (no '/', ':', whitespace or NUL; not '.' or '..')"
    )]
    InvalidName { name: String },
    /// A TAP of that name is already open elsewhere (a single-queue TAP has one opener).
    #[error(
        "TAP interface {name:?} is already in use by another file (open it with multiple \
         queues in every opener, or pick another name)"
    )]
    NameTaken { name: String },
    /// An interface of that name exists but cannot be attached as asked: it is not a TAP
    /// (a TUN, a veth, a bridge...), or its multi-queue setting differs.
    #[error(
        "interface {name:?} exists but is not a TAP interface that can be attached with \
         these flags (another kind of interface, or a different multi-queue setting)"
    )]
    NotATap { name: String },
    /// More queues were asked for than a TAP interface has.
    #[error("{requested} queues asked for; a TAP interface has 1 to {max}")]
    BadQueueCount { requested: usize, max: usize },
    /// The MTU is outside what the interface accepts.
    #[error("MTU {mtu} rejected by interface {name:?} ({source})")]
    BadMtu {
        name: String,
        mtu: usize,
        #[source]
        source: io::Error,
    },
    /// Any other system call failure.
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl TapError {
    /// Classify a failure of `op`: permission errors become [`TapError::PermissionDenied`],
    /// everything else [`TapError::Io`].
    pub(crate) fn from_io(op: &'static str, source: io::Error) -> TapError {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => TapError::PermissionDenied { op, source },
            _ => TapError::Io { op, source },
        }
    }
}
