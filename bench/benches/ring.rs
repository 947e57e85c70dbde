//! What a frame costs to cross the runtime's rings, per frame, at burst sizes 1, 8, 32
//! and 64: the price of pipelined mode over run-to-completion.
//!
//! - `ring/same_thread`: push a burst onto a [`Ring`] and pop it again on one thread: the
//!   bare cost of the lock-free queue, no cache line changing cores.
//! - `ring/cross_thread`: a burst goes to a second thread and comes back on a second
//!   ring (the I/O thread to shard and back); the figure is per frame per hop.
//! - `steer`: software RSS on top: hash each frame's 4-tuple, push it to its shard's
//!   ring (4 shards), and pop the rings.
//!
//! `cargo bench -p rumpnet-bench --bench ring -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rumpnet_runtime::ring::{Parker, Ring};
use rumpnet_runtime::rss::Rss;
use rumpnet_runtime::steer::Steering;
use rumpnet_stack::device::{FramePool, HeapFrame};

const BURSTS: [usize; 4] = [1, 8, 32, 64];

/// A minimum-size TCP frame from 10.0.0.1:`sport` to 10.0.0.2:80.
fn tcp_frame(pool: &Arc<FramePool>, sport: u16) -> HeapFrame {
    let mut f = pool.alloc(60).expect("frame");
    let d = rumpnet_stack::device::Frame::data_mut(&mut f);
    d.fill(0);
    d[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut d[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    ip[20..22].copy_from_slice(&sport.to_be_bytes());
    ip[22..24].copy_from_slice(&80u16.to_be_bytes());
    f
}

fn same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/same_thread");
    let parker = Parker::new().expect("poller");
    let ring = Ring::new(1024, Arc::clone(parker.notifier()));
    let pool = FramePool::new(256, 256, 64);
    for &burst in &BURSTS {
        let mut frames: Vec<HeapFrame> = (0..burst).map(|i| tcp_frame(&pool, i as u16)).collect();
        group.throughput(Throughput::Elements(burst as u64));
        group.bench_with_input(BenchmarkId::from_parameter(burst), &burst, |b, &burst| {
            b.iter(|| {
                ring.push_front_of(&mut frames);
                ring.pop_burst(&mut frames, burst);
                black_box(frames.len())
            })
        });
        assert_eq!(frames.len(), burst);
        assert_eq!(ring.dropped_full(), 0);
    }
    group.finish();
}

fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/cross_thread");
    for &burst in &BURSTS {
        // Elements per iteration: each frame crosses twice (there and back).
        group.throughput(Throughput::Elements(2 * burst as u64));
        group.bench_with_input(BenchmarkId::from_parameter(burst), &burst, |b, &burst| {
            b.iter_custom(|iters| round_trips(burst, iters))
        });
    }
    group.finish();
}

/// Send `iters` bursts of `burst` frames to an echo thread and back; the time taken.
fn round_trips(burst: usize, iters: u64) -> Duration {
    let parker = Parker::new().expect("poller");
    let there = Ring::new(1024, Arc::clone(parker.notifier()));
    let back = Ring::new(1024, Arc::clone(parker.notifier()));
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (there, back, stop) = (Arc::clone(&there), Arc::clone(&back), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut batch = Vec::with_capacity(64);
            while !stop.load(Ordering::Relaxed) {
                if there.pop_burst(&mut batch, 64) > 0 {
                    while !batch.is_empty() {
                        back.push_front_of(&mut batch);
                    }
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let pool = FramePool::new(256, 256, 64);
    let mut frames: Vec<HeapFrame> = (0..burst).map(|i| tcp_frame(&pool, i as u16)).collect();
    let start = Instant::now();
    for _ in 0..iters {
        there.push_front_of(&mut frames);
        while frames.len() < burst {
            let want = burst - frames.len();
            back.pop_burst(&mut frames, want);
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    echo.join().expect("echo thread");
    elapsed
}

fn steer(c: &mut Criterion) {
    let mut group = c.benchmark_group("steer");
    let shards = 4;
    let parkers: Vec<Parker> = (0..shards)
        .map(|_| Parker::new().expect("poller"))
        .collect();
    let inboxes: Vec<Arc<Ring>> = parkers
        .iter()
        .map(|p| Ring::new(1024, Arc::clone(p.notifier())))
        .collect();
    let steering = Steering::new(Rss::symmetric(shards), inboxes);
    let pool = FramePool::new(256, 256, 64);
    let mut woken = vec![false; shards];
    for &burst in &BURSTS {
        let mut frames: Vec<HeapFrame> = (0..burst)
            .map(|i| tcp_frame(&pool, 49152 + i as u16))
            .collect();
        group.throughput(Throughput::Elements(burst as u64));
        group.bench_with_input(BenchmarkId::from_parameter(burst), &burst, |b, _| {
            b.iter(|| {
                let c = steering.dispatch(&mut frames, None, &mut woken);
                for s in 0..shards {
                    steering.inbox(s).pop_burst(&mut frames, 64);
                }
                black_box(c)
            })
        });
        assert_eq!(frames.len(), burst);
    }
    group.finish();
}

criterion_group!(benches, same_thread, cross_thread, steer);
criterion_main!(benches);
