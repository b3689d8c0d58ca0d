//! The allocator's ground floor: how it reports a fault and stops. Every other file of `alloc`
//! (and the collector's own abort) reaches down here; this file reaches nothing of the crate.
//!
//! - `fatal` / `fatal_fmt`: a fault in the use of the allocator (double free, invalid pointer,
//!   corrupted block): one line on stderr naming it, then `abort()`.
//! - `abort_fmt`: the same for any other fatal message (the collector's).
//! - `block_fault`: `fatal_fmt` for a fault in a block debug mode can describe (double free,
//!   underflow, overflow, write after free, size mismatch): after the line, the report
//!   registered with `set_block_report` (the tracer's: where the block was allocated and freed,
//!   `trace/freed.rs`) runs, then the process aborts.
//! - `invariant!`: a broken internal invariant, checked in debug builds only.
//!
//! Invariants: nothing here allocates or takes a lock (messages are formatted into a buffer on
//! the stack and written with one `write(2)` loop), so it is safe inside `malloc`, under the
//! allocator's locks, in a forked child and in a signal handler. The one exception is the
//! registered block report, which symbolises (and allocates): `block_fault` is called only
//! where debug mode holds none of the allocator's locks, and runs the report once per process
//! (a fault inside it aborts at once).

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Check an allocator invariant in debug builds. A broken invariant aborts with a message
/// instead of panicking: a panic allocates, and inside the allocator (perhaps under its global
/// lock) that would re-enter it.
macro_rules! invariant {
    ($cond:expr, $msg:expr) => {
        if cfg!(debug_assertions) && !$cond {
            $crate::alloc::fatal::fatal("broken allocator invariant", core::ptr::null(), $msg)
        }
    };
}

/// A message buffer on the stack; output past its end is dropped.
struct StackBuf {
    buf: [u8; 512],
    len: usize,
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Write a message to standard error without allocating.
pub fn write_stderr(msg: &[u8]) {
    let mut rest = msg;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid byte slice; fd 2 may be closed, which write reports.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Write `arenagc: fatal error: <msg>` and a newline to standard error. Never allocates.
fn write_fatal_line(msg: core::fmt::Arguments<'_>) {
    let mut b = StackBuf {
        buf: [0; 512],
        len: 0,
    };
    let _ = writeln!(b, "arenagc: fatal error: {msg}");
    write_stderr(&b.buf[..b.len]);
}

/// Print `arenagc: fatal error: <msg>` and abort. Never allocates.
#[cold]
#[inline(never)]
pub(crate) fn abort_fmt(msg: core::fmt::Arguments<'_>) -> ! {
    write_fatal_line(msg);
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Report a fault in the use of the allocator and abort. Formats on the stack; never allocates.
#[cold]
#[inline(never)]
pub(crate) fn fatal_fmt(what: &str, ptr: *const u8, detail: core::fmt::Arguments<'_>) -> ! {
    abort_fmt(format_args!("{what} of pointer {ptr:p}: {detail}"))
}

/// The block report (`fn(*const u8)` as an address; 0: none), see `set_block_report`.
static BLOCK_REPORT: AtomicUsize = AtomicUsize::new(0);

/// Have `block_fault` call `report(user)` after its message (the tracer registers where a
/// block was allocated and freed, when debug mode is chosen with tracing built in).
#[cfg(feature = "trace")]
pub(crate) fn set_block_report(report: fn(*const u8)) {
    BLOCK_REPORT.store(report as usize, Ordering::Release);
}

/// Report a fault in the block the user knows as `user` and abort: the line of `fatal_fmt`,
/// then the registered block report, if any. Called only where no allocator lock is held.
#[cold]
#[inline(never)]
pub(crate) fn block_fault(what: &str, user: *const u8, detail: core::fmt::Arguments<'_>) -> ! {
    static REPORTING: AtomicBool = AtomicBool::new(false);
    let report = BLOCK_REPORT.load(Ordering::Acquire);
    if report == 0 || REPORTING.swap(true, Ordering::Relaxed) {
        fatal_fmt(what, user, detail);
    }
    write_fatal_line(format_args!("{what} of pointer {user:p}: {detail}"));
    // SAFETY: a non-zero BLOCK_REPORT is a `fn(*const u8)` stored by `set_block_report`.
    let report: fn(*const u8) = unsafe { core::mem::transmute::<usize, fn(*const u8)>(report) };
    report(user);
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// [`fatal_fmt`] with a plain message.
#[cold]
#[inline(never)]
pub(crate) fn fatal(what: &str, ptr: *const u8, detail: &str) -> ! {
    fatal_fmt(what, ptr, format_args!("{detail}"))
}
