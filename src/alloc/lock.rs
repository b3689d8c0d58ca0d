//! A tiny spin lock for the allocator's global state, and the rule that ties the locks to
//! `fork`. A lock never allocates (so it can be taken inside `malloc`), backs off to
//! `sched_yield` under contention, and can be held across `fork` by the atfork handlers.
//!
//! # Locks and fork
//!
//! The fork handlers (`thread.rs`) hold every allocator lock in use from the prepare handler to
//! the parent or child handler, so the child never inherits a lock held mid-update by a thread
//! it does not have. glibc takes its own fork-time locks (stdio's list lock, then its malloc
//! locks) *after* the prepare handlers, so a thread holding a stdio lock that calls into the
//! allocator must never wait for the forking thread: the fork is waiting for its stdio lock
//! (glibc bug 19431's lock order). So while a fork is in progress (`FORK_OWNER` names the
//! thread running it):
//!
//! | who takes a lock held for the fork | with           | gets                                   |
//! |------------------------------------|----------------|----------------------------------------|
//! | the forking thread itself          | any method     | the data, lent (another library's     |
//! |                                    |                | prepare handler may allocate)          |
//! | another thread, on a path that can | `lock_or_busy` | `None` at once: it takes a path with   |
//! | do without it (malloc family)      |                | no lock (glibc's heap, a deferred free)|
//! | another thread, elsewhere          | `lock`         | waits for the fork to end              |
//!
//! A lock that is held by an ordinary holder is waited for in every case: its critical section
//! never waits for anything (no libc lock, no allocation), so the wait is short.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crossbeam_utils::Backoff;

use crate::tls;

/// The thread running the fork handlers (`tls::thread_id`), 0 when no fork is in progress.
static FORK_OWNER: AtomicUsize = AtomicUsize::new(0);

/// The fork handlers of `thread.rs` begin holding the locks for the calling thread.
pub fn fork_begin() {
    FORK_OWNER.store(tls::thread_id(), Ordering::Release);
}

/// The fork handlers released the locks.
pub fn fork_end() {
    FORK_OWNER.store(0, Ordering::Release);
}

/// Whether the calling thread is the one running a fork.
pub fn forking_here() -> bool {
    FORK_OWNER.load(Ordering::Acquire) == tls::thread_id()
}

/// Whether another thread is running a fork.
pub fn forking_elsewhere() -> bool {
    let owner = FORK_OWNER.load(Ordering::Acquire);
    owner != 0 && owner != tls::thread_id()
}

/// The lock word alone, without the data it guards.
pub struct RawSpinLock {
    locked: AtomicBool,
}

/// What a contended acquisition found.
enum Contended {
    /// Acquired.
    Taken,
    /// Held by the fork handlers for the calling thread: use it without taking it.
    Lent,
    /// Held while another thread forks, and the caller asked not to wait.
    Busy,
}

impl RawSpinLock {
    pub const fn new() -> Self {
        RawSpinLock {
            locked: AtomicBool::new(false),
        }
    }

    #[inline(always)]
    fn try_take(&self) -> bool {
        self.locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Take the lock, spinning then yielding while another thread holds it. Only for the fork
    /// handlers and `SpinLock`: it knows nothing of a fork in progress.
    pub fn lock(&self) {
        if !self.try_take() {
            let _ = self.contended(false, false);
        }
    }

    #[cold]
    fn contended(&self, fork_aware: bool, may_give_up: bool) -> Contended {
        let backoff = Backoff::new();
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if fork_aware {
                    if forking_here() {
                        return Contended::Lent;
                    }
                    if may_give_up && forking_elsewhere() {
                        return Contended::Busy;
                    }
                }
                backoff.snooze();
            }
            if self.try_take() {
                return Contended::Taken;
            }
        }
    }

    /// # Safety
    /// The lock is held by the caller's `lock` (no guard of a `SpinLock` owns it).
    pub unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl Default for RawSpinLock {
    fn default() -> Self {
        Self::new()
    }
}

pub struct SpinLock<T> {
    raw: RawSpinLock,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialized by `raw`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Access to a `SpinLock`'s data; releases the lock on drop unless it was lent by the fork
/// handlers (see the module docs).
pub struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
    release: bool,
}

impl<T> SpinLock<T> {
    pub const fn new(v: T) -> Self {
        SpinLock {
            raw: RawSpinLock::new(),
            data: UnsafeCell::new(v),
        }
    }

    /// Take the lock, waiting while another thread holds it, also for a fork in progress (the
    /// forking thread itself gets the lock its handlers hold).
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if self.raw.try_take() {
            return Guard {
                lock: self,
                release: true,
            };
        }
        match self.raw.contended(true, false) {
            Contended::Lent => Guard {
                lock: self,
                release: false,
            },
            _ => Guard {
                lock: self,
                release: true,
            },
        }
    }

    /// As [`lock`](Self::lock), but `None` at once when the lock is held for a fork in
    /// progress on another thread: the caller takes a path that needs no lock.
    #[inline]
    pub fn lock_or_busy(&self) -> Option<Guard<'_, T>> {
        if self.raw.try_take() {
            return Some(Guard {
                lock: self,
                release: true,
            });
        }
        match self.raw.contended(true, true) {
            Contended::Taken => Some(Guard {
                lock: self,
                release: true,
            }),
            Contended::Lent => Some(Guard {
                lock: self,
                release: false,
            }),
            Contended::Busy => None,
        }
    }

    /// The lock word, for the fork handlers (`fork::add_lock`).
    pub const fn raw(&self) -> &RawSpinLock {
        &self.raw
    }

    /// Address of the protected value (stable; for identity, not for access without the lock).
    pub const fn data_ptr(&self) -> *mut T {
        self.data.get()
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held (by us, or for us by the fork handlers).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, exclusively, for this thread.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if self.release {
            // SAFETY: the guard owns the held lock.
            unsafe { self.lock.raw.unlock() }
        }
    }
}
