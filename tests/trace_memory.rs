//! The counters: current and peak, `reset_peak`, `clear_traces`, the tracer's own memory,
//! start/stop/start, a realloc moving its trace, and nothing left traced once everything traced
//! is freed. One test, and no test harness (`harness = false`): the tracer is process-wide and
//! counts exact bytes, and libtest's main thread allocating while the test runs (its channel,
//! its bookkeeping; more often on a loaded machine) added 900 traced bytes to the counters.

#[cfg(not(feature = "trace"))]
fn main() {
    println!("trace_memory: feature trace off, nothing to test");
}

#[cfg(feature = "trace")]
fn main() {
    counters_realloc_and_sessions();
    println!("1 passed, 0 failed (trace_memory)");
}

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

#[cfg(feature = "trace")]
use arenagc::trace::{self, TraceError};
#[cfg(feature = "trace")]
use std::hint::black_box;

/// Bytes traced on `line` of this file now.
#[cfg(feature = "trace")]
fn on_line(line: u32) -> (usize, usize) {
    let snap = trace::take_snapshot();
    snap.statistics("lineno")
        .iter()
        .find(|s| {
            let f = &s.traceback.frames()[0];
            f.filename() == file!() && f.lineno() == line
        })
        .map_or((0, 0), |s| (s.size, s.count))
}

#[cfg(feature = "trace")]
fn counters_realloc_and_sessions() {
    assert_eq!(trace::start(0), Err(TraceError::BadFrameCount(0)));
    assert_eq!(
        trace::start(trace::MAX_NFRAMES + 1),
        Err(TraceError::BadFrameCount(trace::MAX_NFRAMES + 1))
    );
    assert!(!trace::is_tracing());
    assert_eq!(trace::get_traced_memory(), (0, 0));
    let before: Vec<u8> = black_box(vec![7; 4000]); // allocated before tracing: never traced

    trace::start(4).unwrap();
    assert!(trace::is_tracing() && trace::get_traceback_limit() == 4);
    assert_eq!(trace::get_traced_memory(), (0, 0));

    // Peak and reset_peak.
    let big = black_box(vec![0u8; 1 << 20]);
    let small = black_box(vec![0u8; 1000]);
    assert_eq!(
        trace::get_traced_memory(),
        ((1 << 20) + 1000, (1 << 20) + 1000)
    );
    drop(big);
    assert_eq!(trace::get_traced_memory(), (1000, (1 << 20) + 1000));
    trace::reset_peak();
    assert_eq!(trace::get_traced_memory(), (1000, 1000));
    assert!(trace::get_tracemalloc_memory() > 0);

    // A block from before `start` is freed and reallocated untraced-ly: ignored.
    drop(before);
    assert_eq!(trace::get_traced_memory().0, 1000);

    // Realloc moves the trace: the new size, at the line that grew it.
    let l_alloc = line!() + 1;
    let mut v: Vec<u8> = black_box(Vec::with_capacity(100));
    assert_eq!(on_line(l_alloc), (100, 1));
    let l_grow = line!() + 1;
    v.reserve_exact(5000);
    assert_eq!(on_line(l_alloc), (0, 0));
    assert_eq!(on_line(l_grow), (5000, 1));
    assert_eq!(trace::get_traced_memory().0, 1000 + 5000);
    let l_shrink = line!() + 1;
    v.shrink_to(3000);
    assert_eq!((on_line(l_grow), on_line(l_shrink)), ((0, 0), (3000, 1)));
    let tb = trace::get_object_traceback(v.as_ptr()).unwrap();
    assert_eq!(tb.frames()[0].lineno(), l_shrink);
    assert_eq!(trace::get_traced_memory().0, 1000 + 3000);

    // Everything traced freed: nothing left.
    drop((v, small));
    assert_eq!(trace::get_traced_memory().0, 0);
    assert!(trace::take_snapshot().traces().is_empty());

    // clear_traces forgets what is held and restarts the counters; tracing goes on. (The
    // statistics read above were traced too, hence the peak reset.)
    trace::reset_peak();
    let held = black_box(vec![1u8; 2048]);
    assert_eq!(trace::get_traced_memory(), (2048, 2048));
    trace::clear_traces();
    assert_eq!(trace::get_traced_memory(), (0, 0));
    assert!(trace::get_object_traceback(held.as_ptr()).is_none());
    drop(held); // its trace is gone: the free is ignored
    assert_eq!(trace::get_traced_memory(), (0, 0));
    let l_after = line!() + 1;
    let after_clear = black_box(vec![2u8; 512]);
    assert_eq!(on_line(l_after), (512, 1));

    // start while tracing: nothing changes.
    trace::start(9).unwrap();
    assert_eq!(trace::get_traceback_limit(), 4);

    // stop forgets everything; a free after it is ignored; start again traces anew.
    trace::stop();
    assert!(!trace::is_tracing());
    assert_eq!(trace::get_traced_memory(), (0, 0));
    assert_eq!(trace::get_tracemalloc_memory(), 0);
    assert!(trace::take_snapshot().traces().is_empty());
    let untraced = black_box(vec![3u8; 700]);
    drop(after_clear);
    trace::stop(); // stopping twice is harmless

    trace::start(1).unwrap();
    assert_eq!(trace::get_traceback_limit(), 1);
    drop(untraced); // allocated while stopped: ignored
    assert_eq!(trace::get_traced_memory(), (0, 0));
    let l_again = line!() + 1;
    let again = black_box(vec![4u8; 640]);
    assert_eq!(on_line(l_again), (640, 1));
    assert_eq!(trace::get_traced_memory().0, 640);
    drop(again);
    assert_eq!(trace::get_traced_memory().0, 0);
    trace::stop();
}
