//! The generational cycle collector and its `gc`-module surface (CPython's `Modules/gcmodule.c`
//! and `Python/gc.c`, rebuilt). This file is the front door: the public functions, the `raw`
//! API for C-style callers, the re-exports; every other file is below it and none reaches up.
//!
//! ```text
//!  handle.rs  Trace, Gc<T: ?Sized> (dyn: handle/unsize.rs), Weakcell.rs  GcCell, std impls
//!     │ new: count, maybe collect, track in gen 0      │ drop to 0: the trashcan (object layer)
//!     v                                                v
//!  schedule.rs  counts, thresholds, automatic      dealloc.rs  the deallocation protocol:
//!     │         collection, gc callbacks              │        finalize once, untrack, weakrefs,
//!     v                                               │        free + uncount (Rust and C alike)
//!  collect.rs  update_refs -> subtract_refs -> move_unreachable -> legacy finalizers ->
//!     │        weakrefs -> finalizers -> resurrection -> clear
//!     v                                               v
//!  weakref.rs  weakref objects, clearing, callbacks   trace.rs  Tracer ──> visit.rs  the
//!     v                                                           gc_refs visits (shared)
//!  runtime.rs  GcState, current() (TLS word RUNTIME), Runtime / AttachGuard, the re-entrancy rule
//!     v
//!  floor: list.rs (intrusive lists) · any.rs (AnyGc, AsObject, Edge) · diag.rs (GcError,
//!         DEBUG_*, gc_eprintln!, abort_with)
//! ```
//!
//! Each file lists what it may touch; the use graph among them has no circle
//! (`tests/architecture.rs` checks it). Tunables are in `crate::config` (re-exported here:
//! `NUM_GENERATIONS`, `DEFAULT_THRESHOLDS`, `TRASH_LIMIT`).
//!
//! # Invariants
//!
//! - Every function here acts on the calling thread's *current* runtime (the attached
//!   explicit [`Runtime`], else the thread's default one). Tests running on different threads
//!   therefore never see each other's objects, counts or stats.
//! - A collection is never re-entered: `collect` called while one runs (from a finalizer, a
//!   weakref callback or a gc callback) returns `Ok(0)` at once.
//! - Objects are freed only when their count reaches zero; the collector only *clears* garbage
//!   (drops the references it holds), which lets reference counting free it.
//! - A finalizer runs at most once per object; objects reachable from a legacy finalizer are
//!   never cleared; weakrefs to garbage are all cleared before any of their callbacks runs.
//! - The runtime does not switch while the library runs user code on the thread (see
//!   `runtime.rs`): `Runtime::try_attach` and [`check_runtime_switch`] refuse, `attach` panics.

mod any;
mod cell;
mod census;
mod collect;
mod dealloc;
mod deduce;
mod diag;
mod dot;
mod handle;
mod leak;
mod list;
mod path;
mod repr;
mod runtime;
mod schedule;
mod trace;
mod unwind;
mod visit;
mod walk;
mod weak;
mod weakref;

use core::cell::RefCell;
use core::ffi::{c_int, c_void};
use std::rc::Rc;

pub use crate::config::{DEFAULT_THRESHOLDS, NUM_GENERATIONS, REPR_MAX_BYTES, TRASH_LIMIT};
pub use any::{AnyGc, AsObject, Edge};
pub use cell::GcCell;
pub use census::{TypeCount, TypeGrowth, type_counts, type_growth};
pub use diag::{
    DEBUG_COLLECTABLE, DEBUG_LEAK, DEBUG_SAVEALL, DEBUG_STATS, DEBUG_UNCOLLECTABLE, GcError,
};
pub use dot::{dot_backrefs, dot_refs};
pub use handle::{Gc, GcBox, Trace};
pub use leak::{LeakGroup, LeakReport, leak_report};
pub use list::gc_list_is_valid;
pub use path::{Backrefs, PathTo, path_to};
pub use repr::{ReprHook, repr, set_repr, set_repr_debug};
pub use runtime::{AttachGuard, CallbackInfo, GenStats, Phase, Runtime, check_runtime_switch};
pub use trace::Tracer;
pub use weak::Weak;
pub use weakref::{TracedCallback, WEAKREF_TYPE, WeakCallback};

use crate::object::{self, ObjectHeader, as_gc, from_gc, type_of};
use list::Head;
use runtime::{UserCode, current};

fn check_gen(generation: usize) -> Result<(), GcError> {
    if generation < NUM_GENERATIONS {
        Ok(())
    } else {
        Err(GcError::InvalidGeneration(generation))
    }
}

/// Collect `generation` and all younger ones; returns collected + uncollectable objects.
/// Returns `Ok(0)` when called while a collection runs, `Err(GcError::InvalidGeneration)` for
/// a generation above 2. [`collect_all`] is CPython's `gc.collect()` with no argument.
///
/// # Panics
///
/// Resumes the first panic that user code raised behind a type function during this
/// collection: a `Drop` of a value the collector cleared or freed (typically one that
/// dereferences a partner of the same cycle already cleared), a finalizer, a legacy del, the
/// drop of a weakref callback. The collection finishes first (every list consistent, the
/// statistics and callbacks done), then the panic continues from here with its own payload,
/// where `catch_unwind` can take it; the object whose code panicked leaks. Later panics of the
/// same collection are printed and dropped. A panic in a gc callback unwinds from here too. The
/// same panics outside a collection abort, naming the object (the table: `src/gc/unwind.rs`).
pub fn collect(generation: usize) -> Result<usize, GcError> {
    check_gen(generation)?;
    let st = current();
    if st.collecting.get() {
        return Ok(0);
    }
    Ok(schedule::run_collection(st, generation))
}

/// A full collection (`gc.collect()`): every generation; returns collected + uncollectable
/// objects (0 when called while a collection runs). Panics as [`collect`] does.
pub fn collect_all() -> usize {
    collect(NUM_GENERATIONS - 1).unwrap_or(0)
}

/// Turn automatic collection on.
pub fn enable() {
    current().enabled.set(true);
}

/// Turn automatic collection off (`collect` still works).
pub fn disable() {
    current().enabled.set(false);
}

/// Whether automatic collection is on.
pub fn is_enabled() -> bool {
    current().enabled.get()
}

/// The counts of generations 0, 1, 2.
pub fn get_count() -> (usize, usize, usize) {
    let g = &current().gens;
    (g[0].count.get(), g[1].count.get(), g[2].count.get())
}

/// The thresholds of generations 0, 1, 2.
pub fn get_threshold() -> (usize, usize, usize) {
    let g = &current().gens;
    (
        g[0].threshold.get(),
        g[1].threshold.get(),
        g[2].threshold.get(),
    )
}

/// Set the thresholds (threshold0 = 0 turns automatic collection off).
pub fn set_threshold(threshold0: usize, threshold1: usize, threshold2: usize) {
    let g = &current().gens;
    g[0].threshold.set(threshold0);
    g[1].threshold.set(threshold1);
    g[2].threshold.set(threshold2);
}

/// Statistics per generation since the runtime started.
pub fn get_stats() -> [GenStats; NUM_GENERATIONS] {
    let s = &current().stats;
    [s[0].get(), s[1].get(), s[2].get()]
}

unsafe fn objects_of(l: Head, out: &mut Vec<AnyGc>) {
    // SAFETY: l is a valid list of live objects of the current runtime.
    unsafe {
        list::for_each(l, |g| out.push(AnyGc::from_borrowed(from_gc(g))));
    }
}

/// The objects tracked in `generation`, or in all generations (not the permanent one) for
/// `None`.
pub fn get_objects(generation: Option<usize>) -> Result<Vec<AnyGc>, GcError> {
    let st = current();
    let mut out = Vec::new();
    let gens = match generation {
        Some(g) => {
            check_gen(g)?;
            g..g + 1
        }
        None => 0..NUM_GENERATIONS,
    };
    for g in gens {
        // SAFETY: generation lists of the current runtime.
        unsafe { objects_of(st.gen_head(g), &mut out) };
    }
    Ok(out)
}

unsafe extern "C" fn visit_find(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    // SAFETY: arg is the (target, found) pair of get_referrers.
    let (target, found) = unsafe { &mut *(arg as *mut (*mut ObjectHeader, bool)) };
    if obj == *target {
        *found = true;
    }
    0
}

unsafe extern "C" fn visit_collect(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    if !obj.is_null() {
        // SAFETY: arg is get_referents' vector.
        unsafe { (*(arg as *mut Vec<*mut ObjectHeader>)).push(obj) };
    }
    0
}

/// The tracked objects (in generations 0..=2) that refer to `obj` directly.
pub fn get_referrers(obj: &impl AsObject) -> Vec<AnyGc> {
    let st = current();
    let target = obj.as_object();
    let mut out = Vec::new();
    // Traverse functions are user code (C types').
    let _user_code = UserCode::enter();
    for i in 0..NUM_GENERATIONS {
        let l = st.gen_head(i);
        // SAFETY: generation lists hold live objects; traverse only reports.
        unsafe {
            list::for_each(l, |g| {
                let o = from_gc(g);
                let mut probe = (target, false);
                object::traverse(o, visit_find, &mut probe as *mut _ as *mut c_void);
                if probe.1 {
                    out.push(AnyGc::from_borrowed(o));
                }
            });
        }
    }
    out
}

/// The objects `obj` refers to directly (one entry per reference).
pub fn get_referents(obj: &impl AsObject) -> Vec<AnyGc> {
    let o = obj.as_object();
    let mut found: Vec<*mut ObjectHeader> = Vec::new();
    let user_code = UserCode::enter();
    // SAFETY: o is live; the visited referents are live while o is.
    unsafe {
        object::traverse(o, visit_collect, &mut found as *mut _ as *mut c_void);
        drop(user_code);
        found.into_iter().map(|r| AnyGc::from_borrowed(r)).collect()
    }
}

/// Whether `obj` is tracked by the collector.
pub fn is_tracked(obj: &impl AsObject) -> bool {
    // SAFETY: live object.
    unsafe { object::is_tracked(obj.as_object()) }
}

/// Whether the finalizer of `obj` has run.
pub fn is_finalized(obj: &impl AsObject) -> bool {
    // SAFETY: live object.
    unsafe { object::is_finalized(obj.as_object()) }
}

/// Number of weak references to `obj`.
pub fn getweakrefcount(obj: &impl AsObject) -> usize {
    // SAFETY: live object.
    unsafe { weakref::getweakrefcount(obj.as_object()) }
}

/// Move every tracked object to the permanent generation (ignored by collections).
pub fn freeze() {
    let st = current();
    for i in 0..NUM_GENERATIONS {
        // SAFETY: distinct lists of the current runtime.
        unsafe { list::merge(st.gen_head(i), st.permanent.get()) };
    }
    st.gens[0].count.set(0);
}

/// Move the permanent generation back into the oldest generation.
pub fn unfreeze() {
    let st = current();
    // SAFETY: distinct lists of the current runtime.
    unsafe { list::merge(st.permanent.get(), st.gen_head(NUM_GENERATIONS - 1)) };
}

/// Number of objects in the permanent generation.
pub fn get_freeze_count() -> usize {
    // SAFETY: a list of the current runtime.
    unsafe { list::size(current().permanent.get()) }
}

/// Set the `DEBUG_*` flags.
pub fn set_debug(flags: u32) {
    current().debug.set(flags);
}

/// The `DEBUG_*` flags.
pub fn get_debug() -> u32 {
    current().debug.get()
}

/// References to the objects in `garbage` (uncollectable, or everything with SAVEALL).
pub fn garbage() -> Vec<AnyGc> {
    current().garbage.borrow().clone()
}

/// A new reference to item `index` of `garbage`, if there is one.
pub fn garbage_get(index: usize) -> Option<AnyGc> {
    current().garbage.borrow().get(index).cloned()
}

/// Number of objects in `garbage`.
pub fn garbage_len() -> usize {
    current().garbage.borrow().len()
}

/// Empty `garbage`, returning its references.
pub fn take_garbage() -> Vec<AnyGc> {
    core::mem::take(&mut *current().garbage.borrow_mut())
}

/// Empty `garbage`, dropping its references.
pub fn clear_garbage() {
    drop(take_garbage());
}

/// Identifies a registered gc callback. Ids are unique in the process (never reused, never 0),
/// so an id from another runtime or a runtime that is gone is simply not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

impl CallbackId {
    /// The id as a number (> 0), for callers that hand it across the C ABI.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id a number from [`CallbackId::get`] stands for.
    pub fn from_raw(id: u64) -> CallbackId {
        CallbackId(id)
    }
}

/// The last callback id handed out (in any runtime).
static LAST_CALLBACK_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Register `f`, called at the start and the end of every collection of the current runtime
/// (`gc.callbacks`). A callback running again while it runs (nested) is skipped.
pub fn add_callback(f: impl FnMut(Phase, &CallbackInfo) + 'static) -> CallbackId {
    let st = current();
    let id = LAST_CALLBACK_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1;
    let cb: runtime::Callback = Rc::new(RefCell::new(f));
    st.callbacks.borrow_mut().push((id, cb));
    CallbackId(id)
}

/// Unregister a callback; false if it was not registered.
pub fn remove_callback(id: CallbackId) -> bool {
    let removed = {
        let mut cbs = current().callbacks.borrow_mut();
        cbs.iter()
            .position(|(i, _)| *i == id.0)
            .map(|at| cbs.remove(at))
    };
    // Dropped after the borrow ends: dropping a closure may run user code.
    removed.is_some()
}

/// Untyped object functions for callers that build their own types (the C ABI). The pieces
/// of a C `dealloc` are the steps of the one deallocation protocol (`dealloc.rs`) that
/// `Gc<T>` uses too.
pub mod raw {
    use super::*;

    /// Allocate an object of `ty` (refcount 1, untracked, payload uninitialized), counting it
    /// against generation 0 when `ty` is a GC type (which may then run an automatic
    /// collection). Null when out of memory.
    ///
    /// # Safety
    /// `ty` must outlive every object of it; the caller initializes the payload before the
    /// object is tracked or traversed.
    pub unsafe fn new_object(ty: *const object::TypeObject) -> *mut ObjectHeader {
        // SAFETY: caller's contract.
        unsafe { counted(ty, object::object_alloc(ty)) }
    }

    /// Count a fresh GC object against generation 0, only once it exists (a failed
    /// allocation must not leave the count one too high).
    ///
    /// # Safety
    /// `ty` is a live type; `obj` is null or a fresh object of it.
    unsafe fn counted(ty: *const object::TypeObject, obj: *mut ObjectHeader) -> *mut ObjectHeader {
        // SAFETY: caller's contract.
        if !obj.is_null() && unsafe { (*ty).is_gc() } {
            schedule::note_alloc(current());
        }
        obj
    }

    /// [`new_object`] for a variable-size type (`basic_size + nitems * item_size` bytes), with
    /// the payload zeroed. Null when out of memory or when the size overflows.
    ///
    /// # Safety
    /// As [`new_object`].
    pub unsafe fn new_object_var_zeroed(
        ty: *const object::TypeObject,
        nitems: usize,
    ) -> *mut ObjectHeader {
        // SAFETY: caller's contract.
        unsafe { counted(ty, object::object_alloc_var_zeroed(ty, nitems)) }
    }

    /// Free an untracked object's memory, uncounting it (CPython's `PyObject_GC_Del`).
    ///
    /// # Safety
    /// `obj` came from [`new_object`] or [`new_object_var_zeroed`], is untracked and unused
    /// afterwards.
    pub unsafe fn free_object(obj: *mut ObjectHeader) {
        // SAFETY: caller's contract.
        unsafe { dealloc::free_object(obj) }
    }

    /// Start tracking `obj` (generation 0). No-op if already tracked.
    ///
    /// # Safety
    /// `obj` is a live, fully initialized object of a GC type of the current runtime.
    pub unsafe fn track(obj: *mut ObjectHeader) {
        // SAFETY: caller's contract.
        unsafe {
            let ty = type_of(obj);
            assert!(ty.is_gc(), "track: not a GC type");
            let st = current();
            if ty.finalize.is_some() || ty.del.is_some() {
                st.finalizer_types.set(true);
            }
            list::track(as_gc(obj), st.gen_head(0));
        }
    }

    /// Stop tracking `obj`. No-op if untracked.
    ///
    /// # Safety
    /// `obj` is a live object of the current runtime.
    pub unsafe fn untrack(obj: *mut ObjectHeader) {
        // SAFETY: caller's contract.
        unsafe {
            if type_of(obj).is_gc() {
                list::untrack(as_gc(obj));
            }
        }
    }

    /// For a type's `dealloc` (the object's refcount just reached zero): run the type's
    /// `finalize` unless it ran before (GC objects remember, as the collector does), lending
    /// the object one reference and tracking it while the finalizer runs. True when the
    /// finalizer resurrected it.
    ///
    /// # Safety
    /// `obj` is live with refcount 0, inside its type's `dealloc`.
    pub unsafe fn finalize_from_dealloc(obj: *mut ObjectHeader) -> bool {
        // SAFETY: caller's contract.
        unsafe { dealloc::finalize_from_dealloc(obj) }
    }

    /// The end of a type's `dealloc`: untrack `obj`, clear the weak references still pointing
    /// to it (running their callbacks), and free it with [`free_object`].
    ///
    /// # Safety
    /// `obj` came from [`new_object`] or [`new_object_var_zeroed`], has refcount 0, and is not
    /// used again.
    pub unsafe fn del_object(obj: *mut ObjectHeader) {
        // SAFETY: caller's contract.
        unsafe { dealloc::del_object(obj) }
    }

    /// Clear the weakrefs to a dying `obj` and run their callbacks.
    ///
    /// # Safety
    /// `obj` is live and about to be freed.
    pub unsafe fn clear_weakrefs(obj: *mut ObjectHeader) {
        // SAFETY: caller's contract.
        unsafe { dealloc::clear_weakrefs(obj) }
    }

    /// A new weakref object (refcount 1, tracked) to `obj`, counted against generation 0
    /// (which may collect first); a panic if `obj`'s type does not support weak references or
    /// `obj` is being deallocated.
    ///
    /// # Safety
    /// `obj` must be a live object of the current runtime.
    pub unsafe fn weakref_new(
        obj: *mut ObjectHeader,
        callback: Option<WeakCallback>,
    ) -> *mut ObjectHeader {
        // SAFETY: caller's contract.
        unsafe { weak::new_weakref(obj, callback) }
    }

    pub use super::repr::set_type_repr;
    pub use super::weakref::{getweakrefcount, is_weakref, weakref_get};

    /// Marks, while it lives, that the caller runs user code on behalf of the library on this
    /// thread (the C ABI's visitors): runtime switches are refused meanwhile, as they are
    /// inside deallocations and collections (see [`check_runtime_switch`]).
    pub struct CallbackScope(#[allow(dead_code)] UserCode);

    impl CallbackScope {
        /// Start the mark (it ends when the value drops).
        pub fn enter() -> CallbackScope {
            CallbackScope(UserCode::enter())
        }
    }
}

#[cfg(test)]
mod tests;
