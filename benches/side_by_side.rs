//! Side-by-side allocator comparison that holds up on a shared, noisy machine: every round runs
//! each workload once per allocator, interleaved, and the table reports the median per
//! allocator and the ratio of medians. `cargo bench -p arenagc-bench --bench side_by_side` (ROUNDS=n to change
//! the number of rounds, ONLY=text to run the workloads whose name contains it). Criterion's per-allocator runs are in `benches/alloc.rs`.

mod common;

use common::{Alloc, LiveSet, alloc_free_batch, allocators, lay};
use std::hint::black_box;
use std::time::Instant;

/// Nanoseconds per alloc+free pair.
fn hot_pair(a: Alloc, size: usize) -> f64 {
    let l = lay(size);
    let n = 2_000_000;
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: valid layout; freed right away.
        unsafe {
            let p = a.alloc(l);
            a.dealloc(black_box(p), l);
        }
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Nanoseconds per alloc+free pair, cycling through 12 sizes (16 to 512 bytes), as C
/// programs do: many size classes in use at once.
fn mixed_pair(a: Alloc) -> f64 {
    const SIZES: [usize; 12] = [16, 24, 32, 48, 64, 100, 128, 200, 256, 400, 512, 40];
    let n = 2_400_000;
    let t = Instant::now();
    for i in 0..n {
        let l = lay(SIZES[i % 12]);
        // SAFETY: valid layout; freed right away.
        unsafe {
            let p = a.alloc(l);
            a.dealloc(black_box(p), l);
        }
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Nanoseconds per batch of 1000 allocations of 64 bytes then 1000 frees.
fn batch(a: Alloc) -> f64 {
    let l = lay(64);
    let mut v = Vec::with_capacity(1000);
    let rounds = 2000;
    let t = Instant::now();
    for _ in 0..rounds {
        alloc_free_batch(a, l, &mut v, 1000);
    }
    t.elapsed().as_nanos() as f64 / rounds as f64
}

/// Nanoseconds per replacement (free one random block, allocate a new random size) among
/// 100k live blocks of 16..512 bytes.
fn random_replace(a: Alloc) -> f64 {
    let mut set = LiveSet::new(a, 100_000);
    let ops = 1_000_000;
    let t = Instant::now();
    set.replace(ops);
    t.elapsed().as_nanos() as f64 / ops as f64
}

/// Nanoseconds per block: one producer allocates 48-byte blocks, one consumer frees them.
fn producer_consumer(a: Alloc) -> f64 {
    let n = 400_000;
    common::producer_consumer(a, n).as_nanos() as f64 / n as f64
}

/// Nanoseconds per growth of one block from 16 to 512 bytes in 16-byte steps.
fn realloc_growth(a: Alloc) -> f64 {
    let rounds = 100_000;
    let t = Instant::now();
    for _ in 0..rounds {
        common::grow_by_realloc(a);
    }
    t.elapsed().as_nanos() as f64 / rounds as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    type Work = Box<dyn Fn(Alloc) -> f64>;
    let mut work: Vec<(String, Work)> = Vec::new();
    for size in [16usize, 32, 64, 128, 256, 512] {
        work.push((
            format!("hot pair {size} B (ns/pair)"),
            Box::new(move |a| hot_pair(a, size)),
        ));
    }
    work.push((
        "hot pair, 12 sizes cycling (ns/pair)".into(),
        Box::new(mixed_pair),
    ));
    work.push(("batch 1000 x 64 B (ns/batch)".into(), Box::new(batch)));
    work.push((
        "random replace, 100k live (ns/op)".into(),
        Box::new(random_replace),
    ));
    work.push((
        "producer/consumer 48 B (ns/block)".into(),
        Box::new(producer_consumer),
    ));
    work.push((
        "realloc 16 -> 512 B (ns/growth)".into(),
        Box::new(realloc_growth),
    ));

    // ONLY=<text> keeps the workloads whose name contains it (for profiling one of them).
    if let Ok(only) = std::env::var("ONLY") {
        work.retain(|(name, _)| name.contains(&only));
    }
    let allocs = allocators();
    println!("{rounds} interleaved rounds; medians; ratios are of medians from this run\n");
    println!(
        "| workload | {} | arenagc / mimalloc | arenagc / glibc |",
        allocs.map(|a| a.0).join(" | ")
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, f) in &work {
        // One untimed round first: page faults, lazy initialization and CPU frequency ramp-up
        // land there, not on whichever allocator happens to be measured first.
        for (_, a) in allocs.iter() {
            black_box(f(*a));
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); allocs.len()];
        for _ in 0..rounds {
            for (i, (_, a)) in allocs.iter().enumerate() {
                samples[i].push(f(*a));
            }
        }
        let m: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
        println!(
            "| {name} | {} | {:.2}x | {:.2}x |",
            m.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" | "),
            m[0] / m[2],
            m[0] / m[1]
        );
    }
}
