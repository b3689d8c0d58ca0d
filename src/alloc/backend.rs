//! The contract every allocation backend keeps. A backend serves whole requests (a size and an
//! alignment) and frees what it served; `dispatch.rs` chooses one once per process and routes
//! `ArenaAlloc` and the malloc family (`alloc::c`) to it.
//!
//! | backend          | file        | what it adds                                               |
//! |------------------|-------------|------------------------------------------------------------|
//! | `Plain`          | `plain.rs`  | the pools (small requests) and the system allocator        |
//! | `Debug` (Plain)  | `debug.rs`  | guards, fill patterns, quarantine, checks on free          |
//! | `Secure` (Plain) | `secure.rs` | hardened mode: each freed block cleared                    |
//! | `System`         | `system.rs` | every request to the system allocator (under valgrind)     |
//! | `Traced<B>`      | `dispatch.rs` | around any of those while `trace::start` is on: each block's trace (`crate::trace`) |
//!
//! A backend that adds something wraps another one (`Debug` wraps `Plain`; `Traced` wraps the
//! backend in use, switched on and off at run time because it changes no block's layout), so a
//! new layer is one more wrapper chosen in `dispatch.rs`, not a test at every entry.
//! Only `Plain` has a fast path inlined into the entry points; a wrapper is reached through
//! `&'static dyn Backend`.
//!
//! Invariants every backend keeps:
//! - `alloc` returns null or a block of at least `size` bytes aligned to `align` that overlaps no
//!   other live block; every byte is zero when `zero` is set.
//! - A block is freed by the backend that allocated it (the backend is fixed before the first
//!   block is handed out, and wrappers free their own blocks through the backend they wrap).
//! - `layout`, when given, is the `(size, align)` the block was allocated with (Rust callers
//!   know it); `None` (C callers) makes the backend find the block's size itself.

use crate::config::ALIGNMENT;

/// An allocation backend (see the module docs).
pub(crate) trait Backend: Sync {
    /// A block of `size` bytes aligned to `align` (a power of two), zeroed if `zero`; null when
    /// out of memory. `by_address`: the caller will free it without its layout (C's `free`),
    /// which lets the backend serve it from anywhere the address map tells apart (`lock.rs`).
    fn alloc(&self, size: usize, align: usize, zero: bool, by_address: bool) -> *mut u8;

    /// Free `p`.
    ///
    /// # Safety
    /// `p` is a live block of this backend, not used again; `layout` is `None` or the
    /// `(size, align)` it was allocated with.
    unsafe fn free(&self, p: *mut u8, layout: Option<(usize, usize)>);

    /// Whether `p` is the start of a block this backend handed out and has been given back
    /// (still free or waiting to be reused): diagnostics of a use after free, e.g. a C
    /// `agc_decref` of a freed object. False when the backend cannot tell. `p` is any address:
    /// the backend reads memory only where its own maps say it may.
    fn looks_freed(&self, _p: *const u8) -> bool {
        false
    }

    /// Usable bytes of `p` (at least what was asked for).
    ///
    /// # Safety
    /// `p` is a live block of this backend.
    unsafe fn usable_size(&self, p: *mut u8) -> usize;

    /// Resize `p` to `new_size` bytes (same alignment), keeping the contents up to the smaller
    /// size. Null when out of memory, `p` then untouched. The default moves the block.
    ///
    /// # Safety
    /// As [`free`](Backend::free); `new_size > 0`.
    unsafe fn realloc(
        &self,
        p: *mut u8,
        layout: Option<(usize, usize)>,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: per the contract.
        unsafe { realloc_by_moving(self, p, layout, new_size) }
    }
}

/// Realloc as a new block, a copy and a free, all through `b`.
///
/// # Safety
/// As [`Backend::realloc`].
#[inline]
pub(crate) unsafe fn realloc_by_moving<B: Backend + ?Sized>(
    b: &B,
    p: *mut u8,
    layout: Option<(usize, usize)>,
    new_size: usize,
) -> *mut u8 {
    let (old, align) = match layout {
        Some(l) => l,
        // SAFETY: p is a live block of b.
        None => (unsafe { b.usable_size(p) }, ALIGNMENT),
    };
    let q = b.alloc(new_size, align, false, layout.is_none());
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct; the smaller size fits both.
        unsafe {
            core::ptr::copy_nonoverlapping(p, q, old.min(new_size));
            b.free(p, layout);
        }
    }
    q
}
