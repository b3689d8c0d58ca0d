//! The address map: "is this pointer inside one of our arenas?" in O(1), with no false positive.
//!
//! A two-level radix tree indexed by arena number (`addr >> ARENA_BITS`): a static top level of
//! `2^MAP_TOP_BITS` leaf pointers, and leaves of `2^MAP_LEAF_BITS` entries mapped on demand.
//! An entry holds the arena's descriptor pointer, or null. The map sits below the arenas and
//! stores that pointer opaquely (`*mut ()`); `arena.rs` converts.
//!
//! Invariants:
//! - An entry is non-null exactly while its arena is mapped (set before the arena's first pool
//!   is handed out, cleared before it is unmapped), so a lookup never answers "ours" for memory
//!   we do not hold.
//! - Each entry has one writer (the `Arenas` that owns the arena, under its lock); a missing
//!   leaf is installed by CAS. Readers take no lock (atomic loads), so `free(p)` of any pointer
//!   can ask without blocking.
//! - Leaves are never freed.
//!
//! Beside the tree, a flat *kind map* answers the question `free(p)` asks first, in one load:
//! one byte per arena number (`KIND_NONE`, `KIND_POOLS` for an arena of small pools,
//! `KIND_RUNS` for one of medium runs), in a table reserved (not committed) at the first
//! insert: 2^(47 - ARENA_BITS) bytes on x86-64 (512 MiB of address space in the default
//! geometry, of which only the pages for the arenas in use are ever touched, one per GiB of
//! arenas), 2^(48 - ARENA_BITS) elsewhere. Its entries follow the tree's: set in `insert`
//! before the arena is used, cleared in `remove`; its bound is published (Release) only after
//! its table pointer is set to the live table, which is never freed.

use crate::config::{ADDRESS_BITS, ARENA_BITS, MAP_LEAF_BITS, MAP_TOP_BITS};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use super::os;

const TOP_LEN: usize = 1 << MAP_TOP_BITS;
const LEAF_LEN: usize = 1 << MAP_LEAF_BITS;

type Leaf = [AtomicPtr<()>; LEAF_LEN];

static TOP: [AtomicPtr<Leaf>; TOP_LEN] = [const { AtomicPtr::new(ptr::null_mut()) }; TOP_LEN];

/// Not one of our arenas (the kind map's zero).
pub const KIND_NONE: u8 = 0;
/// An arena of small pools: block `p`'s header is its own pool's (`pool::pool_of`).
pub const KIND_POOLS: u8 = 1;
/// An arena of medium runs: block `p`'s header is its run's first (`pool::run_of`).
pub const KIND_RUNS: u8 = 2;

/// User addresses the kind map covers: x86-64's 47 bits (the kernel maps nothing above them
/// without a hint above them, and ours are below), `ADDRESS_BITS` elsewhere.
const KIND_ADDRESS_BITS: u32 = if cfg!(target_arch = "x86_64") {
    47
} else {
    ADDRESS_BITS
};
const KINDS_MAX: usize = 1 << (KIND_ADDRESS_BITS - ARENA_BITS);

/// The kind map's table and bound, side by side so a lookup finds both through one address
/// (one GOT entry in a shared library).
struct KindMap {
    /// 0 until `table` is mapped, then `KINDS_MAX`: every lookup's bound check, so a lookup
    /// before the first arena, or of an address above the covered range, reads nothing.
    len: AtomicUsize,
    table: AtomicPtr<AtomicU8>,
}

static KINDS: KindMap = KindMap {
    len: AtomicUsize::new(0),
    table: AtomicPtr::new(ptr::null_mut()),
};

/// What the kind map says of the arena holding `addr`: `KIND_NONE` when `addr` is not in one of
/// our arenas. One compare and one load (the map's base aside): the C `free`'s first step.
#[inline(always)]
pub fn kind(addr: usize) -> u8 {
    let i = addr >> ARENA_BITS;
    if i >= KINDS.len.load(Ordering::Acquire) {
        return KIND_NONE;
    }
    // SAFETY: `len` is non-zero only after `table` was set to a live table of KINDS_MAX entries
    // that is never freed (the Release store in `kind_entry`, read by the Acquire load above),
    // and i is below it.
    unsafe { (*KINDS.table.load(Ordering::Relaxed).add(i)).load(Ordering::Relaxed) }
}

/// The kind map's entry for arena number `i` (mapping the table at first use), or None when
/// `i` is beyond the map or the table could not be mapped.
fn kind_entry(i: usize) -> Option<&'static AtomicU8> {
    if i >= KINDS_MAX {
        return None;
    }
    let mut t = KINDS.table.load(Ordering::Acquire);
    if t.is_null() {
        let fresh: *mut AtomicU8 = os::reserve_table(KINDS_MAX).cast();
        if fresh.is_null() {
            return None;
        }
        // Installed by CAS, as a leaf is.
        t = match KINDS.table.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from reserve_table with that size, never published.
                unsafe { os::release_table(fresh.cast(), KINDS_MAX) };
                winner
            }
        };
        KINDS.len.store(KINDS_MAX, Ordering::Release);
    }
    // SAFETY: t is the live, never-freed table of KINDS_MAX entries; i is below that.
    Some(unsafe { &*t.add(i) })
}

#[inline(always)]
fn split(addr: usize) -> Option<(usize, usize)> {
    if addr >> ADDRESS_BITS != 0 {
        return None;
    }
    let n = addr >> ARENA_BITS;
    Some((n >> MAP_LEAF_BITS, n & (LEAF_LEN - 1)))
}

/// The entry (descriptor) of the arena holding `addr`, or null when `addr` is not in one of our
/// arenas.
#[inline]
pub fn lookup(addr: usize) -> *mut () {
    let Some((top, leaf)) = split(addr) else {
        return ptr::null_mut();
    };
    let l = TOP[top].load(Ordering::Acquire);
    if l.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a non-null leaf pointer points to a live, never-freed leaf of LEAF_LEN entries.
    unsafe { (*l)[leaf].load(Ordering::Acquire) }
}

/// Record `desc` and `kind` (`KIND_POOLS` or `KIND_RUNS`) for the arena at `base`. False when a
/// leaf or the kind map could not be mapped, or `base` is beyond them.
/// Each arena has one writer (its `Arenas`); leaves are installed atomically.
pub fn insert(base: usize, desc: *mut (), kind: u8) -> bool {
    debug_assert!(kind == KIND_POOLS || kind == KIND_RUNS);
    let Some((top, leaf)) = split(base) else {
        return false;
    };
    let Some(k) = kind_entry(base >> ARENA_BITS) else {
        return false;
    };
    let mut l = TOP[top].load(Ordering::Acquire);
    if l.is_null() {
        let fresh: *mut Leaf = os::reserve_table(core::mem::size_of::<Leaf>()).cast();
        if fresh.is_null() {
            return false;
        }
        // Installed by CAS, so two writers can never lose each other's leaf (the allocator's
        // own writers are serialized by its lock; a second `Arenas`, as tests make, is not).
        l = match TOP[top].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from reserve_table with that size and was never
                // published.
                unsafe { os::release_table(fresh.cast(), core::mem::size_of::<Leaf>()) };
                winner
            }
        };
    }
    // SAFETY: l is a live leaf (just made or loaded non-null).
    unsafe { (*l)[leaf].store(desc, Ordering::Release) };
    k.store(kind, Ordering::Release);
    true
}

/// Forget the arena at `base`. Caller holds the global allocator lock.
pub fn remove(base: usize) {
    if let Some((top, leaf)) = split(base) {
        let l = TOP[top].load(Ordering::Acquire);
        if !l.is_null() {
            // SAFETY: l is a live leaf.
            unsafe { (*l)[leaf].store(ptr::null_mut(), Ordering::Release) };
        }
    }
    if let Some(k) = kind_entry(base >> ARENA_BITS) {
        k.store(KIND_NONE, Ordering::Release);
    }
}
