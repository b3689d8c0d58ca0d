//! What tracing costs (ignored by default; run it optimized and read the ratios):
//! `cargo test --release --test trace_cost -- --ignored --nocapture`. Each round times the same
//! workloads untraced, sampled at 512 KiB (16 frames), traced exactly with 1 frame and with 16,
//! interleaved; the medians are printed as ns per operation and as ratios to untraced.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace;
use std::hint::black_box;
use std::time::Instant;

/// 64-byte malloc/free pairs: ns per pair.
fn hot_pair(n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        black_box(Box::new([0u8; 64]));
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// 1000 blocks of mixed sizes (16 to 2 KiB) allocated, then freed: ns per block.
fn batch(rounds: usize) -> f64 {
    let t = Instant::now();
    for r in 0..rounds {
        let v: Vec<Vec<u8>> = (0..1000)
            .map(|i| vec![0u8; 16 + (i * 37 + r) % 2032])
            .collect();
        black_box(&v);
    }
    t.elapsed().as_nanos() as f64 / (rounds * 1000) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "a measurement: run it optimized, with --ignored --nocapture"]
fn cost_of_tracing() {
    // (sampling mean, frames): mean 0 is exact mode, frames 0 untraced.
    let modes: [(usize, usize); 4] = [(0, 0), (trace::DEFAULT_SAMPLE_MEAN, 16), (0, 1), (0, 16)];
    let mut pair = [vec![], vec![], vec![], vec![]];
    let mut bat = [vec![], vec![], vec![], vec![]];
    for _ in 0..7 {
        for (m, &(mean, n)) in modes.iter().enumerate() {
            match (mean, n) {
                (_, 0) => {}
                (0, n) => trace::start(n).unwrap(),
                (mean, n) => trace::start_sampled(mean, n).unwrap(),
            }
            // Enough work that a session's start (the tracer's tables mapped, the first
            // unwinds) is amortised where it is cheap: 100x more in the untraced and sampled
            // modes than in the exact ones.
            let scale = if mean == 0 && n > 0 { 1 } else { 100 };
            pair[m].push(hot_pair(20_000 * scale));
            bat[m].push(batch(20 * scale));
            trace::stop();
        }
    }
    let pair: Vec<f64> = pair.into_iter().map(median).collect();
    let bat: Vec<f64> = bat.into_iter().map(median).collect();
    println!("workload        untraced   sampled 512 KiB     exact 1 frame     exact 16 frames");
    for (name, t) in [("hot pair (64 B)", &pair), ("batch (mixed)  ", &bat)] {
        println!(
            "{name}  {:7.1} ns {:8.1} ns ({:5.2}x) {:8.1} ns ({:5.1}x) {:8.1} ns ({:5.1}x)",
            t[0],
            t[1],
            t[1] / t[0],
            t[2],
            t[2] / t[0],
            t[3],
            t[3] / t[0]
        );
    }
    assert!(pair.iter().chain(&bat).all(|t| t.is_finite() && *t > 0.0));
}
