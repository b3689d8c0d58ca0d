//! Panics in Rust code that the library runs behind an `extern "C"` type function, where no
//! panic can unwind: the rule, as one function ([`contain`]) every such trampoline runs its
//! user code in.
//!
//! | user code run by                          | a panic there, during a collection | outside one       |
//! |-------------------------------------------|------------------------------------|-------------------|
//! | `clear` (the collector breaking a cycle: the value's `Drop`, and every `Drop` the references it drops run) | held; the collection finishes; resumed from the call that ran it | - |
//! | a type's `dealloc` (`Drop` of a value freed through `AnyGc`, C's `agc_decref`, the trashcan's deferred objects, the collector's own references) | held, resumed as above | abort, naming the object |
//! | a PEP 442 finalizer, a legacy del         | held, resumed as above             | abort, naming the object |
//! | the `Drop` of a weakref callback (`clear`, `dealloc` of the weakref) | held, resumed as above | abort, naming the object |
//! | `Drop` of a `Gc` dropped directly (no trampoline) | unwinds through the drop, as any `Drop` | the same (the object leaks) |
//! | a Rust weakref callback                   | abort (`weakref.rs`)                | abort             |
//! | `Trace::trace` (a `traverse`)             | abort (Rust's: no unwinding out of `extern "C"`) | the same |
//! | a gc callback                             | unwinds out of `collect` after the collection (`schedule.rs`) | - |
//!
//! "Held" means: the trampoline catches the panic (the value's remaining fields are dropped by
//! the unwinding, as always), prints one line naming the object, and stores the payload in the
//! runtime ([`GcState::pending_panic`]); the collection goes on, and when it has finished and
//! its `collecting` mark is reset, `schedule::run_collection` resumes the first held panic with
//! its own payload: `gc::collect` panics with it, or the allocation that ran an automatic
//! collection (`Gc::new`, `Gc::downgrade`, C's `agc_new`, which turns it into an error). Later
//! panics of the same collection are printed and dropped (their payloads leaked, since a
//! payload's own `Drop` could panic again). The object whose `Drop` panicked leaks.
//!
//! The typical case is a `Drop` that dereferences a `Gc` whose value the collector already
//! cleared ("Gc value used after the cycle collector cleared it"): catching it after the
//! collection is what makes it testable, and `Gc::try_get` is the way not to panic.
//!
//! Outside a collection there is no place to resume: the trampoline was called by the object
//! layer or by C, through an `extern "C"` function pointer. It aborts with a message naming
//! the object and this rule.
//!
//! # Invariants
//!
//! - No panic leaves a function of this crate that C or the object layer calls through a
//!   `TypeObject` pointer.
//! - `pending_panic` is `Some` only while a collection runs (from the first held panic until
//!   `run_collection` resumes it), or is emptied by the collection's guard when it unwinds.
//!
//! May touch: `runtime.rs` (the state), `diag.rs`.

use core::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::diag::{abort_with, gc_eprintln};
use super::runtime::{GcState, current};
use crate::object::{ObjectHeader, type_of};

/// Run `f`, the user code a trampoline runs for `obj` (`what` names it: "the Drop of the
/// value", "the finalizer"), so that a panic in it follows the rule above.
///
/// # Safety
/// `obj`'s memory and type stay there through the call, panic or not (it is read to name the
/// object; a panicking `Drop` leaks its object, so this holds for every trampoline).
#[inline(always)]
pub(crate) unsafe fn contain(obj: *mut ObjectHeader, what: &'static str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        // SAFETY: the caller's contract.
        unsafe { caught(obj, what, payload) };
    }
}

/// # Safety
/// As [`contain`].
#[cold]
#[inline(never)]
unsafe fn caught(obj: *mut ObjectHeader, what: &'static str, payload: Box<dyn Any + Send>) {
    // SAFETY: the object's memory is still there (a panicking Drop leaks its object) and its
    // type outlives it.
    let name = unsafe { type_of(obj).name_str() };
    let st = current();
    if !st.collecting.get() {
        // Dropping the payload could panic again.
        core::mem::forget(payload);
        abort_with(format_args!(
            "{what} of <{name} at {obj:p}> panicked, and it was called through a type's \
             extern \"C\" function (a dealloc, a finalizer, a del) where nothing can unwind; \
             only a collection can hold such a panic and resume it when it ends (see \
             gc::collect)"
        ));
    }
    match st.pending_panic.take() {
        None => {
            gc_eprintln!(
                "gc: {what} of <{name} at {obj:p}> panicked during a collection; the panic \
                 resumes when the collection has finished"
            );
            st.pending_panic.set(Some(payload));
        }
        Some(first) => {
            gc_eprintln!(
                "gc: {what} of <{name} at {obj:p}> panicked too during the same collection; \
                 only the first panic resumes"
            );
            st.pending_panic.set(Some(first));
            core::mem::forget(payload);
        }
    }
}

/// After a collection has finished and its mark is reset: resume the first panic its user code
/// raised, if any.
#[inline]
pub(crate) fn resume_pending(st: &GcState) {
    if let Some(payload) = st.pending_panic.take() {
        resume_unwind(payload);
    }
}

/// A collection unwinds (a gc callback panicked): a held panic is dropped (leaked: its payload's
/// `Drop` could panic while unwinding), with a line saying so.
pub(crate) fn discard_pending(st: &GcState) {
    if let Some(payload) = st.pending_panic.take() {
        gc_eprintln!("gc: a panic held during the collection is dropped: another one unwinds");
        core::mem::forget(payload);
    }
}
