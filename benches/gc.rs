//! Cycle-collector benchmarks, side by side: arenagc vs `Rc`, gcmodule, rust-cc, bacon_rajan_cc
//! and dumpster (CPython 3.11 runs the same workloads in `benches/gc_cpython.py`).
//!
//! Workloads (N = 1,000,000 unless `ARENAGC_BENCH_N` says otherwise):
//! - `create_cycles`: create N two-object cycles and drop the handles (automatic collection
//!   off; the garbage is collected outside the timing).
//! - `collect_garbage`: collect those 2N garbage objects.
//! - `full_collect_live`: a full collection over 2N live tracked objects (N live pairs). For
//!   rust-cc, bacon_rajan_cc and dumpster, which scan only candidate roots (objects whose count
//!   was decremented), the collection finds none and does no work; `benches/README.md` says so.
//! - `new_clone_drop_drop`: `new`, `clone`, `drop`, `drop` of one small object.
//! - `young_pauses` (printed, not criterion): average and maximum young-collection pause while
//!   N new cycles are made with 2N live objects in the old generation.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};

#[path = "gc_common.rs"]
mod gc_common;
use gc_common::{libs, n, ours, setup_no_auto_collection};

fn bench_cycles(c: &mut Criterion) {
    setup_no_auto_collection();
    let n = n();
    let mut g = c.benchmark_group("create_cycles");
    for lib in libs() {
        g.bench_function(lib.name, |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let s = Instant::now();
                    (lib.make_garbage)(n);
                    t += s.elapsed();
                    (lib.collect)();
                }
                t
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("collect_garbage");
    for lib in libs().into_iter().filter(|l| l.name != "Rc") {
        g.bench_function(lib.name, |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    (lib.make_garbage)(n);
                    let s = Instant::now();
                    (lib.collect)();
                    t += s.elapsed();
                }
                t
            })
        });
    }
    g.finish();
}

fn bench_full_collect(c: &mut Criterion) {
    setup_no_auto_collection();
    let n = n();
    let mut g = c.benchmark_group("full_collect_live");
    for lib in libs().into_iter().filter(|l| l.name != "Rc") {
        let free = (lib.make_live)(n);
        (lib.collect)();
        g.bench_function(lib.name, |b| b.iter(|| (lib.collect)()));
        free();
    }
    g.finish();
}

fn bench_new_clone_drop(c: &mut Criterion) {
    use gc_common::leaves::*;

    arenagc::gc::enable();
    let mut g = c.benchmark_group("new_clone_drop_drop");
    g.bench_function("arenagc", |b| {
        b.iter(|| {
            let a = arenagc::Gc::new(Leaf(black_box(1)));
            let c = a.clone();
            drop(black_box(c));
            drop(a);
        })
    });
    g.bench_function("Rc", |b| {
        b.iter(|| {
            let a = std::rc::Rc::new(black_box(1u64));
            let c = a.clone();
            drop(black_box(c));
            drop(a);
        })
    });
    g.bench_function("gcmodule", |b| {
        b.iter(|| {
            let a = gcmodule::Cc::new(GLeaf(black_box(1)));
            let c = a.clone();
            drop(black_box(c));
            drop(a);
        })
    });
    g.bench_function("rust-cc", |b| {
        b.iter(|| {
            let a = rust_cc::Cc::new(RLeaf(black_box(1)));
            let c = a.clone();
            drop(black_box(c));
            drop(a);
        })
    });
    g.bench_function("bacon_rajan_cc", |b| {
        b.iter(|| {
            let a = bacon_rajan_cc::Cc::new(BLeaf(black_box(1)));
            let c = a.clone();
            drop(black_box(c));
            drop(a);
        });
        bacon_rajan_cc::collect_cycles();
    });
    g.bench_function("dumpster", |b| {
        b.iter(|| {
            let a = dumpster::unsync::Gc::new(DLeaf(black_box(1)));
            let c = a.clone();
            drop(black_box(c));
            drop(a);
        })
    });
    g.finish();
    black_box((GLeaf(0).0, RLeaf(0).0, DLeaf(0).0, BLeaf(0).0, Leaf(0).0));
}

/// Young-collection pauses (generations 0 and 1) while N cycles are made with 2N live objects
/// in generation 2. Printed as `young_pauses: avg .. max .. count ..`.
fn young_pauses() {
    use arenagc::gc::{self, Phase};
    let n = n();
    gc::enable();
    let live: Vec<_> = (0..n).map(|_| ours::pair()).collect();
    gc::collect(2).unwrap();
    let full_before = gc::get_stats()[2].collections;
    let pauses = std::rc::Rc::new(RefCell::new(Vec::new()));
    let p = pauses.clone();
    let id = gc::add_callback(move |phase, info| {
        if phase == Phase::Stop && info.generation < 2 {
            p.borrow_mut().push(info.duration);
        }
    });
    for _ in 0..n {
        black_box(ours::pair());
    }
    gc::remove_callback(id);
    let mut v = pauses.borrow().clone();
    v.sort();
    let total: Duration = v.iter().sum();
    let pct = |p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e6);
    let avg = if v.is_empty() {
        Duration::ZERO
    } else {
        total / v.len() as u32
    };
    println!(
        "young_pauses/arenagc: avg {:.2} us, p50 {:.2} us, p99 {:.2} us, max {:.2} us, count {}, full collections {}",
        avg.as_secs_f64() * 1e6,
        us(pct(0.5)),
        us(pct(0.99)),
        us(v.last()),
        v.len(),
        gc::get_stats()[2].collections - full_before
    );
    drop(live);
    gc::collect(2).unwrap();
}

/// A full collection over 2N live objects allocated after the heap was churned (the memory of
/// earlier garbage reused): shows how the allocator's reuse order affects the collector's
/// locality. Printed as `full_collect_after_churn: median ..`.
fn full_collect_after_churn() {
    use arenagc::gc;
    let n = n();
    gc::disable();
    let live: Vec<_> = (0..n).map(|_| ours::pair()).collect();
    for _ in 0..n {
        black_box(ours::pair());
    }
    drop(live);
    gc::collect(2).unwrap();
    let live: Vec<_> = (0..n).map(|_| ours::pair()).collect();
    gc::collect(2).unwrap();
    let mut t: Vec<Duration> = (0..9)
        .map(|_| {
            let s = Instant::now();
            gc::collect(2).unwrap();
            s.elapsed()
        })
        .collect();
    t.sort();
    println!(
        "full_collect_after_churn/arenagc: median {:.2} ms ({:.1} ns/live object)",
        t[4].as_secs_f64() * 1e3,
        t[4].as_secs_f64() * 1e9 / (2 * n) as f64
    );
    drop(live);
    gc::collect(2).unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = bench_full_collect, bench_new_clone_drop, bench_cycles
}

fn main() {
    // Some of the compared crates recurse while collecting: give them a big stack.
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(|| {
            // Criterion groups first (full collections on a fresh heap), then the printed
            // measurements, which churn the heap.
            benches();
            young_pauses();
            full_collect_after_churn();
            Criterion::default().configure_from_args().final_summary();
        })
        .unwrap()
        .join()
        .unwrap();
}
