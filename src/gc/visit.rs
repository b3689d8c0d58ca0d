//! The collector's two gc_refs visits, shared by the collector (`collect.rs`, through C
//! `traverse` functions) and by Rust `trace` code (`Tracer`, which inlines them).
//!
//! | item                                  | phase              | does to a referent `g`              |
//! |---------------------------------------|--------------------|-------------------------------------|
//! | `visit_decref` / `decref_gc`          | `subtract_refs`    | gc_refs -= 1 if COLLECTING and > 0  |
//! | `visit_reachable` / `reach_gc`, `Reach` | `move_unreachable` | back from `unreachable` to `young`, or gc_refs 0 -> 1 |
//! | `gc_refs`, `set_refs`                 | both               | read / write the count in `prev`    |
//! | `decref_marker`                       | `subtract_refs`    | the `arg` that names the decref visit |
//!
//! The `visit_*` functions are the `VisitProc`s handed to `traverse`: they accept any object
//! (null and non-GC referents are skipped). The `*_gc` forms take a referent known to have a
//! `GcHead`, for `Tracer`, whose `Gc`/`Weak` referents always have one.
//!
//! # Invariants
//!
//! - During `update_refs..move_unreachable` the `prev` word of each object of the collected set
//!   holds `gc_refs << PREV_SHIFT | flags` (see the bit table in `object`), and
//!   `0 <= gc_refs <= refcnt`: the decrement saturates at 0, so a `traverse` that reports more
//!   references than exist cannot wrap it.
//! - Objects outside the set (no `PREV_COLLECTING`) are never written.
//! - The inlined forms do exactly what the visit functions do for a GC referent: `Tracer`
//!   recognises the decref visit by [`decref_marker`] and the reachable one by its address.
//!
//! May touch: `list.rs` (moving a node back to `young`), the `GcHead`s of the collected set.

use core::ffi::{c_int, c_void};

use super::list::{self, Head, prev, set_prev};
use crate::object::{
    NEXT_UNREACHABLE, ObjectHeader, PREV_COLLECTING, PREV_FLAGS, PREV_SHIFT, as_gc, type_of,
};

/// The gc_refs of a node in the refs phase.
///
/// # Safety
/// `g` is the head of a live object of the collected set, in the refs phase.
#[inline(always)]
pub(crate) unsafe fn gc_refs(g: Head) -> usize {
    // SAFETY: caller's contract.
    unsafe { (*g).prev >> PREV_SHIFT }
}

/// Set the gc_refs of a node in the refs phase, keeping its flags.
///
/// # Safety
/// As [`gc_refs`].
#[inline(always)]
pub(crate) unsafe fn set_refs(g: Head, refs: usize) {
    // SAFETY: caller's contract.
    unsafe { (*g).prev = ((*g).prev & PREV_FLAGS) | (refs << PREV_SHIFT) }
}

/// `subtract_refs`' visit: one reference from inside the set to `obj`.
///
/// # Safety
/// `obj` is null (an empty field of a C object: skipped, like `Py_VISIT`) or a live object;
/// the collection is in its refs phase.
pub(crate) unsafe extern "C" fn visit_decref(obj: *mut ObjectHeader, _: *mut c_void) -> c_int {
    // SAFETY: caller's contract; GC objects have a head.
    unsafe {
        if !obj.is_null() && type_of(obj).is_gc() {
            decref_gc(as_gc(obj));
        }
    }
    0
}

static DECREF_MARKER: u8 = 0;

/// The `arg` `subtract_refs` passes with `visit_decref`, so that Rust traces recognize it and
/// inline the decrement. A marker is a certain test; comparing function addresses, as `Tracer`
/// does for `visit_reachable`, can miss when the compiler duplicates a function (a miss only
/// loses the inlined path: the visit function is then called).
#[inline(always)]
pub(crate) fn decref_marker() -> *mut c_void {
    &DECREF_MARKER as *const u8 as *mut c_void
}

/// `visit_decref` on an object known to have a `GcHead`.
///
/// # Safety
/// `g` is the head of a live GC object; the collection is in its refs phase.
#[inline(always)]
pub(crate) unsafe fn decref_gc(g: Head) {
    // SAFETY: caller's contract.
    unsafe {
        // Saturate: a traverse visiting more references than exist must not wrap.
        if (*g).prev & PREV_COLLECTING != 0 && gc_refs(g) > 0 {
            (*g).prev -= 1 << PREV_SHIFT;
        }
    }
}

/// `move_unreachable`'s state, shared with `visit_reachable`.
pub(crate) struct Reach {
    young: Head,
    /// Objects moved back from the unreachable list.
    revived: usize,
}

impl Reach {
    /// The state for a scan of `young`.
    pub(crate) fn new(young: Head) -> Reach {
        Reach { young, revived: 0 }
    }

    /// Objects moved back from the unreachable list so far.
    pub(crate) fn revived(&self) -> usize {
        self.revived
    }
}

/// `move_unreachable`'s visit: `obj` is referenced from a reachable object.
///
/// # Safety
/// `obj` is null (skipped) or a live object; `arg` is `move_unreachable`'s [`Reach`].
pub(crate) unsafe extern "C" fn visit_reachable(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    // SAFETY: caller's contract; GC objects have a head.
    unsafe {
        if !obj.is_null() && type_of(obj).is_gc() {
            reach_gc(as_gc(obj), arg);
        }
    }
    0
}

/// `visit_reachable` on an object known to have a `GcHead`.
///
/// # Safety
/// `g` is the head of a live GC object; `arg` is `move_unreachable`'s [`Reach`].
#[inline(always)]
pub(crate) unsafe fn reach_gc(g: Head, arg: *mut c_void) {
    // SAFETY: arg is move_unreachable's Reach.
    let reach = unsafe { &mut *(arg as *mut Reach) };
    let reachable = reach.young;
    // SAFETY: g is the head of a live GC object; `reachable` is move_unreachable's young list.
    unsafe {
        if (*g).prev & PREV_COLLECTING == 0 {
            return;
        }
        if (*g).next & NEXT_UNREACHABLE != 0 {
            // Tentatively unreachable, but reachable after all: back to young's tail, where
            // move_unreachable will scan it again.
            let p = prev(g);
            let n = ((*g).next & !NEXT_UNREACHABLE) as Head;
            (*p).next = (*g).next; // keeps the UNREACHABLE bit of p's link
            set_prev(n, p);
            list::append(g, reachable);
            set_refs(g, 1);
            reach.revived += 1;
        } else if gc_refs(g) == 0 {
            // Not scanned yet: tell move_unreachable it is reachable.
            set_refs(g, 1);
        }
    }
}
