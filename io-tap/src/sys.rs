//! The Linux calls behind the TAP backend: `TUNSETIFF` and friends on the `/dev/net/tun`
//! file, and the `SIOCSIF*` interface ioctls on an `AF_INET` control socket.
//!
//! This is the only module with `unsafe`: each `ioctl` gets a pointer to a properly sized,
//! initialised `ifreq` or integer that lives across the call, and reads back only what
//! the kernel wrote. Reading and writing frames needs no `unsafe` at all: a non-blocking
//! `std::fs::File` does `read(2)` and `writev(2)`.

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `IFNAMSIZ`: an interface name has at most 15 bytes plus the terminating NUL.
pub(crate) const IFNAMSIZ: usize = libc::IFNAMSIZ;

/// The most queues one multi-queue TUN/TAP interface takes (`MAX_TAP_QUEUES` in
/// `drivers/net/tun.c`).
pub(crate) const MAX_QUEUES: usize = 256;

/// An `ifreq` naming `name` (already validated: at most `IFNAMSIZ - 1` bytes, no NUL),
/// everything else zero.
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of integers, sockaddrs
    // and a pointer) for which all-zero bytes is a valid value: an empty name and a null
    // `ifru_data`.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

/// The name in an `ifreq` the kernel filled in (up to the first NUL).
fn ifreq_name(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `ioctl(fd, request, req)` for requests that take a `struct ifreq *`.
fn ioctl_ifreq(fd: &impl AsRawFd, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `req` is a valid, exclusively borrowed `ifreq` for the whole call, which is
    // what every request passed here (TUNSETIFF, SIOC[GS]IF*) reads and writes; the fd is
    // open for the duration of the borrow.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ioctl(fd, request, value)` for the TUN requests that take a plain integer argument
/// (`TUNSETOFFLOAD` takes the flags by value).
fn ioctl_value(fd: &impl AsRawFd, request: libc::c_ulong, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the request reads its argument as an integer, not through a pointer, so no
    // memory is shared with the kernel.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, value) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ioctl(fd, request, &value)` for the TUN requests that read an `int` through a pointer
/// (`TUNSETVNETHDRSZ`).
fn ioctl_int_ptr(fd: &impl AsRawFd, request: libc::c_ulong, value: c_int) -> io::Result<()> {
    let mut v = value;
    // SAFETY: `v` is a live, aligned `c_int` for the whole call; the kernel only reads it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &mut v as *mut c_int) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `TUNSETIFF`: make the opened `/dev/net/tun` file the queue of interface `name`
/// (creating it if absent) with `flags` (`IFF_TAP | IFF_NO_PI | ...`). Returns the name
/// the kernel used (it expands a `%d` pattern or an empty name).
pub(crate) fn tun_set_iff(file: &File, name: &str, flags: c_int) -> io::Result<String> {
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    ioctl_ifreq(file, libc::TUNSETIFF as libc::c_ulong, &mut req)?;
    Ok(ifreq_name(&req))
}

/// `TUNSETVNETHDRSZ`: the size of the virtio-net header in front of every frame.
pub(crate) fn tun_set_vnet_hdr_sz(file: &File, size: usize) -> io::Result<()> {
    let size = c_int::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    ioctl_int_ptr(file, libc::TUNSETVNETHDRSZ as libc::c_ulong, size)
}

/// `TUNSETOFFLOAD`: which offloaded frames (partial checksums, GSO kinds) the kernel may
/// hand to this file.
pub(crate) fn tun_set_offload(file: &File, flags: libc::c_uint) -> io::Result<()> {
    ioctl_value(
        file,
        libc::TUNSETOFFLOAD as libc::c_ulong,
        libc::c_ulong::from(flags),
    )
}

/// An `AF_INET` datagram socket used only as a handle for interface ioctls. It names the
/// interface by name in the network namespace it was created in (the caller's).
#[derive(Debug)]
pub(crate) struct CtlSocket(OwnedFd);

impl CtlSocket {
    pub(crate) fn new() -> io::Result<CtlSocket> {
        // SAFETY: plain socket(2) call with constant arguments; it returns a new fd or -1.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2), is open, and is owned by nobody else.
        Ok(CtlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `SIOCGIFFLAGS`.
    pub(crate) fn flags(&self, name: &str) -> io::Result<libc::c_short> {
        let mut req = ifreq(name);
        ioctl_ifreq(&self.0, libc::SIOCGIFFLAGS, &mut req)?;
        // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote `ifru_flags`; every bit
        // pattern is a valid `c_short`.
        Ok(unsafe { req.ifr_ifru.ifru_flags })
    }

    /// `SIOCSIFFLAGS` with `IFF_UP` set or cleared, the other flags kept.
    pub(crate) fn set_up(&self, name: &str, up: bool) -> io::Result<()> {
        let flags = self.flags(name)?;
        let want = if up {
            flags | libc::IFF_UP as libc::c_short
        } else {
            flags & !(libc::IFF_UP as libc::c_short)
        };
        if want == flags {
            return Ok(());
        }
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_flags = want;
        ioctl_ifreq(&self.0, libc::SIOCSIFFLAGS, &mut req)
    }

    /// `SIOCGIFMTU`.
    pub(crate) fn mtu(&self, name: &str) -> io::Result<usize> {
        let mut req = ifreq(name);
        ioctl_ifreq(&self.0, libc::SIOCGIFMTU, &mut req)?;
        // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote `ifru_mtu`; any `c_int` is valid.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        usize::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }

    /// `SIOCSIFMTU`.
    pub(crate) fn set_mtu(&self, name: &str, mtu: usize) -> io::Result<()> {
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_mtu =
            c_int::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        ioctl_ifreq(&self.0, libc::SIOCSIFMTU, &mut req)
    }

    /// `SIOCSIFADDR` then `SIOCSIFNETMASK`: the kernel side's IPv4 address and prefix.
    pub(crate) fn set_ipv4(&self, name: &str, addr: Ipv4Addr, netmask: Ipv4Addr) -> io::Result<()> {
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_addr = sockaddr_in(addr);
        ioctl_ifreq(&self.0, libc::SIOCSIFADDR, &mut req)?;
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_netmask = sockaddr_in(netmask);
        ioctl_ifreq(&self.0, libc::SIOCSIFNETMASK, &mut req)
    }

    /// `SIOCGIFHWADDR`: the kernel side's MAC address.
    pub(crate) fn hwaddr(&self, name: &str) -> io::Result<[u8; 6]> {
        let mut req = ifreq(name);
        ioctl_ifreq(&self.0, libc::SIOCGIFHWADDR, &mut req)?;
        // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote `ifru_hwaddr`, a plain
        // sockaddr whose every bit pattern is valid.
        let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (m, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = b as u8;
        }
        Ok(mac)
    }
}

/// A `struct sockaddr_in` for `addr`, in the generic `sockaddr` shape `ifreq` holds.
fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr {
    // SAFETY: `sockaddr` is a plain C struct of integers; all-zero is a valid value.
    let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
    sa.sa_family = libc::AF_INET as libc::sa_family_t;
    // struct sockaddr_in { sa_family_t; in_port_t (2 bytes); struct in_addr; ... }: the
    // address follows the (zero) port, in network byte order.
    for (dst, &src) in sa.sa_data[2..6].iter_mut().zip(addr.octets().iter()) {
        *dst = src as libc::c_char;
    }
    sa
}
