//! Where did my memory go: CPython's `tracemalloc` for Rust programs that use [`ArenaAlloc`].
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: arenagc::ArenaAlloc = arenagc::ArenaAlloc;
//!
//! arenagc::trace::start(1).unwrap();
//! let before = arenagc::trace::take_snapshot();
//! let cache: Vec<Vec<u8>> = (0..1000).map(|_| vec![0; 8192]).collect();
//! let after = arenagc::trace::take_snapshot();
//! for stat in after.compare_to(&before, "lineno").iter().take(3) {
//!     println!("{stat}"); // src/main.rs:6: size=8023 KiB (+8023 KiB), count=1001 (+1001), average=8208 B
//! }
//! # drop(cache);
//! ```
//!
//! | tracemalloc                      | here                                                     |
//! |----------------------------------|----------------------------------------------------------|
//! | `start(nframe)`, `stop()`        | `start`, `stop` (which forgets every trace)              |
//! | `is_tracing()`                   | `is_tracing`                                             |
//! | `get_traced_memory()`            | `get_traced_memory`: (current, peak) bytes               |
//! | (dhat-rs's `HeapStats`)          | `heap_stats`: blocks and bytes now, at most, in total    |
//! | `reset_peak()`, `clear_traces()` | `reset_peak`, `clear_traces`                             |
//! | `get_tracemalloc_memory()`       | `get_tracemalloc_memory`: the tracer's own tables        |
//! | `get_traceback_limit()`          | `get_traceback_limit`                                    |
//! | `get_object_traceback(obj)`      | `get_object_traceback(ptr)`                              |
//! | `take_snapshot()`                | `take_snapshot` -> `Snapshot`: `statistics`, `statistics_cumulative`, `compare_to`, `filter_traces` |
//! | `Filter`, `Statistic`, `StatisticDiff`, `Traceback`, `Frame`, `Trace` | the same names; `Trace` is `TracedBlock` |
//! | `Snapshot.dump()`, `Snapshot.load()` | `Snapshot::dump`, `Snapshot::load` (`file.rs`: a format of its own) |
//! | (pprof, flame graphs)           | `Snapshot::write_pprof`, `write_folded`, `write_flamegraph` (feature `flamegraph`) (`output.rs`) |
//! | (jemalloc's `prof_sample`)       | `start_sampled(mean_bytes, nframes)`, `sample_mean`, `reseed_sampler`: estimates |
//!
//! How it works: tracing is a layer around the allocation backend. `start` sets the `TRACED`
//! bit of the allocator's backend selector (`alloc/dispatch.rs`), so every request leaves the
//! inlined fast path for the tracing wrapper, which calls the real backend and records or
//! removes the block's trace (`hook.rs`); `stop` clears the bit and forgets every trace. With
//! tracing off the fast path is what it always was: one relaxed load and a compare.
//!
//! Sampled mode with the plain or hardened backend does not set the bit: each heap counts down
//! the bytes its thread allocates on the pool fast path (`alloc/sampler.rs`, two instructions),
//! a sampled pool block comes from a heap no thread owns, so its free leaves the fast path and
//! forgets the trace there, and a large block's free forgets it while a session runs. Every
//! other request stays on the fast paths. (Debug mode and valgrind's system backend sample in
//! the wrapper.)
//!
//! Each block allocated while tracing records its size (the size asked for) and its stack: up
//! to `nframes` frames below the allocation machinery (`frames.rs` names it: arenagc, Rust's
//! allocation shims, the standard library), captured as instruction pointers with
//! the tracer's own cached CFI walker (`unwind/`; `backtrace::trace_unsynchronized` where it
//! cannot follow a frame) and interned (the same stack is stored once). Symbols
//! (file, line, function) are looked up only when a snapshot or a traceback is read.
//! Blocks allocated before tracing started are not traced, and their frees are ignored, as
//! tracemalloc ignores them; a realloc traces the new block at the realloc's stack, as
//! tracemalloc does.
//!
//! Invariants:
//! - The tracer never allocates through the allocator it traces while it holds its tables, and
//!   its tables come from the kernel (`mem.rs`); its own allocations (reading a snapshot) are
//!   made with the thread marked busy and are not traced (`hook.rs`).
//! - `TABLES.tracing` is the truth, changed under `TABLES` by `start` and `stop` only, which
//!   `CONTROL` serialises. `start` sets the allocator's `TRACED` bit before it sets `tracing`;
//!   `stop` clears `tracing` and every trace before it clears the bit (why that order makes a
//!   late thread harmless: `alloc/dispatch.rs`).
//! - A trace exists only for a live block allocated while tracing.
//!
//! Costs: with exact tracing on, every allocation walks its stack (a few ns per frame once the
//! walker's cache knows its code addresses, ~100 ns per frame with the system unwinder) and
//! records it under a lock; in sampled mode (`sample.rs`) only one allocation per `mean_bytes` does,
//! the others cost a per-thread countdown. See the README for measured figures.
//!
//! [`ArenaAlloc`]: crate::ArenaAlloc

mod file;
mod filter;
mod frames;
pub(crate) mod freed;
pub(crate) mod hook;
mod mem;
mod output;
mod pending;
mod sample;
mod snapshot;
mod table;
mod unwind;

use core::sync::atomic::{AtomicUsize, Ordering};

pub use file::{FORMAT_VERSION, FormatError};
pub use filter::Filter;
pub use frames::{Frame, Traceback};
pub use sample::DEFAULT_SAMPLE_MEAN;
pub use snapshot::{Key, Snapshot, Statistic, StatisticDiff, TracedBlock, format_size};

use crate::alloc::SpinLock;
use table::Tables;

/// The most frames a traceback keeps (`start`'s bound).
pub const MAX_NFRAMES: usize = 256;

/// Raw frames captured beyond `nframes`, for the allocation machinery on top of every stack
/// (dropped when the stack is read). Debug builds nest `Vec::push` about 12 frames deep in it.
const SKIP_BUDGET: usize = 32;

/// The same for a shared-library build (`libarenagc.so`, the preload library): the capture
/// drops the frames inside the library itself by address (`frames::own_library`), and a C
/// caller has no Rust machinery above its own frames, so a few spare frames do (an exact
/// traceback of one frame then unwinds about 10 frames instead of the whole stack).
const SKIP_BUDGET_SHARED: usize = 4;

/// Start and stop, one at a time (lock order: `CONTROL` -> `TABLES`).
static CONTROL: SpinLock<()> = SpinLock::new(());
/// The traces (`table.rs`).
static TABLES: SpinLock<Tables> = SpinLock::new(Tables::new());
/// Raw frames to capture: `nframes + SKIP_BUDGET` while tracing.
static CAPTURE_LIMIT: AtomicUsize = AtomicUsize::new(1 + SKIP_BUDGET);

/// Why tracing could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// `nframes` was 0 or over [`MAX_NFRAMES`].
    BadFrameCount(usize),
    /// The sampling mean was 0 bytes.
    BadSampleMean(usize),
}

impl core::fmt::Display for TraceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TraceError::BadFrameCount(n) => write!(
                f,
                "the number of frames must be in range [1; {MAX_NFRAMES}], not {n}"
            ),
            TraceError::BadSampleMean(n) => {
                write!(f, "the sampling mean must be at least 1 byte, not {n}")
            }
        }
    }
}

impl std::error::Error for TraceError {}

/// Start tracing allocations, keeping up to `nframes` frames per traceback (1 to
/// [`MAX_NFRAMES`]). Already tracing: nothing changes (as tracemalloc).
///
/// Only requests that reach arenagc are traced: install [`ArenaAlloc`](crate::ArenaAlloc) as
/// the global allocator.
pub fn start(nframes: usize) -> Result<(), TraceError> {
    start_with(nframes, 0)
}

/// Start tracing in sampled mode: each thread samples one allocation per `mean_bytes` bytes
/// allocated on average (exponentially distributed intervals, jemalloc's scheme;
/// [`DEFAULT_SAMPLE_MEAN`] is its default, 512 KiB), keeping up to `nframes` frames of each
/// sampled stack. A block of `s` bytes is sampled with probability `p = 1 - exp(-s /
/// mean_bytes)` and stands for `s / p` bytes and `1 / p` blocks: [`get_traced_memory`] and
/// every snapshot's statistics are unbiased estimates of the true totals (relative standard
/// error about `sqrt(mean_bytes / total)` for blocks much smaller than the mean). An
/// allocation that is not sampled costs a per-thread countdown. Already tracing: nothing
/// changes.
pub fn start_sampled(mean_bytes: usize, nframes: usize) -> Result<(), TraceError> {
    if mean_bytes == 0 {
        return Err(TraceError::BadSampleMean(mean_bytes));
    }
    start_with(nframes, mean_bytes)
}

/// The sampling mean of the running session, `None` in exact mode or when not tracing.
pub fn sample_mean() -> Option<usize> {
    let t = hook::tables();
    (t.tracing && t.mean != 0).then_some(t.mean)
}

/// Restart the calling thread's sampling stream from `seed`, so that the same allocations on
/// this thread are sampled in every run (for reproducible tests; other threads keep their
/// streams). Does nothing useful outside a sampled session.
pub fn reseed_sampler(seed: u64) {
    sample::reseed(seed, sample::MEAN.load(Ordering::Relaxed));
    if FAST_SAMPLING.load(Ordering::Relaxed) {
        crate::alloc::reseed_fast_sampler(seed);
    }
}

fn start_with(nframes: usize, mean: usize) -> Result<(), TraceError> {
    if nframes == 0 || nframes > MAX_NFRAMES {
        return Err(TraceError::BadFrameCount(nframes));
    }
    // Once, before any tracer lock is held: the allocator's fork handlers hold both tracer
    // locks across every fork (after its own; lock order CONTROL -> TABLES), lending them to
    // the forking thread, so a child never inherits tables half updated.
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        crate::alloc::hold_across_fork(&CONTROL);
        crate::alloc::hold_across_fork(&TABLES);
    });
    let _control = CONTROL.lock();
    if hook::tables().tracing {
        return Ok(());
    }
    // Found now, outside any allocation (they ask the dynamic loader).
    unwind::prepare();
    let budget = if frames::own_library().is_some() {
        SKIP_BUDGET_SHARED
    } else {
        SKIP_BUDGET
    };
    CAPTURE_LIMIT.store(nframes + budget, Ordering::Relaxed);
    // Sampled mode counts on the pool fast paths where the backend allows (`alloc/sampler.rs`),
    // else it samples in the wrapper as exact mode traces there.
    let fast = mean != 0 && crate::alloc::fast_sampling_possible();
    if mean != 0 {
        sample::new_session(mean);
    }
    if !fast {
        // The wrapper first, then `tracing`: a trace recorded in this session is made after
        // the bit was set (dispatch.rs relies on it).
        hook::switch(true);
    }
    {
        let mut t = hook::tables();
        t.nframes = nframes;
        t.mean = mean;
        t.tracing = true;
        hook::TRACING.store(true, Ordering::Relaxed);
    }
    if fast {
        // After `tracing`, so the first samples are kept (a sample recorded with `tracing`
        // off is dropped; its block is freed as any sampled block is).
        FAST_SAMPLING.store(
            crate::alloc::start_fast_sampling(mean, &hook::SAMPLER_HOOKS),
            Ordering::Relaxed,
        );
    }
    Ok(())
}

/// The running session samples on the pool fast paths (changed under `CONTROL`).
static FAST_SAMPLING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Stop tracing and forget every trace (as tracemalloc's `stop`).
pub fn stop() {
    let _control = CONTROL.lock();
    {
        let mut t = hook::tables();
        if !t.tracing {
            return;
        }
        t.tracing = false;
        hook::TRACING.store(false, Ordering::Relaxed);
        t.clear();
        t.mean = 0;
        sample::MEAN.store(0, Ordering::Relaxed);
    }
    // After the traces are gone: a free that still sees the session finds none to forget.
    if FAST_SAMPLING.swap(false, Ordering::Relaxed) {
        crate::alloc::stop_fast_sampling();
    } else {
        hook::switch(false);
    }
}

/// Whether allocations are being traced.
pub fn is_tracing() -> bool {
    hook::tables().tracing
}

/// The frames kept per traceback (`start`'s `nframes`).
pub fn get_traceback_limit() -> usize {
    hook::tables().nframes
}

/// Bytes in traced blocks now, and the most there were since tracing started, the last
/// [`reset_peak`] or [`clear_traces`]. (0, 0) when not tracing. In sampled mode, estimates
/// (the sum of the sampled blocks' weighed sizes; the peak is the peak of that estimate).
pub fn get_traced_memory() -> (usize, usize) {
    let t = hook::tables();
    (t.current, t.peak)
}

/// Make the peak the current size (and the peak block count the current count).
pub fn reset_peak() {
    let mut t = hook::tables();
    t.peak = t.current;
    t.peak_blocks = t.blocks;
}

/// Heap usage seen by the tracer, for assertions in tests (what `dhat-rs`'s `HeapStats` gives):
/// blocks and bytes live now, the most there were, and everything allocated since tracing
/// started (or [`clear_traces`]). Only blocks allocated while tracing count, as for every figure
/// here; a realloc counts as one more block of its new size in the totals. In sampled mode the
/// figures are estimates (each sampled block stands for `1/p` blocks and `size/p` bytes).
///
/// ```no_run
/// # #[global_allocator] static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;
/// use arenagc::trace;
/// trace::start(1).unwrap();
/// let before = trace::heap_stats();
/// let v: Vec<u64> = (0..1000).collect();
/// drop(v);
/// let after = trace::heap_stats();
/// assert_eq!(after.curr_bytes, before.curr_bytes); // it freed everything it allocated
/// assert!(after.max_bytes < 10 << 20); // the peak stayed under 10 MiB
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Blocks allocated since tracing started or the last `clear_traces`.
    pub total_blocks: u64,
    /// Bytes allocated since then.
    pub total_bytes: u64,
    /// Blocks live now.
    pub curr_blocks: usize,
    /// Bytes live now (`get_traced_memory().0`).
    pub curr_bytes: usize,
    /// The most blocks live at once since the last `reset_peak` (its own maximum, not the block
    /// count at the byte peak).
    pub max_blocks: usize,
    /// The most bytes live at once since the last `reset_peak` (`get_traced_memory().1`).
    pub max_bytes: usize,
}

/// Run `f` with the calling thread's allocations untraced (the tracer's own reports use it, so
/// writing a report does not change the figures it reports).
pub fn untraced<R>(f: impl FnOnce() -> R) -> R {
    let _busy = hook::enter();
    f()
}

/// The tracer's [`HeapStats`] now (all zero when not tracing).
pub fn heap_stats() -> HeapStats {
    let t = hook::tables();
    HeapStats {
        total_blocks: t.total_blocks,
        total_bytes: t.total_bytes,
        curr_blocks: t.blocks,
        curr_bytes: t.current,
        max_blocks: t.peak_blocks,
        max_bytes: t.peak,
    }
}

/// Forget every trace and reset the counters; tracing goes on.
pub fn clear_traces() {
    hook::tables().clear();
}

/// Bytes the tracer's tables hold (memory from the kernel, not from the allocator).
pub fn get_tracemalloc_memory() -> usize {
    hook::tables().memory()
}

/// Where the block at `ptr` (its start) was allocated, if it is traced.
pub fn get_object_traceback<T: ?Sized>(ptr: *const T) -> Option<Traceback> {
    let mut buf = [0usize; MAX_NFRAMES + SKIP_BUDGET];
    let (n, nframes) = {
        let t = hook::tables();
        let (_, tb) = t.get(ptr.cast::<u8>() as usize)?;
        let ips = t.frames(tb);
        buf[..ips.len()].copy_from_slice(ips);
        (ips.len(), t.nframes)
    };
    // Symbols are looked up (which allocates) outside the lock, untraced.
    let _busy = hook::enter();
    Some(frames::Resolver::new().traceback(&buf[..n], nframes))
}

/// The traces held now (an empty snapshot when not tracing). The snapshot's own memory is not
/// traced.
pub fn take_snapshot() -> Snapshot {
    let _busy = hook::enter();
    let (copy, nframes, mean) = {
        let t = hook::tables();
        if !t.tracing {
            return Snapshot::default();
        }
        // Copied into memory from the kernel under the lock; read without it.
        (t.copy(), t.nframes, t.mean)
    };
    let Some(copy) = copy else {
        return Snapshot::new(Vec::new(), nframes, mean);
    };
    let mut resolver = frames::Resolver::new();
    let mut tracebacks: std::collections::HashMap<usize, Traceback> = Default::default();
    let traces = copy
        .traces()
        .map(|(size, id)| TracedBlock {
            size,
            traceback: tracebacks
                .entry(id)
                .or_insert_with(|| resolver.traceback(copy.frames(id), nframes))
                .clone(),
        })
        .collect();
    Snapshot::new(traces, nframes, mean)
}
