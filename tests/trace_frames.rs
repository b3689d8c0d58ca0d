//! Tracebacks: with `nframes` 64 a block's traceback runs from the allocating line through its
//! callers in this file (the allocation machinery above it skipped); with 1 it is that line
//! alone; statistics by traceback tell the callers apart. One test: the tracer is
//! process-wide.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace::{self, Traceback};
use std::hint::black_box;

// Calls are wrapped in `black_box` so that none is a tail call (which would drop its caller's
// frame in optimized builds).

static LINES: std::sync::Mutex<[u32; 4]> = std::sync::Mutex::new([0; 4]);

#[inline(never)]
fn leaf(n: usize) -> Vec<u32> {
    LINES.lock().unwrap()[0] = line!() + 1;
    black_box((0..n as u32).collect())
}

#[inline(never)]
fn middle(n: usize) -> Vec<u32> {
    LINES.lock().unwrap()[1] = line!() + 1;
    black_box(leaf(n))
}

#[inline(never)]
fn outer_a() -> Vec<u32> {
    LINES.lock().unwrap()[2] = line!() + 1;
    black_box(middle(10))
}

#[inline(never)]
fn outer_b() -> Vec<u32> {
    LINES.lock().unwrap()[3] = line!() + 1;
    black_box(middle(20))
}

/// This file's frames of a traceback, most recent first: (line, function's last segment).
fn mine(tb: &Traceback) -> Vec<(u32, String)> {
    tb.frames()
        .iter()
        .filter(|f| f.filename() == file!())
        .map(|f| {
            let func = f.function().unwrap_or("?");
            (f.lineno(), func.rsplit("::").next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn one_frame_and_many() {
    // Deep: the leaf's line, then its callers, then this test.
    trace::start(64).unwrap();
    let l_call_a = line!() + 1;
    let a = outer_a();
    let l_call_b = line!() + 1;
    let b = outer_b();
    let [l_leaf, l_mid, l_a, l_b] = *LINES.lock().unwrap();
    let tb = trace::get_object_traceback(a.as_ptr()).unwrap();
    let test_fn = "one_frame_and_many".to_string();
    assert_eq!(
        mine(&tb)[..4],
        [
            (l_leaf, "leaf".to_string()),
            (l_mid, "middle".to_string()),
            (l_a, "outer_a".to_string()),
            (l_call_a, test_fn.clone()),
        ]
    );
    // The machinery is gone: the first frame is the leaf's line.
    assert_eq!(tb.frames()[0].filename(), file!());
    assert!(tb.frames().len() <= 64);
    let lines = tb.format(true);
    assert!(lines[0].starts_with(&format!("  File \"{}\", line {l_leaf}, in ", file!())));
    assert_eq!(lines[1].trim(), "black_box((0..n as u32).collect())");

    let snap = trace::take_snapshot();
    let by_tb = snap.statistics("traceback");
    let ours: Vec<_> = by_tb
        .iter()
        .filter(|s| {
            let f = &s.traceback.frames()[0];
            f.filename() == file!() && f.lineno() == l_leaf
        })
        .map(|s| (mine(&s.traceback)[2].0, s.size, s.count))
        .collect();
    assert_eq!(ours, vec![(l_b, 80, 1), (l_a, 40, 1)]);
    // By line the two callers are one group: the leaf's line.
    let by_line = snap.statistics("lineno");
    let leaf_stat = by_line
        .iter()
        .find(|s| s.traceback.frames()[0].lineno() == l_leaf)
        .unwrap();
    assert_eq!((leaf_stat.size, leaf_stat.count), (120, 2));
    // Cumulative: every frame of this file is charged with the blocks below it.
    let cum = snap.statistics_cumulative("lineno");
    let charged = |line: u32| {
        cum.iter()
            .find(|s| {
                s.traceback.frames()[0].filename() == file!()
                    && s.traceback.frames()[0].lineno() == line
            })
            .map(|s| (s.size, s.count))
    };
    assert_eq!(charged(l_mid), Some((120, 2)));
    assert_eq!(charged(l_a), Some((40, 1)));
    assert_eq!(charged(l_call_b), Some((80, 1)));
    drop((snap, by_tb, by_line, cum, tb, lines));
    trace::stop();

    // One frame: the leaf's line alone.
    trace::start(1).unwrap();
    let a1 = outer_a();
    let tb = trace::get_object_traceback(a1.as_ptr()).unwrap();
    assert_eq!(tb.frames().len(), 1);
    assert_eq!(mine(&tb), [(l_leaf, "leaf".to_string())]);
    assert_eq!(tb.to_string(), format!("{}:{l_leaf}", file!()));
    trace::stop();
    drop((a, b, a1));
}
