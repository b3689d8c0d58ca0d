//! Shared by the integration tests of `arenagc-ffi`: build the C libraries, compile the C test
//! programs against `include/arenagc.h`, run them.
//!
//! `cargo test` does not build a crate's cdylib/staticlib for its integration tests, so
//! [`libs`] runs `cargo build --release -p arenagc-ffi -p arenagc-malloc` once per test binary
//! (with `--features large-pools` when the tests are built with it), with its own target
//! directory (`<target>/ffi-test`, or `<target>/ffi-test-large`): the outer cargo still holds
//! the lock of its own target directory while tests run. After the first run that build is a
//! no-op.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ffi/ has a parent")
        .to_path_buf()
}

pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

pub fn include_dir() -> PathBuf {
    root().join("include")
}

/// A scratch directory for this test binary's outputs.
pub fn scratch() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ffi-c");
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// The directory holding `libarenagc.so`, `libarenagc.a` and `libarenagc_malloc.so`, built
/// (release) on first use.
pub fn libs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Built with the geometry these tests were built with (`large-pools` or not), each in
        // a target directory of its own so neither build undoes the other.
        let large = cfg!(feature = "large-pools");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join(if large { "ffi-test-large" } else { "ffi-test" });
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut args = vec![
            "build",
            "--release",
            "-p",
            "arenagc-ffi",
            "-p",
            "arenagc-malloc",
        ];
        if large {
            args.extend(["--features", "large-pools"]);
        }
        let out = Command::new(cargo)
            .args(args)
            .current_dir(root())
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build of the C libraries failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target.join("release");
        for f in ["libarenagc.so", "libarenagc.a", "libarenagc_malloc.so"] {
            assert!(
                dir.join(f).exists(),
                "{f} was not built in {}",
                dir.display()
            );
        }
        // A program linked with -larenagc needs the library by its SONAME (ffi/build.rs),
        // which only an install creates: link it here, as ffi/install.sh does.
        let soname = dir.join(soname());
        if std::fs::symlink_metadata(&soname).is_err() {
            match std::os::unix::fs::symlink("libarenagc.so", &soname) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {} // another test
                Err(e) => panic!("cannot link {}: {e}", soname.display()),
            }
        }
        dir
    })
}

/// The SONAME of libarenagc.so: `libarenagc.so.MAJOR` (ffi/build.rs).
pub fn soname() -> String {
    format!("libarenagc.so.{}", env!("CARGO_PKG_VERSION_MAJOR"))
}

/// How a C program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// `-larenagc` (libarenagc.so, found through an rpath).
    Shared,
    /// `libarenagc.a` and the system libraries the Rust standard library needs.
    Static,
    /// Not linked to arenagc: for running under `LD_PRELOAD` of libarenagc_malloc.so.
    Preload,
}

/// Compile `ffi/tests/<src>` (or any path) with the system C compiler into the scratch dir
/// as `<name>`, once per test binary. `flags` come before the source file; use them for the
/// language standard, `-x c++`, macros.
pub fn cc(name: &str, src: &Path, link: Link, flags: &[&str]) -> PathBuf {
    static DONE: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = done.get_or_insert_with(HashMap::new).get(name) {
        return p.clone();
    }
    let libs = libs();
    let out = scratch().join(name);
    let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args(["-O1", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(include_dir())
        .arg("-I")
        .arg(tests_dir())
        .args(flags)
        .arg(src);
    match link {
        Link::Shared => {
            // DT_RPATH, not DT_RUNPATH: it is searched before LD_LIBRARY_PATH, which cargo
            // sets for test binaries to include target/debug, where a debug libarenagc.so of
            // another build may sit; the C programs must load the one `libs` just built.
            cmd.arg("-L")
                .arg(libs)
                .arg("-larenagc")
                .arg("-Wl,--disable-new-dtags")
                .arg(format!("-Wl,-rpath,{}", libs.display()));
        }
        Link::Static => {
            cmd.arg(libs.join("libarenagc.a"))
                .args(["-lm", "-lrt", "-lgcc_s"]);
        }
        Link::Preload => {}
    }
    cmd.args(["-lpthread", "-ldl"]).arg("-o").arg(&out);
    let o = cmd.output().expect("run the C compiler");
    assert!(
        o.status.success(),
        "compiling {} failed:\n{:?}\n{}",
        src.display(),
        cmd,
        String::from_utf8_lossy(&o.stderr)
    );
    done.get_or_insert_with(HashMap::new)
        .insert(name.to_string(), out.clone());
    out
}

/// `cc` for a file in `ffi/tests`.
pub fn cc_test(name: &str, file: &str, link: Link, flags: &[&str]) -> PathBuf {
    cc(name, &tests_dir().join(file), link, flags)
}

/// `LD_PRELOAD` value for the malloc replacement.
pub fn preload() -> PathBuf {
    libs().join("libarenagc_malloc.so")
}

/// Run and return the output, whatever the exit status.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"))
}

/// Run; assert exit status 0; return (stdout, stderr).
pub fn run_ok(cmd: &mut Command) -> (String, String) {
    let o = output(cmd);
    let (so, se) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{so}\nstderr:\n{se}",
        o.status
    );
    (so, se)
}

/// Run `case` of the C test program `<prog>.c`, built with `flags` against the shared and the
/// static library, in normal and in debug mode (`ARENAGC_DEBUG`); each run must exit 0 and
/// print `<prog>: ok`. Returns the stderr of each run.
pub fn run_c_case(prog: &str, case: &str, flags: &[&str]) -> Vec<String> {
    let file = format!("{prog}.c");
    let shared = cc_test(&format!("{prog}_shared"), &file, Link::Shared, flags);
    let stat = cc_test(&format!("{prog}_static"), &file, Link::Static, flags);
    let mut errs = Vec::new();
    for (exe, debug) in [(&shared, "0"), (&stat, "0"), (&shared, "1"), (&stat, "1")] {
        let (out, err) = run_ok(Command::new(exe).arg(case).env("ARENAGC_DEBUG", debug));
        assert_eq!(
            out.trim(),
            format!("{prog}: ok"),
            "{case} ({exe:?}, debug {debug})"
        );
        errs.push(err);
    }
    errs
}

/// One `#[test]` per case of a C test program: `c_tests!(runner; test_name => "case", ...)`
/// calls `runner("case")`, so a failure names the case.
#[macro_export]
macro_rules! c_tests {
    ($run:path; $($test:ident => $case:literal),* $(,)?) => {
        $(#[test] fn $test() { $run($case); })*
    };
}

/// One statistics table printed at exit under `ARENAGC_STATS=1`.
#[derive(Debug, Default)]
pub struct ExitStats {
    pub arenas_allocated_total: u64,
    /// Sum of the "num pools" column.
    pub pools: u64,
    /// Sum of the "blocks in use" column.
    pub blocks_in_use: u64,
}

/// Every statistics table in `stderr` (one per process that exited with the library loaded).
pub fn exit_stats(stderr: &str) -> Vec<ExitStats> {
    stderr
        .split("arenagc: statistics at exit")
        .skip(1)
        .map(|sec| {
            let mut s = ExitStats::default();
            let mut in_table = false;
            for line in sec.lines() {
                if line.starts_with("-----") {
                    in_table = true;
                    continue;
                }
                if in_table {
                    let cols: Vec<u64> = line
                        .split_whitespace()
                        .filter_map(|w| w.parse().ok())
                        .collect();
                    if cols.len() == 5 {
                        s.pools += cols[2];
                        s.blocks_in_use += cols[3];
                        continue;
                    }
                    in_table = false;
                }
                if let Some(v) = line.strip_prefix("# arenas allocated total") {
                    s.arenas_allocated_total = v
                        .trim_start_matches([' ', '='])
                        .trim()
                        .parse()
                        .expect("arena count");
                }
            }
            s
        })
        .collect()
}
