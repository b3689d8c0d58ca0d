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

use crate::config::{ADDRESS_BITS, ARENA_BITS, MAP_LEAF_BITS, MAP_TOP_BITS};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::os;

const TOP_LEN: usize = 1 << MAP_TOP_BITS;
const LEAF_LEN: usize = 1 << MAP_LEAF_BITS;

type Leaf = [AtomicPtr<()>; LEAF_LEN];

static TOP: [AtomicPtr<Leaf>; TOP_LEN] = [const { AtomicPtr::new(ptr::null_mut()) }; TOP_LEN];

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

/// Record `desc` for the arena at `base`. False when a leaf could not be mapped.
/// Each arena has one writer (its `Arenas`); leaves are installed atomically.
pub fn insert(base: usize, desc: *mut ()) -> bool {
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
    // SAFETY: l is a live leaf (just made or loaded non-null).
    unsafe { (*l)[leaf].store(desc, Ordering::Release) };
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
}
