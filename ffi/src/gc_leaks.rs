//! Leak hunting for C (`agc_gc_type_counts`, `_type_growth`, `_path_to`, `_dot_*`,
//! `_set_repr`, `_leak_report`): thin wrappers over `arenagc::gc`'s counts, `path_to`,
//! pictures, repr hooks and leak report, on the calling thread's current runtime. A submodule
//! of `gc.rs`, which declares it.
//!
//! ```text
//!  agc_gc_type_counts(visit, data) ──> gc::type_counts   visit(name, count, untracked, bytes, data)
//!  agc_gc_type_growth(visit, data) ──> gc::type_growth   visit(name, count, delta, data)
//!  agc_gc_path_to(obj, &ext, visit, data) ─> gc::path_to  visit(chain object, data), root first
//!  agc_gc_dot_backrefs / _refs(obj, depth, max_nodes) ─> gc::dot_*: a string from agc_malloc
//!  agc_gc_leak_report() ──────────────> gc::leak_report (Display): a string from agc_malloc
//!  agc_gc_set_repr(type, hook) ───────> gc::raw::set_type_repr
//! ```
//!
//! Visitors run inside `gc::raw::CallbackScope` (no runtime switch from them) with the objects
//! borrowed; a nonzero return stops the walk. A question about the graph asked during a
//! collection is `AGC_ERR_STATE` (NULL for the string functions), with a message.

use core::ffi::{c_char, c_int, c_void};
use std::ffi::CString;

use arenagc::gc::{self, AnyGc, AsObject, GcError, PathTo};

use crate::error::{api, call, set_error};
use crate::object::check_object;
use crate::types::{
    AGC_ERR_NULL, AGC_ERR_PANIC, AGC_ERR_STATE, AGC_OK, AgcObject, AgcType, AgcVisitProc,
};

/// `agc_type_count_visitor`: one type name's live objects (tracked and untracked found), of
/// which untracked, and their bytes; nonzero stops the walk.
pub type AgcTypeCountVisitor = Option<
    unsafe extern "C" fn(
        name: *const c_char,
        count: usize,
        untracked: usize,
        bytes: usize,
        data: *mut c_void,
    ) -> c_int,
>;

/// `agc_type_growth_visitor`: a type name whose count passed its earlier peak, and by how much.
pub type AgcTypeGrowthVisitor = Option<
    unsafe extern "C" fn(
        name: *const c_char,
        count: usize,
        delta: usize,
        data: *mut c_void,
    ) -> c_int,
>;

/// `agc_repr_hook`: write a description of `obj` (at most `cap` bytes of UTF-8, no NUL needed)
/// to `buf`; return the bytes written.
pub type AgcReprHook =
    Option<unsafe extern "C" fn(obj: *mut AgcObject, buf: *mut c_char, cap: usize) -> usize>;

/// The C spelling of a name (type names come from C strings or Rust identifiers: no NUL).
fn c_name(name: &str) -> CString {
    CString::new(name.replace('\0', "?")).unwrap_or_default()
}

/// Call `f` on each item with the C name, inside a callback scope, until it returns nonzero;
/// the number of calls.
fn visit_names<T>(
    items: &[T],
    name: impl Fn(&T) -> &str,
    mut f: impl FnMut(&CString, &T) -> c_int,
) -> isize {
    let _scope = gc::raw::CallbackScope::enter();
    let mut n = 0;
    for t in items {
        n += 1;
        if f(&c_name(name(t)), t) != 0 {
            break;
        }
    }
    n
}

/// Call `visit(name, count, untracked, bytes, data)` for each type name with live objects in
/// the current runtime (most numerous first) until it returns nonzero. Returns the number of
/// calls, `AGC_ERR_NULL` for a NULL `visit`. Seen: every tracked object (the permanent
/// generation too) and the untracked objects they lead to; not seen: untracked objects only C
/// pointers or Rust variables hold.
///
/// # Safety
/// `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_type_counts(
    visit: AgcTypeCountVisitor,
    data: *mut c_void,
) -> isize {
    call("agc_gc_type_counts", || {
        let Some(f) = visit else {
            set_error(format_args!("agc_gc_type_counts: visit is NULL"));
            return Err(AGC_ERR_NULL);
        };
        let counts = gc::type_counts();
        Ok(visit_names(
            &counts,
            |t| &t.name,
            |name, t| {
                // SAFETY: the caller promised `f` accepts `data`; the name lives for the call.
                unsafe { f(name.as_ptr(), t.count, t.untracked, t.bytes, data) }
            },
        ))
    })
}

/// Call `visit(name, count, delta, data)` for each type name whose count rose above the peak
/// seen by the earlier calls (in this runtime; the first call: every type), largest rise
/// first, until it returns nonzero (objgraph's `show_growth`). Returns the number of calls,
/// `AGC_ERR_NULL` for a NULL `visit` (the peaks are then not updated).
///
/// # Safety
/// `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_type_growth(
    visit: AgcTypeGrowthVisitor,
    data: *mut c_void,
) -> isize {
    call("agc_gc_type_growth", || {
        let Some(f) = visit else {
            set_error(format_args!("agc_gc_type_growth: visit is NULL"));
            return Err(AGC_ERR_NULL);
        };
        let growth = gc::type_growth();
        Ok(visit_names(
            &growth,
            |t| &t.name,
            |name, t| {
                // SAFETY: as in agc_gc_type_counts.
                unsafe { f(name.as_ptr(), t.count, t.delta, data) }
            },
        ))
    })
}

fn graph_error(func: &str, e: GcError) -> c_int {
    set_error(format_args!("{func}: {e}"));
    match e {
        GcError::CollectionRunning => AGC_ERR_STATE,
        _ => AGC_ERR_PANIC,
    }
}

/// Why is `obj` alive? A shortest chain of references from a root (an object referenced from
/// outside the tracked graph, or frozen) to `obj`: `visit(o, data)` is called for each object
/// of the chain, root first, `obj` last (borrowed; `visit` may be NULL), and `*external` (if
/// not NULL) receives the root's references from outside (0 for a frozen root held by nothing
/// else). The caller's own reference to `obj` is not counted. Returns the chain's length, 0 if
/// nothing outside holds `obj` (cyclic garbage; `*external` = 0), `AGC_ERR_NULL` for a NULL
/// `obj`, `AGC_ERR_STATE` during a collection.
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime to which the caller holds a
/// reference; `external` is NULL or writable; `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_path_to(
    obj: *mut AgcObject,
    external: *mut usize,
    visit: AgcVisitProc,
    data: *mut c_void,
) -> isize {
    call("agc_gc_path_to", || {
        let obj = check_object("agc_gc_path_to", obj)?;
        // The caller's reference is the one path_to does not count: borrow it, no new one.
        // SAFETY: a live object of the current runtime.
        let target = core::mem::ManuallyDrop::new(unsafe { AnyGc::from_borrowed(obj) });
        // SAFETY: give back the reference from_borrowed took (the caller's one stands in).
        unsafe { arenagc::object::decref(obj) };
        let found = gc::path_to(&*target).map_err(|e| graph_error("agc_gc_path_to", e))?;
        let (chain, ext) = match &found {
            PathTo::Path(b) => (&b.chain[..], b.external),
            PathTo::Garbage => (&[][..], 0),
        };
        if !external.is_null() {
            // SAFETY: writable per the contract.
            unsafe { external.write(ext) };
        }
        if let Some(f) = visit {
            let _scope = gc::raw::CallbackScope::enter();
            for o in chain {
                // SAFETY: `found` holds a reference to each object while it is visited.
                if unsafe { f(o.as_object(), data) } != 0 {
                    break;
                }
            }
        }
        Ok(chain.len() as isize)
    })
}

/// `text` as a NUL-terminated string from `agc_malloc` (NULL with a message when memory is
/// short).
fn c_string(func: &str, text: &str) -> *mut c_char {
    let p = arenagc::alloc::c::malloc(text.len() + 1);
    if p.is_null() {
        set_error(format_args!(
            "{func}: cannot allocate {} bytes",
            text.len() + 1
        ));
        return core::ptr::null_mut();
    }
    // SAFETY: p has room for the text and the NUL.
    unsafe {
        core::ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
        p.add(text.len()).write(0);
    }
    p.cast()
}

/// The body of the two picture functions.
///
/// # Safety
/// As those functions.
unsafe fn dot(
    func: &str,
    obj: *mut AgcObject,
    draw: impl FnOnce(&AnyGc) -> Result<String, GcError>,
) -> *mut c_char {
    api(func, core::ptr::null_mut(), || {
        let Ok(obj) = check_object(func, obj) else {
            return core::ptr::null_mut();
        };
        // As in agc_gc_path_to: the caller's reference is the handle that asks.
        // SAFETY: a live object of the current runtime.
        let target = core::mem::ManuallyDrop::new(unsafe { AnyGc::from_borrowed(obj) });
        // SAFETY: give back the reference from_borrowed took.
        unsafe { arenagc::object::decref(obj) };
        match draw(&target) {
            Ok(text) => c_string(func, &text),
            Err(e) => {
                graph_error(func, e);
                core::ptr::null_mut()
            }
        }
    })
}

/// A Graphviz DOT picture of the objects that refer to `obj`, up to `depth` steps and
/// `max_nodes` nodes, labelled by type name and repr hook, the roots and `obj` marked (`dot
/// -Tsvg` draws it). A string from `agc_malloc` (free it with `agc_free`); NULL with a message
/// for a NULL `obj`, during a collection, or when memory is short.
///
/// # Safety
/// `obj` is NULL or a live object of the current runtime to which the caller holds a
/// reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_dot_backrefs(
    obj: *mut AgcObject,
    depth: usize,
    max_nodes: usize,
) -> *mut c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        dot("agc_gc_dot_backrefs", obj, |o| {
            gc::dot_backrefs(o, depth, max_nodes)
        })
    }
}

/// The same picture of the objects `obj` refers to.
///
/// # Safety
/// As `agc_gc_dot_backrefs`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_dot_refs(
    obj: *mut AgcObject,
    depth: usize,
    max_nodes: usize,
) -> *mut c_char {
    // SAFETY: forwarded from the caller.
    unsafe {
        dot("agc_gc_dot_refs", obj, |o| {
            gc::dot_refs(o, depth, max_nodes)
        })
    }
}

/// Describe every object of `type` with `hook` in the pictures and reports (NULL removes the
/// hook). `AGC_OK`, `AGC_ERR_NULL` for a NULL type.
///
/// # Safety
/// `ty` is NULL or a type that outlives the registration; `hook` is NULL or accepts every
/// object of it with a buffer of `cap` bytes, until removed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_gc_set_repr(ty: *const AgcType, hook: AgcReprHook) -> c_int {
    api("agc_gc_set_repr", AGC_ERR_PANIC, || {
        if ty.is_null() {
            set_error(format_args!("agc_gc_set_repr: type is NULL"));
            return AGC_ERR_NULL;
        }
        // SAFETY: the caller's contract.
        unsafe { gc::raw::set_type_repr(ty, hook) };
        AGC_OK
    })
}

/// The leak report on `garbage` (by type; each uncollectable group with the legacy finalizers
/// that pin it; the collectable objects `AGC_DEBUG_SAVEALL` kept), as printed at collection
/// time under `AGC_DEBUG_LEAK`. A string from `agc_malloc` (free it with `agc_free`), NULL
/// with a message when memory is short.
#[unsafe(no_mangle)]
pub extern "C" fn agc_gc_leak_report() -> *mut c_char {
    api("agc_gc_leak_report", core::ptr::null_mut(), || {
        c_string("agc_gc_leak_report", &gc::leak_report().to_string())
    })
}
