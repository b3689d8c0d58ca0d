//! Filters on the traces of a snapshot, as tracemalloc's `Filter`: include or exclude the
//! traces whose file matches a glob pattern (`fnmatch`: `*`, `?`, `[seq]`, `[!seq]`; `*`
//! crosses `/`), optionally at one line, looking at the most recent frame or at every frame.
//!
//! `Snapshot::filter_traces` keeps a trace when some inclusive filter matches it (or there is
//! none) and no exclusive filter matches it, as `Snapshot._filter_trace` does.

use super::frames::{Frame, Traceback};

/// A filter on traces (tracemalloc's `Filter`, without domains).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    inclusive: bool,
    pattern: String,
    lineno: Option<u32>,
    all_frames: bool,
}

impl Filter {
    /// Keep only traces whose most recent frame's file matches `pattern` (with several
    /// inclusive filters: any of them).
    pub fn include(pattern: &str) -> Filter {
        Filter::new(true, pattern)
    }

    /// Drop the traces whose most recent frame's file matches `pattern`.
    pub fn exclude(pattern: &str) -> Filter {
        Filter::new(false, pattern)
    }

    /// tracemalloc's `Filter(inclusive, filename_pattern)`.
    pub fn new(inclusive: bool, pattern: &str) -> Filter {
        Filter {
            inclusive,
            pattern: pattern.to_string(),
            lineno: None,
            all_frames: false,
        }
    }

    /// Match only frames at this line of the file.
    pub fn lineno(mut self, lineno: u32) -> Filter {
        self.lineno = Some(lineno);
        self
    }

    /// Look at every frame of the traceback, not only the most recent: an inclusive filter
    /// keeps a trace when any frame matches, an exclusive one drops it when any frame does.
    pub fn all_frames(mut self, all: bool) -> Filter {
        self.all_frames = all;
        self
    }

    /// Whether this filter includes (true) or excludes.
    pub fn inclusive(&self) -> bool {
        self.inclusive
    }

    /// The file pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    fn frame_matches(&self, f: &Frame) -> bool {
        fnmatch(self.pattern.as_bytes(), f.filename().as_bytes())
            && self.lineno.is_none_or(|l| l == f.lineno())
    }

    /// tracemalloc's `_match_traceback`: true when the trace passes this filter.
    pub(crate) fn passes(&self, tb: &Traceback) -> bool {
        let hit = if self.all_frames {
            tb.frames().iter().any(|f| self.frame_matches(f))
        } else {
            self.frame_matches(&tb.frames()[0])
        };
        hit == self.inclusive
    }
}

/// Whether a traceback passes `filters` (see the module docs).
pub(crate) fn keep(filters: &[Filter], tb: &Traceback) -> bool {
    let mut includes = filters.iter().filter(|f| f.inclusive).peekable();
    if includes.peek().is_some() && !includes.any(|f| f.passes(tb)) {
        return false;
    }
    filters
        .iter()
        .filter(|f| !f.inclusive)
        .all(|f| f.passes(tb))
}

/// Shell-style matching of all of `name` against `pat` (POSIX `fnmatch` without flags).
pub(crate) fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // The last `*` seen and the name position it is trying to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, len)) = class(&pat[p..], name[n]) {
                        if hit {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unterminated `[` matches itself.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            // Let the last star take one more byte and retry after it.
            Some((sp, sn)) => {
                star = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A bracket expression at the start of `pat` against byte `c`: (matched, its length), or
/// `None` when it is not terminated.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    fn m(p: &str, n: &str) -> bool {
        fnmatch(p.as_bytes(), n.as_bytes())
    }

    #[test]
    fn globs() {
        assert!(m("src/cache.rs", "src/cache.rs"));
        assert!(!m("src/cache.rs", "src/cache.rsx"));
        assert!(m("*.rs", "src/deep/cache.rs"));
        assert!(m("src/*", "src/a/b.rs"));
        assert!(m("*cache*", "src/cache.rs"));
        assert!(!m("*cache*", "src/store.rs"));
        assert!(m("src/?.rs", "src/a.rs"));
        assert!(!m("src/?.rs", "src/ab.rs"));
        assert!(m("src/[abc].rs", "src/b.rs"));
        assert!(!m("src/[!abc].rs", "src/b.rs"));
        assert!(m("src/[a-z]x.rs", "src/qx.rs"));
        assert!(m("[]]", "]"));
        assert!(m("a[", "a["));
        assert!(m("*", ""));
        assert!(!m("?", ""));
        assert!(m("*a*b*c", "xxaxxbxxc"));
        assert!(!m("*a*b*c", "xxaxxcxxb"));
        assert!(m("<unknown>", "<unknown>"));
    }
}
