//! Pools: `POOL_SIZE` bytes (one 4 KiB page, or 16 KiB with `large-pools`) of blocks of one size
//! class, described by a 64-byte header in its arena's header pool (see `config`).
//!
//! ```text
//!  arena: [ header page: h0 (unused) | h1 | h2 | ... | h63 ] [ pool 1 ] [ pool 2 ] ... [ pool 63 ]
//!  pool (POOL_SIZE, aligned): [ block 0 | block 1 | ... | block n-1 | waste ]
//!                                                  ^ bump: blocks from here on were never
//!                                                    handed out
//! ```
//!
//! `pool_of(block)` and `Pool::base()` convert between a block and its header with shifts and
//! masks: header `i` sits at `arena + 64 i`, pool `i` at `arena + POOL_SIZE i`. A medium *run*
//! (`RUN_POOLS` consecutive pools of an arena of runs, `config::RUN_SIZE` bytes) is one pool
//! for everything here: its first pool's header describes it (`run_of`), its class is medium
//! and its blocks, bump and limits span the whole run; the other pools' headers say
//! `CLASS_RUN_TAIL`, which `pool_of_any` follows back to the first.
//!
//! States (CPython's, from the owner heap's point of view):
//! - **used**: some blocks in use, some free; on the heap's `avail` list for its class.
//! - **full**: no free block (free list empty, bump at the limit, no remote frees); on no list
//!   but the heap's `owned` list (as in CPython, where full pools are on no list), remote word
//!   `FULL`, so the first remote free tells the owner. It returns to the used state when it has
//!   `REVIVE_FREE_BLOCKS` free blocks. (A pool's word starts `FULL` when the pool is handed to a
//!   heap, so filling it needs no atomic read-modify-write; see `RemoteWord::arm_full`.)
//! - **empty**: no block in use; given back to its arena (or kept as the last pool of its class).
//! - **not in use**: `class == CLASS_NONE` (so no offset is a block start and nothing can be
//!   carved); header 0 of every arena is always in this state.
//!
//! Blocks are carved lazily: `bump` moves forward one block at a time, so memory of a fresh
//! pool is never touched before a block there is handed out, and blocks at `bump..` of a pool
//! that came fresh from the OS are known to be zero (`fresh`).
//!
//! Invariant (checked by `pool_is_valid`), owner's view:
//!   `nused + |free list| == bump / block_size`
//! where `nused` counts blocks handed out and not yet freed locally (blocks waiting on the
//! remote list still count as used until the owner takes them).

use crate::config::{ALL_CLASSES, ARENA_SIZE, POOL_BITS, POOL_HEADER_SIZE, POOL_SIZE, RUN_POOLS};

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU16, Ordering};

use super::harden;
use super::remote::{Block, RemoteWord};
use super::size_class::{
    CLASS_NONE, CLASS_RUN_TAIL, block_size, blocks_per_pool, is_block_multiple, is_block_offset,
    pool_limit,
};

/// The owner back-pointer's type: a thread heap, seen from below as an opaque address. Pools
/// sit below heaps in the layering, so this file never sees `ThreadHeap`; `alloc::heap`
/// converts (`ThreadHeap::tag` / `ThreadHeap::from_tag`).
pub enum HeapTag {}

/// A pool's header. Fields other than the atomics are touched only by the owner heap (or, for
/// a pool not owned by any heap, by whoever holds the global lock).
#[repr(C, align(64))]
pub struct Pool {
    pub free: *mut Block,          // local free list (owner only)
    pub nused: AtomicU16,          // blocks out (owner writes; statistics read)
    pub bump: AtomicU16,           // offset of the first never-handed-out block (owner writes)
    pub class: AtomicU8,           // size class; CLASS_NONE while not in use (owner writes)
    pub in_full: bool,             // full: off the avail list (or on abandoned[1])
    pub fresh: bool,               // blocks at `bump..` are known zero
    pub kept: bool,                // empty, left on avail (counted in heap.nkept)
    pub owner: AtomicPtr<HeapTag>, // owning heap; null when abandoned or not in use
    pub remote: RemoteWord,        // remote frees + ownership state (see remote.rs)
    pub next: *mut Pool,           // heap avail list / abandoned list / cache
    pub prev: *mut Pool,           // heap avail list / abandoned list
    pub owned_next: *mut Pool,     // owner heap's list of all its pools
    pub owned_prev: *mut Pool,
}

const _: () = assert!(core::mem::size_of::<Pool>() == POOL_HEADER_SIZE);

/// The header of the pool holding address `p` (an address inside one of our arenas).
#[inline(always)]
pub fn pool_of(p: *const u8) -> *mut Pool {
    let a = p as usize;
    header_of(a & !(ARENA_SIZE - 1), (a & (ARENA_SIZE - 1)) >> POOL_BITS)
}

/// The header of the medium run holding address `p` (an address inside one of our arenas of
/// runs): runs are `RUN_POOLS` pools from pool 1 on, described by their first pool's header.
#[inline(always)]
pub fn run_of(p: *const u8) -> *mut Pool {
    unit_header(p as usize, !0)
}

/// The header of the pool (`medium == 0`) or run (`medium == !0`) holding `a` (`unit_index`).
#[inline(always)]
pub fn unit_header(a: usize, medium: usize) -> *mut Pool {
    header_of(a & !(ARENA_SIZE - 1), unit_index(a, medium))
}

/// The index in its arena of the header of the pool (`medium == 0`, `pool_of`'s) or run
/// (`medium == !0`, `run_of`'s) holding address `a`, chosen with a mask instead of a branch,
/// which a program freeing sizes on both sides of `SMALL_MAX` at random would mispredict every
/// other time. The header page (pool 0) of a run arena gives run 1's header, whose base is
/// above every address of that page.
#[inline(always)]
pub fn unit_index(a: usize, medium: usize) -> usize {
    let i = (a & (ARENA_SIZE - 1)) >> POOL_BITS;
    let run = (i.saturating_sub(1) & !(RUN_POOLS - 1)) + 1;
    (i & !medium) | (run & medium)
}

/// The header of the pool (small) or run (medium) holding `p`, an address inside one of our
/// arenas, when the caller does not know which: the pool's own header, unless that says
/// `CLASS_RUN_TAIL` (a pool inside a run, not its first). One load of a header the caller
/// reads next anyway.
///
/// # Safety
/// `p` is inside one of our mapped arenas (its header page is readable).
#[inline(always)]
pub unsafe fn pool_of_any(p: *const u8) -> *mut Pool {
    let h = pool_of(p);
    // SAFETY: p's arena is mapped, so its header page is.
    if RUN_POOLS > 1 && unsafe { (*h).class() } == CLASS_RUN_TAIL {
        return run_of(p);
    }
    h
}

/// The header of the `i`-th pool of the arena at `arena`.
#[inline(always)]
pub fn header_of(arena: usize, i: usize) -> *mut Pool {
    (arena + i * POOL_HEADER_SIZE) as *mut Pool
}

/// The index in its arena of the pool whose header is at `h` (the inverse of `header_of`).
#[inline(always)]
pub fn index_of(h: *const Pool) -> usize {
    (h as usize & (ARENA_SIZE - 1)) / POOL_HEADER_SIZE
}

impl Pool {
    /// The first byte of the pool this header describes.
    #[inline(always)]
    pub fn base(&self) -> usize {
        (self as *const Pool as usize & !(ARENA_SIZE - 1)) + index_of(self) * POOL_SIZE
    }

    /// The size class (`CLASS_NONE` when the pool is not in use).
    #[inline(always)]
    pub fn class(&self) -> usize {
        self.class.load(Ordering::Relaxed) as usize
    }

    /// Mark a header that never described a pool (a fresh arena's) as not in use.
    ///
    /// # Safety
    /// `pool` is a header slot of one of our arenas that nobody else uses now.
    pub unsafe fn init_unused(pool: *mut Pool) {
        // SAFETY: the caller gives us exclusive use of the slot.
        unsafe { (*pool).class.store(CLASS_NONE as u8, Ordering::Release) };
    }

    /// Write a fresh header for `class` owned by `owner`.
    ///
    /// # Safety
    /// `pool` is a header slot of one of our arenas whose pool nobody else uses now.
    pub unsafe fn init(pool: *mut Pool, class: usize, owner: *mut HeapTag, fresh: bool) {
        // SAFETY: the caller gives us exclusive use of the slot.
        unsafe {
            ptr::write(
                pool,
                Pool {
                    free: ptr::null_mut(),
                    nused: AtomicU16::new(0),
                    bump: AtomicU16::new(0),
                    class: AtomicU8::new(class as u8),
                    in_full: false,
                    fresh,
                    kept: false,
                    owner: AtomicPtr::new(owner),
                    remote: RemoteWord::new(), // armed FULL below
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    owned_next: ptr::null_mut(),
                    owned_prev: ptr::null_mut(),
                },
            );
            // No block is in use, so no other thread can free into it yet.
            (*pool).remote.arm_full();
            if class < ALL_CLASSES && harden::secure_mode() {
                (*pool).carve_shuffled();
            }
        }
    }

    /// Hardened mode: carve every block of the pool now and put them on the free list in a
    /// random order (a Fisher-Yates shuffle seeded from the key, the pool's address and a
    /// counter), so the order blocks are handed out in says nothing about their addresses and
    /// an overflow's victim is not predictable. Keeps the pool equation (`bump` at the limit,
    /// every block free, each marked L with an encoded link).
    ///
    /// # Safety
    /// The caller owns the pool, which is in use for a block class and has no block out.
    #[cold]
    unsafe fn carve_shuffled(&mut self) {
        const MAX: usize = POOL_SIZE * RUN_POOLS / 16;
        let class = self.class();
        let bs = block_size(class);
        let n = pool_limit(class) / bs;
        let mut order = [0u16; MAX];
        for (i, o) in order[..n].iter_mut().enumerate() {
            *o = i as u16;
        }
        static SEQ: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
        let k = harden::key();
        let mut x = (k
            ^ self.base()
            ^ SEQ
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9))
            | 1;
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, x % (i + 1));
        }
        let base = self.base();
        self.free = ptr::null_mut();
        for &i in order[..n].iter().rev() {
            let b = (base + i as usize * bs) as *mut u8;
            // SAFETY: b is a block of this pool; none is out.
            unsafe {
                harden::clear_mark(b);
                harden::mark_local(b, k);
                (*b.cast::<Block>()).next = harden::encode(self.free, k);
            }
            self.free = b.cast();
        }
        self.bump.store(pool_limit(class) as u16, Ordering::Relaxed);
        self.fresh = false;
    }

    /// Write the header of a pool taken from its arena straight into a heap's cache: not in use
    /// (`CLASS_NONE`, no owner), `fresh` as the arena says. For a medium run (`run`), the
    /// headers of its other pools say `CLASS_RUN_TAIL`, so `pool_of_any` finds this one.
    ///
    /// # Safety
    /// As `init`; for a run, the run's other headers are the caller's to write too.
    pub unsafe fn init_cached(pool: *mut Pool, fresh: bool, run: bool) {
        // SAFETY: forwarded; a run's tail headers follow its first one in the header page.
        unsafe {
            Pool::init(pool, CLASS_NONE, ptr::null_mut(), fresh);
            if run {
                // `skip`: with large pools 1..RUN_POOLS is empty, which clippy rejects.
                for i in (0..RUN_POOLS).skip(1) {
                    Pool::init(pool.add(i), CLASS_RUN_TAIL, ptr::null_mut(), false);
                }
            }
        }
    }

    /// Put a retired pool from a heap's cache in use for `class`. Its memory is known zero
    /// only if it came from the arena untouched (`fresh`, kept from `init_cached`). Hardened
    /// mode reuses the shuffled free list of a pool last carved for `class`
    /// (`heap::retire_to_cache` keeps it).
    pub fn reinit(&mut self, class: usize, owner: *mut HeapTag) {
        invariant!(
            self.used() == 0 && self.remote.is_empty() && self.class() == CLASS_NONE,
            "reusing a pool in use"
        );
        let (carved_for, kept) = (self.owned_prev as usize, self.free);
        self.free = ptr::null_mut();
        self.bump.store(0, Ordering::Relaxed);
        self.class.store(class as u8, Ordering::Release);
        self.in_full = false;
        self.kept = false;
        self.owner.store(owner, Ordering::Release);
        self.remote.arm_full(); // empty: nobody can free into it
        self.next = ptr::null_mut();
        self.prev = ptr::null_mut();
        if harden::secure_mode() && carved_for == class + 1 && !kept.is_null() {
            self.free = kept; // every block, free, as `carve_shuffled` left them
            self.bump.store(pool_limit(class) as u16, Ordering::Relaxed);
        } else if harden::secure_mode() {
            // SAFETY: ours, in use for `class`, no block out.
            unsafe { self.carve_shuffled() };
        }
    }

    /// Forget the free list of an empty pool so it carves blocks in ascending order again.
    ///
    /// Hardened mode keeps it instead: the pool's blocks were all carved, shuffled, when it was
    /// put in use for its class, and with none out every one is back on the free list, which
    /// hands them out again in the reverse of the order they were freed in (mimalloc's secure
    /// mode reuses a page's blocks so too; it shuffles only when it extends a page).
    /// Reshuffling every time a kept pool emptied was most of hardened mode's cost on a batch
    /// (allocate 1000, free them all): 166 instructions per block against the default's 93.
    pub fn reset_empty(&mut self) {
        invariant!(self.used() == 0, "resetting a pool in use");
        self.fresh = false;
        if harden::secure_mode() {
            invariant!(
                self.bump.load(Ordering::Relaxed) as usize == pool_limit(self.class()),
                "a hardened pool not carved whole"
            );
            return;
        }
        self.free = ptr::null_mut();
        self.bump.store(0, Ordering::Relaxed);
    }

    /// Mark an empty pool as not in use (before it goes to a heap's cache or back to its
    /// arena). Its memory was used, so it is not known zero any more.
    pub fn retire(&mut self) {
        invariant!(
            self.nused.load(Ordering::Relaxed) == 0,
            "retiring a pool in use"
        );
        invariant!(self.remote.is_empty(), "retiring a pool with remote frees");
        self.class.store(CLASS_NONE as u8, Ordering::Release);
        self.owner.store(ptr::null_mut(), Ordering::Release);
        self.free = ptr::null_mut();
        self.fresh = false;
    }

    #[inline(always)]
    pub fn used(&self) -> u32 {
        u32::from(self.nused.load(Ordering::Relaxed))
    }

    #[inline(always)]
    pub fn set_used(&self, n: u32) {
        self.nused.store(n as u16, Ordering::Relaxed)
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
            // SAFETY: blocks on the local free list are ours, marked, and hold an encoded link
            // (harden.rs); the link is checked before it is stored, so b was checked too.
            let next = harden::decode(unsafe { (*b).next }, harden::key());
            harden::check_link(b, next);
            // SAFETY: as above; the block is handed out now.
            unsafe { harden::clear_mark(b.cast()) };
            self.free = next;
            // The next block of this class is likely cold (freed long ago, in any order): ask
            // for its line now, so the next allocation does not wait for it.
            prefetch(next.cast());
            self.set_used(self.used() + 1);
            return (b.cast(), false);
        }
        let class = self.class();
        let bump = self.bump.load(Ordering::Relaxed) as usize;
        if bump < pool_limit(class) {
            let bs = block_size(class);
            self.bump.store((bump + bs) as u16, Ordering::Relaxed);
            self.set_used(self.used() + 1);
            let b = self.base() + bump;
            // SAFETY: b is a block of this pool, handed out now for the first time in this
            // pool's life.
            unsafe { harden::clear_mark(b as *mut u8) };
            // Carved blocks of a reused pool are cold (C batch: 32% of samples in the caller's
            // first stores). Prefetch the block carved two allocations from now (past the end is
            // harmless): C batch 0.35 s -> 0.29 s, medians of 11 (1 or 4 ahead the same).
            prefetch((b + 2 * bs) as *const u8);
            return (b as *mut u8, self.fresh);
        }
        (ptr::null_mut(), false)
    }

    /// Put a block back on the local free list; returns the new count of used blocks. `k` is
    /// `harden::key()`.
    ///
    /// # Safety
    /// The caller owns the pool and `b` is a block of it that is in use, marked L
    /// (`harden::mark_local`).
    #[inline(always)]
    pub unsafe fn put_block(&mut self, b: *mut u8, k: usize) -> u32 {
        let b = b.cast::<Block>();
        // SAFETY: b is a block of this pool, so it can hold a link.
        unsafe { (*b).next = harden::encode(self.free, k) };
        self.free = b;
        let n = self.used().wrapping_sub(1);
        invariant!(
            n < blocks_per_pool(self.class()) as u32,
            "used count underflow"
        );
        self.set_used(n);
        n
    }

    /// Put back a block that another thread freed (marked R, taken from the delayed stack or
    /// handed over by an adopter), checking that the owner did not free it too.
    ///
    /// # Safety
    /// As for [`put_block`](Pool::put_block), with `b` marked R (`harden::mark_remote`).
    pub unsafe fn put_remote_block(&mut self, b: *mut u8) -> u32 {
        let k = harden::key();
        // SAFETY: per the contract.
        unsafe {
            harden::remote_to_local(b, k);
            self.put_block(b, k)
        }
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
        let base = self.base() as *mut Block;
        let k = harden::key();
        while !p.is_null() {
            // A link overwritten after the free leaves this pool's arena: caught before it is
            // followed (the first block came from the remote word itself).
            harden::check_link(base, p);
            // SAFETY: each block on a taken remote list belongs to this pool.
            let next = unsafe { (*p).next };
            invariant!(
                // SAFETY: p is a block of one of our arenas (a remote list holds nothing else).
                core::ptr::eq(unsafe { pool_of_any(p.cast()) }, self),
                "foreign block on remote list"
            );
            // SAFETY: as above; it was freed by another thread (marked R).
            unsafe {
                harden::remote_to_local(p.cast(), k);
                (*p).next = harden::encode(self.free, k);
            }
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
            && self.bump.load(Ordering::Relaxed) as usize >= pool_limit(self.class())
    }

    /// Is `p` the start of a block this pool has handed out at some point (and the pool in
    /// use)? See `starts_block_at`.
    #[inline(always)]
    pub fn is_block_start(&self, p: *const u8) -> bool {
        self.starts_block_at((p as usize).wrapping_sub(self.base()))
    }

    /// `is_block_start` of `base() + off` (wrapped: below the base, `off` is huge): a compare
    /// with the bump (at most the class's pool limit, pool invariant) and a multiply by the
    /// class's divisibility magic. No division, no branch on the class.
    #[inline(always)]
    pub fn starts_block_at(&self, off: usize) -> bool {
        let class = self.class.load(Ordering::Acquire) as usize;
        let start =
            off < self.bump.load(Ordering::Relaxed) as usize && is_block_multiple(class, off);
        debug_assert!(!start || is_block_offset(class, off));
        start
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
    let class = p.class();
    if class >= CLASS_NONE {
        return Err("pool not in use");
    }
    let bump = p.bump.load(Ordering::Relaxed) as usize;
    if bump > pool_limit(class) || bump % block_size(class) != 0 {
        return Err("bump offset out of range");
    }
    let carved = bump / block_size(class);
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
        if !unsafe { harden::is_marked_local(b.cast()) } {
            return Err("a block on the free list lost its free mark");
        }
        // SAFETY: b is a carved block of this pool.
        b = harden::decode(unsafe { (*b).next }, harden::key());
    }
    if p.used() as usize + nfree != carved {
        return Err("nused + |free| != carved");
    }
    Ok(())
}

/// Ask the CPU to load the cache line at `p` (any address, null included: a prefetch is a hint
/// and never faults).
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction has no architectural effect and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast(), core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
