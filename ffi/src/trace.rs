//! tracemalloc for C (`agc_trace_*`): thin wrappers over `arenagc::trace`. Blocks allocated
//! through this library while tracing is on (`agc_malloc` and the other `agc_*` allocation
//! functions, or every `malloc` under the preload library) are traced with their C call stack.
//!
//! ```text
//!  agc_trace_start(nframes) / _start_sampled(mean, nframes) / _stop / _is_tracing
//!  agc_trace_get_traced_memory(&current, &peak) / _reset_peak
//!  agc_trace_snapshot() ─────────────> handle (LIVE) ─> _statistics(key, visit, data)
//!  agc_trace_snapshot_load(path) ────┘                 ├> _compare(old, key, visit, data)
//!                                                      ├> _dump / _write_pprof / _write_folded(path)
//!                                                      └> _free
//! ```
//!
//! Invariants: a snapshot handle is the address of an `Arc<Snapshot>` registered in `LIVE`
//! from its creation to `agc_trace_snapshot_free`; a handle is never dereferenced, only looked
//! up, so NULL, freed and foreign handles are refused (`AGC_ERR_NULL`, `AGC_ERR_STATE`) and a
//! visitor may free the handle it is visiting (the call holds its own `Arc`). Visitors run
//! with no lock held.

use core::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex, MutexGuard};

use arenagc::trace::{self, Key, Snapshot, TraceError};

use crate::error::{api, call, set_error};
use crate::types::{AGC_ERR_IO, AGC_ERR_NULL, AGC_ERR_STATE, AGC_ERR_VALUE, AGC_OK};

/// `agc_trace_snapshot_t`: opaque (a handle, never dereferenced).
#[repr(C)]
pub struct AgcTraceSnapshot {
    _private: [u8; 0],
}

/// `agc_trace_stat_visitor`: one statistic (the group's most recent frame: file, line,
/// function or NULL; its bytes and blocks, and their differences for a comparison, 0
/// otherwise); nonzero stops the walk.
pub type AgcTraceStatVisitor = Option<
    unsafe extern "C" fn(
        filename: *const c_char,
        lineno: c_uint,
        function: *const c_char,
        size: usize,
        size_diff: isize,
        count: usize,
        count_diff: isize,
        data: *mut c_void,
    ) -> c_int,
>;

/// Every live snapshot handle.
static LIVE: Mutex<BTreeMap<usize, Arc<Snapshot>>> = Mutex::new(BTreeMap::new());

fn live() -> MutexGuard<'static, BTreeMap<usize, Arc<Snapshot>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(snap: Snapshot) -> *mut AgcTraceSnapshot {
    let snap = Arc::new(snap);
    let handle = Arc::as_ptr(&snap) as *mut AgcTraceSnapshot;
    live().insert(handle as usize, snap);
    handle
}

/// The snapshot of a handle: `AGC_ERR_NULL` or `AGC_ERR_STATE` (with a message) otherwise.
fn snapshot(func: &str, what: &str, h: *const AgcTraceSnapshot) -> Result<Arc<Snapshot>, c_int> {
    if h.is_null() {
        set_error(format_args!("{func}: {what} is NULL"));
        return Err(AGC_ERR_NULL);
    }
    live().get(&(h as usize)).cloned().ok_or_else(|| {
        set_error(format_args!(
            "{func}: {h:p} is not a live snapshot (freed, or not from agc_trace_snapshot)"
        ));
        AGC_ERR_STATE
    })
}

/// A C string argument: `AGC_ERR_NULL` when NULL, `AGC_ERR_VALUE` when not UTF-8.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string.
unsafe fn text<'a>(func: &str, what: &str, s: *const c_char) -> Result<&'a str, c_int> {
    if s.is_null() {
        set_error(format_args!("{func}: {what} is NULL"));
        return Err(AGC_ERR_NULL);
    }
    // SAFETY: a NUL-terminated string (the caller's contract).
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|_| {
        set_error(format_args!("{func}: {what} is not UTF-8"));
        AGC_ERR_VALUE
    })
}

/// A statistics key (`"lineno"`, `"filename"`, `"traceback"`), else `AGC_ERR_VALUE`.
///
/// # Safety
/// As `text`.
unsafe fn key(func: &str, s: *const c_char) -> Result<Key, c_int> {
    // SAFETY: forwarded.
    match unsafe { text(func, "key", s) }? {
        "lineno" => Ok(Key::Lineno),
        "filename" => Ok(Key::Filename),
        "traceback" => Ok(Key::Traceback),
        other => {
            set_error(format_args!(
                "{func}: unknown key \"{other}\" (lineno, filename or traceback)"
            ));
            Err(AGC_ERR_VALUE)
        }
    }
}

fn start_error(func: &str, e: TraceError) -> c_int {
    set_error(format_args!("{func}: {e}"));
    AGC_ERR_VALUE
}

/// Start tracing, keeping up to `nframes` frames (1 to 256) per block. `AGC_OK` (also when
/// tracing already), `AGC_ERR_VALUE` for a bad `nframes`.
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_start(nframes: usize) -> c_int {
    call("agc_trace_start", || {
        trace::start(nframes).map_err(|e| start_error("agc_trace_start", e))?;
        Ok(AGC_OK)
    })
}

/// Start tracing in sampled mode: one sample per `mean_bytes` allocated on average (512 KiB
/// is jemalloc's default), statistics are estimates. `AGC_OK`, `AGC_ERR_VALUE` for a zero
/// mean or a bad `nframes`.
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_start_sampled(mean_bytes: usize, nframes: usize) -> c_int {
    call("agc_trace_start_sampled", || {
        trace::start_sampled(mean_bytes, nframes)
            .map_err(|e| start_error("agc_trace_start_sampled", e))?;
        Ok(AGC_OK)
    })
}

/// Stop tracing and forget every trace.
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_stop() {
    api("agc_trace_stop", (), trace::stop)
}

/// 1 while tracing, 0 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_is_tracing() -> c_int {
    api("agc_trace_is_tracing", 0, || trace::is_tracing() as c_int)
}

/// Bytes traced now and at the peak (estimates in sampled mode) into `*current` and `*peak`.
/// `AGC_OK`, `AGC_ERR_NULL` if either is NULL.
///
/// # Safety
/// `current` and `peak` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_get_traced_memory(
    current: *mut usize,
    peak: *mut usize,
) -> c_int {
    call("agc_trace_get_traced_memory", || {
        if current.is_null() || peak.is_null() {
            set_error(format_args!(
                "agc_trace_get_traced_memory: current or peak is NULL"
            ));
            return Err(AGC_ERR_NULL);
        }
        let (c, p) = trace::get_traced_memory();
        // SAFETY: both writable (the caller's contract), checked non-NULL.
        unsafe {
            current.write(c);
            peak.write(p);
        }
        Ok(AGC_OK)
    })
}

/// Make the peak the current size.
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_reset_peak() {
    api("agc_trace_reset_peak", (), trace::reset_peak)
}

/// A snapshot of the traces held now (empty when not tracing); free it with
/// `agc_trace_snapshot_free`. NULL only on an internal error, with a message.
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_snapshot() -> *mut AgcTraceSnapshot {
    api("agc_trace_snapshot", core::ptr::null_mut(), || {
        register(trace::take_snapshot())
    })
}

/// A snapshot read from a file `agc_trace_snapshot_dump` (or Rust's `Snapshot::dump`) wrote.
/// NULL with a message for a NULL path, a file that cannot be read or is not a snapshot.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_snapshot_load(path: *const c_char) -> *mut AgcTraceSnapshot {
    const F: &str = "agc_trace_snapshot_load";
    api(F, core::ptr::null_mut(), || {
        // SAFETY: forwarded from the caller.
        let Ok(path) = (unsafe { text(F, "path", path) }) else {
            return core::ptr::null_mut();
        };
        match Snapshot::load(path) {
            Ok(s) => register(s),
            Err(e) => {
                set_error(format_args!("{F}: {path}: {e}"));
                core::ptr::null_mut()
            }
        }
    })
}

/// Free a snapshot. `AGC_OK` (NULL does nothing), `AGC_ERR_STATE` for a handle that is not
/// live (already freed, or foreign).
#[unsafe(no_mangle)]
pub extern "C" fn agc_trace_snapshot_free(snap: *mut AgcTraceSnapshot) -> c_int {
    call("agc_trace_snapshot_free", || {
        if snap.is_null() {
            return Ok(AGC_OK);
        }
        let gone = live().remove(&(snap as usize));
        match gone {
            Some(s) => {
                drop(s);
                Ok(AGC_OK)
            }
            None => {
                set_error(format_args!(
                    "agc_trace_snapshot_free: {snap:p} is not a live snapshot (freed, or not from agc_trace_snapshot)"
                ));
                Err(AGC_ERR_STATE)
            }
        }
    })
}

/// Call `visit` once per row until it returns nonzero; the number of calls.
fn visit_rows(
    rows: impl Iterator<Item = (trace::Traceback, usize, isize, usize, isize)>,
    visit: unsafe extern "C" fn(
        *const c_char,
        c_uint,
        *const c_char,
        usize,
        isize,
        usize,
        isize,
        *mut c_void,
    ) -> c_int,
    data: *mut c_void,
) -> isize {
    let c = |s: &str| CString::new(s.replace('\0', "?")).unwrap_or_default();
    let mut n = 0;
    for (tb, size, size_diff, count, count_diff) in rows {
        let f = &tb.frames()[0];
        let file = c(f.filename());
        let func = f.function().map(c);
        let func_ptr = func.as_ref().map_or(core::ptr::null(), |s| s.as_ptr());
        n += 1;
        // SAFETY: the caller promised `visit` accepts `data`; the strings live for the call.
        let stop = unsafe {
            visit(
                file.as_ptr(),
                f.lineno(),
                func_ptr,
                size,
                size_diff,
                count,
                count_diff,
                data,
            )
        };
        if stop != 0 {
            break;
        }
    }
    n
}

/// Call `visit(filename, lineno, function, size, 0, count, 0, data)` for each group of the
/// snapshot by `key` (`"lineno"`, `"filename"` or `"traceback"`; a traceback is shown by its
/// most recent frame), biggest first, until it returns nonzero. Returns the number of calls;
/// `AGC_ERR_NULL` for a NULL snapshot, key or visit, `AGC_ERR_VALUE` for an unknown key,
/// `AGC_ERR_STATE` for a handle that is not live.
///
/// # Safety
/// `key` is NULL or a NUL-terminated string; `visit` is NULL or accepts `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_snapshot_statistics(
    snap: *const AgcTraceSnapshot,
    key: *const c_char,
    visit: AgcTraceStatVisitor,
    data: *mut c_void,
) -> isize {
    const F: &str = "agc_trace_snapshot_statistics";
    call(F, || {
        let s = snapshot(F, "snapshot", snap)?;
        // SAFETY: forwarded from the caller.
        let key = unsafe { self::key(F, key) }?;
        let Some(visit) = visit else {
            set_error(format_args!("{F}: visit is NULL"));
            return Err(AGC_ERR_NULL);
        };
        let rows = s.statistics(key).into_iter();
        Ok(visit_rows(
            rows.map(|st| (st.traceback, st.size, 0, st.count, 0)),
            visit,
            data,
        ))
    })
}

/// Call `visit(filename, lineno, function, size, size_diff, count, count_diff, data)` for
/// each group's difference between `snap` and the older `old` by `key`, biggest absolute size
/// difference first, until it returns nonzero. Returns the number of calls; errors as
/// `agc_trace_snapshot_statistics` (for either snapshot).
///
/// # Safety
/// As `agc_trace_snapshot_statistics`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_snapshot_compare(
    snap: *const AgcTraceSnapshot,
    old: *const AgcTraceSnapshot,
    key: *const c_char,
    visit: AgcTraceStatVisitor,
    data: *mut c_void,
) -> isize {
    const F: &str = "agc_trace_snapshot_compare";
    call(F, || {
        let s = snapshot(F, "snapshot", snap)?;
        let o = snapshot(F, "old snapshot", old)?;
        // SAFETY: forwarded from the caller.
        let key = unsafe { self::key(F, key) }?;
        let Some(visit) = visit else {
            set_error(format_args!("{F}: visit is NULL"));
            return Err(AGC_ERR_NULL);
        };
        let rows = s.compare_to(&o, key).into_iter();
        Ok(visit_rows(
            rows.map(|d| (d.traceback, d.size, d.size_diff, d.count, d.count_diff)),
            visit,
            data,
        ))
    })
}

/// Write `snap` to the file `path` with `write`: the body of the three writers.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn write_file(
    func: &str,
    snap: *const AgcTraceSnapshot,
    path: *const c_char,
    write: impl FnOnce(&Snapshot, &str) -> std::io::Result<()>,
) -> c_int {
    call(func, || {
        let s = snapshot(func, "snapshot", snap)?;
        // SAFETY: forwarded from the caller.
        let path = unsafe { text(func, "path", path) }?;
        write(&s, path).map_err(|e| {
            set_error(format_args!("{func}: {path}: {e}"));
            AGC_ERR_IO
        })?;
        Ok(AGC_OK)
    })
}

/// Write `snap` to the file `path` (created or truncated), readable by
/// `agc_trace_snapshot_load` in any process. `AGC_OK`; `AGC_ERR_NULL`, `AGC_ERR_STATE` as
/// above; `AGC_ERR_IO` if the file cannot be written.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_snapshot_dump(
    snap: *const AgcTraceSnapshot,
    path: *const c_char,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { write_file("agc_trace_snapshot_dump", snap, path, |s, p| s.dump(p)) }
}

/// Write `snap` as a pprof heap profile (`profile.proto`, uncompressed; `pprof -top path`) to
/// the file `path`. Results as `agc_trace_snapshot_dump`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_snapshot_write_pprof(
    snap: *const AgcTraceSnapshot,
    path: *const c_char,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe {
        write_file("agc_trace_snapshot_write_pprof", snap, path, |s, p| {
            s.write_pprof(std::fs::File::create(p)?)
        })
    }
}

/// Write `snap` as folded stacks (`root;caller;callee bytes` per line, for flame graphs) to
/// the file `path`. Results as `agc_trace_snapshot_dump`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn agc_trace_snapshot_write_folded(
    snap: *const AgcTraceSnapshot,
    path: *const c_char,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe {
        write_file("agc_trace_snapshot_write_folded", snap, path, |s, p| {
            s.write_folded(std::fs::File::create(p)?)
        })
    }
}
