//! ns per frame through io-dpdk's data path: allocate a burst (`alloc_tx`), write a
//! 64-byte frame in place, `tx_burst`, `rx_burst` it back, and free it in a batch
//! (`recycle`), on DPDK's net_ring loopback port (transmit ring = receive ring), so the
//! figure is the backend's own cost (shim calls, mbuf field access, mempool), not a
//! device's. Run:
//!
//!     cargo run --release -p rumpnet-io-dpdk --features dpdk --example burst_cost
#[cfg(feature = "dpdk")]
fn main() {
    use rumpnet_io_dpdk::{Eal, Mbuf, Mempool, PortBuilder, PortRef};
    use rumpnet_stack::device::{Device, Frame};
    use std::time::Instant;

    let eal = Eal::init([
        "burst_cost",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-m",
        "256",
        "-l",
        "0",
        "--log-level",
        "warning",
        "--vdev",
        "net_ring0",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let pool = Mempool::create(&eal, "bench", 8191, 256, 2048 + 128, None).expect("pool");
    let port = PortBuilder::new(PortRef::Name("net_ring0".into()))
        .start(&eal, std::slice::from_ref(&pool))
        .expect("port");
    let mut dev = port.queue_pair(0).expect("queue");
    let burst = 32;
    let mut tx: Vec<Mbuf> = Vec::with_capacity(burst);
    let mut rx: Vec<Mbuf> = Vec::with_capacity(burst);
    for round in 0..2 {
        let iters = 200_000u64;
        let t = Instant::now();
        let mut moved = 0u64;
        for _ in 0..iters {
            for i in 0..burst {
                let mut f = dev.alloc_tx(64).expect("pool has room");
                f.data_mut()[0] = i as u8;
                tx.push(f);
            }
            dev.tx_burst(0, &mut tx);
            tx.clear();
            moved += dev.rx_burst(0, &mut rx, burst) as u64;
            dev.recycle(&mut rx);
        }
        let ns = t.elapsed().as_nanos() as f64 / moved as f64;
        if round == 1 {
            println!(
                "{} frames of 64 B in bursts of {burst} through net_ring: {ns:.1} ns/frame (alloc + write + tx_burst + rx_burst + free)",
                moved
            );
        }
    }
}

#[cfg(not(feature = "dpdk"))]
fn main() {
    eprintln!("build with --features dpdk");
}
