//! The `gc` module for C (`agc_gc_*`): thin wrappers over `arenagc::gc`, which acts on the
//! calling thread's current runtime (the attached `agc_runtime`, else the thread's default).
//!
//! ```text
//!  agc_gc_collect(gen) ───────────────> gc::collect        (gen outside 0..2: AGC_ERR_VALUE)
//!  enable / disable / thresholds / counts / stats / debug / freeze ──> gc::*
//!  agc_gc_garbage_len / _get / _clear ─> gc::garbage_len / garbage_get / clear_garbage
//!  agc_gc_callback_add(fn, data) ─────> gc::add_callback(closure calling fn) -> CallbackId
//!        (the C id is `CallbackId::get`: unique in the process, so one of another runtime is
//!        not found)
//!  agc_gc_get_objects / _referrers / _referents(visit, data) ─> gc::get_* (strong refs held
//!        while the visitor runs, inside gc::raw::CallbackScope: no runtime switch from it)
//!  agc_gc_type_counts / _type_growth / _path_to / _dot_* / _set_repr / _leak_report
//!        ─> the leak-hunting functions: `gc_leaks.rs`, a submodule of this file
//! ```

use core::ffi::{c_int, c_uint, c_void};

use arenagc::gc::{self, AnyGc, AsObject, CallbackId, GenStats, NUM_GENERATIONS, Phase};

use crate::error::{api, call, set_error};
use crate::object::check_object;
use crate::types::{
    AGC_DEBUG_COLLECTABLE, AGC_DEBUG_LEAK, AGC_DEBUG_SAVEALL, AGC_DEBUG_STATS,
    AGC_DEBUG_UNCOLLECTABLE, AGC_ERR_NULL, AGC_ERR_PANIC, AGC_ERR_VALUE, AGC_GC_GENERATIONS,
    AGC_GC_START, AGC_GC_STOP, AGC_OK, AgcGcCallback, AgcGcStats, AgcGenStats, AgcObject,
    AgcVisitProc,
};

#[path = "gc_leaks.rs"]
mod leaks;

const _: () = assert!(AGC_GC_GENERATIONS == NUM_GENERATIONS);
const _: () = assert!(AGC_DEBUG_STATS == gc::DEBUG_STATS);
const _: () = assert!(AGC_DEBUG_COLLECTABLE == gc::DEBUG_COLLECTABLE);
const _: () = assert!(AGC_DEBUG_UNCOLLECTABLE == gc::DEBUG_UNCOLLECTABLE);
const _: () = assert!(AGC_DEBUG_SAVEALL == gc::DEBUG_SAVEALL);
const _: () = assert!(AGC_DEBUG_LEAK == gc::DEBUG_LEAK);

/// Every flag `agc_gc_set_debug` accepts.
const DEBUG_ALL: c_uint = AGC_DEBUG_STATS | AGC_DEBUG_LEAK;

fn generation(func: &str, generation: c_int) -> Result<usize, c_int> {
    match usize::try_from(generation) {
        Ok(g) if g < NUM_GENERATIONS => Ok(g),
        _ => {
            set_error(format_args!(
                "{func}: invalid generation {generation} (must be 0..{})",
                NUM_GENERATIONS - 1
            ));
            Err(AGC_ERR_VALUE)
        }
    }
}

/// Collect `generation` (0, 1 or 2) and every younger one. Returns the number of unreachable
/// objects found (collected + uncollectable), 0 when called during a collection, or
/// `AGC_ERR_VALUE` with a message for any other generation (3, -1, ...).
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_collect(generation: c_int) -> isize {
    call("agc_gc_collect", || {
        let g = self::generation("agc_gc_collect", generation)?;
        match gc::collect(g) {
            Ok(n) => Ok(n as isize),
            Err(e) => {
                set_error(format_args!("agc_gc_collect: {e}"));
                Err(AGC_ERR_VALUE)
            }
        }
    })
}

/// Turn automatic collection on.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_enable() {
    api("agc_gc_enable", (), gc::enable)
}

/// Turn automatic collection off (`agc_gc_collect` still works).
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_disable() {
    api("agc_gc_disable", (), gc::disable)
}

/// 1 if automatic collection is on, else 0.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_is_enabled() -> c_int {
    api("agc_gc_is_enabled", AGC_ERR_PANIC, || {
        c_int::from(gc::is_enabled())
    })
}

/// Write three values to `*a, *b, *c`; `AGC_ERR_NULL` (nothing written) if any is NULL.
///
/// # Safety
/// Each pointer is NULL or writable.
unsafe fn write3(
    func: &str,
    (a, b, c): (*mut usize, *mut usize, *mut usize),
    (x, y, z): (usize, usize, usize),
) -> c_int {
    if a.is_null() || b.is_null() || c.is_null() {
        set_error(format_args!("{func}: an output pointer is NULL"));
        return AGC_ERR_NULL;
    }
    // SAFETY: non-null and writable per the caller's contract.
    unsafe {
        a.write(x);
        b.write(y);
        c.write(z);
    }
    AGC_OK
}

/// The collection thresholds of generations 0, 1, 2 into `*t0, *t1, *t2` (defaults 700, 10,
/// 10). `AGC_ERR_NULL` if a pointer is NULL.
///
/// # Safety
/// Each pointer is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_get_threshold(
    t0: *mut usize,
    t1: *mut usize,
    t2: *mut usize,
) -> c_int {
    api("agc_gc_get_threshold", AGC_ERR_PANIC, || {
        // SAFETY: forwarded from the caller.
        unsafe { write3("agc_gc_get_threshold", (t0, t1, t2), gc::get_threshold()) }
    })
}

/// Set the thresholds; `t0 == 0` turns automatic collection off.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_set_threshold(t0: usize, t1: usize, t2: usize) -> c_int {
    api("agc_gc_set_threshold", AGC_ERR_PANIC, || {
        gc::set_threshold(t0, t1, t2);
        AGC_OK
    })
}

/// The counts of generations 0, 1, 2 into `*c0, *c1, *c2`: tracked allocations minus frees
/// since generation 0 was last collected; collections of the next younger generation since
/// generations 1 and 2 were. `AGC_ERR_NULL` if a pointer is NULL.
///
/// # Safety
/// Each pointer is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_get_count(c0: *mut usize, c1: *mut usize, c2: *mut usize) -> c_int {
    api("agc_gc_get_count", AGC_ERR_PANIC, || {
        // SAFETY: forwarded from the caller.
        unsafe { write3("agc_gc_get_count", (c0, c1, c2), gc::get_count()) }
    })
}

fn to_c(s: &GenStats) -> AgcGenStats {
    AgcGenStats {
        collections: s.collections,
        collected: s.collected,
        uncollectable: s.uncollectable,
    }
}

/// Statistics per generation since the runtime started into `*out`. `AGC_ERR_NULL` for NULL.
///
/// # Safety
/// `out` is NULL or points to a writable `agc_gc_stats_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_get_stats(out: *mut AgcGcStats) -> c_int {
    api("agc_gc_get_stats", AGC_ERR_PANIC, || {
        if out.is_null() {
            set_error(format_args!("agc_gc_get_stats: out is NULL"));
            return AGC_ERR_NULL;
        }
        let s = gc::get_stats();
        let mut c = AgcGcStats::default();
        for (o, g) in c.generations.iter_mut().zip(s.iter()) {
            *o = to_c(g);
        }
        // SAFETY: non-null and writable per the contract.
        unsafe { out.write(c) };
        AGC_OK
    })
}

/// Set the `AGC_DEBUG_*` flags. `AGC_ERR_VALUE` (nothing changed) for unknown bits.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_set_debug(flags: c_uint) -> c_int {
    api("agc_gc_set_debug", AGC_ERR_PANIC, || {
        if flags & !DEBUG_ALL != 0 {
            set_error(format_args!(
                "agc_gc_set_debug: unknown flag bits {:#x}",
                flags & !DEBUG_ALL
            ));
            return AGC_ERR_VALUE;
        }
        gc::set_debug(flags);
        AGC_OK
    })
}

/// The `AGC_DEBUG_*` flags.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_get_debug() -> c_uint {
    api("agc_gc_get_debug", 0, gc::get_debug)
}

/// Move every tracked object to the permanent generation, which collections ignore.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_freeze() {
    api("agc_gc_freeze", (), gc::freeze)
}

/// Move the permanent generation back into the oldest one.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_unfreeze() {
    api("agc_gc_unfreeze", (), gc::unfreeze)
}

/// Number of objects in the permanent generation.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_get_freeze_count() -> usize {
    api("agc_gc_get_freeze_count", 0, gc::get_freeze_count)
}

/// Number of objects in `garbage` (uncollectable ones, or every unreachable one with
/// `AGC_DEBUG_SAVEALL`).
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_garbage_len() -> usize {
    api("agc_gc_garbage_len", 0, gc::garbage_len)
}

/// A new reference to item `index` of `garbage`, or NULL with a message when `index` is past
/// the end.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_garbage_get(index: usize) -> *mut AgcObject {
    api("agc_gc_garbage_get", core::ptr::null_mut(), || {
        let Some(item) = gc::garbage_get(index) else {
            set_error(format_args!(
                "agc_gc_garbage_get: index {index} out of range (garbage has {} objects)",
                gc::garbage_len()
            ));
            return core::ptr::null_mut();
        };
        let obj = item.as_object();
        // The caller receives the reference `item` holds.
        core::mem::forget(item);
        obj
    })
}

/// Empty `garbage`, releasing its references (which may free the objects).
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_garbage_clear() {
    api("agc_gc_garbage_clear", (), gc::clear_garbage)
}

/// Register `callback`, called with `data` at the start (`AGC_GC_START`, collected and
/// uncollectable 0) and at the end (`AGC_GC_STOP`) of every collection of the current runtime.
/// Returns an id > 0 for `agc_gc_callback_remove`, or 0 with a message if `callback` is NULL.
///
/// # Safety
/// `callback` accepts `data` whenever the current runtime collects, until removed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_callback_add(callback: AgcGcCallback, data: *mut c_void) -> u64 {
    api("agc_gc_callback_add", 0, || {
        let Some(f) = callback else {
            set_error(format_args!("agc_gc_callback_add: callback is NULL"));
            return 0;
        };
        let cid = gc::add_callback(move |phase, info| {
            let phase = match phase {
                Phase::Start => AGC_GC_START,
                Phase::Stop => AGC_GC_STOP,
            };
            // SAFETY: the registering caller promised `f` accepts `data` until removed.
            unsafe {
                f(
                    phase,
                    info.generation as c_int,
                    info.collected,
                    info.uncollectable,
                    data,
                )
            }
        });
        cid.get()
    })
}

/// Unregister the callback `id` (of the current runtime). `AGC_ERR_VALUE` if there is no
/// such callback in the current runtime.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_callback_remove(id: u64) -> c_int {
    api("agc_gc_callback_remove", AGC_ERR_PANIC, || {
        if gc::remove_callback(CallbackId::from_raw(id)) {
            AGC_OK
        } else {
            set_error(format_args!(
                "agc_gc_callback_remove: no callback {id} in the current runtime"
            ));
            AGC_ERR_VALUE
        }
    })
}

/// Call `visit(obj, data)` for each of `objs` until it returns nonzero; the number of calls.
///
/// # Safety
/// `visit` accepts `data`.
unsafe fn visit_all(
    objs: Vec<AnyGc>,
    visit: arenagc::object::VisitProc,
    data: *mut c_void,
) -> isize {
    let mut n = 0;
    // The visitor is user code the library runs: no runtime switch from inside it.
    let _scope = gc::raw::CallbackScope::enter();
    for o in &objs {
        n += 1;
        // SAFETY: `objs` holds a reference to each object while it is visited.
        if unsafe { visit(o.as_object(), data) } != 0 {
            break;
        }
    }
    n
}

fn visitor(func: &str, visit: AgcVisitProc) -> Result<arenagc::object::VisitProc, c_int> {
    visit.ok_or_else(|| {
        set_error(format_args!("{func}: visit is NULL"));
        AGC_ERR_NULL
    })
}

/// Call `visit(obj, data)` for each object tracked in `generation` (0, 1, 2), or in all of them
/// for -1 (not the permanent one), until `visit` returns nonzero. Each object is borrowed for
/// the call (take a reference to keep it). Returns the number of calls, `AGC_ERR_NULL` for a
/// NULL `visit`, `AGC_ERR_VALUE` for another generation.
///
/// # Safety
/// `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_get_objects(
    generation: c_int,
    visit: AgcVisitProc,
    data: *mut c_void,
) -> isize {
    call("agc_gc_get_objects", || {
        let f = visitor("agc_gc_get_objects", visit)?;
        let g = if generation == -1 {
            None
        } else {
            Some(self::generation("agc_gc_get_objects", generation)?)
        };
        match gc::get_objects(g) {
            // SAFETY: forwarded from the caller.
            Ok(objs) => Ok(unsafe { visit_all(objs, f, data) }),
            Err(e) => {
                set_error(format_args!("agc_gc_get_objects: {e}"));
                Err(AGC_ERR_VALUE)
            }
        }
    })
}

/// Call `visit(referrer, data)` for each tracked object (generations 0..2) that refers to `obj`
/// directly, as `agc_gc_get_objects` does.
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime; `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_get_referrers(
    obj: *mut AgcObject,
    visit: AgcVisitProc,
    data: *mut c_void,
) -> isize {
    // SAFETY: forwarded from the caller.
    unsafe { visit_related("agc_gc_get_referrers", obj, visit, data, gc::get_referrers) }
}

/// Call `visit(referent, data)` for each object `obj` refers to directly (per its type's
/// `traverse`; once per reference), as `agc_gc_get_objects` does.
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime; `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_get_referents(
    obj: *mut AgcObject,
    visit: AgcVisitProc,
    data: *mut c_void,
) -> isize {
    // SAFETY: forwarded from the caller.
    unsafe { visit_related("agc_gc_get_referents", obj, visit, data, gc::get_referents) }
}

/// The body of `agc_gc_get_referrers` / `_referents`: `related` finds the objects to visit.
///
/// # Safety
/// As those functions.
unsafe fn visit_related(
    func: &str,
    obj: *mut AgcObject,
    visit: AgcVisitProc,
    data: *mut c_void,
    related: fn(&AnyGc) -> Vec<AnyGc>,
) -> isize {
    call(func, || {
        let obj = check_object(func, obj)?;
        let f = visitor(func, visit)?;
        // SAFETY: a live object of the current runtime.
        let target = unsafe { AnyGc::from_borrowed(obj) };
        // SAFETY: forwarded from the caller.
        Ok(unsafe { visit_all(related(&target), f, data) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{
        agc_runtime_attach, agc_runtime_detach, agc_runtime_free, agc_runtime_new,
    };

    unsafe extern "C" fn count_stops(
        phase: c_int,
        _: c_int,
        _: usize,
        _: usize,
        data: *mut c_void,
    ) {
        if phase == AGC_GC_STOP {
            // SAFETY: data is the test's counter, alive while the callback is registered.
            unsafe { *(data as *mut usize) += 1 };
        }
    }

    #[test]
    fn callback_ids_of_an_exited_thread_are_forgotten() {
        let id = std::thread::spawn(|| {
            let mut stops = 0usize;
            // SAFETY: the callback accepts the counter, which outlives every collection of
            // this thread's runtime (there is none after this closure returns).
            let id = unsafe { agc_gc_callback_add(Some(count_stops), (&raw mut stops).cast()) };
            assert!(id > 0);
            assert_eq!(agc_gc_collect(0), 0);
            assert_eq!(stops, 1);
            assert_eq!(agc_gc_callback_remove(id), AGC_OK);
            assert_eq!(agc_gc_callback_remove(id), AGC_ERR_VALUE);
            // SAFETY: as above.
            unsafe { agc_gc_callback_add(Some(count_stops), (&raw mut stops).cast()) }
        })
        .join()
        .expect("thread");
        assert!(id > 0);
        // Not found from another thread (its runtime went with it).
        assert_eq!(agc_gc_callback_remove(id), AGC_ERR_VALUE);
    }

    #[test]
    fn callback_ids_of_a_freed_runtime_are_forgotten() {
        std::thread::spawn(|| {
            let rt = agc_runtime_new();
            let mut stops = 0usize;
            // SAFETY: rt is live until freed below; the counter outlives the runtime.
            unsafe {
                assert_eq!(agc_runtime_attach(rt), AGC_OK);
                let id = agc_gc_callback_add(Some(count_stops), (&raw mut stops).cast());
                assert!(id > 0);
                assert_eq!(agc_runtime_detach(rt), AGC_OK);
                // Not registered in this thread's default runtime.
                assert_eq!(agc_gc_callback_remove(id), AGC_ERR_VALUE);
                assert_eq!(agc_runtime_free(rt), AGC_OK);
                assert_eq!(agc_gc_callback_remove(id), AGC_ERR_VALUE);
            }
        })
        .join()
        .expect("thread");
    }
}
