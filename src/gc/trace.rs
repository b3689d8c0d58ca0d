//! `Tracer`: what a [`Trace`](crate::gc::Trace) impl reports its references to. The collector
//! (and `get_referrers` / `get_referents`) builds one around a C-style visit procedure and its
//! `arg`; the Rust object's `traverse` trampoline (`handle.rs`) hands it to `Trace::trace`.
//!
//! | tracer kind | recognised by                              | a `Gc`/`Weak` referent goes to  |
//! |-------------|--------------------------------------------|---------------------------------|
//! | `Decref`    | `arg == visit::decref_marker()`            | `visit::decref_gc` (inlined)    |
//! | `DecrefAll` | `arg == visit::decref_all_marker()`        | `visit::decref_all_gc` (inlined) |
//! | `Reachable` | `visit == visit::visit_reachable`          | `visit::reach_gc` (inlined)     |
//! | `TypeQuery` | `arg == type_query_marker()`               | nothing: a Rust `traverse` answers with its `TypeId` and value instead of tracing (`ask_type`) |
//! | `Other`     | anything else                              | `visit(obj, arg)`               |
//!
//! The type query is how code that holds only an object pointer reaches the Rust type behind it
//! (a `Gc<T>`'s `TypeObject` is a constant, and constants are not unique per `T` across codegen
//! units, so its address cannot name the type): `repr.rs` uses it to find the `Debug` hook of
//! a value. It is tested after the collector's two kinds, so a collection never pays for it.
//!
//! # Invariants
//!
//! - The inlined kinds do exactly what their visit procedure does for a GC referent (both live
//!   in `visit.rs`); a referent not known to be a GC object (an `AnyGc`) always goes through
//!   the visit procedure, which checks its type.
//! - `Tracer::visit` takes any [`Edge`]: a handle owning one counted reference. The trait is
//!   sealed, so the object it yields is live and, for `Edge::GC_OBJECT`, has a `GcHead`.
//!
//! May touch: `visit.rs`, `any.rs` (the `Edge` trait), the object layer's `traverse`. Nothing
//! else of `gc`: the `Trace` trait and the handles live in `handle.rs`, the impls for std types
//! in `cell.rs`.

use core::any::TypeId;
use core::cell::Cell;
use core::ffi::{c_int, c_void};

use super::any::Edge;
use super::visit::{
    decref_all_gc, decref_all_marker, decref_gc, decref_marker, reach_gc, visit_reachable,
};
use crate::object::{self, ObjectHeader, VisitProc, as_gc};

/// Which visit procedure a tracer runs: the collector's own three are inlined into `trace`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Decref,
    DecrefAll,
    Reachable,
    TypeQuery,
    Other,
}

static TYPE_QUERY_MARKER: u8 = 0;

thread_local! {
    /// The answer of the last type query on this thread: the value's `TypeId` and address.
    static TYPE_ANSWER: Cell<Option<(TypeId, *const ())>> = const { Cell::new(None) };
}

/// The `arg` of a type query.
#[inline(always)]
fn type_query_marker() -> *mut c_void {
    &TYPE_QUERY_MARKER as *const u8 as *mut c_void
}

unsafe extern "C" fn visit_nothing(_: *mut ObjectHeader, _: *mut c_void) -> c_int {
    0
}

/// The Rust type behind `obj` and its value's address: `Some` for a `Gc<T>` whose value is not
/// cleared, `None` for any other object (C types' `traverse` just visit nothing here).
///
/// # Safety
/// `obj` is a live object. The address is valid while the object lives and is not cleared.
pub(crate) unsafe fn ask_type(obj: *mut ObjectHeader) -> Option<(TypeId, *const ())> {
    TYPE_ANSWER.with(|a| a.set(None));
    // SAFETY: caller's contract; visit_nothing accepts any arg.
    unsafe { object::traverse(obj, visit_nothing, type_query_marker()) };
    TYPE_ANSWER.with(|a| a.take())
}

/// Receives the references found by [`Trace::trace`](crate::gc::Trace::trace).
pub struct Tracer {
    visit: VisitProc,
    arg: *mut c_void,
    kind: Kind,
}

impl Tracer {
    #[inline(always)]
    pub(crate) fn new(visit: VisitProc, arg: *mut c_void) -> Tracer {
        // The collector's kinds first: the two every collection runs, then the fused pass of
        // full collections.
        let kind = if arg == decref_marker() {
            Kind::Decref
        } else if core::ptr::fn_addr_eq(visit, visit_reachable as VisitProc) {
            Kind::Reachable
        } else if arg == decref_all_marker() {
            Kind::DecrefAll
        } else if arg == type_query_marker() {
            Kind::TypeQuery
        } else {
            Kind::Other
        };
        Tracer { visit, arg, kind }
    }

    /// Whether this traversal is a type query: the Rust `traverse` then calls
    /// [`answer_type_query`](Tracer::answer_type_query) instead of tracing.
    #[inline(always)]
    pub(crate) fn is_type_query(&self) -> bool {
        self.kind == Kind::TypeQuery
    }

    /// Answer a type query with the value's type and address.
    #[cold]
    pub(crate) fn answer_type_query(&self, id: TypeId, value: *const ()) {
        TYPE_ANSWER.with(|a| a.set(Some((id, value))));
    }

    /// Visit a referent known to be a GC object (a `Gc` or weakref object).
    ///
    /// # Safety
    /// `obj` is a live GC object the value being traced owns a reference to.
    #[inline(always)]
    unsafe fn visit_gc(&mut self, obj: *mut ObjectHeader) {
        // SAFETY: caller's contract; the kinds are the collector's visit procs minus their
        // type check; others accept any live object.
        unsafe {
            match self.kind {
                Kind::Decref => decref_gc(as_gc(obj)),
                Kind::DecrefAll => decref_all_gc(as_gc(obj)),
                Kind::Reachable => reach_gc(as_gc(obj), self.arg),
                Kind::TypeQuery | Kind::Other => {
                    (self.visit)(obj, self.arg);
                }
            }
        }
    }

    /// Report a reference the value owns: a `Gc<T>`, a `Weak<T>` (its weakref object) or an
    /// `AnyGc`.
    #[inline(always)]
    pub fn visit<R: Edge>(&mut self, r: &R) {
        let obj = r.edge_object();
        if R::GC_OBJECT {
            // SAFETY: Edge is sealed: a GC_OBJECT handle yields a live GC object it owns.
            unsafe { self.visit_gc(obj) };
        } else {
            // SAFETY: a live object the handle owns; every visit procedure accepts any live
            // object (the collector's check its type).
            unsafe { (self.visit)(obj, self.arg) };
        }
    }

    /// Report a weak reference handle (the weakref object it owns). The same as
    /// [`visit`](Tracer::visit), kept so that traces can say which kind of handle they report.
    #[inline(always)]
    pub fn visit_weak<R: Edge>(&mut self, w: &R) {
        self.visit(w);
    }
}
