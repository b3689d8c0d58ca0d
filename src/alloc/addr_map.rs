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
//! `KIND_RUNS` for one of medium runs) over a *window* of `WINDOW_LEN` arena numbers (64 GiB
//! of address space in the default geometry, a 256 KiB table), placed at the first insert
//! around the first arena: the kernel maps later arenas next to earlier ones (`os::map_arena`'s
//! hint), so in practice every arena falls inside. An address outside the window (an arena the
//! kernel put far away, glibc's heap) is answered by the tree, whose entries carry the kind too
//! (in the descriptor pointer's two low bits), out of line.
//! - Window entries follow the tree's: set in `insert` before the arena is used, cleared in
//!   `remove`, so the map and the tree never disagree about memory in use.
//! - The window is placed once, by the first insert's CAS (two `Arenas` can race: the loser
//!   waits for the winner's window, so both arenas are in it); its start and table are written
//!   before its length is published (Release), and a lookup reads the length first (Acquire).
//!   A table that could not be mapped leaves no window for good. The table is never freed.
//!   `kind_map.rs` holds this protocol (`KindMap`), the same code the loom models in
//!   `tests/loom_kind_map.rs` run: two writers placing the window while a reader looks, and a
//!   reservation that fails.

use crate::config::{ADDRESS_BITS, ARENA_BITS, MAP_LEAF_BITS, MAP_TOP_BITS};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use super::kind_map::KindMap;
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
/// The tree entry's bits that hold the kind (descriptors are at least 8-aligned).
const KIND_BITS: usize = 3;

/// Arena numbers the kind map's window covers.
const WINDOW_LEN: usize = 1 << 18;

/// The kind map the allocator asks (`kind_map.rs` has its placement and lookup).
static KINDS: KindMap<WINDOW_LEN> = KindMap::new();

/// What the address map says of the arena holding `addr`: `KIND_NONE` when `addr` is not in
/// one of our arenas. Inside the window (every arena in practice), one compare and one load.
#[inline(always)]
pub fn kind(addr: usize) -> u8 {
    // `len`, `lo`, the compare, `by_number`, the byte: inlined, C `free` has the instructions
    // of the body this replaced (a helper returning `Option<u8>` laid them out differently).
    match KINDS.window().entry(addr >> ARENA_BITS) {
        Some(entry) => entry.load(Ordering::Relaxed),
        None => kind_outside(addr),
    }
}

/// `kind` of an address outside the window (or of any address before the first arena): the
/// tree's answer.
#[cold]
#[inline(never)]
pub(super) fn kind_outside(addr: usize) -> u8 {
    (entry(addr) as usize & KIND_BITS) as u8
}

/// The window's entry for the arena at `base` (placing the window at the first call, around
/// `base`), or None when `base` is outside the window or its table could not be mapped.
fn kind_entry(base: usize) -> Option<&'static AtomicU8> {
    let reserve = || os::reserve_table(WINDOW_LEN).cast::<AtomicU8>();
    let release = |table: *mut AtomicU8| {
        // SAFETY: `entry_for` releases only a table `reserve` gave, with that size, and never
        // published.
        unsafe { os::release_table(table.cast(), WINDOW_LEN) }
    };
    // SAFETY: reserve_table gives null or WINDOW_LEN zeroed bytes (KIND_NONE entries; an
    // AtomicU8 is a u8), mapped until released; the map is static, and `entry_for` releases
    // only a table it never published.
    unsafe { KINDS.entry_for(base >> ARENA_BITS, reserve, release) }
}

#[inline(always)]
fn split(addr: usize) -> Option<(usize, usize)> {
    if addr >> ADDRESS_BITS != 0 {
        return None;
    }
    let n = addr >> ARENA_BITS;
    Some((n >> MAP_LEAF_BITS, n & (LEAF_LEN - 1)))
}

/// The descriptor of the arena holding `addr`, or null when `addr` is not in one of our
/// arenas.
#[inline]
pub fn lookup(addr: usize) -> *mut () {
    (entry(addr) as usize & !KIND_BITS) as *mut ()
}

/// The tree's entry for `addr`: the descriptor with the kind in its low bits, or null.
#[inline]
fn entry(addr: usize) -> *mut () {
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
/// leaf could not be mapped, or `base` is beyond the tree.
/// Each arena has one writer (its `Arenas`); leaves are installed atomically.
pub fn insert(base: usize, desc: *mut (), kind: u8) -> bool {
    debug_assert!(kind == KIND_POOLS || kind == KIND_RUNS);
    debug_assert!(
        desc as usize & KIND_BITS == 0,
        "a descriptor less than 4-aligned"
    );
    let Some((top, leaf)) = split(base) else {
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
    let tagged = (desc as usize | usize::from(kind)) as *mut ();
    // SAFETY: l is a live leaf (just made or loaded non-null).
    unsafe { (*l)[leaf].store(tagged, Ordering::Release) };
    if let Some(k) = kind_entry(base) {
        k.store(kind, Ordering::Release);
    }
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
    if let Some(k) = kind_entry(base) {
        k.store(KIND_NONE, Ordering::Release);
    }
}
