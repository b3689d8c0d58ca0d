//! The plain backend: requests of at most 512 bytes with alignment at most 16 come from the
//! pools through the calling thread's heap, requests of 513..2048 bytes from medium runs (the
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

use core::sync::atomic::Ordering;

use crate::config::{ALIGNMENT, MEDIUM_MAX};

use super::backend::Backend;
use super::harden;
use super::heap;
use super::large;
use super::pool::{Pool, pool_of, pool_of_any, pool_of_size, run_of};
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
    !addr_map::lookup(ptr as usize).is_null()
}

/// Allocate a small block of `class`. The bool says it is known to be zero. `BY_ADDRESS`: the
/// caller frees it by its address alone (C's `free`), so while a fork in progress on another
/// thread holds a lock the slow path needs, the block may come from the system allocator
/// instead of waiting (`lock.rs`); a Rust caller frees by layout, and waits.
#[cfg(test)]
#[inline(always)]
pub fn small_alloc<const BY_ADDRESS: bool>(class: usize) -> (*mut u8, bool) {
    small_alloc_step::<BY_ADDRESS>(*super::size_class::steps_of_class(class).start())
}

/// `small_alloc` by request step (`size_class::step_of`): the heap's current pool for the step,
/// no class computed on the fast path.
#[inline(always)]
pub fn small_alloc_step<const BY_ADDRESS: bool>(step: usize) -> (*mut u8, bool) {
    let h = thread::current();
    if !h.is_null() {
        // SAFETY: h is the calling thread's live heap; pools on its lists are owned by it.
        unsafe {
            let p = (*h).avail.by_step(step);
            if !p.is_null() {
                let got = (*p).take_block();
                if !got.0.is_null() {
                    return got;
                }
            }
        }
    }
    small_alloc_slow::<BY_ADDRESS>(class_of_step(step))
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
    let (b, known_zero) = small_alloc_step::<BY_ADDRESS>(step_of(size));
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
/// without a branch (`pool::pool_of_size`).
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

/// Hardened mode (`secure.rs`): zero a pool block being freed (past its first two words,
/// which the free writes), so freed data never outlives the free and a read after free reads
/// zeros. Anything else (a large block, a pointer the free will reject) is left alone, and so
/// is a block already marked free: the plain free reports the double free next.
///
/// # Safety
/// `b` is about to be passed to `Plain::free`.
pub(crate) unsafe fn clear_freed(b: *mut u8) {
    if !owns(b) {
        return;
    }
    // SAFETY: b is inside a mapped arena (owns), so its pool header is readable.
    unsafe { clear_in(b, pool_of_any(b)) }
}

/// `clear_freed` for a block whose Rust layout says it is a pool block of `size` and `align`
/// (its pool is then `pool_of` or `run_of` of it, no map lookup).
///
/// # Safety
/// `b` is a live pool block allocated with that layout, about to be passed to `Plain::free`.
#[inline]
pub(crate) unsafe fn clear_pooled(b: *mut u8, size: usize, align: usize) {
    let p = if is_small(size, align) {
        pool_of(b)
    } else {
        run_of(b)
    };
    // SAFETY: per the contract: a live block of that pool (Rust's layout guarantees it), at
    // least 16 bytes.
    unsafe {
        if !harden::is_freed(b) {
            let bs = block_size((*p).class());
            b.add(16).write_bytes(0, bs - 16);
        }
    }
}

/// Zero `b` past its two words unless it is marked free already (see `clear_freed`).
///
/// # Safety
/// `p` is the header of the pool or run holding `b`, inside a mapped arena.
#[cold]
#[inline(never)]
pub(crate) unsafe fn clear_in(b: *mut u8, p: *mut Pool) {
    // SAFETY: per the contract; a block start of a pool in use is ours to write, and a block
    // is at least 16 bytes.
    unsafe {
        if (*p).is_block_start(b) && !harden::is_freed(b) {
            let bs = block_size((*p).class());
            b.add(16).write_bytes(0, bs - 16);
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

/// The header of the pool or run of `p`, inside one of our arenas, after checking that `p`
/// starts a block it has handed out (aborting otherwise).
#[inline(always)]
pub fn checked_pool(p: *mut u8) -> *mut Pool {
    // SAFETY: p is inside a mapped arena, so its header page is readable.
    unsafe {
        let pool = pool_of_any(p);
        if !(*pool).is_block_start(p) {
            invalid_pool_free(p);
        }
        pool
    }
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
                None if owns(p) => pool_free(p, checked_pool(p)),
                None => large::free(p),
            }
        }
    }

    fn looks_freed(&self, p: *const u8) -> bool {
        looks_freed(p)
    }

    unsafe fn usable_size(&self, p: *mut u8) -> usize {
        if owns(p) {
            // SAFETY: checked: p starts a handed-out block, so its pool header is live.
            block_size(unsafe { (*checked_pool(p)).class() })
        } else {
            // SAFETY: a live system-allocator block.
            unsafe { large::usable_size(p) }
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
        if old_small && new_small && any_class_of(old_size) == any_class_of(new_size) {
            return p;
        }
        if !old_small && !new_small && align <= ALIGNMENT {
            // SAFETY: p is a live large block of alignment <= 16.
            return unsafe { large::realloc(p, new_size) };
        }
        // SAFETY: per the contract.
        unsafe { super::backend::realloc_by_moving(self, p, layout, new_size) }
    }
}
