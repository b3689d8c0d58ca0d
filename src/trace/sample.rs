//! Sampled mode (jemalloc's heap-profile sampling), and the marks that let a free skip the
//! tables when its block cannot be traced.
//!
//! Sampling: each thread counts down the 16-byte steps it allocates (a request counts as its
//! size rounded up to 16 bytes, `counted`) from a geometric countdown of mean `mean / 16`
//! steps (`alloc/sampler.rs`'s `Countdown`). The allocation that takes the countdown below
//! zero is sampled (its stack captured and recorded) and a new countdown is drawn. The
//! countdown is memoryless, so a block of `s` bytes is sampled with probability
//! `p(s) = 1 - exp(-c(s) / mean)` whatever came before it, and weighing each sampled block by
//! `1 / p(s)` (bytes `s / p(s)`, count `1 / p(s)`) makes every sum of them an unbiased estimate
//! of the true sum (jemalloc's `prof_sample`, pprof's heap scaling). With the plain or hardened
//! backend the countdown is the heap's, on the pool fast paths; this file keeps one per thread
//! for the wrapper (debug mode, valgrind's system backend). Both draw from the session
//! `sampler::new_session` begins.
//!
//! ```text
//!  allocated(p, s):  countdown.take(c(s) / 16) ? sample : return
//!  freed(p):         MARKS[h(p)] == 0 ? return : lock, look up, remove
//! ```
//!
//! Marks: `MARKS[h(addr)]` counts the traces whose address hashes to that bucket, changed only
//! under `TABLES` when a trace is added or removed. A free whose bucket counts 0 has no trace
//! and skips the lock. (The block was traced before the free was called, by a thread that
//! handed the block over, so the free sees at least that trace's count.)
//!
//! Invariants:
//! - The per-thread countdown is const-initialised plain data: no allocation, no destructor,
//!   usable inside `malloc` and while a thread exits.
//! - `MEAN` is 0 unless a sampled session runs; `start` and `stop` change it, under `CONTROL`.
//! - A block's weight is a pure function of its size and the session's mean: adding a trace
//!   and removing it change the estimated totals by exactly the same amount.
//! - `MARKS[i]` equals the number of traces in `TABLES` whose address hashes to `i`.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::alloc::sampler::{self, Countdown};

/// jemalloc's default sampling interval (`lg_prof_sample:19`): 512 KiB.
pub const DEFAULT_SAMPLE_MEAN: usize = 512 * 1024;

/// The sampling mean of the running session in bytes; 0: exact mode (or not tracing).
pub(crate) static MEAN: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    /// The wrapper's countdown, one per thread (the fast paths count on their heap's).
    static STATE: Countdown = const { Countdown::new() };
}

/// What a request of `size` bytes counts for: its size rounded up to 16 bytes, as the fast
/// paths count it (in 16-byte steps), so both ways of sampling give a block the same
/// probability and weight.
fn counted(size: usize) -> usize {
    size.div_ceil(16).saturating_mul(16)
}

/// Count `size` bytes down on this thread: whether this allocation is sampled. Cheap unless
/// the countdown runs out.
#[inline]
pub(crate) fn take(size: usize, mean: usize) -> bool {
    STATE
        .try_with(|c| c.take(counted(size) / 16, sampler::steps_of_mean(mean)))
        .unwrap_or(false)
}

/// A new sampled session: every thread draws a new countdown at its next allocation.
pub(crate) fn new_session(mean: usize) {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    sampler::new_session((t.tv_sec as u64).wrapping_mul(1_000_000_007) ^ t.tv_nsec as u64);
    MEAN.store(mean, Ordering::Relaxed);
}

/// Restart the calling thread's sampling stream from `seed` (see `trace::reseed_sampler`).
pub(crate) fn reseed(seed: u64, mean: usize) {
    let _ = STATE.try_with(|c| c.reseed_at(seed, sampler::steps_of_mean(mean.max(1))));
}

/// The probability that a block of `size` bytes is sampled at mean `mean` (1 in exact mode):
/// `1 - exp(-c / mean)` for `c` the size rounded up to 16 bytes (`counted`).
pub(crate) fn probability(size: usize, mean: usize) -> f64 {
    if mean == 0 {
        1.0
    } else {
        -(-(counted(size) as f64) / mean as f64).exp_m1()
    }
}

/// The bytes a traced block of `size` bytes stands for: `size / p(size)` rounded (the size
/// itself in exact mode). A pure function (see the invariants).
pub(crate) fn weigh(size: usize, mean: usize) -> usize {
    if mean == 0 || size == 0 {
        return size;
    }
    (size as f64 / probability(size, mean)).round() as usize
}

/// The blocks a traced block of `size` bytes stands for: `1 / p(size)` rounded (1 in exact
/// mode). A pure function, as `weigh`.
pub(crate) fn weigh_count(size: usize, mean: usize) -> usize {
    if mean == 0 || size == 0 {
        return 1;
    }
    (1.0 / probability(size, mean)).round() as usize
}

/// Buckets of `MARKS` (a power of two).
const MARK_BUCKETS: usize = 1 << 16;

/// Traces per address bucket (see the module docs). 256 KiB of zero pages until used.
pub(crate) static MARKS: [AtomicU32; MARK_BUCKETS] = [const { AtomicU32::new(0) }; MARK_BUCKETS];

fn bucket(addr: usize) -> usize {
    ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) as usize & (MARK_BUCKETS - 1)
}

/// Whether a trace may exist for `addr` (false: certainly none).
#[inline]
pub(crate) fn maybe_traced(addr: usize) -> bool {
    MARKS[bucket(addr)].load(Ordering::Relaxed) != 0
}

/// A trace of `addr` was added (under `TABLES`).
pub(crate) fn mark(addr: usize) {
    MARKS[bucket(addr)].fetch_add(1, Ordering::Relaxed);
}

/// A trace of `addr` was removed (under `TABLES`).
pub(crate) fn unmark(addr: usize) {
    MARKS[bucket(addr)].fetch_sub(1, Ordering::Relaxed);
}

/// Every trace was forgotten (under `TABLES`).
pub(crate) fn unmark_all() {
    for m in &MARKS {
        if m.load(Ordering::Relaxed) != 0 {
            m.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(weigh(100, 0), 100);
        assert_eq!(weigh(0, 512), 0);
        // Far larger than the mean: always sampled, weight 1.
        assert_eq!(weigh(100 << 20, 512 << 10), 100 << 20);
        // Small blocks stand for about `mean` bytes each.
        let w = weigh(16, 512 << 10);
        assert!((w as f64 - (512 << 10) as f64).abs() < 20.0, "{w}");
    }
}
