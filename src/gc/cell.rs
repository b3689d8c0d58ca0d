//! What can live in a `Gc`: [`GcCell`], the interior mutability that works inside cycles, and
//! the [`Trace`] impls of the standard library's types (leaves, containers, tuples, cells) and
//! of the handles (`Gc`, `Weak`, `AnyGc`).
//!
//! | type                                   | trace visits                                    |
//! |----------------------------------------|-------------------------------------------------|
//! | numbers, `bool`, `char`, strings, paths | nothing (leaves)                               |
//! | `Option`, `Result`, `Box`, arrays, tuples | the contents                                  |
//! | `Vec`, `VecDeque`, `LinkedList`, sets, maps | every element (keys and values)             |
//! | `GcCell<T>` / `RefCell<T>`             | the contents, unless mutably borrowed           |
//! | `Cell<T: Copy>`                        | nothing (a `Copy` type holds no `Gc`)            |
//! | `Gc<T>`, `AnyGc`                       | its object                                      |
//! | `Weak<T>`                              | its weakref object (not the referent)           |
//!
//! # Invariants
//!
//! - Each impl visits every `Gc`/`Weak`/`AnyGc` the value owns exactly once (the `Trace`
//!   contract).
//! - A `GcCell` that is mutably borrowed is skipped whole: its references then count as
//!   external (the referents stay alive), which is conservative and consistent between the
//!   phases of one collection, since no user code runs between them.
//!
//! May touch: `handle.rs` (the `Trace` trait), `weak.rs` (`Weak`), `trace.rs` (`Tracer`),
//! `any.rs` (`AnyGc`).

use core::cell::{Ref, RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, LinkedList, VecDeque};

use super::any::AnyGc;
use super::handle::{Gc, Trace};
use super::trace::Tracer;
use super::weak::Weak;

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

// SAFETY: visits the one reference it owns.
unsafe impl Trace for AnyGc {
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.visit(self);
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
