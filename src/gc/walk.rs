//! Who holds what, without collecting: the collector's `update_refs` and `subtract_refs` run
//! over *every* tracked object (generations 0..2 and the permanent one), in place, so that
//! afterwards each object's gc_refs is the number of references to it from outside the
//! tracked graph. Those with gc_refs > 0, and the frozen ones, are the *roots* `path_to` and
//! the pictures speak of. Nothing is moved: a [`Walk`] restores every `prev` link when it ends.
//!
//! | step                 | every tracked object's `prev`                 | lists          |
//! |----------------------|-----------------------------------------------|----------------|
//! | before               | previous node, sticky flags                   | as they were   |
//! | `Walk::start`: refs  | refcnt `<< PREV_SHIFT`, COLLECTING, sticky    | untouched      |
//! | `Walk::start`: subtract | gc_refs = refs from outside the graph      | untouched      |
//! | the caller's use     | gc_refs, or (`path.rs`) a parent link with COLLECTING cleared once reached | untouched |
//! | `Walk` dropped       | previous node again, sticky flags, no COLLECTING | as they were |
//!
//! # Invariants
//!
//! - Only `prev` words change, and only while the walk lives; `next` links are never written,
//!   so every list can be walked, and the `prev` links rebuilt from them (as `move_unreachable`
//!   rebuilds young's), whatever the caller stored meanwhile, provided it kept the sticky
//!   flags. The drop restores them also when a panic unwinds.
//! - While a walk lives nothing may link, unlink or free a tracked object. The walk runs only
//!   `traverse` functions (which must not change anything) and marks the runtime `collecting`,
//!   so no collection starts; it refuses to start during a collection
//!   (`GcError::CollectionRunning`: the collector's working lists are not generations).
//! - The references counted are the ones `traverse` reports: gc_refs of an object = its
//!   refcount - references from tracked objects (saturating at 0, as in the collector).
//!   References from untracked objects, from handles (`Gc`, `AnyGc`) in Rust variables and
//!   from C pointers are "from outside".
//!
//! May touch: `list.rs`, `visit.rs` (the collector's decref), `runtime.rs`, `diag.rs`.

use core::ffi::{c_int, c_void};
use std::collections::HashMap;

use super::diag::GcError;
use super::list::{self, Head, next, set_prev};
use super::runtime::{GcState, UserCode};
use super::visit::{decref_marker, gc_refs, visit_decref};
use crate::config::NUM_GENERATIONS;
use crate::object::{
    self, ObjectHeader, PREV_COLLECTING, PREV_SHIFT, PREV_STICKY, as_gc, from_gc, type_of,
};

/// The index of the permanent generation in [`Walk::lists`].
pub(crate) const FROZEN: usize = NUM_GENERATIONS;

/// A census of external references in progress (see the module docs); restores the lists on
/// drop.
pub(crate) struct Walk<'a> {
    st: &'a GcState,
    lists: [Head; NUM_GENERATIONS + 1],
    _user_code: UserCode,
}

/// `subtract_refs`' state when some untracked objects are watched.
struct Subtract<'w> {
    /// Untracked object -> references to it from tracked objects.
    watch: &'w mut HashMap<usize, usize>,
}

unsafe extern "C" fn visit_subtract(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    // SAFETY: arg is Walk::start's Subtract.
    let s = unsafe { &mut *(arg as *mut Subtract<'_>) };
    if let Some(n) = s.watch.get_mut(&(obj as usize)) {
        *n += 1;
    }
    // SAFETY: obj is null or a live object (traverse's contract); in the refs phase.
    unsafe { visit_decref(obj, core::ptr::null_mut()) }
}

impl<'a> Walk<'a> {
    /// Compute every tracked object's gc_refs (see the module docs), counting in `watch` the
    /// references from tracked objects to each object named there (untracked ones: a tracked
    /// object's count is its gc_refs). `Err(CollectionRunning)` from inside a collection.
    ///
    /// # Safety
    /// `st` is the current runtime; its lists are valid; `watch` names live objects.
    pub(crate) unsafe fn start(
        st: &'a GcState,
        watch: &mut HashMap<usize, usize>,
    ) -> Result<Walk<'a>, GcError> {
        if st.collecting.get() {
            return Err(GcError::CollectionRunning);
        }
        let _user_code = UserCode::enter();
        st.collecting.set(true);
        let lists = [
            st.gen_head(0),
            st.gen_head(1),
            st.gen_head(2),
            st.permanent.get(),
        ];
        let walk = Walk {
            st,
            lists,
            _user_code,
        };
        // SAFETY: valid lists of live objects; only prev words change (see the invariants).
        unsafe {
            for &l in &walk.lists {
                list::validate(l, false, false);
                list::for_each(l, |g| {
                    let refcnt = (*from_gc(g)).refcnt.max(0) as usize;
                    (*g).prev =
                        ((*g).prev & PREV_STICKY) | PREV_COLLECTING | (refcnt << PREV_SHIFT);
                });
            }
            if watch.is_empty() {
                // The collector's own visit: Rust traces inline it.
                for &l in &walk.lists {
                    list::for_each(l, |g| {
                        object::traverse(from_gc(g), visit_decref, decref_marker())
                    });
                }
            } else {
                let mut s = Subtract { watch };
                let arg = &mut s as *mut Subtract<'_> as *mut c_void;
                for &l in &walk.lists {
                    list::for_each(l, |g| object::traverse(from_gc(g), visit_subtract, arg));
                }
            }
        }
        Ok(walk)
    }

    /// The lists walked: generations 0, 1, 2, then the permanent one ([`FROZEN`]).
    pub(crate) fn lists(&self) -> [Head; NUM_GENERATIONS + 1] {
        self.lists
    }

    /// The head of `obj` if it is one of the walked (tracked) objects not yet marked reached
    /// by [`reach`](Walk::reach) (every tracked object, before the caller marks any).
    ///
    /// # Safety
    /// `obj` is a live object.
    #[inline]
    pub(crate) unsafe fn unreached(&self, obj: *mut ObjectHeader) -> Option<Head> {
        // SAFETY: caller's contract; GC objects have a head.
        unsafe {
            if !type_of(obj).is_gc() {
                return None;
            }
            let g = as_gc(obj);
            ((*g).prev & PREV_COLLECTING != 0).then_some(g)
        }
    }

    /// gc_refs of a walked object not yet marked reached: its references from outside.
    ///
    /// # Safety
    /// `g` is the head of a walked object for which [`unreached`](Walk::unreached) holds.
    #[inline]
    pub(crate) unsafe fn external(&self, g: Head) -> usize {
        // SAFETY: caller's contract.
        unsafe { gc_refs(g) }
    }

    /// Mark a walked object reached, storing `parent` (a head, or null) in its `prev` word; its
    /// gc_refs is gone afterwards.
    ///
    /// # Safety
    /// `g` is the head of a walked object.
    #[inline]
    pub(crate) unsafe fn reach(&self, g: Head, parent: Head) {
        // SAFETY: caller's contract; heads are 16-aligned, so the flags stay clear of it.
        unsafe { (*g).prev = ((*g).prev & PREV_STICKY) | parent as usize }
    }

    /// The parent stored by [`reach`](Walk::reach) (null for none).
    ///
    /// # Safety
    /// `g` is the head of a walked object marked reached.
    #[inline]
    pub(crate) unsafe fn parent(&self, g: Head) -> Head {
        // SAFETY: caller's contract.
        unsafe { list::prev(g) }
    }
}

impl Drop for Walk<'_> {
    fn drop(&mut self) {
        // SAFETY: the next links are untouched, so each list is walked as it was; prev words
        // are rebuilt behind the walk with their sticky flags (move_unreachable's scheme).
        unsafe {
            for &l in &self.lists {
                let mut prv = l;
                let mut g = next(l);
                while g != l {
                    (*g).prev = ((*g).prev & PREV_STICKY) | prv as usize;
                    prv = g;
                    g = next(g);
                }
                set_prev(l, prv);
                list::validate(l, false, false);
            }
        }
        self.st.collecting.set(false);
    }
}
