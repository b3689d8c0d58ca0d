//! Forks while other threads trace: no child inherits a lock the tracer's stack walker was
//! holding. The walker checks the loader's object count with `dl_iterate_phdr`, which holds the
//! loader's `dl_load_write_lock`, a lock glibc's `fork` neither takes nor resets; before the
//! allocator's fork handlers held the walker's check across fork, about 1 child in 70 hung at
//! its first traced allocation (1 in 400 in a debug build, whose captures also run the system
//! unwinder: hence 2000 forks). A binary of its own: a tracing session is process-wide.

#![cfg(feature = "trace")]

use arenagc::trace;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

const FORKS: usize = 2000;

#[test]
fn children_of_a_tracing_process_never_hang() {
    trace::start(1).unwrap();
    static STOP: AtomicBool = AtomicBool::new(false);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    std::hint::black_box(vec![1u8; 64]);
                }
            })
        })
        .collect();
    let mut hung = Vec::new();
    for i in 0..FORKS {
        // SAFETY: the child only allocates (traced), frees and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let v = std::hint::black_box(vec![2u8; 100]);
            let ok = trace::get_traced_memory().0 >= 100;
            drop(v);
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let start = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: polling our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "fork {i}: the child failed (status {status})"
                );
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                hung.push(i);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    STOP.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    trace::stop();
    assert!(
        hung.is_empty(),
        "children hung after forks {hung:?} of {FORKS}"
    );
}
