//! fork: the atfork handlers. Every allocator lock in use is held from the prepare handler to
//! the parent or child handler, so the child never inherits a lock held by a thread it does not
//! have; `lock.rs` says why the other threads' malloc-family calls never wait for these (stdio's
//! lock order) and how the forking thread itself still allocates meanwhile.
//!
//! ```text
//!  prepare   block signals; nested (a signal handler forking during our fork)? count, return
//!            lock::fork_begin; take the registered locks in registration order; depth = 1
//!  parent    block signals; nested? uncount, return
//!  / child   [child: the repair hook, with the locks held]; lock::fork_end; release the locks
//!            in reverse; then the after-fork hook (deferred frees)
//! ```
//!
//! The layers register what they need: `thread.rs` its locks (`KEY`, `FALLBACK`, `HEAPS`,
//! `GLOBAL`, in the lock order) and the two hooks when the process is set up; the debug backend
//! its quarantine's lock when it is chosen. So a lock the mode does not use is never taken.
//! This file knows none of them.
//!
//! Invariants:
//! - Between `prepare` and `parent`/`child` the forking thread holds every registered lock
//!   (`lock::FORK_OWNER` names it); the state changes here run with all signals blocked, so a
//!   signal handler that forks finds either no fork begun on this thread or one whose locks are
//!   all held (and then only counts: `FORK_DEPTH`).
//! - Locks are registered before they are first used, and never unregistered.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::lock::{self, RawSpinLock};

/// The registered locks, taken in this order and released in reverse.
static LOCKS: [AtomicPtr<RawSpinLock>; 12] = [const { AtomicPtr::new(ptr::null_mut()) }; 12];
static LOCKS_LEN: AtomicUsize = AtomicUsize::new(0);
/// How many of LOCKS the prepare handler took (the parent and child handlers release those,
/// even if one more was registered in between).
static LOCKS_TAKEN: AtomicUsize = AtomicUsize::new(0);

/// Forks in progress on the thread in `lock::FORK_OWNER`: 1 for a fork, 2 for a fork from a
/// signal handler that interrupted one, ... Touched only by that thread, with signals blocked.
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// The hooks (`fn()` as addresses; 0: none): the child's repair, run with the locks held, and
/// the after-fork work, run in both processes once the locks are released.
static CHILD_REPAIR: AtomicUsize = AtomicUsize::new(0);
static AFTER: AtomicUsize = AtomicUsize::new(0);

/// Have the fork handlers take `lock` (after every lock registered before it). A lock of a layer
/// above the heaps must never be held while its layer takes an allocator lock or allocates.
/// False when the table (12) is full.
pub(crate) fn add_lock(lock: &'static RawSpinLock) -> bool {
    let i = LOCKS_LEN.fetch_add(1, Ordering::AcqRel);
    if i >= LOCKS.len() {
        return false;
    }
    LOCKS[i].store(ptr::from_ref(lock).cast_mut(), Ordering::Release);
    true
}

/// Register the handlers with glibc (once, by the process setup), and the two hooks.
pub(crate) fn install(child_repair: fn(), after: fn()) {
    CHILD_REPAIR.store(child_repair as usize, Ordering::Release);
    AFTER.store(after as usize, Ordering::Release);
    // Its result is not checked: glibc fails only without memory for its table, and the process
    // then forks without our handlers, as before any allocator existed (a child of a
    // multi-threaded parent may find a lock held).
    // SAFETY: the handlers are plain functions that only take and release our locks and run the
    // hooks.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

fn run_hook(h: &AtomicUsize) {
    let f = h.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: a non-zero hook is a `fn()` stored by `install`.
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
        f();
    }
}

/// Block every signal on the calling thread; returns the mask to restore.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask write only the sets given.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

fn restore_signals(old: libc::sigset_t) {
    // SAFETY: old is the mask block_signals read.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
}

/// The prepare handler: hold every registered lock. Re-entered on the same thread (a signal
/// handler forking while this thread forks), it only counts: the locks are held already.
extern "C" fn prepare() {
    let mask = block_signals();
    if lock::forking_here() {
        DEPTH.fetch_add(1, Ordering::Relaxed);
        restore_signals(mask);
        return;
    }
    // From here other threads' malloc-family calls do not wait for these locks (lock.rs).
    lock::fork_begin();
    let n = LOCKS_LEN.load(Ordering::Acquire).min(LOCKS.len());
    let mut taken = 0;
    for l in &LOCKS[..n] {
        let l = l.load(Ordering::Acquire);
        if l.is_null() {
            break; // registered but not stored yet: it cannot be in use yet
        }
        // SAFETY: registered locks are statics.
        unsafe { (*l).lock() };
        taken += 1;
    }
    LOCKS_TAKEN.store(taken, Ordering::Relaxed);
    DEPTH.store(1, Ordering::Relaxed);
    restore_signals(mask);
}

/// The parent and child handlers: the outermost fork of this thread releases the locks (the
/// child first runs the repair hook); then the after-fork hook runs.
fn finish(in_child: bool) {
    let mask = block_signals();
    if DEPTH.load(Ordering::Relaxed) > 1 {
        DEPTH.fetch_sub(1, Ordering::Relaxed);
        restore_signals(mask);
        return;
    }
    if in_child {
        run_hook(&CHILD_REPAIR);
    }
    DEPTH.store(0, Ordering::Relaxed);
    lock::fork_end();
    let taken = LOCKS_TAKEN.load(Ordering::Relaxed);
    for l in LOCKS[..taken].iter().rev() {
        // SAFETY: prepare took these locks on this thread (in the child, the only thread, a
        // copy of the one that took them).
        unsafe { (*l.load(Ordering::Acquire)).unlock() };
    }
    restore_signals(mask);
    run_hook(&AFTER);
}

extern "C" fn parent() {
    finish(false);
}

extern "C" fn child() {
    finish(true);
}
