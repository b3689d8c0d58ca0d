//! Untyped handles and the two sealed traits every handle shares.
//!
//! | item        | role                                                                        |
//! |-------------|-----------------------------------------------------------------------------|
//! | [`AnyGc`]   | an untyped strong reference to any object (`get_objects`, `garbage`, ...)  |
//! | [`AsObject`]| "is (a handle to) an object": `Gc<T>`, `AnyGc`; what the `gc` queries take |
//! | [`Edge`]    | "owns one counted reference the collector must see": `Gc<T>`, `Weak<T>` (its weakref object), `AnyGc`; what `Tracer::visit` takes |
//!
//! Both traits are sealed: the collector trusts what they return (a live object the handle
//! owns a reference to; for `Edge::GC_OBJECT`, one with a `GcHead`), so only this crate's
//! handles implement them (`handle.rs` for `Gc` and `Weak`).
//!
//! # Invariants
//!
//! - An `AnyGc` owns one unit of its object's refcount: clone increments, drop decrements (at
//!   zero the object is deallocated through the object layer, trashcan included).
//! - `AnyGc` is `!Send` and `!Sync`, like every handle: counts are plain integers.
//!
//! May touch: the object layer only (no other file of `gc`).

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::object::{self, ObjectHeader, type_of};

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// Something that is (a handle to) an object: `Gc<T>` or `AnyGc`.
pub trait AsObject: sealed::Sealed {
    /// The object pointer (borrowed; valid while `self` is).
    fn as_object(&self) -> *mut ObjectHeader;
}

/// A handle that owns one counted reference, as a [`Trace`](crate::gc::Trace) impl reports it
/// to [`Tracer::visit`](crate::gc::Tracer::visit): `Gc<T>` and `AnyGc` own a reference to their
/// object, `Weak<T>` one to its weakref object (the referent is not kept alive). Sealed.
pub trait Edge: sealed::Sealed {
    /// Whether the object is known to have a `GcHead` (lets the tracer inline the collector's
    /// visits without looking at the type).
    #[doc(hidden)]
    const GC_OBJECT: bool;

    /// The object the handle owns a reference to (borrowed; valid while `self` is).
    #[doc(hidden)]
    fn edge_object(&self) -> *mut ObjectHeader;
}

/// An untyped strong reference to any object (what `get_objects`, `garbage`, `get_referrers`
/// return). Clone takes a reference, drop gives it up.
pub struct AnyGc {
    ptr: NonNull<ObjectHeader>,
    _not_send: PhantomData<*const ()>,
}

impl sealed::Sealed for AnyGc {}

impl AsObject for AnyGc {
    #[inline(always)]
    fn as_object(&self) -> *mut ObjectHeader {
        self.ptr.as_ptr()
    }
}

impl Edge for AnyGc {
    const GC_OBJECT: bool = false;

    #[inline(always)]
    fn edge_object(&self) -> *mut ObjectHeader {
        self.ptr.as_ptr()
    }
}

impl AnyGc {
    /// Take a new reference to `obj`.
    ///
    /// # Safety
    /// `obj` must be a live object of the calling thread's current runtime.
    pub unsafe fn from_borrowed(obj: *mut ObjectHeader) -> AnyGc {
        // SAFETY: caller's contract.
        unsafe {
            object::incref(obj);
            AnyGc {
                ptr: NonNull::new_unchecked(obj),
                _not_send: PhantomData,
            }
        }
    }

    /// The object's type name.
    pub fn type_name(&self) -> String {
        // SAFETY: a live object; the type it was created with has a valid name (name_str).
        unsafe { type_of(self.as_object()).name_str() }.into_owned()
    }

    /// Whether this is the object of `other`.
    pub fn is(&self, other: &impl AsObject) -> bool {
        self.as_object() == other.as_object()
    }

    /// Strong references to the object.
    pub fn strong_count(&self) -> usize {
        // SAFETY: live object.
        unsafe { (*self.as_object()).refcnt as usize }
    }
}

impl Clone for AnyGc {
    fn clone(&self) -> AnyGc {
        // SAFETY: live object.
        unsafe { AnyGc::from_borrowed(self.as_object()) }
    }
}

impl Drop for AnyGc {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { object::decref(self.as_object()) }
    }
}

impl core::fmt::Debug for AnyGc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} at {:p}>", self.type_name(), self.as_object())
    }
}
