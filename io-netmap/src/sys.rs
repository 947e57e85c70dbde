//! The real kernel: `/dev/netmap`, the registration request, the mapping, and the sync
//! ioctls.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use crate::abi::LEGACY_NAMSIZ;
use crate::abi::{nmreq, NETMAP_API, NIOCREGIF, NIOCRXSYNC, NIOCTXSYNC, NR_EXCLUSIVE};
use crate::error::register_hint;
use crate::name::{NameError, PortSpec};
use crate::port::{Kernel, NetmapPort};
use crate::region::Region;
use crate::NetmapError;

/// Where netmap's control device lives.
pub const DEV_NETMAP: &str = "/dev/netmap";

/// How to open a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Extra buffers to ask the kernel for: the spare pool that backs RX frames the
    /// stack holds and TX frames it builds. The kernel may give fewer; fewer than
    /// `min_extra_bufs` is an error.
    pub extra_bufs: u32,
    /// The least the port runs with.
    pub min_extra_bufs: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            extra_bufs: 4096,
            min_extra_bufs: 256,
        }
    }
}

/// A port on the real kernel.
pub type NetmapDevice = NetmapPort<FdKernel>;

/// The syncs as ioctls on the `/dev/netmap` descriptor (kept open by the port's mapping).
#[derive(Debug)]
pub struct FdKernel {
    fd: RawFd,
}

fn ioctl_none(fd: RawFd, req: u64) -> io::Result<()> {
    // SAFETY: NIOCTXSYNC/NIOCRXSYNC take no argument; `fd` is open while the port lives.
    let r = unsafe { libc::ioctl(fd, req as _, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Kernel for FdKernel {
    fn txsync(&mut self) -> io::Result<()> {
        ioctl_none(self.fd, NIOCTXSYNC as u64)
    }

    fn rxsync(&mut self) -> io::Result<()> {
        ioctl_none(self.fd, NIOCRXSYNC as u64)
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: one valid pollfd; poll(2) on the netmap fd syncs the RX rings.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Open the port `name` (`netmap:eth0`, `netmap:eth0-2`, `vale0:p1`, `netmap:eth0{1`,
/// `netmap:eth0^`) through `/dev/netmap`.
pub fn open(name: &str, opts: &OpenOptions) -> Result<NetmapDevice, NetmapError> {
    open_at(Path::new(DEV_NETMAP), name, opts)
}

/// [`open`] with another control device path (tests use a missing one).
pub fn open_at(dev: &Path, name: &str, opts: &OpenOptions) -> Result<NetmapDevice, NetmapError> {
    let spec: PortSpec = name.parse()?;
    if spec.kernel_name.len() >= LEGACY_NAMSIZ {
        return Err(NetmapError::BadName(NameError {
            name: name.to_string(),
            reason: "the kernel name is longer than 15 characters (the limit of netmap's register request)",
        }));
    }
    let fd = open_dev(dev)?;
    // SAFETY: nmreq is plain old data: all-zero is a valid value.
    let mut req: nmreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.nr_name.iter_mut().zip(spec.kernel_name.bytes()) {
        *d = s as libc::c_char;
    }
    req.nr_version = NETMAP_API;
    req.nr_ringid = spec.mode.ring_id();
    req.nr_flags = spec.mode.nr_mode() | if spec.exclusive { NR_EXCLUSIVE } else { 0 };
    req.nr_arg3 = opts.extra_bufs;
    // SAFETY: NIOCREGIF reads and writes one `struct nmreq`, whose layout abi.rs checks.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NIOCREGIF as _, &mut req as *mut nmreq) };
    if r < 0 {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(NetmapError::Register {
            name: name.to_string(),
            errno,
            hint: register_hint(errno),
        });
    }
    let size = req.nr_memsize as usize;
    // SAFETY: mapping the region the kernel just described, shared, from its fd.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED || base.is_null() {
        return Err(NetmapError::Mmap {
            name: name.to_string(),
            size: size as u64,
            source: io::Error::last_os_error(),
        });
    }
    let raw = fd.as_raw_fd();
    // SAFETY: `base` is the start of our fresh `size`-byte shared mapping; the Region owns
    // it (and the fd) from here.
    let region = unsafe { Region::from_mmap(NonNull::new_unchecked(base.cast()), size, fd) };
    NetmapPort::new(
        region,
        req.nr_offset as usize,
        spec.mode,
        name,
        FdKernel { fd: raw },
        opts.min_extra_bufs,
    )
}

fn open_dev(dev: &Path) -> Result<OwnedFd, NetmapError> {
    let path = CString::new(dev.as_os_str().as_encoded_bytes())
        .map_err(|_| NetmapError::Open(io::Error::from(io::ErrorKind::InvalidInput)))?;
    // SAFETY: a NUL-terminated path; the returned descriptor is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            // No node, or a node without the driver behind it.
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                NetmapError::ModuleNotLoaded
            }
            _ => NetmapError::Open(e),
        });
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
