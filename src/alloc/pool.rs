//! Pools: one 4 KiB page of blocks of one size class, with its header at the start.
//!
//! ```text
//!  pool (POOL_SIZE, aligned): [ Pool header | block 0 | block 1 | ... | block n-1 | waste ]
//!                                            ^ POOL_HEADER_SIZE      ^ bump: blocks from here
//!                                                                      on were never handed out
//! ```
//!
//! States (CPython's, from the owner heap's point of view):
//! - **used**: some blocks in use, some free; on the heap's `avail` list for its class.
//! - **full**: no free block (free list empty, bump at the limit, no remote frees); on no list
//!   but the heap's `owned` list (as in CPython, where full pools are on no list), remote word
//!   `FULL`, so the first remote free tells the owner. It returns to the used state when it has
//!   `REVIVE_FREE_BLOCKS` free blocks.
//! - **empty**: no block in use; given back to its arena (or kept as the last pool of its class).
//!
//! Blocks are carved lazily: `bump` moves forward one block at a time, so memory of a fresh
//! pool is never touched before a block there is handed out, and blocks at `bump..` of a pool
//! that came fresh from the OS are known to be zero (`fresh`).
//!
//! Invariant (checked by `pool_is_valid`), owner's view:
//!   `nused + |free list| == (bump - POOL_HEADER_SIZE) / block_size`
//! where `nused` counts blocks handed out and not yet freed locally (blocks waiting on the
//! remote list still count as used until the owner takes them).

use crate::config::{ALIGNMENT, ALIGNMENT_SHIFT, POOL_HEADER_SIZE, POOL_SIZE};

const _: () = assert!(POOL_SIZE / ALIGNMENT <= 256);
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::heap::ThreadHeap;
use super::remote::{Block, RemoteWord};
use super::size_class::{block_size, blocks_per_pool, pool_limit};

/// The header at the start of every pool in use. Fields other than the atomics are touched only
/// by the owner heap (or, for a pool not owned by any heap, by whoever holds the global lock).
#[repr(C)]
pub struct Pool {
    pub free: *mut Block,             // local free list (owner only)
    pub nused: AtomicU32,             // blocks out (owner writes; statistics read)
    pub bump: AtomicU32,              // offset of the first never-handed-out block (owner writes)
    pub block_size: AtomicU32,        // 0 while the pool is not in use (stats and free read)
    pub class: u8,                    // size class index
    pub in_full: bool,                // full: off the avail list (or on abandoned[1])
    pub fresh: bool,                  // blocks at `bump..` are known zero
    pub kept: bool,                   // empty, left on avail (counted in heap.nkept)
    pub owner: AtomicPtr<ThreadHeap>, // owning heap; null when abandoned or not in use
    pub remote: RemoteWord,           // remote frees + ownership state (see remote.rs)
    pub next: *mut Pool,              // heap avail list / arena free pools / abandoned list / cache
    pub prev: *mut Pool,              // heap avail list / abandoned list
    pub owned_next: *mut Pool,        // owner heap's list of all its pools
    pub owned_prev: *mut Pool,
}

const _: () = assert!(core::mem::size_of::<Pool>() <= POOL_HEADER_SIZE);

/// The pool holding address `p`.
#[inline(always)]
pub fn pool_of(p: *const u8) -> *mut Pool {
    (p as usize & !(POOL_SIZE - 1)) as *mut Pool
}

impl Pool {
    /// Write a fresh header for `class` owned by `owner`.
    ///
    /// # Safety
    /// `pool` is a pool-aligned page of one of our arenas that nobody else uses now.
    pub unsafe fn init(pool: *mut Pool, class: usize, owner: *mut ThreadHeap, fresh: bool) {
        // SAFETY: the caller gives us exclusive use of the page.
        unsafe {
            ptr::write(
                pool,
                Pool {
                    free: ptr::null_mut(),
                    nused: AtomicU32::new(0),
                    bump: AtomicU32::new(POOL_HEADER_SIZE as u32),
                    block_size: AtomicU32::new(block_size(class) as u32),
                    class: class as u8,
                    in_full: false,
                    fresh,
                    kept: false,
                    owner: AtomicPtr::new(owner),
                    remote: RemoteWord::new(),
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    owned_next: ptr::null_mut(),
                    owned_prev: ptr::null_mut(),
                },
            )
        }
    }

    /// Reuse an empty pool that a heap kept, for `class` (maybe another one).
    pub fn reinit(&mut self, class: usize, owner: *mut ThreadHeap) {
        invariant!(
            self.used() == 0 && self.remote.is_empty(),
            "reusing a pool in use"
        );
        self.free = ptr::null_mut();
        self.bump.store(POOL_HEADER_SIZE as u32, Ordering::Relaxed);
        self.block_size
            .store(block_size(class) as u32, Ordering::Release);
        self.class = class as u8;
        self.in_full = false;
        self.fresh = false;
        self.kept = false;
        self.owner.store(owner, Ordering::Release);
        self.remote.reset();
        self.next = ptr::null_mut();
        self.prev = ptr::null_mut();
    }

    /// Forget the free list of an empty pool so it carves blocks in ascending order again.
    pub fn reset_empty(&mut self) {
        invariant!(self.used() == 0, "resetting a pool in use");
        self.free = ptr::null_mut();
        self.bump.store(POOL_HEADER_SIZE as u32, Ordering::Relaxed);
        self.fresh = false;
    }

    /// Mark a pool as not in use before it goes back to its arena.
    pub fn retire(&mut self) {
        invariant!(
            self.nused.load(Ordering::Relaxed) == 0,
            "retiring a pool in use"
        );
        invariant!(self.remote.is_empty(), "retiring a pool with remote frees");
        self.block_size.store(0, Ordering::Release);
        self.owner.store(ptr::null_mut(), Ordering::Release);
        self.free = ptr::null_mut();
    }

    #[inline(always)]
    pub fn used(&self) -> u32 {
        self.nused.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub fn set_used(&self, n: u32) {
        self.nused.store(n, Ordering::Relaxed)
    }

    /// Hand out one block, from the free list or by carving; null when the pool has none.
    /// The bool says whether the block is known to be zero.
    ///
    /// # Safety
    /// The caller owns the pool.
    #[inline(always)]
    pub unsafe fn take_block(&mut self) -> (*mut u8, bool) {
        let b = self.free;
        if !b.is_null() {
            // SAFETY: blocks on the local free list are ours and hold a valid link.
            self.free = unsafe { (*b).next };
            self.set_used(self.used() + 1);
            return (b.cast(), false);
        }
        let class = self.class as usize;
        let bump = self.bump.load(Ordering::Relaxed) as usize;
        if bump < pool_limit(class) {
            self.bump
                .store((bump + block_size(class)) as u32, Ordering::Relaxed);
            self.set_used(self.used() + 1);
            return ((self as *mut Pool as usize + bump) as *mut u8, self.fresh);
        }
        (ptr::null_mut(), false)
    }

    /// Put a block back on the local free list; returns the new count of used blocks.
    ///
    /// # Safety
    /// The caller owns the pool and `b` is a block of it that is in use.
    #[inline(always)]
    pub unsafe fn put_block(&mut self, b: *mut u8) -> u32 {
        let b = b.cast::<Block>();
        if b == self.free {
            double_free(b.cast());
        }
        // SAFETY: b is a block of this pool, so it can hold a link.
        unsafe { (*b).next = self.free };
        self.free = b;
        let n = self.used().wrapping_sub(1);
        invariant!(
            n < blocks_per_pool(self.class as usize) as u32,
            "used count underflow"
        );
        self.set_used(n);
        n
    }

    /// Take every remote free onto the local free list. Returns how many were taken.
    ///
    /// # Safety
    /// The caller owns the pool.
    pub unsafe fn collect_remote(&mut self) -> u32 {
        // SAFETY: forwarded; the caller owns the pool.
        unsafe { self.adopt_list(self.remote.take_all()) }
    }

    /// Splice a list of this pool's blocks (taken from the remote word) onto the free list.
    ///
    /// # Safety
    /// The caller owns the pool; `list` holds blocks of this pool counted in `nused`.
    pub unsafe fn adopt_list(&mut self, list: *mut Block) -> u32 {
        let mut n = 0u32;
        let mut p = list;
        while !p.is_null() {
            // SAFETY: each block on a taken remote list belongs to this pool.
            let next = unsafe { (*p).next };
            invariant!(
                core::ptr::eq(pool_of(p.cast()), self),
                "foreign block on remote list"
            );
            // SAFETY: as above.
            unsafe { (*p).next = self.free };
            self.free = p;
            n += 1;
            p = next;
        }
        self.set_used(self.used() - n);
        n
    }

    /// True when nothing is free here right now (ignoring remote frees).
    #[inline]
    pub fn is_exhausted(&self) -> bool {
        self.free.is_null()
            && self.bump.load(Ordering::Relaxed) as usize >= pool_limit(self.class as usize)
    }

    /// Is `p` the start of a block this pool has handed out at some point? No division: the
    /// block index is found by multiplying with a 16-bit reciprocal (`exact_div`).
    #[inline]
    pub fn is_block_start(&self, p: *const u8) -> bool {
        let steps = (self.block_size.load(Ordering::Acquire) >> ALIGNMENT_SHIFT) as usize;
        let off = (p as usize).wrapping_sub(self as *const Pool as usize);
        if steps == 0
            || off < POOL_HEADER_SIZE
            || off >= self.bump.load(Ordering::Relaxed) as usize
            || off % ALIGNMENT != 0
        {
            return false;
        }
        exact_div((off - POOL_HEADER_SIZE) >> ALIGNMENT_SHIFT, steps).is_some()
    }
}

/// Check the pool invariant (see the module docs). O(blocks). Returns a description of the first
/// violation found.
///
/// # Safety
/// The caller owns the pool.
pub unsafe fn pool_is_valid(pool: *const Pool) -> Result<(), &'static str> {
    // SAFETY: the caller owns the pool, so its header is stable.
    let p = unsafe { &*pool };
    let class = p.class as usize;
    if p.block_size.load(Ordering::Relaxed) as usize != block_size(class) {
        return Err("block size does not match class");
    }
    let bump = p.bump.load(Ordering::Relaxed) as usize;
    if bump < POOL_HEADER_SIZE
        || bump > pool_limit(class)
        || (bump - POOL_HEADER_SIZE) % block_size(class) != 0
    {
        return Err("bump offset out of range");
    }
    let carved = (bump - POOL_HEADER_SIZE) / block_size(class);
    let mut nfree = 0usize;
    let mut b = p.free;
    while !b.is_null() {
        if !p.is_block_start(b.cast()) {
            return Err("free list holds a pointer that is not a carved block");
        }
        nfree += 1;
        if nfree > carved {
            return Err("free list longer than carved blocks (cycle?)");
        }
        // SAFETY: b is a carved block of this pool.
        b = unsafe { (*b).next };
    }
    if p.used() as usize + nfree != carved {
        return Err("nused + |free| != carved");
    }
    Ok(())
}

/// `x / d` when `d` divides `x`, for `x < 256` and `1 <= d <= 32`, by a multiply with
/// `floor(2^16 / d) + 1`: the error is below `x / 2^16 < 1/256 < 1/d`, so the floor is exact.
#[inline]
pub fn exact_div(x: usize, d: usize) -> Option<usize> {
    const RECIP: [u32; 33] = {
        let mut t = [0u32; 33];
        let mut d = 1;
        while d <= 32 {
            t[d] = (1 << 16) / d as u32 + 1;
            d += 1;
        }
        t
    };
    let q = (x as u32 * RECIP[d]) >> 16;
    if q as usize * d == x {
        Some(q as usize)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn double_free(p: *const u8) -> ! {
    super::fatal(
        "double free",
        p,
        "the block is already at the head of its pool's free list",
    )
}
