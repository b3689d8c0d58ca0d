//! Tracing under `LD_PRELOAD` with no code change (the preload build only, feature
//! `override`): `ARENAGC_TRACE=<frames>` or `ARENAGC_TRACE_SAMPLE=<mean bytes>` in the
//! environment starts `arenagc::trace` when the library is loaded; at exit the live memory's
//! statistics are written to `ARENAGC_TRACE_FILE` (default `arenagc-trace.%p`, `%p` the pid),
//! with a pprof profile at that path plus `.pb` and folded stacks plus `.folded`.
//!
//! With `ARENAGC_TRACE_SIGNAL=USR2` (or another signal) a long-running server gets the report of
//! the moment whenever it receives that signal, written to the path plus `.1`, `.2`, ... while
//! tracing goes on, jemalloc's `prof.dump` by signal.
//!
//! ```text
//!  .init_array: at_load ──> options::TRACE / TRACE_SAMPLE / TRACE_FILE ──> trace::start[_sampled]
//!               (TRACE_SIGNAL: a pipe, a handler that writes one byte to it, a reporter thread
//!                that reads it and writes PATH.N, PATH.N.pb, PATH.N.folded each time)
//!  .fini_array: at_exit ──> take_snapshot, stop ──> PATH (report), PATH.pb, PATH.folded
//! ```
//!
//! Invariants: the path is read once at load (the program may change its environment);
//! `at_exit` writes only when the variables asked for tracing and it is still on, once per
//! process (a forked child
//! writes its own files, named by its pid); it never panics across the C edge (`boundary`),
//! and a file that cannot be written turns into a message on stderr, the report with it.
//! The signal handler only calls `getpid` and `write` (async-signal-safe) and keeps `errno`;
//! it ignores the signal in a forked child (the reporter thread lives only in the process that
//! loaded the library, and the pipe is shared with it). Reports are made untraced
//! (`trace::untraced`), so writing one does not change the figures.

use core::fmt::Write as _;
use core::sync::atomic::AtomicI32;
use core::sync::atomic::Ordering::Relaxed;
use std::io::Write as _;
use std::sync::OnceLock;

use arenagc::options;
use arenagc::trace::{self, Snapshot};

use crate::error::boundary;
use crate::malloc_override::{expand_path, write_all};

/// The raw `ARENAGC_TRACE_FILE` path (or its default), set when `at_load` started tracing.
static PATH: OnceLock<Vec<u8>> = OnceLock::new();

/// Frames per block when only `ARENAGC_TRACE_SAMPLE` is set.
const SAMPLED_FRAMES: usize = 16;
/// Lines and tracebacks in the report.
const TOP_LINES: usize = 50;
const TOP_TRACEBACKS: usize = 10;

/// Read the variables and start tracing (called from the library's `.init_array` entry).
pub(crate) fn at_load() {
    let frames = options::TRACE.number();
    let mean = options::TRACE_SAMPLE.number();
    if frames.is_none() && mean.is_none() {
        if options::TRACE.is_set() || options::TRACE_SAMPLE.is_set() {
            warn("ARENAGC_TRACE / ARENAGC_TRACE_SAMPLE must be decimal numbers; not tracing");
        }
        return;
    }
    // The path first: its copy is then not a traced block.
    let path = options::TRACE_FILE
        .value()
        .filter(|p| !p.is_empty())
        .unwrap_or(b"arenagc-trace.%p");
    let _ = PATH.set(path.to_vec());
    let nframes = frames.map_or(SAMPLED_FRAMES, |n| n.min(usize::MAX as u64) as usize);
    let started = match mean {
        Some(m) => trace::start_sampled(m as usize, nframes),
        None => trace::start(nframes),
    };
    if let Err(e) = started {
        warn(&format!("ARENAGC_TRACE: {e}; not tracing"));
        return;
    }
    if options::TRACE_SIGNAL.is_set() {
        match options::TRACE_SIGNAL.value().and_then(signal_number) {
            Some(sig) => start_signal_reports(sig),
            None => warn("ARENAGC_TRACE_SIGNAL: not a signal (USR1, USR2, SIGUSR2 or a number)"),
        }
    }
}

/// `USR2`, `SIGUSR2` or a number (1..=64, not SIGKILL or SIGSTOP).
fn signal_number(v: &[u8]) -> Option<libc::c_int> {
    let name = v.strip_prefix(b"SIG").unwrap_or(v);
    let n = match name {
        b"USR1" => libc::SIGUSR1,
        b"USR2" => libc::SIGUSR2,
        b"HUP" => libc::SIGHUP,
        b"PROF" => libc::SIGPROF,
        b"WINCH" => libc::SIGWINCH,
        digits
            if !digits.is_empty() && digits.len() <= 2 && digits.iter().all(u8::is_ascii_digit) =>
        {
            digits
                .iter()
                .fold(0, |n, d| n * 10 + libc::c_int::from(d - b'0'))
        }
        _ => return None,
    };
    (1..=64)
        .contains(&n)
        .then_some(n)
        .filter(|&n| n != libc::SIGKILL && n != libc::SIGSTOP)
}

/// The pipe the handler writes to (write end) and the reporter reads (read end); -1 before.
static SIGNAL_PIPE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];
/// The process that loaded the library (the one with the reporter thread).
static LOADER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(_sig: libc::c_int) {
    // SAFETY: __errno_location, getpid and write are async-signal-safe; the byte is on the
    // stack; a full pipe just drops this request (one is pending anyway).
    unsafe {
        let errno = *libc::__errno_location();
        if libc::getpid() == LOADER_PID.load(Relaxed) {
            let fd = SIGNAL_PIPE[1].load(Relaxed);
            let b = 1u8;
            let _ = libc::write(fd, (&b as *const u8).cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

extern "C" fn reporter(_: *mut libc::c_void) -> *mut libc::c_void {
    let fd = SIGNAL_PIPE[0].load(Relaxed);
    let mut n = 0u64;
    loop {
        let mut b = 0u8;
        // SAFETY: fd is the pipe's read end, b a valid one-byte buffer.
        let r = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if r == 1 {
            n += 1;
            boundary("trace on signal", (), || {
                trace::untraced(|| write_reports(Some(n)))
            });
        } else if r == 0 || (r < 0 && arenagc::alloc::c::errno() != libc::EINTR) {
            return core::ptr::null_mut();
        }
    }
}

fn start_signal_reports(sig: libc::c_int) {
    let mut fds = [-1; 2];
    // SAFETY: fds is a valid array of two; the ends close on exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        warn("ARENAGC_TRACE_SIGNAL: no pipe; no reports on signal");
        return;
    }
    // The reporter blocks on its end; only the handler's end stays non-blocking.
    // SAFETY: fds[0] is the read end just made.
    unsafe { libc::fcntl(fds[0], libc::F_SETFL, 0) };
    SIGNAL_PIPE[0].store(fds[0], Relaxed);
    SIGNAL_PIPE[1].store(fds[1], Relaxed);
    // SAFETY: getpid has no preconditions.
    LOADER_PID.store(unsafe { libc::getpid() }, Relaxed);
    // SAFETY: a zeroed pthread_t and attributes are filled in by the calls; reporter runs for
    // the life of the process and touches only the pipe and the tracer.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut t: libc::pthread_t = core::mem::zeroed();
        let rc = libc::pthread_create(&mut t, &attr, reporter, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 {
            warn("ARENAGC_TRACE_SIGNAL: no reporter thread; no reports on signal");
            return;
        }
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, core::ptr::null_mut()) != 0 {
            warn("ARENAGC_TRACE_SIGNAL: sigaction failed; no reports on signal");
        }
    }
}

fn warn(msg: &str) {
    write_all(libc::STDERR_FILENO, format!("arenagc: {msg}\n").as_bytes());
}

/// The text report: totals, the top lines, the top tracebacks.
fn report(
    snap: &Snapshot,
    pid: libc::pid_t,
    current: usize,
    peak: usize,
    on_signal: bool,
) -> String {
    let mode = match snap.sample_mean() {
        Some(m) => format!("sampled, one sample per {m} bytes: figures are estimates"),
        None => "exact".to_string(),
    };
    let size = |n: usize| trace::format_size(n as f64, false);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "arenagc: traced memory {} (pid {pid}, {mode}, {} frames): current {}, peak {}",
        if on_signal { "on signal" } else { "at exit" },
        snap.traceback_limit(),
        size(current),
        size(peak)
    );
    let _ = writeln!(t, "\nTop {TOP_LINES} lines of live memory:");
    for (i, s) in snap.statistics("lineno").iter().take(TOP_LINES).enumerate() {
        let func = s.traceback.frames()[0].function().unwrap_or("?");
        let _ = writeln!(t, "#{}: {s} in {func}", i + 1);
    }
    let _ = writeln!(t, "\nTop {TOP_TRACEBACKS} tracebacks of live memory:");
    for (i, s) in snap
        .statistics("traceback")
        .iter()
        .take(TOP_TRACEBACKS)
        .enumerate()
    {
        let _ = writeln!(t, "#{}: size={}, count={}", i + 1, size(s.size), s.count);
        for line in s.traceback.format(true) {
            let _ = writeln!(t, "{line}");
        }
    }
    t
}

/// Write `bytes` to `path`, or say why not on stderr.
fn write_file(path: &str, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> bool {
    let r = std::fs::File::create(path).and_then(|mut f| {
        write(&mut f)?;
        f.flush()
    });
    if let Err(e) = &r {
        warn(&format!("ARENAGC_TRACE_FILE: cannot write {path}: {e}"));
    }
    r.is_ok()
}

/// Write the report and the profiles (called from the library's `.fini_array` entry).
pub(crate) extern "C" fn at_exit() {
    if PATH.get().is_none() {
        return;
    }
    boundary("trace at exit", (), || write_reports(None))
}

/// The report and the profiles: at exit (`seq` None: PATH, tracing stops) or on the signal
/// (`seq` Some(n): PATH.n, tracing goes on).
fn write_reports(seq: Option<u64>) {
    let Some(raw) = PATH.get() else { return };
    if !trace::is_tracing() {
        return; // the program stopped it
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let snap = trace::take_snapshot();
    let (current, peak) = trace::get_traced_memory();
    if seq.is_none() {
        trace::stop();
    }
    let text = report(&snap, pid, current, peak, seq.is_some());
    let path = expand_path(raw, pid);
    let mut path = String::from_utf8_lossy(&path[..path.len() - 1]).into_owned();
    if let Some(n) = seq {
        path = format!("{path}.{n}");
    }
    if !write_file(&path, |f| f.write_all(text.as_bytes())) {
        write_all(libc::STDERR_FILENO, text.as_bytes());
    }
    write_file(&format!("{path}.pb"), |f| snap.write_pprof(f));
    write_file(&format!("{path}.folded"), |f| snap.write_folded(f));
}
