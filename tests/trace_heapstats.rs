//! `trace::heap_stats`: heap-usage assertions in tests, as dhat-rs offers them ("this function
//! frees everything it allocated", "the peak stays under N bytes"), in exact and sampled mode.
//! One test: the tracer is process-wide.

// No test harness (`harness = false`, as `trace_memory.rs`): the counters are exact and
// process-wide, and libtest's main thread allocating while the test ran added 900 bytes.

#[cfg(not(feature = "trace"))]
fn main() {
    println!("trace_heapstats: feature trace off, nothing to test");
}

#[cfg(feature = "trace")]
fn main() {
    heap_stats_exact_and_sampled();
    println!("1 passed, 0 failed (trace_heapstats)");
}

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

#[cfg(feature = "trace")]
use arenagc::trace::{self, HeapStats};
#[cfg(feature = "trace")]
use std::hint::black_box;

/// Allocates `n` boxes of 100 bytes and frees them all.
#[cfg(feature = "trace")]
fn frees_everything(n: usize) {
    let v: Vec<Box<[u8; 100]>> = (0..n).map(|_| Box::new([1u8; 100])).collect();
    black_box(&v);
}

#[cfg(feature = "trace")]
fn heap_stats_exact_and_sampled() {
    assert_eq!(
        trace::heap_stats(),
        HeapStats::default(),
        "not tracing: all zero"
    );

    trace::start(1).unwrap();
    // The first traced allocations of a thread leave a few lazily made blocks live (900 bytes in
    // 4 blocks here); warm up so the figures below are the code's own.
    frees_everything(10);
    let s0 = trace::heap_stats();
    let v: Vec<u8> = black_box(vec![0u8; 1 << 20]);
    let s1 = trace::heap_stats();
    assert_eq!(s1.curr_bytes - s0.curr_bytes, 1 << 20, "{s0:?} {s1:?}");
    assert_eq!(s1.curr_blocks - s0.curr_blocks, 1);
    assert_eq!(s1.total_bytes - s0.total_bytes, 1 << 20);
    assert_eq!(s1.total_blocks - s0.total_blocks, 1);
    assert!(s1.max_bytes >= s1.curr_bytes && s1.max_blocks >= s1.curr_blocks);
    drop(v);
    let s2 = trace::heap_stats();
    assert_eq!(
        (s2.curr_bytes, s2.curr_blocks),
        (s0.curr_bytes, s0.curr_blocks)
    );
    assert_eq!(s2.max_bytes, s1.max_bytes, "the peak stays");
    trace::reset_peak();
    let s3 = trace::heap_stats();
    assert_eq!(
        (s3.max_bytes, s3.max_blocks),
        (s3.curr_bytes, s3.curr_blocks)
    );

    // A function that frees everything it allocated, and its peak.
    frees_everything(1000);
    let s4 = trace::heap_stats();
    assert_eq!(s4.curr_bytes, s3.curr_bytes, "{s3:?} {s4:?}");
    assert_eq!(s4.curr_blocks, s3.curr_blocks);
    assert!(
        s4.total_blocks - s3.total_blocks >= 1001,
        "the boxes and the Vec"
    );
    assert!(s4.total_bytes - s3.total_bytes >= 100_000);
    assert!(s4.max_blocks >= s3.curr_blocks + 1000);
    assert!(s4.max_bytes >= s3.curr_bytes + 100_000 && s4.max_bytes < s3.curr_bytes + (1 << 20));

    trace::clear_traces();
    let s5 = trace::heap_stats();
    assert_eq!((s5.total_blocks, s5.curr_blocks, s5.max_bytes), (0, 0, 0));
    trace::stop();
    assert_eq!(trace::heap_stats(), HeapStats::default());

    // Sampled: estimates, and a function that frees everything returns exactly to where it
    // started (a block is removed with the weight it was added with).
    trace::start_sampled(4096, 1).unwrap();
    trace::reseed_sampler(7);
    let t0 = trace::heap_stats();
    frees_everything(20_000);
    let t1 = trace::heap_stats();
    assert_eq!(
        (t1.curr_bytes, t1.curr_blocks),
        (t0.curr_bytes, t0.curr_blocks)
    );
    // 2M bytes in 20k boxes (and the Vec): sampled every 4 KiB on average, about 500 samples,
    // so a relative standard deviation near 4.5%; 25% is over 5 of them.
    let est = (t1.total_bytes - t0.total_bytes) as f64;
    let truth = 20_000.0 * 100.0 + 20_000.0 * 8.0;
    assert!(
        (est / truth - 1.0).abs() < 0.25,
        "estimated {est}, truth {truth}"
    );
    let blocks = (t1.total_blocks - t0.total_blocks) as f64;
    assert!(
        (blocks / 20_001.0 - 1.0).abs() < 0.25,
        "estimated {blocks} blocks"
    );
    trace::stop();
}
