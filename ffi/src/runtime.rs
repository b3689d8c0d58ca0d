//! Runtimes for C: `agc_runtime_new` / `_free` / `_attach` / `_detach` over
//! `arenagc::gc::Runtime` and its `AttachGuard`.
//!
//! ```text
//!  agc_runtime  = Box<AgcRuntime { Runtime, attached: count of attachments }>
//!  ATTACHED     = per thread: stack of Attachment { runtime, AttachGuard }   innermost last
//!  attach(rt):  not on this thread's stack already -> Runtime::attach (waits like a GIL) -> push
//!  detach(rt):  rt is the innermost -> pop (the guard drops: detached, next waiter runs)
//!  free(rt):    no attachment counted -> drop the Box (the core leaks a state with objects left)
//!  thread exit: the stack ends innermost first: a thread that forgot to detach detaches
//! ```
//!
//! A thread with no runtime attached uses its own default runtime (the core creates it).

use core::cell::RefCell;
use core::ffi::c_int;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use arenagc::gc::{AttachGuard, Runtime};

use crate::error::{boundary, call, set_error};
use crate::types::{AGC_ERR_NULL, AGC_ERR_STATE, AGC_OK};

/// `agc_runtime` (opaque in C).
pub struct AgcRuntime {
    rt: Runtime,
    /// Attachments now (0 or 1: attaching waits for the attached thread to detach).
    attached: AtomicUsize,
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
    boundary("agc_runtime_new", ptr::null_mut(), || {
        Box::into_raw(Box::new(AgcRuntime {
            rt: Runtime::new(),
            attached: AtomicUsize::new(0),
        }))
    })
}

fn check(func: &str, rt: *mut AgcRuntime) -> Result<&'static AgcRuntime, c_int> {
    if rt.is_null() {
        set_error(format_args!("{func}: runtime is NULL"));
        return Err(AGC_ERR_NULL);
    }
    // SAFETY: a non-null runtime came from agc_runtime_new and is not freed yet (the caller's
    // contract); it lives until agc_runtime_free, which refuses while any thread is attached,
    // so references kept by attachments stay valid.
    Ok(unsafe { &*rt })
}

/// Free a runtime no thread is attached to (`AGC_ERR_STATE` otherwise; nothing happens).
/// If objects of it are still alive, its collector state stays allocated for them.
///
/// # Safety
/// `rt` is NULL or from `agc_runtime_new`, not freed before, and no thread uses it after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_runtime_free(rt: *mut AgcRuntime) -> c_int {
    call("agc_runtime_free", || {
        let r = check("agc_runtime_free", rt)?;
        let n = r.attached.load(Ordering::Acquire);
        if n != 0 {
            set_error(format_args!(
                "agc_runtime_free: runtime {rt:p} is attached ({n}); detach first"
            ));
            return Err(AGC_ERR_STATE);
        }
        // SAFETY: from agc_runtime_new (Box::into_raw), nobody attached, not used again.
        drop(unsafe { Box::from_raw(rt) });
        Ok(AGC_OK)
    })
}

/// Make `rt` the calling thread's current runtime until `agc_runtime_detach(rt)`, waiting
/// while another thread is attached to it (like a GIL). Attachments to different runtimes
/// nest (detach in reverse order). `AGC_ERR_STATE` if this thread is attached to `rt` already
/// (it would wait for itself).
///
/// # Safety
/// `rt` is NULL or a live runtime. Objects created while attached belong to `rt`: only a thread
/// attached to it may use them; and a thread must not use its default runtime's objects while
/// attached here (see `Runtime::attach`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_runtime_attach(rt: *mut AgcRuntime) -> c_int {
    call("agc_runtime_attach", || {
        let r = check("agc_runtime_attach", rt)?;
        let mine = ATTACHED.with(|a| a.borrow().0.iter().any(|x| ptr::eq(x.rt, rt)));
        if mine {
            set_error(format_args!(
                "agc_runtime_attach: this thread is attached to {rt:p} already"
            ));
            return Err(AGC_ERR_STATE);
        }
        // SAFETY: r lives until agc_runtime_free, which refuses while this attachment is
        // counted, so the guard never outlives it; guards drop innermost first (detach checks
        // the order, and the stack ends from the top at thread exit).
        let guard = unsafe { r.rt.attach() };
        r.attached.fetch_add(1, Ordering::AcqRel);
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
/// # Safety
/// `rt` is NULL or a live runtime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_runtime_detach(rt: *mut AgcRuntime) -> c_int {
    call("agc_runtime_detach", || {
        check("agc_runtime_detach", rt)?;
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
