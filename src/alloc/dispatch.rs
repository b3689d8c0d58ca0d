//! The backend in use, chosen once per process, and the entry points that route every request
//! to it: both front doors (`ArenaAlloc` in `mod.rs`, the malloc family in `c.rs`) call these,
//! and nothing else tests a mode.
//!
//! ```text
//!  alloc / free / free_sized / realloc / usable_size
//!     │ plain backend selected and a small or medium request? ──> plain.rs fast path (inlined)
//!     └ otherwise (#[inline(never)]) ──> Plain's slow side, or the wrapper in use: &dyn Backend
//! ```
//!
//! | `SELECTED`      | backend               | chosen by                                            |
//! |-----------------|-----------------------|------------------------------------------------------|
//! | `UNSET`         | (none yet)            | the first request decides (`select`)                 |
//! | `PLAIN`         | `Plain`               | the default                                          |
//! | `DEBUG`         | `Debug` (Plain)       | cargo feature `debug`, or `ARENAGC_DEBUG` (`options`) |
//! | `SECURE`        | `Secure` (Plain)      | `ARENAGC_SECURE=1` or the cargo feature `secure` (debug mode wins): clears each freed block |
//! | `SYSTEM`        | `System` (large.rs)   | running under valgrind (`valgrind.rs`), unless `ARENAGC_VALGRIND=pools` |
//! | `PLAIN\|TRACED` | `Traced` (Plain)      | `trace::start` (feature `trace`), until `trace::stop` |
//! | `DEBUG\|TRACED` | `Traced` (Debug)      | the same, in debug mode                              |
//! | `SYSTEM\|TRACED`| `Traced` (System)     | the same, under valgrind                             |
//!
//! Tracing is one more wrapper: `Traced<B>` serves each request with `B` and tells the tracer
//! (`crate::trace::hook`), which records the block's stack or forgets it. It changes no
//! block's layout, so a block may be allocated with the bit set and freed without it, or the
//! other way round: the base backend (`PLAIN`, `DEBUG` or `SYSTEM`) frees every block either
//! way.
//!
//! Invariants:
//! - The base backend (`SELECTED & !TRACED`) leaves `UNSET` once, before the first block is
//!   handed out, and never changes again, so every block is freed by the backend that
//!   allocated it.
//! - Only the `TRACED` bit changes after that, set by `trace::start` and cleared by
//!   `trace::stop` (through the switch `select` hands the tracer, `set_traced`).
//! - The check on the fast path is one relaxed load and a compare with `PLAIN`, as before
//!   tracing existed: with the bit set the compare fails and every request goes out of line
//!   to the wrapper; an undecided state takes the out-of-line path too, which decides it.
//!
//! A thread that read `SELECTED` just before the bit changed acts on the old value. Harmless:
//! - it misses a `start`: its block is not traced (an allocation) or its free finds no trace
//!   (the block was allocated untraced, or the free is ignored as for any untraced block);
//! - it misses a `stop`: it reaches the wrapper after tracing stopped. The tracer adds a trace
//!   only while its `tracing` flag is set, checked under its lock, and `stop` clears the flag
//!   and every trace before it clears the bit: so nothing is added late, and a removal finds
//!   nothing (at worst a trace is removed a little late, never left behind).
//! - A trace is never left for a block freed on the fast path: `start` sets the bit before the
//!   tracer's flag (under the tracer's lock), so a trace recorded in a session happens after
//!   the bit was set; any thread that frees that block got it from the allocating one, after
//!   the trace, and so (read-read coherence of `SELECTED`) reads the bit set, or cleared by a
//!   later `stop`, which had already forgotten that trace.

use core::sync::atomic::{AtomicU8, Ordering};

use super::backend::Backend;
use super::debug::{self, Debug};
use super::plain::{self, Plain};
use super::secure::Secure;
use super::system::System;
use super::valgrind;

const UNSET: u8 = 0;
const PLAIN: u8 = 1;
/// The hardened backend: `secure_alloc`, `secure_free` (with the feature `secure`, the fast paths).
const SECURE: u8 = 2;
const DEBUG: u8 = 3;
const SYSTEM: u8 = 4;
/// Added to the base backend while tracing: the requests go to `Traced` around that backend.
#[cfg(feature = "trace")]
const TRACED: u8 = 8;

static SELECTED: AtomicU8 = AtomicU8::new(UNSET);

/// The plain backend is in use (already decided). No call, so the fast paths stay leaf code.
/// (The hardened backend takes the out-of-line paths, which serve it with the same pool fast
/// paths plus its clearing, without a dynamic call: `secure_alloc`, `secure_free`.)
///
/// With the cargo feature `secure` the hardened backend is the base one and takes these inlined
/// fast paths itself (`plain::pool_free` then clears each block, decided at compile time), so
/// the feature build pays for the clearing and the shuffled pools but not for a dispatch.
#[inline(always)]
fn plain_selected() -> bool {
    const FAST: u8 = if cfg!(feature = "secure") {
        SECURE
    } else {
        PLAIN
    };
    !cfg!(feature = "debug") && SELECTED.load(Ordering::Relaxed) == FAST
}

/// The backend in use, deciding it on first use: `None` for the plain one (whose paths are
/// called directly), else the wrapper.
#[inline]
fn wrapper() -> Option<&'static dyn Backend> {
    match SELECTED.load(Ordering::Relaxed) {
        UNSET => select(),
        s => backend(s),
    }
}

/// The backend a decided `SELECTED` value names (`None`: plain, called directly).
#[inline]
fn backend(selected: u8) -> Option<&'static dyn Backend> {
    #[cfg(feature = "trace")]
    if selected & TRACED != 0 {
        return Some(match selected & !TRACED {
            PLAIN if !cfg!(feature = "debug") => &Traced(Plain),
            SYSTEM => &Traced(System),
            SECURE => &Traced(Secure),
            _ => &Traced(Debug),
        });
    }
    match selected {
        PLAIN if !cfg!(feature = "debug") => None,
        SYSTEM => Some(&System),
        SECURE => Some(&Secure),
        _ => Some(&Debug),
    }
}

#[cold]
#[inline(never)]
fn select() -> Option<&'static dyn Backend> {
    let under_valgrind = valgrind::detect();
    let chosen = if under_valgrind && crate::options::VALGRIND.value() != Some(b"pools") {
        SYSTEM
    } else if cfg!(feature = "debug") || crate::options::DEBUG.flag() {
        debug::init();
        DEBUG
    } else if cfg!(feature = "secure") || crate::options::SECURE.flag() {
        SECURE
    } else {
        PLAIN
    };
    // Before the choice is published, so whoever sees it decided finds the switch there.
    #[cfg(feature = "trace")]
    crate::trace::hook::install_switch(set_traced);
    // Debug mode's faults then say where the block was allocated and freed, while tracing.
    #[cfg(feature = "trace")]
    if chosen == DEBUG {
        super::fatal::set_block_report(crate::trace::freed::report);
    }
    let now = match SELECTED.compare_exchange(UNSET, chosen, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => chosen,
        Err(other) => other,
    };
    backend(now)
}

/// The base backend (`PLAIN`, `DEBUG` or `SYSTEM`), deciding it now if nothing did yet.
fn base() -> u8 {
    let _ = wrapper();
    let s = SELECTED.load(Ordering::Relaxed);
    #[cfg(feature = "trace")]
    let s = s & !TRACED;
    s
}

/// Whether the debug backend is in use (deciding it now if nothing did yet).
pub fn debug_enabled() -> bool {
    base() == DEBUG
}

/// Whether every request goes to the system allocator because the process runs under valgrind
/// (deciding it now if nothing did yet).
pub fn system_backend() -> bool {
    base() == SYSTEM
}

/// The tracer's switch: route every request through `Traced` (on) or not (off). SeqCst, and
/// the tracer's lock, order it before the tracer's flag is set (on) and after the traces are
/// forgotten (off); the module docs say why a thread acting on the old value is harmless.
#[cfg(feature = "trace")]
fn set_traced(on: bool) {
    if on {
        SELECTED.fetch_or(TRACED, Ordering::SeqCst);
    } else {
        SELECTED.fetch_and(!TRACED, Ordering::SeqCst);
    }
}

/// The tracing wrapper around backend `B`: every request is served by `B`, and the tracer
/// records the new block (after `B` returned it) or forgets the old one (before `B` takes it
/// back, so an address reused at once by another thread keeps that thread's trace).
#[cfg(feature = "trace")]
struct Traced<B>(B);

#[cfg(feature = "trace")]
impl<B: Backend> Backend for Traced<B> {
    fn alloc(&self, size: usize, align: usize, zero: bool, by_address: bool) -> *mut u8 {
        let p = self.0.alloc(size, align, zero, by_address);
        if !p.is_null() {
            crate::trace::hook::allocated(p, size);
        }
        p
    }

    unsafe fn free(&self, p: *mut u8, layout: Option<(usize, usize)>) {
        crate::trace::hook::freed(p);
        // SAFETY: forwarded: p is a live block of B (Traced changes no layout).
        unsafe { self.0.free(p, layout) }
    }

    unsafe fn usable_size(&self, p: *mut u8) -> usize {
        // SAFETY: forwarded.
        unsafe { self.0.usable_size(p) }
    }

    fn looks_freed(&self, p: *const u8) -> bool {
        self.0.looks_freed(p)
    }

    unsafe fn realloc(
        &self,
        p: *mut u8,
        layout: Option<(usize, usize)>,
        new_size: usize,
    ) -> *mut u8 {
        // The trace comes off before B may hand the old address to another thread.
        let old = crate::trace::hook::detach(p);
        // SAFETY: forwarded.
        let q = unsafe { self.0.realloc(p, layout, new_size) };
        crate::trace::hook::reattach(old, p, q, new_size);
        q
    }
}

/// `size` bytes aligned to `align` (a power of two), zeroed if `zero`; null when out of memory.
/// `BY_ADDRESS`: the caller frees it with `free` (by address), not `free_sized` (`backend.rs`).
#[inline(always)]
pub fn alloc<const BY_ADDRESS: bool>(size: usize, align: usize, zero: bool) -> *mut u8 {
    if plain::is_pooled(size, align) {
        if plain_selected() {
            return plain::small_alloc_sized::<BY_ADDRESS>(size, zero);
        }
        // Tested only when the plain backend is not in use: the default path is unchanged.
        if secure_selected() {
            return secure_alloc::<BY_ADDRESS>(size, zero);
        }
    }
    alloc_other(size, align, zero, BY_ADDRESS)
}

/// The hardened backend is in use (already decided): its pool requests take `secure_alloc` and
/// `secure_free`, small functions called straight from the entry points.
#[inline(always)]
fn secure_selected() -> bool {
    !cfg!(feature = "debug") && SELECTED.load(Ordering::Relaxed) == SECURE
}

#[inline(never)]
fn alloc_other(size: usize, align: usize, zero: bool, by_address: bool) -> *mut u8 {
    match wrapper() {
        None => Plain.alloc(size, align, zero, by_address),
        Some(b) => b.alloc(size, align, zero, by_address),
    }
}

/// Hardened mode's pool allocation: the plain backend's (its work is in the pools), out of line
/// so the entry points inline only a call.
#[inline(never)]
fn secure_alloc<const BY_ADDRESS: bool>(size: usize, zero: bool) -> *mut u8 {
    plain::small_alloc_sized::<BY_ADDRESS>(size, zero)
}

/// Free a block whose size and alignment the caller knows (Rust's `dealloc`).
///
/// # Safety
/// `p` is a live block from `alloc(size, align, _)`, not used again.
#[inline(always)]
pub unsafe fn free_sized(p: *mut u8, size: usize, align: usize) {
    if plain::is_pooled(size, align) {
        if plain_selected() {
            if cfg!(debug_assertions) && !plain::owns(p) {
                super::fatal::fatal(
                    "invalid free",
                    p,
                    "dealloc of a pointer not from this allocator",
                );
            }
            // SAFETY: the caller frees a small or medium block of the plain backend.
            return unsafe { plain::sized_free(p, size) };
        }
        if secure_selected() {
            // SAFETY: forwarded.
            return unsafe { secure_free(p, Some((size, align))) };
        }
    }
    // SAFETY: forwarded.
    unsafe { free_other(p, Some((size, align))) }
}

/// Free a block by its address alone (C's `free`): the address map tells pool blocks from
/// system blocks, and a pool pointer that is not a block in use aborts.
///
/// # Safety
/// `p` is non-null and a live block from `alloc`, not used again (a pointer inside an arena
/// that is not is caught and aborts).
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    if plain_selected() {
        let pool = plain::checked_pool(p);
        if !pool.is_null() {
            // SAFETY: checked: p is a handed-out block of that pool or run.
            return unsafe { plain::pool_free(p, pool) };
        }
        // SAFETY: not in our arenas, so a block of the system allocator (the address map has
        // answered; asking it again in `Plain::free` would cost a second lookup).
        return unsafe { plain::free_large(p) };
    }
    // SAFETY: forwarded.
    unsafe { free_unsized_other(p) }
}

/// `free`'s every other backend, out of line and taking the pointer alone, so `free` itself
/// does not build an `Option` in its stack frame for them.
///
/// # Safety
/// As `free`.
#[inline(never)]
unsafe fn free_unsized_other(p: *mut u8) {
    // SAFETY: forwarded.
    unsafe {
        if secure_selected() {
            secure_free(p, None)
        } else {
            free_other(p, None)
        }
    }
}

/// # Safety
/// As `free_sized` / `free`.
#[inline(never)]
unsafe fn free_other(p: *mut u8, layout: Option<(usize, usize)>) {
    // SAFETY: forwarded.
    unsafe {
        match wrapper() {
            None => Plain.free(p, layout),
            Some(b) => b.free(p, layout),
        }
    }
}

/// Hardened mode's free (`Secure::free`, called directly, not through `dyn`), out of line, as
/// `secure_alloc`.
///
/// # Safety
/// As `free_sized` / `free`.
#[inline(never)]
unsafe fn secure_free(p: *mut u8, layout: Option<(usize, usize)>) {
    // SAFETY: forwarded.
    unsafe { Secure.free(p, layout) }
}

/// Whether `p` starts a block of ours that was freed (`Backend::looks_freed`; false when the
/// backend cannot tell). Any address: only memory our maps vouch for is read.
pub fn looks_freed(p: *const u8) -> bool {
    match wrapper() {
        None => Plain.looks_freed(p),
        Some(b) => b.looks_freed(p),
    }
}

/// Usable bytes of a live block (at least what was asked for).
///
/// # Safety
/// `p` is a live block from `alloc`.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: forwarded.
    unsafe {
        match wrapper() {
            None => Plain.usable_size(p),
            Some(b) => b.usable_size(p),
        }
    }
}

/// Resize `p` to `new_size > 0` bytes; `layout` is its `(size, align)` when the caller knows
/// it (Rust), `None` from C (alignment 16). Null when out of memory, `p` then untouched.
///
/// # Safety
/// `p` is a live block from `alloc`; it is not used again unless null is returned.
#[inline]
pub unsafe fn realloc(p: *mut u8, layout: Option<(usize, usize)>, new_size: usize) -> *mut u8 {
    debug_assert!(layout.is_none_or(|(_, a)| a.is_power_of_two()) && new_size > 0);
    // SAFETY: forwarded.
    unsafe {
        match wrapper() {
            None => Plain.realloc(p, layout, new_size),
            Some(b) => b.realloc(p, layout, new_size),
        }
    }
}

/// Whether the tracer's sampled mode can count on the pool fast paths (`sampler.rs`): the
/// plain or hardened backend is in use (deciding it now if nothing did yet). Otherwise it
/// samples through the `Traced` wrapper.
#[cfg(feature = "trace")]
pub fn fast_sampling() -> bool {
    matches!(base(), PLAIN | SECURE) && !cfg!(feature = "debug")
}
