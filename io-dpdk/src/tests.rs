//! Unit tests against the real libdpdk. `rte_eal_init` runs once per process, so every
//! test re-runs this test binary for itself alone ([`in_own_process`]) and starts the
//! EAL there, without hugepages or PCI, with DPDK's software vdevs (net_ring: a port
//! whose transmit ring is its receive ring; net_null).

use std::process::Command;
use std::time::Duration;

use rumpnet_stack::device::{Device, Frame, L4Proto, TxOffload};

use super::*;

const CHILD_ENV: &str = "RUMPNET_DPDK_UNIT_TEST";

/// Run `body` in a fresh process (this test binary filtered to `name`), so it may start
/// the EAL; the test fails with the child's output if the body panics there.
fn in_own_process(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("spawn the test binary");
    let text = format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} failed in its own process: {text}"
    );
    // The filter matched the test (a typo in `name` would pass vacuously otherwise).
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{name} did not run in the child: {text}"
    );
}

fn eal(vdevs: &[&str]) -> Eal {
    eal_with(vdevs, &[])
}

fn eal_with(vdevs: &[&str], extra: &[&str]) -> Eal {
    let mut args: Vec<String> = [
        "rumpnet-unit",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-m",
        "128",
        "-l",
        "0",
        "--log-level",
        "warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--file-prefix".into());
    args.push(format!("rnunit{}", std::process::id()));
    for v in vdevs {
        args.push("--vdev".into());
        args.push(v.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Eal::init(args).expect("EAL starts without hugepages")
}

#[test]
fn version_comes_from_linked_libdpdk() {
    let v = dpdk_version();
    assert!(v.starts_with("DPDK "), "unexpected rte_version(): {v:?}");
    // The string the library reports agrees with what pkg-config found at build time.
    let pkg = env!("RUMPNET_DPDK_PKG_VERSION");
    assert!(
        v.contains(pkg),
        "rte_version() {v:?} does not mention pkg-config version {pkg}"
    );
    assert_eq!(v, dpdk_version(), "second call returns the cached string");
}

#[test]
fn eal_starts_once_and_says_why_not_twice() {
    in_own_process("tests::eal_starts_once_and_says_why_not_twice", || {
        let e = eal(&["net_null0"]);
        assert!(Eal::started());
        assert_eq!(e.port_count(), 1);
        let again = Eal::init(["x", "--no-huge"]).unwrap_err();
        assert!(matches!(again, DpdkError::EalAlreadyInitialized), "{again}");
        assert!(again.to_string().contains("once per process"), "{again}");
    });
}

#[test]
fn eal_errors_carry_dpdk_text() {
    in_own_process("tests::eal_errors_carry_dpdk_text", || {
        let e = Eal::init(["rumpnet-unit", "--no-huge", "--no-such-eal-option"]).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, DpdkError::EalInit { .. }), "{s}");
        // DPDK's text for EINVAL, and the arguments, for the user.
        assert!(s.contains("Invalid argument"), "{s}");
        assert!(s.contains("--no-such-eal-option"), "{s}");
        assert!(matches!(
            Eal::init(["x"]).unwrap_err(),
            DpdkError::EalAlreadyInitialized
        ));
        assert!(matches!(
            Eal::init(["x\0y"]).unwrap_err(),
            DpdkError::EalArgument { .. }
        ));
    });
}

#[test]
fn mbuf_is_a_frame_and_returns_to_its_pool() {
    in_own_process("tests::mbuf_is_a_frame_and_returns_to_its_pool", || {
        let e = eal(&[]);
        let pool = Mempool::create(&e, "unit", 511, 0, 2048 + 128, None).unwrap();
        assert_eq!(pool.in_use(), 0);
        let mut f = pool.alloc(100).expect("an mbuf");
        assert_eq!(pool.in_use(), 1);
        assert_eq!(f.nb_segs(), 1);
        assert_eq!(f.len(), 100);
        assert_eq!(f.headroom(), mbuf_headroom());
        assert_eq!(f.tailroom(), 2048 - 100);
        f.data_mut().fill(0x11);
        f.prepend(14).unwrap().fill(0xaa);
        assert_eq!(f.len(), 114);
        assert_eq!(f.headroom(), mbuf_headroom() - 14);
        assert_eq!(f.data()[0], 0xaa);
        assert_eq!(f.data()[14], 0x11);
        assert_eq!(
            f.prepend(mbuf_headroom()).err(),
            Some(rumpnet_stack::device::BufferError::NoHeadroom)
        );
        f.trim_front(14);
        assert_eq!(f.data()[0], 0x11);
        f.truncate(10);
        assert_eq!(f.len(), 10);
        f.truncate(50); // longer: no-op
        assert_eq!(f.len(), 10);
        f.append(5).unwrap().fill(0x22);
        assert_eq!(&f.data()[9..], &[0x11, 0x22, 0x22, 0x22, 0x22, 0x22]);
        assert!(f.append(4096).is_err());
        f.trim_front(1000); // clamped
        assert_eq!(f.len(), 0);
        // Nothing set by a NIC: no hash, no verified checksums.
        assert_eq!(f.rx_meta(), Default::default());
        // Transmit offload request: DPDK's bit layout (l2_len bits 0..7, l3_len 7..16,
        // l4_len 16..24, tso_segsz 24..40) and flags.
        let mut g = pool.alloc(14 + 20 + 20).unwrap();
        g.set_tx_offload(TxOffload {
            l2_len: 14,
            l3_len: 20,
            l4_len: 20,
            ipv4_csum: true,
            l4_csum: Some(L4Proto::Tcp),
            tso_mss: 0,
        });
        let w = g.tx_offload_word();
        assert_eq!(w & 0x7f, 14);
        assert_eq!((w >> 7) & 0x1ff, 20);
        assert_eq!((w >> 16) & 0xff, 20);
        assert_eq!((w >> 24) & 0xffff, 0);
        // RTE_MBUF_F_TX_IPV4 (55), _IP_CKSUM (54), _TCP_CKSUM (1 << 52).
        assert_eq!(g.ol_flags() >> 52, 0b1101);
        assert!(pool.alloc(4096).is_none(), "too long for one mbuf");
        assert_eq!(pool.in_use(), 2);
        drop(f);
        drop(g);
        assert_eq!(pool.in_use(), 0, "Drop gives the mbufs back");
        // Moving an mbuf to another (non-EAL) thread and freeing it there works.
        let h = pool.alloc(60).unwrap();
        std::thread::spawn(move || drop(h)).join().unwrap();
        assert_eq!(pool.in_use(), 0);
        assert!(
            matches!(
                Mempool::create(&e, "unit", 63, 0, 2048, None).unwrap_err(),
                DpdkError::Mempool { .. }
            ),
            "a second pool of the same name is refused with DPDK's text"
        );
        drop(pool);
        e.cleanup().expect("last handle: cleanup runs");
    });
}

#[test]
fn ring_port_moves_mbufs_zero_copy_and_hands_back_what_it_cannot_take() {
    in_own_process(
        "tests::ring_port_moves_mbufs_zero_copy_and_hands_back_what_it_cannot_take",
        || {
            let e = eal(&["net_ring0"]);
            let pool = Mempool::create(&e, "ring", 4095, 0, 2048 + 128, None).unwrap();
            let port = PortBuilder::new(PortRef::Name("net_ring0".into()))
                .rings(256, 256)
                .start(&e, std::slice::from_ref(&pool))
                .unwrap();
            assert_eq!(port.driver(), "net_ring");
            assert!(port.wait_link_up(Duration::from_secs(2)).unwrap().up);
            let mut dev = port.queue_pair(0).unwrap();
            assert!(matches!(
                port.queue_pair(0).unwrap_err(),
                DpdkError::Queue { .. }
            ));
            let caps = dev.capabilities();
            assert_eq!(caps.headroom, mbuf_headroom());
            assert_eq!(caps.mtu, 1500);
            // net_ring offers no checksum offloads: the stack must compute them.
            assert!(!caps.tx_checksum.tcp && !caps.rx_checksum.ipv4);

            let mut tx: Vec<Mbuf> = (0..40u8)
                .map(|i| {
                    let mut f = dev.alloc_tx(60 + usize::from(i)).unwrap();
                    f.data_mut().fill(i);
                    f
                })
                .collect();
            let addrs: Vec<usize> = tx.iter().map(|f| f.data().as_ptr() as usize).collect();
            assert_eq!(dev.tx_burst(0, &mut tx), 40);
            assert!(tx.is_empty());
            let mut rx = Vec::new();
            let mut got = 0;
            while got < 40 {
                let n = dev.rx_burst(0, &mut rx, 32);
                assert!(n > 0, "frames come back through the ring");
                got += n;
            }
            for (i, f) in rx.iter().enumerate() {
                assert_eq!(f.len(), 60 + i);
                assert!(f.data().iter().all(|&b| b == i as u8));
                // The very same buffer: nothing was copied.
                assert_eq!(f.data().as_ptr() as usize, addrs[i]);
            }
            drop(rx);

            // Fill the ring: what it cannot take stays with the caller, nothing leaks.
            let base = pool.in_use();
            let mut tx: Vec<Mbuf> = (0..1500).map(|_| dev.alloc_tx(64).unwrap()).collect();
            let mut taken = 0;
            for _ in 0..20 {
                taken += dev.tx_burst(0, &mut tx);
            }
            assert!(
                taken < 1500 && !tx.is_empty(),
                "the ring is smaller than 1500"
            );
            assert_eq!(taken + tx.len(), 1500);
            drop(tx);
            let mut rx = Vec::new();
            while dev.rx_burst(0, &mut rx, 64) > 0 {}
            assert_eq!(rx.len(), taken);
            drop(rx);
            let s = port.stats().unwrap();
            assert!(s.tx_retries >= 1, "{s}");
            assert!(s.rx_packets >= 40 + taken as u64, "{s}");
            // Only the transmit cache (at most one refill) is still out; dropping the
            // queue pair gives that back too.
            assert!(
                pool.in_use() <= base.max(MAX_BURST as u32),
                "{}",
                pool.in_use()
            );
            drop(dev);
            assert_eq!(pool.in_use(), 0, "every mbuf is back");
        },
    );
}

#[test]
fn port_errors_name_the_port_and_the_limit() {
    in_own_process("tests::port_errors_name_the_port_and_the_limit", || {
        let e = eal(&["net_null0"]);
        let pool = Mempool::create(&e, "null", 1023, 0, 2048 + 128, None).unwrap();
        let err = PortBuilder::new(PortRef::Name("net_nope".into()))
            .start(&e, std::slice::from_ref(&pool))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("net_nope") && err.contains("0 (net_null0)"),
            "{err}"
        );
        let err = PortBuilder::new(PortRef::Id(7))
            .start(&e, std::slice::from_ref(&pool))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no DPDK port 7"), "{err}");
        let err = PortBuilder::new(PortRef::Id(0))
            .queues(4096, 1)
            .start(&e, std::slice::from_ref(&pool))
            .unwrap_err()
            .to_string();
        assert!(err.contains("receive queues"), "{err}");
        let small = Mempool::create(&e, "small", 63, 0, 1024, None).unwrap();
        let err = PortBuilder::new(PortRef::Id(0))
            .start(&e, &[small])
            .unwrap_err()
            .to_string();
        assert!(err.contains("too small for MTU 1500"), "{err}");
        let port = PortBuilder::new(PortRef::Id(0))
            .start(&e, std::slice::from_ref(&pool))
            .unwrap();
        assert_eq!(port.name(), "net_null0");
        let link = port.wait_link_up(Duration::from_secs(2)).unwrap();
        assert!(link.to_string().starts_with("up"), "{link}");
        // net_null drops everything sent and counts it.
        let mut dev = port.queue_pair(0).unwrap();
        let mut tx: Vec<Mbuf> = (0..10).map(|_| dev.alloc_tx(64).unwrap()).collect();
        assert_eq!(dev.tx_burst(0, &mut tx), 10);
        let s = port.stats().unwrap();
        assert_eq!(s.tx_packets, 10, "{s}");
        drop(dev);
        drop(port);
        assert_eq!(pool.in_use(), 0, "closing the port returned its mbufs");
    });
}

#[test]
fn tx_allocator_builds_frames_on_other_threads_for_the_poller_to_send() {
    in_own_process(
        "tests::tx_allocator_builds_frames_on_other_threads_for_the_poller_to_send",
        || {
            let e = eal(&["net_ring0"]);
            // A per-lcore cache, as serve's pools have: the allocating threads are not
            // EAL lcores, so they must bypass it (and the main lcore's cache must not
            // be corrupted by them: the poller below allocates through it meanwhile).
            let pool = Mempool::create(&e, "txa", 4095, 256, 2048 + 128, None).unwrap();
            assert_eq!(pool.ops_name(), "ring_mp_mc");
            assert!(pool.is_thread_safe());
            let port = PortBuilder::new(PortRef::Name("net_ring0".into()))
                .rings(1024, 1024)
                .start(&e, std::slice::from_ref(&pool))
                .unwrap();
            let mut dev = port.queue_pair(0).unwrap();
            // Two shards' allocators, each on its own thread, building frames at once.
            let per_thread = 600usize;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Mbuf>(64);
            let builders: Vec<_> = (0..2u8)
                .map(|t| {
                    let mut a = dev.tx_allocator().expect("a thread-safe pool");
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        assert!(a.alloc(4096).is_none(), "over one mbuf");
                        for i in 0..per_thread {
                            let len = 60 + i % 200;
                            let mut f = a.alloc(len).expect("the pool has room");
                            assert_eq!(f.len(), len);
                            assert_eq!(f.headroom(), mbuf_headroom());
                            f.data_mut().fill(t);
                            f.data_mut()[..2].copy_from_slice(&(i as u16).to_le_bytes());
                            tx.send(f).unwrap();
                        }
                        // `a` is dropped here, on its thread: its unused batch goes back.
                    })
                })
                .collect();
            drop(tx);
            // The poller sends what the builders made and reads it back off the ring,
            // allocating frames of its own in between (through lcore 0's cache).
            let mut next = [0usize; 2];
            let mut batch = Vec::new();
            let mut back = Vec::new();
            let mut own = 0usize;
            for f in rx.iter() {
                batch.push(f);
                let mut mine = dev.alloc_tx(64).unwrap();
                mine.data_mut().fill(0xee);
                own += 1;
                batch.push(mine);
                while !batch.is_empty() {
                    dev.tx_burst(0, &mut batch);
                    dev.rx_burst(0, &mut back, 64);
                }
                while dev.rx_burst(0, &mut back, 64) > 0 {}
                for f in back.drain(..) {
                    let d = f.data();
                    if d.iter().all(|&b| b == 0xee) {
                        own -= 1;
                        continue;
                    }
                    let t = usize::from(d[2]);
                    let i = usize::from(u16::from_le_bytes([d[0], d[1]]));
                    assert!(t < 2, "a frame from thread {t}?");
                    assert_eq!(i, next[t], "thread {t}'s frames in order, none lost");
                    assert_eq!(d.len(), 60 + i % 200);
                    assert!(d[2..].iter().all(|&b| b == t as u8));
                    next[t] += 1;
                }
            }
            for b in builders {
                b.join().unwrap();
            }
            assert_eq!(next, [per_thread; 2]);
            assert_eq!(own, 0, "every frame of the poller's came back too");
            drop(dev);
            assert_eq!(pool.in_use(), 0, "every mbuf is back, caches included");

            // An allocator drains a pool to empty, says so, and gives all back.
            let small = Mempool::create(&e, "txs", 127, 0, 2048 + 128, None).unwrap();
            let mut a = small.tx_allocator(1500).unwrap();
            assert_eq!(a.max_len(), 1500);
            let mut held = Vec::new();
            while let Some(f) = a.alloc(100) {
                held.push(f);
                assert!(held.len() <= 127);
            }
            assert_eq!(held.len(), 127, "every mbuf of the pool, then None");
            assert_eq!(a.cached(), 0);
            drop(held);
            let f = a.alloc(100).unwrap();
            assert_eq!(a.cached(), ALLOC_BATCH - 1);
            assert_eq!(small.in_use() as usize, ALLOC_BATCH);
            drop(f);
            drop(a);
            assert_eq!(small.in_use(), 0);
        },
    );
}

#[test]
fn tx_allocator_refuses_a_single_consumer_pool() {
    in_own_process("tests::tx_allocator_refuses_a_single_consumer_pool", || {
        // The EAL makes every mbuf pool single-producer/single-consumer.
        let e = eal_with(&["net_ring0"], &["--mbuf-pool-ops-name", "ring_sp_sc"]);
        let pool = Mempool::create(&e, "spsc", 1023, 0, 2048 + 128, None).unwrap();
        assert_eq!(pool.ops_name(), "ring_sp_sc");
        assert!(!pool.is_thread_safe());
        let err = pool.tx_allocator(1500).unwrap_err();
        assert!(matches!(err, DpdkError::PoolNotThreadSafe { .. }), "{err}");
        assert!(err.to_string().contains("ring_sp_sc"), "{err}");
        let port = PortBuilder::new(PortRef::Name("net_ring0".into()))
            .start(&e, std::slice::from_ref(&pool))
            .unwrap();
        let dev = port.queue_pair(0).unwrap();
        assert!(
            dev.tx_allocator().is_none(),
            "the runtime must not get an allocator it cannot use from a shard"
        );
    });
}
