//! Allocation sampling on the pool fast path (the tracer's sampled mode, jemalloc's and
//! tcmalloc's scheme): each heap counts down the 16-byte steps its thread allocates, and the
//! allocation that takes the count below zero leaves the fast path to be sampled. A floor
//! file: the countdown a heap holds, the session's parameters, and the tracer's hooks.
//!
//! ```text
//!  fast path:  heap.sample.left -= steps; < 0 ?  (a subtract from memory, a branch)
//!                  └ crossed(): sampling off  -> left = RECHECK (one visit per 256 KiB)
//!                               new session   -> a stream of its own, a fresh countdown
//!                               ran out       -> sample this one; a fresh countdown
//!  sampled pool block: from thread.rs's SAMPLED heap, then record(block, size)
//!  its free: the pool's owner is SAMPLED, so the free leaves the fast path (remote free):
//!            forget(block) there; a large block: forget in large::free while active
//! ```
//!
//! The countdown is a geometric variable: `ceil(X)` steps for `X` exponential with mean
//! `mean / 16` steps, stored minus one so that the fast path tests the sign. An allocation of
//! `k` steps is sampled with probability `1 - exp(-16 k / mean)` whatever came before it (the
//! geometric distribution is memoryless), which is what the tracer's weights assume
//! (`trace::sample::probability` of the size rounded up to 16 bytes).
//!
//! Invariants:
//! - With sampling off, a heap's countdown is at most `RECHECK`, so a session that starts
//!   reaches every heap within `RECHECK` steps of its thread's allocations (`start`'s own
//!   thread at once). The countdown is the owner's alone, plain data: no other thread writes
//!   it, so the fast path's count is one read-modify-write of memory and a branch.
//! - `HOOKS` is set before `MEAN_STEPS` is made non-zero and never cleared: a thread that sees
//!   a session sees the hooks.
//! - A sampled pool block lives in a pool of the SAMPLED heap and nowhere else; every trace the
//!   tracer holds for a pool block in this mode is of such a block, so the free path of every
//!   other block needs no test at all.

use core::cell::Cell;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Steps (16 bytes each) between two looks at the session while sampling is off: 256 KiB,
/// half the default mean. The most a thread other than `start`'s allocates in a new session
/// before its first draw; for 1 KiB blocks one visit (about 10 instructions) per 256.
pub const RECHECK: isize = 1 << 14;

/// The tracer's functions, registered once (`set_hooks`).
pub struct Hooks {
    /// Record the block at `p` of `size` requested bytes as sampled (captures the stack).
    pub record: fn(*mut u8, usize),
    /// Forget the trace of `p`, if it has one (a free).
    pub forget: fn(*mut u8),
    /// Whether `p` may have a trace (false: certainly none).
    pub maybe_traced: fn(*mut u8) -> bool,
}

static HOOKS: AtomicPtr<Hooks> = AtomicPtr::new(core::ptr::null_mut());
/// The sampling mean in steps, as `f64` bits; 0: not sampling on the fast path.
static MEAN_STEPS: AtomicU64 = AtomicU64::new(0);
/// Incremented by every `start`: a heap whose countdown is older draws a new one.
static EPOCH: AtomicU64 = AtomicU64::new(0);
/// The seed of the current session (each heap's stream is derived from it).
static SEED: AtomicU64 = AtomicU64::new(0);
/// Streams handed out in this process, so each heap gets its own.
static STREAMS: AtomicU64 = AtomicU64::new(0);

/// A heap's countdown (see the module docs). Owner only.
pub struct Countdown {
    left: Cell<isize>,
    rng: Cell<u64>,
    epoch: Cell<u64>,
}

impl Countdown {
    pub const fn new() -> Self {
        // 0: the first allocation of a new heap looks at the session.
        Countdown {
            left: Cell::new(0),
            rng: Cell::new(0),
            epoch: Cell::new(0),
        }
    }

    /// Owner only: count `steps` down; true when the count went below zero (call `crossed`).
    #[inline(always)]
    pub fn count(&self, steps: usize) -> bool {
        let left = self.left.get().wrapping_sub(steps as isize);
        self.left.set(left);
        left < 0
    }

    /// Owner only: look at the session at the next allocation.
    pub fn poke(&self) {
        self.left.set(0);
    }

    /// Owner only, after `count` returned true for an allocation of `steps`: whether to sample
    /// it. Sets the next countdown.
    #[cold]
    #[inline(never)]
    pub fn crossed(&self, steps: usize) -> bool {
        self.decide(steps, f64::from_bits(MEAN_STEPS.load(Ordering::Acquire)))
    }

    /// `crossed` at a mean of `mean` steps (0: not sampling).
    #[cold]
    #[inline(never)]
    fn decide(&self, steps: usize, mean: f64) -> bool {
        if mean == 0.0 {
            self.left.set(RECHECK);
            return false;
        }
        let epoch = EPOCH.load(Ordering::Relaxed);
        let mut rng = self.rng.get();
        if self.epoch.get() != epoch {
            // The first look at this session: a stream of its own and a fresh countdown, which
            // this allocation is counted against (the count the heap had was another session's).
            let stream = STREAMS.fetch_add(1, Ordering::Relaxed);
            rng = mix(SEED.load(Ordering::Relaxed) ^ mix(stream));
            self.epoch.set(epoch);
            let left = draw(&mut rng, mean) - 1 - steps as isize;
            self.rng.set(rng);
            if left >= 0 {
                self.left.set(left);
                return false;
            }
        }
        self.left.set(draw(&mut rng, mean) - 1);
        self.rng.set(rng);
        true
    }

    /// Owner only, for a countdown the session cannot poke (the tracer's wrapper keeps one per
    /// thread): count `steps` against a mean of `mean` steps, drawing afresh when the countdown
    /// is another session's; whether to sample this allocation.
    #[inline]
    pub fn take(&self, steps: usize, mean: f64) -> bool {
        if self.epoch.get() != EPOCH.load(Ordering::Relaxed) {
            return self.decide(steps, mean);
        }
        self.count(steps) && self.decide(steps, mean)
    }

    /// Owner only: restart this countdown's stream from `seed` (reproducible tests), at the fast
    /// paths' mean.
    pub fn reseed(&self, seed: u64) {
        self.reseed_at(seed, f64::from_bits(MEAN_STEPS.load(Ordering::Acquire)));
    }

    /// `reseed` at a mean of `mean` steps (0: not sampling).
    pub fn reseed_at(&self, seed: u64, mean: f64) {
        let mut rng = mix(seed);
        self.epoch.set(EPOCH.load(Ordering::Relaxed));
        let left = if mean == 0.0 {
            RECHECK
        } else {
            draw(&mut rng, mean) - 1
        };
        self.left.set(left);
        self.rng.set(rng);
    }
}

/// splitmix64: a well-mixed, odd 64-bit value from any input.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// `ceil(X)` for `X` exponential with mean `mean` (in whatever unit), at least 1, from the
/// xorshift64* generator `rng`.
pub fn draw(rng: &mut u64, mean: f64) -> isize {
    let mut x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    // u in (0, 1]: 53 random bits.
    let u = ((r >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
    let v = (-u.ln() * mean).ceil();
    if v >= (isize::MAX / 4) as f64 {
        isize::MAX / 4
    } else {
        (v as isize).max(1)
    }
}

/// Register the tracer's functions (once; later calls must pass the same).
pub fn set_hooks(h: &'static Hooks) {
    HOOKS.store(h as *const Hooks as *mut Hooks, Ordering::Release);
}

fn hooks() -> Option<&'static Hooks> {
    let h = HOOKS.load(Ordering::Acquire);
    // SAFETY: a non-null HOOKS came from a `&'static Hooks` (set_hooks).
    (!h.is_null()).then(|| unsafe { &*h })
}

/// A new sampled session seeded with `seed`: every countdown, the heaps' and the wrapper's,
/// draws afresh at its next look (each from a stream of its own).
pub fn new_session(seed: u64) {
    SEED.store(mix(seed), Ordering::Relaxed);
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// A mean in bytes as the countdowns count it, in 16-byte steps.
pub fn steps_of_mean(mean_bytes: usize) -> f64 {
    mean_bytes as f64 / crate::config::ALIGNMENT as f64
}

/// Start sampling on the fast paths with a mean of `mean_bytes` (in the session `new_session`
/// began). The caller then pokes its own heap; the others look within `RECHECK` steps.
pub fn start(mean_bytes: usize) {
    debug_assert!(mean_bytes > 0 && hooks().is_some());
    MEAN_STEPS.store(steps_of_mean(mean_bytes).to_bits(), Ordering::Release);
}

/// Stop sampling: each heap falls back to looking once per `RECHECK` steps.
pub fn stop() {
    MEAN_STEPS.store(0, Ordering::Release);
}

/// Whether a sampling session runs on the fast paths.
#[inline(always)]
pub fn active() -> bool {
    MEAN_STEPS.load(Ordering::Relaxed) != 0
}

/// Record a sampled block (the tracer captures the stack).
pub fn record(p: *mut u8, size: usize) {
    if let Some(h) = hooks() {
        (h.record)(p, size)
    }
}

/// A block that may be sampled is being freed: forget its trace (before the block goes back).
#[cold]
#[inline(never)]
pub fn forget(p: *mut u8) {
    if let Some(h) = hooks() {
        (h.forget)(p)
    }
}

/// Whether `p` may carry a trace.
pub fn maybe_traced(p: *mut u8) -> bool {
    hooks().is_some_and(|h| (h.maybe_traced)(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_are_geometric_with_the_mean() {
        let mut rng = mix(42);
        let n = 200_000;
        let mean = 256.0;
        let sum: f64 = (0..n).map(|_| draw(&mut rng, mean) as f64).sum();
        // ceil adds about half a step; the standard error of the mean is mean / sqrt(n).
        let m = sum / n as f64;
        assert!((m - 256.5).abs() < 4.0, "mean countdown {m}");
    }

    #[test]
    fn a_heap_samples_with_the_right_probability() {
        // Against a countdown in its own epoch: allocations of k steps at mean m steps are
        // sampled at the rate 1 - exp(-k/m) each.
        let c = Countdown::new();
        c.epoch.set(u64::MAX); // never the session's: the first crossing draws
        let mean_bytes = 16 * 64;
        let (k, n) = (8usize, 400_000usize);
        let mut sampled = 0usize;
        for _ in 0..n {
            if c.count(k) && c.decide(k, 64.0) {
                sampled += 1;
            }
        }
        let p = 1.0 - (-(16.0 * k as f64) / mean_bytes as f64).exp();
        let expect = p * n as f64;
        let sigma = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (sampled as f64 - expect).abs() < 5.0 * sigma,
            "sampled {sampled}, expected {expect:.0} +- {sigma:.0}"
        );
    }
}
