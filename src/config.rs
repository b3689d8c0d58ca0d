//! Tunables, in one place, with the compile-time checks that keep their arithmetic true.
//!
//! ```text
//!  arena (ARENA_SIZE = 256 KiB, aligned to 256 KiB)
//!  +---------+--------+--------+-- ... --+--------+
//!  | headers | pool 1 | pool 2 |         | pool 63|      POOL_SIZE = 4 KiB each
//!  +---------+--------+--------+-- ... --+--------+
//!  headers:  [ unused | header 1 | header 2 | ... | header 63 ]   POOL_HEADER_SIZE = 64 each
//!  pool:     [ block | block | ... | block | tail waste ]          all of one size class
//! ```
//!
//! With the `large-pools` feature the same picture holds at CPython's 64-bit scale: 16 KiB pools
//! in 1 MiB arenas (its `USE_LARGE_POOLS` / `USE_LARGE_ARENAS`, on by default since 3.10 where
//! its radix tree, our address map, is on). The header pool then uses 4 KiB of its 16.
//!
//! The pool headers are packed in the arena's first page, not at the start of each pool as in
//! CPython: page-aligned headers all fall in the same few cache sets (every header of every pool
//! competed for one set of the L1 and 1/64 of the L2), so the free path, which reads the header
//! of each block it frees, missed the cache whenever more than a handful of pools were in play.
//! Packed, 63 headers share 63 lines of one page. The cost is the same as before: one page of
//! headers per arena instead of 80 bytes at the start of each of its 64 pools.
//!
//! Size classes (CPython's table with ALIGNMENT = 16):
//!
//! | request (bytes) | block size | class |
//! |-----------------|------------|-------|
//! | 1 - 16          | 16         | 0     |
//! | 17 - 32         | 32         | 1     |
//! | ...             | ...        | ...   |
//! | 497 - 512       | 512        | 31    |
//!
//! Zero-byte requests from C (`malloc(0)`) are served from class 0 so every call returns a
//! distinct live pointer.

/// Every block is aligned to this; also the step between size classes.
pub const ALIGNMENT: usize = 16;
/// log2(ALIGNMENT).
pub const ALIGNMENT_SHIFT: u32 = 4;
/// Largest request (in bytes) served from pools; larger ones go to the system allocator.
pub const SMALL_MAX: usize = 512;
/// The largest request the malloc family accepts; larger ones fail with `ENOMEM` (glibc fails
/// them too). Two arenas below `isize::MAX`, so that no size arithmetic of any backend (a debug
/// block's header and guards, an aligned block's padding) can overflow.
pub const MAX_REQUEST: usize = isize::MAX as usize - 2 * ARENA_SIZE;
/// Number of size classes: 16, 32, ..., 512.
pub const NUM_CLASSES: usize = SMALL_MAX / ALIGNMENT;

/// A pool is one page (pymalloc's classic geometry), or 16 KiB with the `large-pools` feature
/// (CPython's `USE_LARGE_POOLS`, its default on 64-bit platforms since 3.10).
#[cfg(not(feature = "large-pools"))]
pub const POOL_BITS: u32 = 12;
/// A pool is 16 KiB (`large-pools`: CPython's `USE_LARGE_POOLS`).
#[cfg(feature = "large-pools")]
pub const POOL_BITS: u32 = 14;
/// Bytes per pool: 4 KiB, or 16 KiB with `large-pools`.
pub const POOL_SIZE: usize = 1 << POOL_BITS;
/// An arena is 64 pools, aligned to its own size so `p & !(ARENA_SIZE-1)` finds it: 256 KiB, or
/// 1 MiB with `large-pools` (CPython's `USE_LARGE_ARENAS`).
#[cfg(not(feature = "large-pools"))]
pub const ARENA_BITS: u32 = 18;
/// An arena is 1 MiB (`large-pools`: CPython's `USE_LARGE_ARENAS`).
#[cfg(feature = "large-pools")]
pub const ARENA_BITS: u32 = 20;
/// Bytes per arena: 256 KiB, or 1 MiB with `large-pools`.
pub const ARENA_SIZE: usize = 1 << ARENA_BITS;
/// Pools per arena, the header page included: 64 in both geometries.
pub const POOLS_PER_ARENA: usize = ARENA_SIZE / POOL_SIZE;
/// Bytes of each pool header (`alloc::pool::Pool`) in the arena's header page.
pub const POOL_HEADER_SIZE: usize = 64;
/// Pools of an arena that hold blocks (pool 0 is the header page).
pub const USABLE_POOLS: usize = POOLS_PER_ARENA - 1;

/// Medium blocks: requests of `SMALL_MAX + 1 ..= MEDIUM_MAX` bytes (alignment at most 16) come
/// from our own size classes, `MEDIUM_STEP` bytes apart, instead of the system allocator. Half of
/// the blocks of a larson- or rptest-shaped server (8..1000 bytes) are above 512 bytes, and
/// forwarding them to glibc cost those programs most of their gap to glibc and mimalloc
/// (`benches/README.md`, multi-threaded workloads). Up to 4096 (was 2048): mimalloc-bench's
/// alloc-test shape (1 in 16 blocks of 513..4096 bytes) spent a tenth of its time in glibc for
/// the blocks over 2048 bytes, and 14-16% less time when runs served them.
pub const MEDIUM_MAX: usize = 4096;
/// The step between medium classes: at most 127 bytes of a block unused (20% at 640 bytes).
pub const MEDIUM_STEP: usize = 128;
/// Number of medium classes: 640, 768, ..., 4096.
pub const MEDIUM_CLASSES: usize = (MEDIUM_MAX - SMALL_MAX) / MEDIUM_STEP;
/// Every class the pools serve: the small ones (`0..NUM_CLASSES`), then the medium ones.
pub const ALL_CLASSES: usize = NUM_CLASSES + MEDIUM_CLASSES;
/// A medium pool is a *run* of this many bytes: `RUN_POOLS` consecutive pools of an arena kept
/// for medium runs, described by the header of the first (the others' headers say
/// `CLASS_RUN_TAIL`). 16 KiB holds 4 (4096 B) to 25 (640 B) medium blocks, as a small pool holds
/// 8 to 256.
pub const RUN_SIZE: usize = 16 << 10;
/// Pools per run: 4 in the default geometry, 1 with `large-pools` (its pools are 16 KiB).
pub const RUN_POOLS: usize = RUN_SIZE / POOL_SIZE;
/// Runs per arena of medium runs: runs start at pool 1 (pool 0 is the header page).
pub const RUNS_PER_ARENA: usize = USABLE_POOLS / RUN_POOLS;

/// Fully free arenas kept mapped and committed for good, so a program that frees and allocates
/// around an arena boundary does not thrash `mmap`.
pub const SPARE_ARENAS: usize = 1;

/// Further fully free arenas stay mapped this long (milliseconds) before they are unmapped, as
/// mimalloc delays its purges: a program that frees a large batch and allocates it again soon
/// (a phase of a compiler or an interpreter, a request of a server) reuses the pages instead of
/// faulting them all in again. Expired arenas are unmapped at the next arena event (a pool
/// taken or an arena freed); `alloc::trim()` unmaps them at once. The environment variable
/// `ARENAGC_PURGE_DELAY` (milliseconds, read once) overrides it; 0 unmaps at once.
///
/// 100 ms, measured: python3 running an allocation-heavy script (phases of 50-200 ms) took 9%
/// less time than with 10 ms (medians of 9 interleaved runs; 1.29k fewer munmaps). mimalloc 2.0
/// (Debian's) waits 25 ms to decommit pages and 500 ms to free whole segments; jemalloc's
/// dirty pages decay over 10 s.
pub const PURGE_DELAY_MS: u64 = 100;

/// The malloc replacement's glibc policy (`alloc::large::tune_system_allocator`): free memory
/// kept at the top of glibc's heap before it trims, and the size from which glibc maps a block
/// on its own, measured on the C batch bench and the large-block loop (see the function).
/// glibc's defaults are 128 KiB and 128 KiB, raised by its dynamic adjustment up to 64 MiB and
/// 32 MiB (its `DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit): these are the ceilings it converges to.
pub const SYSTEM_TRIM_THRESHOLD: usize = 64 << 20;
/// The mmap threshold of that policy (see [`SYSTEM_TRIM_THRESHOLD`]): 32 MiB.
pub const SYSTEM_MMAP_THRESHOLD: usize = 32 << 20;

/// A full pool goes back on its heap's avail list once it has this many free blocks, not at
/// the first free: with random frees most pools are full, and reviving each at one free block
/// made every operation revive one pool and exhaust another (measured: 0.62 state changes per
/// operation at 1, 0.37 at 2; about 10% faster). The cost: at most `REVIVE_FREE_BLOCKS - 1`
/// free blocks per full pool wait for one more free before they are reused.
pub const REVIVE_FREE_BLOCKS: u32 = 2;

/// Empty pools a thread heap leaves on their class's avail list ("kept"), so a class that
/// empties and refills pools touches no list at all.
pub const HEAP_KEPT_POOLS: usize = 8;
/// Further empty pools a thread heap keeps for reuse by any class (retired, in a cache) before
/// giving them back to their arena, so a program that empties and refills pools does not take
/// the global lock each time. `alloc::trim()` and thread exit give both kinds back. When the
/// cache overflows, half of it goes back under one lock.
pub const HEAP_POOL_CACHE: usize = 64;
/// Pools a heap takes from the arenas at once (into its cache) when it needs a new one. The
/// global lock is a locked instruction, which waits for every store still in flight; a thread
/// that writes to cold memory (filling pools) paid that wait once per pool.
pub const HEAP_CACHE_BATCH: usize = 16;
/// The same two bounds for a heap's cache of medium runs (a run is 16 KiB: 4 runs at a time,
/// at most 16 kept, so a thread holds at most 256 KiB of empty runs, as of empty pools).
pub const HEAP_RUN_BATCH: usize = 4;
/// Empty medium runs a heap keeps at most (see [`HEAP_RUN_BATCH`]).
pub const HEAP_RUN_CACHE: usize = 16;

/// User-space addresses the address map covers (x86-64 and AArch64 with 4-level paging).
/// `mmap` never returns memory above this unless asked to with a hint above it; our only hint
/// (`os::map_arena`) is just below an arena it already returned.
pub const ADDRESS_BITS: u32 = 48;
/// The address map is a two-level radix tree over arena numbers (`addr >> ARENA_BITS`).
pub const MAP_LEAF_BITS: u32 = 15;
/// Bits of an arena number indexing the top level of the address map (the rest index a leaf).
pub const MAP_TOP_BITS: u32 = ADDRESS_BITS - ARENA_BITS - MAP_LEAF_BITS;

/// Arena descriptors live in one reserved (not committed) table of this many slots.
/// 1 Mi arenas = 256 GiB of small blocks.
pub const MAX_ARENAS: usize = 1 << 20;
/// Thread heaps live in one reserved table; slots of exited threads are reused.
pub const MAX_HEAPS: usize = 1 << 16;

/// Debug mode: byte written over a new block's payload.
pub const FILL_NEW: u8 = 0xCD;
/// Debug mode: byte written over a freed block.
pub const FILL_FREED: u8 = 0xDD;
/// Debug mode: byte of the guard areas before and after each payload.
pub const FILL_GUARD: u8 = 0xFD;
/// Debug mode: freed blocks wait in a FIFO of this many before they are reused, so a double
/// free or a write after free is caught while the block is still marked freed.
pub const DEBUG_QUARANTINE: usize = 512;
/// Debug mode: guard bytes after each payload.
pub const DEBUG_TAIL: usize = 8;

const _: () = assert!(ALIGNMENT == 1 << ALIGNMENT_SHIFT);
const _: () = assert!(SMALL_MAX % ALIGNMENT == 0);
const _: () = assert!(NUM_CLASSES == 32);
const _: () = assert!(POOLS_PER_ARENA == 64);
const _: () = assert!(POOL_HEADER_SIZE * POOLS_PER_ARENA <= POOL_SIZE);
// Pool offsets and block counts are kept in u16 fields.
const _: () = assert!(POOL_SIZE < u16::MAX as usize);
const _: () = assert!(POOL_SIZE / SMALL_MAX >= 4);
const _: () = assert!(MAP_TOP_BITS + MAP_LEAF_BITS + ARENA_BITS == ADDRESS_BITS);
const _: () = assert!(ARENA_SIZE % POOL_SIZE == 0);
const _: () = assert!((MEDIUM_MAX - SMALL_MAX) % MEDIUM_STEP == 0 && MEDIUM_STEP % ALIGNMENT == 0);
const _: () = assert!(RUN_SIZE % POOL_SIZE == 0 && RUN_POOLS.is_power_of_two());
// Run offsets are kept in the pool header's u16 fields, and a run holds a few blocks at least.
const _: () = assert!(RUN_SIZE < u16::MAX as usize && RUN_SIZE / MEDIUM_MAX >= 4);

// =============================================================================================
// Collector tunables (`gc`, and the trashcan of `object`). `gc` re-exports the first three
// under these names (`gc::NUM_GENERATIONS`, `gc::DEFAULT_THRESHOLDS`, `gc::TRASH_LIMIT`).
// =============================================================================================

/// Generations of tracked objects, youngest first (the permanent generation of `gc::freeze`
/// is not counted). CPython's 3. The `gc` functions returning one value per generation as a
/// tuple (`get_count`, `get_threshold`) and the C ABI's `AGC_GC_GENERATIONS` assume 3.
pub const NUM_GENERATIONS: usize = 3;

/// Collection thresholds of generations 0, 1, 2 (CPython's): generation 0 is collected when
/// its count (tracked allocations minus frees) exceeds 700; generation `i > 0` when it has
/// seen more than 10 collections of generation `i - 1`. `gc::set_threshold` changes them per
/// runtime.
pub const DEFAULT_THRESHOLDS: [usize; NUM_GENERATIONS] = [700, 10, 10];

/// How deep deallocations nest before the trashcan puts the next one off to the outermost
/// deallocation (CPython's `Py_TRASHCAN` limit, 50). Deeper nesting costs stack (a C
/// `dealloc` that drops its last reference to the next object recurses through the library
/// once per object); shallower defers more objects. 50 levels of the deepest path measured
/// (a C dealloc through `agc_object_decref`) fit a 256 KiB thread stack with room to spare
/// (`ffi/tests/trashcan.c`).
pub const TRASH_LIMIT: usize = 50;

/// A full collection also needs `long_lived_pending > long_lived_total / 4` (CPython's rule
/// since 3.2): the objects that survived younger collections since the last full one must
/// exceed 25% of those the last one found alive, so the total cost of full collections stays
/// linear in the number of objects made.
pub const FULL_COLLECTION_PENDING_DIVISOR: usize = 4;

/// Longest description of an object (`gc::repr`) in the collector's pictures and reports, in
/// bytes: a label a reader takes in at a glance in a Graphviz box (objgraph cuts its labels
/// near 40 characters); formatting stops there, so a `Debug` that would follow a cycle ends.
pub const REPR_MAX_BYTES: usize = 60;

const _: () = assert!(
    NUM_GENERATIONS == 3,
    "get_count/get_threshold return triples"
);
const _: () = assert!(TRASH_LIMIT >= 1);
const _: () = assert!(FULL_COLLECTION_PENDING_DIVISOR >= 1);
const _: () = assert!(REPR_MAX_BYTES >= 4, "room for one character of any width");
