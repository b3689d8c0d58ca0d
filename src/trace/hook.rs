//! The seam between the allocator and the tracer: what the tracing wrapper of
//! `alloc/dispatch.rs` calls around each request it passes on, and the switch that turns the
//! wrapper on and off.
//!
//! ```text
//!  dispatch: Traced<B>::alloc    B.alloc, then  allocated(p, size)   capture, then record
//!            Traced<B>::free     freed(p), then B.free               remove the trace (debug
//!                                                                mode: and keep it, with the
//!                                                                free's stack, in freed.rs)
//!            Traced<B>::realloc  detach(p), B.realloc, reattach(..)  move the trace
//! ```
//!
//! Invariants:
//! - The tracer never recurses: while a thread runs tracer code (`BUSY` set: capturing a stack,
//!   reading a snapshot), its own allocations are passed through untraced (tracemalloc's
//!   re-entrancy flag). Frees always remove their trace (they never allocate).
//! - In debug mode a free of a traced block (and a realloc's `detach`) captures its stack too,
//!   as an allocation does, and hands the trace and that stack to `freed.rs`'s ring, so debug
//!   mode's fault messages can say where the block was allocated and freed.
//! - A stack is captured before `TABLES` is taken (the unwinder may take the loader's lock or
//!   allocate), and nothing allocates while `TABLES` is held.
//! - A trace is added only while `Tables::tracing` is set, checked under the lock, so no trace
//!   outlives `stop` (a thread that chose the wrapper before `stop` finds tracing off).
//! - A trace is removed before its block goes back to the backend, so another thread that gets
//!   the same address next never has its new trace removed by this free. Inside the allocator
//!   the tables are taken with `lock_or_busy`: while another thread forks (the fork handlers
//!   hold them), an allocation is not traced and a free leaves its address to `pending.rs`,
//!   which every holder of the tables drains first; nothing in `malloc`/`free` waits for a fork.
//! - In sampled mode an allocation that is not sampled costs a countdown (`sample::take`, or the
//!   heap's on the fast paths: `alloc/sampler.rs`, which calls `SAMPLER_HOOKS`) and nothing
//!   else; a free whose address bucket has no trace (`sample::maybe_traced`) takes no lock, in
//!   either mode.

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::table::Tables;
use super::{MAX_NFRAMES, SKIP_BUDGET, TABLES, pending, sample};

/// Mirror of `Tables::tracing`, written under the lock; read without it to skip work.
pub(crate) static TRACING: AtomicBool = AtomicBool::new(false);

/// The allocator's switch (`fn(bool)`, as an address; 0 until the backend is chosen).
static SWITCH: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    /// This thread is running tracer code (see the module docs).
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Called by `dispatch.rs` when it chooses the backend, before the choice is published: how
/// the tracer turns the tracing wrapper on and off (`SELECTED`'s `TRACED` bit).
pub(crate) fn install_switch(switch: fn(bool)) {
    SWITCH.store(switch as usize, Ordering::Release);
}

/// Turn the allocator's tracing wrapper on or off.
pub(super) fn switch(on: bool) {
    // Choose the backend now if nothing did yet (its choice installs the switch).
    let _ = crate::alloc::debug_enabled();
    loop {
        let f = SWITCH.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: a non-zero SWITCH is a `fn(bool)` stored by `install_switch`.
            let f: fn(bool) = unsafe { core::mem::transmute::<usize, fn(bool)>(f) };
            return f(on);
        }
        // The thread that chose the backend stored it just before publishing the choice we
        // saw: it is about to be visible.
        core::hint::spin_loop();
    }
}

/// Marks this thread busy in tracer code while alive (see `enter`).
pub(super) struct Busy(());

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(false));
    }
}

/// Enter tracer code: `None` when this thread is in it already (a nested request).
pub(super) fn enter() -> Option<Busy> {
    BUSY.with(|b| {
        if b.get() {
            None
        } else {
            b.set(true);
            Some(Busy(()))
        }
    })
}

/// What the allocator calls in sampled mode on the fast paths (`alloc/sampler.rs`): it decides
/// which blocks are sampled; the tracer records and forgets them.
pub(crate) static SAMPLER_HOOKS: crate::alloc::sampler::Hooks = crate::alloc::sampler::Hooks {
    record: sampled,
    forget: freed,
    maybe_traced: |p| sample::maybe_traced(p as usize),
};

/// A block the allocator sampled: record it with the calling stack.
#[inline(never)]
fn sampled(p: *mut u8, size: usize) {
    if TRACING.load(Ordering::Relaxed) {
        record(p, size);
    }
}

/// Record the instruction pointers of the calling stack, innermost first, into `buf`; how
/// many were written. The tracer's own walker (`unwind/`) takes the stack when it can follow
/// every frame's CFI, the system unwinder otherwise.
#[inline(never)]
fn capture(buf: &mut [usize]) -> usize {
    // Frames inside our own shared library are machinery: not kept, not counted (found at
    // `start`, so this never asks the loader from inside an allocation).
    let own = super::frames::own_library();
    if let Some(n) = super::unwind::capture(buf, own) {
        #[cfg(debug_assertions)]
        same_as_system_unwinder(&buf[..n], buf.len(), own);
        return n;
    }
    system_capture(buf, own)
}

/// Capture with the system unwinder (`_Unwind_Backtrace`), as `capture`.
#[inline(never)]
fn system_capture(buf: &mut [usize], own: Option<(usize, usize)>) -> usize {
    let mut n = 0;
    // SAFETY: on Linux the unwinder behind this (`_Unwind_Backtrace`) is thread-safe; the
    // synchronised `backtrace::trace` only adds a lock that other platforms' unwinders need.
    // The callback stores into `buf` and allocates nothing.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            // The outermost frame of a C program's stack reports address 0: not a frame.
            let ip = frame.ip() as usize;
            if ip == 0 {
                return false;
            }
            if own.is_some_and(|(lo, hi)| (lo..hi).contains(&ip)) {
                return true;
            }
            buf[n] = ip;
            n += 1;
            n < buf.len()
        });
    }
    n
}

/// Debug builds check every capture of the tracer's walker against the system unwinder: from
/// the walker's second frame (its first is a return address in `capture`, where the system
/// unwinder's capture returns elsewhere) the two agree frame for frame, up to the shorter.
#[cfg(debug_assertions)]
fn same_as_system_unwinder(fast: &[usize], limit: usize, own: Option<(usize, usize)>) {
    if fast.len() < 2 || own.is_some() {
        // (A shared-library build skips its own frames in both: nothing to align on.)
        return;
    }
    let mut slow = [0usize; 3 * SMALL_CAPTURE];
    let n = system_capture(&mut slow, own);
    let Some(at) = slow[..n].iter().position(|&ip| ip == fast[1]) else {
        panic!(
            "the tracer's walker and the system unwinder disagree: {fast:x?} vs {:x?}",
            &slow[..n]
        );
    };
    let common = (fast.len() - 1).min(n - at);
    assert_eq!(
        &fast[1..1 + common],
        &slow[at..at + common],
        "the tracer's walker and the system unwinder disagree"
    );
    // The walker stopped early only where the stack ends (or at the capture limit).
    assert!(
        fast.len() == limit || n - at < fast.len(),
        "the walker stopped after {} frames, the system unwinder after {}",
        fast.len(),
        n
    );
}

/// A block of `size` bytes at `p` was just allocated: record it with the calling stack (in
/// sampled mode, only when the countdown runs out). Kept small: the capture is out of line.
#[inline(never)]
pub(crate) fn allocated(p: *mut u8, size: usize) {
    if !TRACING.load(Ordering::Relaxed) {
        return;
    }
    let mean = sample::MEAN.load(Ordering::Relaxed);
    if mean != 0 && !sample::take(size, mean) {
        return;
    }
    record(p, size);
}

/// Capture the calling stack and record the block (`allocated`'s slow part).
#[inline(never)]
fn record(p: *mut u8, size: usize) {
    let Some(_busy) = enter() else { return };
    with_stack(|ips| {
        // While another thread forks, the block is not traced (`pending.rs`).
        let Some(mut t) = tables_or_busy() else {
            return;
        };
        if t.tracing {
            t.record(p as usize, size, ips);
        }
    });
}

/// Run `f` with the calling stack (up to the capture limit). The caller has entered tracer
/// code (`enter`).
#[inline(always)]
fn with_stack(f: impl FnOnce(&[usize])) {
    // The limit is read without the lock: a change between here and the record only changes
    // how deep this one stack is.
    let limit = super::CAPTURE_LIMIT.load(Ordering::Relaxed);
    // A small buffer for the usual depths: zeroing the largest one took a quarter of an exact
    // capture's time.
    if limit <= SMALL_CAPTURE {
        let buf = &mut [0usize; SMALL_CAPTURE][..limit];
        let n = capture(buf);
        f(&buf[..n]);
    } else {
        let buf = &mut [0usize; MAX_NFRAMES + SKIP_BUDGET][..limit];
        let n = capture(buf);
        f(&buf[..n]);
    }
}

/// Frames a capture holds on the stack without the largest buffer.
const SMALL_CAPTURE: usize = 64;

/// The tables, after forgetting the traces of frees left pending (`pending.rs`); waits for a
/// fork in progress on another thread. For the tracer's API (never called inside `malloc`).
pub(super) fn tables() -> impl core::ops::DerefMut<Target = Tables> {
    let mut t = TABLES.lock();
    pending::drain(&mut t);
    t
}

/// The same from inside the allocator: `None`, at once, while another thread runs a fork (the
/// fork handlers hold the tables for it, and this thread may hold a lock the fork waits for).
pub(super) fn tables_or_busy() -> Option<impl core::ops::DerefMut<Target = Tables>> {
    let mut t = TABLES.lock_or_busy()?;
    pending::drain(&mut t);
    Some(t)
}

/// The block at `p` is about to be freed: forget its trace (none for a block allocated before
/// tracing started, as tracemalloc ignores those). Kept small: the lookup is out of line.
#[inline(never)]
pub(crate) fn freed(p: *mut u8) {
    if !TRACING.load(Ordering::Relaxed) || !sample::maybe_traced(p as usize) {
        return;
    }
    forget(p);
}

/// Remove the trace of `p` under the lock (`freed`'s slow part). In debug mode, remember where
/// the block was allocated and freed, for a fault found in it later (`freed.rs`).
#[inline(never)]
fn forget(p: *mut u8) {
    if crate::alloc::debug_enabled() {
        if let Some(_busy) = enter() {
            return with_stack(|ips| match tables_or_busy() {
                Some(mut t) => {
                    if let Some((_, tb)) = t.remove(p as usize) {
                        super::freed::remember(&mut t, p as usize, tb, ips);
                    }
                }
                None => {
                    pending::push(p as usize);
                }
            });
        }
    }
    match tables_or_busy() {
        Some(mut t) => {
            t.remove(p as usize);
        }
        None => {
            pending::push(p as usize);
        }
    }
}

/// What `detach` took off a block about to be reallocated: size, traceback id, generation.
pub(crate) struct Detached(Option<(usize, usize, u64)>);

/// The block at `p` is about to be reallocated: take its trace off (the old address may be
/// reused by another thread as soon as the backend moves the block).
#[inline(never)]
pub(crate) fn detach(p: *mut u8) -> Detached {
    if !TRACING.load(Ordering::Relaxed) || !sample::maybe_traced(p as usize) {
        return Detached(None);
    }
    // In debug mode the realloc's stack is where the old block was freed (`freed.rs`).
    if crate::alloc::debug_enabled() {
        if let Some(_busy) = enter() {
            let mut out = Detached(None);
            with_stack(|ips| out = detach_from(p, Some(ips)));
            return out;
        }
    }
    detach_from(p, None)
}

/// `detach`, remembering the free at stack `ips` if given.
fn detach_from(p: *mut u8, ips: Option<&[usize]>) -> Detached {
    let Some(mut t) = tables_or_busy() else {
        // During another thread's fork: forgotten later, and not restored if the realloc fails.
        pending::push(p as usize);
        return Detached(None);
    };
    let generation = t.generation;
    let gone = t.remove(p as usize);
    if let (Some((_, tb)), Some(ips)) = (gone, ips) {
        super::freed::remember(&mut t, p as usize, tb, ips);
    }
    Detached(gone.map(|(size, tb)| (size, tb, generation)))
}

/// The realloc of `p` returned `q` (null: failed, `p` untouched): trace `q` with its new size
/// and the calling stack, as tracemalloc does; or put `p`'s trace back if the realloc failed.
#[inline(never)]
pub(crate) fn reattach(old: Detached, p: *mut u8, q: *mut u8, new_size: usize) {
    if q.is_null() {
        if let Some((size, tb, generation)) = old.0 {
            if let Some(mut t) = tables_or_busy() {
                if t.tracing && t.generation == generation {
                    t.restore(p as usize, size, tb);
                }
            }
        }
        return;
    }
    allocated(q, new_size);
}
