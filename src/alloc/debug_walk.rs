//! Debug mode's block header, and its exit check of the pool blocks that were never freed: at
//! exit (`debug::check_at_exit`) every live debug block in the pools has its header's guard
//! bytes and its tail guard read, so an overflow or underflow of a block that is never freed is
//! reported too (a block that is freed is checked by its free).
//!
//! ```text
//!  GLOBAL held ─> every arena, both kinds (Global::for_each_arena)
//!                   └─> every pool ever handed out (ArenaDesc::touched_pools, as stats.rs)
//!                         class: CLASS_NONE (retired, cached) or CLASS_RUN_TAIL ─> skipped
//!                         blocks at 0, bs, 2 bs, .. below `bump` (never-carved ones are not read)
//!                           free mark in word 1 (harden.rs: local or remote free list)  ─> skip
//!                           header all 0xDD (waiting in the quarantine)                 ─> skip
//!                           otherwise a debug block in use: classify its two guards
//!  suspects (at most MAX_SUSPECTS) ─> confirmed one by one in a quiet moment (below) ─> Fault
//! ```
//!
//! # Other threads at exit
//!
//! `atexit` handlers run while the program's other threads still run: they may be allocating
//! or freeing blocks of the very pools being walked, and a block read half way through such an
//! operation (carved but its header not yet written; half filled with 0xDD by a free) looks
//! corrupt. A false report at exit is worse than a miss, so no block is reported on one read:
//!
//! - Every debug operation that writes a pool block (`debug::alloc`: carving or popping it,
//!   its header, fill and guards; `debug::free`: the check, the 0xDD fill, the quarantine and
//!   the release of the evicted block into its pool; the quarantine's flush) runs inside an
//!   `Op`, counted in `OPS`: the low 32 bits count operations in progress, the high 32 bits
//!   operations started.
//! - The walk only collects suspects. Each is then read again in a *quiet window*, as a
//!   seqlock's reader does: `OPS` read (Acquire) before with no operation in progress, the block
//!   read, an Acquire fence, `OPS` read again unchanged. A writer's `Op::begin` puts a Release
//!   fence between its count and its writes, so a read that saw any of its writes sees the
//!   count change. In a quiet window every pool block is in a state some operation left it in:
//!   free (marked), in the quarantine (0xDD), or in use with the header and guards its `alloc`
//!   wrote, changed since only by the user, so a changed guard is the user's fault.
//! - A suspect that never meets a quiet window in `CONFIRM_TRIES` tries (other threads
//!   allocating without pause) is dropped: a miss, never a false report. So is everything in a
//!   process where an operation stays "in progress" for good (a fork while another thread was
//!   inside one: the child never sees the count drop).
//!
//! Outside the walk's own reads, nothing here can hang or fault: `GLOBAL` is taken with
//! `lock_or_busy` (a fork in progress on another thread: the check is skipped) and held for
//! the walk and for each confirming read, so no arena is unmapped under them (arenas are
//! unmapped only under `GLOBAL`), and a confirming read first asks the address map whether the
//! block's arena is still there. Blocks are read with relaxed atomic loads (a racing writer is
//! an allocator operation the window rules out, or the user's bug); nothing is allocated.
//!
//! What it reports: a live block whose header is intact and whose tail guard is not
//! (`Overflow`); one whose tail guard at the place the header's size says is intact, and whose
//! guard bytes (or alignment byte) before the payload are not (`Underflow`); one whose header
//! keeps its guard bytes but names a size that is not this block's class (`Header`: an overflow
//! from below that jumped its own block's tail guard). A block with both ends changed is not
//! recognisable as a debug block and is not reported.
//!
//! Cost: only at exit, only in debug mode; one pass over the pools' carved blocks under
//! `GLOBAL`, two cache lines at most per block (the header with the free mark, the tail guard):
//! about 6 ms for a million live 40-byte blocks, 21 ms for a million 1000-byte ones (README).
//! The windows cost each debug operation two atomic read-modify-writes of `OPS` (about 2% of a
//! debug-mode malloc/free pair).
//!
//! May touch: `global.rs`, `arena.rs` (descriptors), `pool.rs`, `harden.rs`, `size_class.rs`,
//! `addr_map.rs`, `fatal.rs`, `lock.rs` (through `GLOBAL`).

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};

use crate::config::{ALL_CLASSES, DEBUG_TAIL, FILL_FREED, FILL_GUARD, MEDIUM_MAX};

use super::addr_map;
use super::fatal::block_fault;
use super::global::GLOBAL;
use super::harden;
use super::pool::pool_of_any;
use super::size_class::{any_class_of, block_size, is_medium_class, pool_limit};

/// Bytes of the header before every payload.
pub(super) const HEADER: usize = 16;

/// The header before every debug payload (see `debug.rs`'s picture).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Header {
    pub size: u64,
    pub serial: u32,
    pub align_shift: u8,
    pub guard: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER);

/// `Header::align_shift` bit: the underlying block came from the system allocator.
pub(super) const SYSTEM_BLOCK: u8 = 0x80;

/// The largest `align_shift` of a pool block (alignment 16: more goes to the system).
const POOL_ALIGN_SHIFT: u8 = crate::config::ALIGNMENT.trailing_zeros() as u8;

/// Debug operations in progress (low 32 bits) and started (high 32 bits, wrapping).
static OPS: AtomicU64 = AtomicU64::new(0);
const STARTED: u64 = 1 << 32;

/// A debug operation that writes pool blocks is in progress while this lives (see the module
/// docs).
pub(super) struct Op(());

impl Op {
    #[inline]
    pub(super) fn begin() -> Op {
        OPS.fetch_add(STARTED | 1, Ordering::Relaxed);
        // The count is ordered before every write of the operation (a seqlock's writer).
        fence(Ordering::Release);
        Op(())
    }
}

impl Drop for Op {
    #[inline]
    fn drop(&mut self) {
        OPS.fetch_sub(1, Ordering::Release);
    }
}

/// A fault of a live pool block found at exit; `user` is the user's pointer.
#[derive(Clone, Copy, Debug)]
pub(super) enum Fault {
    /// The tail guard after the payload was written.
    Overflow {
        user: *const u8,
        size: usize,
        serial: u32,
    },
    /// The bytes before the payload were written (the serial too when `serial` is None).
    Underflow {
        user: *const u8,
        size: usize,
        serial: Option<u32>,
        guard: [u8; 3],
    },
    /// The guard bytes are intact but the size is not this block's.
    Header {
        user: *const u8,
        size: usize,
        serial: u32,
    },
}

/// Most suspects one walk keeps for confirmation (blocks caught in the middle of an operation
/// are at most one or two per running thread).
const MAX_SUSPECTS: usize = 64;

/// Tries to find a quiet window for one suspect before it is dropped.
const CONFIRM_TRIES: usize = 1000;

/// The header of the block at `b`, read with atomic loads.
///
/// # Safety
/// `b` is a 16-aligned address with 16 mapped bytes.
unsafe fn read_header(b: usize) -> Header {
    // SAFETY: per the contract; two aligned words (racing writes: see the module docs).
    let words = unsafe {
        [
            AtomicU64::from_ptr(b as *mut u64).load(Ordering::Relaxed),
            AtomicU64::from_ptr((b + 8) as *mut u64).load(Ordering::Relaxed),
        ]
    };
    // SAFETY: Header is 16 bytes of plain integers (any bits are valid), [u64; 2] too.
    unsafe { core::mem::transmute::<[u64; 2], Header>(words) }
}

/// What the block at `b` of a pool of `class` says of itself: a fault, or None (free, waiting
/// in the quarantine, intact, or not recognisable).
///
/// # Safety
/// `b` is the start of a carved block of a pool (or run) of `class` in a mapped arena that
/// stays mapped during the call (the caller holds `GLOBAL`).
unsafe fn classify(b: usize, class: usize) -> Option<Fault> {
    // SAFETY: a carved block of our pools (word 1 is the free mark's).
    if unsafe { harden::is_freed(b as *mut u8) } {
        return None;
    }
    // SAFETY: a block start is 16-aligned and at least 16 bytes long.
    let h = unsafe { read_header(b) };
    if h.guard == [FILL_FREED; 3] && h.align_shift == FILL_FREED {
        return None; // in the quarantine (checked there)
    }
    let user = (b + HEADER) as *const u8;
    let front_ok = h.guard == [FILL_GUARD; 3] && h.align_shift <= POOL_ALIGN_SHIFT;
    // Every debug block of a pool was asked of it as `HEADER + size + DEBUG_TAIL` bytes, so
    // its class is that request's.
    let size = h.size as usize;
    let fits = size <= MEDIUM_MAX
        && HEADER + size + DEBUG_TAIL <= MEDIUM_MAX
        && any_class_of(HEADER + size + DEBUG_TAIL) == class;
    if !fits {
        return front_ok.then_some(Fault::Header {
            user,
            size,
            serial: h.serial,
        });
    }
    // The tail lies inside the block (fits: HEADER + size + DEBUG_TAIL <= block_size(class)).
    let tail_ok = (0..DEBUG_TAIL).all(|i| {
        // SAFETY: inside the block, as above.
        unsafe { AtomicU8::from_ptr((b + HEADER + size + i) as *mut u8) }.load(Ordering::Relaxed)
            == FILL_GUARD
    });
    match (front_ok, tail_ok) {
        (true, false) => Some(Fault::Overflow {
            user,
            size,
            serial: h.serial,
        }),
        (false, true) => Some(Fault::Underflow {
            user,
            size,
            // The alignment byte lies between the serial and the guard bytes: intact, so is
            // the serial (an underflow writes downwards from the payload).
            serial: (h.align_shift <= POOL_ALIGN_SHIFT).then_some(h.serial),
            guard: h.guard,
        }),
        _ => None,
    }
}

/// Run `read` in a quiet window (see the module docs): its result, or None when an operation
/// was in progress or started meanwhile.
fn quiet<T>(read: impl FnOnce() -> T) -> Option<T> {
    let before = OPS.load(Ordering::Acquire);
    if before as u32 != 0 {
        return None;
    }
    let r = read();
    fence(Ordering::Acquire);
    (OPS.load(Ordering::Relaxed) == before).then_some(r)
}

/// Suspects dismissed by their confirmation (they were in the middle of an operation), since
/// the start (`debug_exit_check`, tests).
static DISMISSED: AtomicU64 = AtomicU64::new(0);

/// Read the suspect at `b` again in a quiet window: its fault, or None (not one after all, or
/// no quiet window found, or a fork in progress holds `GLOBAL`).
fn confirm(b: usize) -> Option<Fault> {
    for _ in 0..CONFIRM_TRIES {
        let g = GLOBAL.lock_or_busy()?;
        let verdict = quiet(|| {
            if addr_map::lookup(b).is_null() {
                return None; // its arena was given back meanwhile
            }
            // SAFETY: b lies in a mapped arena, kept mapped by the lock held.
            let p = unsafe { &*pool_of_any(b as *const u8) };
            let class = p.class();
            if class >= ALL_CLASSES || !p.is_block_start(b as *const u8) {
                return None;
            }
            // SAFETY: a carved block start of a pool of `class`, in an arena kept mapped.
            unsafe { classify(b, class) }
        });
        drop(g);
        if let Some(fault) = verdict {
            if fault.is_none() {
                DISMISSED.fetch_add(1, Ordering::Relaxed);
            }
            return fault;
        }
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
    }
    None
}

/// The first confirmed fault of a live debug block in the pools (see the module docs). None
/// also when a fork in progress on another thread holds `GLOBAL`.
pub(super) fn find_fault() -> Option<Fault> {
    let mut suspects = [0usize; MAX_SUSPECTS];
    let mut n = 0;
    {
        let g = GLOBAL.lock_or_busy()?;
        g.for_each_arena(|d| {
            // (Hardened mode's guard unit, inaccessible, is not among the touched pools.)
            for p in d.touched_pools() {
                if n == MAX_SUSPECTS {
                    return;
                }
                // SAFETY: touched pools have initialized headers (stats.rs reads them so);
                // only atomic fields are read, the owner may be changing the others.
                let pool = unsafe { &*p };
                let class = pool.class.load(Ordering::Acquire) as usize;
                // Not in use (retired, cached), a run's tail pool, or a class the arena's kind
                // never serves (a header read mid-change).
                if class >= ALL_CLASSES || is_medium_class(class) != d.medium {
                    continue;
                }
                let bs = block_size(class);
                // Clamped: a bump read mid-change never sends a read past the pool or run.
                let end = (pool.bump.load(Ordering::Relaxed) as usize).min(pool_limit(class));
                let base = pool.base();
                let mut off = 0;
                while off + bs <= end && n < MAX_SUSPECTS {
                    // SAFETY: a carved block of this pool (below bump, at a multiple of the
                    // block size), in an arena kept mapped by the lock held.
                    if unsafe { classify(base + off, class) }.is_some() {
                        suspects[n] = base + off;
                        n += 1;
                    }
                    off += bs;
                }
            }
        });
    }
    suspects[..n].iter().find_map(|&b| confirm(b))
}

/// The exit check of the pools: abort with the first confirmed fault, in the words of the
/// checks on free, or return.
pub(super) fn check_pools() {
    const AT_EXIT: &str = "found at exit: the block was never freed";
    match find_fault() {
        None => {}
        Some(Fault::Overflow { user, size, serial }) => block_fault(
            "overflow",
            user,
            format_args!(
                "bytes after the end of a {size}-byte block were overwritten (allocation \
                 #{serial}; {AT_EXIT})"
            ),
        ),
        Some(Fault::Underflow {
            user,
            size,
            serial,
            guard,
        }) => block_fault(
            "underflow",
            user,
            format_args!(
                "the guard bytes before the payload of a {size}-byte block were overwritten \
                 (guard: {guard:02x?}; {}; {AT_EXIT})",
                Serial(serial)
            ),
        ),
        Some(Fault::Header { user, size, serial }) => block_fault(
            "underflow",
            user,
            format_args!(
                "the block's header was overwritten: it claims {size} bytes, not what the block \
                 was made for (allocation #{serial}; {AT_EXIT})"
            ),
        ),
    }
}

/// "allocation #N", or what became of N.
struct Serial(Option<u32>);

impl core::fmt::Display for Serial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "allocation #{n}"),
            None => f.write_str("the allocation serial before them overwritten too"),
        }
    }
}

/// Run the walk now, without aborting: (a fault was found, suspects dismissed so far). For the
/// tests of debug mode (a walk while other threads allocate must find nothing).
pub(crate) fn debug_exit_check() -> (bool, u64) {
    let found = find_fault().is_some();
    (found, DISMISSED.load(Ordering::Relaxed))
}
