//! The system backend: every request goes to the system allocator (`large.rs`), whatever its
//! size. `dispatch.rs` chooses it when the process runs under valgrind (`valgrind.rs`), so that
//! memcheck sees each block as its own allocation, as CPython's pymalloc steps aside there.
//!
//! Invariants: it serves only blocks of the system allocator (none from our pools), and frees
//! only such blocks; `Backend`'s contract otherwise.
//!
//! May touch: `large.rs`, `backend.rs`.

use super::backend::{Backend, realloc_by_moving};
use super::large;
use crate::config::ALIGNMENT;

/// The system backend (see the module docs).
pub(crate) struct System;

impl Backend for System {
    fn alloc(&self, size: usize, align: usize, zero: bool, _by_address: bool) -> *mut u8 {
        large::alloc(size, align, zero)
    }

    unsafe fn free(&self, p: *mut u8, _layout: Option<(usize, usize)>) {
        // SAFETY: p is a live block of this backend, hence of the system allocator.
        unsafe { large::free(p) }
    }

    unsafe fn usable_size(&self, p: *mut u8) -> usize {
        // SAFETY: as above.
        unsafe { large::usable_size(p) }
    }

    unsafe fn realloc(
        &self,
        p: *mut u8,
        layout: Option<(usize, usize)>,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: per the contract; the system's realloc keeps an alignment of at most 16.
        unsafe {
            if layout.is_none_or(|(_, align)| align <= ALIGNMENT) {
                large::realloc(p, new_size)
            } else {
                realloc_by_moving(self, p, layout, new_size)
            }
        }
    }
}
