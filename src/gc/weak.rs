//! The weak handle: [`Weak<T>`], the `Gc::downgrade*` constructors, and the counted allocation
//! of weakref objects that they and `raw::weakref_new` share. The weakref objects themselves
//! (their type, lists, clearing and callbacks) are `weakref.rs`'s.
//!
//! | item                             | role                                                      |
//! |----------------------------------|-----------------------------------------------------------|
//! | [`Weak<T>`]                      | one counted reference to a weakref object (`Trace`: `cell.rs`) |
//! | `Gc::downgrade`, `downgrade_with_callback` | a weak reference, with an opaque callback or none |
//! | `Gc::downgrade_with_state`, [`TracedCallback::new`] | a callback whose state the collector traces |
//! | `new_weakref`                    | the counted allocation of a weakref object                |
//!
//! # Invariants
//!
//! - `Weak<T>` owns one reference to a weakref object; `upgrade` succeeds exactly while the
//!   weakref is live and its referent's count is above zero.
//! - `Weak<T>` takes `T: ?Sized` (a `Weak<dyn Trait>` upgrades to a `Gc<dyn Trait>`) and stays
//!   one word for a sized `T`: its one pointer has the weakref object's address (whose
//!   provenance it exposed when made; the weakref is reached through
//!   `with_exposed_provenance`), and the referent's provenance and metadata, from the `Gc` it
//!   was downgraded from. `upgrade` puts the referent's address back (`with_addr`): the
//!   weakref's referent is that object for as long as `weakref_get` returns it.
//! - A traced callback's state is reported by the weakref object's `traverse` and dropped by
//!   its `clear`: its references are edges of the graph like any field's. The function is a
//!   plain `fn`, so it captures nothing the collector cannot see.
//! - `Weak` is `!Send` and `!Sync`, like `Gc`.
//!
//! May touch: `handle.rs` (`Gc`, `Trace`), `weakref.rs`, `schedule.rs` (counted allocation),
//! `runtime.rs`, `trace.rs`, `any.rs` (the sealed traits).

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::any::{AsObject, Edge, sealed};
use super::handle::{Gc, RustObject, Trace};
use super::runtime::current;
use super::schedule;
use super::trace::Tracer;
use super::weakref::{
    self, TracedCall, TracedCallback, WEAKREF_TYPE, WeakCallback, WeakRefObject, weakref_get,
};
use crate::object::{self, ObjectHeader};

/// A new weakref object (refcount 1, tracked) to `obj`, counted against generation 0 first
/// (which may collect), or a panic if `obj`'s type does not support weak references or `obj`
/// is dying. Out of memory aborts, as `Box::new` does.
///
/// # Safety
/// `obj` must be a live object of the current runtime.
pub(crate) unsafe fn new_weakref(
    obj: *mut ObjectHeader,
    callback: Option<WeakCallback>,
) -> *mut ObjectHeader {
    // SAFETY: caller's contract.
    unsafe { weakref::check_target(obj) };
    let st = current();
    let wr = schedule::alloc_counted(st, &WEAKREF_TYPE, Layout::new::<WeakRefObject>());
    // SAFETY: a fresh object of WEAKREF_TYPE; obj is live (the caller holds a reference, so a
    // collection run by the allocation cannot free it) and passed check_target.
    unsafe { weakref::init(st, wr, obj, callback) };
    wr
}

/// A state and the function that consumes it.
struct StateCall<S> {
    state: S,
    call: fn(S),
}

impl<S: Trace> TracedCall for StateCall<S> {
    fn trace(&self, tracer: &mut Tracer) {
        self.state.trace(tracer);
    }

    fn call(self: Box<Self>) {
        let StateCall { state, call } = *self;
        call(state);
    }
}

impl TracedCallback {
    /// A callback that runs `callback(state)` once when the referent dies. The collector traces
    /// `state` as references of the weak reference object, so a state that holds the referent
    /// (or anything that holds the weak reference) makes an ordinary cycle: collected when
    /// nothing else holds it, and then the callback does not run (the weak reference is
    /// garbage itself, CPython's rule). `callback` is a plain `fn`: it captures nothing.
    pub fn new<S: Trace>(state: S, callback: fn(S)) -> TracedCallback {
        TracedCallback::from_call(Box::new(StateCall {
            state,
            call: callback,
        }))
    }
}

impl<T: ?Sized> Gc<T> {
    /// A weak reference (no callback).
    pub fn downgrade(this: &Gc<T>) -> Weak<T> {
        // SAFETY: the object is live and its type supports weak references.
        unsafe { Weak::from_weakref(new_weakref(this.as_object(), None), this) }
    }

    /// A weak reference whose `callback` runs once when the object dies (unless the weak
    /// reference itself died first, or is garbage in the same collection).
    ///
    /// The closure is opaque to the collector: a `Gc` it captures counts as held from outside.
    /// A closure that captures the object itself therefore keeps it alive as long as the weak
    /// reference lives, and if the object holds the weak reference the two are never freed.
    /// Use [`downgrade_with_state`](Gc::downgrade_with_state) for a callback that needs `Gc`s.
    pub fn downgrade_with_callback(this: &Gc<T>, callback: impl FnOnce() + 'static) -> Weak<T> {
        let cb = WeakCallback::Rust(Box::new(callback));
        // SAFETY: as for downgrade.
        unsafe { Weak::from_weakref(new_weakref(this.as_object(), Some(cb)), this) }
    }

    /// A weak reference whose callback, `callback(state)`, runs once when the object dies
    /// (unless the weak reference died first or is garbage in the same collection). The
    /// collector traces `state` as references of the weak reference: a state holding the
    /// object, while the object holds the weak reference, is an ordinary cycle and is
    /// collected ([`TracedCallback::new`]).
    pub fn downgrade_with_state<S: Trace>(this: &Gc<T>, state: S, callback: fn(S)) -> Weak<T> {
        let cb = WeakCallback::Traced(TracedCallback::new(state, callback));
        // SAFETY: as for downgrade.
        unsafe { Weak::from_weakref(new_weakref(this.as_object(), Some(cb)), this) }
    }

    /// Number of weak references to the object (`weakref.getweakrefcount`).
    pub fn weak_count(this: &Gc<T>) -> usize {
        // SAFETY: live object.
        unsafe { weakref::getweakrefcount(this.as_object()) }
    }
}

/// A weak reference to a `Gc<T>`: does not keep the value alive; `upgrade` gives a `Gc` while
/// the object lives. Owns a counted weakref object. `T` may be unsized: `Gc::downgrade` of a
/// `Gc<dyn Trait>` is a `Weak<dyn Trait>`.
pub struct Weak<T: ?Sized> {
    /// The weakref object's address, with the referent's provenance and metadata (module
    /// invariants).
    ptr: NonNull<RustObject<T>>,
    _not_send: PhantomData<*const T>,
}

impl<T: ?Sized> Weak<T> {
    /// Adopt the reference to the weakref object `wr`, whose referent is `referent`'s object.
    ///
    /// # Safety
    /// `wr` must be a live weakref object whose referent is `referent`'s object.
    unsafe fn from_weakref(wr: *mut ObjectHeader, referent: &Gc<T>) -> Weak<T> {
        let addr = wr.expose_provenance();
        let ptr = Gc::raw_ptr(referent).as_ptr().with_addr(addr);
        Weak {
            // SAFETY: new_weakref never returns null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _not_send: PhantomData,
        }
    }

    /// The weakref object (borrowed; live while `self` is).
    #[inline(always)]
    fn wr(&self) -> *mut ObjectHeader {
        // The weakref object's provenance was exposed when `self` was made.
        core::ptr::with_exposed_provenance_mut(self.ptr.as_ptr().addr())
    }

    /// A strong reference, or `None` once the object died (or its cycle was collected).
    pub fn upgrade(&self) -> Option<Gc<T>> {
        // SAFETY: our weakref object is live; a referent it returns is live and is the object
        // `self` was downgraded from, so the pointer with its address back is that `Gc`'s
        // (its provenance and metadata), and the new reference is handed to the `Gc`.
        unsafe {
            let r = weakref_get(self.wr());
            if r.is_null() {
                return None;
            }
            object::incref(r);
            let ptr = self.ptr.as_ptr().with_addr(r.addr());
            Some(Gc::from_raw_ptr(NonNull::new_unchecked(ptr)))
        }
    }

    /// Whether the weak reference was cleared.
    pub fn is_dead(&self) -> bool {
        // SAFETY: our weakref object is live.
        unsafe { weakref_get(self.wr()).is_null() }
    }
}

impl<T: ?Sized> sealed::Sealed for Weak<T> {}

impl<T: ?Sized> Edge for Weak<T> {
    const GC_OBJECT: bool = true;

    #[inline(always)]
    fn edge_object(&self) -> *mut ObjectHeader {
        self.wr()
    }
}

impl<T: ?Sized> Clone for Weak<T> {
    fn clone(&self) -> Weak<T> {
        // SAFETY: live weakref object.
        unsafe { object::incref(self.wr()) };
        Weak {
            ptr: self.ptr,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { object::decref(self.wr()) }
    }
}

impl<T: ?Sized> core::fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "(Weak)")
    }
}
