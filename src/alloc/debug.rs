//! Debug mode, in the manner of `PYTHONMALLOC=debug`.
//!
//! ```text
//!  underlying block:  [ pad (0xFD) | header (16 B) | payload (size B) | tail guard (8 B, 0xFD) ]
//!                                                   ^ pointer handed out, aligned to `align`
//!  header (debug_walk::Header): size: u64 | serial: u32 | align_shift: u8 | 3 guard bytes (0xFD)
//!          align_shift's top bit (SYSTEM_BLOCK): the underlying block is glibc's although its
//!          size is small (taken while a fork on another thread held the pools' lock, lock.rs)
//! ```
//!
//! New payloads are filled with 0xCD (or zeroed for `alloc_zeroed`/`calloc`). On free the header
//! and guards are checked, the whole block is filled with 0xDD and parked in a FIFO quarantine
//! of `DEBUG_QUARANTINE` blocks; when a block leaves the quarantine it must still be all 0xDD.
//! Faults are reported by name with the address and the block's size and serial number, then the
//! process aborts: double free, underflow (bytes before the payload written), overflow (bytes
//! after it written), write after free, size mismatch, and pointer not from this allocator.
//! A block that is never freed is checked at exit (`check_at_exit`, registered at the first
//! free): the quarantine's blocks, the tail guards of the live system-allocator blocks (the
//! registry of `debug_large.rs`), and both guards of the live pool blocks (`debug_walk.rs`,
//! which also holds the header's layout and the `Op` window every `alloc` and `free` here
//! opens, so its walk never reports a block caught half way through one).
//!
//! Debug mode is chosen once, before the first allocation (cargo feature `debug`, or the
//! environment variable `ARENAGC_DEBUG=1`; see `dispatch.rs`), because it changes the layout of
//! every block. It is a backend wrapping the plain one: its underlying blocks come from
//! `Plain`, and its quarantine lock is taken by the fork handlers only when it is in use
//! (`init` registers it).

use crate::config::{DEBUG_QUARANTINE, DEBUG_TAIL, FILL_FREED, FILL_GUARD, FILL_NEW};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::backend::Backend;
use super::debug_large;
use super::debug_walk::{self, HEADER, Header, Op, SYSTEM_BLOCK};
use super::fatal::{block_fault, fatal_fmt};
use super::large;
use super::lock::SpinLock;
use super::plain::is_pooled;
use super::plain::{self, Plain};
use super::pool::pool_of_any;
use super::size_class::block_size;

/// The debug backend (see the module docs).
pub(crate) struct Debug;

/// Before the first debug block: have the fork handlers take the quarantine's lock.
pub(crate) fn init() {
    super::fork::add_lock(QUARANTINE.raw());
    debug_large::init();
}

impl Backend for Debug {
    fn alloc(&self, size: usize, align: usize, zero: bool, _by_address: bool) -> *mut u8 {
        alloc(size, align, zero)
    }

    fn looks_freed(&self, user: *const u8) -> bool {
        // A payload of a pool block starts HEADER bytes into it (objects are 16-aligned). Freed:
        // its header filled with FILL_FREED while it waits in quarantine, or the underlying
        // block back in its pool (the plain backend's free mark).
        let base = (user as usize).wrapping_sub(HEADER) as *const u8;
        if !plain::owns(user) || !plain::owns(base) {
            return false;
        }
        if plain::looks_freed(base) {
            return true;
        }
        // SAFETY: base is in a mapped arena (owns); the header is read only at a block start,
        // which is ours to read.
        unsafe {
            (*pool_of_any(base)).is_block_start(base) && {
                let h = &*base.cast::<Header>();
                h.guard == [FILL_FREED; 3] && h.align_shift == FILL_FREED
            }
        }
    }

    unsafe fn free(&self, p: *mut u8, layout: Option<(usize, usize)>) {
        // SAFETY: forwarded.
        unsafe { free(p, layout) }
    }

    unsafe fn usable_size(&self, p: *mut u8) -> usize {
        // SAFETY: forwarded.
        unsafe { size_of(p) }
    }
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A freed block waiting in the quarantine, with what the user knew of it (its header is filled
/// with 0xDD like the rest, so the size and serial are kept here for the messages).
#[derive(Clone, Copy, Default)]
struct Held {
    base: usize,  // the underlying block (0: an empty slot)
    len: usize,   // its length
    front: usize, // user pointer - base
    size: usize,  // the user's size
    serial: u32,  // the allocation serial
}

const EMPTY: Held = Held {
    base: 0,
    len: 0,
    front: 0,
    size: 0,
    serial: 0,
};

struct Quarantine {
    slots: [Held; DEBUG_QUARANTINE],
    next: usize,
}

static QUARANTINE: SpinLock<Quarantine> = SpinLock::new(Quarantine {
    slots: [EMPTY; DEBUG_QUARANTINE],
    next: 0,
});

/// Check that `h` was not written since it was freed (all 0xDD), aborting with the user's
/// pointer, size, serial and the offset of the first changed byte otherwise; then give the
/// underlying block back to the pools.
fn release(h: Held) {
    let b = h.base as *const u8;
    // SAFETY: a quarantined block is ours and `len` bytes long.
    let bytes = unsafe { core::slice::from_raw_parts(b, h.len) };
    if let Some(at) = bytes.iter().position(|&x| x != FILL_FREED) {
        let user = (h.base + h.front) as *const u8;
        block_fault(
            "write after free",
            user,
            format_args!(
                "{}-byte block (allocation #{}), byte {} {} was written to after the free \
                 (found 0x{:02x}, not 0xdd)",
                h.size,
                h.serial,
                at as isize - h.front as isize,
                if at < h.front {
                    "(in the header before the payload)"
                } else if at >= h.front + h.size {
                    "(in the guard after the payload)"
                } else {
                    "of the payload"
                },
                bytes[at]
            ),
        );
    }
    // SAFETY: quarantined blocks came from the plain backend and are unused.
    unsafe { Plain.free(h.base as *mut u8, None) };
}

/// Whether `check_at_exit` is registered.
static AT_EXIT: AtomicBool = AtomicBool::new(false);

/// At exit: check every block still waiting (a write after free is otherwise seen only when
/// its block leaves the quarantine, which may never happen), then the live blocks nobody
/// freed, whose faults are otherwise never seen: the tail guards of those from the system
/// allocator (the registry, `debug_large.rs`), then both guards of those in the pools (the
/// walk of `debug_walk.rs`, safe with other threads still running: it reports only what it
/// read again in a moment no debug operation was under way).
extern "C" fn check_at_exit() {
    let q = QUARANTINE.lock_or_busy();
    if let Some(q) = q {
        for h in q.slots.iter().filter(|h| h.base != 0) {
            let b = h.base as *const u8;
            // SAFETY: as in release.
            let bytes = unsafe { core::slice::from_raw_parts(b, h.len) };
            if bytes.iter().any(|&x| x != FILL_FREED) {
                let h = *h;
                drop(q);
                release(h); // aborts with the message
                return;
            }
        }
    }
    if let Some((user, size, serial)) = debug_large::find_overflowed(DEBUG_TAIL, FILL_GUARD) {
        block_fault(
            "overflow",
            user,
            format_args!(
                "bytes after the end of a {size}-byte block were overwritten (allocation \
                 #{serial}; found at exit: the block was never freed)"
            ),
        );
    }
    debug_walk::check_pools(); // aborts with the first fault it finds
}

/// The quarantine's record of the freed block the user knew as `user`, if it waits there
/// (`None` as well while another thread forks). For a double free's message.
fn held_for(user: *const u8) -> Option<Held> {
    let q = QUARANTINE.lock_or_busy()?;
    q.slots
        .iter()
        .find(|h| h.base != 0 && h.base + h.front == user as usize)
        .copied()
}

fn front(align: usize) -> usize {
    align.max(HEADER)
}

/// The underlying block length for a payload of `size` bytes aligned to `align`; None on
/// overflow.
fn total(size: usize, align: usize) -> Option<usize> {
    front(align).checked_add(size)?.checked_add(DEBUG_TAIL)
}

/// Allocate a debug block. Null on failure.
pub fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let _op = Op::begin(); // the block is carved and written (debug_walk.rs)
    let Some(len) = total(size, align) else {
        return core::ptr::null_mut();
    };
    // Underlying blocks are freed by address (Plain.free(_, None)).
    let base = Plain.alloc(len, align.max(crate::config::ALIGNMENT), false, true);
    if base.is_null() {
        return base;
    }
    let f = front(align);
    // SAFETY: base is a fresh block of at least `len` bytes.
    unsafe {
        base.write_bytes(FILL_GUARD, f - HEADER);
        let user = base.add(f);
        user.sub(HEADER).cast::<Header>().write(Header {
            size: size as u64,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed).wrapping_add(1),
            align_shift: align.trailing_zeros() as u8
                | if plain::owns(base) { 0 } else { SYSTEM_BLOCK },
            guard: [FILL_GUARD; 3],
        });
        user.write_bytes(if zero { 0 } else { FILL_NEW }, size);
        user.add(size).write_bytes(FILL_GUARD, DEBUG_TAIL);
        if !plain::owns(base) {
            let serial = (*user.sub(HEADER).cast::<Header>()).serial;
            debug_large::insert(user, size, serial);
        }
        user
    }
}

fn all(p: *const u8, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass ranges inside a block they hold.
    unsafe { core::slice::from_raw_parts(p, len) }
        .iter()
        .all(|&b| b == byte)
}

/// Check a debug block and return (size, align). Aborts naming the fault.
///
/// # Safety
/// `user` was returned by `alloc` (or is the bad pointer being diagnosed, readable 16 bytes back).
unsafe fn check(user: *mut u8, layout: Option<(usize, usize)>) -> (usize, usize) {
    let expected = layout.map(|l| l.0);
    let addr = user as usize;
    if addr % crate::config::ALIGNMENT != 0 || addr < 4096 {
        fatal_fmt(
            "pointer not from this allocator",
            user,
            format_args!("misaligned or null-page address"),
        );
    }
    let ours = plain::owns(user);
    if ours {
        // A block of ours with alignment <= 16 starts exactly HEADER bytes before `user`, in the
        // same arena (an address at the very start of an arena would put it in the region
        // below, whose headers we must not read).
        let base = addr - HEADER;
        let same_arena = (base ^ addr) < crate::config::ARENA_SIZE;
        let block_start = same_arena && {
            // SAFETY: base lies in the mapped arena of addr, so its pool header is readable.
            unsafe { (*pool_of_any(base as *const u8)).is_block_start(base as *const u8) }
        };
        if !block_start {
            fatal_fmt(
                "invalid free",
                user,
                format_args!("interior pointer, or not a block in use (inside an arena)"),
            );
        }
    } else if layout.is_some_and(|(size, align)| {
        // The caller's layout says the underlying block is a pool block: it must be ours, unless
        // its header says the pools were busy with a fork when it was made.
        total(size, align).is_some_and(|t| is_pooled(t, align.max(crate::config::ALIGNMENT)))
    }) && {
        // SAFETY: the caller guarantees 16 readable bytes before user.
        let h = unsafe { &*user.sub(HEADER).cast::<Header>() };
        h.guard != [FILL_GUARD; 3] || h.align_shift & SYSTEM_BLOCK == 0
    } {
        fatal_fmt(
            "pointer not from this allocator",
            user,
            format_args!("not inside any arena"),
        );
    }
    // SAFETY: the caller guarantees 16 readable bytes before user.
    let h = unsafe { &*user.sub(HEADER).cast::<Header>() };
    if h.guard == [FILL_FREED; 3] && h.align_shift == FILL_FREED {
        // Its size and serial went with the fill; the quarantine keeps them.
        match held_for(user) {
            Some(h) => block_fault(
                "double free",
                user,
                format_args!(
                    "the {}-byte block (allocation #{}) was already freed and waits in the \
                     quarantine (filled with 0xDD)",
                    h.size, h.serial
                ),
            ),
            None => block_fault(
                "double free",
                user,
                format_args!("the block was already freed (filled with 0xDD)"),
            ),
        }
    }
    if h.guard != [FILL_GUARD; 3] || h.align_shift & !SYSTEM_BLOCK > 40 {
        if !ours {
            if let Some((size, serial)) = debug_large::lookup(user) {
                block_fault(
                    "underflow",
                    user,
                    format_args!(
                        "the guard bytes before the payload of a {size}-byte block were \
                         overwritten (guard: {:02x?}; allocation #{serial})",
                        h.guard
                    ),
                );
            }
            fatal_fmt(
                "pointer not from this allocator",
                user,
                format_args!(
                    "no arenagc debug header before it (or the 16 bytes before a large block \
                     were overwritten)"
                ),
            );
        }
        block_fault(
            "underflow",
            user,
            format_args!(
                "the guard bytes before the payload were overwritten (guard: {:02x?}; the \
                 header, if intact, says {} bytes, allocation #{})",
                h.guard, h.size, h.serial
            ),
        );
    }
    let size = h.size as usize;
    let align = 1usize << (h.align_shift & !SYSTEM_BLOCK);
    // The guards matched, but an overflow from the block below reaches `size` before it
    // reaches the guards: check the header against the underlying block before using it.
    let len = total(size, align);
    let fits = len.is_some_and(|len| {
        if ours {
            // SAFETY: checked above: user - HEADER is a block start in a pool in use.
            let class = unsafe { (*pool_of_any(user.sub(HEADER))).class() };
            align <= crate::config::ALIGNMENT && len <= block_size(class)
        } else {
            front(align) <= addr && {
                // SAFETY: the header's pad lies before user (no wrap, checked), and a large
                // debug block starts there (its glibc block), as the pad check below assumes.
                len <= unsafe { large::usable_size(user.sub(front(align))) }
            }
        }
    });
    if !fits {
        block_fault(
            "underflow",
            user,
            format_args!(
                "the block's header was overwritten: it claims {size} bytes aligned to {align}, \
                 more than the block holds (allocation #{})",
                h.serial
            ),
        );
    }
    if let Some(e) = expected {
        if e != size {
            block_fault(
                "size mismatch",
                user,
                format_args!(
                    "freed as {e} bytes, allocated as {size} bytes (allocation #{})",
                    h.serial
                ),
            );
        }
    }
    // SAFETY: the header says the block has `front - HEADER` pad bytes before it.
    let pad = unsafe { user.sub(front(align)) };
    if !all(pad, front(align) - HEADER, FILL_GUARD) {
        block_fault(
            "underflow",
            user,
            format_args!(
                "pad before a {size}-byte block written (allocation #{})",
                h.serial
            ),
        );
    }
    // SAFETY: the header says the payload is `size` bytes, followed by the tail guard.
    if !all(unsafe { user.add(size) }, DEBUG_TAIL, FILL_GUARD) {
        block_fault(
            "overflow",
            user,
            format_args!(
                "bytes after the end of a {size}-byte block were overwritten (allocation #{})",
                h.serial
            ),
        );
    }
    (size, align)
}

/// Payload size of a live debug block.
///
/// # Safety
/// `user` was returned by `alloc` and is live.
pub unsafe fn size_of(user: *mut u8) -> usize {
    // SAFETY: forwarded.
    unsafe { check(user, None).0 }
}

/// Free a debug block; `layout` is the (size, align) the caller believes it has (the Rust
/// layout), or None from C.
///
/// # Safety
/// `user` was returned by `alloc` (checked as far as possible).
pub unsafe fn free(user: *mut u8, layout: Option<(usize, usize)>) {
    let _op = Op::begin(); // the block is filled, and an evicted one freed (debug_walk.rs)
    // SAFETY: forwarded.
    let (size, align) = unsafe { check(user, layout) };
    let f = front(align);
    let len = f + size + DEBUG_TAIL;
    // SAFETY: the checked header describes a block of `len` bytes starting f bytes before user.
    let base = unsafe { user.sub(f) };
    // SAFETY: the header is intact (checked); read before the fill below.
    let serial = unsafe { (*user.sub(HEADER).cast::<Header>()).serial };
    if !plain::owns(base) {
        debug_large::remove(user);
    }
    // SAFETY: as above.
    unsafe { base.write_bytes(FILL_FREED, len) };
    let held = Held {
        base: base as usize,
        len,
        front: f,
        size,
        serial,
    };
    if !AT_EXIT.load(Ordering::Relaxed) && !AT_EXIT.swap(true, Ordering::Relaxed) {
        // At the first free, when the backend is chosen (glibc's atexit may allocate, which
        // must not happen while it is being chosen).
        // SAFETY: registering a handler has no preconditions.
        unsafe { libc::atexit(check_at_exit) };
    }
    let evicted = match QUARANTINE.lock_or_busy() {
        Some(mut q) => {
            let i = q.next;
            q.next = (i + 1) % DEBUG_QUARANTINE;
            core::mem::replace(&mut q.slots[i], held)
        }
        // A fork in progress on another thread holds the quarantine (lock.rs): this block skips
        // it and is freed at once.
        None => held,
    };
    if evicted.base != 0 {
        release(evicted);
    }
}

/// Give every quarantined block back (for `trim` and tests).
pub fn flush_quarantine() {
    loop {
        let _op = Op::begin(); // the block goes back to its pool (debug_walk.rs)
        let slot = {
            let mut q = QUARANTINE.lock();
            q.slots
                .iter_mut()
                .find(|s| s.base != 0)
                .map(|s| core::mem::replace(s, EMPTY))
        };
        let Some(h) = slot else { return };
        release(h);
    }
}
