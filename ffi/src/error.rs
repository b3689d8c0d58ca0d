//! The panic boundary and the thread-local last-error message.
//!
//! Every exported body runs inside [`boundary`] (directly, or through [`api`] / [`call`] for
//! the object, gc and runtime functions; the exceptions are `agc_version`, which cannot fail,
//! and the preload build's `malloc`, `calloc`, `realloc` and `free`: see `malloc_override.rs`):
//! a Rust panic is caught there, recorded as the calling thread's last error, and turned into
//! the function's failure value (NULL, a negative `AGC_ERR_*` code, or nothing for `void`
//! functions). Failures that are not panics record their message with [`set_error`].
//!
//! Whether a call comes from code the library runs (a finalizer, a callback, a dealloc, a
//! traverse, a visitor) is the core's to know (`arenagc::gc::check_runtime_switch`): this file
//! counts nothing.
//!
//! The message lives in a fixed thread-local buffer: recording or reading it never allocates and
//! takes no lock, so it is safe inside the allocator's own failure paths.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int};
use core::fmt::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Bytes of the message buffer, including the terminating NUL.
const MSG_CAP: usize = 256;

thread_local! {
    // Empty (first byte NUL) until a message is recorded: every message starts with the name
    // of the function that failed, so a recorded one is never empty.
    static MSG: UnsafeCell<[u8; MSG_CAP]> = const { UnsafeCell::new([0; MSG_CAP]) };
}

/// [`boundary`] for the object, gc and runtime functions (the ones that can run user code; the
/// core marks that itself, so this is the boundary and nothing more).
#[inline(always)]
pub(crate) fn api<R>(func: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    boundary(func, on_panic, f)
}

/// Writes into a byte slice, truncating, always leaving room for the NUL.
struct Truncating<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Record `args` as the calling thread's last error.
pub fn set_error(args: fmt::Arguments<'_>) {
    let _ = MSG.try_with(|m| {
        // SAFETY: the buffer is this thread's own, and no reference to it outlives this call
        // (`last_error` hands C a raw pointer, which it reads only between our calls).
        let buf = unsafe { &mut *m.get() };
        let mut w = Truncating { buf, len: 0 };
        let _ = w.write_fmt(args);
        let end = w.len;
        buf[end] = 0;
    });
}

/// The calling thread's last error message (NUL-terminated), or NULL if none was recorded.
pub fn last_error() -> *const c_char {
    MSG.try_with(|m| {
        let p = m.get();
        // SAFETY: the buffer is this thread's own; only its first byte is read.
        if unsafe { (*p)[0] } == 0 {
            core::ptr::null()
        } else {
            p.cast::<c_char>().cast_const()
        }
    })
    .unwrap_or(core::ptr::null())
}

/// Return types that carry a negative `AGC_ERR_*` code (`int`, and `isize` for counts).
pub(crate) trait ErrorCode {
    fn from_code(code: c_int) -> Self;
}

impl ErrorCode for c_int {
    fn from_code(code: c_int) -> Self {
        code
    }
}

impl ErrorCode for isize {
    fn from_code(code: c_int) -> Self {
        code as isize
    }
}

/// [`api`] for a body that reports failures as `Err(code)` (its message already recorded),
/// so checks can use `?`; a panic gives `AGC_ERR_PANIC`.
#[inline(always)]
pub(crate) fn call<R: ErrorCode>(func: &str, f: impl FnOnce() -> Result<R, c_int>) -> R {
    api(func, R::from_code(crate::types::AGC_ERR_PANIC), || {
        f().unwrap_or_else(R::from_code)
    })
}

/// Run `f`; if it panics, record the panic as the last error of `func` and return `on_panic`.
#[inline(always)]
pub fn boundary<R>(func: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string payload)");
            set_error(format_args!("{func}: internal error (panic): {what}"));
            on_panic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;

    fn read() -> Option<String> {
        let p = last_error();
        // SAFETY: a non-null last_error is a NUL-terminated string in this thread's buffer.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    #[test]
    fn no_error_until_one_is_set_then_the_latest() {
        assert_eq!(read(), None);
        set_error(format_args!("first {}", 1));
        assert_eq!(read().as_deref(), Some("first 1"));
        set_error(format_args!("second"));
        assert_eq!(read().as_deref(), Some("second"));
    }

    #[test]
    fn long_messages_are_truncated_and_terminated() {
        let long = "x".repeat(1000);
        set_error(format_args!("{long}"));
        assert_eq!(read().map(|s| s.len()), Some(MSG_CAP - 1));
    }

    #[test]
    fn errors_are_per_thread() {
        set_error(format_args!("here"));
        std::thread::spawn(|| assert_eq!(read(), None))
            .join()
            .expect("thread");
        assert_eq!(read().as_deref(), Some("here"));
    }

    #[test]
    fn boundary_turns_a_panic_into_the_failure_value_and_a_message() {
        assert_eq!(boundary("f", -3, || 7), 7);
        let r = boundary("agc_test", -3, || -> i32 { panic!("boom {}", 42) });
        assert_eq!(r, -3);
        assert_eq!(
            read().as_deref(),
            Some("agc_test: internal error (panic): boom 42")
        );
    }
}
