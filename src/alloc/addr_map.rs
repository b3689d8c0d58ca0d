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
//! - The window's start and table are written once, before its length is published (Release);
//!   a lookup reads the length first (Acquire). The table is never freed.

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
/// The tree entry's bits that hold the kind (descriptors are at least 8-aligned).
const KIND_BITS: usize = 3;

/// Arena numbers the kind map's window covers.
const WINDOW_LEN: usize = 1 << 18;

/// The kind map: its window and table side by side, so a lookup finds all of them through one
/// address (one GOT entry in a shared library).
struct KindMap {
    /// 0 until `lo`, `table` and `by_number` are set, then `WINDOW_LEN`.
    len: AtomicUsize,
    /// The first arena number of the window.
    lo: AtomicUsize,
    table: AtomicPtr<AtomicU8>,
    /// `table - lo` (wrapping): the entry of arena number `n` is `by_number + n`, so the entry's
    /// load waits for the address only, not for `lo` (the bound check, which needs `lo`, is a
    /// predicted branch). With the entry at `table + (n - lo)`, C's hot pair took 15% longer.
    by_number: AtomicPtr<AtomicU8>,
}

/// `KindMap::table` when the window's table could not be mapped (never dereferenced: `len`
/// stays 0).
const NO_WINDOW: *mut AtomicU8 = ptr::dangling_mut();

static KINDS: KindMap = KindMap {
    len: AtomicUsize::new(0),
    lo: AtomicUsize::new(0),
    table: AtomicPtr::new(ptr::null_mut()),
    by_number: AtomicPtr::new(ptr::null_mut()),
};

/// What the address map says of the arena holding `addr`: `KIND_NONE` when `addr` is not in
/// one of our arenas. Inside the window (every arena in practice), one compare and one load.
#[inline(always)]
pub fn kind(addr: usize) -> u8 {
    let len = KINDS.len.load(Ordering::Acquire);
    let n = addr >> ARENA_BITS;
    if n.wrapping_sub(KINDS.lo.load(Ordering::Relaxed)) >= len {
        return kind_outside(addr);
    }
    let entry = KINDS.by_number.load(Ordering::Relaxed).wrapping_add(n);
    // SAFETY: `len` is non-zero only after `lo`, `table` and `by_number` were set, `table` to a
    // live table of WINDOW_LEN entries that is never freed (the Release store in `kind_entry`,
    // read by the Acquire load above), and n - lo is below it: `entry` is `table + (n - lo)`.
    unsafe { (*entry).load(Ordering::Relaxed) }
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
    let n = base >> ARENA_BITS;
    if KINDS.len.load(Ordering::Acquire) == 0 {
        if KINDS.table.load(Ordering::Acquire).is_null() {
            let fresh: *mut AtomicU8 = os::reserve_table(WINDOW_LEN).cast();
            // Installed by CAS, as a leaf is; the winner also places the window (later arenas
            // come below earlier ones, `os::map_arena`, so most of it lies below the first).
            // The first attempt is the only one: a table that could not be mapped leaves
            // NO_WINDOW, and the tree answers for good, so no arena recorded before a window
            // existed can fall inside one later, unrecorded.
            let want = if fresh.is_null() { NO_WINDOW } else { fresh };
            let won = KINDS
                .table
                .compare_exchange(ptr::null_mut(), want, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if won && !fresh.is_null() {
                // A multiple of a page of entries: arena number n's entry then sits at page
                // offset n % 4096, as in a map over all arena numbers. Placed at n - 3/4 of the
                // window exactly, the first arenas' entries sat at page offsets 0..16, where
                // every pool's first block takes the free path's stores (link, mark): the load
                // of the entry, 4 KiB apart from them, waited for them (4K aliasing), and C's hot
                // pair took 15% longer (same run, 11 rounds).
                let lo = n.saturating_sub(WINDOW_LEN * 3 / 4) & !4095;
                KINDS.lo.store(lo, Ordering::Relaxed);
                KINDS
                    .by_number
                    .store(fresh.wrapping_sub(lo), Ordering::Relaxed);
                KINDS.len.store(WINDOW_LEN, Ordering::Release);
            } else if !won && !fresh.is_null() {
                // SAFETY: `fresh` came from reserve_table with that size, never published.
                unsafe { os::release_table(fresh.cast(), WINDOW_LEN) };
            }
        }
        // Another writer (the other `Arenas`) placed the window and publishes it a few
        // instructions from now: wait, so no arena inside the window is left out of it (the
        // window would answer KIND_NONE for it).
        while KINDS.table.load(Ordering::Acquire) != NO_WINDOW
            && KINDS.len.load(Ordering::Acquire) == 0
        {
            core::hint::spin_loop();
        }
    }
    let i = n.wrapping_sub(KINDS.lo.load(Ordering::Relaxed));
    if i >= KINDS.len.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: as in `kind`: the table is live, of WINDOW_LEN entries, and i is below that.
    Some(unsafe { &*KINDS.table.load(Ordering::Relaxed).add(i) })
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
