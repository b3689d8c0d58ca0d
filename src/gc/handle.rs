//! `Gc<T>`, the safe strong handle; `AnyGc`, the untyped one; how a Rust value becomes an
//! object (its `TypeObject`, built at compile time per `T`); and deallocation with the trashcan.
//!
//! # Invariants
//!
//! - A `Gc<T>` owns one unit of the object's refcount; clone increments, drop decrements, and
//!   the drop to zero deallocates at once: finalizer (once), legacy del, untrack, weakrefs
//!   cleared (callbacks run), value dropped, memory returned to the allocator.
//! - Every `Gc` object is tracked from creation until deallocation, except while the trashcan
//!   defers it (untracked on `trash_list`; tracked again while a finalizer can see it).
//! - `PREV_CLEARED` (in the `GcHead`) is set exactly when the value has been dropped (by the
//!   collector's `clear` on garbage, or by deallocation); after that the value is never read
//!   again: `Deref` panics with a clear message, `trace` visits nothing, `clear` and `dealloc`
//!   skip the drop.
//! - A `Gc` object is its `GcHead`, its `ObjectHeader` and the value: 32 bytes of overhead. The
//!   weakref list head, when there is one, lives in the runtime's side table
//!   (`WEAKLIST_SIDE_TABLE`, `PREV_HAS_WEAKREFS`).
//! - Trashcan: at most `TRASH_LIMIT` deallocations nest; a deeper one is deferred on the
//!   runtime's `trash_list` (linked through the untracked object's `GcHead.prev`) and run by
//!   the outermost deallocation, so dropping a chain of any length uses bounded stack.
//! - `Gc` is `!Send` and `!Sync`: refcounts are plain integers owned by one thread.

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;

use super::list;
use super::runtime::{GcState, current};
use super::schedule;
use super::trace::{Trace, Tracer};
use super::weakref::{self, Weak, WeakCallback};
use crate::object::{
    self, ObjectHeader, PREV_CLEARED, PREV_FINALIZED, PREV_HAS_WEAKREFS, PREV_MASK, PREV_STICKY,
    TPFLAGS_HAVE_GC, TypeObject, VisitProc, WEAKLIST_SIDE_TABLE, as_gc, from_gc, type_of,
};

/// How deep deallocations nest before the trashcan defers them (CPython's 50).
pub const TRASH_LIMIT: usize = 50;

/// The memory of a `Gc<T>` object after its `GcHead`.
#[repr(C)]
pub(crate) struct RustObject<T> {
    header: ObjectHeader,
    value: UnsafeCell<ManuallyDrop<T>>,
}

/// Holder of the compile-time `TypeObject` of `T`.
pub(crate) struct TypeFor<T>(PhantomData<T>);

impl<T: Trace> TypeFor<T> {
    pub(crate) const TYPE: &'static TypeObject = &TypeObject {
        name: T::NAME.as_ptr(),
        basic_size: size_of::<RustObject<T>>(),
        flags: TPFLAGS_HAVE_GC,
        weaklist_offset: WEAKLIST_SIDE_TABLE,
        traverse: Some(traverse_tramp::<T>),
        clear: Some(clear_tramp::<T>),
        finalize: if T::FINALIZE.is_some() {
            Some(finalize_tramp::<T>)
        } else {
            None
        },
        del: if T::LEGACY_DEL.is_some() {
            Some(del_tramp::<T>)
        } else {
            None
        },
        dealloc: dealloc_tramp::<T>,
        item_size: 0,
    };
}

unsafe extern "C" fn traverse_tramp<T: Trace>(
    obj: *mut ObjectHeader,
    visit: VisitProc,
    arg: *mut c_void,
) -> c_int {
    let o = obj as *const RustObject<T>;
    // SAFETY: obj is a live RustObject<T>; a value not yet cleared is readable.
    unsafe {
        if !is_cleared(obj) {
            (**(*o).value.get()).trace(&mut Tracer::new(visit, arg));
        }
    }
    0
}

unsafe extern "C" fn clear_tramp<T: Trace>(obj: *mut ObjectHeader) -> c_int {
    // SAFETY: obj is a live RustObject<T> (the collector holds a reference).
    unsafe { drop_value::<T>(obj as *mut RustObject<T>) };
    0
}

/// Whether the value of the (live) `Gc` object `obj` was dropped.
#[inline(always)]
unsafe fn is_cleared(obj: *mut ObjectHeader) -> bool {
    // SAFETY: Gc objects have a GcHead.
    unsafe { (*as_gc(obj)).prev & PREV_CLEARED != 0 }
}

/// Drop the value once, marking it cleared first (so re-entrant access panics).
unsafe fn drop_value<T>(o: *mut RustObject<T>) {
    // SAFETY: o is live; PREV_CLEARED guards against a second drop.
    unsafe {
        let gc = as_gc(o as *mut ObjectHeader);
        if (*gc).prev & PREV_CLEARED == 0 {
            (*gc).prev |= PREV_CLEARED;
            ManuallyDrop::drop(&mut *(*o).value.get());
        }
    }
}

unsafe extern "C" fn finalize_tramp<T: Trace>(obj: *mut ObjectHeader) {
    if let Some(f) = T::FINALIZE {
        // SAFETY: the caller holds a reference for the duration of the call.
        let tmp = ManuallyDrop::new(unsafe { Gc::<T>::from_raw(obj) });
        f(&tmp);
    }
}

unsafe extern "C" fn del_tramp<T: Trace>(obj: *mut ObjectHeader) {
    if let Some(f) = T::LEGACY_DEL {
        // SAFETY: as for finalize_tramp.
        let tmp = ManuallyDrop::new(unsafe { Gc::<T>::from_raw(obj) });
        f(&tmp);
    }
}

unsafe extern "C" fn dealloc_tramp<T: Trace>(obj: *mut ObjectHeader) {
    // SAFETY: called at refcount zero.
    unsafe { dealloc::<T>(obj) }
}

/// Call `f` on an object whose count is zero, lending it one reference; true when `f`
/// resurrected it (kept a reference).
unsafe fn call_resurrecting(
    st: &GcState,
    obj: *mut ObjectHeader,
    f: object::DestructorProc,
) -> bool {
    // SAFETY: obj is live with refcount 0; the GcHead is ours.
    unsafe {
        // Deferred by the trashcan (untracked): track again while user code can see it.
        list::track(as_gc(obj), st.gen_head(0));
        object::call_lending_reference(obj, f)
    }
}

/// Deallocate a `Gc<T>` object whose count reached zero.
#[inline(never)]
unsafe fn dealloc<T: Trace>(obj: *mut ObjectHeader) {
    let st = current();
    let depth = st.trash_depth.get();
    if depth >= TRASH_LIMIT {
        // SAFETY: obj has refcount 0 and is ours to defer.
        unsafe { trash_deposit(st, obj) };
        return;
    }
    let nesting = Nesting::enter(st, depth + 1);
    // SAFETY: obj is live with refcount 0.
    unsafe { dealloc_body::<T>(st, obj) };
    drop(nesting);
    if depth == 0 && !st.trash_list.get().is_null() {
        trash_drain(st);
    }
}

/// Sets the trashcan depth, and restores it on drop, also when a `Drop` impl panics (the
/// object being freed then leaks, as with `Rc`, but the trashcan keeps working).
struct Nesting<'a> {
    st: &'a GcState,
    restore: usize,
}

impl<'a> Nesting<'a> {
    #[inline(always)]
    fn enter(st: &'a GcState, depth: usize) -> Nesting<'a> {
        let restore = st.trash_depth.replace(depth);
        Nesting { st, restore }
    }
}

impl Drop for Nesting<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.st.trash_depth.set(self.restore);
    }
}

unsafe fn dealloc_body<T: Trace>(st: &GcState, obj: *mut ObjectHeader) {
    let o = obj as *mut RustObject<T>;
    // SAFETY: obj is a live RustObject<T> with refcount 0; nobody else can reach it except
    // through weak references, which are cleared before the value goes.
    unsafe {
        let gc = as_gc(obj);
        if (*gc).prev & PREV_CLEARED == 0 {
            if T::FINALIZE.is_some() && (*gc).prev & PREV_FINALIZED == 0 {
                (*gc).prev |= PREV_FINALIZED;
                if call_resurrecting(st, obj, finalize_tramp::<T>) {
                    return;
                }
            }
            if T::LEGACY_DEL.is_some() && call_resurrecting(st, obj, del_tramp::<T>) {
                return;
            }
        }
        list::untrack(gc);
        if (*gc).prev & PREV_HAS_WEAKREFS != 0 {
            weakref::clear_weakrefs(obj);
        }
        drop_value::<T>(o);
        object::object_free(obj);
    }
    schedule::note_free(st);
}

/// Defer the deallocation of `obj` (refcount 0) to the outermost deallocation.
unsafe fn trash_deposit(st: &GcState, obj: *mut ObjectHeader) {
    // SAFETY: obj is a live GC object with refcount 0.
    unsafe {
        let gc = as_gc(obj);
        list::untrack(gc);
        (*gc).prev = ((*gc).prev & PREV_STICKY) | st.trash_list.get() as usize;
        st.trash_list.set(gc);
    }
}

/// Run the deferred deallocations; nesting restarts at 1 so they cannot recurse into here.
#[cold]
#[inline(never)]
fn trash_drain(st: &GcState) {
    let _nesting = Nesting::enter(st, 1);
    loop {
        let gc = st.trash_list.get();
        if gc.is_null() {
            break;
        }
        // SAFETY: nodes on trash_list are untracked objects with refcount 0, linked via prev.
        unsafe {
            st.trash_list.set(((*gc).prev & PREV_MASK) as list::Head);
            (*gc).prev &= PREV_STICKY;
            let obj = from_gc(gc);
            (type_of(obj).dealloc)(obj);
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Something that is (a handle to) an object: `Gc<T>` or `AnyGc`.
pub trait AsObject: sealed::Sealed {
    /// The object pointer (borrowed; valid while `self` is).
    fn as_object(&self) -> *mut ObjectHeader;
}

/// A strong, counted reference to a `T` managed by the cycle collector.
///
/// `clone` takes a reference, `drop` gives one up; the last drop frees at once. Reference cycles
/// are found and freed by [`crate::gc::collect`] (and automatically on allocation thresholds).
pub struct Gc<T: Trace> {
    ptr: NonNull<RustObject<T>>,
    _not_send: PhantomData<*const T>,
}

impl<T: Trace> sealed::Sealed for Gc<T> {}
impl<T: Trace> AsObject for Gc<T> {
    #[inline(always)]
    fn as_object(&self) -> *mut ObjectHeader {
        self.ptr.as_ptr() as *mut ObjectHeader
    }
}

impl<T: Trace> Gc<T> {
    /// Move `value` into a new tracked object in the current runtime (may first run an
    /// automatic collection).
    #[inline]
    pub fn new(value: T) -> Gc<T> {
        const {
            assert!(
                align_of::<T>() <= object::OBJECT_ALIGN,
                "Gc<T> needs align_of::<T>() <= 16"
            )
        };
        let st = current();
        let obj = schedule::alloc_counted(
            st,
            TypeFor::<T>::TYPE,
            core::alloc::Layout::new::<RustObject<T>>(),
        );
        let o = obj as *mut RustObject<T>;
        // SAFETY: obj is a fresh object of RustObject<T>'s size; its header is initialized.
        unsafe {
            (&raw mut (*o).value).write(UnsafeCell::new(ManuallyDrop::new(value)));
            list::append(as_gc(obj), st.gen_head(0));
            Gc {
                ptr: NonNull::new_unchecked(o),
                _not_send: PhantomData,
            }
        }
    }

    /// Adopt one reference to `obj`.
    ///
    /// # Safety
    /// `obj` must be a live object created by `Gc::<T>::new` and the caller gives up one
    /// reference it owns.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(obj: *mut ObjectHeader) -> Gc<T> {
        // SAFETY: non-null by the caller's contract.
        let ptr = unsafe { NonNull::new_unchecked(obj as *mut RustObject<T>) };
        Gc {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// Whether both point to the same object.
    #[inline]
    pub fn ptr_eq(a: &Gc<T>, b: &Gc<T>) -> bool {
        a.ptr == b.ptr
    }

    /// Strong references to the object.
    #[inline]
    pub fn strong_count(this: &Gc<T>) -> usize {
        // SAFETY: the object is live while `this` is.
        unsafe { (*this.as_object()).refcnt as usize }
    }

    /// A weak reference (no callback).
    pub fn downgrade(this: &Gc<T>) -> Weak<T> {
        // SAFETY: the object is live and its type supports weak references.
        unsafe { Weak::from_weakref(weakref::weakref_new(this.as_object(), None)) }
    }

    /// A weak reference whose `callback` runs once when the object dies (unless the weak
    /// reference itself died first, or is garbage in the same collection).
    pub fn downgrade_with_callback(this: &Gc<T>, callback: impl FnOnce() + 'static) -> Weak<T> {
        let cb = WeakCallback::Rust(Box::new(callback));
        // SAFETY: as for downgrade.
        unsafe { Weak::from_weakref(weakref::weakref_new(this.as_object(), Some(cb))) }
    }

    /// Number of weak references to the object (`weakref.getweakrefcount`).
    pub fn weak_count(this: &Gc<T>) -> usize {
        // SAFETY: live object.
        unsafe { weakref::getweakrefcount(this.as_object()) }
    }

    /// An untyped strong reference to the same object.
    pub fn to_any(this: &Gc<T>) -> AnyGc {
        // SAFETY: live object.
        unsafe { AnyGc::from_borrowed(this.as_object()) }
    }

    /// The value, or `None` if the collector already cleared it (a `Drop` impl running while
    /// a garbage cycle is torn down may see this).
    #[inline]
    pub fn try_get(this: &Gc<T>) -> Option<&T> {
        let obj = this.as_object();
        // SAFETY: the object is live while `this` is; a value not cleared is initialized and
        // only dropped by the collector when no live handle can reach it.
        unsafe {
            if is_cleared(obj) {
                None
            } else {
                Some(&**(*(obj as *mut RustObject<T>)).value.get())
            }
        }
    }

    /// The object's address (identity).
    #[inline]
    pub fn as_ptr(this: &Gc<T>) -> *const ObjectHeader {
        this.as_object()
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn cleared_panic() -> ! {
    panic!(
        "Gc value used after the cycle collector cleared it (accessed from a Drop impl of another object in the same garbage cycle?)"
    )
}

impl<T: Trace> Deref for Gc<T> {
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

impl<T: Trace> Clone for Gc<T> {
    #[inline(always)]
    fn clone(&self) -> Gc<T> {
        // SAFETY: live object owned by this thread.
        unsafe { object::incref(self.as_object()) };
        Gc {
            ptr: self.ptr,
            _not_send: PhantomData,
        }
    }
}

impl<T: Trace> Drop for Gc<T> {
    #[inline(always)]
    fn drop(&mut self) {
        let obj = self.as_object();
        // SAFETY: we own one reference; at zero nobody else holds the object.
        unsafe {
            (*obj).refcnt -= 1;
            if (*obj).refcnt == 0 {
                dealloc::<T>(obj);
            }
        }
    }
}

impl<T: Trace + core::fmt::Debug> core::fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match Gc::try_get(self) {
            Some(v) => v.fmt(f),
            None => f.write_str("<cleared>"),
        }
    }
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
