//! `Snapshot::dump` and `Snapshot::load`: a snapshot in a file of its own versioned format,
//! symbolised when it is written, so another process (or another build) reads it without the
//! program's symbols, and `compare_to` works between a loaded and a live snapshot.
//!
//! ```text
//!  format 1, integers little-endian:
//!  "AGCTRACE"  u32 version = 1  u32 flags = 0  u64 traceback_limit  u64 sample_mean (0: exact)
//!  u64 nstrings     nstrings x (u32 len, len bytes of UTF-8)
//!  u64 ntracebacks  ntracebacks x (u32 nframes >= 1, nframes x (u32 file, u32 line, u32 function + 1 or 0))
//!  u64 ntraces      ntraces x (u64 size, u64 traceback)
//!  "AGCTREND"
//! ```
//!
//! Invariants: `load` never panics and never allocates more than the file's length justifies:
//! every count is checked against the bytes left before anything is reserved, every index
//! against its table, every string for UTF-8; anything else is an `InvalidData` error carrying
//! a [`FormatError`] (what was wrong, at which byte). `dump` marks the thread busy in tracer
//! code, so the file's buffers are not traced.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::frames::{Frame, Traceback};
use super::hook;
use super::snapshot::{Snapshot, TracedBlock};

const MAGIC: &[u8; 8] = b"AGCTRACE";
const END: &[u8; 8] = b"AGCTREND";
/// The format `dump` writes and `load` reads.
pub const FORMAT_VERSION: u32 = 1;

/// Why a file is not a snapshot `load` can read (inside an `io::Error` of kind
/// `InvalidData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    /// The byte offset where reading failed.
    pub offset: usize,
    /// What was wrong there.
    pub what: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an arenagc trace snapshot (format {FORMAT_VERSION}): {} at byte {}",
            self.what, self.offset
        )
    }
}

impl std::error::Error for FormatError {}

/// The file's bytes for `snap`.
pub(crate) fn encode(snap: &Snapshot) -> Vec<u8> {
    let _busy = hook::enter();
    let mut strings: Vec<&str> = Vec::new();
    let mut string_ids: HashMap<&str, u32> = HashMap::new();
    // The snapshot outlives this function: its strings are borrowed.
    fn intern<'s>(s: &'s str, strings: &mut Vec<&'s str>, ids: &mut HashMap<&'s str, u32>) -> u32 {
        *ids.entry(s).or_insert_with(|| {
            strings.push(s);
            (strings.len() - 1) as u32
        })
    }
    let mut tbs: Vec<&Traceback> = Vec::new();
    let mut tb_ids: HashMap<&Traceback, u64> = HashMap::new();
    let mut body = Vec::new();
    let mut traces = Vec::with_capacity(snap.traces().len() * 16);
    for t in snap.traces() {
        let id = *tb_ids.entry(&t.traceback).or_insert_with(|| {
            tbs.push(&t.traceback);
            (tbs.len() - 1) as u64
        });
        traces.extend_from_slice(&(t.size as u64).to_le_bytes());
        traces.extend_from_slice(&id.to_le_bytes());
    }
    let mut frames = Vec::new();
    for tb in &tbs {
        frames.extend_from_slice(&(tb.frames().len() as u32).to_le_bytes());
        for f in tb.frames() {
            let file = intern(f.filename(), &mut strings, &mut string_ids);
            let func = f
                .function()
                .map_or(0, |n| intern(n, &mut strings, &mut string_ids) + 1);
            for v in [file, f.lineno(), func] {
                frames.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&(snap.traceback_limit() as u64).to_le_bytes());
    body.extend_from_slice(&(snap.sample_mean().unwrap_or(0) as u64).to_le_bytes());
    body.extend_from_slice(&(strings.len() as u64).to_le_bytes());
    for s in &strings {
        body.extend_from_slice(&(s.len() as u32).to_le_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body.extend_from_slice(&(tbs.len() as u64).to_le_bytes());
    body.extend_from_slice(&frames);
    body.extend_from_slice(&(snap.traces().len() as u64).to_le_bytes());
    body.extend_from_slice(&traces);
    body.extend_from_slice(END);
    body
}

/// Reads the file's bytes, checking each step.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, what: impl Into<String>) -> Result<T, FormatError> {
        Err(FormatError {
            offset: self.at,
            what: what.into(),
        })
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
        if self.buf.len() - self.at < n {
            return self.fail(format!("truncated in {what}"));
        }
        let b = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32, FormatError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, FormatError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items of at least `each` bytes: checked against the bytes left.
    fn count(&mut self, each: usize, what: &str) -> Result<usize, FormatError> {
        let n = self.u64(what)?;
        let left = (self.buf.len() - self.at) / each;
        if n > left as u64 {
            return self.fail(format!("{what} count {n} is larger than the file"));
        }
        Ok(n as usize)
    }

    fn index(&mut self, len: usize, what: &str) -> Result<usize, FormatError> {
        let i = self.u32(what)? as usize;
        if i >= len {
            return self.fail(format!("{what} {i} out of range (0..{len})"));
        }
        Ok(i)
    }
}

/// The snapshot in `buf` (a file `encode` wrote).
pub(crate) fn decode(buf: &[u8]) -> Result<Snapshot, FormatError> {
    let mut r = Reader { buf, at: 0 };
    if r.bytes(8, "the magic number")? != MAGIC {
        r.at = 0;
        return r.fail("bad magic number (not written by Snapshot::dump)");
    }
    let version = r.u32("the version")?;
    if version != FORMAT_VERSION {
        r.at -= 4;
        return r.fail(format!("unsupported version {version}"));
    }
    if r.u32("the flags")? != 0 {
        r.at -= 4;
        return r.fail("unknown flags");
    }
    let limit = r.u64("the traceback limit")?;
    let mean = r.u64("the sample mean")?;
    if limit == 0 || limit > super::MAX_NFRAMES as u64 {
        return r.fail(format!("traceback limit {limit} out of range"));
    }
    let nstrings = r.count(4, "string")?;
    let mut strings: Vec<Arc<str>> = Vec::with_capacity(nstrings);
    for _ in 0..nstrings {
        let len = r.u32("a string's length")? as usize;
        let at = r.at;
        let b = r.bytes(len, "a string")?;
        match std::str::from_utf8(b) {
            Ok(s) => strings.push(Arc::from(s)),
            Err(_) => {
                r.at = at;
                return r.fail("a string is not UTF-8");
            }
        }
    }
    let ntb = r.count(4 + 12, "traceback")?;
    let mut tbs = Vec::with_capacity(ntb);
    for _ in 0..ntb {
        let n = r.u32("a traceback's length")? as usize;
        if n == 0 || n > super::MAX_NFRAMES {
            r.at -= 4;
            return r.fail(format!("traceback of {n} frames"));
        }
        if n * 12 > r.buf.len() - r.at {
            return r.fail("truncated in a traceback");
        }
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            let file = r.index(strings.len(), "file name")?;
            let line = r.u32("a line")?;
            let func = r.u32("a function name")? as usize;
            let function = match func {
                0 => None,
                f if f <= strings.len() => Some(strings[f - 1].clone()),
                f => {
                    r.at -= 4;
                    return r.fail(format!("function name {} out of range", f - 1));
                }
            };
            frames.push(Frame::new(strings[file].clone(), line, function));
        }
        tbs.push(Traceback::new(frames));
    }
    let ntraces = r.count(16, "trace")?;
    let mut traces = Vec::with_capacity(ntraces);
    for _ in 0..ntraces {
        let size = r.u64("a trace's size")?;
        let tb = r.u64("a trace's traceback")?;
        let Some(traceback) = tbs.get(tb as usize) else {
            r.at -= 8;
            return r.fail(format!("traceback {tb} out of range (0..{})", tbs.len()));
        };
        let Ok(size) = usize::try_from(size) else {
            return r.fail("size too large");
        };
        traces.push(TracedBlock {
            size,
            traceback: traceback.clone(),
        });
    }
    if r.bytes(8, "the end marker")? != END {
        r.at -= 8;
        return r.fail("bad end marker");
    }
    if r.at != buf.len() {
        return r.fail("bytes after the end marker");
    }
    let Ok(mean) = usize::try_from(mean) else {
        return r.fail("sample mean too large");
    };
    Ok(Snapshot::new(traces, limit as usize, mean))
}

impl Snapshot {
    /// Write the snapshot to the file `path` (created or truncated), symbolised: `load` reads
    /// it in any process, without the program's symbols (tracemalloc's `dump`).
    pub fn dump(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let bytes = encode(self);
        let _busy = hook::enter();
        std::fs::write(path, bytes)
    }

    /// Read a snapshot `dump` wrote. A file that is not one (truncated, corrupt, another
    /// format or version) is an error of kind `InvalidData` whose inner error is a
    /// [`FormatError`]; never a panic.
    pub fn load(path: impl AsRef<Path>) -> io::Result<Snapshot> {
        let bytes = std::fs::read(path)?;
        decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
