//! Weak references: tracked objects of their own (so a weakref can itself be garbage), on a
//! doubly linked list headed in the referent's weaklist slot (`TypeObject::weaklist_offset`),
//! or, for side-table types (all `Gc<T>`), in the runtime's `weak_table` while the referent has
//! weakrefs (its `PREV_HAS_WEAKREFS` flag is set exactly then).
//!
//! | item                               | role                                                 |
//! |------------------------------------|------------------------------------------------------|
//! | [`WEAKREF_TYPE`], `WeakRefObject`  | the weakref object and its type (traverse, clear, dealloc) |
//! | [`WeakCallback`]                   | a Rust closure, a C function with its data, or a [`TracedCallback`] (state the collector traces) |
//! | `check_target`, `init`             | a new weakref, in two halves around the caller's counted allocation (`handle::new_weakref`) |
//! | `weakref_get`, `is_weakref`        | the referent, unless dead or dying                  |
//! | `clear_ref`, `clear_all`, `clear_weakrefs`, `run_callback` | clearing (the deallocation protocol's weakref step, and the collector's) |
//!
//! # Invariants
//!
//! - A weakref is *live* while `referent != null`; it is then on the referent's list exactly
//!   once. Clearing (`clear_ref`) unlinks it and nulls `referent`; it never becomes live again.
//! - Before a referent's memory is released, all its weakrefs are cleared; then the callbacks
//!   of those that have one run, each at most once (the callback is taken out of its cell).
//! - In a collection (`collect::handle_weakrefs`) every weakref to garbage is cleared before
//!   any callback runs, and a callback runs only when its weakref is not garbage itself.
//! - A referent with `refcnt <= 0` is dying (its deallocation runs, or the trashcan put it
//!   off): `weakref_get` never hands it out and no weakref is made to it.
//! - A weakref's `traverse` reports exactly the references of its callback's traced state
//!   ([`TracedCallback`]; nothing for the other kinds, whose references count as external), and
//!   its `clear` drops the callback: so a callback whose state holds the referent, or objects
//!   that hold the weakref, is part of the graph and its cycle is collectable (CPython traverses
//!   `wr_callback` likewise).
//! - A panic in the `Drop` of a callback that `clear` or `dealloc` drops follows the rule of
//!   `unwind.rs`; a panic in a Rust callback aborts (see `run_rust_callback`).
//!
//! May touch: `list.rs`, `runtime.rs` (the side table, counts, the user-code mark), `diag.rs`,
//! `trace.rs` (`Tracer`, for a traced callback's state), `unwind.rs`.
//! Not the scheduler: allocating a weakref object (which counts, and may collect) is the
//! caller's (`handle.rs`); so is the `Weak<T>` handle.

use core::cell::Cell;
use core::ffi::{c_int, c_void};
use core::ptr;

use super::diag::abort_with;
use super::list;
use super::runtime::{GcState, UserCode, current};
use super::trace::Tracer;
use super::unwind;
use crate::object::{
    self, ObjectHeader, PREV_HAS_WEAKREFS, TPFLAGS_HAVE_GC, TypeObject, VisitProc,
    WEAKLIST_SIDE_TABLE, as_gc, type_of, weaklist_slot,
};

/// What runs when a weakly referenced object dies.
pub enum WeakCallback {
    /// A Rust closure. It is opaque to the collector: a `Gc` it captures counts as a reference
    /// from outside, so a closure that captures its own referent keeps it alive for as long as
    /// the weak reference lives (a cycle through it is never collected). Use
    /// [`Traced`](WeakCallback::Traced) for that.
    Rust(Box<dyn FnOnce()>),
    /// A C function called with the (cleared) weakref object and `arg`.
    C(
        unsafe extern "C" fn(wr: *mut ObjectHeader, arg: *mut c_void),
        *mut c_void,
    ),
    /// A function of a state that the collector traces as the weakref object's own references
    /// (`Gc::downgrade_with_state`, [`TracedCallback::new`]).
    Traced(TracedCallback),
}

/// A weakref callback in two parts: a state the collector traces (as references of the weakref
/// object) and a plain function of it, which captures nothing. A cycle through the state (the
/// state holds the referent, and the referent holds the weak reference) is found and collected;
/// the callback of a weak reference that is itself garbage never runs (CPython's rule). Made by
/// [`TracedCallback::new`] or `Gc::downgrade_with_state`.
pub struct TracedCallback(Box<dyn TracedCall>);

/// The type-erased state and function of a [`TracedCallback`] (implemented in `weak.rs`, which
/// knows `Trace`).
pub(crate) trait TracedCall {
    /// Report the state's references.
    fn trace(&self, tracer: &mut Tracer);
    /// Run the function on the state.
    fn call(self: Box<Self>);
}

impl TracedCallback {
    /// Wrap a state and function already erased.
    pub(crate) fn from_call(call: Box<dyn TracedCall>) -> TracedCallback {
        TracedCallback(call)
    }
}

#[repr(C)]
pub(crate) struct WeakRefObject {
    header: ObjectHeader,
    referent: Cell<*mut ObjectHeader>,
    prev: Cell<*mut WeakRefObject>,
    next: Cell<*mut WeakRefObject>,
    callback: Cell<Option<WeakCallback>>,
}

/// The type of weakref objects.
pub static WEAKREF_TYPE: TypeObject = TypeObject {
    name: c"weakref".as_ptr(),
    basic_size: size_of::<WeakRefObject>(),
    flags: TPFLAGS_HAVE_GC,
    weaklist_offset: 0,
    traverse: Some(wr_traverse),
    clear: Some(wr_clear),
    finalize: None,
    del: None,
    dealloc: wr_dealloc,
    item_size: 0,
};

unsafe extern "C" fn wr_traverse(
    wr: *mut ObjectHeader,
    visit: VisitProc,
    arg: *mut c_void,
) -> c_int {
    // A traced callback's state is reported; the other kinds are opaque (references they hold
    // count as external).
    // SAFETY: wr is a live weakref object; its callback is only replaced by clearing and
    // running it, never during a traversal (trace code must not mutate), so a shared view of
    // it in place is sound for the call.
    unsafe {
        if let Some(WeakCallback::Traced(t)) = &*(*(wr as *mut WeakRefObject)).callback.as_ptr() {
            t.0.trace(&mut Tracer::new(visit, arg));
        }
    }
    0
}

unsafe extern "C" fn wr_clear(wr: *mut ObjectHeader) -> c_int {
    // SAFETY: wr is a live weakref object.
    unsafe {
        clear_ref(wr);
        let callback = (*(wr as *mut WeakRefObject)).callback.take();
        unwind::contain(wr, "the drop of a weakref callback", || drop(callback));
    }
    0
}

/// A weakref object's `dealloc`: the deallocation protocol (`dealloc.rs`) minus the steps a
/// weakref never needs (it has no finalizer and cannot be weakly referenced): untrack, drop
/// the payload (unlink, callback), free and uncount, with the same primitives (this file sits
/// below `dealloc.rs`, which uses it to clear weakrefs).
unsafe extern "C" fn wr_dealloc(wr: *mut ObjectHeader) {
    let st = current();
    // SAFETY: wr is a weakref object with refcount 0.
    unsafe {
        list::untrack(as_gc(wr));
        clear_ref(wr);
        let callback = (*(wr as *mut WeakRefObject)).callback.take();
        unwind::contain(wr, "the drop of a weakref callback", || drop(callback));
        ptr::drop_in_place(wr as *mut WeakRefObject);
        object::object_free(wr);
    }
    st.live_weakrefs.set(st.live_weakrefs.get() - 1);
    st.note_free();
}

/// The head slot of `obj`'s weakref list, or null (no support, or no list and `!create`).
/// With `create`, a side-table object gets an (empty) entry.
///
/// # Safety
/// `obj` must be a live object of the current runtime.
unsafe fn head_slot(obj: *mut ObjectHeader, create: bool) -> *mut *mut ObjectHeader {
    // SAFETY: caller's contract.
    unsafe {
        let ty = type_of(obj);
        if ty.weaklist_offset > 0 {
            return weaklist_slot(obj);
        }
        if ty.weaklist_offset != WEAKLIST_SIDE_TABLE || !ty.is_gc() {
            return ptr::null_mut();
        }
        let gc = as_gc(obj);
        if (*gc).prev & PREV_HAS_WEAKREFS != 0 {
            let slot = current()
                .weak_table
                .borrow()
                .get(&(obj as usize))
                .map_or(ptr::null_mut(), |b| b.as_ptr());
            if slot.is_null() {
                foreign_runtime(obj);
            }
            return slot;
        }
        if !create {
            return ptr::null_mut();
        }
        let b = Box::new(Cell::new(ptr::null_mut()));
        let p = b.as_ptr();
        current().weak_table.borrow_mut().insert(obj as usize, b);
        (*gc).prev |= PREV_HAS_WEAKREFS;
        p
    }
}

/// An object with weakrefs whose side-table entry is not in the current runtime's table: it
/// belongs to another runtime, and is being used while that one is not current (see
/// `Runtime::attach`). Its weakrefs cannot be found, so going on would free it under them.
#[cold]
#[inline(never)]
fn foreign_runtime(obj: *mut ObjectHeader) -> ! {
    abort_with(format_args!(
        "object {obj:p} has weak references in another runtime: it is used while its runtime \
         is not the thread's current one (see Runtime::attach)"
    ))
}

/// `obj`'s weakref list became empty: drop its side-table entry (if it has one).
///
/// # Safety
/// `obj` must be a live object of the current runtime.
unsafe fn release_slot(obj: *mut ObjectHeader) {
    // SAFETY: caller's contract.
    unsafe {
        if type_of(obj).weaklist_offset == WEAKLIST_SIDE_TABLE {
            let gc = as_gc(obj);
            if (*gc).prev & PREV_HAS_WEAKREFS != 0 {
                (*gc).prev &= !PREV_HAS_WEAKREFS;
                let entry = current().weak_table.borrow_mut().remove(&(obj as usize));
                drop(entry);
            }
        }
    }
}

/// Whether `obj` is a weakref object.
///
/// # Safety
/// `obj` must be live.
#[inline]
pub unsafe fn is_weakref(obj: *mut ObjectHeader) -> bool {
    // SAFETY: live object.
    ptr::eq(unsafe { (*obj).ty }, &WEAKREF_TYPE)
}

/// Refuse (panic) to make a weakref to `obj` when its type does not support weak references
/// or it is dying (count 0: its weakrefs were cleared already, and a new one would outlive
/// it). Called before the weakref object is allocated.
///
/// # Safety
/// `obj` must be live.
pub(crate) unsafe fn check_target(obj: *mut ObjectHeader) {
    // SAFETY: live object.
    let ty = unsafe { type_of(obj) };
    assert!(
        ty.supports_weakrefs(),
        "weakref_new: the object's type does not support weak references"
    );
    // SAFETY: live object.
    let refcnt = unsafe { (*obj).refcnt };
    assert!(refcnt > 0, "weakref_new: the object is being deallocated");
}

/// Make the fresh object `wr` (of `WEAKREF_TYPE`, from the caller's counted allocation) a
/// weakref to `obj` with `callback`: linked first on `obj`'s list, tracked in generation 0.
///
/// # Safety
/// `wr` is a fresh, untracked object of `WEAKREF_TYPE` (payload uninitialized); `obj` a live
/// object of `st` that passed [`check_target`].
pub(crate) unsafe fn init(
    st: &GcState,
    wr: *mut ObjectHeader,
    obj: *mut ObjectHeader,
    callback: Option<WeakCallback>,
) {
    let w = wr as *mut WeakRefObject;
    // SAFETY: fresh object; slot belongs to the live referent; list heads are live weakrefs.
    unsafe {
        let slot = head_slot(obj, true);
        let head = *slot as *mut WeakRefObject;
        (&raw mut (*w).referent).write(Cell::new(obj));
        (&raw mut (*w).prev).write(Cell::new(ptr::null_mut()));
        (&raw mut (*w).next).write(Cell::new(head));
        (&raw mut (*w).callback).write(Cell::new(callback));
        if !head.is_null() {
            (*head).prev.set(w);
        }
        *slot = wr;
        list::append(as_gc(wr), st.gen_head(0));
    }
    st.live_weakrefs.set(st.live_weakrefs.get() + 1);
}

/// The referent of `wr` (borrowed), or null once cleared or once the referent is dying.
///
/// A referent whose reference count is 0 is dying even though its weakrefs are not cleared
/// yet: its deallocation has begun (a `Drop` or C `dealloc` runs user code before the weakrefs
/// go), or the trashcan has put it off to the outermost deallocation, which frees it whatever
/// its count then. Handing it out would revive an object about to be freed; so it is dead
/// here, as in CPython (`_PyWeakref_GET_REF`). A finalizer runs with a reference lent to its
/// object, so weakrefs to it still work there.
///
/// # Safety
/// `wr` must be a live weakref object.
#[inline]
pub unsafe fn weakref_get(wr: *mut ObjectHeader) -> *mut ObjectHeader {
    // SAFETY: caller's contract; a non-null referent is live (its weakrefs are cleared before
    // its memory goes).
    unsafe {
        let r = (*(wr as *mut WeakRefObject)).referent.get();
        if r.is_null() || (*r).refcnt <= 0 {
            return ptr::null_mut();
        }
        r
    }
}

/// Clear `wr`: unlink it from its referent's list; the callback stays.
///
/// # Safety
/// `wr` must be a live weakref object.
pub(crate) unsafe fn clear_ref(wr: *mut ObjectHeader) {
    let w = wr as *mut WeakRefObject;
    // SAFETY: a live weakref is on its live referent's list.
    unsafe {
        let r = (*w).referent.replace(ptr::null_mut());
        if r.is_null() {
            return;
        }
        let (p, n) = (
            (*w).prev.replace(ptr::null_mut()),
            (*w).next.replace(ptr::null_mut()),
        );
        if p.is_null() {
            *head_slot(r, false) = n as *mut ObjectHeader;
            if n.is_null() {
                release_slot(r);
            }
        } else {
            (*p).next.set(n);
        }
        if !n.is_null() {
            (*n).prev.set(p);
        }
    }
}

/// The first weakref on `obj`'s list, or null.
///
/// # Safety
/// `obj` must be live.
#[inline]
pub(crate) unsafe fn first_weakref(obj: *mut ObjectHeader) -> *mut ObjectHeader {
    // SAFETY: caller's contract.
    unsafe {
        let slot = head_slot(obj, false);
        if slot.is_null() {
            ptr::null_mut()
        } else {
            *slot
        }
    }
}

/// Whether `wr` has a callback waiting.
///
/// # Safety
/// `wr` must be a live weakref object.
pub(crate) unsafe fn has_callback(wr: *mut ObjectHeader) -> bool {
    // SAFETY: caller's contract; the Option is inspected in place and put back.
    unsafe {
        let c = &(*(wr as *mut WeakRefObject)).callback;
        let v = c.take();
        let has = v.is_some();
        c.set(v);
        has
    }
}

/// Take and run the callback of `wr` (if any).
///
/// # Safety
/// `wr` must be a live weakref object; the caller holds a reference to it.
pub(crate) unsafe fn run_callback(wr: *mut ObjectHeader) {
    // SAFETY: caller's contract.
    match unsafe { (*(wr as *mut WeakRefObject)).callback.take() } {
        Some(WeakCallback::Rust(f)) => run_rust_callback(f),
        // SAFETY: the C caller promised the function accepts (wr, arg).
        Some(WeakCallback::C(f, arg)) => unsafe { f(wr, arg) },
        Some(WeakCallback::Traced(t)) => run_rust_callback(move || t.0.call()),
        None => {}
    }
}

/// Run a Rust callback; a panic aborts (after the panic hook printed its message), because
/// unwinding out of here could leave a collection half done.
fn run_rust_callback(f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        // The payload is never dropped: its Drop could panic again and unwind from here.
        core::mem::forget(payload);
        abort_with(format_args!("a weakref callback panicked"));
    }
}

/// Clear every weakref to `obj` (which is dying), then run their callbacks.
///
/// # Safety
/// `obj` must be live and about to be freed.
pub unsafe fn clear_weakrefs(obj: *mut ObjectHeader) {
    let mut with_cb = Vec::new();
    // SAFETY: obj is live; each weakref on its list is live.
    unsafe {
        clear_all(obj, |wr| {
            object::incref(wr);
            with_cb.push(wr);
        });
        if with_cb.is_empty() {
            return;
        }
        // Callbacks are user code, also when a C caller clears weakrefs outside a dealloc.
        let _user_code = UserCode::enter();
        for wr in with_cb {
            run_callback(wr);
            object::decref(wr);
        }
    }
}

/// Clear every weakref to `obj`, and pass each one that has a callback to `with_callback`
/// (borrowed: the callee increfs what it keeps).
///
/// # Safety
/// `obj` must be a live object; its weakrefs are live.
pub(crate) unsafe fn clear_all(
    obj: *mut ObjectHeader,
    mut with_callback: impl FnMut(*mut ObjectHeader),
) {
    // SAFETY: caller's contract.
    unsafe {
        loop {
            let wr = first_weakref(obj);
            if wr.is_null() {
                break;
            }
            clear_ref(wr);
            if has_callback(wr) {
                with_callback(wr);
            }
        }
    }
}

/// Number of weakrefs to `obj` (`weakref.getweakrefcount`).
///
/// # Safety
/// `obj` must be live.
pub unsafe fn getweakrefcount(obj: *mut ObjectHeader) -> usize {
    let mut n = 0;
    // SAFETY: caller's contract; the list holds live weakrefs.
    unsafe {
        let mut w = first_weakref(obj) as *mut WeakRefObject;
        while !w.is_null() {
            n += 1;
            w = (*w).next.get();
        }
    }
    n
}
