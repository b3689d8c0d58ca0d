//! Frames and tracebacks as a snapshot shows them: instruction pointers symbolised (file,
//! line, function, inlined calls expanded) only when a snapshot is read, and the frames of the
//! allocation machinery at the top of each stack skipped, so a traceback starts at the code
//! that asked for the memory.
//!
//! A frame is machinery (skipped while it leads the stack) when its function is in
//! - arenagc (the allocator, the tracer, and arenagc's own allocating helpers such as
//!   `Gc::new`): `arenagc::...`;
//! - Rust's allocation shims: `__rust_alloc`, `__rust_dealloc`, `__rust_realloc`,
//!   `__rust_alloc_zeroed`, `__rg_*`, `__rdl_*`, `__rustc::*`;
//! - the standard library (`alloc::`, `core::`, `std::`, and std's `hashbrown::`): `Vec`'s
//!   `RawVec`, `Box::new`, `String`, `format!`, `collect`, `HashMap::insert` ... so a `push`
//!   is attributed to the line that pushed, as tracemalloc attributes a list's growth to the
//!   Python line that appended;
//! - `backtrace::` (the capture itself);
//! - the C entry points of the allocator (`malloc`, `calloc`, `realloc`, ... of the preload
//!   library, and the `agc_` functions of `libarenagc`), so a C program's allocation is charged
//!   to the C line that called them;
//! - or, for `<T as Trait>::f`, a type of one of those crates, a built-in type (`&str`, `[T]`,
//!   `u8`) implementing one of their traits, or any type implementing an `alloc::` trait
//!   (`ToString`, `ToOwned`); a user type's own `Clone` or `Display` is the user's code;
//! - a function without a path (an inlined frame named only `push`) whose file is in the
//!   standard library's sources (`/library/{alloc,core,std}/`, `/rust/deps/`).
//!
//! Only the leading run is skipped: below the first frame of the program's own code every
//! frame is kept. File names under the current directory are shown relative to it
//! (`src/cache.rs`), as Rust's panic messages show them; a frame without line information
//! shows its function (`<myprog::main>`), or `<unknown>`.
//!
//! Invariant: a `Traceback` has at least one frame (`<unknown>:0` when nothing was left).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One frame of a traceback: where the code was (tracemalloc's `Frame`). Two frames are equal
/// when their file and line are.
#[derive(Clone, Debug)]
pub struct Frame {
    filename: Arc<str>,
    lineno: u32,
    function: Option<Arc<str>>,
}

impl Frame {
    /// The source file, relative to the current directory when it is under it.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The line (0 when unknown, and in statistics by file).
    pub fn lineno(&self) -> u32 {
        self.lineno
    }

    /// The function, demangled without its hash, when known.
    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }

    /// A frame read back from a file (`file.rs`).
    pub(crate) fn new(filename: Arc<str>, lineno: u32, function: Option<Arc<str>>) -> Frame {
        Frame {
            filename,
            lineno,
            function,
        }
    }

    pub(crate) fn unknown() -> Frame {
        Frame {
            filename: Arc::from("<unknown>"),
            lineno: 0,
            function: None,
        }
    }

    /// The frame's file alone (line 0), as statistics by file group them.
    pub(crate) fn file_only(&self) -> Frame {
        Frame {
            filename: self.filename.clone(),
            lineno: 0,
            function: None,
        }
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.lineno == other.lineno && self.filename == other.filename
    }
}

impl Eq for Frame {}

impl Hash for Frame {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.filename.hash(h);
        self.lineno.hash(h);
    }
}

impl PartialOrd for Frame {
    fn partial_cmp(&self, other: &Frame) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Frame {
    fn cmp(&self, other: &Frame) -> std::cmp::Ordering {
        (&self.filename, self.lineno).cmp(&(&other.filename, other.lineno))
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.filename, self.lineno)
    }
}

/// The frames where a block was allocated, most recent first (tracemalloc's `Traceback`,
/// whose Python sequence runs the other way). `Display` shows the most recent frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Traceback {
    frames: Arc<[Frame]>,
}

impl Traceback {
    pub(crate) fn new(mut frames: Vec<Frame>) -> Traceback {
        if frames.is_empty() {
            frames.push(Frame::unknown());
        }
        Traceback {
            frames: frames.into(),
        }
    }

    /// The frames, most recent first (never empty).
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Lines like Python's `Traceback.format()`: `  File "src/x.rs", line 3, in f` and the
    /// source line when the file can be read; oldest first unless `most_recent_first`.
    pub fn format(&self, most_recent_first: bool) -> Vec<String> {
        let mut frames: Vec<&Frame> = self.frames.iter().collect();
        if !most_recent_first {
            frames.reverse();
        }
        let mut lines = Vec::new();
        for fr in frames {
            let mut line = format!("  File \"{}\", line {}", fr.filename, fr.lineno);
            if let Some(func) = &fr.function {
                line.push_str(", in ");
                line.push_str(func);
            }
            lines.push(line);
            let source = std::fs::read_to_string(&*fr.filename).ok();
            let text = source
                .as_deref()
                .and_then(|s| s.lines().nth((fr.lineno as usize).checked_sub(1)?))
                .map(str::trim)
                .unwrap_or("");
            if !text.is_empty() {
                lines.push(format!("    {text}"));
            }
        }
        lines
    }
}

impl fmt::Display for Traceback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.frames[0], f)
    }
}

/// The malloc family as the preload library exports it (see the module docs).
const C_ALLOC: [&str; 12] = [
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "free_sized",
    "free_aligned_sized",
];

/// The crates whose functions are allocation machinery (see the module docs).
const MACHINERY: [&str; 6] = ["alloc", "core", "std", "hashbrown", "backtrace", "arenagc"];

fn in_machinery(path: &str) -> bool {
    MACHINERY
        .iter()
        .any(|c| path.strip_prefix(c).is_some_and(|r| r.starts_with("::")))
}

/// `<A as B>::f` -> (A, Some(B)); `<A>::f` -> (A, None). None when `name` is not qualified.
fn qualified(name: &str) -> Option<(&str, Option<&str>)> {
    let inner = name.strip_prefix('<')?;
    let mut depth = 0usize;
    let mut self_end = None;
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => {
                return Some(match self_end {
                    Some(e) => (&inner[..e], Some(&inner[e + 4..i])),
                    None => (&inner[..i], None),
                });
            }
            '>' => depth -= 1,
            ' ' if depth == 0 && self_end.is_none() && inner[i..].starts_with(" as ") => {
                self_end = Some(i);
            }
            _ => {}
        }
    }
    None
}

/// Whether a frame of function `name` in `file` is allocation machinery (module docs).
pub(crate) fn is_machinery(name: Option<&str>, file: Option<&str>) -> bool {
    if let Some(name) = name {
        const SHIMS: [&str; 4] = ["__rust_", "__rg_", "__rdl_", "__rustc::"];
        if SHIMS.iter().any(|s| name.starts_with(s)) {
            return true;
        }
        if name.starts_with("agc_") || C_ALLOC.contains(&name) {
            return true;
        }
        if let Some((ty, tr)) = qualified(name) {
            let builtin = !ty.contains("::") || ty.starts_with(['&', '[', '(', '*']);
            return in_machinery(ty)
                || tr.is_some_and(|tr| tr.starts_with("alloc::") || builtin && in_machinery(tr));
        }
        if name.contains("::") {
            return in_machinery(name);
        }
    }
    const STD_SOURCES: [&str; 4] = [
        "/library/alloc/",
        "/library/core/",
        "/library/std/",
        "/rust/deps/",
    ];
    file.is_some_and(|f| STD_SOURCES.iter().any(|s| f.contains(s)))
}

/// One symbolised frame of an instruction pointer, and whether it is machinery.
struct Resolved {
    frame: Frame,
    machinery: bool,
}

/// The address range of the shared library this code is in (`libarenagc.so`, the preload
/// library), where every frame is machinery; `None` when arenagc is linked into the program
/// itself (a Rust program's own code is there too) or the range cannot be found. Read once.
pub(crate) fn own_library() -> Option<(usize, usize)> {
    static RANGE: std::sync::OnceLock<Option<(usize, usize)>> = std::sync::OnceLock::new();
    *RANGE.get_or_init(find_own_library)
}

#[cfg(target_os = "linux")]
fn find_own_library() -> Option<(usize, usize)> {
    let mut info: libc::Dl_info = empty_dl_info();
    let here = find_own_library as fn() -> Option<(usize, usize)> as usize;
    // SAFETY: dladdr reads the loader's tables and writes `info`.
    if unsafe { libc::dladdr(here as *const libc::c_void, &mut info) } == 0 {
        return None;
    }
    struct Search {
        base: usize,
        range: Option<(usize, usize)>,
    }
    extern "C" fn visit(
        phdr: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info for the call; `data` is our `Search`.
        let (info, search) = unsafe { (&*phdr, &mut *(data as *mut Search)) };
        if info.dlpi_addr as usize != search.base {
            return 0;
        }
        // The main program (an empty name): the user's code is there too, no range.
        // SAFETY: dlpi_name is a NUL-terminated string (maybe empty) for the call.
        if info.dlpi_name.is_null() || unsafe { *info.dlpi_name } == 0 {
            return 1;
        }
        let (mut lo, mut hi) = (usize::MAX, 0);
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr holds dlpi_phnum program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD {
                let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
                lo = lo.min(start);
                hi = hi.max(start + ph.p_memsz as usize);
            }
        }
        if lo < hi {
            search.range = Some((lo, hi));
        }
        1
    }
    let mut search = Search {
        base: info.dli_fbase as usize,
        range: None,
    };
    // SAFETY: `visit` matches the callback type and only reads what the loader hands it.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut search as *mut Search as *mut libc::c_void) };
    search.range
}

#[cfg(target_os = "linux")]
fn empty_dl_info() -> libc::Dl_info {
    libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    }
}

#[cfg(not(target_os = "linux"))]
fn find_own_library() -> Option<(usize, usize)> {
    None
}

/// Symbolises instruction pointers for one snapshot, each pointer once.
pub(crate) struct Resolver {
    cache: HashMap<usize, Arc<[Resolved]>>,
    names: HashMap<String, Arc<str>>,
    cwd: Option<PathBuf>,
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        Resolver {
            cache: HashMap::new(),
            names: HashMap::new(),
            cwd: std::env::current_dir().ok(),
        }
    }

    fn intern(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.names.get(&s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s.as_str());
        self.names.insert(s, a.clone());
        a
    }

    fn shown_path(&self, p: &Path) -> String {
        match &self.cwd {
            Some(cwd) => p.strip_prefix(cwd).unwrap_or(p).display().to_string(),
            None => p.display().to_string(),
        }
    }

    /// The frames at `ip` (a return address), innermost inlined call first.
    fn resolve(&mut self, ip: usize) -> Arc<[Resolved]> {
        if let Some(r) = self.cache.get(&ip) {
            return r.clone();
        }
        let mut raw: Vec<(Option<String>, Option<PathBuf>, u32)> = Vec::new();
        // `resolve` looks up `ip - 1`: the call instruction, not the one after it.
        backtrace::resolve(ip as *mut core::ffi::c_void, |sym| {
            raw.push((
                sym.name().map(|n| format!("{n:#}")),
                sym.filename().map(Path::to_path_buf),
                sym.lineno().unwrap_or(0),
            ));
        });
        let mut out = Vec::with_capacity(raw.len().max(1));
        for (name, path, line) in raw {
            let file = path.as_deref().map(|p| self.shown_path(p));
            let machinery = is_machinery(name.as_deref(), file.as_deref());
            let filename = match (&file, &name) {
                (Some(f), _) => f.clone(),
                (None, Some(n)) => format!("<{n}>"),
                (None, None) => "<unknown>".to_string(),
            };
            let frame = Frame {
                filename: self.intern(filename),
                lineno: if file.is_some() { line } else { 0 },
                function: name.map(|n| self.intern(n)),
            };
            out.push(Resolved { frame, machinery });
        }
        if out.is_empty() {
            out.push(Resolved {
                frame: Frame {
                    filename: self.intern(format!("<{ip:#x}>")),
                    lineno: 0,
                    function: None,
                },
                machinery: false,
            });
        }
        let r: Arc<[Resolved]> = out.into();
        self.cache.insert(ip, r.clone());
        r
    }

    /// The traceback of a captured stack: machinery leading it skipped, at most `nframes`.
    pub(crate) fn traceback(&mut self, ips: &[usize], nframes: usize) -> Traceback {
        let mut frames = Vec::new();
        let mut leading = true;
        let own = own_library();
        'stack: for &ip in ips {
            // Inside our own shared library: machinery, known without symbols (reading the
            // library's debug information was most of a sampled report's cost).
            if leading && own.is_some_and(|(lo, hi)| (lo..hi).contains(&ip)) {
                continue;
            }
            for r in self.resolve(ip).iter() {
                if leading && r.machinery {
                    continue;
                }
                leading = false;
                frames.push(r.frame.clone());
                if frames.len() == nframes {
                    break 'stack;
                }
            }
        }
        Traceback::new(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_library_is_none_when_linked_into_the_program() {
        // The unit-test executable has arenagc linked in: its user code lives beside it.
        assert_eq!(own_library(), None);
    }

    #[test]
    fn machinery_names() {
        let skipped = [
            "__rust_alloc",
            "__rustc::__rust_realloc",
            "__rdl_alloc",
            "alloc::raw_vec::RawVecInner<A>::finish_grow",
            "alloc::alloc::Global::alloc_impl",
            "std::alloc::System::alloc",
            "<arenagc::alloc::ArenaAlloc as core::alloc::global::GlobalAlloc>::alloc",
            "arenagc::alloc::dispatch::alloc_other",
            "arenagc::trace::hook::allocated",
            "arenagc::gc::Gc<T>::new",
            "<alloc::vec::Vec<T> as core::iter::traits::collect::FromIterator<T>>::from_iter",
            "<u8 as alloc::slice::hack::ConvertVec>::to_vec",
            "<&str as core::convert::Into<alloc::string::String>>::into",
            "<myapp::Point as alloc::string::ToString>::to_string",
            "hashbrown::raw::RawTable<T,A>::reserve_rehash",
            "backtrace::backtrace::libunwind::trace",
            "core::iter::traits::iterator::Iterator::collect",
            "agc_malloc",
            "malloc",
            "posix_memalign",
        ];
        for s in skipped {
            assert!(is_machinery(Some(s), None), "{s} should be skipped");
        }
        let kept = [
            "myapp::cache::Cache::insert",
            "myapp::main::{{closure}}",
            "<myapp::Point as core::clone::Clone>::clone",
            "<myapp::Point as core::fmt::Display>::fmt",
            "alloca_helper::f",
            "main",
        ];
        for s in kept {
            assert!(!is_machinery(Some(s), None), "{s} should be kept");
        }
        assert!(is_machinery(
            Some("push"),
            Some("/rustc/abc/library/alloc/src/vec/mod.rs")
        ));
        assert!(!is_machinery(Some("push"), Some("src/cache.rs")));
        assert!(!is_machinery(None, None));
    }

    #[test]
    fn qualified_names() {
        assert_eq!(
            qualified("<alloc::vec::Vec<T> as core::clone::Clone>::clone"),
            Some(("alloc::vec::Vec<T>", Some("core::clone::Clone")))
        );
        assert_eq!(qualified("<[T]>::to_vec"), Some(("[T]", None)));
        assert_eq!(qualified("plain::path"), None);
    }
}
