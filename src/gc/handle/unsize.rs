//! Unsized handles: `Gc<dyn Trait>` (and `Gc<[E]>`) on stable Rust, where `CoerceUnsized` is
//! not available, so `let s: Gc<dyn Shape> = Gc::new(Circle)` cannot compile and
//! `From<Gc<T>> for Gc<dyn Trait>` cannot be written for every trait.
//!
//! | item            | role                                                                   |
//! |-----------------|------------------------------------------------------------------------|
//! | [`GcBox<T>`]    | the whole memory of a `Gc` object, opaque: what `Gc::unsize`'s closure coerces |
//! | [`Gc::unsize`]  | `Gc<T>` to `Gc<U>` (also `Gc<dyn Sub>` to `Gc<dyn Super>`), where the closure `\|b\| b` coerces `&GcBox<T>` to `&GcBox<U>` |
//! | [`gc_dyn!`](crate::gc_dyn) | `gc_dyn!(expr => dyn Trait)`: the same, with the closure written |
//! | `Gc<dyn Any>::downcast` | back to the concrete `Gc<T>`                               |
//! | `Gc::raw_ptr`, `Gc::from_raw_ptr` | the fat pointer, for `Weak<T: ?Sized>` (`weak.rs`) |
//!
//! The collector never needs `U`: the object's `TypeObject` was built for the concrete `T`
//! (`TypeFor<T>`), and traces, clears, finalizes and drops the value as a `T`; `Gc`'s own last
//! drop calls `T`'s body through the type too (`RustType::drop_last`). A `Gc<U>` only reads the
//! header through a thin cast and the value through its fat pointer (`Deref`, `try_get`).
//!
//! # Invariants
//!
//! - A `Gc<U>` with `U` unsized points at an object made by `Gc::<T>::new` for a concrete `T`
//!   that unsizes to `U` (`T: Unsize<U>`, checked by the compiler at the coercion the closure
//!   performs, or at each of a chain of them: `Gc<dyn Sub>` to `Gc<dyn Super>` is trait
//!   upcasting), with the metadata of that coercion (a vtable of `T`, or `[E; N]`'s length):
//!   its view `RustObject<U>` has the same address and the same field offsets (header 16
//!   bytes, value at 16: `align_of::<T>() <= 16`, asserted by `Gc::new`).
//! - The value is dropped only as a `T` (the type's trampolines, `drop_last`), never through
//!   `U`'s drop glue.
//! - `GcBox` has no public field, constructor or accessor, and the only references to one are
//!   the argument of the closure, for a lifetime the closure cannot name: so the closure can
//!   only return its argument, itself or unsized. A field at offset 0 of `T` (same address,
//!   different type) cannot be returned: that case is rejected by construction. The address
//!   is checked all the same (a panic, not a guess).
//!
//! May touch: `handle.rs` (its parent: `Gc`, `RustObject`, `Trace`), the object layer's
//! `GcHead`.

use core::any::Any;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use super::{Gc, RustObject, Trace};
use crate::object::GcHead;

/// The whole memory of a `Gc` object (the collector's links, the header, the value), seen by
/// the closure of [`Gc::unsize`] only: it has no public field or method, so all a closure can do
/// with a `&GcBox<T>` is return it, or coerce it to a `&GcBox<dyn Trait>` (or `&GcBox<[E]>`
/// from `[E; N]`), which the compiler allows exactly when `T` implements `Trait`.
#[repr(C)]
pub struct GcBox<T: ?Sized> {
    /// The `GcHead`'s bytes (`[usize; 2]`, not `GcHead`, whose 16-byte alignment would pad
    /// this struct past the object's block for a value of alignment 8 or less).
    _head: UnsafeCell<[usize; 2]>,
    object: RustObject<T>,
}

const _: () = assert!(size_of::<GcHead>() == size_of::<[usize; 2]>());

impl<T: ?Sized> Gc<T> {
    /// The same object as a `Gc<U>`, where `U` is an unsized type `T` coerces to: `dyn Trait`
    /// for a trait `T` implements (or `[E]` from `[E; N]`; or, from a `Gc<dyn Sub>`, a
    /// supertrait's `dyn Super`: trait upcasting, Rust 1.86+). `coerce` is the coercion, written
    /// `|b| b` with `U` named (`Gc::unsize::<dyn Shape>(g, |b| b)`), or `|b| b as _` where the
    /// result's type is known: the compiler turns the `&GcBox<T>` it receives into the
    /// `&GcBox<U>` it must return, and refuses when `T` does not implement the trait. (A bare
    /// `|b| b` against an annotated `let` infers `U = T`: the closure is typed before the
    /// `let`'s type reaches it.) (Stable Rust has no
    /// `CoerceUnsized`: `let s: Gc<dyn Shape> = Gc::new(circle)` and a generic
    /// `From<Gc<T>> for Gc<dyn Trait>` cannot be written; [`gc_dyn!`](crate::gc_dyn) is this
    /// call with the closure written.)
    ///
    /// ```
    /// use arenagc::{Gc, Trace};
    ///
    /// trait Shape {
    ///     fn area(&self) -> f64;
    /// }
    /// #[derive(Trace)]
    /// struct Square(f64);
    /// impl Shape for Square {
    ///     fn area(&self) -> f64 {
    ///         self.0 * self.0
    ///     }
    /// }
    /// let s = Gc::unsize::<dyn Shape>(Gc::new(Square(3.0)), |b| b);
    /// assert_eq!(s.area(), 9.0);
    /// let t: Gc<dyn Shape> = Gc::unsize(Gc::new(Square(1.0)), |b| b as _);
    /// let all: Vec<Gc<dyn Shape>> = vec![s.clone(), t];
    /// assert_eq!(all.iter().map(|s| s.area()).sum::<f64>(), 10.0);
    /// ```
    ///
    /// The count, the collector and the value's `Drop` are the object's own: the two handles
    /// above are two references to one object, and a cycle through `Gc<dyn Trait>` fields is
    /// collected as any other.
    ///
    /// # Panics
    ///
    /// If the reference `coerce` returns is not at its argument's address (cannot happen in
    /// safe code: `GcBox` exposes nothing else to return).
    pub fn unsize<U: ?Sized>(
        this: Gc<T>,
        coerce: impl for<'a> FnOnce(&'a GcBox<T>) -> &'a GcBox<U>,
    ) -> Gc<U> {
        let boxed: &GcBox<T> = {
            // A Gc object's block starts with its GcHead, 16 bytes before the header
            // (`as_gc`), and is `size_of::<GcHead>() + size_of::<RustObject<C>>()` bytes for its
            // concrete type `C`, which is the size of `GcBox<C>` and of `GcBox<T>` with `T`'s
            // metadata (16 is a multiple of the value's alignment, at most 16; the cast keeps the
            // metadata). Every byte of a GcBox is in an UnsafeCell, so this shared reference,
            // derived from the handle's pointer (the block's provenance), allows the writes the
            // collector and other handles make while it lives (the closure's call).
            // SAFETY: per the paragraph above: in bounds, aligned, and the block's provenance.
            unsafe { &*(this.ptr.as_ptr().byte_sub(size_of::<GcHead>()) as *const GcBox<T>) }
        };
        let r = coerce(boxed);
        assert!(
            core::ptr::addr_eq(r, boxed),
            "Gc::unsize: the closure must return its argument (|b| b), coerced"
        );
        let ptr = (&raw const r.object).cast_mut();
        core::mem::forget(this);
        Gc {
            // SAFETY: a field of a reference is not null. The pointer has the block's
            // provenance and the metadata of the coercion of the object's own T to U (module
            // invariants), and the reference `this` owned is handed over.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Gc<T> {
    /// The handle's pointer (the object, with `T`'s metadata), for `Weak<T>`.
    #[inline(always)]
    pub(crate) fn raw_ptr(this: &Gc<T>) -> NonNull<RustObject<T>> {
        this.ptr
    }

    /// Adopt one reference to the object `ptr` points at (`Weak::upgrade`).
    ///
    /// # Safety
    /// `ptr` is a pointer a `Gc<T>` had (`raw_ptr`: provenance and metadata), to a live
    /// object, and the caller gives up one reference it owns.
    #[inline(always)]
    pub(crate) unsafe fn from_raw_ptr(ptr: NonNull<RustObject<T>>) -> Gc<T> {
        Gc {
            ptr,
            _not_send: PhantomData,
        }
    }
}

impl Gc<dyn Any> {
    /// The concrete handle back, if the value is a `T` (else `Err(self)`; also when the
    /// collector already cleared the value). As `Rc<dyn Any>::downcast`.
    ///
    /// ```
    /// use std::any::Any;
    /// use arenagc::{Gc, gc_dyn};
    ///
    /// let a: Gc<dyn Any> = gc_dyn!(Gc::new(7u32) => dyn Any);
    /// let a = a.downcast::<String>().unwrap_err();
    /// assert_eq!(*a.downcast::<u32>().unwrap(), 7);
    /// ```
    pub fn downcast<T: Trace>(self) -> Result<Gc<T>, Gc<dyn Any>> {
        match Gc::try_get(&self) {
            Some(v) if v.is::<T>() => {
                let this = ManuallyDrop::new(self);
                // SAFETY: the value is a T, so the object was made by `Gc::<T>::new` (a
                // `dyn Any` is only made from the concrete type's own handle); the reference
                // `self` owned is handed over.
                Ok(unsafe { Gc::from_raw(this.ptr.as_ptr().cast()) })
            }
            _ => Err(self),
        }
    }
}

/// `gc_dyn!(expr => dyn Trait)`: the `Gc` `expr` (a `Gc<T>`) as a `Gc<dyn Trait>`, where `T`
/// implements `Trait`: [`Gc::unsize`]`(expr, |b| b)` with the target type written.
///
/// ```
/// use std::fmt::Display;
/// use arenagc::{Gc, gc_dyn};
///
/// let d = gc_dyn!(Gc::new(42u32) => dyn Display);
/// assert_eq!(d.to_string(), "42");
/// ```
#[macro_export]
macro_rules! gc_dyn {
    ($e:expr => $t:ty) => {
        $crate::gc::Gc::unsize::<$t>($e, |b| b)
    };
}
