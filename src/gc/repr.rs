//! Short descriptions of objects ("reprs") for the collector's pictures and reports (`dot.rs`,
//! `path.rs`, `leak.rs`): a hook per type, in a process-wide table (types outlive runtimes).
//!
//! | hook for             | registered by                                        | keyed by                 |
//! |----------------------|------------------------------------------------------|--------------------------|
//! | a Rust type `T`      | [`set_repr::<T>`](set_repr), [`set_repr_debug::<T>`](set_repr_debug) (its `Debug`) | `TypeId::of::<T>()` |
//! | a C type (or any `TypeObject` built by hand) | [`set_type_repr`] (`agc_gc_set_repr`) | the `TypeObject`'s address |
//!
//! Rust hooks are found through the value, not its `TypeObject`: a `Gc<T>`'s type object is a
//! constant, and a constant's address is not unique per `T` (each codegen unit may hold its own
//! copy), so `repr` asks the object's `traverse` which `T` it is (a type query, `trace.rs`).
//! C types are statics: their address names them.
//!
//! # Invariants
//!
//! - A description is at most [`REPR_MAX_BYTES`] bytes of UTF-8 (cut at a character boundary,
//!   `…` appended when cut); formatting stops once the limit is passed, so a `Debug` that
//!   would recurse through a cycle of `Gc`s ends.
//! - No lock is held while a hook runs (a hook may call back into `gc`).
//! - Without a hook, an object has no description (the type name alone is shown).
//!
//! May touch: `trace.rs` (the type query), `any.rs` (`AnyGc`, `AsObject`).

use core::any::TypeId;
use core::ffi::c_char;
use core::fmt::{self, Write};
use std::sync::{Arc, Mutex};

use super::any::{AnyGc, AsObject};
use super::trace::ask_type;
use crate::config::REPR_MAX_BYTES;
use crate::object::{ObjectHeader, TypeObject, type_of};

/// A C type's repr hook: write a description of `obj` (at most `cap` bytes, UTF-8, no NUL
/// needed) into `buf` and return the number of bytes written (`agc_repr_hook`).
pub type ReprHook =
    unsafe extern "C" fn(obj: *mut ObjectHeader, buf: *mut c_char, cap: usize) -> usize;

/// A Rust type's hook, type-erased: the value's address and the writer.
type RustHook = Arc<dyn Fn(*const (), &mut dyn Write) -> fmt::Result + Send + Sync>;

static RUST_HOOKS: Mutex<Vec<(TypeId, RustHook)>> = Mutex::new(Vec::new());
static C_HOOKS: Mutex<Vec<(usize, ReprHook)>> = Mutex::new(Vec::new());

fn put<K: PartialEq, V>(table: &Mutex<Vec<(K, V)>>, key: K, value: Option<V>) {
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    t.retain(|(k, _)| *k != key);
    if let Some(v) = value {
        t.push((key, v));
    }
}

/// Describe every `Gc<T>` with `f` in the collector's pictures and reports (`None` removes the
/// hook). Process-wide; the last call for a type wins. (Any `'static` type is accepted; only
/// the values of `Gc`s are ever described.)
pub fn set_repr<T: 'static>(f: Option<fn(&T, &mut dyn Write) -> fmt::Result>) {
    let hook = f.map(|f| -> RustHook {
        Arc::new(move |value: *const (), out: &mut dyn Write| {
            // SAFETY: `repr` passes the address a type query answered for this very TypeId:
            // a live, not cleared T.
            f(unsafe { &*(value as *const T) }, out)
        })
    });
    put(&RUST_HOOKS, TypeId::of::<T>(), hook);
}

/// Describe every `Gc<T>` by its `Debug` output (cut to [`REPR_MAX_BYTES`]).
pub fn set_repr_debug<T: fmt::Debug + 'static>() {
    set_repr::<T>(Some(|v, out| write!(out, "{v:?}")));
}

/// Describe every object of the type `ty` with `hook` (`None` removes it): for C types and
/// other `TypeObject`s built by hand (a `Gc<T>`'s type object has no stable address: use
/// [`set_repr`]).
///
/// # Safety
/// `hook` accepts every object of `ty` (live, borrowed for the call) with a writable buffer of
/// `cap` bytes, for as long as it is registered.
pub unsafe fn set_type_repr(ty: *const TypeObject, hook: Option<ReprHook>) {
    put(&C_HOOKS, ty as usize, hook);
}

/// Appends to a string up to a limit, then fails (which stops the formatting).
struct Capped {
    out: String,
    cut: bool,
}

impl Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = REPR_MAX_BYTES - self.out.len();
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.out.push_str(&s[..end]);
        self.cut = true;
        Err(fmt::Error)
    }
}

/// The description of `obj` by its type's hook, or `None` when its type has none.
pub fn repr(obj: &impl AsObject) -> Option<String> {
    // SAFETY: the handle keeps the object live for the call.
    unsafe { repr_of(obj.as_object()) }
}

/// [`repr`] of a raw object.
///
/// # Safety
/// `obj` is a live object of the current runtime (borrowed for the call).
pub(crate) unsafe fn repr_of(obj: *mut ObjectHeader) -> Option<String> {
    let mut w = Capped {
        out: String::new(),
        cut: false,
    };
    // SAFETY: caller's contract.
    if let Some((id, value)) = unsafe { ask_type(obj) } {
        let hook = {
            let t = RUST_HOOKS.lock().unwrap_or_else(|e| e.into_inner());
            t.iter().find(|(k, _)| *k == id).map(|(_, h)| h.clone())
        }?;
        let _ = hook(value, &mut w);
    } else {
        // SAFETY: caller's contract: a live object's type pointer.
        let ty = unsafe { (*obj).ty } as usize;
        let hook = {
            let t = C_HOOKS.lock().unwrap_or_else(|e| e.into_inner());
            t.iter().find(|(k, _)| *k == ty).map(|(_, h)| *h)
        }?;
        let mut buf = [0u8; REPR_MAX_BYTES];
        // SAFETY: the registrant promised the hook accepts the type's objects and the buffer.
        let n = unsafe { hook(obj, buf.as_mut_ptr() as *mut c_char, buf.len()) }.min(buf.len());
        let _ = w.write_str(&String::from_utf8_lossy(&buf[..n]));
    }
    if w.cut {
        w.out.push('…');
    }
    Some(w.out)
}

/// `<type at address>` and the description, if the type has a repr hook.
pub(crate) fn describe(o: &AnyGc) -> String {
    let obj = o.as_object();
    // SAFETY: the handle keeps the object live.
    let (name, r) = unsafe { (type_of(obj).name_str().into_owned(), repr_of(obj)) };
    match r {
        Some(r) => format!("<{name} at {obj:p}> {r}"),
        None => format!("<{name} at {obj:p}>"),
    }
}
