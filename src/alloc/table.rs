//! A table of fixed-size slots in one reserved mapping: arena descriptors and thread heaps.
//!
//! The whole table is reserved at first use (`os::reserve_table`, committed by the kernel page
//! by page as slots are touched) and never freed, so a slot's address stays valid forever and
//! may be reused. Freed slots form a list through a link field each slot type names (`Slot`).
//! Callers serialize access (the allocator's global lock).

use core::ptr;

use super::os;

/// A type that can live in a `SlotTable`: it names a pointer field to link free slots through.
pub trait Slot: Sized {
    /// The link field of a slot that is not in use.
    ///
    /// # Safety
    /// `this` points to a slot of a table (initialized or not).
    unsafe fn free_link(this: *mut Self) -> *mut *mut Self;
}

pub struct SlotTable<T, const CAP: usize> {
    base: *mut T, // CAP reserved slots, or null before first use
    used: usize,  // slots ever handed out: [0, used)
    free: *mut T, // slots given back, linked through Slot::free_link
}

// SAFETY: the table owns its slots (a mapping nothing else refers to); moving it moves the
// right to use them, which is safe exactly when the slots' type may move between threads.
unsafe impl<T: Send, const CAP: usize> Send for SlotTable<T, CAP> {}

impl<T: Slot, const CAP: usize> SlotTable<T, CAP> {
    pub const fn new() -> Self {
        SlotTable {
            base: ptr::null_mut(),
            used: 0,
            free: ptr::null_mut(),
        }
    }

    /// A slot nobody uses (its contents are stale or zero), or null when the table is full or
    /// could not be reserved.
    pub fn take(&mut self) -> *mut T {
        if !self.free.is_null() {
            let s = self.free;
            // SAFETY: s is a freed slot of this table, so its link field is valid.
            self.free = unsafe { *T::free_link(s) };
            return s;
        }
        if self.base.is_null() {
            self.base = os::reserve_table(CAP * core::mem::size_of::<T>()).cast();
            if self.base.is_null() {
                return ptr::null_mut();
            }
        }
        if self.used == CAP {
            return ptr::null_mut();
        }
        // SAFETY: used < CAP, inside the reserved table.
        let s = unsafe { self.base.add(self.used) };
        self.used += 1;
        s
    }

    /// # Safety
    /// `s` came from `take` on this table and nothing uses it any more.
    pub unsafe fn give_back(&mut self, s: *mut T) {
        // SAFETY: per the contract, s is a slot of this table.
        unsafe { *T::free_link(s) = self.free };
        self.free = s;
    }

    /// Every slot ever handed out (in use or freed), as raw pointers: for reading fields a
    /// slot's user may be changing (atomics) without claiming the whole slot.
    pub fn slot_ptrs(&self) -> impl Iterator<Item = *mut T> + '_ {
        // SAFETY: slots [0, used) lie inside the reserved table.
        (0..self.used).map(|i| unsafe { self.base.add(i) })
    }

    /// Every slot ever handed out (in use or freed): the caller tells them apart.
    pub fn slots(&self) -> &[T] {
        if self.base.is_null() {
            return &[];
        }
        // SAFETY: slots [0, used) have been handed out and written at least once.
        unsafe { core::slice::from_raw_parts(self.base, self.used) }
    }
}
