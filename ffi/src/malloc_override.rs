//! The malloc replacement (cargo feature `override`; built as `libarenagc_malloc.so` by the
//! `arenagc-malloc` package): the whole glibc malloc family, so the library can be preloaded
//! under unmodified programs (`LD_PRELOAD=libarenagc_malloc.so prog`).
//!
//! | function              | semantics (glibc's)                                                 |
//! |-----------------------|---------------------------------------------------------------------|
//! | `malloc(0)`           | a distinct live pointer                                             |
//! | huge sizes            | NULL, `errno = ENOMEM` (posix_memalign: returns ENOMEM)              |
//! | `calloc`/`reallocarray` | product overflow: NULL, `ENOMEM`, old block untouched             |
//! | `realloc(p, 0)`       | frees `p`, returns NULL                                             |
//! | `posix_memalign`      | alignment not a power of two or not a multiple of `sizeof(void*)`: |
//! |                       | returns EINVAL, `*memptr` untouched                                  |
//! | `aligned_alloc`       | alignment not a power of two: NULL, `EINVAL` (glibc >= 2.38)        |
//! | `memalign`            | alignment <= 16: as malloc; not a power of two: rounded up;          |
//! |                       | over `SIZE_MAX/2+1`: NULL, `EINVAL`                                  |
//! | `valloc` / `pvalloc`  | page-aligned; pvalloc rounds the size up to whole pages              |
//! | `free_sized` / `free_aligned_sized` | C23: the size is checked against the block          |
//!
//! The rules of each function live in the core (`arenagc::alloc::c`); these exports forward.
//!
//! **Panics.** The hot entry points (`malloc`, `calloc`, `realloc`, `free`) call the core
//! directly, with no `catch_unwind`: the core reports every fault it detects by aborting with a
//! message and never panics on a path these take, and if a bug ever made it panic, Rust stops
//! the unwind at the `extern "C"` edge and aborts. That is deliberate, as glibc aborts on a
//! corrupted heap: a panic inside `malloc` means the allocator's state cannot be trusted, and
//! returning NULL would let the program go on with it. The catch frame cost about 5% of a
//! malloc/free pair (`ffi/bench`). Every other export (here and in the `agc_*` API) keeps a
//! boundary (`boundary`, or `api` for the object, gc and runtime functions).
//!
//! Small requests are served from the arenas; large ones go to glibc's own entry points
//! (`__libc_malloc` and friends) inside the core, so no `dlsym` is needed and early calls (from
//! the dynamic loader, or from pthread functions during the core's own thread setup) cannot
//! recurse. Fork and thread exit are handled by the core (`pthread_atfork`, a pthread key
//! destructor). At load it tunes glibc's trim and mmap thresholds for the large blocks
//! (`arenagc::alloc::tune_system_allocator`: 64 MiB and 32 MiB, unless the environment sets
//! glibc's own). With `ARENAGC_STATS=1` in the environment at start, the statistics table is
//! written to stderr at exit (a `.fini_array` entry, so it runs after `atexit` handlers and
//! the destructors of every library loaded after this one), or appended to the file
//! `ARENAGC_STATS_FILE` names (`%p`: the process id), once per process, in one `write`.
//! `ARENAGC_TRACE` / `ARENAGC_TRACE_SAMPLE` trace allocations from load to exit and write a
//! report and profiles at exit (`preload_trace.rs`).
//!
//! **Limits** (shared with jemalloc, tcmalloc and mimalloc's override builds): a library opened
//! with `RTLD_DEEPBIND` binds `free` to glibc's own, and glibc aborts on a block of ours it is
//! handed. The library is meant to be preloaded: `dlopen`ed, it works in normal mode (glibc's
//! earlier blocks, freed through us, go back to glibc), but debug mode then aborts on them as
//! "pointer not from this allocator" (they carry no debug header).

use crate::error::boundary;
use arenagc::alloc::{self, c};
use core::ffi::{c_int, c_void};
use core::fmt::Write as _;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// # Safety
/// C `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    c::malloc(size).cast()
}

/// # Safety
/// C `calloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    c::calloc(n, size).cast()
}

/// # Safety
/// C `free`: `p` is NULL or a live block from this allocator (or from glibc's own entry
/// points), not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { c::free(p.cast()) }
}

/// # Safety
/// C `realloc`: `p` is NULL or a live block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { c::realloc(p.cast(), size).cast() }
}

/// # Safety
/// C `reallocarray`: `p` is NULL or a live block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    boundary("reallocarray", ptr::null_mut(), || unsafe {
        c::reallocarray(p.cast(), n, size).cast()
    })
}

/// # Safety
/// C `posix_memalign`: `memptr` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    boundary("posix_memalign", libc::ENOMEM, || {
        match c::posix_memalign(align, size) {
            Ok(p) => {
                // SAFETY: memptr is writable per the contract.
                unsafe { memptr.write(p.cast()) };
                0
            }
            Err(code) => code,
        }
    })
}

/// # Safety
/// C11 `aligned_alloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    boundary("aligned_alloc", ptr::null_mut(), || {
        c::aligned_alloc(align, size).cast()
    })
}

/// # Safety
/// glibc `memalign`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    boundary("memalign", ptr::null_mut(), || {
        c::memalign(align, size).cast()
    })
}

/// # Safety
/// glibc `valloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    boundary("valloc", ptr::null_mut(), || c::valloc(size).cast())
}

/// # Safety
/// glibc `pvalloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    boundary("pvalloc", ptr::null_mut(), || c::pvalloc(size).cast())
}

/// # Safety
/// glibc `malloc_usable_size`: `p` is NULL or a live block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: forwarded from the caller.
    boundary("malloc_usable_size", 0, || unsafe {
        c::usable_size(p.cast())
    })
}

/// # Safety
/// C23 `free_sized`: `p` is NULL or a live block of `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, size: usize) {
    // SAFETY: forwarded from the caller.
    boundary("free_sized", (), || unsafe {
        c::free_sized(p.cast(), size)
    })
}

/// # Safety
/// C23 `free_aligned_sized`: `p` is NULL or a live block of `size` bytes from `aligned_alloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, size: usize) {
    // The block's alignment is not recorded; the size is what can be checked.
    // SAFETY: forwarded from the caller.
    boundary("free_aligned_sized", (), || unsafe {
        c::free_sized(p.cast(), size)
    })
}

// ---------------------------------------------------------------------------------------------
// ARENAGC_STATS=1: the statistics table on stderr at exit; ARENAGC_STATS_FILE=path: appended to
// a file instead
//
// Each process that exits with the library loaded writes its table once (the `.fini_array`
// entry below runs once per process: forked children too, exec'd images read the environment
// again). The table is formatted first and written with one `write`, so tables of processes
// sharing a pipe or a file do not interleave (a regular file opened with `O_APPEND` takes
// each `write` whole, at its end).

static STATS_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// The path of `ARENAGC_STATS_FILE`, copied at load (the program may change its environment
/// before it exits); `STATS_PATH_LEN` bytes of it, 0 when unset. Written once, by `at_load`,
/// before any thread of the program can exist (or, for a `dlopen`, before the library is
/// published to the other threads); read at exit.
struct StatsPath(core::cell::UnsafeCell<[u8; STATS_PATH_MAX]>);
// SAFETY: written only by `at_load`, once, before the library's other code can run on another
// thread (see above); read-only afterwards.
unsafe impl Sync for StatsPath {}
const STATS_PATH_MAX: usize = libc::PATH_MAX as usize;
static STATS_PATH: StatsPath = StatsPath(core::cell::UnsafeCell::new([0; STATS_PATH_MAX]));
static STATS_PATH_LEN: AtomicUsize = AtomicUsize::new(0);

/// At load: read `ARENAGC_STATS` and `ARENAGC_STATS_FILE`, and tune glibc for the large
/// blocks, which are now the only ones it serves (`arenagc::alloc::tune_system_allocator`; the
/// environment's own glibc settings win).
extern "C" fn at_load() {
    read_stats_env();
    alloc::tune_system_allocator();
    crate::preload_trace::at_load();
}

fn read_stats_env() {
    let mut on = arenagc::options::STATS.flag();
    if let Some(path) = arenagc::options::STATS_FILE.value() {
        // A longer path than the system's limit could not be opened anyway: stderr then.
        if !path.is_empty() && path.len() < STATS_PATH_MAX {
            // SAFETY: the only writer, before any reader (StatsPath's contract).
            unsafe { (&mut *STATS_PATH.0.get())[..path.len()].copy_from_slice(path) };
            STATS_PATH_LEN.store(path.len(), Ordering::Release);
            on = true;
        }
    }
    STATS_AT_EXIT.store(on, Ordering::Relaxed);
}

/// `ARENAGC_STATS_FILE`'s path with `%p` replaced by `pid` and `%%` by `%`, NUL-terminated;
/// None when unset.
fn stats_path(pid: libc::pid_t) -> Option<Vec<u8>> {
    let len = STATS_PATH_LEN.load(Ordering::Acquire);
    if len == 0 {
        return None;
    }
    // SAFETY: written once at load, before this read (the Release/Acquire pair on the length).
    let raw = unsafe { &(&*STATS_PATH.0.get())[..len] };
    Some(expand_path(raw, pid))
}

/// `raw` with `%p` replaced by `pid` and `%%` by `%` (any other `%` kept), NUL-terminated.
pub(crate) fn expand_path(raw: &[u8], pid: libc::pid_t) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut i = 0;
    while i < raw.len() {
        match (raw[i], raw.get(i + 1)) {
            (b'%', Some(b'p')) => {
                out.extend_from_slice(pid.to_string().as_bytes());
                i += 2;
            }
            (b'%', Some(b'%')) => {
                out.push(b'%');
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.push(0);
    out
}

/// Write all of `bytes` to `fd` (one `write` unless the kernel takes less).
pub(crate) fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: bytes is a valid readable buffer of that length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if alloc::c::errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

extern "C" fn print_stats_at_exit() {
    if !STATS_AT_EXIT.load(Ordering::Relaxed) {
        return;
    }
    boundary("stats at exit", (), || {
        let s = alloc::stats();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let mut text = String::with_capacity(8192);
        let _ = write!(text, "arenagc: statistics at exit (pid {pid})\n{s}");
        let Some(path) = stats_path(pid) else {
            write_all(libc::STDERR_FILENO, text.as_bytes());
            return;
        };
        // SAFETY: path is NUL-terminated; the flags and mode are valid.
        let fd = unsafe {
            libc::open(
                path.as_ptr().cast(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        };
        if fd < 0 {
            let _ = writeln!(
                text,
                "arenagc: (this table goes to stderr: ARENAGC_STATS_FILE '{}' cannot be opened, errno {})",
                String::from_utf8_lossy(&path[..path.len() - 1]),
                alloc::c::errno()
            );
            write_all(libc::STDERR_FILENO, text.as_bytes());
            return;
        }
        write_all(fd, text.as_bytes());
        // SAFETY: fd was opened above and is closed once.
        unsafe { libc::close(fd) };
    })
}

/// Read `ARENAGC_STATS` and `ARENAGC_STATS_FILE` and tune glibc when the library is loaded
/// (before `main` can change the environment).
#[used]
#[unsafe(link_section = ".init_array")]
static AT_LOAD: extern "C" fn() = at_load;

/// Print the table when the library is unloaded at exit.
#[used]
#[unsafe(link_section = ".fini_array")]
static PRINT_STATS_AT_EXIT: extern "C" fn() = print_stats_at_exit;

/// Write the tracing report at exit (`ARENAGC_TRACE`, `preload_trace.rs`).
#[used]
#[unsafe(link_section = ".fini_array")]
static TRACE_AT_EXIT: extern "C" fn() = crate::preload_trace::at_exit;
