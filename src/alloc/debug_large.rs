//! Debug mode's registry of its live blocks that come from the system allocator (over
//! `MEDIUM_MAX` with their guards, over-aligned, or taken while a fork held the pools): their
//! user pointer, size and allocation serial. A pool block is known by its pool; a system block
//! has only the header before it, so an underflow that overwrote the header would otherwise
//! make the block unrecognisable ("pointer not from this allocator"). With the registry the
//! message says "underflow" and names the size and serial, as for a pool block. At exit the
//! registry also finds an overflow of a block that was never freed (`find_overflowed`).
//!
//! An open-addressing hash table (linear probing, tombstones) in memory from `os::reserve_table`,
//! never from the allocator it serves, under one spin lock. It grows by doubling when half
//! full (tombstones counted), rehashing into a new mapping.
//!
//! Invariants:
//! - A key is a user pointer (16-aligned, so never `EMPTY` or `TOMB`); an entry exists while
//!   its debug block is live (inserted by `alloc` before the pointer is returned, removed by
//!   `free` before the block is filled and quarantined). The one exception: a free that finds
//!   the registry held by a fork in progress (the malloc family never waits for a fork) leaves
//!   its entry and sets `STALE`; from then on nothing reads a block through the registry.
//! - `len` live keys + `tombs` <= capacity / 2 after every insert, so a probe always ends.
//! - The lock is registered with the fork handlers only when debug mode is chosen (`init`).
//!
//! May touch: `lock.rs`, `fork.rs`, `fatal.rs`, `os.rs`.

use super::fatal::fatal;
use super::lock::SpinLock;
use super::os;
use core::ptr;

const EMPTY: usize = 0;
const TOMB: usize = 1;
const FIRST_CAPACITY: usize = 1024;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    key: usize,
    size: usize,
    serial: u32,
}

struct Table {
    slots: *mut Entry, // capacity entries, mapped (null before the first insert)
    capacity: usize,   // a power of two, or 0
    len: usize,
    tombs: usize,
}

// SAFETY: the table is only reached through its lock.
unsafe impl Send for Table {}

static TABLE: SpinLock<Table> = SpinLock::new(Table {
    slots: ptr::null_mut(),
    capacity: 0,
    len: 0,
    tombs: 0,
});

/// Set when a free could not remove its entry (a fork in progress on another thread held the
/// registry): an entry may then name a freed block, so `find_overflowed` reads no block.
static STALE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Debug mode was chosen: the fork handlers take the registry's lock too.
pub(crate) fn init() {
    super::fork::add_lock(TABLE.raw());
}

fn hash(key: usize) -> usize {
    // Fibonacci hashing of the 16-byte granule.
    (key >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn map(capacity: usize) -> *mut Entry {
    let p = os::reserve_table(capacity * size_of::<Entry>());
    if p.is_null() {
        fatal(
            "out of memory",
            ptr::null(),
            "debug mode could not map its registry of system blocks",
        );
    }
    p.cast()
}

impl Table {
    /// The slot of `key`, or of the first empty slot its probe meets (`found` false).
    ///
    /// # Safety
    /// `capacity > 0` and the table invariant holds (a probe meets an empty slot).
    unsafe fn find(&self, key: usize) -> (usize, bool) {
        let mask = self.capacity - 1;
        let mut i = hash(key) & mask;
        let mut tomb = None;
        loop {
            // SAFETY: i < capacity, inside the mapping.
            let k = unsafe { (*self.slots.add(i)).key };
            if k == key {
                return (i, true);
            }
            if k == EMPTY {
                return (tomb.unwrap_or(i), false);
            }
            if k == TOMB && tomb.is_none() {
                tomb = Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let capacity = if self.capacity == 0 {
            FIRST_CAPACITY
        } else if self.len * 4 < self.capacity {
            self.capacity // mostly tombstones: rehash at the same size
        } else {
            self.capacity * 2
        };
        let old = (self.slots, self.capacity);
        self.slots = map(capacity);
        self.capacity = capacity;
        self.tombs = 0;
        for i in 0..old.1 {
            // SAFETY: i < the old capacity, inside the old mapping.
            let e = unsafe { *old.0.add(i) };
            if e.key > TOMB {
                // SAFETY: the new table has room (len <= capacity / 4) and its invariant holds.
                let (j, _) = unsafe { self.find(e.key) };
                // SAFETY: j < capacity.
                unsafe { *self.slots.add(j) = e };
            }
        }
        if !old.0.is_null() {
            // SAFETY: the old table came from reserve_table with that size, and nothing points
            // into it any more.
            unsafe { os::release_table(old.0.cast(), old.1 * size_of::<Entry>()) };
        }
    }
}

/// Record a live system-backed debug block. While a fork in progress on another thread holds
/// the registry (the malloc family never waits for a fork, `lock.rs`), the block goes
/// unrecorded: its faults are then named as before the registry existed.
pub(crate) fn insert(user: *const u8, size: usize, serial: u32) {
    let key = user as usize;
    debug_assert!(key > TOMB && key % 16 == 0);
    let Some(mut t) = TABLE.lock_or_busy() else {
        return;
    };
    if (t.len + t.tombs + 1) * 2 > t.capacity {
        t.grow();
    }
    // SAFETY: capacity > 0 and the invariant holds (grown above).
    let (i, found) = unsafe { t.find(key) };
    // SAFETY: i < capacity.
    let slot = unsafe { &mut *t.slots.add(i) };
    if !found {
        if slot.key == TOMB {
            t.tombs -= 1;
        }
        t.len += 1;
    }
    *slot = Entry { key, size, serial };
}

/// Forget a block being freed; returns whether it was recorded.
pub(crate) fn remove(user: *const u8) -> bool {
    let Some(mut t) = TABLE.lock_or_busy() else {
        // A fork in progress holds the registry: the entry stays, stale, and the exit check
        // (which would read the freed block) is off for the rest of the process.
        STALE.store(true, core::sync::atomic::Ordering::Relaxed);
        return false;
    };
    if t.capacity == 0 {
        return false;
    }
    // SAFETY: capacity > 0 and the invariant holds.
    let (i, found) = unsafe { t.find(user as usize) };
    if found {
        // SAFETY: i < capacity.
        unsafe { (*t.slots.add(i)).key = TOMB };
        t.len -= 1;
        t.tombs += 1;
    }
    found
}

/// The (size, serial) of a live recorded block (None also while a fork holds the registry).
pub(crate) fn lookup(user: *const u8) -> Option<(usize, u32)> {
    let t = TABLE.lock_or_busy()?;
    if t.capacity == 0 {
        return None;
    }
    // SAFETY: capacity > 0 and the invariant holds.
    let (i, found) = unsafe { t.find(user as usize) };
    // SAFETY: i < capacity.
    found.then(|| unsafe {
        let e = *t.slots.add(i);
        (e.size, e.serial)
    })
}

/// The first live recorded block whose `tail` bytes after its payload are not all `guard`, as
/// (user pointer, size, serial): the exit check of debug mode (an overflow of a block that is
/// never freed is otherwise never seen). None also while a fork holds the registry.
pub(crate) fn find_overflowed(tail: usize, guard: u8) -> Option<(*const u8, usize, u32)> {
    let t = TABLE.lock_or_busy()?;
    if STALE.load(core::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    (0..t.capacity).find_map(|i| {
        // SAFETY: i < capacity, inside the mapping.
        let e = unsafe { *t.slots.add(i) };
        if e.key <= TOMB {
            return None;
        }
        // SAFETY: an entry exists only while its block is live, and the lock held here keeps
        // its free (which removes the entry first) from going on; the payload's `size` bytes
        // are followed by the block's `tail` guard bytes.
        let bytes = unsafe { core::slice::from_raw_parts((e.key + e.size) as *const u8, tail) };
        bytes
            .iter()
            .any(|&b| b != guard)
            .then_some((e.key as *const u8, e.size, e.serial))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_remove_through_growth_and_tombstones() {
        // Keys far from any real block (the registry is process-wide).
        let base = 0x7a00_0000_0000usize;
        for round in 0..3 {
            for i in 0..5000 {
                insert((base + i * 16) as *const u8, i + round, i as u32);
            }
            for i in 0..5000 {
                let got = lookup((base + i * 16) as *const u8);
                assert_eq!(got, Some((i + round, i as u32)));
            }
            for i in (0..5000).step_by(2) {
                assert!(remove((base + i * 16) as *const u8));
                assert!(!remove((base + i * 16) as *const u8));
            }
            for i in 0..5000 {
                let got = lookup((base + i * 16) as *const u8);
                assert_eq!(got.is_some(), i % 2 == 1, "key {i}");
            }
            for i in (1..5000).step_by(2) {
                assert!(remove((base + i * 16) as *const u8));
            }
        }
        assert_eq!(lookup(base as *const u8), None);
    }
}
