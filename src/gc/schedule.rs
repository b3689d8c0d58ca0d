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
//!   guard, also when a callback panics.

use std::time::Duration;

use super::collect::collect_main;
use super::runtime::{CallbackInfo, GcState, NUM_GENERATIONS, Phase};

/// Count a new tracked object; collect when generation 0 is over its threshold.
#[inline(always)]
pub(crate) fn note_alloc(st: &GcState) {
    let g0 = &st.gens[0];
    let c = g0.count.get() + 1;
    g0.count.set(c);
    if c > g0.threshold.get() {
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

/// Count a freed tracked object.
#[inline(always)]
pub(crate) fn note_free(st: &GcState) {
    let g0 = &st.gens[0];
    g0.count.set(g0.count.get().saturating_sub(1));
}

#[cold]
#[inline(never)]
fn maybe_collect(st: &GcState) {
    if st.enabled.get() && st.gens[0].threshold.get() != 0 && !st.collecting.get() {
        let _running = Collecting::enter(st);
        collect_generations(st);
    }
}

/// Marks a collection as running; clears the mark on drop, also when a gc callback panics
/// (callbacks run only while every list is consistent).
pub(crate) struct Collecting<'a>(&'a GcState);

impl<'a> Collecting<'a> {
    pub(crate) fn enter(st: &'a GcState) -> Collecting<'a> {
        st.collecting.set(true);
        Collecting(st)
    }
}

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        self.0.collecting.set(false);
    }
}

/// Collect the oldest generation over its threshold (CPython's `gc_collect_generations`); a
/// full collection also needs `long_lived_pending > long_lived_total / 4`.
fn collect_generations(st: &GcState) {
    for i in (0..NUM_GENERATIONS).rev() {
        if st.gens[i].count.get() > st.gens[i].threshold.get() {
            if i == NUM_GENERATIONS - 1
                && st.long_lived_pending.get() <= st.long_lived_total.get() / 4
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
