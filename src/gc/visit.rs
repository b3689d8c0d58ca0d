//! The collector's two gc_refs visits, shared by the collector (`collect.rs`, through C
//! `traverse` functions) and by Rust `trace` code (`Tracer`, which inlines them).
//!
//! | item                                  | phase              | does to a referent `g`              |
//! |---------------------------------------|--------------------|-------------------------------------|
//! | `visit_decref` / `decref_gc`          | `subtract_refs`    | gc_refs -= 1 if COLLECTING and > 0  |
//! | `visit_decref_all` / `decref_all_gc`  | `update_and_subtract_refs` (full collections) | first sight: gc_refs = refcnt, COLLECTING; then as `decref_gc` |
//! | `visit_reachable` / `reach_gc`, `Reach` | `move_unreachable` | back from `unreachable` to `young`, or gc_refs 0 -> 1 |
//! | `gc_refs`, `set_refs`                 | both               | read / write the count in `prev`    |
//! | `decref_marker`, `decref_all_marker`  | both decref visits | the `arg` that names the visit      |
//! | `init_refs`                           | `update_refs` and the fused pass | gc_refs = refcnt, COLLECTING |
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
//! - Objects outside the set (no `PREV_COLLECTING`) are never written, with one exception by
//!   design: the fused pass of a full collection (`visit_decref_all`), whose set is every
//!   tracked object of the runtime (the collector uses it only when the permanent generation is
//!   empty), initializes a tracked referent it sees first (`next != 0`, no `PREV_COLLECTING`):
//!   that referent is in the set and would have been initialized by `update_refs` anyway.
//! - The inlined forms do exactly what the visit functions do for a GC referent: `Tracer`
//!   recognises the decref visit by [`decref_marker`] and the reachable one by its address.
//!
//! May touch: `list.rs` (moving a node back to `young`), the `GcHead`s of the collected set.

use core::ffi::{c_int, c_void};

use super::list::{self, Head, prev, set_prev};
use crate::object::{
    NEXT_UNREACHABLE, ObjectHeader, PREV_COLLECTING, PREV_FLAGS, PREV_SHIFT, PREV_STICKY, as_gc,
    from_gc, type_of,
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
static DECREF_ALL_MARKER: u8 = 0;

/// `update_refs` on one node: gc_refs = refcount (a dying object's count reads as 0), and
/// `PREV_COLLECTING` set; the sticky flags kept, the prev pointer dropped (`move_unreachable`
/// rebuilds it from the next links).
///
/// # Safety
/// `g` is the head of a live tracked object of the set being collected, outside the refs phase.
#[inline(always)]
pub(crate) unsafe fn init_refs(g: Head) {
    // SAFETY: caller's contract; the header follows the head.
    unsafe {
        let refcnt = (*from_gc(g)).refcnt.max(0) as usize;
        (*g).prev = ((*g).prev & PREV_STICKY) | PREV_COLLECTING | (refcnt << PREV_SHIFT);
    }
}

/// The fused pass's visit (`update_and_subtract_refs`, full collections only): `obj` is
/// referenced from inside the set, which holds every tracked object of the runtime.
///
/// # Safety
/// As [`visit_decref`], and the set being collected is every tracked object of the runtime,
/// in the fused pass (see the module invariants).
pub(crate) unsafe extern "C" fn visit_decref_all(obj: *mut ObjectHeader, _: *mut c_void) -> c_int {
    // SAFETY: caller's contract; GC objects have a head.
    unsafe {
        if !obj.is_null() && type_of(obj).is_gc() {
            decref_all_gc(as_gc(obj));
        }
    }
    0
}

/// The `arg` the fused pass passes with `visit_decref_all` (as [`decref_marker`]).
#[inline(always)]
pub(crate) fn decref_all_marker() -> *mut c_void {
    &DECREF_ALL_MARKER as *const u8 as *mut c_void
}

/// `visit_decref_all` on an object known to have a `GcHead`.
///
/// # Safety
/// As [`visit_decref_all`], for the head `g` of a live GC object.
#[inline(always)]
pub(crate) unsafe fn decref_all_gc(g: Head) {
    // SAFETY: caller's contract: a tracked referent not yet seen is in the set.
    unsafe {
        let prev = (*g).prev;
        if prev & PREV_COLLECTING == 0 {
            if (*g).next == 0 {
                return; // untracked: not in the set
            }
            init_refs(g);
            note_fused_init();
        }
        if gc_refs(g) > 0 {
            (*g).prev -= 1 << PREV_SHIFT;
        }
    }
}

#[cfg(debug_assertions)]
std::thread_local! {
    /// Debug builds: objects the fused pass initialized, so the collector can check that it
    /// initialized exactly the objects of its list (none outside the set).
    static FUSED_INITS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Count one initialization of the fused pass (debug builds).
#[inline(always)]
pub(crate) fn note_fused_init() {
    #[cfg(debug_assertions)]
    FUSED_INITS.with(|c| c.set(c.get() + 1));
}

/// Debug builds: the initializations counted since the last call (reset to 0); release: 0.
pub(crate) fn take_fused_inits() -> usize {
    #[cfg(debug_assertions)]
    return FUSED_INITS.with(|c| c.replace(0));
    #[cfg(not(debug_assertions))]
    0
}

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
