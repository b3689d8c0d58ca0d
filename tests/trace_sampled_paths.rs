//! Sampled mode on the pool fast paths (`alloc/sampler.rs`): every way a sampled block can
//! leave (a free on its own thread or another, by size or by address, a realloc in place,
//! moved or in glibc, a large block) forgets its trace, no trace is ever left behind, and the
//! estimates stay right across sessions. A small mean samples most blocks, so a stale trace
//! or a missed one shows at once.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace::{self, Snapshot};
use std::hint::black_box;

/// Traces (count, bytes estimate) of blocks allocated in this file.
fn here(snap: &Snapshot) -> (usize, usize) {
    here_count(snap)
}

/// No trace of this file is left: else print them (untraced) and fail.
fn none_left(what: &str) {
    let snap = trace::take_snapshot();
    let left = here_count(&snap);
    if left != (0, 0) {
        trace::untraced(|| show(&snap));
        panic!("{what}: traces left behind: {left:?}");
    }
}

fn show(snap: &Snapshot) {
    {
        for t in snap.traces() {
            if t.traceback
                .frames()
                .iter()
                .any(|f| f.filename().ends_with("trace_sampled_paths.rs"))
            {
                eprintln!(
                    "trace {} B:\n  {}",
                    t.size,
                    t.traceback.format(true).join("\n  ")
                );
            }
        }
    }
}

fn here_count(snap: &Snapshot) -> (usize, usize) {
    snap.traces()
        .iter()
        .filter(|t| {
            t.traceback
                .frames()
                .iter()
                .any(|f| f.filename().ends_with("trace_sampled_paths.rs"))
        })
        .fold((0, 0), |(n, b), t| (n + 1, b + t.size))
}

fn sizes(i: usize) -> usize {
    // Small, medium and large, and one over-aligned below.
    [8, 24, 100, 500, 513, 1000, 4096, 4097, 5000, 70_000][i % 10]
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "a release build strips the line tables and inlines this test into the harness: \
              no frame names this file (CI runs it in the dev profile)"
)]
fn sampled_blocks_never_leave_a_trace_behind() {
    // One test: sessions are process-wide.
    for round in 0..3 {
        trace::start_sampled(256, 4).unwrap();
        trace::reseed_sampler(round);

        // Allocate: vectors (by size), C-style (by address), an over-aligned layout.
        let mut v: Vec<Vec<u8>> = (0..400).map(|i| vec![7u8; sizes(i)]).collect();
        let c: Vec<*mut u8> = (0..400)
            .map(|i| arenagc::alloc::c::malloc(sizes(i)))
            .collect();
        let layout = std::alloc::Layout::from_size_align(200, 64).unwrap();
        // SAFETY: a non-zero layout.
        let aligned: Vec<*mut u8> = (0..50)
            .map(|_| unsafe { std::alloc::alloc(layout) })
            .collect();
        let live = here(&trace::take_snapshot());
        assert!(
            live.0 > 400,
            "round {round}: only {} traces of 850 blocks",
            live.0
        );

        // Realloc: grow within the class, across classes, into and within glibc; shrink.
        for (i, x) in v.iter_mut().enumerate() {
            match i % 4 {
                0 => x.reserve_exact(1),
                1 => x.reserve_exact(3000),
                2 => x.shrink_to(1),
                _ => x.truncate(0),
            }
            black_box(&x);
        }
        let c: Vec<*mut u8> = c
            .into_iter()
            .enumerate()
            // SAFETY: each p is a live malloc block, replaced by the realloc's result.
            .map(|(i, p)| unsafe { arenagc::alloc::c::realloc(p, sizes(i + 3)) })
            .collect();

        // Free: half of the vectors on another thread, the rest here; C blocks by address.
        let other: Vec<Vec<u8>> = v.split_off(200);
        std::thread::spawn(move || drop(black_box(other)))
            .join()
            .unwrap();
        drop(v);
        for p in c {
            // SAFETY: p is live and freed once.
            unsafe { arenagc::alloc::c::free(p) };
        }
        for p in aligned {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { std::alloc::dealloc(p, layout) };
        }
        none_left(&format!("round {round}"));
        trace::stop();
    }
    threads_sample_and_blocks_move_between_them();
}

fn threads_sample_and_blocks_move_between_them() {
    // A thread's first session allocations count against a fresh countdown: a thread started
    // inside the session samples from its first block.
    trace::start_sampled(1024, 2).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                trace::reseed_sampler(100 + t);
                (0..2000)
                    .map(|i| vec![1u8; 16 + (i * 37 + t as usize) % 900])
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let blocks: Vec<Vec<Vec<u8>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let truth: usize = blocks.iter().flatten().map(Vec::len).sum();
    let (n, est) = here(&trace::take_snapshot());
    assert!(n > 0);
    // 8000 blocks of ~470 bytes at a 1 KiB mean: ~2900 samples, relative error ~2%.
    let err = (est as f64 - truth as f64) / truth as f64;
    // (The statistics are dropped before the last check: they were allocated here too.)
    let file_total: usize = trace::take_snapshot()
        .statistics("filename")
        .iter()
        .filter(|s| {
            s.traceback
                .frames()
                .first()
                .is_some_and(|f| f.filename().ends_with("trace_sampled_paths.rs"))
        })
        .map(|s| s.size)
        .sum();
    let err_w = (file_total as f64 - truth as f64) / truth as f64;
    // Untraced: printing allocates (the harness's capture buffer), and that block lives on.
    trace::untraced(|| {
        println!(
            "{n} sampled of 8000, raw bytes {est}, estimate {file_total} of {truth} ({err_w:+.3})"
        )
    });
    assert!(err < 0.0, "raw sampled bytes are a fraction of the truth");
    assert!(err_w.abs() < 0.10, "estimate {file_total} of {truth}");
    drop(blocks); // freed on this thread, allocated on four others
    none_left("threads");
    trace::stop();
}
