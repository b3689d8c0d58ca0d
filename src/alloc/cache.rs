//! A heap's caches of retired pools: small pools and medium runs, each a `PoolStack` with a
//! bound, moved to and from the arenas in batches under one lock (`HEAP_CACHE_BATCH` /
//! `HEAP_RUN_BATCH` taken by `heap::alloc`, half a cache given back when it overflows).
//!
//! Invariants (checked by `is_valid`): a cached pool is retired (`CLASS_NONE`, nothing in use,
//! no remote frees) and on no other list; cache `kind` (0: small pools, 1: medium runs, which
//! cannot stand in for each other) holds at most its bound, except after a give-back skipped
//! while a fork in progress on another thread held the lock (`lock.rs`), until the next one.

use crate::config::{HEAP_POOL_CACHE, HEAP_RUN_CACHE};

use super::global::GLOBAL;
use super::pool::Pool;
use super::queue::PoolStack;
use super::size_class::{CLASS_NONE, is_medium_class};

/// A heap's two caches (see the module docs).
pub struct PoolCaches {
    caches: [PoolStack; 2], // [0]: small pools, [1]: medium runs
}

/// The cache index and bound of pools of `class`'s kind.
fn kind_of(class: usize) -> (usize, usize) {
    if is_medium_class(class) {
        (1, HEAP_RUN_CACHE)
    } else {
        (0, HEAP_POOL_CACHE)
    }
}

impl PoolCaches {
    pub const fn new() -> Self {
        PoolCaches {
            caches: [PoolStack::new(), PoolStack::new()],
        }
    }

    /// Whether the cache for `class`'s kind is empty.
    pub fn is_empty_for(&self, class: usize) -> bool {
        self.caches[kind_of(class).0].is_empty()
    }

    /// Pools in cache `kind` (tests).
    #[cfg(test)]
    pub fn len(&self, kind: usize) -> usize {
        self.caches[kind].len()
    }

    /// Add a pool fresh from the arenas (`Pool::init_cached`) to the cache for `class`'s kind.
    ///
    /// # Safety
    /// `p` is retired, on no list, and nobody else uses it.
    pub unsafe fn push_new(&mut self, class: usize, p: *mut Pool) {
        // SAFETY: per the contract.
        unsafe { self.caches[kind_of(class).0].push(p) };
    }

    /// Keep a pool just retired (`Pool::retire`), giving half its cache back to the arenas
    /// when the cache overflows.
    ///
    /// # Safety
    /// As `push_new`; `class` was the pool's class.
    pub unsafe fn retire(&mut self, class: usize, p: *mut Pool) {
        let (kind, bound) = kind_of(class);
        // SAFETY: per the contract.
        unsafe { self.caches[kind].push(p) };
        if self.caches[kind].len() > bound {
            self.release(kind, bound / 2);
        }
    }

    /// A cached pool for `class`'s kind (not empty), still retired: the caller reinitializes it.
    ///
    /// # Safety
    /// The caller owns the caches.
    pub unsafe fn pop(&mut self, class: usize) -> *mut Pool {
        // SAFETY: per the contract.
        let p = unsafe { self.caches[kind_of(class).0].pop() };
        invariant!(!p.is_null(), "pop from an empty pool cache");
        p
    }

    /// Give pools of cache `kind` back to their arenas, under one lock, until `keep` are left;
    /// nothing when a fork in progress on another thread holds the lock.
    pub fn release(&mut self, kind: usize, keep: usize) {
        if self.caches[kind].len() <= keep {
            return;
        }
        let Some(mut g) = GLOBAL.lock_or_busy() else {
            return;
        };
        while self.caches[kind].len() > keep {
            // SAFETY: cached pools are retired pools of this heap and on no other list.
            unsafe { g.free_pool(self.caches[kind].pop()) };
        }
    }

    /// Give every cached pool back.
    pub fn release_all(&mut self) {
        self.release(0, 0);
        self.release(1, 0);
    }

    /// Check the invariants in the module docs.
    ///
    /// # Safety
    /// The caller owns the caches.
    pub unsafe fn is_valid(&self) -> Result<(), &'static str> {
        for (kind, bound) in [(0, HEAP_POOL_CACHE), (1, HEAP_RUN_CACHE)] {
            let mut cached = 0usize;
            // SAFETY: the caller owns the caches; cached pools are live headers.
            for p in unsafe { self.caches[kind].iter() } {
                // SAFETY: as above.
                let p = unsafe { &*p };
                if p.class() != CLASS_NONE || p.used() != 0 || !p.remote.is_empty() {
                    return Err("a cached pool is not retired");
                }
                cached += 1;
                if cached > bound {
                    return Err("the pool cache is over its bound");
                }
            }
            if cached != self.caches[kind].len() {
                return Err("cached-pool count disagrees with the cache list");
            }
        }
        Ok(())
    }
}
