//! Thread heaps: per-thread lists of pools by size class, and the operations on one heap that
//! the fast paths fall back to. Every function here takes the heap explicitly; which heap a
//! thread uses, and its birth and death, are `thread.rs`'s.
//!
//! ```text
//!  ThreadHeap
//!    avail[class] ──> pool <─> pool <─> ...   pools with room; head = current    (AvailQueues)
//!    owned        ──> pool <─> pool <─> ...   every pool it owns; full ones are on
//!                                              no other list                       (PoolQueue)
//!    delayed      ──> block -> block           remote frees into FULL pools        (remote.rs)
//!    caches[kind] ──> pool -> pool             retired pools (small) and runs (medium) kept,
//!                                              HEAP_POOL_CACHE / HEAP_RUN_CACHE    (PoolStack)
//! ```
//!
//! Operations: `alloc` (the fast path found no block), `free_local_slow` (a local free revived a
//! full pool, or emptied one that is not current), `adopt_and_free` (a remote free adopted an
//! abandoned pool), `trim`, `abandon` (thread exit), `is_valid` (the validator).
//!
//! Thread exit (`abandon`), with the sequences of `remote.rs`:
//! 1. every owned pool: `quiesce` (no `FULL`, no notifier at work), so no new delayed frees
//!    start (the heap is marked `exiting` first: nothing arms `FULL` again, not even step 2's
//!    frees into full pools, see `RemoteWord::stay_full`);
//! 2. take the delayed stack and free those blocks locally;
//! 3. every pool: owner := null, then `abandon_with` (taking pending remote frees); pools with
//!    nothing in use go back to their arena, the others to `GLOBAL`'s abandoned lists.
//!
//! Invariants (checked by `is_valid`):
//! - A pool owned by heap h is on h's `owned` list, and on h's `avail` list for its class
//!   exactly when `!in_full`. Otherwise a pool is on an abandoned list, a heap's cache, or its
//!   arena's free pools; or it is the pool being moved under a lock.
//! - A pool in a heap's cache is retired (`CLASS_NONE`, nothing in use, no remote frees), so
//!   a free into it is refused like any free into a pool not in use (`cache.rs`: small pools
//!   and medium runs apart, each bounded, moved in batches).
//!   Medium classes use everything else here as small ones do: a run is a pool to this file.
//! - `pool.owner == h` (h non-null) only while the pool is on h's `owned` list; only h's thread
//!   (or the holder of the fallback heap's lock) changes h's lists or the pool's owner-only
//!   fields.
//! - A full pool (`in_full`) has remote state `FULL` or `NOTIFYING`, or `NORMAL` with a block of
//!   it on the owner's delayed stack (a notifier came and went; the owner's next slow path takes
//!   the block and any remote list with it). Never `NORMAL` with nothing on its way to the owner.
//!   Full pools are on no list but `owned`, as in CPython.

use crate::config::{
    ALL_CLASSES, HEAP_CACHE_BATCH, HEAP_KEPT_POOLS, HEAP_RUN_BATCH, REVIVE_FREE_BLOCKS, RUN_POOLS,
};
use core::ptr;
use core::sync::atomic::Ordering;

// A batch of new pools is gathered in an array of HEAP_CACHE_BATCH before it is cached.
const _: () = assert!(HEAP_RUN_BATCH <= HEAP_CACHE_BATCH);

use super::cache::PoolCaches;
use super::counter::LargeCounts;
use super::global::GLOBAL;
use super::harden;
use super::pool::{HeapTag, Pool, pool_is_valid, pool_of_any};
use super::queue::{AvailQueues, ByOwner, PoolQueue};
use super::remote::{BlockStack, FULL, NOTIFYING};
#[cfg(feature = "trace")]
use super::sampler::Countdown;
use super::size_class::{blocks_per_pool, is_medium_class};
use super::table::Slot;

/// A thread's allocation state (see the module docs). Aligned to a cache line: heaps sit side
/// by side in one table (3152 bytes each unaligned), where one heap's sampling countdown,
/// written by every allocation, shared a line with the next heap's first `avail` entries, read
/// by every allocation of 16..64 bytes. (No throughput change measured on 2 cores: glibc-thread
/// at 2 threads 1.02x, larson 0.97-1.01x, within noise.)
#[repr(C, align(64))]
pub struct ThreadHeap {
    pub avail: AvailQueues,     // pools with room, per class; head = current
    owned: PoolQueue<ByOwner>,  // all pools it owns
    pub delayed: BlockStack,    // blocks freed remotely into our FULL pools
    caches: PoolCaches,         // retired pools and runs kept (cache.rs)
    nkept: usize,               // empty pools left on avail, <= HEAP_KEPT_POOLS
    exiting: bool,              // `abandon` has begun: never arm FULL again
    next_slot: *mut ThreadHeap, // free heap-slot list (`thread.rs`'s table)
    pub large: LargeCounts,     // this thread's share of the large blocks
    #[cfg(feature = "trace")]
    pub sample: Countdown, // bytes (in 16-byte steps) to the next sampled allocation
}

// SAFETY: a ThreadHeap is used by one thread at a time (its owner, or the fallback's holder).
unsafe impl Send for ThreadHeap {}

impl Slot for ThreadHeap {
    unsafe fn free_link(this: *mut Self) -> *mut *mut Self {
        // SAFETY: the caller passes a slot of the table; `next_slot` is unused while it is free.
        unsafe { &raw mut (*this).next_slot }
    }
}

impl ThreadHeap {
    pub const fn new() -> Self {
        ThreadHeap {
            avail: AvailQueues::new(),
            owned: PoolQueue::new(),
            delayed: BlockStack::new(),
            caches: PoolCaches::new(),
            nkept: 0,
            exiting: false,
            next_slot: ptr::null_mut(),
            large: LargeCounts::new(),
            #[cfg(feature = "trace")]
            sample: Countdown::new(),
        }
    }

    /// `h` as a pool's owner back-pointer.
    #[inline(always)]
    pub fn tag(h: *mut ThreadHeap) -> *mut HeapTag {
        h.cast()
    }

    /// The heap a pool's owner back-pointer names.
    #[inline(always)]
    pub fn from_tag(t: *mut HeapTag) -> *mut ThreadHeap {
        t.cast()
    }

    /// Retired small pools in the cache (tests).
    #[cfg(test)]
    pub(crate) fn ncached(&self) -> usize {
        self.caches.len(0)
    }
}

/// The delayed stack of the heap a pool's owner back-pointer names (for `remote::remote_free`).
///
/// # Safety
/// `owner` names a live heap.
#[inline]
pub unsafe fn delayed_of(owner: *mut HeapTag) -> *const BlockStack {
    invariant!(!owner.is_null(), "FULL pool without owner");
    // SAFETY: per the contract.
    unsafe { &raw const (*ThreadHeap::from_tag(owner)).delayed }
}

// ---------------------------------------------------------------------------------------------
// allocation

/// Allocation of a block of `class` when the fast path found nothing. Returns the block (null
/// when out of memory) and whether it is known to be zero; `None` when it needs `GLOBAL` and a
/// fork in progress on another thread holds it (`lock.rs`: the caller decides whether to wait).
///
/// # Safety
/// The caller acts as the owner of `h`.
pub unsafe fn alloc(h: *mut ThreadHeap, class: usize) -> Option<(*mut u8, bool)> {
    // SAFETY: the caller owns h and so every pool on its lists.
    unsafe {
        let heap = &mut *h;
        if !heap.delayed.is_empty() {
            process_delayed(h);
        }
        loop {
            let p = heap.avail.head(class);
            if p.is_null() {
                break;
            }
            if (*p).kept {
                // A kept empty pool becomes current again: it is simply in use from now on.
                (*p).kept = false;
                heap.nkept -= 1;
            }
            let got = (*p).take_block();
            if !got.0.is_null() {
                return Some(got);
            }
            if (*p).collect_remote() > 0 {
                continue;
            }
            if (*p).remote.try_mark_full() {
                // Full: off the avail list, on no list but `owned` (CPython's "full" state).
                heap.avail.remove(class, p);
                (*p).in_full = true;
            }
        }
        // No pool with room: reuse a cached pool, adopt an abandoned one, or take new ones.
        let medium = is_medium_class(class);
        let p = if !heap.caches.is_empty_for(class) {
            cache_pop(heap, class)
        } else {
            let mut g = GLOBAL.lock_or_busy()?;
            let p = g.adopt_with_room(class);
            if !p.is_null() {
                (*p).owner.store(ThreadHeap::tag(h), Ordering::Release);
                p
            } else {
                // Take a batch while the lock is held: one locked instruction per batch, not
                // per pool (see HEAP_CACHE_BATCH).
                let batch = if medium {
                    HEAP_RUN_BATCH
                } else {
                    HEAP_CACHE_BATCH
                };
                // The cache is a stack: pools are pushed in the reverse of the arenas' order,
                // so they are handed out at ascending addresses, as the arenas give them.
                // Objects allocated one after another then lie one after another in memory,
                // and a walk of them in allocation order (the collector's lists) runs forward
                // through memory, which the hardware prefetchers follow (issue 15: the
                // descending order cost a full collection twice the time).
                let mut got = [ptr::null_mut::<Pool>(); HEAP_CACHE_BATCH];
                let mut n = 0;
                while n < batch {
                    let Some(np) = g.alloc_pool(medium) else {
                        break;
                    };
                    Pool::init_cached(np.pool, np.fresh, medium && RUN_POOLS > 1);
                    got[n] = np.pool;
                    n += 1;
                }
                drop(g);
                for &p in got[..n].iter().rev() {
                    heap.caches.push_new(class, p);
                }
                if heap.caches.is_empty_for(class) {
                    return Some((ptr::null_mut(), false));
                }
                cache_pop(heap, class)
            }
        };
        (*p).collect_remote();
        (*p).in_full = false;
        heap.owned.push_front(p);
        heap.avail.push_front(class, p);
        let got = (*p).take_block();
        invariant!(!got.0.is_null(), "a new or adopted pool has room");
        Some(got)
    }
}

/// Free the blocks other threads handed us through the delayed stack.
///
/// # Safety
/// The caller acts as the owner of `h`.
unsafe fn process_delayed(h: *mut ThreadHeap) {
    // SAFETY: the caller owns h; delayed blocks belong to h's pools (a pool cannot change owner
    // while a notifier works on it, and the notifier read the owner then).
    unsafe {
        let mut b = (*h).delayed.take_all();
        while !b.is_null() {
            let next = (*b).next;
            let p = pool_of_any(b.cast());
            invariant!(
                (*p).owner.load(Ordering::Relaxed) == ThreadHeap::tag(h),
                "delayed block of another heap"
            );
            // Remote frees are arriving here: for a pool with room, stop diverting them through
            // the delayed stack. (A full pool must stay FULL: free_local_slow sees to it.)
            if !(*p).in_full {
                (*p).remote.clear_full();
            }
            let n = (*p).put_remote_block(b.cast());
            if n == 0 || (*p).in_full {
                free_local_slow(h, p, n);
            }
            b = next;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// free

/// After a local free left the pool with `n` blocks in use: it was full (revive it once it has
/// room enough), or it is empty (keep it, or retire it to the cache).
///
/// # Safety
/// The caller owns `h`, and `p` is one of its pools.
#[cold]
#[inline(never)]
pub unsafe fn free_local_slow(h: *mut ThreadHeap, p: *mut Pool, n: u32) {
    // SAFETY: the caller owns h and p.
    unsafe {
        let heap = &mut *h;
        let class = (*p).class();
        let mut n = n;
        while (*p).in_full && blocks_per_pool(class) as u32 - n < REVIVE_FREE_BLOCKS {
            // Not enough room yet to be worth reviving (see REVIVE_FREE_BLOCKS): it stays off
            // the lists, FULL for the next remote free (pending ones are taken first), except in
            // an exiting heap (see RemoteWord::stay_full).
            match (*p).remote.stay_full(heap.exiting) {
                Ok(()) => return,
                Err(pending) => {
                    (*p).adopt_list(pending);
                    n = (*p).used();
                }
            }
        }
        if (*p).in_full {
            // Revive it at the tail, as mimalloc does: it collects more frees before it is
            // used again, so a pool changes state less often. Its remote word may stay FULL
            // (see RemoteWord::clear_full).
            (*p).in_full = false;
            heap.avail.push_back(class, p);
        }
        if n == 0 {
            // Keep the current pool of a class so a hot alloc/free pair does not thrash, and
            // leave a few more where they are, so refilling them touches no list.
            if heap.avail.head(class) == p {
                return;
            }
            if heap.nkept < HEAP_KEPT_POOLS {
                (*p).kept = true;
                heap.nkept += 1;
                // Carve it afresh, in ascending order, as a new pool would be: the free list's
                // LIFO order scatters consecutive allocations, which defeats prefetching.
                (*p).reset_empty();
                return;
            }
            retire_to_cache(heap, p);
        }
    }
}

/// Make `h` the owner of `p`, which the caller just adopted from the abandoned lists, and free
/// `b` into it.
///
/// # Safety
/// `p` was just adopted by the caller (`RemoteWord::adopt` won, off the abandoned list), who
/// acts as the owner of `h`; `b` is a live block of `p` that the caller gives up.
pub unsafe fn adopt_and_free(h: *mut ThreadHeap, p: *mut Pool, b: *mut u8) {
    // SAFETY: per the contract.
    unsafe {
        (*p).owner.store(ThreadHeap::tag(h), Ordering::Release);
        (*p).collect_remote();
        (*p).in_full = false;
        let class = (*p).class();
        let heap = &mut *h;
        heap.owned.push_front(p);
        heap.avail.push_back(class, p);
        let n = (*p).put_remote_block(b);
        if n == 0 {
            free_local_slow(h, p, n);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the pool cache

/// Take an empty pool of `heap` (not kept) off its lists, retire it, and put it in the cache of
/// its kind (`cache.rs`).
///
/// # Safety
/// The caller owns `heap`; `p` is one of its pools with nothing in use, on its avail list.
unsafe fn retire_to_cache(heap: &mut ThreadHeap, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe {
        let class = (*p).class();
        heap.avail.remove(class, p);
        heap.owned.remove(p);
        (*p).remote.settled(); // no notifier at work
        let free = (*p).free;
        (*p).retire();
        if harden::secure_mode() {
            // Hardened mode keeps the free list of every block, in the order the pool's carving
            // shuffled them, and notes `class + 1` in `owned_prev` (unused off the owner's
            // list): `Pool::reinit` for the same class reuses them instead of carving and
            // shuffling again (18 of the 31 instructions per block hardened mode added to a
            // batch that allocates 1000 blocks and frees them all). A pool given back to its
            // arena is rewritten whole (`Pool::init`) before any reuse, which drops the note.
            (*p).free = free;
            (*p).owned_prev = (class + 1) as *mut Pool;
        }
        heap.caches.retire(class, p);
    }
}

/// Take a pool from the cache of `class`'s kind (not empty) and set it up for `class`.
///
/// # Safety
/// The caller owns `heap`.
unsafe fn cache_pop(heap: &mut ThreadHeap, class: usize) -> *mut Pool {
    // SAFETY: cached pools are retired pools of this heap, on no other list.
    unsafe {
        let p = heap.caches.pop(class);
        (*p).reinit(class, ThreadHeap::tag(heap));
        p
    }
}

/// Give back to the arenas every empty pool `h` keeps, after taking its pending remote and
/// delayed frees. The allocator keeps one empty pool per class for speed; `trim` hands those
/// back (like `malloc_trim`).
///
/// # Safety
/// The caller owns `h`.
pub unsafe fn trim(h: *mut ThreadHeap) {
    // SAFETY: the caller owns h.
    unsafe {
        process_delayed(h);
        let heap = &mut *h;
        for class in 0..ALL_CLASSES {
            for p in heap.avail.iter(class) {
                (*p).collect_remote();
                if (*p).used() == 0 {
                    if (*p).kept {
                        (*p).kept = false;
                        heap.nkept -= 1;
                    }
                    retire_to_cache(heap, p);
                }
            }
        }
        heap.caches.release_all();
    }
}

// ---------------------------------------------------------------------------------------------
// thread exit

/// Give up every pool of `h` (the three steps of the module docs); the slot is the caller's.
///
/// # Safety
/// The caller owns `h`, and nothing will use it afterwards.
pub unsafe fn abandon(h: *mut ThreadHeap) {
    // SAFETY: the caller owns h and all its pools.
    unsafe {
        let heap = &mut *h;
        // From here on nothing arms FULL on our pools (`stay_full`), so after step 1 no remote
        // free can notify this heap, and step 2 sees every block ever handed to it.
        heap.exiting = true;
        // 1. No new notifications (FULL may be set on any pool).
        for p in heap.owned.iter() {
            (*p).remote.quiesce();
        }
        // 2. Take what notifiers handed us.
        process_delayed(h);
        // 3. Abandon or release each pool.
        loop {
            let p = heap.owned.pop_front();
            if p.is_null() {
                break;
            }
            if !(*p).in_full {
                heap.avail.remove((*p).class(), p);
            }
            (*p).owner.store(ptr::null_mut(), Ordering::Release);
            // ABANDONED and on the abandoned list in one critical section: an adopter (who
            // needs the lock) must never see the first without the second.
            let mut g = GLOBAL.lock();
            (*p).remote.abandon_with(|pending| {
                (*p).adopt_list(pending);
            });
            if (*p).used() == 0 {
                (*p).remote.reset();
                (*p).retire();
                g.free_pool(p);
            } else {
                (*p).in_full = (*p).is_exhausted();
                g.abandoned_push(p);
            }
        }
        invariant!(
            heap.delayed.is_empty(),
            "a block was handed to an exiting heap after its last look"
        );
        heap.caches.release_all();
    }
}

// ---------------------------------------------------------------------------------------------
// validation

/// Check every pool of `h` (`pool_is_valid`), and the list invariants in the module docs.
///
/// # Safety
/// The caller owns `h`.
pub unsafe fn is_valid(h: *mut ThreadHeap) -> Result<(), &'static str> {
    // SAFETY: the caller owns h and its lists.
    unsafe {
        let heap = &*h;
        let (mut in_avail, mut kept) = (0usize, 0usize);
        for class in 0..ALL_CLASSES {
            for p in heap.avail.iter(class) {
                if (*p).in_full {
                    return Err("a full pool on an avail list");
                }
                if (*p).kept {
                    kept += 1;
                    if (*p).used() != 0 {
                        return Err("a kept pool is in use");
                    }
                }
                if (*p).class() != class {
                    return Err("pool on the list of another class");
                }
                in_avail += 1;
            }
        }
        let mut not_full = 0usize;
        for p in heap.owned.iter() {
            pool_is_valid(p)?;
            if (*p).owner.load(Ordering::Relaxed) != ThreadHeap::tag(h) {
                return Err("pool on a heap that does not own it");
            }
            not_full += !(*p).in_full as usize;
            // A full pool must bring us its next remote free: its word is FULL (the freer will
            // notify us) or NOTIFYING (one is doing so), or a notifier has done so already and
            // left the word NORMAL, with its block on our delayed stack, where the next slow path
            // finds it and the pool with it. The state is read first: a NORMAL set by
            // `end_notify` (Release) makes the delayed push before it visible.
            let st = (*p).remote.state();
            if (*p).in_full
                && st != FULL
                && st != NOTIFYING
                && !heap.delayed.any(|b| pool_of_any(b.cast()) == p)
            {
                return Err("a full pool off the lists whose remote word would not notify us");
            }
        }
        if !heap.avail.direct_is_valid() {
            return Err("a step's current pool is not its class's head");
        }
        if not_full != in_avail {
            return Err("owned pools with room are not exactly the avail pools");
        }
        if kept != heap.nkept {
            return Err("kept-pool count disagrees with the avail lists");
        }
        heap.caches.is_valid()?;
    }
    Ok(())
}
