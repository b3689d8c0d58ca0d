//! The refs phase of a collection: `update_refs`, `subtract_refs` and `move_unreachable`
//! (CPython's `deduce_unreachable`), which split the collected set into what is reachable from
//! outside it and the rest. `collect.rs` runs it (and again on the unreachable set after
//! finalizers ran, for resurrected objects).
//!
//! | pass                        | when                                 | walks of the set |
//! |-----------------------------|--------------------------------------|------------------|
//! | `update_refs` + `subtract_refs` | young collections, the resurrection check, a full collection while the permanent generation holds objects | 2 |
//! | `update_and_subtract_refs`  | a full collection, permanent generation empty | 1 |
//! | `move_unreachable`          | always                               | 1 (+ revived)    |
//!
//! # Invariants
//!
//! - After `update_refs` + `subtract_refs`, or after `update_and_subtract_refs`: every object of
//!   the set has `PREV_COLLECTING` and gc_refs = its refcount minus the references from objects
//!   of the set (saturating at 0); its prev pointer is gone (only next links are trusted until
//!   `move_unreachable` rebuilds them).
//! - `update_and_subtract_refs` runs only when the set is every tracked object of the runtime
//!   (the oldest generation with all younger ones merged in, the permanent one empty): a
//!   tracked referent it sees before its own turn is then in the set, and is initialized on
//!   first sight (`visit::decref_all_gc`). Debug builds check that it initialized exactly the
//!   objects of the list.
//! - `move_unreachable` follows CPython's scheme (see its doc).
//!
//! May touch: `list.rs`, `visit.rs`. Nothing else of `gc`.

use core::ffi::c_void;

use super::list::{self, Head, next, prev, set_next, set_prev};
use super::visit::{
    Reach, decref_all_marker, decref_marker, gc_refs, init_refs, take_fused_inits, visit_decref,
    visit_decref_all, visit_reachable,
};
use crate::object::{self, NEXT_UNREACHABLE, PREV_COLLECTING, PREV_STICKY, from_gc};

/// `update_refs` + `subtract_refs` + `move_unreachable`: afterwards `base` holds what is
/// reachable from outside it (collecting flag cleared), `unreachable` the rest. Returns (objects
/// scanned, objects found unreachable). `everything`: `base` holds every tracked object of the
/// runtime, so the first two passes fuse into one (see the module invariants).
///
/// # Safety
/// `base` is a valid list of live objects, none with `PREV_COLLECTING`; `unreachable` a free
/// sentinel; `everything` only when `base` is all the runtime tracks.
pub(crate) unsafe fn deduce_unreachable(
    base: Head,
    unreachable: Head,
    everything: bool,
) -> (usize, usize) {
    // SAFETY: base is a valid list; unreachable a free sentinel.
    unsafe {
        list::validate(base, false, false);
        let total = if everything {
            update_and_subtract_refs(base)
        } else {
            let total = update_refs(base);
            subtract_refs(base);
            total
        };
        list::init(unreachable);
        let n = move_unreachable(base, unreachable);
        list::validate(base, false, false);
        list::validate(unreachable, true, true);
        (total, n)
    }
}

/// gc_refs = refcount, and set COLLECTING, on every object of `containers`; returns their
/// number.
unsafe fn update_refs(containers: Head) -> usize {
    let mut n = 0;
    // SAFETY: valid list of live objects.
    unsafe {
        list::for_each(containers, |g| {
            init_refs(g);
            n += 1;
        });
    }
    n
}

/// `update_refs` and `subtract_refs` in one walk, for a set that is every tracked object of the
/// runtime: each object is initialized when the walk reaches it or when it is first seen as a
/// referent, whichever comes first. Returns the number of objects.
unsafe fn update_and_subtract_refs(containers: Head) -> usize {
    let mut n = 0;
    take_fused_inits();
    // SAFETY: valid list of live objects, all the runtime tracks (the caller's contract).
    unsafe {
        list::for_each(containers, |g| {
            if (*g).prev & PREV_COLLECTING == 0 {
                init_refs(g);
                super::visit::note_fused_init();
            }
            object::traverse(from_gc(g), visit_decref_all, decref_all_marker());
            n += 1;
        });
    }
    debug_assert!(
        !cfg!(debug_assertions) || take_fused_inits() == n,
        "the fused refs pass initialized an object outside its list (a tracked object the \
         runtime does not hold in its generations: another runtime's?)"
    );
    n
}

/// Subtract the references between objects of `containers` from their gc_refs.
unsafe fn subtract_refs(containers: Head) {
    // SAFETY: valid list of live objects.
    unsafe {
        list::for_each(containers, |g| {
            object::traverse(from_gc(g), visit_decref, decref_marker())
        });
    }
}

/// Move objects of `young` with gc_refs 0 and not reachable from one with gc_refs > 0 to
/// `unreachable` (whose nodes get NEXT_UNREACHABLE). Restores young's prev pointers. Returns
/// the number of objects left on `unreachable`.
unsafe fn move_unreachable(young: Head, unreachable: Head) -> usize {
    let mut reach = Reach::new(young);
    let mut moved = 0usize;
    let arg = &mut reach as *mut Reach as *mut c_void;
    // SAFETY: young is in the refs phase; only next links are trusted while scanning, and prev
    // links are rebuilt behind the scan (CPython's scheme).
    unsafe {
        let mut prv = young;
        let mut g = next(young);
        while g != young {
            if gc_refs(g) > 0 {
                object::traverse(from_gc(g), visit_reachable, arg);
                // One write: the link behind the scan, the sticky flags, COLLECTING cleared.
                (*g).prev = ((*g).prev & PREV_STICKY) | prv as usize;
                prv = g;
            } else {
                set_next(prv, next(g));
                let last = prev(unreachable);
                (*last).next = NEXT_UNREACHABLE | g as usize;
                set_prev(g, last);
                (*g).next = NEXT_UNREACHABLE | unreachable as usize;
                set_prev(unreachable, g);
                moved += 1;
            }
            g = next(prv);
        }
        set_prev(young, prv);
        (*unreachable).next &= !NEXT_UNREACHABLE;
    }
    moved - reach.revived()
}
