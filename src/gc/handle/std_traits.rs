//! The standard traits of [`Gc<T>`] that `Rc<T>` has, each delegating to the value as `Rc`'s
//! do: `Deref`, `Clone` (a new reference), `Debug`, `PartialEq`, `Eq`, `PartialOrd`, `Ord`,
//! `Hash`, `Display`, `AsRef<T>`, `Borrow<T>` (through `Deref`), `fmt::Pointer` (the object's
//! address), `Default` and `From<T>` (a new object). (`Drop`, the count's protocol, is in
//! `handle.rs` itself.)
//!
//! | trait                                   | uses             | on a cleared value          |
//! |-----------------------------------------|------------------|-----------------------------|
//! | `Deref`                                 | the value        | panics (`cleared_panic`)    |
//! | `Clone`                                 | the count        | a new reference (never reads the value) |
//! | `Debug`                                 | the value        | prints `<cleared>`          |
//! | `PartialEq`, `Eq`, `PartialOrd`, `Ord`, `Hash`, `Display`, `AsRef`, `Borrow` | the value (`Deref`) | panics, as `Deref` does |
//! | `fmt::Pointer`                          | the object's address | prints it (never reads the value) |
//! | `Default`, `From<T>`                    | `Gc::new`        | (a new object)              |
//!
//! # Invariants
//!
//! - Every impl that reads the value reads it through `Deref`, so a value the collector
//!   already cleared is never read: the call panics with `Deref`'s message instead (only code
//!   running while a garbage cycle is torn down can hold such a handle; see `Deref`). No impl
//!   here but `Clone`'s increment has an `unsafe` block.
//! - Equality, order and hash are the value's, never the address's (as `Rc`), so `Borrow<T>`
//!   is consistent with them: a `HashSet<Gc<T>>` can be searched with a `&T`. Identity is
//!   [`Gc::ptr_eq`] / `{:p}`.
//!
//! May touch: `handle.rs` (its parent: `Gc`, `Trace`), the object layer's `incref`.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::ops::Deref;

use super::{Gc, Trace};
use crate::object;

/// Equality of the values (`**a == **b`), as `Rc`'s. Two handles to one object compare equal
/// exactly when the value equals itself (not so for a NaN); use [`Gc::ptr_eq`] for identity.
///
/// # Panics
///
/// When either value was cleared by the collector, as `Deref` does.
impl<T: ?Sized + PartialEq> PartialEq for Gc<T> {
    #[inline]
    #[track_caller]
    fn eq(&self, other: &Gc<T>) -> bool {
        **self == **other
    }

    #[inline]
    #[track_caller]
    #[allow(clippy::partialeq_ne_impl)] // forwards to the value's own `ne`, as `Rc` does
    fn ne(&self, other: &Gc<T>) -> bool {
        **self != **other
    }
}

/// The value's `Eq`, as `Rc`'s.
///
/// # Panics
///
/// Comparing a cleared value panics (see `PartialEq`).
impl<T: ?Sized + Eq> Eq for Gc<T> {}

/// The order of the values, as `Rc`'s.
///
/// # Panics
///
/// When either value was cleared by the collector, as `Deref` does.
impl<T: ?Sized + PartialOrd> PartialOrd for Gc<T> {
    #[inline]
    #[track_caller]
    fn partial_cmp(&self, other: &Gc<T>) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }

    #[inline]
    #[track_caller]
    fn lt(&self, other: &Gc<T>) -> bool {
        **self < **other
    }

    #[inline]
    #[track_caller]
    fn le(&self, other: &Gc<T>) -> bool {
        **self <= **other
    }

    #[inline]
    #[track_caller]
    fn gt(&self, other: &Gc<T>) -> bool {
        **self > **other
    }

    #[inline]
    #[track_caller]
    fn ge(&self, other: &Gc<T>) -> bool {
        **self >= **other
    }
}

/// The total order of the values, as `Rc`'s: a `BTreeMap`/`BTreeSet` of `Gc<T>` sorts by value.
///
/// # Panics
///
/// When either value was cleared by the collector, as `Deref` does.
impl<T: ?Sized + Ord> Ord for Gc<T> {
    #[inline]
    #[track_caller]
    fn cmp(&self, other: &Gc<T>) -> Ordering {
        (**self).cmp(&**other)
    }
}

/// The value's hash, as `Rc`'s (consistent with `Eq` and `Borrow<T>`: a `HashSet<Gc<T>>` is
/// searched with a `&T`).
///
/// # Panics
///
/// When the value was cleared by the collector, as `Deref` does.
impl<T: ?Sized + Hash> Hash for Gc<T> {
    #[inline]
    #[track_caller]
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

/// The value's `Display`, as `Rc`'s.
///
/// # Panics
///
/// When the value was cleared by the collector, as `Deref` does (unlike `Debug`, which prints
/// `<cleared>`: `Display` is for output the program relies on, so it does not invent a text).
impl<T: ?Sized + fmt::Display> fmt::Display for Gc<T> {
    #[track_caller]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// `{:p}`: the object's address, the same as [`Gc::as_ptr`] (identity: two handles print the
/// same address exactly when [`Gc::ptr_eq`]). Never reads the value, so it works on a cleared
/// one too.
impl<T: ?Sized> fmt::Pointer for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Gc::as_ptr(self), f)
    }
}

/// A new object holding `T::default()` (may first run an automatic collection, as
/// [`Gc::new`]).
impl<T: Trace + Default> Default for Gc<T> {
    #[inline]
    fn default() -> Gc<T> {
        Gc::new(T::default())
    }
}

/// `Gc::new(value)`: moves `value` into a new object.
impl<T: Trace> From<T> for Gc<T> {
    #[inline]
    fn from(value: T) -> Gc<T> {
        Gc::new(value)
    }
}

/// The value, as `Deref`.
///
/// # Panics
///
/// When the value was cleared by the collector, as `Deref` does.
impl<T: ?Sized> AsRef<T> for Gc<T> {
    #[inline]
    #[track_caller]
    fn as_ref(&self) -> &T {
        self
    }
}

/// The value, as `Deref`; `Eq`, `Ord` and `Hash` of `Gc<T>` are the value's, so maps and sets
/// of `Gc<T>` can be searched with a `&T`.
///
/// # Panics
///
/// When the value was cleared by the collector, as `Deref` does.
impl<T: ?Sized> Borrow<T> for Gc<T> {
    #[inline]
    #[track_caller]
    fn borrow(&self) -> &T {
        self
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn cleared_panic() -> ! {
    panic!(
        "Gc value used after the cycle collector cleared it (accessed from a Drop impl of another object in the same garbage cycle? Gc::try_get does not panic; a panic in a Drop the collector runs resumes from gc::collect when the collection has finished)"
    )
}

/// # Panics
///
/// When the collector has cleared the value. Only code that runs while a garbage cycle is torn
/// down can hold such a handle: the `Drop` of another object of the cycle (which sees its
/// partners one by one as the collector clears them), or a handle smuggled out of the cycle.
/// When that `Drop` was run by the collector, the panic does not abort the process: the
/// collection catches it, finishes, and resumes it from the call that ran the collection
/// (`gc::collect`, or the allocation that triggered it), where `catch_unwind` can take it.
/// [`Gc::try_get`] is the form that never panics. (See `gc::collect` for the whole rule.)
impl<T: ?Sized> Deref for Gc<T> {
    type Target = T;
    #[inline(always)]
    #[track_caller]
    fn deref(&self) -> &T {
        match Gc::try_get(self) {
            Some(v) => v,
            None => cleared_panic(),
        }
    }
}

impl<T: ?Sized> Clone for Gc<T> {
    #[inline(always)]
    fn clone(&self) -> Gc<T> {
        // SAFETY: live object owned by this thread.
        unsafe { object::incref(Gc::as_ptr(self).cast_mut()) };
        Gc {
            ptr: self.ptr,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Gc::try_get(self) {
            Some(v) => v.fmt(f),
            None => f.write_str("<cleared>"),
        }
    }
}
