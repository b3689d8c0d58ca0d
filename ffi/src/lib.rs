//! C ABI for arenagc: `libarenagc.so` / `libarenagc.a`, declared by `include/arenagc.h`.
//!
//! ```text
//!  C caller ──> agc_* (this file)  ──> arenagc::alloc::{c::*, stats, owns, trim}
//!           │     │ boundary(): catch_unwind, last error (error.rs)
//!           │     └ AgcStats (types.rs) <── AllocStats
//!           ├─> agc_new, agc_track, agc_weakref_* (object.rs) ──> arenagc::object, gc::raw
//!           ├─> agc_gc_* (gc.rs) ──> arenagc::gc (the current runtime)
//!           ├─> agc_runtime_* (runtime.rs) ──> arenagc::gc::Runtime, AttachGuard
//!           └─> agc_trace_* (trace.rs) ──> arenagc::trace (tracemalloc, snapshots, pprof)
//!  LD_PRELOAD ─> malloc, free, ... (malloc_override.rs, feature `override`,
//!                built as libarenagc_malloc.so by the `arenagc-malloc` package);
//!                ARENAGC_TRACE / _SAMPLE: tracing from load to exit (preload_trace.rs)
//! ```
//!
//! Rules kept here:
//! - No allocator or GC logic: every function checks its arguments, calls the core, and
//!   converts.
//! - Every body runs inside `error::boundary` (except `agc_version`, which cannot fail, and the
//!   preload build's `malloc`, `calloc`, `realloc` and `free`: see `malloc_override.rs`);
//!   failures return NULL or a negative `AGC_ERR_*` code and record a message readable with
//!   `agc_last_error()`.
//! - The malloc-family functions keep C semantics, errno included (the core sets errno).

#![deny(unsafe_op_in_unsafe_fn)]

mod error;
pub mod gc;
#[cfg(feature = "override")]
mod malloc_override;
pub mod object;
#[cfg(feature = "override")]
mod preload_trace;
pub mod runtime;
pub mod trace;
pub mod types;

use arenagc::alloc;
use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use error::{boundary, set_error};
use types::{
    AGC_ERR_IO, AGC_ERR_NULL, AGC_ERR_PANIC, AGC_ERR_STATE, AGC_NUM_ALL_CLASSES, AGC_NUM_CLASSES,
    AGC_NUM_MEDIUM_CLASSES, AGC_OK, AgcClassStats, AgcStats,
};

const _: () = assert!(AGC_NUM_CLASSES == arenagc::config::NUM_CLASSES);
const _: () = assert!(AGC_NUM_ALL_CLASSES == arenagc::config::ALL_CLASSES);
const _: () = assert!(AGC_NUM_ALL_CLASSES == AGC_NUM_CLASSES + AGC_NUM_MEDIUM_CLASSES);

/// The library version, NUL-terminated (`AGC_VERSION_STRING` in the header).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

fn out_of_memory(func: &str, size: usize) -> *mut c_void {
    set_error(format_args!(
        "{func}: cannot allocate {size} bytes (errno {})",
        alloc::c::errno()
    ));
    ptr::null_mut()
}

/// Allocate `size` bytes aligned to 16. `size == 0` gives a distinct live pointer.
/// NULL with `errno = ENOMEM` on failure.
#[unsafe(no_mangle)]
pub extern "C" fn agc_malloc(size: usize) -> *mut c_void {
    boundary("agc_malloc", ptr::null_mut(), || {
        let p = alloc::c::malloc(size);
        if p.is_null() {
            out_of_memory("agc_malloc", size)
        } else {
            p.cast()
        }
    })
}

/// Allocate `n * size` zeroed bytes; NULL with `errno = ENOMEM` if the product overflows or
/// memory is short.
#[unsafe(no_mangle)]
pub extern "C" fn agc_calloc(n: usize, size: usize) -> *mut c_void {
    boundary("agc_calloc", ptr::null_mut(), || {
        let p = alloc::c::calloc(n, size);
        if !p.is_null() {
            return p.cast();
        }
        match n.checked_mul(size) {
            None => {
                set_error(format_args!("agc_calloc: {n} * {size} overflows size_t"));
                ptr::null_mut()
            }
            Some(total) => out_of_memory("agc_calloc", total),
        }
    })
}

/// Resize `p` (glibc semantics: NULL `p` allocates; `size == 0` frees and returns NULL; on
/// failure NULL with `errno = ENOMEM` and `p` still valid).
///
/// # Safety
/// `p` is NULL or a live block from this library, not used again unless NULL is returned for
/// a non-zero `size`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    boundary("agc_realloc", ptr::null_mut(), || {
        // SAFETY: forwarded from the caller.
        let q = unsafe { alloc::c::realloc(p.cast(), size) };
        if q.is_null() && (size != 0 || p.is_null()) {
            out_of_memory("agc_realloc", size)
        } else {
            q.cast()
        }
    })
}

/// Free `p` (NULL does nothing). Whether `p` is a pool block or a system-allocator block is
/// decided by the address map; a pointer that is not a live block aborts with a message.
///
/// # Safety
/// `p` is NULL or a live block from this library, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_free(p: *mut c_void) {
    // SAFETY: forwarded from the caller.
    boundary("agc_free", (), || unsafe { alloc::c::free(p.cast()) })
}

/// Free `p`, which was allocated with `size` bytes; a size the block cannot have aborts.
///
/// # Safety
/// As `agc_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_free_sized(p: *mut c_void, size: usize) {
    // SAFETY: forwarded from the caller.
    boundary("agc_free_sized", (), || unsafe {
        alloc::c::free_sized(p.cast(), size)
    })
}

/// Allocate `size` bytes aligned to `align`, a power of two (up to any size the system
/// allocator grants). A bad alignment gives NULL with `errno = EINVAL`.
#[unsafe(no_mangle)]
pub extern "C" fn agc_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    boundary("agc_aligned_alloc", ptr::null_mut(), || {
        let p = alloc::c::aligned_alloc(align, size);
        if !p.is_null() {
            p.cast()
        } else if !align.is_power_of_two() {
            set_error(format_args!(
                "agc_aligned_alloc: alignment {align} is not a power of two"
            ));
            ptr::null_mut()
        } else {
            out_of_memory("agc_aligned_alloc", size)
        }
    })
}

/// Usable bytes of a live block (at least the size asked for); 0 for NULL.
///
/// # Safety
/// `p` is NULL or a live block from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_usable_size(p: *const c_void) -> usize {
    // SAFETY: forwarded from the caller.
    boundary("agc_usable_size", 0, || unsafe {
        alloc::c::usable_size(p.cast_mut().cast())
    })
}

fn to_c(s: &alloc::AllocStats) -> AgcStats {
    let mut out = AgcStats::default();
    for (o, c) in out.classes.iter_mut().zip(s.classes.iter()) {
        *o = AgcClassStats {
            block_size: c.block_size,
            pools: c.pools,
            blocks_in_use: c.blocks_in_use,
            blocks_free: c.blocks_free,
        };
    }
    out.arenas_allocated_total = s.arenas.allocated_total;
    out.arenas_released_total = s.arenas.released_total;
    out.arenas_current = s.arenas.current;
    out.arenas_peak = s.arenas.peak;
    out.arenas_free = s.arenas_free as u64;
    out.pools_free = s.pools_free;
    out.large_bytes = s.large_bytes;
    out.large_blocks = s.large_blocks;
    out.debug = c_int::from(s.debug);
    out
}

/// Fill `out[0..n)` with every class's statistics, small then medium; returns the number of
/// classes (`AGC_NUM_ALL_CLASSES`), which may exceed `n`; `AGC_ERR_NULL` for NULL with `n > 0`.
///
/// # Safety
/// `out` is valid for writing `n` `agc_class_stats_t` (or NULL with `n == 0`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_stats_classes(out: *mut AgcClassStats, n: usize) -> isize {
    boundary("agc_stats_classes", AGC_ERR_PANIC as isize, || {
        if out.is_null() && n > 0 {
            set_error(format_args!("agc_stats_classes: out is NULL"));
            return AGC_ERR_NULL as isize;
        }
        let s = alloc::stats();
        for (i, c) in s.all_classes().take(n).enumerate() {
            // SAFETY: out has room for n entries per the contract; i < n.
            unsafe {
                out.add(i).write(AgcClassStats {
                    block_size: c.block_size,
                    pools: c.pools,
                    blocks_in_use: c.blocks_in_use,
                    blocks_free: c.blocks_free,
                })
            };
        }
        AGC_NUM_ALL_CLASSES as isize
    })
}

/// Fill `*out` with a snapshot of the statistics (the small classes; the medium ones:
/// `agc_stats_classes`). `AGC_OK`, or `AGC_ERR_NULL` if `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for writing one `agc_stats_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_stats(out: *mut AgcStats) -> c_int {
    boundary("agc_stats", AGC_ERR_PANIC, || {
        if out.is_null() {
            set_error(format_args!("agc_stats: out is NULL"));
            return AGC_ERR_NULL;
        }
        let s = to_c(&alloc::stats());
        // SAFETY: out is non-null and writable per the contract.
        unsafe { out.write(s) };
        AGC_OK
    })
}

/// Print the statistics table (the Rust `Display` of `AllocStats`) to `f`. `AGC_OK`,
/// `AGC_ERR_NULL` for NULL, `AGC_ERR_IO` if the write fails.
///
/// # Safety
/// `f` is NULL or an open `FILE*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_stats_print(f: *mut libc::FILE) -> c_int {
    boundary("agc_stats_print", AGC_ERR_PANIC, || {
        if f.is_null() {
            set_error(format_args!("agc_stats_print: FILE is NULL"));
            return AGC_ERR_NULL;
        }
        let text = alloc::stats().to_string();
        // SAFETY: f is an open stream per the contract; the buffer is live for the call.
        let n = unsafe { libc::fwrite(text.as_ptr().cast(), 1, text.len(), f) };
        // SAFETY: as above.
        if n != text.len() || unsafe { libc::fflush(f) } != 0 {
            set_error(format_args!(
                "agc_stats_print: write failed (errno {})",
                alloc::c::errno()
            ));
            return AGC_ERR_IO;
        }
        AGC_OK
    })
}

/// Give back empty pools the calling thread keeps cached (and, in debug mode, the quarantine),
/// unmap the free arenas waiting out the purge delay (one spare stays), and ask glibc to return
/// its free memory (`malloc_trim(0)`; in `libarenagc.so` that is the program's own heap too).
#[unsafe(no_mangle)]
pub extern "C" fn agc_trim() {
    boundary("agc_trim", (), alloc::trim)
}

/// 1 if `p` points into one of the allocator's arenas (a small block), else 0. Any pointer is
/// allowed, including NULL and pointers to freed or foreign memory.
#[unsafe(no_mangle)]
pub extern "C" fn agc_owns(p: *const c_void) -> c_int {
    boundary("agc_owns", 0, || c_int::from(alloc::owns(p.cast())))
}

/// Check the calling thread's heap and every arena against the allocator's invariants.
/// `AGC_OK`, or `AGC_ERR_STATE` with the broken invariant as the last error.
#[unsafe(no_mangle)]
pub extern "C" fn agc_validate() -> c_int {
    boundary("agc_validate", AGC_ERR_PANIC, || match alloc::validate() {
        Ok(()) => AGC_OK,
        Err(what) => {
            set_error(format_args!("agc_validate: {what}"));
            AGC_ERR_STATE
        }
    })
}

/// The message of the most recent failure of an `agc_` function on the calling thread, or
/// NULL if none has failed. Valid until the next `agc_` call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn agc_last_error() -> *const c_char {
    boundary("agc_last_error", ptr::null(), error::last_error)
}

/// The library version, e.g. "0.1.0" (static storage).
#[unsafe(no_mangle)]
pub extern "C" fn agc_version() -> *const c_char {
    VERSION.as_ptr().cast()
}
