//! The collection algorithm: CPython 3.11's `gc_collect_main`, phase by phase, with the same
//! names (`update_refs`, `subtract_refs`, `move_unreachable`, ...). When to collect is decided in
//! `schedule.rs`.
//!
//! # Phases and the state of each list
//!
//! | after phase                        | young / old                  | unreachable                        |
//! |------------------------------------|------------------------------|------------------------------------|
//! | merge younger gens                 | plain                        | -                                  |
//! | `update_refs`                      | prev = gc_refs, COLLECTING   | -                                  |
//! | `subtract_refs`                    | gc_refs = external refs      | -                                  |
//! | (or both fused, in a full collection with nothing frozen: `deduce.rs`) | the same | -           |
//! | `move_unreachable`                 | plain (COLLECTING cleared)   | COLLECTING, next has UNREACHABLE   |
//! | `move_legacy_finalizers`           | plain                        | COLLECTING; `finalizers`: plain    |
//! | `handle_weakrefs`                  | plain                        | weakrefs to it all cleared         |
//! | `finalize_garbage`                 | plain                        | each finalizer ran at most once    |
//! | `handle_resurrected_objects`       | + the resurrected            | still unreachable: COLLECTING      |
//! | `delete_garbage`                   | + survivors of `clear`       | empty                              |
//!
//! `move_legacy_finalizers` also notes whether any object of the set is or has a weakref, or
//! has a finalizer that has not run; `handle_weakrefs` and `finalize_garbage` (and so the
//! resurrection check, which only finalizers make necessary) are skipped when not. It only
//! clears the flags when the runtime has no live weakref and never tracked an object of a type
//! with a finalizer or legacy del (`GcState::finalizer_types`). Counts come
//! from `update_refs`/`move_unreachable` instead of walking the lists again.
//!
//! # Invariants
//!
//! - gc_refs of an object = its refcount minus the references from objects in the set; an
//!   object with gc_refs > 0 is referenced from outside and is reachable, as is everything it
//!   reaches. What remains is garbage (all of it, given exact `traverse` functions).
//! - Objects reachable from a legacy finalizer are never cleared: they go to `old` (and those
//!   with `del`, or all with `DEBUG_SAVEALL`, to `garbage`).
//! - The refs phase (`update_refs` .. `move_unreachable`) lives in `deduce.rs`, its visits in
//!   `visit.rs`, which `Tracer` shares: Rust `trace` code inlines them (recognised by a marker
//!   `arg` and by function address).
//! - A panic must not unwind through a phase: finalizers and `clear` run behind `extern "C"`
//!   trampolines (a panic aborts), Rust weakref callbacks abort on panic; gc callbacks run
//!   before and after the phases, where unwinding is safe (the `collecting` mark is reset).
//! - User code (weakref callbacks, finalizers, `clear` → `Drop`) runs only after
//!   `move_legacy_finalizer_reachable`, when every list is a plain list again; it may free
//!   objects of any list (they unlink themselves, or the trashcan unlinks them) and allocate
//!   (into generation 0); a nested collection returns at once because `collecting` is set by
//!   the caller, who also marks the thread as running library code (no runtime switch).
//! - Every object this file frees goes through `object::decref`, hence the trashcan.
//!
//! May touch: `list.rs`, `deduce.rs` (the refs phase), `weakref.rs` (clearing, callbacks), `runtime.rs` (the
//! state), `any.rs` (`garbage` entries), `diag.rs`, `leak.rs` (the `DEBUG_LEAK` report). Not
//! the handles, not the scheduler.

use core::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use super::any::AnyGc;
use super::deduce::deduce_unreachable;
use super::diag::{
    DEBUG_COLLECTABLE, DEBUG_LEAK, DEBUG_SAVEALL, DEBUG_STATS, DEBUG_UNCOLLECTABLE, abort_with,
    gc_eprintln,
};
use super::leak;
use super::list::{self, Head, next};
use super::runtime::GcState;
use super::weakref;
use crate::config::NUM_GENERATIONS;
use crate::object::{
    self, GcHead, NEXT_UNREACHABLE, ObjectHeader, PREV_COLLECTING, PREV_FINALIZED, as_gc, from_gc,
    type_of,
};

/// Collect `generation` (merging the younger ones). Returns (collected, uncollectable, time).
///
/// # Safety
/// `st` is the current runtime, its `collecting` mark is set and its lists are valid.
pub(crate) unsafe fn collect_main(st: &GcState, generation: usize) -> (usize, usize, Duration) {
    // The working lists' heads live on this frame: nothing may unwind out of it, or live
    // objects would stay linked to dead stack memory. User code here runs behind aborting
    // boundaries; this guard is the backstop for whatever still unwinds.
    let no_unwind = AbortOnUnwind;
    let t0 = Instant::now();
    let debug = st.debug.get();
    let garbage_before = st.garbage.borrow().len();
    // SAFETY: all lists belong to this runtime and are valid; working sets live on this frame.
    unsafe {
        if debug & DEBUG_STATS != 0 {
            let sizes: Vec<usize> = (0..NUM_GENERATIONS)
                .map(|i| list::size(st.gen_head(i)))
                .collect();
            gc_eprintln!("gc: collecting generation {generation}...");
            gc_eprintln!("gc: objects in each generation: {sizes:?}");
        }
        if generation + 1 < NUM_GENERATIONS {
            let c = &st.gens[generation + 1].count;
            c.set(c.get() + 1);
        }
        for i in 0..=generation {
            st.gens[i].count.set(0);
        }
        let young = st.gen_head(generation);
        for i in 0..generation {
            list::merge(st.gen_head(i), young);
        }
        let old = if generation + 1 < NUM_GENERATIONS {
            st.gen_head(generation + 1)
        } else {
            young
        };
        list::validate(old, false, false);
        list::validate(young, false, false);

        let mut unreachable_head = GcHead { next: 0, prev: 0 };
        let unreachable: Head = &mut unreachable_head;
        // A full collection with nothing frozen holds every tracked object: one pass less.
        let everything = generation == NUM_GENERATIONS - 1 && list::is_empty(st.permanent.get());
        let (total, n_unreachable) = deduce_unreachable(young, unreachable, everything);
        let survivors = total - n_unreachable;

        if young != old {
            if generation == NUM_GENERATIONS - 2 {
                let p = &st.long_lived_pending;
                p.set(p.get() + survivors);
            }
            list::merge(young, old);
        } else {
            st.long_lived_pending.set(0);
            st.long_lived_total.set(survivors);
        }

        let mut finalizers_head = GcHead { next: 0, prev: 0 };
        let finalizers: Head = &mut finalizers_head;
        list::init(finalizers);
        // No weakref alive in this runtime: no object here has one, and none is one.
        let scan = move_legacy_finalizers(
            unreachable,
            finalizers,
            st.live_weakrefs.get() > 0,
            st.finalizer_types.get(),
        );
        let legacy = if scan.legacy {
            move_legacy_finalizer_reachable(finalizers);
            list::size(finalizers)
        } else {
            0
        };
        list::validate(finalizers, false, false);
        list::validate(unreachable, true, false);

        if debug & DEBUG_COLLECTABLE != 0 {
            debug_list("collectable", unreachable);
        }

        // The scan's flags cover a superset of what is left in `unreachable`, so skipping a
        // phase when its flag is off is exact.
        // Weakref objects that their callbacks' decref freed count as collected (CPython).
        let mut weakrefs_freed = 0;
        if scan.weakrefs {
            weakrefs_freed = handle_weakrefs(unreachable, old);
            list::validate(old, false, false);
            list::validate(unreachable, true, false);
        }

        let mut still_head = GcHead { next: 0, prev: 0 };
        let still: Head = &mut still_head;
        let (final_unreachable, collected) = if scan.finalizers && finalize_garbage(unreachable) {
            handle_resurrected_objects(unreachable, still, old);
            // Finalizers may have made weakrefs to objects that are still garbage: clear them
            // (their callbacks never run) before `clear` breaks those objects, so no weakref
            // can reach a cleared object (CPython's `clear_weakrefs(&final_unreachable)`).
            list::for_each(still, |g| weakref::clear_all(from_gc(g), |_| {}));
            (still, list::size(still))
        } else {
            (unreachable, n_unreachable - legacy)
        };
        list::validate(final_unreachable, true, false);
        debug_assert_eq!(collected, list::size(final_unreachable));

        delete_garbage(st, final_unreachable, old);
        // Counted after delete_garbage, as CPython does: a legacy-finalizer object that only
        // garbage referred to may have been freed when that garbage was cleared.
        let uncollectable = if scan.legacy {
            list::size(finalizers)
        } else {
            0
        };
        let collected = collected + weakrefs_freed;

        if debug & DEBUG_UNCOLLECTABLE != 0 {
            debug_list("uncollectable", finalizers);
        }
        handle_legacy_finalizers(st, finalizers, old);
        list::validate(old, false, false);
        if debug & DEBUG_LEAK == DEBUG_LEAK {
            leak::print_new(st, garbage_before);
        }

        let s = &st.stats[generation];
        let mut v = s.get();
        v.collections += 1;
        v.collected += collected;
        v.uncollectable += uncollectable;
        s.set(v);
        let dt = t0.elapsed();
        if debug & DEBUG_STATS != 0 {
            gc_eprintln!(
                "gc: done, {collected} unreachable, {uncollectable} uncollectable, {:.4}s elapsed",
                dt.as_secs_f64()
            );
        }
        core::mem::forget(no_unwind);
        (collected, uncollectable, dt)
    }
}

/// Dropped only when a panic unwinds through `collect_main` (it is forgotten on return).
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        abort_with(format_args!(
            "a panic unwound into the cycle collector (from user code it runs)"
        ));
    }
}

unsafe fn debug_list(what: &str, l: Head) {
    // SAFETY: l is a valid list of live objects.
    unsafe {
        list::for_each(l, |g| {
            let o = from_gc(g);
            gc_eprintln!("gc: {what} <{} {:p}>", type_of(o).name_str(), o);
        });
    }
}

#[inline(always)]
unsafe fn is_collecting_gc(obj: *mut ObjectHeader) -> Option<Head> {
    // SAFETY: obj is live.
    unsafe {
        if !type_of(obj).is_gc() {
            return None;
        }
        let g = as_gc(obj);
        if (*g).prev & PREV_COLLECTING != 0 {
            Some(g)
        } else {
            None
        }
    }
}

/// What `move_legacy_finalizers` saw in the unreachable set.
struct Scan {
    /// Some object with a legacy finalizer was moved out.
    legacy: bool,
    /// Some object is a weakref or has weakrefs.
    weakrefs: bool,
    /// Some object has a finalizer that has not run.
    finalizers: bool,
}

/// Move objects with a legacy finalizer to `finalizers`; clears NEXT_UNREACHABLE everywhere;
/// notes whether the weakref and finalizer phases have work (`weakrefs_exist`: false when the
/// runtime has no live weakref object, so no object needs the weakref check;
/// `finalizer_types`: false when no object of a type with a finalizer or legacy del was ever
/// tracked in the runtime; with both false only the flags are cleared).
unsafe fn move_legacy_finalizers(
    unreachable: Head,
    finalizers: Head,
    weakrefs_exist: bool,
    finalizer_types: bool,
) -> Scan {
    let mut scan = Scan {
        legacy: false,
        weakrefs: false,
        finalizers: false,
    };
    // SAFETY: unreachable as left by move_unreachable.
    unsafe {
        if !weakrefs_exist && !finalizer_types {
            // (for_each reads a node's `next` after `f` cleared the flag in it)
            list::for_each(unreachable, |g| (*g).next &= !NEXT_UNREACHABLE);
            return scan;
        }
        let mut g = next(unreachable);
        while g != unreachable {
            (*g).next &= !NEXT_UNREACHABLE;
            let n = next(g);
            let op = from_gc(g);
            let ty = type_of(op);
            if ty.del.is_some() {
                (*g).prev &= !PREV_COLLECTING;
                list::move_to(g, finalizers);
                scan.legacy = true;
            } else {
                if weakrefs_exist && !scan.weakrefs {
                    scan.weakrefs =
                        weakref::is_weakref(op) || !weakref::first_weakref(op).is_null();
                }
                scan.finalizers |= ty.finalize.is_some() && (*g).prev & PREV_FINALIZED == 0;
            }
            g = n;
        }
    }
    scan
}

unsafe extern "C" fn visit_move(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    if obj.is_null() {
        return 0; // an empty field of a C object (skipped, like Py_VISIT)
    }
    // SAFETY: obj is live; collecting objects are on the (plain) unreachable list.
    unsafe {
        if let Some(g) = is_collecting_gc(obj) {
            list::move_to(g, arg as Head);
            (*g).prev &= !PREV_COLLECTING;
        }
    }
    0
}

/// Move everything reachable from `finalizers` (still collecting) into it.
unsafe fn move_legacy_finalizer_reachable(finalizers: Head) {
    // SAFETY: valid lists; the list grows behind the scan.
    unsafe {
        list::for_each(finalizers, |g| {
            object::traverse(from_gc(g), visit_move, finalizers as *mut c_void)
        });
    }
}

/// Clear every weakref to an object of `unreachable` (and every weakref that is itself in it);
/// then run the callbacks of the cleared weakrefs that are not garbage.
unsafe fn handle_weakrefs(unreachable: Head, old: Head) -> usize {
    let mut to_call_head = GcHead { next: 0, prev: 0 };
    let to_call: Head = &mut to_call_head;
    // SAFETY: unreachable is a plain list of live objects; weakrefs on referents' lists are
    // live and tracked.
    unsafe {
        list::init(to_call);
        let mut g = next(unreachable);
        while g != unreachable {
            let op = from_gc(g);
            let n = next(g);
            if weakref::is_weakref(op) {
                weakref::clear_ref(op);
            }
            weakref::clear_all(op, |wr| {
                let wg = as_gc(wr);
                if (*wg).prev & PREV_COLLECTING != 0 || (*wg).next == 0 {
                    return; // the weakref is garbage itself: its callback never runs
                }
                object::incref(wr);
                list::move_to(wg, to_call);
            });
            g = n;
        }
        let mut freed = 0;
        while !list::is_empty(to_call) {
            let wg = next(to_call);
            let wr = from_gc(wg);
            weakref::run_callback(wr);
            object::decref(wr);
            if next(to_call) == wg {
                list::move_to(wg, old);
            } else {
                freed += 1; // our reference was its last: freed (it unlinked itself)
            }
        }
        freed
    }
}

/// Run each PEP 442 finalizer not yet run; true if any ran.
unsafe fn finalize_garbage(collectable: Head) -> bool {
    let mut seen_head = GcHead { next: 0, prev: 0 };
    let seen: Head = &mut seen_head;
    let mut any = false;
    // SAFETY: plain list; an object freed by user code unlinks itself.
    unsafe {
        list::init(seen);
        while !list::is_empty(collectable) {
            let g = next(collectable);
            let op = from_gc(g);
            list::move_to(g, seen);
            if (*g).prev & PREV_FINALIZED == 0 {
                if let Some(f) = type_of(op).finalize {
                    (*g).prev |= PREV_FINALIZED;
                    any = true;
                    object::incref(op);
                    f(op);
                    object::decref(op);
                }
            }
        }
        list::merge(seen, collectable);
    }
    any
}

/// After finalizers ran: whatever is now reachable from outside `unreachable` (resurrected,
/// with all it reaches) goes to `old`; the rest to `still`.
unsafe fn handle_resurrected_objects(unreachable: Head, still: Head, old: Head) {
    // SAFETY: plain lists.
    unsafe {
        list::clear_collecting(unreachable);
        deduce_unreachable(unreachable, still, false);
        // (for_each reads a node's `next` after `f` cleared the flag in it)
        list::for_each(still, |g| (*g).next &= !NEXT_UNREACHABLE);
        list::merge(unreachable, old);
    }
}

/// Break the cycles: `clear` each object (or save it with DEBUG_SAVEALL); survivors go to
/// `old`.
unsafe fn delete_garbage(st: &GcState, collectable: Head, old: Head) {
    let saveall = st.debug.get() & DEBUG_SAVEALL != 0;
    // SAFETY: plain list; clear may free any object, which unlinks itself.
    unsafe {
        while !list::is_empty(collectable) {
            let g = next(collectable);
            let op = from_gc(g);
            if saveall {
                let r = AnyGc::from_borrowed(op);
                st.garbage.borrow_mut().push(r);
            } else if let Some(clear) = type_of(op).clear {
                object::incref(op);
                clear(op);
                object::decref(op);
            }
            if next(collectable) == g {
                (*g).prev &= !PREV_COLLECTING;
                list::move_to(g, old);
            }
        }
    }
}

/// Objects with a legacy finalizer (all, with SAVEALL) go to `garbage`; all to `old`.
unsafe fn handle_legacy_finalizers(st: &GcState, finalizers: Head, old: Head) {
    let saveall = st.debug.get() & DEBUG_SAVEALL != 0;
    // SAFETY: plain list of live objects.
    unsafe {
        list::for_each(finalizers, |g| {
            let op = from_gc(g);
            if saveall || type_of(op).del.is_some() {
                st.garbage.borrow_mut().push(AnyGc::from_borrowed(op));
            }
        });
        list::merge(finalizers, old);
    }
}
