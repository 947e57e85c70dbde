//! The virtio-net header that `IFF_VNET_HDR` puts in front of every frame read from or
//! written to a TAP file: how the kernel and the backend tell each other about partial
//! checksums and segmentation offload (GSO) without touching the frame itself.
//!
//! Layout (`struct virtio_net_hdr_v1`, also `virtio_net_hdr_mrg_rxbuf`; virtio 1.x
//! §5.1.6), in the byte order of the host, which is what the TUN driver uses for a
//! legacy header unless `TUNSETVNETBE`/`TUNSETVNETLE` say otherwise:
//!
//! ```text
//! 0      1          2        4         6           8            10           12
//! | flags | gso_type | hdr_len | gso_size | csum_start | csum_offset | num_buffers |
//! ```
//!
//! We ask for the 12-byte form with `TUNSETVNETHDRSZ`, the size vhost-net and QEMU use,
//! rather than the 10-byte default: `num_buffers` is ignored by TUN either way, and the
//! larger header keeps the same layout whatever the other end of a virtio path expects.

use rumpnet_stack::device::{L4Proto, RxMeta, TxOffload};

/// Bytes of virtio-net header in front of every frame (`TUNSETVNETHDRSZ`).
pub const VNET_HDR_LEN: usize = 12;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum field holds only the pseudo-header
/// sum; the rest is summed from `csum_start` and stored at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was already verified.
pub const F_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP/IPv4 segment to cut at `gso_size` payload bytes.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP`.
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: flag bit on `gso_type`, the segment carries CWR.
pub const GSO_ECN: u8 = 0x80;

/// Offset of the TCP checksum field in the TCP header (RFC 9293 §3.1).
const TCP_CSUM_OFFSET: u16 = 16;
/// Offset of the UDP checksum field in the UDP header (RFC 768).
const UDP_CSUM_OFFSET: u16 = 6;

mod field {
    use core::ops::Range;
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: Range<usize> = 2..4;
    pub const GSO_SIZE: Range<usize> = 4..6;
    pub const CSUM_START: Range<usize> = 6..8;
    pub const CSUM_OFFSET: Range<usize> = 8..10;
    pub const NUM_BUFFERS: Range<usize> = 10..12;
}

/// A parsed virtio-net header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

fn get16(b: &[u8; VNET_HDR_LEN], r: core::ops::Range<usize>) -> u16 {
    let mut v = [0u8; 2];
    v.copy_from_slice(&b[r]);
    u16::from_ne_bytes(v)
}

impl VnetHdr {
    /// Read the header at the front of a frame the kernel handed over; `None` if the
    /// read was shorter than the header.
    pub fn parse(data: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = data.get(..VNET_HDR_LEN)?.try_into().ok()?;
        Some(VnetHdr {
            flags: b[field::FLAGS],
            gso_type: b[field::GSO_TYPE],
            hdr_len: get16(b, field::HDR_LEN),
            gso_size: get16(b, field::GSO_SIZE),
            csum_start: get16(b, field::CSUM_START),
            csum_offset: get16(b, field::CSUM_OFFSET),
        })
    }

    /// The header's bytes, every field written (`num_buffers` zero).
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[field::FLAGS] = self.flags;
        b[field::GSO_TYPE] = self.gso_type;
        b[field::HDR_LEN].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[field::GSO_SIZE].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[field::CSUM_START].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[field::CSUM_OFFSET].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b[field::NUM_BUFFERS].copy_from_slice(&0u16.to_ne_bytes());
        b
    }

    /// The frame is a GSO super-frame (larger than one segment on the wire).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// What the stack needs to know about a received frame: a partial checksum
    /// (`NEEDS_CSUM`, sent by the local kernel, which never computed it because the frame
    /// never left the machine) is to be trusted like a verified one; `gso_size` tells a
    /// super-frame from an ordinary one.
    pub fn rx_meta(&self) -> RxMeta {
        RxMeta {
            rss_hash: None,
            ipv4_csum_ok: false,
            l4_csum_ok: self.flags & F_DATA_VALID != 0,
            l4_csum_partial: self.flags & F_NEEDS_CSUM != 0,
            gso_size: if self.is_gso() { self.gso_size } else { 0 },
        }
    }

    /// The header that asks the kernel to finish `offload` for a frame: `NEEDS_CSUM` with
    /// the checksum field's position for an L4 checksum, `GSO_TCPV4` with the MSS and
    /// the length of all headers for TSO. No request gives the all-zero header.
    pub fn for_tx(offload: &TxOffload) -> VnetHdr {
        let mut h = VnetHdr::default();
        let l4_start = offload.l2_len.saturating_add(offload.l3_len);
        if let Some(proto) = offload.l4_csum {
            h.flags = F_NEEDS_CSUM;
            h.csum_start = l4_start;
            h.csum_offset = match proto {
                L4Proto::Tcp => TCP_CSUM_OFFSET,
                L4Proto::Udp => UDP_CSUM_OFFSET,
            };
        }
        if offload.tso_mss > 0 {
            h.gso_type = GSO_TCPV4;
            h.gso_size = offload.tso_mss;
            h.hdr_len = l4_start.saturating_add(offload.l4_len);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_every_field_in_host_order() {
        let mut b = [0xa5u8; 14];
        b[0] = F_NEEDS_CSUM | F_DATA_VALID;
        b[1] = GSO_TCPV4 | GSO_ECN;
        b[2..4].copy_from_slice(&66u16.to_ne_bytes());
        b[4..6].copy_from_slice(&1448u16.to_ne_bytes());
        b[6..8].copy_from_slice(&34u16.to_ne_bytes());
        b[8..10].copy_from_slice(&16u16.to_ne_bytes());
        let h = VnetHdr::parse(&b).unwrap();
        assert_eq!(
            h,
            VnetHdr {
                flags: 3,
                gso_type: 0x81,
                hdr_len: 66,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        assert!(h.is_gso());
        let m = h.rx_meta();
        assert!(m.l4_csum_ok && m.l4_csum_partial);
        assert_eq!(m.gso_size, 1448);
        assert!(VnetHdr::parse(&b[..11]).is_none());
    }

    #[test]
    fn plain_frame_has_no_gso_size_even_if_the_field_is_set() {
        let mut h = VnetHdr {
            gso_size: 1448,
            ..VnetHdr::default()
        };
        assert_eq!(h.rx_meta(), RxMeta::default());
        h.gso_type = GSO_ECN;
        assert!(!h.is_gso(), "the ECN bit alone is no GSO type");
    }

    #[test]
    fn emit_round_trips_and_writes_every_byte() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1460,
            csum_start: 34,
            csum_offset: 16,
        };
        let b = h.emit();
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(&b[10..12], &[0, 0], "num_buffers is zero");
    }

    #[test]
    fn tx_header_for_checksum_and_tso() {
        let none = VnetHdr::for_tx(&TxOffload::default());
        assert_eq!(none.emit(), [0u8; VNET_HDR_LEN]);

        let udp = VnetHdr::for_tx(&TxOffload {
            l2_len: 14,
            l3_len: 20,
            l4_len: 8,
            l4_csum: Some(L4Proto::Udp),
            ..TxOffload::default()
        });
        assert_eq!((udp.flags, udp.gso_type), (F_NEEDS_CSUM, GSO_NONE));
        assert_eq!((udp.csum_start, udp.csum_offset), (34, 6));

        let tso = VnetHdr::for_tx(&TxOffload {
            l2_len: 18,
            l3_len: 20,
            l4_len: 32,
            l4_csum: Some(L4Proto::Tcp),
            tso_mss: 1448,
            ..TxOffload::default()
        });
        assert_eq!((tso.flags, tso.gso_type), (F_NEEDS_CSUM, GSO_TCPV4));
        assert_eq!((tso.csum_start, tso.csum_offset), (38, 16));
        assert_eq!((tso.gso_size, tso.hdr_len), (1448, 70));
    }
}
