//! The kind map's window and its one-time placement: one byte per arena number over `LEN`
//! arena numbers, placed at the first insert around the first arena. `addr_map.rs` holds the
//! map the allocator uses (`KINDS`) and says why a window; this file holds the protocol, which
//! the loom models (`tests/loom_kind_map.rs`) compile whole against `sync.rs`'s atomics and run,
//! as they do `remote.rs`.
//!
//! Invariants:
//! - The window is placed once. Writers (each `Arenas`, under its own lock: two of them can
//!   race) CAS `table` from null to a freshly reserved table, or to `NO_WINDOW` when none could
//!   be reserved; the first CAS decides for good. The winner stores `lo` and `by_number`
//!   (Relaxed), then `len` (Release). A loser releases its own table and waits until `len` is
//!   published (or `table` is `NO_WINDOW`), so every writer's entry is in the one table: an
//!   arena inside the window recorded nowhere would read as not ours.
//! - A lookup loads `len` first (Acquire), then `lo` and `by_number` (Relaxed): a reader that
//!   sees the length sees the start and the table. Before that `len` is 0 and every lookup
//!   misses (the caller asks the tree). `NO_WINDOW` leaves `len` 0 forever.
//! - The table is never freed while the map is in use (the allocator's, never).

use crate::sync::{AtomicPtr, AtomicU8, AtomicUsize, Ordering, Wait};
use core::ptr;

/// The kind map over a window of `LEN` arena numbers: its fields side by side, so a lookup
/// finds all of them through one address (one GOT entry in a shared library).
pub struct KindMap<const LEN: usize> {
    /// 0 until `lo`, `table` and `by_number` are set, then `LEN`.
    len: AtomicUsize,
    /// The first arena number of the window.
    lo: AtomicUsize,
    table: AtomicPtr<AtomicU8>,
    /// `table - lo` (wrapping): the entry of arena number `n` is `by_number + n`, so the entry's
    /// load waits for the address only, not for `lo` (the bound check, which needs `lo`, is a
    /// predicted branch). With the entry at `table + (n - lo)`, C's hot pair took 15% longer.
    by_number: AtomicPtr<AtomicU8>,
}

/// `KindMap::table` when the window's table could not be reserved (never dereferenced: `len`
/// stays 0).
const NO_WINDOW: *mut AtomicU8 = ptr::dangling_mut();

/// One look at a `KindMap`'s window (`KindMap::window`): its length and start, as one reader
/// saw them.
pub struct Window<'a, const LEN: usize> {
    map: &'a KindMap<LEN>,
    len: usize,
    lo: usize,
}

impl<'a, const LEN: usize> Window<'a, LEN> {
    /// The entry of arena number `n`, or None when `n` is outside the window (every `n` while
    /// there is none). Reads `by_number` (Relaxed, after `len`).
    #[inline(always)]
    pub fn entry(&self, n: usize) -> Option<&'a AtomicU8> {
        if n.wrapping_sub(self.lo) >= self.len {
            return None;
        }
        let entry = self.map.by_number.load(Ordering::Relaxed).wrapping_add(n);
        // `len` is non-zero only after `lo`, `table` and `by_number` were set (the Release store
        // in `entry_for`, read by `window`'s Acquire load), `table` to LEN entries live as long
        // as the map (`entry_for`'s contract), and n - lo is below LEN.
        // SAFETY: so `entry` is `table + (n - lo)`, a live entry.
        Some(unsafe { &*entry })
    }

    /// For the models: None while there is no window, else its start and `by_number`.
    #[cfg(loom)]
    pub fn placed(&self) -> Option<(usize, *mut AtomicU8)> {
        (self.len != 0).then(|| (self.lo, self.map.by_number.load(Ordering::Relaxed)))
    }
}

impl<const LEN: usize> Default for KindMap<LEN> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const LEN: usize> KindMap<LEN> {
    /// A map with no window yet.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        KindMap {
            len: AtomicUsize::new(0),
            lo: AtomicUsize::new(0),
            table: AtomicPtr::new(ptr::null_mut()),
            by_number: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A map with no window yet.
    #[cfg(loom)]
    pub fn new() -> Self {
        KindMap {
            len: AtomicUsize::new(0),
            lo: AtomicUsize::new(0),
            table: AtomicPtr::new(ptr::null_mut()),
            by_number: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A look at the window: its length (Acquire), then its start (Relaxed). C `free`'s first
    /// step is `window().entry(n)` and the entry's load: one compare and one load.
    #[inline(always)]
    pub fn window(&self) -> Window<'_, LEN> {
        let len = self.len.load(Ordering::Acquire);
        Window {
            map: self,
            len,
            lo: self.lo.load(Ordering::Relaxed),
        }
    }

    /// The entry of arena number `n` (placing the window at the first call, around `n`), or
    /// None when `n` is outside the window or no table could be reserved. `reserve` is asked
    /// for a table only by the first calls, before a window is placed; a table it gave that
    /// lost the race goes to `release`.
    ///
    /// # Safety
    /// `reserve` returns null or a table of `LEN` entries, all 0 (`KIND_NONE`), which stays
    /// live as long as the map is used, unless this function gives it to `release`.
    pub unsafe fn entry_for(
        &self,
        n: usize,
        reserve: impl FnOnce() -> *mut AtomicU8,
        release: impl FnOnce(*mut AtomicU8),
    ) -> Option<&AtomicU8> {
        if self.len.load(Ordering::Acquire) == 0 {
            if self.table.load(Ordering::Acquire).is_null() {
                let fresh = reserve();
                // Installed by CAS, as a leaf is; the winner also places the window (later
                // arenas come below earlier ones, `os::map_arena`, so most of it lies below the
                // first). The first attempt is the only one: a table that could not be reserved
                // leaves NO_WINDOW, and the tree answers for good, so no arena recorded before a
                // window existed can fall inside one later, unrecorded.
                let want = if fresh.is_null() { NO_WINDOW } else { fresh };
                let won = self
                    .table
                    .compare_exchange(ptr::null_mut(), want, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if won && !fresh.is_null() {
                    // A multiple of a page of entries: arena number n's entry then sits at page
                    // offset n % 4096, as in a map over all arena numbers. Placed at n - 3/4 of
                    // the window exactly, the first arenas' entries sat at page offsets 0..16,
                    // where every pool's first block takes the free path's stores (link, mark):
                    // the load of the entry, 4 KiB apart from them, waited for them (4K
                    // aliasing), and C's hot pair took 15% longer (same run, 11 rounds).
                    let lo = n.saturating_sub(LEN * 3 / 4) & !4095;
                    self.lo.store(lo, Ordering::Relaxed);
                    self.by_number
                        .store(fresh.wrapping_sub(lo), Ordering::Relaxed);
                    self.len.store(LEN, Ordering::Release);
                } else if !won && !fresh.is_null() {
                    release(fresh);
                }
            }
            // Another writer (the other `Arenas`) placed the window and publishes it a few
            // instructions from now: wait, so no arena inside the window is left out of it (the
            // window would answer KIND_NONE for it). `Wait` spins, then yields the processor to
            // a winner descheduled between its CAS and its Release; under loom, a yield point.
            let wait = Wait::new();
            while self.table.load(Ordering::Acquire) != NO_WINDOW
                && self.len.load(Ordering::Acquire) == 0
            {
                wait.snooze();
            }
        }
        self.window().entry(n)
    }
}
