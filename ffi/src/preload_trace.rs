//! Tracing under `LD_PRELOAD` with no code change (the preload build only, feature
//! `override`): `ARENAGC_TRACE=<frames>` or `ARENAGC_TRACE_SAMPLE=<mean bytes>` in the
//! environment starts `arenagc::trace` when the library is loaded; at exit the live memory's
//! statistics are written to `ARENAGC_TRACE_FILE` (default `arenagc-trace.%p`, `%p` the pid),
//! with a pprof profile at that path plus `.pb` and folded stacks plus `.folded`.
//!
//! ```text
//!  .init_array: at_load ──> options::TRACE / TRACE_SAMPLE / TRACE_FILE ──> trace::start[_sampled]
//!  .fini_array: at_exit ──> take_snapshot, stop ──> PATH (report), PATH.pb, PATH.folded
//! ```
//!
//! Invariants: the path is read once at load (the program may change its environment);
//! `at_exit` writes only when the variables asked for tracing and it is still on, once per
//! process (a forked child
//! writes its own files, named by its pid); it never panics across the C edge (`boundary`),
//! and a file that cannot be written turns into a message on stderr, the report with it.

use core::fmt::Write as _;
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
    }
}

fn warn(msg: &str) {
    write_all(libc::STDERR_FILENO, format!("arenagc: {msg}\n").as_bytes());
}

/// The text report: totals, the top lines, the top tracebacks.
fn report(snap: &Snapshot, pid: libc::pid_t, current: usize, peak: usize) -> String {
    let mode = match snap.sample_mean() {
        Some(m) => format!("sampled, one sample per {m} bytes: figures are estimates"),
        None => "exact".to_string(),
    };
    let size = |n: usize| trace::format_size(n as f64, false);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "arenagc: traced memory at exit (pid {pid}, {mode}, {} frames): current {}, peak {}",
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
    let Some(raw) = PATH.get() else { return };
    boundary("trace at exit", (), || {
        if !trace::is_tracing() {
            return; // the program stopped it
        }
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let snap = trace::take_snapshot();
        let (current, peak) = trace::get_traced_memory();
        trace::stop();
        let text = report(&snap, pid, current, peak);
        let path = expand_path(raw, pid);
        let path = String::from_utf8_lossy(&path[..path.len() - 1]).into_owned();
        if !write_file(&path, |f| f.write_all(text.as_bytes())) {
            write_all(libc::STDERR_FILENO, text.as_bytes());
        }
        write_file(&format!("{path}.pb"), |f| snap.write_pprof(f));
        write_file(&format!("{path}.folded"), |f| snap.write_folded(f));
    })
}
