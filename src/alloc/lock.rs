//! A tiny spin lock for the allocator's global state. It never allocates (so it can be taken
//! inside `malloc`), backs off to `sched_yield` under contention, and can be held across
//! `fork` by the atfork handlers (`raw_lock` / `raw_unlock`, or the bare `RawSpinLock` a layer
//! registers with `thread::add_fork_lock`).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};
use crossbeam_utils::Backoff;

/// The lock word alone, without the data it guards.
pub struct RawSpinLock {
    locked: AtomicBool,
}

impl RawSpinLock {
    pub const fn new() -> Self {
        RawSpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Take the lock, spinning then yielding while another thread holds it.
    pub fn lock(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let backoff = Backoff::new();
        loop {
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
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

pub struct Guard<'a, T>(&'a SpinLock<T>);

impl<T> SpinLock<T> {
    pub const fn new(v: T) -> Self {
        SpinLock {
            raw: RawSpinLock::new(),
            data: UnsafeCell::new(v),
        }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        self.raw.lock();
        Guard(self)
    }

    pub fn raw_lock(&self) {
        self.raw.lock();
    }

    /// # Safety
    /// The lock is held by a `raw_lock` whose guard does not exist.
    pub unsafe fn raw_unlock(&self) {
        // SAFETY: per the contract.
        unsafe { self.raw.unlock() }
    }

    /// The lock word, for `thread::add_fork_lock`.
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
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.0.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, exclusively.
        unsafe { &mut *self.0.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard owns the held lock.
        unsafe { self.0.raw.unlock() }
    }
}
