//! Allocator benchmarks: ArenaAlloc, the system allocator (glibc), mimalloc and jemalloc, each
//! called directly through `GlobalAlloc` in the same run. `benches/report.py` turns criterion's
//! medians into the ratio table of `benches/README.md`.

mod common;

use common::{Rng, allocators, lay};
use core::alloc::Layout;
use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
            b.iter(|| {
                // SAFETY: valid layout; each block freed once.
                unsafe {
                    for _ in 0..1000 {
                        v.push(a.alloc(l));
                    }
                    for p in v.drain(..) {
                        a.dealloc(black_box(p), l);
                    }
                }
            })
        });
    }
    g.finish();
}

fn random_replacement(c: &mut Criterion) {
    let mut g = c.benchmark_group("random_replace_100k");
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            let mut rng = Rng(0x1234_5678_9abc_def1);
            let n = 100_000;
            let mut live: Vec<(*mut u8, Layout)> = (0..n)
                .map(|_| {
                    let l = lay(16 + (rng.next() % 497) as usize);
                    // SAFETY: valid layout.
                    (unsafe { a.alloc(l) }, l)
                })
                .collect();
            b.iter(|| {
                for _ in 0..1000 {
                    let i = (rng.next() % n as u64) as usize;
                    let l = lay(16 + (rng.next() % 497) as usize);
                    // SAFETY: live[i] is live with its layout; replaced by a new live block.
                    unsafe {
                        a.dealloc(live[i].0, live[i].1);
                        live[i] = (a.alloc(l), l);
                    }
                }
            });
            for (p, l) in live {
                // SAFETY: each block is live with its layout.
                unsafe { a.dealloc(p, l) };
            }
        });
    }
    g.finish();
}

/// One producer allocating 48-byte blocks, one consumer freeing them, through a bounded SPSC
/// ring of atomics (no allocation in the queue itself).
fn producer_consumer(c: &mut Criterion) {
    const N: usize = 100_000;
    const RING: usize = 1024;
    let mut g = c.benchmark_group("producer_consumer_100k");
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ring: Arc<Vec<AtomicUsize>> =
                        Arc::new((0..RING).map(|_| AtomicUsize::new(0)).collect());
                    let r2 = ring.clone();
                    let l = lay(48);
                    let start = Instant::now();
                    let consumer = std::thread::spawn(move || {
                        for i in 0..N {
                            let slot = &r2[i % RING];
                            let p = loop {
                                let p = slot.swap(0, Ordering::Acquire);
                                if p != 0 {
                                    break p;
                                }
                                std::hint::spin_loop();
                            };
                            // SAFETY: p was allocated by the producer with layout l.
                            unsafe { a.dealloc(p as *mut u8, l) };
                        }
                    });
                    for i in 0..N {
                        // SAFETY: valid layout.
                        let p = unsafe { a.alloc(l) } as usize;
                        let slot = &ring[i % RING];
                        while slot.load(Ordering::Acquire) != 0 {
                            std::hint::spin_loop();
                        }
                        slot.store(p, Ordering::Release);
                    }
                    consumer.join().unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

fn realloc_growth(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc_16_to_512");
    for (name, a) in allocators() {
        g.bench_function(name, |b| {
            b.iter(|| {
                // SAFETY: each realloc passes the block's current layout.
                unsafe {
                    let mut p = a.alloc(lay(16));
                    let mut size = 16;
                    while size < 512 {
                        p = a.realloc(p, lay(size), size + 16);
                        size += 16;
                        *p = size as u8;
                    }
                    a.dealloc(black_box(p), lay(size));
                }
            })
        });
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
