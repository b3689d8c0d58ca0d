//! Thread heaps: per-thread lists of pools by size class, and every slow path of the allocator.
//!
//! ```text
//!  thread-local HEAP ──> ThreadHeap
//!                          avail[class] ──> pool <─> pool <─> ...   pools with room; head is current
//!                          owned        ──> pool <─> pool <─> ...   every pool it owns (full ones
//!                                                                   are on no other list)
//!                          delayed      ──> block -> block          remote frees into FULL pools
//!                          cache        ──> pool -> pool            retired pools kept (HEAP_POOL_CACHE)
//!  GLOBAL (spin lock): arenas, abandoned[room|full][class], heap slots
//!  FALLBACK (spin lock): a heap for threads that have none (during thread exit, or when the
//!                        heap table could not be mapped)
//! ```
//!
//! A thread gets a heap on its first small allocation (its pointer is a zero-initialized TLS
//! word, `tls.rs`, so reading it never allocates) and registers a pthread key destructor that
//! abandons the heap when the thread exits. glibc runs key destructors after Rust's thread-local
//! destructors, so their frees still find the heap; anything later falls back to `FALLBACK`.
//!
//! Cross-thread frees follow `remote.rs`. Thread exit:
//! 1. every owned pool: `clear_full` and wait out any notifier, so no new delayed frees start
//!    (the heap is marked `exiting` first: nothing arms `FULL` again, not even step 2's frees
//!    into full pools, so this stays true until the pools are abandoned);
//! 2. take the delayed stack and free those blocks locally;
//! 3. every pool: owner := null, then `try_abandon` (taking pending remote frees until the list
//!    is empty); pools with nothing in use go back to their arena, the others to `abandoned`.
//!
//! A free into an `ABANDONED` pool adopts it (under the global lock) into the freeing thread's
//! heap and frees locally, so an abandoned pool that empties is given back like any other. A heap
//! that needs a pool of some class adopts an abandoned one with room before taking a new one.
//!
//! Invariants:
//! - A pool owned by heap h is on h's `owned` list, and on h's `avail` list for its class
//!   exactly when `!in_full`. Otherwise a pool is on `abandoned`, a heap's `cache`, or its
//!   arena's free pools; or it is the pool being moved under a lock.
//! - A pool in a heap's `cache` is retired (`CLASS_NONE`, nothing in use, no remote frees), so
//!   a free into it is refused like any free into a pool not in use; `ncached` is the cache's
//!   length, at most `HEAP_POOL_CACHE`. Pools move between the arenas and a cache in batches
//!   under one lock (`HEAP_CACHE_BATCH` taken, half the cache given back).
//! - `pool.owner == h` (h non-null) only while the pool is on h's `owned` list; only h's thread
//!   (or the holder of FALLBACK's lock, for FALLBACK) changes h's lists or the pool's owner-only
//!   fields.
//! - A full pool (`in_full`) has remote state `FULL` or `NOTIFYING`, or `NORMAL` with a block of
//!   it on the owner's delayed stack (a notifier came and went; the owner's next slow path takes
//!   the block and any remote list with it). Never `NORMAL` with nothing on its way to the owner.
//!   Full pools are on no list but `owned`, as in CPython.

use crate::config::{
    HEAP_CACHE_BATCH, HEAP_KEPT_POOLS, HEAP_POOL_CACHE, MAX_HEAPS, NUM_CLASSES, REVIVE_FREE_BLOCKS,
};
use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

use super::arena::Arenas;
use super::lock::SpinLock;
use super::pool::{Pool, pool_of};
use super::remote::{Block, BlockStack, NOTIFYING, PushOutcome};
use super::size_class::blocks_per_pool;
use super::table::{Slot, SlotTable};

impl Slot for ThreadHeap {
    unsafe fn free_link(this: *mut Self) -> *mut *mut Self {
        // SAFETY: the caller passes a slot of the table; `next_slot` is unused while it is free.
        unsafe { &raw mut (*this).next_slot }
    }
}

/// A thread's allocation state.
#[repr(C)]
pub struct ThreadHeap {
    pub avail: [*mut Pool; NUM_CLASSES], // pools with room, per class; head = current
    avail_tail: [*mut Pool; NUM_CLASSES], // their tails (revived pools join at the tail)
    owned: *mut Pool,                    // all pools it owns, via owned_next/owned_prev
    pub delayed: BlockStack,             // blocks freed remotely into our FULL pools
    cache: *mut Pool,                    // retired pools kept for reuse, linked by Pool::next
    ncached: usize,                      // |cache| <= HEAP_POOL_CACHE
    nkept: usize,                        // empty pools left on avail lists, <= HEAP_KEPT_POOLS
    exiting: bool,                       // `abandon` has begun: never arm FULL again
    next_slot: *mut ThreadHeap,          // free heap-slot list
}

impl ThreadHeap {
    const fn new() -> Self {
        ThreadHeap {
            avail: [ptr::null_mut(); NUM_CLASSES],
            avail_tail: [ptr::null_mut(); NUM_CLASSES],
            owned: ptr::null_mut(),
            delayed: BlockStack::new(),
            cache: ptr::null_mut(),
            ncached: 0,
            nkept: 0,
            exiting: false,
            next_slot: ptr::null_mut(),
        }
    }
}

/// Global state, under one lock: it is touched once per pool, never once per block.
pub(crate) struct Global {
    pub arenas: Arenas,
    abandoned: [[*mut Pool; NUM_CLASSES]; 2], // [0]: with room, [1]: without; doubly linked
    abandoned_tail: [[*mut Pool; NUM_CLASSES]; 2],
    heaps: SlotTable<ThreadHeap, MAX_HEAPS>, // thread heaps; slots of exited threads reused
}

// SAFETY: the raw pointers in Global point into our own mappings and are only used under the lock.
unsafe impl Send for Global {}
// SAFETY: a ThreadHeap is used by one thread at a time (its owner, or FALLBACK's lock holder).
unsafe impl Send for ThreadHeap {}

pub(crate) static GLOBAL: SpinLock<Global> = SpinLock::new(Global {
    arenas: Arenas::new(),
    abandoned: [[ptr::null_mut(); NUM_CLASSES]; 2],
    abandoned_tail: [[ptr::null_mut(); NUM_CLASSES]; 2],
    heaps: SlotTable::new(),
});

static FALLBACK: SpinLock<ThreadHeap> = SpinLock::new(ThreadHeap::new());

const NEW: u8 = 0;
const LIVE: u8 = 1;
const EXITED: u8 = 2;

// The thread's heap and state live in `tls` (initial-exec TLS words, zero at thread start).
const _: () = assert!(NEW == 0);

/// The calling thread's heap, or null if it has none (not yet made, or the thread is exiting).
#[inline(always)]
pub fn current() -> *mut ThreadHeap {
    crate::tls::get::<{ crate::tls::HEAP }>() as *mut ThreadHeap
}

// ---------------------------------------------------------------------------------------------
// list helpers (doubly linked through Pool::next / Pool::prev)

/// # Safety
/// `p` is on no list; `head`/`tail` are the ends of a list of live pools the caller may change.
unsafe fn push_front(head: &mut *mut Pool, tail: &mut *mut Pool, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe {
        (*p).prev = ptr::null_mut();
        (*p).next = *head;
        if (*head).is_null() {
            *tail = p;
        } else {
            (**head).prev = p;
        }
    }
    *head = p;
}

/// # Safety
/// As `push_front`.
unsafe fn push_back(head: &mut *mut Pool, tail: &mut *mut Pool, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe {
        (*p).next = ptr::null_mut();
        (*p).prev = *tail;
        if (*tail).is_null() {
            *head = p;
        } else {
            (**tail).next = p;
        }
    }
    *tail = p;
}

/// # Safety
/// `p` is on the list `head`/`tail`.
unsafe fn unlink(head: &mut *mut Pool, tail: &mut *mut Pool, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe {
        if (*p).prev.is_null() {
            invariant!(*head == p, "pool not at the head of its list");
            *head = (*p).next;
        } else {
            (*(*p).prev).next = (*p).next;
        }
        if (*p).next.is_null() {
            invariant!(*tail == p, "pool not at the tail of its list");
            *tail = (*p).prev;
        } else {
            (*(*p).next).prev = (*p).prev;
        }
        (*p).next = ptr::null_mut();
        (*p).prev = ptr::null_mut();
    }
}

/// # Safety
/// `p` is a live pool the caller just took ownership of for `heap`, on no owned list.
unsafe fn own(heap: &mut ThreadHeap, p: *mut Pool) {
    // SAFETY: per the contract; owned lists hold live pools of this heap.
    unsafe {
        (*p).owned_prev = ptr::null_mut();
        (*p).owned_next = heap.owned;
        if !heap.owned.is_null() {
            (*heap.owned).owned_prev = p;
        }
    }
    heap.owned = p;
}

/// # Safety
/// `p` is on `heap`'s owned list.
unsafe fn disown(heap: &mut ThreadHeap, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe {
        if (*p).owned_prev.is_null() {
            invariant!(heap.owned == p, "pool not at the head of the owned list");
            heap.owned = (*p).owned_next;
        } else {
            (*(*p).owned_prev).owned_next = (*p).owned_next;
        }
        if !(*p).owned_next.is_null() {
            (*(*p).owned_next).owned_prev = (*p).owned_prev;
        }
        (*p).owned_next = ptr::null_mut();
        (*p).owned_prev = ptr::null_mut();
    }
}

// ---------------------------------------------------------------------------------------------
// heap acquisition

// KEY_STATE: KEY_UNSET until the process's first heap is set up, then KEY_READY (KEY holds the
// key, never written again) or KEY_FAILED (no key: heaps are never abandoned, see init_thread).
const KEY_UNSET: u8 = 0;
const KEY_READY: u8 = 1;
const KEY_FAILED: u8 = 2;
static KEY_STATE: AtomicU8 = AtomicU8::new(KEY_UNSET);
static KEY: SpinLock<libc::pthread_key_t> = SpinLock::new(0);

/// Run `f` with the calling thread's heap: its own, a new one, or FALLBACK under its lock.
///
/// # Safety
/// `f` treats the heap as the owner would (only the owning thread or FALLBACK's holder may).
#[inline]
pub unsafe fn with_heap<R>(f: impl FnOnce(*mut ThreadHeap) -> R) -> R {
    let h = current();
    if !h.is_null() {
        return f(h);
    }
    if crate::tls::get::<{ crate::tls::HEAP_STATE }>() as u8 == NEW {
        let h = init_thread();
        if !h.is_null() {
            return f(h);
        }
    }
    let guard = FALLBACK.lock();
    let r = f(FALLBACK.data_ptr());
    drop(guard);
    r
}

#[cold]
#[inline(never)]
fn init_thread() -> *mut ThreadHeap {
    crate::tls::set::<{ crate::tls::HEAP_STATE }>(usize::from(EXITED)); // re-entrant allocations during setup use FALLBACK
    let key = thread_key();
    let h = {
        let mut g = GLOBAL.lock();
        g.new_heap()
    };
    if h.is_null() {
        return h;
    }
    crate::tls::set::<{ crate::tls::HEAP }>(h as usize);
    crate::tls::set::<{ crate::tls::HEAP_STATE }>(usize::from(LIVE));
    if let Some(key) = key {
        // SAFETY: key is a valid key; keys < 32 live in the thread descriptor (no allocation).
        unsafe { libc::pthread_setspecific(key, h.cast()) };
    }
    h
}

/// The thread-exit key, created (with the fork handlers) by the process's first heap.
fn thread_key() -> Option<libc::pthread_key_t> {
    match KEY_STATE.load(Ordering::Acquire) {
        // SAFETY: KEY's value was written before KEY_READY was published (Release) and is
        // never written again, so reading it without the lock races with nothing.
        KEY_READY => Some(unsafe { *KEY.data_ptr() }),
        KEY_FAILED => None,
        _ => process_init(),
    }
}

/// For the entry points that take GLOBAL without a heap (statistics, trim, validate): make sure
/// the one-time setup has run, so a fork can never find GLOBAL held and no handlers.
pub(crate) fn ensure_process_init() {
    if KEY_STATE.load(Ordering::Acquire) != KEY_UNSET {
        return;
    }
    if crate::tls::get::<{ crate::tls::HEAP_STATE }>() as u8 == NEW {
        // Set up this thread's heap the usual way: init_thread runs the setup in state EXITED,
        // so an allocation inside it (glibc's atfork table, under the malloc replacement) uses
        // FALLBACK instead of coming back for KEY.
        // SAFETY: the closure does nothing with the heap.
        unsafe { with_heap(|_| ()) };
    } else {
        // EXITED: a nested allocation would use FALLBACK, never KEY.
        let _ = thread_key();
    }
}

/// One-time setup, by the first heap (or `ensure_process_init`): the fork handlers, then the
/// thread-exit key.
///
/// The handlers are registered before this thread takes GLOBAL for the first time, and every
/// other thread waits here (on KEY) until they are, so no allocator lock other than KEY can be
/// held by a thread while a fork finds no handlers. (A fork from a thread that never allocated,
/// during this one call, can still find KEY held: the child's first heap would then wait on it.
/// Only a constructor could close that window.) Once this is done KEY is taken only by the
/// fork handlers.
#[cold]
#[inline(never)]
fn process_init() -> Option<libc::pthread_key_t> {
    let mut k = KEY.lock();
    match KEY_STATE.load(Ordering::Acquire) {
        KEY_READY => return Some(*k),
        KEY_FAILED => return None,
        _ => {}
    }
    // Its result is not checked: glibc fails only without memory for its table, and the process
    // then forks without our handlers, as before any allocator existed (a child of a
    // multi-threaded parent may find a lock held).
    // SAFETY: the handlers are plain functions that only take and release our locks. Nested
    // allocations (glibc's atfork table) run in state EXITED (init_thread), so they use
    // FALLBACK and never come back here.
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
    // SAFETY: k is a valid out-pointer; the destructor has the required signature.
    let ok = unsafe { libc::pthread_key_create(&mut *k, Some(thread_exit)) } == 0;
    KEY_STATE.store(if ok { KEY_READY } else { KEY_FAILED }, Ordering::Release);
    ok.then_some(*k)
}

// fork: every allocator lock is taken before and released after, so the child never inherits
// a lock held by a thread that does not exist there. None of these locks is ever held while
// another is taken, except FALLBACK -> GLOBAL, so this order cannot deadlock.

extern "C" fn fork_prepare() {
    super::debug::fork_lock();
    KEY.raw_lock();
    FALLBACK.raw_lock();
    GLOBAL.raw_lock();
}

/// # Safety
/// `fork_prepare` took the locks on this thread.
unsafe fn fork_unlock() {
    // SAFETY: per the contract.
    unsafe {
        GLOBAL.raw_unlock();
        FALLBACK.raw_unlock();
        KEY.raw_unlock();
        super::debug::fork_unlock();
    }
}

extern "C" fn fork_parent() {
    // SAFETY: fork_prepare took the locks on this thread.
    unsafe { fork_unlock() }
}

extern "C" fn fork_child() {
    // The child's only thread is this one. A thread caught between the two steps of a
    // notification (remote.rs) left its pool's word NOTIFYING, and nobody here will end it:
    // re-arm such pools as FULL, so the next remote free notifies again. (The block that thread
    // was handing over, if it had not pushed it yet, is lost to the child: one block.)
    {
        // SAFETY: fork_prepare holds GLOBAL on this thread, the only one in the child.
        let g = unsafe { &*GLOBAL.data_ptr() };
        g.arenas.for_each(|d| {
            for p in d.touched_pools() {
                // SAFETY: touched pools have initialized headers; the child has no other
                // thread, and only the atomic remote word is touched.
                let p = unsafe { &*p };
                if p.class() != super::size_class::CLASS_NONE {
                    p.remote.rearm_after_fork();
                }
            }
        });
    }
    // SAFETY: the child's only thread is the one that took the locks in fork_prepare.
    unsafe { fork_unlock() }
}

impl Global {
    fn new_heap(&mut self) -> *mut ThreadHeap {
        let h = self.heaps.take();
        if !h.is_null() {
            // SAFETY: h is a slot nobody uses.
            unsafe { ptr::write(h, ThreadHeap::new()) };
        }
        h
    }

    fn abandoned_push(&mut self, p: *mut Pool) {
        // SAFETY: p is a live pool on no list.
        unsafe {
            let (full, class) = ((*p).in_full as usize, (*p).class());
            push_front(
                &mut self.abandoned[full][class],
                &mut self.abandoned_tail[full][class],
                p,
            );
        }
    }

    fn abandoned_remove(&mut self, p: *mut Pool) {
        // SAFETY: p is on abandoned[in_full][class].
        unsafe {
            let (full, class) = ((*p).in_full as usize, (*p).class());
            unlink(
                &mut self.abandoned[full][class],
                &mut self.abandoned_tail[full][class],
                p,
            );
        }
    }

    /// Adopt an abandoned pool of `class` that has room, if any.
    fn adopt_with_room(&mut self, class: usize) -> *mut Pool {
        let p = self.abandoned[0][class];
        if !p.is_null() {
            self.abandoned_remove(p);
            // SAFETY: p is a live abandoned pool.
            let ok = unsafe { (*p).remote.adopt() };
            invariant!(ok, "abandoned pool not ABANDONED");
        }
        p
    }
}

// ---------------------------------------------------------------------------------------------
// allocation slow path

/// Allocation of a block of `class` when the fast path found nothing. Returns the block (null
/// when out of memory) and whether it is known to be zero.
#[cold]
#[inline(never)]
pub fn alloc_slow(class: usize) -> (*mut u8, bool) {
    // SAFETY: heap_alloc acts as the heap's owner, which with_heap guarantees we are.
    unsafe { with_heap(|h| heap_alloc(h, class)) }
}

/// # Safety
/// The caller acts as the owner of `h`.
unsafe fn heap_alloc(h: *mut ThreadHeap, class: usize) -> (*mut u8, bool) {
    // SAFETY: the caller owns h and so every pool on its lists.
    unsafe {
        let heap = &mut *h;
        if !heap.delayed.is_empty() {
            process_delayed(h);
        }
        loop {
            let p = heap.avail[class];
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
                return got;
            }
            if (*p).collect_remote() > 0 {
                continue;
            }
            if (*p).remote.try_mark_full() {
                // Full: off the avail list, on no list but `owned` (CPython's "full" state).
                unlink(&mut heap.avail[class], &mut heap.avail_tail[class], p);
                (*p).in_full = true;
            }
        }
        // No pool with room: reuse a cached pool, adopt an abandoned one, or take new ones.
        let p = if !heap.cache.is_null() {
            cache_pop(heap, class)
        } else {
            let mut g = GLOBAL.lock();
            let p = g.adopt_with_room(class);
            if !p.is_null() {
                (*p).owner.store(h, Ordering::Release);
                p
            } else {
                // Take a batch while the lock is held: one locked instruction per
                // HEAP_CACHE_BATCH pools, not per pool (see HEAP_CACHE_BATCH).
                for _ in 0..HEAP_CACHE_BATCH {
                    let Some(np) = g.arenas.alloc_pool() else {
                        break;
                    };
                    Pool::init_cached(np.pool, np.fresh);
                    cache_push(heap, np.pool);
                }
                drop(g);
                if heap.cache.is_null() {
                    return (ptr::null_mut(), false);
                }
                cache_pop(heap, class)
            }
        };
        (*p).collect_remote();
        (*p).in_full = false;
        own(heap, p);
        push_front(&mut heap.avail[class], &mut heap.avail_tail[class], p);
        let got = (*p).take_block();
        invariant!(!got.0.is_null(), "a new or adopted pool has room");
        got
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
            let p = pool_of(b.cast());
            invariant!(
                (*p).owner.load(Ordering::Relaxed) == h,
                "delayed block of another heap"
            );
            // Remote frees are arriving here: for a pool with room, stop diverting them through
            // the delayed stack. (A full pool must stay FULL: local_free_slow sees to it.)
            if !(*p).in_full {
                (*p).remote.clear_full();
            }
            let n = (*p).put_block(b.cast());
            if n == 0 || (*p).in_full {
                local_free_slow(h, p, n);
            }
            b = next;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// free slow paths

/// After a local free left the pool empty (`n == 0`) or the pool was on the full list.
///
/// # Safety
/// The caller owns `h`, and `p` is one of its pools.
#[cold]
#[inline(never)]
pub unsafe fn local_free_slow(h: *mut ThreadHeap, p: *mut Pool, n: u32) {
    // SAFETY: the caller owns h and p.
    unsafe {
        let heap = &mut *h;
        let class = (*p).class();
        let mut n = n;
        while (*p).in_full && blocks_per_pool(class) as u32 - n < REVIVE_FREE_BLOCKS {
            // Not enough room yet to be worth reviving (see REVIVE_FREE_BLOCKS). It stays off
            // the lists, so it must be FULL for the next remote free to tell us (a notifier
            // leaves the word NORMAL); pending remote frees are taken first.
            if heap.exiting {
                // Except in a heap being abandoned: after `abandon`'s first step no pool of it
                // may be FULL, or a remote free could notify it after its last look at the
                // delayed stack and the block would be stranded there. The pool stays off the
                // lists as it is; `abandon` takes its remote list when it abandons it.
                return;
            }
            if (*p).remote.try_mark_full() {
                return;
            }
            (*p).collect_remote();
            n = (*p).used();
        }
        if (*p).in_full {
            // Revive it at the tail, as mimalloc does: it collects more frees before it is
            // used again, so a pool changes state less often. Its remote word may stay FULL
            // (see RemoteWord::clear_full).
            (*p).in_full = false;
            push_back(&mut heap.avail[class], &mut heap.avail_tail[class], p);
        }
        if n == 0 {
            // Keep the current pool of a class so a hot alloc/free pair does not thrash, and
            // leave a few more where they are, so refilling them touches no list.
            if heap.avail[class] == p {
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

/// A free of a small block whose pool the calling thread does not own.
///
/// # Safety
/// `b` is a live block handed out by the pool allocator, and the caller gives it up.
#[cold]
#[inline(never)]
pub unsafe fn free_remote(b: *mut u8) {
    let p = pool_of(b);
    loop {
        // SAFETY: b is a live block of p, so p's header is live.
        match unsafe { (*p).remote.push(b.cast::<Block>()) } {
            PushOutcome::Pushed => return,
            PushOutcome::Notify => {
                // SAFETY: while NOTIFYING the owner cannot abandon p, so the owner heap is live.
                unsafe {
                    let owner = (*p).owner.load(Ordering::Acquire);
                    invariant!(!owner.is_null(), "FULL pool without owner");
                    (*owner).delayed.push(b.cast());
                    (*p).remote.end_notify();
                }
                return;
            }
            PushOutcome::Abandoned => {
                let adopted = {
                    let mut g = GLOBAL.lock();
                    // SAFETY: p is live (b is in use in it).
                    if unsafe { (*p).remote.adopt() } {
                        g.abandoned_remove(p);
                        true
                    } else {
                        false
                    }
                };
                if adopted {
                    // SAFETY: we adopted p: nobody else owns it now; with_heap gives us a heap.
                    unsafe { with_heap(|h| adopt_and_free(h, p, b)) };
                    return;
                }
                // Someone else adopted it first: free again against the new owner.
            }
        }
    }
}

/// # Safety
/// `p` was just adopted by the caller, who acts as the owner of `h`.
unsafe fn adopt_and_free(h: *mut ThreadHeap, p: *mut Pool, b: *mut u8) {
    // SAFETY: per the contract.
    unsafe {
        (*p).owner.store(h, Ordering::Release);
        (*p).collect_remote();
        (*p).in_full = false;
        let class = (*p).class();
        let heap = &mut *h;
        own(heap, p);
        push_back(&mut heap.avail[class], &mut heap.avail_tail[class], p);
        let n = (*p).put_block(b);
        if n == 0 {
            local_free_slow(h, p, n);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// thread exit

extern "C" fn thread_exit(arg: *mut libc::c_void) {
    crate::tls::set::<{ crate::tls::HEAP }>(0);
    crate::tls::set::<{ crate::tls::HEAP_STATE }>(usize::from(EXITED));
    let h = arg.cast::<ThreadHeap>();
    if !h.is_null() {
        // SAFETY: this is h's thread, at exit; nobody else owns h.
        unsafe { abandon(h) };
    }
}

/// Give up every pool of `h` and return its slot.
///
/// # Safety
/// The caller owns `h`, and nothing will use it afterwards.
pub(crate) unsafe fn abandon(h: *mut ThreadHeap) {
    // SAFETY: the caller owns h and all its pools.
    unsafe {
        let heap = &mut *h;
        // From here on nothing arms FULL on our pools (`local_free_slow`), so after step 1 no
        // remote free can notify this heap, and step 2 sees every block ever handed to it.
        heap.exiting = true;
        // 1. No new notifications (FULL may be set on any pool).
        let mut p = heap.owned;
        while !p.is_null() {
            (*p).remote.clear_full();
            (*p).remote.settled(); // no notifier at work
            p = (*p).owned_next;
        }
        // 2. Take what notifiers handed us.
        process_delayed(h);
        // 3. Abandon or release each pool.
        while !heap.owned.is_null() {
            let p = heap.owned;
            disown(heap, p);
            if !(*p).in_full {
                let c = (*p).class();
                unlink(&mut heap.avail[c], &mut heap.avail_tail[c], p);
            }
            (*p).owner.store(ptr::null_mut(), Ordering::Release);
            // ABANDONED and on the abandoned list in one critical section: an adopter (who
            // needs the lock) must never see the first without the second.
            let mut g = GLOBAL.lock();
            while let Err(pending) = (*p).remote.try_abandon() {
                (*p).adopt_list(pending);
            }
            if (*p).used() == 0 {
                (*p).remote.reset();
                (*p).retire();
                g.arenas.free_pool(p);
            } else {
                (*p).in_full = (*p).is_exhausted();
                g.abandoned_push(p);
            }
        }
        invariant!(
            heap.delayed.is_empty(),
            "a block was handed to an exiting heap after its last look"
        );
        release_cached(heap, 0);
        GLOBAL.lock().heaps.give_back(h);
    }
}

/// Take an empty pool of `heap` (not kept) off its lists, retire it, and put it in the cache,
/// giving half the cache back to the arenas when it overflows.
///
/// # Safety
/// The caller owns `heap`; `p` is one of its pools with nothing in use, on its avail list.
unsafe fn retire_to_cache(heap: &mut ThreadHeap, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe {
        let class = (*p).class();
        unlink(&mut heap.avail[class], &mut heap.avail_tail[class], p);
        disown(heap, p);
        (*p).remote.settled(); // no notifier at work
        (*p).retire();
        cache_push(heap, p);
        if heap.ncached > HEAP_POOL_CACHE {
            // Give back a batch under one lock, keeping half the cache.
            release_cached(heap, HEAP_POOL_CACHE / 2);
        }
    }
}

/// # Safety
/// `p` is retired (`Pool::retire` or `Pool::init_cached`), on no list, and nobody else uses it.
unsafe fn cache_push(heap: &mut ThreadHeap, p: *mut Pool) {
    // SAFETY: per the contract.
    unsafe { (*p).next = heap.cache };
    heap.cache = p;
    heap.ncached += 1;
}

/// Take a pool from the cache (not empty) and set it up for `class`.
///
/// # Safety
/// The caller owns `heap`.
unsafe fn cache_pop(heap: &mut ThreadHeap, class: usize) -> *mut Pool {
    let p = heap.cache;
    invariant!(!p.is_null(), "pop from an empty pool cache");
    // SAFETY: cached pools are retired pools of this heap, on no other list.
    unsafe {
        heap.cache = (*p).next;
        heap.ncached -= 1;
        (*p).reinit(class, heap);
    }
    p
}

/// Give cached pools back to their arenas, under one lock, until `keep` are left.
///
/// # Safety
/// The caller owns `heap`.
unsafe fn release_cached(heap: &mut ThreadHeap, keep: usize) {
    if heap.ncached <= keep {
        return;
    }
    let mut g = GLOBAL.lock();
    while heap.ncached > keep {
        let p = heap.cache;
        // SAFETY: cached pools are retired pools of this heap and on no other list.
        unsafe {
            heap.cache = (*p).next;
            g.arenas.free_pool(p);
        }
        heap.ncached -= 1;
    }
}

/// Give back to the arenas every empty pool the calling thread's heap keeps, after taking its
/// pending remote and delayed frees. The allocator keeps one empty pool per class for speed;
/// `trim` hands those back (like `malloc_trim`).
pub fn trim() {
    let h = current();
    if !h.is_null() {
        // SAFETY: h is the calling thread's own heap.
        unsafe { trim_heap(h) };
    }
    ensure_process_init();
    GLOBAL.lock().arenas.purge(true);
}

/// # Safety
/// `h` is the calling thread's own heap.
unsafe fn trim_heap(h: *mut ThreadHeap) {
    // SAFETY: h is the calling thread's own heap.
    unsafe {
        process_delayed(h);
        let heap = &mut *h;
        for class in 0..NUM_CLASSES {
            let mut p = heap.avail[class];
            while !p.is_null() {
                let next = (*p).next;
                (*p).collect_remote();
                if (*p).used() == 0 {
                    if (*p).kept {
                        (*p).kept = false;
                        heap.nkept -= 1;
                    }
                    retire_to_cache(heap, p);
                }
                p = next;
            }
        }
        release_cached(heap, 0);
    }
}

/// Pools retired in the calling thread's cache (tests).
#[cfg(test)]
pub(crate) fn cached_pools() -> usize {
    let h = current();
    if h.is_null() {
        return 0;
    }
    // SAFETY: h is the calling thread's own live heap.
    unsafe { (*h).ncached }
}

/// Check every pool of the calling thread's heap (`pool_is_valid`), and the list invariants.
pub fn heap_is_valid() -> Result<(), &'static str> {
    let h = current();
    if h.is_null() {
        return Ok(());
    }
    // SAFETY: h is the calling thread's own heap.
    unsafe {
        let heap = &*h;
        let (mut in_avail, mut kept) = (0usize, 0usize);
        for class in 0..NUM_CLASSES {
            let mut p = heap.avail[class];
            while !p.is_null() {
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
                p = (*p).next;
            }
        }
        let mut not_full = 0usize;
        let mut p = heap.owned;
        while !p.is_null() {
            super::pool::pool_is_valid(p)?;
            if (*p).owner.load(Ordering::Relaxed) != h {
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
                && st != super::remote::FULL
                && st != NOTIFYING
                && !heap.delayed.any(|b| pool_of(b.cast()) == p)
            {
                return Err("a full pool off the lists whose remote word would not notify us");
            }
            p = (*p).owned_next;
        }
        if not_full != in_avail {
            return Err("owned pools with room are not exactly the avail pools");
        }
        if kept != heap.nkept {
            return Err("kept-pool count disagrees with the avail lists");
        }
        let mut cached = 0usize;
        let mut p = heap.cache;
        while !p.is_null() {
            if (*p).class() != super::size_class::CLASS_NONE
                || (*p).used() != 0
                || !(*p).remote.is_empty()
            {
                return Err("a cached pool is not retired");
            }
            cached += 1;
            if cached > HEAP_POOL_CACHE {
                return Err("the pool cache is over its bound");
            }
            p = (*p).next;
        }
        if cached != heap.ncached {
            return Err("cached-pool count disagrees with the cache list");
        }
    }
    // (A heap exists, so the one-time setup has run: no ensure_process_init here.)
    GLOBAL.lock().arenas.arenas_are_valid()
}
