//! Objects: the header every object starts with, the GC head in front of tracked objects, and
//! the type descriptor shared with C.
//!
//! ```text
//!  GC-tracked object:  [ GcHead: next | prev+flags (16 B) ][ ObjectHeader: refcnt | type (16 B) ][ payload ]
//!  untracked object:                                       [ ObjectHeader: refcnt | type (16 B) ][ payload ]
//!                                                           ^ the object pointer points here
//! ```
//!
//! # Invariants
//!
//! - `ObjectHeader` and `GcHead` are `#[repr(C)]` and exactly 16 bytes each (checked at compile
//!   time); object memory and every `GcHead` (list sentinels too) are 16-aligned, so the low
//!   four bits of every `GcHead` address are zero and free to carry flags.
//! - An object of a type with [`TPFLAGS_HAVE_GC`] has a `GcHead` right before its header; an
//!   object without it has none. `basic_size` counts the header and payload, not the `GcHead`.
//! - `GcHead.next == 0` exactly when the object is not tracked by a collector.
//! - Bit table of a `GcHead` (the same as CPython 3.11):
//!
//!   | word | bit | name                 | meaning                                                   |
//!   |------|-----|----------------------|-----------------------------------------------------------|
//!   | prev | 0   | `PREV_FINALIZED`     | the PEP 442 finalizer has run; it never runs again        |
//!   | prev | 1   | `PREV_COLLECTING`    | in the set being collected (only during a collection)     |
//!   | prev | 2   | `PREV_CLEARED`       | the payload was dropped (`clear` ran); never read again   |
//!   | prev | 3   | `PREV_HAS_WEAKREFS`  | the runtime's side table holds this object's weakrefs     |
//!   | prev | 4.. | pointer or gc_refs   | previous node; during `update_refs..move_unreachable` the |
//!   |      |     |                      | count of references from outside the set, `<< 4`          |
//!   | next | 0   | `NEXT_UNREACHABLE`   | on the tentatively unreachable list (`move_unreachable`)  |
//!
//!   Every bit but `PREV_COLLECTING` is *sticky*: it follows the object through every list
//!   operation, untracking and the trashcan (`PREV_STICKY`).
//! - Memory comes from [`ArenaAlloc`] directly (pools up to 512 bytes, the system allocator
//!   above), never from the program's global allocator. This layer knows nothing of collectors:
//!   `decref` reaching zero calls the type's `dealloc` (through the trashcan, `trash.rs`), which
//!   the layer above supplies.
//! - `refcnt > 0`: live. `refcnt == 0`: its deallocation has begun. `refcnt < 0`: put off by the
//!   trashcan (the word holds the trashcan's link, see `trash.rs`). So `refcnt <= 0` reads as
//!   "dying" everywhere (weak references never hand such an object out).
//!
//! | file       | holds                                                                     |
//! |------------|---------------------------------------------------------------------------|
//! | `mod.rs`   | the header, the GC head and its bits, `TypeObject`, allocation, counts    |
//! | `trash.rs` | the trashcan: every deallocation from a count reaching zero goes through it |
//!
//! May touch: `crate::alloc` (memory), `crate::config` (`TRASH_LIMIT`), `crate::tls` (the
//! trashcan's two words). Nothing of `gc`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_char, c_int, c_void};

use crate::alloc::ArenaAlloc;

mod trash;

pub use trash::dealloc;
pub(crate) use trash::{dealloc_with, deallocating, drain_trash};

/// The start of every object: a plain (non-atomic) reference count and the object's type.
#[repr(C)]
#[derive(Debug)]
pub struct ObjectHeader {
    /// Strong references. The object is deallocated when it drops to zero.
    pub refcnt: isize,
    /// The type; lives at least as long as every object of it.
    pub ty: *const TypeObject,
}

/// The collector's links, in front of the header of objects that can be tracked.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct GcHead {
    /// Next node (| `NEXT_UNREACHABLE`); 0 when untracked.
    pub next: usize,
    /// Previous node or gc_refs `<< PREV_SHIFT`, | the `PREV_*` flags.
    pub prev: usize,
}

const _: () = assert!(size_of::<ObjectHeader>() == 16);
const _: () = assert!(size_of::<GcHead>() == 16);
const _: () = assert!(align_of::<GcHead>() > PREV_FLAGS && size_of::<GcHead>() % OBJECT_ALIGN == 0);

/// Alignment of every object's memory (and of payloads after the header).
pub const OBJECT_ALIGN: usize = 16;
/// `prev` bit: the finalizer has run.
pub const PREV_FINALIZED: usize = 1;
/// `prev` bit: the object is in the set being collected.
pub const PREV_COLLECTING: usize = 2;
/// `prev` bit: the payload was dropped by `clear` (or deallocation); it is never read again.
pub const PREV_CLEARED: usize = 4;
/// `prev` bit: the object's weakref list lives in its runtime's side table.
pub const PREV_HAS_WEAKREFS: usize = 8;
/// All `prev` flag bits.
pub const PREV_FLAGS: usize = PREV_FINALIZED | PREV_COLLECTING | PREV_CLEARED | PREV_HAS_WEAKREFS;
/// The flags that follow an object everywhere (all but COLLECTING).
pub const PREV_STICKY: usize = PREV_FLAGS & !PREV_COLLECTING;
/// gc_refs are stored in `prev` shifted by this much.
pub const PREV_SHIFT: u32 = 4;
/// `prev` bits holding a pointer or gc_refs.
pub const PREV_MASK: usize = !PREV_FLAGS;
/// `next` bit: the object is on the tentatively unreachable list.
pub const NEXT_UNREACHABLE: usize = 1;

/// `weaklist_offset` value: weak references are supported without a slot in the object; the
/// runtime keeps the list heads of the objects that have some (`PREV_HAS_WEAKREFS`).
pub const WEAKLIST_SIDE_TABLE: isize = -1;

/// Type flag: objects have a `GcHead` and may be tracked (CPython's `Py_TPFLAGS_HAVE_GC`).
pub const TPFLAGS_HAVE_GC: u64 = 1 << 14;

/// Called by a traverse function for each referent; a nonzero return stops the traversal.
pub type VisitProc = unsafe extern "C" fn(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int;
/// Calls `visit(referent, arg)` for each object `obj` holds a strong reference to.
pub type TraverseProc =
    unsafe extern "C" fn(obj: *mut ObjectHeader, visit: VisitProc, arg: *mut c_void) -> c_int;
/// Drops the references `obj` holds (breaking cycles); returns 0.
pub type InquiryProc = unsafe extern "C" fn(obj: *mut ObjectHeader) -> c_int;
/// A function of one object: finalize, legacy del, dealloc.
pub type DestructorProc = unsafe extern "C" fn(obj: *mut ObjectHeader);

/// A type: shared with C unchanged (`#[repr(C)]`, C function pointers).
#[repr(C)]
#[derive(Debug)]
pub struct TypeObject {
    /// NUL-terminated name, for debug output.
    pub name: *const c_char,
    /// Bytes of header plus payload (not counting the `GcHead`).
    pub basic_size: usize,
    /// `TPFLAGS_*` bits.
    pub flags: u64,
    /// Offset from the object pointer of a `*mut ObjectHeader` slot heading the list of weak
    /// references to the object; 0 when the type does not support weak references;
    /// [`WEAKLIST_SIDE_TABLE`] (GC types only) when the list heads live in the runtime.
    pub weaklist_offset: isize,
    /// Visit every referent (required for GC types).
    pub traverse: Option<TraverseProc>,
    /// Drop references to break cycles (the collector calls it on garbage).
    pub clear: Option<InquiryProc>,
    /// PEP 442 finalizer: runs at most once per object, may resurrect it.
    pub finalize: Option<DestructorProc>,
    /// Legacy finalizer (`tp_del`): a cycle holding such an object is uncollectable.
    pub del: Option<DestructorProc>,
    /// Called when the reference count drops to zero; must release everything and the memory.
    pub dealloc: DestructorProc,
    /// Bytes per item of a variable-size type (CPython's `tp_itemsize`): an object made by
    /// [`object_alloc_var`] with `n` items has `basic_size + n * item_size` bytes. 0 for a
    /// fixed-size type. Last, so C initializers written without it stay valid.
    pub item_size: usize,
}

// SAFETY: a TypeObject is immutable after construction; `name` points to a static string.
unsafe impl Sync for TypeObject {}

impl TypeObject {
    /// Whether objects of this type carry a `GcHead`.
    #[inline]
    pub const fn is_gc(&self) -> bool {
        self.flags & TPFLAGS_HAVE_GC != 0
    }

    /// Whether objects of this type can have weak references: a slot in the payload, or the
    /// runtime's side table (GC types only).
    pub const fn supports_weakrefs(&self) -> bool {
        self.weaklist_offset > 0 || (self.weaklist_offset == WEAKLIST_SIDE_TABLE && self.is_gc())
    }

    /// The name as a string (lossy), "?" when null.
    ///
    /// # Safety
    /// `name` is null or a NUL-terminated string that lives as long as the type, as it must be
    /// for every type an object is created with. (The fields are public, for C, so safe code
    /// can build a type with any pointer there; reading it is what needs this promise.)
    pub unsafe fn name_str(&self) -> std::borrow::Cow<'_, str> {
        if self.name.is_null() {
            return "?".into();
        }
        // SAFETY: the caller's contract.
        unsafe { core::ffi::CStr::from_ptr(self.name) }.to_string_lossy()
    }

    #[inline(always)]
    fn layout(&self) -> Layout {
        match self.layout_var(0) {
            Some(l) => l,
            None => panic!("object size {} too large", self.basic_size),
        }
    }

    /// The memory layout of an object with `nitems` items (GcHead included); None when the
    /// size overflows.
    #[inline]
    pub fn layout_var(&self, nitems: usize) -> Option<Layout> {
        let gc = if self.is_gc() { size_of::<GcHead>() } else { 0 };
        let size = nitems
            .checked_mul(self.item_size)?
            .checked_add(self.basic_size.max(size_of::<ObjectHeader>()))?
            .checked_add(gc)?;
        Layout::from_size_align(size, OBJECT_ALIGN).ok()
    }
}

/// The type of `obj`.
///
/// # Safety
/// `obj` must point to a live object.
#[inline(always)]
pub unsafe fn type_of(obj: *mut ObjectHeader) -> &'static TypeObject {
    // SAFETY: the caller passes a live object; its type outlives it (treated as 'static).
    unsafe { &*(*obj).ty }
}

/// Call `obj`'s traverse with `visit` and `arg` (nothing when its type has none).
///
/// # Safety
/// `obj` is a live object; `visit` accepts `arg`.
#[inline(always)]
pub(crate) unsafe fn traverse(obj: *mut ObjectHeader, visit: VisitProc, arg: *mut c_void) {
    // SAFETY: obj is live; a traverse function accepts any visit proc with its arg.
    unsafe {
        if let Some(t) = type_of(obj).traverse {
            t(obj, visit, arg);
        }
    }
}

/// The `GcHead` in front of `obj`.
///
/// # Safety
/// `obj` must be an object of a GC type (the result is only meaningful then).
#[inline(always)]
pub unsafe fn as_gc(obj: *mut ObjectHeader) -> *mut GcHead {
    // SAFETY: objects of GC types are preceded by their GcHead in the same allocation.
    unsafe { (obj as *mut GcHead).sub(1) }
}

/// The object behind `gc`.
///
/// # Safety
/// `gc` must be the head of an object (not a list sentinel).
#[inline(always)]
pub unsafe fn from_gc(gc: *mut GcHead) -> *mut ObjectHeader {
    // SAFETY: the header follows the GcHead in the same allocation.
    unsafe { gc.add(1) as *mut ObjectHeader }
}

/// Allocate an object of `ty` with refcount 1, untracked, payload uninitialized. Null when out
/// of memory.
///
/// # Safety
/// `ty` must outlive every object of it.
#[inline]
pub unsafe fn object_alloc(ty: *const TypeObject) -> *mut ObjectHeader {
    // SAFETY: the caller guarantees `ty` is a live type.
    let layout = unsafe { (*ty).layout() };
    // SAFETY: forwarded.
    unsafe { object_alloc_layout(ty, layout, false) }
}

/// Allocate an object of a variable-size type with `nitems` items (`basic_size + nitems *
/// item_size` bytes), refcount 1, untracked, payload uninitialized. Null when out of memory or
/// when the size overflows.
///
/// # Safety
/// `ty` must outlive every object of it.
pub unsafe fn object_alloc_var(ty: *const TypeObject, nitems: usize) -> *mut ObjectHeader {
    // SAFETY: forwarded.
    unsafe { object_alloc_var_with(ty, nitems, false) }
}

/// [`object_alloc_var`] with the payload zeroed (a block the allocator knows to be zero is not
/// cleared again).
///
/// # Safety
/// As [`object_alloc_var`].
pub unsafe fn object_alloc_var_zeroed(ty: *const TypeObject, nitems: usize) -> *mut ObjectHeader {
    // SAFETY: forwarded.
    unsafe { object_alloc_var_with(ty, nitems, true) }
}

/// # Safety
/// As [`object_alloc_var`].
unsafe fn object_alloc_var_with(
    ty: *const TypeObject,
    nitems: usize,
    zero: bool,
) -> *mut ObjectHeader {
    // SAFETY: the caller guarantees `ty` is a live type.
    match unsafe { (*ty).layout_var(nitems) } {
        // SAFETY: forwarded.
        Some(layout) => unsafe { object_alloc_layout(ty, layout, zero) },
        None => core::ptr::null_mut(),
    }
}

/// # Safety
/// `ty` is live; `layout` is `ty`'s layout for some item count.
#[inline]
unsafe fn object_alloc_layout(
    ty: *const TypeObject,
    layout: Layout,
    zero: bool,
) -> *mut ObjectHeader {
    // SAFETY: the caller guarantees `ty` is a live type.
    let t = unsafe { &*ty };
    // SAFETY: layout has nonzero size.
    let mem = unsafe {
        if zero {
            GlobalAlloc::alloc_zeroed(&ArenaAlloc, layout)
        } else {
            GlobalAlloc::alloc(&ArenaAlloc, layout)
        }
    };
    if mem.is_null() {
        return core::ptr::null_mut();
    }
    let obj = if t.is_gc() {
        let gc = mem as *mut GcHead;
        // SAFETY: mem is a fresh 16-aligned block large enough for GcHead + header.
        unsafe { gc.write(GcHead { next: 0, prev: 0 }) };
        // SAFETY: as above.
        unsafe { mem.add(size_of::<GcHead>()) as *mut ObjectHeader }
    } else {
        mem as *mut ObjectHeader
    };
    // SAFETY: obj is inside the fresh block.
    unsafe { obj.write(ObjectHeader { refcnt: 1, ty }) };
    obj
}

/// Release the memory of `obj` (nothing else: no untracking, no referents).
///
/// # Safety
/// `obj` came from [`object_alloc`], [`object_alloc_var`] or [`object_alloc_var_zeroed`], is
/// untracked, and is not used afterwards.
#[inline]
pub unsafe fn object_free(obj: *mut ObjectHeader) {
    // SAFETY: obj is live until this call; its type is its own.
    unsafe { object_free_as(obj, type_of(obj)) }
}

/// [`object_free`] for a caller that knows `obj`'s type: with a compile-time `t` (a Rust
/// `Gc<T>`'s) the layout is a constant and the allocator's free path inlines.
///
/// # Safety
/// As [`object_free`], and `t` is `obj`'s type.
#[inline(always)]
pub(crate) unsafe fn object_free_as(obj: *mut ObjectHeader, t: &TypeObject) {
    // SAFETY: GC objects have a head in front of the header.
    let tracked = t.is_gc() && unsafe { (*as_gc(obj)).next } != 0;
    debug_assert!(!tracked, "free of a tracked object");
    let mem = if t.is_gc() {
        // SAFETY: GC objects start with their GcHead.
        unsafe { as_gc(obj) as *mut u8 }
    } else {
        obj as *mut u8
    };
    if t.item_size != 0 {
        // A variable-size object does not record its item count: free it by address (the
        // allocator's address map tells pool blocks from system blocks).
        // SAFETY: mem came from ArenaAlloc, which the unsized free accepts.
        return unsafe { crate::alloc::c::free(mem) };
    }
    // SAFETY: mem/layout are exactly what object_alloc used.
    unsafe { GlobalAlloc::dealloc(&ArenaAlloc, mem, t.layout()) }
}

/// Take a strong reference.
///
/// # Safety
/// `obj` must be live.
#[inline(always)]
pub unsafe fn incref(obj: *mut ObjectHeader) {
    // SAFETY: live object; refcounts are only touched by the thread attached to its runtime.
    unsafe { (*obj).refcnt += 1 }
}

/// Drop a strong reference; at zero the type's `dealloc` runs, inside the trashcan
/// ([`dealloc`]).
///
/// # Safety
/// `obj` must be live and the caller must own the reference it gives up.
#[inline(always)]
pub unsafe fn decref(obj: *mut ObjectHeader) {
    // SAFETY: as for incref; at zero nobody else holds the object.
    unsafe {
        (*obj).refcnt -= 1;
        if (*obj).refcnt == 0 {
            dealloc(obj)
        }
    }
}

/// Unlink the `GcHead` `g` from the list it is on and mark it untracked (`next = 0`, only the
/// sticky flags kept in `prev`); nothing when it is untracked already. The one unlink of the
/// crate: the collector's lists (`gc::list`) and the trashcan both use it.
///
/// # Safety
/// `g` is the head of a live object, untracked or on a valid list (whose neighbours are live
/// nodes or its sentinel) outside the collector's refs phase.
#[inline(always)]
pub(crate) unsafe fn untrack_head(g: *mut GcHead) {
    // SAFETY: caller's contract; the neighbours are live.
    unsafe {
        if (*g).next == 0 {
            return;
        }
        let p = ((*g).prev & PREV_MASK) as *mut GcHead;
        let n = (*g).next as *mut GcHead;
        (*p).next = n as usize;
        (*n).prev = ((*n).prev & !PREV_MASK) | p as usize;
        (*g).next = 0;
        (*g).prev &= PREV_STICKY;
    }
}

/// Whether `obj` has a `GcHead` and is on a collector's list.
///
/// # Safety
/// `obj` must be live.
#[inline]
pub unsafe fn is_tracked(obj: *mut ObjectHeader) -> bool {
    // SAFETY: live object; GC objects have a head.
    unsafe { type_of(obj).is_gc() && (*as_gc(obj)).next != 0 }
}

/// Whether the PEP 442 finalizer of `obj` has run.
///
/// # Safety
/// `obj` must be live.
#[inline]
pub unsafe fn is_finalized(obj: *mut ObjectHeader) -> bool {
    // SAFETY: live object; GC objects have a head.
    unsafe { type_of(obj).is_gc() && (*as_gc(obj)).prev & PREV_FINALIZED != 0 }
}

/// Call `f` on an object whose refcount is zero, lending it one reference; true when `f`
/// resurrected it (kept a reference).
///
/// # Safety
/// `obj` is live with refcount 0; `f` accepts it.
pub(crate) unsafe fn call_lending_reference(obj: *mut ObjectHeader, f: DestructorProc) -> bool {
    // SAFETY: caller's contract.
    unsafe {
        (*obj).refcnt = 1;
        f(obj);
        (*obj).refcnt -= 1;
        (*obj).refcnt != 0
    }
}

/// The weak-reference list slot inside `obj`, or null when its type has none (no weakref
/// support, or a side-table type).
///
/// # Safety
/// `obj` must be live.
#[inline]
pub unsafe fn weaklist_slot(obj: *mut ObjectHeader) -> *mut *mut ObjectHeader {
    // SAFETY: live object.
    let off = unsafe { type_of(obj) }.weaklist_offset;
    if off <= 0 {
        return core::ptr::null_mut();
    }
    // SAFETY: the type says a slot lives at this offset inside the object.
    unsafe { (obj as *mut u8).offset(off) as *mut *mut ObjectHeader }
}

#[cfg(test)]
mod tests;
