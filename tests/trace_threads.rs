//! Tracing across threads: a block freed on another thread loses its trace, threads that start
//! and exit while tracing leave nothing traced behind once their blocks are freed, and fork
//! while threads allocate leaves the child a working tracer. One test: the tracer is
//! process-wide.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;

static MAKE_OUTER: AtomicU32 = AtomicU32::new(0);
static MAKE_INNER: AtomicU32 = AtomicU32::new(0);

/// 50 vectors of known sizes and the vector holding them, on two known lines.
#[inline(never)]
fn make(i: usize) -> Vec<Vec<u8>> {
    MAKE_OUTER.store(line!() + 1, Ordering::Relaxed);
    let mut out = black_box(Vec::with_capacity(50));
    for j in 0..50 {
        MAKE_INNER.store(line!() + 1, Ordering::Relaxed);
        out.push(black_box(vec![0u8; 100 + i * 50 + j]));
    }
    out
}

/// Traced blocks allocated on `line` of this file: (bytes, count).
fn on_line(line: u32) -> (usize, usize) {
    trace::take_snapshot()
        .statistics("lineno")
        .iter()
        .find(|s| {
            let f = &s.traceback.frames()[0];
            f.filename() == file!() && f.lineno() == line
        })
        .map_or((0, 0), |s| (s.size, s.count))
}

#[test]
fn threads_and_fork() {
    trace::start(1).unwrap();

    // Allocated here, freed on other threads.
    let l_main = line!() + 1;
    let blocks: Vec<Box<[u8; 96]>> = (0..64).map(|_| black_box(Box::new([5u8; 96]))).collect();
    // The boxes and the vector that collects them (`collect` is the standard library's: the
    // line that called it is charged).
    assert_eq!(on_line(l_main), (64 * 96 + 64 * 8, 65));
    let (a, b): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let t1 = thread::spawn(move || drop(a));
    let t2 = thread::spawn(move || drop(b));
    t1.join().unwrap();
    t2.join().unwrap();
    assert_eq!(on_line(l_main), (0, 0));

    // Allocated on threads that start and exit, freed here.
    let handles: Vec<_> = (0..8).map(|i| thread::spawn(move || make(i))).collect();
    let kept: Vec<Vec<Vec<u8>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let expect: usize = (0..8)
        .flat_map(|i| (0..50).map(move |j| 100 + i * 50 + j))
        .sum();
    let (l_outer, l_inner) = (
        MAKE_OUTER.load(Ordering::Relaxed),
        MAKE_INNER.load(Ordering::Relaxed),
    );
    assert_eq!(on_line(l_inner), (expect, 400));
    assert_eq!(on_line(l_outer), (8 * 50 * 24, 8));
    drop(kept);
    assert_eq!((on_line(l_inner), on_line(l_outer)), ((0, 0), (0, 0)));

    // Many short threads at once, each allocating and freeing: what they keep is freed when
    // they are joined, so nothing of theirs stays traced.
    trace::reset_peak();
    let (now, _) = trace::get_traced_memory();
    let churn: Vec<_> = (0..16)
        .map(|_| {
            thread::spawn(|| {
                for n in 0..200 {
                    let v = vec![1u8; 16 + n];
                    std::hint::black_box(&v);
                }
            })
        })
        .collect();
    for h in churn {
        h.join().unwrap();
    }
    assert_eq!(trace::get_traced_memory().0, now);

    // fork while other threads allocate: the child's tracer works (its lock was not inherited
    // held) and so does the parent's.
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<u64> = (0..64).collect();
                    std::hint::black_box(v);
                }
            });
        }
        for _ in 0..20 {
            // SAFETY: the child only allocates, reads the tracer and leaves with _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let l_child = line!() + 1;
                let v = black_box(vec![9u8; 4321]);
                let ok = on_line(l_child) == (4321, 1) && trace::is_tracing();
                drop(v);
                // SAFETY: leaving the child without running the parent's destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child failed"
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
    let l_parent = line!() + 1;
    let v = black_box(vec![9u8; 1234]);
    assert_eq!(on_line(l_parent), (1234, 1));
    drop(v);
    trace::stop();
}
