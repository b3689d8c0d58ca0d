//! The allocator's process-wide state, under one lock: the arenas and the pools abandoned by
//! exited threads. It is touched once per pool (a batch of pools taken, an emptied pool given
//! back, a pool abandoned or adopted), never once per block.
//!
//! ```text
//!  GLOBAL (SpinLock<Global>)
//!    arenas                      arena.rs: small pools; buckets by free-pool count, purge
//!    runs                        arena.rs: medium runs (RUN_POOLS pools each), arenas of their own
//!    abandoned[0][class]  ──> pool <─> pool ...   abandoned pools with room (adopted by a heap
//!                                                  that needs a pool of that class)
//!    abandoned[1][class]  ──> pool <─> pool ...   abandoned full pools (adopted by the first
//!                                                  remote free into one)
//! ```
//!
//! Invariants (under the lock):
//! - A pool is on `abandoned[in_full][class]` exactly while its remote word is `ABANDONED` and it
//!   has no owner; it got there in the same critical section that made it `ABANDONED`
//!   (`thread::abandon`), and leaves in the same one that adopts it (`RemoteWord::adopt`), so an
//!   adopter holding the lock never sees one without the other.
//! - Only this file's holder of the lock links or unlinks the abandoned lists.

use crate::config::{ALL_CLASSES, RUN_POOLS};

use super::addr_map;
use super::arena::{ArenaDesc, Arenas, NewPool};
use super::lock::SpinLock;
use super::pool::Pool;
use super::queue::{ByClass, PoolQueue};

/// Global state; see the module docs.
pub(crate) struct Global {
    pub arenas: Arenas<1>,                             // small pools
    pub runs: Arenas<RUN_POOLS>,                       // medium runs, in arenas of their own
    abandoned: [[PoolQueue<ByClass>; ALL_CLASSES]; 2], // [0]: with room, [1]: full
}

// SAFETY: the raw pointers in Global point into our own mappings and are only used under the lock.
unsafe impl Send for Global {}

pub(crate) static GLOBAL: SpinLock<Global> = SpinLock::new(Global {
    arenas: Arenas::new(false),
    runs: Arenas::new(true),
    abandoned: [const { [const { PoolQueue::new() }; ALL_CLASSES] }; 2],
});

impl Global {
    /// Take a pool (`medium`: a run) from the arenas that serve it.
    pub fn alloc_pool(&mut self, medium: bool) -> Option<NewPool> {
        if medium {
            self.runs.alloc_pool()
        } else {
            self.arenas.alloc_pool()
        }
    }

    /// Give back a retired pool or run to the arenas it came from (its arena's descriptor
    /// says which).
    ///
    /// # Safety
    /// As `Arenas::free_pool`.
    pub unsafe fn free_pool(&mut self, p: *mut Pool) {
        let d = addr_map::lookup(p as usize).cast::<ArenaDesc>();
        // SAFETY: a pool of ours lies in a mapped arena, whose descriptor the map holds.
        if !d.is_null() && unsafe { (*d).medium } {
            // SAFETY: forwarded.
            unsafe { self.runs.free_pool(p) }
        } else {
            // SAFETY: forwarded (a pointer outside every arena aborts in there).
            unsafe { self.arenas.free_pool(p) }
        }
    }

    /// Visit the descriptor of every mapped arena, of both kinds.
    pub fn for_each_arena(&self, mut f: impl FnMut(&ArenaDesc)) {
        self.arenas.for_each(&mut f);
        self.runs.for_each(&mut f);
    }

    /// Put an abandoned pool (word `ABANDONED`, no owner) on its list.
    ///
    /// # Safety
    /// `p` is a live pool in use, on no `ByClass` list, just made `ABANDONED` under this lock.
    pub unsafe fn abandoned_push(&mut self, p: *mut Pool) {
        // SAFETY: per the contract.
        unsafe {
            let (full, class) = ((*p).in_full as usize, (*p).class());
            self.abandoned[full][class].push_front(p);
        }
    }

    /// Take an abandoned pool off its list (its adopter just won `RemoteWord::adopt`).
    ///
    /// # Safety
    /// `p` is on `abandoned[in_full][class]`.
    pub unsafe fn abandoned_remove(&mut self, p: *mut Pool) {
        // SAFETY: per the contract.
        unsafe {
            let (full, class) = ((*p).in_full as usize, (*p).class());
            self.abandoned[full][class].remove(p);
        }
    }

    /// Adopt an abandoned pool of `class` that has room, if any (null if none): off the list
    /// and `ABANDONED -> NORMAL`. The caller becomes its owner.
    pub fn adopt_with_room(&mut self, class: usize) -> *mut Pool {
        let p = self.abandoned[0][class].head();
        if !p.is_null() {
            // SAFETY: p is on abandoned[0][class], live.
            unsafe { self.abandoned_remove(p) };
            // SAFETY: as above.
            let ok = unsafe { (*p).remote.adopt() };
            invariant!(ok, "abandoned pool not ABANDONED");
        }
        p
    }
}
