//! The trashcan (CPython's `Py_TRASHCAN`): deallocations nest at most [`TRASH_LIMIT`] deep on a
//! thread; a deeper one is put off to a per-thread list that the outermost deallocation drains,
//! so freeing a chain of any length (each object holding the next) uses bounded stack.
//!
//! ```text
//!  count reaches 0 ──> dealloc(obj) / dealloc_with(obj, body)      (decref, Gc<T>::drop, ...)
//!       depth = TRASH_DEPTH
//!       depth >= TRASH_LIMIT ──> deposit: untrack (GC objects), link through refcnt, return
//!       else: TRASH_DEPTH = depth + 1; body(obj) (the type's dealloc); TRASH_DEPTH = depth
//!             depth == 0 and TRASH_LIST not empty ──> drain: at depth 1, pop each object,
//!                                                     refcnt = 0, its type's dealloc
//! ```
//!
//! Why here, in the object layer: every deallocation that starts from a count reaching zero
//! (`decref` from Rust, from the C ABI's `agc_object_decref`, from `AnyGc` and the collector;
//! `Gc<T>::drop`) passes through this layer, and putting an object off needs only what this
//! layer owns: the header, the `GcHead` layout, and two thread-local words. So C objects and
//! Rust objects share one trashcan, and the layer stays below the collector (it calls no
//! collector code; what a deallocation does is the type's `dealloc`, supplied from above).
//!
//! # The link of a deferred object
//!
//! Every object, GC or not, is linked through its refcount word, which holds
//! `!next` (the bitwise complement of the next deferred object's address, null at the end):
//!
//! | `refcnt`   | meaning                                                     |
//! |------------|-------------------------------------------------------------|
//! | `> 0`      | live                                                        |
//! | `0`        | its deallocation runs                                       |
//! | `< 0`      | deferred by the trashcan: `!refcnt` is the next one's address |
//!
//! User-space addresses are below `2^63`, so `!next` is negative for every address, null
//! included: a deferred object reads as dying (`refcnt <= 0`) to everyone, and a weak
//! reference never hands it out. A GC object is also untracked when deferred (its `GcHead`
//! unlinked, as CPython's trashcan requires), so no collection can see an object whose count
//! is not a count; its type's `dealloc` (a finalizer, resurrection) tracks it again if needed.
//!
//! # Invariants
//!
//! - `TRASH_DEPTH` = the deallocations running on this thread (nested), restarted at 1 by the
//!   drain; each level takes its increment back, also on unwind (a panicking `Drop` leaks its
//!   object, as with `Rc`, and the trashcan keeps working).
//! - `TRASH_LIST` = the deferred objects of this thread, each untracked with `refcnt < 0`.
//!   It is empty whenever `TRASH_DEPTH == 0`, except after a panic unwound out of the
//!   outermost deallocation; the next outermost one (or [`drain_trash`], which a runtime switch
//!   calls) drains it.
//! - A deferred object is deallocated on the thread, and under the runtime, that deferred it:
//!   runtimes do not switch while a deallocation runs (`gc::Runtime::attach`).

use super::{ObjectHeader, as_gc, type_of, untrack_head};
use crate::config::TRASH_LIMIT;
use crate::tls::{self, TRASH_DEPTH, TRASH_LIST};

/// Deallocate `obj`, whose count just reached zero: its type's `dealloc`, inside the trashcan.
/// What [`decref`](super::decref) does at zero.
///
/// # Safety
/// `obj` is a live object with refcount 0 that nobody else uses; its type's `dealloc` releases
/// it.
#[inline(never)]
pub unsafe fn dealloc(obj: *mut ObjectHeader) {
    // SAFETY: forwarded; the type's dealloc is the body for an object with count 0.
    unsafe { dealloc_with(obj, |o| (type_of(o).dealloc)(o)) }
}

/// Run `body(obj)`, the deallocation of `obj` (refcount 0), inside the trashcan: now, or, when
/// deallocations already nest `TRASH_LIMIT` deep, later through `obj`'s type's `dealloc` (which
/// must then do what `body` does). For callers that know the type (`Gc<T>::drop`), so the
/// body is a direct call.
///
/// # Safety
/// `obj` is a live object with refcount 0 that nobody else uses; `body` deallocates it.
#[inline(always)]
pub(crate) unsafe fn dealloc_with(obj: *mut ObjectHeader, body: impl FnOnce(*mut ObjectHeader)) {
    let depth = tls::get::<TRASH_DEPTH>();
    if depth >= TRASH_LIMIT {
        // SAFETY: caller's contract.
        unsafe { deposit(obj) };
        return;
    }
    tls::set::<TRASH_DEPTH>(depth + 1);
    let nesting = Nesting;
    body(obj);
    // Read back rather than kept across the body: one register less on the hot path.
    if nesting.leave() == 0 && tls::get::<TRASH_LIST>() != 0 {
        drain();
    }
}

/// Whether a deallocation runs on this thread (the code it runs, `Drop` impls, C `dealloc`s,
/// finalizers and weakref callbacks, is library-run code).
#[inline]
pub(crate) fn deallocating() -> bool {
    tls::get::<TRASH_DEPTH>() != 0
}

/// Drain the objects a panic left deferred (see the module invariants); nothing when there
/// are none or a deallocation runs.
#[inline]
pub(crate) fn drain_trash() {
    if tls::get::<TRASH_LIST>() != 0 && !deallocating() {
        drain();
    }
}

/// One level of the trashcan depth, entered by the caller (`TRASH_DEPTH += 1`): `leave`
/// takes it back, and so does dropping it, also when a `Drop` impl panics. Every level nested
/// inside takes its own back first, so `TRASH_DEPTH - 1` is always the depth this level found.
struct Nesting;

impl Nesting {
    /// Take the level back; the depth left.
    #[inline(always)]
    fn leave(self) -> usize {
        core::mem::forget(self);
        let depth = tls::get::<TRASH_DEPTH>() - 1;
        tls::set::<TRASH_DEPTH>(depth);
        depth
    }
}

impl Drop for Nesting {
    #[inline(always)]
    fn drop(&mut self) {
        tls::set::<TRASH_DEPTH>(tls::get::<TRASH_DEPTH>() - 1);
    }
}

/// Put off the deallocation of `obj` (refcount 0) to the outermost deallocation.
///
/// # Safety
/// `obj` is a live object with refcount 0 that nobody else uses.
#[cold]
#[inline(never)]
unsafe fn deposit(obj: *mut ObjectHeader) {
    // SAFETY: caller's contract; a GC object's head is its own, on a valid list or untracked.
    unsafe {
        debug_assert_eq!((*obj).refcnt, 0, "trashcan: deposit of a live object");
        if type_of(obj).is_gc() {
            untrack_head(as_gc(obj));
        }
        (*obj).refcnt = !(tls::get::<TRASH_LIST>() as isize);
        debug_assert!((*obj).refcnt < 0, "trashcan: an address at or above 2^63");
    }
    tls::set::<TRASH_LIST>(obj as usize);
}

/// Run the deferred deallocations; nesting restarts at 1, so they cannot drain again
/// recursively (what they defer in turn joins the list this loop empties).
#[cold]
#[inline(never)]
fn drain() {
    debug_assert_eq!(
        tls::get::<TRASH_DEPTH>(),
        0,
        "trashcan: drain inside a deallocation"
    );
    tls::set::<TRASH_DEPTH>(1);
    let _nesting = Nesting;
    loop {
        let obj = tls::get::<TRASH_LIST>() as *mut ObjectHeader;
        if obj.is_null() {
            break;
        }
        // SAFETY: objects on the list are untracked, with refcount !next, nobody else uses
        // them, and their type's dealloc releases them (deposit's contract).
        unsafe {
            tls::set::<TRASH_LIST>(!(*obj).refcnt as usize);
            (*obj).refcnt = 0;
            (type_of(obj).dealloc)(obj);
        }
    }
}
