//! The deallocation protocol: what happens to an object whose count reached zero, one set of
//! steps for Rust objects (`Gc<T>`'s `dealloc`, `handle.rs`) and C objects (a C type's
//! `dealloc` calling `agc_finalize_from_dealloc`, `agc_clear_weakrefs`, `agc_object_del`,
//! through `gc::raw`) alike, so the two cannot drift.
//!
//! ```text
//!  count reaches 0 ─> object::dealloc / dealloc_with (the trashcan: nesting <= TRASH_LIMIT,
//!                     deeper ones put off to the outermost deallocation, on every path)
//!    └─> the type's dealloc:
//!          1. finalize_once   PEP 442 finalizer, at most once per object (GC objects remember:
//!                             PREV_FINALIZED), a reference lent; resurrected -> stop
//!             legacy_del      (Rust types with LEGACY_DEL) every time; resurrected -> stop
//!          2. release:  untrack ─> clear weakrefs, run their callbacks ─> drop the payload
//!                       ─> free the memory, uncount from generation 0
//! ```
//!
//! | step            | Rust `Gc<T>` (`handle.rs`)          | C (`gc::raw`, the C ABI)                   |
//! |-----------------|-------------------------------------|--------------------------------------------|
//! | finalize once   | `finalize_once` (unless cleared)    | `finalize_from_dealloc` -> `finalize_once` |
//! | legacy del      | `legacy_del` (unless cleared)       | the C type's own business                  |
//! | clear weakrefs  | `release`                           | `clear_weakrefs`, and `release`            |
//! | payload         | `release`'s `drop_payload`: the value | the C `dealloc` drops its references before `agc_object_del` |
//! | untrack, free, uncount | `release`                    | `del_object` -> `release`; `free_object`   |
//!
//! Each step takes the object's type as a parameter: the Rust path passes its compile-time
//! `TypeObject`, so every test on it (GC? weakref slot? finalizer?) folds away; the C path
//! passes `type_of(obj)`.
//!
//! # Invariants
//!
//! - The object's count is 0 throughout (a step lending a reference restores it), so weak
//!   references read it as dying and nobody can revive it.
//! - A finalizer runs at most once per GC object; while it (or a legacy del) runs, the object
//!   is tracked in generation 0 (the trashcan untracks what it puts off), so an object it
//!   resurrects is collectable.
//! - Weakrefs are cleared before the memory goes; generation 0 is uncounted exactly once per
//!   freed GC object, when its memory goes.
//! - A deallocation is library-run code (the trashcan's depth marks it): runtimes do not
//!   switch meanwhile, so `current()` is the object's runtime throughout.
//!
//! May touch: `list.rs`, `runtime.rs` (generation 0, counts), `weakref.rs` (clearing).

use super::list;
use super::runtime::{GcState, current};
use super::weakref;
use crate::object::{
    self, DestructorProc, ObjectHeader, PREV_FINALIZED, PREV_HAS_WEAKREFS, TypeObject,
    WEAKLIST_SIDE_TABLE, as_gc, type_of, weaklist_slot,
};

/// Step 1 (PEP 442): run `finalize` on `obj` unless it ran before (GC objects remember), lending
/// `obj` one reference; true when the finalizer resurrected it (the caller stops).
///
/// # Safety
/// `obj` is live with refcount 0, of type `ty`, in its deallocation; `finalize` accepts it.
#[inline(always)]
pub(crate) unsafe fn finalize_once(
    st: &GcState,
    obj: *mut ObjectHeader,
    ty: &TypeObject,
    finalize: DestructorProc,
) -> bool {
    // SAFETY: caller's contract; GC objects have a head.
    unsafe {
        if ty.is_gc() {
            let g = as_gc(obj);
            if (*g).prev & PREV_FINALIZED != 0 {
                return false;
            }
            (*g).prev |= PREV_FINALIZED;
        }
        lend(st, obj, ty, finalize)
    }
}

/// Step 1b: run a legacy finalizer (`__del__`), which runs each time the count drops to zero,
/// lending `obj` one reference; true when it resurrected `obj`.
///
/// # Safety
/// As [`finalize_once`].
#[inline(always)]
pub(crate) unsafe fn legacy_del(
    st: &GcState,
    obj: *mut ObjectHeader,
    ty: &TypeObject,
    del: DestructorProc,
) -> bool {
    // SAFETY: caller's contract.
    unsafe { lend(st, obj, ty, del) }
}

/// Call `f` on `obj` (count 0) with a lent reference; a GC object is tracked in generation 0
/// while user code can see it. True when `f` kept a reference.
///
/// # Safety
/// As [`finalize_once`].
#[inline]
unsafe fn lend(st: &GcState, obj: *mut ObjectHeader, ty: &TypeObject, f: DestructorProc) -> bool {
    // SAFETY: caller's contract; a GC object's head is on a list of st or untracked.
    unsafe {
        if ty.is_gc() {
            list::track(as_gc(obj), st.gen_head(0));
        }
        object::call_lending_reference(obj, f)
    }
}

/// Whether `obj` (of type `ty`) may have weak references: a non-empty weaklist slot, or the
/// side-table flag. Cheap: no table lookup.
///
/// # Safety
/// `obj` is live, of type `ty`.
#[inline(always)]
unsafe fn may_have_weakrefs(obj: *mut ObjectHeader, ty: &TypeObject) -> bool {
    // SAFETY: caller's contract; the slot is inside the object; GC objects have a head.
    unsafe {
        if ty.weaklist_offset > 0 {
            !(*weaklist_slot(obj)).is_null()
        } else {
            ty.weaklist_offset == WEAKLIST_SIDE_TABLE
                && ty.is_gc()
                && (*as_gc(obj)).prev & PREV_HAS_WEAKREFS != 0
        }
    }
}

/// The weakref step on its own: clear every weak reference to the dying `obj`, then run their
/// callbacks (`agc_clear_weakrefs`, for a C `dealloc` that wants them gone early).
///
/// # Safety
/// `obj` is live and about to be freed, of the current runtime.
pub(crate) unsafe fn clear_weakrefs(obj: *mut ObjectHeader) {
    // SAFETY: caller's contract.
    unsafe {
        if may_have_weakrefs(obj, type_of(obj)) {
            weakref::clear_weakrefs(obj);
        }
    }
}

/// Step 2, the end of every deallocation: untrack `obj`, clear its weak references (running
/// their callbacks), `drop_payload()`, free its memory and uncount it from generation 0.
///
/// # Safety
/// `obj` is live with refcount 0, of type `ty`, from `object_alloc*` under `st`, and not used
/// again; `drop_payload` drops what the payload owns (or nothing, when the caller did).
#[inline(always)]
pub(crate) unsafe fn release(
    st: &GcState,
    obj: *mut ObjectHeader,
    ty: &TypeObject,
    drop_payload: impl FnOnce(),
) {
    // SAFETY: caller's contract.
    unsafe {
        if ty.is_gc() {
            list::untrack(as_gc(obj));
        }
        if may_have_weakrefs(obj, ty) {
            weakref::clear_weakrefs(obj);
        }
        drop_payload();
        free(st, obj, ty);
    }
}

/// The last step alone: free `obj`'s memory, uncounting a GC object from generation 0
/// (CPython's `PyObject_GC_Del`).
///
/// # Safety
/// `obj` is untracked, of type `ty`, from `object_alloc*` under `st`, and not used again.
#[inline(always)]
pub(crate) unsafe fn free(st: &GcState, obj: *mut ObjectHeader, ty: &TypeObject) {
    // Counted first: the runtime is then not needed across the call that frees.
    if ty.is_gc() {
        st.note_free();
    }
    // SAFETY: caller's contract (`ty` is obj's type).
    unsafe { object::object_free_as(obj, ty) };
}

/// `agc_finalize_from_dealloc`: step 1 for an object whose type may have a finalizer.
///
/// # Safety
/// `obj` is live with refcount 0, in its type's `dealloc`, of the current runtime.
pub(crate) unsafe fn finalize_from_dealloc(obj: *mut ObjectHeader) -> bool {
    // SAFETY: caller's contract.
    unsafe {
        let ty = type_of(obj);
        match ty.finalize {
            Some(f) => finalize_once(current(), obj, ty, f),
            None => false,
        }
    }
}

/// `agc_object_del`: step 2 for an object whose `dealloc` dropped its references already.
///
/// # Safety
/// As [`release`], with the current runtime, the object's own type and nothing left to drop.
pub(crate) unsafe fn del_object(obj: *mut ObjectHeader) {
    // SAFETY: caller's contract.
    unsafe { release(current(), obj, type_of(obj), || {}) }
}

/// `free`, with the current runtime and the object's own type.
///
/// # Safety
/// As [`free`].
pub(crate) unsafe fn free_object(obj: *mut ObjectHeader) {
    // SAFETY: caller's contract.
    unsafe { free(current(), obj, type_of(obj)) }
}
