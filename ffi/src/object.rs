//! Objects and weak references for C: `agc_new`, reference counts, tracking, the pieces a C
//! `dealloc` is made of, and `agc_weakref_*`.
//!
//! ```text
//!  agc_new / agc_new_var(type[, n]) ──> checks the agc_type ──> gc::raw::new_object_var_zeroed
//!                                        (counts gen 0; payload zeroed by the core)
//!  agc_track / agc_untrack ──> gc::raw::track / untrack
//!  agc_decref (inline in the header) ─ count reaches 0 ─> agc_object_decref ─> object::decref
//!        ─> the core's trashcan (at most 50 deallocations nest; deeper ones are put off to the
//!           outermost, so a chain of any length is freed in bounded stack) ─> type->dealloc
//!  a C dealloc:  agc_finalize_from_dealloc ─> (drop its references) ─> agc_object_del: the
//!        steps of the core's one deallocation protocol (gc/dealloc.rs), which Gc<T> uses too
//!  agc_weakref_new / _get / _count ──> gc::raw::weakref_new / weakref_get / getweakrefcount
//! ```
//!
//! Rules kept here:
//! - A NULL object (or type, or weak reference) is an error: NULL or `AGC_ERR_NULL` plus a
//!   message, never a crash. So is an argument the core would reject with a panic (tracking an
//!   object of a non-GC type, a weak reference to a type without support for them): it is
//!   checked first and reported as `AGC_ERR_VALUE`.
//! - Everything else is the core's: this file converts and checks, nothing more.

use core::ffi::{c_int, c_void};
use core::ptr;

use arenagc::alloc;
use arenagc::gc::{WeakCallback, raw};
use arenagc::object::{
    self, DestructorProc, ObjectHeader, TPFLAGS_HAVE_GC, WEAKLIST_SIDE_TABLE, type_of,
};

use crate::error::{ErrorCode, api, call, set_error};
use crate::types::{
    AGC_ERR_NULL, AGC_ERR_STATE, AGC_ERR_VALUE, AGC_OK, AGC_TPFLAGS_HAVE_GC,
    AGC_TPFLAGS_VERSION_SHIFT, AGC_TYPE_VERSION_CURRENT, AGC_WEAKLIST_SIDE_TABLE, AgcObject,
    AgcType, AgcWeakrefCallback,
};

const _: () = assert!(AGC_TPFLAGS_HAVE_GC == TPFLAGS_HAVE_GC);
const _: () = assert!(AGC_WEAKLIST_SIDE_TABLE == WEAKLIST_SIDE_TABLE);
const _: () = assert!(size_of::<AgcObject>() == 16);

/// The largest `basic_size` accepted: the object plus its GC head must form a valid layout.
const MAX_BASIC_SIZE: usize = isize::MAX as usize / 2;

/// `obj`, or `Err(AGC_ERR_NULL)` with a message when it is NULL or has no type.
pub(crate) fn check_object(func: &str, obj: *mut AgcObject) -> Result<*mut ObjectHeader, c_int> {
    if obj.is_null() {
        set_error(format_args!("{func}: object is NULL"));
        return Err(AGC_ERR_NULL);
    }
    // SAFETY: a non-null object argument points to an object header (the caller's contract).
    if unsafe { (*obj).ty }.is_null() {
        set_error(format_args!(
            "{func}: object {obj:p} has no type (not an object?)"
        ));
        return Err(AGC_ERR_NULL);
    }
    Ok(obj)
}

/// The body of an exported object function: inside `boundary` (a panic gives `AGC_ERR_PANIC`),
/// `f` runs on `obj` once `check_object` passed it; otherwise its error code is returned.
pub(crate) fn object_call<R: ErrorCode>(
    func: &str,
    obj: *mut AgcObject,
    f: impl FnOnce(*mut ObjectHeader) -> R,
) -> R {
    call(func, || Ok(f(check_object(func, obj)?)))
}

/// Whether a weak-list slot at `offset` lies in the payload of a `size`-byte object, aligned.
fn slot_fits(offset: usize, size: usize) -> bool {
    let slot = size_of::<*mut ObjectHeader>();
    offset >= size_of::<ObjectHeader>() && offset % slot == 0 && offset + slot <= size
}

/// Check a C type descriptor before the core relies on it (a NULL `dealloc` would be an
/// invalid function pointer in the Rust `TypeObject`).
///
/// # Safety
/// `ty` is NULL or points to a readable `agc_type`.
unsafe fn check_type(func: &str, ty: *const AgcType) -> Result<(), c_int> {
    if ty.is_null() {
        set_error(format_args!("{func}: type is NULL"));
        return Err(AGC_ERR_NULL);
    }
    // SAFETY: ty points to a readable agc_type; `Option<fn>` has the layout of `fn` with NULL
    // as None, so reading the field this way is valid whatever C stored there.
    let dealloc = unsafe {
        ptr::addr_of!((*ty).dealloc)
            .cast::<Option<DestructorProc>>()
            .read()
    };
    // SAFETY: as above.
    let finalize = unsafe {
        ptr::addr_of!((*ty).finalize)
            .cast::<Option<DestructorProc>>()
            .read()
    };
    // SAFETY: as above; the other fields have no invalid values.
    let (size, flags, weak) = unsafe { ((*ty).basic_size, (*ty).flags, (*ty).weaklist_offset) };
    let gc = flags & TPFLAGS_HAVE_GC != 0;
    let version = flags >> AGC_TPFLAGS_VERSION_SHIFT;
    if version > AGC_TYPE_VERSION_CURRENT {
        set_error(format_args!(
            "{func}: bad type: written for agc_type version {version}; this library knows \
             versions up to {AGC_TYPE_VERSION_CURRENT} (a newer arenagc is needed)"
        ));
        return Err(AGC_ERR_VALUE);
    }
    let known = TPFLAGS_HAVE_GC | (u64::MAX << AGC_TPFLAGS_VERSION_SHIFT);
    let why = if flags & !known != 0 {
        "unknown flag bits (only AGC_TPFLAGS_HAVE_GC and the version are defined)"
    } else if dealloc.is_none() {
        "dealloc is NULL"
    } else if finalize.is_some() && !gc {
        // Its "ran once" mark lives in the GC head: without one it could run again.
        "finalize needs AGC_TPFLAGS_HAVE_GC"
    } else if size < size_of::<ObjectHeader>() {
        "basic_size is smaller than agc_object (16 bytes)"
    } else if size > MAX_BASIC_SIZE {
        "basic_size is too large"
    } else if weak == WEAKLIST_SIDE_TABLE && !gc {
        "AGC_WEAKLIST_SIDE_TABLE needs AGC_TPFLAGS_HAVE_GC"
    } else if weak < 0 && weak != WEAKLIST_SIDE_TABLE {
        "weaklist_offset is negative"
    } else if weak > 0 && !slot_fits(weak as usize, size) {
        "weaklist_offset is not a pointer-aligned slot inside the payload"
    } else {
        return Ok(());
    };
    set_error(format_args!("{func}: bad type: {why}"));
    Err(AGC_ERR_VALUE)
}

/// The body of `agc_new` and `agc_new_var`: check the type, compute the size (`basic_size +
/// nitems * item_size`, overflow-checked), allocate, zero the payload. NULL with a message
/// naming `func` on any failure.
///
/// # Safety
/// `ty` is NULL or a type that outlives every object of it.
unsafe fn new_zeroed(func: &str, ty: *const AgcType, nitems: usize) -> *mut AgcObject {
    // SAFETY: forwarded from the caller.
    if unsafe { check_type(func, ty) }.is_err() {
        return ptr::null_mut();
    }
    // SAFETY: checked above.
    let (basic, item) = unsafe { ((*ty).basic_size, (*ty).item_size) };
    let Some(size) = nitems.checked_mul(item).and_then(|n| n.checked_add(basic)) else {
        set_error(format_args!(
            "{func}: {nitems} items of {item} bytes overflow the object size"
        ));
        return ptr::null_mut();
    };
    // SAFETY: ty is a checked type that outlives its objects (the caller's contract).
    let obj = unsafe { raw::new_object_var_zeroed(ty, nitems) };
    if obj.is_null() {
        set_error(format_args!(
            "{func}: cannot allocate an object of {size} bytes"
        ));
    }
    obj
}

/// A new object of `type`: refcount 1, not tracked, payload (everything after the header)
/// zeroed. A GC type counts against generation 0 (which may run an automatic collection
/// first). NULL with a message for a NULL or malformed type or when memory is short.
///
/// # Safety
/// `ty` is NULL or a type that outlives every object of it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_new(ty: *const AgcType) -> *mut AgcObject {
    // SAFETY: forwarded from the caller.
    api("agc_new", ptr::null_mut(), || unsafe {
        new_zeroed("agc_new", ty, 0)
    })
}

/// A new object of a variable-size `type` with `nitems` items: `basic_size + nitems *
/// item_size` bytes, refcount 1, not tracked, payload zeroed (CPython's `PyObject_NewVar`).
/// NULL with a message for a NULL or malformed type, a size that overflows, or when memory is
/// short.
///
/// # Safety
/// `ty` is NULL or a type that outlives every object of it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_new_var(ty: *const AgcType, nitems: usize) -> *mut AgcObject {
    // SAFETY: forwarded from the caller.
    api("agc_new_var", ptr::null_mut(), || unsafe {
        new_zeroed("agc_new_var", ty, nitems)
    })
}

/// Take a reference: the out-of-line twin of the header's inline `agc_incref`, for NULL (an
/// error) and for languages that cannot use inline C functions.
///
/// # Safety
/// `obj` is NULL or a live object of the calling thread's current runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_object_incref(obj: *mut AgcObject) -> c_int {
    object_call("agc_incref", obj, |obj| {
        // SAFETY: a live object (checked non-null; liveness is the caller's contract).
        unsafe { object::incref(obj) };
        AGC_OK
    })
}

/// Drop a reference; at zero the type's `dealloc` runs. The out-of-line twin of the header's
/// inline `agc_decref`, which calls it for NULL and for the last reference. A count that is
/// already zero is `AGC_ERR_STATE` (nothing happens). An object that was already freed (its
/// memory is a free block: `alloc::looks_freed`) and a count below zero abort with a message
/// (the latter naming the type): the inline function cannot report errors, and running on
/// would corrupt the heap.
///
/// # Safety
/// `obj` is NULL or a live object of the calling thread's current runtime, and the caller owns
/// the reference it gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_object_decref(obj: *mut AgcObject) -> c_int {
    object_call("agc_decref", obj, |obj| {
        // SAFETY: a live object.
        let rc = unsafe { (*obj).refcnt };
        if rc <= 0 {
            // A freed object: its memory is a free block (the object starts the block, or a
            // GC object's header sits 16 bytes in, after its GcHead). Reading its type would
            // read a free-list mark, so no name.
            let p = obj as *const u8;
            if alloc::looks_freed(p) || alloc::looks_freed(p.wrapping_sub(16)) {
                alloc::fault(
                    "use after free",
                    p,
                    format_args!("agc_decref of an object that was already freed"),
                );
            }
            if rc < 0 {
                // SAFETY: not freed, so its type pointer is the one it was made with, and a type
                // has a valid name (the header's agc_type contract).
                let name = unsafe { type_of(obj).name_str() };
                alloc::fault(
                    "refcount below zero",
                    p,
                    format_args!("agc_decref of an object of type '{name}' with refcount {rc}"),
                );
            }
            set_error(format_args!(
                "agc_decref: object {obj:p} has refcount {rc} (released once too often?)"
            ));
            return AGC_ERR_STATE;
        }
        // SAFETY: the caller owns the reference given up.
        unsafe { object::decref(obj) };
        AGC_OK
    })
}

/// Let the collector see `obj` (into generation 0); a no-op if it is tracked already.
/// `AGC_ERR_VALUE` if its type has no `AGC_TPFLAGS_HAVE_GC`.
///
/// # Safety
/// `obj` is NULL or a live, fully initialized object of the current runtime (its `traverse`
/// may be called at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_track(obj: *mut AgcObject) -> c_int {
    object_call("agc_track", obj, |obj| {
        // SAFETY: a live object.
        let ty = unsafe { type_of(obj) };
        if !ty.is_gc() {
            set_error(format_args!(
                "agc_track: type '{}' has no AGC_TPFLAGS_HAVE_GC",
                // SAFETY: an object's type has a valid name (the header's agc_type contract).
                unsafe { ty.name_str() }
            ));
            return AGC_ERR_VALUE;
        }
        // SAFETY: a live, initialized object of a GC type (checked) of the current runtime.
        unsafe { raw::track(obj) };
        AGC_OK
    })
}

/// Hide `obj` from the collector; a no-op if it is not tracked (or of a non-GC type).
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_untrack(obj: *mut AgcObject) -> c_int {
    object_call("agc_untrack", obj, |obj| {
        // SAFETY: a live object of the current runtime.
        unsafe { raw::untrack(obj) };
        AGC_OK
    })
}

/// 1 if the collector tracks `obj`, 0 if not, `AGC_ERR_NULL` for NULL.
///
/// # Safety
/// `obj` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_is_tracked(obj: *mut AgcObject) -> c_int {
    object_call("agc_is_tracked", obj, |o| {
        // SAFETY: a live object.
        c_int::from(unsafe { object::is_tracked(o) })
    })
}

/// 1 if the finalizer of `obj` has run (it never runs again), 0 if not, `AGC_ERR_NULL` for
/// NULL.
///
/// # Safety
/// `obj` is NULL or a live object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_is_finalized(obj: *mut AgcObject) -> c_int {
    object_call("agc_is_finalized", obj, |o| {
        // SAFETY: a live object.
        c_int::from(unsafe { object::is_finalized(o) })
    })
}

/// For a type's `dealloc`: run the type's `finalize` unless it has run before (GC types
/// remember; it then never runs again), lending the object one reference. 1 if the finalizer
/// resurrected the object (it kept a reference: `dealloc` must return at once), 0 if `dealloc`
/// goes on, `AGC_ERR_STATE` if the refcount is not zero.
///
/// # Safety
/// `obj` is NULL or an object whose refcount just reached zero, inside its type's `dealloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_finalize_from_dealloc(obj: *mut AgcObject) -> c_int {
    object_call("agc_finalize_from_dealloc", obj, |obj| {
        // SAFETY: a live object at refcount zero, inside its type's dealloc (the caller's
        // contract).
        unsafe {
            let rc = (*obj).refcnt;
            if rc != 0 {
                set_error(format_args!(
                    "agc_finalize_from_dealloc: refcount is {rc}, not 0"
                ));
                return AGC_ERR_STATE;
            }
            c_int::from(raw::finalize_from_dealloc(obj))
        }
    })
}

/// For a type's `dealloc`: clear every weak reference to `obj` and run their callbacks.
/// (`agc_object_del` does it too, for any left.)
///
/// # Safety
/// `obj` is NULL or an object of the current runtime about to be freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_clear_weakrefs(obj: *mut AgcObject) -> c_int {
    object_call("agc_clear_weakrefs", obj, |obj| {
        // SAFETY: a live object about to be freed.
        unsafe { raw::clear_weakrefs(obj) };
        AGC_OK
    })
}

/// For a type's `dealloc`, last: untrack `obj` if tracked, clear weak references still
/// pointing to it, and free its memory (uncounting it from generation 0). `dealloc` must have
/// dropped the references `obj` holds before. `AGC_ERR_STATE` (nothing freed) if the refcount
/// is not zero.
///
/// # Safety
/// `obj` is NULL or an object of the current runtime created by `agc_new` or `agc_new_var`,
/// not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_object_del(obj: *mut AgcObject) -> c_int {
    object_call("agc_object_del", obj, |obj| {
        // SAFETY: an object of the current runtime at refcount zero (checked), from agc_new or
        // agc_new_var, not used again: untracked before its memory goes.
        unsafe {
            let rc = (*obj).refcnt;
            if rc != 0 {
                set_error(format_args!(
                    "agc_object_del: object {obj:p} still has refcount {rc}"
                ));
                return AGC_ERR_STATE;
            }
            raw::del_object(obj);
        }
        AGC_OK
    })
}

/// A new weak reference to `obj` (a tracked object of its own, refcount 1). `callback`, if not
/// NULL, runs once with the weak reference and `data` when `obj` dies (unless the weak
/// reference died first, or is garbage in the same collection). NULL with a message if `obj`
/// is NULL or its type supports no weak references.
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime; `callback` accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_weakref_new(
    obj: *mut AgcObject,
    callback: AgcWeakrefCallback,
    data: *mut c_void,
) -> *mut AgcObject {
    api("agc_weakref_new", ptr::null_mut(), || {
        let Ok(obj) = check_object("agc_weakref_new", obj) else {
            return ptr::null_mut();
        };
        // SAFETY: a live object.
        let ty = unsafe { type_of(obj) };
        if !ty.supports_weakrefs() {
            set_error(format_args!(
                "agc_weakref_new: type '{}' does not support weak references",
                // SAFETY: an object's type has a valid name (the header's agc_type contract).
                unsafe { ty.name_str() }
            ));
            return ptr::null_mut();
        }
        // SAFETY: a live object.
        if unsafe { (*obj).refcnt } <= 0 {
            // Dying (in its dealloc, or a weakref callback of it): its weakrefs were cleared
            // once already, and one made now would outlive it.
            set_error(format_args!(
                "agc_weakref_new: object {obj:p} is being deallocated (reference count 0)"
            ));
            return ptr::null_mut();
        }
        let cb = callback.map(|f| WeakCallback::C(f, data));
        // SAFETY: a live object of the current runtime whose type supports weak references.
        unsafe { raw::weakref_new(obj, cb) }
    })
}

/// A new reference to the referent of the weak reference `wr`, or NULL once the referent is
/// dead (no error is recorded then). NULL with a message if `wr` is NULL or not a weak
/// reference.
///
/// # Safety
/// `wr` is NULL or a live object of the current runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_weakref_get(wr: *mut AgcObject) -> *mut AgcObject {
    api("agc_weakref_get", ptr::null_mut(), || {
        let Ok(wr) = check_object("agc_weakref_get", wr) else {
            return ptr::null_mut();
        };
        // SAFETY: a live object.
        if !unsafe { raw::is_weakref(wr) } {
            set_error(format_args!(
                "agc_weakref_get: object {wr:p} is not a weak reference"
            ));
            return ptr::null_mut();
        }
        // SAFETY: a live weakref; a non-null referent is live.
        unsafe {
            let r = raw::weakref_get(wr);
            if !r.is_null() {
                object::incref(r);
            }
            r
        }
    })
}

/// Number of live weak references to `obj` (0 for a type without support for them), or
/// `AGC_ERR_NULL` for NULL.
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_weakref_count(obj: *mut AgcObject) -> isize {
    object_call("agc_weakref_count", obj, |o| {
        // SAFETY: a live object.
        (unsafe { raw::getweakrefcount(o) }) as isize
    })
}
