//! Where a faulty block was allocated and freed: debug mode's fault messages with tracing on.
//!
//! With debug mode chosen and tracing on, a traced block's free does not just forget its trace:
//! the free's own stack is captured too, and the pair (the allocation's traceback id, the
//! free's) goes into a ring of recently freed blocks, kept in the tables (`Tables::freed`). When
//! debug mode finds a fault in a block (`alloc/fatal.rs`, `block_fault`), `report` prints, after
//! the fault's line, the block's allocation traceback (from its live trace, or from the ring)
//! and the free's, most recent call first, as CPython's debug allocator prints tracemalloc's
//! traceback of a bad block:
//!
//! ```text
//! arenagc: fatal error: write after free of pointer 0x7f..: 48-byte block (allocation #12), ..
//! Memory block allocated at (most recent call first):
//!   File "src/main.rs", line 10, in app::make
//! Memory block freed at (most recent call first):
//!   File "src/main.rs", line 14, in app::drop_it
//! ```
//!
//! Invariants:
//! - The ring holds `RING_LEN` entries, more than debug mode's quarantine: a block still in the
//!   quarantine (where every fault after a free is found: a second free, a write after free seen
//!   when the block leaves it or at exit) still has its entry. Entries are read newest first, so
//!   an address freed again finds its latest free.
//! - Its ids are traceback ids of the tables' current generation: `Tables::clear` empties the
//!   ring with the tracebacks.
//! - A block with a live trace is live (its trace was added after its last free, or put back by
//!   a failed realloc): `report` prefers that trace to the ring's.
//! - The ring's memory comes from the kernel (`mem.rs`), mapped at its first entry.

use core::sync::atomic::Ordering;

use super::hook::{self, TRACING};
use super::mem::Region;
use super::table::Tables;
use super::{MAX_NFRAMES, SKIP_BUDGET};
use crate::alloc::fatal::write_stderr;

/// Entries in the ring: four times debug mode's quarantine.
const RING_LEN: usize = 4 * crate::config::DEBUG_QUARANTINE;

/// A freed block: its address, its allocation's traceback id, its free's (`NONE`: not
/// captured).
#[derive(Clone, Copy)]
#[repr(C)]
struct Freed {
    addr: usize,
    alloc_tb: usize,
    free_tb: usize,
}

/// `Freed::free_tb` when the free's stack could not be stored.
const NONE: usize = usize::MAX;

/// The ring of recently freed traced blocks (see the module docs).
pub(crate) struct Ring {
    slots: Region,
    /// Entries pushed since the last clear; the next goes to `next % RING_LEN`.
    next: usize,
}

impl Ring {
    pub(crate) const fn empty() -> Ring {
        Ring {
            slots: Region::empty(),
            next: 0,
        }
    }

    /// Forget every entry (with the tracebacks they name) and give the memory back.
    pub(crate) fn clear(&mut self) {
        self.slots.release();
        self.next = 0;
    }

    /// Bytes the ring holds.
    pub(crate) fn memory(&self) -> usize {
        self.slots.len()
    }

    /// Remember that the block at `addr`, allocated at `alloc_tb`, was freed at `free_tb`.
    /// Dropped when the kernel refuses the ring's memory.
    pub(crate) fn push(&mut self, addr: usize, alloc_tb: usize, free_tb: usize) {
        if self.slots.len() == 0 {
            match Region::map(RING_LEN * size_of::<Freed>()) {
                Some(r) => self.slots = r,
                None => return,
            }
        }
        self.slots.slice_mut::<Freed>()[self.next % RING_LEN] = Freed {
            addr,
            alloc_tb,
            free_tb,
        };
        self.next += 1;
    }

    /// The latest entry for `addr`: (allocation id, free id if captured).
    fn find(&self, addr: usize) -> Option<(usize, Option<usize>)> {
        if self.next == 0 {
            return None;
        }
        let slots = self.slots.slice::<Freed>();
        (self.next.saturating_sub(RING_LEN)..self.next)
            .rev()
            .map(|i| slots[i % RING_LEN])
            .find(|e| e.addr == addr)
            .map(|e| (e.alloc_tb, (e.free_tb != NONE).then_some(e.free_tb)))
    }
}

/// The traced block at `addr`, allocated at `alloc_tb`, is being freed (or moved by a realloc)
/// from the stack `ips`, and its trace is gone: remember both (debug mode, under the tables'
/// lock).
pub(super) fn remember(t: &mut Tables, addr: usize, alloc_tb: usize, ips: &[usize]) {
    let free_tb = t.intern(ips).unwrap_or(NONE);
    t.freed.push(addr, alloc_tb, free_tb);
}

/// The block report debug mode's faults print with tracing built in (`fatal::block_fault`):
/// where the block the user knows as `user` was allocated and, if it was freed, where. Runs
/// after the fault's line and before the abort; allocates (symbols), untraced.
pub(crate) fn report(user: *const u8) {
    if !TRACING.load(Ordering::Relaxed) {
        return;
    }
    let Some(_busy) = hook::enter() else { return };
    let addr = user as usize;
    let mut alloc = [0usize; MAX_NFRAMES + SKIP_BUDGET];
    let mut free = [0usize; MAX_NFRAMES + SKIP_BUDGET];
    let (na, nf, nframes) = {
        let Some(t) = hook::tables_or_busy() else {
            write_stderr(b"(where the block was allocated: unknown, another thread is forking)\n");
            return;
        };
        let (alloc_tb, free_tb) = match t.get(addr) {
            Some((_, tb)) => (Some(tb), None),
            None => match t.freed.find(addr) {
                Some((a, f)) => (Some(a), f),
                None => (None, None),
            },
        };
        let copy = |tb: Option<usize>, buf: &mut [usize]| {
            tb.map_or(0, |tb| {
                let ips = t.frames(tb);
                buf[..ips.len()].copy_from_slice(ips);
                ips.len()
            })
        };
        (
            copy(alloc_tb, &mut alloc),
            copy(free_tb, &mut free),
            t.nframes,
        )
    };
    let mut text = String::new();
    let mut resolver = super::frames::Resolver::new();
    if na == 0 {
        text.push_str(
            "Memory block allocated at: unknown (not traced: allocated before tracing started, \
             or not sampled)\n",
        );
    } else {
        text.push_str("Memory block allocated at (most recent call first):\n");
        for line in resolver.traceback(&alloc[..na], nframes).format(true) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    if nf != 0 {
        text.push_str("Memory block freed at (most recent call first):\n");
        for line in resolver.traceback(&free[..nf], nframes).format(true) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    write_stderr(text.as_bytes());
}
