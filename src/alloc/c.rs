//! The malloc family with C semantics, for callers that do not pass sizes back (the C ABI and
//! the `LD_PRELOAD` build are thin wrappers over these).
//!
//! - `malloc(0)` returns a distinct live pointer (a 16-byte block).
//! - Sizes over `config::MAX_REQUEST` and products that overflow fail with null and `errno = ENOMEM`.
//! - `free(p)` decides small or large with the address map; a pointer inside an arena that is
//!   not the start of a block handed out aborts with a message (interior pointer, pool not in
//!   use); pointers outside our arenas go to the system allocator, whose own checks apply.
//! - Sizes are checked against `MAX_REQUEST` here, once; everything else goes to the backend in
//!   use (`dispatch.rs`): in debug mode every block carries guards and every free is checked.

use super::dispatch;
use super::fatal::fatal_fmt;
use super::plain::is_pooled;
use crate::config::{ALIGNMENT, MAX_REQUEST};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Set the calling thread's `errno`.
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn enomem() -> *mut u8 {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// Allocate `size` bytes aligned to `align` (a power of two), zeroed if asked; null with
/// `errno = ENOMEM` on failure or for a size over `MAX_REQUEST`.
#[inline(always)]
fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    // Requests the pools serve first, so their fast path pays no bound check.
    let p = if is_pooled(size, align) {
        dispatch::alloc::<true>(size, align, zero)
    } else if size > MAX_REQUEST {
        ptr::null_mut()
    } else {
        dispatch::alloc::<true>(size, align, zero)
    };
    if p.is_null() { enomem() } else { p }
}

/// C's `malloc`: `size` bytes aligned to `config::ALIGNMENT`, or null with `errno = ENOMEM`.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    alloc(size, ALIGNMENT, false)
}

/// C's `calloc`: `n * size` zeroed bytes aligned to `config::ALIGNMENT`, or null with
/// `errno = ENOMEM` (also when `n * size` overflows).
#[inline]
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size) {
        Some(total) => alloc(total, ALIGNMENT, true),
        None => enomem(),
    }
}

/// `align` must be a power of two (any size is accepted, as C23 allows); otherwise null with
/// `errno = EINVAL`.
pub fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    alloc(size, align.max(ALIGNMENT), false)
}

/// glibc's `memalign`: an alignment up to 16 gives 16, one that is not a power of two is
/// rounded up to one, and one over `SIZE_MAX / 2 + 1` fails with null and `errno = EINVAL`.
pub fn memalign(align: usize, size: usize) -> *mut u8 {
    if align > usize::MAX / 2 + 1 {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned_alloc(align.max(ALIGNMENT).next_power_of_two(), size)
}

/// `posix_memalign`: the block, or the error code to return (`EINVAL` for an alignment that
/// is not a power of two or not a multiple of `sizeof(void *)`, `ENOMEM`).
pub fn posix_memalign(align: usize, size: usize) -> Result<*mut u8, i32> {
    if !align.is_power_of_two() || align % size_of::<*mut u8>() != 0 {
        return Err(libc::EINVAL);
    }
    let p = aligned_alloc(align, size);
    if p.is_null() {
        return Err(libc::ENOMEM);
    }
    Ok(p)
}

/// The system page size (read once).
fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE_SIZE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions and does not allocate.
    let p = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    };
    PAGE_SIZE.store(p, Ordering::Relaxed);
    p
}

/// glibc's `valloc`: page-aligned.
pub fn valloc(size: usize) -> *mut u8 {
    aligned_alloc(page_size(), size)
}

/// glibc's `pvalloc`: page-aligned, the size rounded up to whole pages (at least one).
pub fn pvalloc(size: usize) -> *mut u8 {
    let page = page_size();
    match size.checked_add(page - 1) {
        Some(s) => aligned_alloc(page, (s & !(page - 1)).max(page)),
        None => enomem(),
    }
}

/// Usable size of a live block (at least what was asked for).
///
/// # Safety
/// `p` is null or a live block from this module.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: forwarded.
    unsafe { dispatch::usable_size(p) }
}

/// # Safety
/// `p` is null or a live block from this module, not used again.
#[inline]
pub unsafe fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: forwarded.
    unsafe { dispatch::free(p) }
}

/// `free` with the size the caller allocated; a size the block cannot have aborts.
///
/// # Safety
/// As `free`.
pub unsafe fn free_sized(p: *mut u8, size: usize) {
    if p.is_null() {
        return;
    }
    // SAFETY: forwarded.
    let usable = unsafe { usable_size(p) };
    if size > usable {
        fatal_fmt(
            "free_sized size mismatch",
            p,
            format_args!("freed as {size} bytes but the block has only {usable}"),
        );
    }
    // SAFETY: forwarded.
    unsafe { free(p) }
}

/// `reallocarray`: `realloc(p, n * size)`; a product that overflows fails with null and
/// `errno = ENOMEM`, the old block untouched.
///
/// # Safety
/// As `realloc`.
pub unsafe fn reallocarray(p: *mut u8, n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size) {
        // SAFETY: forwarded.
        Some(total) => unsafe { realloc(p, total) },
        None => enomem(),
    }
}

/// glibc's `realloc`: null `p` allocates; size 0 frees and returns null; on failure null with
/// `errno = ENOMEM` and the old block untouched.
///
/// # Safety
/// `p` is null or a live block from this module.
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        // SAFETY: forwarded.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    if size > MAX_REQUEST {
        return enomem();
    }
    // SAFETY: p is live per the contract.
    let q = unsafe { dispatch::realloc(p, None, size) };
    if q.is_null() { enomem() } else { q }
}
