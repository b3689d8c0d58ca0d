//! Every environment variable the library reads, in one table: its default, when it is read,
//! and what it does. No other file calls `getenv` (a unit test checks). Reading never allocates
//! (the allocator reads some of these inside its first `malloc`).
//!
//! | variable                 | default | read                                  | effect                                   |
//! |--------------------------|---------|---------------------------------------|------------------------------------------|
//! | `ARENAGC_DEBUG`          | off     | once, at the first allocation         | debug mode (guards, fills, quarantine)   |
//! | `ARENAGC_SECURE`         | off     | once, before the first arena          | hardened mode (random order, clearing, guard pages) |
//! | `ARENAGC_VALGRIND`       | unset   | once, at the first allocation         | `pools`: keep the pools under valgrind   |
//! | `ARENAGC_PURGE_DELAY`    | 100     | once, at the first arena event        | ms a free arena waits before `munmap`    |
//! | `ARENAGC_STATS`          | off     | preload library, at load              | statistics table on stderr at exit       |
//! | `ARENAGC_STATS_FILE`     | unset   | preload library, at load              | the table appended to this file instead (`%p`: the pid); turns `ARENAGC_STATS` on |
//! | `ARENAGC_TRACE`          | unset   | preload library, at load              | trace every allocation (this many frames); report at exit |
//! | `ARENAGC_TRACE_SAMPLE`   | unset   | preload library, at load              | trace in sampled mode (one sample per this many bytes) |
//! | `ARENAGC_TRACE_FILE`     | `arenagc-trace.%p` | preload library, at load   | where the report goes (`%p`: the pid); `.pb`, `.folded` beside it |
//! | `ARENAGC_TRACE_SIGNAL`   | unset   | preload library, at load              | this signal writes a report of that moment (`.1`, `.2`, ...) |
//! | `MALLOC_TRIM_THRESHOLD_` | unset   | preload library, at load              | glibc's own: when set, we leave glibc's  |
//! | `MALLOC_MMAP_THRESHOLD_` | unset   | preload library, at load              | thresholds alone (`tune_system_allocator`) |
//! | `GLIBC_TUNABLES`         | unset   | preload library, at load              | the same, when it names `glibc.malloc.*` |
//!
//! A flag is on when set to a value that does not start with `0`. A number is decimal digits (at most 12);
//! anything else means the default.

use core::ffi::CStr;

/// One environment variable the library reads.
#[derive(Debug)]
pub struct EnvOption {
    /// The variable's name.
    pub name: &'static CStr,
    /// The value assumed when it is unset (as documented; the reader applies it).
    pub default: &'static str,
    /// When the library reads it.
    pub read: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// `ARENAGC_DEBUG`: debug mode for the whole process.
pub const DEBUG: EnvOption = EnvOption {
    name: c"ARENAGC_DEBUG",
    default: "off",
    read: "once, at the first allocation",
    doc: "debug mode: guard bytes, fill patterns, a quarantine and checks on every free",
};

/// `ARENAGC_SECURE`: hardened mode (see `alloc::harden`).
pub const SECURE: EnvOption = EnvOption {
    name: c"ARENAGC_SECURE",
    default: "off",
    read: "once, before the first arena",
    doc: "hardened mode: random block order in new pools, freed blocks cleared, guard pages after each arena and between the header page and the pools",
};

/// `ARENAGC_VALGRIND`: under valgrind every request goes to the system allocator (which
/// valgrind replaces with its checked one), unless this is `pools`.
pub const VALGRIND: EnvOption = EnvOption {
    name: c"ARENAGC_VALGRIND",
    default: "unset",
    read: "once, at the first allocation, only under valgrind",
    doc: "under valgrind every block comes from the system allocator so memcheck checks it; `pools` keeps the pools",
};

/// `ARENAGC_PURGE_DELAY`: milliseconds a fully free arena waits before it is unmapped.
pub const PURGE_DELAY: EnvOption = EnvOption {
    name: c"ARENAGC_PURGE_DELAY",
    default: "100",
    read: "once, at the first arena event",
    doc: "milliseconds a fully free arena stays mapped before it is unmapped (0: at once)",
};

/// `ARENAGC_STATS`: the preload library prints the statistics table at exit.
pub const STATS: EnvOption = EnvOption {
    name: c"ARENAGC_STATS",
    default: "off",
    read: "by the preload library, at load",
    doc: "print the allocator statistics table to stderr at exit",
};

/// `ARENAGC_STATS_FILE`: the preload library appends the statistics table to this file at
/// exit instead of writing it to stderr (for programs that close stderr, or run many
/// processes); `%p` in the path is the process id, `%%` a `%`. Setting it turns
/// [`STATS`] on.
pub const STATS_FILE: EnvOption = EnvOption {
    name: c"ARENAGC_STATS_FILE",
    default: "unset",
    read: "by the preload library, at load",
    doc: "append the statistics table at exit to this file instead of stderr (%p: the pid); turns ARENAGC_STATS on",
};

/// `ARENAGC_TRACE`: the preload library traces every allocation from load to exit, keeping
/// this many frames (1 to 256) per block, and writes a report at exit (`TRACE_FILE`).
pub const TRACE: EnvOption = EnvOption {
    name: c"ARENAGC_TRACE",
    default: "unset",
    read: "by the preload library, at load",
    doc: "trace every allocation with this many frames (1 to 256) from load to exit; at exit write the statistics of live memory to ARENAGC_TRACE_FILE, with a pprof profile (.pb) and folded stacks (.folded) beside it",
};

/// `ARENAGC_TRACE_SAMPLE`: the preload library traces in sampled mode, one sample per this
/// many bytes allocated on average (524288 is jemalloc's default), with `TRACE`'s frames or 16.
pub const TRACE_SAMPLE: EnvOption = EnvOption {
    name: c"ARENAGC_TRACE_SAMPLE",
    default: "unset",
    read: "by the preload library, at load",
    doc: "trace in sampled mode, one sample per this many bytes on average (524288: jemalloc's default), with ARENAGC_TRACE's frame count or 16; the report's figures are estimates",
};

/// `ARENAGC_TRACE_FILE`: where the preload library writes the tracing report at exit (`%p`:
/// the process id, `%%`: a `%`); the pprof profile goes to the same path plus `.pb`, the folded
/// stacks plus `.folded`.
pub const TRACE_FILE: EnvOption = EnvOption {
    name: c"ARENAGC_TRACE_FILE",
    default: "arenagc-trace.%p",
    read: "by the preload library, at load",
    doc: "the tracing report's file (%p: the pid), written at exit; PATH.pb gets the pprof profile, PATH.folded the folded stacks",
};

/// `ARENAGC_TRACE_SIGNAL`: while the preload library traces, this signal (`USR1`, `USR2`,
/// `SIGUSR2` or a number) makes it write the report and profiles of that moment, for servers
/// that do not exit (to `ARENAGC_TRACE_FILE` plus `.1`, `.2`, ...).
pub const TRACE_SIGNAL: EnvOption = EnvOption {
    name: c"ARENAGC_TRACE_SIGNAL",
    default: "unset",
    read: "by the preload library, at load",
    doc: "while tracing, this signal (USR1, USR2, SIGUSR2 or a number) writes the report and profiles of that moment to ARENAGC_TRACE_FILE plus .1, .2, ...; tracing goes on",
};

/// glibc's `MALLOC_TRIM_THRESHOLD_`: when set, the user's glibc policy wins.
pub const GLIBC_TRIM_THRESHOLD: EnvOption = EnvOption {
    name: c"MALLOC_TRIM_THRESHOLD_",
    default: "unset",
    read: "by the preload library, at load",
    doc: "glibc's own; when set, tune_system_allocator leaves glibc's thresholds alone",
};

/// glibc's `MALLOC_MMAP_THRESHOLD_`: when set, the user's glibc policy wins.
pub const GLIBC_MMAP_THRESHOLD: EnvOption = EnvOption {
    name: c"MALLOC_MMAP_THRESHOLD_",
    default: "unset",
    read: "by the preload library, at load",
    doc: "glibc's own; when set, tune_system_allocator leaves glibc's thresholds alone",
};

/// glibc's `GLIBC_TUNABLES`: when it names a `glibc.malloc` tunable, the user's policy wins.
pub const GLIBC_TUNABLES: EnvOption = EnvOption {
    name: c"GLIBC_TUNABLES",
    default: "unset",
    read: "by the preload library, at load",
    doc: "glibc's own; when it sets a glibc.malloc tunable, tune_system_allocator does nothing",
};

/// Every variable, in the order of the table above.
pub const ALL: [&EnvOption; 13] = [
    &DEBUG,
    &SECURE,
    &VALGRIND,
    &PURGE_DELAY,
    &STATS,
    &STATS_FILE,
    &TRACE,
    &TRACE_SAMPLE,
    &TRACE_FILE,
    &TRACE_SIGNAL,
    &GLIBC_TRIM_THRESHOLD,
    &GLIBC_MMAP_THRESHOLD,
    &GLIBC_TUNABLES,
];

impl EnvOption {
    /// The raw value, if set. Borrowed from the environment, which the program may change
    /// later: read once and keep what matters.
    pub fn value(&self) -> Option<&'static [u8]> {
        // SAFETY: the name is NUL-terminated; getenv does not allocate.
        let v = unsafe { libc::getenv(self.name.as_ptr()) };
        if v.is_null() {
            return None;
        }
        // SAFETY: a non-null getenv result is a NUL-terminated string of the environment.
        Some(unsafe { CStr::from_ptr(v) }.to_bytes())
    }

    /// Whether the variable is set at all.
    pub fn is_set(&self) -> bool {
        self.value().is_some()
    }

    /// A flag: on when set to a value that does not start with `0` (`1`, `yes`, ...).
    pub fn flag(&self) -> bool {
        self.value()
            .is_some_and(|v| v.first().is_some_and(|&c| c != b'0'))
    }

    /// A number (decimal digits, at most 12), or `None` when unset or malformed.
    pub fn number(&self) -> Option<u64> {
        let v = self.value()?;
        if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No file but this one reads the environment (in the core and the C ABI crate).
    #[test]
    fn only_this_file_reads_the_environment() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut offenders = Vec::new();
        let mut dirs = vec![root.join("src"), root.join("ffi/src")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|x| x == "rs")
                    && !path.ends_with("src/options.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if text.contains("getenv(") || text.contains("env::var") {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "environment read outside options.rs: {offenders:?}"
        );
    }

    /// The README documents every variable.
    #[test]
    fn the_readme_lists_every_variable() {
        let readme = include_str!("../README.md");
        for o in ALL {
            let name = o.name.to_str().unwrap();
            assert!(readme.contains(name), "README does not mention {name}");
        }
    }

    #[test]
    fn flags_and_numbers() {
        let o = EnvOption {
            name: c"ARENAGC_TEST_OPTION_UNSET_X",
            default: "",
            read: "",
            doc: "",
        };
        assert!(!o.is_set() && !o.flag() && o.number().is_none());
    }
}
