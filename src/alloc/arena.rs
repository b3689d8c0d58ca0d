//! Arenas: 256 KiB aligned regions of 64 pools, kept ordered so new pools come from the fullest.
//!
//! Every arena has a descriptor in one reserved table (never freed; slots are reused). An arena
//! with at least one free pool sits in bucket `nfreepools` (1..=64) of `usable`; taking a pool
//! always picks the lowest non-empty bucket, found with one `trailing_zeros` on a bitmap. This is
//! CPython's "usable_arenas sorted by nfreepools" in O(1): the fullest arenas get the new pools,
//! so nearly empty arenas drain and can go back to the OS.
//!
//! Inside an arena, pools `next_uncarved..64` were never touched since the arena was mapped (or
//! decommitted), so they are zero; pools given back sit on `freepools`.
//!
//! A fully free arena is unmapped, except that up to `SPARE_ARENAS` are kept (committed: at most
//! 256 KiB each) to avoid `mmap` churn and page faults.
//!
//! Invariants (all under the global allocator lock; checked by `arenas_are_valid`):
//! - `nfreepools == |freepools| + (64 - next_uncarved)` and `1 <= nfreepools` iff the arena is
//!   in bucket `nfreepools`; an arena with no free pool is in no bucket.
//! - bit `n` of `nonempty` is set iff bucket `n` is non-empty.
//! - the address map holds an entry for exactly the arenas whose descriptor has `base != 0`.

use crate::config::{MAX_ARENAS, POOL_SIZE, POOLS_PER_ARENA, SPARE_ARENAS};
use core::ptr;

use super::addr_map;
use super::os;
use super::pool::Pool;
use super::table::{Slot, SlotTable};

impl Slot for ArenaDesc {
    unsafe fn free_link(this: *mut Self) -> *mut *mut Self {
        // SAFETY: the caller passes a slot of the table; `next` is unused while it is free.
        unsafe { &raw mut (*this).next }
    }
}

/// Per-arena bookkeeping, kept outside the arena so all 64 pools are usable.
#[repr(C)]
pub struct ArenaDesc {
    pub base: usize,          // arena address; 0 while the slot is unused
    pub nfreepools: u32,      // free pools: on `freepools` or never carved
    pub next_uncarved: u32,   // pools from here on are untouched (zero)
    pub freepools: *mut Pool, // pools given back, linked through Pool::next
    pub next: *mut ArenaDesc, // bucket list (or the free-slot list)
    pub prev: *mut ArenaDesc, // bucket list
}

/// Arena counters, as `sys._debugmallocstats()` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaCounters {
    pub allocated_total: u64,
    pub released_total: u64,
    pub current: u64,
    pub peak: u64,
}

pub struct Arenas {
    table: SlotTable<ArenaDesc, MAX_ARENAS>, // descriptors; base == 0 when unused
    usable: [*mut ArenaDesc; POOLS_PER_ARENA + 1], // bucket n: arenas with n free pools
    nonempty: u128,                          // bit n: bucket n non-empty
    pub counters: ArenaCounters,
}

/// A pool handed out by `Arenas::alloc_pool`.
pub struct NewPool {
    pub pool: *mut Pool,
    /// The page was never touched since the OS gave it to us: it reads as zero.
    pub fresh: bool,
}

impl Arenas {
    pub const fn new() -> Self {
        Arenas {
            table: SlotTable::new(),
            usable: [ptr::null_mut(); POOLS_PER_ARENA + 1],
            nonempty: 0,
            counters: ArenaCounters {
                allocated_total: 0,
                released_total: 0,
                current: 0,
                peak: 0,
            },
        }
    }

    fn bucket_push(&mut self, a: *mut ArenaDesc) {
        // SAFETY: a is a live descriptor not in any bucket; buckets hold live descriptors.
        unsafe {
            let n = (*a).nfreepools as usize;
            invariant!(
                (1..=POOLS_PER_ARENA).contains(&n),
                "arena bucket out of range"
            );
            (*a).prev = ptr::null_mut();
            (*a).next = self.usable[n];
            if !self.usable[n].is_null() {
                (*self.usable[n]).prev = a;
            }
            self.usable[n] = a;
            self.nonempty |= 1u128 << n;
        }
    }

    fn bucket_remove(&mut self, a: *mut ArenaDesc) {
        // SAFETY: a is a live descriptor in bucket `nfreepools`.
        unsafe {
            let n = (*a).nfreepools as usize;
            if (*a).prev.is_null() {
                invariant!(self.usable[n] == a, "arena not at the head of its bucket");
                self.usable[n] = (*a).next;
            } else {
                (*(*a).prev).next = (*a).next;
            }
            if !(*a).next.is_null() {
                (*(*a).next).prev = (*a).prev;
            }
            if self.usable[n].is_null() {
                self.nonempty &= !(1u128 << n);
            }
            (*a).next = ptr::null_mut();
            (*a).prev = ptr::null_mut();
        }
    }

    /// Map a new arena and put it in bucket 64. False when out of memory.
    fn new_arena(&mut self) -> bool {
        let slot = self.table.take();
        if slot.is_null() {
            return false;
        }
        let base = os::map_arena();
        if base.is_null() || !addr_map::insert(base as usize, slot) {
            if !base.is_null() {
                // SAFETY: just mapped, nothing refers into it.
                unsafe { os::unmap_arena(base) };
            }
            // SAFETY: slot came from the table and is unused.
            unsafe { self.table.give_back(slot) };
            return false;
        }
        // SAFETY: slot is ours to initialize.
        unsafe {
            ptr::write(
                slot,
                ArenaDesc {
                    base: base as usize,
                    nfreepools: POOLS_PER_ARENA as u32,
                    next_uncarved: 0,
                    freepools: ptr::null_mut(),
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                },
            )
        };
        self.bucket_push(slot);
        let c = &mut self.counters;
        c.allocated_total += 1;
        c.current += 1;
        c.peak = c.peak.max(c.current);
        true
    }

    /// Take a pool from the fullest arena that has one (mapping a new arena if none has).
    /// None when the OS refuses memory.
    pub fn alloc_pool(&mut self) -> Option<NewPool> {
        if self.nonempty == 0 && !self.new_arena() {
            return None;
        }
        let n = self.nonempty.trailing_zeros() as usize;
        let a = self.usable[n];
        invariant!(
            !a.is_null() && n >= 1,
            "bucket bitmap points at an empty bucket"
        );
        self.bucket_remove(a);
        // SAFETY: a is a live descriptor with at least one free pool.
        let out = unsafe {
            let d = &mut *a;
            let out = if !d.freepools.is_null() {
                let p = d.freepools;
                d.freepools = (*p).next;
                NewPool {
                    pool: p,
                    fresh: false,
                }
            } else {
                invariant!(
                    (d.next_uncarved as usize) < POOLS_PER_ARENA,
                    "arena with free pools has none"
                );
                let p = (d.base + d.next_uncarved as usize * POOL_SIZE) as *mut Pool;
                d.next_uncarved += 1;
                NewPool {
                    pool: p,
                    fresh: true,
                }
            };
            d.nfreepools -= 1;
            out
        };
        // SAFETY: a is live.
        if unsafe { (*a).nfreepools } > 0 {
            self.bucket_push(a);
        }
        Some(out)
    }

    /// Give back a pool whose header was retired. Releases the arena when it becomes free.
    ///
    /// # Safety
    /// `pool` came from `alloc_pool`, is retired, and nothing refers into it.
    pub unsafe fn free_pool(&mut self, pool: *mut Pool) {
        let a = addr_map::lookup(pool as usize);
        assert!(!a.is_null(), "arenagc: pool outside every arena");
        // SAFETY: a is the live descriptor of pool's arena; pool is ours to link.
        unsafe {
            if (*a).nfreepools > 0 {
                self.bucket_remove(a);
            }
            (*pool).next = (*a).freepools;
            (*a).freepools = pool;
            (*a).nfreepools += 1;
            if (*a).nfreepools as usize == POOLS_PER_ARENA {
                self.arena_now_free(a);
            } else {
                self.bucket_push(a);
            }
        }
    }

    /// # Safety
    /// `a` is live, in no bucket, and all its pools are free.
    unsafe fn arena_now_free(&mut self, a: *mut ArenaDesc) {
        let spares = self.count_bucket(POOLS_PER_ARENA);
        // SAFETY: the caller guarantees a is live and entirely free.
        unsafe {
            if spares < SPARE_ARENAS {
                // Keep it mapped and committed, as CPython does: a program that frees and
                // allocates around an arena boundary then touches no new page.
                self.bucket_push(a);
                return;
            }
            addr_map::remove((*a).base);
            os::unmap_arena((*a).base as *mut u8);
            (*a).base = 0;
            self.table.give_back(a);
        }
        self.counters.released_total += 1;
        self.counters.current -= 1;
    }

    fn count_bucket(&self, n: usize) -> usize {
        let mut k = 0;
        let mut a = self.usable[n];
        while !a.is_null() {
            k += 1;
            // SAFETY: bucket lists hold live descriptors.
            a = unsafe { (*a).next };
        }
        k
    }

    /// Visit every mapped arena's descriptor.
    pub fn for_each(&self, mut f: impl FnMut(&ArenaDesc)) {
        for d in self.table.slots() {
            if d.base != 0 {
                f(d);
            }
        }
    }

    /// Check the invariants in the module docs.
    pub fn arenas_are_valid(&self) -> Result<(), &'static str> {
        let mut in_buckets = 0;
        for n in 0..=POOLS_PER_ARENA {
            let mut a = self.usable[n];
            if a.is_null() == (self.nonempty & (1u128 << n) != 0) {
                return Err("bucket bitmap disagrees with bucket list");
            }
            while !a.is_null() {
                // SAFETY: bucket lists hold live descriptors.
                let d = unsafe { &*a };
                if d.nfreepools as usize != n || n == 0 {
                    return Err("arena in the wrong bucket");
                }
                in_buckets += 1;
                a = d.next;
            }
        }
        let mut with_free = 0;
        let mut result = Ok(());
        self.for_each(|d| {
            let mut listed = 0;
            let mut p = d.freepools;
            while !p.is_null() {
                listed += 1;
                // SAFETY: free pools of a live arena are linked through their headers.
                p = unsafe { (*p).next };
            }
            if d.nfreepools as usize != listed + POOLS_PER_ARENA - d.next_uncarved as usize {
                result = Err("nfreepools != |freepools| + uncarved");
            }
            if !core::ptr::eq(addr_map::lookup(d.base), d) {
                result = Err("address map does not point at the arena's descriptor");
            }
            if d.nfreepools > 0 {
                with_free += 1;
            }
        });
        result?;
        if with_free != in_buckets {
            return Err("an arena with free pools is missing from the buckets");
        }
        Ok(())
    }
}
