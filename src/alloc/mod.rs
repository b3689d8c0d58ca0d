//! The allocator: pymalloc's arenas and pools, made thread-aware, behind `GlobalAlloc`.
//!
//! ```text
//!  ArenaAlloc (GlobalAlloc)            alloc::c (malloc-family semantics, for the C ABI)
//!        |  size <= 512 and align <= 16?         |
//!        +------- no ----> large.rs (system allocator: glibc's __libc_* entry points)
//!        | yes
//!        v
//!  fast path (here): heap.avail[class] -> pool.free pop, or bump     (no lock, no atomic RMW)
//!        | nothing there
//!        v
//!  heap.rs slow path: delayed frees, remote frees, next pool, abandoned pool, new pool
//!        v                                                  (global spin lock, once per pool)
//!  arena.rs: fullest arena first; address map (addr_map.rs); os.rs: mmap/munmap/madvise
//! ```
//!
//! Files: `config` (tunables), `size_class`, `os`, `addr_map`, `arena`, `pool`, `remote` (the
//! cross-thread protocols, loom-checked), `heap` (thread heaps and slow paths), `large`, `debug`,
//! `stats`, `c` (malloc/free/realloc/... for callers that do not know sizes).
//!
//! Invariants kept here:
//! - A small block is handed out by exactly one pool, and only while its pool is in use; a block
//!   is on at most one free list (local, remote, delayed) and never on one while handed out.
//! - The fast paths touch only the calling thread's heap and pools it owns.
//! - The allocator never allocates through itself: its own tables come from `os::reserve_table`.
//! - Debug mode is fixed before the first block is handed out (`MODE`), so every block is freed
//!   in the mode it was allocated in.

use core::alloc::{GlobalAlloc, Layout};

#[macro_use]
pub(crate) mod fatal;

use core::sync::atomic::{AtomicU8, Ordering};

mod addr_map;
mod arena;
pub mod c;
mod debug;
mod heap;
mod large;
mod lock;
pub mod os;
mod pool;
#[doc(hidden)]
pub mod remote;
mod size_class;
mod stats;
mod table;
#[cfg(test)]
mod tests;

pub use arena::ArenaCounters;
pub use size_class::{block_size, class_of, is_small};
pub use stats::{AllocStats, ClassStats};

use pool::pool_of;

/// The global allocator. Use as
/// `#[global_allocator] static GLOBAL: arenagc::ArenaAlloc = arenagc::ArenaAlloc;`
#[derive(Clone, Copy, Debug, Default)]
pub struct ArenaAlloc;

const MODE_UNSET: u8 = 0;
const MODE_NORMAL: u8 = 1;
const MODE_DEBUG: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);

/// True when blocks are handed out by the plain paths (not debug mode), deciding the mode on
/// first use.
#[inline(always)]
fn normal_mode() -> bool {
    if cfg!(feature = "debug") {
        return false;
    }
    match MODE.load(Ordering::Relaxed) {
        MODE_NORMAL => true,
        MODE_DEBUG => false,
        _ => decide_mode(),
    }
}

#[cold]
#[inline(never)]
fn decide_mode() -> bool {
    // SAFETY: the name is NUL-terminated; getenv does not allocate.
    let v = unsafe { libc::getenv(c"ARENAGC_DEBUG".as_ptr()) };
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    let on = !v.is_null() && unsafe { *v } != 0 && unsafe { *v } != b'0' as libc::c_char;
    let mode = if on { MODE_DEBUG } else { MODE_NORMAL };
    match MODE.compare_exchange(MODE_UNSET, mode, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => mode == MODE_NORMAL,
        Err(m) => m == MODE_NORMAL,
    }
}

/// The fast paths' check: plain mode already decided (no call, so the fast paths stay leaf
/// functions; an undecided mode takes the out-of-line path, which decides it).
#[inline(always)]
fn normal_mode_decided() -> bool {
    !cfg!(feature = "debug") && MODE.load(Ordering::Relaxed) == MODE_NORMAL
}

/// Whether debug mode (guard bytes, fill patterns, checks on free) is on for this process.
pub fn debug_enabled() -> bool {
    !normal_mode()
}

// ---------------------------------------------------------------------------------------------
// fast paths

/// Allocate a small block of `class` (no mode check). The bool says it is known to be zero.
#[inline(always)]
fn small_alloc(class: usize) -> (*mut u8, bool) {
    let h = heap::current();
    if !h.is_null() {
        // SAFETY: h is the calling thread's live heap; pools on its lists are owned by it.
        unsafe {
            let p = (*h).avail[class];
            if !p.is_null() {
                let got = (*p).take_block();
                if !got.0.is_null() {
                    return got;
                }
            }
        }
    }
    heap::alloc_slow(class)
}

/// Free a small block (no mode check).
///
/// # Safety
/// `b` is a live block handed out by `small_alloc`.
#[inline(always)]
unsafe fn small_free(b: *mut u8) {
    let p = pool_of(b);
    let h = heap::current();
    // SAFETY: b is live, so its pool header is live. The owner check is sound: only this thread
    // stores its own heap into a pool's owner, and only this thread clears it.
    unsafe {
        if (*p).owner.load(Ordering::Relaxed) == h && !h.is_null() {
            let n = (*p).put_block(b);
            // Slow only to revive a full pool or to give back an empty one that is not the
            // class's current pool (a hot alloc/free pair stays on this path).
            if (*p).in_full || (n == 0 && (*h).avail[(*p).class()] != p) {
                heap::local_free_slow(h, p, n);
            }
        } else {
            heap::free_remote(b);
        }
    }
}

/// Allocate `size` bytes aligned to `align` by the plain paths (debug mode's underlying blocks
/// come from here too).
#[inline]
fn raw_alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    if is_small(size, align) {
        let (b, known_zero) = small_alloc(class_of(size));
        if zero && !known_zero && !b.is_null() {
            // SAFETY: b is a fresh block of at least `size` bytes.
            unsafe { b.write_bytes(0, size) };
        }
        b
    } else {
        large::alloc(size, align, zero)
    }
}

/// Free a block from `raw_alloc` without knowing its size: the address map tells small from
/// large.
///
/// # Safety
/// `b` is a live block from `raw_alloc`.
unsafe fn raw_free(b: *mut u8) {
    // SAFETY: per the contract.
    unsafe {
        if owns(b) {
            small_free(b)
        } else {
            large::free(b)
        }
    }
}

/// Is `ptr` inside one of the arenas this allocator holds? O(1), lock-free, and never true for
/// memory we do not hold (stack, statics, other allocators, unmapped arenas).
#[inline]
pub fn owns(ptr: *const u8) -> bool {
    !addr_map::lookup(ptr as usize).is_null()
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
    if !normal_mode() {
        debug::flush_quarantine();
    }
    heap::trim();
    large::trim();
}

/// For a malloc replacement only: tune the system allocator behind the large blocks (see
/// `large::tune_system_allocator`). Returns whether it changed anything.
pub fn tune_system_allocator() -> bool {
    large::tune_system_allocator()
}

/// For the C ABI crate: a per-thread count of its object, gc and runtime calls in progress,
/// which it keeps here because these thread-local words cost no call to reach from a shared
/// object (Rust's `thread_local!` there calls `__tls_get_addr`, twice per API call). Starts 0.
#[doc(hidden)]
#[inline(always)]
pub fn api_nesting() -> usize {
    crate::tls::get::<{ crate::tls::CALL_DEPTH }>()
}

/// See [`api_nesting`].
#[doc(hidden)]
#[inline(always)]
pub fn set_api_nesting(n: usize) {
    crate::tls::set::<{ crate::tls::CALL_DEPTH }>(n)
}

/// Check the calling thread's heap and the arenas (tests and debug builds).
pub fn validate() -> Result<(), &'static str> {
    heap::heap_is_valid()
}

// ---------------------------------------------------------------------------------------------
// GlobalAlloc

// SAFETY: every method returns blocks of at least the requested size and alignment that no
// other live allocation overlaps (pools hand out each block once until it is freed; larger
// blocks come from the system allocator), or null on failure.
unsafe impl GlobalAlloc for ArenaAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_small(layout.size(), layout.align()) && normal_mode_decided() {
            return small_alloc(class_of(layout.size())).0;
        }
        alloc_other(layout, false)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_small(layout.size(), layout.align()) && normal_mode_decided() {
            let (b, zero) = small_alloc(class_of(layout.size()));
            if !zero && !b.is_null() {
                // SAFETY: b is a fresh block of at least layout.size() bytes.
                unsafe { b.write_bytes(0, layout.size()) };
            }
            return b;
        }
        alloc_other(layout, true)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_small(layout.size(), layout.align()) && normal_mode_decided() {
            if cfg!(debug_assertions) && !owns(ptr) {
                fatal(
                    "invalid free",
                    ptr,
                    "dealloc of a pointer not from this allocator",
                );
            }
            // SAFETY: the caller frees a block this allocator returned for this layout.
            return unsafe { small_free(ptr) };
        }
        // SAFETY: as above.
        unsafe { dealloc_other(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        if normal_mode() {
            let old_small = is_small(layout.size(), align);
            let new_small = is_small(new_size, align);
            if old_small && new_small {
                if class_of(layout.size()) == class_of(new_size) {
                    return ptr;
                }
                let (q, _) = small_alloc(class_of(new_size));
                if !q.is_null() {
                    // SAFETY: both blocks are live and distinct; ptr is freed once, here.
                    unsafe {
                        core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                        small_free(ptr);
                    }
                }
                return q;
            }
            if !old_small && !new_small && align <= crate::config::ALIGNMENT {
                // SAFETY: ptr is a live large block of alignment <= 16.
                return unsafe { large::realloc(ptr, new_size) };
            }
        }
        // SAFETY: the caller guarantees new_size forms a valid layout with align.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: new_layout has non-zero size (GlobalAlloc contract).
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct; copy the smaller size.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        q
    }
}

#[inline(never)]
fn alloc_other(layout: Layout, zero: bool) -> *mut u8 {
    if normal_mode() {
        raw_alloc(layout.size(), layout.align(), zero)
    } else {
        debug::alloc(layout.size(), layout.align(), zero)
    }
}

/// # Safety
/// `ptr` was returned by `alloc_other` for `layout`.
#[inline(never)]
unsafe fn dealloc_other(ptr: *mut u8, layout: Layout) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if normal_mode() {
            if is_small(layout.size(), layout.align()) {
                small_free(ptr)
            } else {
                invariant!(!owns(ptr), "large dealloc of a pool block");
                large::free(ptr)
            }
        } else {
            debug::free(ptr, Some((layout.size(), layout.align())))
        }
    }
}

pub(crate) use fatal::{fatal, fatal_fmt};
