//! The ring protocol against the simulated kernel (`sim`): the same `NetmapPort` code as
//! in production, on a region laid out as netmap lays it out.

use std::path::Path;

use rumpnet_stack::device::{Device, Frame};

use crate::name::RingMode;
use crate::port::{Kernel, NetmapPort};
use crate::sim::{build, Progress, SimConfig, SimKernel};
use crate::{NetmapError, NetmapFrame};

const CFG: SimConfig = SimConfig {
    tx_rings: 1,
    rx_rings: 1,
    slots: 8,
    buf_size: 256,
    extra_bufs: 32,
};

fn port(cfg: SimConfig, seed: u64) -> (NetmapPort<SimKernel>, Vec<u32>) {
    port_mode(cfg, seed, RingMode::AllNic).unwrap()
}

fn port_mode(
    cfg: SimConfig,
    seed: u64,
    mode: RingMode,
) -> Result<(NetmapPort<SimKernel>, Vec<u32>), NetmapError> {
    let sim = build(cfg, seed);
    let all = sim.all_bufs.clone();
    let p = NetmapPort::new(sim.region, sim.nifp_offset, mode, "sim:0", sim.kernel, 1)?;
    Ok((p, all))
}

/// A frame whose bytes say which one it is.
fn payload(n: u32) -> Vec<u8> {
    let len = 60 + (n as usize * 7) % 150;
    let mut v = vec![(n % 251) as u8; len];
    v[..4].copy_from_slice(&n.to_be_bytes());
    v
}

fn id(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[..4].try_into().unwrap())
}

/// Every buffer index is in exactly one place: a ring slot, the spare pool, a held frame.
/// Call after `wait` (no lend outstanding).
fn assert_conserved(p: &mut NetmapPort<SimKernel>, held: &[NetmapFrame], all: &[u32]) {
    let mut v = p.kernel_mut().ring_bufs();
    v.extend(p.spare_indices());
    v.extend(held.iter().map(|f| f.buf_idx()));
    v.sort_unstable();
    assert_eq!(v, all, "buffer indices leaked or doubled");
    assert!(
        p.kernel_mut().violations.is_empty(),
        "{:?}",
        p.kernel_mut().violations
    );
}

#[test]
fn rx_frames_are_the_slot_buffers_and_head_moves_once_per_burst() {
    let (mut p, all) = port(CFG, 1);
    let mut out = Vec::new();
    // Empty ring: one rxsync, nothing.
    assert_eq!(p.rx_burst(0, &mut out, 32), 0);
    assert_eq!(p.kernel_mut().rxsyncs, 1);
    for n in 0..5 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    assert_eq!(p.rx_burst(0, &mut out, 32), 5);
    assert_eq!(p.kernel_mut().rxsyncs, 2, "one sync per burst");
    for (i, f) in out.iter().enumerate() {
        assert_eq!(f.data(), payload(i as u32).as_slice());
        // Zero copy: the frame's bytes are the slot's buffer.
        assert_eq!(f.data().as_ptr(), p.kernel_mut().rx_slot_buf(0, i as u32));
        assert_eq!(f.headroom(), 0);
    }
    out.clear(); // dropped within the poll: no swap needed
    assert_eq!(p.rx_burst(0, &mut out, 32), 0);
    assert_eq!(p.stats().rx_swapped, 0);
    assert_eq!(p.kernel_mut().buf_changes, 0);
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn rx_wraps_around_the_ring_in_order() {
    let (mut p, all) = port(CFG, 2);
    let mut got = Vec::new();
    let mut out = Vec::new();
    for n in 0..100 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    for _ in 0..200 {
        out.clear();
        p.rx_burst(0, &mut out, 3);
        got.extend(out.iter().map(|f| id(f.data())));
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    out.clear();
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn tx_swaps_buffers_into_slots_without_copying() {
    let (mut p, all) = port(CFG, 3);
    let mut batch = Vec::new();
    let mut idx = Vec::new();
    for n in 0..5 {
        let pl = payload(n);
        let mut f = p.alloc_tx(pl.len()).unwrap();
        f.data_mut().copy_from_slice(&pl);
        idx.push(f.buf_idx());
        batch.push(f);
    }
    assert_eq!(p.tx_burst(0, &mut batch), 5);
    assert!(batch.is_empty());
    let k = p.kernel_mut();
    assert_eq!(k.txsyncs, 1, "one sync per burst");
    assert_eq!(k.sent_idx[0], idx, "the frames' own buffers went out");
    assert_eq!(k.buf_changes, 5);
    let sent: Vec<u32> = k.sent[0].iter().map(|d| id(d)).collect();
    assert_eq!(sent, (0..5).collect::<Vec<_>>());
    assert_eq!(k.sent[0][3], payload(3));
    assert!(p.alloc_tx(257).is_none());
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn full_tx_ring_leaves_the_rest_in_the_callers_batch() {
    let (mut p, all) = port(CFG, 4);
    p.kernel_mut().progress = Progress::None; // a stalled NIC
    let mut batch: Vec<NetmapFrame> = (0..12)
        .map(|n| {
            let pl = payload(n);
            let mut f = p.alloc_tx(pl.len()).unwrap();
            f.data_mut().copy_from_slice(&pl);
            f
        })
        .collect();
    // 8 slots, one always empty: 7 fit.
    assert_eq!(p.tx_burst(0, &mut batch), 7);
    assert_eq!(batch.len(), 5);
    assert_eq!(id(batch[0].data()), 7, "the rest stay in order");
    assert_eq!(p.tx_burst(0, &mut batch), 0);
    assert_eq!(batch.len(), 5);
    p.kernel_mut().progress = Progress::All;
    assert_eq!(p.tx_burst(0, &mut batch), 5);
    p.tx_burst(0, &mut Vec::new());
    let mut flush = vec![p.alloc_tx(60).unwrap()];
    p.tx_burst(0, &mut flush); // one more sync transmits the rest
    let sent: Vec<u32> = p.kernel_mut().sent[0]
        .iter()
        .take(12)
        .map(|d| id(d))
        .collect();
    assert_eq!(sent, (0..12).collect::<Vec<_>>());
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn frames_held_past_the_poll_get_their_slots_swapped() {
    let (mut p, all) = port(CFG, 5);
    let mut held = Vec::new();
    for n in 0..6 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    assert_eq!(p.rx_burst(0, &mut held, 6), 6);
    // Drop two, keep four past the next poll.
    held.remove(1);
    held.remove(3);
    for n in 6..12 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    let mut out = Vec::new();
    assert_eq!(p.rx_burst(0, &mut out, 32), 6);
    assert_eq!(p.stats().rx_swapped, 4);
    assert_eq!(
        p.kernel_mut().buf_changes,
        4,
        "NS_BUF_CHANGED on the swapped slots"
    );
    // The kernel reused the slots; the held frames still read their own bytes.
    let ids: Vec<u32> = held.iter().map(|f| id(f.data())).collect();
    assert_eq!(ids, vec![0, 2, 3, 5]);
    for (f, n) in held.iter().zip([0, 2, 3, 5]) {
        assert_eq!(f.data(), payload(n).as_slice());
    }
    let ids: Vec<u32> = out.iter().map(|f| id(f.data())).collect();
    assert_eq!(ids, (6..12).collect::<Vec<_>>());
    out.clear();
    p.wait(None).unwrap();
    assert_conserved(&mut p, &held, &all);
    held.clear();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn no_spare_buffer_is_a_counted_drop_never_a_stall_or_leak() {
    let cfg = SimConfig {
        extra_bufs: 3,
        slots: 16,
        ..CFG
    };
    let (mut p, all) = port(cfg, 6);
    for n in 0..10 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    let mut held = Vec::new();
    // Three spares back three lends; the other seven slots are dropped and counted.
    assert_eq!(p.rx_burst(0, &mut held, 32), 3);
    assert_eq!(p.stats().rx_no_spare, 7);
    // The ring moves on regardless.
    for n in 10..13 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    let mut out = Vec::new();
    assert_eq!(
        p.rx_burst(0, &mut out, 32),
        0,
        "all spares back the held frames"
    );
    assert_eq!(p.stats().rx_no_spare, 10);
    assert!(p.alloc_tx(60).is_none());
    p.wait(None).unwrap();
    assert_conserved(&mut p, &held, &all);
    held.clear();
    for n in 13..15 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    assert_eq!(p.rx_burst(0, &mut out, 32), 2);
    assert_eq!(id(out[0].data()), 13);
    out.clear();
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn frames_dropped_on_another_thread_return_their_buffers() {
    let (mut p, all) = port(CFG, 7);
    for n in 0..7 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    let mut held = Vec::new();
    assert_eq!(p.rx_burst(0, &mut held, 7), 7);
    let tx: Vec<NetmapFrame> = (0..4).map(|_| p.alloc_tx(100).unwrap()).collect();
    // Half before the port reclaims the slots, half after.
    let early: Vec<NetmapFrame> = held.drain(..3).collect();
    std::thread::spawn(move || drop((early, tx)))
        .join()
        .unwrap();
    p.wait(None).unwrap();
    assert_eq!(p.stats().rx_swapped, 4);
    std::thread::spawn(move || drop(held)).join().unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn a_received_frame_can_be_forwarded_without_a_copy() {
    let (mut p, all) = port(CFG, 8);
    for n in 0..4 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    let mut frames = Vec::new();
    assert_eq!(p.rx_burst(0, &mut frames, 4), 4);
    let idx: Vec<u32> = frames.iter().map(|f| f.buf_idx()).collect();
    // One of them trimmed: it is moved to the buffer's start (netmap has no offsets).
    frames[2].trim_front(4);
    assert_eq!(p.tx_burst(0, &mut frames), 4);
    assert_eq!(p.stats().tx_realigned, 1);
    let k = p.kernel_mut();
    assert_eq!(k.sent_idx[0], idx);
    assert_eq!(k.sent[0][0], payload(0));
    assert_eq!(k.sent[0][2], payload(2)[4..].to_vec());
    let mut out = Vec::new();
    p.rx_burst(0, &mut out, 4);
    assert_eq!(p.stats().rx_swapped, 4, "the RX slots got spares");
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}

#[test]
fn a_frame_from_another_port_is_copied() {
    let (mut a, all_a) = port(CFG, 9);
    let (mut b, _) = port(CFG, 10);
    let mut f = b.alloc_tx(70).unwrap();
    f.data_mut().copy_from_slice(&payload(70)[..70]);
    let mut batch = vec![f];
    assert_eq!(a.tx_burst(0, &mut batch), 1);
    assert_eq!(a.stats().tx_copied, 1);
    assert_eq!(a.kernel_mut().sent[0][0], payload(70)[..70].to_vec());
    a.wait(None).unwrap();
    assert_conserved(&mut a, &[], &all_a);
}

#[test]
fn every_ring_pair_is_a_queue_and_one_pair_can_be_bound() {
    let cfg = SimConfig {
        tx_rings: 3,
        rx_rings: 3,
        ..CFG
    };
    let (mut p, all) = port(cfg, 11);
    let caps = p.capabilities();
    assert_eq!((caps.rx_queues, caps.tx_queues), (3, 3));
    assert_eq!(caps.mtu, 256 - 14);
    assert_eq!(caps.headroom, 0);
    p.kernel_mut().inbound[2].push_back(payload(42));
    let mut out = Vec::new();
    assert_eq!(p.rx_burst(0, &mut out, 8), 0);
    assert_eq!(p.rx_burst(2, &mut out, 8), 1);
    assert_eq!(id(out[0].data()), 42);
    assert_eq!(p.rx_burst(3, &mut out, 8), 0, "no such queue");
    let mut batch = vec![p.alloc_tx(64).unwrap()];
    assert_eq!(p.tx_burst(1, &mut batch), 1);
    assert_eq!(p.kernel_mut().sent[1].len(), 1);
    assert!(p.kernel_mut().sent[0].is_empty());
    out.clear();
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);

    let (one, _) = port_mode(cfg, 12, RingMode::OneNic(1)).unwrap();
    assert_eq!(one.capabilities().rx_queues, 1);
    let e = port_mode(cfg, 13, RingMode::OneNic(3)).unwrap_err();
    assert!(e.to_string().contains("ring 3"), "{e}");
    // The simulated NIC's host rings are not bound (offset 0 in the table).
    let e = port_mode(cfg, 14, RingMode::Host).unwrap_err();
    assert!(e.to_string().contains("0 tx and 0 rx"), "{e}");
}

#[test]
fn randomized_traffic_moves_every_frame_exactly_once_in_order() {
    for seed in 1..=40u64 {
        let cfg = SimConfig {
            tx_rings: 1,
            rx_rings: 1,
            slots: 4 + (seed as u32 % 13),
            buf_size: 256,
            extra_bufs: 24 + (seed as u32 % 24),
        };
        let (mut p, all) = port(cfg, seed);
        p.kernel_mut().progress = Progress::Random;
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rand = move |bound: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % bound.max(1)
        };
        const N: u32 = 400;
        let mut next_in = 0;
        let mut received = Vec::new();
        let mut held: Vec<NetmapFrame> = Vec::new();
        let mut to_send: Vec<NetmapFrame> = Vec::new();
        let mut next_out = 0;
        for _round in 0..20_000 {
            if received.len() as u32 == N && next_out == N && to_send.is_empty() {
                break;
            }
            // The wire delivers some frames.
            for _ in 0..rand(5) {
                if next_in < N {
                    p.kernel_mut().inbound[0].push_back(payload(next_in));
                    next_in += 1;
                }
            }
            let mut out = Vec::new();
            p.rx_burst(0, &mut out, 1 + rand(8) as usize);
            for f in out {
                received.push(id(f.data()));
                assert_eq!(f.data(), payload(id(f.data())).as_slice());
                if rand(3) == 0 && held.len() < 4 {
                    held.push(f); // kept past the poll
                }
            }
            // Release some held frames.
            while !held.is_empty() && rand(2) == 0 {
                let i = rand(held.len() as u64) as usize;
                let f = held.swap_remove(i);
                assert_eq!(
                    f.data(),
                    payload(id(f.data())).as_slice(),
                    "held bytes intact"
                );
            }
            // Build and send some frames.
            for _ in 0..rand(4) {
                if next_out < N && to_send.len() < 4 {
                    match p.alloc_tx(payload(next_out).len()) {
                        Some(mut f) => {
                            f.data_mut().copy_from_slice(&payload(next_out));
                            to_send.push(f);
                            next_out += 1;
                        }
                        None => break,
                    }
                }
            }
            if !to_send.is_empty() {
                p.tx_burst(0, &mut to_send);
            } else if rand(4) == 0 {
                Kernel::txsync(p.kernel_mut()).unwrap();
            }
        }
        // Let the kernel finish.
        p.kernel_mut().progress = Progress::All;
        Kernel::txsync(p.kernel_mut()).unwrap();
        let mut out = Vec::new();
        while p.rx_burst(0, &mut out, 64) > 0 {
            received.extend(out.iter().map(|f| id(f.data())));
            out.clear();
        }
        assert_eq!(
            p.stats().rx_no_spare,
            0,
            "seed {seed}: spares sized to never drop"
        );
        assert_eq!(
            received,
            (0..N).collect::<Vec<_>>(),
            "seed {seed}: rx exactly once, in order"
        );
        let sent: Vec<u32> = p.kernel_mut().sent[0].iter().map(|d| id(d)).collect();
        assert_eq!(
            sent,
            (0..N).collect::<Vec<_>>(),
            "seed {seed}: tx exactly once, in order"
        );
        p.wait(None).unwrap();
        assert_conserved(&mut p, &held, &all);
        held.clear();
        assert_conserved(&mut p, &[], &all);
    }
}

#[test]
fn dropping_the_port_relinks_the_spares_for_the_kernel() {
    let sim = build(CFG, 15);
    let block = std::sync::Arc::clone(&sim.block);
    let mut p = NetmapPort::new(sim.region, 0, RingMode::AllNic, "sim:0", sim.kernel, 1).unwrap();
    for n in 0..3 {
        p.kernel_mut().inbound[0].push_back(payload(n));
    }
    let mut held = Vec::new();
    p.rx_burst(0, &mut held, 3);
    let tx = p.alloc_tx(60).unwrap();
    drop(p); // frames outlive the port: the region stays mapped
    assert_eq!(held[1].data(), payload(1).as_slice());
    drop((held, tx));
    // The list the kernel frees on close holds exactly the extra buffers' count.
    let head = crate::sim::bufs_list(&block, 0);
    assert_eq!(head.len(), CFG.extra_bufs as usize);
    let mut sorted = head.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), head.len(), "no index twice");
}

#[test]
fn a_layout_outside_the_region_is_an_error_not_a_crash() {
    let sim = build(CFG, 16);
    crate::sim::corrupt_first_ring_offset(&sim.block, 1 << 40);
    let e = NetmapPort::new(sim.region, 0, RingMode::AllNic, "sim:0", sim.kernel, 1).unwrap_err();
    assert!(matches!(e, NetmapError::Layout { .. }), "{e}");
    let sim = build(CFG, 17);
    let e =
        NetmapPort::new(sim.region, 0, RingMode::AllNic, "sim:0", sim.kernel, 1000).unwrap_err();
    assert!(e.to_string().contains("extra buffers"), "{e}");
}

#[test]
fn opening_without_dev_netmap_says_the_module_is_not_loaded() {
    let opts = crate::OpenOptions::default();
    let e = crate::open_at(Path::new("/nonexistent/netmap"), "netmap:eth0", &opts).unwrap_err();
    assert!(matches!(e, NetmapError::ModuleNotLoaded));
    assert!(e.to_string().starts_with("netmap kernel module not loaded"));
    if !Path::new(crate::DEV_NETMAP).exists() {
        let e = crate::open("netmap:eth0", &opts).unwrap_err();
        assert!(matches!(e, NetmapError::ModuleNotLoaded), "{e}");
    }
    let e = crate::open_at(Path::new("/nonexistent"), "eth0", &opts).unwrap_err();
    assert!(
        matches!(e, NetmapError::BadName(_)),
        "names are checked first: {e}"
    );
    let e = crate::open_at(Path::new("/nonexistent"), "vale0:amuchlongerport", &opts).unwrap_err();
    assert!(e.to_string().contains("15 characters"), "{e}");
}

#[test]
fn clones_and_other_threads_allocators_use_the_spare_pool() {
    // The port keeps up to a refill batch (32) of spares for itself; the rest are shared.
    let cfg = SimConfig {
        extra_bufs: 40,
        ..CFG
    };
    let (mut p, all) = port(cfg, 18);
    p.kernel_mut().inbound[0].push_back(payload(5));
    let mut out = Vec::new();
    assert_eq!(p.rx_burst(0, &mut out, 1), 1);
    let copy = out[0].try_clone().unwrap();
    assert_eq!(copy.data(), out[0].data());
    assert_ne!(copy.buf_idx(), out[0].buf_idx());
    let mut alloc = p.tx_allocator().unwrap();
    let built = std::thread::spawn(move || {
        let mut f = alloc.alloc(80).unwrap();
        f.data_mut().copy_from_slice(&payload(9)[..80]);
        assert!(alloc.alloc(300).is_none());
        f
    })
    .join()
    .unwrap();
    let mut batch = vec![built, copy];
    assert_eq!(p.tx_burst(0, &mut batch), 2);
    assert_eq!(p.kernel_mut().sent[0][0], payload(9)[..80].to_vec());
    assert_eq!(p.kernel_mut().sent[0][1], payload(5));
    out.clear();
    p.wait(None).unwrap();
    assert_conserved(&mut p, &[], &all);
}
