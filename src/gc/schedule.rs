//! Scheduling: the generation counts, automatic collection on thresholds, the
//! `long_lived_pending` rule, the "a collection runs" mark and the gc callbacks around a
//! collection (CPython's `gc_collect_generations` and `gc_collect_with_callback`).
//!
//! # Invariants
//!
//! - Generation 0's count is allocations minus frees of tracked objects (never below zero);
//!   generation `i > 0` counts collections of generation `i - 1` since its own last collection.
//! - An automatic collection starts only when generation 0 is over its (nonzero) threshold,
//!   collection is enabled and none runs; it collects the oldest generation over its threshold,
//!   except that a full collection also needs `long_lived_pending > long_lived_total / 4`
//!   (so the total cost of full collections stays linear in the number of objects).
//! - `collecting` is set for the whole of a collection, callbacks included, and cleared by a
//!   guard, also when a callback panics; the same guard marks the thread as running library
//!   code (`runtime::UserCode`), so no runtime switch happens meanwhile.
//! - Frees are counted where objects are freed (`GcState::note_free`, from the deallocation
//!   protocol), allocations here, before the memory is taken (a collection may run first).
//! - A panic that user code raised behind a type function during the collection (held by
//!   `unwind.rs`) resumes from [`run_collection`] once the collection has finished and its mark
//!   is reset; when a gc callback's panic unwinds instead, the held one is dropped.
//!
//! May touch: `collect.rs` (the collection), `runtime.rs` (the state, the user-code mark),
//! `unwind.rs` (held panics).

use std::time::Duration;

use super::collect::collect_main;
use super::runtime::{CallbackInfo, GcState, Phase, UserCode};
use super::unwind;
use crate::config::{FULL_COLLECTION_PENDING_DIVISOR, NUM_GENERATIONS};

/// Count a new tracked object; collect when generation 0 is over its threshold. `enabled` is
/// tested here, as CPython's `_PyObject_GC_Link` does: with automatic collection off the count
/// stays over the threshold, and every allocation would otherwise call out to find that out.
#[inline(always)]
pub(crate) fn note_alloc(st: &GcState) {
    let g0 = &st.gens[0];
    let c = g0.count.get() + 1;
    g0.count.set(c);
    if c > g0.threshold.get() && st.enabled.get() {
        maybe_collect(st);
    }
}

/// A new object of the GC type `ty` for a Rust handle: counted against generation 0 first
/// (which may collect), then allocated; out of memory aborts through `handle_alloc_error`, as
/// `Box::new` does. Untracked, payload uninitialized.
#[inline(always)]
pub(crate) fn alloc_counted(
    st: &GcState,
    ty: &'static crate::object::TypeObject,
    layout: core::alloc::Layout,
) -> *mut crate::object::ObjectHeader {
    note_alloc(st);
    // SAFETY: the type is static, so it outlives the object.
    let obj = unsafe { crate::object::object_alloc(ty) };
    if obj.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    obj
}

#[cold]
#[inline(never)]
fn maybe_collect(st: &GcState) {
    if st.gens[0].threshold.get() != 0 && !st.collecting.get() {
        {
            let _running = Collecting::enter(st);
            collect_generations(st);
        }
        unwind::resume_pending(st);
    }
}

/// `gc::collect`: collect `generation` with the callbacks, then resume the first panic its user
/// code raised behind a type function (`unwind.rs`), if any. No collection may be running.
pub(crate) fn run_collection(st: &GcState, generation: usize) -> usize {
    let n = {
        let _running = Collecting::enter(st);
        collect_with_callback(st, generation)
    };
    unwind::resume_pending(st);
    n
}

/// Marks a collection as running, and the thread as running library code; clears both on
/// drop, also when a gc callback panics (callbacks run only while every list is consistent).
pub(crate) struct Collecting<'a> {
    st: &'a GcState,
    _user_code: UserCode,
}

impl<'a> Collecting<'a> {
    pub(crate) fn enter(st: &'a GcState) -> Collecting<'a> {
        st.collecting.set(true);
        // No arena goes back to the OS during the pause (a munmap there cost milliseconds):
        // the ones it empties wait until the drop below.
        crate::alloc::hold_os_releases();
        Collecting {
            st,
            _user_code: UserCode::enter(),
        }
    }
}

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        self.st.collecting.set(false);
        crate::alloc::release_os_hold();
        if std::thread::panicking() {
            unwind::discard_pending(self.st);
        }
    }
}

/// Collect the oldest generation over its threshold (CPython's `gc_collect_generations`); a
/// full collection also needs `long_lived_pending > long_lived_total / 4`
/// (`FULL_COLLECTION_PENDING_DIVISOR`).
fn collect_generations(st: &GcState) {
    for i in (0..NUM_GENERATIONS).rev() {
        if st.gens[i].count.get() > st.gens[i].threshold.get() {
            if i == NUM_GENERATIONS - 1
                && st.long_lived_pending.get()
                    <= st.long_lived_total.get() / FULL_COLLECTION_PENDING_DIVISOR
            {
                continue;
            }
            collect_with_callback(st, i);
            break;
        }
    }
}

/// Run the callbacks, the collection, the callbacks; returns collected + uncollectable.
/// `st.collecting` must be set by the caller.
pub(crate) fn collect_with_callback(st: &GcState, generation: usize) -> usize {
    let mut info = CallbackInfo {
        generation,
        collected: 0,
        uncollectable: 0,
        duration: Duration::ZERO,
    };
    invoke_callbacks(st, Phase::Start, &info);
    // SAFETY: collecting is set; the runtime's lists are valid.
    let (collected, uncollectable, duration) = unsafe { collect_main(st, generation) };
    info.collected = collected;
    info.uncollectable = uncollectable;
    info.duration = duration;
    invoke_callbacks(st, Phase::Stop, &info);
    collected + uncollectable
}

fn invoke_callbacks(st: &GcState, phase: Phase, info: &CallbackInfo) {
    if st.callbacks.borrow().is_empty() {
        return;
    }
    let cbs: Vec<_> = st
        .callbacks
        .borrow()
        .iter()
        .map(|(id, c)| (*id, c.clone()))
        .collect();
    for (id, cb) in cbs {
        // A callback removed by an earlier one in this pass is not called: its owner may have
        // freed what it uses (C passes `data` it frees after remove).
        if !st.callbacks.borrow().iter().any(|(i, _)| *i == id) {
            continue;
        }
        if let Ok(mut f) = cb.try_borrow_mut() {
            f(phase, info);
        }
    }
}
