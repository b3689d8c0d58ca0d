//! The strong handle and what it holds: [`Trace`] (what a Rust value reports to the
//! collector), [`Gc<T>`] (the safe strong handle), how a Rust value becomes an object (its
//! `TypeObject`, built at compile time per `T`), and the Rust side of the deallocation
//! protocol. The weak handle, `Gc::downgrade*` and weakref allocation are in `weak.rs`.
//!
//! | item            | role                                                                   |
//! |-----------------|------------------------------------------------------------------------|
//! | [`Trace`]       | a value that can live in a `Gc` (its trait and `Gc` name each other, so they share this file) |
//! | `RustObject<T>` | the memory after the `GcHead`: header, then the value                  |
//! | `TypeFor<T>`    | the compile-time `TypeObject` of `T`: traverse/clear/finalize/del/dealloc trampolines |
//! | [`Gc<T>`]       | one counted reference; the last drop deallocates                       |
//! | `RustType`      | a Rust type's `TypeObject` and `drop_last`, the last drop's body for the concrete type |
//! | `std_traits.rs` | (child module, `handle/`) `Gc`'s std traits but `Drop`: `Deref`, `Clone`, `Debug`, `Eq`, `Ord`, `Hash`, `Display`, `Pointer`, `Default`, `From`, `AsRef`, `Borrow` |
//! | `unsize.rs`     | (child module, `handle/`) `Gc<dyn Trait>`: `GcBox`, `Gc::unsize`, `gc_dyn!`, `Gc<dyn Any>::downcast`, the fat pointer for `Weak` |
//!
//! # Invariants
//!
//! - A `Gc<T>` owns one unit of the object's refcount; clone increments, drop decrements, and
//!   the drop to zero deallocates at once (through the object layer's trashcan, as every
//!   deallocation): the protocol of `dealloc.rs`, with the value as the payload.
//! - Every `Gc` object is tracked from creation until deallocation, except while the trashcan
//!   defers it (untracked, count < 0; tracked again while a finalizer can see it).
//! - `PREV_CLEARED` (in the `GcHead`) is set exactly when the value has been dropped (by the
//!   collector's `clear` on garbage, or by deallocation); after that the value is never read
//!   again: `Deref` panics with a clear message, `trace` visits nothing, `clear` and `dealloc`
//!   skip the drop.
//! - The trampolines that run user code (`clear`, `dealloc`, `finalize`, `del`: `Drop`, the
//!   finalizers) run it inside `unwind::contain`: no panic leaves them (`unwind.rs` has the
//!   rule: held and resumed after a collection, else an abort naming the object). A `Gc`'s own
//!   last drop runs `Drop` directly, where a panic unwinds as from any `Drop`.
//! - `traverse` answers a type query (`trace.rs`) with `TypeId::of::<T>()` and the value, so
//!   code holding only the object pointer can reach `T` (`repr.rs`).
//! - A `Gc` object is its `GcHead`, its `ObjectHeader` and the value: 32 bytes of overhead. The
//!   weakref list head, when there is one, lives in the runtime's side table
//!   (`WEAKLIST_SIDE_TABLE`, `PREV_HAS_WEAKREFS`).
//! - `Gc` is `!Send` and `!Sync`: refcounts are plain integers owned by one thread.
//! - `Gc<T>` takes `T: ?Sized`; only making a value (`new`, `Default`, `From<T>`) and the
//!   type's trampolines need `T: Trace`. A handle reads the header through a thin cast of its
//!   pointer and the value through the (possibly fat) pointer; for an unsized `T` the object
//!   is one of a concrete type that unsizes to `T` (`unsize.rs`'s invariants).
//! - Every `Gc` object's type (`ObjectHeader::ty`) is the `ty` of a `TypeFor<T>` `RustType`,
//!   whose `drop_last` is `dealloc::<T>` for the concrete `T`: `Gc`'s `Drop` (one impl for
//!   every `T`, so it cannot name the concrete type of a `Gc<dyn Trait>`) calls it through the
//!   type, one load more than a direct call.
//!
//! May touch: `dealloc.rs` (the protocol), `schedule.rs` (counted allocation), `runtime.rs`,
//! `list.rs`, `trace.rs` (`Tracer`), `any.rs` (`AnyGc`, the sealed traits), `unwind.rs`.

use core::alloc::Layout;
use core::any::TypeId;
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_int, c_void};
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

mod std_traits;
mod unsize;

pub use unsize::GcBox;

use super::any::{AnyGc, AsObject, Edge, sealed};
use super::dealloc;
use super::list;
use super::runtime::current;
use super::schedule;
use super::trace::Tracer;
use super::unwind::contain;
use crate::object::{
    self, ObjectHeader, PREV_CLEARED, TPFLAGS_HAVE_GC, TypeObject, VisitProc, WEAKLIST_SIDE_TABLE,
    as_gc,
};

/// A value that can live in a [`Gc`]: it reports the `Gc`s and `Weak`s it owns.
///
/// Implement it with `#[derive(Trace)]`, which visits every field (of a struct, or of the
/// active enum variant), or by hand (below). The standard library's types are covered (the
/// table of `src/gc/cell.rs`): leaves (numbers, strings, paths, `Duration`, ...) trace
/// nothing; containers (`Option`, `Vec`, maps, tuples, arrays, `Box`, ...) trace their
/// contents; [`GcCell`](crate::GcCell), `RefCell`, `Mutex` and `RwLock` trace their contents
/// unless borrowed mutably (locked), when they keep them alive instead.
///
/// # The derive's attributes
///
/// `#[trace(skip)]` on a field: not traced, for a field that holds no `Gc` and whose type does
/// not implement `Trace` (a skipped `Gc` only keeps its referent alive):
///
/// ```
/// use arenagc::{Gc, Trace};
///
/// struct Socket; // no Trace impl, holds no Gc
///
/// #[derive(Trace)]
/// struct Conn {
///     peer: Option<Gc<Conn>>,
///     #[trace(skip)]
///     socket: Socket,
/// }
/// let c = Gc::new(Conn { peer: None, socket: Socket });
/// assert!(c.peer.is_none());
/// ```
///
/// `#[trace(finalize = path)]` on the type: `path: fn(&Gc<Self>)` is [`Trace::FINALIZE`]:
///
/// ```
/// use std::cell::Cell;
/// use arenagc::{Gc, Trace};
///
/// thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });
///
/// #[derive(Trace)]
/// #[trace(finalize = Res::finalize)]
/// struct Res(u32);
///
/// impl Res {
///     fn finalize(this: &Gc<Res>) {
///         FINALIZED.with(|n| n.set(n.get() + this.0));
///     }
/// }
/// drop(Gc::new(Res(5)));
/// assert_eq!(FINALIZED.with(Cell::get), 5);
/// ```
///
/// `#[trace(legacy_del = path)]` on the type: `path: fn(&Gc<Self>)` is [`Trace::LEGACY_DEL`]
/// (a garbage cycle holding such an object is never collected; it goes to `gc::garbage()`):
///
/// ```
/// use arenagc::{Gc, GcCell, Trace, gc};
///
/// #[derive(Trace)]
/// #[trace(legacy_del = Old::del)]
/// struct Old {
///     me: GcCell<Option<Gc<Old>>>,
/// }
///
/// impl Old {
///     fn del(_this: &Gc<Old>) {}
/// }
/// let o = Gc::new(Old { me: GcCell::new(None) });
/// o.me.set(Some(o.clone()));
/// drop(o);
/// assert_eq!(gc::collect_all(), 1);
/// assert_eq!(gc::garbage_len(), 1); // uncollectable: kept in gc::garbage
/// ```
///
/// `#[trace(crate = path)]` on the type: the path of this crate in the generated code (default
/// `::arenagc`), for a renamed dependency (`gc = { package = "arenagc", .. }` in `Cargo.toml`:
/// `#[trace(crate = ::gc)]`) or a re-export:
///
/// ```
/// mod reexport {
///     pub use arenagc as collector;
/// }
/// use arenagc::{Gc, Trace};
///
/// #[derive(Trace)]
/// #[trace(crate = reexport::collector)]
/// struct Leaf(u8);
/// assert_eq!(Gc::new(Leaf(1)).0, 1);
/// ```
///
/// A field whose type does not implement `Trace` is a compile error at that field, saying to
/// add `#[trace(skip)]` if it holds no `Gc`.
///
/// # `Rc` and `Arc` are opaque
///
/// `Rc<T>` and `Arc<T>` implement `Trace` by visiting nothing. A `Gc` behind an `Rc` is one
/// counted reference, but every object holding a clone of the `Rc` would report it: the
/// collector would subtract that one reference once per holder and could find a live object
/// unreachable. So what they hold counts as held from outside: always safe, but a cycle
/// through an `Rc` is never collected. Share a `Gc` by cloning the `Gc`.
///
/// # By hand
///
/// ```
/// use arenagc::gc::{Gc, Trace, Tracer};
///
/// struct Pair {
///     left: Gc<u32>,
///     right: Option<Gc<u32>>,
///     cache: Vec<u8>, // holds no Gc: not visited
/// }
///
/// // SAFETY: visits each Gc the value owns, once.
/// unsafe impl Trace for Pair {
///     fn trace(&self, tracer: &mut Tracer) {
///         tracer.visit(&self.left);
///         if let Some(r) = &self.right {
///             tracer.visit(r);
///         }
///     }
/// }
/// let p = Gc::new(Pair { left: Gc::new(1), right: None, cache: vec![] });
/// assert_eq!(arenagc::gc::get_referents(&p).len(), 1);
/// ```
///
/// # Safety
/// `trace` must visit every `Gc` and `Weak` the value owns, each exactly once, the same set on
/// every call while the value is not mutated, and must not create, drop or mutate `Gc`s.
/// Missing an edge only keeps objects alive; visiting a reference the value does not own (or
/// one it shares with other holders, as through an `Rc`) can make the collector clear an
/// object that is still in use.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Trace`, so the collector cannot see inside it",
    label = "`{Self}` does not implement `Trace`",
    note = "add #[trace(skip)] to a field that holds no Gc; a type that holds Gcs needs #[derive(Trace)] or an `unsafe impl Trace`"
)]
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

/// The memory of a `Gc<T>` object after its `GcHead`. `T` is the concrete type when the
/// object is made; a `Gc<dyn Trait>` sees the same memory as `RustObject<dyn Trait>` (the value
/// is the last field, so the unsizing keeps every offset: `unsize.rs`). The header is in an
/// `UnsafeCell` because shared views of the whole object (`GcBox`) exist while counts change.
#[repr(C)]
pub(crate) struct RustObject<T: ?Sized> {
    header: UnsafeCell<ObjectHeader>,
    value: UnsafeCell<ManuallyDrop<T>>,
}

/// The `TypeObject` of a Rust type, followed by what only `Gc`'s own drop uses: the last drop's
/// body for the concrete type, which a `Gc<dyn Trait>` cannot name. Every `Gc` object's type
/// (`ObjectHeader::ty`) points at the `ty` of one of these.
#[repr(C)]
pub(crate) struct RustType {
    ty: TypeObject,
    /// `dealloc::<T>`: the drop of the last reference (trashcan, protocol, `Drop` unwinding as
    /// from any `Drop`, not contained as the `TypeObject`'s `dealloc` is).
    drop_last: unsafe fn(*mut ObjectHeader),
}

/// Holder of the compile-time `TypeObject` of `T`.
pub(crate) struct TypeFor<T>(PhantomData<T>);

impl<T: Trace> TypeFor<T> {
    pub(crate) const TYPE: &'static TypeObject = &Self::RUST.ty;

    const RUST: &'static RustType = &RustType {
        ty: TypeObject {
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
        },
        drop_last: dealloc::<T>,
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
            let value: &T = &*(*o).value.get();
            let mut tracer = Tracer::new(visit, arg);
            if tracer.is_type_query() {
                tracer.answer_type_query(TypeId::of::<T>(), value as *const T as *const ());
                return 0;
            }
            value.trace(&mut tracer);
        }
    }
    0
}

unsafe extern "C" fn clear_tramp<T: Trace>(obj: *mut ObjectHeader) -> c_int {
    let o = obj as *mut RustObject<T>;
    if core::mem::needs_drop::<T>() {
        // SAFETY: obj is a live RustObject<T> (the collector holds a reference); it stays
        // there if the value's Drop panics.
        unsafe { contain(obj, "the Drop of the value", || drop_value::<T>(o)) };
    } else {
        // SAFETY: as above; dropping runs no code.
        unsafe { drop_value::<T>(o) };
    }
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
        // SAFETY: the object lives through the call (the caller's reference).
        unsafe { contain(obj, "the finalizer", || f(&tmp)) };
    }
}

unsafe extern "C" fn del_tramp<T: Trace>(obj: *mut ObjectHeader) {
    if let Some(f) = T::LEGACY_DEL {
        // SAFETY: as for finalize_tramp.
        let tmp = ManuallyDrop::new(unsafe { Gc::<T>::from_raw(obj) });
        // SAFETY: as for finalize_tramp.
        unsafe { contain(obj, "the legacy del", || f(&tmp)) };
    }
}

unsafe extern "C" fn dealloc_tramp<T: Trace>(obj: *mut ObjectHeader) {
    // SAFETY: called at refcount zero, inside the trashcan (object::dealloc or its drain); a
    // panicking Drop leaves the object's memory in place (it leaks).
    unsafe { contain(obj, "the Drop of the value", || dealloc_body::<T>(obj)) }
}

/// The drop of a `Gc<T>`'s last reference: the body inside the object layer's trashcan, called
/// directly (the trashcan calls `dealloc_tramp` for an object it put off).
#[inline(never)]
unsafe fn dealloc<T: Trace>(obj: *mut ObjectHeader) {
    // SAFETY: obj is a live Gc<T> object with refcount 0; dealloc_body deallocates it, as its
    // type's dealloc (dealloc_tramp) does.
    unsafe { object::dealloc_with(obj, |o| dealloc_body::<T>(o)) }
}

/// Deallocate a `Gc<T>` object whose count reached zero: the protocol of `dealloc.rs`, with
/// the compile-time type (so its tests fold away) and the value as the payload. Inlined into
/// both callers, so neither path pays a call more than the trashcan's.
#[inline(always)]
unsafe fn dealloc_body<T: Trace>(obj: *mut ObjectHeader) {
    let st = current();
    let ty = TypeFor::<T>::TYPE;
    // SAFETY: obj is a live RustObject<T> with refcount 0; nobody else can reach it except
    // through weak references, which read it as dying and are cleared before the value goes.
    unsafe {
        if !is_cleared(obj) {
            if T::FINALIZE.is_some() && dealloc::finalize_once(st, obj, ty, finalize_tramp::<T>) {
                return;
            }
            if T::LEGACY_DEL.is_some() && dealloc::legacy_del(st, obj, ty, del_tramp::<T>) {
                return;
            }
        }
        // A value without drop glue runs no code: no need to mark it cleared first.
        let o = obj as *mut RustObject<T>;
        dealloc::release(st, obj, ty, || {
            if core::mem::needs_drop::<T>() {
                drop_value::<T>(o)
            }
        });
    }
}

/// A strong, counted reference to a `T` managed by the cycle collector.
///
/// `clone` takes a reference, `drop` gives one up; the last drop frees at once. Reference cycles
/// are found and freed by [`crate::gc::collect`] (and automatically on allocation thresholds).
///
/// `T` may be unsized: a `Gc<dyn Trait>` (or `Gc<[E]>`) is made from a `Gc` of a concrete type
/// by [`Gc::unsize`] or [`gc_dyn!`](crate::gc_dyn), and is traced, collected and dropped as the
/// concrete object it is (`unsize.rs`).
pub struct Gc<T: ?Sized> {
    ptr: NonNull<RustObject<T>>,
    _not_send: PhantomData<*const T>,
}

impl<T: ?Sized> sealed::Sealed for Gc<T> {}
impl<T: ?Sized> AsObject for Gc<T> {
    #[inline(always)]
    fn as_object(&self) -> *mut ObjectHeader {
        self.ptr.as_ptr().cast()
    }
}

impl<T: ?Sized> Edge for Gc<T> {
    const GC_OBJECT: bool = true;

    #[inline(always)]
    fn edge_object(&self) -> *mut ObjectHeader {
        self.as_object()
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
        if T::FINALIZE.is_some() || T::LEGACY_DEL.is_some() {
            st.finalizer_types.set(true); // (a constant test: nothing for other types)
        }
        let layout = Layout::new::<RustObject<T>>();
        let obj = schedule::alloc_counted(st, TypeFor::<T>::TYPE, layout);
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
}

impl<T: ?Sized> Gc<T> {
    /// Whether both point to the same object (the addresses: two `Gc<dyn Trait>` of one
    /// object are equal whatever their vtables).
    #[inline]
    pub fn ptr_eq(a: &Gc<T>, b: &Gc<T>) -> bool {
        core::ptr::addr_eq(a.ptr.as_ptr(), b.ptr.as_ptr())
    }

    /// Strong references to the object.
    #[inline]
    pub fn strong_count(this: &Gc<T>) -> usize {
        // SAFETY: the object is live while `this` is.
        unsafe { (*this.as_object()).refcnt as usize }
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
        let o = this.ptr.as_ptr();
        // SAFETY: the object is live while `this` is; a value not cleared is initialized and
        // only dropped by the collector when no live handle can reach it. The projection keeps
        // `T`'s metadata (a vtable or a length), which describes the value (`unsize.rs`).
        unsafe {
            if is_cleared(o.cast()) {
                None
            } else {
                Some(&**UnsafeCell::raw_get(&raw const (*o).value))
            }
        }
    }

    /// The object's address (identity).
    #[inline]
    pub fn as_ptr(this: &Gc<T>) -> *const ObjectHeader {
        this.as_object()
    }
}

impl<T: ?Sized> Drop for Gc<T> {
    #[inline(always)]
    fn drop(&mut self) {
        let obj = self.as_object();
        // SAFETY: we own one reference; at zero nobody else holds the object. Every Gc
        // object's type is the `ty` of a `RustType` (`TypeFor`, invariants), its first field
        // (`repr(C)`), whose `drop_last` is the concrete type's `dealloc`.
        unsafe {
            (*obj).refcnt -= 1;
            if (*obj).refcnt == 0 {
                ((*(*obj).ty.cast::<RustType>()).drop_last)(obj);
            }
        }
    }
}
