//! The tracer's spin lock and its fork handlers.
//!
//! The tracer has two locks: `CONTROL` (start and stop, one at a time) and `TABLES` (the
//! traces). A lock here never allocates and its holder never allocates either (the tables come
//! from `mem.rs`), so a thread holding it never waits for an allocator lock.
//!
//! fork: the tracer registers its own `pthread_atfork` handlers the first time tracing starts.
//! The prepare handler takes `CONTROL` then `TABLES` and names the forking thread; the parent
//! and child handlers release them. So a child never inherits a table half-updated by a thread
//! it does not have. While the handlers hold them, the forking thread itself may still allocate
//! (another library's prepare handler may): its own requests find the locks lent to it, as the
//! allocator's locks are (`alloc/lock.rs`).
//!
//! Invariants:
//! - `FORK_OWNER` is non-zero (the forking thread's `tls::thread_id`) exactly while the
//!   handlers hold both locks; only that thread uses the locks' data without taking them.
//! - Lock order: `CONTROL` -> `TABLES`; neither is held while taking an allocator lock.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::tls;

/// The thread running the fork handlers, 0 when no fork is in progress.
static FORK_OWNER: AtomicUsize = AtomicUsize::new(0);
/// Nested forks on the owner (a signal handler forking during a fork): only counted.
static FORK_DEPTH: AtomicUsize = AtomicUsize::new(0);

/// A lock around `T` that never allocates (see the module docs).
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out the data to one thread at a time (or to the forking thread while
// the handlers hold it for that thread), so sharing the lock shares T only under exclusion.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Access to the data; releases the lock on drop unless it was lent.
pub(crate) struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
    release: bool,
}

impl<T> SpinLock<T> {
    pub(crate) const fn new(v: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(v),
        }
    }

    fn try_take(&self) -> bool {
        // Acquire pairs with the Release of `unlock`: the previous holder's writes are visible.
        self.locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Take the lock, waiting for its holder; lent at once to the thread running the fork
    /// handlers (which hold it).
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            if self.try_take() {
                return Guard {
                    lock: self,
                    release: true,
                };
            }
            if FORK_OWNER.load(Ordering::Acquire) == tls::thread_id() {
                return Guard {
                    lock: self,
                    release: false,
                };
            }
            if backoff.is_completed() {
                // SAFETY: sched_yield has no preconditions and does not allocate.
                unsafe { libc::sched_yield() };
            } else {
                backoff.snooze();
            }
        }
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard stands for exclusive access (taken, or lent to the fork owner
        // whose handlers hold it).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if self.release {
            self.lock.unlock();
        }
    }
}

/// Register the fork handlers (once per process; later calls do nothing).
pub(crate) fn install_fork_handlers() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::AcqRel) {
        return;
    }
    // Not checked: glibc fails only without memory for its list, and then a child forked while
    // another thread held a tracer lock could find it held (as before the handlers existed).
    // SAFETY: the handlers only take and release the tracer's locks.
    unsafe { libc::pthread_atfork(Some(prepare), Some(after), Some(after)) };
}

extern "C" fn prepare() {
    if FORK_OWNER.load(Ordering::Acquire) == tls::thread_id() {
        FORK_DEPTH.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let control = super::CONTROL.lock();
    let tables = super::TABLES.lock();
    // Held until `after`: the guards are forgotten, the locks released there by hand.
    core::mem::forget(tables);
    core::mem::forget(control);
    FORK_DEPTH.store(1, Ordering::Relaxed);
    FORK_OWNER.store(tls::thread_id(), Ordering::Release);
}

/// The parent and child handler: the outermost fork releases what `prepare` took (in the
/// child, the only thread is a copy of the one that took them).
extern "C" fn after() {
    if FORK_DEPTH.load(Ordering::Relaxed) > 1 {
        FORK_DEPTH.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    FORK_DEPTH.store(0, Ordering::Relaxed);
    FORK_OWNER.store(0, Ordering::Release);
    super::TABLES.unlock();
    super::CONTROL.unlock();
}
