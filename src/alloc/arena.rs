//! Arenas: `ARENA_SIZE` aligned regions (256 KiB, or 1 MiB with `large-pools`) of a header pool
//! and 63 pools, kept ordered so new pools come from the fullest. `Arenas<UNIT>` hands out units
//! of `UNIT` consecutive pools: single pools for the small classes (`UNIT == 1`), or medium runs
//! (`UNIT == RUN_POOLS`: 4 pools, 16 KiB; 15 runs per arena, pools 61..63 unused). An arena
//! serves one unit size for its life (`ArenaDesc::unit`), so its free pools always come in
//! whole units and the lowest free bit always starts one.
//!
//! Every arena has a descriptor in one reserved table (never freed; slots are reused). An arena
//! with at least one free pool sits in bucket `nfreepools` (1..=63) of `usable`; taking a pool
//! always picks the lowest non-empty bucket, found with one `trailing_zeros` on a bitmap. This is
//! CPython's "usable_arenas sorted by nfreepools" in O(1): the fullest arenas get the new pools,
//! so nearly empty arenas drain and can go back to the OS.
//!
//! Inside an arena, free pools are bits of `free_mask` (taken lowest first, so pools in use stay
//! packed at low addresses; a free pool's memory is never read, so taking one costs no cache
//! miss). Pools in `fresh_mask` were never touched since the arena was mapped, so they are zero.
//!
//! Hardened mode (`harden::secure_mode`) maps each arena with an inaccessible page after it and
//! makes its first unit after the header page inaccessible too, never handed out: a fully free
//! arena then has `full() = FULL - UNIT` free pools.
//!
//! A fully free arena stays in bucket `full()` (63; newest first). Up to `SPARE_ARENAS` of them are kept
//! for good (committed: at most `ARENA_SIZE` each) to avoid `mmap` churn and page faults; the
//! others are unmapped once they have been free for the purge delay (`PURGE_DELAY_MS`), checked
//! at each later arena event, or at once by `purge(force)` (`alloc::trim()`). A program that
//! frees a batch and allocates it again within the delay reuses the pages instead of faulting
//! them in.
//!
//! Invariants (all under the global allocator lock; checked by `arenas_are_valid`):
//! - `fresh_mask ⊆ free_mask`, and `1 <= nfreepools()` (the popcount of `free_mask`) iff
//!   the arena is in bucket `nfreepools()`; an arena with no free pool is in no bucket.
//! - bit `n` of `nonempty` is set iff bucket `n` is non-empty.
//! - the address map holds an entry for exactly the arenas whose descriptor has `base != 0`.
//! - `nfree == |bucket 63|`, and `oldest_free` is at most the `freed_at` of each of them.

use crate::config::{
    MAX_ARENAS, POOL_SIZE, POOLS_PER_ARENA, PURGE_DELAY_MS, SPARE_ARENAS, USABLE_POOLS,
};

/// `usable_mask` in this mode: less hardened mode's guard unit (the first unit, pools `1..=unit`),
/// never handed out. A new arena's `free_mask` and `fresh_mask` start as this.
fn usable_pools_mask(unit: usize) -> u64 {
    let guard = if super::harden::secure_mode() {
        (((1u128 << unit) - 1) as u64) << 1
    } else {
        0
    };
    usable_mask(unit) & !guard
}

/// The bits of `free_mask` an arena cut in units of `unit` pools can hand out: pools `1..` in
/// whole units (pool 0 is the header page; a few pools past the last whole unit stay unused).
const fn usable_mask(unit: usize) -> u64 {
    let pools = (USABLE_POOLS / unit) * unit;
    (((1u128 << pools) - 1) << 1) as u64
}
use core::ptr;

use super::addr_map;
use super::os;
use super::pool::{Pool, header_of, index_of};
use super::table::{Slot, SlotTable};

impl Slot for ArenaDesc {
    unsafe fn free_link(this: *mut Self) -> *mut *mut Self {
        // SAFETY: the caller passes a slot of the table; `next` is unused while it is free.
        unsafe { &raw mut (*this).next }
    }
}

/// Per-arena bookkeeping, kept outside the arena (in a table of its own).
#[repr(C)]
pub struct ArenaDesc {
    pub base: usize,          // arena address; 0 while the slot is unused
    pub free_mask: u64,       // bit i: pool i is free (bit 0, the header page, never)
    pub fresh_mask: u64,      // bit i: pool i was never touched since the arena was mapped
    pub next: *mut ArenaDesc, // bucket list (or the free-slot list)
    pub prev: *mut ArenaDesc, // bucket list
    pub freed_at: u64,        // when it last became fully free (os::now_ms)
    pub unit: u8,             // pools per unit handed out: 1, or RUN_POOLS for medium runs
    pub medium: bool,         // the arena serves medium runs (its `Arenas` is GLOBAL's `runs`)
}

impl ArenaDesc {
    /// Free pools (taken ones are cleared from `free_mask`, given-back ones set).
    #[inline]
    pub fn nfreepools(&self) -> usize {
        self.free_mask.count_ones() as usize
    }

    /// The pools this arena can hand out, as `free_mask` bits: whole units from pool 1 on, less
    /// hardened mode's guard unit (the mask a new arena's `free_mask` starts as).
    pub fn usable_pools(&self) -> u64 {
        usable_pools_mask(self.unit as usize)
    }

    /// The header of every pool of the arena that was ever handed out (in use, or retired), in
    /// address order. Only pools the arena can hand out count: not the few past the last whole
    /// run of a run arena, nor hardened mode's guard unit, whose headers were never written
    /// (they read as class 0, which made `stats()` count three phantom 16-byte pools per run
    /// arena).
    pub fn touched_pools(&self) -> impl Iterator<Item = *mut Pool> + '_ {
        let touched = self.usable_pools() & !self.fresh_mask;
        (1..POOLS_PER_ARENA)
            .filter(move |&i| touched & (1u64 << i) != 0)
            .map(|i| header_of(self.base, i))
    }
}

/// Arena counters, as `sys._debugmallocstats()` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaCounters {
    /// Arenas mapped since the start (`# arenas allocated total`).
    pub allocated_total: u64,
    /// Arenas given back to the OS since the start (`# arenas reclaimed`).
    pub released_total: u64,
    /// Arenas mapped now (`# arenas allocated current`).
    pub current: u64,
    /// The most arenas mapped at once (`# arenas highwater mark`).
    pub peak: u64,
}

/// Arenas handed out in units of `UNIT` pools: single pools (`UNIT == 1`, small classes) or
/// medium runs (`UNIT == RUN_POOLS`). Everything below holds for both with "pool" read as
/// "unit"; bucket `n` holds arenas with `n` free pools (a multiple of `UNIT`).
pub struct Arenas<const UNIT: usize> {
    table: SlotTable<ArenaDesc, MAX_ARENAS>, // descriptors; base == 0 when unused
    usable: [*mut ArenaDesc; USABLE_POOLS + 1], // bucket n: arenas with n free pools
    nonempty: u128,                          // bit n: bucket n non-empty
    nfree: usize,                            // arenas in bucket 63 (fully free, still mapped)
    oldest_free: u64,                        // <= freed_at of every arena in bucket 63
    purge_delay: u64,                        // ms; u64::MAX until read from the environment
    medium: bool,                            // its arenas serve medium runs (copied to each)
    pub counters: ArenaCounters,
}

/// A pool handed out by `Arenas::alloc_pool`.
pub struct NewPool {
    pub pool: *mut Pool,
    /// The page was never touched since the OS gave it to us: it reads as zero.
    pub fresh: bool,
}

impl<const UNIT: usize> Arenas<UNIT> {
    /// Free pools of a fully free arena.
    const FULL: usize = (USABLE_POOLS / UNIT) * UNIT;
    /// The pools of one unit, as bits from the unit's first pool.
    const UNIT_BITS: u64 = ((1u128 << UNIT) - 1) as u64;

    /// Free pools of a fully free arena in this mode: hardened mode keeps the first unit as a
    /// guard (`usable_pools_mask`), never free.
    #[inline]
    pub(crate) fn full() -> usize {
        if super::harden::secure_mode() {
            Self::FULL - UNIT
        } else {
            Self::FULL
        }
    }

    /// Empty arenas; `medium`: they serve medium runs (marked in each descriptor, so a pool's
    /// address tells which `Arenas` it goes back to).
    pub const fn new(medium: bool) -> Self {
        Arenas {
            table: SlotTable::new(),
            usable: [ptr::null_mut(); USABLE_POOLS + 1],
            nonempty: 0,
            nfree: 0,
            oldest_free: u64::MAX,
            purge_delay: u64::MAX,
            medium,
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
            let n = (*a).nfreepools();
            invariant!((1..=Self::full()).contains(&n), "arena bucket out of range");
            (*a).prev = ptr::null_mut();
            (*a).next = self.usable[n];
            if !self.usable[n].is_null() {
                (*self.usable[n]).prev = a;
            }
            self.usable[n] = a;
            self.nonempty |= 1u128 << n;
            if n == Self::full() {
                self.nfree += 1;
                self.oldest_free = self.oldest_free.min((*a).freed_at);
            }
        }
    }

    fn bucket_remove(&mut self, a: *mut ArenaDesc) {
        // SAFETY: a is a live descriptor in bucket `nfreepools`.
        unsafe {
            let n = (*a).nfreepools();
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
            if n == Self::full() {
                self.nfree -= 1;
            }
            (*a).next = ptr::null_mut();
            (*a).prev = ptr::null_mut();
        }
    }

    /// Map a new arena and put it in bucket 63. False when out of memory.
    fn new_arena(&mut self) -> bool {
        // The free-list secret exists before the first block does (harden.rs).
        super::harden::init();
        let slot = self.table.take();
        if slot.is_null() {
            return false;
        }
        let secure = super::harden::secure_mode();
        let base = os::map_arena(secure);
        let kind = if self.medium {
            addr_map::KIND_RUNS
        } else {
            addr_map::KIND_POOLS
        };
        if base.is_null() || !addr_map::insert(base as usize, slot.cast(), kind) {
            if !base.is_null() {
                // SAFETY: just mapped, nothing refers into it.
                unsafe { os::unmap_arena(base, secure) };
            }
            // SAFETY: slot came from the table and is unused.
            unsafe { self.table.give_back(slot) };
            return false;
        }
        // Hardened mode: the first unit after the header page is an inaccessible guard, never
        // handed out, so an underflow off the first pool's blocks faults before it reaches the
        // pool headers.
        // SAFETY: the unit is inside the arena just mapped, unused.
        if secure && !unsafe { os::protect_none(base.add(POOL_SIZE), UNIT * POOL_SIZE) } {
            // SAFETY: just mapped; nothing refers into it.
            unsafe {
                addr_map::remove(base as usize);
                os::unmap_arena(base, secure);
                self.table.give_back(slot);
            }
            return false;
        }
        // SAFETY: slot is ours to initialize; header 0 of the new arena is ours to write.
        unsafe {
            Pool::init_unused(header_of(base as usize, 0));
            ptr::write(
                slot,
                ArenaDesc {
                    base: base as usize,
                    free_mask: usable_pools_mask(UNIT),
                    fresh_mask: usable_pools_mask(UNIT),
                    unit: UNIT as u8,
                    medium: self.medium,
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    freed_at: 0,
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

    /// Take a unit (a pool, or the first pool of a run) from the fullest arena that has one
    /// (mapping a new arena if none has). None when the OS refuses memory.
    pub fn alloc_pool(&mut self) -> Option<NewPool> {
        if self.nfree > SPARE_ARENAS {
            self.purge(false);
        }
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
            invariant!(d.free_mask != 0, "arena with free pools has none");
            let i = d.free_mask.trailing_zeros();
            let bit = Self::UNIT_BITS << i;
            let fresh = d.fresh_mask & bit == bit;
            d.free_mask &= !bit;
            d.fresh_mask &= !bit;
            NewPool {
                pool: header_of(d.base, i as usize),
                fresh,
            }
        };
        // SAFETY: a is live.
        if unsafe { (*a).nfreepools() } > 0 {
            self.bucket_push(a);
        }
        Some(out)
    }

    /// Give back a pool whose header was retired. Releases the arena when it becomes free.
    ///
    /// # Safety
    /// `pool` came from `alloc_pool`, is retired, and nothing refers into it.
    pub unsafe fn free_pool(&mut self, pool: *mut Pool) {
        let a = addr_map::lookup(pool as usize).cast::<ArenaDesc>();
        if a.is_null() {
            super::fatal::fatal(
                "broken allocator invariant",
                pool.cast(),
                "pool outside every arena",
            );
        }
        // SAFETY: a is the live descriptor of pool's arena; pool is ours to link.
        unsafe {
            if (*a).nfreepools() > 0 {
                self.bucket_remove(a);
            }
            invariant!(
                (*a).unit as usize == UNIT,
                "pool freed to arenas of another unit"
            );
            let bit = Self::UNIT_BITS << index_of(pool);
            invariant!((*a).free_mask & bit == 0, "pool freed twice to its arena");
            (*a).free_mask |= bit;
            if (*a).nfreepools() == Self::full() {
                self.arena_now_free(a);
            } else {
                self.bucket_push(a);
            }
        }
    }

    /// # Safety
    /// `a` is live, in no bucket, and all its pools are free.
    unsafe fn arena_now_free(&mut self, a: *mut ArenaDesc) {
        // SAFETY: the caller guarantees a is live and entirely free.
        unsafe { (*a).freed_at = os::now_ms() };
        self.bucket_push(a);
        if self.nfree > SPARE_ARENAS {
            self.purge(false);
        }
    }

    /// The purge delay in milliseconds (read from the environment on first use).
    pub fn purge_delay(&mut self) -> u64 {
        if self.purge_delay == u64::MAX {
            self.purge_delay = crate::options::PURGE_DELAY
                .number()
                .unwrap_or(PURGE_DELAY_MS);
        }
        self.purge_delay
    }

    /// Set the purge delay (tests; 0: unmap free arenas beyond the spares at once).
    #[cfg(test)]
    pub fn set_purge_delay(&mut self, ms: u64) {
        self.purge_delay = ms;
    }

    /// Unmap the fully free arenas beyond the `SPARE_ARENAS` newest that have been free for the
    /// purge delay, or all of them with `force`.
    pub fn purge(&mut self, force: bool) {
        if self.nfree <= SPARE_ARENAS || (!force && os::releases_held()) {
            // Held: a collection's pause runs on this thread; a later arena event purges.
            return;
        }
        let delay = self.purge_delay();
        let now = if force { u64::MAX } else { os::now_ms() };
        if now.saturating_sub(self.oldest_free) < delay {
            return;
        }
        let mut oldest_kept = u64::MAX;
        let mut seen = 0;
        let mut a = self.usable[Self::full()];
        while !a.is_null() {
            // SAFETY: bucket lists hold live descriptors.
            let (next, freed_at) = unsafe { ((*a).next, (*a).freed_at) };
            seen += 1;
            if seen > SPARE_ARENAS && now.saturating_sub(freed_at) >= delay {
                self.bucket_remove(a);
                // SAFETY: a is live, entirely free, and now in no bucket.
                unsafe { self.release(a) };
            } else {
                oldest_kept = oldest_kept.min(freed_at);
            }
            a = next;
        }
        self.oldest_free = oldest_kept;
    }

    /// # Safety
    /// `a` is live, in no bucket, and all its pools are free.
    unsafe fn release(&mut self, a: *mut ArenaDesc) {
        // SAFETY: per the contract; nothing refers into the arena.
        unsafe {
            addr_map::remove((*a).base);
            os::unmap_arena((*a).base as *mut u8, super::harden::secure_mode());
            (*a).base = 0;
            self.table.give_back(a);
        }
        self.counters.released_total += 1;
        self.counters.current -= 1;
    }

    /// Fully free arenas still mapped (the spares and those waiting for the purge delay).
    pub fn free_arenas(&self) -> usize {
        self.nfree
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
        for n in 0..=USABLE_POOLS {
            let mut a = self.usable[n];
            if a.is_null() == (self.nonempty & (1u128 << n) != 0) {
                return Err("bucket bitmap disagrees with bucket list");
            }
            while !a.is_null() {
                // SAFETY: bucket lists hold live descriptors.
                let d = unsafe { &*a };
                if d.nfreepools() != n || n == 0 {
                    return Err("arena in the wrong bucket");
                }
                in_buckets += 1;
                a = d.next;
            }
        }
        let mut with_free = 0;
        let mut result = Ok(());
        self.for_each(|d| {
            if d.fresh_mask & !d.free_mask != 0 {
                result = Err("a fresh pool is not free");
            }
            if d.free_mask & !usable_mask(UNIT) != 0 {
                result = Err("the header page or a pool past the last unit is marked free");
            }
            if d.unit as usize != UNIT {
                result = Err("an arena of another unit among these arenas");
            }
            let mut m = d.free_mask >> 1;
            while m != 0 {
                let unit = m & Self::UNIT_BITS;
                if unit != 0 && unit != Self::UNIT_BITS {
                    result = Err("free pools not in whole units");
                }
                m >>= UNIT;
            }
            if !core::ptr::eq(addr_map::lookup(d.base).cast::<ArenaDesc>(), d) {
                result = Err("address map does not point at the arena's descriptor");
            }
            if d.nfreepools() > 0 {
                with_free += 1;
            }
        });
        result?;
        if with_free != in_buckets {
            return Err("an arena with free pools is missing from the buckets");
        }
        let mut nfree = 0;
        let mut a = self.usable[Self::full()];
        while !a.is_null() {
            // SAFETY: bucket lists hold live descriptors.
            let d = unsafe { &*a };
            if d.freed_at < self.oldest_free {
                return Err("oldest_free is later than a free arena's freed_at");
            }
            nfree += 1;
            a = d.next;
        }
        if nfree != self.nfree {
            return Err("nfree disagrees with the fully-free bucket");
        }
        Ok(())
    }
}
