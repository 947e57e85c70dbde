//! The Internet checksum, fast path against the textbook loop, at the sizes that matter:
//! a minimum frame, the IPv4 minimum MTU, Ethernet's MTU, a jumbo frame and a full 64 KiB
//! segment (what TSO/GSO hands the stack). `Throughput::Bytes` makes criterion report
//! GiB/s.
//!
//! `cargo bench -p rumpnet-bench --bench checksum -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rumpnet_stack::wire::checksum::{sum, sum_reference};

const SIZES: [usize; 5] = [64, 576, 1500, 9000, 65536];

/// Deterministic bytes that make the sums carry (an all-zero buffer would not), so the
/// equality check below means something.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

fn checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for &len in &SIZES {
        let data = payload(len);
        // A benchmark of a wrong function is worthless: hold the two equal first.
        assert_eq!(
            sum(&data),
            sum_reference(&data),
            "sum != sum_reference at {len} bytes"
        );
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("sum", len), &data, |b, d| {
            b.iter(|| sum(black_box(d)))
        });
        group.bench_with_input(BenchmarkId::new("sum_reference", len), &data, |b, d| {
            b.iter(|| sum_reference(black_box(d)))
        });
    }
    group.finish();
}

criterion_group!(benches, checksum);
criterion_main!(benches);
