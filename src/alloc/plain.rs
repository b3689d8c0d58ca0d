//! The plain backend: requests of at most 512 bytes with alignment at most 16 come from the
//! pools through the calling thread's heap, requests of 513..4096 bytes from medium runs (the
//! same code: a run is a pool of a medium class), the rest from the system allocator
//! (`large.rs`).
//!
//! ```text
//!  small_alloc: TLS heap -> avail.by_step(step_of(size)) -> pool.take_block (free list pop, or bump)
//!               | nothing there: thread::alloc_slow -> heap::alloc     (no lock, no atomic RMW)
//!  small_free:  pool_of(b).owner == this heap? -> pool.put_block
//!               |   revived a full pool / emptied one not current: heap::free_local_slow
//!               | no: thread::free_remote (remote.rs's handoff, adoption of abandoned pools)
//! ```
//!
//! The fast paths (`small_alloc`, `small_free`) are inlined into the entry points of
//! `dispatch.rs`; everything else here is reached through them or through `Backend`.
//!
//! Invariants:
//! - A block is small exactly when the address map says its address is in one of our arenas
//!   (`owns`), and then it starts a block its pool handed out (`checked` on every free that did
//!   not come with a layout).
//! - The fast paths touch only the calling thread's heap and the pools it owns.

use core::ptr;
use core::sync::atomic::Ordering;

use crate::config::{ALIGNMENT, ARENA_SIZE, MEDIUM_MAX, POOL_SIZE, SMALL_MAX};

use super::backend::Backend;
use super::harden;
use super::heap;
use super::large;
use super::pool::{Pool, header_of, pool_of, pool_of_any, run_of, unit_header, unit_index};
#[cfg(feature = "trace")]
use super::sampler;
use super::size_class::{any_class_of, block_size, class_of_step, is_medium, is_small, step_of};
use super::thread;
use super::{addr_map, fatal};

/// The plain backend (see the module docs).
pub(crate) struct Plain;

/// True when a request is served from the pools: small (pools) or medium (runs).
#[inline(always)]
pub const fn is_pooled(size: usize, align: usize) -> bool {
    // is_small || is_medium, as one compare per argument.
    size <= MEDIUM_MAX && align <= ALIGNMENT
}

/// Is `ptr` inside one of our arenas? O(1), lock-free, never true for memory we do not hold.
#[inline(always)]
pub fn owns(ptr: *const u8) -> bool {
    addr_map::kind(ptr as usize) != addr_map::KIND_NONE
}

/// The header of the pool or run holding `p`, a block of a pooled request of `size` bytes
/// (`size <= MEDIUM_MAX`), without a branch (`unit_index`).
#[inline(always)]
pub fn pool_of_size(p: *const u8, size: usize) -> *mut Pool {
    unit_header(p as usize, usize::from(size > SMALL_MAX).wrapping_neg())
}

/// Allocate a small block of `class`. The bool says it is known to be zero. `BY_ADDRESS`: the
/// caller frees it by its address alone (C's `free`), so while a fork in progress on another
/// thread holds a lock the slow path needs, the block may come from the system allocator
/// instead of waiting (`lock.rs`); a Rust caller frees by layout, and waits.
#[cfg(test)]
#[inline(always)]
pub fn small_alloc<const BY_ADDRESS: bool>(class: usize) -> (*mut u8, bool) {
    small_alloc_step::<BY_ADDRESS>(
        *super::size_class::steps_of_class(class).start(),
        block_size(class),
    )
}

/// `small_alloc` by request step (`size_class::step_of`) of a request of `size` bytes: the
/// heap's current pool for the step, no class computed on the fast path. With the feature
/// `trace`, the step is counted down for the tracer's sampled mode (`sampler.rs`).
#[inline(always)]
pub fn small_alloc_step<const BY_ADDRESS: bool>(step: usize, size: usize) -> (*mut u8, bool) {
    let _ = size;
    let h = thread::current();
    if h.is_null() {
        return small_alloc_slow::<BY_ADDRESS>(class_of_step(step));
    }
    // SAFETY: h is the calling thread's live heap.
    unsafe {
        // A tail call: nothing here lives across it, so the fast path saves no register for it.
        #[cfg(feature = "trace")]
        if (*h).sample.count(step) {
            return sample_pooled::<BY_ADDRESS>(h, step, size);
        }
        take_from::<BY_ADDRESS>(h, step)
    }
}

/// The heap's current pool for `step`, else the slow path.
///
/// # Safety
/// `h` is the calling thread's live heap.
#[inline(always)]
unsafe fn take_from<const BY_ADDRESS: bool>(
    h: *mut heap::ThreadHeap,
    step: usize,
) -> (*mut u8, bool) {
    // SAFETY: per the contract; pools on h's lists are owned by it.
    unsafe {
        let p = (*h).avail.by_step(step);
        if !p.is_null() {
            let got = (*p).take_block();
            if !got.0.is_null() {
                return got;
            }
        }
    }
    small_alloc_slow::<BY_ADDRESS>(class_of_step(step))
}

/// The countdown ran out (or looks at a new session): sample this request from the SAMPLED
/// heap and record it, or allocate it as usual.
///
/// # Safety
/// `h` is the calling thread's live heap.
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
unsafe fn sample_pooled<const BY_ADDRESS: bool>(
    h: *mut heap::ThreadHeap,
    step: usize,
    size: usize,
) -> (*mut u8, bool) {
    // SAFETY: per the contract, this thread owns h.
    if unsafe { (*h).sample.crossed(step) } {
        if let Some(got) = thread::sampled_alloc(class_of_step(step)) {
            sampler::record(got.0, size);
            return got;
        }
    }
    // SAFETY: as above.
    unsafe { take_from::<BY_ADDRESS>(h, step) }
}

/// Whether a request of `size` bytes that does not pass the pool fast path (a large block, a
/// realloc in place) is sampled, counted on the calling thread's heap.
#[cfg(feature = "trace")]
fn sample_other(size: usize) -> bool {
    let h = thread::current_or_new();
    let steps = size.div_ceil(ALIGNMENT);
    // SAFETY: h, when not null, is the calling thread's own heap.
    !h.is_null() && unsafe { (*h).sample.count(steps) && (*h).sample.crossed(steps) }
}

/// A large block while sampling (`Plain::alloc`): allocated as usual, recorded if sampled.
#[cfg(feature = "trace")]
#[inline(never)]
fn large_alloc_sampled(size: usize, align: usize, zero: bool) -> *mut u8 {
    let p = large::alloc(size, align, zero);
    if !p.is_null() && sample_other(size) {
        sampler::record(p, size);
    }
    p
}

/// `Plain::realloc` while sampling, for a realloc that would not move through `alloc` and
/// `free`: in place (`in_place`, within its class, `old_size` the block's size) or glibc's
/// realloc. It is a new allocation of `new_size` for the tracer (as tracemalloc counts it). A
/// block that is not traced stays where it is unless this request is sampled; a traced one
/// moves (alloc, copy, free: the free forgets its trace before the block goes back), as does a
/// sampled in-place one, into the SAMPLED heap.
///
/// # Safety
/// As `Backend::realloc`; `old_size` and `in_place` as `Plain::realloc` found them.
#[cfg(feature = "trace")]
#[inline(never)]
unsafe fn realloc_sampled(
    p: *mut u8,
    layout: Option<(usize, usize)>,
    new_size: usize,
    old_size: usize,
    in_place: bool,
) -> *mut u8 {
    if sampler::maybe_traced(p) {
        // Moved: Plain::alloc counts and samples the new block, the free forgets the old trace.
        // SAFETY: per the contract.
        return unsafe { super::backend::realloc_by_moving(&Plain, p, layout, new_size) };
    }
    if !in_place {
        // SAFETY: per the contract, a live large block of alignment <= 16.
        let q = unsafe { large::realloc(p, new_size) };
        if !q.is_null() && sample_other(new_size) {
            sampler::record(q, new_size);
        }
        return q;
    }
    if !sample_other(new_size) {
        return p;
    }
    let Some((q, _)) = thread::sampled_alloc(any_class_of(new_size)) else {
        return p; // a fork in progress holds SAMPLED: unsampled, in place
    };
    // SAFETY: p and q are distinct live blocks of at least min(old, new) bytes; p is given up
    // (it is not traced, so nothing is forgotten).
    unsafe {
        core::ptr::copy_nonoverlapping(p, q, old_size.min(new_size));
        Plain.free(p, layout);
    }
    sampler::record(q, new_size);
    q
}

#[cold]
#[inline(never)]
fn small_alloc_slow<const BY_ADDRESS: bool>(class: usize) -> (*mut u8, bool) {
    loop {
        if let Some(got) = thread::alloc_slow(class) {
            return got;
        }
        if BY_ADDRESS {
            // Freed by address, so `free` finds it outside our arenas and gives it to glibc.
            return (large::alloc(block_size(class), ALIGNMENT, false), false);
        }
        thread::wait_for_fork();
    }
}

/// A block of `size` bytes from the pools (small or medium: `size <= MEDIUM_MAX`), zeroed if
/// asked (skipped when the block is known zero).
#[inline(always)]
pub fn small_alloc_sized<const BY_ADDRESS: bool>(size: usize, zero: bool) -> *mut u8 {
    let (b, known_zero) = small_alloc_step::<BY_ADDRESS>(step_of(size), size);
    if zero && !known_zero && !b.is_null() {
        // SAFETY: b is a fresh block of at least `size` bytes.
        unsafe { b.write_bytes(0, size) };
    }
    b
}

/// Free a small block.
///
/// # Safety
/// `b` is a live block of a small class handed out by `small_alloc`.
#[inline(always)]
pub unsafe fn small_free(b: *mut u8) {
    // SAFETY: forwarded; a small block's header is its own pool's.
    unsafe { pool_free(b, pool_of(b)) }
}

/// Free a medium block.
///
/// # Safety
/// `b` is a live block of a medium class handed out by `small_alloc`.
#[inline(always)]
pub unsafe fn medium_free(b: *mut u8) {
    // SAFETY: forwarded; a medium block's header is its run's.
    unsafe { pool_free(b, run_of(b)) }
}

/// Free a pool block whose request size the caller knows (Rust's `dealloc`): small or medium
/// without a branch (`pool_of_size`).
///
/// # Safety
/// `b` is a live block handed out by `small_alloc_sized(size, _)`, `size <= MEDIUM_MAX`.
#[inline(always)]
pub unsafe fn sized_free(b: *mut u8, size: usize) {
    // SAFETY: forwarded; the header of a pooled block of that size is this one.
    unsafe { pool_free(b, pool_of_size(b, size)) }
}

/// Free `b` into `p`, the header of its pool or run.
///
/// # Safety
/// `b` is a live block handed out by `small_alloc`, and `p` its pool's header.
#[inline(always)]
pub unsafe fn pool_free(b: *mut u8, p: *mut Pool) {
    // The feature `secure` build: every freed pool block is cleared (hardened mode is then the
    // only pool backend, `dispatch::plain_selected`); compiled out otherwise.
    if cfg!(feature = "secure") {
        // SAFETY: per the contract, b is a handed-out block of p.
        unsafe { clear_block(b, p) };
    }
    let k = harden::key();
    let h = thread::current();
    // SAFETY: b is live, so its pool header is live. The owner check is sound: only this thread
    // stores its own heap into a pool's owner, and only this thread clears it.
    unsafe {
        if (*p).owner.load(Ordering::Relaxed) == heap::ThreadHeap::tag(h) && !h.is_null() {
            // A second free of b aborts here (harden.rs), whatever came between.
            harden::mark_local(b, k);
            let n = (*p).put_block(b, k);
            // Slow only to revive a full pool or to give back an empty one that is not the
            // class's current pool (a hot alloc/free pair stays on this path).
            if (*p).in_full || (n == 0 && (*h).avail.head((*p).class()) != p) {
                heap::free_local_slow(h, p, n);
            }
        } else {
            // Marked once here, not in free_remote, which a deferred block goes through again.
            harden::mark_remote(b, k);
            thread::free_remote(b);
        }
    }
}

/// Whether `p` starts a block of our pools that is free now (`Backend::looks_freed`).
pub fn looks_freed(p: *const u8) -> bool {
    // SAFETY: p is inside a mapped arena (owns), so its pool header is readable; a block start
    // of a pool in use is ours to read.
    owns(p) && unsafe { (*pool_of_any(p)).is_block_start(p) && harden::is_freed(p as *mut u8) }
}

/// Hardened mode's free (`secure.rs`, and every pool free of the feature `secure` build): zero
/// `b` past its two words (which the free writes), so freed data never outlives the free and a
/// read after free reads zeros. Blocks up to 128 bytes are cleared in line by two overlapping
/// stores of 16, 32 or 64 bytes (memset's own trick for short lengths): no loop, which the
/// compiler turned into a call to `memset` that cost more than the stores.
///
/// A block freed twice is cleared too before the plain free reports it: its two words, which
/// hold the marks the report relies on, are not touched, and the rest of a free block holds
/// nothing of the allocator's.
///
/// # Safety
/// `p` is the header of the pool or run holding `b`, a block it handed out.
#[inline(always)]
pub(crate) unsafe fn clear_block(b: *mut u8, p: *mut Pool) {
    #[inline(always)]
    unsafe fn zero<const N: usize>(at: *mut u8) {
        // SAFETY: the caller clears bytes inside the block, at 16-aligned offsets.
        unsafe { at.cast::<[u64; N]>().write_unaligned([0; N]) }
    }
    // SAFETY: per the contract: a handed-out block of at least 16 bytes, a multiple of 16,
    // 16-aligned, ours to write; every store below lies in [b + 16, b + bs).
    unsafe {
        let bs = block_size((*p).class());
        let len = bs - 16;
        if len == 0 {
        } else if len <= 32 {
            zero::<2>(b.add(16));
            zero::<2>(b.add(bs - 16));
        } else if len <= 64 {
            zero::<4>(b.add(16));
            zero::<4>(b.add(bs - 32));
        } else if len <= 112 {
            zero::<8>(b.add(16));
            zero::<8>(b.add(bs - 64));
        } else {
            b.add(16).write_bytes(0, len);
        }
    }
}

/// Free a block of the system allocator (one the address map says is not ours).
///
/// # Safety
/// `p` is a live block of `large.rs`, not used again.
#[inline(never)]
pub unsafe fn free_large(p: *mut u8) {
    // SAFETY: per the contract.
    unsafe { large::free(p) }
}

/// The header of the pool or run of `p` after checking that `p` starts a block it has handed
/// out (aborting otherwise), or null when `p` is not in one of our arenas (a block of the system
/// allocator). One read of the kind map: the header and `p`'s offset in its pool or run come
/// from the address and the kind with masks, so the check's only other loads are the header's
/// class and bump and the class's divisibility constant, not first the header of `p`'s own
/// pool to learn whether it is a run's tail (with the kind map, C's `free` went from 84
/// instructions to 80).
#[inline(always)]
pub fn checked_pool(p: *mut u8) -> *mut Pool {
    let kind = addr_map::kind(p as usize);
    if kind == addr_map::KIND_NONE {
        return ptr::null_mut();
    }
    let (pool, off) = unit_of(p, kind);
    // SAFETY: p's arena is mapped (the kind map says so), so its header page is readable.
    if !unsafe { (*pool).starts_block_at(off) } {
        invalid_pool_free(p);
    }
    // SAFETY: as above.
    debug_assert!(core::ptr::eq(pool, unsafe { pool_of_any(p) }));
    pool
}

/// The header of the pool or run holding `p`, in an arena of `kind` (`KIND_POOLS` or
/// `KIND_RUNS`), and `p`'s offset from that pool's or run's first byte: wrapped, so huge below
/// it (the header page of a run arena, which `unit_index` gives to run 1).
#[inline(always)]
pub(crate) fn unit_of(p: *const u8, kind: u8) -> (*mut Pool, usize) {
    debug_assert!(kind == addr_map::KIND_POOLS || kind == addr_map::KIND_RUNS);
    let a = p as usize;
    let arena = a & !(ARENA_SIZE - 1);
    let index = unit_index(a, usize::from(kind == addr_map::KIND_RUNS).wrapping_neg());
    (
        header_of(arena, index),
        a.wrapping_sub(arena + index * POOL_SIZE),
    )
}

#[cold]
#[inline(never)]
fn invalid_pool_free(p: *mut u8) -> ! {
    fatal::fatal(
        "invalid free",
        p,
        "the pointer is inside an arena but is not the start of a block in use \
         (interior pointer, or a block whose pool is not in use)",
    )
}

impl Backend for Plain {
    #[inline]
    fn alloc(&self, size: usize, align: usize, zero: bool, by_address: bool) -> *mut u8 {
        if is_pooled(size, align) {
            if by_address {
                small_alloc_sized::<true>(size, zero)
            } else {
                small_alloc_sized::<false>(size, zero)
            }
        } else {
            #[cfg(feature = "trace")]
            if sampler::active() {
                return large_alloc_sampled(size, align, zero);
            }
            large::alloc(size, align, zero)
        }
    }

    #[inline]
    unsafe fn free(&self, p: *mut u8, layout: Option<(usize, usize)>) {
        // SAFETY: per the contract.
        unsafe {
            match layout {
                Some((size, align)) if is_small(size, align) => small_free(p),
                Some((size, align)) if is_medium(size, align) => medium_free(p),
                Some(_) => {
                    invariant!(!owns(p), "large free of a pool block");
                    large::free(p)
                }
                None => {
                    let pool = checked_pool(p);
                    if pool.is_null() {
                        large::free(p)
                    } else {
                        pool_free(p, pool)
                    }
                }
            }
        }
    }

    fn looks_freed(&self, p: *const u8) -> bool {
        looks_freed(p)
    }

    unsafe fn usable_size(&self, p: *mut u8) -> usize {
        let pool = checked_pool(p);
        if pool.is_null() {
            // SAFETY: a live system-allocator block.
            unsafe { large::usable_size(p) }
        } else {
            // SAFETY: checked: p starts a handed-out block, so its pool header is live.
            block_size(unsafe { (*pool).class() })
        }
    }

    /// In place within a size class, and in glibc for blocks that stay large; moved otherwise.
    #[inline]
    unsafe fn realloc(
        &self,
        p: *mut u8,
        layout: Option<(usize, usize)>,
        new_size: usize,
    ) -> *mut u8 {
        let (old_small, old_size, align) = match layout {
            Some((size, align)) => (is_pooled(size, align), size, align),
            // SAFETY: p is a live block of ours.
            None => (owns(p), unsafe { self.usable_size(p) }, ALIGNMENT),
        };
        let new_small = is_pooled(new_size, align);
        // While the tracer samples on the fast paths, a realloc that does not move through
        // `alloc` and `free` (which count, sample and forget) is a new allocation for it too.
        if old_small && new_small && any_class_of(old_size) == any_class_of(new_size) {
            #[cfg(feature = "trace")]
            if sampler::active() {
                // SAFETY: forwarded; in place, within the class.
                return unsafe { realloc_sampled(p, layout, new_size, old_size, true) };
            }
            return p;
        }
        if !old_small && !new_small && align <= ALIGNMENT {
            #[cfg(feature = "trace")]
            if sampler::active() {
                // SAFETY: forwarded; a large block of alignment <= 16.
                return unsafe { realloc_sampled(p, layout, new_size, old_size, false) };
            }
            // SAFETY: p is a live large block of alignment <= 16.
            return unsafe { large::realloc(p, new_size) };
        }
        // Moved: `alloc` counts and samples the new block, `free` forgets the old one's trace.
        // SAFETY: per the contract.
        unsafe { super::backend::realloc_by_moving(self, p, layout, new_size) }
    }
}
