//! Sampled mode: on a workload of known totals (200 000 live blocks of known mixed sizes from
//! two call sites, interleaved), each site's estimated bytes and blocks are within 4 standard
//! deviations of the truth, the deviations computed from the sizes and the mean (the variance
//! of jemalloc's estimator: sum of `s^2 (1 - p) / p` over the blocks). The sampling stream of
//! the test's thread is seeded, so the run is the same every time; 4 sigma would fail about once
//! in 15 000 seeds. Then four seeded threads allocate and the main thread frees: the estimate
//! holds and every sampled trace is removed by the frees on another thread. One test: the
//! tracer is process-wide.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace::{self, Snapshot, TraceError};
use std::hint::black_box;

const MEAN: usize = 16 * 1024;
const SIZES_A: [usize; 5] = [24, 72, 200, 520, 1500];
const SIZES_B: [usize; 4] = [512, 1024, 2048, 4096];
const N_A: usize = 150_000;
const N_B: usize = 50_000;

/// The true bytes and blocks of a site, and the standard deviations of their estimates.
fn truth(sizes: &[usize], n: usize) -> (f64, f64, f64, f64) {
    let (mut bytes, mut var_bytes, mut var_count) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let s = sizes[i % sizes.len()] as f64;
        let p = -(-s / MEAN as f64).exp_m1();
        bytes += s;
        var_bytes += s * s * (1.0 - p) / p;
        var_count += (1.0 - p) / p;
    }
    (bytes, n as f64, var_bytes.sqrt(), var_count.sqrt())
}

/// The (size, count) of the statistic of `line` of this file.
fn on_line(snap: &Snapshot, line: u32) -> (usize, usize) {
    snap.statistics("lineno")
        .iter()
        .find(|s| {
            let f = &s.traceback.frames()[0];
            f.filename() == file!() && f.lineno() == line
        })
        .map_or((0, 0), |s| (s.size, s.count))
}

fn check(what: &str, got: usize, truth: f64, sigma: f64) {
    let err = got as f64 - truth;
    println!(
        "{what}: estimate {got}, truth {truth}, error {:+.2}% ({:+.2} sigma, sigma {:.2}%)",
        100.0 * err / truth,
        err / sigma,
        100.0 * sigma / truth
    );
    assert!(
        err.abs() <= 4.0 * sigma,
        "{what}: estimate {got} is {:.1} sigma from {truth}",
        err / sigma
    );
}

#[test]
fn sampled_estimates_are_within_tolerance() {
    assert_eq!(
        trace::start_sampled(0, 1),
        Err(TraceError::BadSampleMean(0))
    );
    assert_eq!(
        trace::start_sampled(MEAN, 0),
        Err(TraceError::BadFrameCount(0))
    );
    assert!(!trace::is_tracing());
    assert_eq!(trace::DEFAULT_SAMPLE_MEAN, 512 * 1024);

    let mut a: Vec<Vec<u8>> = Vec::with_capacity(N_A);
    let mut b: Vec<Vec<u8>> = Vec::with_capacity(N_B);
    trace::start_sampled(MEAN, 1).unwrap();
    assert_eq!(trace::sample_mean(), Some(MEAN));
    trace::reseed_sampler(0x5EED_2026);
    let (line_a, line_b) = (line!() + 4, line!() + 7);
    let (mut ia, mut ib) = (0, 0);
    while ia < N_A || ib < N_B {
        for _ in 0..3 {
            a.push(black_box(vec![1u8; SIZES_A[ia % SIZES_A.len()]]));
            ia += 1;
        }
        b.push(black_box(vec![2u8; SIZES_B[ib % SIZES_B.len()]]));
        ib += 1;
    }
    let snap = trace::take_snapshot();
    assert_eq!(snap.sample_mean(), Some(MEAN));
    // Only a sample is traced: about total / mean blocks (plus big ones), not 200 000.
    let total_true: usize = a.iter().chain(&b).map(Vec::len).sum();
    let sampled = snap.traces().len();
    println!("{sampled} blocks sampled of {}", N_A + N_B);
    assert!(sampled < 3 * total_true / MEAN + 100, "{sampled} traces");
    assert!(sampled > total_true / MEAN / 3, "{sampled} traces");

    let (bytes_a, count_a, sb_a, sc_a) = truth(&SIZES_A, N_A);
    let (bytes_b, count_b, sb_b, sc_b) = truth(&SIZES_B, N_B);
    let (size, count) = on_line(&snap, line_a);
    check("site A bytes", size, bytes_a, sb_a);
    check("site A blocks", count, count_a, sc_a);
    let (size, count) = on_line(&snap, line_b);
    check("site B bytes", size, bytes_b, sb_b);
    check("site B blocks", count, count_b, sc_b);
    // The process-wide estimate covers both sites (and the little else that was sampled).
    let (current, peak) = trace::get_traced_memory();
    let sigma = (sb_a * sb_a + sb_b * sb_b).sqrt();
    check("traced memory", current, bytes_a + bytes_b, sigma);
    assert!(peak >= current);
    // The snapshot's total is the same estimate (up to what was sampled since it was taken).
    assert!(
        snap.total().0.abs_diff(current) < current / 50,
        "{:?}",
        snap.total()
    );

    // Freeing every block removes every sampled trace of the two sites: the estimate of what
    // is left is what else was sampled, near 0.
    drop(a);
    drop(b);
    let snap = trace::take_snapshot();
    assert_eq!(on_line(&snap, line_a), (0, 0));
    assert_eq!(on_line(&snap, line_b), (0, 0));
    assert!(trace::get_traced_memory().0 < (bytes_a + bytes_b) as usize / 20);
    trace::stop();
    assert_eq!(trace::sample_mean(), None);
    assert_eq!(trace::get_traced_memory(), (0, 0));

    threads_allocate_and_another_frees();
}

/// Four threads allocate (each seeded), the main thread frees everything: the estimate is
/// right while the blocks live, and every sampled trace is found and removed by the frees on
/// another thread (the per-bucket marks never hide a trace).
fn threads_allocate_and_another_frees() {
    const PER_THREAD: usize = 20_000;
    let size = |t: usize, i: usize| 100 + (i * 7 + t * 13) % 500;
    trace::start_sampled(1024, 4).unwrap();
    let line = line!() + 6;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                trace::reseed_sampler(1000 + t as u64);
                (0..PER_THREAD)
                    .map(|i| black_box(vec![0u8; size(t, i)]))
                    .collect::<Vec<Vec<u8>>>()
            })
        })
        .collect();
    let blocks: Vec<Vec<Vec<u8>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (mut truth, mut var) = (0.0, 0.0);
    for t in 0..4 {
        for i in 0..PER_THREAD {
            let s = size(t, i) as f64;
            let p = -(-s / 1024.0f64).exp_m1();
            truth += s;
            var += s * s * (1.0 - p) / p;
        }
    }
    let snap = trace::take_snapshot();
    check(
        "4 threads' bytes",
        on_line(&snap, line).0,
        truth,
        var.sqrt(),
    );
    drop(blocks);
    let snap = trace::take_snapshot();
    assert_eq!(on_line(&snap, line), (0, 0));
    trace::stop();
}
