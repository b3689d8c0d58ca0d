//! Tracing: how the collector learns the references a Rust value holds, and `GcCell`, the
//! interior mutability that works inside cycles.
//!
//! # Invariants
//!
//! - `Trace::trace` visits each `Gc`/`Weak` the value owns exactly once, and the same set
//!   every time it is called while the value is not mutated. It never creates, drops or
//!   mutates `Gc`s. This is the `unsafe` contract of the trait; `#[derive(Trace)]` keeps it.
//! - A `GcCell` that is mutably borrowed is skipped whole: its references then count as
//!   external (the referents stay alive), which is conservative and consistent between the
//!   phases of one collection, since no user code runs between them.

use core::cell::{Ref, RefCell, RefMut};
use core::ffi::{CStr, c_void};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, LinkedList, VecDeque};

use super::{AsObject, Gc, Weak, collect};
use crate::object::{ObjectHeader, VisitProc, as_gc};

/// Which visit procedure a tracer runs: the collector's own two are inlined into `trace`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Decref,
    Reachable,
    Other,
}

/// Receives the references found by [`Trace::trace`].
pub struct Tracer {
    visit: VisitProc,
    arg: *mut c_void,
    kind: Kind,
}

impl Tracer {
    #[inline(always)]
    pub(crate) fn new(visit: VisitProc, arg: *mut c_void) -> Tracer {
        let kind = if arg == collect::decref_marker() {
            Kind::Decref
        } else if core::ptr::fn_addr_eq(visit, collect::visit_reachable as VisitProc) {
            Kind::Reachable
        } else {
            Kind::Other
        };
        Tracer { visit, arg, kind }
    }

    /// Visit a referent known to be a GC object (a `Gc` or weakref object).
    #[inline(always)]
    pub(crate) fn visit_raw(&mut self, obj: *mut ObjectHeader) {
        // SAFETY: obj is a live GC object owned by the value being traced; the kinds are the
        // collector's visit procs minus their type check; others accept any live object.
        unsafe {
            match self.kind {
                Kind::Decref => collect::decref_gc(as_gc(obj)),
                Kind::Reachable => collect::reach_gc(as_gc(obj), self.arg),
                Kind::Other => {
                    (self.visit)(obj, self.arg);
                }
            }
        }
    }

    /// Report a strong reference.
    #[inline(always)]
    pub fn visit<T: Trace>(&mut self, gc: &Gc<T>) {
        self.visit_raw(gc.as_object());
    }

    /// Report a weak reference handle (the weakref object it owns).
    #[inline(always)]
    pub fn visit_weak<T: Trace>(&mut self, w: &Weak<T>) {
        self.visit_raw(w.weakref_object());
    }
}

/// A value that can live in a [`Gc`]: it reports the `Gc`s and `Weak`s it owns.
///
/// Use `#[derive(Trace)]` (fields marked `#[trace(skip)]` are not traced; a type attribute
/// `#[trace(finalize = path)]` or `#[trace(legacy_del = path)]` names a `fn(&Gc<Self>)`).
///
/// # Safety
/// `trace` must visit every `Gc` and `Weak` the value owns, each exactly once, the same set on
/// every call while the value is not mutated, and must not create, drop or mutate `Gc`s.
/// Missing an edge only keeps objects alive; visiting a reference the value does not own can
/// make the collector clear an object that is still in use.
pub unsafe trait Trace: Sized + 'static {
    /// Report each owned `Gc`/`Weak` to `tracer`.
    fn trace(&self, tracer: &mut Tracer);

    /// The type name shown by debug output.
    const NAME: &'static CStr = c"object";

    /// PEP 442 finalizer: runs at most once per object, before the object (or its cycle) is
    /// torn down; it may resurrect the object by storing a clone of the `Gc`.
    const FINALIZE: Option<fn(&Gc<Self>)> = None;

    /// Legacy finalizer (`__del__` before PEP 442): it runs each time the count drops to zero,
    /// and a cycle containing such an object is never collected; it goes to `gc::garbage`.
    const LEGACY_DEL: Option<fn(&Gc<Self>)> = None;
}

macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: holds no Gc.
        unsafe impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    )*};
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    std::path::PathBuf,
    std::ffi::CString,
    std::time::Duration,
);

// SAFETY: visits the one Gc it owns.
unsafe impl<T: Trace> Trace for Gc<T> {
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.visit(self);
    }
}

// SAFETY: visits the one weakref object it owns.
unsafe impl<T: Trace> Trace for Weak<T> {
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.visit_weak(self);
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace> Trace for Option<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        if let Some(v) = self {
            v.trace(t);
        }
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    fn trace(&self, t: &mut Tracer) {
        match self {
            Ok(v) => v.trace(t),
            Err(e) => e.trace(t),
        }
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace> Trace for Box<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        (**self).trace(t);
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|v| v.trace(t));
    }
}

macro_rules! seq {
    ($($c:ident),*) => {$(
        // SAFETY: forwards to each element.
        unsafe impl<T: Trace> Trace for $c<T> {
            fn trace(&self, t: &mut Tracer) {
                self.iter().for_each(|v| v.trace(t));
            }
        }
    )*};
}
seq!(Vec, VecDeque, LinkedList, BTreeSet);

// SAFETY: forwards to each element.
unsafe impl<T: Trace, S: 'static> Trace for HashSet<T, S> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|v| v.trace(t));
    }
}

// SAFETY: forwards to each key and value.
unsafe impl<K: Trace, V: Trace, S: 'static> Trace for HashMap<K, V, S> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|(k, v)| {
            k.trace(t);
            v.trace(t);
        });
    }
}

// SAFETY: forwards to each key and value.
unsafe impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|(k, v)| {
            k.trace(t);
            v.trace(t);
        });
    }
}

macro_rules! tuple {
    ($($n:tt $t:ident),*) => {
        // SAFETY: forwards to each field.
        unsafe impl<$($t: Trace),*> Trace for ($($t,)*) {
            fn trace(&self, t: &mut Tracer) {
                $(self.$n.trace(t);)*
            }
        }
    };
}
tuple!(0 A);
tuple!(0 A, 1 B);
tuple!(0 A, 1 B, 2 C);
tuple!(0 A, 1 B, 2 C, 3 D);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E);

/// A `RefCell` for values inside `Gc`s: mutate the graph (make and break cycles) through a
/// shared `Gc`. While mutably borrowed its contents are not traced (kept alive).
#[derive(Default, Debug)]
pub struct GcCell<T>(RefCell<T>);

impl<T> GcCell<T> {
    /// Wrap `value`.
    pub const fn new(value: T) -> GcCell<T> {
        GcCell(RefCell::new(value))
    }

    /// Borrow immutably; panics if mutably borrowed.
    #[track_caller]
    pub fn borrow(&self) -> Ref<'_, T> {
        self.0.borrow()
    }

    /// Borrow mutably; panics if borrowed.
    #[track_caller]
    pub fn borrow_mut(&self) -> RefMut<'_, T> {
        self.0.borrow_mut()
    }

    /// Replace the value, returning the old one.
    #[track_caller]
    pub fn replace(&self, value: T) -> T {
        self.0.replace(value)
    }

    /// Replace the value, dropping the old one after the borrow ends.
    #[track_caller]
    pub fn set(&self, value: T) {
        drop(self.0.replace(value));
    }

    /// Take the value, leaving `Default`.
    #[track_caller]
    pub fn take(&self) -> T
    where
        T: Default,
    {
        self.0.take()
    }

    /// Unwrap.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

// SAFETY: traces the contents when readable; a mutably borrowed cell is skipped whole, which
// only keeps its referents alive (see the module invariants).
unsafe impl<T: Trace> Trace for GcCell<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        // SAFETY: the shared reference lives only for this call, during which only `trace`
        // code runs, and the Trace contract forbids it to mutate (so nobody borrows mutably).
        // Not writing the borrow flag keeps a collection from dirtying every object.
        if let Ok(v) = unsafe { self.0.try_borrow_unguarded() } {
            v.trace(t);
        }
    }
}

// SAFETY: as for GcCell.
unsafe impl<T: Trace> Trace for RefCell<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        if let Ok(v) = self.try_borrow() {
            v.trace(t);
        }
    }
}

// SAFETY: a Cell of a Copy type cannot hold a Gc (Gc is not Copy).
unsafe impl<T: Copy + 'static> Trace for core::cell::Cell<T> {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}
