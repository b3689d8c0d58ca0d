//! Allocator benchmarks: ArenaAlloc, the system allocator (glibc), mimalloc and jemalloc, each
//! called directly through `GlobalAlloc` in the same run. `benches/report.py` turns criterion's
//! medians into the ratio table of `benches/README.md`.

mod common;

use common::{LiveSet, alloc_free_batch, allocators, lay};
use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use std::time::Duration;

fn hot_pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_pair");
    for size in [16usize, 32, 64, 128, 256, 512] {
        for (name, a) in allocators() {
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
                let l = lay(size);
                b.iter(|| {
                    // SAFETY: valid layout; freed right away.
                    unsafe {
                        let p = a.alloc(l);
                        black_box(p);
                        a.dealloc(p, l);
                    }
                })
            });
        }
    }
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_1000x64");
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            let l = lay(64);
            let mut v = Vec::with_capacity(1000);
            b.iter(|| alloc_free_batch(a, l, &mut v, 1000))
        });
    }
    g.finish();
}

fn random_replacement(c: &mut Criterion) {
    let mut g = c.benchmark_group("random_replace_100k");
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            let mut set = LiveSet::new(a, 100_000);
            b.iter(|| set.replace(1000));
        });
    }
    g.finish();
}

/// One producer allocating 48-byte blocks, one consumer freeing them, through a bounded SPSC
/// ring of atomics (no allocation in the queue itself). The same code as `side_by_side`'s, so a
/// waiting side yields after 64 spins (this bench's own copy used to spin without yielding).
fn producer_consumer(c: &mut Criterion) {
    let mut g = c.benchmark_group("producer_consumer_100k");
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| common::producer_consumer(a, 100_000))
                    .sum()
            })
        });
    }
    g.finish();
}

fn realloc_growth(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc_16_to_512");
    for (name, a) in allocators() {
        g.bench_function(name, |b| b.iter(|| common::grow_by_realloc(a)));
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_pair, batch, random_replacement, producer_consumer, realloc_growth
}
criterion_main!(benches);
