//! Runtimes for C: `agc_runtime_new` / `_free` / `_attach` / `_detach` over
//! `arenagc::gc::Runtime` and its `AttachGuard`.
//!
//! ```text
//!  agc_runtime  = Box<AgcRuntime { Runtime, attached, waiting: counts }>
//!  LIVE         = every runtime not freed (a freed or foreign handle is refused, not used)
//!  ATTACHED     = per thread: stack of Attachment { runtime, AttachGuard }   innermost last
//!  attach(rt):  live, not from a callback, not on this thread's stack -> waiting += 1 (under
//!               LIVE's lock) -> Runtime::try_attach (waits like a GIL) -> attached += 1, push
//!  detach(rt):  live, not from a callback, rt is the innermost -> pop (the guard drops:
//!               detached, next waiter runs)
//!  free(rt):    under LIVE's lock: live, nobody attached or waiting -> unregister, drop the
//!               Box (the core leaks a state with objects left)
//!  thread exit: the stack ends innermost first: a thread that forgot to detach detaches
//! ```
//!
//! A thread with no runtime attached uses its own default runtime (the core creates it).
//! Attach and detach are refused from code the library runs (finalizers, callbacks, dealloc,
//! traverse, visitors): the core's rule (`gc::check_runtime_switch`, `Runtime::try_attach`),
//! which knows when it runs user code; the call that runs it holds the runtime's state and
//! goes on with it afterwards, so switching runtimes there would let another thread into a
//! runtime in the middle of a collection, or leave the rest of the call on the wrong one.

use core::cell::RefCell;
use core::ffi::c_int;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use arenagc::gc::{self, AttachGuard, GcError, Runtime};

use crate::error::{api, call, set_error};
use crate::types::{AGC_ERR_NULL, AGC_ERR_STATE, AGC_OK};

/// `agc_runtime` (opaque in C).
pub struct AgcRuntime {
    rt: Runtime,
    /// Attachments now (0 or 1: attaching waits for the attached thread to detach).
    attached: AtomicUsize,
    /// Threads inside `agc_runtime_attach` for it (counted under LIVE's lock, so `free` never
    /// frees a runtime a thread is about to wait on).
    waiting: AtomicUsize,
}

/// The addresses of every runtime created and not freed.
static LIVE: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

fn live() -> MutexGuard<'static, BTreeSet<usize>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// One attachment of this thread: ends (detaches, uncounts) when dropped.
struct Attachment {
    rt: *const AgcRuntime,
    guard: Option<AttachGuard<'static>>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        drop(self.guard.take());
        // SAFETY: a runtime outlives its counted attachments (agc_runtime_free refuses while
        // any is counted).
        unsafe { &*self.rt }.attached.fetch_sub(1, Ordering::AcqRel);
    }
}

/// This thread's attachments, innermost last; at thread exit they end innermost first.
struct Attachments(Vec<Attachment>);

impl Drop for Attachments {
    fn drop(&mut self) {
        while let Some(a) = self.0.pop() {
            drop(a);
        }
    }
}

thread_local! {
    static ATTACHED: RefCell<Attachments> = const { RefCell::new(Attachments(Vec::new())) };
}

/// A new runtime (its own generations, thresholds, stats, garbage, callbacks), for threads
/// that share objects one at a time.
#[unsafe(no_mangle)]
pub extern "C" fn agc_runtime_new() -> *mut AgcRuntime {
    api("agc_runtime_new", ptr::null_mut(), || {
        let rt = Box::into_raw(Box::new(AgcRuntime {
            rt: Runtime::new(),
            attached: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        }));
        live().insert(rt as usize);
        rt
    })
}

/// `rt` as a live runtime, checked while `live` (LIVE's lock) is held: NULL, freed and foreign
/// handles are refused with a message.
fn check(
    func: &str,
    rt: *mut AgcRuntime,
    live: &BTreeSet<usize>,
) -> Result<&'static AgcRuntime, c_int> {
    if rt.is_null() {
        set_error(format_args!("{func}: runtime is NULL"));
        return Err(AGC_ERR_NULL);
    }
    if !live.contains(&(rt as usize)) {
        set_error(format_args!(
            "{func}: {rt:p} is not a live runtime (freed, or not from agc_runtime_new)"
        ));
        return Err(AGC_ERR_STATE);
    }
    // SAFETY: registered by agc_runtime_new and not freed (free unregisters under the same
    // lock first); it lives until agc_runtime_free, which refuses while any thread is attached
    // or waiting, so references kept by attachments stay valid.
    Ok(unsafe { &*rt })
}

/// The core's refusal of a runtime switch, as `func`'s error.
fn refused(func: &str, e: GcError) -> c_int {
    set_error(format_args!("{func}: {e}"));
    AGC_ERR_STATE
}

/// Refuse `func` when called from code the library runs (the core's rule, see the module doc).
fn not_from_a_callback(func: &str) -> Result<(), c_int> {
    gc::check_runtime_switch().map_err(|e| refused(func, e))
}

/// Free a runtime no thread is attached to or waiting for (`AGC_ERR_STATE` otherwise; nothing
/// happens). If objects of it are still alive, its collector state stays allocated for them.
/// A freed handle is refused by every runtime function afterwards (`AGC_ERR_STATE`), until a
/// new runtime happens to get the same address.
///
/// # Safety
/// `rt` is NULL or any pointer (a handle that is not live is refused).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_runtime_free(rt: *mut AgcRuntime) -> c_int {
    call("agc_runtime_free", || {
        let mut live = live();
        let r = check("agc_runtime_free", rt, &live)?;
        let n = r.attached.load(Ordering::Acquire) + r.waiting.load(Ordering::Acquire);
        if n != 0 {
            set_error(format_args!(
                "agc_runtime_free: runtime {rt:p} is attached or being attached to ({n}); \
                 detach first"
            ));
            return Err(AGC_ERR_STATE);
        }
        live.remove(&(rt as usize));
        drop(live);
        // SAFETY: from agc_runtime_new (Box::into_raw), unregistered above, so no other call
        // can reach it any more; nobody attached or waiting.
        drop(unsafe { Box::from_raw(rt) });
        Ok(AGC_OK)
    })
}

/// Make `rt` the calling thread's current runtime until `agc_runtime_detach(rt)`, waiting
/// while another thread is attached to it (like a GIL). Attachments to different runtimes
/// nest (detach in reverse order). `AGC_ERR_STATE` if this thread is attached to `rt` already
/// (it would wait for itself).
///
/// `AGC_ERR_STATE` too for a handle that is not live, and when called from code the library
/// runs (a finalizer, callback, dealloc, traverse or visitor).
///
/// # Safety
/// `rt` is NULL or any pointer (a handle that is not live is refused). Objects created while
/// attached belong to `rt`: only a thread attached to it may use them; and a thread must not
/// use its default runtime's objects while attached here (see `Runtime::attach`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_runtime_attach(rt: *mut AgcRuntime) -> c_int {
    call("agc_runtime_attach", || {
        let r = {
            let live = live();
            let r = check("agc_runtime_attach", rt, &live)?;
            not_from_a_callback("agc_runtime_attach")?;
            let mine = ATTACHED.with(|a| a.borrow().0.iter().any(|x| ptr::eq(x.rt, rt)));
            if mine {
                set_error(format_args!(
                    "agc_runtime_attach: this thread is attached to {rt:p} already"
                ));
                return Err(AGC_ERR_STATE);
            }
            r.waiting.fetch_add(1, Ordering::AcqRel);
            r
        };
        // SAFETY: r lives until agc_runtime_free, which refuses while this thread is counted
        // waiting and then attached, so the guard never outlives it; guards drop innermost
        // first (detach checks the order, and the stack ends from the top at thread exit).
        let guard = match unsafe { r.rt.try_attach() } {
            Ok(g) => g,
            Err(e) => {
                r.waiting.fetch_sub(1, Ordering::AcqRel);
                return Err(refused("agc_runtime_attach", e));
            }
        };
        r.attached.fetch_add(1, Ordering::AcqRel);
        r.waiting.fetch_sub(1, Ordering::AcqRel);
        let at = Attachment {
            rt,
            guard: Some(guard),
        };
        ATTACHED.with(|a| a.borrow_mut().0.push(at));
        Ok(AGC_OK)
    })
}

/// End the calling thread's innermost attachment, which must be to `rt`; the thread returns to
/// the runtime it used before. `AGC_ERR_STATE` if `rt` is not its innermost attachment.
///
/// `AGC_ERR_STATE` too for a handle that is not live, and when called from code the library
/// runs.
///
/// # Safety
/// `rt` is NULL or any pointer (a handle that is not live is refused).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_runtime_detach(rt: *mut AgcRuntime) -> c_int {
    call("agc_runtime_detach", || {
        check("agc_runtime_detach", rt, &live())?;
        not_from_a_callback("agc_runtime_detach")?;
        let popped = ATTACHED.with(|a| {
            let mut a = a.borrow_mut();
            if a.0.last().is_some_and(|x| ptr::eq(x.rt, rt)) {
                a.0.pop()
            } else {
                None
            }
        });
        let Some(at) = popped else {
            set_error(format_args!(
                "agc_runtime_detach: {rt:p} is not this thread's innermost attached runtime"
            ));
            return Err(AGC_ERR_STATE);
        };
        // Outside the borrow of ATTACHED.
        drop(at);
        Ok(AGC_OK)
    })
}
