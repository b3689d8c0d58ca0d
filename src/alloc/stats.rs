//! Allocator statistics: a snapshot taken by walking every arena and pool under the global lock,
//! as CPython's `_PyObject_DebugMallocStats` does. Nothing is counted on the fast paths.
//!
//! `blocks_in_use` counts blocks handed out and not yet freed by their pool's owner: a block
//! freed by another thread and still on its pool's remote list counts as in use until the owner
//! takes it (mimalloc reports the same way).

use core::fmt;
use core::sync::atomic::Ordering;

use crate::config::{
    ARENA_SIZE, MEDIUM_CLASSES, MEDIUM_MAX, NUM_CLASSES, POOL_SIZE, RUN_SIZE, USABLE_POOLS,
};

use super::arena::ArenaCounters;
use super::global::GLOBAL;
use super::pool::index_of;
use super::size_class::{CLASS_NONE, CLASS_RUN_TAIL, block_size, blocks_per_pool};

/// Statistics of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// The class's block size in bytes.
    pub block_size: usize,
    /// Pools in use for this class (including an empty one a heap keeps).
    pub pools: usize,
    /// Blocks handed out and not yet freed.
    pub blocks_in_use: usize,
    /// Free blocks in this class's pools (on free lists or never carved).
    pub blocks_free: usize,
}

/// A snapshot of the allocator (`arenagc::alloc::stats()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocStats {
    /// The small classes (16..512 bytes); `pools` counts pools.
    pub classes: [ClassStats; NUM_CLASSES],
    /// The medium classes (640..4096 bytes); `pools` counts runs (`RUN_SIZE` bytes each).
    pub medium: [ClassStats; MEDIUM_CLASSES],
    /// The arena counters, small pools' and medium runs' arenas together.
    pub arenas: ArenaCounters,
    /// Pools that can hold blocks in the arenas currently mapped: all but the header page of a
    /// small arena, the pools of the whole runs of a run arena (the few past the last run hold
    /// nothing), less hardened mode's guard unit per arena. Each is in use (a small pool, or one
    /// of a run's `RUN_POOLS`) or free (`pools_free`).
    pub pool_capacity: usize,
    /// Of the mapped arenas, those fully free: the spare, and those waiting out the purge delay.
    pub arenas_free: usize,
    /// Pools in mapped arenas that hold no class: free in their arena (given back or never
    /// carved), or empty in a thread heap's pool cache.
    pub pools_free: usize,
    /// Bytes (usable size) and blocks currently held in the system allocator.
    pub large_bytes: usize,
    /// Blocks currently held in the system allocator (see `large_bytes`).
    pub large_blocks: usize,
    /// Whether debug mode (guards, fill patterns, quarantine) is on.
    pub debug: bool,
}

impl AllocStats {
    /// Every class, small then medium.
    pub fn all_classes(&self) -> impl Iterator<Item = &ClassStats> {
        self.classes.iter().chain(self.medium.iter())
    }
    /// Blocks in use over every class.
    pub fn blocks_in_use(&self) -> usize {
        self.all_classes().map(|c| c.blocks_in_use).sum()
    }
    /// Bytes in use over every class (blocks in use times their block size).
    pub fn bytes_in_use(&self) -> usize {
        self.all_classes()
            .map(|c| c.blocks_in_use * c.block_size)
            .sum()
    }
    /// Bytes free in the pools and runs in use (free blocks times their block size).
    pub fn bytes_free_in_pools(&self) -> usize {
        self.all_classes()
            .map(|c| c.blocks_free * c.block_size)
            .sum()
    }
    /// Small pools and medium runs in use.
    pub fn pools_in_use(&self) -> usize {
        self.all_classes().map(|c| c.pools).sum()
    }
    /// Bytes of address space in arenas currently mapped.
    pub fn arena_bytes(&self) -> usize {
        self.arenas.current as usize * ARENA_SIZE
    }
    /// Bytes lost to pool headers (one pool per arena) and to pool and run tails too short for a
    /// block.
    pub fn overhead_bytes(&self) -> usize {
        let tails: usize = self
            .all_classes()
            .enumerate()
            .map(|(i, c)| {
                let span = if i < NUM_CLASSES { POOL_SIZE } else { RUN_SIZE };
                c.pools * (span - blocks_per_pool(i) * block_size(i))
            })
            .sum();
        tails + self.arenas.current as usize * POOL_SIZE
    }
}

pub fn snapshot() -> AllocStats {
    let mut s = AllocStats {
        classes: [ClassStats::default(); NUM_CLASSES],
        medium: [ClassStats::default(); MEDIUM_CLASSES],
        arenas: ArenaCounters::default(),
        pool_capacity: 0,
        arenas_free: 0,
        pools_free: 0,
        large_bytes: 0,
        large_blocks: 0,
        debug: super::dispatch::debug_enabled(),
    };
    for (i, c) in s.classes.iter_mut().chain(s.medium.iter_mut()).enumerate() {
        c.block_size = block_size(i);
    }
    {
        super::thread::ensure_process_init();
        let g = GLOBAL.lock();
        let (small, runs) = (g.arenas.counters, g.runs.counters);
        s.arenas = ArenaCounters {
            allocated_total: small.allocated_total + runs.allocated_total,
            released_total: small.released_total + runs.released_total,
            current: small.current + runs.current,
            peak: small.peak + runs.peak,
        };
        s.arenas_free = g.arenas.free_arenas() + g.runs.free_arenas();
        g.for_each_arena(|d| {
            s.pool_capacity += d.usable_pools().count_ones() as usize;
            s.pools_free += d.nfreepools();
            for p in d.touched_pools() {
                // SAFETY: touched pools have been written at least once, so their header
                // fields read below are initialized; those two fields are atomics.
                let p = unsafe { &*p };
                let class = p.class.load(Ordering::Acquire) as usize;
                if class == CLASS_RUN_TAIL {
                    continue; // counted with its run's first pool
                }
                if class == CLASS_NONE {
                    // Not in use: free in its arena (counted above), or retired in a heap's
                    // cache (a run: all its pools).
                    if d.free_mask & (1u64 << index_of(p)) == 0 {
                        s.pools_free += d.unit as usize;
                    }
                    continue;
                }
                let used = p.used() as usize;
                let c = if class < NUM_CLASSES {
                    &mut s.classes[class]
                } else {
                    &mut s.medium[class - NUM_CLASSES]
                };
                c.pools += 1;
                c.blocks_in_use += used;
                c.blocks_free += blocks_per_pool(class).saturating_sub(used);
            }
        });
    }
    (s.large_bytes, s.large_blocks) = super::large::totals();
    s
}

impl fmt::Display for AllocStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Small block threshold = 512, in 32 size classes; medium blocks to {MEDIUM_MAX}, in \
             {MEDIUM_CLASSES} classes (pools of classes {NUM_CLASSES}.. are {} KiB runs).",
            RUN_SIZE >> 10
        )?;
        writeln!(f)?;
        writeln!(f, "class   size   num pools   blocks in use  avail blocks")?;
        writeln!(f, "-----   ----   ---------   -------------  ------------")?;
        for (i, c) in self.all_classes().enumerate() {
            if c.pools == 0 {
                continue;
            }
            writeln!(
                f,
                "{:5} {:6} {:11} {:15} {:13}",
                i, c.block_size, c.pools, c.blocks_in_use, c.blocks_free
            )?;
        }
        let a = &self.arenas;
        writeln!(f)?;
        let rows: [(&str, String); 13] = [
            ("# arenas allocated total", a.allocated_total.to_string()),
            ("# arenas reclaimed", a.released_total.to_string()),
            ("# arenas highwater mark", a.peak.to_string()),
            ("# arenas allocated current", a.current.to_string()),
            (
                "# arenas free, not yet purged",
                self.arenas_free.to_string(),
            ),
            (
                &format!("{} arenas * {} bytes/arena", a.current, ARENA_SIZE),
                self.arena_bytes().to_string(),
            ),
            (
                "# bytes in allocated blocks",
                self.bytes_in_use().to_string(),
            ),
            (
                "# bytes in available blocks",
                self.bytes_free_in_pools().to_string(),
            ),
            (
                &format!("{} unused pools * {} bytes", self.pools_free, POOL_SIZE),
                (self.pools_free * POOL_SIZE).to_string(),
            ),
            (
                "# bytes lost to pool headers and tails",
                self.overhead_bytes().to_string(),
            ),
            ("# pools per arena", USABLE_POOLS.to_string()),
            (
                "# bytes in system allocator",
                format!("{} in {} blocks", self.large_bytes, self.large_blocks),
            ),
            (
                "# debug mode",
                if self.debug { "on" } else { "off" }.to_string(),
            ),
        ];
        for (k, v) in rows {
            writeln!(f, "{k:<40} = {v:>15}")?;
        }
        Ok(())
    }
}
