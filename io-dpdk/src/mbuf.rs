//! [`Mbuf`]: an owned `rte_mbuf` as the stack's [`Frame`], read and written in place.
//!
//! Only single-segment mbufs are ever wrapped (receive drops chained ones, transmit
//! allocates one segment), so `data_len == pkt_len` always holds and `data()` is one
//! slice. Field offsets come from the C shim's `rn_mbuf_layout` (offsetof against the
//! installed headers), so nothing here hand-mirrors `struct rte_mbuf`.

use core::fmt;
use core::ptr::NonNull;

use rumpnet_stack::device::{BufferError, Frame, L4Proto, RxMeta, TxOffload};

use crate::sys::{self, RnMbufLayout, RteMbuf};

/// The shim's table of `struct rte_mbuf` offsets and flag values.
#[inline(always)]
pub(crate) fn layout() -> &'static RnMbufLayout {
    // SAFETY: rn_mbuf_layout is a `const` C object initialised at compile time, never
    // written; its Rust mirror has the same repr(C) layout (its size is checked against
    // the shim's in Eal::init, before any mbuf exists).
    #[allow(unsafe_code)]
    unsafe {
        &sys::rn_mbuf_layout
    }
}

/// One packet buffer from a DPDK mempool, owned: dropping it frees it to its pool
/// (`rte_pktmbuf_free`), and handing it to the NIC (`tx_burst`) gives up ownership.
pub struct Mbuf {
    ptr: NonNull<RteMbuf>,
}

// SAFETY: an Mbuf is the only reference to its rte_mbuf (taken from rx_burst or the
// pool, given away to tx_burst or freed on drop), so moving it to another thread moves
// exclusive ownership. Freeing it there is allowed: rte_pktmbuf_free puts the mbuf back
// with rte_mempool_put, which on a thread that is not an EAL lcore (rte_lcore_id() ==
// LCORE_ID_ANY) skips the per-lcore cache and enqueues to the pool's ring with the
// default multi-producer-safe ops ("ring_mp_mc"), so any thread may free.
#[allow(unsafe_code)]
unsafe impl Send for Mbuf {}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("ptr", &self.ptr)
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .finish()
    }
}

#[allow(unsafe_code)]
impl Mbuf {
    /// Take ownership of `ptr`.
    ///
    /// # Safety
    /// `ptr` is a valid single-segment `rte_mbuf` nobody else owns or will free.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(ptr: NonNull<RteMbuf>) -> Mbuf {
        Mbuf { ptr }
    }

    /// Give up ownership (to a PMD's transmit ring) without freeing.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> *mut RteMbuf {
        let p = self.ptr.as_ptr();
        core::mem::forget(self);
        p
    }

    /// The raw pointer, still owned by this `Mbuf`.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *mut RteMbuf {
        self.ptr.as_ptr()
    }

    #[inline(always)]
    fn field<T>(&self, off: u32) -> *mut T {
        // SAFETY: `off` is an offsetof() of a field inside struct rte_mbuf (from the
        // shim), so the result stays inside the object self.ptr points to.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(off as usize).cast::<T>() }
    }

    #[inline(always)]
    fn get_u16(&self, off: u32) -> u16 {
        // SAFETY: a u16 field of our live mbuf (sizes asserted in the shim), naturally
        // aligned since rte_mbuf is cache-line aligned and offsetof respects alignment.
        unsafe { self.field::<u16>(off).read() }
    }

    #[inline(always)]
    fn set_u16(&mut self, off: u32, v: u16) {
        // SAFETY: as in get_u16; &mut self means we own the mbuf exclusively.
        unsafe { self.field::<u16>(off).write(v) }
    }

    #[inline(always)]
    fn get_u32(&self, off: u32) -> u32 {
        // SAFETY: a u32 field of our live mbuf, aligned (see get_u16).
        unsafe { self.field::<u32>(off).read() }
    }

    #[inline(always)]
    fn set_u32(&mut self, off: u32, v: u32) {
        // SAFETY: as in get_u32, with exclusive ownership.
        unsafe { self.field::<u32>(off).write(v) }
    }

    #[inline(always)]
    fn get_u64(&self, off: u32) -> u64 {
        // SAFETY: a u64 field of our live mbuf, aligned (see get_u16).
        unsafe { self.field::<u64>(off).read() }
    }

    #[inline(always)]
    fn set_u64(&mut self, off: u32, v: u64) {
        // SAFETY: as in get_u64, with exclusive ownership.
        unsafe { self.field::<u64>(off).write(v) }
    }

    #[inline(always)]
    fn buf_addr(&self) -> *mut u8 {
        // SAFETY: buf_addr is a pointer-sized, pointer-aligned field of our mbuf.
        unsafe { self.field::<*mut u8>(layout().off_buf_addr).read() }
    }

    /// Segments in the chain (always 1 for an `Mbuf` handed out by this crate).
    pub fn nb_segs(&self) -> u16 {
        self.get_u16(layout().off_nb_segs)
    }

    /// The offload flags (`ol_flags`).
    pub fn ol_flags(&self) -> u64 {
        self.get_u64(layout().off_ol_flags)
    }

    /// The raw `tx_offload` word (l2/l3/l4 lengths, TSO segment size).
    pub fn tx_offload_word(&self) -> u64 {
        self.get_u64(layout().off_tx_offload)
    }

    /// Size of the whole buffer (headroom + data + tailroom).
    pub fn buf_len(&self) -> usize {
        usize::from(self.get_u16(layout().off_buf_len))
    }

    #[inline(always)]
    fn data_off(&self) -> u16 {
        self.get_u16(layout().off_data_off)
    }

    #[inline(always)]
    fn data_len(&self) -> u16 {
        self.get_u16(layout().off_data_len)
    }

    /// Set data_len and pkt_len together (single segment: they are equal).
    #[inline(always)]
    fn set_len(&mut self, len: u16) {
        let l = layout();
        self.set_u16(l.off_data_len, len);
        self.set_u32(l.off_pkt_len, u32::from(len));
    }

    /// Make the data exactly `len` bytes after the current start; `false` (unchanged)
    /// when the buffer has no room.
    pub(crate) fn set_data_len(&mut self, len: usize) -> bool {
        let room = self.buf_len() - usize::from(self.data_off());
        match u16::try_from(len) {
            Ok(l) if len <= room => {
                self.set_len(l);
                true
            }
            _ => false,
        }
    }
}

#[allow(unsafe_code)]
impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (see from_raw) and nobody uses it after this.
        unsafe { sys::rn_free(self.ptr.as_ptr()) }
    }
}

/// One's complement 16-bit addition.
fn ones_add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

#[allow(unsafe_code)]
impl Frame for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer (DPDK
        // keeps data_off + data_len <= buf_len, and every writer here checks it), the
        // buffer lives as long as we own the mbuf, and &self keeps writers away.
        unsafe {
            core::slice::from_raw_parts(
                self.buf_addr().add(usize::from(self.data_off())),
                usize::from(self.data_len()),
            )
        }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in data(), and &mut self makes the access exclusive.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.buf_addr().add(usize::from(self.data_off())),
                usize::from(self.data_len()),
            )
        }
    }

    #[inline]
    fn headroom(&self) -> usize {
        usize::from(self.data_off())
    }

    #[inline]
    fn tailroom(&self) -> usize {
        self.buf_len() - usize::from(self.data_off()) - usize::from(self.data_len())
    }

    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufferError> {
        // rte_pktmbuf_prepend: lower data_off, grow the lengths.
        let off = usize::from(self.data_off());
        if n > off {
            return Err(BufferError::NoHeadroom);
        }
        let len = usize::from(self.data_len()) + n;
        let l = layout();
        self.set_u16(l.off_data_off, (off - n) as u16);
        // len <= buf_len <= u16::MAX: data_off + data_len never exceeded buf_len.
        self.set_len(len as u16);
        Ok(&mut self.data_mut()[..n])
    }

    fn append(&mut self, n: usize) -> Result<&mut [u8], BufferError> {
        if n > self.tailroom() {
            return Err(BufferError::NoTailroom);
        }
        let old = usize::from(self.data_len());
        self.set_len((old + n) as u16);
        Ok(&mut self.data_mut()[old..])
    }

    fn trim_front(&mut self, n: usize) {
        let len = usize::from(self.data_len());
        let n = n.min(len);
        let off = usize::from(self.data_off()) + n;
        self.set_u16(layout().off_data_off, off as u16);
        self.set_len((len - n) as u16);
    }

    fn truncate(&mut self, len: usize) {
        if len < usize::from(self.data_len()) {
            self.set_len(len as u16);
        }
    }

    fn rx_meta(&self) -> RxMeta {
        let l = layout();
        let flags = self.ol_flags();
        RxMeta {
            rss_hash: (flags & l.rx_rss_hash != 0).then(|| self.get_u32(l.off_rss)),
            ipv4_csum_ok: flags & l.rx_ip_cksum_mask == l.rx_ip_cksum_good,
            l4_csum_ok: flags & l.rx_l4_cksum_mask == l.rx_l4_cksum_good,
            l4_csum_partial: false,
            gso_size: 0,
        }
    }

    /// A copy in a new mbuf of the same pool (`rte_pktmbuf_copy`): how the runtime
    /// hands a broadcast frame (ARP) to every shard.
    #[allow(unsafe_code)]
    fn try_clone(&self) -> Option<Mbuf> {
        // SAFETY: self.ptr is a valid single-segment mbuf we own; rte_pktmbuf_copy only
        // reads it and returns a new mbuf (or NULL) that nobody else owns, which from_raw
        // then owns. Allocating from the pool is thread-safe (see `Send` above).
        unsafe {
            let p = sys::rn_copy(self.ptr.as_ptr());
            NonNull::new(p).map(|p| Mbuf::from_raw(p))
        }
    }

    fn set_tx_offload(&mut self, o: TxOffload) {
        let l = layout();
        let mut flags = self.ol_flags() | l.tx_ipv4;
        if o.ipv4_csum {
            flags |= l.tx_ip_cksum;
        }
        match o.l4_csum {
            Some(L4Proto::Tcp) => flags |= l.tx_tcp_cksum,
            Some(L4Proto::Udp) => flags |= l.tx_udp_cksum,
            None => {}
        }
        if o.tso_mss > 0 {
            flags |= l.tx_tcp_seg;
            // DPDK wants the pseudo-header sum *without* the length for TSO (each
            // segment's length differs; see rte_ipv4_phdr_cksum), the stack wrote it
            // with the length added as a 32-bit value: take that back out.
            let at = usize::from(o.l2_len) + usize::from(o.l3_len) + 16;
            let tcp_len = self.len().saturating_sub(usize::from(o.l2_len + o.l3_len)) as u32;
            let data = self.data_mut();
            if let Some(field) = data.get_mut(at..at + 2) {
                let mut sum = u16::from_be_bytes([field[0], field[1]]);
                sum = ones_add(sum, !((tcp_len >> 16) as u16));
                sum = ones_add(sum, !(tcp_len as u16));
                field.copy_from_slice(&sum.to_be_bytes());
            }
        }
        let word = (u64::from(o.l2_len) << l.l2_len_shift)
            | (u64::from(o.l3_len) << l.l3_len_shift)
            | (u64::from(o.l4_len) << l.l4_len_shift)
            | (u64::from(o.tso_mss) << l.tso_segsz_shift);
        self.set_u64(l.off_tx_offload, word);
        self.set_u64(l.off_ol_flags, flags);
    }
}

#[cfg(test)]
mod tests {
    use super::ones_add;

    #[test]
    fn ones_complement_subtraction_of_the_length() {
        // A sum with a length added, minus the same length, is the sum without it.
        let base = 0x1234u16;
        let len = 0x0001_05dcu32;
        let with = ones_add(ones_add(base, (len >> 16) as u16), len as u16);
        let back = ones_add(ones_add(with, !((len >> 16) as u16)), !(len as u16));
        assert_eq!(back, base);
    }
}
