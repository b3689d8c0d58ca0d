//! Exact attribution: blocks of known sizes allocated on known lines of this file show up in
//! `statistics("lineno")` and `statistics("filename")` to the byte, on exactly those lines;
//! `compare_to` after freeing half; `get_object_traceback`; filters. One test: the tracer is
//! process-wide.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace::{self, Filter, Key, Snapshot, Statistic};
use std::hint::black_box;

/// The statistics of this file only: (line, size, count), in the order given.
fn mine(stats: &[Statistic]) -> Vec<(u32, usize, usize)> {
    stats
        .iter()
        .filter(|s| s.traceback.frames()[0].filename() == file!())
        .map(|s| (s.traceback.frames()[0].lineno(), s.size, s.count))
        .collect()
}

fn by_file(snap: &Snapshot) -> Option<(usize, usize)> {
    snap.statistics(Key::Filename)
        .iter()
        .find(|s| s.traceback.frames()[0].filename() == file!())
        .map(|s| (s.size, s.count))
}

#[test]
fn attribution_compare_filters_and_tracebacks() {
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(1000);
    trace::start(1).unwrap();
    assert!(trace::is_tracing());
    let l1 = line!() + 2;
    for _ in 0..100 {
        keep.push(black_box(vec![0u8; 300]));
    }
    let l2 = line!() + 2;
    for _ in 0..10 {
        keep.push(black_box(vec![1u8; 5000]));
    }
    let l3 = line!() + 1;
    let s = black_box(String::with_capacity(777));
    let snap = trace::take_snapshot();
    // Everything the checks below allocate (traced too: they run on this thread) is freed
    // before the second snapshot.
    {
        let stats = snap.statistics("lineno");
        assert_eq!(
            mine(&stats),
            vec![(l2, 50_000, 10), (l1, 30_000, 100), (l3, 777, 1)]
        );
        assert_eq!(by_file(&snap), Some((80_777, 111)));
        let by_tb = snap.statistics("traceback");
        assert_eq!(mine(&by_tb).len(), 3);

        // The line's statistic prints as tracemalloc's.
        let top = stats
            .iter()
            .find(|s| s.traceback.frames()[0].lineno() == l2)
            .unwrap();
        assert_eq!(
            top.to_string(),
            format!("{}:{l2}: size=48.8 KiB, count=10, average=5000 B", file!())
        );

        // get_object_traceback: the line of one block; none for a block from before `start`.
        let tb = trace::get_object_traceback(keep[3].as_ptr()).unwrap();
        assert_eq!(
            (tb.frames()[0].filename(), tb.frames()[0].lineno()),
            (file!(), l1)
        );
        assert_eq!(tb.frames().len(), 1);
        assert!(trace::get_object_traceback(keep.as_ptr()).is_none());
    }

    // Free half of the first line's blocks (every other one) and all of the third line's.
    let mut i = 0;
    keep.retain(|_| {
        i += 1;
        i > 100 || i % 2 == 0
    });
    drop(s);
    let snap2 = trace::take_snapshot();
    let diff = snap2.compare_to(&snap, "lineno");
    let mine_diff: Vec<_> = diff
        .iter()
        .filter(|d| d.traceback.frames()[0].filename() == file!())
        .map(|d| {
            (
                d.traceback.frames()[0].lineno(),
                d.size,
                d.size_diff,
                d.count,
                d.count_diff,
            )
        })
        .collect();
    assert_eq!(
        mine_diff,
        vec![
            (l1, 15_000, -15_000, 50, -50),
            (l3, 0, -777, 0, -1),
            (l2, 50_000, 0, 10, 0)
        ]
    );
    let d1 = diff
        .iter()
        .find(|d| d.traceback.frames()[0].lineno() == l1)
        .unwrap();
    assert_eq!(
        d1.to_string(),
        format!(
            "{}:{l1}: size=14.6 KiB (-14.6 KiB), count=50 (-50), average=300 B",
            file!()
        )
    );

    // Filters: include this file only; exclude one line; a line filter.
    let only = snap2.filter_traces(&[Filter::include("*trace_attribution.rs")]);
    assert_eq!(only.traces().len(), 60);
    assert_eq!(only.traces().iter().map(|t| t.size).sum::<usize>(), 65_000);
    let without_l2 = only.filter_traces(&[Filter::exclude(file!()).lineno(l2)]);
    assert_eq!(
        mine(&without_l2.statistics("lineno")),
        vec![(l1, 15_000, 50)]
    );
    let just_l2 = snap2.filter_traces(&[Filter::include(file!()).lineno(l2)]);
    assert_eq!(mine(&just_l2.statistics("lineno")), vec![(l2, 50_000, 10)]);
    assert_eq!(just_l2.traces().len(), 10);
    let none = snap2.filter_traces(&[Filter::include("no/such/*.rs")]);
    assert!(none.traces().is_empty());
    assert_eq!(
        snap2.filter_traces(&[]).traces().len(),
        snap2.traces().len()
    );

    drop(keep);
    trace::stop();
    assert!(!trace::is_tracing());
    assert_eq!(trace::get_traced_memory(), (0, 0));
}
