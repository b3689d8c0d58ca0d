//! Which heap a thread uses, and the lifecycle around it: a heap made on first use, given up at
//! thread exit, the fallback heap for threads that have none, the one-time process setup, and
//! the `fork` handlers. The entry points that need "the calling thread's heap" (the slow paths
//! of the fast paths, `trim`, `validate`) start here and call `heap.rs` with an explicit heap.
//!
//! ```text
//!  TLS HEAP, HEAP_STATE (crate::tls)   NEW ──first small alloc──> LIVE ──thread exit──> EXITED
//!                                        │ (init_thread: setup,     │ (key destructor:
//!                                        │  a heap from HEAPS)      │  heap::abandon)
//!                                        └───── no heap to be had ──┴──> FALLBACK (under its lock)
//!  HEAPS (SpinLock<SlotTable>)   thread heaps; the slots of exited threads are reused
//!  FALLBACK (SpinLock<ThreadHeap>)  a heap for threads that have none (during thread exit, or
//!                                   when the heap table could not be mapped)
//!  SAMPLED (SpinLock<ThreadHeap>)   the sampled pool blocks of the tracer's sampled mode
//!                                   (`sampler.rs`); owned by no thread
//!  KEY (pthread key, destructor thread_exit), fork handlers: set up once per process
//! ```
//!
//! A thread gets a heap on its first small allocation (its pointer is a zero-initialized TLS
//! word, so reading it never allocates) and registers a pthread key destructor that abandons
//! the heap when the thread exits. glibc runs key destructors after Rust's thread-local
//! destructors, so their frees still find the heap; anything later falls back to `FALLBACK`.
//!
//! Locks and their order (a lock is only ever taken while holding those before it):
//! `KEY` (setup only) -> `FALLBACK` -> `SAMPLED` -> `HEAPS` / `GLOBAL`. `HEAPS` and `GLOBAL`
//! are never held together; `SAMPLED` is taken with no other allocator lock held. The process
//! setup registers them, in that order, with the fork handlers (`fork.rs`), which take them
//! after any lock registered earlier (the debug backend's quarantine, when that backend is in
//! use). While a fork is in progress, the malloc family never waits for them (`lock.rs`):
//! `try_with_heap`, `alloc_slow`, `sampled_alloc` and `free_remote` report "busy" or defer
//! instead.
//!
//! Invariants:
//! - `HEAP` is non-null exactly in state `LIVE`, and then names a heap only this thread uses.
//! - Only the thread itself changes its TLS words.
//! - A heap's slot goes back to `HEAPS` only after `heap::abandon` gave up all its pools.

use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::config::MAX_HEAPS;
use crate::tls;

use super::counter::LargeCounts;
use super::fork;
use super::global::GLOBAL;
use super::heap::{self, ThreadHeap};
use super::lock::{self, SpinLock};
use super::pool::{Pool, pool_of_any};
use super::remote::{Block, BlockStack, RemoteFree, remote_free};
use super::table::SlotTable;
use crate::config::ALL_CLASSES;

const NEW: u8 = 0;
const LIVE: u8 = 1;
const EXITED: u8 = 2;

// The TLS words are zero at thread start.
const _: () = assert!(NEW == 0);

static HEAPS: SpinLock<SlotTable<ThreadHeap, MAX_HEAPS>> = SpinLock::new(SlotTable::new());
static FALLBACK: SpinLock<ThreadHeap> = SpinLock::new(ThreadHeap::new());
/// The heap of the sampled pool blocks (`sampler.rs`): no thread owns it, so every free of its
/// blocks leaves the fast path (a remote free), where the trace is forgotten.
#[cfg(feature = "trace")]
static SAMPLED: SpinLock<ThreadHeap> = SpinLock::new(ThreadHeap::new());

#[inline(always)]
fn state() -> u8 {
    tls::get::<{ tls::HEAP_STATE }>() as u8
}

#[inline(always)]
fn set_state(s: u8) {
    tls::set::<{ tls::HEAP_STATE }>(usize::from(s));
}

/// The calling thread's heap, or null if it has none (not yet made, or the thread is exiting).
#[inline(always)]
pub fn current() -> *mut ThreadHeap {
    tls::get::<{ tls::HEAP }>() as *mut ThreadHeap
}

#[inline(always)]
fn set_current(h: *mut ThreadHeap) {
    tls::set::<{ tls::HEAP }>(h as usize);
}

/// Run `f` with the calling thread's heap: its own, a new one, or FALLBACK under its lock
/// (waiting for a fork in progress on another thread, if it holds those locks).
///
/// # Safety
/// `f` treats the heap as the owner would (only the owning thread or FALLBACK's holder may).
#[inline]
pub unsafe fn with_heap<R>(f: impl FnOnce(*mut ThreadHeap) -> R) -> R {
    let h = current();
    if !h.is_null() {
        return f(h);
    }
    if state() == NEW {
        let h = init_thread(false);
        if !h.is_null() {
            return f(h);
        }
    }
    let guard = FALLBACK.lock();
    let r = f(FALLBACK.data_ptr());
    drop(guard);
    r
}

/// [`with_heap`] for the malloc family, which must never wait for a fork in progress on another
/// thread (`lock.rs`): `None` when the heap it would use needs a lock that fork holds.
///
/// # Safety
/// As [`with_heap`].
#[inline]
pub unsafe fn try_with_heap<R>(f: impl FnOnce(*mut ThreadHeap) -> R) -> Option<R> {
    let h = current();
    if !h.is_null() {
        return Some(f(h));
    }
    if state() == NEW {
        let h = init_thread(true);
        if !h.is_null() {
            return Some(f(h));
        }
    }
    let guard = FALLBACK.lock_or_busy()?;
    let r = f(FALLBACK.data_ptr());
    drop(guard);
    Some(r)
}

/// Give the calling thread a heap; null when it cannot have one now (no slot, or `busy_ok` and
/// a fork in progress holds the heap table: the thread stays `NEW` and tries again later).
#[cold]
#[inline(never)]
fn init_thread(busy_ok: bool) -> *mut ThreadHeap {
    set_state(EXITED); // re-entrant allocations during setup use FALLBACK
    let key = thread_key();
    let h = if busy_ok {
        match HEAPS.lock_or_busy() {
            Some(mut heaps) => heaps.take(),
            None => {
                set_state(NEW);
                return ptr::null_mut();
            }
        }
    } else {
        HEAPS.lock().take()
    };
    if h.is_null() {
        return h;
    }
    // SAFETY: h is a slot nobody uses.
    unsafe { ptr::write(h, ThreadHeap::new()) };
    set_current(h);
    set_state(LIVE);
    if let Some(key) = key {
        // SAFETY: key is a valid key; keys < 32 live in the thread descriptor (no allocation).
        unsafe { libc::pthread_setspecific(key, h.cast()) };
    }
    h
}

extern "C" fn thread_exit(arg: *mut libc::c_void) {
    set_current(ptr::null_mut());
    set_state(EXITED);
    let h = arg.cast::<ThreadHeap>();
    if !h.is_null() {
        // SAFETY: this is h's thread, at exit; nobody else owns h, and nothing uses it after.
        unsafe {
            heap::abandon(h);
            let mut heaps = HEAPS.lock();
            // The counts move to the shared ones under HEAPS' lock, so `large_totals` sees them
            // in exactly one place.
            let c = &(*h).large;
            let (bytes, blocks) = (
                c.bytes.load(Ordering::Relaxed),
                c.blocks.load(Ordering::Relaxed),
            );
            LARGE_ELSEWHERE.bytes.fetch_add(bytes, Ordering::Relaxed);
            LARGE_ELSEWHERE.blocks.fetch_add(blocks, Ordering::Relaxed);
            c.add(bytes.wrapping_neg(), blocks.wrapping_neg());
            heaps.give_back(h);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// entry points with the calling thread's heap

/// Allocation of a block of `class` when the fast path found nothing. Returns the block (null
/// when out of memory) and whether it is known to be zero; `None` when it needs a lock that a
/// fork in progress on another thread holds (the caller decides: `plain.rs`).
#[cold]
#[inline(never)]
pub fn alloc_slow(class: usize) -> Option<(*mut u8, bool)> {
    if !DEFERRED.is_empty() {
        drain_deferred();
    }
    // SAFETY: heap::alloc acts as the heap's owner, which try_with_heap guarantees we are.
    unsafe { try_with_heap(|h| heap::alloc(h, class)) }.flatten()
}

/// Wait until no fork is in progress on another thread (for callers that cannot do without a
/// lock the fork holds).
#[cold]
pub fn wait_for_fork() {
    let wait = crate::sync::Wait::new();
    while lock::forking_elsewhere() {
        wait.snooze();
    }
}

/// Frees into abandoned pools that found `GLOBAL` held by a fork in progress on another thread
/// (they never wait for one, `lock.rs`). The blocks stay in use in their pools until
/// `drain_deferred` frees them again: the fork handlers do, after the fork, and so does the next
/// allocation slow path of any thread.
static DEFERRED: BlockStack = BlockStack::new();

/// Free the deferred blocks again.
#[cold]
#[inline(never)]
fn drain_deferred() {
    let mut b = DEFERRED.take_all();
    while !b.is_null() {
        // SAFETY: deferred blocks are live blocks their freer gave up; each is freed once.
        unsafe {
            let next = (*b).next;
            free_remote(b.cast());
            b = next;
        }
    }
}

/// A free of a small block whose pool the calling thread does not own: `remote::remote_free`,
/// and if the pool was abandoned, adoption into this thread's heap (deferred while a fork in
/// progress on another thread holds the locks that needs).
///
/// # Safety
/// `b` is a live block handed out by the pool allocator, and the caller gives it up.
#[cold]
#[inline(never)]
pub unsafe fn free_remote(b: *mut u8) {
    // SAFETY: b is a live block of ours, so its arena is mapped.
    let p = unsafe { pool_of_any(b) };
    // A sampled block: its trace goes before the block does (another thread may get it next).
    // SAFETY: as below, p's header is live.
    #[cfg(feature = "trace")]
    if unsafe { (*p).owner.load(Ordering::Relaxed) } == ThreadHeap::tag(SAMPLED.data_ptr()) {
        super::sampler::forget(b);
    }
    loop {
        // SAFETY: b is a live block of p, so p's header is live; the owner read while the word
        // is NOTIFYING is a live heap (remote.rs).
        let outcome = unsafe {
            remote_free(&(*p).remote, b.cast::<Block>(), || {
                heap::delayed_of((*p).owner.load(Ordering::Acquire))
            })
        };
        if outcome == RemoteFree::Done {
            return;
        }
        // SAFETY: the closure acts as the owner of the heap it is given (try_with_heap); b is
        // still ours (not given away: Abandoned); winning `adopt` puts p in our hands, and it
        // was on the abandoned list (same critical section as ABANDONED, see global.rs).
        let adopted = unsafe {
            try_with_heap(|h| {
                let mut g = GLOBAL.lock_or_busy()?;
                if !(*p).remote.adopt() {
                    return Some(false);
                }
                g.abandoned_remove(p);
                drop(g);
                heap::adopt_and_free(h, p, b);
                Some(true)
            })
        };
        match adopted.flatten() {
            Some(true) => return,
            Some(false) => {}
            None => {
                // A fork in progress on another thread holds a lock adoption needs.
                // SAFETY: b was not given away (Abandoned); the stack takes it.
                unsafe { DEFERRED.push(b.cast()) };
                return;
            }
        }
        // Someone else adopted it first: free again against the new owner.
    }
}

/// Give back the calling thread's kept empty pools, and unmap the free arenas now.
pub fn trim() {
    let h = current();
    if !h.is_null() {
        // SAFETY: h is the calling thread's own heap.
        unsafe { heap::trim(h) };
    }
    ensure_process_init();
    let mut g = GLOBAL.lock();
    g.arenas.purge(true);
    g.runs.purge(true);
}

/// Check the calling thread's heap and the arenas.
pub fn validate() -> Result<(), &'static str> {
    let h = current();
    if h.is_null() {
        return Ok(());
    }
    // SAFETY: h is the calling thread's own heap.
    unsafe { heap::is_valid(h)? };
    // (A heap exists, so the one-time setup has run: no ensure_process_init here.)
    let g = GLOBAL.lock();
    g.arenas.arenas_are_valid()?;
    g.runs.arenas_are_valid()
}

// ---------------------------------------------------------------------------------------------
// the large blocks' counts

/// Large blocks counted by threads that had no heap (during thread exit), and the counts of
/// exited threads, folded in by `thread_exit`.
static LARGE_ELSEWHERE: LargeCounts = LargeCounts::new();

/// Count `bytes` and `blocks` (wrapping deltas) of large blocks for the calling thread: into
/// its heap, made now if the thread has none yet, with plain stores; else into the shared
/// counts.
#[inline]
pub fn count_large(bytes: usize, blocks: usize) {
    let h = current_or_new();
    if h.is_null() {
        LARGE_ELSEWHERE.bytes.fetch_add(bytes, Ordering::Relaxed);
        LARGE_ELSEWHERE.blocks.fetch_add(blocks, Ordering::Relaxed);
    } else {
        // SAFETY: h is the calling thread's live heap; only its owner writes its counts.
        unsafe { (*h).large.add(bytes, blocks) };
    }
}

/// The calling thread's heap, made now if the thread has none yet (null: it cannot have one,
/// or a fork in progress holds the heap table).
#[inline]
pub fn current_or_new() -> *mut ThreadHeap {
    let h = current();
    if h.is_null() && state() == NEW {
        return init_thread(true);
    }
    h
}

/// A block of `class` from the SAMPLED heap (`sampler.rs`); None when a fork in progress holds
/// its lock or no memory is to be had (the caller then allocates as usual, unsampled).
#[cfg(feature = "trace")]
#[cold]
#[inline(never)]
pub fn sampled_alloc(class: usize) -> Option<(*mut u8, bool)> {
    let guard = SAMPLED.lock_or_busy()?;
    // SAFETY: holding SAMPLED's lock, this thread acts as its heap's owner.
    let got = unsafe { heap::alloc(SAMPLED.data_ptr(), class) };
    drop(guard);
    got
}

/// Make the calling thread's heap look at the sampling session at its next allocation
/// (`sampler::start`; other heaps look within `sampler::RECHECK` steps).
#[cfg(feature = "trace")]
pub fn poke_heap() {
    let h = current();
    if !h.is_null() {
        // SAFETY: h is the calling thread's own heap.
        unsafe { (*h).sample.poke() };
    }
}

/// Restart the calling thread's sampling stream from `seed` (`trace::reseed_sampler`).
#[cfg(feature = "trace")]
pub fn reseed_sampler(seed: u64) {
    let h = current_or_new();
    if !h.is_null() {
        // SAFETY: h is the calling thread's own heap.
        unsafe { (*h).sample.reseed(seed) };
    }
}

/// The sums (wrapping) of every thread's large-block counts.
pub fn large_totals() -> (usize, usize) {
    let heaps = HEAPS.lock(); // no thread folds its counts in meanwhile
    let mut bytes = LARGE_ELSEWHERE.bytes.load(Ordering::Relaxed);
    let mut blocks = LARGE_ELSEWHERE.blocks.load(Ordering::Relaxed);
    for h in heaps.slot_ptrs() {
        // SAFETY: every slot ever handed out was written (ThreadHeap::new) before its index was
        // published under this lock; the counts are atomics, read without touching the rest of
        // a heap its owner may be changing.
        let c = unsafe { &(*h).large };
        bytes = bytes.wrapping_add(c.bytes.load(Ordering::Relaxed));
        blocks = blocks.wrapping_add(c.blocks.load(Ordering::Relaxed));
    }
    (bytes, blocks)
}

/// Retired pools in the calling thread's cache (tests).
#[cfg(test)]
pub(crate) fn cached_pools() -> usize {
    let h = current();
    if h.is_null() {
        return 0;
    }
    // SAFETY: h is the calling thread's own live heap.
    unsafe { (*h).ncached() }
}

// ---------------------------------------------------------------------------------------------
// one-time setup

// KEY_STATE: KEY_UNSET until the process's first heap is set up, then KEY_READY (KEY holds the
// key, never written again) or KEY_FAILED (no key: heaps are never abandoned, see init_thread).
const KEY_UNSET: u8 = 0;
const KEY_READY: u8 = 1;
const KEY_FAILED: u8 = 2;
static KEY_STATE: AtomicU8 = AtomicU8::new(KEY_UNSET);
static KEY: SpinLock<libc::pthread_key_t> = SpinLock::new(0);

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
    if state() == NEW {
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
    // The fork handlers take these in this order (the lock order), after any registered earlier
    // (the debug quarantine's). Nested allocations (glibc's atfork table) run in state EXITED
    // (init_thread), so they use FALLBACK and never come back here.
    fork::add_lock(KEY.raw());
    fork::add_lock(FALLBACK.raw());
    #[cfg(feature = "trace")]
    fork::add_lock(SAMPLED.raw());
    fork::add_lock(HEAPS.raw());
    fork::add_lock(GLOBAL.raw());
    fork::install(rearm_after_fork, after_fork);
    // SAFETY: k is a valid out-pointer; the destructor has the required signature.
    let ok = unsafe { libc::pthread_key_create(&mut *k, Some(thread_exit)) } == 0;
    KEY_STATE.store(if ok { KEY_READY } else { KEY_FAILED }, Ordering::Release);
    ok.then_some(*k)
}

/// In the child after a fork, with every lock held (`fork.rs`): a thread caught between the two
/// steps of a notification (remote.rs) left its pool's word NOTIFYING, and nobody here will end
/// it: re-arm such pools as FULL, so the next remote free notifies again. (The block that thread
/// was handing over, if it had not pushed it yet, is lost to the child: one block, a leak, not a
/// block in two places.) Everything else a missing thread may have left half done is either
/// under a lock the fork handlers held (so complete), or in its own heap, which the child never
/// uses (its pools stay with it: a leak in the child).
fn rearm_after_fork() {
    // SAFETY: the fork handlers hold GLOBAL on this thread, the only one in the child.
    let g = unsafe { &*GLOBAL.data_ptr() };
    g.for_each_arena(|d| {
        for p in d.touched_pools() {
            // SAFETY: touched pools have initialized headers; the child has no other thread, and
            // only the atomic remote word is touched.
            let p: &Pool = unsafe { &*p };
            if p.class() < ALL_CLASSES {
                p.remote.rearm_after_fork();
            }
        }
    });
}

/// After a fork (parent and child), the locks released: make the frees deferred meanwhile.
fn after_fork() {
    if !DEFERRED.is_empty() {
        drain_deferred();
    }
}
