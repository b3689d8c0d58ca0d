//! The allocator: pymalloc's arenas and pools, made thread-aware, behind `GlobalAlloc`.
//!
//! ```text
//!  front doors   ArenaAlloc (GlobalAlloc, here)        c.rs (malloc family, C semantics)
//!                          └──────────────┬──────────────────┘
//!  dispatch.rs   the backend chosen once: plain, or a wrapper (debug.rs: Debug(Plain))
//!                          │
//!  plain.rs      small (<= 512 B, align <= 16): pool fast paths ── else large.rs (glibc)
//!                          │ nothing there / not ours
//!  thread.rs     the thread's heap (TLS), its birth and death, fork; remote frees and adoption
//!  heap.rs       ThreadHeap: slow paths on an explicit heap       (remote.rs: the handoffs)
//!  global.rs     GLOBAL (one lock, once per pool): arenas, abandoned pools
//!  arena.rs      arenas by free-pool count ── addr_map.rs (radix map) ── os.rs (mmap)
//!  pool.rs       pool headers, blocks; queue.rs: PoolQueue, the one list of pools
//!  floor         fatal.rs (abort, invariant!), size_class.rs, lock.rs, table.rs
//! ```
//!
//! Each file opens with its own map and invariants; a file uses only files below it in this
//! picture (`ARCHITECTURE.md` shows the whole graph).
//!
//! Invariants kept here and below:
//! - A small block is handed out by exactly one pool, and only while its pool is in use; a block
//!   is on at most one free list (local, remote, delayed) and never on one while handed out.
//! - The fast paths touch only the calling thread's heap and pools it owns.
//! - The allocator never allocates through itself: its own tables come from `os::reserve_table`.
//! - The backend is fixed before the first block is handed out (`dispatch.rs`), so every block
//!   is freed by the backend it was allocated by.

use core::alloc::{GlobalAlloc, Layout};

#[macro_use]
pub(crate) mod fatal;

mod addr_map;
mod arena;
mod backend;
pub mod c;
mod cache;
mod counter;
mod debug;
mod debug_large;
mod debug_walk;
mod dispatch;
mod fork;
mod global;
mod harden;
mod heap;
mod kind_map;
mod large;
#[cfg(test)]
mod large_tests;
mod lock;
#[cfg(test)]
mod medium_tests;
pub mod os;
mod plain;
mod pool;
mod queue;
#[doc(hidden)]
pub mod remote;
#[cfg(feature = "trace")]
pub(crate) mod sampler;
mod secure;
mod size_class;
mod stats;
mod system;
mod table;
#[cfg(test)]
mod tests;
mod thread;
mod valgrind;

pub use arena::ArenaCounters;
pub use dispatch::{debug_enabled, system_backend};
pub use size_class::{block_size, class_of, is_small};
pub use stats::{AllocStats, ClassStats};

/// The global allocator. Use as
/// `#[global_allocator] static GLOBAL: arenagc::ArenaAlloc = arenagc::ArenaAlloc;`
#[derive(Clone, Copy, Debug, Default)]
pub struct ArenaAlloc;

/// Is `ptr` inside one of the arenas this allocator holds? O(1), lock-free, and never true for
/// memory we do not hold (stack, statics, other allocators, unmapped arenas).
#[inline]
pub fn owns(ptr: *const u8) -> bool {
    plain::owns(ptr)
}

/// Whether `p` is the start of a block this allocator handed out and that has been freed
/// since: a pool block on a free list (the default mode's free mark), or in debug mode a block
/// waiting in the quarantine. False for anything it cannot tell (large blocks, foreign memory).
/// For diagnostics of a use after free (the C ABI's `agc_decref` of a freed object); reads
/// only memory inside our arenas.
pub fn looks_freed(p: *const u8) -> bool {
    dispatch::looks_freed(p)
}

/// Abort with the allocator's fault message: `arenagc: fatal error: <what> of pointer <p>:
/// <detail>`. Never allocates. For the layers above that detect a misuse of memory (the C ABI).
#[cold]
pub fn fault(what: &str, p: *const u8, detail: core::fmt::Arguments<'_>) -> ! {
    fatal::fatal_fmt(what, p, detail)
}

/// Keep the calling thread from giving arenas back to the OS (`munmap`) until the matching
/// [`release_os_hold`]: the collector holds it for a collection's pause, so a pause makes no
/// such system call. The arenas it empties wait (counted in the statistics as free) and are
/// unmapped at a later arena event outside any hold, as the purge delay already has them
/// wait, or by `trim`. Nests.
pub fn hold_os_releases() {
    os::hold_releases();
}

/// End one [`hold_os_releases`].
pub fn release_os_hold() {
    os::end_hold();
}

/// The allocator's spin lock, for the layers that take a lock inside an allocation (the
/// tracer): it never allocates, and while a fork is in progress the forking thread gets it lent
/// (`lock.rs`).
#[cfg(feature = "trace")]
pub(crate) use lock::SpinLock;

/// Have the allocator's fork handlers hold `lock` across every `fork`, after the locks already
/// registered (once per lock; the process setup is done first, so the handlers exist). Its
/// holder must never take an allocator lock or allocate. False when the table is full.
#[cfg(feature = "trace")]
pub(crate) fn hold_across_fork<T>(lock: &'static SpinLock<T>) -> bool {
    thread::ensure_process_init();
    fork::add_lock(lock.raw())
}

/// Whether the backend in use lets the tracer's sampled mode count on the pool fast paths.
#[cfg(feature = "trace")]
pub(crate) fn fast_sampling_possible() -> bool {
    dispatch::fast_sampling()
}

/// Start the tracer's sampled mode on the pool fast paths (`sampler.rs`): false, and nothing
/// done, when the backend in use cannot (debug mode, valgrind's system backend), where the
/// tracer samples through its wrapper instead.
#[cfg(feature = "trace")]
pub(crate) fn start_fast_sampling(mean: usize, hooks: &'static sampler::Hooks) -> bool {
    if !dispatch::fast_sampling() {
        return false;
    }
    thread::ensure_process_init();
    sampler::set_hooks(hooks);
    sampler::start(mean);
    thread::poke_heap();
    true
}

/// Stop the fast paths' sampling (each heap notices within `sampler::RECHECK` steps).
#[cfg(feature = "trace")]
pub(crate) fn stop_fast_sampling() {
    sampler::stop();
}

/// Restart the calling thread's fast-path sampling stream from `seed`.
#[cfg(feature = "trace")]
pub(crate) fn reseed_fast_sampler(seed: u64) {
    thread::reseed_sampler(seed);
}

/// A snapshot of the allocator's statistics; `Display` prints a table like
/// `sys._debugmallocstats()`.
pub fn stats() -> AllocStats {
    stats::snapshot()
}

/// Hand back empty pools the calling thread keeps cached and (debug mode) the quarantine,
/// unmap every fully free arena now (beyond the one spare) instead of after the purge delay,
/// and ask the system allocator to give its free memory back (glibc's `malloc_trim(0)`).
pub fn trim() {
    if debug_enabled() {
        debug::flush_quarantine();
    }
    thread::trim();
    large::trim();
}

/// For a malloc replacement only: tune the system allocator behind the large blocks (see
/// `large::tune_system_allocator`). Returns whether it changed anything.
pub fn tune_system_allocator() -> bool {
    large::tune_system_allocator()
}

/// Run debug mode's exit check of the live pool blocks now, without aborting: whether it found
/// a fault, and how many suspects (blocks read in the middle of an allocation or a free) its
/// confirmation has dismissed since the start. For the tests of debug mode; `(false, 0)`
/// without it (plain blocks have no guards to read).
#[doc(hidden)]
pub fn debug_exit_check() -> (bool, u64) {
    if !debug_enabled() {
        return (false, 0);
    }
    debug_walk::debug_exit_check()
}

/// Check the calling thread's heap and the arenas (tests and debug builds).
pub fn validate() -> Result<(), &'static str> {
    thread::validate()
}

// SAFETY: every method returns blocks of at least the requested size and alignment that no
// other live allocation overlaps (the backend's contract, `backend.rs`), or null on failure.
unsafe impl GlobalAlloc for ArenaAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        dispatch::alloc::<false>(layout.size(), layout.align(), false)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        dispatch::alloc::<false>(layout.size(), layout.align(), true)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller frees a block this allocator returned for this layout.
        unsafe { dispatch::free_sized(ptr, layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a live block of `layout` and a valid new size.
        unsafe { dispatch::realloc(ptr, Some((layout.size(), layout.align())), new_size) }
    }
}
