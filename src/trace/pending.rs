//! Frees whose trace could not be forgotten at once. While another thread runs a fork, the
//! allocator's fork handlers hold the tables' lock for it, and a thread inside `malloc`/`free`
//! must not wait for a fork: it may hold a stdio lock the fork is waiting for (glibc bug 19431's
//! lock order, `alloc/lock.rs`; exact tracing and a `getline` on another thread hung every fork
//! test until this). Such a free leaves its block's address here instead, and whoever next holds
//! the tables forgets these traces first (`drain`), before any new trace is recorded; as a free
//! forgets before its block goes back to the backend, no address can be traced anew before its
//! old trace is gone. (An allocation in that window is simply not traced.)
//!
//! Invariants:
//! - A slot holds 0 or the address of a block freed while its trace was left to this list; a
//!   producer claims a zero slot with one compare-and-swap (no half-written slot, so a child
//!   forked meanwhile inherits only whole ones), then counts it in `COUNT`.
//! - `COUNT` is only a hint that slots may be full: `drain` scans every slot when it is not 0,
//!   and subtracts what it took (it may briefly wrap below 0 when a slot is taken before its
//!   producer counted it; any non-zero value still means "scan").
//! - Only a holder of the tables' lock drains.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::table::Tables;

/// Slots: more frees than this on other threads during one fork lose their forgets (their
/// traces stay until the address is traced again, which replaces them).
const CAP: usize = 1024;

static SLOTS: [AtomicUsize; CAP] = [const { AtomicUsize::new(0) }; CAP];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Leave `addr`'s trace to be forgotten by the next holder of the tables. False when every slot
/// is taken (the forget is lost).
pub(super) fn push(addr: usize) -> bool {
    debug_assert!(addr != 0);
    let start = (addr >> 4).wrapping_mul(0x9E37_79B9) % CAP;
    for i in 0..CAP {
        let slot = &SLOTS[(start + i) % CAP];
        if slot
            .compare_exchange(0, addr, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            COUNT.fetch_add(1, Ordering::Release);
            return true;
        }
    }
    false
}

/// Forget the traces of every address left here (the caller holds the tables).
pub(super) fn drain(t: &mut Tables) {
    if COUNT.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut taken = 0usize;
    for slot in SLOTS.iter() {
        let a = slot.swap(0, Ordering::AcqRel);
        if a != 0 {
            t.remove(a);
            taken += 1;
        }
    }
    COUNT.fetch_sub(taken, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_addresses_are_forgotten_by_the_next_drain() {
        let mut t = Tables::unmarked();
        t.tracing = true;
        assert!(t.record(0x1000, 64, &[1, 2, 3]));
        assert!(t.record(0x2000, 32, &[1, 2, 3]));
        assert!(push(0x1000));
        drain(&mut t);
        assert_eq!(t.get(0x1000), None);
        assert!(t.get(0x2000).is_some());
        // Nothing left: a new trace at the same address stays.
        assert!(t.record(0x1000, 16, &[4]));
        drain(&mut t);
        assert!(t.get(0x1000).is_some());
        t.clear();
    }
}
